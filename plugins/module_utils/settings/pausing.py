# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Pausing and resuming consumers (``$JS.API.CONSUMER.PAUSE``, nats-server 2.11+, JetStream API level 1).

A paused consumer delivers nothing until its pause ends or it is resumed; its state is kept. A restore
can leave the consumers it brings back paused, so that applications are not flooded with messages
(redeliveries included) before the operator has checked what came back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import (
    format_time,
    parse_duration,
    parse_time,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

PAUSE_API_LEVEL = 1  # nats-server 2.11
PAUSE_RELEASE = (2, 11, 0)


@dataclass(frozen=True)
class PauseUntil:
    """When a pause ends: a fixed time, or a duration from whenever it is applied."""

    epoch_ns: int
    relative: bool  # given as a duration: "at least this long from now"

    @property
    def text(self) -> str:
        return format_time(self.epoch_ns)


def parse_until(value: Any, what: str, now_ns: int | None = None) -> PauseUntil:
    """A pause's end from an RFC 3339 time or a duration from now (``2h``, ``30m``, ``1d``), in the future.

    The server takes a pause that ends in the past and reports the consumer not paused: refused here.
    """
    now = time.time_ns() if now_ns is None else now_ns
    try:
        until = PauseUntil(parse_time(value, what), relative=False)
    except NatsOpsError:
        try:
            until = PauseUntil(now + parse_duration(value, what), relative=True)
        except NatsOpsError:
            raise NatsOpsError(
                f"{what}: {value!r} is neither an RFC 3339 time (2026-12-24T18:00:00Z) nor a duration (2h, 30m, 1d)"
            ) from None
    if until.epoch_ns <= now:
        problem = "is no time at all" if until.relative else f"is in the past ({until.text})"
        raise NatsOpsError(f"{what}: {value} {problem}, and would pause nothing: give a later time or a duration (2h)")
    return until


def pause_state(info: dict[str, Any]) -> dict[str, Any]:
    """Whether a consumer is paused and until when, from its info."""
    paused = bool(info.get("paused"))
    until = (info.get("config") or {}).get("pause_until")
    return {"paused": paused, "pause_until": until if paused else None}


async def set_pause(api: Any, stream: str, consumer: str, until: PauseUntil | None) -> dict[str, Any]:
    """Pause the consumer until ``until``, or resume it (None); its pause state afterwards."""
    body = {"pause_until": until.text} if until else {}
    reply = await api.request(f"CONSUMER.PAUSE.{stream}.{consumer}", body)
    paused = bool(reply.get("paused"))
    return {"paused": paused, "pause_until": reply.get("pause_until") if paused else None}
