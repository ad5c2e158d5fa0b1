# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Mirrors of the primary site's streams in a standby site, each site its own JetStream domain.

A standby stream mirrors its origin over the leaf node link (``mirror.external.api = $JS.<domain>.API``)
and carries what promotion needs in its metadata: the origin's subjects (a mirror cannot have
subjects) and domain. Everything else it copies from the origin: limits, retention, storage,
compression, KV flags; sequences and timestamps are the origin's (nats-server stores each message at
the origin's sequence and time), which is what makes a mirror's last message the recovery point.

Streams a mirror must not copy are left out, with the reason: work-queue and interest streams (the
mirror's consumer, acknowledging nothing, would take their messages away), counter streams (a mirror
cannot count, and promotion cannot turn counting on), and mirrors (mirror their origin instead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import format_time, parse_time
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import user_metadata

ORIGIN_SUBJECTS = "natsops.origin_subjects"
ORIGIN_DOMAIN = "natsops.origin_domain"
# Replicas of the stream in the primary site, kept through failover and failback so that a site of fewer servers
# (a standby of one) does not leave the primary's streams with fewer replicas when they come home.
HOME_REPLICAS = "natsops.home_replicas"
PROMOTED_AT_SEQ = "natsops.promoted_at_seq"  # set by promotion: what of its origin a promoted stream holds
FENCED_SUBJECT_PREFIX = "natsops.fenced"  # a switch-over's origin takes only natsops.fenced.<stream>
KV_PREFIX = "KV_"
# Copied from the origin as they are. Left out: subjects, sources, placement, first_seq, sealed, no_ack and
# the settings a mirror cannot have (counters, schedules, atomic and batched publish, delete markers).
_COPIED = (
    "description",
    "retention",
    "storage",
    "num_replicas",
    "max_consumers",
    "max_msgs",
    "max_bytes",
    "max_age",
    "max_msgs_per_subject",
    "max_msg_size",
    "discard",
    "discard_new_per_subject",
    "duplicate_window",
    "compression",
    "allow_rollup_hdrs",
    "allow_direct",
    "deny_delete",
    "deny_purge",
    "allow_msg_ttl",
    "consumer_limits",
)
# The mirror's last contact with its origin (nanoseconds): heartbeats come every second, and nats-server
# calls a mirror stalled after 10 s without one.
RECENT_CONTACT_NS = 3_000_000_000
STALLED_CONTACT_NS = 10_000_000_000


def origin_api(domain: str) -> str:
    return f"$JS.{domain}.API"


def why_not_mirrored(config: dict[str, Any]) -> str | None:
    """Why a stream of the primary gets no mirror, or None when it does."""
    retention = config.get("retention") or "limits"
    if retention != "limits":
        return (
            f"{retention} retention: the mirror's consumer would remove the messages it copies; "
            "back this stream up instead (natsops.jetstream.stream_backup)"
        )
    if config.get("allow_msg_counter"):
        return "a counter stream: a mirror cannot count, and a promoted mirror cannot start counting"
    if config.get("mirror"):
        return f"it is itself a mirror of {config['mirror'].get('name')}: mirror that stream instead"
    if not config.get("subjects"):
        return "it has no subjects of its own (it only sources other streams): nothing would publish to it"
    return None


def is_bucket(config: dict[str, Any]) -> bool:
    name = str(config.get("name") or "")
    return name.startswith(KV_PREFIX) and (config.get("subjects") or []) == [f"$KV.{name[len(KV_PREFIX) :]}.>"]


def mirror_config(origin: dict[str, Any], domain: str, replicas: int | None) -> dict[str, Any]:
    """The standby stream's configuration for the origin's (as STREAM.INFO gives it), in the server's JSON.

    Replicas: ``replicas`` if given, else the stream's home replicas (a failback mirrors a standby of fewer
    servers), else the origin's.
    """
    config = {key: origin[key] for key in _COPIED if key in origin}
    metadata = user_metadata(origin.get("metadata"))
    home_replicas = metadata.get(HOME_REPLICAS) or str(origin.get("num_replicas") or 1)
    config["num_replicas"] = replicas or int(home_replicas)
    config["mirror"] = {"name": origin["name"], "external": {"api": origin_api(domain)}}
    metadata.pop(PROMOTED_AT_SEQ, None)
    config["metadata"] = {
        **metadata,
        ORIGIN_SUBJECTS: json.dumps(live_subjects(origin)),
        ORIGIN_DOMAIN: domain,
        HOME_REPLICAS: home_replicas,
    }
    if is_bucket(origin):
        # As the KV clients create bucket mirrors: the mirror answers direct gets for the bucket.
        config["mirror_direct"] = True
    return config


def live_subjects(config: dict[str, Any]) -> list[str]:
    """The subjects a stream takes, or took before a switch-over fenced it."""
    subjects = config.get("subjects") or []
    if len(subjects) == 1 and subjects[0].startswith(FENCED_SUBJECT_PREFIX + "."):
        return origin_subjects(config)
    return subjects


def origin_subjects(config: dict[str, Any]) -> list[str]:
    """The subjects the standby stream takes when promoted, as recorded in its metadata."""
    recorded = (config.get("metadata") or {}).get(ORIGIN_SUBJECTS)
    try:
        subjects = json.loads(recorded) if recorded else None
    except ValueError:
        subjects = None
    if not isinstance(subjects, list) or not subjects or not all(isinstance(item, str) for item in subjects):
        raise NatsOpsError(
            f"stream {config.get('name')}: its metadata holds no origin subjects ({ORIGIN_SUBJECTS}), so promoting it "
            "would leave it without subjects. Create it with natsops.jetstream.stream_mirror, or give subjects",
            reason="no_origin_subjects",
        )
    return subjects


class MirrorHealth(str, Enum):
    """How a mirror stands with its origin, from its last contact and error."""

    CURRENT = "current"  # heard from its origin within 3 s, nothing left to copy
    CATCHING_UP = "catching_up"  # heard from within 3 s, messages left to copy
    SLOW = "slow"  # last contact 3 to 10 s ago
    STALLED = "stalled"  # no contact for 10 s or more: the origin is unreachable (the server keeps retrying)
    NEVER_SYNCED = "never_synced"  # no contact since it was created or the server started
    FAILED = "failed"  # the origin answered with an error (its stream is missing, for example)


@dataclass
class OriginState:
    """The origin stream's progress, read through the leaf node link."""

    last_seq: int
    last_ts: int  # ns since the epoch

    @classmethod
    def of(cls, info: dict[str, Any]) -> OriginState:
        state = info.get("state") or {}
        return cls(int(state.get("last_seq") or 0), _epoch_ns(state.get("last_ts")))


@dataclass
class MirrorStatus:
    """One standby stream: what it holds of its origin, and how recently it heard from it."""

    stream: str
    origin: str
    domain: str | None
    last_seq: int
    last_ts: int  # ns since the epoch, the origin's time of the last message copied
    lag: int  # messages the origin still had queued when the last one arrived (stale while out of contact)
    active_ns: int  # since the last message or heartbeat from the origin; -1: never
    error: dict[str, Any] | None
    origin_state: OriginState | None = None

    @classmethod
    def of(cls, info: dict[str, Any], origin_state: OriginState | None = None) -> MirrorStatus:
        config, state, mirror = info["config"], info.get("state") or {}, info.get("mirror") or {}
        return cls(
            stream=config["name"],
            origin=(config.get("mirror") or {}).get("name") or mirror.get("name") or "",
            domain=(config.get("metadata") or {}).get(ORIGIN_DOMAIN),
            last_seq=int(state.get("last_seq") or 0),
            last_ts=_epoch_ns(state.get("last_ts")),
            lag=int(mirror.get("lag") or 0),
            active_ns=int(mirror.get("active", -1)),
            error=mirror.get("error") or None,
            origin_state=origin_state,
        )

    @property
    def behind_messages(self) -> int:
        """Messages of the origin not yet copied: from the origin's state when read, else the mirror's lag."""
        if self.origin_state is not None:
            return max(0, self.origin_state.last_seq - self.last_seq)
        return self.lag

    @property
    def behind_seconds(self) -> float | None:
        """The origin's time of its last message less the mirror's; None without the origin's state."""
        if self.origin_state is None or (self.behind_messages and not self.last_ts):
            return None  # not known, or the mirror holds nothing yet: no time to measure from
        if self.behind_messages == 0 or not self.origin_state.last_ts:
            return 0.0
        return round(max(0, self.origin_state.last_ts - self.last_ts) / 1e9, 3)

    @property
    def health(self) -> MirrorHealth:
        if self.error:
            return MirrorHealth.FAILED
        if self.active_ns < 0:
            return MirrorHealth.NEVER_SYNCED
        if self.active_ns >= STALLED_CONTACT_NS:
            return MirrorHealth.STALLED
        if self.active_ns >= RECENT_CONTACT_NS:
            return MirrorHealth.SLOW
        return MirrorHealth.CATCHING_UP if self.behind_messages else MirrorHealth.CURRENT

    @property
    def caught_up(self) -> bool:
        """In contact and holding everything the origin held when its state was read (before the mirror's)."""
        return self.health is MirrorHealth.CURRENT and self.origin_state is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "origin": self.origin,
            "origin_domain": self.domain,
            "health": self.health.value,
            "caught_up": self.caught_up,
            "behind_messages": self.behind_messages,
            "behind_seconds": self.behind_seconds,
            "last_seq": self.last_seq,
            "last_time": _format_ns(self.last_ts),
            "contact_seconds_ago": None if self.active_ns < 0 else round(self.active_ns / 1e9, 3),
            "error": (self.error or {}).get("description"),
            "origin_last_seq": self.origin_state.last_seq if self.origin_state else None,
            "origin_last_time": _format_ns(self.origin_state.last_ts) if self.origin_state else None,
        }


def is_mirror(info: dict[str, Any]) -> bool:
    return bool((info.get("config") or {}).get("mirror"))


def _epoch_ns(value: Any) -> int:
    if not value or str(value).startswith("0001-01-01"):
        return 0
    return parse_time(value, "last_ts")


def _format_ns(epoch_ns: int) -> str | None:
    return format_time(epoch_ns) if epoch_ns else None
