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
  account:
    description: The account label whose snapshots are listed or fetched. Required with O(state=fetched).
    type: str
  snapshot:
    description:
      - With O(state=fetched), the snapshot to take out; V(latest), a snapshot id (or its prefix) or a set time
        (V(20261202T030000Z)).
    type: str
    default: latest
  dest:
    description:
      - With O(state=fetched), the directory the backup set is extracted into. It must not exist, unless it holds
        exactly this snapshot from an earlier run (then nothing changes).
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
    account: APP
    state: fetched
    dest: /var/tmp/nats-restore/APP
  register: fetched

- name: Restore it
  natsops.jetstream.stream_restore:
    path: "{{ fetched.path }}"
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
snapshot:
  description: With O(state=fetched), the snapshot taken out (same keys as in RV(snapshots)).
  returned: when state is fetched
  type: dict
path:
  description: With O(state=fetched), the directory that holds the backup set.
  returned: when state is fetched
  type: str
streams:
  description: With O(state=fetched), the streams in the set, each checked against its manifest.
  returned: when state is fetched and not in check mode
  type: list
  elements: str
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
from ansible_collections.natsops.jetstream.plugins.module_utils.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.restic import (
    Repository,
    RepositorySettings,
    Snapshot,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.restore import (
    find_backups,
    verify_backups,
)

# Written beside the extracted set: which snapshot it is, so that running the task again changes nothing.
FETCHED_MARKER = ".natsops-snapshot.json"


def listed(repository: Repository, params: dict[str, Any]) -> dict[str, Any]:
    snapshots = repository.snapshots(params["account"])
    return {"changed": False, "snapshots": [snapshot.as_dict() for snapshot in snapshots]}


def fetched(repository: Repository, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if not params["account"] or not params["dest"]:
        raise NatsOpsError("state=fetched needs account and dest", reason="bad_arguments")
    snapshot = repository.find(params["account"], params["snapshot"])
    dest = Path(params["dest"])
    result = {"snapshot": snapshot.as_dict(), "path": str(dest)}
    if already_fetched(dest, snapshot):
        return {"changed": False, **result, "streams": [item.name for item in find_backups(dest)]}
    if dest.exists() or dest.is_symlink():
        raise NatsOpsError(
            f"{dest} exists and is not this snapshot's extraction: choose a new directory (nothing was changed)",
            reason="target_exists",
        )
    if check_mode:
        return {"changed": True, **result}
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        extracted = staging / "set"
        repository.restore(snapshot, extracted)
        backups = find_backups(extracted)
        verify_backups(backups)  # every archive against its manifest, before anyone restores from it
        (extracted / FETCHED_MARKER).write_text(json.dumps(snapshot.as_dict()))
        os.rename(extracted, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"changed": True, **result, "streams": [item.name for item in backups]}


def already_fetched(dest: Path, snapshot: Snapshot) -> bool:
    try:
        return json.loads((dest / FETCHED_MARKER).read_text()).get("id") == snapshot.id
    except (OSError, ValueError):
        return False


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "str", "required": True},
            "password_file": {"type": "path"},
            "password": {"type": "str", "no_log": True},
            "env": {"type": "dict", "default": {}, "no_log": True},
            "sftp_command": {"type": "str"},
            "account": {"type": "str"},
            "snapshot": {"type": "str", "default": "latest"},
            "dest": {"type": "path"},
            "state": {"type": "str", "choices": ["listed", "fetched"], "default": "listed"},
            "timeout": {"type": "float", "default": 3600},
        },
        required_one_of=[("password_file", "password")],
        mutually_exclusive=[("password_file", "password")],
        required_if=[("state", "fetched", ("account", "dest"))],
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
