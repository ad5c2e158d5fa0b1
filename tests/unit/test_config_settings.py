"""Stream and consumer settings: conversion, comparison on the settings given, refusals, API levels, plans."""

from __future__ import annotations

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import merged, outgoing
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.consumer_config import (
    CONSUMER,
    desired_consumer,
    new_consumer_config,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import (
    ConsumerAsset,
    StreamAsset,
    guard,
    plan_absent,
    plan_present,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.stream_config import (
    STREAM,
    adjust_update,
    desired_stream,
    new_stream_config,
)

SECOND = 1_000_000_000
# A stream as nats-server 2.15 reports it after creating it with only a name and subjects.
SERVER_STREAM = {
    "name": "ORDERS",
    "subjects": ["orders.>"],
    "retention": "limits",
    "max_consumers": -1,
    "max_msgs": -1,
    "max_bytes": -1,
    "max_age": 0,
    "max_msgs_per_subject": -1,
    "max_msg_size": -1,
    "discard": "old",
    "storage": "file",
    "num_replicas": 1,
    "duplicate_window": 120 * SECOND,
    "compression": "none",
    "allow_direct": False,
    "mirror_direct": False,
    "sealed": False,
    "deny_delete": False,
    "deny_purge": False,
    "allow_rollup_hdrs": False,
    "consumer_limits": {},
    "allow_msg_ttl": False,
    "metadata": {"_nats.level": "5", "_nats.req.level": "0", "_nats.ver": "2.15.1"},
}
SERVER_CONSUMER = {
    "durable_name": "SHIP",
    "name": "SHIP",
    "deliver_policy": "all",
    "ack_policy": "explicit",
    "ack_wait": 30 * SECOND,
    "max_deliver": -1,
    "replay_policy": "instant",
    "max_waiting": 512,
    "max_ack_pending": 1000,
    "num_replicas": 0,
    "metadata": {"_nats.level": "5", "_nats.req.level": "0", "_nats.ver": "2.15.1"},
}


def stream_params(**given):
    return {option: given.get(option) for option in STREAM.by_option}


def consumer_params(**given):
    return {option: given.get(option) for option in CONSUMER.by_option}


def info(config, **extra):
    return {"config": config, **extra}


def test_only_the_settings_given_are_compared():
    desired = desired_stream(stream_params(subjects=["orders.>"], max_age="1h"))
    assert desired == {"subjects": ["orders.>"], "max_age": 3600 * SECOND}
    changes = STREAM.differences(desired, SERVER_STREAM)
    assert [(c.option, c.before, c.after) for c in changes] == [("max_age", "0s", "1h")]


@pytest.mark.parametrize(
    "given",
    [
        {"max_msgs": 0},
        {"max_msgs": -1},
        {"max_bytes": "-1"},
        {"max_age": "0s"},
        {"duplicate_window": "2m"},
        {"duplicate_window": 120},
        {"metadata": {}},
        {"replicas": 1},
        {"retention": "limits"},
        {"consumer_limits": {"inactive_threshold": None, "max_ack_pending": None}},
        {"placement": {"cluster": None, "tags": []}},
        {"allow_msg_ttl": False},
        {"persist_mode": "default"},
        {"first_seq": 0},
    ],
)
def test_values_the_server_writes_its_own_way_are_equal(given):
    assert STREAM.differences(desired_stream(stream_params(**given)), SERVER_STREAM) == []


def test_server_metadata_is_ignored_and_user_keys_are_managed_as_a_whole():
    current = {**SERVER_STREAM, "metadata": {**SERVER_STREAM["metadata"], "owner": "shop", "tier": "1"}}
    assert STREAM.differences(desired_stream(stream_params(metadata={"owner": "shop", "tier": 1})), current) == []
    (change,) = STREAM.differences(desired_stream(stream_params(metadata={"owner": "shop"})), current)
    assert (change.option, change.before, change.after) == (
        "metadata",
        {"owner": "shop", "tier": "1"},
        {"owner": "shop"},
    )


def test_sources_compare_times_across_offsets_and_ignore_empty_members():
    current = {
        **SERVER_STREAM,
        "sources": [
            {
                "name": "A",
                "opt_start_time": "2025-01-31T14:00:00+02:00",
                "external": {"api": "$JS.hub.API", "deliver": ""},
            }
        ],
    }
    desired = desired_stream(
        stream_params(sources=[{"name": "A", "opt_start_time": "2025-01-31T12:00:00Z", "domain": "hub"}])
    )
    assert desired["sources"] == [
        {"name": "A", "opt_start_time": "2025-01-31T12:00:00Z", "external": {"api": "$JS.hub.API"}}
    ]
    assert STREAM.differences(desired, current) == []


@pytest.mark.parametrize(
    ("option", "before", "after", "refused"),
    [
        ("storage", "file", "memory", "storage type"),
        ("retention", "limits", "workqueue", "workqueue"),
        ("retention", "workqueue", "interest", "workqueue"),
        ("retention", "limits", "interest", None),
        ("deny_delete", True, False, "deny_delete"),
        ("deny_delete", False, True, None),
        ("sealed", True, False, "unseal"),
        ("allow_msg_ttl", True, False, "TTL"),
        ("allow_msg_counter", False, True, "counters"),
        ("persist_mode", "default", "async", "persist mode"),
        ("first_seq", 0, 10, "first sequence"),
        ("mirror", {"name": "A"}, {"name": "B"}, "mirror"),
        ("replicas", 1, 3, None),
    ],
)
def test_stream_changes_the_server_refuses(option, before, after, refused):
    key = STREAM.by_option[option].key
    current = {**SERVER_STREAM, key: before}
    (change,) = STREAM.differences(desired_stream(stream_params(**{option: after})), current)
    if refused:
        assert refused in change.refusal
    else:
        assert change.refusal is None


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"ack_policy": "all"}, "ack policy"),
        ({"deliver_policy": "new"}, "deliver policy"),
        ({"deliver_subject": "push.here"}, "push consumer"),
        ({"max_waiting": 10}, "max_waiting"),
        ({"replay_policy": "original"}, "replay policy"),
        ({"max_ack_pending": 10}, None),
        ({"backoff": ["1s", "5s"]}, None),
    ],
)
def test_consumer_changes_the_server_refuses(given, refused):
    (change,) = CONSUMER.differences(desired_consumer(consumer_params(**given)), SERVER_CONSUMER)
    assert (refused in change.refusal) if refused else change.refusal is None


