"""Two restores of the same stream at once: the second is refused by name, and the first is not disturbed.

Before claims, the second took the first's half-made stream for an interrupted one and deleted it, and
both failed; on a standalone 2.14 server both could even report success over damaged data.
"""

from __future__ import annotations

import signal
import socket

import pytest
from support.hostile import app, fill, js
from support.modules import ModuleFailed, run_module
from support.playbooks import PlaybookRun
from support.servers import NatsNode, older_server
from support.streams import wait_for_data


@pytest.fixture(params=["pinned", "2.14.6"])
def servers(request, tmp_path):
    """A source and a target of one release: 2.14 restores only its own V1 archives."""
    binary = None if request.param == "pinned" else older_server(request.param)
    nodes = [NatsNode(name, tmp_path / name, binary=binary).start() for name in ("source", "target")]
    yield nodes
    for node in nodes:
        node.kill()


def test_a_second_restore_of_a_stream_being_restored_is_refused(servers, tmp_path):
    source, target = servers
    name = "TWICE"
    fill(js(source), name, count=10000)  # about 20 MB compressed: two seconds of restore in 1 KiB chunks
    before = js(source).snapshot_of(name)
    backup = tmp_path / name
    run_module("stream_backup", app(source, stream=name, path=str(backup)))
    args = app(target, path=str(backup), chunk_size=1024)
    first = PlaybookRun(tmp_path / "first", "stream_restore", args)  # another process, as another operator's
    wait_for_data([target])

    refused = refused_restore(args, check_mode=True)  # a check-mode run sees it too, and takes nothing from it
    assert f"another restore is restoring {name} right now ({name} by {socket.gethostname()} pid " in refused["msg"]
    assert "nothing was restored" in refused["msg"]
    # A restore whose process is stopped still holds its stream (the server gives up on it after 5 s idle).
    first.signal(signal.SIGSTOP)
    try:
        refused = refused_restore({**args, "if_exists": "replace"})
    finally:
        first.signal(signal.SIGCONT)
    assert "a restore that does not answer (its process is stopped or stalled)" in refused["msg"], refused["msg"]

    result = first.result()
    assert not result.get("failed"), result
    assert result["restored"][0]["verification"]["match"]
    assert js(target).snapshot_of(name) == before


def refused_restore(args, check_mode=False):
    with pytest.raises(ModuleFailed) as refused:
        run_module("stream_restore", args, check_mode=check_mode)
    assert list(refused.value.result["being_restored"]) == ["TWICE"]
    return refused.value.result


def test_a_restore_whose_owner_is_gone_is_redone(fresh_standalone, tmp_path, unique_name):
    """A half-made stream whose owner's claim is gone (the owner was killed) is redone, not refused."""
    name = unique_name("ORPHAN")
    client = js(fresh_standalone)
    fill(client, name, count=50, size=100)
    before = client.snapshot_of(name)
    backup = tmp_path / name
    run_module("stream_backup", app(fresh_standalone, stream=name, path=str(backup)))
    client.delete_stream(name)
    # What a killed restore leaves on 2.15: the stream, with the marker and its owner, and no live claim.
    metadata = {
        "natsops.jetstream.restore": "incomplete",
        "natsops.jetstream.restore.owner": "elsewhere pid 1",
        "natsops.jetstream.restore.since": "2026-01-01T00:00:00Z",
    }
    client.create_stream(name, metadata=metadata)
    redone = run_module("stream_restore", app(fresh_standalone, path=str(backup)))
    assert redone["restored"][0]["action"] == "redone"
    assert client.snapshot_of(name) == before
    assert not set(metadata) & set(client.stream_info(name)["config"].get("metadata") or {})
