"""The resume_consumers playbook, run by ansible-playbook against a real nats-server with paused consumers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.config_modules import require_release
from support.servers import APP_PASSWORD, APP_USER, OTHER_PASSWORD, OTHER_USER, NatsNode
from support.streams import SyncJs

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
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
        "ansible_python_interpreter": sys.executable,
        "natsops_accounts": {
            label: {"servers": fresh_standalone.urls, "user": user, "password": password}
            for label, (user, password) in accounts.items()
        },
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    }
    run = subprocess.run(
        [PLAYBOOK, "natsops.jetstream.resume_consumers", "-e", f"@{tmp_path / 'vars.json'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for label, client in clients.items():
        assert not is_paused(client, f"{label}_ORDERS")
        assert f"{label}: resumed 1 consumer: {label}_ORDERS/WORKER" in run.stdout
