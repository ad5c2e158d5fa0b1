"""How a restore judges a stream's followers, from cluster info as nats-server 2.14.6 and 2.15.1 gave it."""

from __future__ import annotations

from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.restore import replica_state

# Seen while putting back a stream after one of three servers was killed: the dead one never answered.
DEAD_FOLLOWER = {"name": "c1-n1", "current": False, "active": 0, "lag": 2, "peer": "H0UwUkZd"}
CAUGHT_UP = {"name": "c1-n3", "current": True, "active": 117190955, "peer": "28f6SsNs"}
COPYING = {"name": "c1-n3", "current": False, "active": 99497446, "lag": 10004, "peer": "28f6SsNs"}


def cluster(*replicas, leader="c1-n2"):
    return {"name": "c1", "leader": leader, "replicas": list(replicas)}


def test_no_leader_is_no_state():
    assert replica_state(cluster(CAUGHT_UP, leader=None), waited=1.0) is None


def test_a_follower_still_copying_is_waited_for():
    state = replica_state(cluster(COPYING), waited=10.0)
    assert state.catching_up == ["c1-n3"] and state.current == [] and state.absent == []


def test_current_with_lag_is_still_copying():
    state = replica_state(cluster({**CAUGHT_UP, "lag": 3}), waited=1.0)
    assert state.catching_up == ["c1-n3"]


def test_a_follower_never_heard_from_is_absent_only_after_a_while():
    # A live follower shows active 0 for its first moments too.
    assert replica_state(cluster(CAUGHT_UP, DEAD_FOLLOWER), waited=1.0).catching_up == ["c1-n1"]
    late = replica_state(cluster(CAUGHT_UP, DEAD_FOLLOWER), waited=6.0)
    assert late.absent == ["c1-n1"] and late.current == ["c1-n3"]


def test_a_follower_silent_for_long_or_offline_is_absent():
    silent = {**DEAD_FOLLOWER, "active": 7_000_000_000}
    offline = {**COPYING, "offline": True}
    state = replica_state(cluster(silent, offline), waited=0.5)
    assert state.absent == ["c1-n1", "c1-n3"] and state.current == []


def test_safe_needs_a_quorum_and_no_follower_copying():
    absent_one = replica_state(cluster(CAUGHT_UP, DEAD_FOLLOWER), waited=6.0)
    assert absent_one.safe(3)  # leader + one current of three
    assert not replica_state(cluster(COPYING), waited=6.0).safe(2)
    five = cluster(
        CAUGHT_UP, {**DEAD_FOLLOWER, "name": "a"}, {**DEAD_FOLLOWER, "name": "b"}, {**CAUGHT_UP, "name": "d"}
    )
    assert replica_state(five, waited=6.0).safe(5)  # leader + 2 current of 5
    assert not replica_state(cluster(CAUGHT_UP, {**DEAD_FOLLOWER, "name": "a"}, {**DEAD_FOLLOWER, "name": "b"},
                                     {**DEAD_FOLLOWER, "name": "d"}), waited=6.0).safe(5)  # fmt: skip
