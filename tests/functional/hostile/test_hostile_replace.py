"""if_exists: replace, attacked: whatever goes wrong, a failed replace leaves the old stream as it was.

Cheap checks refuse before anything is deleted (replicas, the account's limits, the target's release
against the archive format); past them, a safety backup of the old stream is taken first and put back
when the new stream cannot be made; when even that cannot be done, the safety backup stays on disk and
the message says where.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time

import nats
import pytest
from support.fixtures import NATSCLI_FIXTURE
from support.hostile import app, damage_inside_a_chunk, fill, js, s2_chunks
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER, NatsNode, older_server
from support.streams import SyncJs, progress, wait_for_data
from support.threads import Outcome

FIXTURE_ORDERS = NATSCLI_FIXTURE / "account-backup" / "ORDERS"


def copy_backup(source, target):
    shutil.copytree(source, target)
    for entry in [target, *target.iterdir()]:
        os.chmod(entry, 0o755 if entry.is_dir() else 0o644)
    return target


def needs_v2(version):
    if version < (2, 15, 0):
        pytest.skip("the natscli fixture is a V2 archive, which only nats-server 2.15+ restores")


def restored_orders(server, tmp_path):
    """The natscli fixture's ORDERS restored, then changed: the old stream a replace must not lose."""
    run_module("stream_restore", app(server, path=str(FIXTURE_ORDERS)))
    client = js(server)
    client.publish("ORDERS.late", 7, size=80)
    return client.snapshot_of("ORDERS")


def replace(server, path, tmp_path, **extra):
    args = app(server, path=str(path), if_exists="replace", safety_backup_dir=str(tmp_path / "safety"), **extra)
    return run_module("stream_restore", args)


def refused_replace(server, path, tmp_path, **extra):
    with pytest.raises(ModuleFailed) as failed:
        replace(server, path, tmp_path, **extra)
    return failed.value.result


def safety_left(tmp_path):
    safety = tmp_path / "safety"
    return sorted(entry.name for entry in safety.iterdir()) if safety.exists() else []


@pytest.mark.parametrize("where", ["first chunk", "last chunk"])
def test_a_damaged_natscli_backup_is_put_back(where, fresh_standalone, nats_server_version, tmp_path):
    needs_v2(nats_server_version)
    """The defect: a backup without manifest passes the framing check, the server refuses its data, and the
    old stream used to be gone. Now it comes back from its safety backup."""
    before = restored_orders(fresh_standalone, tmp_path)
    damaged = copy_backup(FIXTURE_ORDERS, tmp_path / "damaged")
    damage_inside_a_chunk(
        damaged / "stream.tar.s2", 0 if where == "first chunk" else len(s2_chunks(damaged / "stream.tar.s2")) - 1
    )
    run_module("stream_restore", app(fresh_standalone, path=str(damaged), if_exists="replace"), check_mode=True)

    result = refused_replace(fresh_standalone, damaged, tmp_path)
    msg = result["msg"]
    assert "replace of ORDERS failed" in msg and "the old stream was put back from its safety backup" in msg, msg
    assert f"last sequence {before['last_seq']}" in msg
    (failure,) = result["failures"]
    assert failure["put_back"] is True and failure["safety_backup"]["kept"] is False
    assert js(fresh_standalone).snapshot_of("ORDERS") == before
    assert safety_left(tmp_path) == []


def test_more_replicas_than_servers_is_refused_before_anything(fresh_standalone, nats_server_version, tmp_path):
    needs_v2(nats_server_version)
    before = restored_orders(fresh_standalone, tmp_path)
    r5 = copy_backup(FIXTURE_ORDERS, tmp_path / "r5")
    record = json.loads((r5 / "backup.json").read_text())
    record["config"]["num_replicas"] = 5
    (r5 / "backup.json").write_text(json.dumps(record))
    result = refused_replace(fresh_standalone, r5, tmp_path)
    assert "nothing was restored, and nothing was deleted" in result["msg"]
    assert "would have 5 replicas" in result["msg"] and "restore with replicas: 1" in result["msg"]
    assert "2.15" not in result["msg"]  # the cause named, not a guess about releases
    assert js(fresh_standalone).snapshot_of("ORDERS") == before
    assert safety_left(tmp_path) == []
    # The advice works.
    assert replace(fresh_standalone, r5, tmp_path, replicas=1)["restored"][0]["action"] == "replaced"


