"""natsops.jetstream.jetstream_config: the configuration-only export and import, against real nats-server processes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from support.config_modules import apply, consumer_info, js, refused, stream_config, without_server_metadata

SECOND = 1_000_000_000


def configurations(server: Any, streams: list[str]) -> dict[str, Any]:
    """Every stream's and consumer's configuration, without the server's own metadata."""
    found: dict[str, Any] = {}
    for stream in streams:
        found[stream] = without_server_metadata(stream_config(server, stream))
        listed = js(server).request(f"CONSUMER.LIST.{stream}")
        for consumer in listed.get("consumers") or []:
            if not consumer["config"].get("durable_name"):
                continue  # ephemeral: not configuration
            found[f"{stream} > {consumer['name']}"] = without_server_metadata(consumer["config"])
    return found


def wipe(server: Any, streams: list[str]) -> None:
    for stream in streams:
        apply("stream", server, name=stream, state="absent")


@pytest.mark.cluster
def test_export_wipe_import_gives_back_the_same_configuration_on_a_cluster(nats_cluster, unique_name, tmp_path):
    prefix = unique_name("CFG")
    orders, cache, mirror, merged = (f"{prefix}_{what}" for what in ("ORDERS", "CACHE", "MIRROR", "MERGED"))
    apply(
        "stream",
        nats_cluster,
        name=orders,
        subjects=[f"{orders}.>"],
        replicas=3,
        max_age="7d",
        max_bytes="64MB",
        duplicate_window="5m",
        deny_delete=True,
        allow_direct=True,
        metadata={"owner": "shop"},
    )
    apply(
        "stream",
        nats_cluster,
        name=cache,
        subjects=[f"{cache}.>"],
        storage="memory",
        placement={"cluster": nats_cluster.name},
    )
    apply("stream", nats_cluster, name=mirror, mirror={"name": orders}, replicas=3)
    apply("stream", nats_cluster, name=merged, sources=[{"name": orders, "filter_subject": f"{orders}.new"}])
    apply("consumer", nats_cluster, stream=orders, name="SHIP", backoff=["1s", "1m"], max_deliver=4, replicas=3)
    apply(
        "consumer",
        nats_cluster,
        stream=orders,
        name="AUDIT",
        deliver_subject=f"audit.{orders}",
        idle_heartbeat="10s",
        flow_control=True,
    )
    js(nats_cluster).request(  # an ephemeral consumer: not configuration, left out
        f"CONSUMER.CREATE.{orders}",
        {"stream_name": orders, "config": {"ack_policy": "none", "inactive_threshold": 60 * SECOND}},
    )
    js(nats_cluster).publish(f"{orders}.new", 10)
    streams = [cache, merged, mirror, orders]
    before = configurations(nats_cluster, streams)
    path = tmp_path / "export"

    exported = apply("jetstream_config", nats_cluster, state="exported", path=str(path), streams=[f"{prefix}_*"])
    assert exported["changed"] and exported["streams"] == sorted(streams)
    assert exported["consumers"] == [f"{orders} > AUDIT", f"{orders} > SHIP"]
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [f"stream_{name}.json" for name in streams]
        + [f"stream_{orders}_consumer_AUDIT.json", f"stream_{orders}_consumer_SHIP.json"]
    )
    assert len(exported["skipped"]) == 1 and "ephemeral" in exported["skipped"][0]
    again = apply("jetstream_config", nats_cluster, state="exported", path=str(path), streams=[f"{prefix}_*"])
    assert again["changed"] is False

    wipe(nats_cluster, streams)
    planned = apply("jetstream_config", nats_cluster, check_mode=True, state="imported", path=str(path))
    assert planned["changed"]
    assert {entry["name"]: entry["action"] for entry in planned["streams"]} == dict.fromkeys(streams, "create")
    assert [(c["stream"], c["name"], c["action"]) for c in planned["consumers"]] == [
        (orders, "AUDIT", "create"),
        (orders, "SHIP", "create"),
    ]
    assert len(planned["diff"]) == 6
    assert all(stream_config(nats_cluster, name) is None for name in streams)

    imported = apply("jetstream_config", nats_cluster, state="imported", path=str(path))
    assert imported["changed"]
    assert configurations(nats_cluster, streams) == before
    assert js(nats_cluster).stream_info(orders)["state"]["messages"] == 0  # configuration only

    unchanged = apply("jetstream_config", nats_cluster, state="imported", path=str(path))
    assert unchanged["changed"] is False
    assert {entry["action"] for entry in unchanged["streams"] + unchanged["consumers"]} == {"none"}
    assert (
        apply("jetstream_config", nats_cluster, state="exported", path=str(path), streams=[f"{prefix}_*"])["changed"]
        is False
    )
    wipe(nats_cluster, streams)  # the shared cluster keeps no mirror or source of ours


def export_two_streams(server: Any, prefix: str, path: Path) -> tuple[str, str]:
    first, second = f"{prefix}_A", f"{prefix}_B"
    apply("stream", server, name=first, subjects=[f"{first}.>"], max_msgs=100)
    apply("stream", server, name=second, subjects=[f"{second}.>"])
    apply("consumer", server, stream=second, name="C", max_deliver=3)
    apply("jetstream_config", server, state="exported", path=str(path), streams=[first, second])
    return first, second


