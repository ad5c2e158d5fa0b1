# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Retiring a site's streams whose live copy the other site now holds (a promoted mirror of them).

After a failover both sites can have a stream of the same name: the old primary's, and the standby's
promoted mirror of it, which holds the old primary's messages up to the recovery point recorded at
promotion (``natsops.promoted_at_seq``) and its own after. The old primary's messages beyond that point
are nowhere else. Sequences past the recovery point name different messages in the two sites, so only
the recovery point tells what the other site holds.

A stream is retired (deleted) only when what it alone holds has been backed up first, or when it holds
nothing the other site lacks; a stream the other site has no promoted copy of is never retired.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import PROMOTED_AT_SEQ, is_mirror


class RetireAction(str, Enum):
    RETIRE = "retire"  # holds nothing the other site lacks: deleted
    BACK_UP_AND_RETIRE = "back_up_and_retire"  # holds messages only it has: backed up, then deleted
    KEEP = "keep"  # the other site holds no promoted copy of it: left alone


@dataclass
class RetirePlan:
    stream: str
    action: RetireAction
    last_seq: int
    recovery_point: int | None  # the other site's copy holds this stream's messages up to here
    reason: str = ""

    @property
    def only_here(self) -> tuple[int, int] | None:
        """The sequences of the messages only this stream has (first, last), or None."""
        if self.recovery_point is None or self.last_seq <= self.recovery_point:
            return None
        return (self.recovery_point + 1, self.last_seq)

    def as_dict(self) -> dict[str, Any]:
        only_here = self.only_here
        return {
            "stream": self.stream,
            "action": self.action.value,
            "last_seq": self.last_seq,
            "recovery_point": self.recovery_point,
            "only_here_first_seq": only_here[0] if only_here else None,
            "only_here_last_seq": only_here[1] if only_here else None,
            "reason": self.reason,
        }


def recovery_point(counterpart: dict[str, Any] | None) -> int | None:
    """The promotion's recovery point recorded in the other site's stream, or None when it was not promoted."""
    if not counterpart or is_mirror(counterpart):
        return None
    recorded = ((counterpart.get("config") or {}).get("metadata") or {}).get(PROMOTED_AT_SEQ)
    try:
        return int(recorded) if recorded is not None else None
    except ValueError:
        return None


def plan_retire(local: dict[str, Any], counterpart: dict[str, Any] | None) -> RetirePlan:
    name = local["config"]["name"]
    last_seq = int((local.get("state") or {}).get("last_seq") or 0)
    point = recovery_point(counterpart)
    if counterpart is None:
        return RetirePlan(name, RetireAction.KEEP, last_seq, None, "the other site has no stream of that name")
    if is_mirror(counterpart):
        return RetirePlan(
            name, RetireAction.KEEP, last_seq, None, "the other site's stream is still a mirror: promote it first"
        )
    if point is None:
        return RetirePlan(
            name,
            RetireAction.KEEP,
            last_seq,
            None,
            f"the other site's stream was not promoted by natsops.jetstream.stream_promote (no {PROMOTED_AT_SEQ}), "
            "so what it holds of this one is unknown",
        )
    plan = RetirePlan(name, RetireAction.RETIRE, last_seq, point)
    if plan.only_here:
        plan.action = RetireAction.BACK_UP_AND_RETIRE
    return plan
