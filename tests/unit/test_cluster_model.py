"""The cluster model and the removal judgement, on hand-made views (the real-server tests are in functional/)."""

from __future__ import annotations

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.membership import judge_meta_removal
from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.model import (
    ClusterView,
    GroupFacts,
    MetaGroup,
    Replica,
    peer_id,
    streams_from_jsz,
)


def test_peer_id_matches_the_server():
    # Read off nats-server 2.15.1 (meta_cluster.replicas[].peer) for these server names.
    assert peer_id("c1-n1") == "H0UwUkZd"
    assert peer_id("c1-n2") == "ooo7kGPy"
    assert peer_id("c1-n3") == "28f6SsNs"


def meta(size: int, up: list[str], down: list[str]) -> MetaGroup:
    members = [Replica(up[0], leader=True, current=True, online=True)]
    members += [Replica(name, current=True, online=True) for name in up[1:]]
    # The leader's flags still say "current" for a few seconds after a crash; the ping says otherwise.
    members += [Replica(name, current=True, online=False) for name in down]
    return MetaGroup("c", up[0], size, members, set(up))


def stream(name: str, wanted: int, hosts: list[str], online: set[str]) -> GroupFacts:
    members = [Replica(hosts[0], leader=True, current=True)] + [Replica(host, current=True) for host in hosts[1:]]
    for member in members:
        member.online = member.name in online
    return GroupFacts("APP", name, None, wanted, members)


def view_of(group: MetaGroup, *streams: GroupFacts) -> ClusterView:
    view = ClusterView("SYS", True, group)
    view.streams = {(each.account, each.stream): each for each in streams}
    view.jetstream_accounts = view.checked_accounts = {"APP"}
    return view


def test_five_nodes_with_two_down_may_remove_one():
    up, down = ["n1", "n2", "n3"], ["n4", "n5"]
    group = meta(5, up, down)
    removal = judge_meta_removal(view_of(group), group.find(name="n5"), force=False, accept_data_loss=False)
    assert removal.refusals == [] and removal.quorum_needed == 3 and removal.current_after == up


def test_three_nodes_with_two_down_may_not():
    group = meta(3, ["n1"], ["n2", "n3"])
    removal = judge_meta_removal(view_of(group), group.find(peer=peer_id("n3")), force=True, accept_data_loss=True)
    assert any("cannot restore a lost quorum" in refusal for refusal in removal.refusals)


def test_streams_without_survivors_or_quorum_are_named():
    online = {"n1", "n2", "n3"}
    group = meta(5, sorted(online), ["n4", "n5"])
    sole = stream("SOLE", 1, ["n5"], online)
    weak = stream("WEAK", 3, ["n4", "n5", "n1"], online)
    fine = stream("FINE", 3, ["n5", "n1", "n2"], online)
    view = view_of(group, sole, weak, fine)
    removal = judge_meta_removal(view, group.find(name="n5"), force=False, accept_data_loss=False)
    assert removal.data_lost == ["APP/SOLE"] and removal.quorum_lost == ["APP/WEAK"]
    assert len(removal.refusals) == 2
    accepted = judge_meta_removal(view, group.find(name="n5"), force=False, accept_data_loss=True)
    assert accepted.refusals == [] and accepted.data_lost == ["APP/SOLE"]


def test_a_follower_that_holds_the_data_is_a_survivor():
    # Between stream leaders only followers answer JSZ, and they do not know each other's state.
    online = {"n1", "n2", "n3"}
    group = meta(3, sorted(online), ["n4"])
    orphan = GroupFacts("APP", "ELECTING", None, 3, [Replica("n4", leader=True, online=False)], holders={"n1"})
    removal = judge_meta_removal(view_of(group, orphan), group.find(name="n4"), force=False, accept_data_loss=False)
    assert removal.data_lost == [] and removal.quorum_lost == ["APP/ELECTING"]


def jsz_stream(leader: str, followers: list[str], consumers: list[dict]) -> dict:
    return {
        "name": "ORDERS",
        "config": {"name": "ORDERS", "num_replicas": 3},
        "state": {"messages": 5},
        "cluster": {"leader": leader, "replicas": [{"name": name, "current": True} for name in followers]},
        "consumer_detail": consumers,
    }


def jsz_consumer(name: str, leader: str, followers: list[str], replicas: int = 0) -> dict:
    return {
        "name": name,
        "config": {"num_replicas": replicas},
        "cluster": {"leader": leader, "replicas": [{"name": each, "current": True} for each in followers]},
    }


def test_each_consumer_is_read_from_its_own_leader_and_from_whichever_server_holds_it():
    """JSZ: a follower of a consumer lists its group wrongly (the leader twice, itself not), and a
    server lists only the consumers it holds: an R1 consumer on a follower of the stream is only in
    that follower's report."""
    wrong_view_of_led_by_b = jsz_consumer("LED_BY_B", "b", ["b", "c"])  # as a, a follower, reports it
    reports = {
        "a": [jsz_stream("a", ["b", "c"], [wrong_view_of_led_by_b])],
        "b": [
            jsz_stream(
                "a",
                ["a", "c"],
                [jsz_consumer("LED_BY_B", "b", ["a", "c"]), jsz_consumer("ONLY_ON_B", "b", [], replicas=1)],
            )
        ],
        "c": [jsz_stream("a", ["a", "b"], [])],
    }
    jsz = {
        server: {"account_details": [{"name": "APP", "stream_detail": detail}]} for server, detail in reports.items()
    }
    stream_facts = streams_from_jsz(jsz, {"a", "b", "c"})[("APP", "ORDERS")]
    consumers = {consumer.consumer: consumer for consumer in stream_facts.consumers}
    assert sorted(consumers) == ["LED_BY_B", "ONLY_ON_B"]
    assert sorted(consumers["LED_BY_B"].current) == ["a", "b", "c"] and consumers["LED_BY_B"].missing == 0
    assert consumers["ONLY_ON_B"].current == ["b"] and consumers["ONLY_ON_B"].wanted == 1
    assert sorted(stream_facts.current) == ["a", "b", "c"]
