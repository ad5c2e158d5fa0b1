"""Every kind of stream an account holds, backed up and restored whole: memory-storage streams (2.15+)."""

from __future__ import annotations

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from support.config_modules import require_release
from support.hostile import app, js
from support.modules import ModuleFailed, run_module
from support.servers import NatsNode, older_server


def test_a_memory_stream_round_trips_with_its_consumers(
    nats_standalone, fresh_standalone, tmp_path, unique_name, nats_server_version
):
    require_release(nats_server_version, (2, 15))
    name = unique_name("MEMRT")
    source = js(nats_standalone)
    source.create_stream(name, storage="memory")
    source.publish(f"{name}.x", 500, size=300)
    source.create_durable(name, "READER", ack_policy="explicit")
    source.consume_and_ack(name, "READER", fetch=100, ack=60)
    before = source.snapshot_of(name)
    path = tmp_path / name

    backup = run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))
    assert backup["backups"][0]["messages"] == 500 and backup["skipped_streams"] == []
    restored = run_module("stream_restore", app(fresh_standalone, path=str(path)))

    assert restored["restored"][0]["backup_check"]["archive_format"] == "v2"
    target = js(fresh_standalone)
    assert target.stream_info(name)["config"]["storage"] == "memory"
    after = target.snapshot_of(name)
    assert {key: after[key] for key in ("digest", "messages", "first_seq", "last_seq")} == {
        key: before[key] for key in ("digest", "messages", "first_seq", "last_seq")
    }
    # A V2 archive keeps each consumer's ack floor; what was delivered but not acked is delivered again.
    assert after["consumers"]["READER"][1] == before["consumers"]["READER"][1]


def test_a_memory_stream_restored_to_file_storage_survives_a_restart(
    nats_standalone, fresh_standalone, tmp_path, unique_name, nats_server_version
):
    require_release(nats_server_version, (2, 15))
    name = unique_name("MEMTOFILE")
    source = js(nats_standalone)
    source.create_stream(name, storage="memory")
    source.publish(f"{name}.x", 200)
    before = source.snapshot_of(name)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))

    restored = run_module("stream_restore", app(fresh_standalone, path=str(path), storage="file"))
    assert restored["restored"][0]["verification"]["match"]
    fresh_standalone.restart()
    target = js(fresh_standalone)
    assert target.stream_info(name)["config"]["storage"] == "file"
    assert target.snapshot_of(name) == before


def test_a_file_stream_restored_to_memory_storage(
    nats_standalone, fresh_standalone, tmp_path, unique_name, nats_server_version
):
    name = unique_name("FILETOMEM")
    source = js(nats_standalone)
    source.create_stream(name)
    source.publish(f"{name}.x", 200)
    before = source.snapshot_of(name)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))

    if nats_server_version < (2, 15):
        # A V1 archive is the file store's own blocks: a memory stream restored from it would be empty.
        with pytest.raises(ModuleFailed) as refused:
            run_module("stream_restore", app(fresh_standalone, path=str(path), storage="memory"))
        assert f"{name}: its backup is a V1 archive (the file store's own files" in refused.value.result["msg"]
        assert js(fresh_standalone).stream_info(name) is None
        return
    run_module("stream_restore", app(fresh_standalone, path=str(path), storage="memory"))
    target = js(fresh_standalone)
    assert target.stream_info(name)["config"]["storage"] == "memory"
    assert target.snapshot_of(name) == before


@pytest.fixture
def server_2_14(tmp_path):
    node = NatsNode("old", tmp_path / "old", binary=older_server("2.14.6")).start()
    yield node
    node.kill()


def test_a_memory_stream_is_refused_by_name_where_the_server_cannot_snapshot_it(server_2_14, tmp_path):
    client = js(server_2_14)
    client.create_stream("MEMOLD", storage="memory")
    client.create_stream("FILEOLD")
    with pytest.raises(ModuleFailed) as refused:
        run_module("stream_backup", app(server_2_14, stream="MEMOLD", path=str(tmp_path / "one")))
    assert (
        "stream MEMOLD uses memory storage, which nats-server before 2.15 cannot snapshot"
        in refused.value.result["msg"]
    )
    assert "upgrade the server" in refused.value.result["msg"]
    assert not (tmp_path / "one").exists()

    many = run_module("stream_backup", app(server_2_14, streams=["all"], path=str(tmp_path / "all")))
    assert [backup["stream"] for backup in many["backups"]] == ["FILEOLD"]
    assert many["skipped_streams"] == [{"stream": "MEMOLD", "reason": "memory storage"}]
    assert any("MEMOLD uses memory storage" in warning for warning in many["warnings"])


