#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stream_mirror
short_description: Keep a standby site's mirrors of the primary site's streams and KV buckets
version_added: 0.2.0
description:
  - "Connected to the standby site (O(servers) and credentials of the account there), makes every chosen stream
    of the same account in the primary site (JetStream domain O(origin_domain)) have a mirror of the same name in
    the standby, and records what a failover needs and cannot read once the primary is gone (O(record))."
  - "The two sites are separate JetStream domains joined by a leaf node link for the account (the standby's
    servers solicit the primary's). The primary's streams are read, and mirrored, through that link
    (C($JS.<origin_domain>.API)): no connection to the primary is needed."
  - "A mirror copies its origin's limits, retention, storage, compression, KV flags, description and metadata,
    and keeps the origin's subjects in its metadata (C(natsops.origin_subjects)), since a mirror cannot have
    subjects: M(natsops.jetstream.stream_promote) gives them back. Key-value buckets are mirrored as the KV
    clients mirror them (C(mirror_direct))."
  - "Left out, with the reason in RV(skipped): work-queue and interest streams (the mirror's consumer would take
    their messages away), counter streams (a mirror cannot count, nor start counting when promoted), mirrors, and
    streams without subjects of their own."
  - "Idempotent: a mirror as it should be is left alone; a stream added to the primary gets its mirror on the
    next run; a changed limit is updated in place. The standby's streams are never deleted: a standby stream
    in the way (promoted, made by hand, mirroring something else, or needing a change the server cannot make in
    place) fails the task before anything changes, naming what to do."
  - "What mirroring does not carry: deletes and purges made through the API at the primary (the mirror keeps
    those messages), consumers and their positions (recorded in O(record) instead), and configuration changes
    made at the primary after the last run."
  - Runs where nats-py is installed, usually the controller (C(delegate_to) V(localhost)).
options:
  origin_domain:
    description:
      - JetStream domain of the primary site, whose streams are mirrored.
    type: str
    required: true
  streams:
    description:
      - Streams of the primary to mirror, by name or shell-style pattern (V(ORDERS*), V(KV_*)); V(all) (or
        V(*)) for every stream of the account.
      - A name without pattern characters that the primary does not have is an error.
    type: list
    elements: str
    default: [all]
  replicas:
    description:
      - Replicas of each mirror in the standby site. Leave it out to take each origin's.
    type: int
  record:
    description:
      - "Path of the standby record to write (JSON, replaced at once, mode 0600), where the module runs: for each
        mirrored stream the primary's last sequence and time, and every durable consumer's configuration and
        position. M(natsops.jetstream.stream_promote) recreates the consumers from it."
      - "Run the task on a schedule so that it stays recent: consumers recreated from it deliver again what was
        acknowledged after it was written."
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports the mirrors it would create or update, and writes no record.
  diff_mode:
    support: full
    details: Each mirror's configuration before and after, by stream.
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: full
    details: Writing O(record) does not count as a change.
seealso:
  - module: natsops.jetstream.mirror_info
  - module: natsops.jetstream.stream_promote
  - name: Mirrors and sources
    description: The NATS documentation on stream mirrors.
    link: https://docs.nats.io/nats-concepts/jetstream/source_and_mirror
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Mirror every stream and bucket of APP from the primary (domain east) into the standby
  natsops.jetstream.stream_mirror:
    servers: [nats://standby1:4222, nats://standby2:4222]
    creds: /etc/natsops/app-standby.creds
    origin_domain: east
    record: /var/lib/natsops/standby/APP.json
  delegate_to: localhost
  register: mirrored

- name: Say how far behind each mirror is
  ansible.builtin.debug:
    msg: "{{ mirrored.mirrors | items2dict(key_name='stream', value_name='behind_seconds') }}"
"""

RETURN = r"""
mirrors:
  description:
    - Every mirror kept, with what was done and how far it is behind its origin (read after the change; not in
      check mode).
  returned: always
  type: list
  elements: dict
  contains:
    stream:
      description: Name of the stream, the same in both sites.
      type: str
    action:
      description: V(create), V(update) or V(none).
      type: str
    changes:
      description: The settings updated, with their values before and after.
      type: dict
    health:
      description: >-
        V(current), V(catching_up), V(slow), V(stalled), V(never_synced) or V(failed); see
        M(natsops.jetstream.mirror_info).
      type: str
    behind_messages:
      description: Messages the origin had that the mirror did not, when both were read.
      type: int
    behind_seconds:
      description: The origin's time of its last message less the mirror's, in seconds.
      type: float
  sample:
    - {stream: ORDERS, action: none, changes: {}, health: current, behind_messages: 0, behind_seconds: 0.0}
skipped:
  description: Streams of the primary left without a mirror, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{stream: JOBS, reason: "workqueue retention: the mirror's consumer would remove the messages it copies"}]
record:
  description: Path of the standby record written, and how many streams and consumers it holds.
  returned: when O(record) is given and not in check mode
  type: dict
  sample: {path: /var/lib/natsops/standby/APP.json, streams: 3, consumers: 4}
"""

import time
from functools import partial
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import (
    check_positive,
    check_selection,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirror_plans import carry_out, plan_mirrors
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.reading import (
    origin_of,
    origin_streams,
    statuses,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.record import StandbyRecord, record_stream


async def keep_mirrors(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_selection("streams", params["streams"])
    check_positive("replicas", params["replicas"], unit="")
    domain = params["origin_domain"]
    async with jetstream_session(options) as (_connection, standby):
        origin = origin_of(standby, domain)
        by_name = {info["config"]["name"]: info for info in await origin_streams(origin, domain)}
        chosen = [by_name[name] for name in choose_streams(list(by_name), params["streams"], f"domain {domain}")]
        plans, skipped = await plan_mirrors(standby, chosen, domain, params["replicas"])
        result: dict[str, Any] = {"changed": any(plan.changed for plan in plans.values()), "skipped": skipped}
        done = {name: {"action": plan.action.value, "changes": plan.changes_dict()} for name, plan in plans.items()}
        if diff_mode:
            result["diff"] = [plan.diff() for plan in plans.values() if plan.changed]
        if check_mode:
            result["mirrors"] = [{"stream": name, **entry} for name, entry in done.items()]
            return result
        await carry_out(plans)
        if params["record"]:
            mirrored = [info for info in chosen if info["config"]["name"] in plans]
            result["record"] = await write_record(origin, domain, mirrored, Path(params["record"]))
        mirrors = await statuses(standby, [await standby.stream_info(name) for name in plans])
    result["mirrors"] = [{"stream": status.stream, **done[status.stream], **status.as_dict()} for status in mirrors]
    return result


async def write_record(origin: Any, domain: str, mirrored: list[dict[str, Any]], path: Path) -> dict[str, Any]:
    record = StandbyRecord(domain, time.time())
    for info in mirrored:
        record.streams[info["config"]["name"]] = await record_stream(origin, info)
    record.save(path)
    consumers = sum(len(stream.consumers) for stream in record.streams.values())
    return {"path": str(path), "streams": len(record.streams), "consumers": consumers}


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            origin_domain={"type": "str", "required": True},
            streams={"type": "list", "elements": "str", "default": ["all"]},
            replicas={"type": "int"},
            record={"type": "path"},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, partial(keep_mirrors, diff_mode=module._diff))


if __name__ == "__main__":
    main()