def test_sample_frequency_with_or_without_percent():
    current = {**SERVER_CONSUMER, "sample_freq": "50%"}
    assert CONSUMER.differences(desired_consumer(consumer_params(sample_freq="50")), current) == []


@pytest.mark.parametrize(
    ("table", "given", "levels"),
    [
        (STREAM, {"allow_msg_ttl": True}, {"allow_msg_ttl": 1}),
        (STREAM, {"allow_msg_ttl": False}, {}),
        (STREAM, {"subject_delete_marker_ttl": "5s"}, {"subject_delete_marker_ttl": 1}),
        (STREAM, {"persist_mode": "async"}, {"persist_mode": 2}),
        (STREAM, {"persist_mode": "default"}, {}),
        (STREAM, {"allow_batched": True, "allow_atomic": True}, {"allow_batched": 4, "allow_atomic": 2}),
        (STREAM, {"max_age": "1h", "compression": "s2"}, {}),
        (CONSUMER, {"priority_policy": "overflow"}, {"priority_policy": 1}),
        (CONSUMER, {"priority_policy": "prioritized"}, {"priority_policy": 2}),
        (CONSUMER, {"priority_policy": "none"}, {}),
        (CONSUMER, {"ack_policy": "flow_control"}, {"ack_policy": 4}),
        (CONSUMER, {"ack_policy": "explicit"}, {}),
        (CONSUMER, {"pause_until": "2030-01-01T00:00:00Z"}, {"pause_until": 1}),
    ],
)
def test_api_levels(table, given, levels):
    params = {option: given.get(option) for option in table.by_option}
    assert table.needed_levels(table.desired(params)) == levels


