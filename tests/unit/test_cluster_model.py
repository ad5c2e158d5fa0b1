"""The cluster model and the removal judgement, on hand-made views (the real-server tests are in functional/)."""

from __future__ import annotations

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster import (
    ClusterView,
    GroupFacts,
    MetaGroup,
    Replica,
    peer_id,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.membership import judge_meta_removal


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
