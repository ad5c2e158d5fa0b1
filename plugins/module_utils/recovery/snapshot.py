# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Backup engine: JetStream stream snapshots streamed to disk in the natscli layout.

Protocol (as nats-server's jetstream_api.go serves it and natscli uses it): subscribe to an inbox, request
``STREAM.SNAPSHOT.<stream>``, ack every full chunk on its reply subject
``$JS.SNAPSHOT.ACK.<stream>.<id>.<len>.<index>``; the last, partial chunk has no reply; an empty
message ends the snapshot (status 204 or no headers = success, anything else = failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import Connection, server_info
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import DiskError, NatsOpsError, disk_errors
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi, JetStreamApiError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.version import COLLECTION_NAME, COLLECTION_VERSION
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (
    BACKUP_JSON,
    DATA_FILE,
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    BackgroundWriter,
    archive_format,
    fsync_dir,
    sha256_bytes,
    write_json,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.buckets import Bucket, bucket_of, recorded_view

MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 1024 * 1024
MIN_WINDOW_SIZE = 1024
MAX_WINDOW_SIZE = 32 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 128 * 1024
WINDOW_SIZE_API_LEVEL = 3
# Generous client-side buffer: the server never has more than window_size bytes in flight, so
# hitting this limit means something is badly wrong, and it is reported as a dropped chunk.
PENDING_BYTES_LIMIT = 256 * 1024 * 1024
PENDING_MSGS_LIMIT = 1024 * 1024
MIB = 1024 * 1024
# How often a wait for chunks looks at the connection: a lost one fails the backup this soon.
CONNECTION_CHECK_INTERVAL = 0.5
# The first release that snapshots memory-storage streams (its memory store writes a V2 archive; older
# ones answer a snapshot request for them with an error).
MEMORY_SNAPSHOTS = (2, 15, 0)


@dataclass
class SnapshotOptions:
    consumers: bool = True
    check: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    window_size: int | None = None
    stall_timeout: float = 10.0
    check_timeout: float = 3600.0


@dataclass
class SnapshotResult:
    stream: str
    path: str
    bytes: int
    sha256: str
    messages: int
    first_seq: int
    last_seq: int
    consumers: list[str]
    consumers_included: bool
    archive_format: str  # v1 (tar) or v2 (NATSARC1, nats-server 2.15+)
    bucket: dict[str, str] | None  # kind and name, for a key-value or object store bucket
    chunks: int
    duration: float
    throughput_mib_s: float
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        result = dict(self.__dict__)
        result.pop("warnings")
        return result


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def validate_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise NatsOpsError(
            f"chunk_size {chunk_size} is outside what the server accepts ({MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes)"
        )


def chunk_index(reply: str) -> int:
    """The chunk counter at the end of ``$JS.SNAPSHOT.ACK.<stream>.<id>.<len>.<index>``."""
    try:
        return int(reply.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        raise NatsOpsError(f"unexpected snapshot chunk reply subject {reply!r}") from None


def end_status(headers: dict[str, str] | None) -> tuple[bool, str]:
    """Whether the empty end-of-snapshot message reports success, and the server's words."""
    if not headers:
        return True, ""
    status = str(headers.get("Status") or "")
    description = str(headers.get("Description") or "")
    if not status or status == "204":
        return True, description
    return False, f"status {status} {description}".strip()


def server_facts(connection: Connection, api_level: int) -> dict[str, Any]:
    info = server_info(connection.client)
    return {
        "name": info.get("server_name"),
        "version": info.get("version"),
        "cluster": info.get("cluster"),
        "api_level": api_level,
    }


async def snapshot_stream(
    connection: Connection, api: JetStreamApi, stream: str, directory: Path, options: SnapshotOptions
) -> SnapshotResult:
    """Write one stream's snapshot into ``directory`` (which must exist and be empty).

    The data first, as the server sends it (the consumers' positions are read meanwhile); then backup.json,
    the config and state the server answered with; then manifest.json, our own facts.
    """
    started_at, started = utc_now(), time.monotonic()
    api_level = await api.api_level()
    warnings: list[str] = []
    request = _snapshot_request(options, api_level, warnings)
    taken = await _take_snapshot(connection, api, stream, directory / DATA_FILE, request, options, warnings)
    backup = {"config": taken.reply.get("config") or {}, "state": taken.reply.get("state") or {}}
    with disk_errors(f"backup of {stream} failed"):
        backup_bytes = write_json(directory / BACKUP_JSON, backup)
        archive = archive_format(directory / DATA_FILE).value
    bucket = bucket_of(backup["config"])
    bucket_record = await _bucket_record(api, stream, bucket, backup["state"], warnings)
    duration = time.monotonic() - started
    result = _result(stream, directory, taken, backup["state"], archive, bucket, options, duration, warnings)
    server = server_facts(connection, api_level)
    manifest = _manifest(result, taken, backup, backup_bytes, bucket_record, options, request, server, started_at)
    with disk_errors(f"backup of {stream} failed"):
        write_json(directory / MANIFEST, manifest)
        fsync_dir(directory)  # the three names in it, durable before the backup is committed
    return result


def _snapshot_request(options: SnapshotOptions, api_level: int, warnings: list[str]) -> dict[str, Any]:
    """The body of ``STREAM.SNAPSHOT`` (without the subject to deliver to); window_size only where it is known."""
    request: dict[str, Any] = {
        "no_consumers": not options.consumers,
        "chunk_size": options.chunk_size,
        "jsck": options.check,
    }
    if options.window_size:
        if api_level >= WINDOW_SIZE_API_LEVEL:
            request["window_size"] = options.window_size
        else:
            warnings.append(f"window_size ignored: the server's API level {api_level} predates it")
    return request


@dataclass
class _Taken:
    """What a snapshot brought: the server's answer (config and state), the data written, the consumers' positions."""

    reply: dict[str, Any]
    chunks: int
    size: int
    sha256: str
    positions: dict[str, dict[str, int]]


async def _take_snapshot(
    connection: Connection,
    api: JetStreamApi,
    stream: str,
    data_path: Path,
    request: dict[str, Any],
    options: SnapshotOptions,
    warnings: list[str],
) -> _Taken:
    """Ask for the snapshot and write its chunks to ``data_path`` as they arrive."""
    inbox = connection.client.new_inbox()
    with disk_errors(f"backup of {stream} failed"):
        writer = BackgroundWriter(data_path)
    receiver = ChunkReceiver(connection, writer, stream)
    subscription = None
    try:
        subscription = await _subscribe(connection.client, inbox, receiver)
        reply = await _request_snapshot(api, stream, {**request, "deliver_subject": inbox}, options)
        chunks, positions = await _receive_all(api, receiver, options, warnings)
    finally:
        writer.close(sync=False)
        if subscription is not None:
            await _unsubscribe(subscription)
    return _Taken(reply, chunks, writer.size, writer.sha256, positions)


async def _subscribe(client: Any, inbox: str, receiver: ChunkReceiver) -> Any:
    """The subscription the chunks arrive on, handed to ``receiver``."""
    try:
        subscription = await client.subscribe(
            inbox,
            cb=receiver.on_message,
            pending_msgs_limit=PENDING_MSGS_LIMIT,
            pending_bytes_limit=PENDING_BYTES_LIMIT,
        )
    except Exception as exc:  # nats-py's own errors: the connection is gone, mostly
        raise receiver.failure(exc) from None
    receiver.sid = subscription._id
    return subscription


async def _request_snapshot(
    api: JetStreamApi, stream: str, request: dict[str, Any], options: SnapshotOptions
) -> dict[str, Any]:
    """The server's answer to the snapshot request: the stream's config and state. The chunks follow it."""
    timeout = options.check_timeout if options.check else api.timeout
    try:
        return await api.request(f"STREAM.SNAPSHOT.{stream}", request, timeout=timeout)
    except JetStreamApiError:
        raise  # the server's own answer, already with its advice
    except NatsOpsError as exc:  # no answer: the server (or the stream leader) may have died meanwhile
        raise NatsOpsError(f"backup of {stream} failed: {exc.msg}") from None


async def _receive_all(
    api: JetStreamApi, receiver: ChunkReceiver, options: SnapshotOptions, warnings: list[str]
) -> tuple[int, dict[str, dict[str, int]]]:
    """Every chunk, written and synced, and how many; with the consumers' positions, read while the chunks flow
    (a slow answer must not stall the acks)."""
    reading = asyncio.ensure_future(api.consumer_positions(receiver.stream)) if options.consumers else None
    try:
        chunks = await receiver.finished(options.stall_timeout)
        with disk_errors(f"backup of {receiver.stream} failed"):  # the last writes or the fsync
            receiver.writer.close()
    except BaseException:
        await _cancel(reading)
        raise
    return chunks, await _recorded_positions(reading, receiver, warnings)


async def _cancel(task: asyncio.Future | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _recorded_positions(
    reading: asyncio.Future | None, receiver: ChunkReceiver, warnings: list[str]
) -> dict[str, dict[str, int]]:
    """The consumers' positions for the manifest; not reading them is a warning, unless the connection is gone."""
    if reading is None:
        return {}
    try:
        return await reading
    except NatsOpsError as exc:
        if receiver.connection.lost:  # not a detail of this stream: nothing more can be backed up
            raise receiver.failure(exc) from None
        warnings.append(f"{receiver.stream}: consumer positions not recorded in the manifest: {exc}")
        return {}


async def _bucket_record(
    api: JetStreamApi, stream: str, bucket: Bucket | None, state: dict[str, Any], warnings: list[str]
) -> dict[str, Any] | None:
    """What the manifest records of a key-value or object store bucket: its view, read through its API."""
    if bucket is None:
        return None
    record = await recorded_view(api, bucket, state)
    if record["view"] is None:
        warnings.append(f"{stream}: {bucket.label} is backed up, but its view was not recorded ({record['why']})")
    return record


def _result(
    stream: str,
    directory: Path,
    taken: _Taken,
    state: dict[str, Any],
    archive: str,
    bucket: Bucket | None,
    options: SnapshotOptions,
    duration: float,
    warnings: list[str],
) -> SnapshotResult:
    return SnapshotResult(
        stream=stream,
        path=str(directory),
        bytes=taken.size,
        sha256=taken.sha256,
        messages=int(state.get("messages") or 0),
        first_seq=int(state.get("first_seq") or 0),
        last_seq=int(state.get("last_seq") or 0),
        consumers=sorted(taken.positions),
        consumers_included=options.consumers,
        archive_format=archive,
        bucket=bucket.as_dict() if bucket else None,
        chunks=taken.chunks,
        duration=round(duration, 3),
        throughput_mib_s=round(taken.size / MIB / duration, 2) if duration > 0 else 0.0,
        warnings=warnings,
    )


def _manifest(
    result: SnapshotResult,
    taken: _Taken,
    backup: dict[str, Any],
    backup_bytes: bytes,
    bucket_record: dict[str, Any] | None,
    options: SnapshotOptions,
    request: dict[str, Any],
    server: dict[str, Any],
    started_at: str,
) -> dict[str, Any]:
    """manifest.json: our own facts, beside the files natscli reads."""
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "stream": result.stream,
        "files": {
            DATA_FILE: {"size": taken.size, "sha256": taken.sha256},
            BACKUP_JSON: {"size": len(backup_bytes), "sha256": sha256_bytes(backup_bytes)},
        },
        "messages": result.messages,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "bytes": int(backup["state"].get("bytes") or 0),
        "consumers_included": options.consumers,
        "consumers": taken.positions,
        "archive_format": result.archive_format,
        "bucket": bucket_record,
        "check": options.check,
        "chunk_size": options.chunk_size,
        "window_size": request.get("window_size"),
        "chunks": taken.chunks,
        "server": server,
        "started": started_at,
        "finished": utc_now(),
        "duration_seconds": result.duration,
        "collection": {"name": COLLECTION_NAME, "version": COLLECTION_VERSION},
    }


async def _unsubscribe(subscription: Any) -> None:
    with contextlib.suppress(Exception):  # the connection may be gone; the real error is reported elsewhere
        await subscription.unsubscribe()


class ChunkReceiver:
    """Acks and writes chunks as nats-py hands them to the subscription's callback.

    A callback costs no task per chunk (``next_msg`` makes one, with a timer and a uuid), which
    leaves more of the client's one core for receiving. The first failure ends the receiving;
    ``finished`` raises it, or a stall or a lost connection noticed while waiting.
    """

    def __init__(self, connection: Connection, writer: BackgroundWriter, stream: str) -> None:
        self.connection = connection
        self.writer = writer
        self.stream = stream
        self.sid: int | None = None
        self.chunks = 0
        self.last_arrival = time.monotonic()
        self._expected_index = 1
        self._saw_partial = False
        self._outcome: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_message(self, msg: Any) -> None:
        if self._outcome.done():
            return
        self.last_arrival = time.monotonic()
        try:
            if await self._take(msg):
                self._outcome.set_result(self.chunks)
        except Exception as exc:
            self._outcome.set_exception(exc)

    async def _take(self, msg: Any) -> bool:
        """Ack and write one chunk; True at the end marker."""
        stream = self.stream
        self._refuse_dropped_chunks()
        data = msg.data
        if not data:
            ok, words = end_status(msg.headers)
            if not ok:
                raise NatsOpsError(f"backup of {stream} failed: the server ended the snapshot with {words}")
            return True
        if self._saw_partial:
            raise NatsOpsError(f"backup of {stream} failed: data arrived after the last partial chunk")
        if msg.reply:
            index = chunk_index(msg.reply)
            if index != self._expected_index:
                raise NatsOpsError(
                    f"backup of {stream} failed: chunk {self._expected_index} is missing (got chunk {index}); "
                    "retry the backup"
                )
            self._expected_index += 1
            try:
                await self.connection.client.publish(msg.reply, b"")
            except Exception as exc:
                raise self.failure(exc) from None
        else:
            self._saw_partial = True
        try:
            self.writer.write(data)
        except DiskError as exc:  # the writing thread's (a try costs nothing per chunk; a with block would)
            raise exc.within(f"backup of {stream} failed") from None
        self.chunks += 1
        return False

    async def finished(self, stall_timeout: float) -> int:
        """Wait for the end marker; return how many data chunks arrived."""
        self.last_arrival = time.monotonic()  # the stall clock starts now, not before a long jsck reply
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(self._outcome), CONNECTION_CHECK_INTERVAL)
                except asyncio.TimeoutError:
                    pass
                self._check_while_waiting(stall_timeout)
        finally:
            self._outcome.cancel()  # no-op when it ended; else chunks arriving from now on are ignored

    def _check_while_waiting(self, stall_timeout: float) -> None:
        if self.connection.lost:
            raise self.failure(ConnectionError("connection lost"))
        self._refuse_dropped_chunks()  # maybe the end marker itself was dropped: nothing follows it
        if time.monotonic() - self.last_arrival > stall_timeout:
            raise NatsOpsError(
                f"backup of {self.stream} failed: no data for {stall_timeout}s (the stream leader may have "
                "gone away); retry, or raise timeout if the server is very busy"
            )

    def _refuse_dropped_chunks(self) -> None:
        if self.sid in self.connection.slow_subscriptions:
            raise NatsOpsError(f"backup of {self.stream} failed: a chunk was dropped (slow consumer); retry the backup")

    def failure(self, exc: Exception) -> NatsOpsError:
        if self.connection.lost:
            return NatsOpsError(f"backup of {self.stream} failed: the connection to the server was lost mid-snapshot")
        return NatsOpsError(f"backup of {self.stream} failed while receiving data: {exc or type(exc).__name__}")
