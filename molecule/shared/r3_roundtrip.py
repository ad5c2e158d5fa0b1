"""Publish 100 messages to a new R3 stream, read them all back, report what came back; then delete it."""

from __future__ import annotations

import asyncio
import json
import sys

import nats
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError


async def publish_when_heard(js: nats.js.JetStreamContext, data: bytes) -> None:
    """The new stream's interest reaches every server over the routes just after it is created."""
    for _attempt in range(100):
        try:
            await js.publish("molecule.r3", data)
            return
        except NoStreamResponseError:  # nobody received it: retrying cannot store it twice
            await asyncio.sleep(0.05)
    await js.publish("molecule.r3", data)


async def main(servers: str) -> None:
    client = await nats.connect(servers.split(","), user="app", password="app-secret")
    js = client.jetstream()
    await js.add_stream(name="MOLECULE_R3", subjects=["molecule.r3"], num_replicas=3)
    try:
        for index in range(100):
            await publish_when_heard(js, f"message {index}".encode())
        subscription = await js.pull_subscribe("molecule.r3", durable="reader", stream="MOLECULE_R3")
        returned = 0
        attempts = 0
        while returned < 100:
            try:
                batch = await subscription.fetch(100 - returned, timeout=10)
            except ServiceUnavailableError:  # a new R3 consumer answers 503 until its Raft group has a leader
                attempts += 1
                if attempts > 100:
                    raise
                await asyncio.sleep(0.1)
                continue
            for message in batch:
                assert message.data == f"message {returned}".encode()
                await message.ack()
                returned += 1
        info = await js.stream_info("MOLECULE_R3")
        current = 1 + sum(1 for peer in info.cluster.replicas or [] if peer.current)
        print(json.dumps({"returned": returned, "replicas": current}))
    finally:
        await js.delete_stream("MOLECULE_R3")
        await client.close()


asyncio.run(main(sys.argv[1]))
