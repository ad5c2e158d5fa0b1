# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore engine: verified backups sent back through ``STREAM.RESTORE``, checked afterwards.

Protocol: request ``STREAM.RESTORE.<stream>`` with backup.json (config possibly edited); the reply
names a deliver subject; send the data there as requests, one chunk each, one in flight (the empty
reply is the flow control); an empty request ends it and is answered with the new stream's
``config`` and ``state``.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.backup_files import (
    DATA_FILE,
    is_stream_backup,
    read_backup_json,
    read_manifest,
    stream_dirs_of_account_backup,
    verify_stream_backup,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.connection import Connection
from ansible_collections.natsops.jetstream.plugins.module_utils.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.jsapi import (
    STREAM_NAME_IN_USE,
    JetStreamApi,
    JetStreamApiError,
)

try:
    from nats.errors import NoRespondersError
except ImportError:  # reported by connection.require_nats()

    class NoRespondersError(Exception):  # type: ignore[no-redef]
        pass


DEFAULT_RESTORE_CHUNK = 1024 * 1024
IF_EXISTS_CHOICES = ("fail", "skip", "replace")
MIB = 1024 * 1024


@dataclass
class RestoreOptions:
    replicas: int | None = None
    cluster: str | None = None
    tags: list[str] | None = None
    if_exists: str = "fail"
    chunk_size: int = DEFAULT_RESTORE_CHUNK
    chunk_timeout: float = 10.0
    finish_timeout: float = 3600.0


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


def find_backups(path: Path, patterns: list[str] | None = None) -> list[StreamBackup]:
    """The stream backups at ``path`` (one stream's, or an account's), optionally filtered by name."""
    if not path.exists():
        raise NatsOpsError(f"backup path {path} does not exist")
    if is_stream_backup(path):
        directories = [path]
    else:
        directories = stream_dirs_of_account_backup(path)
        if not directories or not all(is_stream_backup(entry) for entry in directories):
            raise NatsOpsError(
                f"{path} is neither a stream backup (backup.json + stream.tar.s2) nor an account backup "
                "(one such directory per stream, and nothing else)"
            )
    found = []
    for directory in directories:
        backup = read_backup_json(directory)
        found.append(
            StreamBackup(
                name=backup["config"]["name"], directory=directory, backup=backup, manifest=read_manifest(directory)
            )
        )
    if patterns:
        unknown = [p for p in patterns if not set("*?[") & set(p) and p not in {b.name for b in found}]
        if unknown:
            raise NatsOpsError(f"the backup at {path} holds no stream named {', '.join(unknown)}")
        found = [b for b in found if any(fnmatch.fnmatchcase(b.name, p) for p in patterns)]
        if not found:
            raise NatsOpsError(f"no stream in the backup at {path} matches {', '.join(patterns)}")
    return found


def verify_backups(backups: list[StreamBackup]) -> None:
    """Refuse a damaged or incomplete backup before anything touches a server."""
    for item in backups:
        item.verification = verify_stream_backup(item.directory)


def restore_config(item: StreamBackup, options: RestoreOptions) -> dict[str, Any]:
    """The stream config to restore: the backup's, with the requested overrides."""
    config = copy.deepcopy(item.backup["config"])
    if options.replicas is not None:
        config["num_replicas"] = options.replicas
    if options.cluster is not None or options.tags is not None:
        placement = dict(config.get("placement") or {})
        if options.cluster is not None:
            placement["cluster"] = options.cluster
        if options.tags is not None:
            placement["tags"] = options.tags
        config["placement"] = {key: value for key, value in placement.items() if value}
        if not config["placement"]:
            config.pop("placement")
    return config


async def existing_streams(api: JetStreamApi, backups: list[StreamBackup]) -> dict[str, dict[str, Any]]:
    """Info of the streams that already exist under the backups' names."""
    infos = await asyncio.gather(*(api.stream_info(item.name) for item in backups))
    return {item.name: info for item, info in zip(backups, infos, strict=True) if info is not None}


def plan_actions(backups: list[StreamBackup], existing: dict[str, Any], if_exists: str) -> dict[str, str]:
    """``restore``, ``skip`` or ``replace`` per stream; refuses before anything is touched."""
    clashes = sorted(name for name in existing if name in {item.name for item in backups})
    if clashes and if_exists == "fail":
        raise NatsOpsError(
            f"stream {', '.join(clashes)} already exists on the server; nothing was restored. "
            "Delete it first, or set if_exists: skip (keep it) or if_exists: replace (delete it, then restore)",
            existing=clashes,
        )
    actions = {}
    for item in backups:
        if item.name not in existing:
            actions[item.name] = "restore"
        else:
            actions[item.name] = "skip" if if_exists == "skip" else "replace"
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
        expected["consumer_positions"] = positions
    return expected


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [
        f"{key}: expected {value}, got {actual.get(key)}" for key, value in expected.items() if actual.get(key) != value
    ]


async def restore_stream(
    connection: Connection, api: JetStreamApi, item: StreamBackup, options: RestoreOptions, replace: bool
) -> dict[str, Any]:
    """Restore one verified backup; on failure delete the stream only if this call created it."""
    started = time.monotonic()
    if replace:
        await api.delete_stream(item.name)
    config = restore_config(item, options)
    created = False
    try:
        try:
            reply = await api.request(
                f"STREAM.RESTORE.{item.name}",
                {"config": config, "state": item.backup["state"]},
                timeout=max(api.timeout, 30.0),
            )
        except JetStreamApiError as exc:
            if exc.err_code in STREAM_NAME_IN_USE:
                raise  # someone else's stream: never ours to delete
            created = True  # the server may have created it before failing
            raise
        except NatsOpsError:
            created = True  # a timeout does not tell whether the stream was created
            raise
        created = True
        final = await _send_data(connection, api, item, reply["deliver_subject"], options)
        actual = _restored_state(final)
        expected = expected_state(item)
        positions = await api.consumer_positions(item.name)
        actual["consumers"] = sorted(positions)
        if "consumer_positions" in expected:
            actual["consumer_positions"] = positions
        mismatches = compare(expected, actual)
        if mismatches:
            raise NatsOpsError(
                f"restore of {item.name} does not match its backup ({'; '.join(mismatches)}); "
                "the restored stream was deleted",
                expected=expected,
                actual=actual,
            )
    except BaseException:
        if created:
            await _delete_if_present(api, item.name)
        raise
    duration = time.monotonic() - started
    size = item.data_path.stat().st_size
    return {
        "stream": item.name,
        "path": str(item.directory),
        "action": "replaced" if replace else "restored",
        "bytes": size,
        "duration": round(duration, 3),
        "throughput_mib_s": round(size / MIB / duration, 2) if duration > 0 else 0.0,
        "replicas": int(config.get("num_replicas") or 1),
        "placement": config.get("placement"),
        "verification": {"expected": expected_state(item), "actual": actual, "match": True},
        "backup_check": item.verification,
    }


def _restored_state(final: dict[str, Any]) -> dict[str, Any]:
    state = final.get("state") or {}
    return {
        "messages": int(state.get("messages") or 0),
        "first_seq": int(state.get("first_seq") or 0),
        "last_seq": int(state.get("last_seq") or 0),
    }


async def _send_data(
    connection: Connection, api: JetStreamApi, item: StreamBackup, deliver_subject: str, options: RestoreOptions
) -> dict[str, Any]:
    client = connection.client
    chunk_size = max(1024, min(options.chunk_size, int(client.max_payload or options.chunk_size)))
    with open(item.data_path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            await _send_chunk(client, item.name, deliver_subject, chunk, options.chunk_timeout)
    try:
        reply = await client.request(deliver_subject, b"", timeout=options.finish_timeout)
    except Exception as exc:
        raise _send_failure(connection, item.name, "finishing", exc) from None
    return _parse_reply(item.name, reply.data, final=True)


async def _send_chunk(client: Any, stream: str, subject: str, chunk: bytes, timeout: float) -> None:
    try:
        reply = await client.request(subject, chunk, timeout=timeout)
    except NoRespondersError:
        raise NatsOpsError(f"restore of {stream} failed: the server stopped accepting data") from None
    except Exception as exc:
        raise NatsOpsError(f"restore of {stream} failed while sending data: {_describe(exc, timeout)}") from None
    if reply.data:
        _parse_reply(stream, reply.data, final=False)


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
    if isinstance(exc, asyncio.TimeoutError) or "timeout" in type(exc).__name__.lower():
        return f"no answer within {timeout}s (the stream leader may have gone away)"
    return str(exc) or type(exc).__name__


def _send_failure(connection: Connection, stream: str, phase: str, exc: BaseException) -> NatsOpsError:
    if connection.disconnected or connection.client.is_closed:
        return NatsOpsError(f"restore of {stream} failed: the connection to the server was lost while {phase}")
    return NatsOpsError(f"restore of {stream} failed while {phase}: {_describe(exc, 0)}")


async def _delete_if_present(api: JetStreamApi, stream: str) -> None:
    """Remove a half-made stream this restore created (a clustered restore can leave one behind)."""
    try:
        if await api.stream_info(stream) is not None:
            await api.delete_stream(stream)
    except Exception:  # the connection may be gone; the original error is what matters
        pass


async def restore_many(
    connection: Connection,
    api: JetStreamApi,
    backups: list[StreamBackup],
    actions: dict[str, str],
    options: RestoreOptions,
    parallel: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Restore the streams whose action is restore or replace; return (results, failures)."""
    limit = asyncio.Semaphore(max(1, parallel))
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []

    async def one(item: StreamBackup) -> None:
        async with limit:
            try:
                results.append(await restore_stream(connection, api, item, options, actions[item.name] == "replace"))
            except NatsOpsError as exc:
                failures.append({"stream": item.name, "msg": exc.msg, **exc.details})

    await asyncio.gather(*(one(item) for item in backups if actions[item.name] != "skip"))
    results.sort(key=lambda result: result["stream"])
    return results, failures
