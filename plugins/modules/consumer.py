#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: consumer
short_description: Create, update or delete a durable JetStream consumer from its configuration
version_added: 0.1.0
description:
  - Makes a durable consumer of a stream exist with the settings given (O(state=present)) or not exist
    (O(state=absent)), as C(nats consumer add) / C(nats consumer edit) / C(nats consumer rm) and the Terraform
    provider's C(jetstream_consumer) do. Pull consumers by default; set O(deliver_subject) for a push consumer.
  - "Only the settings given are managed. Every setting left out is kept as the server has it: a new consumer gets
    the server's defaults (except O(ack_policy), which defaults to V(explicit) as in natscli), an existing one
    keeps its values, including those changed by hand."
  - "Idempotent: settings are compared with the server's after normalising both (durations to nanoseconds, the
    server's own C(_nats.*) metadata ignored), so a second run with the same settings reports C(changed=false)."
  - "Some changes the server cannot make to an existing consumer: O(deliver_policy), O(opt_start_seq),
    O(opt_start_time), O(ack_policy), O(replay_policy), O(max_waiting), O(mem_storage), O(flow_control),
    O(idle_heartbeat), and turning a pull consumer into a push consumer or back. Asking for one fails, naming the
    setting, unless O(recreate=true): then the consumer is deleted and created again with the new settings."
  - A recreate loses the consumer's position in the stream; it is refused once the consumer has delivered messages
    unless O(force=true).
  - O(prevent_delete=true) refuses anything that deletes the consumer (O(state=absent), a recreate).
  - Settings that need a newer server are refused on older servers with a message, instead of being dropped.
  - Durations take a number of seconds or text such as V(30s), V(1h30m), V(500ms).
  - The stream must exist. In check mode a missing stream is only a warning, so that a play that creates the
    stream in an earlier task can be checked.
options:
  stream:
    description: Name of the stream.
    type: str
    required: true
  name:
    description: Durable name of the consumer.
    type: str
    required: true
    aliases: [durable_name]
  state:
    description: V(present) creates or updates the consumer, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  recreate:
    description:
      - Delete and create the consumer again when a setting cannot change in place. Its position is lost, so this
        is refused once it has delivered messages unless O(force=true).
    type: bool
    default: false
  force:
    description: Allow O(recreate) of a consumer that has delivered messages.
    type: bool
    default: false
  prevent_delete:
    description: Refuse to delete the consumer, whether by O(state=absent) or by O(recreate).
    type: bool
    default: false
  description:
    description: A description of the consumer.
    type: str
  deliver_policy:
    description: Where a new consumer starts. Cannot change in place.
    type: str
    choices: [all, last, new, by_start_sequence, by_start_time, last_per_subject]
  opt_start_seq:
    description: Stream sequence to start at, with O(deliver_policy=by_start_sequence).
    type: int
  opt_start_time:
    description: Time to start at (RFC 3339, V(2025-01-31T12:00:00Z)), with O(deliver_policy=by_start_time).
    type: str
  ack_policy:
    description:
      - V(explicit) acknowledges each message, V(all) acknowledges everything up to a message, V(none) needs no
        acknowledgement. V(flow_control) needs nats-server 2.14+. Cannot change in place.
      - New consumers default to V(explicit).
    type: str
    choices: [none, all, explicit, flow_control]
  ack_wait:
    description: How long the server waits for an acknowledgement before redelivering, as a duration.
    type: raw
  max_deliver:
    description: Most deliveries of a message; V(-1) for no limit.
    type: int
  backoff:
    description: Redelivery delays, as durations, one per attempt (the last one repeats).
    type: list
    elements: raw
  filter_subject:
    description: Deliver only messages on this subject. Mutually exclusive with O(filter_subjects).
    type: str
  filter_subjects:
    description: Deliver only messages on these subjects. Mutually exclusive with O(filter_subject).
    type: list
    elements: str
  replay_policy:
    description: V(instant) delivers as fast as possible, V(original) at the pace messages were stored.
    type: str
    choices: [instant, original]
  rate_limit_bps:
    description: Most bits per second delivered to a push consumer.
    type: int
  sample_freq:
    description: Percentage of acknowledgements to sample for metrics, for example V(100%).
    type: str
  max_waiting:
    description: Most pull requests waiting at once (pull consumers). Cannot change in place.
    type: int
  max_ack_pending:
    description: Most messages delivered and not yet acknowledged; V(-1) for no limit.
    type: int
  headers_only:
    description: Deliver only the headers of messages.
    type: bool
  max_batch:
    description: Largest batch a pull request may ask for.
    type: int
  max_expires:
    description: Longest expiry a pull request may ask for, as a duration.
    type: raw
  max_bytes:
    description: Most bytes a pull request may ask for, as a size (V(1MB)).
    type: raw
  inactive_threshold:
    description: Remove the consumer after this long without activity, as a duration.
    type: raw
  replicas:
    description: Number of replicas of the consumer's state; V(0) means as many as the stream.
    type: int
    aliases: [num_replicas]
  mem_storage:
    description: Keep the consumer's state in memory. Cannot change in place.
    type: bool
  deliver_subject:
    description: Make it a push consumer delivering to this subject. A pull consumer cannot become a push consumer
      or back in place.
    type: str
  deliver_group:
    description: Queue group of a push consumer.
    type: str
  flow_control:
    description: Flow control for a push consumer. Cannot change in place.
    type: bool
  idle_heartbeat:
    description: Heartbeat interval of a push consumer, as a duration. Cannot change in place.
    type: raw
  priority_groups:
    description: Priority groups of a pull consumer. Needs nats-server 2.11+.
    type: list
    elements: str
  priority_policy:
    description: How the priority groups share messages. Needs nats-server 2.11+ (V(prioritized) 2.12+).
    type: str
    choices: [none, overflow, pinned_client, prioritized]
  priority_timeout:
    description: How long a pinned client keeps its pin without pulling, as a duration. Needs nats-server 2.11+.
    type: raw
  pause_until:
    description: Pause delivery until this time (RFC 3339). Needs nats-server 2.11+.
    type: str
  metadata:
    description:
      - Free-form metadata (strings). The user's keys are managed as a whole; the server's own C(_nats.*) keys are
        ignored.
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be created, changed or deleted, and changes nothing.
  diff_mode:
    support: full
    details: The consumer's configuration before and after, durations in human form.
