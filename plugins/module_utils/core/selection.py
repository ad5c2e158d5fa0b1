# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Choosing streams by name, shell-style pattern, or ``all``: what stream_backup and jetstream_config share."""

from __future__ import annotations

import fnmatch

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

ALL_STREAMS = "all"
_GLOB_CHARS = set("*?[")


def selects_all(patterns: list[str] | None) -> bool:
    """No patterns, or ``all`` or ``*`` among them."""
    wanted = [pattern for pattern in patterns or [] if pattern]
    return not wanted or any(pattern in (ALL_STREAMS, "*") for pattern in wanted)


def choose_streams(names: list[str], patterns: list[str] | None, where: str) -> list[str]:
    """The names that match ``patterns``, sorted; a plain name (no pattern characters) not found is an error."""
    if selects_all(patterns):
        return sorted(names)
    wanted = [pattern for pattern in patterns or [] if pattern]
    missing = [pattern for pattern in wanted if not (_GLOB_CHARS & set(pattern)) and pattern not in names]
    if missing:
        raise NatsOpsError(f"streams not found in {where}: {', '.join(missing)}")
    return sorted(name for name in names if any(fnmatch.fnmatchcase(name, pattern) for pattern in wanted))
