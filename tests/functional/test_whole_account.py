"""An account with every kind of stream, backed up with ``streams: all`` and restored into a new server:
every message, key revision and object digest compared, sources and mirrors following again exactly,
and consumers coming back paused."""

from __future__ import annotations

import os

import pytest
from functional.test_sources_mirrors import wait_for_counts
from support.buckets import fill_kv, fill_objects, kv_contents, object_contents
from support.hostile import app, js
from support.modules import run_module
from support.servers import NatsNode


@pytest.fixture
def target(tmp_path):
    node = NatsNode("target", tmp_path / "target").start()
    yield node
    node.kill()


def test_an_account_of_every_kind_of_stream_comes_back_whole(fresh_standalone, target, tmp_path, nats_server_version):
    source = js(fresh_standalone)
    source.create_stream("ORDERS", subjects=["orders.>"])
    source.publish("orders.new", 300, size=200, with_headers_every=3)
    source.create_durable("ORDERS", "billing", ack_wait=3_600_000_000_000)
    source.consume_and_ack("ORDERS", "billing", fetch=120, ack=100)
    source.create_stream("ORDERS_MIRROR", subjects=[], mirror={"name": "ORDERS"})
    source.create_stream("ALL_ORDERS", subjects=[], sources=[{"name": "ORDERS", "filter_subject": "orders.new"}])
    if nats_server_version >= (2, 15):
        source.create_stream("SESSIONS", subjects=["sessions.>"], storage="memory")
        source.publish("sessions.login", 100)
    fill_kv(fresh_standalone, "settings")
    fill_objects(fresh_standalone, "invoices", os.urandom(700_000))
    wait_for_counts(source, {"ORDERS_MIRROR": 300, "ALL_ORDERS": 300}, settle=0)
    streams = [name for name in ("ORDERS", "ORDERS_MIRROR", "ALL_ORDERS", "SESSIONS") if source.exists(name)]
    before = {name: source.snapshot_of(name) for name in streams}
    path = tmp_path / "account"

    backup = run_module("stream_backup", app(fresh_standalone, streams=["all"], path=str(path), parallel=4))
    assert sorted(entry["stream"] for entry in backup["backups"]) == sorted([*streams, "KV_settings", "OBJ_invoices"])
    assert backup["skipped_streams"] == []
    settings, invoices = kv_contents(fresh_standalone, "settings"), object_contents(fresh_standalone, "invoices")

    pause = {"pause_consumers": "1h"} if nats_server_version >= (2, 11) else {}
    restored = run_module("stream_restore", app(target, path=str(path), parallel=4, **pause))

    labels = {entry["stream"]: entry["label"] for entry in restored["restored"]}
    assert labels["KV_settings"] == "key-value bucket settings"
    assert labels["OBJ_invoices"] == "object store bucket invoices"
    assert labels["ORDERS"] == "stream ORDERS"
    restored_target = js(target)
    for name in streams:
        assert restored_target.snapshot_of(name) == before[name], name
    assert kv_contents(target, "settings") == settings
    assert object_contents(target, "invoices") == invoices
    if pause:
        assert restored_target.request("CONSUMER.INFO.ORDERS.billing")["paused"]
    # The mirror and the source follow the restored origin again, without replaying it.
    restored_target.publish("orders.new", 10)
    assert wait_for_counts(restored_target, {"ORDERS_MIRROR": 310, "ALL_ORDERS": 310}) == {
        "ORDERS_MIRROR": 310,
        "ALL_ORDERS": 310,
    }
