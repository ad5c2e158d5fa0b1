# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""One restore run over many streams: in parallel, replacing only behind a safety backup, and ending
promptly when the connection is lost, with an account of every stream.

When the connection goes, no new stream is started; the streams in flight are removed (or, when no
server answers, left marked for the next run) through one fresh connection for all of them; and the
outcome names the streams restored, incomplete and never started, so that a rerun finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    ConnectFailed,
    Connection,
    server_info,
    servers_up,
    with_advertised_servers,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    NO_META_LEADER,
    NO_SUITABLE_PEERS,
    STREAM_ASSIGNMENT_ERROR,
    STREAM_NAME_IN_USE,
    JetStreamApi,
    JetStreamApiError,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, retry
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import ArchiveFormat
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import (
    OWNER_KEYS,
    ConnectionLost,
    RestoreAction,
    RestoreOptions,
    StreamBackup,
    remove_created_stream,
    restore_stream,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.safety import (
    discard_safety_backup,
    take_safety_backup,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.sources import dependencies


@dataclass
class SafetyOptions:
    root: Path
    keep: bool = False


@dataclass
class RunOutcome:
    """What happened to each stream of a run."""

    restored: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    incomplete: list[dict[str, Any]] = field(default_factory=list)  # in flight when the connection was lost
    not_started: list[str] = field(default_factory=list)
    lost: bool = False  # the connection to the server was lost


# How long a put-back keeps trying while the cluster elects leaders after a server died mid-replace.
PUT_BACK_WINDOW = 120.0
# A put-back's restore request left unanswered this long is removed and made again: seen on 2.15.1, a
# restore placed with a server that had just died among its peers was never started by the others.
PUT_BACK_REQUEST_TIMEOUT = 15.0
# How long a run tries to reach any server again once its connection is lost (to clean up, or put back).
FRESH_CONNECT_WINDOW = 5.0
# nats-server (2.10 to 2.15) ends a restore that received nothing for 5 s and reports the failure to its
# meta leader, which deletes the stream *of that name* if it was created less than 5 s before: a put-back
# made while the failed restore still waits would be deleted by it. A put-back in a cluster waits this long
# after the failure.
FAILED_RESTORE_LINGERS = 6.5
# Answers to a put-back that a moment may change: no meta leader yet; an assignment error (the failed
# restore's handler stalled, say).
PUT_BACK_RETRIES = (NO_META_LEADER, STREAM_ASSIGNMENT_ERROR)


class ReplaceFailed(NatsOpsError):
    """A replace that failed after the old stream was deleted: put back, or kept in its safety backup."""


class StreamVanished(NatsOpsError):
    """The stream to replace was deleted by someone else after its safety backup was taken."""


class RestoreRun:
    def __init__(
        self,
        connection: Connection,
        api: JetStreamApi,
        options: RestoreOptions,
        owner: dict[str, str],
        safety: SafetyOptions,
    ) -> None:
        self.connection = connection
        self.api = api
        self.options = options
        self.owner = owner
        self.safety = safety
        self.outcome = RunOutcome()
        self._in_flight: list[ConnectionLost] = []
        self._fresh: Connection | None = None
        self._fresh_tried = False
        self._fresh_problem = ""

    @property
    def lost(self) -> bool:
        return self.outcome.lost or self.connection.lost

    async def run(
        self,
        backups: list[StreamBackup],
        actions: dict[str, RestoreAction],
        existing: dict[str, dict[str, Any]],
        parallel: int,
    ) -> RunOutcome:
        limit = asyncio.Semaphore(parallel)
        chosen = [item for item in backups if actions[item.name] is not RestoreAction.SKIP]
        # Origins first: a mirror or source restored before its origin waits out the server's retry backoff
        # (about 20 s), and a source's position is checked against its origin as restored.
        origins = dependencies({item.name: item.backup["config"] for item in chosen})
        finished = {item.name: asyncio.Event() for item in chosen}

        async def one(item: StreamBackup) -> None:
            try:
                for origin in origins[item.name]:
                    await finished[origin].wait()
                async with limit:
                    if self.lost:
                        self.outcome.lost = True
                        self.outcome.not_started.append(item.name)
                        return
                    await self._restore_one(item, actions[item.name], existing.get(item.name))
            finally:
                finished[item.name].set()

        try:
            await asyncio.gather(*(one(item) for item in chosen))
            await self._clean_up_in_flight()
        finally:
            if self._fresh is not None:
                await self._fresh.close()
        self.outcome.restored.sort(key=lambda result: result["stream"])
        self.outcome.not_started.sort()
        return self.outcome

    async def _restore_one(self, item: StreamBackup, action: RestoreAction, existing: dict[str, Any] | None) -> None:
        try:
            if action is RestoreAction.REPLACE and existing is not None:
                result = await self._replace(item, existing)
            else:
                result = await restore_stream(self.connection, self.api, item, self.options, action, self.owner)
            self.outcome.restored.append(result)
        except ConnectionLost as exc:
            self.outcome.lost = True
            self._in_flight.append(exc)
        except NatsOpsError as exc:
            self.outcome.lost = self.outcome.lost or self.connection.lost
            self.outcome.failures.append({"stream": item.name, "msg": exc.msg, **exc.details})

    # --- replace: a safety backup first, put back if the new stream does not make it -------------------

    async def _replace(self, item: StreamBackup, old: dict[str, Any]) -> dict[str, Any]:
        name = item.name
        safety = await take_safety_backup(self.connection, self.api, old, self.safety.root, self.options.chunk_timeout)
        try:
            await self._refuse_if_changed(name, safety)
            await self.api.delete_stream(name)
        except StreamVanished:
            raise  # its safety backup is now the only copy: kept
        except NatsOpsError:
            discard_safety_backup(safety.directory)  # the old stream is still there, as it was
            raise
        try:
            result = await restore_stream(
                self.connection, self.api, item, self.options, RestoreAction.RESTORE, self.owner
            )
        except NatsOpsError as exc:
            raise await self._put_back(item, safety, exc) from None
        result["action"] = "replaced"
        result["safety_backup"] = self._finish_with(safety)
        return result

    async def _refuse_if_changed(self, name: str, safety: StreamBackup) -> None:
        """Messages stored after the safety backup was taken would be lost by a put-back: refuse instead."""
        now = await self.api.stream_info(name)
        then = safety.backup["state"]
        if now is None:
            raise StreamVanished(
                f"replace of {name} refused: the stream was deleted by someone else while its safety backup was "
                f"taken; that backup is kept, in {safety.directory}",
                safety_backup={"path": str(safety.directory), "kept": True},
            )
        if int(now["state"].get("last_seq") or 0) != int(then.get("last_seq") or 0):
            raise NatsOpsError(
                f"replace of {name} refused: the stream took new messages while its safety backup was taken "
                f"(last sequence {then.get('last_seq')}, now {now['state'].get('last_seq')}), which a put-back "
                "would lose; stop its publishers, then run again. The stream was left as it was"
            )

    def _finish_with(self, safety: StreamBackup) -> dict[str, Any]:
        if self.safety.keep:
            return {"path": str(safety.directory), "kept": True}
        discard_safety_backup(safety.directory)
        return {"path": str(safety.directory), "kept": False}

    async def _put_back(self, item: StreamBackup, safety: StreamBackup, failure: NatsOpsError) -> NatsOpsError:
        """Restore the old stream from its safety backup after a failed replace; say how it ended."""
        failed_restore_ends = Deadline.after(FAILED_RESTORE_LINGERS)  # waited out by a put-back in a cluster
        name, where = item.name, safety.directory
        lost = isinstance(failure, ConnectionLost)
        connection, api = (self.connection, self.api) if not self.connection.lost else await self._fresh_api()
        details = {"safety_backup": {"path": str(where), "kept": True}, "put_back": False}
        if api is None:
            return ReplaceFailed(
                f"replace of {name} failed ({failure.msg}) after the old stream was deleted, and no server answers "
                f"to put it back ({self._fresh_problem}). Its data is safe in the safety backup {where}: restore "
                f"it with natsops.jetstream.stream_restore (path: {where}) once a server answers",
                **details,
            )
        problem = await remove_created_stream(api, name) if lost and failure.created else None
        try:
            if problem:
                raise NatsOpsError(problem)
            if server_info(connection.client).get("cluster"):
                await asyncio.sleep(failed_restore_ends.remaining())
            fewer = await self._restore_safety_backup(connection, api, safety)
        except NatsOpsError as exc:
            return ReplaceFailed(
                f"replace of {name} failed ({failure.msg}) after the old stream was deleted, and putting it back "
                f"failed too ({exc.msg}). Its data is safe in the safety backup {where}: restore it with "
                f"natsops.jetstream.stream_restore (path: {where})",
                **details,
            )
        kept = self._finish_with(safety)
        state = safety.backup["state"]
        consumers = ""
        if fewer:
            consumers += (
                f"; with {fewer[1]} replica(s) instead of {fewer[0]}, as only {fewer[1]} server(s) answer: raise its "
                f"replicas again (natsops.jetstream.stream, replicas: {fewer[0]}) once the servers are back"
            )
        if safety.verification.get("archive_format") == ArchiveFormat.V2.value:
            consumers += (
                "; its consumers kept their ack floors, and messages they had delivered but not acked will be "
                "delivered again (a V2 snapshot keeps no pending state)"
            )
        return ReplaceFailed(
            f"replace of {name} failed ({failure.msg}); the old stream was put back from its safety backup, "
            f"as it was when the replace began ({state.get('messages', 0)} messages, last sequence "
            f"{state.get('last_seq', 0)}){consumers}",
            safety_backup=kept,
            put_back=True,
        )

    async def _restore_safety_backup(
        self, connection: Connection, api: JetStreamApi, safety: StreamBackup
    ) -> tuple[int, int] | None:
        """Put the old stream back, waiting out an election; with fewer replicas if the servers up cannot hold
        its own (a server died in the replace). Returns (wanted, given) replicas when fewer were given."""
        wanted = int(safety.backup["config"].get("num_replicas") or 1)
        options = RestoreOptions(chunk_timeout=self.options.chunk_timeout, request_timeout=PUT_BACK_REQUEST_TIMEOUT)
        deadline = Deadline.after(PUT_BACK_WINDOW)
        unanswered = 0
        while True:
            await _meta_leader_answers(api, deadline)  # a request sent mid-election waits out its timeout
            try:
                await restore_stream(connection, api, safety, options, RestoreAction.RESTORE, self.owner)
                return (wanted, options.replicas) if options.replicas else None
            except ConnectionLost:
                raise
            except JetStreamApiError as exc:
                if exc.err_code == NO_SUITABLE_PEERS and not options.replicas:
                    up = servers_up(connection.client) or 1
                    if up < wanted:
                        options.replicas = up
                        continue
                if exc.err_code in STREAM_NAME_IN_USE and await self._ours_or_gone(api, safety.name):
                    # What the failed restore left holds the name (a cluster keeps it reserved): remove it.
                    await remove_created_stream(api, safety.name)
                elif exc.err_code not in PUT_BACK_RETRIES or deadline.expired():
                    raise
            except NatsOpsError:
                if deadline.expired():  # no answer: mostly an election after a server died
                    raise
                unanswered += 1
                up = servers_up(connection.client)
                if unanswered >= 2 and 0 < up < wanted and not options.replicas:
                    # Placed again and again with the dead server among its peers: on the survivors alone.
                    options.replicas = up
            await asyncio.sleep(1.0)

    async def _ours_or_gone(self, api: JetStreamApi, name: str) -> bool:
        """Whether the stream holding ``name`` is one this run's restore left (marked with its owner), or
        none that can be seen: a name reserved by a failed clustered restore has no stream behind it."""
        try:
            info = await api.stream_info(name)
        except NatsOpsError:
            return False
        metadata = ((info or {}).get("config") or {}).get("metadata") or {}
        return info is None or metadata.get(OWNER_KEYS["owner"]) == self.owner.get("owner")

    # --- after a lost connection: one fresh connection for every stream that was in flight --------------

    async def _fresh_api(self) -> tuple[Connection | None, JetStreamApi | None]:
        """A new connection to any of the servers, tried once per run."""
        if not self._fresh_tried:
            self._fresh_tried = True
            options = with_advertised_servers(self.connection.options, self.connection.client)

            async def connect() -> Connection:
                fresh = Connection(options)
                await fresh.open()
                return fresh

            try:
                self._fresh = await retry(
                    connect, Deadline.after(FRESH_CONNECT_WINDOW), 0.5, retry_on=_unreachable, overrun=True
                )
            except NatsOpsError as exc:
                self._fresh_problem = exc.msg
        if self._fresh is None or self._fresh.lost:
            return None, None
        return self._fresh, self.api.using(self._fresh.client)

    async def _clean_up_in_flight(self) -> None:
        if not self._in_flight:
            return
        created = [lost for lost in self._in_flight if lost.created]
        api = (await self._fresh_api())[1] if created else None

        async def clean(lost: ConnectionLost) -> dict[str, Any]:
            entry = {"stream": lost.stream, "msg": lost.msg}
            if not lost.created:
                return {**entry, "state": "not created"}
            if api is None:
                return {**entry, "state": "left marked", "why": self._fresh_problem}
            problem = await remove_created_stream(api, lost.stream)
            if problem is None:
                return {**entry, "state": "removed"}
            return {**entry, "state": "left marked", "why": problem}

        self.outcome.incomplete = sorted(
            await asyncio.gather(*(clean(lost) for lost in self._in_flight)), key=lambda entry: entry["stream"]
        )


def _unreachable(exc: Exception) -> bool:
    """No server could be reached: the survivors may be busy electing, or resetting connections."""
    return isinstance(exc, ConnectFailed) and exc.unreachable


async def _meta_leader_answers(api: JetStreamApi, deadline: Deadline) -> None:
    """Until the meta leader answers (only it answers account info in a cluster), or the deadline."""
    if deadline.expired():
        return
    with contextlib.suppress(NatsOpsError):  # unanswered until the deadline: the request after this says why
        await retry(lambda: api.request("INFO", timeout=2.0), deadline, 0.5, retry_on=_no_answer_yet)


def _no_answer_yet(exc: Exception) -> bool:
    return isinstance(exc, NatsOpsError)


def describe_loss(outcome: RunOutcome) -> str:
    """The message of a run that lost its connection: what is done, what is not, and how to finish."""
    parts = [f"restored {len(outcome.restored)}"]
    if outcome.failures:
        parts.append(
            f"failed {len(outcome.failures)}: " + "; ".join(f"{f['stream']} ({f['msg']})" for f in outcome.failures)
        )
    for state, words in (("removed", "in flight and removed"), ("not created", "in flight, not created")):
        names = [entry["stream"] for entry in outcome.incomplete if entry["state"] == state]
        if names:
            parts.append(f"{words}: {', '.join(names)}")
    marked = [entry["stream"] for entry in outcome.incomplete if entry["state"] == "left marked"]
    if marked:
        how = (
            f"delete it with 'nats stream rm {marked[0]}'" if len(marked) == 1 else "delete each with 'nats stream rm'"
        )
        parts.append(f"in flight and left marked: {', '.join(marked)} (the next run redoes them; or {how})")
    if outcome.not_started:
        shown = ", ".join(outcome.not_started[:10]) + (" and more" if len(outcome.not_started) > 10 else "")
        parts.append(f"never started {len(outcome.not_started)}: {shown}")
    return (
        "the connection to the server was lost during the restore; " + "; ".join(parts) + ". Run the restore again "
        "once the servers answer; with if_exists: skip it keeps what this run restored and restores the rest"
    )
