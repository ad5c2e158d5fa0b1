# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Promoting a standby mirror to the stream applications write to, and putting its consumers back.

Promotion is one STREAM.UPDATE of the mirror's configuration without ``mirror`` and with the origin's
subjects (nats-server 2.12+, JetStream API level 2; older servers refuse any change of a mirror with
err_code 10055). The store is kept: sequences and times go on from the origin's.

Consumers are not mirrored; they are created again from the standby record at the first message
their group had not acknowledged when it was recorded, never beyond the stream's end (a start past it
would skip the first messages published after the failover). What was acknowledged after the record
is delivered again: at least once, never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, poll
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import outgoing
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import ConsumerAsset, StreamAsset
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import (
    FENCED_SUBJECT_PREFIX,
    ORIGIN_SUBJECTS,
    PROMOTED_AT_SEQ,
    MirrorStatus,
    is_bucket,
    origin_subjects,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.record import ConsumerRecord

PROMOTION_API_LEVEL = 2

# How long the origin's domain gets to answer before it counts as gone.
ORIGIN_PROBE_TIMEOUT = 2.0
_START_FIELDS = ("deliver_policy", "opt_start_seq", "opt_start_time")


def promoted_config(config: dict[str, Any], last_seq: int) -> dict[str, Any]:
    """The mirror's configuration as a stream of its own, taking the origin's subjects.

    Its metadata keeps the recovery point (``natsops.promoted_at_seq``): what of the origin it holds. A failback
    compares the old origin's stream with it to tell what only the old origin has.
    """
    subjects = origin_subjects(config)
    promoted = {key: value for key, value in config.items() if key != "mirror"}
    promoted["subjects"] = subjects
    promoted["metadata"] = {**(config.get("metadata") or {}), PROMOTED_AT_SEQ: str(last_seq)}
    # mirror_direct answers direct gets in the origin's name; a stream of its own answers in its name.
    promoted["mirror_direct"] = False
    if is_bucket(promoted):
        promoted["allow_direct"] = True  # the KV clients read a bucket by direct get
    return outgoing(promoted)


def is_promoted(config: dict[str, Any]) -> bool:
    """A former mirror that takes its origin's subjects now (what a promotion leaves)."""
    if config.get("mirror"):
        return False
    try:
        return sorted(config.get("subjects") or []) == sorted(origin_subjects(config))
    except NatsOpsError:
        return False


async def require_promotion_support(api: JetStreamApi, server: str) -> None:
    level = await api.api_level()
    if level < PROMOTION_API_LEVEL:
        raise NatsOpsError(
            f"the standby's servers cannot promote a mirror ({server}, JetStream API level {level}): nats-server "
            "before 2.12 refuses any change of a mirror's configuration (err_code 10055). Upgrade the standby site "
            "to 2.12 or later; on older servers the only way is copying into a new stream, which renumbers messages",
            reason="promotion_unsupported",
        )


async def origin_answers(origin: JetStreamApi, stream: str) -> bool:
    """Whether the origin's domain answers for the stream (found or not) through the leaf node link."""
    try:
        await origin.request(f"STREAM.INFO.{stream}", timeout=ORIGIN_PROBE_TIMEOUT)
    except NoAnswer:
        return False
    except NatsOpsError:
        return True  # an error reply (stream not found, ...) is an answer: the domain is up
    return True


@dataclass
class RecoveryPoint:
    """What the promoted stream holds of its origin: everything up to last_seq, the origin's time of it."""

    status: MirrorStatus

    def as_dict(self) -> dict[str, Any]:
        facts = self.status.as_dict()
        return {
            "last_seq": facts["last_seq"],
            "last_time": facts["last_time"],
            "contact_seconds_ago": facts["contact_seconds_ago"],
            "lag_at_last_contact": self.status.lag,
        }


def start_sequence(consumer: ConsumerRecord, last_seq: int) -> int:
    """The first message the recreated consumer delivers: after the recorded ack floor, at most one past the end."""
    return min(consumer.ack_floor + 1, last_seq + 1)


def consumer_config(consumer: ConsumerRecord, start: int) -> dict[str, Any]:
    """The recorded configuration, starting at ``start`` instead of where it once started."""
    config = {key: value for key, value in consumer.config.items() if key not in _START_FIELDS}
    return {**config, "deliver_policy": "by_start_sequence", "opt_start_seq": start}


async def recreate_consumers(
    api: JetStreamApi, stream: str, recorded: dict[str, ConsumerRecord], last_seq: int, check_mode: bool
) -> list[dict[str, Any]]:
    """Create each recorded consumer the stream lacks, at its start sequence; those that exist are left alone."""
    done = []
    for name, consumer in sorted(recorded.items()):
        asset = ConsumerAsset(api, stream, name)
        start = start_sequence(consumer, last_seq)
        entry = {
            "consumer": name,
            "start_seq": start,
            "recorded_ack_floor": consumer.ack_floor,
            "recorded_ack_pending": consumer.ack_pending,
        }
        if await asset.info() is not None:
            done.append({**entry, "action": "none"})
            continue
        if not check_mode:
            await asset.create(consumer_config(consumer, start))
        done.append({**entry, "action": "create"})
    return done


def fenced_subjects(stream: str) -> list[str]:
    """What a switch-over leaves the origin taking: a subject no client publishes to, so writes get no responders."""
    return [f"{FENCED_SUBJECT_PREFIX}.{stream}"]


async def fence_origin(origin: JetStreamApi, stream: str) -> dict[str, Any]:
    """Stop the origin taking writes (its subjects set aside in its metadata); its state once fenced."""
    info = await origin.stream_info(stream)
    if info is None:
        raise NatsOpsError(
            f"a switch-over of {stream} needs its origin, which has no stream of that name: nothing was changed",
            reason="origin_missing",
        )
    config = info["config"]
    if config.get("subjects") != fenced_subjects(stream):
        metadata = {**(config.get("metadata") or {}), ORIGIN_SUBJECTS: json.dumps(config.get("subjects") or [])}
        info = await StreamAsset(origin, stream).update(
            outgoing({**config, "subjects": fenced_subjects(stream), "metadata": metadata})
        )
    return info


async def unfence_origin(origin: JetStreamApi, stream: str) -> None:
    """Give a fenced origin its subjects back (a switch-over that could not finish)."""
    info = await origin.stream_info(stream)
    if info is None or info["config"].get("subjects") != fenced_subjects(stream):
        return
    await StreamAsset(origin, stream).update(outgoing({**info["config"], "subjects": origin_subjects(info["config"])}))


async def wait_until_copied(
    standby: JetStreamApi, stream: str, origin_last_seq: int, deadline: Deadline
) -> dict[str, Any]:
    """The mirror's info once it holds the fenced origin's last message; fails at the deadline."""

    async def read() -> dict[str, Any]:
        return await standby.stream_info(stream) or {}

    def copied(info: dict[str, Any]) -> bool:
        return int((info.get("state") or {}).get("last_seq") or 0) >= origin_last_seq

    info = await poll(read, deadline, 0.2, until=copied)
    if not copied(info):
        raise NatsOpsError(
            f"the mirror {stream} did not copy its fenced origin's last message ({origin_last_seq}) in time",
            reason="not_caught_up",
        )
    return info
