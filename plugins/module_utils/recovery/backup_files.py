# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Backups on disk: the natscli layout, our manifest, checksums and atomic directories.

Layout, as ``nats stream backup`` / ``nats account backup`` write it::

    DIR/backup.json  DIR/stream.tar.s2             (one stream)
    DIR/<stream>/backup.json  DIR/<stream>/stream.tar.s2   (an account)

Our extra facts go in ``manifest.json`` beside each stream's ``backup.json``, never at the top of an
account backup: ``nats account restore`` refuses any top-level entry that is not a stream directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import socket
import threading
import uuid
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Callable

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import DiskError, NatsOpsError, disk_errors

BACKUP_JSON = "backup.json"
DATA_FILE = "stream.tar.s2"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "natsops.jetstream/stream-backup"
MANIFEST_VERSION = 1
S2_MAGIC = b"\xff\x06\x00\x00S2sTwO"
# Everything a stream backup directory may hold (natscli writes the first two, we add the manifest).
BACKUP_FILES = frozenset({BACKUP_JSON, DATA_FILE, MANIFEST})
_HASH_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> bytes:
    """Write JSON durably; return the bytes written (for checksums).

    One line: indented, json uses its pure-Python encoder, which cost 0.45 ms a stream in an account backup.
    """
    encoded = (json.dumps(data) + "\n").encode()
    try:
        with open(path, "wb") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:  # a failed write names no file: name it
        raise DiskError("writing", path, exc) from None
    return encoded


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise DiskError("syncing", path, exc) from None


class HashingWriter:
    """A file that counts and hashes what is written to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._digest = hashlib.sha256()
        self._handle: BinaryIO = open(path, "wb")  # noqa: SIM115  (closed by close())

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self.size += len(data)

    def fileno(self) -> int:
        return self._handle.fileno()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self, sync: bool = True) -> None:
        if self._handle.closed:
            return
        if sync:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        self._handle.close()


class PeriodicSync:
    """fdatasync of a file on a thread of its own, each time ``every`` more bytes were written.

    The disk then writes while the rest of the data arrives, the writing thread never waits for it,
    and the final fsync waits for the last stretch only instead of the whole file. A failed sync is
    kept and raised by ``stop``: after a failed fdatasync a later fsync may report success.
    """

    def __init__(self, fd: int, every: int) -> None:
        self._fd = fd
        self._every = every
        self._requested_at = 0
        self._synced_at = 0
        self._wanted = threading.Event()
        self._stopping = False
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self._thread.start()

    def written(self, size: int) -> None:
        """Note the file's size so far; wakes the thread when another ``every`` bytes are in."""
        if size - self._requested_at >= self._every:
            self._requested_at = size
            self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._synced_at < self._requested_at:  # a requested sync happens even when stopping
                self._synced_at = self._requested_at
                try:
                    os.fdatasync(self._fd)
                except OSError as exc:
                    self.error = self.error or exc
            if self._stopping:
                return

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        if self.error is not None:
            raise self.error


