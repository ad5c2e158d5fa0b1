#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stream_backup
short_description: Back up JetStream streams to disk, as C(nats stream backup) does
version_added: 0.1.0
description:
  - Takes a snapshot of one stream, several streams, or every stream of an account, and writes it to O(path)
    in the layout of the C(nats) CLI, so that C(nats stream restore) / C(nats account restore) can restore it,
    and so can M(natsops.jetstream.stream_restore).
  - "One stream (O(stream)): C(PATH/backup.json) and C(PATH/stream.tar.s2).
    Several (O(streams)): C(PATH/<stream>/backup.json) and C(PATH/<stream>/stream.tar.s2), as
    C(nats account backup) writes them."
  - C(backup.json) holds the stream configuration and state exactly as the server returned them.
    Beside it, C(manifest.json) records sha256 checksums and sizes of both files, consumer positions, the
    server's version and API level, the times and the collection version. M(natsops.jetstream.stream_restore)
    checks it before touching a server; the C(nats) CLI ignores it.
  - The data is streamed to disk as it arrives, so memory use does not grow with the size of the stream.
  - The backup is written under a hidden temporary name and renamed to O(path) only when every stream is
    complete and checksummed. On any failure (a dropped chunk, an error from the server, a stall, a lost
    connection) nothing is left at O(path).
  - If O(path) already holds a finished backup, nothing is done (C(changed=false)) unless O(force=true).
    If it holds anything else, the module fails and leaves it alone.
  - Memory-storage streams are backed up from nats-server 2.15 on (older servers cannot snapshot them). Streams
    that an interrupted M(natsops.jetstream.stream_restore) left half-made are never backed up (their data is
    partial). Naming such a stream in O(stream) fails; with O(streams) it is skipped with a warning.
options:
  stream:
    description:
      - Name of the one stream to back up. Writes the single-stream layout.
      - Mutually exclusive with O(streams).
    type: str
  streams:
    description:
      - Streams to back up, by name or shell-style pattern (V(ORDERS*)); V(all) (or V(*)) for every stream of
        the account. Writes the account layout, one directory per stream.
      - A name without pattern characters that is not in the account is an error.
      - Mutually exclusive with O(stream).
    type: list
    elements: str
  path:
    description:
      - Directory to write the backup to, on the host that runs the module. Its parent is created if needed.
    type: path
    required: true
  force:
    description:
      - Replace a finished backup that already exists at O(path). The old one is removed only after the new one is
        complete.
      - Only a finished backup of the same kind (one stream's for O(stream), an account's for O(streams)) that
        holds nothing else is ever replaced. Anything else at O(path) (other files or folders beside or inside a
        backup, an unfinished backup, a regular file, a symlink) is refused and left untouched, with or without
        O(force).
    type: bool
    default: false
  consumers:
    description:
      - Include the streams' consumers and their positions (natscli C(--consumers)).
    type: bool
    default: true
  check:
    description:
      - Have the server check the stream's data before the snapshot (natscli C(--check), C(jsck)). Slower.
    type: bool
    default: false
  chunk_size:
    description:
      - Size in bytes of the chunks the server sends, from 1024 to 1048576.
    type: int
    default: 131072
  window_size:
    description:
      - Bytes the server may send before it waits for acknowledgements, from 1024 to 33554432 (32 MiB). Sent only
        to servers whose JetStream API level knows it (3 and later, nats-server 2.11+); otherwise ignored with a
        warning.
    type: int
  parallel:
    description:
      - How many streams to back up at the same time, from 1 to 64. Each stream has at most one snapshot running.
    type: int
    default: 4
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports the streams that would be backed up and writes nothing.
  diff_mode:
    support: none
seealso:
  - module: natsops.jetstream.stream_restore
  - name: JetStream disaster recovery
    description: The NATS documentation on backing up and restoring streams.
    link: https://docs.nats.io/running-a-nats-service/nats_admin/jetstream_admin/disaster_recovery
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Back up one stream
  natsops.jetstream.stream_backup:
    servers: ["nats://nats1.example.com:4222"]
    creds: /etc/nats/backup.creds
    stream: ORDERS
    path: /srv/backups/nats/ORDERS
  delegate_to: localhost
  run_once: true

- name: Back up every stream of the account into a dated directory
  natsops.jetstream.stream_backup:
    context: prod
    streams: all
    path: "/srv/backups/nats/{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}"
  delegate_to: localhost
  run_once: true
  register: backup

- name: Back up the ORDERS and EVENTS streams, replacing an older backup at the same path
  natsops.jetstream.stream_backup:
    streams: [ORDERS, "EVENTS*"]
    path: /srv/backups/nats/latest
    force: true
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: Where the backup is.
  returned: always
  type: str
  sample: /srv/backups/nats/ORDERS
