#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: jetstream_config
short_description: Export the configuration of an account's streams and consumers, or import it, as C(nats backup) did
version_added: 0.1.0
description:
  - A configuration-only backup, without messages, in the layout of the legacy C(nats backup DIR) (jsm.go
    C(BackupJetStreamConfiguration)), for servers that were set up by hand and are to be recreated from
    configuration. To back up messages too, use M(natsops.jetstream.stream_backup).
  - "O(state=exported) writes into the directory O(path) one file per stream, C(stream_<STREAM>.json), and one per
    durable consumer, C(stream_<STREAM>_consumer_<CONSUMER>.json) (ephemeral consumers are left out). Each holds
    C(type) (V(stream) or V(consumer)), C(time), C(configuration) (the configuration as indented JSON, base64
    encoded) and C(checksum) (its sha256). To read one: C(jq -r .configuration FILE | base64 -d)."
  - The server's own C(_nats.*) metadata (its version and API level) is not exported.
  - "An export is written under a temporary name and moved to O(path) when complete. If O(path) already holds an
    export with the same configurations, nothing is written (C(changed=false)); if the configurations differ it is
    replaced. A O(path) that holds anything else is refused and left alone."
  - O(state=imported) reads such a directory (ours or one written by C(nats backup)), verifies every file's
    checksum before anything else, and creates the streams, then the consumers, that do not exist.
  - "Streams and consumers that exist with the same configuration are left alone. If any exists with another
    configuration, the import fails before changing anything, unless O(update_streams=true) (as C(--update-streams)
    of C(nats backup)): then they are updated to the export's configuration. Settings that cannot change in place
    (storage type, ...), or that the server is too old for, fail the import before it starts."
  - If the server refuses a step, what the import did so far is undone (created streams are deleted only while
    they are still empty) and the module fails.
options:
  state:
    description:
      - V(exported) writes the configuration of the account's streams and consumers to O(path).
      - V(imported) creates (and with O(update_streams), updates) them from O(path).
    type: str
    choices: [exported, imported]
    required: true
  path:
    description:
      - The export's directory, on the host that runs the module. Its parent is created if needed.
    type: path
    required: true
  streams:
    description:
      - Streams to export or import, by name or shell-style pattern (V(ORDERS*)); V(all) (or V(*)) for every one.
        A name without pattern characters that is not there is an error.
      - With V(all), an import also takes consumers whose stream is not in the export but exists on the server.
    type: list
    elements: str
    default: [all]
  consumers:
    description:
      - Include the streams' durable consumers.
    type: bool
    default: true
  update_streams:
    description:
      - On import, update the streams and consumers that exist with another configuration, instead of failing.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be written, created or updated, and changes nothing.
  diff_mode:
    support: full
    details: One entry per stream or consumer that changes (or, for an export, per file).
seealso:
  - module: natsops.jetstream.stream
  - module: natsops.jetstream.consumer
  - module: natsops.jetstream.stream_backup
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Export the configuration of every stream and consumer
  natsops.jetstream.jetstream_config:
    context: prod
    state: exported
    path: /srv/backups/nats/config
  delegate_to: localhost
  run_once: true

- name: Recreate them on the new cluster
  natsops.jetstream.jetstream_config:
    servers: ["nats://new1.example.com:4222"]
    creds: /etc/nats/admin.creds
    state: imported
    path: /srv/backups/nats/config
  delegate_to: localhost
  run_once: true

- name: Bring existing streams back to the exported configuration (ORDERS only)
  natsops.jetstream.jetstream_config:
    state: imported
    path: /srv/backups/nats/config
    streams: [ORDERS]
    update_streams: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The export's directory.
  returned: always
  type: str
  sample: /srv/backups/nats/config
files:
  description: The files of the export.
  returned: when O(state=exported)
  type: list
  elements: str
  sample: [stream_ORDERS.json, stream_ORDERS_consumer_SHIP.json]
streams:
  description:
    - When exported, the names of the streams. When imported, one entry per stream with what was (or would be) done
      (C(create), C(update) or C(none)) and the settings that changed.
  returned: always
  type: list
  elements: raw
  sample: [{name: ORDERS, action: create, changes: {}}]
consumers:
  description:
    - When exported, the consumers as C(STREAM > CONSUMER). When imported, one entry per consumer with C(stream),
      C(name), C(action) and C(changes).
  returned: always
  type: list
  elements: raw
  sample: [{stream: ORDERS, name: SHIP, action: none, changes: {}}]
skipped:
  description: What was left out and why (ephemeral consumers, stream templates).
  returned: always
  type: list
  elements: str
  sample: ["consumer ORDERS > tmp1: ephemeral"]
"""

from functools import partial
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_selection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.transfer.config_export import (
    existing_export,
    read_export,
    write_export,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.transfer.config_transfer import (
    apply_import,
    gather_configuration,
    plan_import,
    require_levels,
    select,
    summary,
)


async def export_configuration(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_selection("streams", params["streams"])
    path = Path(params["path"])
    earlier = existing_export(path)  # refuses a path that holds anything else, before connecting
    async with jetstream_session(options) as (_connection, api):
        export = await gather_configuration(api, params["streams"], params["consumers"])
    files = export.files()
    changed = earlier != files
    if changed and not check_mode:
        write_export(path, files)
    result = {
        "changed": changed,
        "path": str(path),
        "files": sorted(files),
        "streams": sorted(export.streams),
        "consumers": [f"{stream} > {name}" for stream, name in sorted(export.consumers)],
        "skipped": export.skipped,
    }
    if diff_mode:
        result["diff"] = file_diffs(earlier or {}, files)
    return result


def file_diffs(earlier: dict[str, Any], files: dict[str, Any]) -> list[dict[str, Any]]:
    """One diff per file that is added, removed or changed, showing the decoded configuration."""
    return [
        {
            "before_header": name,
            "after_header": name,
            "before": (earlier.get(name) or (None, {}))[1],
            "after": (files.get(name) or (None, {}))[1],
        }
        for name in sorted(set(earlier) | set(files))
        if earlier.get(name) != files.get(name)
    ]


async def import_configuration(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    check_selection("streams", params["streams"])
    export = read_export(Path(params["path"]))  # every checksum, before anything else
    chosen = select(export, params["streams"], params["consumers"])
    async with jetstream_session(options) as (connection, api):
        plans = await plan_import(api, chosen, update=params["update_streams"])
        await require_levels(api, connection.client, plans)
        if not check_mode:
            await apply_import(plans)
    result = {
        "changed": any(plan.changed for plan in plans),
        "path": params["path"],
        **summary(plans),
        "skipped": chosen.skipped,
    }
    if diff_mode:
        result["diff"] = [plan.diff() for plan in plans if plan.changed]
    return result


async def export_or_import(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    if params["state"] == "exported":
        return await export_configuration(params, check_mode, diff_mode)
    return await import_configuration(params, check_mode, diff_mode)


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            state={"type": "str", "choices": ["exported", "imported"], "required": True},
            path={"type": "path", "required": True},
            streams={"type": "list", "elements": "str", "default": ["all"]},
            consumers={"type": "bool", "default": True},
            update_streams={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, partial(export_or_import, diff_mode=module._diff))


if __name__ == "__main__":
    main()
