# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Stream settings: the options of natsops.jetstream.stream and the server's ``StreamConfig`` JSON.

Which changes the server refuses in place, and which settings need which API level, follow
nats-server's ``server/stream.go`` (``configUpdateCheckLocked``) and ``server/jetstream_versioning.go``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import (
    format_duration,
    format_time,
    parse_duration,
    parse_time,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import (
    SettingTable,
    choice,
    clean,
    duration,
    enable_only,
    fixed,
    flag,
    limit,
    metadata,
    nested,
    number,
    strings,
    text,
)

_TRANSFORM_OPTIONS = {"src": {"type": "str"}, "dest": {"type": "str", "required": True}}
PLACEMENT_OPTIONS = {"cluster": {"type": "str"}, "tags": {"type": "list", "elements": "str"}}
SOURCE_OPTIONS: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "opt_start_seq": {"type": "int"},
    "opt_start_time": {"type": "str"},
    "filter_subject": {"type": "str"},
    "subject_transforms": {"type": "list", "elements": "dict", "options": _TRANSFORM_OPTIONS},
    "domain": {"type": "str"},
    "external": {
        "type": "dict",
        "options": {"api": {"type": "str", "required": True}, "deliver": {"type": "str"}},
    },
}


def _source(value: dict[str, Any], what: str) -> dict[str, Any]:
    source: dict[str, Any] = {"name": value["name"]}
    if value.get("opt_start_seq"):
        source["opt_start_seq"] = int(value["opt_start_seq"])
    if value.get("opt_start_time"):
        source["opt_start_time"] = format_time(parse_time(value["opt_start_time"], f"{what}.opt_start_time"))
    if value.get("filter_subject"):
        source["filter_subject"] = value["filter_subject"]
    if value.get("subject_transforms"):
        source["subject_transforms"] = [clean(dict(item)) for item in value["subject_transforms"]]
    if value.get("domain"):
        # As natscli's --source-domain / --mirror-domain: the other domain's JetStream API.
        source["external"] = {"api": f"$JS.{value['domain']}.API"}
    if value.get("external"):
        source["external"] = clean(dict(value["external"]))
    return source


def _source_canon(value: Any) -> dict[str, Any]:
    source = clean(value or {})
    if source.get("opt_start_time"):
        source["opt_start_time"] = parse_time(source["opt_start_time"], "opt_start_time")
    return source


def _source_show(source: dict[str, Any]) -> dict[str, Any]:
    if source.get("opt_start_time"):
        return {**source, "opt_start_time": format_time(source["opt_start_time"])}
    return source


def _nested_dict(value: dict[str, Any], what: str) -> dict[str, Any] | None:
    # An empty mapping removes the setting (null in the server's JSON).
    return clean(dict(value)) or None


def _consumer_limits(value: dict[str, Any], what: str) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if value.get("inactive_threshold") is not None:
        limits["inactive_threshold"] = parse_duration(value["inactive_threshold"], f"{what}.inactive_threshold")
    if value.get("max_ack_pending") is not None:
        limits["max_ack_pending"] = int(value["max_ack_pending"])
    return limits


def _consumer_limits_show(limits: dict[str, Any]) -> dict[str, Any]:
    if limits.get("inactive_threshold"):
        return {**limits, "inactive_threshold": format_duration(limits["inactive_threshold"])}
    return limits


def _workqueue(before: Any, after: Any) -> str | None:
    if "workqueue" in (before, after):
        return "the server cannot change the retention of a stream to or from workqueue"
    return None


def _mirror(before: Any, after: Any) -> str | None:
    if after:
        return "the server cannot change a stream's mirror (removing it, to promote the mirror, is the only change)"
    return None


