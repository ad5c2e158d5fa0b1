# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Raft membership changes: removing a peer from the meta group or a stream's group, and leader step-down.

Each change is judged first (what it would cost, whether quorum survives it), then made with retries
while a leader is being elected, then waited for until the servers show it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.model import (
    ClusterView,
    GroupFacts,
    MetaGroup,
    Replica,
    peer_id,
    quorum,
    read_meta,
    replicas_of,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.system import NotSystemAccount, SystemApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    MEMBERSHIP_CHANGE_IN_PROGRESS,
    NO_META_LEADER,
    JetStreamApi,
    JetStreamApiError,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, backoff, poll, retry

T = TypeVar("T")

# err_codes worth waiting out: no meta leader yet, a membership change under way.
TRANSIENT_ERR_CODES = {NO_META_LEADER, MEMBERSHIP_CHANGE_IN_PROGRESS}
NOT_A_META_MEMBER = 10044
NOT_A_STREAM_MEMBER = 10040
# Between looks at a group while waiting for a change the leader accepted to show.
CHANGE_POLL_INTERVAL = 0.25


async def with_retries(attempt: Callable[[], Awaitable[T]], deadline: Deadline, what: str) -> T:
    """Run ``attempt`` until it succeeds, backing off while the cluster has no leader to answer."""
    try:
        return await retry(attempt, deadline, backoff(0.25, 2.0), retry_on=_awaits_a_leader)
    except NatsOpsError as exc:
        if not _awaits_a_leader(exc):
            raise
        raise NatsOpsError(
            f"{what}: no answer within wait_timeout ({exc.msg}). Either no leader was elected meanwhile "
            "(bring a majority of servers up), or nothing serves this request here: check that JetStream "
            "is enabled for the account, and the domain"
        ) from None


def _awaits_a_leader(exc: Exception) -> bool:
    """During an election nobody answers JetStream API requests, or the answer is "no meta leader"."""
    return (
        isinstance(exc, NatsOpsError)
        and not isinstance(exc, NotSystemAccount)
        and (exc.details.get("err_code") in TRANSIENT_ERR_CODES or isinstance(exc, NoAnswer))
    )


@dataclass
class Removal:
    """What removing a peer would do, and why it must not be done."""

    group: str  # "meta" or "ACCOUNT/STREAM"
    peer: str
    peer_id: str
    member: bool
    online: bool = False
    size_before: int = 0
    current_after: list[str] = field(default_factory=list)
    quorum_needed: int = 0
    data_lost: list[str] = field(default_factory=list)  # streams whose only copies are on this peer
    quorum_lost: list[str] = field(default_factory=list)  # streams left without a quorum of current replicas
    unchecked_accounts: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "peer": self.peer,
            "peer_id": self.peer_id,
            "member": self.member,
            "online": self.online,
            "size_before": self.size_before,
            "current_after": self.current_after,
            "quorum_needed": self.quorum_needed,
            "streams_losing_data": self.data_lost,
            "streams_without_quorum": self.quorum_lost,
            "unchecked_accounts": self.unchecked_accounts,
        }


def judge_meta_removal(view: ClusterView, member: Replica, force: bool, accept_data_loss: bool) -> Removal:
    """Whether removing ``member`` from the meta group is safe, and what it would cost."""
    meta = view.meta
    if meta is None:
        raise NatsOpsError("the meta group could not be seen: system-account credentials are needed")
    removal = Removal("meta", member.name, peer_id(member.name), True, online=bool(member.online))
    removal.size_before = meta.size
    removal.current_after = [name for name in meta.online_members if name != member.name]
    # The removal commits through the current group, and the group it leaves must still have a majority.
    removal.quorum_needed = max(meta.quorum, quorum(meta.size - 1))
    if member.online and not force:
        removal.refusals.append(
            f"{member.name} is online (it answers a ping): removing a live server disables JetStream on it. "
            "Stop it first, or set force: true"
        )
    if len(removal.current_after) < removal.quorum_needed:
        others_up = ", ".join(removal.current_after) or "none"
        removal.refusals.append(
            f"only {len(removal.current_after)} other meta peer(s) are up ({others_up}) "
            f"and the removal needs {removal.quorum_needed}: bring servers back until a majority of "
            f"the {meta.size} is up; removing peers cannot restore a lost quorum"
        )
    for stream in view.streams.values():
        if member.name not in stream.hosts():
            continue
        others = (set(stream.current) | stream.holders) - {member.name}
        if not others:
            removal.data_lost.append(stream.key)
        elif len(others) < quorum(stream.wanted):
            removal.quorum_lost.append(stream.key)
    # Streams listed by an account but answered for by no replica live only on servers that are down.
    seen = {stream.key for stream in view.streams.values()}
    removal.data_lost += [key for key in view.unreachable if key not in seen and key not in removal.data_lost]
    # A peer that is up shows its streams in JSZ; only a down one can hide some from the system account.
    removal.unchecked_accounts = [] if member.online else view.unchecked_accounts
    _refuse_data_loss(removal, accept_data_loss)
    return removal


