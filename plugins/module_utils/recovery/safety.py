# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Safety backups: the copy of a stream that ``if_exists: replace`` takes before it deletes the stream.

JetStream cannot rename a stream, nor restore one under another name, so the only way to keep the old
data until the new stream is verified is a snapshot of it on disk. A safety backup is an ordinary stream
backup (``backup.json``, ``stream.tar.s2``, ``manifest.json``), restorable by stream_restore and by
``nats stream restore``. It is deleted once the new stream is verified or the old one put back; a
replace that could do neither leaves it in place and names it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import Connection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import DiskError, NatsOpsError, disk_errors
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import JetStreamApi
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup import BackupPlan, run_backup
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import (
    StreamBackup,
    find_backups,
    verify_backups,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.snapshot import SnapshotOptions


def default_safety_root() -> Path:
    """Where safety backups go unless told: the user's state directory, which survives a reboot."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "natsops.jetstream" / "safety-backups"


async def take_safety_backup(
    connection: Connection, api: JetStreamApi, info: dict[str, Any], root: Path, stall_timeout: float
) -> StreamBackup:
    """Back up the stream that ``info`` describes into ``root``, verified, before it is replaced."""
    name = info["config"]["name"]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = root / f"{name}.{stamp}-{uuid.uuid4().hex[:6]}"
    try:
        with disk_errors(doing="creating"):
            root.mkdir(parents=True, exist_ok=True, mode=0o700)  # the data of the account's streams
        plan = BackupPlan(path=path, single=True, streams=[info])
        await run_backup(connection, api, plan, SnapshotOptions(stall_timeout=stall_timeout), 1, force=False)
        (item,) = find_backups(path)
        verify_backups([item])
    except NatsOpsError as exc:
        discard_safety_backup(path)
        advice = ""
        if isinstance(exc, DiskError):
            advice = ". Fix that, or set safety_backup_dir to a directory with room for a copy of the stream"
        raise NatsOpsError(
            f"replace of {name} refused: its safety backup into {root} failed ({exc.msg}); the stream was left "
            f"as it was{advice}",
            **exc.details,
        ) from None
    return item


def discard_safety_backup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
