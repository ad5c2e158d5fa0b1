"""What a standby mirror copies from its origin, what promotion sends, and where recreated consumers start."""

from __future__ import annotations

import json

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.mirrors import (
    HOME_REPLICAS,
    ORIGIN_SUBJECTS,
    PROMOTED_AT_SEQ,
    mirror_config,
    why_not_mirrored,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.promotion import (
    consumer_config,
    promoted_config,
    start_sequence,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.standby.record import ConsumerRecord

ORDERS = {"name": "ORDERS", "subjects": ["orders.>"], "num_replicas": 3, "max_age": 60, "sources": [{"name": "X"}]}


def test_a_mirror_copies_the_limits_not_the_subjects_sources_or_placement() -> None:
    config = mirror_config({**ORDERS, "placement": {"cluster": "east"}, "first_seq": 5}, "east", None)
    assert config["mirror"] == {"name": "ORDERS", "external": {"api": "$JS.east.API"}}
    assert config["max_age"] == 60 and config["num_replicas"] == 3
    assert not {"subjects", "sources", "placement", "first_seq"} & set(config)
    assert json.loads(config["metadata"][ORIGIN_SUBJECTS]) == ["orders.>"]


def test_a_standby_of_fewer_servers_keeps_the_home_replicas_for_the_way_back() -> None:
    standby = mirror_config(ORDERS, "east", 1)
    assert standby["num_replicas"] == 1 and standby["metadata"][HOME_REPLICAS] == "3"
    promoted = {**promoted_config({"name": "ORDERS", **standby}, 100), "name": "ORDERS"}
    assert promoted["metadata"][PROMOTED_AT_SEQ] == "100" and promoted["subjects"] == ["orders.>"]
    home = mirror_config(promoted, "west", None)
    assert home["num_replicas"] == 3
    assert PROMOTED_AT_SEQ not in home["metadata"]  # a mirror holds no recovery point of its own


def test_a_fenced_origin_is_mirrored_with_the_subjects_it_had_before_the_fence() -> None:
    fenced = {**ORDERS, "subjects": ["natsops.fenced.ORDERS"], "metadata": {ORIGIN_SUBJECTS: '["orders.>"]'}}
    assert json.loads(mirror_config(fenced, "west", None)["metadata"][ORIGIN_SUBJECTS]) == ["orders.>"]


def test_promotion_without_recorded_subjects_is_refused() -> None:
    with pytest.raises(NatsOpsError) as refused:
        promoted_config({"name": "ORDERS", "mirror": {"name": "ORDERS"}}, 5)
    assert refused.value.details["reason"] == "no_origin_subjects"


@pytest.mark.parametrize(
    ("config", "left_out"),
    [
        ({"retention": "workqueue", "subjects": ["a"]}, True),
        ({"retention": "interest", "subjects": ["a"]}, True),
        ({"allow_msg_counter": True, "subjects": ["a"]}, True),
        ({"mirror": {"name": "X"}}, True),
        ({"sources": [{"name": "X"}]}, True),
        ({"retention": "limits", "subjects": ["a"]}, False),
    ],
)
def test_streams_a_mirror_would_harm_or_cannot_hold_are_left_out(config: dict, left_out: bool) -> None:
    assert bool(why_not_mirrored(config)) is left_out


def test_a_recreated_consumer_starts_after_its_ack_floor_never_past_the_end() -> None:
    consumer = ConsumerRecord({"name": "C", "deliver_policy": "all", "opt_start_seq": 0}, 40, 50, 10)
    assert start_sequence(consumer, last_seq=100) == 41
    assert start_sequence(consumer, last_seq=30) == 31
    config = consumer_config(consumer, 41)
    assert config["deliver_policy"] == "by_start_sequence" and config["opt_start_seq"] == 41
