"""Two restores of the same stream at once: the second is refused by name, and the first is not disturbed.

Before claims, the second took the first's half-made stream for an interrupted one and deleted it, and
both failed; on a standalone 2.14 server both could even report success over damaged data.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import nats
import pytest
from support.hostile import app, fill, js
from support.modules import ModuleFailed, run_module
from support.playbooks import PlaybookRun
from support.servers import APP_PASSWORD, APP_USER, NatsNode, older_server
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


RESTRICTED = """
accounts {
  APP {
    jetstream: enabled
    users: [{
      user: app, password: app-secret,
      permissions: { publish: { allow: ["$JS.API.>", "$JS.SNAPSHOT.>"] }, subscribe: { allow: ["_INBOX.>"] } }
    }]
  }
  SYS { users: [{user: sys, password: sys-secret}] }
}
system_account: SYS
"""


def test_an_account_that_cannot_claim_restores_with_a_warning(nats_standalone, tmp_path, unique_name):
    """Claims need _INBOX.natsops.restore.>; without them the restore goes on, as before claims, and says so."""
    name = unique_name("NOCLAIM")
    fill(js(nats_standalone), name, count=20, size=100)
    before = js(nats_standalone).snapshot_of(name)
    backup = tmp_path / name
    run_module("stream_backup", app(nats_standalone, stream=name, path=str(backup)))
    node = NatsNode("restricted", tmp_path / "restricted", auth_config=RESTRICTED).start()
    try:
        result = run_module("stream_restore", app(node, path=str(backup)))
        assert result["restored"][0]["verification"]["match"]
        assert any("could not be checked" in warning for warning in result["warnings"]), result["warnings"]
        assert js(node).snapshot_of(name) == before
    finally:
        node.kill()


def test_a_listener_on_every_subject_does_not_pass_for_a_restore(fresh_standalone, nats_standalone, tmp_path):
    """Someone watching '>' hears the claims but never answers: not taken for a stopped restore."""
    fill(js(nats_standalone), "WATCHED", count=20, size=100)
    backup = tmp_path / "WATCHED"
    run_module("stream_backup", app(nats_standalone, stream="WATCHED", path=str(backup)))

    async def watch_and_restore() -> dict:
        watcher = await nats.connect(fresh_standalone.urls, user=APP_USER, password=APP_PASSWORD)
        await watcher.subscribe(">")
        await watcher.flush()
        try:
            return await asyncio.to_thread(run_module, "stream_restore", app(fresh_standalone, path=str(backup)))
        finally:
            await watcher.close()

    result = asyncio.run(watch_and_restore())
    assert result["restored"][0]["action"] == "restored"
    assert any("something listens to every subject" in warning for warning in result["warnings"])
