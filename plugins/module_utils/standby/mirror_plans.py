# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Planning the standby's mirrors: create the missing, update the drifted, refuse what would lose data.

Every plan is made before any is carried out, so a standby stream that is in the way (a promoted
mirror, a stream made by hand, a mirror of another origin) fails the task with nothing changed. The
standby's streams are never deleted here: a mirror that needs a change the server cannot make in place
is named, with what to do.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import (
    Plan,
    StreamAsset,
    apply,
    plan_present,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.stream_config import new_stream_config
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import (
    is_mirror,
    mirror_config,
    origin_api,
    why_not_mirrored,
)


def _in_the_way(name: str, info: dict[str, Any], domain: str) -> str | None:
    """Why the standby's stream of that name cannot be the origin's mirror, or None when it is."""
    if not is_mirror(info):
        return (
            f"{name}: the standby has a stream of that name that is not a mirror (promoted by a failover, or made "
            "by hand); a stream cannot become a mirror. Run the failback playbook, or delete it if it holds nothing "
            "you need"
        )
    mirror = info["config"]["mirror"]
    api = (mirror.get("external") or {}).get("api")
    if mirror.get("name") != name or api != origin_api(domain):
        return (
            f"{name}: the standby's stream mirrors {mirror.get('name')} through {api or 'its own domain'}, not "
            f"{name} of domain {domain}; a mirror's origin cannot change. Delete it to mirror {name} afresh"
        )
    return None


async def plan_mirrors(
    standby: JetStreamApi, origins: list[dict[str, Any]], domain: str, replicas: int | None
) -> tuple[dict[str, Plan], list[dict[str, str]]]:
    """A plan per origin stream that gets a mirror, by name, and the streams left out with the reason."""
    plans: dict[str, Plan] = {}
    skipped: list[dict[str, str]] = []
    in_the_way: list[str] = []
    for origin in origins:
        config = origin["config"]
        reason = why_not_mirrored(config)
        if reason:
            skipped.append({"stream": config["name"], "reason": reason})
            continue
        asset = StreamAsset(standby, config["name"])
        info = await asset.info()
        problem = _in_the_way(config["name"], info, domain) if info else None
        if problem:
            in_the_way.append(problem)
            continue
        desired = mirror_config(config, domain, replicas)
        try:
            plans[config["name"]] = plan_present(asset, desired, new_stream_config(config["name"], desired), info)
        except NatsOpsError as refused:
            in_the_way.append(
                f"{config['name']}: the mirror needs a change the server cannot make in place "
                f"({', '.join(refused.details.get('refused', []))}): delete the standby's stream "
                "(natsops.jetstream.stream, state: absent) and run again; the new mirror copies the origin from the "
                "start"
            )
    if in_the_way:
        raise NatsOpsError(
            "standby streams are in the way; nothing was changed: " + "; ".join(in_the_way),
            reason="standby_stream_in_the_way",
        )
    return plans, skipped


async def carry_out(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        if plan.changed:
            await apply(plan)
