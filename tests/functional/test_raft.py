"""cluster_info, raft_peer_remove and leader_stepdown against real 3- and 5-node clusters on loopback."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.model import peer_id
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.system import gather
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    CONNECTION_ARGUMENT_SPEC,
    nats_connection,
    resolve_options,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER, OTHER_PASSWORD, OTHER_USER, SYS_PASSWORD, SYS_USER, NatsCluster
from support.streams import SyncJs
from support.threads import Outcome

APP_ACCOUNT = {"user": APP_USER, "password": APP_PASSWORD}
OTHER_ACCOUNT = {"user": OTHER_USER, "password": OTHER_PASSWORD}


def system(cluster: NatsCluster, **args: Any) -> dict[str, Any]:
    return {"servers": cluster.urls, "user": SYS_USER, "password": SYS_PASSWORD, **args}


def app(cluster: NatsCluster, **args: Any) -> dict[str, Any]:
    return {"servers": cluster.urls, **APP_ACCOUNT, **args}


def js(cluster: NatsCluster) -> SyncJs:
    return SyncJs(cluster.urls, APP_USER, APP_PASSWORD)


def make_stream(cluster: NatsCluster, name: str, replicas: int = 3, count: int = 200) -> dict[str, Any]:
    """A stream with durables at different positions; returns what must survive (messages and consumers)."""
    client = js(cluster)
    client.create_stream(name, num_replicas=replicas)
    client.publish(f"{name}.a", count, size=100, with_headers_every=4)
    client.create_durable(name, "ALL")
    client.create_durable(name, "HALF")
    client.consume_and_ack(name, "ALL", fetch=150, ack=120)
    client.consume_and_ack(name, "HALF", fetch=50, ack=50)
    return client.snapshot_of(name)


def hosts(cluster: NatsCluster, stream: str) -> list[str]:
    info = js(cluster).stream_info(stream) or {}
    block = info.get("cluster") or {}
    return [block["leader"]] + [peer["name"] for peer in block.get("replicas") or []]


def lose_node(cluster: NatsCluster, name: str) -> None:
    """A server whose JetStream data is gone for good: killed, store wiped, never restarted."""
    node = cluster.node(name)
    node.kill()
    node.wipe_store()


def facts(cluster: NatsCluster, **args: Any) -> dict[str, Any]:
    return run_module("cluster_info", system(cluster, accounts=[APP_ACCOUNT, OTHER_ACCOUNT], **args))["cluster_info"]


@pytest.mark.parametrize("size", [3, 5])
def test_lost_node_replaced_and_r3_streams_recover(cluster_factory, unique_name, size):
    cluster = cluster_factory(size)
    names = [unique_name("RECOVER"), unique_name("RECOVER")]
    before = {name: make_stream(cluster, name) for name in names}
    victim = hosts(cluster, names[0])[1]  # a follower of the first stream (and maybe of the second)
    lose_node(cluster, victim)

    by = {"peer": victim} if size == 3 else {"peer_id": peer_id(victim)}
    removed = run_module("raft_peer_remove", system(cluster, accounts=[APP_ACCOUNT, OTHER_ACCOUNT], **by))
    assert removed["changed"] and removed["peer"] == victim and removed["group"] == "meta"
    assert victim not in removed["members_after"]
    assert removed["removal"]["streams_losing_data"] == []

    replacement = cluster.add_node()
    deadline = time.monotonic() + 60
    while True:  # healthy, with the replacement in the meta group (5 nodes may be healthy before it joins)
        healthy = facts(cluster, wait_for="healthy", wait_timeout=90)
        if replacement.name in [peer["name"] for peer in healthy["meta"]["peers"]]:
            break
        assert time.monotonic() < deadline, f"{replacement.name} never joined the meta group"
        time.sleep(0.5)
    for name in names:
        stream = next(each for each in healthy["streams"] if each["stream"] == name)
        assert len(stream["current"]) == 3 and victim not in stream["current"]
        assert js(cluster).snapshot_of(name) == before[name]
    if size == 3:  # the only place left for the third replicas
        assert all(replacement.name in hosts(cluster, name) for name in names)


def test_removing_the_dead_meta_leader_waits_out_the_election(fresh_cluster, unique_name):
    name = unique_name("LEADERLOST")
    before = make_stream(fresh_cluster, name)
    leader = fresh_cluster.meta_leader()
    assert leader
    lose_node(fresh_cluster, leader)  # the module starts while the survivors elect a new leader
    removed = run_module("raft_peer_remove", system(fresh_cluster, peer=leader, accounts=[APP_ACCOUNT, OTHER_ACCOUNT]))
    assert removed["changed"] and leader not in removed["members_after"]
    fresh_cluster.add_node()
    assert facts(fresh_cluster, wait_for="healthy", wait_timeout=90)["healthy"]
    assert js(fresh_cluster).snapshot_of(name) == before


def test_online_peer_is_refused_unless_forced(fresh_cluster):
    target = fresh_cluster.meta_leader()  # the hardest case: it must hand over leadership first
    assert target
    with pytest.raises(ModuleFailed, match=f"{target} is online") as refused:
        run_module("raft_peer_remove", system(fresh_cluster, peer=target, accounts=[APP_ACCOUNT, OTHER_ACCOUNT]))
    assert refused.value.result["removal"]["online"] is True
    assert target in [peer["name"] for peer in facts(fresh_cluster)["meta"]["peers"]]

    planned = run_module("raft_peer_remove", system(fresh_cluster, peer=target, force=True), check_mode=True)
    assert planned["changed"] and planned["removal"]["online"] is True
    assert target in [peer["name"] for peer in facts(fresh_cluster)["meta"]["peers"]]

    forced = run_module("raft_peer_remove", system(fresh_cluster, peer=target, force=True, accept_data_loss=True))
    assert forced["changed"] and target not in forced["members_after"]


def test_removal_that_cannot_keep_quorum_is_refused(fresh_cluster):
    survivor, *lost = fresh_cluster.nodes
    for node in lost:
        node.kill()
    # Right after the kills the old leader may still think it leads; either way the answer is the same.
    with pytest.raises(ModuleFailed, match="removing peers cannot restore a lost quorum") as refused:
        run_module("raft_peer_remove", system(fresh_cluster, peer=lost[0].name, accept_data_loss=True, force=True))
    assert "1 of 3" in refused.value.result["msg"] or "only 1 other" in refused.value.result["msg"]
    lost[0].start()
    fresh_cluster.wait_healthy()
    assert lost[0].name in [peer["name"] for peer in facts(fresh_cluster)["meta"]["peers"]]
    assert survivor.is_running


def test_r1_streams_on_the_peer_are_named_and_refused(fresh_cluster, unique_name):
    name = unique_name("SOLE")
    make_stream(fresh_cluster, name, replicas=1)
    victim = hosts(fresh_cluster, name)[0]
    lose_node(fresh_cluster, victim)

    with pytest.raises(ModuleFailed, match=f"APP/{name}") as refused:
        run_module("raft_peer_remove", system(fresh_cluster, peer=victim, accounts=[APP_ACCOUNT, OTHER_ACCOUNT]))
    assert refused.value.result["removal"]["streams_losing_data"] == [f"APP/{name}"]

    # Without the accounts' credentials the system account cannot tell: refused as well, naming them.
    with pytest.raises(ModuleFailed, match="accounts APP, OTHER") as unchecked:
        run_module("raft_peer_remove", system(fresh_cluster, peer=victim))
    assert unchecked.value.result["removal"]["unchecked_accounts"] == ["APP", "OTHER"]

    removed = run_module(
        "raft_peer_remove", system(fresh_cluster, peer=victim, accept_data_loss=True, accounts=[APP_ACCOUNT])
    )
    assert removed["changed"] and removed["removal"]["streams_losing_data"] == [f"APP/{name}"]


def test_non_member_is_a_no_op_and_check_mode_changes_nothing(nats_cluster):
    result = run_module("raft_peer_remove", system(nats_cluster, peer="no-such-server"))
    assert result["changed"] is False and "not a member" in result["msg"]
    assert sorted(result["members"]) == sorted(node.name for node in nats_cluster.nodes)
    for node in nats_cluster.nodes:
        assert node.name in result["msg"]
    # A typo and a peer removed earlier look alike to the servers: the warning says so and names the closest.
    typo = nats_cluster.nodes[0].name + "x"
    (warning,) = run_module("raft_peer_remove", system(nats_cluster, peer=typo))["warnings"]
    assert "keep no record of removed peers" in warning
    assert f"Did you mean {nats_cluster.nodes[0].name}?" in warning
    result = run_module("raft_peer_remove", system(nats_cluster, peer_id="ZZZZZZZZ"), check_mode=True)
    assert result["changed"] is False


def test_wrong_account_fails_at_once_with_a_clear_message(nats_cluster):
    started = time.monotonic()
    with pytest.raises(ModuleFailed, match="not those of the system account"):
        run_module("raft_peer_remove", app(nats_cluster, peer=nats_cluster.nodes[0].name, wait_timeout=60))
    # Not a speed check: the server drops the request silently, and the module must not wait that out.
    assert time.monotonic() - started < 30


def test_stream_peer_removal(cluster_factory, unique_name):
    cluster = cluster_factory(5)
    name = unique_name("MOVE")
    before = make_stream(cluster, name)
    leader, follower = hosts(cluster, name)[:2]

    with pytest.raises(ModuleFailed, match="leader"):
        run_module("raft_peer_remove", app(cluster, stream=name, peer=leader))
    assert run_module("raft_peer_remove", app(cluster, stream=name, peer="nobody"))["changed"] is False

    cluster.node(follower).kill()
    # The leader's own flags lag behind a crash: wait until it shows the replica not current.
    deadline = time.monotonic() + 30
    while _current(cluster, name, follower):
        assert time.monotonic() < deadline, "the stream leader never showed the killed replica as not current"
        time.sleep(0.5)
    planned = run_module("raft_peer_remove", app(cluster, stream=name, peer=follower), check_mode=True)
    assert planned["changed"] and planned["group"] == name and planned["peer"] == follower
    assert follower in hosts(cluster, name)  # check mode removed nothing
    moved = run_module("raft_peer_remove", app(cluster, stream=name, peer_id=peer_id(follower)))
    assert moved["changed"] and follower not in moved["members_after"]
    healthy = run_module("cluster_info", app(cluster, wait_for="healthy", wait_timeout=60))["cluster_info"]
    stream = next(each for each in healthy["streams"] if each["stream"] == name)
    assert len(stream["current"]) == 3 and follower not in stream["current"]
    assert js(cluster).snapshot_of(name) == before


def _current(cluster: NatsCluster, stream: str, server: str) -> bool:
    info = js(cluster).stream_info(stream) or {}
    replicas = (info.get("cluster") or {}).get("replicas") or []
    return any(peer["name"] == server and peer.get("current") and not peer.get("offline") for peer in replicas)


def test_cluster_info_sees_loss_and_says_what_it_cannot_see(fresh_cluster, unique_name):
    r3, r1 = unique_name("INFO3"), unique_name("INFO1")
    make_stream(fresh_cluster, r3)
    make_stream(fresh_cluster, r1, replicas=1)
    sole = hosts(fresh_cluster, r1)[0]

    seen = facts(fresh_cluster)
    assert seen["healthy"] and seen["meta"]["has_quorum"] and seen["meta"]["size"] == 3
    assert f"APP/{r1}" in seen["single_replica"][sole]
    assert {peer["peer_id"] for peer in seen["meta"]["peers"]} == {peer_id(node.name) for node in fresh_cluster.nodes}

    as_app = run_module("cluster_info", app(fresh_cluster))["cluster_info"]
    assert as_app["meta"] is None and as_app["not_visible"][0]["what"] == "meta group"
    assert {stream["stream"] for stream in as_app["streams"]} == {r3, r1}

    deadline = time.monotonic() + 30
    while fresh_cluster.meta_leader() == sole:  # keep the meta group answering account listings at once
        assert time.monotonic() < deadline, f"the meta leadership never moved off {sole}"
        run_module("leader_stepdown", system(fresh_cluster))  # no preferred: 2.10 cannot choose
    fresh_cluster.node(sole).kill()
    hurt = facts(fresh_cluster)
    assert not hurt["healthy"]
    assert f"APP/{r3}" in hurt["under_replicated"] and f"APP/{r3}/ALL" in hurt["under_replicated"]
    assert hurt["unreachable_streams"] == [f"APP/{r1}"] and f"APP/{r1}" in hurt["leaderless"]
    assert any(sole in problem for problem in hurt["problems"])
    system_only = run_module("cluster_info", system(fresh_cluster))["cluster_info"]
    assert "whose every replica is down" in system_only["not_visible"][0]["what"]

    with pytest.raises(ModuleFailed, match="not healthy within 2") as waited:
        run_module("cluster_info", system(fresh_cluster, wait_for="healthy", wait_timeout=2))
    assert f"APP/{r3} is under-replicated" in waited.value.result["msg"]


def test_leader_stepdown(fresh_cluster, unique_name, nats_server_version):
    name = unique_name("STEP")
    make_stream(fresh_cluster, name)
    meta_leader = fresh_cluster.meta_leader()
    target = next(node.name for node in fresh_cluster.nodes if node.name != meta_leader)
    if nats_server_version < (2, 11):
        with pytest.raises(ModuleFailed, match="preferred needs nats-server 2"):
            run_module("leader_stepdown", system(fresh_cluster, preferred=target))
        assert run_module("leader_stepdown", system(fresh_cluster))["leader"] != meta_leader
        return

    planned = run_module("leader_stepdown", system(fresh_cluster, preferred=target), check_mode=True)
    assert planned["changed"] and planned["leader"] == meta_leader == fresh_cluster.meta_leader()
    moved = run_module("leader_stepdown", system(fresh_cluster, preferred=target))
    assert moved["changed"] and moved["previous_leader"] == meta_leader and moved["leader"] == target
    assert run_module("leader_stepdown", system(fresh_cluster, preferred=target))["changed"] is False

    stream_leader = hosts(fresh_cluster, name)[0]
    stepped = run_module("leader_stepdown", app(fresh_cluster, stream=name))
    assert stepped["changed"] and stepped["leader"] != stream_leader == stepped["previous_leader"]
    assert hosts(fresh_cluster, name)[0] == stepped["leader"]
    chosen = next(host for host in hosts(fresh_cluster, name) if host != stepped["leader"])
    handed = run_module("leader_stepdown", app(fresh_cluster, stream=name, preferred=chosen))
    assert handed["changed"] and handed["leader"] == chosen == hosts(fresh_cluster, name)[0]

    with pytest.raises(ModuleFailed, match="not those of the system account"):
        run_module("leader_stepdown", app(fresh_cluster))


def test_cluster_health_is_read_from_each_group_leader_and_never_assumed(fresh_cluster, unique_name):
    """A server that only follows a consumer's group lists its members wrongly in JSZ (the leader twice,
    itself not): system-account facts must come from each consumer's own leader. And streams that could
    not be read at all must not count as healthy."""
    name = unique_name("AWAY")
    make_stream(fresh_cluster, name)
    client = js(fresh_cluster)
    stream_leader = hosts(fresh_cluster, name)[0]
    deadline = time.monotonic() + 30
    while client.request(f"CONSUMER.INFO.{name}.ALL")["cluster"]["leader"] == stream_leader:
        assert time.monotonic() < deadline, "the consumer's leadership never moved off the stream leader"
        client.request(f"CONSUMER.LEADER.STEPDOWN.{name}.ALL")
        time.sleep(0.5)

    seen = run_module("cluster_info", system(fresh_cluster, wait_for="healthy", wait_timeout=30))["cluster_info"]
    stream = next(each for each in seen["streams"] if each["stream"] == name)
    everyone = sorted(node.name for node in fresh_cluster.nodes)
    for group in (stream, *stream["consumers"]):
        assert sorted(group["current"]) == everyone and group["missing"] == 0, group

    for node in fresh_cluster.nodes[1:]:  # no meta leader: an account's stream listing goes unanswered
        node.kill()
    with pytest.raises(ModuleFailed, match="not healthy within") as waited:
        run_module("cluster_info", app(fresh_cluster, timeout=2, wait_for="healthy", wait_timeout=4))
    # 2.15 leaves the listing unanswered; 2.10 answers it from a survivor, naming the leaderless stream, and
    # 2.12 (at times) its leaderless consumer.
    said = waited.value.result["msg"]
    named = (
        "the streams of account APP could not be read",
        f"APP/{name} has no leader",
        f"APP/{name}/ALL has no leader",
    )
    assert any(words in said for words in named), said


def test_waiting_for_health_outlasts_a_moment_when_no_server_answers(fresh_cluster):
    """A health wait keeps looking through servers going down and coming back (as in a rolling restart gone
    wrong), instead of failing at the first look that finds nobody; only its first look must succeed."""
    first, *others = fresh_cluster.nodes
    for node in others:
        node.kill()  # no quorum: not healthy, yet the first look succeeds (the first server answers)
    connections_before = first.monitor("/varz")["total_connections"]
    waiting = Outcome(
        lambda: run_module("cluster_info", system(fresh_cluster, timeout=2, wait_for="healthy", wait_timeout=90))
    )
    # Each look connects anew: a second connection means the first look is over, and it found no quorum.
    waiting.wait_for(lambda: first.monitor("/varz")["total_connections"] >= connections_before + 2, interval=0.05)
    first.kill()  # now nothing answers: looks fail, and the wait goes on
    time.sleep(3)
    assert not waiting.done, f"a failed look ended the wait: {waiting.error(timeout=0)!r}"
    for node in fresh_cluster.nodes:
        node.start(wait=False)
    assert waiting.error(timeout=120) is None
    assert waiting.result["cluster_info"]["healthy"] and waiting.result["waited"] > 5


def test_a_connection_lost_while_asking_every_server_is_an_error_not_silence(fresh_standalone):
    """A gathering cut short by a lost connection must not pass for 'no server answered' (all down)."""
    params = {name: spec.get("default") for name, spec in CONNECTION_ARGUMENT_SPEC.items()}
    params.update(servers=[fresh_standalone.url], user=SYS_USER, password=SYS_PASSWORD)

    async def ask() -> None:
        async with nats_connection(resolve_options(params)) as connection:
            await connection.client.subscribe("heard.but.never.answered")  # no 503 "no responders"
            threading.Timer(0.5, fresh_standalone.kill).start()
            await gather(connection.client, "heard.but.never.answered", None, timeout=10)

    with pytest.raises(NatsOpsError, match="connection to the server was lost"):
        asyncio.run(ask())


def test_a_server_slow_to_answer_is_waited_for_not_counted_as_down(fresh_cluster):
    """Gathering settles a moment after the last answer; a routed server that answers later (a busy machine,
    here a stopped process) is asked again on its own instead of passing for one that is down."""
    first, slow = fresh_cluster.nodes[0], fresh_cluster.nodes[-1]
    params = {name: spec.get("default") for name, spec in CONNECTION_ARGUMENT_SPEC.items()}
    params.update(servers=[first.url], user=SYS_USER, password=SYS_PASSWORD)

    async def ask() -> list[dict[str, Any]]:
        async with nats_connection(resolve_options(params)) as connection:
            return await gather(connection.client, "$SYS.REQ.SERVER.PING.VARZ", None, timeout=10)

    slow.process.send_signal(signal.SIGSTOP)
    resume = threading.Timer(2, slow.process.send_signal, [signal.SIGCONT])
    resume.start()
    try:
        answers = asyncio.run(ask())
    finally:
        resume.join()
    assert sorted(answer["server"]["name"] for answer in answers) == sorted(node.name for node in fresh_cluster.nodes)