def test_old_server_refuses_by_name():
    desired = desired_stream(stream_params(allow_msg_ttl=True, persist_mode="async", max_age="1h"))
    with pytest.raises(NatsOpsError) as refused:
        STREAM.require_level(desired, 0, "nats-server 2.10.26", "ORDERS")
    assert "allow_msg_ttl (API level 1, nats-server 2.11+)" in refused.value.msg
    assert "persist_mode (API level 2, nats-server 2.12+)" in refused.value.msg
    assert refused.value.details["unsupported"] == ["allow_msg_ttl", "persist_mode"]
    STREAM.require_level(desired, 2, "nats-server 2.12.8", "ORDERS")


def test_merged_keeps_what_was_not_given_and_leaves_server_metadata_out():
    current = {**SERVER_STREAM, "max_msgs": 100, "metadata": {**SERVER_STREAM["metadata"], "owner": "shop"}}
    sent = merged(current, {"max_age": 60 * SECOND})
    assert sent["max_msgs"] == 100 and sent["max_age"] == 60 * SECOND
    assert sent["metadata"] == {"owner": "shop"}
    assert "metadata" not in outgoing(SERVER_STREAM)


def test_lowering_max_age_below_the_default_duplicate_window_lowers_it_too():
    assert adjust_update(SERVER_STREAM, {"max_age": 30 * SECOND}) == {"duplicate_window": 30 * SECOND}
    assert adjust_update(SERVER_STREAM, {"max_age": 3600 * SECOND}) == {}
    given = {"max_age": 30 * SECOND, "duplicate_window": 10 * SECOND}
    assert adjust_update(SERVER_STREAM, given) == {}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"subject_delete_marker_ttl": "5s", "allow_rollup": False}, "allow_rollup"),
        ({"subject_delete_marker_ttl": "5s", "deny_purge": True}, "deny_purge"),
        ({"subject_delete_marker_ttl": "5s", "allow_msg_ttl": False}, "allow_msg_ttl"),
        ({"allow_msg_schedules": True, "allow_rollup": False}, "allow_rollup"),
    ],
)
def test_settings_the_server_would_rewrite_are_refused(given, message):
    with pytest.raises(NatsOpsError, match=message):
        desired_stream(stream_params(**given))


def test_backoff_and_a_different_ack_wait_are_refused():
    with pytest.raises(NatsOpsError, match="first backoff"):
        desired_consumer(consumer_params(backoff=["1s", "10s"], ack_wait="30s"))
    assert desired_consumer(consumer_params(backoff=["1s", "10s"], ack_wait="1s"))["ack_wait"] == SECOND


def test_new_configs():
    assert new_stream_config("ORDERS", {"max_age": 5}) == {"name": "ORDERS", "max_age": 5}
    assert new_consumer_config("SHIP", {"max_deliver": 5}) == {
        "ack_policy": "explicit",
        "durable_name": "SHIP",
        "name": "SHIP",
        "max_deliver": 5,
    }
    assert new_consumer_config("SHIP", {"ack_policy": "none"})["ack_policy"] == "none"


def test_display_uses_human_durations_and_hides_server_metadata():
    shown = STREAM.for_display({**SERVER_STREAM, "max_age": 3600 * SECOND})
    assert shown["max_age"] == "1h" and shown["duplicate_window"] == "2m"
    assert "metadata" not in shown
    assert CONSUMER.for_display({"backoff": [SECOND, 10 * SECOND]}) == {"backoff": ["1s", "10s"]}
    nested = STREAM.for_display(
        {
            "consumer_limits": {"inactive_threshold": 600 * SECOND},
            "mirror": {"name": "A", "opt_start_time": "2025-01-31T14:00:00+02:00"},
            "sources": [{"name": "B", "opt_start_seq": 4}],
        }
    )
    assert nested == {
        "consumer_limits": {"inactive_threshold": "10m"},
        "mirror": {"name": "A", "opt_start_time": "2025-01-31T12:00:00Z"},
        "sources": [{"name": "B", "opt_start_seq": 4}],
    }


