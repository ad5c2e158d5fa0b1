# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""The configuration-only backup of the legacy ``nats backup DIR``, read and written.

Layout and format as jsm.go writes and reads them (``jetstream_backup.go``: ``BackupJetStreamConfiguration``,
``RestoreJetStreamConfiguration``, ``BackupData``, ``ConsumerBackup``, ``backupSerialize``, ``verifySum``)::

    DIR/stream_<STREAM>.json                      one per stream
    DIR/stream_<STREAM>_consumer_<CONSUMER>.json  one per durable consumer (ephemeral ones are left out)

each ``{"type": "stream" | "consumer", "time": RFC 3339 UTC, "configuration": base64 of indented JSON,
"checksum": hex sha256 of that JSON}``; a stream's JSON is its configuration, a consumer's is
``{"name", "stream", "config"}``. Go writes ``configuration`` (a []byte) as standard base64.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_name
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (
    StagedDirectory,
    sha256_bytes,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.config_fields import outgoing

STREAM_TYPE = "stream"
CONSUMER_TYPE = "consumer"
TEMPLATE_TYPE = "stream_template"  # written by old servers' stream templates (removed in nats-server 2.10)
FILE_MODE = 0o640
DIR_MODE = 0o750
_EXPORT_FILE = re.compile(r"^stream_.+\.json$")


@dataclass
class ConfigExport:
    """Stream and durable consumer configurations, by name: what an export holds."""

    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    consumers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # what was left out, and why

    def add_stream(self, config: dict[str, Any]) -> None:
        # The server's own _nats.* metadata (its version and API level) is not configuration: the
        # importing server writes its own, and leaving it out keeps an export stable across upgrades.
        self.streams[config["name"]] = outgoing(config)

    def add_consumer(self, stream: str, config: dict[str, Any]) -> None:
        name = config.get("durable_name")
        if not name:
            self.skipped.append(f"consumer {stream} > {config.get('name') or '?'}: ephemeral")
            return
        self.consumers[(stream, name)] = outgoing(config)

    def files(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """File name -> (type, payload), as ``nats backup`` names them."""
        files: dict[str, tuple[str, dict[str, Any]]] = {}
        for name, config in sorted(self.streams.items()):
            files[stream_file(name)] = (STREAM_TYPE, config)
        for (stream, name), config in sorted(self.consumers.items()):
            files[consumer_file(stream, name)] = (CONSUMER_TYPE, {"name": name, "stream": stream, "config": config})
        return files


def stream_file(stream: str) -> str:
    return f"stream_{stream}.json"


def consumer_file(stream: str, consumer: str) -> str:
    return f"stream_{stream}_consumer_{consumer}.json"


def encode_entry(kind: str, payload: dict[str, Any], when: datetime) -> bytes:
    """One file of the export, byte for byte in the legacy form (indented two spaces, like Go's MarshalIndent)."""
    configuration = json.dumps(payload, indent=2).encode()
    entry = {
        "type": kind,
        "time": when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "configuration": base64.b64encode(configuration).decode(),
        "checksum": sha256_bytes(configuration),
    }
    return json.dumps(entry, indent=2).encode()


def decode_entry(path: Path) -> tuple[str, dict[str, Any]]:
    """(type, payload) of one file, its checksum verified."""
    try:
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise NatsOpsError(f"{path.name} is not readable JSON ({exc})") from None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in ("type", "configuration")):
        raise NatsOpsError(f"{path.name} is not a configuration backup entry (no type and configuration)")
    try:
        configuration = base64.b64decode(entry["configuration"], validate=True)
    except (binascii.Error, ValueError):
        raise NatsOpsError(f"{path.name}: its configuration is not valid base64") from None
    if sha256_bytes(configuration) != str(entry.get("checksum") or "").lower():
        raise NatsOpsError(f"{path.name}: checksum mismatch, the file was changed or damaged")
    try:
        payload = json.loads(configuration)
    except ValueError as exc:
        raise NatsOpsError(f"{path.name}: its configuration is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise NatsOpsError(f"{path.name}: its configuration is not a JSON object")
    return entry["type"], payload


def _export_entries(path: Path) -> list[Path]:
    return sorted(entry for entry in path.iterdir() if entry.is_file() and entry.suffix == ".json")


def read_export(path: Path) -> ConfigExport:
    """Every file of an export, each checksum verified first: one damaged file fails the whole read."""
    if not path.is_dir():
        raise NatsOpsError(f"{path} is not a directory: nothing to import")
    entries = _export_entries(path)
    if not entries:
        raise NatsOpsError(f"{path} holds no .json files: not a configuration export")
    decoded, damaged = [], []
    for entry in entries:
        try:
            decoded.append((entry, *decode_entry(entry)))
        except NatsOpsError as exc:
            damaged.append(exc.msg)
    if damaged:
        raise NatsOpsError(
            f"the export at {path} is damaged, so nothing was imported: " + "; ".join(damaged),
            damaged=damaged,
        )
    export = ConfigExport()
    for entry, kind, payload in decoded:
        _add_entry(export, entry, kind, payload)
    return export


_DAMAGED_EXPORT = "The export is damaged or was edited by hand"


def _add_entry(export: ConfigExport, entry: Path, kind: str, payload: dict[str, Any]) -> None:
    if kind == STREAM_TYPE:
        if not payload.get("name"):
            raise NatsOpsError(f"{entry.name}: the stream configuration has no name")
        check_name(payload["name"], where=f"in {entry.name}", advice=_DAMAGED_EXPORT)
        if payload["name"] in export.streams:
            raise NatsOpsError(f"{entry.name}: stream {payload['name']} is in the export twice")
        export.streams[payload["name"]] = payload
    elif kind == CONSUMER_TYPE:
        config, stream = payload.get("config"), payload.get("stream")
        if not isinstance(config, dict) or not stream or not (config.get("durable_name") or payload.get("name")):
            raise NatsOpsError(f"{entry.name}: the consumer entry needs name, stream and config")
        config.setdefault("durable_name", payload.get("name"))
        check_name(stream, where=f"in {entry.name}", advice="The export is damaged or was edited by hand")
        check_name(
            config["durable_name"], "consumer", f"in {entry.name}", "The export is damaged or was edited by hand"
        )
        export.consumers[(stream, config["durable_name"])] = config
    elif kind == TEMPLATE_TYPE:
        export.skipped.append(f"{entry.name}: stream templates no longer exist (nats-server 2.10+)")
    else:
        raise NatsOpsError(f"{entry.name}: unknown entry type {kind!r}")


def existing_export(path: Path) -> dict[str, tuple[str, dict[str, Any]] | None] | None:
    """What an earlier export at ``path`` holds (file -> (type, payload), None for a damaged file).

    None when nothing is at ``path``. Anything there that an export does not hold is refused: the path is
    someone else's.
    """
    if not path.exists() and not path.is_symlink():
        return None
    foreign = _foreign_entries(path)
    if foreign:
        raise NatsOpsError(
            f"{path} exists and is not a configuration export (it holds {', '.join(sorted(foreign)[:5])}); "
            "it was left untouched. Choose another path or remove it"
        )
    found: dict[str, tuple[str, dict[str, Any]] | None] = {}
    for entry in _export_entries(path):
        try:
            found[entry.name] = decode_entry(entry)
        except NatsOpsError:
            found[entry.name] = None
    return found


def _foreign_entries(path: Path) -> list[str]:
    """What at ``path`` an export does not hold (the path itself when it is no directory or a symlink)."""
    if path.is_symlink() or not path.is_dir():
        return [path.name]
    return [
        entry.name
        for entry in path.iterdir()
        if entry.is_symlink() or not (entry.is_file() and _EXPORT_FILE.match(entry.name))
    ]


def write_export(path: Path, files: dict[str, tuple[str, dict[str, Any]]], when: datetime | None = None) -> None:
    """Write the export under a temporary name and put it in place (over an earlier one) when complete."""
    when = when or datetime.now(timezone.utc)
    with StagedDirectory(path) as staged:
        os.chmod(staged.path, DIR_MODE)
        for name, (kind, payload) in files.items():
            descriptor = os.open(staged.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(encode_entry(kind, payload, when))
                handle.flush()
                os.fsync(handle.fileno())
        staged.commit(replaceable=lambda target: not _foreign_entries(target))