class BackgroundWriter:
    """A HashingWriter fed by one thread, in batches, through a queue of at most ``queue_bytes``.

    Hashing and writing release the GIL, so the disk work overlaps with receiving and acknowledging
    the next chunks instead of adding to them; a PeriodicSync keeps the disk busy meanwhile. Chunks
    travel in batches of about ``batch_bytes``: every hand-over wakes the thread, and each wake-up
    costs the receiving thread a turn at the GIL. The queue bounds memory; when the disk falls behind,
    ``write`` waits, and with it the acks that pace the server.
    A failed write is raised by the next ``write`` or by ``close``.

    The threads start with the first full batch: a stream smaller than one batch (most streams of an
    account) is written by ``close`` in one go, without the 1.2 ms that starting and joining them cost.
    """

    def __init__(
        self,
        path: Path,
        queue_bytes: int = 16 * 1024 * 1024,
        batch_bytes: int = 1024 * 1024,
        sync_every: int = 16 * 1024 * 1024,
    ) -> None:
        self._writer = HashingWriter(path)
        self._fd = self._writer.fileno()
        self._sync_every = sync_every
        self._sync: PeriodicSync | None = None
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=max(2, queue_bytes // batch_bytes))
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._batch_bytes = batch_bytes
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._sync = PeriodicSync(self._fd, self._sync_every)
        name = f"write {self._writer.path.name}"
        self._thread = threading.Thread(target=self._drain, args=(self._sync,), name=name, daemon=True)
        self._thread.start()

    def _drain(self, sync: PeriodicSync) -> None:
        while (batch := self._queue.get()) is not None:
            self._write(batch)
            sync.written(self._writer.size)

    def _write(self, batch: list[bytes]) -> None:
        for data in batch:
            if self._error is not None:
                break
            try:
                self._writer.write(data)
            except BaseException as exc:  # handed to the caller by write() or close()
                self._error = exc

    def _failed(self) -> BaseException | None:
        """The first failure of the writing or the syncing thread, a disk error as a NatsOpsError naming the file."""
        error = self._error or (self._sync.error if self._sync else None)
        return self._disk_error(error) if isinstance(error, OSError) else error

    def _disk_error(self, error: OSError) -> DiskError:
        return DiskError("writing", self._writer.path, error)

    def write(self, data: bytes) -> None:
        if (error := self._failed()) is not None:
            raise error
        self._batch.append(data)
        self._batch_size += len(data)
        if self._batch_size >= self._batch_bytes:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._batch:
            if self._thread is None:
                self._start()
            self._queue.put(self._batch)
            self._batch = []
            self._batch_size = 0

    @property
    def size(self) -> int:
        return self._writer.size

    @property
    def sha256(self) -> str:
        return self._writer.sha256

    def close(self, sync: bool = True) -> None:
        """Write what is queued, then close (with fsync when ``sync``). Safe to call again."""
        if self._thread is None:
            self._write(self._batch)  # never a full batch: written here, no thread needed
            self._batch, self._batch_size = [], 0
        elif self._thread.is_alive():
            self._hand_over()
            self._queue.put(None)
            self._thread.join()
        if self._sync is not None:
            with contextlib.suppress(OSError):  # a failed sync stays in self._sync.error, which _failed() reads
                self._sync.stop()
        if (error := self._failed()) is not None:
            with contextlib.suppress(OSError):  # flushing what is left fails the same way: the first failure tells
                self._writer.close(sync=False)
            if sync:
                raise error
        try:
            self._writer.close(sync)
        except OSError as exc:
            if sync:
                raise self._disk_error(exc) from None
            # Without sync the file is being discarded after another failure: that one is what matters.


_HOST = socket.gethostname()
_LEFTOVER = re.compile(r"^(partial|replaced)-(?P<pid>\d+)@(?P<host>.+)-[0-9a-f]{10}$")


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` may still write: a zombie (killed, not yet reaped) never will."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class StagedDirectory:
    """A directory written under a hidden temporary name and renamed into place only on commit.

    A failure before commit removes the staging directory, so nothing that looks like a finished
    backup is ever left at the target path. With ``replace``, an existing target is moved aside only
    after the new one is complete, and deleted only after the new one is in place.

    The hidden names carry the writer's host and process id: a process killed mid-way (SIGKILL runs no
    clean-up) leaves its work behind, and the next run on the same host removes what a dead process left.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        owner = f"{os.getpid()}@{_HOST}"
        token = uuid.uuid4().hex[:10]
        self.path = target.parent / f".{target.name}.partial-{owner}-{token}"
        self._aside = target.parent / f".{target.name}.replaced-{owner}-{token}"

    def shown(self, error: DiskError) -> DiskError:
        """The error with the target's path in place of the hidden staging one the user never sees."""
        if error.path.is_relative_to(self.path):
            return error.shown_as(self.target / error.path.relative_to(self.path))
        return error

    def __enter__(self) -> StagedDirectory:
        with disk_errors(doing="creating"):
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._remove_what_dead_writers_left()
            self.path.mkdir()
        return self

    def _remove_what_dead_writers_left(self) -> None:
        prefix = f".{self.target.name}."
        for entry in self.target.parent.iterdir():
            found = _LEFTOVER.match(entry.name[len(prefix) :]) if entry.name.startswith(prefix) else None
            if found and found["host"] == _HOST and not _process_alive(int(found["pid"])):
                shutil.rmtree(entry, ignore_errors=True)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, replaceable: Callable[[Path], bool] | None = None) -> None:
        """Rename into place. Something already at the target is replaced only if ``replaceable`` says so,
        judged again now: what was checked before the backup began may have changed since."""
        fsync_dir(self.path)
        if self.target.exists() or self.target.is_symlink():
            if replaceable is None or not replaceable(self.target):
                raise NatsOpsError(
                    f"{self.target} appeared or changed while the backup was written and is not a finished backup "
                    "this one may replace; it was left untouched and the new backup discarded: run again"
                )
            os.rename(self.target, self._aside)
            os.rename(self.path, self.target)
            shutil.rmtree(self._aside, ignore_errors=True)
        else:
            os.rename(self.path, self.target)
        fsync_dir(self.target.parent)


def is_stream_backup(path: Path) -> bool:
    return (path / BACKUP_JSON).is_file()


def stream_dirs_of_account_backup(path: Path) -> list[Path]:
    """The stream directories of an account backup, as ``nats account restore`` sees them."""
    if not path.is_dir():
        return []
    return sorted(entry for entry in path.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def read_backup_json(stream_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((stream_dir / BACKUP_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NatsOpsError(f"{stream_dir} holds no {BACKUP_JSON}: not a stream backup") from None
    except (OSError, ValueError) as exc:
        raise NatsOpsError(f"{stream_dir / BACKUP_JSON} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or not data["config"].get("name"):
        raise NatsOpsError(f"{stream_dir / BACKUP_JSON} has no stream config with a name: not a stream backup")
    if not isinstance(data.get("state"), dict):
        raise NatsOpsError(f"{stream_dir / BACKUP_JSON} has no stream state: not a stream backup")
    return data


def read_manifest(stream_dir: Path) -> dict[str, Any] | None:
    path = stream_dir / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NatsOpsError(f"{path} is not readable JSON ({exc}): the backup is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise NatsOpsError(f"{path} is not a natsops.jetstream backup manifest")
    if int(manifest.get("format_version") or 0) > MANIFEST_VERSION:
        raise NatsOpsError(f"{path} was written by a newer natsops.jetstream: upgrade the collection to read it")
    return manifest


def check_s2_framing(path: Path) -> None:
    """Walk the S2 stream's chunk headers (without decompressing): catches truncation and foreign files.

    S2 keeps Snappy's framing: a 1-byte chunk type and a 3-byte little-endian length, then the body.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if handle.read(len(S2_MAGIC)) != S2_MAGIC:
            raise NatsOpsError(f"{path} is not an S2 stream: not a JetStream snapshot")
        offset = len(S2_MAGIC)
        while offset < size:
            header = handle.read(4)
            if len(header) < 4:
                raise NatsOpsError(f"{path} is truncated: a chunk header is cut at byte {offset}")
            length = int.from_bytes(header[1:4], "little")
            offset += 4 + length
            if offset > size:
                raise NatsOpsError(f"{path} is truncated: its last chunk needs {offset - size} more bytes")
            handle.seek(offset)


class ArchiveFormat(str, Enum):
    """What a snapshot's stream.tar.s2 holds inside its S2 compression."""

    V1 = "v1"  # a tar of the stream's store files (nats-server before 2.15)
    V2 = "v2"  # ADR-63 "backup V2", a NATSARC1 archive (nats-server 2.15+, which alone can restore it)
    UNKNOWN = "unknown"


V2_MAGIC = b"NATSARC1"
# The release that reads each format back: a V2 archive offered to an older server is refused by it.
RESTORABLE_FROM = {ArchiveFormat.V1: (2, 10, 0), ArchiveFormat.V2: (2, 15, 0)}


def archive_format(path: Path) -> ArchiveFormat:
    """Tell V1 from V2 by the first bytes the S2 stream decodes to, without reading the rest.

    V2 starts with ``NATSARC1``; V1 is a tar, whose first header has the ``ustar`` magic at offset 257.
    """
    start = _first_bytes(path, 512)
    if start.startswith(V2_MAGIC):
        return ArchiveFormat.V2
    if start[257:262] == b"ustar":
        return ArchiveFormat.V1
    return ArchiveFormat.UNKNOWN


def _first_bytes(path: Path, wanted: int) -> bytes:
    """Up to ``wanted`` bytes decoded from the start of the first S2 data chunk (b"" if there is none)."""
    with open(path, "rb") as handle:
        if handle.read(len(S2_MAGIC)) != S2_MAGIC:
            return b""
        while len(header := handle.read(4)) == 4:
            kind, length = header[0], int.from_bytes(header[1:4], "little")
            if kind == 0x01:  # uncompressed data, after a 4-byte CRC
                return handle.read(min(length, 4 + wanted))[4:]
            if kind == 0x00:  # compressed data, after a 4-byte CRC
                return decode_s2_block(handle.read(length)[4:], wanted)
            handle.seek(length, os.SEEK_CUR)  # padding or a skippable chunk
    return b""


def decode_s2_block(block: bytes, wanted: int | None = None) -> bytes:
    """Decode an S2 block, or until ``wanted`` bytes are out (S2 is Snappy plus a 'repeat last offset' copy).

    No CRC check: a damaged block decodes to what came before the damage.
    """
    limit = float("inf") if wanted is None else wanted
    out = bytearray()
    index = 0
    while index < len(block) and block[index] & 0x80:  # skip the uncompressed length, a varint
        index += 1
    index += 1
    offset = 0
    try:
        while index < len(block) and len(out) < limit:
            tag = block[index]
            kind = tag & 0x03
            if kind == 0:  # literal: the length in the tag, or in the 1 to 4 bytes after it
                size = tag >> 2
                index += 1
                if size >= 60:
                    extra = size - 59
                    size = int.from_bytes(block[index : index + extra], "little")
                    index += extra
                out += block[index : index + size + 1]
                index += size + 1
                continue
            if kind == 1:  # copy with a 1-byte offset, or S2's repeat of the last offset
                size = (tag >> 2) & 0x07
                given = ((tag & 0xE0) << 3) | block[index + 1]
                index += 2
                if given:
                    offset = given
                elif size >= 5:  # a repeat with a longer length in the next 1 to 3 bytes
                    extra = size - 4
                    size = int.from_bytes(block[index : index + extra], "little") + (0, 4, 1 << 8, 1 << 16)[extra]
                    index += extra
                size += 4
            else:  # copy with a 2- or 4-byte offset
                width = 2 if kind == 2 else 4
                size = (tag >> 2) + 1
                offset = int.from_bytes(block[index + 1 : index + 1 + width], "little")
                index += 1 + width
            if not 0 < offset <= len(out):
                return bytes(out)  # damaged: what was decoded so far is all there is
            start = len(out) - offset
            if offset >= size:
                out += out[start : start + size]
            else:  # overlapping what it writes: the last ``offset`` bytes repeated
                out += (out[start:] * (size // offset + 1))[:size]
    except IndexError:
        pass
    return bytes(out[:wanted])


def verify_stream_backup(stream_dir: Path) -> dict[str, Any]:
    """Check a stream backup before it is used; return what was checked.

    With our manifest, sizes and sha256 of every file must match. Without one (a natscli backup),
    backup.json must be whole and the data a complete S2 stream.
    """
    backup = read_backup_json(stream_dir)
    data_path = stream_dir / DATA_FILE
    if not data_path.is_file():
        raise NatsOpsError(f"{stream_dir} holds no {DATA_FILE}: the backup is incomplete")
    manifest = read_manifest(stream_dir)
    if manifest is None:
        check_s2_framing(data_path)
        return {"manifest": False, "method": "s2-framing", "size": data_path.stat().st_size}
    if manifest.get("stream") != backup["config"]["name"]:
        raise NatsOpsError(f"{stream_dir}: manifest names stream {manifest.get('stream')!r}, backup.json another")
    for name, expected in (manifest.get("files") or {}).items():
        file_path = stream_dir / name
        if not file_path.is_file():
            raise NatsOpsError(f"{file_path} is missing: the backup is incomplete")
        actual_size = file_path.stat().st_size
        if actual_size != expected["size"]:
            raise NatsOpsError(
                f"{file_path} has {actual_size} bytes where the manifest says {expected['size']}: "
                "the backup is truncated or damaged"
            )
        if sha256_file(file_path) != expected["sha256"]:
            raise NatsOpsError(f"{file_path} does not match its sha256 in the manifest: the backup is damaged")
    missing = {BACKUP_JSON, DATA_FILE} - set(manifest.get("files") or {})
    if missing:
        raise NatsOpsError(f"{stream_dir / MANIFEST} does not cover {', '.join(sorted(missing))}")
    return {"manifest": True, "method": "sha256", "size": data_path.stat().st_size}


def looks_finished(stream_dir: Path) -> bool:
    """A cheap test (no hashing) that a directory is a completed stream backup and holds nothing else."""
    if stream_dir.is_symlink() or not stream_dir.is_dir():
        return False
    entries = list(stream_dir.iterdir())
    if any(entry.name not in BACKUP_FILES or entry.is_symlink() or not entry.is_file() for entry in entries):
        return False
    if not (is_stream_backup(stream_dir) and (stream_dir / DATA_FILE).is_file()):
        return False
    try:
        manifest = read_manifest(stream_dir)
    except NatsOpsError:
        return False
    if manifest is None:
        return True
    return all(
        (stream_dir / name).is_file() and (stream_dir / name).stat().st_size == entry["size"]
        for name, entry in (manifest.get("files") or {}).items()
    )
