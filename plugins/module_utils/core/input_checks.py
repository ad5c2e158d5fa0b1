# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Checks of user input made before any server is asked: names and numeric ranges.

A name the server would refuse is refused here, by what is wrong with it: sent as is, a stream name with
a dot becomes another API subject that nothing answers, and the request waits out its timeout.
"""

from __future__ import annotations

import math
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

# nats-server's limit on stream and consumer names (JSMaxNameLen).
MAX_NAME_LENGTH = 255
MAX_PARALLEL = 64
MAX_REPLICAS = 5  # JetStream's limit on a stream's replicas
_NAME_RULE = (
    "JetStream names cannot hold '.', '*', '>', whitespace, control characters or path separators, "
    f"and have at most {MAX_NAME_LENGTH} characters"
)
_FORBIDDEN = {".": "a dot", "*": "a '*' wildcard", ">": "a '>' wildcard", "/": "a '/'", "\\": "a '\\'"}


def name_problem(name: Any) -> str | None:
    """What makes ``name`` unacceptable as a stream or consumer name, or None."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it has {len(name)} characters"
    for char in name:
        if char in _FORBIDDEN:
            return f"it holds {_FORBIDDEN[char]}"
        if char.isspace():
            return "it holds whitespace"
        if not char.isprintable():
            return f"it holds the control character {char!r}"
    return None


def check_name(name: Any, kind: str = "stream", where: str = "", advice: str = "") -> None:
    """Refuse a stream (or consumer) name the server would refuse, naming what is wrong with it (None: not given)."""
    if name is None:
        return
    problem = name_problem(name)
    if problem is None:
        return
    shown = repr(name) if isinstance(name, str) and len(name) <= 80 else repr(str(name)[:80] + "...")
    message = f"{kind} name {shown}{f' {where}' if where else ''} is not valid: {problem} ({_NAME_RULE})"
    raise NatsOpsError(message + (f". {advice}" if advice else ""), invalid_name=str(name))


def check_range(option: str, value: float | None, low: float, high: float | None = None, unit: str = "") -> None:
    """Refuse a number outside [low, high] (or not finite), naming the accepted range."""
    if value is None:
        return
    too_high = high is not None and value > high
    if math.isnan(value) or math.isinf(value) or value < low or too_high:
        accepted = f"from {_number(low)} to {_number(high)}" if high is not None else f"at least {_number(low)}"
        raise NatsOpsError(f"{option} is {value!r}: it must be {accepted}{f' {unit}' if unit else ''}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_positive(option: str, value: float | None, unit: str = "seconds") -> None:
    """Refuse zero, negative or infinite durations."""
    if value is None:
        return
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise NatsOpsError(f"{option} is {value!r}: it must be a number of {unit} above 0")


def check_selection(option: str, patterns: list[str] | None) -> None:
    """Refuse an explicitly empty selection (``[]`` or empty names): leave the option out, or say ``all``."""
    if patterns is None:
        return
    if not patterns or any(not isinstance(pattern, str) or not pattern.strip() for pattern in patterns):
        raise NatsOpsError(
            f"{option} is {patterns!r}: it names no stream. Name streams or patterns, or give [all] for every stream"
        )
    for pattern in patterns:
        if not set("*?[") & set(pattern) and pattern != "all":
            check_name(pattern, where=f"in {option}")