# --- plans and guards (no server: planning only reads the table) -----------------------------------


def stream_asset():
    return StreamAsset(None, "ORDERS")  # type: ignore[arg-type]


def test_plan_create_update_none_and_recreate():
    asset = stream_asset()
    desired = {"max_age": 60 * SECOND}
    assert plan_present(asset, desired, {"name": "ORDERS", **desired}, None).action == "create"
    assert plan_present(asset, {"max_age": 0}, {}, info(SERVER_STREAM)).action == "none"
    update = plan_present(asset, desired, {}, info(SERVER_STREAM))
    assert update.action == "update"
    assert update.after["duplicate_window"] == 60 * SECOND  # lowered with max_age
    assert set(update.changes_dict()) == {"max_age", "duplicate_window"}
    assert update.diff()["before"]["max_age"] == "0s" and update.diff()["after"]["max_age"] == "1m"

    with pytest.raises(NatsOpsError) as refused:
        plan_present(asset, {"storage": "memory"}, {}, info(SERVER_STREAM))
    assert "cannot change storage from file to memory in place" in refused.value.msg
    assert "recreate: true" in refused.value.msg
    recreate = plan_present(asset, {"storage": "memory"}, {}, info(SERVER_STREAM), recreate=True)
    assert recreate.action == "recreate" and recreate.after["storage"] == "memory"


def test_recreate_is_refused_while_the_stream_holds_data_unless_forced():
    asset = stream_asset()
    current = info(SERVER_STREAM, state={"messages": 5, "consumer_count": 1})
    plan = plan_present(asset, {"storage": "memory"}, {}, current, recreate=True)
    with pytest.raises(NatsOpsError, match="holds 5 messages and 1 consumers; recreating it deletes them"):
        guard(plan, current, prevent_delete=False, force=False)
    guard(plan, current, prevent_delete=False, force=True)
    with pytest.raises(NatsOpsError, match="prevent_delete"):
        guard(plan, current, prevent_delete=True, force=True)
    empty = info(SERVER_STREAM, state={"messages": 0, "consumer_count": 0})
    guard(plan_present(asset, {"storage": "memory"}, {}, empty, recreate=True), empty, False, False)


@pytest.mark.parametrize("name", ["", "a.b", "a*", "a>", "a b", "a/b"])
def test_names_the_server_refuses_are_refused_before_any_request(name):
    with pytest.raises(NatsOpsError, match="is not valid"):
        StreamAsset(None, name)  # type: ignore[arg-type]
    with pytest.raises(NatsOpsError, match="consumer name"):
        ConsumerAsset(None, "ORDERS", name)  # type: ignore[arg-type]


def test_delete_guard():
    asset = stream_asset()
    assert plan_absent(asset, None).action == "none"
    plan = plan_absent(asset, info(SERVER_STREAM))
    assert plan.action == "delete"
    with pytest.raises(NatsOpsError, match="prevent_delete"):
        guard(plan, info(SERVER_STREAM), prevent_delete=True, force=False)


def test_consumer_recreate_loses_its_position():
    asset = ConsumerAsset(None, "ORDERS", "SHIP")  # type: ignore[arg-type]
    current = info(SERVER_CONSUMER, delivered={"consumer_seq": 7, "stream_seq": 9}, ack_floor={"stream_seq": 4})
    plan = plan_present(asset, {"deliver_policy": "new"}, {}, current, recreate=True)
    with pytest.raises(NatsOpsError, match="delivered up to stream sequence 9"):
        guard(plan, current, prevent_delete=False, force=False)
    fresh = info(SERVER_CONSUMER, delivered={"consumer_seq": 0, "stream_seq": 0})
    guard(plan_present(asset, {"deliver_policy": "new"}, {}, fresh, recreate=True), fresh, False, False)
