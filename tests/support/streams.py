"""Test data helpers over the raw JetStream API: make streams and consumers, and read them back exactly."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError


class JsApiError(RuntimeError):
    def __init__(self, suffix: str, error: dict[str, Any]) -> None:
        super().__init__(f"{suffix}: {error}")
        self.err_code = int(error.get("err_code") or 0)


NO_SUITABLE_PEERS = 10005
# A freshly pushed operator-mode account: the meta leader enables its JetStream a moment after loading it.
NOT_ENABLED_FOR_ACCOUNT = 10039


async def js_request(nc: Any, suffix: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> dict:
    """One JetStream API request; "not enabled for account" is asked again for up to 5 s (account warm-up)."""
    warm_until = asyncio.get_running_loop().time() + 5
    while True:
        reply = await nc.request(f"$JS.API.{suffix}", json.dumps(body or {}).encode(), timeout=timeout)
        data = json.loads(reply.data)
        if not data.get("error"):
            return data
        error = JsApiError(suffix, data["error"])
        if error.err_code != NOT_ENABLED_FOR_ACCOUNT or asyncio.get_running_loop().time() > warm_until:
            raise error
        await asyncio.sleep(0.25)


async def create_stream(nc: Any, name: str, **config: Any) -> dict[str, Any]:
    config = {"name": name, "subjects": [f"{name}.>"], "storage": "file", "num_replicas": 1, **config}
    # Its meta leader may not have heard from every peer yet ("no suitable peers, peer offline", seen on a
    # loaded machine): with replicas, that is asked again too.
    peers_wait = config.get("num_replicas", 1) > 1
    return await _create_while_settling(nc, f"STREAM.CREATE.{name}", config, peers_wait)


async def _create_while_settling(nc: Any, suffix: str, body: dict[str, Any], peers_wait: bool) -> dict[str, Any]:
    """A create request, asked again for up to 15 s while a cluster settles.

    A cluster that has just formed may be between meta leaders, and drops JetStream API requests meanwhile
    (an account's JetStream warming up is js_request's to wait for). Creating a stream or durable again with the
    same config is a no-op, so it can simply be asked again.
    """
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        try:
            return await js_request(nc, suffix, body)
        except NatsTimeoutError:
            pass
        except JsApiError as exc:
            if exc.err_code != NO_SUITABLE_PEERS or not peers_wait:
                raise
        if asyncio.get_running_loop().time() > deadline:
            return await js_request(nc, suffix, body)
        await asyncio.sleep(0.5)


async def stream_info(nc: Any, name: str) -> dict[str, Any] | None:
    try:
        return await js_request(nc, f"STREAM.INFO.{name}", None)
    except JsApiError as exc:
        if exc.err_code == 10059:
            return None
        raise


async def publish(
    nc: Any,
    subject: str,
    count: int,
    size: int = 100,
    with_headers_every: int = 0,
    payload: bytes | None = None,
) -> None:
    """Publish with JetStream acks, so every message is stored when this returns."""
    js = nc.jetstream(timeout=10)
    rng = random.Random(count * 7919 + size)
    for index in range(count):
        data = payload if payload is not None else rng.randbytes(size // 2) + b"x" * (size - size // 2)
        headers = None
        if with_headers_every and index % with_headers_every == 0:
            headers = {"Nats-Msg-Id": f"{subject}-{index}", "X-Tenant": f"t{index % 7}"}
        await publish_when_heard(js, subject, data, headers)


async def publish_when_heard(js: Any, subject: str, data: bytes, headers: dict[str, str] | None) -> None:
    """Publish with an ack, waiting out 'no responders' for a few seconds.

    STREAM.CREATE answers once the meta group has placed the stream; the stream leader's interest in its
    subjects reaches the other servers of the cluster over the routes a moment later. Until then a server
    that holds no replica has nobody to hand the message to. No responders means nobody received it, so
    a retry cannot store it twice.
    """
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        try:
            await js.publish(subject, data, headers=headers)
            return
        except NoStreamResponseError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def create_durable(nc: Any, stream: str, name: str, **config: Any) -> dict[str, Any]:
    config = {"durable_name": name, "ack_policy": "explicit", **config}
    body = {"stream_name": stream, "config": config}
    return await _create_while_settling(nc, f"CONSUMER.CREATE.{stream}.{name}", body, peers_wait=False)


async def consume_and_ack(nc: Any, stream: str, durable: str, fetch: int, ack: int) -> None:
    """Fetch ``fetch`` messages from a pull consumer and ack the first ``ack`` of them."""
    js = nc.jetstream(timeout=10)
    subscription = await js.pull_subscribe_bind(durable, stream)
    fetched = acked = 0
    deadline = asyncio.get_running_loop().time() + 10
    while fetched < fetch:
        # Ack as we go: the consumer stops delivering at max_ack_pending unacked messages.
        try:
            batch = await subscription.fetch(min(256, fetch - fetched), timeout=10)
        except ServiceUnavailableError:
            # A new clustered consumer answers 503 until its Raft group has a leader.
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        for message in batch:
            fetched += 1
            if acked < ack:
                await message.ack_sync()
                acked += 1


async def consumer_positions(nc: Any, stream: str) -> dict[str, list[int]]:
    """As the compatibility fixture records them: [delivered, ack floor, pending, ack pending]."""
    data = await js_request(nc, f"CONSUMER.LIST.{stream}")
    return {
        info["name"]: [
            info["delivered"]["stream_seq"],
            info["ack_floor"]["stream_seq"],
            info["num_pending"],
            info["num_ack_pending"],
        ]
        for info in data.get("consumers") or []
    }


async def messages(nc: Any, stream: str) -> list[dict[str, Any]]:
    """Every message of the stream by direct get: seq, subject, headers, data, timestamp."""
    info = await stream_info(nc, stream)
    assert info is not None, f"stream {stream} is missing"
    found = []
    for seq in range(info["state"]["first_seq"], info["state"]["last_seq"] + 1):
        reply = await nc.request(f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": seq}).encode(), timeout=10)
        data = json.loads(reply.data)
        if data.get("error"):
            continue  # deleted or expired sequence
        found.append(data["message"])
    return found


async def stream_digest(nc: Any, stream: str) -> str:
    """sha256 over every message's [seq, subject, hdrs, data, time], as the fixture's expected.json has it."""
    digest = hashlib.sha256()
    for message in await messages(nc, stream):
        record = [message["seq"], message["subject"], message.get("hdrs"), message.get("data"), message["time"]]
        digest.update(json.dumps(record, sort_keys=True).encode())
    return digest.hexdigest()


async def snapshot_of(nc: Any, stream: str) -> dict[str, Any]:
    """Everything a faithful restore must give back: the messages' digest, state and consumer positions."""
    info = await stream_info(nc, stream)
    assert info is not None
    state = info["state"]
    return {
        "digest": await stream_digest(nc, stream),
        "messages": state["messages"],
        "first_seq": state["first_seq"],
        "last_seq": state["last_seq"],
        "consumers": await consumer_positions(nc, stream),
    }


