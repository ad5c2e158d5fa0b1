# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""The cluster model: the meta group, and the Raft groups of streams and consumers, as their servers see them.

What can be seen depends on the credentials. The system account sees the meta group, which servers
are up (they answer a ping), and every stream with a replica on a server that is up (JSZ). An
account sees its own streams through the JetStream API, including those no replica answers for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.system import (
    NotSystemAccount,
    SystemApi,
    account_name,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    Connection,
    nats_connection,
    server_info,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi

_PEER_ID_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def peer_id(server_name: str) -> str:
    """The Raft peer id nats-server derives from a server name (8 characters)."""
    digest = hashlib.sha256(server_name.encode()).digest()
    return "".join(_PEER_ID_DIGITS[byte % 62] for byte in digest[:8])


class NotClustered(NatsOpsError):
    """No server that answers runs clustered JetStream: there is no meta group."""


def quorum(size: int) -> int:
    return size // 2 + 1


@dataclass
class Replica:
    """One member of a Raft group as the group's leader reports it."""

    name: str
    leader: bool = False
    current: bool = False
    offline: bool = False
    lag: int = 0
    active_seconds: float | None = None
    online: bool | None = None  # answers a ping (known only with system-account credentials)

    @property
    def is_current(self) -> bool:
        """Up and caught up. The leader's own flags lag a few seconds behind a crash; a ping does not."""
        if self.online is False:
            return False
        return self.leader or (self.current and not self.offline)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "peer_id": peer_id(self.name),
            "leader": self.leader,
            "current": self.is_current,
            "online": self.online,
            "lag": self.lag,
            "last_seen_seconds": self.active_seconds,
        }


def replicas_of(cluster: dict[str, Any] | None, online: set[str] | None) -> list[Replica]:
    """Members of a group from a ``cluster`` block (stream, consumer or meta info)."""
    cluster = cluster or {}
    members: list[Replica] = []
    if cluster.get("leader"):
        members.append(Replica(cluster["leader"], leader=True, current=True))
    for peer in cluster.get("replicas") or []:
        active = peer.get("active")
        members.append(
            Replica(
                name=peer.get("name") or "",
                current=bool(peer.get("current")),
                offline=bool(peer.get("offline")),
                lag=int(peer.get("lag") or 0),
                active_seconds=round(active / 1e9, 3) if isinstance(active, (int, float)) and active else None,
            )
        )
    if online is not None:
        for member in members:
            member.online = member.name in online
    return members


@dataclass
class MetaGroup:
    cluster: str
    leader: str | None
    size: int
    members: list[Replica]
    online_servers: set[str]

    @property
    def quorum(self) -> int:
        return quorum(self.size)

    @property
    def online_members(self) -> list[str]:
        return [member.name for member in self.members if member.online]

    @property
    def has_quorum(self) -> bool:
        return bool(self.leader) and len(self.online_members) >= self.quorum

    def find(self, name: str | None = None, peer: str | None = None) -> Replica | None:
        for member in self.members:
            if (name and member.name == name) or (peer and peer_id(member.name) == peer):
                return member
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "leader": self.leader,
            "size": self.size,
            "quorum": self.quorum,
            "has_quorum": self.has_quorum,
            "peers": [member.as_dict() for member in self.members],
            "online_servers": sorted(self.online_servers),
        }


async def read_meta(
    system: SystemApi, online: set[str] | None = None, jsz: dict[str, dict[str, Any]] | None = None
) -> MetaGroup:
    """The meta group as its leader reports it, checked against which servers answer a ping.

    Without a leader (no quorum, or an election under way) the members are the servers that are up and
    say they belong to the meta group; the size is what they last knew. ``online`` and ``jsz`` are
    reused when the caller already gathered them.
    """
    if online is None:
        online = set(await system.online_servers())
    if jsz is None:
        jsz = await system.jsz()
    views = {server: data.get("meta_cluster") or {} for server, data in jsz.items()}
    views = {server: view for server, view in views.items() if view}
    if not views:
        raise NotClustered("no server that answers runs clustered JetStream: there is no meta group")
    leader_view = next((view for server, view in views.items() if view.get("leader") == server), None)
    if leader_view:
        members = replicas_of(leader_view, set(online))
        return MetaGroup(
            cluster=str(leader_view.get("name") or ""),
            leader=leader_view["leader"],
            size=int(leader_view.get("cluster_size") or len(members)),
            members=members,
            online_servers=set(online),
        )
    any_view = next(iter(views.values()))
    return MetaGroup(
        cluster=str(any_view.get("name") or ""),
        leader=None,
        size=max(int(view.get("cluster_size") or 0) for view in views.values()),
        members=[Replica(server, current=False, online=True) for server in sorted(views)],
        online_servers=set(online),
    )


