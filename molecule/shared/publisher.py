"""Publish to an R3 stream with acknowledgements until a stop file appears; then check nothing acked was lost.

Every message carries its index; a publish that fails (a leader moving, a server in lame duck) is retried
with the same Nats-Msg-Id, so the stream's de-duplication keeps one copy. Prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import nats


async def main(servers: str, stop_file: str) -> None:
    client = await nats.connect(servers.split(","), user="app", password="app-secret", max_reconnect_attempts=-1)
    js = client.jetstream(timeout=5)
    await js.add_stream(name="ROLLING", subjects=["rolling.>"], num_replicas=3)
    acked: set[int] = set()
    retries = 0
    index = 0
    started = time.monotonic()
    while not os.path.exists(stop_file) and time.monotonic() - started < 900:
        while True:
            try:
                await js.publish("rolling.x", str(index).encode(), headers={"Nats-Msg-Id": f"m{index}"})
                acked.add(index)
                break
            except Exception:  # no leader for a moment, a server in lame duck: the same message again
                retries += 1
                await asyncio.sleep(0.05)
        index += 1
        await asyncio.sleep(0.005)
    info = await js.stream_info("ROLLING")
    stored: set[int] = set()
    subscription = await js.subscribe("rolling.x", ordered_consumer=True)
    while len(stored) < info.state.messages:
        message = await subscription.next_msg(timeout=10)
        stored.add(int(message.data))
    lost = sorted(acked - stored)
    print(json.dumps({"acked": len(acked), "stored": info.state.messages, "lost": lost[:20], "retries": retries}))
    await client.close()


asyncio.run(main(sys.argv[1], sys.argv[2]))
