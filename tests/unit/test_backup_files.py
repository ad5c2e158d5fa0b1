"""On-disk backups: layout detection, manifest checks, S2 framing and atomic directories."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery import backup_files
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup import existing_backup
from support.fixtures import NATSCLI_FIXTURE

FIXTURE = NATSCLI_FIXTURE / "account-backup"


def make_stream_backup(directory: Path, data: bytes, with_manifest: bool = True) -> Path:
    directory.mkdir(parents=True)
    (directory / "stream.tar.s2").write_bytes(data)
    backup_bytes = backup_files.write_json(
        directory / "backup.json", {"config": {"name": directory.name}, "state": {"messages": 1}}
    )
    if with_manifest:
        backup_files.write_json(
            directory / "manifest.json",
            {
                "format": backup_files.MANIFEST_FORMAT,
                "format_version": 1,
                "stream": directory.name,
                "files": {
                    "stream.tar.s2": {"size": len(data), "sha256": backup_files.sha256_bytes(data)},
                    "backup.json": {"size": len(backup_bytes), "sha256": backup_files.sha256_bytes(backup_bytes)},
                },
            },
        )
    return directory


def s2_stream(*bodies: bytes) -> bytes:
    frames = [backup_files.S2_MAGIC]
    for body in bodies:
        frames.append(b"\x01" + len(body).to_bytes(3, "little") + body)
    return b"".join(frames)


def test_natscli_fixture_passes_framing_check():
    for stream in ("ORDERS", "EVENTS"):
        checked = backup_files.verify_stream_backup(FIXTURE / stream)
        assert checked == {
            "manifest": False,
            "method": "s2-framing",
            "size": (FIXTURE / stream / "stream.tar.s2").stat().st_size,
        }


def test_truncated_natscli_backup_is_refused(tmp_path):
    copy = tmp_path / "ORDERS"
    shutil.copytree(FIXTURE / "ORDERS", copy)
    data = (copy / "stream.tar.s2").read_bytes()
    (copy / "stream.tar.s2").write_bytes(data[: len(data) - 100])
    with pytest.raises(NatsOpsError, match="truncated"):
        backup_files.verify_stream_backup(copy)


def test_foreign_file_is_not_an_s2_stream(tmp_path):
    directory = make_stream_backup(tmp_path / "S", b"tar-not-s2", with_manifest=False)
    with pytest.raises(NatsOpsError, match="not an S2 stream"):
        backup_files.verify_stream_backup(directory)


def test_manifest_catches_bit_flip_and_truncation(tmp_path):
    data = s2_stream(b"a" * 1000, b"b" * 500)
    directory = make_stream_backup(tmp_path / "S", data)
    assert backup_files.verify_stream_backup(directory)["method"] == "sha256"

    flipped = bytearray(data)
    flipped[700] ^= 0x01
    (directory / "stream.tar.s2").write_bytes(bytes(flipped))
    with pytest.raises(NatsOpsError, match="sha256"):
        backup_files.verify_stream_backup(directory)

    (directory / "stream.tar.s2").write_bytes(data[:-10])
    with pytest.raises(NatsOpsError, match="truncated or damaged"):
        backup_files.verify_stream_backup(directory)


def test_manifest_from_a_newer_collection_is_refused(tmp_path):
    directory = make_stream_backup(tmp_path / "S", s2_stream(b"x"))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["format_version"] = 99
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NatsOpsError, match="newer"):
        backup_files.verify_stream_backup(directory)


def test_missing_data_file_is_incomplete(tmp_path):
    directory = make_stream_backup(tmp_path / "S", s2_stream(b"x"))
    (directory / "stream.tar.s2").unlink()
    with pytest.raises(NatsOpsError, match="incomplete"):
        backup_files.verify_stream_backup(directory)


def test_staged_directory_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "backup"
    with pytest.raises(RuntimeError), backup_files.StagedDirectory(target) as staged:
        (staged.path / "backup.json").write_text("{}")
        raise RuntimeError("server died")
    assert list(tmp_path.iterdir()) == []


def test_staged_directory_replaces_only_when_asked(tmp_path):
    target = tmp_path / "backup"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(NatsOpsError), backup_files.StagedDirectory(target) as staged:
        (staged.path / "new").write_text("new")
        staged.commit()
    assert [p.name for p in target.iterdir()] == ["old"]
    with backup_files.StagedDirectory(target) as staged:
        (staged.path / "new").write_text("new")
        staged.commit(replaceable=lambda target: True)
    assert [p.name for p in target.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["backup"]


def test_existing_backup_kinds(tmp_path):
    assert existing_backup(tmp_path / "none", single=True) == "absent"
    single = make_stream_backup(tmp_path / "one" / "S", s2_stream(b"x")).parent / "S"
    assert existing_backup(single, single=True) == "finished"
    assert existing_backup(FIXTURE, single=False) == "finished"
    assert existing_backup(FIXTURE, single=True) == "other"
    account = tmp_path / "account"
    shutil.copytree(FIXTURE, account)
    (account / "notes.txt").write_text("an extra top-level file breaks nats account restore")
    assert existing_backup(account, single=False) == "other"
    half = make_stream_backup(tmp_path / "half" / "S", s2_stream(b"x" * 100))
    (half / "stream.tar.s2").write_bytes(b"short")
    assert existing_backup(half, single=True) == "other"


def test_only_a_finished_backup_holding_nothing_else_is_finished(tmp_path):
    """force replaces only what is FINISHED: anything else at the path must read as OTHER."""
    single = make_stream_backup(tmp_path / "one" / "S", s2_stream(b"x"))
    (single / "notes.txt").write_text("mine")
    assert existing_backup(single, single=True) == "other"
    account = tmp_path / "account"
    shutil.copytree(FIXTURE, account)
    (account / "unrelated").mkdir()
    assert existing_backup(account, single=False) == "other"  # a folder beside the stream backups
    (account / "unrelated").rmdir()
    (account / ".hidden").write_text("mine")
    assert existing_backup(account, single=False) == "other"
    (tmp_path / "file").write_text("a regular file")
    assert existing_backup(tmp_path / "file", single=True) == "other"
    assert existing_backup(tmp_path / "file", single=False) == "other"
    (tmp_path / "link").symlink_to(FIXTURE)
    assert existing_backup(tmp_path / "link", single=False) == "other"
    (tmp_path / "empty").mkdir()
    assert existing_backup(tmp_path / "empty", single=False) == "other"


def test_background_writer_keeps_order_size_and_checksum_across_batches_and_syncs(tmp_path):
    chunks = [bytes([index % 251]) * (1000 + index) for index in range(300)]  # ~450 KB, uneven sizes
    path = tmp_path / "stream.tar.s2"
    writer = backup_files.BackgroundWriter(path, queue_bytes=8192, batch_bytes=4096, sync_every=16384)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    writer.close(sync=False)  # the clean-up path closes again: a no-op
    expected = b"".join(chunks)
    assert path.read_bytes() == expected
    assert writer.size == len(expected)
    assert writer.sha256 == backup_files.sha256_bytes(expected)


def test_a_failed_periodic_sync_fails_the_close(tmp_path):
    """A failed fdatasync is not forgotten: after one, a later fsync may well succeed."""
    read_end, write_end = os.pipe()  # fdatasync of a pipe fails (EINVAL): a real failing sync
    try:
        sync = backup_files.PeriodicSync(write_end, every=10)
        sync.written(100)
        with pytest.raises(OSError):
            sync.stop()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_failed_write_reaches_the_caller(tmp_path):
    path = tmp_path / "stream.tar.s2"
    writer = backup_files.BackgroundWriter(path, batch_bytes=1)
    writer._writer._handle.close()  # every later write fails, as on a vanished disk
    writer.write(b"chunk")
    with pytest.raises(ValueError):
        for _attempt in range(100):  # raised by a later write once the thread has failed, else by close
            writer.write(b"chunk")
            time.sleep(0.01)
        writer.close()
    writer.close(sync=False)


def test_a_full_disk_fails_with_a_message_naming_the_file():
    """/dev/full answers every write with ENOSPC: a real full disk."""
    writer = backup_files.BackgroundWriter(Path("/dev/full"), batch_bytes=1)
    with pytest.raises(NatsOpsError, match=r"writing /dev/full failed: .*No space left on device"):
        for _attempt in range(100):  # raised by a later write once the thread has failed, else by close
            writer.write(b"x" * 65536)
            time.sleep(0.01)
        writer.close()
    writer.close(sync=False)


def test_a_staged_directory_removes_only_what_dead_writers_on_this_host_left(tmp_path):
    """A writer killed with SIGKILL leaves its hidden work; the next run on the host removes it, and only it."""
    host = socket.gethostname()
    dead_pid = 2**22 + 1  # above the largest pid_max Linux allows: no such process
    dead = tmp_path / f".backup.partial-{dead_pid}@{host}-0123456789"
    dead_aside = tmp_path / f".backup.replaced-{dead_pid}@{host}-abcdefabcd"
    alive = tmp_path / f".backup.partial-{os.getpid()}@{host}-9876543210"
    elsewhere = tmp_path / f".backup.partial-{dead_pid}@another-host-0123456789"
    unrelated = tmp_path / f".other.partial-{dead_pid}@{host}-0123456789"
    for directory in (dead, dead_aside, alive, elsewhere, unrelated):
        directory.mkdir()
        (directory / "stream.tar.s2").write_bytes(b"partial")
    with backup_files.StagedDirectory(tmp_path / "backup") as staged:
        (staged.path / "new").write_text("new")
        staged.commit()
    left = sorted(entry.name for entry in tmp_path.iterdir())
    assert left == sorted(["backup", alive.name, elsewhere.name, unrelated.name])


def test_a_stream_smaller_than_a_batch_is_written_without_threads(tmp_path):
    """Most streams of an account are small: starting and joining two threads for each cost more than the data."""
    small = backup_files.BackgroundWriter(tmp_path / "small", batch_bytes=1024)
    small.write(b"a" * 500)
    small.close()
    assert small._thread is None and (tmp_path / "small").read_bytes() == b"a" * 500
    assert small.sha256 == hashlib.sha256(b"a" * 500).hexdigest()

    big = backup_files.BackgroundWriter(tmp_path / "big", batch_bytes=1024)
    for _batch in range(5):
        big.write(b"b" * 600)
    big.close()
    assert big._thread is not None and (tmp_path / "big").read_bytes() == b"b" * 3000
    assert big.sha256 == hashlib.sha256(b"b" * 3000).hexdigest()