seealso:
  - module: natsops.jetstream.stream
  - module: natsops.jetstream.jetstream_config
  - name: JetStream consumers
    description: The NATS documentation on consumer configuration.
    link: https://docs.nats.io/nats-concepts/jetstream/consumers
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: A pull consumer for new orders that retries with back-off
  natsops.jetstream.consumer:
    servers: ["nats://nats1.example.com:4222"]
    creds: /etc/nats/admin.creds
    stream: ORDERS
    name: SHIPPING
    filter_subject: orders.new
    ack_wait: 30s
    max_deliver: 5
    backoff: [1s, 10s, 1m]
    max_ack_pending: 500
  delegate_to: localhost
  run_once: true

- name: Start over from the newest message (deletes and recreates the consumer, losing its position)
  natsops.jetstream.consumer:
    stream: ORDERS
    name: AUDIT
    deliver_policy: new
    recreate: true
    force: true
  delegate_to: localhost
  run_once: true

- name: Remove a consumer
  natsops.jetstream.consumer:
    stream: ORDERS
    name: OLD
    state: absent
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
stream:
  description: Name of the stream.
  returned: always
  type: str
  sample: ORDERS
name:
  description: Name of the consumer.
  returned: always
  type: str
  sample: SHIPPING
action:
  description: What was (or, in check mode, would be) done.
  returned: always
  type: str
  sample: update
  choices: [create, update, recreate, delete, none]
changes:
  description: The settings that differ(ed), each with the server's value before and the wanted one after.
  returned: always
  type: dict
  sample: {ack_wait: {before: "30s", after: "1m"}}
config:
  description:
    - The consumer's configuration as the server reports it (durations in nanoseconds). In check mode, for a
      consumer to create or update, the configuration that would be sent.
  returned: unless the consumer is (to be) absent
  type: dict
  sample: {durable_name: SHIPPING, name: SHIPPING, ack_policy: explicit, ack_wait: 30000000000,
           filter_subject: orders.new, max_deliver: 5}
delivered:
  description: The last message delivered, as consumer and stream sequences.
  returned: when the consumer exists, except in check mode for a change
  type: dict
  sample: {consumer_seq: 120, stream_seq: 240}
ack_floor:
  description: The last message acknowledged with every earlier one.
  returned: when the consumer exists, except in check mode for a change
  type: dict
  sample: {consumer_seq: 100, stream_seq: 200}
num_pending:
  description: Messages not yet delivered.
  returned: when the consumer exists, except in check mode for a change
  type: int
num_ack_pending:
  description: Messages delivered and not yet acknowledged.
  returned: when the consumer exists, except in check mode for a change
  type: int
num_redelivered:
  description: Messages delivered more than once.
  returned: when the consumer exists, except in check mode for a change
  type: int
num_waiting:
  description: Pull requests waiting.
  returned: when the consumer exists, except in check mode for a change
  type: int
diff:
  description: The configuration before and after, durations in human form, without the server's C(_nats.*) metadata.
  returned: with C(--diff)
  type: dict
"""

from functools import partial
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_name
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.consumer_config import (
    CONSUMER,
    desired_consumer,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import (
    LIFECYCLE_OPTIONS,
    ConsumerAsset,
    converge,
)


async def manage_consumer(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_name(params["stream"], where="in stream")
    check_name(params["name"], kind="consumer", where="in name")
    desired = desired_consumer(params)
    async with jetstream_session(options) as (connection, api):
        consumer = ConsumerAsset(api, params["stream"], params["name"])
        result = await converge(consumer, desired, params, connection.client, check_mode, diff_mode)
    return {"stream": params["stream"], "name": params["name"], **result}


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            stream={"type": "str", "required": True},
            name={"type": "str", "required": True, "aliases": ["durable_name"]},
            **LIFECYCLE_OPTIONS,
            **CONSUMER.argument_spec(),
        ),
        mutually_exclusive=[("filter_subject", "filter_subjects")],
        supports_check_mode=True,
    )
    run_procedure(module, partial(manage_consumer, diff_mode=module._diff))


if __name__ == "__main__":
    main()
