"""Hostile input at the backup path: force replaces only a finished backup of the same kind, and disk
errors name the user's path and what to do. Whatever was at the path is compared before and after."""

from __future__ import annotations

import json
import shutil

import pytest
from support.fixtures import NATSCLI_FIXTURE
from support.hostile import app, hidden_leftovers, js, tree
from support.modules import ModuleFailed, run_module


@pytest.fixture(scope="module")
def small_stream(nats_standalone):
    name = "HOSTILE_PATHS"
    client = js(nats_standalone)
    client.create_stream(name)
    client.publish(f"{name}.x", 20, size=100)
    return name


@pytest.fixture(scope="module")
def big_stream(nats_standalone):
    """About 2 MB: more than the small disks below hold."""
    name = "HOSTILE_BIG"
    client = js(nats_standalone)
    client.create_stream(name)
    client.publish(f"{name}.x", 500, size=4000)
    return name


def stream_backup(server, stream, path, **extra):
    return run_module("stream_backup", app(server, stream=stream, path=str(path), **extra))


def account_backup(server, stream, path, **extra):
    return run_module("stream_backup", app(server, streams=[stream], path=str(path), **extra))


def refused_untouched(call, path, *patterns):
    before = tree(path)
    with pytest.raises(ModuleFailed) as failed:
        call()
    for pattern in patterns:
        assert pattern in failed.value.result["msg"], failed.value.result["msg"]
    assert tree(path) == before
    assert hidden_leftovers(path) == []
    return failed.value.result


# --- force replaces a finished backup of the same kind and nothing else ---------------------------


@pytest.mark.parametrize("force", [False, True])
def test_a_directory_of_unrelated_files(force, nats_standalone, small_stream, tmp_path):
    path = tmp_path / "mine"
    (path / "sub").mkdir(parents=True)
    (path / "photo.jpg").write_bytes(b"\xff\xd8 precious")
    (path / "sub" / "notes.txt").write_text("keep")
    result = refused_untouched(
        lambda: stream_backup(nats_standalone, small_stream, path, force=force),
        path,
        "is not a finished stream backup",
        "left untouched",
    )
    assert result["existing"] == "other"


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_beside_the_stream_backups_of_an_account_backup(force, nats_standalone, small_stream, tmp_path):
    path = tmp_path / "account"
    account_backup(nats_standalone, small_stream, path)
    (path / "photos").mkdir()
    (path / "photos" / "cat.jpg").write_bytes(b"meow")
    refused_untouched(
        lambda: account_backup(nats_standalone, small_stream, path, force=force), path, "not a finished account backup"
    )


