#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: Facts about a JetStream cluster's meta group, streams and consumers, optionally waiting for health
version_added: 0.1.0
description:
  - "Reports the meta group (leader, every peer with its peer id, whether it is up and current, lag, last
    seen, quorum size and whether quorum holds) and, for every stream and consumer: the replicas it wants, its
    leader, which replicas are current and how many are missing."
  - Lists the under-replicated and leaderless streams and consumers, and the R1 streams by the server that
    holds their only copy (their data dies with that server).
  - "What is visible depends on the credentials, and the module says what it could not see and why
    (RV(cluster_info.not_visible)): system-account credentials give the meta group and every stream with a
    replica on a server that is up, in every account; account credentials give that account's streams
    (including those whose every replica is down) but not the meta group. Combine both with O(accounts)."
  - A server counts as up when it answers a ping from the system account. The meta leader's own flags
    lag a few seconds behind a crash; the ping does not.
  - With O(wait_for=healthy), waits until the meta group has a leader and every peer is current, and every
    stream and consumer has a leader and all its replicas current, or fails after O(wait_timeout) naming
    what is still wrong. Streams an account's credentials could not read count as not healthy. Only the
    first look must succeed (wrong credentials or addresses fail at once); a later look that finds no
    server answering is noted and repeated, so a wait outlasts servers restarting.
options:
  streams:
    description:
      - Gather stream and consumer facts. V(false) gives only the meta group, which is quicker.
    type: bool
    default: true
  wait_for:
    description:
      - V(none) reports the cluster as it is. V(healthy) waits for it to be healthy (see above).
    type: str
    choices: [none, healthy]
    default: none
  wait_timeout:
    description:
      - Seconds O(wait_for=healthy) waits before failing.
    type: float
    default: 120
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.accounts
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: natsops.jetstream.raft_peer_remove
  - module: natsops.jetstream.leader_stepdown
  - name: JetStream disaster recovery
    description: Automatic recovery of R3+ streams after a node is lost.
    link: https://docs.nats.io/running-a-nats-service/nats_admin/jetstream_admin/disaster_recovery
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Wait until every stream is back at full replication
  natsops.jetstream.cluster_info:
    servers: "{{ groups['nats'] | map('regex_replace', '^(.*)$', 'nats://\\1:4222') | list }}"
    user: sys
    password: "{{ nats_system_password }}"
    wait_for: healthy
    wait_timeout: 300
  delegate_to: localhost
  run_once: true

- name: Which R1 streams live only on nats3?
  natsops.jetstream.cluster_info:
    context: prod-system
    accounts:
      - context: prod-orders
  delegate_to: localhost
  run_once: true
  register: facts

- name: Show them
  ansible.builtin.debug:
    var: facts.cluster_info.single_replica['nats3'] | default([])
"""

RETURN = r"""
cluster_info:
  description: What the credentials could see of the cluster.
  returned: always
  type: dict
  contains:
    account:
      description: Account of the task's credentials.
      type: str
      sample: SYS
    system_account:
      description: Whether those are the system account's (meta facts need them).
      type: bool
    meta:
      description: The meta group, or null when it could not be seen (see RV(cluster_info.not_visible)).
      type: dict
      sample:
        cluster: east
        leader: nats1
        size: 3
        quorum: 2
        has_quorum: true
        online_servers: [nats1, nats2]
        peers:
          - {name: nats1, peer_id: abcd1234, leader: true, current: true, online: true, lag: 0,
             last_seen_seconds: null}
          - {name: nats3, peer_id: Xy12Zw34, leader: false, current: false, online: false, lag: 12,
             last_seen_seconds: 63.2}
    streams:
      description: One entry per stream, each with its consumers.
      type: list
      elements: dict
      sample:
        - account: APP
          stream: ORDERS
          replicas: 3
          leader: nats1
          current: [nats1, nats2]
          not_current: [nats3]
          missing: 1
          messages: 1200
          peers: []
          consumers:
            - {account: APP, stream: ORDERS, consumer: SHIP, replicas: 3, leader: nats2, current: [nats1, nats2],
               not_current: [nats3], missing: 1, peers: []}
    under_replicated:
      description: Streams and consumers (C(ACCOUNT/STREAM[/CONSUMER])) with fewer current replicas than wanted.
      type: list
      elements: str
    leaderless:
      description: Streams and consumers without a leader, including RV(cluster_info.unreachable_streams).
      type: list
      elements: str
    unreachable_streams:
      description: Streams an account lists but no replica answered for (all its servers are down).
      type: list
      elements: str
    single_replica:
      description: R1 streams by the server that holds their only copy.
      type: dict
      sample: {nats3: [APP/CACHE]}
    healthy:
      description: No problems found in what was visible.
      type: bool
    problems:
      description: What is wrong, one sentence each.
      type: list
      elements: str
    not_visible:
      description: What could not be seen, and why.
      type: list
      elements: dict
      sample:
        - {what: meta group, why: "the credentials are not those of the system account ..."}
waited:
  description: Seconds spent waiting for O(wait_for).
  returned: when O(wait_for=healthy)
  type: float
"""

import time
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.model import observe_cluster
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
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_positive
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, poll

POLL_INTERVAL = 1.0


async def gather_facts(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Only reads: the same in check mode."""
    options = resolve_options(params)
    check_positive("wait_timeout", params["wait_timeout"])
    others = [account_options(params, entry) for entry in params["accounts"]]
    started = time.monotonic()
    deadline = Deadline(started + params["wait_timeout"])
    latest: dict[str, Any] | None = None

    async def look_now() -> dict[str, Any]:
        nonlocal latest
        try:
            latest = await look(options, others, params["streams"])
        except NatsOpsError as exc:
            if latest is None:
                raise  # the first look fails at once (credentials, address)
            # A server going down or coming back while we wait: look again.
            latest = {**latest, "healthy": False, "problems": [f"the last look at the cluster failed: {exc.msg}"]}
        return latest

    if params["wait_for"] == "none":
        return {"changed": False, "cluster_info": await look_now()}
    facts = await poll(look_now, deadline, POLL_INTERVAL, until=lambda seen: seen["healthy"])
    if not facts["healthy"]:
        raise NatsOpsError(
            f"the cluster was not healthy within {params['wait_timeout']}s: " + "; ".join(facts["problems"]),
            cluster_info=facts,
        )
    return {"changed": False, "cluster_info": facts, "waited": round(time.monotonic() - started, 3)}


async def look(options: dict[str, Any], others: list[dict[str, Any]], streams: bool) -> dict[str, Any]:
    """The cluster as the credentials see it, through a connection of its own (a wait outlives servers)."""
    async with nats_connection(options) as connection:
        view = await observe_cluster(connection, options, others, streams=streams)
    return view.as_dict()


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            accounts=ACCOUNTS_OPTION,
            streams={"type": "bool", "default": True},
            wait_for={"type": "str", "choices": ["none", "healthy"], "default": "none"},
            wait_timeout={"type": "float", "default": 120.0},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, gather_facts)


if __name__ == "__main__":
    main()
