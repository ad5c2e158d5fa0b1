"""natsops.jetstream.consumer against a real nats-server: settings, idempotence, diff, guards."""

from __future__ import annotations

from typing import Any

import pytest
from support.config_modules import apply, consumer_info, fill, js, refused, require_release

SECOND = 1_000_000_000


def make_stream(server: Any, name: str) -> str:
    apply("stream", server, name=name, subjects=[f"{name}.>"])
    return name


# Each case: the module's settings ({s} is the stream's name), what the server must then report, and the
# nats-server release it needs. Between them every consumer setting is used.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[int, int]]] = {
    "pull": (
        {
            "description": "shipping",
            "deliver_policy": "all",
            "ack_policy": "explicit",
            "ack_wait": "45s",
            "max_deliver": 5,
            "filter_subject": "{s}.a",
            "replay_policy": "instant",
            "sample_freq": "50%",
            "max_waiting": 64,
            "max_ack_pending": 20,
            "headers_only": True,
            "max_batch": 10,
            "max_expires": "30s",
            "max_bytes": "1MB",
            "inactive_threshold": "1h",
            "replicas": 1,
            "mem_storage": True,
            "metadata": {"team": "shipping"},
        },
        {
            "description": "shipping",
            "ack_policy": "explicit",
            "ack_wait": 45 * SECOND,
            "max_deliver": 5,
            "filter_subject": "{s}.a",
            "sample_freq": "50%",
            "max_waiting": 64,
            "max_ack_pending": 20,
            "headers_only": True,
            "max_batch": 10,
            "max_expires": 30 * SECOND,
            "max_bytes": 1 << 20,
            "inactive_threshold": 3600 * SECOND,
            "num_replicas": 1,
            "mem_storage": True,
        },
        (2, 10),
    ),
    "backoff": (
        {
            "backoff": ["1s", "5s", 30],
            "max_deliver": 5,
            "filter_subjects": ["{s}.a", "{s}.b"],
            "deliver_policy": "last_per_subject",
        },
        {
            "backoff": [SECOND, 5 * SECOND, 30 * SECOND],
            "ack_wait": SECOND,  # the server takes the first backoff delay
            "filter_subjects": ["{s}.a", "{s}.b"],
            "deliver_policy": "last_per_subject",
            "ack_policy": "explicit",  # this module's default for new consumers
        },
        (2, 10),
    ),
    "by_sequence": (
        {"deliver_policy": "by_start_sequence", "opt_start_seq": 3, "replay_policy": "original", "ack_policy": "all"},
        {"deliver_policy": "by_start_sequence", "opt_start_seq": 3, "replay_policy": "original", "ack_policy": "all"},
        (2, 10),
    ),
    "by_time": (
        {"deliver_policy": "by_start_time", "opt_start_time": "2025-01-31T14:00:00+02:00", "ack_policy": "none"},
        {"deliver_policy": "by_start_time", "opt_start_time": "2025-01-31T12:00:00Z", "ack_policy": "none"},
        (2, 10),
    ),
    "push_flow_control": (
        {"deliver_subject": "push.{s}", "flow_control": True, "idle_heartbeat": "5s", "deliver_policy": "new"},
        {"deliver_subject": "push.{s}", "flow_control": True, "idle_heartbeat": 5 * SECOND, "deliver_policy": "new"},
        (2, 10),
    ),
    "push_group": (
        {"deliver_subject": "group.{s}", "deliver_group": "workers", "rate_limit_bps": 1_000_000},
        {"deliver_subject": "group.{s}", "deliver_group": "workers", "rate_limit_bps": 1_000_000},
        (2, 10),
    ),
    "pinned": (
        {"priority_groups": ["jobs"], "priority_policy": "pinned_client", "priority_timeout": "30s"},
        {"priority_groups": ["jobs"], "priority_policy": "pinned_client", "priority_timeout": 30 * SECOND},
        (2, 11),
    ),
    "overflow_paused": (
        {"priority_groups": ["jobs"], "priority_policy": "overflow", "pause_until": "2099-01-01T01:00:00+01:00"},
        {"priority_groups": ["jobs"], "priority_policy": "overflow"},
        (2, 11),
    ),
    "prioritized": (
        {"priority_groups": ["jobs"], "priority_policy": "prioritized"},
        {"priority_groups": ["jobs"], "priority_policy": "prioritized"},
        (2, 12),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_setting_round_trips_and_a_second_run_changes_nothing(
    case, nats_standalone, unique_name, nats_server_version
):
    settings, expected, release = CASES[case]
    require_release(nats_server_version, release)
    stream = make_stream(nats_standalone, unique_name("CONS"))
    settings, expected = fill(settings, s=stream), fill(expected, s=stream)

    created = apply("consumer", nats_standalone, stream=stream, name="C", **settings)
    assert (created["changed"], created["action"]) == (True, "create")
    config = consumer_info(nats_standalone, stream, "C")["config"]
    assert {key: config.get(key) for key in expected} == expected
    assert (config["durable_name"], config["name"]) == ("C", "C")
    assert created["config"] == config
    assert created["num_pending"] == 0 and created["delivered"]["consumer_seq"] == 0

    again = apply("consumer", nats_standalone, stream=stream, name="C", **settings)
    assert (again["changed"], again["action"], again["changes"]) == (False, "none", {})
    assert apply("consumer", nats_standalone, check_mode=True, stream=stream, name="C", **settings)["changed"] is False


def test_pause_until_is_kept_in_utc(nats_standalone, unique_name, nats_server_version):
    require_release(nats_server_version, (2, 11))
    stream = make_stream(nats_standalone, unique_name("PAUSE"))
    apply("consumer", nats_standalone, stream=stream, name="C", pause_until="2099-01-01T01:00:00+01:00")
    paused = consumer_info(nats_standalone, stream, "C")
    assert paused["config"]["pause_until"] == "2099-01-01T00:00:00Z"
    assert paused.get("paused") is True


def test_settings_not_given_are_kept_and_changes_are_reported(nats_standalone, unique_name):
    stream = make_stream(nats_standalone, unique_name("KEEPC"))
    apply("consumer", nats_standalone, stream=stream, name="C", max_deliver=5, ack_wait="30s")
    result = apply("consumer", nats_standalone, stream=stream, name="C", max_ack_pending=10, ack_wait="1m")
    assert result["action"] == "update"
    assert result["changes"] == {
        "max_ack_pending": {"before": 1000, "after": 10},
        "ack_wait": {"before": "30s", "after": "1m"},
    }
    assert (result["diff"]["before"]["ack_wait"], result["diff"]["after"]["ack_wait"]) == ("30s", "1m")
    config = consumer_info(nats_standalone, stream, "C")["config"]
    assert (config["max_deliver"], config["max_ack_pending"], config["ack_wait"]) == (5, 10, 60 * SECOND)


def test_check_mode_changes_nothing(nats_standalone, unique_name):
    stream = make_stream(nats_standalone, unique_name("CHECKC"))
    planned = apply("consumer", nats_standalone, check_mode=True, stream=stream, name="C", max_deliver=3)
    assert (planned["action"], planned["config"]["ack_policy"]) == ("create", "explicit")
    assert consumer_info(nats_standalone, stream, "C") is None
    apply("consumer", nats_standalone, stream=stream, name="C", max_deliver=3)
    planned = apply("consumer", nats_standalone, check_mode=True, stream=stream, name="C", max_deliver=4)
    assert planned["changes"] == {"max_deliver": {"before": 3, "after": 4}}
    assert consumer_info(nats_standalone, stream, "C")["config"]["max_deliver"] == 3


@pytest.mark.parametrize(
    ("created", "change", "option"),
    [
        ({"ack_policy": "explicit"}, {"ack_policy": "none"}, "ack_policy"),
        ({}, {"deliver_subject": "now.push"}, "deliver_subject"),
        ({"deliver_policy": "all"}, {"deliver_policy": "new"}, "deliver_policy"),
        ({"max_waiting": 100}, {"max_waiting": 200}, "max_waiting"),
    ],
)
def test_changes_the_server_cannot_make_are_refused_by_name(nats_standalone, unique_name, created, change, option):
    stream = make_stream(nats_standalone, unique_name("FIXEDC"))
    apply("consumer", nats_standalone, stream=stream, name="C", **created)
    before = consumer_info(nats_standalone, stream, "C")["config"]
    failure = refused("consumer", nats_standalone, stream=stream, name="C", **change)
    assert f"consumer {stream} > C: cannot change {option} from" in failure["msg"]
    assert failure["refused"] == [option]
    assert consumer_info(nats_standalone, stream, "C")["config"] == before


def test_recreate_loses_the_position_so_it_needs_force(nats_standalone, unique_name):
    stream = make_stream(nats_standalone, unique_name("RECC"))
    apply("consumer", nats_standalone, stream=stream, name="C")
    # Untouched: recreating loses nothing.
    assert apply("consumer", nats_standalone, stream=stream, name="C", deliver_policy="new", recreate=True)["changed"]
    js(nats_standalone).publish(f"{stream}.x", 5)
    apply("consumer", nats_standalone, stream=stream, name="C", deliver_policy="all", recreate=True)
    js(nats_standalone).consume_and_ack(stream, "C", fetch=3, ack=2)

    failure = refused("consumer", nats_standalone, stream=stream, name="C", deliver_policy="new", recreate=True)
    assert "delivered up to stream sequence 3" in failure["msg"] and "force: true" in failure["msg"]
    protected = refused(
        "consumer",
        nats_standalone,
        stream=stream,
        name="C",
        deliver_policy="new",
        recreate=True,
        force=True,
        prevent_delete=True,
    )
    assert "prevent_delete" in protected["msg"]
    assert consumer_info(nats_standalone, stream, "C")["ack_floor"]["stream_seq"] == 2

    result = apply(
        "consumer", nats_standalone, stream=stream, name="C", deliver_policy="new", recreate=True, force=True
    )
    assert result["action"] == "recreate"
    # Starts over at the newest message: nothing delivered, nothing awaiting acknowledgement.
    assert (result["delivered"]["consumer_seq"], result["num_ack_pending"], result["num_pending"]) == (0, 0, 0)


def test_absent_and_prevent_delete(nats_standalone, unique_name):
    stream = make_stream(nats_standalone, unique_name("GONEC"))
    apply("consumer", nats_standalone, stream=stream, name="C")
    assert (
        "prevent_delete"
        in refused("consumer", nats_standalone, stream=stream, name="C", state="absent", prevent_delete=True)["msg"]
    )
    assert apply("consumer", nats_standalone, stream=stream, name="C", state="absent")["action"] == "delete"
    assert consumer_info(nats_standalone, stream, "C") is None
    assert apply("consumer", nats_standalone, stream=stream, name="C", state="absent")["changed"] is False
    assert apply("consumer", nats_standalone, stream="NO_SUCH_STREAM", name="C", state="absent")["changed"] is False


def test_a_missing_stream_fails_but_only_warns_in_check_mode(nats_standalone, unique_name):
    stream = unique_name("MISSING")
    failure = refused("consumer", nats_standalone, stream=stream, name="C")
    assert f"stream {stream} does not exist" in failure["msg"]
    planned = apply("consumer", nats_standalone, check_mode=True, stream=stream, name="C")
    assert planned["changed"] and any("does not exist (yet)" in warning for warning in planned["warnings"])


def test_settings_the_server_would_refuse_or_rewrite(nats_standalone, unique_name):
    stream = make_stream(nats_standalone, unique_name("BADC"))
    clash = refused("consumer", nats_standalone, stream=stream, name="C", backoff=["1s"], ack_wait="30s")
    assert "first backoff delay" in clash["msg"]
    wildcard = refused("consumer", nats_standalone, stream=stream, name="C", deliver_subject="push.*")
    assert f"cannot create consumer {stream} > C" in wildcard["msg"] and "err_code" in wildcard["msg"]
    assert consumer_info(nats_standalone, stream, "C") is None
