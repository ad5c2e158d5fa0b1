"""natsops.jetstream.stream against real nats-server processes: settings, idempotence, diff, guards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support.config_modules import apply, fill, js, refused, require_release, stream_config
from support.servers import NatsNode

SECOND = 1_000_000_000
REPO_ROOT = Path(__file__).resolve().parents[2]


# Each case: the module's settings, what the server must then report (JSON keys), and the nats-server
# release it needs. Between them every stream setting is used.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[int, int]]] = {
    "limits": (
        {
            "description": "orders of {name}",
            "subjects": ["{name}.a", "{name}.b.>"],
            "retention": "limits",
            "storage": "file",
            "replicas": 1,
            "max_consumers": 10,
            "max_msgs": 1000,
            "max_bytes": "1MB",
            "max_age": "1h",
            "max_msgs_per_subject": 5,
            "max_msg_size": "64KiB",
            "discard": "new",
            "discard_new_per_subject": True,
            "no_ack": False,
            "duplicate_window": "30s",
            "compression": "s2",
            "first_seq": 10,
            "deny_delete": True,
            "deny_purge": True,
            "allow_direct": True,
            "metadata": {"owner": "shop", "tier": "1"},
            "consumer_limits": {"inactive_threshold": "10m", "max_ack_pending": 50},
        },
        {
            "description": "orders of {name}",
            "subjects": ["{name}.a", "{name}.b.>"],
            "max_consumers": 10,
            "max_msgs": 1000,
            "max_bytes": 1 << 20,
            "max_age": 3600 * SECOND,
            "max_msgs_per_subject": 5,
            "max_msg_size": 64 << 10,
            "discard": "new",
            "discard_new_per_subject": True,
            "duplicate_window": 30 * SECOND,
            "compression": "s2",
            "first_seq": 10,
            "deny_delete": True,
            "deny_purge": True,
            "allow_direct": True,
            "consumer_limits": {"inactive_threshold": 600 * SECOND, "max_ack_pending": 50},
        },
        (2, 10),
    ),
    "workqueue": (
        {
            "subjects": ["{name}.>"],
            "retention": "workqueue",
            "storage": "memory",
            "no_ack": True,
            "allow_rollup": True,
            "max_bytes": -1,
            "max_msgs": 0,
        },
        {"retention": "workqueue", "storage": "memory", "no_ack": True, "allow_rollup_hdrs": True, "max_msgs": -1},
        (2, 10),
    ),
    "transforms": (
        {
            "subjects": ["{name}.in.>"],
            "subject_transform": {"src": "{name}.in.>", "dest": "{name}.stored.>"},
            "republish": {"src": "{name}.stored.>", "dest": "copy.{name}.>", "headers_only": True},
        },
        {
            "subject_transform": {"src": "{name}.in.>", "dest": "{name}.stored.>"},
            "republish": {"src": "{name}.stored.>", "dest": "copy.{name}.>", "headers_only": True},
        },
        (2, 10),
    ),
    "sources": (
        {
            "subjects": [],
            "sources": [
                {"name": "{name}_A", "filter_subject": "a.x", "opt_start_seq": 5},
                {"name": "{name}_B", "subject_transforms": [{"src": "b.>", "dest": "from_b.>"}]},
                {"name": "{name}_C", "domain": "hub", "opt_start_time": "2025-01-31T14:00:00+02:00"},
                {"name": "{name}_D", "external": {"api": "$JS.other.API", "deliver": "deliver.other"}},
            ],
        },
        {
            "sources": [
                {"name": "{name}_A", "filter_subject": "a.x", "opt_start_seq": 5},
                {"name": "{name}_B", "subject_transforms": [{"src": "b.>", "dest": "from_b.>"}]},
                {
                    "name": "{name}_C",
                    "opt_start_time": "2025-01-31T12:00:00Z",
                    "external": {"api": "$JS.hub.API", "deliver": ""},  # the server adds an empty deliver
                },
                {"name": "{name}_D", "external": {"api": "$JS.other.API", "deliver": "deliver.other"}},
            ]
        },
        (2, 10),
    ),
    "mirror": (
        {"mirror": {"name": "{name}_ORIGIN", "filter_subject": "o.>", "opt_start_seq": 3}, "mirror_direct": False},
        {"mirror": {"name": "{name}_ORIGIN", "filter_subject": "o.>", "opt_start_seq": 3}, "mirror_direct": False},
        (2, 10),
    ),
    "ttl": (
        {"subjects": ["{name}.>"], "allow_msg_ttl": True, "subject_delete_marker_ttl": "5m", "max_age": "1h"},
        {"allow_msg_ttl": True, "subject_delete_marker_ttl": 300 * SECOND, "allow_rollup_hdrs": True},
        (2, 11),
    ),
    "atomic_and_schedules": (
        {"subjects": ["{name}.>"], "allow_atomic": True, "allow_msg_schedules": True, "persist_mode": "default"},
        {"allow_atomic": True, "allow_msg_schedules": True, "allow_rollup_hdrs": True},
        (2, 12),
    ),
    "counter": (
        {"subjects": ["{name}.>"], "allow_msg_counter": True, "persist_mode": "async"},
        {"allow_msg_counter": True, "persist_mode": "async"},
        (2, 12),
    ),
    "batched": (
        {"subjects": ["{name}.>"], "allow_batched": True, "persist_mode": "default"},
        {"allow_batched": True},
        (2, 14),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_setting_round_trips_and_a_second_run_changes_nothing(
    case, nats_standalone, unique_name, nats_server_version
):
    settings, expected, release = CASES[case]
    require_release(nats_server_version, release)
    name = unique_name(f"RT_{case.upper()}")
    settings, expected = fill(settings, name=name), fill(expected, name=name)

    created = apply("stream", nats_standalone, name=name, **settings)
    assert (created["changed"], created["action"]) == (True, "create")
    config = stream_config(nats_standalone, name)
    assert {key: config.get(key) for key in expected} == expected
    assert {k: v for k, v in config.get("metadata", {}).items() if not k.startswith("_nats.")} == settings.get(
        "metadata", {}
    )

    again = apply("stream", nats_standalone, name=name, **settings)
    assert (again["changed"], again["action"], again["changes"]) == (False, "none", {})
    checked = apply("stream", nats_standalone, check_mode=True, name=name, **settings)
    assert checked["changed"] is False
    assert stream_config(nats_standalone, name) == config
    # The shared server keeps no stream that sources from streams that do not exist.
    apply("stream", nats_standalone, name=name, state="absent")


def test_settings_not_given_are_kept_as_the_server_has_them(nats_standalone, unique_name):
    name = unique_name("KEEP")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"], max_msgs=100, description="first")
    # Changed by hand, outside Ansible:
    by_hand = {**stream_config(nats_standalone, name), "max_age": 7200 * SECOND}
    js(nats_standalone).request(f"STREAM.UPDATE.{name}", by_hand)

    result = apply("stream", nats_standalone, name=name, description="second")
    assert result["changes"] == {"description": {"before": "first", "after": "second"}}
    config = stream_config(nats_standalone, name)
    assert (config["description"], config["max_msgs"], config["max_age"]) == ("second", 100, 7200 * SECOND)
    assert config["subjects"] == [f"{name}.>"]
    # A second run with only the name changes nothing either.
    assert apply("stream", nats_standalone, name=name)["changed"] is False


def test_diff_and_check_mode_show_what_would_change_and_change_nothing(nats_standalone, unique_name):
    name = unique_name("DIFF")
    planned = apply("stream", nats_standalone, check_mode=True, name=name, subjects=[f"{name}.>"], max_age="1h")
    assert (planned["changed"], planned["action"]) == (True, "create")
    assert planned["diff"]["before"] == {}
    assert planned["diff"]["after"] == {"name": name, "subjects": [f"{name}.>"], "max_age": "1h"}
    assert not js(nats_standalone).exists(name)

    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"], max_age="1h")
    before = stream_config(nats_standalone, name)
    planned = apply("stream", nats_standalone, check_mode=True, name=name, max_age="90m", replicas=1)
    assert planned["changes"] == {"max_age": {"before": "1h", "after": "1h30m"}}
    diff = planned["diff"]
    assert diff["before_header"] == diff["after_header"] == f"stream {name}"
    assert (diff["before"]["max_age"], diff["after"]["max_age"]) == ("1h", "1h30m")
    assert {key for key in diff["after"] if diff["after"][key] != diff["before"].get(key)} == {"max_age"}
    assert "metadata" not in diff["before"]  # the server's _nats.* keys are not shown
    assert stream_config(nats_standalone, name) == before

    updated = apply("stream", nats_standalone, name=name, max_age="90m")
    assert (updated["action"], updated["config"]["max_age"]) == ("update", 5400 * SECOND)
    assert apply("stream", nats_standalone, diff=False, name=name, max_age="90m").get("diff") is None


def test_lowering_max_age_below_the_duplicate_window_lowers_the_window(nats_standalone, unique_name):
    name = unique_name("WINDOW")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"])
    assert stream_config(nats_standalone, name)["duplicate_window"] == 120 * SECOND
    result = apply("stream", nats_standalone, name=name, max_age="30s")
    assert set(result["changes"]) == {"max_age", "duplicate_window"}
    config = stream_config(nats_standalone, name)
    assert (config["max_age"], config["duplicate_window"]) == (30 * SECOND, 30 * SECOND)


@pytest.mark.parametrize(
    ("created", "change", "option"),
    [
        ({"storage": "file"}, {"storage": "memory"}, "storage"),
        ({"retention": "limits"}, {"retention": "workqueue"}, "retention"),
        ({"deny_delete": True}, {"deny_delete": False}, "deny_delete"),
        ({"first_seq": 5}, {"first_seq": 6}, "first_seq"),
    ],
)
def test_changes_the_server_cannot_make_are_refused_by_name(nats_standalone, unique_name, created, change, option):
    name = unique_name("FIXED")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"], **created)
    before = stream_config(nats_standalone, name)
    failure = refused("stream", nats_standalone, name=name, **change)
    assert f"cannot change {option} from" in failure["msg"]
    assert "recreate: true" in failure["msg"]
    assert failure["refused"] == [option]
    assert stream_config(nats_standalone, name) == before


def test_retention_limits_to_interest_changes_in_place(nats_standalone, unique_name):
    name = unique_name("INTEREST")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"], retention="limits")
    result = apply("stream", nats_standalone, name=name, retention="interest")
    assert result["action"] == "update"
    assert stream_config(nats_standalone, name)["retention"] == "interest"


def test_recreate_is_refused_while_the_stream_holds_messages_unless_forced(nats_standalone, unique_name):
    name = unique_name("RECREATE")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"], storage="file")
    js(nats_standalone).publish(f"{name}.x", 3)

    failure = refused("stream", nats_standalone, name=name, storage="memory", recreate=True)
    assert "holds 3 messages" in failure["msg"] and "force: true" in failure["msg"]
    assert js(nats_standalone).stream_info(name)["state"]["messages"] == 3

    planned = apply("stream", nats_standalone, check_mode=True, name=name, storage="memory", recreate=True, force=True)
    assert planned["action"] == "recreate"
    assert js(nats_standalone).stream_info(name)["state"]["messages"] == 3

    result = apply("stream", nats_standalone, name=name, storage="memory", recreate=True, force=True)
    assert (result["action"], result["changes"]) == ("recreate", {"storage": {"before": "file", "after": "memory"}})
    info = js(nats_standalone).stream_info(name)
    assert (info["config"]["storage"], info["state"]["messages"]) == ("memory", 0)
    assert info["config"]["subjects"] == [f"{name}.>"]  # kept, though not given


def test_recreate_of_an_empty_stream_needs_no_force_but_prevent_delete_stops_it(nats_standalone, unique_name):
    name = unique_name("EMPTY")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"])
    failure = refused("stream", nats_standalone, name=name, storage="memory", recreate=True, prevent_delete=True)
    assert "prevent_delete" in failure["msg"]
    assert stream_config(nats_standalone, name)["storage"] == "file"
    assert apply("stream", nats_standalone, name=name, storage="memory", recreate=True)["action"] == "recreate"


def test_a_recreate_the_server_refuses_puts_the_previous_configuration_back(nats_standalone, unique_name):
    name = unique_name("ROLLBACK")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"], max_msgs=7)
    # The server accepts no max_age under 100ms: only creating the new stream can tell.
    failure = refused("stream", nats_standalone, name=name, storage="memory", max_age="50ms", recreate=True)
    assert "refused the new configuration" in failure["msg"]
    assert "created again, empty, with its previous configuration" in failure["msg"]
    config = stream_config(nats_standalone, name)
    assert (config["storage"], config["max_msgs"], config["subjects"]) == ("file", 7, [f"{name}.>"])


def test_absent_deletes_unless_protected(nats_standalone, unique_name):
    name = unique_name("GONE")
    apply("stream", nats_standalone, name=name, subjects=[f"{name}.>"])
    assert "prevent_delete" in refused("stream", nats_standalone, name=name, state="absent", prevent_delete=True)["msg"]
    planned = apply("stream", nats_standalone, check_mode=True, name=name, state="absent")
    assert (planned["action"], planned["diff"]["after"]) == ("delete", {})
    assert js(nats_standalone).exists(name)
    assert apply("stream", nats_standalone, name=name, state="absent")["action"] == "delete"
    assert not js(nats_standalone).exists(name)
    assert apply("stream", nats_standalone, name=name, state="absent")["changed"] is False


def test_bad_values_fail_before_anything_is_sent(nats_standalone, unique_name):
    name = unique_name("BAD")
    assert "max_age" in refused("stream", nats_standalone, name=name, max_age="an hour")["msg"]
    assert "max_bytes" in refused("stream", nats_standalone, name=name, max_bytes="1 gigabyte")["msg"]
    clash = refused("stream", nats_standalone, name=name, subject_delete_marker_ttl="5s", deny_purge=True)
    assert "deny_purge" in clash["msg"]
    overlap = refused("stream", nats_standalone, name=name, subjects=["$JS.API.>"])
    assert f"cannot create stream {name}" in overlap["msg"]
    assert not js(nats_standalone).exists(name)


@pytest.mark.cluster
def test_replicas_and_placement_in_a_cluster(nats_cluster, unique_name):
    name = unique_name("CLUSTERED")
    cluster_name = nats_cluster.name
    created = apply("stream", nats_cluster, name=name, subjects=[f"{name}.>"], placement={"cluster": cluster_name})
    assert created["config"]["num_replicas"] == 1
    assert created["config"]["placement"] == {"cluster": cluster_name}
    scaled = apply("stream", nats_cluster, name=name, replicas=3, placement={"cluster": cluster_name})
    assert (scaled["action"], scaled["changes"]) == ("update", {"replicas": {"before": 1, "after": 3}})
    assert apply("stream", nats_cluster, name=name, num_replicas=3)["changed"] is False
    assert stream_config(nats_cluster, name)["num_replicas"] == 3
    # A recreate in a cluster: the new stream is placed as soon as the old one is gone.
    recreated = apply("stream", nats_cluster, name=name, storage="memory", recreate=True)
    assert recreated["action"] == "recreate"
    config = stream_config(nats_cluster, name)
    assert (config["storage"], config["num_replicas"], config["placement"]) == ("memory", 3, {"cluster": cluster_name})


OLD_SERVER = REPO_ROOT / ".build" / "servers" / "2.10.26" / "bin" / "nats-server"


@pytest.mark.skipif(not OLD_SERVER.exists(), reason="nats-server 2.10.26 not installed (scripts/test-matrix)")
def test_settings_an_old_server_would_drop_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NATS_SERVER_BIN", os.fspath(OLD_SERVER))
    node = NatsNode("old", tmp_path).start()
    try:
        failure = refused("stream", node, name="TTL", allow_msg_ttl=True, persist_mode="async")
        assert "allow_msg_ttl (API level 1, nats-server 2.11+)" in failure["msg"]
        assert "persist_mode (API level 2, nats-server 2.12+)" in failure["msg"]
        assert stream_config(node, "TTL") is None
        assert apply("stream", node, name="PLAIN", max_age="1h")["action"] == "create"
        assert apply("stream", node, name="PLAIN", max_age="1h")["changed"] is False
    finally:
        node.stop()
