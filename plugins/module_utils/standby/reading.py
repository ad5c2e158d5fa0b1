# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Reading both sites from one connection to the standby: its own API, and the origin's through the leaf node link.

Between two JetStream domains the leaf node link carries only domain-qualified API requests
(``$JS.<domain>.API.>``), so one connection to the standby site reads the primary's streams and
consumers while the primary is up, and learns at once (no responders, or no answer within a short
timeout) when it is not.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import (
    MirrorStatus,
    OriginState,
    is_mirror,
)

ORIGIN_READ_TIMEOUT = 2.0


def origin_of(standby: JetStreamApi, domain: str, timeout: float | None = None) -> JetStreamApi:
    """The origin domain's API over the standby's connection."""
    return JetStreamApi(standby.client, domain, timeout or standby.timeout)


async def origin_streams(origin: JetStreamApi, domain: str) -> list[dict[str, Any]]:
    """Info of every stream of the account in the origin's domain; fails clearly when it cannot be reached."""
    try:
        infos, missing = await origin.stream_list()
    except NoAnswer:
        raise NatsOpsError(
            f"the primary site (JetStream domain {domain}) does not answer through the standby's leaf node link: "
            "check that the primary is up, that the standby's servers have a leaf node remote to it for this "
            "account, and the domain name",
            reason="origin_unreachable",
        ) from None
    if missing:
        raise NatsOpsError(
            f"no leader answered in domain {domain} for {', '.join(sorted(missing))}: the primary site is electing "
            "leaders or lost servers. Nothing was changed; run again once it is healthy",
            reason="origin_leaderless",
            missing=sorted(missing),
        )
    return infos


def domain_of(info: dict[str, Any]) -> str | None:
    """The origin's domain from the mirror's ``external.api`` (``$JS.<domain>.API``); None for a local origin."""
    api = (((info.get("config") or {}).get("mirror") or {}).get("external") or {}).get("api") or ""
    parts = api.split(".")
    if len(parts) == 3 and parts[0] == "$JS" and parts[2] == "API":
        return parts[1]
    return None


async def origin_state(standby: JetStreamApi, mirror_info: dict[str, Any]) -> OriginState | None:
    """The origin's progress, or None when it does not answer within a short timeout (or has no such stream)."""
    domain = domain_of(mirror_info)
    origin = origin_of(standby, domain, ORIGIN_READ_TIMEOUT) if domain else standby
    name = mirror_info["config"]["mirror"]["name"]
    try:
        info = await origin.request(f"STREAM.INFO.{name}", timeout=ORIGIN_READ_TIMEOUT)
    except NatsOpsError:
        return None
    return OriginState.of(info)


async def mirror_infos(standby: JetStreamApi, patterns: list[str] | None) -> list[dict[str, Any]]:
    """Info of the standby's mirrors chosen by ``patterns`` (names or shell patterns; none: every mirror)."""
    infos, missing = await standby.stream_list()
    if missing:
        raise NatsOpsError(
            f"no leader answered in the standby site for {', '.join(sorted(missing))}: its servers are down or "
            "electing one. Run again once natsops.jetstream.cluster_info with wait_for: healthy succeeds",
            reason="standby_leaderless",
            missing=sorted(missing),
        )
    mirrors = {info["config"]["name"]: info for info in infos if is_mirror(info)}
    return [mirrors[name] for name in choose_streams(list(mirrors), patterns, "the standby's mirrors")]


async def statuses(standby: JetStreamApi, infos: list[dict[str, Any]]) -> list[MirrorStatus]:
    """Each mirror's status: the origin's progress read first, then the mirror's, so that caught up means it."""
    origins = await asyncio.gather(*(origin_state(standby, info) for info in infos))
    latest = await asyncio.gather(*(standby.stream_info(info["config"]["name"]) for info in infos))
    return [MirrorStatus.of(now or before, origin) for before, now, origin in zip(infos, latest, origins, strict=True)]
