# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Module options <-> the server's JSON configuration of a stream or consumer.

A ``Setting`` knows one option: its argument spec, how a value becomes the server's JSON, how to
compare it with what the server reports (the server fills defaults and writes some values its own
way: ``0`` limits read back as ``-1``, durations as nanoseconds), whether the server can change it in
place, and which JetStream API level it needs. Only the settings a user gave are compared, so every
other setting stays as the server has it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import (
    format_duration,
    format_time,
    parse_duration,
    parse_size,
    parse_time,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

# Metadata keys the server writes itself (2.11+: its version and API levels); never the user's to manage.
RESERVED_METADATA_PREFIX = "_nats."
# The first nats-server release of each JetStream API level (servers before 2.11 report none: level 0).
LEVEL_RELEASES = {1: "2.11", 2: "2.12", 3: "2.12", 4: "2.14", 5: "2.15"}


def describe_levels(needed: dict[str, int], separator: str) -> str:
    """Settings with the API level and the first nats-server release they need, for error messages."""
    return separator.join(
        f"{what} (API level {level}, nats-server {LEVEL_RELEASES.get(level, '?')}+)"
        for what, level in sorted(needed.items())
    )


Refusal = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True)
class Setting:
    """One option of a stream or consumer and the key that holds it in the server's configuration."""

    option: str
    key: str
    spec: dict[str, Any]
    convert: Callable[[Any, str], Any]  # option value -> server JSON
    canon: Callable[[Any], Any]  # server JSON (None when absent) -> a value to compare
    show: Callable[[Any], Any] = lambda value: value  # canon value -> what a person reads in a diff
    refusal: Refusal | None = None  # why the server cannot change it in place, before -> after
    level: int = 0  # API level needed to set it to anything but its unset value
    value_levels: dict[str, int] = field(default_factory=dict)  # ... or to one of these values

    def needed_level(self, value: Any) -> int:
        canonical = self.canon(value)
        if isinstance(canonical, str) and canonical in self.value_levels:
            return self.value_levels[canonical]
        return self.level if canonical != self.canon(None) else 0


# --- how the server changes settings in place ------------------------------------------------------


def fixed(reason: str) -> Refusal:
    return lambda before, after: reason


def enable_only(reason: str) -> Refusal:
    """Can be turned on, never off (deny_delete, sealed, allow_msg_ttl, ...)."""
    return lambda before, after: reason if before and not after else None


# --- cleaning values for comparison ----------------------------------------------------------------


def is_empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value in ("", [], {})


def clean(value: Any) -> Any:
    """Nested JSON without the empty members Go leaves out (``omitempty``): {} / [] / "" / 0 / false / null."""
    if isinstance(value, dict):
        cleaned = {key: clean(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if not is_empty(item)}
    if isinstance(value, list):
        return [clean(item) for item in value]
    return value


def user_metadata(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items() if not str(k).startswith(RESERVED_METADATA_PREFIX)}


# --- settings by kind ------------------------------------------------------------------------------


def _spec(spec: dict[str, Any], option: str, key: str | None) -> dict[str, Any]:
    """An option named unlike its JSON key also answers to the key (``replicas`` / ``num_replicas``)."""
    return {**spec, "aliases": [key]} if key and key != option else spec


def text(option: str, key: str | None = None, **extra: Any) -> Setting:
    return Setting(
        option,
        key or option,
        _spec({"type": "str"}, option, key),
        lambda v, what: str(v),
        lambda v: "" if v is None else str(v),
        **extra,
    )


def strings(option: str, key: str | None = None, **extra: Any) -> Setting:
    return Setting(
        option,
        key or option,
        _spec({"type": "list", "elements": "str"}, option, key),
        lambda v, what: [str(item) for item in v],
        lambda v: [str(item) for item in v or []],
        **extra,
    )


def flag(option: str, key: str | None = None, **extra: Any) -> Setting:
    spec = _spec({"type": "bool"}, option, key)
    return Setting(option, key or option, spec, lambda v, what: bool(v), bool, **extra)


def number(option: str, key: str | None = None, unset: int = 0, **extra: Any) -> Setting:
    spec = _spec({"type": "int"}, option, key)
    return Setting(option, key or option, spec, lambda v, what: int(v), lambda v: int(v) if v else unset, **extra)


def limit(option: str, sizes: bool = False, **extra: Any) -> Setting:
    """A limit where the server writes 'unlimited' as -1 and reads 0 or any negative number as that too."""

    def convert(value: Any, what: str) -> int:
        number = parse_size(value, what) if sizes else int(value)
        return -1 if number <= 0 else number

    def canon(value: Any) -> int:
        return -1 if value is None or int(value) <= 0 else int(value)

    return Setting(option, option, {"type": "raw" if sizes else "int"}, convert, canon, **extra)


def size(option: str, **extra: Any) -> Setting:
    return Setting(option, option, {"type": "raw"}, parse_size, lambda v: int(v or 0), **extra)


def duration(option: str, **extra: Any) -> Setting:
    return Setting(
        option,
        option,
        {"type": "raw"},
        parse_duration,
        lambda v: int(v or 0),
        show=format_duration,
        **extra,
    )


def durations(option: str, **extra: Any) -> Setting:
    return Setting(
        option,
        option,
        {"type": "list", "elements": "raw"},
        lambda v, what: [parse_duration(item, what) for item in v],
        lambda v: [int(item) for item in v or []],
        show=lambda v: [format_duration(item) for item in v],
        **extra,
    )


def moment(option: str, **extra: Any) -> Setting:
    """A time: sent in UTC, compared as nanoseconds since the epoch (the server keeps the offset it was sent)."""
    return Setting(
        option,
        option,
        {"type": "str"},
        lambda v, what: format_time(parse_time(v, what)),
        lambda v: parse_time(v, option) if v else None,
        show=lambda v: None if v is None else format_time(v),
        **extra,
    )


def choice(option: str, choices: Iterable[str], unset: str, **extra: Any) -> Setting:
    return Setting(
        option,
        option,
        {"type": "str", "choices": list(choices)},
        lambda v, what: str(v),
        lambda v: str(v) if v else unset,
        **extra,
    )


def metadata(option: str = "metadata") -> Setting:
    """Free-form metadata: the user's keys must match exactly; the server's own ``_nats.*`` keys are ignored."""
    return Setting(option, option, {"type": "dict"}, lambda v, what: user_metadata(v), user_metadata)


def nested(
    option: str,
    spec: dict[str, Any],
    convert: Callable[[Any, str], Any],
    canon: Callable[[Any], Any] = clean,
    **extra: Any,
) -> Setting:
    return Setting(option, option, spec, convert, canon, **extra)


# --- comparing and merging -------------------------------------------------------------------------


@dataclass
class Change:
    """One setting whose value differs between the server and what is wanted."""

    option: str
    before: Any
    after: Any
    refusal: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after}