STREAM = SettingTable(
    "stream",
    [
        text("description"),
        strings("subjects"),
        choice("retention", ("limits", "interest", "workqueue"), "limits", refusal=_workqueue),
        choice("storage", ("file", "memory"), "file", refusal=fixed("the server cannot change the storage type")),
        number("replicas", key="num_replicas", unset=1),
        limit("max_consumers"),
        limit("max_msgs"),
        limit("max_bytes", sizes=True),
        duration("max_age"),
        limit("max_msgs_per_subject"),
        limit("max_msg_size", sizes=True),
        choice("discard", ("old", "new"), "old"),
        flag("discard_new_per_subject"),
        flag("no_ack"),
        duration("duplicate_window"),
        nested("placement", {"type": "dict", "options": PLACEMENT_OPTIONS}, _nested_dict),
        nested(
            "mirror",
            {"type": "dict", "options": SOURCE_OPTIONS, "mutually_exclusive": [("domain", "external")]},
            _source,
            _source_canon,
            show=_source_show,
            refusal=_mirror,
        ),
        nested(
            "sources",
            {
                "type": "list",
                "elements": "dict",
                "options": SOURCE_OPTIONS,
                "mutually_exclusive": [("domain", "external")],
            },
            lambda value, what: [_source(item, what) for item in value],
            lambda value: [_source_canon(item) for item in value or []],
            show=lambda sources: [_source_show(source) for source in sources],
        ),
        choice("compression", ("none", "s2"), "none"),
        number("first_seq", refusal=fixed("the first sequence is set only when a stream is created")),
        nested("subject_transform", {"type": "dict", "options": _TRANSFORM_OPTIONS}, _nested_dict),
        nested(
            "republish",
            {
                "type": "dict",
                "options": {
                    "src": {"type": "str"},
                    "dest": {"type": "str", "required": True},
                    "headers_only": {"type": "bool"},
                },
            },
            _nested_dict,
        ),
        flag("sealed", refusal=enable_only("the server cannot unseal a sealed stream")),
        flag("deny_delete", refusal=enable_only("the server cannot turn deny_delete off once it is on")),
        flag("deny_purge", refusal=enable_only("the server cannot turn deny_purge off once it is on")),
        flag("allow_rollup", key="allow_rollup_hdrs"),
        flag("allow_direct"),
        flag("mirror_direct"),
        metadata(),
        flag("allow_msg_ttl", level=1, refusal=enable_only("the server cannot turn per-message TTLs off once on")),
        duration("subject_delete_marker_ttl", level=1),
        nested(
            "consumer_limits",
            {
                "type": "dict",
                "options": {"inactive_threshold": {"type": "raw"}, "max_ack_pending": {"type": "int"}},
            },
            _consumer_limits,
            show=_consumer_limits_show,
        ),
        flag("allow_msg_counter", level=2, refusal=fixed("the server cannot turn counters on or off")),
        flag("allow_atomic", level=2),
        flag("allow_msg_schedules", level=2, refusal=enable_only("the server cannot turn message schedules off")),
        choice(
            "persist_mode",
            ("default", "async"),
            "default",
            value_levels={"async": 2},
            refusal=fixed("the server cannot change the persist mode"),
        ),
        flag("allow_batched", level=4),
    ],
)


def desired_stream(params: dict[str, Any]) -> dict[str, Any]:
    """The server JSON for the settings given, refusing combinations the server would silently rewrite.

    With subject_delete_marker_ttl or allow_msg_schedules the server turns allow_msg_ttl (markers only)
    and allow_rollup on and deny_purge off: asking for the opposite could never be idempotent.
    """
    desired = STREAM.desired(params)
    implied = {}
    if desired.get("subject_delete_marker_ttl"):
        implied = {"allow_msg_ttl": True, "allow_rollup_hdrs": True, "deny_purge": False}
    elif desired.get("allow_msg_schedules"):
        implied = {"allow_rollup_hdrs": True, "deny_purge": False}
    clashing = [STREAM.by_key[key].option for key, value in implied.items() if key in desired and desired[key] != value]
    if clashing:
        cause = "subject_delete_marker_ttl" if desired.get("subject_delete_marker_ttl") else "allow_msg_schedules"
        raise NatsOpsError(
            f"{cause} needs {', '.join(f'{STREAM.by_key[k].option}: {str(v).lower()}' for k, v in implied.items())}"
            f" (the server sets them so); leave {', '.join(clashing)} out or set them so"
        )
    return desired


def new_stream_config(name: str, desired: dict[str, Any]) -> dict[str, Any]:
    """What creating the stream sends: its name and the settings given; the server fills in the rest."""
    return {"name": name, **{key: value for key, value in desired.items() if value is not None}}


def adjust_update(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Settings an update must change too, though the user did not name them.

    The server refuses a duplicate window longer than max_age; when it chose that window itself (the
    user did not set one), lowering max_age below it must lower the window as creating would have.
    """
    extra: dict[str, Any] = {}
    max_age = desired.get("max_age")
    if max_age and "duplicate_window" not in desired and int(current.get("duplicate_window") or 0) > max_age:
        extra["duplicate_window"] = max_age
    return extra


def stream_holdings(info: dict[str, Any]) -> str | None:
    """What deleting the stream would lose, in words, or None when it is empty."""
    state = info.get("state") or {}
    messages, consumers = int(state.get("messages") or 0), int(state.get("consumer_count") or 0)
    lost = []
    if messages:
        lost.append(f"{messages} messages")
    if consumers:
        lost.append(f"{consumers} consumers")
    return " and ".join(lost) or None
