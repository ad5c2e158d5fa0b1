"""Settings that must survive a backup and a restore, each round-tripped on the releases that have it.

Every case makes a stream (and maybe a consumer) with the setting on one server, backs it up, restores
it into a fresh server, and compares the setting as each server reports it, and the messages.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.config_modules import require_release
from support.hostile import app, js
from support.modules import run_module
from support.servers import APP_PASSWORD, APP_USER, NatsCluster
from support.streams import connect

S = 1_000_000_000  # nanoseconds


@dataclass
class Case:
    release: tuple[int, int]
    stream: dict[str, Any]  # settings beside name and subjects; NAME in a value is the stream's name
    consumer: dict[str, Any] = field(default_factory=dict)  # a durable's settings, when the case has one
    ttl_header: str | None = None  # publish with Nats-TTL
    then: dict[str, Any] = field(default_factory=dict)  # settings an update adds after the messages (sealed)


CASES = {
    "subject transform": Case((2, 10), {"subject_transform": {"src": "NAME.in.>", "dest": "NAME.out.>"}}),
    "republish": Case((2, 10), {"republish": {"src": "NAME.>", "dest": "repub.NAME.>", "headers_only": True}}),
    "per-message TTLs and delete markers": Case(
        (2, 11), {"allow_msg_ttl": True, "subject_delete_marker_ttl": 60 * S}, ttl_header="1h"
    ),
    "sealed": Case((2, 10), {"deny_delete": True, "deny_purge": True}, then={"sealed": True}),
    "deny delete and purge": Case((2, 10), {"deny_delete": True, "deny_purge": True}),
    "compression": Case((2, 10), {"compression": "s2"}),
    "first sequence": Case((2, 10), {"first_seq": 1000}),
    "metadata": Case((2, 10), {"metadata": {"team": "billing", "tier": "gold"}}),
    "consumer with several filters": Case((2, 10), {}, consumer={"filter_subjects": ["NAME.in.a", "NAME.in.b"]}),
    "consumer backoff": Case((2, 10), {}, consumer={"backoff": [1 * S, 5 * S], "max_deliver": 3, "ack_wait": S}),
    "paused consumer": Case((2, 11), {}, consumer={"pause_until": "2099-01-01T00:00:00Z"}),
}


def named(value: Any, name: str) -> Any:
    if isinstance(value, str):
        return value.replace("NAME", name)
    if isinstance(value, list):
        return [named(item, name) for item in value]
    if isinstance(value, dict):
        return {key: named(item, name) for key, item in value.items()}
    return value


def user_metadata(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in (config.get("metadata") or {}).items() if not key.startswith("_nats.")}


def setting(config: dict[str, Any], key: str) -> Any:
    return user_metadata(config) if key == "metadata" else config.get(key)


async def publish_some(nc: Any, name: str, ttl: str | None) -> None:
    jetstream = nc.jetstream(timeout=10)
    for index in range(20):
        headers = {"Nats-TTL": ttl} if ttl else None
        await jetstream.publish(f"{name}.in.{'ab'[index % 2]}", f"{name} {index}".encode(), headers=headers)


@pytest.mark.parametrize("case", list(CASES))
def test_a_setting_survives_backup_and_restore(
    case, nats_standalone, fresh_standalone, tmp_path, unique_name, nats_server_version
):
    spec = CASES[case]
    require_release(nats_server_version, spec.release)
    name = unique_name("SET")
    source = js(nats_standalone)
    stream_settings = named(spec.stream, name)
    source.create_stream(name, subjects=[f"{name}.in.>"], **stream_settings)

    async def fill() -> None:
        nc = await connect(list(nats_standalone.urls), APP_USER, APP_PASSWORD)
        try:
            await publish_some(nc, name, spec.ttl_header)
        finally:
            await nc.close()

    asyncio.run(fill())
    consumer_settings = named(spec.consumer, name)
    if spec.consumer:
        source.create_durable(name, "C", **consumer_settings)
    if spec.then:
        config = source.stream_info(name)["config"]
        source.request(f"STREAM.UPDATE.{name}", {**config, **spec.then})
    before = source.snapshot_of(name)
    before_config = source.stream_info(name)["config"]
    path = tmp_path / name

    run_module("stream_backup", app(nats_standalone, stream=name, path=str(path)))
    run_module("stream_restore", app(fresh_standalone, path=str(path)))

    target = js(fresh_standalone)
    after_config = target.stream_info(name)["config"]
    for key in [*stream_settings, *spec.then]:
        assert setting(after_config, key) == setting(before_config, key), key
    assert "natsops.jetstream.restore" not in (after_config.get("metadata") or {})
    if spec.consumer:
        before_consumer = source.request(f"CONSUMER.INFO.{name}.C")["config"]
        after_consumer = target.request(f"CONSUMER.INFO.{name}.C")["config"]
        for key in consumer_settings:
            assert after_consumer.get(key) == before_consumer.get(key), key
    assert target.snapshot_of(name) == before


def test_placement_tags_survive_backup_and_restore(tmp_path):
    """Placement needs servers with tags: a cluster whose servers carry them, the stream restored into it."""
    cluster = NatsCluster(tmp_path / "tagged", size=3)
    for index, node in enumerate(cluster.nodes):
        node.extra_config = f'server_tags: ["az:{index}", "{"ssd" if index else "hdd"}"]'
    cluster.start()
    try:
        client = js(cluster)
        client.create_stream("PLACED", num_replicas=2, placement={"tags": ["ssd"]})
        client.publish("PLACED.x", 50)
        before = client.snapshot_of("PLACED")
        path = tmp_path / "placed"
        run_module("stream_backup", app(cluster, stream="PLACED", path=str(path)))
        client.delete_stream("PLACED")

        run_module("stream_restore", app(cluster, path=str(path)))
        info = client.stream_info("PLACED")
        assert info["config"]["placement"]["tags"] == ["ssd"]
        holders = {info["cluster"]["leader"], *(replica["name"] for replica in info["cluster"].get("replicas") or [])}
        assert cluster.nodes[0].name not in holders  # the only server without the tag holds no replica
        assert client.snapshot_of("PLACED") == before
    finally:
        cluster.stop_all()
