# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Key-value and object store buckets: telling them among streams, and what each holds as a bucket.

A bucket is a stream (``KV_<bucket>``, ``OBJ_<bucket>``) and is backed up and restored as one. What
makes it a bucket is checked the way the KV and object store APIs read it: a backup records each
bucket's view in its manifest (every key's revisions with their operation, TTL and value; every
object's name, size, chunks and digest), and a restore reads the restored bucket the same way and
compares. A restore also reads every object's chunks and checks them against the object's SHA-256
digest, so a bucket is checked even when its backup recorded no view.

Each read is one pass of an ephemeral consumer that is deleted afterwards (the nats-py watchers leave
theirs for five minutes, where the next backup would find them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

KV = "kv"
OBJECT = "object"
# Seconds a read waits for the next message before it counts as stalled.
READ_TIMEOUT = 10.0
# What the reading consumer may have on the wire: flow control keeps the client's buffer this small.
PENDING_BYTES_LIMIT = 64 * 1024 * 1024
KV_OPERATION = "KV-Operation"
MARKER_REASON = "Nats-Marker-Reason"  # 2.11+: markers the server places (TTL expiry, purge, remove)
TTL = "Nats-TTL"


@dataclass(frozen=True)
class Bucket:
    kind: str  # KV or OBJECT
    name: str  # the bucket's name, without the stream's prefix
    stream: str

    @property
    def label(self) -> str:
        return f"{'key-value' if self.kind == KV else 'object store'} bucket {self.name}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


def bucket_of(config: dict[str, Any]) -> Bucket | None:
    """The bucket a stream holds, from its name and subjects as the KV and object store APIs make them.

    A bucket's mirror has no subjects of its own and is read as the stream it is.
    """
    stream = str(config.get("name") or "")
    subjects = sorted(config.get("subjects") or [])
    if stream.startswith("KV_") and subjects == [f"$KV.{stream[3:]}.>"]:
        return Bucket(KV, stream[3:], stream)
    name = stream[4:]
    if stream.startswith("OBJ_") and subjects == sorted([f"$O.{name}.C.>", f"$O.{name}.M.>"]):
        return Bucket(OBJECT, name, stream)
    return None


async def _messages(api: Any, stream: str, subject: str, last_per_subject: bool = False) -> AsyncIterator[Any]:
    """The stream's messages on ``subject`` in order, through an ephemeral consumer deleted at the end."""
    client = api.client
    inbox = client.new_inbox()
    arrived: asyncio.Queue = asyncio.Queue()
    subscription = await client.subscribe(
        inbox, cb=arrived.put, pending_bytes_limit=PENDING_BYTES_LIMIT * 2, pending_msgs_limit=1024 * 1024
    )
    consumer = None
    try:
        config = {
            "deliver_subject": inbox,
            "deliver_policy": "last_per_subject" if last_per_subject else "all",
            "ack_policy": "none",
            "filter_subject": subject,
            "flow_control": True,
            "idle_heartbeat": 1_000_000_000,
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": 5_000_000_000,  # gone soon even if this process dies before deleting it
        }
        created = await api.request(f"CONSUMER.CREATE.{stream}", {"stream_name": stream, "config": config})
        consumer = created["name"]
        pending = int(created.get("num_pending") or 0)
        while pending:
            try:
                msg = await asyncio.wait_for(arrived.get(), READ_TIMEOUT)
            except asyncio.TimeoutError:
                raise NatsOpsError(f"reading stream {stream} stalled: no message for {READ_TIMEOUT:.0f}s") from None
            status = (msg.headers or {}).get("Status")
            if status == "100":  # a heartbeat, or flow control that waits for this answer
                if msg.reply:
                    await client.publish(msg.reply, b"")
                continue
            pending = msg.metadata.num_pending
            yield msg
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
        if consumer:
            with contextlib.suppress(Exception):
                await api.request(f"CONSUMER.DELETE.{stream}.{consumer}")


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _operation(headers: dict[str, str]) -> str:
    if KV_OPERATION in headers:
        return headers[KV_OPERATION]
    return {"MaxAge": "PURGE", "Purge": "PURGE", "Remove": "DEL"}.get(headers.get(MARKER_REASON, ""), "PUT")


async def kv_view(api: Any, bucket: Bucket) -> dict[str, Any]:
    """Every revision of every key: counts, and a digest of (key, revision, operation, TTL, value)."""
    prefix = f"$KV.{bucket.name}."
    lines: list[str] = []
    keys: set[str] = set()
    counts = {"PUT": 0, "DEL": 0, "PURGE": 0}
    async for msg in _messages(api, bucket.stream, f"{prefix}>"):
        headers = msg.headers or {}
        key = msg.subject[len(prefix) :]
        operation = _operation(headers)
        counts[operation] = counts.get(operation, 0) + 1
        keys.add(key)
        value = hashlib.sha256(msg.data or b"").hexdigest()
        lines.append(f"{key}\t{msg.metadata.sequence.stream}\t{operation}\t{headers.get(TTL, '')}\t{value}")
    return {
        "keys": len(keys),
        "revisions": len(lines),
        "deletes": counts.get("DEL", 0),
        "purges": counts.get("PURGE", 0),
        "digest": _digest(lines),
    }


async def _object_infos(api: Any, bucket: Bucket) -> list[dict[str, Any]]:
    """The latest metadata of every object, deleted ones included."""
    infos = []
    async for msg in _messages(api, bucket.stream, f"$O.{bucket.name}.M.>", last_per_subject=True):
        try:
            infos.append(json.loads(msg.data))
        except ValueError:
            raise NatsOpsError(f"{bucket.label}: the metadata at {msg.subject} is not JSON") from None
    return infos


async def object_view(api: Any, bucket: Bucket) -> dict[str, Any]:
    """Every object's metadata: counts, and a digest of (name, size, chunks, digest, deleted)."""
    infos = await _object_infos(api, bucket)
    lines = sorted(
        f"{info.get('name')}\t{info.get('size', 0)}\t{info.get('chunks', 0)}\t{info.get('digest', '')}\t"
        f"{'deleted' if info.get('deleted') else 'live'}"
        for info in infos
    )
    live = [info for info in infos if not info.get("deleted")]
    return {
        "objects": len(live),
        "deleted": len(infos) - len(live),
        "bytes": sum(int(info.get("size") or 0) for info in live),
        "digest": _digest(lines),
    }


async def objects_with_bad_digests(api: Any, bucket: Bucket) -> list[str]:
    """The live objects whose chunks, read in one pass over the bucket, do not match their SHA-256 digest."""
    live = {info["nuid"]: info for info in await _object_infos(api, bucket) if not info.get("deleted")}
    hashes = {nuid: hashlib.sha256() for nuid in live}
    prefix = f"$O.{bucket.name}.C."
    async for msg in _messages(api, bucket.stream, f"{prefix}>"):
        chunk_of = hashes.get(msg.subject[len(prefix) :])
        if chunk_of is not None:
            chunk_of.update(msg.data or b"")
    bad = []
    for nuid, info in live.items():
        recorded = str(info.get("digest") or "")
        algorithm, _separator, encoded = recorded.partition("=")
        if algorithm.upper() != "SHA-256":
            bad.append(f"{info.get('name')} (digest {recorded!r} is not SHA-256)")
            continue
        try:
            expected = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            bad.append(f"{info.get('name')} (digest {recorded!r} is not base64)")
            continue
        if hashes[nuid].digest() != expected:
            bad.append(str(info.get("name")))
    return sorted(bad)


async def bucket_view(api: Any, bucket: Bucket) -> dict[str, Any]:
    """What a manifest records of a bucket."""
    return await (kv_view(api, bucket) if bucket.kind == KV else object_view(api, bucket))


def _position(state: dict[str, Any]) -> tuple[int, int, int]:
    return int(state.get("messages") or 0), int(state.get("first_seq") or 0), int(state.get("last_seq") or 0)


async def recorded_view(api: Any, bucket: Bucket, snapshot_state: dict[str, Any]) -> dict[str, Any]:
    """What a backup's manifest records of a bucket: its view, read right after the snapshot.

    The view is kept only if the stream did not change between the snapshot and the end of the read
    (same messages and sequences), so that it describes exactly what the snapshot holds.
    """
    record: dict[str, Any] = {**bucket.as_dict(), "view": None}
    try:
        view = await bucket_view(api, bucket)
        after = await api.stream_info(bucket.stream)
    except NatsOpsError as exc:
        return {**record, "why": f"reading it failed: {exc.msg}"}
    if after is None or _position(after.get("state") or {}) != _position(snapshot_state):
        return {**record, "why": "it changed while it was backed up, so the view would not describe the backup"}
    return {**record, "view": view}


async def verify_bucket(api: Any, bucket: Bucket, expected: dict[str, Any] | None) -> dict[str, Any]:
    """Read a restored bucket as its API does and compare it with the view its backup recorded.

    Every live object's chunks are checked against its digest, also when the backup recorded no view
    (a ``nats`` CLI backup, or a bucket that changed while it was backed up). Raises NatsOpsError
    naming what differs; returns what was checked.
    """
    try:
        actual = await bucket_view(api, bucket)
    except NatsOpsError as exc:
        raise NatsOpsError(
            f"reading the restored {bucket.label} failed ({exc.msg}): the credentials need to create a consumer "
            "on it; or set verify_buckets: false to restore buckets without reading them"
        ) from None
    problems = [
        f"{key}: expected {value}, got {actual.get(key)}"
        for key, value in (expected or {}).items()
        if actual.get(key) != value
    ]
    if bucket.kind == OBJECT:
        bad = await objects_with_bad_digests(api, bucket)  # a failure to read here was ruled out just above
        if bad:
            problems.append(f"objects whose data does not match their digest: {', '.join(bad)}")
    if problems:
        raise NatsOpsError(
            f"the restored {bucket.label} does not match its backup ({'; '.join(problems)})",
            expected=expected,
            actual=actual,
        )
    return {**bucket.as_dict(), "view": actual, "compared_with_backup": expected is not None}