@dataclass
class GroupFacts:
    """A stream's or a consumer's Raft group: how many replicas it wants and which it has."""

    account: str
    stream: str
    consumer: str | None
    wanted: int
    members: list[Replica]
    messages: int | None = None
    consumers: list[GroupFacts] = field(default_factory=list)
    # Servers that answered JSZ with a local copy. A follower's report says little about the others'
    # currency (only a leader tracks that), but that it holds the data is certain.
    holders: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        parts = [self.account, self.stream] + ([self.consumer] if self.consumer else [])
        return "/".join(part for part in parts if part)

    @property
    def leader(self) -> str | None:
        return next((member.name for member in self.members if member.leader and member.is_current), None)

    @property
    def current(self) -> list[str]:
        return [member.name for member in self.members if member.is_current]

    @property
    def not_current(self) -> list[str]:
        return [member.name for member in self.members if not member.is_current]

    @property
    def missing(self) -> int:
        """Replicas it should have and has not got current."""
        return max(0, self.wanted - len(self.current))

    def hosts(self) -> list[str]:
        return [member.name for member in self.members]

    def as_dict(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "account": self.account,
            "stream": self.stream,
            "replicas": self.wanted,
            "leader": self.leader,
            "current": self.current,
            "not_current": self.not_current,
            "missing": self.missing,
            "peers": [member.as_dict() for member in self.members],
        }
        if self.consumer:
            facts["consumer"] = self.consumer
        else:
            facts["messages"] = self.messages
            facts["consumers"] = [consumer.as_dict() for consumer in self.consumers]
        return facts


def _consumer_replicas(config: dict[str, Any], stream_replicas: int) -> int:
    return int(config.get("num_replicas") or 0) or stream_replicas


def stream_facts(
    account: str, info: dict[str, Any], consumers: list[dict[str, Any]], online: set[str] | None, server: str
) -> GroupFacts:
    """Facts of one stream from its info (STREAM.INFO / JSZ stream detail) and its consumers' infos.

    ``server`` answered for it; on a server that is not clustered the info has no cluster block and
    that server is the stream's one and only replica.
    """
    config = info.get("config") or {}
    wanted = int(config.get("num_replicas") or 1)
    cluster = info.get("cluster") or {"leader": server}
    facts = GroupFacts(
        account=account,
        stream=str(config.get("name") or info.get("name") or ""),
        consumer=None,
        wanted=wanted,
        members=replicas_of(cluster, online),
        messages=int((info.get("state") or {}).get("messages") or 0),
    )
    for consumer in consumers:
        facts.consumers.append(
            GroupFacts(
                account=account,
                stream=facts.stream,
                consumer=str(consumer.get("name") or ""),
                wanted=_consumer_replicas(consumer.get("config") or {}, wanted),
                members=replicas_of(consumer.get("cluster") or {"leader": server}, online),
            )
        )
    return facts


