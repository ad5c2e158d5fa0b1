"""natsops.jetstream.consumer_pause against a real nats-server: pause, resume, idempotence, selection, refusals."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats
import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import parse_time
from nats.errors import TimeoutError as NatsTimeoutError
from support.config_modules import require_release
from support.hostile import app, js
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER, NatsNode, older_server

LATER = "2099-01-01T00:00:00Z"
HOUR_NS = 3600 * 1_000_000_000


@pytest.fixture(autouse=True)
def pausing_server(request: pytest.FixtureRequest) -> None:
    """Every test here but the old server's needs a server that can pause consumers."""
    if "old_server" not in request.fixturenames:
        require_release(request.getfixturevalue("nats_server_version"), (2, 11))


def pause(server: Any, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    return run_module("consumer_pause", {**app(server, **args), "_ansible_diff": True}, check_mode=check_mode)


def refused(server: Any, **args: Any) -> str:
    with pytest.raises(ModuleFailed) as failed:
        pause(server, **args)
    return failed.value.result["msg"]


def stream_with(server: Any, name: str, *consumers: str, messages: int = 0) -> str:
    client = js(server)
    client.create_stream(name)
    if messages:
        client.publish(f"{name}.x", messages)
    for consumer in consumers:
        client.create_durable(name, consumer)
    return name


def info(server: Any, stream: str, consumer: str) -> dict[str, Any]:
    return js(server).request(f"CONSUMER.INFO.{stream}.{consumer}")


def states(result: dict[str, Any]) -> dict[str, tuple[bool, bool, str | None]]:
    """stream/consumer -> (changed, paused after, pause_until after)."""
    return {
        f"{entry['stream']}/{entry['consumer']}": (
            entry["changed"],
            entry["after"]["paused"],
            entry["after"]["pause_until"],
        )
        for entry in result["consumers"]
    }


def test_a_fixed_time_pauses_once_and_then_changes_nothing(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("PAUSE"), "A", "B")
    first = pause(nats_standalone, streams=[stream], until=LATER)
    assert first["changed"]
    assert states(first) == {f"{stream}/A": (True, True, LATER), f"{stream}/B": (True, True, LATER)}
    assert first["consumers"][0]["before"] == {"paused": False, "pause_until": None}
    assert first["diff"]["after"][stream]["A"] == {"paused": True, "pause_until": LATER}
    assert info(nats_standalone, stream, "A")["paused"] is True

    again = pause(nats_standalone, streams=[stream], until="2099-01-01T01:00:00+01:00")  # the same time
    assert not again["changed"]
    assert states(again) == {f"{stream}/A": (False, True, LATER), f"{stream}/B": (False, True, LATER)}

    # Another time is set exactly, even when it shortens the pause.
    earlier = pause(nats_standalone, streams=[stream], consumers=["A"], until="2098-01-01T00:00:00Z")
    assert states(earlier) == {f"{stream}/A": (True, True, "2098-01-01T00:00:00Z")}


def test_a_duration_pauses_at_least_that_long(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("PAUSE"), "A")
    started = time.time_ns()
    first = pause(nats_standalone, streams=[stream], until="2h")
    until = parse_time(first["consumers"][0]["after"]["pause_until"])
    assert first["changed"]
    assert started + 2 * HOUR_NS <= until <= time.time_ns() + 2 * HOUR_NS

    assert not pause(nats_standalone, streams=[stream], until="1h")["changed"], "a shorter pause is already there"
    longer = pause(nats_standalone, streams=[stream], until="3h")
    assert longer["changed"]
    assert parse_time(longer["consumers"][0]["after"]["pause_until"]) >= until + HOUR_NS


def test_check_mode_reports_and_changes_nothing(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("PAUSE"), "A")
    checked = pause(nats_standalone, check_mode=True, streams=[stream], until=LATER)
    assert checked["changed"]
    assert states(checked) == {f"{stream}/A": (True, True, LATER)}
    assert checked["msg"].startswith("would pause 1 consumer")
    assert not info(nats_standalone, stream, "A").get("paused")

    pause(nats_standalone, streams=[stream], until=LATER)
    checked = pause(nats_standalone, check_mode=True, streams=[stream], state="resumed")
    assert states(checked) == {f"{stream}/A": (True, False, None)}
    assert info(nats_standalone, stream, "A")["paused"] is True


def test_resume_resumes_once(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("PAUSE"), "A", "B")
    pause(nats_standalone, streams=[stream], consumers=["A"], until=LATER)
    resumed = pause(nats_standalone, streams=[stream], state="resumed")
    assert resumed["changed"]
    assert states(resumed) == {f"{stream}/A": (True, False, None), f"{stream}/B": (False, False, None)}
    assert resumed["msg"] == f"resumed 1 consumer: {stream}/A; 1 was not paused"
    assert resumed["diff"]["before"][stream]["A"] == {"paused": True, "pause_until": LATER}
    assert not info(nats_standalone, stream, "A").get("paused")

    again = pause(nats_standalone, streams=[stream], state="resumed")
    assert not again["changed"]
    assert [entry["changed"] for entry in again["consumers"]] == [False, False]


def test_streams_and_consumers_are_chosen_by_name_or_pattern(nats_standalone, unique_name):
    prefix = unique_name("CHOOSE")
    for suffix in ("A1", "A2", "B"):
        stream_with(nats_standalone, f"{prefix}_{suffix}", "SHIP1", "SHIP2", "AUDIT")
    chosen = pause(nats_standalone, streams=[f"{prefix}_A*"], consumers=["SHIP*"], until=LATER)
    assert sorted(states(chosen)) == [f"{prefix}_A{n}/SHIP{m}" for n in (1, 2) for m in (1, 2)]
    assert not info(nats_standalone, f"{prefix}_B", "SHIP1").get("paused")
    assert not info(nats_standalone, f"{prefix}_A1", "AUDIT").get("paused")

    named = pause(nats_standalone, streams=[f"{prefix}_B"], consumers=["AUDIT"], until=LATER)
    assert list(states(named)) == [f"{prefix}_B/AUDIT"]

    nothing = pause(nats_standalone, streams=[f"{prefix}_Z*"], consumers=["NOPE"], until=LATER)
    assert nothing["consumers"] == [] and not nothing["changed"]
    assert pause(nats_standalone, streams=[f"{prefix}_B"], consumers=["X*"], until=LATER)["consumers"] == []

    message = refused(nats_standalone, streams=[f"{prefix}_B", f"{prefix}_NOPE"], until=LATER)
    assert f"streams not found in this account: {prefix}_NOPE" in message
    message = refused(nats_standalone, streams=[f"{prefix}_A*"], consumers=["SHIP1", "GONE"], state="resumed")
    assert "no durable consumer named GONE" in message and "Nothing was changed" in message
    assert info(nats_standalone, f"{prefix}_A1", "SHIP1")["paused"] is True, "a refusal changes nothing"


def test_ephemeral_consumers_are_left_out(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("EPHEMERAL"), "DURABLE")
    config = {"ack_policy": "explicit", "inactive_threshold": 600 * 1_000_000_000}
    ephemeral = js(nats_standalone).request(f"CONSUMER.CREATE.{stream}", {"stream_name": stream, "config": config})
    result = pause(nats_standalone, streams=[stream], until=LATER)
    assert list(states(result)) == [f"{stream}/DURABLE"]
    assert not info(nats_standalone, stream, ephemeral["name"]).get("paused")


@pytest.fixture
def old_server(tmp_path):
    node = NatsNode("old", tmp_path / "old", binary=older_server("2.10.26")).start()
    yield node
    node.kill()


def test_a_server_before_2_11_is_refused_by_release(old_server):
    stream = stream_with(old_server, "OLD", "A")
    for args in ({"until": "2h"}, {"state": "resumed"}):
        message = refused(old_server, streams=[stream], **args)
        assert "needs nats-server 2.11 or later" in message
        assert "runs nats-server 2.10.26" in message
        assert "Nothing was changed" in message
    assert not info(old_server, stream, "A").get("paused")


def test_until_is_checked_against_the_state(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("UNTIL"), "A")
    assert "state: paused needs until" in refused(nats_standalone, streams=[stream])
    assert "until (2h) is only for state: paused" in refused(
        nats_standalone, streams=[stream], state="resumed", until="2h"
    )
    assert "is in the past" in refused(nats_standalone, streams=[stream], until="2020-01-01T00:00:00Z")
    assert "neither an RFC 3339 time" in refused(nats_standalone, streams=[stream], until="soon")
    assert not info(nats_standalone, stream, "A").get("paused")


def fetch_one(server: Any, stream: str, durable: str) -> int:
    """How many messages one fetch from the pull consumer gets within a second (0: none came)."""

    async def fetch() -> int:
        nc = await nats.connect(server.urls, user=APP_USER, password=APP_PASSWORD)
        try:
            subscription = await nc.jetstream().pull_subscribe_bind(durable, stream)
            try:
                return len(await subscription.fetch(1, timeout=1))
            except NatsTimeoutError:
                return 0
        finally:
            await nc.close()

    return asyncio.run(fetch())


def test_a_paused_consumer_delivers_nothing_until_resumed(nats_standalone, unique_name):
    stream = stream_with(nats_standalone, unique_name("DELIVER"), "PULL", messages=3)
    pause(nats_standalone, streams=[stream], until="1h")
    state = info(nats_standalone, stream, "PULL")
    assert state["paused"] is True and state["num_pending"] == 3
    assert fetch_one(nats_standalone, stream, "PULL") == 0

    pause(nats_standalone, streams=[stream], state="resumed")
    assert fetch_one(nats_standalone, stream, "PULL") == 1