def judge_stream_removal(stream: GroupFacts, member: Replica, force: bool, accept_data_loss: bool) -> Removal:
    """Whether removing ``member`` from one stream's group is safe."""
    removal = Removal(stream.key, member.name, peer_id(member.name), True, online=member.is_current)
    removal.size_before = stream.wanted
    removal.current_after = [name for name in stream.current if name != member.name]
    removal.quorum_needed = quorum(stream.wanted)
    if member.is_current and not force:
        role = "the stream's leader" if member.leader else "a current replica"
        removal.refusals.append(
            f"{member.name} is {role} of {stream.key}: removing a healthy replica costs a full catch-up "
            "on its replacement. Wait until it is shown not current, or set force: true"
        )
    if not removal.current_after:
        removal.data_lost.append(stream.key)
    elif len(removal.current_after) < removal.quorum_needed:
        removal.refusals.append(
            f"{stream.key} would keep {len(removal.current_after)} current replica(s) of {stream.wanted} "
            f"and needs {removal.quorum_needed} to agree on the change: bring its servers back first"
        )
    _refuse_data_loss(removal, accept_data_loss)
    return removal


def _refuse_data_loss(removal: Removal, accept_data_loss: bool) -> None:
    if accept_data_loss:
        return
    if removal.data_lost:
        removal.refusals.append(
            f"these streams have no copy except on {removal.peer}, and removing it loses their data "
            f"(they are recreated empty elsewhere): {', '.join(removal.data_lost)}. Back them up or bring "
            "the server back; set accept_data_loss: true to go ahead"
        )
    if removal.quorum_lost:
        removal.refusals.append(
            "these streams have too few current replicas left to recover on their own: "
            f"{', '.join(removal.quorum_lost)}. Bring their servers back first; set accept_data_loss: true to go ahead"
        )
    if removal.unchecked_accounts:
        removal.refusals.append(
            f"streams of accounts {', '.join(removal.unchecked_accounts)} that lived only on {removal.peer} cannot "
            "be seen with system-account credentials: give those accounts' credentials in accounts, "
            "or set accept_data_loss: true"
        )


async def remove_meta_peer(api: JetStreamApi, system: SystemApi, member: Replica, deadline: Deadline) -> MetaGroup:
    """``$JS.API.SERVER.REMOVE``, retried through elections, then waited for until the leader shows it."""

    async def attempt() -> None:
        try:
            await api.request("SERVER.REMOVE", {"peer": member.name, "peer_id": peer_id(member.name)})
        except JetStreamApiError as exc:
            if exc.err_code != NOT_A_META_MEMBER:  # an earlier attempt did it and its answer was lost
                raise

    if member.leader:
        # A leader removing itself may never answer: hand leadership over first (only with force).
        await step_down(api, "META.LEADER.STEPDOWN", lambda: meta_leader(system), member.name, None, deadline)
    await with_retries(attempt, deadline, f"removing {member.name} from the meta group")
    latest: list[MetaGroup] = []

    async def gone() -> bool:
        try:
            meta = await read_meta(system)
        except NatsOpsError:
            return False  # between leaders
        latest[:] = [meta]
        return bool(meta.leader) and meta.find(name=member.name) is None

    if not await poll(gone, deadline, CHANGE_POLL_INTERVAL):
        raise NatsOpsError(
            f"the meta leader accepted the removal of {member.name} but the meta group still lists it; "
            "raise wait_timeout or check the cluster with natsops.jetstream.cluster_info"
        )
    return latest[0]


async def meta_leader(system: SystemApi) -> str | None:
    return (await read_meta(system)).leader


async def remove_stream_peer(api: JetStreamApi, stream: str, member: str, deadline: Deadline) -> list[Replica]:
    async def attempt() -> None:
        try:
            await api.request(f"STREAM.PEER.REMOVE.{stream}", {"peer": member})
        except JetStreamApiError as exc:
            if exc.err_code != NOT_A_STREAM_MEMBER:
                raise

    await with_retries(attempt, deadline, f"removing {member} from stream {stream}")
    latest: list[Replica] = []

    async def gone() -> bool:
        try:
            info = await api.stream_info(stream)
        except NatsOpsError:
            return False  # no leader while the group changes
        latest[:] = replicas_of((info or {}).get("cluster"), None)
        return all(replica.name != member for replica in latest)

    if not await poll(gone, deadline, CHANGE_POLL_INTERVAL):
        raise NatsOpsError(f"stream {stream} still lists {member} after the removal was accepted; raise wait_timeout")
    return latest


async def step_down(
    api: JetStreamApi,
    suffix: str,
    current_leader: Callable[[], Awaitable[str | None]],
    old_leader: str,
    preferred: str | None,
    deadline: Deadline,
) -> str:
    """Ask the leader to step down (optionally in favour of ``preferred``) and wait for the new one."""
    body = {"placement": {"preferred": preferred}} if preferred else None
    await with_retries(lambda: api.request(suffix, body), deadline, "leader step-down")
    found: list[str] = []

    async def moved() -> bool:
        try:
            leader = await current_leader()
        except NatsOpsError:
            return False
        found[:] = [leader] if leader else []
        return bool(leader) and leader != old_leader and (not preferred or leader == preferred)

    if not await poll(moved, deadline, CHANGE_POLL_INTERVAL):
        now = found[0] if found else "none"
        raise NatsOpsError(
            f"the leader did not move from {old_leader}"
            + (f" to {preferred}" if preferred else "")
            + f" within wait_timeout (leader now: {now})"
        )
    return found[0]
