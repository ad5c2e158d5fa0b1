#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stream_restore
short_description: Restore JetStream streams from backups made by this collection or the C(nats) CLI
version_added: 0.1.0
description:
  - Restores the stream backup at O(path) (C(backup.json) and C(stream.tar.s2), as C(nats stream backup) or
    M(natsops.jetstream.stream_backup) write them), or every stream of an account backup (one such directory
    per stream, as C(nats account backup) writes them), optionally only those named in O(streams).
  - Every backup is checked before any server is touched. With a C(manifest.json) (written by
    M(natsops.jetstream.stream_backup)) the size and sha256 of each file must match; without one (a C(nats) CLI
    backup) C(backup.json) must be whole and C(stream.tar.s2) a complete S2 stream. A damaged or truncated
    backup is refused and nothing is created.
  - "Before anything is created or deleted, what can be checked cheaply is checked, and the whole restore is
    refused, naming each stream and its cause: a V2 archive (C(NATSARC1), written by nats-server 2.15+) for an
    older server; more replicas than a standalone server or the cluster's servers up can hold; more data
    (bytes times replicas) or streams than the account's JetStream limits allow. The server would otherwise
    refuse these only after the data was sent."
  - Restores to the same or another server or cluster; O(replicas), O(cluster) and O(tags) override the
    backup's replication and placement (for example an R3 backup into a single server with O(replicas=1)).
  - After each restore, the stream's state is compared with C(backup.json) (messages, first and last
    sequence) and, for backups with a manifest, with the consumers and their positions recorded there. A
    mismatch fails the task and removes the restored stream.
  - A replicated stream counts as restored only once its other replicas have copied the data from its leader
    (a leader lost before then can take the data with it). Replicas on servers that are down are named in
    RV(restored[].replicas_absent) and a warning; a quorum that holds the data must do.
  - On any failure, a stream that this restore created is deleted (a failed clustered restore can leave a
    dead stream behind); a stream that existed before is never touched, except with O(if_exists=replace).
  - "Each stream is restored with the metadata C(natsops.jetstream.restore: incomplete) (and the restore's
    owner and start time), removed once the stream has been verified. If the server dies mid-restore (a
    standalone server keeps the half-made stream), the stream keeps that mark, and the next run of this module
    replaces it from the backup whatever O(if_exists) says, with a warning."
  - "Origins are restored before the streams that mirror or source them, whatever the order of the backup.
    A stream that sources others is restored without its sources; then the last origin sequence it holds from
    each is read from its messages (their C(Nats-Stream-Source) header), and its sources are put back with
    C(opt_start_seq) one past it. From nats-server 2.15, a source whose origin was restored (which gives the
    origin a new creation time, the identity a source checks) otherwise copies the whole origin again; with
    C(opt_start_seq) it resumes exactly. The C(opt_start_seq) must stay in the stream's configuration until
    the source has copied a message from the restored origin: removed earlier, a restart replays it."
  - "Data the server rejects is sent once more, to a stream made anew: a server killed while it rewrote a
    stream's meta file keeps that stream's messages on disk without showing the stream, and fails the next
    restore of that name on them (removing them as it does). The retry is named in RV(restored[].retried_after)
    and a warning; a second rejection fails the task."
  - "Two restores of the same stream at once are refused: a run claims its streams for as long as its
    connection lives (a subscription on C(_INBOX.natsops.restore.<domain>.<stream>) in the account), and a
    second run is refused, naming the owner, host and process id, even when the first run's process is stopped.
    A run that was killed drops its claims with its connection, so its half-made streams are redone."
  - "If the connection is lost (the server died), no new stream is started; the streams in flight are removed
    through one new connection, or left marked for the next run when no server answers; and the task fails at
    once with every stream accounted for: restored, incomplete, never started. Run it again with
    O(if_exists=skip) to finish the job."