backups:
  description: One entry per stream backed up.
  returned: success, when a backup was taken
  type: list
  elements: dict
  contains:
    stream:
      description: Stream name.
      type: str
    path:
      description: The stream's backup directory.
      type: str
    bytes:
      description: Size of C(stream.tar.s2).
      type: int
    sha256:
      description: sha256 of C(stream.tar.s2).
      type: str
    messages:
      description: Messages in the stream when the snapshot was taken.
      type: int
    first_seq:
      description: First sequence in the snapshot.
      type: int
    last_seq:
      description: Last sequence in the snapshot.
      type: int
    consumers:
      description: Names of the consumers whose positions were recorded.
      type: list
      elements: str
    consumers_included:
      description: Whether consumers were included (O(consumers)).
      type: bool
    archive_format:
      description: >-
        V(v1) (a tar, nats-server before 2.15) or V(v2) (C(NATSARC1), nats-server 2.15+, which only 2.15+ restores).
        Also recorded in C(manifest.json).
      type: str
    bucket:
      description: >-
        For a key-value (C(KV_*)) or object store (C(OBJ_*)) bucket, its C(kind) (V(kv) or V(object)) and C(name),
        else null. The manifest records the bucket's view, read right after the snapshot (every key's revisions
        with operation, TTL and a digest of the value; every object's name, size, chunks and digest), which
        M(natsops.jetstream.stream_restore) compares after restoring. If the bucket changed while it was read, no
        view is recorded, with a warning.
      type: dict
    chunks:
      description: Chunks received.
      type: int
    duration:
      description: Seconds the stream's backup took.
      type: float
    throughput_mib_s:
      description: Backup speed of the stream's data, in MiB/s.
      type: float
  sample:
    - stream: ORDERS
      path: /srv/backups/nats/ORDERS
      bytes: 1184166
      sha256: 5f7c2e...
      messages: 5000
      first_seq: 1
      last_seq: 5000
      consumers: [ALL, NEW]
      consumers_included: true
      chunks: 10
      duration: 0.12
      throughput_mib_s: 9.4
planned:
  description: The streams that are (or, in check mode, would be) backed up, as the server reports them.
  returned: always, except when a finished backup already exists at O(path)
  type: list
  elements: dict
  sample:
    - {stream: ORDERS, messages: 5000, bytes: 1184166, replicas: 3, consumers: 2}
skipped_streams:
  description: Streams left out, with the reason.
  returned: always
  type: list
  elements: dict
  sample:
    - {stream: CACHE, reason: memory storage}
total_bytes:
  description: Bytes written for all streams.
  returned: success, when a backup was taken
  type: int
duration:
  description: Seconds the whole backup took.
  returned: success, when a backup was taken
  type: float
"""

import time
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    resolve_options,
    run_procedure,
    server_release,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import (
    MAX_PARALLEL,
    check_name,
    check_range,
    check_selection,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup import (
    ExistingBackup,
    existing_backup,
    plan_backup,
    run_backup,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.snapshot import (
    DEFAULT_CHUNK_SIZE,
    MAX_WINDOW_SIZE,
    MIN_WINDOW_SIZE,
    SnapshotOptions,
    validate_chunk_size,
)


async def back_up(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_name(params["stream"], where="in stream")
    check_selection("streams", params["streams"])
    validate_chunk_size(params["chunk_size"])
    check_range("window_size", params["window_size"], MIN_WINDOW_SIZE, MAX_WINDOW_SIZE, "bytes")
    check_range("parallel", params["parallel"], 1, MAX_PARALLEL, "streams at a time")
    path = Path(params["path"])
    found = existing_backup(path, single=bool(params["stream"]))
    if found is ExistingBackup.OTHER:
        raise NatsOpsError(
            f"{path} exists and is not a finished {'stream' if params['stream'] else 'account'} backup; it was "
            "left untouched (force replaces only a finished backup of the same kind, holding nothing else). "
            "Choose another path, or move what is there away",
            existing="other",
        )
    if found is ExistingBackup.FINISHED and not params["force"]:
        return {
            "changed": False,
            "path": str(path),
            "skipped_streams": [],
            "msg": f"a finished backup already exists at {path}; set force: true to take a new one",
        }

    snapshot_options = SnapshotOptions(
        consumers=params["consumers"],
        check=params["check"],
        chunk_size=params["chunk_size"],
        window_size=params["window_size"],
        stall_timeout=options["timeout"],
    )
    async with jetstream_session(options) as (connection, api):
        plan = await plan_backup(api, path, params["stream"], params["streams"], server_release(connection.client))
        result: dict[str, Any] = {
            "changed": True,
            "path": str(path),
            "planned": plan.summary(),
            "skipped_streams": plan.skipped,
            "warnings": list(plan.warnings),
        }
        if check_mode:
            return result
        started = time.monotonic()
        backups = await run_backup(connection, api, plan, snapshot_options, params["parallel"], params["force"])
    result["backups"] = [backup.as_dict() for backup in backups]
    result["warnings"] += [warning for backup in backups for warning in backup.warnings]
    result["total_bytes"] = sum(backup.bytes for backup in backups)
    result["duration"] = round(time.monotonic() - started, 3)
    return result


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            stream={"type": "str"},
            streams={"type": "list", "elements": "str"},
            path={"type": "path", "required": True},
            force={"type": "bool", "default": False},
            consumers={"type": "bool", "default": True},
            check={"type": "bool", "default": False},
            chunk_size={"type": "int", "default": DEFAULT_CHUNK_SIZE},
            window_size={"type": "int"},
            parallel={"type": "int", "default": 4},
        ),
        mutually_exclusive=[("stream", "streams")],
        required_one_of=[("stream", "streams")],
        supports_check_mode=True,
    )
    run_procedure(module, back_up)


if __name__ == "__main__":
    main()