@pytest.mark.parametrize("force", [False, True])
def test_a_regular_file_at_the_path(force, nats_standalone, small_stream, tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("a regular file")
    refused_untouched(lambda: stream_backup(nats_standalone, small_stream, path, force=force), path, "left untouched")


def test_a_file_beside_the_files_of_a_stream_backup(nats_standalone, small_stream, tmp_path):
    path = tmp_path / "one"
    stream_backup(nats_standalone, small_stream, path)
    (path / "README").write_text("how this backup was made")
    refused_untouched(lambda: stream_backup(nats_standalone, small_stream, path, force=True), path, "left untouched")


def test_an_account_backup_where_a_stream_backup_is_asked_for(nats_standalone, small_stream, tmp_path):
    path = tmp_path / "account"
    account_backup(nats_standalone, small_stream, path)
    refused_untouched(
        lambda: stream_backup(nats_standalone, small_stream, path, force=True), path, "not a finished stream backup"
    )


def test_a_stream_backup_where_an_account_backup_is_asked_for(nats_standalone, small_stream, tmp_path):
    path = tmp_path / "one"
    stream_backup(nats_standalone, small_stream, path)
    refused_untouched(
        lambda: account_backup(nats_standalone, small_stream, path, force=True), path, "not a finished account backup"
    )


def test_a_symlink_to_a_finished_backup(nats_standalone, small_stream, tmp_path):
    real = tmp_path / "real"
    account_backup(nats_standalone, small_stream, real)
    link = tmp_path / "link"
    link.symlink_to(real)
    real_before = tree(real)
    refused_untouched(lambda: account_backup(nats_standalone, small_stream, link, force=True), link, "left untouched")
    assert tree(real) == real_before


def test_an_unfinished_backup_is_not_replaced(nats_standalone, small_stream, tmp_path):
    path = tmp_path / "half"
    path.mkdir()
    (path / "backup.json").write_text(json.dumps({"config": {"name": small_stream}, "state": {}}))
    refused_untouched(lambda: stream_backup(nats_standalone, small_stream, path, force=True), path, "left untouched")


def test_a_natscli_account_backup_is_replaced_only_by_an_account_backup(nats_standalone, small_stream, tmp_path):
    path = tmp_path / "natscli"
    shutil.copytree(NATSCLI_FIXTURE / "account-backup", path)
    refused_untouched(lambda: stream_backup(nats_standalone, small_stream, path, force=True), path, "left untouched")
    replaced = account_backup(nats_standalone, small_stream, path, force=True)
    assert replaced["changed"]
    assert sorted(entry.name for entry in path.iterdir()) == [small_stream]
    assert hidden_leftovers(path) == []


def test_force_replaces_a_finished_backup_of_the_same_kind(nats_standalone, small_stream, tmp_path):
    path = tmp_path / "one"
    first = stream_backup(nats_standalone, small_stream, path)
    again = stream_backup(nats_standalone, small_stream, path)
    assert not again["changed"]
    forced = stream_backup(nats_standalone, small_stream, path, force=True)
    assert forced["changed"] and forced["backups"][0]["messages"] == first["backups"][0]["messages"]
    assert hidden_leftovers(path) == []


# --- disk errors name the user's path and what to do ------------------------------------------------


def test_a_full_disk_names_the_path_and_leaves_nothing(nats_standalone, big_stream, small_disk):
    disk = small_disk("256k")
    path = disk / "backups" / "big"
    with pytest.raises(ModuleFailed) as failed:
        stream_backup(nats_standalone, big_stream, path)
    msg = failed.value.result["msg"]
    assert f"backup of {big_stream} failed" in msg
    assert f"{path}/stream.tar.s2" in msg and ".partial-" not in msg, msg
    assert "No space left on device" in msg and "free space" in msg
    assert not path.exists() and hidden_leftovers(path) == []


def test_a_full_disk_in_an_account_backup(nats_standalone, big_stream, small_stream, small_disk):
    disk = small_disk("256k")
    path = disk / "account"
    with pytest.raises(ModuleFailed) as failed:
        run_module("stream_backup", app(nats_standalone, streams=[big_stream, small_stream], path=str(path)))
    msg = failed.value.result["msg"]
    # Whichever stream's write met the full disk first is named, and the file, by its place under the
    # user's path: its data, or (the other stream having filled the disk) its backup.json or manifest.
    failed_stream = next(name for name in (big_stream, small_stream) if f"backup of {name} failed" in msg)
    written = (
        f"writing {path / failed_stream}/{file} failed" for file in ("stream.tar.s2", "backup.json", "manifest.json")
    )
    assert any(text in msg for text in written) and ".partial-" not in msg, msg
    assert "No space left on device" in msg and f"nothing was kept at {path}" in msg
    assert not path.exists() and hidden_leftovers(path) == []


def test_a_read_only_file_system(nats_standalone, small_stream, small_disk):
    disk = small_disk("1m", read_only=True)
    path = disk / "backup"
    with pytest.raises(ModuleFailed) as failed:
        stream_backup(nats_standalone, small_stream, path)
    msg = failed.value.result["msg"]
    assert "Read-only file system" in msg and "choose another path" in msg, msg
    assert ".partial-" not in msg


def test_a_file_where_the_parent_directory_should_be(nats_standalone, small_stream, tmp_path):
    (tmp_path / "not-a-dir").write_text("x")
    path = tmp_path / "not-a-dir" / "backup"
    with pytest.raises(ModuleFailed) as failed:
        stream_backup(nats_standalone, small_stream, path)
    msg = failed.value.result["msg"]
    assert f"creating {tmp_path / 'not-a-dir'} failed" in msg, msg
    assert "not a directory stands there: choose another path" in msg, msg
    assert (tmp_path / "not-a-dir").read_text() == "x"
