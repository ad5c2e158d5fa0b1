#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stream_promote
short_description: Promote a standby site's mirrors to the streams applications use, and put their consumers back
version_added: 0.2.0
description:
  - "Connected to the standby site, turns each chosen mirror (made by M(natsops.jetstream.stream_mirror)) into a
    stream of its own that takes its origin's subjects: one update that removes the mirror configuration, so the
    messages, their sequences and times stay as they are. Needs nats-server 2.12 or later in the standby site
    (JetStream API level 2): older servers cannot change a mirror at all, and are refused before anything
    changes."
  - "Refuses while the origin of any chosen mirror still answers through the leaf node link, unless O(force):
    two writable streams on the same subjects in two linked sites both store every message, each with its own
    sequences. Fence the primary site first (the failover playbook drops the standby's leaf node link)."
  - "Before promoting, reads each mirror's recovery point: the origin's sequence and time of the last message it
    holds, and how long ago it last heard from its origin. Messages the origin accepted after that are not in the
    standby; with O(record), the origin's progress when the record was written says how many at least."
  - "With O(record) (the standby record of M(natsops.jetstream.stream_mirror)), creates each recorded durable
    consumer the promoted stream lacks, with its recorded configuration, starting at the first message its
    recorded ack floor had not reached (never beyond the stream's end). Messages acknowledged after the record
    was written are delivered again: at least once, none skipped. Consumers that exist are left alone."
  - "Idempotent: a mirror already promoted (no mirror, its origin's subjects) is left as it is; only its missing
    consumers are created."
  - Runs where nats-py is installed, usually the controller (C(delegate_to) V(localhost)).
options:
  streams:
    description:
      - Mirrors to promote, by name or shell-style pattern; V(all) (or V(*)) for every mirror of the account, and
        every stream already promoted.
      - A name without pattern characters that is neither is an error.
    type: list
    elements: str
    default: [all]
  record:
    description:
      - Path of the standby record to recreate consumers from. Leave it out to promote the streams only.
    type: path
  force:
    description:
      - Promote even though the origin still answers, as it is. Prefer O(switchover), which stops the origin's
        writes first.
    type: bool
    default: false
  switchover:
    description:
      - "A planned switch-over, with the origin up and linked: for each mirror, the origin stops taking writes
        (its subjects are replaced by C(natsops.fenced.<stream>), so publishers get no responders; the old subjects
        are kept in its metadata), the mirror is waited for until it holds the origin's last message, and only
        then promoted. Nothing is lost. A mirror that does not catch up within O(wait_timeout) gives its origin its
        subjects back and fails the task, promoting nothing more."
      - The origin's fenced stream is then retired with M(natsops.jetstream.stream_retire) (it holds nothing the
        promoted stream lacks) and mirrored again with M(natsops.jetstream.stream_mirror).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds a switch-over waits for all the mirrors to copy their fenced origins' last messages.
    type: float
    default: 120
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reads the recovery points and says what would be promoted and created; changes nothing.
  diff_mode:
    support: none
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: full
seealso:
  - module: natsops.jetstream.stream_mirror
  - module: natsops.jetstream.mirror_info
  - name: Mirror promotion
    description: nats-server pull request 7171, which lets a mirror's configuration be removed.
    link: https://github.com/nats-io/nats-server/pull/7171
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Promote every mirror of APP in the standby site and recreate its consumers
  natsops.jetstream.stream_promote:
    servers: [nats://standby1:4222]
    creds: /etc/natsops/app-standby.creds
    record: /var/lib/natsops/standby/APP.json
  delegate_to: localhost
  register: promoted
"""

RETURN = r"""
streams:
  description: Each chosen stream, with its recovery point and consumers.
  returned: always
  type: list
  elements: dict
  contains:
    stream:
      description: Name of the stream.
      type: str
    action:
      description: V(promote), or V(none) when it was promoted already.
      type: str
    subjects:
      description: The subjects it takes once promoted.
      type: list
      elements: str
    recovery_point:
      description: >-
        What it holds of its origin: C(last_seq) and C(last_time) (the origin's sequence and time of its last
        message), C(contact_seconds_ago) (since it last heard from its origin) and C(lag_at_last_contact)
        (messages the origin still had queued then). V(null) for a stream promoted before.
      type: dict
    recorded_origin:
      description: >-
        The origin's progress in the standby record (C(last_seq), C(last_time), C(recorded_seconds_ago)) and
        C(missing_at_least), the messages it had then that the stream lacks. V(null) without a record.
      type: dict
    fenced_origin:
      description: >-
        With O(switchover): the origin's C(domain), the C(subjects) it took before it was fenced, and its
        C(last_seq) then (the promoted stream holds up to it).
      type: dict
      returned: with O(switchover), when the stream was promoted
    consumers:
      description: >-
        Each recorded consumer: C(consumer), C(action) (V(create) or V(none) when it exists), C(start_seq),
        C(recorded_ack_floor), C(recorded_ack_pending).
      type: list
      elements: dict
  sample:
    - stream: ORDERS
      action: promote
      subjects: [orders.>]
      recovery_point: {last_seq: 1498, last_time: "2026-12-02T10:00:00.5Z", contact_seconds_ago: 41.2,
                       lag_at_last_contact: 0}
      recorded_origin: {last_seq: 1450, last_time: "2026-12-02T09:59:00Z", recorded_seconds_ago: 100.3,
                        missing_at_least: 0}
      consumers: [{consumer: BILLING, action: create, start_seq: 701, recorded_ack_floor: 700,
                   recorded_ack_pending: 0}]
seconds:
  description: Seconds the promotion took.
  returned: always
  type: float
"""

import time
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    describe_release,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_selection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi, jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import StreamAsset
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import (
    MirrorStatus,
    is_mirror,
    origin_subjects,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.promotion import (
    RecoveryPoint,
    fence_origin,
    is_promoted,
    origin_answers,
    promoted_config,
    recreate_consumers,
    require_promotion_support,
    unfence_origin,
    wait_until_copied,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.reading import domain_of, origin_of
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.record import StandbyRecord


async def promote_mirrors(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    started = time.monotonic()
    options = resolve_options(params)
    check_selection("streams", params["streams"])
    record = StandbyRecord.load(Path(params["record"])) if params["record"] else None
    async with jetstream_session(options) as (connection, standby):
        await require_promotion_support(standby, describe_release(connection.client))
        chosen = await chosen_streams(standby, params["streams"])
        mirrors = [info for info in chosen if is_mirror(info)]
        switchover = Deadline.after(params["wait_timeout"]) if params["switchover"] else None
        if not params["force"] and switchover is None:
            await refuse_while_origins_answer(standby, mirrors)
        entries = [await promote_one(standby, info, record, check_mode, switchover) for info in chosen]
    return {
        "changed": any(entry["action"] == "promote" for entry in entries)
        or any(consumer["action"] == "create" for entry in entries for consumer in entry["consumers"]),
        "streams": entries,
        "seconds": round(time.monotonic() - started, 3),
    }


async def chosen_streams(standby: JetStreamApi, patterns: list[str]) -> list[dict[str, Any]]:
    """The chosen mirrors, and streams promoted before (so that a second run finds them)."""
    infos, missing = await standby.stream_list()
    if missing:
        raise NatsOpsError(
            f"no leader answered in the standby site for {', '.join(sorted(missing))}: nothing was promoted. Run "
            "again once natsops.jetstream.cluster_info with wait_for: healthy succeeds",
            reason="standby_leaderless",
            missing=sorted(missing),
        )
    candidates = {info["config"]["name"]: info for info in infos if is_mirror(info) or is_promoted(info["config"])}
    return [candidates[name] for name in choose_streams(list(candidates), patterns, "the standby's mirrors")]


async def refuse_while_origins_answer(standby: JetStreamApi, mirrors: list[dict[str, Any]]) -> None:
    answering = []
    for info in mirrors:
        domain = domain_of(info)
        origin = origin_of(standby, domain) if domain else standby
        if await origin_answers(origin, info["config"]["mirror"]["name"]):
            answering.append(f"{info['config']['name']} (domain {domain or 'of the standby'})")
    if answering:
        raise NatsOpsError(
            f"the origins of {', '.join(answering)} still answer: promoting now would make two writable streams on "
            "the same subjects in linked sites, both storing every message. Nothing was promoted. Fence the primary "
            "site first (the failover playbook drops the leaf node link), or set force: true for a planned "
            "switch-over with writes to the origin stopped",
            reason="origin_answers",
            answering=answering,
        )


async def promote_one(
    standby: JetStreamApi,
    info: dict[str, Any],
    record: StandbyRecord | None,
    check_mode: bool,
    switchover: Deadline | None,
) -> dict[str, Any]:
    config = info["config"]
    name = config["name"]
    entry: dict[str, Any] = {"stream": name, "subjects": origin_subjects(config), "recovery_point": None}
    if is_mirror(info) and switchover is not None and not check_mode:
        info, entry["fenced_origin"] = await switch_over(standby, info, switchover)
    last_seq = int((info.get("state") or {}).get("last_seq") or 0)
    if is_mirror(info):
        entry["recovery_point"] = RecoveryPoint(MirrorStatus.of(info)).as_dict()
        if not check_mode:
            await StreamAsset(standby, name).update(promoted_config(config, last_seq))
        entry["action"] = "promote"
    else:
        entry["action"] = "none"
    recorded = record.streams.get(name) if record else None
    entry["recorded_origin"] = None
    entry["consumers"] = []
    if record and recorded:
        entry["recorded_origin"] = {
            "last_seq": recorded.last_seq,
            "last_time": recorded.last_ts,
            "recorded_seconds_ago": record.age_seconds,
            "missing_at_least": max(0, recorded.last_seq - last_seq),
        }
        entry["consumers"] = await recreate_consumers(standby, name, recorded.consumers, last_seq, check_mode)
    return entry


async def switch_over(
    standby: JetStreamApi, info: dict[str, Any], deadline: Deadline
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fence the origin's writes, then wait until the mirror holds its last message: the mirror's info then, and
    what was fenced. A mirror that does not catch up in time gives the origin its subjects back."""
    domain = domain_of(info)
    origin = origin_of(standby, domain) if domain else standby
    origin_name = info["config"]["mirror"]["name"]
    fenced = await fence_origin(origin, origin_name)
    origin_last_seq = int((fenced.get("state") or {}).get("last_seq") or 0)
    try:
        caught_up = await wait_until_copied(standby, info["config"]["name"], origin_last_seq, deadline)
    except NatsOpsError as exc:
        await unfence_origin(origin, origin_name)
        raise NatsOpsError(
            f"{exc.msg}: the origin takes writes again and nothing was promoted. Check the link (mirror_info) and "
            "run again, or raise wait_timeout",
            **exc.details,
        ) from None
    return caught_up, {"domain": domain, "subjects": origin_subjects(fenced["config"]), "last_seq": origin_last_seq}


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            streams={"type": "list", "elements": "str", "default": ["all"]},
            record={"type": "path"},
            force={"type": "bool", "default": False},
            switchover={"type": "bool", "default": False},
            wait_timeout={"type": "float", "default": 120},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, promote_mirrors)


if __name__ == "__main__":
    main()
