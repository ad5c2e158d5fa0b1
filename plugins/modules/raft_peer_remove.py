#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: raft_peer_remove
short_description: Remove a lost server from the JetStream meta group or from one stream's Raft group, safely
version_added: 0.1.0
description:
  - The automatic-recovery step of JetStream disaster recovery (C(nats server raft peer-remove)). When a
    server's JetStream data is gone for good, remove it from the meta group; R3+ streams then place a new
    replica on a server that joins and catch it up, as long as their surviving replicas hold a quorum.
  - "Without O(stream): removes the server from the meta group (C($JS.API.SERVER.REMOVE)). This needs
    system-account credentials: the server silently drops the request from any other account, so the module
    checks first and fails at once with a message that says so."
  - "With O(stream): removes the server from that stream's group only (C($JS.API.STREAM.PEER.REMOVE)), with the
    stream's own account credentials; the meta leader then places a new replica."
  - "Safe by default. Refuses a peer that is still up (it answers a ping; for O(stream), the stream's leader
    shows it current) unless O(force=true). Refuses when the peers left would not hold a quorum: removing
    peers cannot bring back a lost majority. Refuses when streams would lose data (R1 streams whose only copy
    is on the peer, and streams left without a quorum of current replicas) unless O(accept_data_loss=true),
    and names them. An R1 stream of a removed server is recreated empty elsewhere: its data is lost."
  - "The system account cannot see a stream whose every replica is on servers that are down. Give the
    accounts' credentials in O(accounts) so their R1 streams on the peer are found; accounts not checked that
    way make the module refuse unless O(accept_data_loss=true)."
  - A peer that is not a member is left alone (C(changed=false)), with a warning that lists the members (and
    the closest name). The servers keep no record of removed peers, so a peer removed earlier and a mistyped
    name get the same answer from them; the module cannot tell the two apart, and says so.
  - While a meta leader is being elected
    (the lost server was the leader) requests go unanswered; the module retries with back-off, then waits
    until the leader no longer lists the peer, all within O(wait_timeout).
