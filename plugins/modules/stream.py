#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stream
short_description: Create, update or delete a JetStream stream from its configuration
version_added: 0.1.0
description:
  - Makes a stream exist with the settings given (O(state=present)) or not exist (O(state=absent)), as
    C(nats stream add) / C(nats stream edit) / C(nats stream rm) and the Terraform provider's C(jetstream_stream) do.
  - "Only the settings given are managed. Every setting left out is kept as the server has it: a new stream gets
    the server's defaults, an existing one keeps its values, including those changed by hand. To return a setting
    to its default, give the default (for example O(max_msgs=-1), O(description=''))."
  - "Idempotent: settings are compared with the server's after normalising both (durations to nanoseconds, sizes
    to bytes, V(0) or negative limits to V(-1), the server's own C(_nats.*) metadata ignored), so a second run with
    the same settings reports C(changed=false)."
  - "Some changes the server cannot make to an existing stream: O(storage), O(retention) to or from V(workqueue),
    O(mirror), O(first_seq), O(allow_msg_counter), O(persist_mode), and turning off O(sealed), O(deny_delete),
    O(deny_purge), O(allow_msg_ttl) or O(allow_msg_schedules). Asking for one fails, naming the setting, unless
    O(recreate=true): then the stream is deleted and created again with the new settings."
  - A recreate is refused while the stream holds messages or consumers (they would be lost) unless O(force=true).
    If the server refuses the new configuration after the delete, the stream is created again with its previous
    configuration and the module fails.
  - O(prevent_delete=true) refuses anything that deletes the stream (O(state=absent), a recreate).
  - "Settings that need a newer server (API level, see each option) are refused on older servers with a message,
    instead of being dropped: nats-server before 2.12 ignores settings it does not know."
  - Durations take a number of seconds or text such as V(30s), V(1h30m), V(500ms), V(2d), V(1w).
    Sizes take a number of bytes or text such as V(512MB), V(1G), V(64KiB) (1024-based, as natscli).