def streams_from_jsz(jsz: dict[str, dict[str, Any]], online: set[str]) -> dict[tuple[str, str], GroupFacts]:
    """Every stream with a replica on a server that answered, each group as its own leader reports it.

    A stream's report comes from the stream's leader, each consumer's from the consumer's leader: a
    server that only follows a Raft group lists its members wrongly (the leader twice, itself not).
    A server reports only the consumers it holds, so a stream's consumers are gathered from every
    server (an R1 consumer may live on a follower of its stream).
    """
    consumers: dict[tuple[str, str], dict[str, tuple[bool, dict[str, Any]]]] = {}
    for server, account, detail in _stream_details(jsz):
        known = consumers.setdefault((account, str(detail.get("name") or "")), {})
        for consumer in detail.get("consumer_detail") or []:
            name = str(consumer.get("name") or "")
            _keep_leaders_report(known, name, (consumer.get("cluster") or {}).get("leader") == server, consumer)
    found: dict[tuple[str, str], tuple[bool, GroupFacts]] = {}
    holders: dict[tuple[str, str], set[str]] = {}
    for server, account, detail in _stream_details(jsz):
        key = (account, str(detail.get("name") or ""))
        reports = [report for _name, (_from_leader, report) in sorted(consumers.get(key, {}).items())]
        facts = stream_facts(account, detail, reports, online, server)
        holders.setdefault(key, set()).add(server)
        _keep_leaders_report(found, key, (detail.get("cluster") or {}).get("leader") == server, facts)
    streams = {key: facts for key, (_from_leader, facts) in found.items()}
    for key, facts in streams.items():
        facts.holders = holders[key]
    return streams


def _keep_leaders_report(kept: dict[Any, tuple[bool, Any]], key: Any, from_leader: bool, report: Any) -> None:
    """Keep the first report of ``key``, replaced by its leader's when that comes."""
    if key not in kept or (from_leader and not kept[key][0]):
        kept[key] = (from_leader, report)


def _stream_details(jsz: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(server, account, stream detail) of every stream every server reported."""
    for server, data in jsz.items():
        for account in data.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                yield server, account["name"], detail


def jetstream_accounts(jsz: dict[str, dict[str, Any]]) -> set[str]:
    return {account["name"] for data in jsz.values() for account in data.get("account_details") or []}


async def streams_from_api(
    api: JetStreamApi, account: str, online: set[str] | None, server: str
) -> tuple[list[GroupFacts], list[str]]:
    """The account's streams with their consumers, and the names of streams no replica answered for."""
    infos, missing = await api.stream_list()
    facts = []
    for info in infos:
        has_leader = "cluster" not in info or (info.get("cluster") or {}).get("leader")
        consumers, lost = await api.consumer_list(info["config"]["name"]) if has_leader else ([], [])
        stream = stream_facts(account, info, consumers, online, server)
        # A consumer no replica answered for: it has no leader and none of its replicas is current.
        stream.consumers += [GroupFacts(account, stream.stream, name, stream.wanted, []) for name in lost]
        facts.append(stream)
    return facts, missing


@dataclass
class ClusterView:
    """Everything the given credentials could see, and what they could not."""

    account: str
    system: bool
    meta: MetaGroup | None = None
    streams: dict[tuple[str, str], GroupFacts] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)  # "ACCOUNT/STREAM": listed, but no replica answered
    checked_accounts: set[str] = field(default_factory=set)  # accounts listed through their own API
    jetstream_accounts: set[str] = field(default_factory=set)
    not_visible: list[dict[str, str]] = field(default_factory=list)
    account_failures: dict[str, str] = field(default_factory=dict)  # account -> why its own API did not answer

    @property
    def unchecked_accounts(self) -> list[str]:
        return sorted(self.jetstream_accounts - self.checked_accounts)

    def groups(self) -> list[GroupFacts]:
        return [group for stream in self.streams.values() for group in (stream, *stream.consumers)]

    def under_replicated(self) -> list[str]:
        return [group.key for group in self.groups() if group.missing]

    def leaderless(self) -> list[str]:
        return [group.key for group in self.groups() if not group.leader] + list(self.unreachable)

    def single_replica(self) -> dict[str, list[str]]:
        """R1 streams by the server that holds their only copy."""
        by_server: dict[str, list[str]] = {}
        for stream in self.streams.values():
            if stream.wanted == 1 and stream.members:
                by_server.setdefault(stream.members[0].name, []).append(stream.key)
        return by_server

    def problems(self) -> list[str]:
        found = []
        if self.meta is not None:
            if not self.meta.leader:
                found.append(f"the meta group has no leader ({len(self.meta.online_members)} of {self.meta.size} up)")
            down = [member.name for member in self.meta.members if not member.is_current]
            if down:
                found.append(f"meta peers not current: {', '.join(down)}")
            if len(self.meta.members) < self.meta.size:
                found.append(f"the meta group has {len(self.meta.members)} of {self.meta.size} peers")
        # Streams that could not be read are not known to be fine: a wait for health must not pass on them.
        found += [f"the streams of account {account} could not be read" for account in self.account_failures]
        found += [f"{key} is under-replicated" for key in self.under_replicated()]
        found += [f"{key} has no leader" for key in self.leaderless()]
        return found

    def as_dict(self) -> dict[str, Any]:
        problems = self.problems()
        return {
            "account": self.account,
            "system_account": self.system,
            "meta": self.meta.as_dict() if self.meta else None,
            "streams": [self.streams[key].as_dict() for key in sorted(self.streams)],
            "under_replicated": self.under_replicated(),
            "leaderless": self.leaderless(),
            "unreachable_streams": list(self.unreachable),
            "single_replica": self.single_replica(),
            "healthy": not problems,
            "problems": problems,
            "not_visible": self.not_visible,
        }


