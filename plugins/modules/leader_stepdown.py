#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: leader_stepdown
short_description: Make the JetStream meta leader or a stream's leader step down, optionally to a chosen server
version_added: 0.1.0
description:
  - "Without O(stream): the meta leader steps down (C($JS.API.META.LEADER.STEPDOWN)); needs system-account
    credentials. Rolling restarts do this before they restart the meta leader's server."
  - "With O(stream): that stream's leader steps down (C($JS.API.STREAM.LEADER.STEPDOWN)), with the stream
    account's credentials."
  - Waits until a new leader is elected (and is O(preferred), if given), within O(wait_timeout).
  - With O(preferred) naming the server that already leads, nothing is done (C(changed=false)). Without
    O(preferred), a step-down always happens and always reports C(changed=true).
options:
  stream:
    description:
      - The stream whose leader steps down. Without it, the meta leader steps down.
    type: str
  preferred:
    description:
      - Server name that should become the leader. Needs nats-server 2.11 or later.
    type: str
  wait_timeout:
    description:
      - Seconds to wait for a leader to answer and for the new leader to be elected.
    type: float
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports the current leader and changes nothing.
  diff_mode:
    support: none
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: partial
    details: Idempotent with O(preferred) only.
seealso:
  - module: natsops.jetstream.cluster_info
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Move the meta leader away from the server about to restart
  natsops.jetstream.leader_stepdown:
    context: prod-system
  delegate_to: localhost
  run_once: true

- name: Make nats1 lead the ORDERS stream
  natsops.jetstream.leader_stepdown:
    context: prod-orders
    stream: ORDERS
    preferred: nats1
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
previous_leader:
  description: The leader before.
  returned: always
  type: str
leader:
  description: The leader after (in check mode, the current one).
  returned: always
  type: str
group:
  description: C(meta) or the stream name.
  returned: always
  type: str
"""

from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.membership import (
    meta_leader,
    step_down,
    with_retries,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.system import SystemApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    describe_release,
    nats_argument_spec,
    resolve_options,
    run_procedure,
    server_release,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_name, check_positive
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    NO_META_LEADER,
    jetstream_session,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline


async def move_leader(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_name(params["stream"], where="in stream")
    check_positive("wait_timeout", params["wait_timeout"])
    deadline = Deadline.after(params["wait_timeout"])
    stream = params["stream"]
    async with jetstream_session(options) as (connection, api):
        if stream:

            async def current_leader() -> str | None:
                info = await api.stream_info(stream)
                if info is None:
                    raise NatsOpsError(f"stream {stream} not found in this account: check the name and the credentials")
                return (info.get("cluster") or {}).get("leader")

            suffix = f"STREAM.LEADER.STEPDOWN.{stream}"
        else:
            system = SystemApi(connection.client, options["timeout"])

            async def current_leader() -> str | None:
                return await meta_leader(system)

            suffix = "META.LEADER.STEPDOWN"

        async def leader_now() -> str:
            leader = await current_leader()
            if not leader:
                raise NatsOpsError(f"the {stream or 'meta'} group has no leader", err_code=NO_META_LEADER)
            return leader

        if params["preferred"] and server_release(connection.client) < (2, 11):
            # 2.10 reads only placement.cluster here and refuses every preferred server.
            raise NatsOpsError(
                f"preferred needs nats-server 2.11 or later; {describe_release(connection.client)} cannot choose "
                "the new leader. Leave preferred unset to let the group elect one"
            )
        old = await with_retries(leader_now, deadline, "finding the leader")
        result = {"group": stream or "meta", "previous_leader": old, "leader": old}
        if params["preferred"] == old:
            return {**result, "changed": False, "msg": f"{old} already leads"}
        if check_mode:
            return {**result, "changed": True}
        new = await step_down(api, suffix, current_leader, old, params["preferred"], deadline)
    return {**result, "changed": True, "leader": new}


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            stream={"type": "str"},
            preferred={"type": "str"},
            wait_timeout={"type": "float", "default": 30.0},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, move_leader)


if __name__ == "__main__":
    main()
