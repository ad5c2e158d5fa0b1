#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_repository
short_description: List the backup sets of a restic repository, or take one out to restore it
version_added: 0.1.0
description:
  - "Reads the encrypted repository that the C(natsops.jetstream.backup_host) role's scheduled backups fill
    (U(https://restic.net), Debian's C(restic) package, must be installed where the module runs). Each backup
    set is one restic snapshot per account, tagged C(natsops), C(account:LABEL) and C(set:TIME)."
  - "O(state=listed) lists the snapshots of an account (or of every account). O(state=fetched) extracts one
    snapshot, the latest or the one named by O(snapshot), into O(dest) and checks every stream archive in it
    against its manifest before returning, so that M(natsops.jetstream.stream_restore) gets a backup directory
    (C(STREAM/backup.json), C(STREAM/stream.tar.s2)) known to be whole. The same layout C(nats account restore)
    takes."
  - "Only finished uploads are snapshots: restic writes a snapshot after all its data is stored, so a backup cut
    short is never listed, nor taken as the latest."
  - "The repository password is read from a file (O(password_file)) or given as O(password), which the module
    writes to a private temporary file for restic: it never appears in a process list or a log. Backend
    credentials (O(env)) reach restic through its environment."
  - Runs where restic is installed and the repository is reachable, usually the backup host or the controller.
options:
  repository:
    description: The restic repository, as restic names it (a path, V(sftp:user@host:/path), V(s3:...), V(rest:...)).
    type: str
    required: true
  password_file:
    description: A file holding the repository password. One of O(password_file) and O(password) is required.
    type: path
  password:
    description: The repository password (from Ansible Vault).
    type: str
  env:
    description: Environment variables for the backend (V(AWS_ACCESS_KEY_ID), V(AWS_SECRET_ACCESS_KEY), ...).
    type: dict
    default: {}
  sftp_command:
    description: The ssh command restic runs for an SFTP repository (a key, a port, host key checking).
    type: str
  accounts:
    description:
      - The account labels whose snapshots are listed (default every account) or fetched (required).
    type: list
    elements: str
    aliases: [account]
  snapshot:
    description:
      - With O(state=fetched), the backup set to take out. V(latest) is the newest set that holds every account
        of O(accounts) (a set in which one account failed is passed over, so that the accounts come back from
        the same point in time); a set time (V(20261202T030000Z)) names one; with a single account, a snapshot
        id (or its prefix) too.
    type: str
    default: latest
  dest:
    description:
      - With O(state=fetched), the directory the set is extracted into, laid out as the C(natsops.jetstream.backup)
        playbook writes a set, C(DEST/ACCOUNT/STREAM/...) and C(DEST/summary.json), which the
        C(natsops.jetstream.restore) playbook takes. It must not exist, unless it holds exactly this set of
        snapshots from an earlier run (then nothing changes).
    type: path
  state:
    description: V(listed) or V(fetched).
    type: str
    choices: [listed, fetched]
    default: listed
  timeout:
    description: Seconds each restic command may take.
    type: float
    default: 3600
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: With O(state=fetched), names the snapshot that would be taken out, and extracts nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: natsops.jetstream.stream_restore
  - name: restic documentation
    description: Repositories, backends and their environment variables.
    link: https://restic.readthedocs.io/
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Take the latest backup of APP out of the repository
  natsops.jetstream.backup_repository:
    repository: sftp:restic@backup.example.net:/srv/restic/nats
    password: "{{ vault_restic_password }}"
    accounts: [APP]
    state: fetched
    dest: /var/tmp/nats-restore/latest
  register: fetched

- name: Restore it
  natsops.jetstream.stream_restore:
    path: "{{ fetched.path }}/APP"
    context: prod-app

- name: List the snapshots of every account
  natsops.jetstream.backup_repository:
    repository: s3:https://s3.example.net/nats-backups
    password_file: /etc/natsops-backup/repository.password
    env:
      AWS_ACCESS_KEY_ID: "{{ vault_s3_key }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_s3_secret }}"
  check_mode: false
  register: listed
"""

RETURN = r"""
snapshots:
  description: With O(state=listed), the snapshots found, oldest first.
  returned: when state is listed
  type: list
  elements: dict
  sample:
    - {id: 2fbf3862b9cd..., short_id: 2fbf3862, time: "2026-12-02T03:00:12Z", account: APP,
       set: 20261202T030000Z, tags: [natsops, "account:APP", "set:20261202T030000Z"]}
snapshots_fetched:
  description: With O(state=fetched), the snapshot taken out for each account (same keys as in RV(snapshots)).
  returned: when state is fetched
  type: dict
set:
  description: With O(state=fetched), the time of the backup set taken out.
  returned: when state is fetched
  type: str
  sample: 20261202T030000Z
path:
  description: With O(state=fetched), the directory that holds the set (one directory per account in it).
  returned: when state is fetched
  type: str
streams:
  description: With O(state=fetched), the streams of each account, each checked against its manifest.
  returned: when state is fetched and not in check mode
  type: dict
  sample: {APP: [ORDERS, KV_config]}
reason:
  description: On failure, why, as a code (V(repository_unreachable), V(repository_missing), V(wrong_password),
    V(repository_locked), V(no_snapshot), V(ambiguous_snapshot), V(target_exists), V(failed)).
  returned: on failure
  type: str
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import (
    find_backups,
    verify_backups,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.repository.restic import (
    Repository,
    RepositorySettings,
    Snapshot,
)

# The set's summary, as the backup playbook writes one; it also tells which snapshots a directory holds, so
# that running the task again changes nothing.
SUMMARY = "summary.json"


def listed(repository: Repository, params: dict[str, Any]) -> dict[str, Any]:
    if params["accounts"]:
        snapshots = [item for account in params["accounts"] for item in repository.snapshots(account)]
    else:
        snapshots = repository.snapshots()
    return {"changed": False, "snapshots": [item.as_dict() for item in sorted(snapshots, key=lambda item: item.time)]}


def fetched(repository: Repository, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    chosen = repository.find_set(params["accounts"], params["snapshot"])
    dest = Path(params["dest"])
    stamp = next(iter(chosen.values())).set_stamp or ""
    result = {"snapshots_fetched": {label: item.as_dict() for label, item in chosen.items()}, "set": stamp}
    result["path"] = str(dest)
    if holds(dest, chosen):
        return {"changed": False, **result, "streams": streams_in(dest, chosen)}
    if dest.exists() or dest.is_symlink():
        raise NatsOpsError(
            f"{dest} exists and is not this set's extraction: choose a new directory (nothing was changed)",
            reason="target_exists",
        )
    if check_mode:
        return {"changed": True, **result}
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        extracted = staging / "set"
        streams = {}
        for label, snapshot in chosen.items():
            repository.restore(snapshot, extracted / label)
            backups = find_backups(extracted / label)
            verify_backups(backups)  # every archive against its manifest, before anyone restores from it
            streams[label] = [item.name for item in backups]
        (extracted / SUMMARY).write_text(json.dumps(summary(dest, stamp, chosen, streams), indent=2))
        os.rename(extracted, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"changed": True, **result, "streams": streams}


def summary(dest: Path, stamp: str, chosen: dict[str, Snapshot], streams: dict[str, list[str]]) -> dict[str, Any]:
    """What the restore playbook reads of a set: its accounts and when it was taken."""
    started = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z" if stamp else None
    return {
        "backup": str(dest),
        "started": started,
        "finished": max(item.time for item in chosen.values()),
        "source": "repository",
        "accounts": {
            label: {"path": str(dest / label), "snapshot": chosen[label].id, "streams": streams[label]}
            for label in chosen
        },
    }


def holds(dest: Path, chosen: dict[str, Snapshot]) -> bool:
    try:
        accounts = json.loads((dest / SUMMARY).read_text()).get("accounts") or {}
    except (OSError, ValueError):
        return False
    return {label: entry.get("snapshot") for label, entry in accounts.items()} == {
        label: item.id for label, item in chosen.items()
    }


def streams_in(dest: Path, chosen: dict[str, Snapshot]) -> dict[str, list[str]]:
    return {label: [item.name for item in find_backups(dest / label)] for label in chosen}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "str", "required": True},
            "password_file": {"type": "path"},
            "password": {"type": "str", "no_log": True},
            "env": {"type": "dict", "default": {}, "no_log": True},
            "sftp_command": {"type": "str"},
            "accounts": {"type": "list", "elements": "str", "aliases": ["account"]},
            "snapshot": {"type": "str", "default": "latest"},
            "dest": {"type": "path"},
            "state": {"type": "str", "choices": ["listed", "fetched"], "default": "listed"},
            "timeout": {"type": "float", "default": 3600},
        },
        required_one_of=[("password_file", "password")],
        mutually_exclusive=[("password_file", "password")],
        required_if=[("state", "fetched", ("accounts", "dest"))],
        supports_check_mode=True,
    )
    params = module.params
    with tempfile.TemporaryDirectory(prefix="natsops-restic-") as private:
        try:
            repository = open_repository(params, Path(private))
            if params["state"] == "listed":
                result = listed(repository, params)
            else:
                result = fetched(repository, params, module.check_mode)
        except NatsOpsError as exc:
            module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


def open_repository(params: dict[str, Any], private: Path) -> Repository:
    """The repository, with the password and backend variables in files only this process can read."""
    password_file = params["password_file"]
    if params["password"] is not None:
        password_file = str(private / "password")
        Path(password_file).touch(mode=0o600)
        Path(password_file).write_text(params["password"] + "\n")
    env_file = None
    if params["env"]:
        env_file = str(private / "env")
        Path(env_file).touch(mode=0o600)
        Path(env_file).write_text("".join(f"{key}={value}\n" for key, value in params["env"].items()))
    settings = RepositorySettings(
        url=params["repository"],
        password_file=password_file,
        env_file=env_file,
        sftp_command=params["sftp_command"],
    )
    return Repository(settings, timeout=params["timeout"])


if __name__ == "__main__":
    main()
