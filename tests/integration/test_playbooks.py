"""The collection's backup and restore playbooks, run by ansible-playbook against real nats-server clusters."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from support.playbooks import run_playbook
from support.servers import APP_PASSWORD, APP_USER, SYS_PASSWORD, SYS_USER, NatsCluster, NatsNode
from support.streams import SyncJs, progress

APP = {"user": APP_USER, "password": APP_PASSWORD}


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-6000:] + result.stderr[-2000:]


def make_streams(servers: list[str], prefix: str) -> dict[str, dict]:
    client = SyncJs(servers, APP_USER, APP_PASSWORD)
    for index, name in enumerate([f"{prefix}_A", f"{prefix}_B"]):
        client.create_stream(name, num_replicas=3)
        client.publish(f"{name}.x", 80 * (index + 1), size=200, with_headers_every=3)
        client.create_durable(name, "WORKER")
        client.consume_and_ack(name, "WORKER", fetch=30, ack=20)
    return {name: client.snapshot_of(name) for name in [f"{prefix}_A", f"{prefix}_B"]}


def test_backup_keeps_the_last_complete_sets_and_restore_rebuilds_them_elsewhere(
    nats_cluster: NatsCluster, fresh_standalone: NatsNode, tmp_path: Path, unique_name
) -> None:
    prefix = unique_name("PB")
    source = make_streams(nats_cluster.urls, prefix)
    root = tmp_path / "backups"
    (root / "20000101T000000Z" / "APP").mkdir(parents=True)  # an old backup that never finished
    backup_vars = {
        "natsops_accounts": {"APP": {"servers": nats_cluster.urls, **APP}},
        "backup_root": str(root),
        "backup_streams": [f"{prefix}_*"],
        "backup_keep": 2,
    }
    for _run in range(3):
        result = run_playbook("natsops.jetstream.backup", tmp_path, extra_vars=backup_vars)
        assert result.returncode == 0, output(result)
        time.sleep(1.1)  # backups are named by the second
    kept = sorted(path.name for path in root.iterdir())
    assert len(kept) == 2, kept
    summary = json.loads((root / kept[-1] / "summary.json").read_text())
    saved = {entry["stream"]: entry for entry in summary["accounts"]["APP"]["streams"]}
    assert {name: saved[name]["last_seq"] for name in source} == {
        name: snapshot["last_seq"] for name, snapshot in source.items()
    }

    # Something else kept beside the dated backups, even with a summary.json, is never "the latest".
    (root / "manual").mkdir()
    (root / "manual" / "summary.json").write_text('{"accounts": {}}')
    target = {"APP": {"servers": [fresh_standalone.url], **APP}}
    restore_vars = {"natsops_accounts": target, "backup_root": str(root), "restore_replicas": 1}
    result = run_playbook("natsops.jetstream.restore", tmp_path, extra_vars=restore_vars)
    assert result.returncode == 0, output(result)
    assert f"Restored backup {root / kept[-1]}" in result.stdout
    restored = SyncJs([fresh_standalone.url], APP_USER, APP_PASSWORD)
    for name, snapshot in source.items():
        assert progress(restored.snapshot_of(name)) == progress(snapshot)


def test_restore_refuses_existing_streams_before_touching_any(
    nats_cluster: NatsCluster, fresh_standalone: NatsNode, tmp_path: Path, unique_name
) -> None:
    prefix = unique_name("PX")
    make_streams(nats_cluster.urls, prefix)
    root = tmp_path / "backups"
    accounts = {"APP": {"servers": nats_cluster.urls, **APP}}
    result = run_playbook(
        "natsops.jetstream.backup",
        tmp_path,
        extra_vars={"natsops_accounts": accounts, "backup_root": str(root), "backup_streams": [f"{prefix}_*"]},
    )
    assert result.returncode == 0, output(result)
    target = SyncJs([fresh_standalone.url], APP_USER, APP_PASSWORD)
    target.create_stream(f"{prefix}_B")  # already there, empty
    target_accounts = {"APP": {"servers": [fresh_standalone.url], **APP}}
    result = run_playbook(
        "natsops.jetstream.restore",
        tmp_path,
        extra_vars={"natsops_accounts": target_accounts, "backup_root": str(root), "restore_replicas": 1},
    )
    assert result.returncode != 0
    assert f"{prefix}_B" in result.stdout
    assert not target.exists(f"{prefix}_A"), "nothing may be restored when one stream is refused"
    assert target.stream_info(f"{prefix}_B")["state"]["messages"] == 0

    # A set whose backup never finished (no summary.json) is refused by name, not half-restored.
    incomplete = root / "20000101T000000Z"
    (incomplete / "APP").mkdir(parents=True)
    result = run_playbook(
        "natsops.jetstream.restore",
        tmp_path,
        extra_vars={"natsops_accounts": target_accounts, "restore_from": str(incomplete)},
    )
    assert result.returncode != 0
    assert f"{incomplete} has no summary.json" in result.stdout + result.stderr


# replace_node's refusals come before any host is touched: the inventory's hosts are never contacted.
REPLACEMENT_INVENTORY = """
[nats]
keep1 ansible_host=192.0.2.1
keep2 ansible_host=192.0.2.2
spare ansible_host=192.0.2.4 nats_server_name={new_name}
"""


def replace_vars(cluster: NatsCluster, dead: str) -> dict:
    return {
        "natsops_system": {"servers": cluster.urls, "user": SYS_USER, "password": SYS_PASSWORD},
        "natsops_accounts": {"APP": {"servers": cluster.urls, **APP}},
        "replace_dead": dead,
        "replace_new": "spare",
    }


def test_replace_node_refuses_a_server_that_still_answers(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    alive = nats_cluster.nodes[-1].name
    inventory = REPLACEMENT_INVENTORY.format(new_name="brand-new")
    result = run_playbook(
        "natsops.jetstream.replace_node", tmp_path, extra_vars=replace_vars(nats_cluster, alive), inventory=inventory
    )
    assert result.returncode != 0
    assert f"{alive} still answers: stop it first" in result.stdout
    assert nats_cluster.meta_leader() is not None
    assert "Remove the lost server" not in result.stdout


def test_replace_node_refuses_a_server_name_the_meta_group_knows(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    for new_name in ["gone", nats_cluster.nodes[0].name]:  # the lost server's own name, or a current peer's
        result = run_playbook(
            "natsops.jetstream.replace_node",
            tmp_path,
            extra_vars=replace_vars(nats_cluster, "gone"),
            inventory=REPLACEMENT_INVENTORY.format(new_name=new_name),
        )
        assert result.returncode != 0
        assert f"would join as {new_name}, a name the meta group knows or" in result.stdout
        assert "Remove the lost server" not in result.stdout


def test_restore_takes_the_latest_set_out_of_the_repository(
    nats_cluster: NatsCluster, fresh_standalone: NatsNode, tmp_path: Path, unique_name
) -> None:
    """The scheduled job's repository as restore.yml's source: the newest set, checked, then restored."""
    from ansible_collections.natsops.jetstream.plugins.module_utils.repository.backup_job import (
        EXIT_OK,
        JobConfig,
        run_job,
    )

    prefix = unique_name("RP")
    source = make_streams(nats_cluster.urls, prefix)
    (tmp_path / "password").write_text("repository password\n")
    repository = {"repository": str(tmp_path / "repository"), "password_file": str(tmp_path / "password")}
    job = {
        "accounts": {"APP": {"servers": nats_cluster.urls, **APP, "streams": [f"{prefix}_*"]}},
        "repository": {"url": repository["repository"], "password_file": repository["password_file"]},
        "state_dir": str(tmp_path / "state"),
        "spool_dir": str(tmp_path / "spool"),
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    config = JobConfig.load(tmp_path / "job.json")
    config.repository_handle().init()
    assert run_job(config, lambda line: None) == EXIT_OK
    SyncJs(nats_cluster.urls, APP_USER, APP_PASSWORD).publish(f"{prefix}_A.x", 5, size=100)  # after the set
    assert run_job(config, lambda line: None) == EXIT_OK
    newest = config.repository_handle().snapshots("APP")[-1].set_stamp

    target = {"APP": {"servers": [fresh_standalone.url], **APP}}
    root = tmp_path / "backups"
    restore_vars = {
        "natsops_accounts": target,
        "natsops_backup_root": str(root),
        "natsops_restore_repository": repository,
        "natsops_restore_replicas": 1,
    }
    result = run_playbook("natsops.jetstream.restore", tmp_path, extra_vars=restore_vars)
    assert result.returncode == 0, output(result)
    assert f"Restored backup {root / 'from-repository' / newest}" in result.stdout
    restored = SyncJs([fresh_standalone.url], APP_USER, APP_PASSWORD)
    assert restored.snapshot_of(f"{prefix}_A")["last_seq"] == source[f"{prefix}_A"]["last_seq"] + 5
    assert progress(restored.snapshot_of(f"{prefix}_B")) == progress(source[f"{prefix}_B"])