async def observe_cluster(
    connection: Connection,
    options: dict[str, Any],
    other_accounts: list[dict[str, Any]],
    streams: bool = True,
    require_system: bool = False,
) -> ClusterView:
    """Look at the cluster with the task's credentials, then with each account's in ``other_accounts``.

    With ``require_system``, credentials of another account raise NotSystemAccount instead of being noted.
    """
    client = connection.client
    system = SystemApi(client, options["timeout"])
    view = ClusterView(account=await account_name(client, options["timeout"]), system=True)
    online: set[str] | None = None
    jsz: dict[str, dict[str, Any]] = {}
    try:
        online = set(await system.online_servers())
        # One JSZ gather serves both the meta group and, when wanted, the streams.
        jsz = await system.jsz(streams=streams)
        view.meta = await read_meta(system, online, jsz)
    except NotSystemAccount as exc:
        if require_system:
            raise
        view.system = False
        view.not_visible.append({"what": "meta group", "why": exc.msg})
    except NotClustered as exc:
        view.not_visible.append({"what": "meta group", "why": exc.msg})
    if streams and view.system:
        view.streams = streams_from_jsz(jsz, online or set())
        view.jetstream_accounts = jetstream_accounts(jsz)
    elif streams:
        await _add_account_streams(view, connection, options, online)
    for account_options in other_accounts if streams else []:
        async with nats_connection(account_options) as other:
            await _add_account_streams(view, other, account_options, online)
    if view.meta is not None and streams and view.unchecked_accounts:
        view.not_visible.append(
            {
                "what": "streams of accounts " + ", ".join(view.unchecked_accounts) + " whose every replica is down",
                "why": "the system account sees only streams with a replica on a server that is up; "
                "give these accounts' credentials in accounts to list all their streams",
            }
        )
    return view


async def _add_account_streams(
    view: ClusterView, connection: Connection, options: dict[str, Any], online: set[str] | None
) -> None:
    """The streams of the connection's account, through its own JetStream API."""
    account = await account_name(connection.client, options["timeout"])
    api = JetStreamApi(connection.client, options["domain"], options["timeout"])
    server = str(server_info(connection.client).get("server_name") or "")
    try:
        facts, missing = await streams_from_api(api, account, online, server)
    except NatsOpsError as exc:
        # Typically a request made while the meta group had no leader: it is dropped, not queued.
        view.account_failures[account] = exc.msg
        what = f"streams of account {account or '(unknown)'} through its API"
        view.not_visible.append({"what": what, "why": exc.msg})
        return
    # A stream the account lists as missing but JSZ showed on a server that is up is between leaders:
    # keep what its replicas said. Only streams nobody answers for are unreachable.
    for key in [key for key in view.streams if key[0] == account and key[1] not in missing]:
        del view.streams[key]
    for stream in facts:
        view.streams[(account, stream.stream)] = stream
    view.unreachable += [f"{account}/{name}" for name in missing if (account, name) not in view.streams]
    view.checked_accounts.add(account)
