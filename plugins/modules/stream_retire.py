#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stream_retire
short_description: Delete a site's streams whose live copy the other site holds, backing up first what only they hold
version_added: 0.2.0
description:
  - "The failback step before a site can mirror the other again: a stream cannot become a mirror, so the old
    copy must go. Connected to one site (O(servers) and credentials), and to the other (O(counterpart), the same
    account there), retires each chosen stream of this site whose namesake in the other site is a promoted mirror
    of it (made by M(natsops.jetstream.stream_promote), which records the recovery point in its metadata)."
  - "The other site's copy holds this stream's messages up to the recovery point. Messages past it (accepted
    here after the mirror last heard from this site) are nowhere else: they are backed up into O(backup_dir)
    (a C(nats account backup) directory, restorable with M(natsops.jetstream.stream_restore)) before the stream
    is deleted, and the result names their sequences. Without O(backup_dir), such a stream fails the task
    before anything changes."
  - "Left alone, with the reason: streams the other site has no stream of, or only a mirror of, or a stream not
    promoted by this collection (what it holds is unknown). This site's mirrors are never chosen."
  - "Run it while the two sites are not linked (the standby's leaf node fence closed): a linked site whose stream
    still takes the subjects stores every message the other site's clients publish."
  - Runs where nats-py is installed, usually the controller (C(delegate_to) V(localhost)).
options:
  counterpart:
    description:
      - Connection to the same account in the other site, as an entry of C(accounts) elsewhere in this collection
        (C(servers) and credentials). TLS and timeouts are this task's.
    type: dict
    required: true
    suboptions:
      servers:
        description: URLs of the other site's servers.
        type: list
        elements: str
      context:
        description: A C(nats) CLI context for the other site.
        type: str
      user:
        description: User name.
        type: str
      password:
        description: Password.
        type: str
      token:
        description: Token.
        type: str
      creds:
        description: Credentials file.
        type: path
      nkey:
        description: NKey seed file.
        type: path
  streams:
    description:
      - Streams of this site to retire, by name or shell-style pattern; V(all) (or V(*)) for every stream that is
        not a mirror.
    type: list
    elements: str
    default: [all]
  backup_dir:
    description:
      - Directory (new, or absent) for the backup of the streams that hold messages the other site lacks, taken
        before any stream is deleted. Needed when there are any.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Says which streams would be retired or backed up and why; changes nothing.
  diff_mode:
    support: none
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: full
    details: A retired stream is gone; the next run finds nothing to retire.
seealso:
  - module: natsops.jetstream.stream_promote
  - module: natsops.jetstream.stream_mirror
  - module: natsops.jetstream.stream_restore
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Retire the old primary's streams, keeping what only they hold
  natsops.jetstream.stream_retire:
    servers: [nats://primary1:4222]
    creds: /etc/natsops/app-primary.creds
    counterpart:
      servers: [nats://standby1:4222]
      creds: /etc/natsops/app-standby.creds
    backup_dir: /var/backups/nats/failback-20261202
  delegate_to: localhost
"""

RETURN = r"""
streams:
  description: Each chosen stream, with what was done and why.
  returned: always
  type: list
  elements: dict
  contains:
    stream:
      description: Name of the stream.
      type: str
    action:
      description: V(retire) (deleted), V(back_up_and_retire) (backed up, then deleted) or V(keep).
      type: str
    last_seq:
      description: Its last sequence before it was retired.
      type: int
    recovery_point:
      description: The other site's copy holds its messages up to this sequence.
      type: int
    only_here_first_seq:
      description: First sequence of the messages only it held (kept in the backup), V(null) if none.
      type: int
    only_here_last_seq:
      description: Last sequence of the messages only it held, V(null) if none.
      type: int
    reason:
      description: Why it was kept.
      type: str
backup:
  description: Where the streams holding messages the other site lacks were backed up.
  returned: when any was
  type: str
"""

from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    ACCOUNTS_OPTION,
    NatsModule,
    account_options,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_selection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi, jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup import (
    BackupPlan,
    ExistingBackup,
    existing_backup,
    run_backup,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.snapshot import SnapshotOptions
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import is_mirror
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.retiring import (
    RetireAction,
    RetirePlan,
    plan_retire,
)


async def retire_streams(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_selection("streams", params["streams"])
    backup_dir = Path(params["backup_dir"]) if params["backup_dir"] else None
    async with jetstream_session(options) as (connection, here):
        infos = await streams_here(here, params["streams"])
        async with jetstream_session(account_options(params, params["counterpart"])) as (_other, there):
            plans = [plan_retire(info, await there.stream_info(info["config"]["name"])) for info in infos]
        saving = RetireAction.BACK_UP_AND_RETIRE
        to_back_up = [info for info, plan in zip(infos, plans, strict=True) if plan.action is saving]
        refuse_unsaved(plans, backup_dir)
        result: dict[str, Any] = {
            "changed": any(plan.action is not RetireAction.KEEP for plan in plans),
            "streams": [plan.as_dict() for plan in plans],
        }
        if check_mode:
            return result
        if to_back_up and backup_dir:
            backup = BackupPlan(path=backup_dir, single=False, streams=to_back_up)
            await run_backup(connection, here, backup, SnapshotOptions(stall_timeout=options["timeout"]), 1, False)
            result["backup"] = str(backup_dir)
        for plan in plans:
            if plan.action is not RetireAction.KEEP:
                await here.delete_stream(plan.stream)
    return result


async def streams_here(api: JetStreamApi, patterns: list[str]) -> list[dict[str, Any]]:
    infos, missing = await api.stream_list()
    if missing:
        raise NatsOpsError(
            f"no leader answered for {', '.join(sorted(missing))}: nothing was retired. Run again once the site is "
            "healthy (natsops.jetstream.cluster_info with wait_for: healthy)",
            reason="leaderless",
            missing=sorted(missing),
        )
    own = {info["config"]["name"]: info for info in infos if not is_mirror(info)}
    return [own[name] for name in choose_streams(list(own), patterns, "this site's streams (mirrors left out)")]


def refuse_unsaved(plans: list[RetirePlan], backup_dir: Path | None) -> None:
    unsaved = [plan for plan in plans if plan.action is RetireAction.BACK_UP_AND_RETIRE]
    if not unsaved:
        return
    described = ", ".join(
        f"{plan.stream} (sequences {entry['only_here_first_seq']}-{entry['only_here_last_seq']})"
        for plan, entry in ((plan, plan.as_dict()) for plan in unsaved)
    )
    if backup_dir is None:
        raise NatsOpsError(
            f"{described} hold messages the other site lacks (accepted after its mirror last heard from this site). "
            "Nothing was deleted. Give backup_dir to keep them in a backup before the streams are retired",
            reason="unsaved_messages",
        )
    if existing_backup(backup_dir, single=False) is not ExistingBackup.ABSENT:
        raise NatsOpsError(
            f"backup_dir {backup_dir} exists: the backup of {described} needs a new directory. Nothing was deleted",
            reason="backup_dir_exists",
        )


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            counterpart={"type": "dict", "required": True, "options": ACCOUNTS_OPTION["options"]},
            streams={"type": "list", "elements": "str", "default": ["all"]},
            backup_dir={"type": "path"},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, retire_streams)


if __name__ == "__main__":
    main()
