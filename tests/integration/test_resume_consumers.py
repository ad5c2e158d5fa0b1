"""The resume_consumers playbook, run by ansible-playbook against a real nats-server with paused consumers."""

from __future__ import annotations

from pathlib import Path

from support.config_modules import require_release
from support.playbooks import run_playbook
from support.servers import APP_PASSWORD, APP_USER, OTHER_PASSWORD, OTHER_USER, NatsNode
from support.streams import SyncJs

LATER = "2099-01-01T00:00:00Z"


def paused_consumer(client: SyncJs, stream: str) -> None:
    client.create_stream(stream)
    client.create_durable(stream, "WORKER")
    client.request(f"CONSUMER.PAUSE.{stream}.WORKER", {"pause_until": LATER})


def is_paused(client: SyncJs, stream: str) -> bool:
    return bool(client.request(f"CONSUMER.INFO.{stream}.WORKER").get("paused"))


def test_resume_consumers_resumes_every_account(fresh_standalone: NatsNode, nats_server_version, tmp_path: Path):
    require_release(nats_server_version, (2, 11))
    accounts = {"APP": (APP_USER, APP_PASSWORD), "OTHER": (OTHER_USER, OTHER_PASSWORD)}
    clients = {label: SyncJs(fresh_standalone.urls, *credentials) for label, credentials in accounts.items()}
    for label, client in clients.items():
        paused_consumer(client, f"{label}_ORDERS")
    extra_vars = {
        "natsops_accounts": {
            label: {"servers": fresh_standalone.urls, "user": user, "password": password}
            for label, (user, password) in accounts.items()
        },
    }
    run = run_playbook("natsops.jetstream.resume_consumers", tmp_path, extra_vars=extra_vars)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for label, client in clients.items():
        assert not is_paused(client, f"{label}_ORDERS")
        assert f"{label}: resumed 1 consumer: {label}_ORDERS/WORKER" in run.stdout