def test_a_tampered_export_is_refused_before_anything_changes(nats_standalone, unique_name, tmp_path):
    path = tmp_path / "export"
    first, second = export_two_streams(nats_standalone, unique_name("TAMPER"), path)
    wipe(nats_standalone, [first, second])
    entry_file = path / f"stream_{second}_consumer_C.json"
    entry = json.loads(entry_file.read_text())
    payload = json.loads(base64.b64decode(entry["configuration"]))
    payload["config"]["max_deliver"] = 99  # edited without updating the checksum
    entry["configuration"] = base64.b64encode(json.dumps(payload, indent=2).encode()).decode()
    entry_file.write_text(json.dumps(entry, indent=2))

    for check_mode in (True, False):
        failure = refused("jetstream_config", nats_standalone, check_mode=check_mode, state="imported", path=str(path))
        assert f"stream_{second}_consumer_C.json: checksum mismatch" in failure["msg"]
        assert "nothing was imported" in failure["msg"]
    assert stream_config(nats_standalone, first) is None and stream_config(nats_standalone, second) is None


def test_existing_streams_are_updated_only_with_update_streams(nats_standalone, unique_name, tmp_path):
    path = tmp_path / "export"
    first, second = export_two_streams(nats_standalone, unique_name("UPD"), path)
    apply("stream", nats_standalone, name=first, max_msgs=5)
    apply("stream", nats_standalone, name=second, state="absent")

    failure = refused("jetstream_config", nats_standalone, state="imported", path=str(path))
    assert f"stream {first} (max_msgs)" in failure["msg"] and "update_streams: true" in failure["msg"]
    assert stream_config(nats_standalone, second) is None  # refused as a whole: nothing was created

    planned = apply(
        "jetstream_config", nats_standalone, check_mode=True, state="imported", path=str(path), update_streams=True
    )
    by_name = {entry["name"]: entry for entry in planned["streams"]}
    assert by_name[first]["changes"] == {"max_msgs": {"before": 5, "after": 100}}
    assert by_name[second]["action"] == "create"
    assert stream_config(nats_standalone, first)["max_msgs"] == 5

    applied = apply("jetstream_config", nats_standalone, state="imported", path=str(path), update_streams=True)
    assert applied["changed"]
    assert stream_config(nats_standalone, first)["max_msgs"] == 100
    assert consumer_info(nats_standalone, second, "C")["config"]["max_deliver"] == 3

    # A difference the server cannot apply in place fails before anything changes, even with update_streams.
    apply("stream", nats_standalone, name=first, storage="memory", max_msgs=5, recreate=True)
    failure = refused("jetstream_config", nats_standalone, state="imported", path=str(path), update_streams=True)
    assert f"stream {first}: cannot change storage from memory to file" in failure["msg"]
    assert stream_config(nats_standalone, first)["max_msgs"] == 5


def test_a_failed_import_undoes_what_it_created(nats_standalone, unique_name, tmp_path):
    path = tmp_path / "export"
    first, second = export_two_streams(nats_standalone, unique_name("UNDO"), path)
    wipe(nats_standalone, [first, second])
    blocker = f"{second}_BLOCKER"
    apply("stream", nats_standalone, name=blocker, subjects=[f"{second}.x"])  # takes a subject of the second

    failure = refused("jetstream_config", nats_standalone, state="imported", path=str(path))
    assert f"the import stopped at stream {second}" in failure["msg"]
    assert "subjects" in failure["msg"]
    assert f"undone: stream {first} (create)" in failure["msg"]
    assert stream_config(nats_standalone, first) is None and stream_config(nats_standalone, second) is None


def test_export_refuses_a_path_that_is_not_an_export_and_check_mode_writes_nothing(
    nats_standalone, unique_name, tmp_path
):
    name = unique_name("EXP")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"])
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    failure = refused("jetstream_config", nats_standalone, state="exported", path=str(occupied), streams=[name])
    assert "not a configuration export" in failure["msg"]
    assert sorted(p.name for p in occupied.iterdir()) == ["notes.txt"]

    path = tmp_path / "export"
    planned = apply(
        "jetstream_config", nats_standalone, check_mode=True, state="exported", path=str(path), streams=[name]
    )
    assert planned["changed"] and planned["files"] == [f"stream_{name}.json"] and not path.exists()
    apply("jetstream_config", nats_standalone, state="exported", path=str(path), streams=[name])

    apply("stream", nats_standalone, name=name, max_age="1h")
    changed = apply("jetstream_config", nats_standalone, state="exported", path=str(path), streams=[name])
    assert changed["changed"]
    (diff,) = changed["diff"]
    assert diff["before_header"] == f"stream_{name}.json"
    assert (diff["before"]["max_age"], diff["after"]["max_age"]) == (0, 3600 * SECOND)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "occupied"]  # no temporary leftovers
    missing = refused("jetstream_config", nats_standalone, state="exported", path=str(path), streams=["NO_SUCH_STREAM"])
    assert "streams not found in this account: NO_SUCH_STREAM" in missing["msg"]


def test_imports_what_the_nats_cli_wrote(nats_standalone, unique_name, tmp_path):
    """A file as jsm.go writes it: Go escapes '>' in JSON; the checksum covers those bytes."""
    name = unique_name("LEGACY")
    configuration = (
        json.dumps(
            {"name": name, "subjects": [f"{name}.>"], "retention": "limits", "storage": "file", "num_replicas": 1},
            indent=2,
        )
        .replace(">", "\\u003e")
        .encode()
    )
    entry = {
        "type": "stream",
        "time": "2021-03-01T10:00:00Z",
        "configuration": base64.b64encode(configuration).decode(),
        "checksum": hashlib.sha256(configuration).hexdigest(),
    }
    (tmp_path / f"stream_{name}.json").write_text(json.dumps(entry, indent=2))
    result = apply("jetstream_config", nats_standalone, state="imported", path=str(tmp_path))
    assert result["streams"] == [{"name": name, "action": "create", "changes": {}}]
    assert stream_config(nats_standalone, name)["subjects"] == [f"{name}.>"]
