"""Integration targets run through ansible-playbook against a real nats-server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.playbooks import run_playbook
from support.servers import APP_PASSWORD, APP_USER, OTHER_PASSWORD, OTHER_USER, SYS_PASSWORD, SYS_USER
from support.streams import SyncJs

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]


def run_target(target: str, extra_vars: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """The integration target ``target`` (tests/integration/targets), at -vvv."""
    return run_playbook(HERE / "run_target.yml", tmp_path, extra_vars={"target": target, **extra_vars}, verbosity=3)


def test_stream_backup_restore_target(nats_standalone, tmp_path, unique_name):
    name = unique_name("PLAY")
    client = SyncJs(list(nats_standalone.urls), APP_USER, APP_PASSWORD)
    client.create_stream(name)
    client.publish(f"{name}.x", 120, size=300, with_headers_every=4)
    backup_root = tmp_path / "backups"
    backup_root.mkdir()
    result = run_target(
        "stream_backup_restore",
        {
            "nats_servers": list(nats_standalone.urls),
            "nats_user": APP_USER,
            "nats_password": APP_PASSWORD,
            "nats_stream": name,
            "nats_stream_messages": 120,
            "backup_root": str(backup_root),
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "failed=0" in result.stdout
    # no_log: the password given through module_defaults never appears in the output.
    assert APP_PASSWORD not in result.stdout


def test_raft_peer_remove_target(fresh_cluster, tmp_path, unique_name):
    name = unique_name("PEER")
    client = SyncJs(list(fresh_cluster.urls), APP_USER, APP_PASSWORD)
    client.create_stream(name, num_replicas=3)
    client.publish(f"{name}.x", 50, size=100)
    lost = fresh_cluster.nodes[-1]
    lost.kill()
    lost.wipe_store()
    result = run_target(
        "raft_peer_remove",
        {
            "nats_servers": list(fresh_cluster.urls),
            "nats_user": SYS_USER,
            "nats_password": SYS_PASSWORD,
            "app_user": APP_USER,
            "app_password": APP_PASSWORD,
            "nats_accounts": [
                {"user": APP_USER, "password": APP_PASSWORD},
                {"user": OTHER_USER, "password": OTHER_PASSWORD},
            ],
            "lost_server": lost.name,
            "nats_stream": name,
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "failed=0" in result.stdout
    # no_log: neither the system password (module_defaults) nor an account's (accounts) is shown.
    assert SYS_PASSWORD not in result.stdout and APP_PASSWORD not in result.stdout
    assert OTHER_PASSWORD not in result.stdout