def test_more_replicas_than_the_cluster_has_is_refused(nats_cluster, tmp_path, unique_name):
    name = unique_name("R5")
    client = js(nats_cluster)
    fill(client, name, count=20, size=100, replicas=3)
    backup = tmp_path / name
    run_module("stream_backup", app(nats_cluster, stream=name, path=str(backup)))
    record = json.loads((backup / "backup.json").read_text())
    before = client.snapshot_of(name)
    with pytest.raises(ModuleFailed) as failed:
        replace(nats_cluster, backup, tmp_path, replicas=5)
    assert "would have 5 replicas, and cluster" in failed.value.result["msg"]
    assert "has 3 server(s) up" in failed.value.result["msg"]
    assert client.snapshot_of(name) == before
    assert record["config"]["num_replicas"] == 3


@pytest.fixture
def older_standalone(tmp_path):
    node = NatsNode("older", tmp_path / "older", binary=older_server("2.14.6")).start()
    yield node
    node.kill()


@pytest.mark.parametrize("if_exists", ["fail", "replace"])
def test_a_v2_archive_is_refused_by_an_older_server_before_anything_is_sent(if_exists, older_standalone, tmp_path):
    client = js(older_standalone)
    fill(client, "ORDERS", count=30, size=100)
    before = client.snapshot_of("ORDERS")
    if if_exists == "fail":
        client.delete_stream("ORDERS")
    with pytest.raises(ModuleFailed) as failed:
        run_module("stream_restore", app(older_standalone, path=str(FIXTURE_ORDERS), if_exists=if_exists))
    msg = failed.value.result["msg"]
    assert "its backup is a V2 archive, which only nats-server 2.15 or later can restore" in msg, msg
    assert "nats-server 2.14.6" in msg
    if if_exists == "fail":
        assert not client.exists("ORDERS")
    else:
        assert client.snapshot_of("ORDERS") == before


@pytest.fixture
def limited_server(tmp_path):
    """APP may store 1 MB of file data."""
    auth = """
accounts {
  APP { jetstream: { max_file: 1MB }, users: [{user: app, password: app-secret}] }
  SYS { users: [{user: sys, password: sys-secret}] }
}
system_account: SYS
"""
    node = NatsNode("limited", tmp_path / "limited", auth_config=auth).start()
    yield node
    node.kill()


def test_a_backup_larger_than_the_account_may_hold_is_refused(limited_server, nats_standalone, tmp_path, unique_name):
    name = unique_name("LIMITED")
    fill(js(nats_standalone), name, count=500, size=4000)  # 2 MB
    backup = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(backup)))
    small = js(limited_server)
    fill(small, name, count=25, size=4000)  # 100 KB
    before = small.snapshot_of(name)
    result = refused_replace(limited_server, backup, tmp_path)
    assert "the account may store 1.0 MiB of file data" in result["msg"], result["msg"]
    assert "raise the account's JetStream limits" in result["msg"]
    assert small.snapshot_of(name) == before
    assert safety_left(tmp_path) == []


def test_a_full_disk_under_the_safety_backup_refuses_the_replace(nats_standalone, small_disk, tmp_path, unique_name):
    name = unique_name("FULLSAFE")
    client = js(nats_standalone)
    fill(client, name, count=500, size=4000)  # 2 MB: more than the 256 KB disk
    backup = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(backup)))
    client.publish(f"{name}.x", 3, size=10)
    before = client.snapshot_of(name)
    disk = small_disk("256k")
    with pytest.raises(ModuleFailed) as failed:
        run_module(
            "stream_restore", app(nats_standalone, path=str(backup), if_exists="replace", safety_backup_dir=str(disk))
        )
    msg = failed.value.result["msg"]
    assert f"replace of {name} refused: its safety backup into {disk} failed" in msg, msg
    assert "No space left on device" in msg and "the stream was left as it was" in msg
    assert client.snapshot_of(name) == before
    assert list(disk.iterdir()) == []