def progress(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot with each consumer reduced to [ack floor, unacked]: what a clustered restore keeps.

    A clustered restore returns delivered-but-unacked messages to pending (they are redelivered).
    """
    consumers = {name: [p[1], p[2] + p[3]] for name, p in snapshot["consumers"].items()}
    return {**snapshot, "consumers": consumers}


def random_payload(size: int) -> bytes:
    return os.urandom(size)


async def connect(url: str | list[str], user: str, password: str, creds: str | None = None) -> Any:
    login = {"user_credentials": creds} if creds else {"user": user, "password": password}
    return await nats.connect(url, connect_timeout=5, allow_reconnect=False, **login)


class SyncJs:
    """Blocking access to one server or cluster as the APP account: each call is one short connection.

    Tests stay synchronous because the modules under test run their own event loop (asyncio.run).
    """

    def __init__(self, urls: list[str], user: str = "", password: str = "", creds: str | None = None) -> None:
        self.urls = list(urls)
        self.user = user
        self.password = password
        self.creds = creds  # a creds file (operator mode) instead of user and password

    def _run(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        async def session() -> Any:
            nc = await connect(self.urls, self.user, self.password, self.creds)
            try:
                return await operation(nc, *args, **kwargs)
            finally:
                await nc.close()

        return asyncio.run(session())

    def request(self, suffix: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        return self._run(js_request, suffix, body, timeout)

    def create_stream(self, name: str, **config: Any) -> dict[str, Any]:
        return self._run(create_stream, name, **config)

    def delete_stream(self, name: str) -> None:
        self._run(js_request, f"STREAM.DELETE.{name}")

    def stream_info(self, name: str) -> dict[str, Any] | None:
        return self._run(stream_info, name)

    def exists(self, name: str) -> bool:
        return self.stream_info(name) is not None

    def publish(self, subject: str, count: int, **kwargs: Any) -> None:
        self._run(publish, subject, count, **kwargs)

    def create_durable(self, stream: str, name: str, **config: Any) -> dict[str, Any]:
        return self._run(create_durable, stream, name, **config)

    def consume_and_ack(self, stream: str, durable: str, fetch: int, ack: int) -> None:
        self._run(consume_and_ack, stream, durable, fetch, ack)

    def snapshot_of(self, name: str) -> dict[str, Any]:
        return self._run(snapshot_of, name)

    def max_payload(self) -> int:
        async def read(nc: Any) -> int:
            return int(nc.max_payload)

        return self._run(read)


def wait_for_data(nodes: list[Any], threshold: int = 1 << 20, timeout: float = 30.0) -> Any:
    """The first node that has received ``threshold`` more bytes than when this began: a restore is mid-way.

    Servers before 2.15 create the stream only at the end of a restore, so its appearance cannot
    signal progress; inbound bytes can, on every release.
    """
    baseline = {node.name: node.monitor("/varz")["in_bytes"] for node in nodes}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            if node.monitor("/varz")["in_bytes"] - baseline[node.name] >= threshold:
                return node
        time.sleep(0.01)
    raise AssertionError(f"no server received {threshold} bytes within {timeout}s")


def wait_for_counts(
    client: SyncJs, expected: dict[str, int], settle: float = 3.0, timeout: float = 60.0
) -> dict[str, int]:
    """Until every stream holds its expected count, then ``settle`` seconds more: a replay shows as more."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {name: client.stream_info(name)["state"]["messages"] for name in expected}
        if counts == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(settle)
    return {name: client.stream_info(name)["state"]["messages"] for name in expected}
