# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Consumer settings: the options of natsops.jetstream.consumer and the server's ``ConsumerConfig`` JSON.

Which changes the server refuses in place follows nats-server's ``server/consumer.go``
(``checkNewConsumerConfig``); API levels follow ``server/jetstream_versioning.go``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import (
    Refusal,
    Setting,
    SettingTable,
    choice,
    duration,
    durations,
    fixed,
    flag,
    limit,
    metadata,
    moment,
    number,
    size,
    strings,
    text,
)

DELIVER_POLICIES = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
# What a consumer created by this collection gets when ack_policy is not given: natscli and the
# Terraform provider default to explicit acks; the server's own default (none) loses messages silently.
CREATE_DEFAULTS = {"ack_policy": "explicit"}


def _push_pull(before: Any, after: Any) -> str | None:
    if bool(before) != bool(after):
        return "the server cannot turn a pull consumer into a push consumer or back (deliver_subject)"
    return None


def _sample_frequency() -> Setting:
    # The server keeps the text it was given; "50" and "50%" mean the same.
    return Setting(
        "sample_freq",
        "sample_freq",
        {"type": "str"},
        lambda value, what: str(value),
        lambda value: str(value or "").strip().rstrip("%").strip(),
    )


def _fixed(what: str) -> Refusal:
    return fixed(f"the server cannot change a consumer's {what}")


CONSUMER = SettingTable(
    "consumer",
    [
        text("description"),
        choice("deliver_policy", DELIVER_POLICIES, "all", refusal=_fixed("deliver policy")),
        number("opt_start_seq", refusal=_fixed("start sequence")),
        moment("opt_start_time", refusal=_fixed("start time")),
        choice(
            "ack_policy",
            ("none", "all", "explicit", "flow_control"),
            "none",
            value_levels={"flow_control": 4},
            refusal=_fixed("ack policy"),
        ),
        duration("ack_wait"),
        limit("max_deliver"),
        durations("backoff"),
        text("filter_subject"),
        strings("filter_subjects"),
        choice("replay_policy", ("instant", "original"), "instant", refusal=_fixed("replay policy")),
        number("rate_limit_bps"),
        _sample_frequency(),
        number("max_waiting", refusal=_fixed("max_waiting")),
        number("max_ack_pending"),
        flag("headers_only"),
        number("max_batch"),
        duration("max_expires"),
        size("max_bytes"),
        duration("inactive_threshold"),
        number("replicas", key="num_replicas"),
        flag("mem_storage", refusal=_fixed("storage (mem_storage)")),
        text("deliver_subject", refusal=_push_pull),
        text("deliver_group"),
        flag("flow_control", refusal=_fixed("flow control")),
        duration("idle_heartbeat", refusal=_fixed("idle heartbeat")),
        strings("priority_groups", level=1),
        choice(
            "priority_policy",
            ("none", "overflow", "pinned_client", "prioritized"),
            "none",
            level=1,
            value_levels={"prioritized": 2},
        ),
        duration("priority_timeout", level=1),
        moment("pause_until", level=1),
        metadata(),
    ],
)


def desired_consumer(params: dict[str, Any]) -> dict[str, Any]:
    """The server JSON for the settings given, refusing combinations the server would silently rewrite."""
    desired = CONSUMER.desired(params)
    backoff, ack_wait = desired.get("backoff"), desired.get("ack_wait")
    if backoff and ack_wait is not None and ack_wait != backoff[0]:
        raise NatsOpsError(
            "with backoff, the server uses the first backoff delay as ack_wait: leave ack_wait out, "
            "or make it equal to the first backoff delay"
        )
    return desired


def consumer_identity(name: str) -> dict[str, str]:
    """A durable consumer: both names are the same (servers 2.9+ report both)."""
    return {"durable_name": name, "name": name}


def new_consumer_config(name: str, desired: dict[str, Any]) -> dict[str, Any]:
    return {**CREATE_DEFAULTS, **consumer_identity(name), **desired}


def consumer_holdings(info: dict[str, Any]) -> str | None:
    """What deleting the consumer would lose (its place in the stream), or None when it delivered nothing."""
    delivered = info.get("delivered") or {}
    if not int(delivered.get("consumer_seq") or 0):
        return None
    ack_floor = int((info.get("ack_floor") or {}).get("stream_seq") or 0)
    return (
        f"its position (delivered up to stream sequence {int(delivered.get('stream_seq') or 0)}, "
        f"acknowledged up to {ack_floor}, {int(info.get('num_ack_pending') or 0)} awaiting acknowledgement)"
    )