def test_a_stream_written_to_during_its_safety_backup_is_not_replaced(nats_standalone, tmp_path, unique_name):
    name = unique_name("BUSY")
    client = js(nats_standalone)
    fill(client, name, count=500, size=4000)
    backup = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(backup)))
    stop = threading.Event()
    published = []

    async def publish() -> None:
        nc = await nats.connect(nats_standalone.urls, user=APP_USER, password=APP_PASSWORD)
        jetstream = nc.jetstream()
        while not stop.is_set():
            published.append((await jetstream.publish(f"{name}.x", b"live")).seq)
        await nc.close()

    publisher = threading.Thread(target=lambda: asyncio.run(publish()))
    publisher.start()
    try:
        while len(published) < 20:
            time.sleep(0.01)
        result = refused_replace(nats_standalone, backup, tmp_path)
    finally:
        stop.set()
        publisher.join()
    assert f"replace of {name} refused: the stream took new messages while its safety backup was taken" in result["msg"]
    assert "stop its publishers" in result["msg"]
    # Every acknowledged message is still there: nothing was deleted.
    info = client.stream_info(name)
    assert info["state"]["last_seq"] == published[-1] == 500 + len(published)
    assert safety_left(tmp_path) == []


def test_the_server_killed_after_the_old_stream_was_deleted(fresh_standalone, tmp_path, unique_name):
    """No server to put the old stream back: its safety backup stays, named, and restores it exactly."""
    name = unique_name("KILLREPL")
    client = js(fresh_standalone)
    fill(client, name)
    backup = tmp_path / name
    run_module("stream_backup", app(fresh_standalone, stream=name, path=str(backup)))
    client.publish(f"{name}.x", 5, size=10)
    before = client.snapshot_of(name)
    args = app(fresh_standalone, path=str(backup), if_exists="replace", safety_backup_dir=str(tmp_path / "safety"))
    args.update(chunk_size=1024, timeout=3.0, connect_timeout=1.0)
    outcome = Outcome(lambda: run_module("stream_restore", args))
    wait_for_data([fresh_standalone], threshold=2 << 20)  # the new stream's data, past the safety backup's acks
    started = time.monotonic()
    fresh_standalone.kill()
    error = outcome.error(timeout=60)
    assert isinstance(error, ModuleFailed), f"the module ended before the kill took effect: {error}"
    assert time.monotonic() - started < 20  # not a speed figure: it ends, it does not wait out timeouts
    msg = error.result["msg"]
    (kept,) = safety_left(tmp_path)
    safety = tmp_path / "safety" / kept
    assert f"Its data is safe in the safety backup {safety}" in msg, msg
    assert "no server answers to put it back" in msg
    assert error.result["failures"][0]["safety_backup"] == {"path": str(safety), "kept": True}

    fresh_standalone.start()
    run_module("stream_restore", app(fresh_standalone, path=str(safety)))  # redoes whatever the kill left
    assert client.snapshot_of(name) == before


def test_a_replace_that_succeeds_removes_its_safety_backup_unless_kept(nats_standalone, tmp_path, unique_name):
    name = unique_name("REPLOK")
    client = js(nats_standalone)
    fill(client, name, count=40, size=100)
    backup = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(backup)))
    planned = run_module(
        "stream_restore",
        app(nats_standalone, path=str(backup), if_exists="replace", safety_backup_dir=str(tmp_path / "safety")),
        check_mode=True,
    )
    assert planned["planned"][0]["action"] == "replace"
    assert planned["planned"][0]["safety_backup_dir"] == str(tmp_path / "safety")
    client.publish(f"{name}.x", 2, size=10)
    done = replace(nats_standalone, backup, tmp_path)["restored"][0]
    assert done["action"] == "replaced" and done["safety_backup"]["kept"] is False
    assert safety_left(tmp_path) == []
    assert client.stream_info(name)["state"]["messages"] == 40
    client.publish(f"{name}.x", 2, size=10)
    kept = replace(nats_standalone, backup, tmp_path, keep_safety_backup=True)["restored"][0]["safety_backup"]
    assert kept["kept"] is True
    assert (
        json.loads((tmp_path / "safety" / os.path.basename(kept["path"]) / "backup.json").read_text())["state"][
            "messages"
        ]
        == 42
    )


