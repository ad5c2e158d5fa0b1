# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Restore engine: verified backups sent back through ``STREAM.RESTORE``, checked afterwards.

Protocol: request ``STREAM.RESTORE.<stream>`` with backup.json (config possibly edited); the reply
names a deliver subject; send the data there as requests, one chunk each, one in flight (the empty
reply is the flow control); an empty request ends it and is answered with the new stream's
``config`` and ``state``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import Connection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, disk_errors
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_name
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    RESTORE_DATA_REJECTED,
    STREAM_NAME_IN_USE,
    STREAM_NOT_FOUND,
    JetStreamApi,
    JetStreamApiError,
    consumer_progress,
    describe_client_error,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.nats_client import (
    NatsTimeoutError,
    NoRespondersError,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, poll, retry
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (
    BACKUP_JSON,
    DATA_FILE,
    ArchiveFormat,
    archive_format,
    is_stream_backup,
    read_backup_json,
    read_manifest,
    stream_dirs_of_account_backup,
    verify_stream_backup,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.buckets import bucket_of, verify_bucket
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.sources import (
    SourcePosition,
    cap_at_origins,
    source_positions,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.pausing import PauseUntil, set_pause

DEFAULT_RESTORE_CHUNK = 1024 * 1024
MIN_RESTORE_CHUNK = 1024
MAX_RESTORE_CHUNK = 64 * 1024 * 1024  # nats-server's largest max_payload
NO_RESPONDERS_GRACE = 3.0
# The final answer of a restore is waited for at least this long, and longer for big streams: applying the
# data at this rate (far below any disk) may take the server that long.
FINISH_MIN_WAIT = 60.0
FINISH_MIN_RATE = 20 * 1024 * 1024
# A follower its leader has not heard from for this long is on a server that is down (Raft heartbeats
# come every second); it cannot catch up until that server returns.
REPLICA_SILENT_NS = 5_000_000_000
# Polling a restored stream's replicas: soon at first (they usually catch up within tens of ms; a fixed
# 100 ms was three quarters of an R3 restore of a small stream), backing off; the read that confirms a
# safe state comes this long after the first.
REPLICA_POLL_FIRST = 0.01
REPLICA_POLL_MAX = 0.1
REPLICA_CONFIRM_AFTER = 0.1
RESTORE_IN_FLIGHT = 4
# How long a failed restore keeps trying to delete the stream it created. The server that died may have
# led the meta group: the survivors elect another first, which on a busy machine took over 10 s.
CLEANUP_WINDOW = 30.0
# A stream is restored with this metadata and loses it once verified. A stream that still has it is
# what a restore left when it was cut short (a standalone server killed mid-restore keeps such a
# half-made stream), unless its owner's claim (restore_claims) shows that restore still running: a
# later restore replaces it whatever if_exists says. The owner keys say who made it, for the operator.
RESTORE_MARKER = ("natsops.jetstream.restore", "incomplete")
OWNER_KEYS = {"owner": "natsops.jetstream.restore.owner", "since": "natsops.jetstream.restore.since"}
IF_EXISTS_CHOICES = ("fail", "skip", "replace")
# Before this release a restored stream whose config sets first_seq lost every message (2.10 purges them).
FIRST_SEQ_RESTORED = (2, 11, 0)
MIB = 1024 * 1024


class RestoreAction(str, Enum):
    """What a restore does with one stream, decided before anything is touched."""

    RESTORE = "restore"  # nothing of that name exists
    SKIP = "skip"  # it exists and if_exists is skip
    REPLACE = "replace"  # it exists and if_exists is replace: a safety backup first (restore_run)
    REDO = "redo"  # an interrupted restore left it half-made: restored again whatever if_exists says


class ConnectionLost(NatsOpsError):
    """The connection went away while a stream was restored; ``created`` if the stream may exist."""

    def __init__(self, stream: str, created: bool, msg: str | None = None) -> None:
        super().__init__(msg or f"restore of {stream} failed: the connection to the server was lost")
        self.stream = stream
        self.created = created


class _DataRejected(Exception):
    """The server refused the data of a stream this attempt created, and the half-made stream is gone."""

    def __init__(self, error: JetStreamApiError) -> None:
        super().__init__(error.msg)
        self.error = error


@dataclass
class RestoreOptions:
    replicas: int | None = None
    storage: str | None = None  # file or memory instead of the backup's
    cluster: str | None = None
    tags: list[str] | None = None
    if_exists: str = "fail"
    chunk_size: int = DEFAULT_RESTORE_CHUNK
    chunk_timeout: float = 10.0
    finish_timeout: float | None = None  # None: finish_timeout_for() the stream's size
    in_flight: int = RESTORE_IN_FLIGHT
    request_timeout: float | None = None  # of the restore request; None: the API timeout, at least 30 s
    verify_buckets: bool = True  # read restored buckets through the KV and object store APIs
    pause_until: PauseUntil | None = None  # leave the restored consumers paused until then
    first_seq_after: bool = False  # set first_seq only once the data is in (nats-server 2.10 purges it otherwise)


@dataclass
class StreamBackup:
    """One stream's backup on disk, read and verified."""

    name: str
    directory: Path
    backup: dict[str, Any]
    manifest: dict[str, Any] | None
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def data_path(self) -> Path:
        return self.directory / DATA_FILE

    @property
    def archive(self) -> ArchiveFormat:
        return ArchiveFormat(self.verification.get("archive_format") or ArchiveFormat.UNKNOWN.value)


def find_backups(path: Path, patterns: list[str] | None = None) -> list[StreamBackup]:
    """The stream backups at ``path`` (one stream's, or an account's), optionally filtered by name."""
    if not path.exists():
        raise NatsOpsError(f"backup path {path} does not exist")
    if is_stream_backup(path):
        directories = [path]
    else:
        directories = stream_dirs_of_account_backup(path)
        stray_files = [entry for entry in path.iterdir() if not entry.is_dir() and not entry.name.startswith(".")]
        if stray_files or not directories or not all(is_stream_backup(entry) for entry in directories):
            raise NatsOpsError(
                f"{path} is neither a stream backup (backup.json + stream.tar.s2) nor an account backup "
                "(one such directory per stream, and nothing else)"
            )
    found = []
    for directory in directories:
        backup = read_backup_json(directory)
        check_name(
            backup["config"]["name"],
            where=f"in {directory / BACKUP_JSON}",
            advice="No server accepts it: the backup is damaged, or not a JetStream stream backup",
        )
        found.append(
            StreamBackup(
                name=backup["config"]["name"], directory=directory, backup=backup, manifest=read_manifest(directory)
            )
        )
    chosen = choose_streams([item.name for item in found], patterns, f"the backup at {path}")
    if not chosen:
        raise NatsOpsError(f"no stream in the backup at {path} matches {', '.join(patterns or [])}")
    return [item for item in found if item.name in chosen]


def verify_backups(backups: list[StreamBackup]) -> None:
    """Refuse a damaged or incomplete backup before anything touches a server; tell each one's format."""
    for item in backups:
        with disk_errors(doing="reading"):
            item.verification = verify_stream_backup(item.directory)
            item.verification["archive_format"] = archive_format(item.data_path).value


def restore_config(item: StreamBackup, options: RestoreOptions, owner: dict[str, str] | None = None) -> dict[str, Any]:
    """The stream config to restore: the backup's, with the requested overrides and the restore's marker."""
    config = copy.deepcopy(item.backup["config"])
    if options.replicas is not None:
        config["num_replicas"] = options.replicas
    if options.storage is not None:
        config["storage"] = options.storage
    if options.cluster is not None or options.tags is not None:
        placement = dict(config.get("placement") or {})
        if options.cluster is not None:
            placement["cluster"] = options.cluster
        if options.tags is not None:
            placement["tags"] = options.tags
        config["placement"] = {key: value for key, value in placement.items() if value}
        if not config["placement"]:
            config.pop("placement")
    marker = {RESTORE_MARKER[0]: RESTORE_MARKER[1]}
    marker.update({key: str(owner[field]) for field, key in OWNER_KEYS.items() if owner and owner.get(field)})
    config["metadata"] = {**(config.get("metadata") or {}), **marker}
    return config


def is_unfinished_restore(info: dict[str, Any]) -> bool:
    metadata = (info.get("config") or {}).get("metadata") or {}
    return metadata.get(RESTORE_MARKER[0]) == RESTORE_MARKER[1]


def without_marker(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    metadata = config.get("metadata") or {}
    for key in (RESTORE_MARKER[0], *OWNER_KEYS.values()):
        metadata.pop(key, None)
    config["metadata"] = metadata
    return config


async def existing_streams(api: JetStreamApi, backups: list[StreamBackup]) -> dict[str, dict[str, Any]]:
    """Info of the streams that already exist under the backups' names."""
    infos = await asyncio.gather(*(api.stream_info(item.name) for item in backups))
    return {item.name: info for item, info in zip(backups, infos, strict=True) if info is not None}


def plan_actions(backups: list[StreamBackup], existing: dict[str, Any], if_exists: str) -> dict[str, RestoreAction]:
    """What to do per stream, decided before anything is touched.

    ``restore`` (absent), ``skip`` or ``replace`` (exists, per if_exists), ``redo`` (an unfinished
    restore left it: replaced whatever if_exists says). With if_exists fail, any other clash refuses all.
    """
    names = {item.name for item in backups}
    unfinished = {name for name, info in existing.items() if name in names and is_unfinished_restore(info)}
    clashes = sorted(name for name in existing if name in names and name not in unfinished)
    if clashes and if_exists == "fail":
        raise NatsOpsError(
            f"stream {', '.join(clashes)} already exists on the server; nothing was restored. "
            "Delete it first, or set if_exists: skip (keep it) or if_exists: replace (delete it, then restore)",
            existing=clashes,
        )
    actions = {}
    for item in backups:
        if item.name in unfinished:
            actions[item.name] = RestoreAction.REDO
        elif item.name not in existing:
            actions[item.name] = RestoreAction.RESTORE
        else:
            actions[item.name] = RestoreAction.SKIP if if_exists == "skip" else RestoreAction.REPLACE
    return actions


def expected_state(item: StreamBackup) -> dict[str, Any]:
    state = item.backup["state"]
    expected: dict[str, Any] = {
        "messages": int(state.get("messages") or 0),
        "last_seq": int(state.get("last_seq") or 0),
    }
    if expected["messages"]:
        # An empty stream's first_seq is 0 when new and last_seq + 1 once restored: only compare it with data.
        expected["first_seq"] = int(state.get("first_seq") or 0)
    if item.manifest and item.manifest.get("consumers_included"):
        positions = item.manifest.get("consumers") or {}
        expected["consumers"] = sorted(positions)
        expected["consumer_progress"] = consumer_progress(positions)
    return expected


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [
        f"{key}: expected {value}, got {actual.get(key)}" for key, value in expected.items() if actual.get(key) != value
    ]


async def restore_stream(
    connection: Connection,
    api: JetStreamApi,
    item: StreamBackup,
    options: RestoreOptions,
    action: RestoreAction,
    owner: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Restore one verified backup; on failure delete the stream only if this call created it.

    ``action`` is ``restore``, or ``redo`` to delete the half-made stream an interrupted restore left.
    A lost connection raises ConnectionLost, and the stream is left to the run's one clean-up pass
    (restore_run): one reconnection for all the streams in flight, not one per stream.

    Data the server rejects (err_code 10062) is sent once more, to a stream made anew. A server killed
    while rewriting a stream's meta file keeps that stream's messages on disk but no longer shows the
    stream (its log: "checksums do not match"); the next restore of the name meets those messages,
    fails, and the server removes them with it, so the second attempt starts clean. The backup was
    checked here before it was sent, so a second rejection is the server's real answer.
    """
    try:
        return await _restore_attempt(connection, api, item, options, action, owner, delete_first=True)
    except _DataRejected as first:
        rejected = first.error
    entry = await _last_attempt(connection, api, item, options, action, owner)
    entry["retried_after"] = rejected.description
    return entry


async def _last_attempt(
    connection: Connection,
    api: JetStreamApi,
    item: StreamBackup,
    options: RestoreOptions,
    action: RestoreAction,
    owner: dict[str, str] | None,
) -> dict[str, Any]:
    """The attempt after rejected data: a second rejection is the server's answer, raised as it gave it."""
    try:
        return await _restore_attempt(connection, api, item, options, action, owner, delete_first=False)
    except _DataRejected as second:
        raise second.error from None


@dataclass
class _Progress:
    """How far one restore attempt got: what a failure must undo, and how the failure is told."""

    created: bool = False  # the stream may exist: a failure deletes it
    sending: bool = False  # the data was on its way: a rejection of it is tried once more (restore_stream)


@dataclass
class _Restored:
    """What one restore attempt found on its way, for its report."""

    actual: dict[str, Any]
    positions: dict[str, dict[str, int]]
    paused: dict[str, str]
    absent: list[str] = field(default_factory=list)
    bucket: dict[str, Any] | None = None
    sources: list[SourcePosition] = field(default_factory=list)


async def _restore_attempt(
    connection: Connection,
    api: JetStreamApi,
    item: StreamBackup,
    options: RestoreOptions,
    action: RestoreAction,
    owner: dict[str, str] | None,
    delete_first: bool,
) -> dict[str, Any]:
    started = time.monotonic()
    if connection.lost:
        raise ConnectionLost(item.name, created=False)
    if action is RestoreAction.REDO and delete_first:
        await api.delete_stream(item.name)
    config = restore_config(item, options, owner)
    progress = _Progress()
    try:
        restored = await _restore_and_verify(connection, api, item, config, options, progress)
    except NatsOpsError as exc:
        failure = await _undo(connection, api, item.name, progress, exc)
        if failure is exc:
            raise
        raise failure from None
    except BaseException:
        if progress.created and not connection.lost:
            await remove_created_stream(api, item.name)
        raise
    return _report(item, action, config, restored, time.monotonic() - started)


async def _restore_and_verify(
    connection: Connection,
    api: JetStreamApi,
    item: StreamBackup,
    config: dict[str, Any],
    options: RestoreOptions,
    progress: _Progress,
) -> _Restored:
    """Make the stream from the backup, check it against the backup, and give it its final config."""
    deliver_subject = await _start_restore(api, item, config, options, progress)
    progress.sending = True
    final = await _send_data(connection, api, item, deliver_subject, options)
    progress.sending = False
    restored = await _checked_state(api, item, final, options)
    restored.absent = await _wait_for_replicas(api, item.name, _replicas(config), finish_timeout_for(item, options))
    restored.bucket = await _verified_bucket(api, item, config, options)
    restored.sources = await _resumed_sources(api, item.name, config, restored.actual["last_seq"])
    await api.request(
        f"STREAM.UPDATE.{item.name}", finished_config(final.get("config") or config, config, restored.sources)
    )
    return restored


async def _start_restore(
    api: JetStreamApi, item: StreamBackup, config: dict[str, Any], options: RestoreOptions, progress: _Progress
) -> str:
    """Ask for the restore; the subject to send the data to."""
    try:
        reply = await api.request(
            f"STREAM.RESTORE.{item.name}",
            {"config": creation_config(config, options), "state": item.backup["state"]},
            timeout=options.request_timeout or max(api.timeout, 30.0),
        )
    except NatsOpsError as exc:
        # The server may have created it before failing, and a timeout does not tell; but a name in use is
        # someone else's stream, never ours to delete.
        progress.created = not (isinstance(exc, JetStreamApiError) and exc.err_code in STREAM_NAME_IN_USE)
        raise
    progress.created = True
    if not reply.get("deliver_subject"):
        raise NatsOpsError(f"restore of {item.name} failed: the server's answer to the restore request names no "
                           f"subject to send the data to ({json.dumps(reply)[:300]})")  # fmt: skip
    return reply["deliver_subject"]


async def _checked_state(
    api: JetStreamApi, item: StreamBackup, final: dict[str, Any], options: RestoreOptions
) -> _Restored:
    """The restored stream's state and consumers, which must match the backup's."""
    expected = expected_state(item)
    actual, positions = await _observed_state(api, item.name, final, expected)
    # Paused as soon as the consumers have leaders (a pause needs one): from here on, nothing is delivered.
    paused = await _paused_consumers(api, item.name, positions, options.pause_until)
    mismatches = compare(expected, actual)
    if mismatches:
        raise NatsOpsError(
            f"restore of {item.name} does not match its backup ({'; '.join(mismatches)}); "
            "the restored stream was deleted",
            expected=expected,
            actual=actual,
        )
    return _Restored(actual, positions, paused)


async def _undo(
    connection: Connection, api: JetStreamApi, stream: str, progress: _Progress, exc: NatsOpsError
) -> Exception:
    """Delete what a failed attempt created; the failure to raise."""
    if connection.lost:
        return ConnectionLost(stream, progress.created)  # left to the run's one clean-up pass
    if progress.created:
        leftover = await remove_created_stream(api, stream)
        if leftover:
            return NatsOpsError(f"{exc.msg}; {leftover}", **exc.details)
    if progress.sending and isinstance(exc, JetStreamApiError) and exc.err_code == RESTORE_DATA_REJECTED:
        return _DataRejected(exc)
    return exc


def _replicas(config: dict[str, Any]) -> int:
    return int(config.get("num_replicas") or 1)


def _report(
    item: StreamBackup, action: RestoreAction, config: dict[str, Any], restored: _Restored, duration: float
) -> dict[str, Any]:
    size = item.data_path.stat().st_size
    return {
        "stream": item.name,
        "label": _bucket_label(config) or f"stream {item.name}",
        "path": str(item.directory),
        "action": {RestoreAction.REDO: "redone"}.get(action, "restored"),
        "bytes": size,
        "duration": round(duration, 3),
        "throughput_mib_s": round(size / MIB / duration, 2) if duration > 0 else 0.0,
        "replicas": _replicas(config),
        "placement": config.get("placement"),
        "verification": {"expected": expected_state(item), "actual": restored.actual, "match": True},
        "backup_check": item.verification,
        "replicas_absent": restored.absent,
        "bucket": restored.bucket,
        "sources": [entry.as_dict() for entry in restored.sources],
        "redeliveries": redeliveries(item, restored.positions),
        "paused_consumers": restored.paused,
    }


def redeliveries(item: StreamBackup, positions: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """Per consumer, the messages it had delivered without an ack at backup time, which it delivers again.

    Either ``at once``: the restore kept the ack floor but not what was delivered past it (a clustered
    restore), so delivery starts over from the floor; or ``after ack_wait``: the restored consumer still
    waits for those acks, and the applications that held the messages are gone with the old servers.
    """
    recorded = (item.manifest or {}).get("consumers") or {}
    found: dict[str, dict[str, Any]] = {}
    for name, now in positions.items():
        then = recorded.get(name) or {}
        unacked = int(then.get("num_ack_pending") or 0)
        if now["delivered_stream_seq"] < int(then.get("delivered_stream_seq") or 0):
            span, when = (now["delivered_stream_seq"] + 1, then["delivered_stream_seq"]), "at once"
        elif now["num_ack_pending"]:
            span, when = (now["ack_floor_stream_seq"] + 1, now["delivered_stream_seq"]), "after ack_wait"
        else:
            continue
        found[name] = {"from_seq": span[0], "to_seq": span[1], "unacked_at_backup": unacked, "when": when}
    return found


async def _paused_consumers(
    api: JetStreamApi, stream: str, positions: dict[str, dict[str, int]], until: PauseUntil | None
) -> dict[str, str]:
    """Pause the restored stream's durable consumers, before its restore is done: until, by name."""
    if until is None:
        return {}
    return {name: (await set_pause(api, stream, name, until))["pause_until"] for name in sorted(positions)}


def creation_config(config: dict[str, Any], options: RestoreOptions) -> dict[str, Any]:
    """The config a stream is restored with, without what finished_config puts back: its sources, once their
    positions are read; and, on nats-server 2.10, its first_seq, with which 2.10 purges every restored message."""
    put_back_later = {"sources"} | ({"first_seq"} if options.first_seq_after else set())
    return {key: value for key, value in config.items() if key not in put_back_later}


def finished_config(created: dict[str, Any], wanted: dict[str, Any], sources: list[SourcePosition]) -> dict[str, Any]:
    """The config a verified stream ends with: without the restore's marker, with its sources resuming."""
    config = without_marker(created)
    if wanted.get("first_seq"):
        config["first_seq"] = wanted["first_seq"]
    if wanted.get("sources"):
        config["sources"] = [entry.resumed() for entry in sources]
        config["subjects"] = list(wanted.get("subjects") or [])  # not the default one a stream without sources gets
    return config


async def _resumed_sources(
    api: JetStreamApi, stream: str, config: dict[str, Any], last_seq: int
) -> list[SourcePosition]:
    """Where each source of a restored stream resumes: one past the last message it holds from it."""
    sources = list(config.get("sources") or [])
    if not sources:
        return []
    positions = await source_positions(api, stream, sources, last_seq)
    await cap_at_origins(api, positions)
    return positions


def _bucket_label(config: dict[str, Any]) -> str | None:
    bucket = bucket_of(config)
    return bucket.label if bucket else None


async def _verified_bucket(
    api: JetStreamApi, item: StreamBackup, config: dict[str, Any], options: RestoreOptions
) -> dict[str, Any] | None:
    """A restored key-value or object store bucket, read through its API and compared with its backup's view."""
    bucket = bucket_of(config)
    if bucket is None or not options.verify_buckets:
        return bucket.as_dict() if bucket else None
    expected = ((item.manifest or {}).get("bucket") or {}).get("view")
    return await verify_bucket(api, bucket, expected)


async def _observed_state(
    api: JetStreamApi, stream: str, final: dict[str, Any], expected: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """The restored stream's state as the final reply gives it, and its consumers (with their positions).

    In a cluster the consumers' Raft groups form after the stream's, so their absence is retried for up
    to the request timeout before it counts as a mismatch.
    """
    state = final.get("state") or {}
    observed: dict[str, Any] = {
        "messages": int(state.get("messages") or 0),
        "first_seq": int(state.get("first_seq") or 0),
        "last_seq": int(state.get("last_seq") or 0),
    }
    deadline = Deadline.after(api.timeout)

    async def observe() -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
        positions = await api.led_consumer_positions(stream, deadline)
        observed["consumers"] = sorted(positions)
        if "consumer_progress" in expected:
            observed["consumer_progress"] = consumer_progress(positions)
        return observed, positions

    return await poll(observe, deadline, 0.2, until=lambda seen: not compare(expected, seen[0]), overrun=True)


async def _send_data(
    connection: Connection, api: JetStreamApi, item: StreamBackup, deliver_subject: str, options: RestoreOptions
) -> dict[str, Any]:
    """Send the backup's bytes in order, then the empty request that completes the restore.

    The first chunk goes alone (see _send_chunk). After it, up to RESTORE_IN_FLIGHT chunks are on the
    wire at once: the server handles a subscriber's chunks one by one in arrival order, and NATS keeps
    one publisher's messages in order, so this only removes the idle round trip between chunks. Every
    answer is still checked, in order, and the first error ends the restore.
    """
    client = connection.client
    chunk_size = min(options.chunk_size, int(client.max_payload or options.chunk_size))
    in_flight: deque[asyncio.Future] = deque()
    try:
        with open(item.data_path, "rb") as handle:
            first = handle.read(chunk_size)
            if first:
                await _send_chunk(client, item.name, deliver_subject, first, options.chunk_timeout, first=True)
            while chunk := handle.read(chunk_size):
                if len(in_flight) >= options.in_flight:
                    await in_flight.popleft()
                in_flight.append(
                    asyncio.ensure_future(_send_chunk(client, item.name, deliver_subject, chunk, options.chunk_timeout))
                )
        while in_flight:
            await in_flight.popleft()
    finally:
        for pending in in_flight:
            pending.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
    finish_timeout = finish_timeout_for(item, options)
    try:
        reply = await client.request(deliver_subject, b"", timeout=finish_timeout)
    except Exception as exc:
        raise _send_failure(connection, item.name, "finishing", exc, finish_timeout) from None
    return _parse_reply(item.name, reply.data, final=True)


async def _send_chunk(
    client: Any, stream: str, subject: str, chunk: bytes, timeout: float, first: bool = False
) -> None:
    """Send one chunk and check the server's answer.

    "No responders" means the chunk was not delivered. Right after the restore starts, the new stream
    leader's subscription may not yet be known to the server this client is connected to, so the first
    chunk (``first``) is sent again for a short while. Later, it means the server gave up on the restore.
    """
    grace = Deadline.after(NO_RESPONDERS_GRACE if first else 0.0)
    try:
        reply = await retry(
            lambda: client.request(subject, chunk, timeout=timeout), grace, 0.05, retry_on=_no_responders, overrun=True
        )
    except NoRespondersError:
        raise NatsOpsError(f"restore of {stream} failed: the server stopped accepting data") from None
    except Exception as exc:
        raise NatsOpsError(f"restore of {stream} failed while sending data: {_describe(exc, timeout)}") from None
    if reply.data:
        _parse_reply(stream, reply.data, final=False)


def _no_responders(exc: Exception) -> bool:
    return isinstance(exc, NoRespondersError)


async def _wait_for_replicas(api: JetStreamApi, stream: str, replicas: int, timeout: float) -> list[str]:
    """Until every reachable replica of a restored stream has caught up with its leader; the absent ones.

    The server answers the restore as soon as its leader holds the data; the other replicas copy it over
    the next moments (0.3 s for 10 000 messages). A leader lost before that can take the data with it: a
    follower without it may be elected, and the old leader, back, truncated to match (seen on 2.14.6). So
    a restore is not done until its replicas are. A replica on a server that is down (offline, or silent
    for REPLICA_SILENT_NS, or never heard from in that long) cannot catch up now: it is named, and a
    quorum that holds the data must do.
    """
    if replicas <= 1:
        return []
    started = time.monotonic()
    caught_up = _CaughtUp(replicas)
    state = await poll(
        lambda: _replica_state(api, stream, time.monotonic() - started),
        Deadline(started + timeout),
        caught_up,
        until=caught_up,
        overrun=True,
    )
    if state is None or not caught_up.confirmed:
        raise NatsOpsError(
            f"restore of {stream} failed: its other replica(s) did not catch up with its leader within "
            f"{timeout:.0f}s, and a leader lost before they do takes the data with it. Check the cluster "
            "(natsops.jetstream.cluster_info), then run the restore again"
        )
    return state.absent


class _CaughtUp:
    """Whether a restored stream's replicas have caught up, read after read; and the pause before the next read.

    Caught up takes two safe reads in a row ("current" can show a moment before the last messages are
    stored), the confirming one REPLICA_CONFIRM_AFTER after the first. Between unsafe reads the pauses double,
    up to REPLICA_POLL_MAX. Both poll's ``until`` and its pauses: poll draws a pause after judging a read.
    """

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.in_a_row = 0
        self.pause = REPLICA_POLL_FIRST

    @property
    def confirmed(self) -> bool:
        return self.in_a_row >= 2

    def __call__(self, state: ReplicaState | None) -> bool:
        if state is not None and state.safe(self.replicas):
            self.in_a_row += 1
            self.pause = REPLICA_CONFIRM_AFTER
        else:
            self.in_a_row = 0
            self.pause = min(self.pause * 2, REPLICA_POLL_MAX)
        return self.confirmed

    def __iter__(self) -> Iterator[float]:
        return self

    def __next__(self) -> float:
        return self.pause


@dataclass
class ReplicaState:
    current: list[str]  # followers that hold everything the leader does
    catching_up: list[str]  # followers still copying
    absent: list[str]  # followers on servers that are down

    def safe(self, replicas: int) -> bool:
        """No follower still copying, and a quorum (the leader with the current ones) holds the data."""
        return not self.catching_up and len(self.current) + 1 >= replicas // 2 + 1


def _silent(active_ns: int, waited: float) -> bool:
    """Not heard from lately; 0 is never heard from, which a live follower ends within moments."""
    return active_ns > REPLICA_SILENT_NS or (active_ns == 0 and waited * 1e9 > REPLICA_SILENT_NS)


async def _replica_state(api: JetStreamApi, stream: str, waited: float) -> ReplicaState | None:
    """The stream's followers as its leader sees them; None while it has no leader."""
    try:
        info = await api.request(f"STREAM.INFO.{stream}", timeout=min(api.timeout, 2.0))
    except JetStreamApiError as exc:
        if exc.err_code == STREAM_NOT_FOUND:
            raise NatsOpsError(
                f"restore of {stream} failed: the server deleted the restored stream after it was verified "
                "(nats-server does so when a restore of the same name failed in the 5 s before it was created); "
                "run the restore again"
            ) from None
        return None
    except NatsOpsError:
        return None
    return replica_state(info.get("cluster") or {}, waited)


def replica_state(cluster: dict[str, Any], waited: float) -> ReplicaState | None:
    """The followers of a stream's cluster info, sorted by how far they are; None without a leader."""
    if not cluster.get("leader"):
        return None
    state = ReplicaState([], [], [])
    for peer in cluster.get("replicas") or []:
        name = str(peer.get("name") or "?")
        if peer.get("current") and not peer.get("lag"):
            state.current.append(name)
        elif peer.get("offline") or _silent(int(peer.get("active") or 0), waited):
            state.absent.append(name)
        else:
            state.catching_up.append(name)
    return state


def finish_timeout_for(item: StreamBackup, options: RestoreOptions) -> float:
    """How long the server may take to answer the request that ends a restore.

    Servers before 2.14 apply the data only then, at disk speed; later ones have applied it as it came.
    Unbounded, a wait for a server that died after the last chunk (its restore handed to no one, or to a
    new leader that never saw the data) would last as long as the timeout: an hour, before.
    """
    if options.finish_timeout is not None:
        return options.finish_timeout
    return max(FINISH_MIN_WAIT, options.chunk_timeout * 6, item.data_path.stat().st_size / FINISH_MIN_RATE)


def _parse_reply(stream: str, data: bytes, final: bool) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        raise NatsOpsError(f"restore of {stream}: the server answered with something that is not JSON") from None
    if isinstance(body, dict) and body.get("error"):
        raise JetStreamApiError(f"restore of {stream}", body["error"])
    if final and not isinstance(body, dict):
        raise NatsOpsError(f"restore of {stream}: the server's final answer has no stream state")
    return body


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (asyncio.TimeoutError, NatsTimeoutError)):
        return f"no answer within {timeout}s (the stream leader may have gone away)"
    return describe_client_error(exc)


def _send_failure(connection: Connection, stream: str, phase: str, exc: BaseException, timeout: float) -> NatsOpsError:
    if connection.lost:
        return NatsOpsError(f"restore of {stream} failed: the connection to the server was lost while {phase}")
    return NatsOpsError(f"restore of {stream} failed while {phase}: {_describe(exc, timeout)}")


async def remove_created_stream(api: JetStreamApi, stream: str) -> str | None:
    """Delete a half-made stream this restore created; None when gone, else what to do about it.

    The delete goes straight to the meta leader: asking for the stream's info first would time out
    while the stream has no leader (a failed clustered restore can leave such a dead stream).
    """
    problem = await _delete_created(api, stream)
    if problem is None:
        return None
    return (
        f"the half-made stream {stream} this restore created could not be removed ({problem}): "
        f"check it with 'nats stream info {stream}' and delete it with 'nats stream rm {stream}'; "
        "or run the restore again, which redoes it"
    )


async def _delete_created(api: JetStreamApi, stream: str) -> str | None:
    """Delete the stream, retrying while the cluster settles; None on success, else the last problem."""

    async def delete() -> None:
        try:
            await api.delete_stream(stream)
        except JetStreamApiError as exc:
            if exc.err_code != STREAM_NOT_FOUND:
                raise

    def settling(exc: Exception) -> bool:
        # The server's refusals may pass as the cluster settles; a closed client never answers again.
        return isinstance(exc, JetStreamApiError) or (isinstance(exc, NatsOpsError) and not api.client.is_closed)

    try:
        await retry(delete, Deadline.after(max(api.timeout, CLEANUP_WINDOW)), 0.5, retry_on=settling)
    except NatsOpsError as exc:
        return exc.msg
    return None
