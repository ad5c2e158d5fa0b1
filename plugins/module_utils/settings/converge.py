# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Streams and consumers brought to a wanted configuration: read, plan, guard, apply.

Shared by the stream and consumer modules and by the configuration import. Nothing that holds data
is deleted unless asked for: ``recreate`` is refused while a stream holds messages or consumers (or a
consumer has delivered messages) unless ``force``; ``prevent_delete`` refuses any deletion; a recreate
whose new configuration the server refuses puts the previous configuration back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import describe_release
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    CONSUMER_NOT_FOUND,
    ERROR_ADVICE,
    STREAM_NOT_FOUND,
    JetStreamApi,
    JetStreamApiError,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import (
    Change,
    SettingTable,
    merged,
    outgoing,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.consumer_config import (
    CONSUMER,
    consumer_holdings,
    new_consumer_config,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.stream_config import (
    STREAM,
    adjust_update,
    new_stream_config,
    stream_holdings,
)

# What to do about the errors creating, updating and deleting streams and consumers meet, by err_code;
# where it has nothing to say, the general advice of jsapi.ERROR_ADVICE (no meta leader, JetStream off...).
ADVICE = {
    10005: "no server matches: lower replicas, or change the placement (cluster, tags)",
    10013: "a consumer of that name already exists with another configuration",
    10025: "the server does not know one of the settings: it is older than these settings need",
    10052: "the server refused the configuration: change the setting it names",
    10055: "a mirror's configuration cannot change: set recreate: true to recreate the stream",
    10058: "a stream of that name was created meanwhile with another configuration: run the task again",
    10065: "another stream already takes some of these subjects: change the subjects, or that stream's",
    10074: "this server is not clustered: use replicas: 1",
    10084: "consumers of a workqueue stream need ack_policy: explicit",
    10093: "the filter subjects must be within the stream's subjects",
    10148: "a consumer of that name was created meanwhile: run the task again",
}
# The options of the stream and consumer modules that say what to do, besides the settings.
LIFECYCLE_OPTIONS: dict[str, dict[str, Any]] = {
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "recreate": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "prevent_delete": {"type": "bool", "default": False},
}


_BAD_NAME = re.compile(r"[.*>/\\\s]")


def checked_name(kind: str, name: str) -> str:
    """A stream or consumer name as the server accepts it (it is also part of the API subject)."""
    if not name or _BAD_NAME.search(name):
        raise NatsOpsError(f"{kind} name {name!r} is not valid: it must not be empty or contain . * > / \\ or spaces")
    return name


def describe_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class Asset:
    """A stream or a consumer on the server, by name."""

    kind = ""
    table: SettingTable

    def __init__(self, api: JetStreamApi, label: str) -> None:
        self.api = api
        self.label = label

    async def _call(self, verb: str, suffix: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return await self.api.request(suffix, body)
        except JetStreamApiError as exc:
            advice = ADVICE.get(exc.err_code, ERROR_ADVICE.get(exc.err_code))
            raise NatsOpsError(
                f"cannot {verb} {self.label}: {exc.description} (err_code {exc.err_code})"
                + (f": {advice}" if advice else ""),
                err_code=exc.err_code,
                description=exc.description,
            ) from None

    async def info(self) -> dict[str, Any] | None:
        raise NotImplementedError

    async def create(self, config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def update(self, config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def delete(self) -> None:
        raise NotImplementedError

    def new_config(self, desired: dict[str, Any]) -> dict[str, Any]:
        """What creating it sends for the wanted settings."""
        raise NotImplementedError

    async def before_create(self, check_mode: bool) -> list[str]:
        """Refuse a create that cannot work; warnings for check mode."""
        return []

    def holdings(self, info: dict[str, Any]) -> str | None:
        """What deleting it would lose, in words; None when nothing."""
        raise NotImplementedError

    def adjust(self, current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
        """Settings an update must change besides the wanted ones."""
        return {}

    def facts(self, info: dict[str, Any]) -> dict[str, Any]:
        """What the modules return about it besides its configuration."""
        return {}


class StreamAsset(Asset):
    kind = "stream"
    table = STREAM

    def __init__(self, api: JetStreamApi, name: str) -> None:
        super().__init__(api, f"stream {name}")
        self.name = checked_name("stream", name)

    async def info(self) -> dict[str, Any] | None:
        return await self.api.stream_info(self.name)

    async def create(self, config: dict[str, Any]) -> dict[str, Any]:
        return await self._call("create", f"STREAM.CREATE.{self.name}", outgoing(config))

    async def update(self, config: dict[str, Any]) -> dict[str, Any]:
        return await self._call("update", f"STREAM.UPDATE.{self.name}", outgoing(config))

    async def delete(self) -> None:
        await self._call("delete", f"STREAM.DELETE.{self.name}")

    def new_config(self, desired: dict[str, Any]) -> dict[str, Any]:
        return new_stream_config(self.name, desired)

    def holdings(self, info: dict[str, Any]) -> str | None:
        return stream_holdings(info)

    def adjust(self, current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
        return adjust_update(current, desired)

    def facts(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"state": info.get("state") or {}}


class ConsumerAsset(Asset):
    kind = "consumer"
    table = CONSUMER

    def __init__(self, api: JetStreamApi, stream: str, name: str) -> None:
        super().__init__(api, f"consumer {stream} > {name}")
        self.stream = checked_name("stream", stream)
        self.name = checked_name("consumer", name)

    async def info(self) -> dict[str, Any] | None:
        """The consumer's info; None when it, or its stream, does not exist."""
        try:
            return await self.api.request(f"CONSUMER.INFO.{self.stream}.{self.name}")
        except JetStreamApiError as exc:
            if exc.err_code in (CONSUMER_NOT_FOUND, STREAM_NOT_FOUND):
                return None
            raise

    def new_config(self, desired: dict[str, Any]) -> dict[str, Any]:
        return new_consumer_config(self.name, desired)

    async def before_create(self, check_mode: bool) -> list[str]:
        """Fail when the stream is missing; in check mode only warn (an earlier task would have created it)."""
        if await self.api.stream_info(self.stream) is not None:
            return []
        if check_mode:
            return [f"stream {self.stream} does not exist (yet): the consumer cannot be created until it does"]
        raise NatsOpsError(
            f"cannot create {self.label}: stream {self.stream} does not exist. Create it first "
            "(natsops.jetstream.stream), or check the name, the account of the credentials and the domain"
        )

    async def _save(self, verb: str, config: dict[str, Any]) -> dict[str, Any]:
        # "action" (nats-server 2.10+) makes the server refuse to create over an existing consumer or
        # to update a missing one, instead of silently doing the other.
        body = {"stream_name": self.stream, "config": outgoing(config), "action": verb}
        return await self._call(verb, f"CONSUMER.CREATE.{self.stream}.{self.name}", body)

    async def create(self, config: dict[str, Any]) -> dict[str, Any]:
        return await self._save("create", config)

    async def update(self, config: dict[str, Any]) -> dict[str, Any]:
        return await self._save("update", config)

    async def delete(self) -> None:
        await self._call("delete", f"CONSUMER.DELETE.{self.stream}.{self.name}")

    def holdings(self, info: dict[str, Any]) -> str | None:
        return consumer_holdings(info)

    def facts(self, info: dict[str, Any]) -> dict[str, Any]:
        keys = ("delivered", "ack_floor", "num_pending", "num_ack_pending", "num_redelivered", "num_waiting")
        return {key: info[key] for key in keys if key in info}


class PlanAction(str, Enum):
    """What converging one stream or consumer does."""

    NONE = "none"  # it is as wanted
    CREATE = "create"
    UPDATE = "update"  # in place
    RECREATE = "recreate"  # deleted and created again (a setting the server cannot change in place)
    DELETE = "delete"


@dataclass
class Plan:
    """What bringing one stream or consumer to the wanted configuration takes."""

    asset: Asset
    action: PlanAction
    before: dict[str, Any] | None  # the server's configuration now (None: absent)
    after: dict[str, Any] | None  # the configuration to send (None: to delete)
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.action is not PlanAction.NONE

    def diff(self) -> dict[str, Any]:
        table = self.asset.table
        return {
            "before_header": self.asset.label,
            "after_header": self.asset.label,
            "before": table.for_display(self.before),
            "after": table.for_display(self.after),
        }

    def changes_dict(self) -> dict[str, Any]:
        return {change.option: change.as_dict() for change in self.changes}


def plan_present(
    asset: Asset,
    desired: dict[str, Any],
    new_config: dict[str, Any],
    info: dict[str, Any] | None,
    recreate: bool = False,
) -> Plan:
    """Create, update, recreate or leave alone; refuse changes the server cannot make in place unless ``recreate``."""
    if info is None:
        return Plan(asset, PlanAction.CREATE, None, new_config)
    current = info["config"]
    if not asset.table.differences(desired, current):
        return Plan(asset, PlanAction.NONE, current, current)
    wanted = {**desired, **asset.adjust(current, desired)}
    changes = asset.table.differences(wanted, current)
    after = merged(current, wanted)
    refused = [change for change in changes if change.refusal]
    if refused and not recreate:
        raise NatsOpsError(
            f"{asset.label}: "
            + "; ".join(
                f"cannot change {change.option} from {describe_value(change.before)} to "
                f"{describe_value(change.after)} in place ({change.refusal})"
                for change in refused
            )
            + f". Set recreate: true to delete the {asset.kind} and create it anew, or keep the current value",
            refused=[change.option for change in refused],
        )
    return Plan(asset, PlanAction.RECREATE if refused else PlanAction.UPDATE, current, after, changes)


async def converge(
    asset: Asset, desired: dict[str, Any], params: dict[str, Any], client: Any, check_mode: bool, diff_mode: bool
) -> dict[str, Any]:
    """Bring one asset to ``params["state"]`` with the ``desired`` settings: plan, guard, carry out, report."""
    info = await asset.info()
    if params["state"] == "absent":
        plan = plan_absent(asset, info)
    else:
        await require_api_level(asset, client, desired)
        warnings = await asset.before_create(check_mode) if info is None else []
        plan = plan_present(asset, desired, asset.new_config(desired), info, recreate=params["recreate"])
        plan.warnings += warnings
    guard(plan, info, prevent_delete=params["prevent_delete"], force=params["force"])
    return outcome(plan, await carry_out(plan, info, check_mode), diff_mode)


def plan_absent(asset: Asset, info: dict[str, Any] | None) -> Plan:
    if info is None:
        return Plan(asset, PlanAction.NONE, None, None)
    return Plan(asset, PlanAction.DELETE, info["config"], None)


def guard(plan: Plan, info: dict[str, Any] | None, prevent_delete: bool, force: bool) -> None:
    """Refuse what would delete the asset under ``prevent_delete``, or lose data on a recreate without ``force``."""
    asset = plan.asset
    if plan.action in (PlanAction.DELETE, PlanAction.RECREATE) and prevent_delete:
        why = "recreating it deletes it first" if plan.action is PlanAction.RECREATE else "state is absent"
        raise NatsOpsError(
            f"{asset.label} is protected by prevent_delete: true and is not deleted ({why}). "
            "Set prevent_delete: false to allow it"
        )
    if plan.action is PlanAction.RECREATE and info is not None:
        lost = asset.holdings(info)
        if lost and not force:
            raise NatsOpsError(
                f"{asset.label} holds {lost}; recreating it deletes them. Set force: true to accept that, "
                f"or keep the settings that need a recreate ({', '.join(c.option for c in plan.changes if c.refusal)})"
            )


async def require_api_level(asset: Asset, client: Any, config: dict[str, Any]) -> None:
    """Refuse settings the server is too old for (before 2.12 it drops unknown fields without a word)."""
    if not asset.table.needed_levels(config):
        return
    level = await asset.api.api_level()
    asset.table.require_level(config, level, describe_release(client), asset.label)


async def carry_out(plan: Plan, info: dict[str, Any] | None, check_mode: bool) -> dict[str, Any] | None:
    """The asset's info after the plan: as it was when nothing changes, None in check mode or once deleted."""
    if not plan.changed:
        return info
    if check_mode:
        return None
    return await apply(plan)


async def apply(plan: Plan) -> dict[str, Any] | None:
    """Carry out a plan that changes something; the asset's info afterwards (None once deleted)."""
    asset = plan.asset
    if plan.action is PlanAction.CREATE:
        return await asset.create(plan.after or {})
    if plan.action is PlanAction.UPDATE:
        return await asset.update(plan.after or {})
    if plan.action is PlanAction.RECREATE:
        return await _recreate(plan)
    await asset.delete()
    return None


async def _recreate(plan: Plan) -> dict[str, Any]:
    asset = plan.asset
    await asset.delete()
    try:
        return await asset.create(plan.after or {})
    except NatsOpsError as refused:
        try:
            await asset.create(plan.before or {})
        except NatsOpsError as again:
            raise NatsOpsError(
                f"{asset.label} was deleted to be recreated, but the server refused the new configuration "
                f"({refused.msg}) and then the previous one ({again.msg}): it does not exist now. Fix the settings "
                "and run again"
            ) from None
        raise NatsOpsError(
            f"{asset.label} was deleted to be recreated, but the server refused the new configuration "
            f"({refused.msg}); it was created again, empty, with its previous configuration. Fix the settings and "
            "run again"
        ) from None


def outcome(plan: Plan, info: dict[str, Any] | None, diff_mode: bool) -> dict[str, Any]:
    """The module result for one plan, carried out (``info`` after) or not (check mode: ``info`` is None)."""
    result: dict[str, Any] = {"changed": plan.changed, "action": plan.action.value, "changes": plan.changes_dict()}
    if info is not None:
        result["config"] = info.get("config") or {}
        result.update(plan.asset.facts(info))
    elif plan.after is not None:
        result["config"] = plan.after
    if diff_mode:
        result["diff"] = plan.diff()
    if plan.warnings:
        result["warnings"] = list(plan.warnings)
    return result
