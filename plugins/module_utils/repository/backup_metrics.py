# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""What the scheduled backups tell Prometheus: a node_exporter textfile-collector file, rewritten whole after
every run, from a small state file that remembers what a failed run must not forget (the last success)."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.files import write_atomically

PREFIX = "natsops_backup"


@dataclass
class BackupState:
    """What the metrics are made of; kept as JSON between runs."""

    last_attempt: float = 0.0
    last_set: str = ""  # the last run's set time: the next run's must differ (a set is named by it)
    last_attempt_success: bool = False
    last_attempt_reason: str = ""  # a failure code (restic's or natsops'), empty after a success
    last_success: float = 0.0
    last_skipped: float = 0.0  # a run that found another one holding the lock
    duration_seconds: float = 0.0
    bytes: int = 0
    streams: int = 0
    repository_up: bool = False
    repository_size_bytes: int = 0
    account_last_success: dict[str, float] = field(default_factory=dict)
    account_snapshots: dict[str, int] = field(default_factory=dict)
    verify_last_attempt: float = 0.0
    verify_last_success: float = 0.0
    verify_last_attempt_success: bool = False
    verify_last_reason: str = ""

    @classmethod
    def load(cls, path: Path) -> BackupState:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", 0o600)


def render(state: BackupState) -> str:
    """The textfile collector's format: HELP, TYPE and samples of every metric."""
    lines: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {PREFIX}_{name} {help_text}")
        lines.append(f"# TYPE {PREFIX}_{name} gauge")
        for labels, value in samples:
            shown = ",".join(f'{key}="{_escape(value_)}"' for key, value_ in sorted(labels.items()))
            sample = _number(value)
            lines.append(f"{PREFIX}_{name}{{{shown}}} {sample}" if shown else f"{PREFIX}_{name} {sample}")

    plain = [
        ("last_attempt_timestamp_seconds", "When the last backup run ended.", state.last_attempt),
        ("last_success_timestamp_seconds", "When the last fully successful backup run ended.", state.last_success),
        ("last_skipped_timestamp_seconds", "When a run last found another one running.", state.last_skipped),
        ("duration_seconds", "How long the last backup run took.", state.duration_seconds),
        ("bytes", "Bytes of stream archives the last successful run backed up.", state.bytes),
        ("streams", "Streams the last successful run backed up.", state.streams),
        ("repository_up", "1 when the repository answered at the last run, else 0.", state.repository_up),
        ("repository_size_bytes", "Bytes the repository stores.", state.repository_size_bytes),
        ("verify_last_attempt_timestamp_seconds", "When the last verification ended.", state.verify_last_attempt),
        ("verify_last_success_timestamp_seconds", "When a verification last passed.", state.verify_last_success),
    ]
    for name, help_text, value in plain:
        metric(name, help_text, [({}, float(value))])
    metric(
        "last_attempt_success",
        "1 when the last backup run stored every account's backup in the repository, else 0 (reason label).",
        [({"reason": state.last_attempt_reason or "none"}, float(state.last_attempt_success))],
    )
    metric(
        "verify_last_success",
        "1 when the last verification (restic check and the restore drill) passed, else 0 (reason label).",
        [({"reason": state.verify_last_reason or "none"}, float(state.verify_last_attempt_success))],
    )
    metric(
        "account_last_success_timestamp_seconds",
        "When each account's backup last went into the repository.",
        [({"account": account}, when) for account, when in sorted(state.account_last_success.items())],
    )
    metric(
        "account_snapshots",
        "Snapshots of each account the repository keeps.",
        [({"account": account}, float(count)) for account, count in sorted(state.account_snapshots.items())],
    )
    return "\n".join(lines) + "\n"


# Who writes what: a run skipped for the lock writes only its time, a verification only its own fields, a backup
# run the rest. Each publishes its own fields onto the state as it is on disk then, so a run that took a minute
# does not put back what a skipped run or a verification wrote meanwhile.
SKIP_FIELDS = frozenset({"last_skipped"})
VERIFY_FIELDS = frozenset(name for name in BackupState.__dataclass_fields__ if name.startswith("verify_"))
RUN_FIELDS = frozenset(BackupState.__dataclass_fields__) - SKIP_FIELDS - VERIFY_FIELDS


def publish(state: BackupState, state_file: Path, metrics_file: Path | None, fields: Iterable[str]) -> BackupState:
    """Put ``fields`` of ``state`` into the saved state, under a short lock of its own, then rewrite the metrics
    (node_exporter reads the file whole: written beside it, then renamed). Returns the state published."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    with open(state_file.with_name(state_file.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = BackupState.load(state_file)
        for name in fields:
            setattr(saved, name, getattr(state, name))
        saved.save(state_file)
        if metrics_file is not None:
            write_atomically(metrics_file, render(saved), 0o644)
    return saved


def _number(value: float) -> str:
    """Exact: a timestamp shown with 6 significant digits (``:g``) would be off by over an hour."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def as_dict(state: BackupState) -> dict[str, Any]:
    return asdict(state)
