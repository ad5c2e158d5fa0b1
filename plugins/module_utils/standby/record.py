# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""The standby record: what a failover needs from the primary site and cannot read once it is gone.

Mirrors carry messages, not consumers. Each run of stream_mirror writes, per mirrored stream, the
origin's progress (last sequence and time) and every durable consumer's configuration and position
(ack floor, delivered, acknowledgements pending). stream_promote recreates the consumers from it on
the promoted streams and compares the origin's recorded progress with what the mirror holds.

One JSON file, replaced atomically (a reader never sees half of one), readable by its owner only: it
holds no secrets, but consumer configurations can name internal subjects.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, disk_errors
from ansible_collections.natsops.jetstream.plugins.module_utils.core.files import write_atomically
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi, is_durable

RECORD_VERSION = 1


@dataclass
class ConsumerRecord:
    config: dict[str, Any]
    ack_floor: int  # stream sequence: everything up to it is acknowledged
    delivered: int  # stream sequence of the last message delivered
    ack_pending: int

    @classmethod
    def of(cls, info: dict[str, Any]) -> ConsumerRecord:
        return cls(
            config=info["config"],
            ack_floor=int((info.get("ack_floor") or {}).get("stream_seq") or 0),
            delivered=int((info.get("delivered") or {}).get("stream_seq") or 0),
            ack_pending=int(info.get("num_ack_pending") or 0),
        )


@dataclass
class StreamRecord:
    last_seq: int
    last_ts: str | None
    consumers: dict[str, ConsumerRecord] = field(default_factory=dict)


@dataclass
class StandbyRecord:
    origin_domain: str
    recorded_at: float  # seconds since the epoch
    streams: dict[str, StreamRecord] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        text = json.dumps({"version": RECORD_VERSION, **asdict(self)}, indent=2, sort_keys=True) + "\n"
        with disk_errors("the standby record"):
            write_atomically(path, text)

    @classmethod
    def load(cls, path: Path) -> StandbyRecord:
        try:
            data = json.loads(path.read_text())
            if data.get("version") != RECORD_VERSION:
                raise ValueError(f"version {data.get('version')!r}, this collection reads {RECORD_VERSION}")
            streams = {
                stream: StreamRecord(
                    last_seq=int(entry["last_seq"]),
                    last_ts=entry.get("last_ts"),
                    consumers={name: ConsumerRecord(**kept) for name, kept in (entry.get("consumers") or {}).items()},
                )
                for stream, entry in (data.get("streams") or {}).items()
            }
            return cls(str(data["origin_domain"]), float(data["recorded_at"]), streams)
        except FileNotFoundError:
            raise NatsOpsError(
                f"no standby record at {path}: stream_mirror writes it (option record) on every run; "
                "without it, leave record out and recreate the consumers yourself",
                reason="no_record",
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NatsOpsError(f"the standby record {path} cannot be read: {exc}", reason="bad_record") from None

    @property
    def age_seconds(self) -> float:
        return round(time.time() - self.recorded_at, 1)


async def record_stream(origin: JetStreamApi, info: dict[str, Any]) -> StreamRecord:
    """The origin stream's progress and durable consumers, read through the leaf node link."""
    state = info.get("state") or {}
    consumers = {
        consumer["name"]: ConsumerRecord.of(consumer)
        for consumer in await origin.consumers(info["config"]["name"])
        if is_durable(consumer)
    }
    return StreamRecord(int(state.get("last_seq") or 0), state.get("last_ts"), consumers)
