# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""What can be checked cheaply before a restore touches anything: the target's release against each
archive's format, replicas against the servers there are, the account's JetStream limits against the data.

Each check is one the server would otherwise make only after the data was sent (a V2 archive on 2.14
fails at the second chunk, replicas on a standalone server or an account limit at the final request), so
a replace would already have deleted the stream it meant to replace. A check that cannot be decided
from what is known (another domain, a server that does not advertise its cluster) is left to the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    server_info,
    server_release,
    servers_up,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, poll
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (
    RESTORABLE_FROM,
    ArchiveFormat,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import RestoreAction
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.snapshot import MEMORY_SNAPSHOTS

MIB = 1024 * 1024
SERVERS_UP_SETTLE = 2.0  # seconds a count of servers too small for the replicas asked is read again


@dataclass
class Target:
    """The server a restore talks to, as its INFO and the account's JetStream info describe it."""

    server: str
    version: str
    release: tuple[int, int, int]
    cluster: str | None  # None: not clustered
    servers_up: int  # servers of its cluster that it routes to, itself included (INFO connect_urls)
    other_domain: bool  # a JetStream domain was named: the streams may live behind another server
    account: dict[str, Any]

    def release_text(self) -> str:
        return f"nats-server {self.version or '(unknown release)'} (server {self.server or '?'})"


async def read_target(client: Any, api: JetStreamApi, domain: str | None) -> Target:
    info = server_info(client)
    return Target(
        server=str(info.get("server_name") or ""),
        version=str(info.get("version") or ""),
        release=server_release(client),
        cluster=info.get("cluster") or None,
        servers_up=servers_up(client),
        other_domain=bool(domain),
        account=await api.account_info(),
    )


async def settle_servers_up(client: Any, target: Target, wanted: int) -> None:
    """Before refusing for want of servers, give the count a moment to catch up.

    A server learns its peers' client URLs as its routes form and tells its clients in a new INFO; a
    count read just then can be one short (seen in CI on a cluster started a second before).
    """
    if not target.cluster:
        return

    async def count() -> int:
        return servers_up(client)

    target.servers_up = await poll(
        count, Deadline.after(SERVERS_UP_SETTLE), 0.1, until=lambda up: not 0 < up < wanted, overrun=True
    )


@dataclass
class Planned:
    """One stream of the restore as the checks see it."""

    name: str
    action: RestoreAction
    archive: ArchiveFormat
    replicas: int
    placement_cluster: str | None
    storage: str  # file or memory, as restored
    backup_storage: str  # file or memory, as backed up
    bytes: int
    existing: dict[str, Any] | None  # the stream a replace or redo deletes


def problems(target: Target, streams: list[Planned]) -> dict[str, str]:
    """Why each stream cannot be restored into ``target``, by stream (empty when nothing stands in the way)."""
    found: dict[str, str] = {}
    for stream in streams:
        if stream.action is RestoreAction.SKIP:
            continue
        problem = (
            _release_problem(target, stream)
            or _storage_problem(stream)
            or _replicas_problem(target, stream)
            or _safety_problem(target, stream)
        )
        if problem:
            found[stream.name] = problem
    found.update(_limit_problems(target, [stream for stream in streams if stream.action is not RestoreAction.SKIP]))
    return found


def _release_problem(target: Target, stream: Planned) -> str | None:
    needed = RESTORABLE_FROM.get(stream.archive)
    if target.other_domain or needed is None or target.release == (0, 0, 0) or target.release >= needed:
        return None
    return (
        f"its backup is a {stream.archive.value.upper()} archive, which only nats-server "
        f"{'.'.join(map(str, needed[:2]))} or later can restore, and the target runs {target.release_text()}: "
        "restore it into a newer server"
    )


def _storage_problem(stream: Planned) -> str | None:
    """A V1 archive holds the file store's own blocks: a server restores them only as file storage."""
    if stream.storage == stream.backup_storage or stream.archive is not ArchiveFormat.V1:
        return None
    return (
        f"its backup is a V1 archive (the {stream.backup_storage} store's own files, written by nats-server before "
        f"2.15), which a server restores only with the storage it was taken from: restore it as "
        f"{stream.backup_storage} (leave out storage), or back it up again from nats-server 2.15 or later"
    )


def _replicas_problem(target: Target, stream: Planned) -> str | None:
    if target.other_domain or stream.replicas <= 1:
        return None
    if target.cluster is None:
        return (
            f"it would have {stream.replicas} replicas, and server {target.server or '?'} is not clustered: "
            "restore with replicas: 1"
        )
    elsewhere = stream.placement_cluster and stream.placement_cluster != target.cluster
    if not elsewhere and target.servers_up and stream.replicas > target.servers_up:
        return (
            f"it would have {stream.replicas} replicas, and cluster {target.cluster} has {target.servers_up} "
            f"server(s) up: restore with replicas: {target.servers_up} or fewer, or bring servers back"
        )
    return None


def _safety_problem(target: Target, stream: Planned) -> str | None:
    """A replace needs a safety backup of the stream it deletes; before 2.15 a memory stream has none."""
    if stream.action is not RestoreAction.REPLACE or not stream.existing:
        return None
    if target.other_domain or target.release == (0, 0, 0):
        return None
    if (stream.existing.get("config") or {}).get("storage") == "memory" and target.release < MEMORY_SNAPSHOTS:
        return (
            "the stream it would replace uses memory storage, which nats-server before 2.15 cannot snapshot, so "
            "no safety backup of it can be kept: delete it yourself if you accept losing its messages, then restore"
        )
    return None


def _limit_problems(target: Target, streams: list[Planned]) -> dict[str, str]:
    """The account's JetStream limits (per replica tier when the account has tiers) against the data."""
    account = target.account
    tiers = account.get("tiers") or {}
    scopes = {name: tier for name, tier in tiers.items() if tier.get("limits")} if tiers else {"": account}
    found: dict[str, str] = {}
    for scope, usage in scopes.items():
        chosen = [stream for stream in streams if not scope or f"R{stream.replicas}" == scope]
        if not chosen:
            continue
        limits = usage.get("limits") or {}
        where = f"the account's {scope} tier" if scope else "the account"
        for storage, limit_key, used_key in (("file", "max_storage", "storage"), ("memory", "max_memory", "memory")):
            limit = int(limits.get(limit_key) or -1)
            if limit <= 0:
                continue
            of_kind = [stream for stream in chosen if stream.storage == storage]
            needed = sum(stream.bytes * stream.replicas for stream in of_kind)
            freed = sum(_used_by(stream.existing) for stream in of_kind if stream.existing)
            free = limit - int(usage.get(used_key) or 0) + freed
            if needed > free:
                problem = (
                    f"{where} may store {_mib(limit)} of {storage} data and has {_mib(max(free, 0))} free for this "
                    f"restore, which needs {_mib(needed)} (bytes times replicas): raise the account's JetStream "
                    "limits, free space, or restore fewer streams or replicas"
                )
                found.update({stream.name: problem for stream in of_kind})
        max_streams = int(limits.get("max_streams") or -1)
        new = [stream for stream in chosen if stream.action is RestoreAction.RESTORE]
        if max_streams > 0 and int(usage.get("streams") or 0) + len(new) > max_streams:
            problem = (
                f"{where} may hold {max_streams} streams and holds {int(usage.get('streams') or 0)}; the restore "
                f"adds {len(new)}: raise the account's max_streams, or restore fewer streams"
            )
            found.update({stream.name: problem for stream in new})
    return found


def _used_by(info: dict[str, Any]) -> int:
    """What an existing stream counts against the account: its bytes on each replica."""
    replicas = int((info.get("config") or {}).get("num_replicas") or 1)
    return int((info.get("state") or {}).get("bytes") or 0) * replicas


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"
