# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dated backup sets of the backup and restore playbooks, as data: the summary that marks a set complete,
which sets retention deletes, which set is the latest complete one, and what a restore of a set reports.

A set is BACKUP_ROOT/<UTC time, e.g. 20261123T120000Z>/<account label>/<stream>/...; its summary.json,
written last, marks it complete. Each filter is documented in the YAML file of its name beside this one.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# The name of a set: the UTC time its backup started.
DATED = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
SUMMARY = "summary.json"


def _results(results: Any, what: str) -> list[Mapping[str, Any]]:
    """The per-account results of a looped task (``register``'s ``results``, or the registered variable)."""
    if isinstance(results, Mapping) and "results" in results:
        results = results["results"]
    if isinstance(results, (str, bytes)) or not isinstance(results, Iterable):
        raise AnsibleFilterError(f"{what}: expected the results of a task looped over account labels, got {results!r}")
    results = list(results)
    for result in results:
        if not isinstance(result, Mapping) or "item" not in result:
            raise AnsibleFilterError(f"{what}: each result needs the account label as 'item' (a looped task's result)")
    return results


def _paths(items: Any, what: str) -> list[str]:
    """Paths given as strings, or as the files ansible.builtin.find returns (each with a 'path')."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise AnsibleFilterError(f"{what}: expected a list of paths (or of ansible.builtin.find files), got {items!r}")
    paths = []
    for item in items:
        path = item.get("path") if isinstance(item, Mapping) else item
        if not isinstance(path, str):
            raise AnsibleFilterError(f"{what}: not a path: {item!r}")
        paths.append(path)
    return paths


def _set_of(path: str) -> str:
    """The set directory of a path: a summary.json names its directory."""
    path = path.rstrip("/")
    return posixpath.dirname(path) if posixpath.basename(path) == SUMMARY else path


def _is_dated(path: str) -> bool:
    return bool(DATED.match(posixpath.basename(path.rstrip("/"))))


def backup_summary(results: Any, backup: str, started: str, finished: str) -> dict[str, Any]:
    """summary.json: the set's name and times, and per account its path, bytes, duration, streams and skips."""
    results = _results(results, "backup_summary")
    accounts = {
        result["item"]: {
            "path": result.get("path"),
            "total_bytes": result.get("total_bytes", 0),
            "duration": result.get("duration", 0),
            "streams": list(result.get("backups", [])),
            "skipped": list(result.get("skipped_streams", [])),
        }
        for result in results
    }
    return {
        "backup": backup,
        "started": started,
        "finished": finished,
        "total_bytes": sum(account["total_bytes"] for account in accounts.values()),
        "accounts": accounts,
    }


def backup_lines(summary: Mapping[str, Any]) -> list[str]:
    """One line per stream of a summary, for the play's output."""
    if not isinstance(summary, Mapping) or not isinstance(summary.get("accounts"), Mapping):
        raise AnsibleFilterError("backup_lines: expected a backup summary (the backup_summary filter's result)")
    return [
        f"{label}/{saved['stream']}: {saved['messages']} messages up to sequence {saved['last_seq']}, "
        f"{saved['bytes']} bytes"
        for label, account in summary["accounts"].items()
        for saved in account.get("streams", [])
    ]


def _keep(keep: Any) -> int:
    """How many complete sets to keep: a whole number, 0 or more, as YAML or ``-e key=value`` gives it."""
    if isinstance(keep, int) and not isinstance(keep, bool):
        count = keep
    elif isinstance(keep, float) and keep.is_integer():
        count = int(keep)
    elif isinstance(keep, str) and keep.strip().isdigit():
        count = int(keep.strip())
    else:
        count = -1
    if count < 0:
        raise AnsibleFilterError(
            f"backup_retention: keep must be a whole number, 0 or more (0 keeps every set): {keep!r}"
        )
    return count


def backup_retention(sets: Any, complete: Any, keep: Any = 7) -> list[str]:
    """The sets to delete: every set older than the oldest of the last ``keep`` complete ones."""
    count = _keep(keep)
    set_dirs = [path.rstrip("/") for path in _paths(sets, "backup_retention") if _is_dated(path)]
    complete_dirs = sorted(_set_of(path) for path in _paths(complete, "backup_retention (complete)"))
    if count == 0 or not complete_dirs:
        return []
    oldest_kept = complete_dirs[-count:][0]
    return sorted(path for path in set_dirs if path < oldest_kept)


def backup_latest(summaries: Any) -> str:
    """The latest complete set: the newest dated directory that holds a summary.json ('' when there is none)."""
    dated = [path for path in (_set_of(p) for p in _paths(summaries, "backup_latest")) if _is_dated(path)]
    return max(dated, key=lambda path: (posixpath.basename(path), path)) if dated else ""


def restore_report(results: Any, backup: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """What a restore of a set restored and skipped, and the point in time its data returns to."""
    results = _results(results, "restore_report")
    if not isinstance(summary, Mapping):
        raise AnsibleFilterError("restore_report: expected the set's summary (summary.json) as the second argument")
    streams = []
    for result in results:
        for restored in result.get("restored", []):
            actual = restored["verification"]["actual"]
            streams.append(
                {
                    "account": result["item"],
                    "stream": restored["stream"],
                    "action": restored["action"],
                    "messages": actual["messages"],
                    "last_seq": actual["last_seq"],
                    "verified": restored["verification"]["match"],
                }
            )
    skipped = [
        {"account": result["item"], "stream": stream}
        for result in results
        for stream in result.get("skipped_streams", [])
    ]
    return {
        "backup": backup,
        "started": summary.get("started"),
        "finished": summary.get("finished"),
        "streams": streams,
        "skipped": skipped,
    }


def restore_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per restored stream of a restore report, for the play's output."""
    if not isinstance(report, Mapping) or "streams" not in report:
        raise AnsibleFilterError("restore_lines: expected a restore report (the restore_report filter's result)")
    return [
        f"{entry['account']}/{entry['stream']}: {entry['action']}, {entry['messages']} messages up to sequence "
        f"{entry['last_seq']}, verified {entry['verified']}"
        for entry in report["streams"]
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "backup_summary": backup_summary,
            "backup_lines": backup_lines,
            "backup_retention": backup_retention,
            "backup_latest": backup_latest,
            "restore_report": restore_report,
            "restore_lines": restore_lines,
        }
