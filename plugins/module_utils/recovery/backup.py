# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Which streams to back up, and backing them up into one atomically committed directory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import Connection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import DiskError, NatsOpsError, disk_errors
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams, selects_all
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (
    StagedDirectory,
    looks_finished,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import (
    RESTORE_MARKER,
    is_unfinished_restore,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.snapshot import (
    MEMORY_SNAPSHOTS,
    SnapshotOptions,
    SnapshotResult,
    snapshot_stream,
)


@dataclass
class BackupPlan:
    """What a backup run will do: the streams it takes and those it leaves out, and why."""

    path: Path
    single: bool
    streams: list[dict[str, Any]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "stream": info["config"]["name"],
                "messages": int(info["state"].get("messages") or 0),
                "bytes": int(info["state"].get("bytes") or 0),
                "replicas": int(info["config"].get("num_replicas") or 1),
                "consumers": int(info["state"].get("consumer_count") or 0),
            }
            for info in self.streams
        ]


def _unsuitable(info: dict[str, Any], release: tuple[int, int, int]) -> tuple[str, str] | None:
    """(short reason, explanation) when a stream must not be backed up, else None."""
    name = info["config"]["name"]
    if info["config"].get("storage") == "memory" and release < MEMORY_SNAPSHOTS:
        return "memory storage", (
            f"stream {name} uses memory storage, which nats-server before 2.15 cannot snapshot (this one runs "
            f"{'.'.join(map(str, release))}): upgrade the server to back it up, or recreate it from its configuration"
        )
    if is_unfinished_restore(info):
        return "unfinished restore", (
            f"stream {name} is what an interrupted restore left (metadata {RESTORE_MARKER[0]}={RESTORE_MARKER[1]}): "
            "its data is partial; restore it again from its backup"
        )
    return None


async def plan_backup(
    api: JetStreamApi, path: Path, stream: str | None, patterns: list[str] | None, release: tuple[int, int, int]
) -> BackupPlan:
    """The streams to back up; ``release`` is the server's (which streams it can snapshot)."""
    if stream:
        info = await api.stream_info(stream)
        if info is None:
            raise NatsOpsError(
                f"stream {stream} not found in this account: check the name, the credentials' account and the domain"
            )
        unsuitable = _unsuitable(info, release)
        if unsuitable:
            raise NatsOpsError(unsuitable[1])
        return BackupPlan(path=path, single=True, streams=[info])

    infos = await api.streams()
    by_name = {info["config"]["name"]: info for info in infos}
    chosen = choose_streams(list(by_name), patterns, "this account")
    plan = BackupPlan(path=path, single=False, streams=[])
    for name in chosen:
        unsuitable = _unsuitable(by_name[name], release)
        if unsuitable:
            plan.skipped.append({"stream": name, "reason": unsuitable[0]})
            plan.warnings.append(unsuitable[1] + "; skipped")
        else:
            plan.streams.append(by_name[name])
    if not plan.streams:
        raise NatsOpsError(
            "no stream to back up: the account has no stream this server can snapshot matching "
            + ("all" if selects_all(patterns) else ", ".join(pattern for pattern in patterns or [] if pattern))
        )
    return plan


class ExistingBackup(str, Enum):
    """What a backup finds at its path before it begins."""

    ABSENT = "absent"
    FINISHED = "finished"  # a completed backup of the same kind (one stream's, or an account's), nothing else
    OTHER = "other"  # anything else: never touched, with or without force


def existing_backup(path: Path, single: bool) -> ExistingBackup:
    if not path.exists() and not path.is_symlink():
        return ExistingBackup.ABSENT
    return ExistingBackup.FINISHED if is_finished_backup(path, single) else ExistingBackup.OTHER


def is_finished_backup(path: Path, single: bool) -> bool:
    """A finished backup of one stream (``single``) or of an account, and nothing else, at ``path``.

    Strict on purpose: ``force`` replaces only what this says yes to, so a stray file, a folder that is
    not a stream backup, a symlink or the other kind of backup keeps the whole path from being replaced.
    """
    if single:
        return looks_finished(path)
    if path.is_symlink() or not path.is_dir():
        return False
    entries = list(path.iterdir())
    return bool(entries) and all(looks_finished(entry) for entry in entries)


# Told of each stream of an account backup as it starts (no result yet) and as it ends (its result).
StreamAnnouncer = Callable[[str, "SnapshotResult | None"], None]


async def run_backup(
    connection: Connection,
    api: JetStreamApi,
    plan: BackupPlan,
    options: SnapshotOptions,
    parallel: int,
    force: bool,
    announce: StreamAnnouncer | None = None,
) -> list[SnapshotResult]:
    """Back up every planned stream; commit the directory only when all succeeded.

    A disk error names the user's path, never the hidden one the backup is written under.
    """
    staged = StagedDirectory(plan.path)
    progress = Progress(announce=announce)
    try:
        try:
            with disk_errors(), staged:
                if plan.single:
                    name = plan.streams[0]["config"]["name"]
                    results = [await snapshot_stream(connection, api, name, staged.path, options)]
                else:
                    results = await _snapshot_many(connection, api, plan, staged.path, options, parallel, progress)
                staged.commit(replaceable=(lambda target: is_finished_backup(target, plan.single)) if force else None)
        except DiskError as exc:
            raise staged.shown(exc) from None
    except NatsOpsError as exc:
        if plan.single:
            raise
        raise NatsOpsError(f"{exc.msg}; {progress.describe(plan)}", **exc.details, **progress.as_dict(plan)) from None
    for result in results:
        result.path = str(plan.path if plan.single else plan.path / result.stream)
    return results


@dataclass
class Progress:
    """How far an account backup got: what a failure reports, since the whole backup is then discarded."""

    done: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    stopped: bool = False
    announce: StreamAnnouncer | None = None

    def start(self, name: str) -> None:
        self.started.append(name)
        if self.announce:
            self.announce(name, None)

    def finish(self, name: str, result: SnapshotResult) -> None:
        self.done.append(name)
        if self.announce:
            self.announce(name, result)

    def as_dict(self, plan: BackupPlan) -> dict[str, list[str]]:
        names = [info["config"]["name"] for info in plan.streams]
        return {
            "backed_up": sorted(self.done),
            "in_flight": sorted(set(self.started) - set(self.done)),
            "not_started": [name for name in names if name not in self.started],
        }

    def describe(self, plan: BackupPlan) -> str:
        counts = {key: len(names) for key, names in self.as_dict(plan).items()}
        return (
            f"nothing was kept at {plan.path} ({counts['backed_up']} of {len(plan.streams)} streams had been backed "
            f"up, {counts['in_flight']} were in flight, {counts['not_started']} never started): run the backup again"
        )


async def _snapshot_many(
    connection: Connection,
    api: JetStreamApi,
    plan: BackupPlan,
    root: Path,
    options: SnapshotOptions,
    parallel: int,
    progress: Progress,
) -> list[SnapshotResult]:
    limit = asyncio.Semaphore(max(1, parallel))

    async def one(name: str) -> SnapshotResult:
        async with limit:
            if progress.stopped:  # woken by a slot freed while the run was being cancelled: not started
                raise asyncio.CancelledError
            progress.start(name)
            directory = root / name
            directory.mkdir()
            result = await snapshot_stream(connection, api, name, directory, options)
            progress.finish(name, result)
            return result

    tasks = [asyncio.ensure_future(one(info["config"]["name"])) for info in plan.streams]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        progress.stopped = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
