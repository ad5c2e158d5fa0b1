"""stream_backup and stream_restore against real nats-server processes: standalone and 3-node clusters."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import MANIFEST_FORMAT
from support.fixtures import NATSCLI_FIXTURE
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER
from support.streams import SyncJs, progress, random_payload, wait_for_data
from support.threads import Outcome

FIXTURE_DIR = NATSCLI_FIXTURE


def app(server: Any, **args: Any) -> dict[str, Any]:
    """Module arguments that connect to ``server`` as the APP account."""
    return {"servers": list(server.urls), "user": APP_USER, "password": APP_PASSWORD, **args}


def js(server: Any, url: str | None = None) -> SyncJs:
    return SyncJs([url] if url else list(server.urls), APP_USER, APP_PASSWORD)


def make_orders(server: Any, name: str, replicas: int = 1, count: int = 300) -> dict[str, Any]:
    """A stream with headers on every third message, and two durables at different positions."""
    client = js(server)
    client.create_stream(name, num_replicas=replicas)
    client.publish(f"{name}.new", count // 2, size=200, with_headers_every=3)
    client.publish(f"{name}.paid", count - count // 2, size=150, with_headers_every=3)
    client.create_durable(name, "ALL")
    client.create_durable(name, "NEW", filter_subject=f"{name}.new")
    client.consume_and_ack(name, "ALL", fetch=min(120, count), ack=min(100, count))
    return client.snapshot_of(name)


def leftovers(path: Path) -> list[str]:
    """Anything a failed backup could have left beside its target."""
    if not path.parent.exists():
        return []
    return sorted(entry.name for entry in path.parent.iterdir() if entry.name.startswith(f".{path.name}."))


def snapshot_started(directory: Path, name: str):
    def started() -> bool:
        return any((p / "stream.tar.s2").exists() for p in directory.glob(f".{name}.partial-*"))

    return started


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_round_trip_keeps_messages_headers_and_consumer_positions(topology, request, tmp_path, unique_name):
    server = request.getfixturevalue("nats_standalone" if topology == "standalone" else "nats_cluster")
    replicas = 1 if topology == "standalone" else 3
    name = unique_name("ORDERS")
    before = make_orders(server, name, replicas=replicas)
    path = tmp_path / name

    result = run_module("stream_backup", app(server, stream=name, path=str(path)))
    assert result["changed"]
    (backup,) = result["backups"]
    assert backup["messages"] == before["messages"] == 300
    assert (backup["first_seq"], backup["last_seq"]) == (1, 300)
    assert backup["consumers"] == ["ALL", "NEW"]
    assert sorted(p.name for p in path.iterdir()) == ["backup.json", "manifest.json", "stream.tar.s2"]
    saved = json.loads((path / "backup.json").read_text())
    assert sorted(saved) == ["config", "state"]
    assert saved["config"]["num_replicas"] == replicas
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == MANIFEST_FORMAT
    assert manifest["files"]["stream.tar.s2"]["sha256"] == backup["sha256"]
    assert manifest["consumers"]["ALL"]["ack_floor_stream_seq"] == 100

    js(server).delete_stream(name)
    restored = run_module("stream_restore", app(server, path=str(path)))
    assert restored["changed"]
    (entry,) = restored["restored"]
    assert entry["verification"]["match"]
    assert entry["replicas"] == replicas
    assert "natsops.jetstream.restore" not in js(server).stream_info(name)["config"].get("metadata", {})
    after = js(server).snapshot_of(name)
    if topology == "standalone":
        assert after == before
    else:
        assert progress(after) == progress(before)


def test_account_backup_layout_and_restore_r3_into_standalone(nats_cluster, fresh_standalone, tmp_path, unique_name):
    prefix = unique_name("ACCT")
    source = js(nats_cluster)
    names = [f"{prefix}_{i}" for i in range(4)]
    for index, name in enumerate(names):
        source.create_stream(name, num_replicas=3)
        source.publish(f"{name}.x", 50 * (index + 1), size=64)
    before = {name: source.snapshot_of(name) for name in names}
    path = tmp_path / "account"

    result = run_module("stream_backup", app(nats_cluster, streams=[f"{prefix}_*"], path=str(path)))
    assert sorted(b["stream"] for b in result["backups"]) == names
    # nats account restore refuses any top-level entry that is not a stream directory.
    assert sorted(p.name for p in path.iterdir()) == names
    for name in names:
        assert sorted(p.name for p in (path / name).iterdir()) == ["backup.json", "manifest.json", "stream.tar.s2"]

    restored = run_module("stream_restore", app(fresh_standalone, path=str(path), replicas=1))
    assert sorted(r["stream"] for r in restored["restored"]) == names
    assert all(r["replicas"] == 1 for r in restored["restored"])
    target = js(fresh_standalone)
    for name in names:
        assert target.snapshot_of(name) == before[name]


def test_r3_backup_into_standalone_without_replicas_override_fails_clearly(
    nats_cluster, fresh_standalone, tmp_path, unique_name
):
    name = unique_name("R3")
    make_orders(nats_cluster, name, replicas=3, count=20)
    path = tmp_path / name
    run_module("stream_backup", app(nats_cluster, stream=name, path=str(path)))
    with pytest.raises(ModuleFailed, match="replicas") as failed:
        run_module("stream_restore", app(fresh_standalone, path=str(path)))
    assert name in failed.value.result["msg"]
    assert not js(fresh_standalone).exists(name)


def test_r1_backup_restores_as_r3_into_a_new_cluster(nats_standalone, fresh_cluster, tmp_path, unique_name):
    name = unique_name("R1")
    before = make_orders(nats_standalone, name)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))

    restored = run_module("stream_restore", app(fresh_cluster, path=str(path), replicas=3))
    assert restored["restored"][0]["replicas"] == 3
    target = js(fresh_cluster)
    info = target.stream_info(name)
    assert info["config"]["num_replicas"] == 3
    assert len(info["cluster"].get("replicas") or []) == 2
    assert target.snapshot_of(name) == before


def test_empty_stream_round_trip(nats_standalone, tmp_path, unique_name):
    name = unique_name("EMPTY")
    client = js(nats_standalone)
    client.create_stream(name)
    path = tmp_path / name
    backup = run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))["backups"][0]
    assert backup["messages"] == 0
    client.delete_stream(name)
    restored = run_module("stream_restore", app(nats_standalone, path=str(path)))["restored"][0]
    assert restored["verification"]["actual"]["messages"] == 0
    assert client.exists(name)


def test_messages_at_max_payload_round_trip(nats_standalone, tmp_path, unique_name):
    name = unique_name("BIG")
    client = js(nats_standalone)
    client.create_stream(name)
    client.publish(f"{name}.big", 5, payload=random_payload(client.max_payload()))
    before = client.snapshot_of(name)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path), chunk_size=1024 * 1024))
    client.delete_stream(name)
    run_module("stream_restore", app(nats_standalone, path=str(path)))
    assert client.snapshot_of(name) == before


def test_window_size_is_sent_when_the_server_knows_it(nats_standalone, tmp_path, unique_name):
    name = unique_name("WIN")
    make_orders(nats_standalone, name, count=50)
    path = tmp_path / name
    result = run_module(
        "stream_backup", app(nats_standalone, stream=name, path=str(path), window_size=64 * 1024, chunk_size=4096)
    )
    manifest = json.loads((path / "manifest.json").read_text())
    if manifest["server"]["api_level"] >= 3:
        assert manifest["window_size"] == 64 * 1024
        assert not result["warnings"]
    else:
        assert manifest["window_size"] is None
        assert any("window_size ignored" in warning for warning in result["warnings"])


# --- the natscli compatibility fixture ----------------------------------------------------------


def test_natscli_account_backup_restores_exactly(fresh_standalone, nats_server_version):
    if nats_server_version < (2, 15, 0):
        pytest.skip("the fixture holds a NATSARC1 archive that only nats-server 2.15+ can restore")
    expected = json.loads((FIXTURE_DIR / "expected.json").read_text())["streams"]
    result = run_module("stream_restore", app(fresh_standalone, path=str(FIXTURE_DIR / "account-backup")))
    assert sorted(r["stream"] for r in result["restored"]) == sorted(expected)
    for entry in result["restored"]:
        assert entry["backup_check"]["method"] == "s2-framing"
    client = js(fresh_standalone)
    for name, want in expected.items():
        got = client.snapshot_of(name)
        assert got["digest"] == want["sha256"]
        assert (got["messages"], got["first_seq"], got["last_seq"]) == (
            want["count"],
            want["first_seq"],
            want["last_seq"],
        )
        assert got["consumers"] == want["consumers"]


# --- refusals: nothing is lost ------------------------------------------------------------------


def test_existing_stream_is_refused_skipped_or_replaced(nats_standalone, tmp_path, unique_name):
    name = unique_name("EXISTS")
    before = make_orders(nats_standalone, name, count=40)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))
    client = js(nats_standalone)
    client.publish(f"{name}.new", 5)
    after_publish = client.snapshot_of(name)

    with pytest.raises(ModuleFailed, match=f"stream {name} already exists") as refused:
        run_module("stream_restore", app(nats_standalone, path=str(path)))
    assert refused.value.result["existing"] == [name]
    assert client.snapshot_of(name) == after_publish

    skipped = run_module("stream_restore", app(nats_standalone, path=str(path), if_exists="skip"))
    assert not skipped["changed"]
    assert skipped["skipped_streams"] == [name]
    assert client.snapshot_of(name) == after_publish

    replaced = run_module("stream_restore", app(nats_standalone, path=str(path), if_exists="replace"))
    assert replaced["restored"][0]["action"] == "replaced"
    assert client.snapshot_of(name) == before


@pytest.mark.parametrize("damage", ["truncate", "bit-flip", "data-file-missing"])
def test_damaged_backup_is_refused_before_the_server_is_touched(damage, nats_standalone, tmp_path, unique_name):
    name = unique_name("DAMAGED")
    make_orders(nats_standalone, name, count=60)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))
    client = js(nats_standalone)
    client.delete_stream(name)
    data = path / "stream.tar.s2"
    raw = bytearray(data.read_bytes())
    if damage == "truncate":
        data.write_bytes(bytes(raw[: len(raw) // 2]))
        pattern = "truncated"
    elif damage == "bit-flip":
        raw[len(raw) // 2] ^= 0x10
        data.write_bytes(bytes(raw))
        pattern = "sha256"
    else:
        data.unlink()
        pattern = "incomplete"
    with pytest.raises(ModuleFailed, match=pattern):
        run_module("stream_restore", app(nats_standalone, path=str(path)))
    assert not client.exists(name)


def test_unfinished_restore_is_not_backed_up(nats_standalone, tmp_path, unique_name):
    name = unique_name("HALF")
    js(nats_standalone).create_stream(name, metadata={"natsops.jetstream.restore": "incomplete"})
    with pytest.raises(ModuleFailed, match=f"stream {name} is what an interrupted restore left"):
        run_module("stream_backup", app(nats_standalone, stream=name, path=str(tmp_path / name)))
    assert list(tmp_path.iterdir()) == []


def test_missing_stream_and_missing_names_are_errors(nats_standalone, tmp_path):
    with pytest.raises(ModuleFailed, match="stream NOPE_XYZ not found in this account"):
        run_module("stream_backup", app(nats_standalone, stream="NOPE_XYZ", path=str(tmp_path / "x")))
    with pytest.raises(ModuleFailed, match="streams not found in this account: NOPE_XYZ"):
        run_module("stream_backup", app(nats_standalone, streams=["NOPE_XYZ"], path=str(tmp_path / "y")))
    assert list(tmp_path.iterdir()) == []


def test_wrong_credentials_fail_fast_and_clearly(nats_standalone, tmp_path):
    args = app(nats_standalone, stream="ANY", path=str(tmp_path / "x"), password="wrong-pass")
    started = time.monotonic()
    with pytest.raises(ModuleFailed, match="refused the credentials") as failed:
        run_module("stream_backup", args)
    # Not a speed figure: a bound that catches retry loops and hangs.
    assert time.monotonic() - started < 10
    assert "wrong-pass" not in failed.value.result["msg"]
    with pytest.raises(ModuleFailed, match="refused the credentials"):
        run_module("stream_restore", app(nats_standalone, path=str(FIXTURE_DIR / "account-backup"), password="x"))


def test_unreachable_server_fails_fast_and_clearly(tmp_path, free_port):
    url = f"nats://127.0.0.1:{free_port}"
    args = {"servers": [url], "connect_timeout": 1.0}
    started = time.monotonic()
    with pytest.raises(ModuleFailed, match=f"cannot connect to NATS at {url}"):
        run_module("stream_backup", {**args, "stream": "X", "path": str(tmp_path / "x")})
    with pytest.raises(ModuleFailed, match=f"cannot connect to NATS at {url}"):
        run_module("stream_restore", {**args, "path": str(FIXTURE_DIR / "account-backup")})
    assert time.monotonic() - started < 15
    assert list(tmp_path.iterdir()) == []


# --- a server dies mid-way ----------------------------------------------------------------------


def fill(client: SyncJs, name: str, replicas: int = 1) -> None:
    """About 20 MB: with 1 KiB chunks a backup or restore of it lasts long enough to be cut short."""
    client.create_stream(name, num_replicas=replicas)
    client.publish(f"{name}.x", 5000, size=4000)


def test_server_killed_mid_backup_leaves_no_backup(fresh_standalone, tmp_path, unique_name):
    name = unique_name("KILLB")
    fill(js(fresh_standalone), name)
    path = tmp_path / name
    args = app(fresh_standalone, stream=name, path=str(path), chunk_size=1024, timeout=3.0)
    outcome = Outcome(lambda: run_module("stream_backup", args))
    outcome.wait_for(snapshot_started(tmp_path, name))
    fresh_standalone.kill()
    error = outcome.error(timeout=30)
    assert isinstance(error, ModuleFailed), f"the module ended before the kill took effect: {error}"
    assert f"backup of {name} failed" in str(error)
    assert not path.exists()
    assert leftovers(path) == []


def test_stream_leader_killed_mid_backup_in_a_cluster(fresh_cluster, tmp_path, unique_name):
    name = unique_name("KILLC")
    client = js(fresh_cluster)
    fill(client, name, replicas=3)
    leader = client.stream_info(name)["cluster"]["leader"]
    survivor = next(node for node in fresh_cluster.nodes if node.name != leader)
    path = tmp_path / name
    args = {**app(fresh_cluster), "servers": [survivor.url], "stream": name, "path": str(path)}
    args.update(chunk_size=1024, timeout=3.0)
    outcome = Outcome(lambda: run_module("stream_backup", args))
    outcome.wait_for(snapshot_started(tmp_path, name))
    fresh_cluster.node(leader).kill()
    error = outcome.error(timeout=60)
    assert isinstance(error, ModuleFailed), f"the module ended before the kill took effect: {error}"
    assert not path.exists()
    assert leftovers(path) == []


def test_server_killed_mid_restore_leaves_no_stream(fresh_cluster, tmp_path, unique_name):
    name = unique_name("KILLR")
    client = js(fresh_cluster)
    fill(client, name, replicas=3)
    path = tmp_path / name
    run_module("stream_backup", app(fresh_cluster, stream=name, path=str(path)))
    client.delete_stream(name)

    args = app(fresh_cluster, path=str(path), chunk_size=1024, timeout=3.0)
    outcome = Outcome(lambda: run_module("stream_restore", args))
    victim = wait_for_data(fresh_cluster.nodes)
    victim.kill()
    error = outcome.error(timeout=90)
    assert isinstance(error, ModuleFailed), f"the module ended before the kill took effect: {error}"
    assert "could not be removed" not in error.result["msg"]
    survivors = SyncJs([n.url for n in fresh_cluster.nodes if n is not victim], APP_USER, APP_PASSWORD)
    assert not survivors.exists(name)
    victim.start()
    fresh_cluster.wait_healthy()
    assert not js(fresh_cluster).exists(name)


def test_restore_cut_short_is_redone_by_the_next_run(fresh_standalone, tmp_path, unique_name):
    name = unique_name("KILLS")
    client = js(fresh_standalone)
    fill(client, name)
    before = client.snapshot_of(name)
    path = tmp_path / name
    run_module("stream_backup", app(fresh_standalone, stream=name, path=str(path)))
    client.delete_stream(name)

    args = app(fresh_standalone, path=str(path), chunk_size=1024, timeout=3.0, connect_timeout=1.0)
    outcome = Outcome(lambda: run_module("stream_restore", args))
    wait_for_data([fresh_standalone])
    fresh_standalone.kill()
    error = outcome.error(timeout=60)
    assert isinstance(error, ModuleFailed), f"the module ended before the kill took effect: {error}"
    # The server is gone: the module cannot clean up, and says what to do.
    assert f"delete it with 'nats stream rm {name}'" in error.result["msg"]

    fresh_standalone.start()
    leftover = client.stream_info(name)
    if leftover is None:
        # Servers before 2.15 create the stream only when all the data is in: nothing was left.
        assert run_module("stream_restore", args)["restored"][0]["action"] == "restored"
    else:
        # 2.15 keeps the half-made stream; with if_exists left at fail, the next run redoes it.
        assert leftover["config"]["metadata"]["natsops.jetstream.restore"] == "incomplete"
        planned = run_module("stream_restore", args, check_mode=True)
        assert planned["planned"][0]["action"] == "redo"
        redone = run_module("stream_restore", args)
        assert redone["restored"][0]["action"] == "redone"
        assert any("left unfinished" in warning for warning in redone["warnings"])
    assert client.snapshot_of(name) == before
    assert "natsops.jetstream.restore" not in client.stream_info(name)["config"].get("metadata", {})


# --- idempotence and check mode -----------------------------------------------------------------


def test_backup_idempotence_force_and_check_mode(nats_standalone, tmp_path, unique_name):
    name = unique_name("IDEM")
    make_orders(nats_standalone, name, count=30)
    path = tmp_path / name
    args = app(nats_standalone, stream=name, path=str(path))

    planned = run_module("stream_backup", args, check_mode=True)
    assert planned["changed"]
    assert planned["planned"][0]["stream"] == name
    assert "backups" not in planned
    assert not path.exists() and leftovers(path) == []

    first = run_module("stream_backup", args)
    second = run_module("stream_backup", args)
    assert first["changed"] and not second["changed"]
    assert "already exists" in second["msg"]
    assert not run_module("stream_backup", args, check_mode=True)["changed"]

    forced = run_module("stream_backup", {**args, "force": True})
    assert forced["changed"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["files"]["stream.tar.s2"]["sha256"] == forced["backups"][0]["sha256"]
    assert leftovers(path) == []


def test_backup_refuses_to_overwrite_something_else(nats_standalone, tmp_path, unique_name):
    name = unique_name("OTHER")
    make_orders(nats_standalone, name, count=10)
    path = tmp_path / name
    path.mkdir()
    (path / "precious.txt").write_text("keep me")
    with pytest.raises(ModuleFailed, match="exists and is not a finished stream backup"):
        run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))
    assert (path / "precious.txt").read_text() == "keep me"


def test_restore_check_mode_and_idempotence(nats_standalone, fresh_standalone, tmp_path, unique_name):
    name = unique_name("RIDEM")
    make_orders(nats_standalone, name, count=30)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))

    planned = run_module("stream_restore", app(fresh_standalone, path=str(path)), check_mode=True)
    assert planned["changed"]
    assert planned["planned"] == [{"stream": name, "action": "restore", "messages": 30, "exists": False}]
    assert not js(fresh_standalone).exists(name)

    first = run_module("stream_restore", app(fresh_standalone, path=str(path), if_exists="skip"))
    second = run_module("stream_restore", app(fresh_standalone, path=str(path), if_exists="skip"))
    assert first["changed"] and not second["changed"]
    checked = run_module("stream_restore", app(fresh_standalone, path=str(path), if_exists="skip"), check_mode=True)
    assert not checked["changed"]
    assert checked["planned"][0] == {"stream": name, "action": "skip", "messages": 30, "exists": True}


def test_restore_a_subset_of_an_account_backup(nats_standalone, nats_server_version):
    account = str(FIXTURE_DIR / "account-backup")
    args = app(nats_standalone, path=account, streams=["EV*"])
    if nats_server_version < (2, 15, 0):  # the fixture's V2 archive: refused before anything, even in check mode
        with pytest.raises(ModuleFailed, match="EVENTS: its backup is a V2 archive") as refused:
            run_module("stream_restore", args, check_mode=True)
        assert list(refused.value.result["refused"]) == ["EVENTS"]
    else:
        planned = run_module("stream_restore", args, check_mode=True)
        assert [p["stream"] for p in planned["planned"]] == ["EVENTS"]
    with pytest.raises(ModuleFailed, match=r"streams not found in the backup at .*: NOPE"):
        run_module("stream_restore", app(nats_standalone, path=account, streams=["NOPE"]), check_mode=True)


def test_account_backup_with_an_extra_top_level_file_is_refused(tmp_path, nats_standalone):
    account = tmp_path / "account"
    shutil.copytree(FIXTURE_DIR / "account-backup", account)
    (account / "README").write_text("extra")
    with pytest.raises(ModuleFailed, match="neither a stream backup"):
        run_module("stream_restore", app(nats_standalone, path=str(account)), check_mode=True)