def test_the_default_safety_backup_dir_is_the_users_state_directory(
    nats_standalone, tmp_path, monkeypatch, unique_name
):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    name = unique_name("XDG")
    fill(js(nats_standalone), name, count=5, size=10)
    backup = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(backup)))
    planned = run_module("stream_restore", app(nats_standalone, path=str(backup), if_exists="replace"), check_mode=True)
    assert planned["planned"][0]["safety_backup_dir"] == str(
        tmp_path / "state" / "natsops.jetstream" / "safety-backups"
    )


@pytest.mark.parametrize("killed", ["the new stream's leader", "the only server given"])
def test_a_server_of_the_cluster_killed_mid_replace_puts_the_old_stream_back(
    killed, fresh_cluster, nats_server_version, tmp_path
):
    """In a cluster nothing is lost when a server dies mid-replace: the old stream comes back through the
    survivors (through the servers the cluster advertised when the one given died), or the new one is whole."""
    client = js(fresh_cluster)
    fill(client, "R3REPL", count=10000, replicas=3)  # a restore of some seconds in 1 KiB chunks
    backup = tmp_path / "R3REPL"
    run_module("stream_backup", app(fresh_cluster, stream="R3REPL", path=str(backup)))
    client.publish("R3REPL.x", 5, size=10)
    before = client.snapshot_of("R3REPL")
    given = fresh_cluster.nodes[0]
    safety = tmp_path / "safety"
    args = {**app(fresh_cluster), "servers": [given.url], "path": str(backup), "if_exists": "replace"}
    args.update(safety_backup_dir=str(safety), chunk_size=1024, timeout=3.0)
    outcome = Outcome(lambda: run_module("stream_restore", args))
    outcome.wait_for(lambda: safety.exists() and any(not entry.name.startswith(".") for entry in safety.iterdir()))
    baseline = given.monitor("/varz")["in_bytes"]
    outcome.wait_for(lambda: given.monitor("/varz")["in_bytes"] - baseline >= 1 << 20)  # the new stream's data
    victim = given if killed == "the only server given" else new_stream_leader(fresh_cluster, outcome)
    assert not outcome.done, "the replace ended before the kill"
    victim.kill()
    error = outcome.error(timeout=180)
    survivors = SyncJs([node.url for node in fresh_cluster.nodes if node is not victim], APP_USER, APP_PASSWORD)
    if error is None:
        # The new stream made it: the server handed its restore to another leader (2.15), or placed the
        # stream only at the end of the restore (before 2.15). Then it must be the backup, exactly.
        assert killed == "the new stream's leader", "the replace did not notice the loss of its only server"
        assert outcome.result["restored"][0]["verification"]["match"]
        # A restore is done only once its replicas hold the data: the survivors have it all.
        assert readable(survivors)["messages"] == before["messages"] - 5
    else:
        assert isinstance(error, ModuleFailed), error
        assert "the old stream was put back from its safety backup" in error.result["msg"], error.result["msg"]
        assert progress(readable(survivors)) == progress(before)
    assert safety_left(tmp_path) == []


def readable(survivors, timeout=30.0):
    """The stream's snapshot, once its group has elected a leader among the survivors."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return survivors.snapshot_of("R3REPL")
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def new_stream_leader(cluster, outcome):
    """The leader of the stream being restored (2.15 shows it early); before 2.15, the meta leader's choice
    is not visible until the end, and any server will do."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not outcome.done:
        try:
            info = SyncJs(cluster.urls, APP_USER, APP_PASSWORD).stream_info("R3REPL")
        except Exception:  # no leader yet
            info = None
        leader = ((info or {}).get("cluster") or {}).get("leader")
        if leader:
            return cluster.node(leader)
        time.sleep(0.02)
    return cluster.nodes[-1]
