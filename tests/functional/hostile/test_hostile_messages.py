"""The refusals an operator meets, as ansible-playbook shows them: the task fails with the message, and
nothing was changed. (The other hostile tests run the modules in-process, where the same message is
returned; this proves it survives the trip through Ansible.)"""

from __future__ import annotations

import pytest
from support.hostile import app, js, tree
from support.playbooks import PlaybookRun


@pytest.fixture(scope="module")
def stream(nats_standalone):
    js(nats_standalone).create_stream("PLAYBOOK_MSG")
    js(nats_standalone).publish("PLAYBOOK_MSG.x", 3, size=10)
    return "PLAYBOOK_MSG"


def failed_task(workdir, module, args, *words):
    run = PlaybookRun(workdir, module, args)
    result = run.result()
    assert run.process.returncode != 0 and result.get("failed"), result
    for word in words:
        assert word in result["msg"], result["msg"]
    return result


def test_messages_through_ansible_playbook(nats_standalone, stream, tmp_path):
    before = js(nats_standalone).snapshot_of(stream)
    tls = {**app(nats_standalone), "servers": [url.replace("nats://", "tls://") for url in nats_standalone.urls]}
    failed_task(tmp_path / "tls", "stream_backup", {**tls, "stream": stream, "path": str(tmp_path / "b1")},
                "offers no TLS", "secure connection required")  # fmt: skip
    failed_task(tmp_path / "name", "stream_backup", app(nats_standalone, stream="ORDERS.x", path=str(tmp_path / "b2")),
                "stream name 'ORDERS.x'", "holds a dot")  # fmt: skip
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    failed_task(tmp_path / "force", "stream_backup", app(nats_standalone, stream=stream, path=str(mine), force=True),
                "is not a finished stream backup", "left untouched")  # fmt: skip
    assert tree(mine) == {"notes.txt": tree(mine / "notes.txt")["."]}
    failed_task(tmp_path / "range", "stream_restore", app(nats_standalone, path=str(mine), parallel=0),
                "parallel is 0", "from 1 to 64")  # fmt: skip
    assert js(nats_standalone).snapshot_of(stream) == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("b")) == []
