"""The standby site against real servers: two JetStream domains joined by a leaf node link, as the role deploys them.

stream_mirror keeps the standby's mirrors and the standby record; mirror_info says how far behind they are;
stream_promote turns them into the streams applications write to, with their consumers back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.config_modules import require_release
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER, older_server
from support.sites import PRIMARY_DOMAIN, STANDBY_DOMAIN, Sites, make_sites, standby_args, wait_for

pytestmark = pytest.mark.usefixtures("promotion_capable")


@pytest.fixture
def promotion_capable(nats_server_version: tuple[int, int, int]) -> None:
    require_release(nats_server_version, (2, 12))


def mirror(sites: Sites, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    return run_module(
        "stream_mirror",
        {**standby_args(sites, origin_domain=PRIMARY_DOMAIN), "_ansible_diff": True, **args},
        check_mode=check_mode,
    )


def mirrored(sites: Sites, name: str, count: int) -> bool:
    info = sites.standby_js().stream_info(name)
    return bool(info) and info["state"]["last_seq"] >= count


def test_every_stream_and_bucket_of_the_primary_gets_a_mirror_and_a_second_run_changes_nothing(
    two_sites: Sites, tmp_path: Path
) -> None:
    primary = two_sites.primary_js()
    primary.create_stream("ORDERS", subjects=["orders.>"], max_age=3600 * 10**9, description="orders")
    primary.publish("orders.new", 50)
    primary.create_durable("ORDERS", "BILLING")
    primary.consume_and_ack("ORDERS", "BILLING", fetch=20, ack=20)
    primary.create_stream(
        "KV_cfg",
        subjects=["$KV.cfg.>"],
        max_msgs_per_subject=5,
        allow_rollup_hdrs=True,
        deny_delete=True,
        allow_direct=True,
        discard="new",
    )
    primary.publish("$KV.cfg.colour", 3)
    primary.create_stream("JOBS", subjects=["jobs.>"], retention="workqueue")

    first = mirror(two_sites, record=str(tmp_path / "record.json"))

    assert first["changed"] is True
    assert {entry["stream"]: entry["action"] for entry in first["mirrors"]} == {"KV_cfg": "create", "ORDERS": "create"}
    assert [entry["stream"] for entry in first["skipped"]] == ["JOBS"]
    standby = two_sites.standby_js()
    orders = standby.stream_info("ORDERS")["config"]
    assert orders["mirror"]["external"]["api"] == f"$JS.{PRIMARY_DOMAIN}.API"
    assert not orders.get("subjects")
    assert json.loads(orders["metadata"]["natsops.origin_subjects"]) == ["orders.>"]
    assert orders["max_age"] == 3600 * 10**9 and orders["description"] == "orders"
    bucket = standby.stream_info("KV_cfg")["config"]
    assert bucket["mirror_direct"] is True and bucket["max_msgs_per_subject"] == 5 and bucket["discard"] == "new"
    wait_for(lambda: mirrored(two_sites, "ORDERS", 50), what="ORDERS mirrored")

    record = json.loads((tmp_path / "record.json").read_text())
    assert record["origin_domain"] == PRIMARY_DOMAIN
    assert record["streams"]["ORDERS"]["last_seq"] == 50
    assert record["streams"]["ORDERS"]["consumers"]["BILLING"]["ack_floor"] == 20
    assert (tmp_path / "record.json").stat().st_mode & 0o777 == 0o600

    again = mirror(two_sites, record=str(tmp_path / "record.json"))
    assert again["changed"] is False
    assert {entry["action"] for entry in again["mirrors"]} == {"none"}
    by_stream = {entry["stream"]: entry for entry in again["mirrors"]}
    assert by_stream["ORDERS"]["behind_messages"] == 0
    assert by_stream["ORDERS"]["health"] == "current"


def test_a_stream_added_at_the_primary_gets_its_mirror_on_the_next_run_and_a_changed_limit_is_updated(
    two_sites: Sites,
) -> None:
    primary = two_sites.primary_js()
    primary.create_stream("ORDERS", subjects=["orders.>"])
    mirror(two_sites)
    primary.create_stream("EVENTS", subjects=["events.>"])
    primary.request("STREAM.UPDATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"], "max_msgs": 1000})

    planned = mirror(two_sites, check_mode=True)
    assert {entry["stream"]: entry["action"] for entry in planned["mirrors"]} == {
        "EVENTS": "create",
        "ORDERS": "update",
    }
    assert two_sites.standby_js().stream_info("EVENTS") is None

    done = mirror(two_sites)
    assert {entry["stream"]: entry["action"] for entry in done["mirrors"]} == {"EVENTS": "create", "ORDERS": "update"}
    by_stream = {entry["stream"]: entry for entry in done["mirrors"]}
    assert by_stream["ORDERS"]["changes"]["max_msgs"] == {"before": -1, "after": 1000}
    assert two_sites.standby_js().stream_info("ORDERS")["config"]["max_msgs"] == 1000


def test_a_standby_stream_in_the_way_fails_the_task_with_nothing_changed(two_sites: Sites) -> None:
    primary = two_sites.primary_js()
    primary.create_stream("ORDERS", subjects=["orders.>"])
    primary.create_stream("EVENTS", subjects=["events.>"])
    standby = two_sites.standby_js()
    standby.create_stream("EVENTS", subjects=["local-events.>"])
    standby.publish("local-events.x", 3)

    with pytest.raises(ModuleFailed) as failed:
        mirror(two_sites)

    assert failed.value.result["reason"] == "standby_stream_in_the_way"
    assert "EVENTS" in failed.value.result["msg"]
    assert standby.stream_info("ORDERS") is None
    assert standby.stream_info("EVENTS")["state"]["messages"] == 3


def test_an_unreachable_primary_is_named_and_nothing_is_changed(two_sites: Sites) -> None:
    two_sites.primary.kill()
    with pytest.raises(ModuleFailed) as failed:
        mirror(two_sites, timeout=3)
    assert failed.value.result["reason"] == "origin_unreachable"


def info(sites: Sites, **args: Any) -> dict[str, Any]:
    return run_module("mirror_info", {**standby_args(sites), **args})


def promote(sites: Sites, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    return run_module("stream_promote", {**standby_args(sites), **args}, check_mode=check_mode)


def mirrored_orders(sites: Sites, record: Path, count: int = 100) -> None:
    """ORDERS at the primary with a consumer part-way through, mirrored, recorded, and caught up."""
    primary = sites.primary_js()
    primary.create_stream("ORDERS", subjects=["orders.>"])
    primary.publish("orders.new", count)
    primary.create_durable("ORDERS", "BILLING")
    primary.consume_and_ack("ORDERS", "BILLING", fetch=40, ack=40)
    mirror(sites, streams=["ORDERS"], record=str(record))
    info(sites, wait_for="caught_up", wait_timeout=30)


def test_mirror_info_waits_until_caught_up_and_reports_a_lost_origin_as_stalled(
    two_sites: Sites, tmp_path: Path
) -> None:
    mirrored_orders(two_sites, tmp_path / "record.json")
    two_sites.primary_js().publish("orders.new", 20)

    caught_up = info(two_sites, wait_for="caught_up", wait_timeout=30)
    assert caught_up["caught_up"] is True and caught_up["origin_answers"] is True
    (orders,) = caught_up["mirrors"]
    assert orders["last_seq"] == orders["origin_last_seq"] == 120
    assert orders["behind_messages"] == 0 and orders["health"] == "current"

    two_sites.primary.kill()
    wait_for(lambda: info(two_sites)["mirrors"][0]["health"] == "stalled", timeout=40, what="stalled")
    lost = info(two_sites)
    assert lost["origin_answers"] is False and lost["caught_up"] is False
    assert lost["mirrors"][0]["origin_last_seq"] is None and lost["mirrors"][0]["last_seq"] == 120
    with pytest.raises(ModuleFailed) as failed:
        info(two_sites, wait_for="caught_up", wait_timeout=1)
    assert failed.value.result["reason"] == "not_caught_up"


def test_promotion_is_refused_while_the_primary_answers(two_sites: Sites, tmp_path: Path) -> None:
    mirrored_orders(two_sites, tmp_path / "record.json")
    with pytest.raises(ModuleFailed) as failed:
        promote(two_sites, record=str(tmp_path / "record.json"))
    assert failed.value.result["reason"] == "origin_answers"
    assert two_sites.standby_js().stream_info("ORDERS")["config"]["mirror"]


def test_a_promoted_mirror_keeps_every_sequence_takes_the_subjects_and_gets_its_consumers_back(
    two_sites: Sites, tmp_path: Path
) -> None:
    record = tmp_path / "record.json"
    mirrored_orders(two_sites, record)
    # Acknowledged after the record was written: delivered again after the failover, never skipped.
    two_sites.primary_js().consume_and_ack("ORDERS", "BILLING", fetch=10, ack=10)
    two_sites.primary.kill()

    planned = promote(two_sites, check_mode=True, record=str(record))
    assert planned["changed"] is True
    assert two_sites.standby_js().stream_info("ORDERS")["config"]["mirror"]

    done = promote(two_sites, record=str(record))

    (orders,) = done["streams"]
    assert orders["action"] == "promote" and orders["subjects"] == ["orders.>"]
    assert orders["recovery_point"]["last_seq"] == 100
    assert orders["recorded_origin"]["missing_at_least"] == 0
    assert orders["consumers"] == [
        {
            "consumer": "BILLING",
            "action": "create",
            "start_seq": 41,
            "recorded_ack_floor": 40,
            "recorded_ack_pending": 0,
        }
    ]
    standby = two_sites.standby_js()
    stream = standby.stream_info("ORDERS")
    assert not stream["config"].get("mirror") and stream["config"]["subjects"] == ["orders.>"]
    assert stream["state"]["first_seq"] == 1 and stream["state"]["last_seq"] == 100
    standby.publish("orders.new", 1)
    assert standby.stream_info("ORDERS")["state"]["last_seq"] == 101
    billing = standby.request("CONSUMER.INFO.ORDERS.BILLING")
    assert billing["ack_floor"]["stream_seq"] == 40 and billing["num_pending"] == 61

    again = promote(two_sites, record=str(record))
    assert again["changed"] is False
    assert again["streams"][0]["action"] == "none" and again["streams"][0]["consumers"][0]["action"] == "none"


def test_a_consumer_recorded_beyond_what_the_mirror_holds_starts_at_the_end_not_past_it(
    two_sites: Sites, tmp_path: Path
) -> None:
    primary = two_sites.primary_js()
    primary.create_stream("ORDERS", subjects=["orders.>"])
    primary.publish("orders.new", 30)
    primary.create_durable("ORDERS", "BILLING")
    primary.consume_and_ack("ORDERS", "BILLING", fetch=30, ack=30)
    record = tmp_path / "record.json"
    mirror(two_sites, streams=["ORDERS"], record=str(record))
    info(two_sites, wait_for="caught_up", wait_timeout=30)
    # The record says 30 acknowledged; pretend the mirror holds only 25 of them (the primary died first).
    saved = json.loads(record.read_text())
    saved["streams"]["ORDERS"]["last_seq"] = 35
    record.write_text(json.dumps(saved))
    two_sites.standby_js().request("STREAM.PURGE.ORDERS", {"seq": 1})  # a mirror can be purged; keeps sequences
    two_sites.primary.kill()

    done = promote(two_sites, record=str(record))

    (orders,) = done["streams"]
    assert orders["recorded_origin"]["missing_at_least"] == 5
    assert orders["consumers"][0]["start_seq"] == 31


def retire(sites: Sites, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    counterpart = {"servers": sites.standby.urls, "user": APP_USER, "password": APP_PASSWORD}
    primary = {"servers": sites.primary.urls, "user": APP_USER, "password": APP_PASSWORD}
    return run_module("stream_retire", {**primary, "counterpart": counterpart, **args}, check_mode=check_mode)


def test_the_old_primary_stream_is_retired_only_after_what_it_alone_holds_is_backed_up(
    two_sites: Sites, tmp_path: Path
) -> None:
    mirrored_orders(two_sites, tmp_path / "record.json")
    # The link goes down while the primary still takes messages: 101-110 never reach the standby.
    two_sites.primary.stop()
    two_sites.primary.extra_config = ""  # no leaf node listener: the sites stay apart from now on
    two_sites.primary.start()
    two_sites.primary_js().publish("orders.new", 10)
    wait_for(lambda: info(two_sites)["mirrors"][0]["health"] == "stalled", timeout=40, what="stalled")
    promote(two_sites, record=str(tmp_path / "record.json"))
    two_sites.standby_js().publish("orders.new", 5)  # the standby's own 101-105: other messages

    with pytest.raises(ModuleFailed) as failed:
        retire(two_sites)
    assert failed.value.result["reason"] == "unsaved_messages"
    assert two_sites.primary_js().stream_info("ORDERS")["state"]["last_seq"] == 110

    planned = retire(two_sites, check_mode=True, backup_dir=str(tmp_path / "kept"))
    assert planned["streams"][0]["action"] == "back_up_and_retire"
    assert two_sites.primary_js().stream_info("ORDERS") is not None and not (tmp_path / "kept").exists()

    done = retire(two_sites, backup_dir=str(tmp_path / "kept"))

    (orders,) = done["streams"]
    assert orders["action"] == "back_up_and_retire" and orders["recovery_point"] == 100
    assert (orders["only_here_first_seq"], orders["only_here_last_seq"]) == (101, 110)
    assert done["backup"] == str(tmp_path / "kept")
    assert json.loads((tmp_path / "kept" / "ORDERS" / "backup.json").read_text())["state"]["last_seq"] == 110
    assert two_sites.primary_js().stream_info("ORDERS") is None
    assert retire(two_sites)["changed"] is False


def test_a_stream_the_other_site_holds_no_promoted_copy_of_is_kept(two_sites: Sites) -> None:
    two_sites.primary_js().create_stream("LOCAL", subjects=["local.>"])
    two_sites.primary_js().publish("local.x", 3)
    done = retire(two_sites)
    assert done["changed"] is False
    assert done["streams"][0]["action"] == "keep"
    assert two_sites.primary_js().stream_info("LOCAL")["state"]["messages"] == 3


def test_a_switchover_fences_the_origin_waits_for_its_last_message_and_the_sites_swap_roles(
    two_sites: Sites, tmp_path: Path
) -> None:
    mirrored_orders(two_sites, tmp_path / "record.json")
    two_sites.primary_js().publish("orders.new", 20)

    done = promote(two_sites, switchover=True, record=str(tmp_path / "record.json"))

    (orders,) = done["streams"]
    assert orders["fenced_origin"] == {"domain": PRIMARY_DOMAIN, "subjects": ["orders.>"], "last_seq": 120}
    assert orders["recovery_point"]["last_seq"] == 120
    old = two_sites.primary_js().stream_info("ORDERS")
    assert old["config"]["subjects"] == ["natsops.fenced.ORDERS"] and old["state"]["last_seq"] == 120
    promoted = two_sites.standby_js().stream_info("ORDERS")
    assert promoted["config"]["subjects"] == ["orders.>"] and promoted["state"]["last_seq"] == 120

    # The old origin holds nothing the promoted stream lacks: retired without a backup, then a mirror of it.
    retired = retire(two_sites)
    assert [(entry["stream"], entry["action"]) for entry in retired["streams"]] == [("ORDERS", "retire")]
    primary_args = {"servers": two_sites.primary.urls, "user": APP_USER, "password": APP_PASSWORD}
    back = run_module("stream_mirror", {**primary_args, "origin_domain": STANDBY_DOMAIN})
    assert [(entry["stream"], entry["action"]) for entry in back["mirrors"]] == [("ORDERS", "create")]
    wait_for(lambda: mirrored(two_sites_reversed(two_sites), "ORDERS", 120), what="mirrored back")


def test_a_switchover_that_cannot_finish_gives_the_origin_its_subjects_back(two_sites: Sites, tmp_path: Path) -> None:
    mirrored_orders(two_sites, tmp_path / "record.json")
    # A mirror that cannot copy the rest: full, and refusing new messages.
    standby = two_sites.standby_js()
    config = standby.stream_info("ORDERS")["config"]
    standby.request("STREAM.UPDATE.ORDERS", {**config, "max_msgs": 100, "discard": "new"})
    two_sites.primary_js().publish("orders.new", 20)

    with pytest.raises(ModuleFailed) as failed:
        promote(two_sites, switchover=True, wait_timeout=2)

    assert failed.value.result["reason"] == "not_caught_up"
    assert two_sites.primary_js().stream_info("ORDERS")["config"]["subjects"] == ["orders.>"]
    assert two_sites.standby_js().stream_info("ORDERS")["config"]["mirror"]


def two_sites_reversed(sites: Sites) -> Sites:
    return Sites(primary=sites.standby, standby=sites.primary)


def test_a_standby_too_old_to_promote_is_refused_before_anything_changes(tmp_path: Path) -> None:
    sites = make_sites(tmp_path, standby_binary=older_server("2.10.26"))
    try:
        mirrored_orders(sites, tmp_path / "record.json")
        sites.primary.kill()
        with pytest.raises(ModuleFailed) as failed:
            promote(sites, record=str(tmp_path / "record.json"))
        assert failed.value.result["reason"] == "promotion_unsupported"
        assert sites.standby_js().stream_info("ORDERS")["config"]["mirror"]
    finally:
        sites.primary.kill()
        sites.standby.kill()