options:
  path:
    description:
      - Backup directory of one stream, or of an account, on the host that runs the module.
    type: path
    required: true
  streams:
    description:
      - Restore only these streams of an account backup, by name or shell-style pattern. V(all), or
        leaving it unset, restores every stream in it.
      - A name without pattern characters that the backup does not hold is an error.
    type: list
    elements: str
  if_exists:
    description:
      - What to do when a stream of the same name already exists on the server.
      - V(fail) refuses the whole restore, naming the streams, before anything is restored.
      - V(skip) keeps the existing stream and restores the others.
      - V(replace) restores the backup in place of the existing stream, which is kept recoverable until the new
        one is verified. First a safety backup of the existing stream is written to O(safety_backup_dir); if the
        stream takes new messages meanwhile, the replace is refused (stop its publishers). Then the stream is
        deleted and the backup restored. If that fails, whatever the cause, the old stream is put back from the
        safety backup, as it was when the replace began, and the task fails saying so. If even that cannot be
        done (no server answers), the safety backup is kept and the message says where it is and how to restore
        it. Once the new stream is verified the old one is gone, messages newer than the backup included.
      - With a V2 safety backup (nats-server 2.15+), a put-back stream's consumers keep their ack floors, and
        messages they had delivered but not acked are delivered again.
    type: str
    choices: [fail, skip, replace]
    default: fail
  replicas:
    description:
      - Number of replicas of the restored streams, instead of the backup's, from 1 to 5.
      - Use V(1) to restore into a server that is not clustered.
    type: int
  storage:
    description:
      - Storage of the restored streams, instead of the backup's. V(file) keeps the messages of a memory-storage
        stream across server restarts; V(memory) holds them in the server's memory (and counts against the
        account's C(max_memory)).
      - A memory-storage stream can be backed up from nats-server 2.15 on; its backup, like every backup such a
        server writes, is a V2 archive that only nats-server 2.15+ restores.
      - Only a V2 archive can change storage. A V1 archive (nats-server before 2.15) holds the file store's own
        files, which a server restores only as file storage, so a storage change for one is refused before
        anything is restored.
    type: str
    choices: [file, memory]
  verify_buckets:
    description:
      - Read every restored key-value and object store bucket as its API does, and compare it with the view its
        backup recorded (every key's revisions with their operation, TTL and value; every object's name, size,
        chunks and digest); read every object's chunks and check them against its SHA-256 digest. A mismatch
        fails the stream's restore like any other (the restored stream is removed).
      - This reads the whole bucket once (one ephemeral consumer, deleted afterwards). V(false) skips it.
    type: bool
    default: true
  pause_consumers:
    description:
      - Leave the durable consumers of the restored streams paused until this time (RFC 3339, V(2026-12-24T18:00:00Z))
        or for this long (a duration, V(2h)), so that applications get no message, redeliveries included, before
        you have checked what came back. Each is paused as soon as it has a leader after its stream's restore.
      - Resume them with M(natsops.jetstream.consumer_pause) (O(natsops.jetstream.consumer_pause#module:state=resumed))
        or the C(natsops.jetstream.resume_consumers) playbook; a pause also ends by itself at its time.
      - Needs nats-server 2.11 or later; refused before anything is restored on an older target.
    type: str
  cluster:
    description:
      - Place the restored streams in this cluster (placement C(cluster)), instead of the backup's placement.
    type: str
  tags:
    description:
      - Place the restored streams on servers with these tags (placement C(tags)), instead of the backup's.
    type: list
    elements: str
  chunk_size:
    description:
      - Bytes sent per request, from 1024 to 67108864 (64 MiB), capped to the server's C(max_payload). Larger
        chunks restore faster (natscli sends 64 KiB).
    type: int
    default: 1048576
  parallel:
    description:
      - How many streams to restore at the same time, from 1 to 64; by default 4 into a cluster.
      - Into a standalone server, streams are restored one at a time whatever this says (with a warning), because
        nats-server (2.12.8 and 2.15.1 seen, 2.14 has the same code) crashes when it restores several streams at
        once (C(concurrent map iteration and map write) in the account's storage reservation, which its restore
        reads without the lock; 6 of 6 account restores of 500 streams at 4 in parallel). A cluster takes
        another, locked path and is restored in parallel.
    type: int
  safety_backup_dir:
    description:
      - Where O(if_exists=replace) writes the safety backup of each stream it replaces, on the host that runs
        the module, one directory per stream (C(<stream>.<time>-<id>)). It needs room for a copy of the stream.
      - Defaults to C($XDG_STATE_HOME/natsops.jetstream/safety-backups), or
        C(~/.local/state/natsops.jetstream/safety-backups), a place that survives a reboot, since a safety
        backup that could not be put back is the only copy of the old stream.
    type: path
  keep_safety_backup:
    description:
      - Keep each safety backup after a successful replace (it is deleted by default).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: >-
      Verifies the backups, makes every check made before a restore, and reports what would be restored,
      skipped or replaced; touches no server state and claims no stream.
  diff_mode:
    support: none
seealso:
  - module: natsops.jetstream.stream_backup
  - name: JetStream disaster recovery
    description: The NATS documentation on backing up and restoring streams.
    link: https://docs.nats.io/running-a-nats-service/nats_admin/jetstream_admin/disaster_recovery
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Restore one stream into the cluster it came from
  natsops.jetstream.stream_restore:
    servers: ["nats://nats1.example.com:4222"]
    creds: /etc/nats/admin.creds
    path: /srv/backups/nats/ORDERS
  delegate_to: localhost
  run_once: true

- name: Restore an R3 account backup into a single test server
  natsops.jetstream.stream_restore:
    servers: ["nats://127.0.0.1:4222"]
    path: /srv/backups/nats/20261122T020000Z
    replicas: 1
    if_exists: skip
  delegate_to: localhost

- name: Restore only the ORDERS streams into the east cluster
  natsops.jetstream.stream_restore:
    context: prod
    path: /srv/backups/nats/20261122T020000Z
    streams: ["ORDERS*"]
    cluster: east
  delegate_to: localhost
"""

RETURN = r"""
restored:
  description: One entry per stream restored (or replaced).
  returned: always
  type: list
  elements: dict
  contains:
    stream:
      description: Stream name.
      type: str
    label:
      description: >-
        What the stream holds, for reports: V(stream ORDERS), V(key-value bucket settings) (stream C(KV_settings)),
        V(object store bucket invoices) (stream C(OBJ_invoices)).
      type: str
    action:
      description: V(restored), V(replaced), or V(redone) (an unfinished earlier restore was replaced).
      type: str
    path:
      description: The stream's backup directory.
      type: str
    bytes:
      description: Bytes of backup data sent.
      type: int
    duration:
      description: Seconds the stream's restore took.
      type: float
    throughput_mib_s:
      description: Restore speed in MiB/s.
      type: float
    replicas:
      description: Replicas of the restored stream.
      type: int
    placement:
      description: Placement of the restored stream, if any.
      type: dict
    verification:
      description: The state expected from the backup, the state found after the restore, and whether they match.
      type: dict
    backup_check:
      description: >-
        How the backup was checked before the restore (V(sha256) with a manifest, V(s2-framing) without), and
        its C(archive_format) (V(v1), a tar; V(v2), C(NATSARC1) from nats-server 2.15+; V(unknown)).
      type: dict
    safety_backup:
      description: For a replaced stream, the safety backup of the old one (C(path)) and whether it was kept.
      type: dict
    replicas_absent:
      description: >-
        Replicas on servers that were down when the restore finished. The module waits until every other
        replica has copied the data from the leader (a leader lost before then can take the data with it);
        these copy it when their server returns, and until then the stream runs on a quorum.
      type: list
      elements: str
    bucket:
      description: >-
        For a key-value (C(KV_*)) or object store (C(OBJ_*)) bucket: its C(kind) (V(kv) or V(object)) and C(name);
        with O(verify_buckets), the C(view) read after the restore and whether it was C(compared_with_backup)
        (a backup by this collection records the view; a C(nats) CLI backup, or a bucket that changed while it was
        backed up, has none, and then only the objects' digests are checked).
      type: dict
    sources:
      description: >-
        For a stream that sources others: each source's C(name), C(index_name) (as nats-server names it), the
        C(position) found in the restored messages (the last origin sequence the stream holds a copy of; null if
        none was found) and the C(opt_start_seq) it was put back with, one past that position. C(capped_from)
        is set when the origin, as restored, ends before that position (the two were backed up at different
        moments); it then resumes at the origin's end.
      type: list
      elements: dict
    redeliveries:
      description: >-
        Per consumer that had messages delivered but not acknowledged at backup time (C(unacked_at_backup)), the
        sequences it delivers again (C(from_seq) to C(to_seq)) and C(when) - V(at once) where the restore kept
        the consumer's ack floor but not what it had delivered past it (a clustered restore), V(after ack_wait)
        where the restored consumer still waits for those acks, which the applications that held the messages,
        gone with the old servers, will not send.
      type: dict
    paused_consumers:
      description: With O(pause_consumers), each durable consumer paused and the time its pause ends.
      type: dict
    retried_after:
      description: >-
        Present when the server rejected the first attempt's data and a second attempt, to a stream made anew,
        succeeded: the server's description of the first failure. A server killed while it rewrote a stream's
        meta file keeps that stream's messages on disk without showing the stream (its log says "checksums do
        not match"); the next restore of that name fails on them, and the server removes them with it.
      type: str
  sample:
    - stream: ORDERS
      action: restored
      bytes: 1184166
      duration: 0.4
      replicas: 3
      verification:
        expected: {messages: 5000, first_seq: 1, last_seq: 5000, consumers: [ALL, NEW]}
        actual: {messages: 5000, first_seq: 1, last_seq: 5000, consumers: [ALL, NEW]}
        match: true
planned:
  description: What is (or, in check mode, would be) done per stream of the backup.
  returned: always
  type: list
  elements: dict
  sample:
    - {stream: ORDERS, action: restore, messages: 5000, exists: false}
    - {stream: EVENTS, action: skip, messages: 3000, exists: true}
skipped_streams:
  description: Streams not restored because they exist and O(if_exists=skip).
  returned: always
  type: list
  elements: str
failures:
  description: >-
    Streams whose restore failed, with the reason (the task then fails). A failed replace says whether the old
    stream was put back (C(put_back)) and where its safety backup is (C(safety_backup)).
  returned: failure
  type: list
  elements: dict
incomplete:
  description: >-
    When the connection was lost: the streams that were in flight, each with its C(state): V(removed),
    V(not created), or V(left marked) (no server answered; the next run redoes it).
  returned: when the connection was lost
  type: list
  elements: dict
not_started:
  description: When the connection was lost, the streams that were never started.
  returned: when the connection was lost
  type: list
  elements: str
refused:
  description: Why each stream could not be restored, when the checks before the restore refused it.
  returned: when refused before anything was restored
  type: dict
being_restored:
  description: The streams another restore is restoring right now, with its owner and start time.
  returned: when refused for that reason
  type: dict
"""

import asyncio
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import (
    MAX_PARALLEL,
    MAX_REPLICAS,
    check_range,
    check_selection,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import (
    DEFAULT_RESTORE_CHUNK,
    FIRST_SEQ_RESTORED,
    IF_EXISTS_CHOICES,
    MAX_RESTORE_CHUNK,
    MIN_RESTORE_CHUNK,
    RestoreAction,
    RestoreOptions,
    StreamBackup,
    existing_streams,
    find_backups,
    plan_actions,
    restore_config,
    verify_backups,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore_checks import (
    Planned,
    Target,
    problems,
    read_target,
    settle_servers_up,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore_claims import RestoreClaims
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore_run import (
    RestoreRun,
    RunOutcome,
    SafetyOptions,
    describe_loss,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.safety import default_safety_root
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.sources import source_warnings
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.pausing import PAUSE_RELEASE, parse_until


async def restore(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_inputs(params)
    backups = find_backups(Path(params["path"]), params["streams"])
    verify_backups(backups)  # every backup, before any server is touched
    restore_options = RestoreOptions(
        replicas=params["replicas"],
        storage=params["storage"],
        cluster=params["cluster"],
        tags=params["tags"],
        if_exists=params["if_exists"],
        chunk_size=params["chunk_size"],
        chunk_timeout=options["timeout"],
        verify_buckets=params["verify_buckets"],
        pause_until=parse_until(params["pause_consumers"], "pause_consumers") if params["pause_consumers"] else None,
    )
    safety = SafetyOptions(Path(params["safety_backup_dir"] or default_safety_root()), params["keep_safety_backup"])
    async with jetstream_session(options) as (connection, api):
        claims = RestoreClaims(connection.client, options["domain"])
        (held, claim_warnings), existing, target = await asyncio.gather(
            claims.take([item.name for item in backups], hold=not check_mode),  # a check-mode run holds nothing
            existing_streams(api, backups),
            read_target(connection.client, api, options["domain"]),
        )
        refuse_streams_being_restored(held)
        actions = plan_actions(backups, existing, params["if_exists"])
        planned_streams = checked(backups, actions, existing, restore_options)
        await settle_servers_up(
            connection.client, target, max((stream.replicas for stream in planned_streams), default=1)
        )
        refuse_pause_where_unsupported(target, restore_options)
        restore_options.first_seq_after = (0, 0, 0) < target.release < FIRST_SEQ_RESTORED
        refuse_what_cannot_be_restored(problems(target, planned_streams))
        result = planned(backups, actions, existing, safety)
        result["warnings"] += claim_warnings
        if check_mode:
            return result
        run = RestoreRun(connection, api, restore_options, claims.describe(), safety)
        parallel = restore_parallelism(target, params["parallel"], result["warnings"])
        outcome = await run.run(backups, actions, existing, parallel)
    return reported(result, outcome)


def check_inputs(params: dict[str, Any]) -> None:
    check_selection("streams", params["streams"])
    check_range("chunk_size", params["chunk_size"], MIN_RESTORE_CHUNK, MAX_RESTORE_CHUNK, "bytes")
    if params["parallel"] is not None:
        check_range("parallel", params["parallel"], 1, MAX_PARALLEL, "streams at a time")
    check_range("replicas", params["replicas"], 1, MAX_REPLICAS)


def refuse_streams_being_restored(held: dict[str, dict[str, str]]) -> None:
    if held:
        who = "; ".join(f"{name} by {claim.get('owner')} since {claim.get('since')}" for name, claim in held.items())
        raise NatsOpsError(
            f"another restore is restoring {', '.join(sorted(held))} right now ({who}); nothing was restored. "
            "Wait until it has ended (or stop it), then run again",
            being_restored=held,
        )


def checked(
    backups: list[StreamBackup],
    actions: dict[str, RestoreAction],
    existing: dict[str, dict[str, Any]],
    options: RestoreOptions,
) -> list[Planned]:
    """Each stream as the checks before the restore see it."""
    found = []
    for item in backups:
        config = restore_config(item, options)
        found.append(
            Planned(
                name=item.name,
                action=actions[item.name],
                archive=item.archive,
                replicas=int(config.get("num_replicas") or 1),
                placement_cluster=(config.get("placement") or {}).get("cluster"),
                storage=str(config.get("storage") or "file"),
                backup_storage=str(item.backup["config"].get("storage") or "file"),
                bytes=int(item.backup["state"].get("bytes") or 0),
                existing=existing.get(item.name),
            )
        )
    return found


DEFAULT_PARALLEL = 4


def restore_parallelism(target: Target, asked: int | None, warnings: list[str]) -> int:
    """One stream at a time into a standalone server, which crashes restoring several at once; else ``asked``."""
    if target.cluster is not None or target.other_domain:
        return asked or DEFAULT_PARALLEL
    if asked and asked > 1:
        warnings.append(
            f"restoring one stream at a time (parallel: {asked} asked): a standalone nats-server crashes when it "
            "restores several streams at once (an unlocked read of its storage reservation)"
        )
    return 1


def refuse_pause_where_unsupported(target: Target, options: RestoreOptions) -> None:
    if options.pause_until and target.release != (0, 0, 0) and target.release < PAUSE_RELEASE:
        raise NatsOpsError(
            f"pause_consumers needs nats-server 2.11 or later, and the target runs {target.release_text()}; nothing "
            "was restored. Leave out pause_consumers (and stop the applications until you are ready), or restore "
            "into a newer server"
        )


def refuse_what_cannot_be_restored(found: dict[str, str]) -> None:
    if found:
        raise NatsOpsError(
            "nothing was restored, and nothing was deleted: "
            + "; ".join(f"{name}: {problem}" for name, problem in sorted(found.items())),
            refused=found,
        )


def planned(
    backups: list[StreamBackup],
    actions: dict[str, RestoreAction],
    existing: dict[str, dict[str, Any]],
    safety: SafetyOptions,
) -> dict[str, Any]:
    """What is (or in check mode would be) done per stream."""
    entries = []
    for item in backups:
        entry = {
            "stream": item.name,
            "action": actions[item.name].value,
            "messages": int(item.backup["state"].get("messages") or 0),
            "exists": item.name in existing,
        }
        if actions[item.name] is RestoreAction.REPLACE:
            entry["safety_backup_dir"] = str(safety.root)
        entries.append(entry)
    return {
        "changed": any(action is not RestoreAction.SKIP for action in actions.values()),
        "planned": entries,
        "skipped_streams": sorted(name for name, action in actions.items() if action is RestoreAction.SKIP),
        "restored": [],
        "warnings": [
            f"stream {name} is what an earlier restore left unfinished; it will be replaced from the backup"
            for name, action in sorted(actions.items())
            if action is RestoreAction.REDO
        ],
    }


def reported(result: dict[str, Any], outcome: RunOutcome) -> dict[str, Any]:
    result["restored"] = outcome.restored
    for entry in outcome.restored:
        result["warnings"] += stream_warnings(entry)
    if outcome.lost:
        raise NatsOpsError(
            describe_loss(outcome),
            failures=outcome.failures,
            incomplete=outcome.incomplete,
            not_started=outcome.not_started,
            **result,
        )
    if outcome.failures:
        reasons = "; ".join(f"{failure['stream']}: {failure['msg']}" for failure in outcome.failures)
        raise NatsOpsError(
            f"restore failed for {len(outcome.failures)} stream(s): {reasons}", failures=outcome.failures, **result
        )
    return result


def stream_warnings(entry: dict[str, Any]) -> list[str]:
    """What an operator should know about one restored stream."""
    stream = entry["stream"]
    warnings = []
    if entry.get("replicas_absent"):
        warnings.append(
            f"{stream}: replica(s) on {', '.join(entry['replicas_absent'])} were down when the restore ended; they "
            "copy the data when their server returns"
        )
    warnings += source_warnings(stream, entry.get("sources") or [])
    paused = entry.get("paused_consumers") or {}
    for consumer, again in sorted((entry.get("redeliveries") or {}).items()):
        held = f"it is paused until {paused[consumer]}" if consumer in paused else "pause_consumers would hold it back"
        warnings.append(
            f"{stream}: consumer {consumer} delivers again, {again['when']}, what it had delivered between sequences "
            f"{again['from_seq']} and {again['to_seq']} ({again['unacked_at_backup']} messages unacked at backup "
            f"time); {held}"
        )
    if entry.get("retried_after"):
        warnings.append(
            f"{stream}: the server rejected the first attempt's data ({entry['retried_after']}); the second attempt, "
            "to a stream made anew, succeeded. If the server crashed earlier, it may have held old data of that name "
            "on disk without showing the stream: its log says 'checksums do not match'"
        )
    return warnings


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            path={"type": "path", "required": True},
            streams={"type": "list", "elements": "str"},
            if_exists={"type": "str", "choices": list(IF_EXISTS_CHOICES), "default": "fail"},
            replicas={"type": "int"},
            storage={"type": "str", "choices": ["file", "memory"]},
            verify_buckets={"type": "bool", "default": True},
            pause_consumers={"type": "str"},
            cluster={"type": "str"},
            tags={"type": "list", "elements": "str"},
            chunk_size={"type": "int", "default": DEFAULT_RESTORE_CHUNK},
            parallel={"type": "int"},
            safety_backup_dir={"type": "path"},
            keep_safety_backup={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, restore)


if __name__ == "__main__":
    main()
