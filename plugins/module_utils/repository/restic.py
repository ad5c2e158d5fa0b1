# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""A restic repository as the off-site store of backup sets: restic does the encryption, deduplication and
retention; this file runs its commands and turns their outcomes into typed failures.

The password reaches restic only as a file (RESTIC_PASSWORD_FILE) and backend credentials only through the
environment (read from an env file), so neither appears in a process list or a log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

TAG = "natsops"
ACCOUNT_TAG = "account:{label}"
SET_TAG = "set:{stamp}"

# Exit codes of restic 0.17 and later; older releases (Debian bookworm has 0.14) exit 1 for every fatal error
# and say which in their last "Fatal:" line, so for them the kind is read from that line (see _kind_of).
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12
# restic backup: the snapshot was written, but some files could not be read. Such a snapshot is partial and
# must never become "latest": it is forgotten again at once.
EXIT_INCOMPLETE_SNAPSHOT = 3


class Failure(str, Enum):
    """Why a restic command failed."""

    UNREACHABLE = "repository_unreachable"  # the backend could not be reached or opened
    MISSING = "repository_missing"  # reachable, but no repository there (not initialised?)
    WRONG_PASSWORD = "wrong_password"
    LOCKED = "repository_locked"  # another restic process holds an exclusive lock
    FAILED = "failed"  # anything else; restic's message says what


class ResticError(NatsOpsError):
    """A restic command failed; ``failure`` says why, for callers and metrics to decide on."""

    def __init__(self, msg: str, failure: Failure, **details: Any) -> None:
        super().__init__(msg, reason=failure.value, **details)
        self.failure = failure


# What restic 0.14 to 0.16 write in their final "Fatal:" line for each failure (lower case); newer ones also
# set an exit code, which is looked at first.
_FATAL_MARKERS: list[tuple[str, Failure]] = [
    ("wrong password", Failure.WRONG_PASSWORD),
    ("unable to open config file", Failure.MISSING),
    ("unable to create lock", Failure.LOCKED),
    ("repository is already locked", Failure.LOCKED),
    ("unable to open repository", Failure.UNREACHABLE),
    ("create repository at", Failure.UNREACHABLE),
]


_BY_EXIT_CODE = {
    EXIT_NO_REPOSITORY: Failure.MISSING,
    EXIT_LOCKED: Failure.LOCKED,
    EXIT_WRONG_PASSWORD: Failure.WRONG_PASSWORD,
}


def _kind_of(returncode: int, stderr: str) -> Failure:
    by_code = _BY_EXIT_CODE
    if returncode in by_code:
        return by_code[returncode]
    fatal = " ".join(line for line in stderr.lower().splitlines() if line.startswith("fatal:"))
    for marker, failure in _FATAL_MARKERS:
        if marker in fatal:
            return failure
    return Failure.FAILED


@dataclass
class RepositorySettings:
    """Where the repository is and how to open it.

    ``url`` is restic's repository string (a path, ``sftp:user@host:/path``, ``s3:...``, ``rest:...``);
    ``password_file`` holds the repository password; ``env_file`` (optional) holds ``KEY=value`` lines for the
    backend (AWS_ACCESS_KEY_ID, ...); ``sftp_command`` replaces restic's ssh command for SFTP (a key, a port).
    """

    url: str
    password_file: str
    env_file: str | None = None
    sftp_command: str | None = None
    cache_dir: str | None = None
    restic: str = "restic"
    host: str = "natsops"
    # Stream archives are S2-compressed already: restic's zstd saves nothing on them and costs 15% more CPU
    # (bench/repository.py). "auto" or "max" for a repository that also holds other data.
    compression: str = "off"
    extra_options: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepositorySettings:
        known = {key: data[key] for key in cls.__dataclass_fields__ if data.get(key) is not None}
        return cls(**known)


@dataclass
class Snapshot:
    id: str
    short_id: str
    time: str
    tags: list[str]
    paths: list[str]

    def tag_value(self, prefix: str) -> str | None:
        for tag in self.tags:
            if tag.startswith(prefix + ":"):
                return tag.split(":", 1)[1]
        return None

    @property
    def account(self) -> str | None:
        return self.tag_value("account")

    @property
    def set_stamp(self) -> str | None:
        return self.tag_value("set")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.time,
            "account": self.account,
            "set": self.set_stamp,
            "tags": self.tags,
        }


