"""Key-value and object store buckets, backed up and restored as buckets: the backup records each bucket's
view, the restore reads the restored bucket and compares; the tests compare through nats-py's own APIs."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from support.buckets import fill_kv, fill_objects, kv_contents, object_contents
from support.hostile import app, js
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER
from support.streams import connect


def test_a_kv_bucket_round_trips_with_history_deletes_and_purges(
    nats_standalone, fresh_standalone, tmp_path, unique_name
):
    bucket = unique_name("cfg")
    fill_kv(nats_standalone, bucket)
    before = kv_contents(nats_standalone, bucket)
    assert {entry[2] for entry in before} == {"PUT", "DEL", "PURGE"}
    path = tmp_path / "kv"

    backup = run_module("stream_backup", app(nats_standalone, streams=[f"KV_{bucket}"], path=str(path)))
    assert backup["backups"][0]["bucket"] == {"kind": "kv", "name": bucket}
    recorded = json.loads((path / f"KV_{bucket}" / "manifest.json").read_text())["bucket"]
    assert recorded["view"]["keys"] == 20 and recorded["view"]["deletes"] == 1 and recorded["view"]["purges"] == 1

    restored = run_module("stream_restore", app(fresh_standalone, path=str(path)))
    entry = restored["restored"][0]["bucket"]
    assert entry["kind"] == "kv" and entry["name"] == bucket and entry["compared_with_backup"]
    assert entry["view"] == recorded["view"]
    assert kv_contents(fresh_standalone, bucket) == before
    # The reads left no consumer behind, on either side.
    for server in (nats_standalone, fresh_standalone):
        assert js(server).stream_info(f"KV_{bucket}")["state"]["consumer_count"] == 0


def test_an_object_store_round_trips_with_every_digest_checked(
    nats_standalone, fresh_standalone, tmp_path, unique_name
):
    bucket = unique_name("files")
    fill_objects(nats_standalone, bucket, os.urandom(1_000_000))  # 8 chunks of 128 KiB
    before = object_contents(nats_standalone, bucket)
    path = tmp_path / "obj"

    backup = run_module("stream_backup", app(nats_standalone, stream=f"OBJ_{bucket}", path=str(path)))
    assert backup["backups"][0]["bucket"] == {"kind": "object", "name": bucket}
    restored = run_module("stream_restore", app(fresh_standalone, path=str(path)))

    entry = restored["restored"][0]["bucket"]
    assert entry["view"]["objects"] == 2 and entry["view"]["deleted"] == 1 and entry["compared_with_backup"]
    assert entry["view"]["bytes"] == 1_000_000 + len(b"a small object")
    assert object_contents(fresh_standalone, bucket) == before


def test_a_restored_bucket_that_differs_from_its_backup_fails_and_is_removed(
    nats_standalone, fresh_standalone, tmp_path, unique_name
):
    bucket = unique_name("drift")
    fill_kv(nats_standalone, bucket, keys=3)
    path = tmp_path / "kv"
    run_module("stream_backup", app(nats_standalone, stream=f"KV_{bucket}", path=str(path)))
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["bucket"]["view"]["digest"] = "0" * 64  # what the backup says the bucket held is not what it holds
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(ModuleFailed) as failed:
        run_module("stream_restore", app(fresh_standalone, path=str(path)))
    assert (
        f"the restored key-value bucket {bucket} does not match its backup (digest: expected"
        in failed.value.result["msg"]
    )
    assert js(fresh_standalone).stream_info(f"KV_{bucket}") is None
    # Without the check the same backup restores.
    done = run_module("stream_restore", app(fresh_standalone, path=str(path), verify_buckets=False))
    assert done["restored"][0]["bucket"] == {"kind": "kv", "name": bucket}


def test_an_object_whose_data_does_not_match_its_digest_fails_the_restore(
    nats_standalone, fresh_standalone, tmp_path, unique_name
):
    bucket = unique_name("bent")
    fill_objects(nats_standalone, bucket, os.urandom(300_000))
    # Damage one chunk at the source, as a faulty writer would: the metadata's digest no longer matches.
    source = js(nats_standalone)
    stream = f"OBJ_{bucket}"
    chunk = source.request(f"STREAM.MSG.GET.{stream}", {"next_by_subj": f"$O.{bucket}.C.>", "seq": 1})["message"]
    source.request(f"STREAM.MSG.DELETE.{stream}", {"seq": chunk["seq"], "no_erase": True})

    async def republish() -> None:
        nc = await connect(list(nats_standalone.urls), APP_USER, APP_PASSWORD)
        await nc.jetstream().publish(chunk["subject"], b"not the original chunk")
        await nc.close()

    asyncio.run(republish())
    path = tmp_path / "obj"
    run_module("stream_backup", app(nats_standalone, stream=stream, path=str(path)))

    with pytest.raises(ModuleFailed) as failed:
        run_module("stream_restore", app(fresh_standalone, path=str(path)))
    assert "objects whose data does not match their digest: big.bin" in failed.value.result["msg"]
    assert js(fresh_standalone).stream_info(stream) is None


def test_a_bucket_that_changes_while_it_is_read_gets_no_view(nats_standalone, unique_name):
    """The view is kept only if it describes the snapshot: the stream must not have moved since."""
    from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
    from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.buckets import bucket_of, recorded_view

    bucket = unique_name("moving")
    fill_kv(nats_standalone, bucket, keys=2)
    info = js(nats_standalone).stream_info(f"KV_{bucket}")
    as_snapshotted = {**info["state"], "last_seq": info["state"]["last_seq"] - 1}  # one write since the snapshot

    async def record(state: dict) -> dict:
        nc = await connect(list(nats_standalone.urls), APP_USER, APP_PASSWORD)
        try:
            return await recorded_view(JetStreamApi(nc), bucket_of(info["config"]), state)
        finally:
            await nc.close()

    assert asyncio.run(record(info["state"]))["view"]["keys"] == 3  # key.0, key.1 (deleted), key.2
    moved = asyncio.run(record(as_snapshotted))
    assert moved["view"] is None and "changed while it was backed up" in moved["why"]