options:
  peer:
    description:
      - Server name of the peer to remove (as in C(server_name)). Exactly one of O(peer) and O(peer_id) is required.
    type: str
  peer_id:
    description:
      - Raft peer id of the peer (8 characters, as C(nats server report jetstream) and
        RV(natsops.jetstream.cluster_info#module:cluster_info.meta) show it).
    type: str
  stream:
    description:
      - Remove the peer from this stream's group only, instead of from the meta group. Use the stream
        account's credentials.
    type: str
  force:
    description:
      - Remove the peer even though it is up. A live server removed from the meta group disables JetStream
        (from nats-server 2.11.2 it is added back if it comes back). If it leads the meta group, it is first
        asked to step down, so that the removal commits through a new leader.
    type: bool
    default: false
  accept_data_loss:
    description:
      - Go ahead although streams listed in the result would lose data, or could not be checked.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to keep retrying while no leader answers, and to wait until the removal shows.
    type: float
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.accounts
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports what the removal would do (and what it would refuse) and changes nothing.
  diff_mode:
    support: none
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: full
    details: A peer that is not a member is reported with C(changed=false).
seealso:
  - module: natsops.jetstream.cluster_info
  - name: JetStream disaster recovery
    description: Automatic recovery after a node is lost.
    link: https://docs.nats.io/running-a-nats-service/nats_admin/jetstream_admin/disaster_recovery
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Remove the dead server nats3 from the meta group
  natsops.jetstream.raft_peer_remove:
    servers: [nats://nats1:4222, nats://nats2:4222]
    user: sys
    password: "{{ nats_system_password }}"
    peer: nats3
    accounts:
      - user: orders
        password: "{{ nats_orders_password }}"
  delegate_to: localhost
  run_once: true

- name: Remove a peer by id, knowing that its R1 streams are lost
  natsops.jetstream.raft_peer_remove:
    context: prod-system
    peer_id: Xy12Zw34
    accept_data_loss: true
  delegate_to: localhost
  run_once: true

- name: Move one stream's replica off a failing server
  natsops.jetstream.raft_peer_remove:
    context: prod-orders
    stream: ORDERS
    peer: nats3
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
peer:
  description: Server name of the peer.
  returned: when the peer was found, or given by name
  type: str
peer_id:
  description: Its Raft peer id.
  returned: when the peer was found, or given by id
  type: str
group:
  description: C(meta), or the stream's name with O(stream).
  returned: always
  type: str
removal:
  description: What the removal does (or would do) and what it costs.
  returned: when the peer is a member
  type: dict
  contains:
    online:
      description: Whether the peer is up.
      type: bool
    size_before:
      description: Members of the group before.
      type: int
    current_after:
      description: Current members left.
      type: list
      elements: str
    quorum_needed:
      description: Current members the change needs.
      type: int
    streams_losing_data:
      description: Streams whose only copies are on the peer.
      type: list
      elements: str
    streams_without_quorum:
      description: Streams whose surviving replicas do not hold a quorum.
      type: list
      elements: str
    unchecked_accounts:
      description: Accounts whose streams on the peer could not be seen (give them in O(accounts)).
      type: list
      elements: str
members:
  description: The group's members, when the peer is not one of them.
  returned: when the peer is not a member
  type: list
  elements: str
members_after:
  description: Members of the group once the removal shows.
  returned: when a peer was removed
  type: list
  elements: str
duration:
  description: Seconds from the request to the removal showing.
  returned: when a peer was removed
  type: float
"""

import difflib
import time
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.membership import (
    Removal,
    judge_meta_removal,
    judge_stream_removal,
    remove_meta_peer,
    remove_stream_peer,
    with_retries,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.model import (
    ClusterView,
    observe_cluster,
    peer_id,
    stream_facts,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.system import SystemApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    ACCOUNTS_OPTION,
    NatsModule,
    account_options,
    nats_argument_spec,
    nats_connection,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_name, check_positive
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    NO_META_LEADER,
    JetStreamApi,
    jetstream_session,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline


def not_a_member(params: dict[str, Any], group: str, members: list[str]) -> dict[str, Any]:
    """Nothing to remove. The servers keep no record of removed peers (a name removed earlier and a
    mistyped one get the same answer from them), so the members are listed, with the closest name."""
    named = params["peer"] or params["peer_id"]
    listed = ", ".join(f"{name} ({peer_id(name)})" for name in members) or "none"
    by_id = {peer_id(name): name for name in members}
    closest = difflib.get_close_matches(params["peer"], members, n=1) if params["peer"] else []
    closest = closest or [by_id[match] for match in difflib.get_close_matches(params["peer_id"] or "", list(by_id), 1)]
    hint = f" Did you mean {closest[0]}?" if closest else ""
    return {
        "changed": False,
        "group": group,
        "peer": params["peer"],
        "peer_id": params["peer_id"] or (peer_id(params["peer"]) if params["peer"] else None),
        "members": members,
        "msg": f"{named} is not a member of the {group} group: nothing to remove (members: {listed})",
        "warnings": [
            f"{named} is not a member of the {group} group (members: {listed}). If it was removed before, there "
            "is nothing left to do; the servers keep no record of removed peers, so a mistyped name looks the "
            f"same: check it against the members.{hint}"
        ],
    }


def refuse_or_report(removal: Removal, check_mode: bool) -> dict[str, Any] | None:
    """Fail on any refusal; in check mode, the report is the result."""
    report = {"changed": True, "group": removal.group, "peer": removal.peer, "peer_id": removal.peer_id}
    if removal.refusals:
        raise NatsOpsError(
            f"refusing to remove {removal.peer} from the {removal.group} group: " + " ".join(removal.refusals),
            removal=removal.as_dict(),
            group=removal.group,
            peer=removal.peer,
            peer_id=removal.peer_id,
        )
    return {**report, "removal": removal.as_dict()} if check_mode else None


async def remove_from_meta(params: dict[str, Any], options: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    others = [account_options(params, entry) for entry in params["accounts"]]
    deadline = Deadline.after(params["wait_timeout"])
    async with nats_connection(options) as connection:
        system = SystemApi(connection.client, options["timeout"])
        api = JetStreamApi(connection.client, options["domain"], options["timeout"])
        view = await with_retries(
            lambda: _observe_with_leader(connection, options, others), deadline, "reading the meta group"
        )
        member = view.meta.find(name=params["peer"], peer=params["peer_id"])
        if member is None:
            return not_a_member(params, "meta", [each.name for each in view.meta.members])
        removal = judge_meta_removal(view, member, params["force"], params["accept_data_loss"])
        report = refuse_or_report(removal, check_mode)
        if report:
            return report
        started = time.monotonic()
        meta = await remove_meta_peer(api, system, member, deadline)
    return {
        "changed": True,
        "group": "meta",
        "peer": member.name,
        "peer_id": removal.peer_id,
        "removal": removal.as_dict(),
        "members_after": [each.name for each in meta.members],
        "duration": round(time.monotonic() - started, 3),
    }


async def _observe_with_leader(connection: Any, options: dict[str, Any], others: list[dict[str, Any]]) -> ClusterView:
    """The cluster as seen now; 'no meta leader' (err_code 10008) while an election is under way."""
    # Credentials of another account fail here at once: the server would drop the removal silently.
    view = await observe_cluster(connection, options, others, require_system=True)
    if view.meta is None:
        raise NatsOpsError("no meta group: " + "; ".join(item["why"] for item in view.not_visible))
    if not view.meta.leader:
        online, size, needed = len(view.meta.online_members), view.meta.size, view.meta.quorum
        message = (
            f"the meta group has no leader ({online} of {size} peers up, {needed} needed): "
            "bring servers back until a majority is up; removing peers cannot restore a lost quorum"
        )
        # With a majority up a leader is being elected: worth waiting for. Without, it never will be.
        raise NatsOpsError(message, err_code=NO_META_LEADER if online >= needed else 0)
    if view.account_failures:
        # Usually a listing sent while a new meta leader was being elected: look again.
        raise NatsOpsError(
            "could not list the streams of "
            + ", ".join(view.account_failures)
            + ": "
            + "; ".join(view.account_failures.values()),
            err_code=NO_META_LEADER,
        )
    return view


async def remove_from_stream(params: dict[str, Any], options: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    stream = params["stream"]
    deadline = Deadline.after(params["wait_timeout"])
    async with jetstream_session(options) as (_connection, api):
        info = await with_retries(lambda: api.stream_info(stream), deadline, f"reading stream {stream}")
        if info is None:
            raise NatsOpsError(f"stream {stream} not found in this account: check the name and the credentials")
        if not info.get("cluster", {}).get("name"):
            raise NatsOpsError(f"stream {stream} is not clustered: there is no Raft group to remove a peer from")
        facts = stream_facts("", info, [], None, "")
        member = next(
            (each for each in facts.members if each.name == params["peer"] or peer_id(each.name) == params["peer_id"]),
            None,
        )
        if member is None:
            return not_a_member(params, stream, [each.name for each in facts.members])
        removal = judge_stream_removal(facts, member, params["force"], params["accept_data_loss"])
        report = refuse_or_report(removal, check_mode)
        if report:
            return report
        started = time.monotonic()
        members = await remove_stream_peer(api, stream, member.name, deadline)
    return {
        "changed": True,
        "group": stream,
        "peer": member.name,
        "peer_id": removal.peer_id,
        "removal": removal.as_dict(),
        "members_after": [each.name for each in members],
        "duration": round(time.monotonic() - started, 3),
    }


async def remove_peer(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_name(params["stream"], where="in stream")
    check_positive("wait_timeout", params["wait_timeout"])
    if params["stream"]:
        return await remove_from_stream(params, options, check_mode)
    return await remove_from_meta(params, options, check_mode)


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            peer={"type": "str"},
            peer_id={"type": "str"},
            stream={"type": "str"},
            force={"type": "bool", "default": False},
            accept_data_loss={"type": "bool", "default": False},
            accounts=ACCOUNTS_OPTION,
            wait_timeout={"type": "float", "default": 60.0},
        ),
        required_one_of=[("peer", "peer_id")],
        mutually_exclusive=[("peer", "peer_id")],
        supports_check_mode=True,
    )
    run_procedure(module, remove_peer)


if __name__ == "__main__":
    main()
