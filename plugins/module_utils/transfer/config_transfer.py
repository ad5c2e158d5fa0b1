# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""An account's stream and consumer configurations, taken from a server or brought back into one.

The import plans every stream and consumer before changing anything, so that a configuration the
server could not take in place, an update not allowed, or a setting the server is too old for fails
the import before it starts. If the server refuses a step anyway, what the import did so far is undone
(streams it created are deleted only while they are still empty).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import describe_release
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams, selects_all
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import describe_levels, outgoing
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.converge import (
    ConsumerAsset,
    Plan,
    PlanAction,
    StreamAsset,
    apply,
    plan_present,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.transfer.config_export import ConfigExport


async def gather_configuration(api: JetStreamApi, patterns: list[str] | None, consumers: bool) -> ConfigExport:
    """The configurations of the chosen streams and their durable consumers, as the server reports them."""
    infos, missing = await api.stream_list()
    if missing:
        raise NatsOpsError(
            f"streams {', '.join(sorted(missing))} did not answer (no leader): the export would be incomplete. "
            "Restore the cluster's health (natsops.jetstream.cluster_info with wait_for: healthy) and retry"
        )
    by_name = {info["config"]["name"]: info for info in infos}
    export = ConfigExport()
    for name in choose_streams(list(by_name), patterns, "this account"):
        export.add_stream(by_name[name]["config"])
        if not consumers:
            continue
        consumer_infos, absent = await api.consumer_list(name)
        if absent:
            raise NatsOpsError(
                f"consumers {', '.join(sorted(absent))} of stream {name} did not answer (no leader): "
                "the export would be incomplete. Restore the cluster's health and retry"
            )
        for info in consumer_infos:
            export.add_consumer(name, info["config"])
    return export


def select(export: ConfigExport, patterns: list[str] | None, consumers: bool) -> ConfigExport:
    """The part of an export to import: the chosen streams, with their consumers unless ``consumers`` is false."""
    chosen = set(choose_streams(list(export.streams), patterns, "the export"))
    if selects_all(patterns):
        # Consumers whose stream is not in the export are imported too, onto the server's stream.
        owners = chosen | {stream for stream, _name in export.consumers}
    else:
        owners = {stream for stream, _name in export.consumers if stream in chosen}
    selected = ConfigExport(skipped=list(export.skipped))
    selected.streams = {name: export.streams[name] for name in sorted(chosen)}
    if consumers:
        selected.consumers = {key: config for key, config in export.consumers.items() if key[0] in owners}
    return selected


async def plan_import(api: JetStreamApi, export: ConfigExport, update: bool) -> list[Plan]:
    """One plan per stream (sources and mirrors last), then per consumer; refused as a whole when not possible."""
    plans: list[Plan] = []
    order = sorted(export.streams, key=lambda name: (_takes_from_others(export.streams[name]), name))
    for name in order:
        stream = StreamAsset(api, name)
        config = outgoing(export.streams[name])
        plans.append(plan_present(stream, config, config, await stream.info()))
    planned_streams = set(export.streams)
    for (stream_name, name), consumer_config in sorted(export.consumers.items()):
        consumer = ConsumerAsset(api, stream_name, name)
        if stream_name not in planned_streams and await api.stream_info(stream_name) is None:
            raise NatsOpsError(
                f"{consumer.label}: its stream is neither in the export nor on the server, so nothing was imported. "
                "Import the stream too, or leave the consumer out (consumers: false)"
            )
        config = outgoing(consumer_config)
        plans.append(plan_present(consumer, config, config, await consumer.info()))
    differing = [plan for plan in plans if plan.action is PlanAction.UPDATE]
    if differing and not update:
        described = "; ".join(f"{plan.asset.label} ({', '.join(c.option for c in plan.changes)})" for plan in differing)
        raise NatsOpsError(
            f"these exist with another configuration: {described}. Nothing was imported: set update_streams: true "
            "to update them to the export's configuration",
            differing=[plan.asset.label for plan in differing],
        )
    return plans


def _takes_from_others(config: dict[str, Any]) -> bool:
    return bool(config.get("mirror") or config.get("sources"))


async def require_levels(api: JetStreamApi, client: Any, plans: list[Plan]) -> None:
    """Refuse the whole import when the server is too old for a setting of any stream or consumer in it."""
    needed = {}
    for plan in plans:
        if plan.changed and plan.after:
            for option, level in plan.asset.table.needed_levels(plan.after).items():
                needed[f"{plan.asset.label}: {option}"] = level
    if not needed:
        return
    server_level = await api.api_level()
    too_new = {what: level for what, level in needed.items() if level > server_level}
    if too_new:
        raise NatsOpsError(
            f"this server ({describe_release(client)}, JetStream API level {server_level}) is too old for "
            + describe_levels(too_new, "; ")
            + ". Nothing was imported: older servers ignore settings they do not know. Import into a newer server"
        )


async def apply_import(plans: list[Plan]) -> None:
    """Carry out every plan in order; on a failure, undo what was done and fail."""
    done: list[Plan] = []
    for plan in plans:
        if not plan.changed:
            continue
        try:
            await apply(plan)
        except NatsOpsError as exc:
            # A create that timed out may still have happened: undo looks, and removes it if it is there.
            undone, kept = await _undo(done + ([plan] if plan.action is PlanAction.CREATE else []))
            summary = f"; undone: {', '.join(undone)}" if undone else ""
            if kept:
                summary += f"; left as they are: {', '.join(kept)}"
            raise NatsOpsError(
                f"the import stopped at {plan.asset.label}: {exc.msg}{summary}",
                **exc.details,
            ) from None
        done.append(plan)


async def _undo(done: list[Plan]) -> tuple[list[str], list[str]]:
    """Put back what an import changed, newest first. A created stream that already holds messages is kept."""
    undone, kept = [], []
    for plan in reversed(done):
        asset = plan.asset
        try:
            if plan.action is PlanAction.CREATE:
                info = await asset.info()
                if info is None:  # never made (the failed step), or gone already: nothing to put back
                    continue
                if asset.holdings(info):
                    kept.append(f"{asset.label} (it holds {asset.holdings(info)})")
                    continue
                await asset.delete()
            else:
                await asset.update(plan.before or {})
            undone.append(f"{asset.label} ({plan.action.value})")
        except NatsOpsError as exc:
            kept.append(f"{asset.label} ({exc.msg})")
    return undone, kept


def summary(plans: list[Plan]) -> dict[str, list[dict[str, Any]]]:
    """Per stream and per consumer: what was (or would be) done, and the settings that changed."""
    streams, consumers = [], []
    for plan in plans:
        entry = {"action": plan.action.value, "changes": plan.changes_dict()}
        if isinstance(plan.asset, ConsumerAsset):
            consumers.append({"stream": plan.asset.stream, "name": plan.asset.name, **entry})
        elif isinstance(plan.asset, StreamAsset):
            streams.append({"name": plan.asset.name, **entry})
    return {"streams": streams, "consumers": consumers}
