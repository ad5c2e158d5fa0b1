# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Human durations, sizes and times <-> the numbers and strings of JetStream's JSON.

JetStream stores durations as nanoseconds, sizes as bytes and times as RFC 3339 strings. Users write
``1h30m``, ``500ms``, ``1GB``: the forms natscli accepts (sizes are 1024-based, as in natscli).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

NS_PER = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
# Largest first, for formatting; days and weeks are left out so that the output is also valid Go.
_FORMAT_UNITS = (("h", NS_PER["h"]), ("m", NS_PER["m"]), ("s", NS_PER["s"]), ("ms", NS_PER["ms"]), ("us", 1_000))
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h|d|w)")
_NUMBER = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")
_SIZE = re.compile(r"^(\d+)\s*([A-Za-z]+)$")
_SIZE_SHIFT = {"B": 0, "K": 10, "KB": 10, "KIB": 10, "M": 20, "MB": 20, "MIB": 20, "G": 30, "GB": 30, "GIB": 30}
_SIZE_SHIFT.update({"T": 40, "TB": 40, "TIB": 40})
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")


def parse_duration(value: Any, what: str = "duration") -> int:
    """Nanoseconds from ``1h30m``, ``500ms``, ``2d``, ``1.5h`` or a number of seconds (``30``, ``"30"``)."""
    if isinstance(value, bool) or value is None:
        raise NatsOpsError(f"{what}: {value!r} is not a duration; write it like 30s, 1h30m or 500ms")
    if isinstance(value, (int, float)):
        if value < 0:
            raise NatsOpsError(f"{what}: {value!r} is negative")
        return round(value * NS_PER["s"])
    text = str(value).strip()
    if _NUMBER.match(text):
        return round(float(text) * NS_PER["s"])
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match[1]) * NS_PER[match[2]]
        position = match.end()
    if not text or position != len(text):
        raise NatsOpsError(
            f"{what}: {value!r} is not a duration; write it like 30s, 1h30m, 500ms or 2d "
            "(units ns, us, ms, s, m, h, d, w; a plain number is seconds)"
        )
    return round(total)


def format_duration(nanoseconds: int) -> str:
    """The shortest Go-style text for a duration: ``1h30m``, ``500ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign, rest = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest:
        parts.append(f"{rest}ns")
    return sign + "".join(parts)


def parse_size(value: Any, what: str = "size") -> int:
    """Bytes from ``1GB``, ``512MiB``, ``64K`` (1024-based, as natscli) or a number; negative means -1 (unlimited)."""
    if isinstance(value, bool) or value is None:
        raise NatsOpsError(f"{what}: {value!r} is not a size; write it like 1048576, 512MB or 1G")
    if isinstance(value, int):
        return -1 if value < 0 else value
    text = str(value).strip()
    if text.startswith("-") and re.match(r"^-\d+$", text):
        return -1
    if text.isdigit():
        return int(text)
    match = _SIZE.match(text)
    if not match or match[2].upper() not in _SIZE_SHIFT:
        raise NatsOpsError(f"{what}: {value!r} is not a size; write a number of bytes or one ending in B, K, M, G or T")
    return int(match[1]) << _SIZE_SHIFT[match[2].upper()]


def parse_time(value: Any, what: str = "time") -> int:
    """Nanoseconds since the epoch from an RFC 3339 time (``2025-01-31T12:00:00Z``, any offset, up to ns)."""
    match = _TIME.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise NatsOpsError(f"{what}: {value!r} is not an RFC 3339 time like 2025-01-31T12:00:00Z")
    zone = "+00:00" if match[4] in ("Z", "z") else match[4]
    try:
        moment = datetime.fromisoformat(f"{match[1]}T{match[2]}{zone}")
    except ValueError as exc:
        raise NatsOpsError(f"{what}: {value!r} is not a valid time ({exc})") from None
    fraction = int((match[3] or "").ljust(9, "0"))
    return int(moment.timestamp()) * NS_PER["s"] + fraction


def format_time(epoch_ns: int) -> str:
    """RFC 3339 in UTC with as many fraction digits as needed, as Go writes times."""
    seconds, fraction = divmod(epoch_ns, NS_PER["s"])
    text = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"
