"""Hostile input refused locally, by name, before any server is asked, and with nothing changed.

Each case names the module, the bad arguments and the words the refusal must hold; every case also
proves the refusal came before the server was asked (it is immediate) and that nothing changed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.transfer.config_export import decode_entry, encode_entry
from support.fixtures import NATSCLI_FIXTURE
from support.hostile import app, js
from support.modules import ModuleFailed, run_module

NAME_CASES = {
    "dot": ("ORDERS.x", "holds a dot"),
    "star": ("ORDERS*", "holds a '*' wildcard"),
    "gt": ("ORD>", "holds a '>' wildcard"),
    "space": ("MY ORDERS", "holds whitespace"),
    "tab": ("MY\tORDERS", "holds whitespace"),
    "slash": ("a/b", "holds a '/'"),
    "backslash": ("a\\b", "holds a '\\'"),
    "control": ("ORD\x07", "control character"),
    "too-long": ("S" * 256, "has 256 characters"),
    "empty": ("", "it is empty"),
}


@pytest.fixture(scope="module")
def existing(nats_standalone):
    """A stream and consumer that must survive every refusal below."""
    client = js(nats_standalone)
    client.create_stream("HOSTILE_INPUT")
    client.publish("HOSTILE_INPUT.x", 10, size=50)
    client.create_durable("HOSTILE_INPUT", "C1")
    return client.snapshot_of("HOSTILE_INPUT")


def refused(module, args, *words, check_mode=False):
    started = time.monotonic()
    with pytest.raises(ModuleFailed) as failed:
        run_module(module, args, check_mode=check_mode)
    msg = failed.value.result["msg"]
    for word in words:
        assert word in msg, msg
    # Not a speed figure: refused before a server was asked, not after a timeout.
    assert time.monotonic() - started < 3, msg
    return failed.value.result


def unchanged(server, existing):
    assert js(server).snapshot_of("HOSTILE_INPUT") == existing


@pytest.mark.parametrize("case", sorted(NAME_CASES))
def test_bad_stream_names_for_a_backup(case, nats_standalone, existing, tmp_path):
    name, words = NAME_CASES[case]
    path = tmp_path / "b"
    refused("stream_backup", app(nats_standalone, stream=name, path=str(path)), "stream name", words, "is not valid")
    assert not tmp_path.joinpath("b").exists() and list(tmp_path.iterdir()) == []
    unchanged(nats_standalone, existing)


@pytest.mark.parametrize(
    ("module", "args", "kind"),
    [
        ("stream", {"name": "ORDERS.x", "subjects": ["o.>"]}, "stream"),
        ("consumer", {"stream": "HOSTILE_INPUT", "name": "C.1"}, "consumer"),
        ("consumer", {"stream": "HOSTILE_INPUT.x", "name": "C1"}, "stream"),
        ("raft_peer_remove", {"peer": "n1", "stream": "HOSTILE INPUT"}, "stream"),
        ("leader_stepdown", {"stream": "HOSTILE>"}, "stream"),
        ("stream_backup", {"streams": ["HOSTILE_INPUT", "BAD.NAME"], "path": "/nonexistent/x"}, "stream"),
    ],
    ids=["stream", "consumer-name", "consumer-stream", "raft_peer_remove", "leader_stepdown", "backup-streams"],
)
def test_bad_names_in_every_module(module, args, kind, nats_standalone, existing):
    result = refused(module, app(nats_standalone, **args), f"{kind} name", "is not valid")
    assert result["invalid_name"]
    unchanged(nats_standalone, existing)


def test_a_backup_whose_record_names_an_impossible_stream(nats_standalone, existing, tmp_path):
    backup = tmp_path / "ORDERS"
    shutil.copytree(NATSCLI_FIXTURE / "account-backup" / "ORDERS", backup)
    os.chmod(backup / "backup.json", 0o644)
    record = json.loads((backup / "backup.json").read_text())
    record["config"]["name"] = "ORDERS.x"
    (backup / "backup.json").write_text(json.dumps(record))
    refused("stream_restore", app(nats_standalone, path=str(backup)), "'ORDERS.x'", "backup.json", "damaged")
    assert not js(nats_standalone).exists("ORDERS")
    unchanged(nats_standalone, existing)


def test_an_export_file_naming_an_impossible_stream(nats_standalone, existing, tmp_path):
    export = tmp_path / "config"
    run_module("jetstream_config", app(nats_standalone, state="exported", path=str(export), streams=["HOSTILE_INPUT"]))
    stream_file = export / "stream_HOSTILE_INPUT.json"
    kind, payload = decode_entry(stream_file)
    payload["name"] = "HOSTILE.INPUT"  # edited by hand, checksum and all
    stream_file.write_bytes(encode_entry(kind, payload, datetime.now(timezone.utc)))
    args = app(nats_standalone, state="imported", path=str(export), update_streams=True)
    refused("jetstream_config", args, "stream name 'HOSTILE.INPUT'", "holds a dot", "edited by hand")
    unchanged(nats_standalone, existing)


NUMBER_CASES = [
    ("stream_backup", {"stream": "HOSTILE_INPUT", "timeout": 0}, "timeout is 0", "above 0"),
    ("stream_backup", {"stream": "HOSTILE_INPUT", "timeout": -5}, "timeout is -5", "above 0"),
    ("stream_backup", {"stream": "HOSTILE_INPUT", "connect_timeout": 0}, "connect_timeout is 0", "above 0"),
    ("stream_backup", {"streams": ["all"], "parallel": 0}, "parallel is 0", "from 1 to 64"),
    ("stream_backup", {"streams": ["all"], "parallel": -3}, "parallel is -3", "from 1 to 64"),
    ("stream_backup", {"streams": ["all"], "parallel": 65}, "parallel is 65", "from 1 to 64"),
    ("stream_backup", {"stream": "HOSTILE_INPUT", "window_size": 512}, "window_size is 512", "from 1024 to 33554432"),
    ("stream_backup", {"stream": "HOSTILE_INPUT", "window_size": 1 << 26}, "window_size", "from 1024 to 33554432"),
    ("stream_backup", {"stream": "HOSTILE_INPUT", "chunk_size": 512}, "chunk_size 512", "1024 to 1048576"),
    ("stream_backup", {"streams": []}, "streams is []", "names no stream"),
    ("stream_backup", {"streams": [""]}, "names no stream", "[all]"),
    ("stream_restore", {"chunk_size": 512}, "chunk_size is 512", "from 1024 to 67108864"),
    ("stream_restore", {"chunk_size": 0}, "chunk_size is 0", "from 1024"),
    ("stream_restore", {"parallel": 0}, "parallel is 0", "from 1 to 64"),
    ("stream_restore", {"replicas": 0}, "replicas is 0", "from 1 to 5"),
    ("stream_restore", {"replicas": 7}, "replicas is 7", "from 1 to 5"),
    ("stream_restore", {"streams": []}, "streams is []", "names no stream"),
    ("jetstream_config", {"state": "exported", "streams": []}, "streams is []", "names no stream"),
    ("cluster_info", {"wait_for": "healthy", "wait_timeout": 0}, "wait_timeout is 0", "above 0"),
    ("raft_peer_remove", {"peer": "n9", "wait_timeout": -1}, "wait_timeout is -1", "above 0"),
    ("leader_stepdown", {"wait_timeout": 0}, "wait_timeout is 0", "above 0"),
]


@pytest.mark.parametrize(("module", "args", "first", "second"), NUMBER_CASES, ids=lambda value: str(value)[:40])
def test_numbers_out_of_range_name_the_accepted_range(module, args, first, second, nats_standalone, existing, tmp_path):
    args = dict(args)
    if module in ("stream_backup", "jetstream_config"):
        args["path"] = str(tmp_path / "target")
    elif module == "stream_restore":
        args["path"] = str(NATSCLI_FIXTURE / "account-backup")
    refused(module, app(nats_standalone, **args), first, second)
    assert not (tmp_path / "target").exists()
    assert not js(nats_standalone).exists("ORDERS")
    unchanged(nats_standalone, existing)


# --- credential and TLS files: named for what they are, without advice about the server ---------


def test_credential_files_that_are_not_what_they_claim(nats_standalone, existing, tmp_path):
    plan = {"servers": nats_standalone.urls, "streams": ["all"], "path": str(tmp_path / "never")}
    a_dir = tmp_path / "a-dir"
    a_dir.mkdir()
    garbage = tmp_path / "garbage"
    garbage.write_text("this is not a credentials file\n")
    binary = tmp_path / "binary"
    binary.write_bytes(os.urandom(64) + b"\xff\xfe")
    account_seed = tmp_path / "account.nk"
    account_seed.write_text("SAAGNJOZTRPYHBXIOEKIXCGAFGCWBWFPBKU7FKQHNGN3QS6HNIP4OBVYUA\n")
    bad_seed = tmp_path / "bad.nk"
    bad_seed.write_text("SUAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n")
    half_creds = tmp_path / "half.creds"
    half_creds.write_text("-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.c2ln\n------END NATS USER JWT------\n")
    cases = [
        ({"creds": str(a_dir)}, "creds", "is a directory"),
        ({"nkey": str(a_dir)}, "nkey", "is a directory"),
        ({"creds": str(tmp_path / "missing.creds")}, "creds file", "does not exist"),
        ({"creds": str(garbage)}, "creds file", "is not a NATS credentials file"),
        ({"creds": str(half_creds)}, "creds file", "USER NKEY SEED"),
        ({"creds": str(binary)}, "creds file", "is not text"),
        ({"nkey": str(garbage)}, "nkey file", "does not hold a user nkey seed"),
        ({"nkey": str(account_seed)}, "nkey file", "does not hold a user nkey seed"),
        ({"nkey": str(bad_seed)}, "nkey file", "seed is damaged"),
        ({"tls_ca": str(garbage)}, "tls_ca file", "holds no usable PEM certificate"),
        ({"tls_cert": str(garbage), "tls_key": str(garbage)}, "tls_cert", "not a PEM certificate"),
        ({"tls_ca": str(a_dir)}, "tls_ca", "is a directory"),
    ]
    for given, first, second in cases:
        result = refused("stream_backup", {**plan, **given}, first, second, check_mode=True)
        assert "server" not in result["msg"].split(":", 1)[0], result["msg"]
        assert "Check that the server runs" not in result["msg"]
    unchanged(nats_standalone, existing)