class SettingTable:
    """The settings of one kind of asset (stream or consumer), by option and by JSON key."""

    def __init__(self, kind: str, settings: Iterable[Setting]) -> None:
        self.kind = kind
        self.settings = tuple(settings)
        self.by_option = {setting.option: setting for setting in self.settings}
        self.by_key = {setting.key: setting for setting in self.settings}

    def argument_spec(self) -> dict[str, dict[str, Any]]:
        return {setting.option: copy.deepcopy(setting.spec) for setting in self.settings}

    def desired(self, params: dict[str, Any]) -> dict[str, Any]:
        """The server JSON for the options the user gave (not None); nothing else."""
        config: dict[str, Any] = {}
        for setting in self.settings:
            value = params.get(setting.option)
            if value is not None:
                config[setting.key] = setting.convert(value, setting.option)
        return config

    def _canon(self, key: str, value: Any) -> Any:
        setting = self.by_key.get(key)
        if setting is not None:
            return setting.canon(value)
        return None if is_empty(value) else clean(value)

    def _show(self, key: str, canonical: Any) -> Any:
        setting = self.by_key.get(key)
        return setting.show(canonical) if setting is not None and canonical is not None else canonical

    def differences(self, desired: dict[str, Any], current: dict[str, Any]) -> list[Change]:
        """The keys of ``desired`` whose values differ from ``current`` (after normalising both)."""
        changes = []
        for key, value in desired.items():
            before, after = self._canon(key, current.get(key)), self._canon(key, value)
            if before == after:
                continue
            setting = self.by_key.get(key)
            refusal = setting.refusal(before, after) if setting is not None and setting.refusal else None
            changes.append(
                Change(
                    option=setting.option if setting else key,
                    before=self._show(key, before),
                    after=self._show(key, after),
                    refusal=refusal,
                )
            )
        return changes

    def needed_levels(self, config: dict[str, Any]) -> dict[str, int]:
        """Options set in ``config`` that need a JetStream API level above 0, with that level."""
        needed = {}
        for key, value in config.items():
            setting = self.by_key.get(key)
            if setting is not None and setting.needed_level(value):
                needed[setting.option] = setting.needed_level(value)
        return needed

    def require_level(self, config: dict[str, Any], server_level: int, server: str, name: str) -> None:
        """Refuse settings the server would silently drop or reject: older servers ignore unknown fields."""
        missing = {option: level for option, level in self.needed_levels(config).items() if level > server_level}
        if not missing:
            return
        raise NatsOpsError(
            f"{self.kind} {name}: {describe_levels(missing, ', ')} cannot be set on this server ({server}, "
            f"JetStream API level {server_level}): older servers ignore settings they do not know. "
            "Upgrade the servers or leave these settings out",
            unsupported=sorted(missing),
        )

    def for_display(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """A configuration as a person reads it: human durations and times, without the server's own metadata."""
        if not config:
            return {}
        shown = {}
        for key, value in config.items():
            setting = self.by_key.get(key)
            if key == "metadata":
                value = user_metadata(value)
                if not value:
                    continue
            elif setting is not None and value is not None:
                value = self._show(key, setting.canon(value))
            shown[key] = value
        return shown


def outgoing(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration to send: without the server's ``_nats.*`` metadata, which it sets itself."""
    sending = copy.deepcopy(config)
    if "metadata" in sending:
        kept = user_metadata(sending["metadata"])
        if kept:
            sending["metadata"] = kept
        else:
            del sending["metadata"]
    return sending


def merged(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The server's configuration with the wanted settings laid over it: what an update sends."""
    return outgoing({**current, **desired})