options:
  name:
    description:
      - Name of the stream.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the stream, V(absent) deletes it with its messages and consumers.
    type: str
    choices: [present, absent]
    default: present
  recreate:
    description:
      - Delete and create the stream again when a setting cannot change in place (see above). Its messages and
        consumers are lost, so this is refused while there are any unless O(force=true).
    type: bool
    default: false
  force:
    description:
      - Allow O(recreate) to delete a stream that holds messages or consumers.
    type: bool
    default: false
  prevent_delete:
    description:
      - Refuse to delete the stream, whether by O(state=absent) or by O(recreate).
    type: bool
    default: false
  description:
    description: A description of the stream.
    type: str
  subjects:
    description:
      - Subjects the stream stores, wildcards allowed. A new stream without subjects, mirror or sources listens on
        its own name.
    type: list
    elements: str
  retention:
    description:
      - V(limits) keeps messages up to the limits, V(interest) while a consumer still needs them, V(workqueue) until
        one consumer acknowledges them. A change to or from V(workqueue) needs O(recreate).
    type: str
    choices: [limits, interest, workqueue]
  storage:
    description:
      - Where messages are kept. Cannot change in place (needs O(recreate)). New streams default to V(file).
    type: str
    choices: [file, memory]
  replicas:
    description:
      - Number of copies in a cluster (1 to 5); a standalone server takes only 1. Can change in place.
    type: int
    aliases: [num_replicas]
  max_consumers:
    description: Most consumers the stream may have; V(-1) for no limit.
    type: int
  max_msgs:
    description: Most messages the stream keeps; V(-1) for no limit.
    type: int
  max_bytes:
    description: Most bytes the stream keeps, as a size (V(1G)); V(-1) for no limit.
    type: raw
  max_age:
    description: Oldest message the stream keeps, as a duration (V(7d)); V(0) for no limit.
    type: raw
  max_msgs_per_subject:
    description: Most messages kept per subject; V(-1) for no limit.
    type: int
  max_msg_size:
    description: Largest message accepted, as a size; V(-1) for no limit.
    type: raw
  discard:
    description: At a limit, V(old) discards the oldest messages, V(new) refuses new ones.
    type: str
    choices: [old, new]
  discard_new_per_subject:
    description: With O(discard=new) and O(max_msgs_per_subject), refuse new messages per subject.
    type: bool
  no_ack:
    description: Do not acknowledge published messages.
    type: bool
  duplicate_window:
    description:
      - How long message ids are remembered to drop duplicates, as a duration. The server's default is 2 minutes,
        or O(max_age) if shorter; lowering O(max_age) below the window lowers the window too when it is not given.
    type: raw
  placement:
    description: Where the stream's replicas go. An empty mapping removes the placement.
    type: dict
    suboptions:
      cluster:
        description: Name of the cluster.
        type: str
      tags:
        description: Tags the servers must have.
        type: list
        elements: str
  mirror:
    description:
      - Make the stream a mirror of another stream. Cannot change in place (needs O(recreate)).
    type: dict
    suboptions: &source
      name:
        description: Name of the origin stream.
        type: str
        required: true
      opt_start_seq:
        description: Sequence to start at.
        type: int
      opt_start_time:
        description: Time to start at, RFC 3339 (V(2025-01-31T12:00:00Z)).
        type: str
      filter_subject:
        description: Take only messages on this subject.
        type: str
      subject_transforms:
        description: Subject filters with transforms.
        type: list
        elements: dict
        suboptions:
          src:
            description: Source subject filter.
            type: str
          dest:
            description: Subject transform destination.
            type: str
            required: true
      domain:
        description:
          - JetStream domain of the origin stream (as natscli's C(--source-domain)); sets O(mirror.external.api) to
            C($JS.<domain>.API). Mutually exclusive with O(mirror.external).
        type: str
      external:
        description: The origin stream's API in another account or domain.
        type: dict
        suboptions:
          api:
            description: API prefix, for example C($JS.hub.API).
            type: str
            required: true
          deliver:
            description: Delivery prefix.
            type: str
  sources:
    description:
      - Streams to take messages from. Each entry has the suboptions of O(mirror). The whole list is managed.
    type: list
    elements: dict
    suboptions: *source
  compression:
    description: Compression of stored messages (file storage).
    type: str
    choices: [none, s2]
  first_seq:
    description: Sequence of the first message of a new stream. Set only at creation (a change needs O(recreate)).
    type: int
  subject_transform:
    description: Transform the subjects of incoming messages. An empty mapping removes it.
    type: dict
    suboptions:
      src:
        description: Subjects to transform.
        type: str
      dest:
        description: Transform destination.
        type: str
        required: true
  republish:
    description: Republish stored messages to other subjects. An empty mapping removes it.
    type: dict
    suboptions:
      src:
        description: Subjects to republish.
        type: str
      dest:
        description: Destination subjects.
        type: str
        required: true
      headers_only:
        description: Republish only the headers.
        type: bool
  sealed:
    description: Seal the stream (no more messages in, none deleted). Cannot be undone.
    type: bool
  deny_delete:
    description: Refuse deleting messages through the API. Cannot be turned off.
    type: bool
  deny_purge:
    description: Refuse purging the stream through the API. Cannot be turned off.
    type: bool
  allow_rollup:
    description: Allow the C(Nats-Rollup) header to purge older messages.
    type: bool
    aliases: [allow_rollup_hdrs]
  allow_direct:
    description: Allow direct get of messages from any replica.
    type: bool
  mirror_direct:
    description: Allow direct get from this mirror for its origin's messages.
    type: bool
  metadata:
    description:
      - Free-form metadata (strings). The user's keys are managed as a whole; the server's own C(_nats.*) keys are
        ignored.
    type: dict
  allow_msg_ttl:
    description: Allow per-message TTLs (C(Nats-TTL) header). Cannot be turned off. Needs nats-server 2.11+.
    type: bool
  subject_delete_marker_ttl:
    description: Leave delete markers for subjects emptied by O(max_age), kept this long (a duration, at least 1s).
      Needs nats-server 2.11+.
    type: raw
  consumer_limits:
    description: Defaults and limits for the stream's consumers.
    type: dict
    suboptions:
      inactive_threshold:
        description: Longest inactivity before an ephemeral consumer is removed, as a duration.
        type: raw
      max_ack_pending:
        description: Most unacknowledged messages per consumer.
        type: int
  allow_msg_counter:
    description: Make the stream a counter (CRDT) stream. Cannot change in place. Needs nats-server 2.12+.
    type: bool
  allow_atomic:
    description: Allow atomic batch publishing. Needs nats-server 2.12+.
    type: bool
  allow_msg_schedules:
    description: Allow scheduled messages. Cannot be turned off. Needs nats-server 2.12+.
    type: bool
  persist_mode:
    description: V(async) acknowledges before the write is flushed (file storage, R1 only). Cannot change in place.
      V(async) needs nats-server 2.12+.
    type: str
    choices: [default, async]
  allow_batched:
    description: Allow fast batch publishing. Needs nats-server 2.14+.
    type: bool
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
    details: The stream's configuration before and after, durations in human form.
seealso:
  - module: natsops.jetstream.consumer
  - module: natsops.jetstream.jetstream_config
  - name: JetStream streams
    description: The NATS documentation on stream configuration.
    link: https://docs.nats.io/nats-concepts/jetstream/streams
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Orders are kept for a week on three servers
  natsops.jetstream.stream:
    servers: ["nats://nats1.example.com:4222"]
    creds: /etc/nats/admin.creds
    name: ORDERS
    subjects: ["orders.>"]
    replicas: 3
    max_age: 7d
    max_bytes: 10GB
    duplicate_window: 5m
    deny_delete: true
    metadata:
      owner: shop-team
  delegate_to: localhost
  run_once: true

- name: Change the storage type (deletes and recreates the empty stream)
  natsops.jetstream.stream:
    name: CACHE
    storage: memory
    recreate: true
  delegate_to: localhost
  run_once: true

- name: A mirror of ORDERS in the hub domain
  natsops.jetstream.stream:
    name: ORDERS_MIRROR
    mirror:
      name: ORDERS
      domain: hub
  delegate_to: localhost
  run_once: true

- name: Remove a stream, unless it is protected
  natsops.jetstream.stream:
    name: OLD_EVENTS
    state: absent
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
name:
  description: Name of the stream.
  returned: always
  type: str
  sample: ORDERS
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
  sample: {max_age: {before: "0s", after: "168h"}, replicas: {before: 1, after: 3}}
config:
  description:
    - The stream's configuration as the server reports it (durations in nanoseconds). In check mode, for a
      stream to create or update, the configuration that would be sent.
  returned: unless the stream is (to be) absent
  type: dict
  sample: {name: ORDERS, subjects: ["orders.>"], retention: limits, storage: file, num_replicas: 3,
           max_age: 604800000000000, duplicate_window: 300000000000}
state:
  description: The stream's state (messages, bytes, sequences, consumer count) as the server reports it.
  returned: when the stream exists, except in check mode for a change
  type: dict
  sample: {messages: 1200, bytes: 345600, first_seq: 1, last_seq: 1200, consumer_count: 2}
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
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import (
    LIFECYCLE_OPTIONS,
    StreamAsset,
    converge,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.stream_config import (
    STREAM,
    desired_stream,
)


async def manage_stream(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_name(params["name"], where="in name")
    desired = desired_stream(params)
    async with jetstream_session(options) as (connection, api):
        stream = StreamAsset(api, params["name"])
        result = await converge(stream, desired, params, connection.client, check_mode, diff_mode)
    return {"name": params["name"], **result}


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            name={"type": "str", "required": True},
            **LIFECYCLE_OPTIONS,
            **STREAM.argument_spec(),
        ),
        supports_check_mode=True,
    )
    run_procedure(module, partial(manage_stream, diff_mode=module._diff))


if __name__ == "__main__":
    main()