def consumer_half_way(client, name: str) -> None:
    """A stream of 500 messages whose consumer READER has had 100 delivered and acked the first 60."""
    client.create_stream(name)
    client.publish(f"{name}.x", 500)
    client.create_durable(name, "READER", ack_policy="explicit", ack_wait=3_600_000_000_000)
    client.consume_and_ack(name, "READER", fetch=100, ack=60)


def test_what_each_consumer_delivers_again_is_reported_and_it_can_come_back_paused(
    nats_standalone, fresh_standalone, tmp_path, unique_name, nats_server_version
):
    require_release(nats_server_version, (2, 11))
    name = unique_name("PAUSED")
    consumer_half_way(js(nats_standalone), name)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))

    restored = run_module("stream_restore", app(fresh_standalone, path=str(path), pause_consumers="1h"))
    entry = restored["restored"][0]
    target = js(fresh_standalone)
    info = target.request(f"CONSUMER.INFO.{name}.READER")
    assert info["paused"] and entry["paused_consumers"] == {"READER": info["config"]["pause_until"]}
    # A standalone restore keeps the consumer waiting for the 40 acks, which no application will send now.
    again = {"from_seq": 61, "to_seq": 100, "unacked_at_backup": 40, "when": "after ack_wait"}
    assert entry["redeliveries"] == {"READER": again}
    assert any(
        f"{name}: consumer READER delivers again, after ack_wait, what it had delivered between sequences 61 and 100 "
        "(40 messages unacked at backup time); it is paused until" in warning
        for warning in restored["warnings"]
    )
    # Paused, it delivers nothing; resumed, it goes on where it was.
    assert target._run(fetch_one, name, "READER") == []
    target.request(f"CONSUMER.PAUSE.{name}.READER", {})
    assert [message.metadata.sequence.stream for message in target._run(fetch_one, name, "READER")] == [101]


async def fetch_one(nc, stream: str, durable: str) -> list:
    subscription = await nc.jetstream(timeout=5).pull_subscribe_bind(durable, stream)
    try:
        return await subscription.fetch(1, timeout=1)
    except NatsTimeoutError:
        return []


def test_pausing_restored_consumers_is_refused_where_the_server_cannot(tmp_path, nats_standalone, unique_name):
    name = unique_name("NOPAUSE")
    consumer_half_way(js(nats_standalone), name)
    path = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))
    old = NatsNode("old210", tmp_path / "old210", binary=older_server("2.10.26")).start()
    try:
        with pytest.raises(ModuleFailed) as refused:
            run_module("stream_restore", app(old, path=str(path), pause_consumers="1h"))
        assert "pause_consumers needs nats-server 2.11 or later, and the target runs" in refused.value.result["msg"]
        assert js(old).stream_info(name) is None
    finally:
        old.kill()


def test_a_standalone_server_restores_one_stream_at_a_time(nats_standalone, fresh_standalone, tmp_path, unique_name):
    """nats-server crashes restoring several streams at once into a standalone server (an unlocked read of the
    account's storage reservation): whatever parallel says, it gets one at a time, and is told so."""
    prefix = unique_name("ONEBYONE")
    source = js(nats_standalone)
    for index in range(3):
        source.create_stream(f"{prefix}_{index}")
        source.publish(f"{prefix}_{index}.x", 5)
    path = tmp_path / "account"
    run_module("stream_backup", app(nats_standalone, streams=[f"{prefix}_*"], path=str(path)))

    restored = run_module("stream_restore", app(fresh_standalone, path=str(path), parallel=4))
    assert len(restored["restored"]) == 3
    assert any("restoring one stream at a time (parallel: 4 asked)" in warning for warning in restored["warnings"])
    again = run_module("stream_restore", app(fresh_standalone, path=str(path), if_exists="skip"))
    assert again["warnings"] == []  # nothing asked, nothing to say
