"""The legacy ``nats backup`` configuration layout: files, checksums, damaged and foreign directories."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.transfer import config_export
from ansible_collections.natsops.jetstream.plugins.module_utils.transfer.config_transfer import choose_streams, select

STREAM = {"name": "ORDERS", "subjects": ["orders.>"], "storage": "file", "metadata": {"_nats.ver": "2.15.1"}}
CONSUMER = {"durable_name": "SHIP", "name": "SHIP", "ack_policy": "explicit", "filter_subject": "orders.new"}


def go_entry(kind: str, payload: dict) -> bytes:
    """A file as jsm.go's backupSerialize writes it: Go escapes <, > and & in JSON, and adds no newline."""
    configuration = json.dumps(payload, indent=2).replace(">", "\\u003e").encode()
    entry = {
        "type": kind,
        "time": "2021-03-01T10:00:00Z",
        "configuration": base64.b64encode(configuration).decode(),
        "checksum": hashlib.sha256(configuration).hexdigest(),
    }
    return json.dumps(entry, indent=2).encode()


def sample_export() -> config_export.ConfigExport:
    export = config_export.ConfigExport()
    export.add_stream(STREAM)
    export.add_consumer("ORDERS", CONSUMER)
    export.add_consumer("ORDERS", {"name": "eph1", "ack_policy": "none"})
    return export


def test_files_are_named_and_encoded_as_nats_backup_does(tmp_path):
    export = sample_export()
    files = export.files()
    assert sorted(files) == ["stream_ORDERS.json", "stream_ORDERS_consumer_SHIP.json"]
    assert export.skipped == ["consumer ORDERS > eph1: ephemeral"]
    # The server's own metadata is not configuration.
    assert "metadata" not in files["stream_ORDERS.json"][1]
    assert files["stream_ORDERS_consumer_SHIP.json"] == (
        "consumer",
        {"name": "SHIP", "stream": "ORDERS", "config": CONSUMER},
    )

    when = datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
    config_export.write_export(tmp_path / "cfg", files, when)
    written = json.loads((tmp_path / "cfg" / "stream_ORDERS.json").read_text())
    assert list(written) == ["type", "time", "configuration", "checksum"]
    assert written["type"] == "stream" and written["time"] == "2025-01-31T12:00:00Z"
    decoded = base64.b64decode(written["configuration"])
    assert hashlib.sha256(decoded).hexdigest() == written["checksum"]
    assert json.loads(decoded) == files["stream_ORDERS.json"][1]
    assert ((tmp_path / "cfg" / "stream_ORDERS.json").stat().st_mode & 0o777) == config_export.FILE_MODE

    back = config_export.read_export(tmp_path / "cfg")
    assert back.streams == {"ORDERS": files["stream_ORDERS.json"][1]}
    assert back.consumers == {("ORDERS", "SHIP"): CONSUMER}
    assert config_export.existing_export(tmp_path / "cfg") == files


def test_reads_what_jsm_go_writes(tmp_path):
    (tmp_path / "stream_ORDERS.json").write_bytes(go_entry("stream", {"name": "ORDERS", "subjects": ["orders.>"]}))
    (tmp_path / "stream_ORDERS_consumer_SHIP.json").write_bytes(
        go_entry("consumer", {"name": "SHIP", "stream": "ORDERS", "config": CONSUMER})
    )
    (tmp_path / "stream_template_T.json").write_bytes(go_entry("stream_template", {"name": "T"}))
    export = config_export.read_export(tmp_path)
    assert export.streams["ORDERS"]["subjects"] == ["orders.>"]
    assert export.consumers[("ORDERS", "SHIP")]["filter_subject"] == "orders.new"
    assert export.skipped == ["stream_template_T.json: stream templates no longer exist (nats-server 2.10+)"]


def test_every_damaged_file_is_named_and_nothing_is_read(tmp_path):
    config_export.write_export(tmp_path / "cfg", sample_export().files())
    directory = tmp_path / "cfg"
    consumer_file = directory / "stream_ORDERS_consumer_SHIP.json"
    entry = json.loads(consumer_file.read_text())
    edited = json.loads(base64.b64decode(entry["configuration"]))
    edited["config"]["ack_policy"] = "none"
    entry["configuration"] = base64.b64encode(json.dumps(edited, indent=2).encode()).decode()
    consumer_file.write_text(json.dumps(entry))
    (directory / "stream_OTHER.json").write_text("{not json")
    with pytest.raises(NatsOpsError) as damaged:
        config_export.read_export(directory)
    assert "nothing was imported" in damaged.value.msg
    assert "stream_ORDERS_consumer_SHIP.json: checksum mismatch" in damaged.value.msg
    assert "stream_OTHER.json is not readable JSON" in damaged.value.msg


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"type": "stream", "configuration": "!!!", "checksum": ""}, "not valid base64"),
        ({"type": "stream"}, "not a configuration backup entry"),
        ([1, 2], "not a configuration backup entry"),
    ],
)
def test_foreign_json_is_refused(tmp_path, content, message):
    (tmp_path / "stream_X.json").write_text(json.dumps(content))
    with pytest.raises(NatsOpsError, match=message):
        config_export.read_export(tmp_path)


def test_unknown_types_and_empty_directories_are_refused(tmp_path):
    with pytest.raises(NatsOpsError, match=r"no \.json files"):
        config_export.read_export(tmp_path)
    (tmp_path / "stream_X.json").write_bytes(go_entry("kv", {"name": "X"}))
    with pytest.raises(NatsOpsError, match="unknown entry type 'kv'"):
        config_export.read_export(tmp_path)


def test_a_path_that_holds_anything_else_is_not_overwritten(tmp_path):
    assert config_export.existing_export(tmp_path / "absent") is None
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NatsOpsError, match="is not a configuration export"):
        config_export.existing_export(tmp_path)
    single = tmp_path / "file"
    single.write_text("x")
    with pytest.raises(NatsOpsError, match="is not a configuration export"):
        config_export.existing_export(single)


def test_a_damaged_earlier_export_reads_as_different(tmp_path):
    (tmp_path / "stream_A.json").write_text("garbage")
    assert config_export.existing_export(tmp_path) == {"stream_A.json": None}


def test_choosing_streams():
    names = ["ORDERS", "ORDERS_EU", "EVENTS"]
    assert choose_streams(names, ["all"], "x") == ["EVENTS", "ORDERS", "ORDERS_EU"]
    assert choose_streams(names, ["ORDERS*"], "x") == ["ORDERS", "ORDERS_EU"]
    with pytest.raises(NatsOpsError, match="streams not found in the export: NOPE"):
        choose_streams(names, ["ORDERS", "NOPE"], "the export")


def test_selecting_part_of_an_export():
    export = sample_export()
    export.add_stream({"name": "EVENTS"})
    export.consumers[("GONE", "C")] = {"durable_name": "C"}
    only = select(export, ["EVENTS"], consumers=True)
    assert list(only.streams) == ["EVENTS"] and only.consumers == {}
    everything = select(export, ["all"], consumers=True)
    assert set(everything.consumers) == {("ORDERS", "SHIP"), ("GONE", "C")}
    assert select(export, ["all"], consumers=False).consumers == {}
