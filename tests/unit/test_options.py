"""Connection options, natscli contexts, restore planning and other logic that needs no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.natsops.jetstream.plugins.module_utils.core import connection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.version import COLLECTION_VERSION
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery import restore, snapshot

REPO_ROOT = Path(__file__).resolve().parents[2]


def params(**given):
    base = {name: None for name in connection.CONNECTION_ARGUMENT_SPEC}
    base.update(connect_timeout=5.0, timeout=10.0)
    base.update(given)
    return base


@pytest.fixture
def context_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    directory = tmp_path / "nats" / "context"
    directory.mkdir(parents=True)
    return directory


def test_default_server_when_nothing_is_given():
    assert connection.resolve_options(params())["servers"] == ["nats://127.0.0.1:4222"]


def test_context_fills_only_unset_options(context_home, tmp_path):
    creds = tmp_path / "user.creds"
    creds.write_text("creds")
    (context_home / "prod.json").write_text(
        json.dumps({"url": "nats://a:4222, nats://b:4222", "creds": str(creds), "jetstream_domain": "hub"})
    )
    options = connection.resolve_options(params(context="prod"))
    assert options["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert options["creds"] == str(creds)
    assert options["domain"] == "hub"
    options = connection.resolve_options(params(context="prod", servers=["nats://c:4222"], domain="leaf"))
    assert options["servers"] == ["nats://c:4222"]
    assert options["domain"] == "leaf"


def test_missing_context_says_where_it_looked(context_home):
    with pytest.raises(NatsOpsError, match=r"context 'nope' not found: expected .*nats/context/nope\.json"):
        connection.resolve_options(params(context="nope"))


def test_context_name_cannot_escape_the_directory(context_home):
    with pytest.raises(NatsOpsError, match="not a valid natscli context name"):
        connection.resolve_options(params(context="../../etc/passwd"))


def test_conflicting_auth_from_context_and_task(context_home):
    (context_home / "tok.json").write_text(json.dumps({"token": "s3cret"}))
    with pytest.raises(NatsOpsError, match="token and user are mutually exclusive"):
        connection.resolve_options(params(context="tok", user="app", password="x"))


def test_missing_credential_file_is_named(tmp_path):
    with pytest.raises(NatsOpsError, match=r"creds file .*missing\.creds does not exist"):
        connection.resolve_options(params(creds=str(tmp_path / "missing.creds")))


def test_tls_cert_needs_key(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(NatsOpsError, match="tls_cert and tls_key must be given together"):
        connection.resolve_options(params(tls_cert=str(cert)))


def test_secrets_are_no_log():
    spec = connection.CONNECTION_ARGUMENT_SPEC
    assert spec["password"]["no_log"] and spec["token"]["no_log"]


def test_chunk_size_limits():
    snapshot.validate_chunk_size(1024)
    snapshot.validate_chunk_size(1024 * 1024)
    for bad in (1023, 1024 * 1024 + 1):
        with pytest.raises(NatsOpsError, match="chunk_size"):
            snapshot.validate_chunk_size(bad)


def test_snapshot_end_status():
    assert snapshot.end_status(None) == (True, "")
    assert snapshot.end_status({"Status": "204"})[0]
    assert snapshot.end_status({"Status": "408", "Description": "No Flow Response"}) == (
        False,
        "status 408 No Flow Response",
    )
    assert not snapshot.end_status({"Status": "500", "Description": "snapshot failed"})[0]


def test_chunk_index_from_reply_subject():
    assert snapshot.chunk_index("$JS.SNAPSHOT.ACK.ORDERS.abc123.131072.17") == 17
    with pytest.raises(NatsOpsError):
        snapshot.chunk_index("$JS.SNAPSHOT.ACK.ORDERS.abc.x")


def backup_item(name="ORDERS", **config):
    return restore.StreamBackup(
        name=name,
        directory=Path("/nonexistent") / name,
        backup={"config": {"name": name, "num_replicas": 3, **config}, "state": {"messages": 5}},
        manifest=None,
    )


def test_restore_overrides_replicas_and_placement():
    item = backup_item(placement={"cluster": "east", "tags": ["ssd"]})
    assert restore.restore_config(item, restore.RestoreOptions())["num_replicas"] == 3
    config = restore.restore_config(item, restore.RestoreOptions(replicas=1, cluster="west"))
    assert config["num_replicas"] == 1
    assert config["placement"] == {"cluster": "west", "tags": ["ssd"]}
    config = restore.restore_config(item, restore.RestoreOptions(tags=[]))
    assert config["placement"] == {"cluster": "east"}
    assert item.backup["config"]["num_replicas"] == 3, "the backup itself must not be edited"


def test_restore_plan_refuses_existing_by_default():
    items = [backup_item("A"), backup_item("B")]
    with pytest.raises(NatsOpsError, match="stream B already exists") as raised:
        restore.plan_actions(items, {"B": {}}, "fail")
    assert raised.value.details["existing"] == ["B"]
    assert restore.plan_actions(items, {"B": {}}, "skip") == {"A": "restore", "B": "skip"}
    assert restore.plan_actions(items, {"B": {}}, "replace") == {"A": "restore", "B": "replace"}


def test_unfinished_restore_is_redone_whatever_if_exists_says():
    items = [backup_item("A"), backup_item("B")]
    marked = {"config": {"metadata": {"natsops.jetstream.restore": "incomplete"}}}
    assert restore.plan_actions(items, {"A": marked}, "fail") == {"A": "redo", "B": "restore"}
    assert restore.plan_actions(items, {"A": marked}, "skip") == {"A": "redo", "B": "restore"}
    config = restore.restore_config(items[0], restore.RestoreOptions())
    assert config["metadata"]["natsops.jetstream.restore"] == "incomplete"
    assert "natsops.jetstream.restore" not in restore.without_marker(config)["metadata"]


def test_collection_version_matches_galaxy():
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert galaxy["version"] == COLLECTION_VERSION
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    modules = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py"))
    without_nats = ["backup_repository"]  # no NATS connection: its defaults would not be the group's
    assert sorted(runtime["action_groups"]["nats"] + without_nats) == modules