@dataclass
class Retention:
    """restic's --keep-* policy; a field left at 0 is not passed."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def arguments(self) -> list[str]:
        chosen = [(name, value) for name, value in vars(self).items() if value]
        return [argument for name, value in chosen for argument in (f"--keep-{name}", str(value))]

    @property
    def keeps_everything(self) -> bool:
        return not any(vars(self).values())


class Repository:
    """One restic repository, opened with its settings; every method runs one restic command."""

    def __init__(self, settings: RepositorySettings, timeout: float | None = None) -> None:
        self.settings = settings
        self.timeout = timeout

    # -- queries --------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when a repository opens with the password; False when none is there. Other failures raise."""
        try:
            self._run(["cat", "config"])
        except ResticError as exc:
            if exc.failure is Failure.MISSING:
                return False
            raise
        return True

    def snapshots(self, account: str | None = None) -> list[Snapshot]:
        """Snapshots of natsops backup sets, oldest first (restic writes a snapshot only once all its data is
        stored: an upload that did not finish leaves none)."""
        wanted_tags = TAG if account is None else f"{TAG},{ACCOUNT_TAG.format(label=account)}"  # both tags
        arguments = ["snapshots", "--json", "--tag", wanted_tags]
        found = json.loads(self._run(arguments).stdout or "[]") or []
        snapshots = [
            Snapshot(
                id=item["id"],
                short_id=item.get("short_id") or item["id"][:8],
                time=item["time"],
                tags=list(item.get("tags") or []),
                paths=list(item.get("paths") or []),
            )
            for item in found
        ]
        return sorted(snapshots, key=lambda snapshot: snapshot.time)

    def find_set(self, accounts: list[str], wanted: str = "latest") -> dict[str, Snapshot]:
        """One snapshot per account, all of the same backup set: the newest set that holds every account
        (``latest``), the set of that time, or (one account only) the snapshot of that id or id prefix."""
        by_account = {account: self.snapshots(account) for account in accounts}
        empty = [account for account, snapshots in by_account.items() if not snapshots]
        if empty:
            raise NatsOpsError(
                f"the repository holds no backup of account(s) {', '.join(empty)}: run a backup first, or check "
                "the repository and the account labels",
                reason="no_snapshot",
            )
        if wanted != "latest" and len(accounts) == 1:
            with_id = [item for item in by_account[accounts[0]] if item.id.startswith(wanted)]
            if len(with_id) == 1:
                return {accounts[0]: with_id[0]}
            if len(with_id) > 1:
                raise NatsOpsError(
                    f"snapshot id {wanted!r} is ambiguous: {len(with_id)} snapshots of account {accounts[0]} start "
                    f"with it ({', '.join(item.id[:12] for item in with_id)}). Give more of the id, or the set's time",
                    reason="ambiguous_snapshot",
                    matching=[item.id for item in with_id],
                )
        sets = {
            account: {item.set_stamp: item for item in snapshots if item.set_stamp}
            for account, snapshots in by_account.items()
        }
        common = sorted(set.intersection(*(set(stamps) for stamps in sets.values())))
        chosen = common[-1] if wanted == "latest" and common else wanted
        if chosen not in common:
            newest = ", ".join(f"{account}: {snapshots[-1].set_stamp}" for account, snapshots in by_account.items())
            raise NatsOpsError(
                (
                    f"no backup set holds every account ({', '.join(accounts)})"
                    if wanted == "latest"
                    else f"no backup set {wanted!r} holds every account ({', '.join(accounts)})"
                )
                + f"; each account's newest: {newest}. Name a set, or fewer accounts",
                reason="no_snapshot",
            )
        return {account: stamps[chosen] for account, stamps in sets.items()}

    def size(self) -> int:
        """Bytes the repository stores (after deduplication, compression and encryption overhead)."""
        return int(json.loads(self._run(["stats", "--json", "--mode", "raw-data"]).stdout).get("total_size") or 0)

    # -- changes --------------------------------------------------------------------------------------------
    def init(self) -> None:
        self._run(["init"])

    def backup(self, directory: Path, account: str, stamp: str) -> dict[str, Any]:
        """Store ``directory``'s contents (at the snapshot's root) as one snapshot; restic's summary, with the
        snapshot's id. Nothing is a snapshot until restic has stored everything."""
        tags = [TAG, ACCOUNT_TAG.format(label=account), SET_TAG.format(stamp=stamp)]
        arguments = ["backup", "--json", "--host", self.settings.host, "--compression", self.settings.compression]
        for tag in tags:
            arguments += ["--tag", tag]
        completed = self._run([*arguments, "."], cwd=directory, accepted=(0, EXIT_INCOMPLETE_SNAPSHOT))
        summary: dict[str, Any] = {}
        for line in completed.stdout.splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("message_type") == "summary":
                summary = message
        if completed.returncode == EXIT_INCOMPLETE_SNAPSHOT:
            if summary.get("snapshot_id"):
                self._run(["forget", summary["snapshot_id"]])
            raise ResticError(
                f"restic could not read every file of {directory}; its partial snapshot was removed: "
                f"{_last_lines(completed.stderr)}",
                Failure.FAILED,
            )
        if not summary.get("snapshot_id"):
            raise ResticError("restic backup ended without naming a snapshot", Failure.FAILED)
        return summary

    def forget(self, account: str, retention: Retention, prune: bool = True) -> list[str]:
        """Apply the retention policy to one account's snapshots; the ids removed."""
        if retention.keeps_everything:
            return []
        arguments = ["forget", "--json", "--group-by", "host", "--tag", f"{TAG},{ACCOUNT_TAG.format(label=account)}"]
        arguments += retention.arguments()
        if prune:
            arguments.append("--prune")
        removed: list[str] = []
        for line in self._run(arguments).stdout.splitlines():
            try:
                groups = json.loads(line)
            except ValueError:
                continue  # --prune adds its own lines (progress, statistics) after the JSON
            for group in groups if isinstance(groups, list) else []:
                removed += [item["id"] for item in group.get("remove") or []]
        return removed

    def check(self, read_data_subset: str | None) -> str:
        arguments = ["check"]
        if read_data_subset:
            arguments += ["--read-data-subset", read_data_subset]
        return self._run(arguments).stdout

    def restore(self, snapshot: Snapshot, target: Path) -> None:
        """Extract a snapshot into ``target``, which must not exist yet (restic would merge into it)."""
        if target.exists():
            raise NatsOpsError(f"{target} exists: restore a snapshot into a new directory", reason="target_exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        self._run(["restore", snapshot.id, "--target", str(target)])

    # -- running restic -------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """restic's environment: the backend's variables from the env file, then the repository and the
        password file; never the password itself."""
        settings = self.settings
        environment = {key: value for key, value in os.environ.items() if not key.startswith("RESTIC_")}
        if settings.env_file:
            environment.update(read_env_file(Path(settings.env_file)))
        environment["RESTIC_REPOSITORY"] = settings.url
        environment["RESTIC_PASSWORD_FILE"] = settings.password_file
        if settings.cache_dir:
            environment["RESTIC_CACHE_DIR"] = settings.cache_dir
        return environment

    def _run(
        self, arguments: list[str], cwd: Path | None = None, accepted: tuple[int, ...] = (0,)
    ) -> subprocess.CompletedProcess[str]:
        executable = shutil.which(self.settings.restic)
        if executable is None:
            raise NatsOpsError(
                f"restic not found ({self.settings.restic}): install Debian's restic package on this host",
                reason="restic_missing",
            )
        command = [executable]
        if self.settings.sftp_command:
            command += ["-o", f"sftp.command={self.settings.sftp_command}"]
        command += [*self.settings.extra_options, *arguments]
        try:
            completed = subprocess.run(
                command,
                cwd=cwd,
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ResticError(
                f"restic {arguments[0]} did not finish within {self.timeout:g}s", Failure.UNREACHABLE
            ) from None
        if completed.returncode not in accepted:
            failure = _kind_of(completed.returncode, completed.stderr)
            raise ResticError(
                f"restic {arguments[0]} failed ({_ADVICE[failure]}): {_last_lines(completed.stderr)}",
                failure,
                restic_exit_code=completed.returncode,
            )
        return completed


_ADVICE = {
    Failure.UNREACHABLE: "the repository could not be reached: check the backend, the network and its credentials",
    Failure.MISSING: "no repository at that location: initialise it (the backup_host role does) or fix the URL",
    Failure.WRONG_PASSWORD: "the repository password is wrong: check the password file",
    Failure.LOCKED: "another restic process holds the repository's lock: wait for it, or remove a stale lock with "
    "'restic unlock'",
    Failure.FAILED: "see restic's message",
}


def _last_lines(text: str, count: int = 4) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "(no message)"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (blank lines and ``#`` comments ignored; no shell quoting)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip().isidentifier():
            raise NatsOpsError(f"{path} line {number} is not KEY=value", reason="bad_env_file")
        values[key.strip()] = value
    return values
