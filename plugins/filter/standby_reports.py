# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the standby, failover and failback playbooks report: mirror lag lines, the failover report and its lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def _looped(results: Any, what: str) -> list[Mapping[str, Any]]:
    """The per-account results of a task looped over account labels (``register``'s ``results``)."""
    if isinstance(results, Mapping) and "results" in results:
        results = results["results"]
    if not isinstance(results, list) or not all(isinstance(item, Mapping) and "item" in item for item in results):
        raise AnsibleFilterError(f"{what}: expected the results of a task looped over account labels")
    return results


def mirror_lines(results: Any) -> list[str]:
    """One line per mirror of looped stream_mirror or mirror_info results: its health and how far behind it is."""
    lines = []
    for result in _looped(results, "mirror_lines"):
        for mirror in result.get("mirrors") or []:
            behind = f"{mirror.get('behind_messages', '?')} messages behind"
            if mirror.get("behind_seconds") is not None:
                behind += f" ({mirror['behind_seconds']} s)"
            action = f"{mirror['action']}d, " if mirror.get("action") in ("create", "update") else ""
            lines.append(f"{result['item']}/{mirror['stream']}: {action}{mirror.get('health', '?')}, {behind}")
        for skipped in result.get("skipped") or []:
            lines.append(f"{result['item']}/{skipped['stream']}: not mirrored, {skipped['reason']}")
    return lines


def failover_report(results: Any, started: str, finished: str, seconds: Any, primary_answered: bool) -> dict[str, Any]:
    """The failover report: when, how long, and per account each stream promoted with its recovery point."""
    accounts = {}
    for result in _looped(results, "failover_report"):
        accounts[result["item"]] = {"streams": list(result.get("streams") or [])}
    return {
        "started": started,
        "finished": finished,
        "seconds": round(float(seconds), 1),
        "primary_answered": bool(primary_answered),
        "accounts": accounts,
    }


def failover_lines(report: Any) -> list[str]:
    """One line per promoted stream of a failover report (or of looped stream_promote results): its recovery point
    and its consumers' new starts."""
    if not (isinstance(report, Mapping) and isinstance(report.get("accounts"), Mapping)):
        report = failover_report(report, "", "", 0, False)
    lines = []
    for label, account in report["accounts"].items():
        for stream in account["streams"]:
            point = stream.get("recovery_point") or {}
            text = f"{label}/{stream['stream']}: {stream['action']}"
            if point:
                text += (
                    f", holds the primary's messages up to sequence {point['last_seq']} ({point['last_time']}),"
                    f" contact lost {point['contact_seconds_ago']} s before"
                )
            recorded = stream.get("recorded_origin")
            if recorded and recorded.get("missing_at_least"):
                text += f", at least {recorded['missing_at_least']} messages of the primary missing"
            starts = [f"{c['consumer']} at {c['start_seq']}" for c in stream.get("consumers") or []]
            if starts:
                text += "; consumers from " + ", ".join(starts)
            lines.append(text)
    return lines


def retire_lines(results: Any) -> list[str]:
    """One line per stream of looped stream_retire results: retired or kept, and what only it held."""
    lines = []
    for result in _looped(results, "retire_lines"):
        for stream in result.get("streams") or []:
            text = f"{result['item']}/{stream['stream']}: {stream['action'].replace('_', ' ')}"
            if stream.get("only_here_first_seq"):
                text += (
                    f"; sequences {stream['only_here_first_seq']}-{stream['only_here_last_seq']} were only here,"
                    f" kept in {result.get('backup')}"
                )
            elif stream["action"] == "keep":
                text += f" ({stream['reason']})"
            lines.append(text)
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "mirror_lines": mirror_lines,
            "failover_report": failover_report,
            "failover_lines": failover_lines,
            "retire_lines": retire_lines,
        }
