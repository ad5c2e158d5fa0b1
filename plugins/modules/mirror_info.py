#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mirror_info
short_description: How far behind its origin each mirror of a standby site is, and whether the origin answers
version_added: 0.2.0
description:
  - "Connected to the site that holds the mirrors (usually the standby site of
    M(natsops.jetstream.stream_mirror)), reads each chosen mirror and its origin: the origin through the leaf node
    link (C($JS.<domain>.API)), with a short timeout, so that a primary site that is gone is reported, not waited
    for."
  - "The origin is read before the mirror, so that C(caught_up) means the mirror held, when read, everything the
    origin held a moment before."
  - "RV(mirrors[].health): V(current) (heard from its origin within 3 s, nothing left to copy), V(catching_up)
    (heard from within 3 s, messages left), V(slow) (last contact 3 to 10 s ago), V(stalled) (no contact for
    10 s or more: the origin is unreachable; the server keeps trying), V(never_synced) (no contact since it was
    created or its server started), V(failed) (the origin answered with an error, its stream missing for
    example)."
  - "O(wait_for=caught_up) waits until every chosen mirror is caught up, within O(wait_timeout), and fails
    otherwise, naming those that are not."
  - Runs where nats-py is installed, usually the controller (C(delegate_to) V(localhost)).
options:
  streams:
    description:
      - Mirrors to read, by name or shell-style pattern; V(all) (or V(*)) for every mirror of the account.
      - A name without pattern characters that is not a mirror of the account is an error.
    type: list
    elements: str
    default: [all]
  wait_for:
    description:
      - V(caught_up) waits until every chosen mirror is caught up; V(none) reads once.
    type: str
    choices: [none, caught_up]
    default: none
  wait_timeout:
    description:
      - Seconds O(wait_for) waits.
    type: float
    default: 120
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: natsops.jetstream.stream_mirror
  - module: natsops.jetstream.stream_promote
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Wait until the standby holds everything the primary has
  natsops.jetstream.mirror_info:
    servers: [nats://standby1:4222]
    creds: /etc/natsops/app-standby.creds
    wait_for: caught_up
    wait_timeout: 300
  delegate_to: localhost
"""

RETURN = r"""
mirrors:
  description: Each chosen mirror, by name.
  returned: always
  type: list
  elements: dict
  contains:
    stream:
      description: Name of the mirror.
      type: str
    origin:
      description: Name of the stream it mirrors.
      type: str
    origin_domain:
      description: JetStream domain of the origin, as recorded by M(natsops.jetstream.stream_mirror).
      type: str
    health:
      description: See the description.
      type: str
    caught_up:
      description: In contact with the origin and holding everything the origin held when read.
      type: bool
    behind_messages:
      description: >-
        Messages of the origin not yet copied: from the origin's state when it answered, else the mirror's own
        lag figure (which stops changing when contact is lost).
      type: int
    behind_seconds:
      description: >-
        The origin's time of its last message less the mirror's; V(null) when the origin did not answer, or the
        mirror holds nothing yet.
      type: float
    last_seq:
      description: The origin's sequence of the last message the mirror holds (the recovery point).
      type: int
    last_time:
      description: The origin's time of that message (RFC 3339).
      type: str
    contact_seconds_ago:
      description: Seconds since the mirror last heard from its origin; V(null) when it never has.
      type: float
    error:
      description: The origin's error, when it answered with one.
      type: str
    origin_last_seq:
      description: The origin's last sequence, V(null) when it did not answer.
      type: int
    origin_last_time:
      description: The origin's time of its last message, V(null) when it did not answer.
      type: str
  sample:
    - {stream: ORDERS, origin: ORDERS, origin_domain: east, health: current, caught_up: true, behind_messages: 0,
       behind_seconds: 0.0, last_seq: 1500, last_time: "2026-12-02T10:00:00.5Z", contact_seconds_ago: 0.4,
       error: null, origin_last_seq: 1500, origin_last_time: "2026-12-02T10:00:00.5Z"}
caught_up:
  description: Whether every chosen mirror is caught up.
  returned: always
  type: bool
origin_answers:
  description: Whether the origin of any chosen mirror answered.
  returned: always
  type: bool
"""

from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import (
    check_positive,
    check_selection,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi, jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, poll
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import MirrorStatus
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.reading import mirror_infos, statuses

WAIT_PAUSE = 0.5


async def read_mirrors(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_selection("streams", params["streams"])
    check_positive("wait_timeout", params["wait_timeout"])
    async with jetstream_session(options) as (_connection, standby):
        infos = await mirror_infos(standby, params["streams"])
        if params["wait_for"] == "caught_up":
            found = await wait_caught_up(standby, infos, Deadline.after(params["wait_timeout"]))
        else:
            found = await statuses(standby, infos)
    return facts(found)


async def wait_caught_up(standby: JetStreamApi, infos: list[dict[str, Any]], deadline: Deadline) -> list[MirrorStatus]:
    async def read() -> list[MirrorStatus]:
        return await statuses(standby, infos)

    found = await poll(read, deadline, WAIT_PAUSE, until=lambda read: all(status.caught_up for status in read))
    behind = [status for status in found if not status.caught_up]
    if behind:
        raise NatsOpsError(
            "not caught up within the wait: "
            + ", ".join(
                f"{status.stream} ({status.health.value}, {status.behind_messages} behind)" for status in behind
            )
            + ". A stalled or never-synced mirror has lost its origin: check the primary site and the leaf node link",
            reason="not_caught_up",
            **facts(found),
        )
    return found


def facts(found: list[MirrorStatus]) -> dict[str, Any]:
    return {
        "changed": False,
        "mirrors": [status.as_dict() for status in found],
        "caught_up": all(status.caught_up for status in found),
        "origin_answers": any(status.origin_state is not None for status in found),
    }


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            streams={"type": "list", "elements": "str", "default": ["all"]},
            wait_for={"type": "str", "choices": ["none", "caught_up"], "default": "none"},
            wait_timeout={"type": "float", "default": 120},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, read_mirrors)


if __name__ == "__main__":
    main()
