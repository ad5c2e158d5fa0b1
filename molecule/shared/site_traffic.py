"""Traffic for the site_loss scenario: a publisher that writes down every acknowledged message, and the checks.

    site_traffic.py load SERVERS                      # ORDERS (R3) and the KV bucket cfg at the primary
    site_traffic.py publish SERVERS LOG STOP          # publish to ORDERS until STOP exists or the primary is gone;
                                                      # LOG gets "INDEX SEQUENCE" per acknowledgement, at once
    site_traffic.py check SERVERS LOG REPORT          # the standby against what the primary acknowledged and what
                                                      # the failover report says it holds
    site_traffic.py use SERVERS NOW NEXT              # applications publish, consume and use KV (colour NOW -> NEXT)
    site_traffic.py holds SERVERS LOG RECOVERY_POINT  # SERVERS hold every message acknowledged up to the point
    site_traffic.py delay PRIMARY STANDBY             # how long an acknowledged message takes to reach the mirror

Each prints a JSON line and exits 1 when the promise does not hold. Users: app / app-secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import nats
from nats.js.api import StreamConfig

USER = {"user": "app", "password": "app-secret"}
KV_KEYS = {"colour": b"blue", "size": b"large", "shape": b"round"}


def report(ok: bool, **facts: Any) -> int:
    print(json.dumps({"ok": ok, **facts}))
    return 0 if ok else 1


async def connect(servers: str, **options: Any) -> Any:
    return await nats.connect(servers.split(","), connect_timeout=5, **USER, **options)


async def load(servers: str) -> int:
    client = await connect(servers)
    js = client.jetstream()
    await js.add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"], num_replicas=3))
    for index in range(200):
        await js.publish("orders.new", f"pre-{index}".encode())
    await js.add_consumer("ORDERS", durable_name="BILLING", ack_policy="explicit")
    subscription = await js.pull_subscribe_bind("BILLING", "ORDERS")
    for message in await subscription.fetch(120, timeout=10):
        await message.ack_sync()
    kv = await js.create_key_value(bucket="cfg", history=3, replicas=3)
    for key, value in KV_KEYS.items():
        await kv.put(key, value)
    await client.close()
    return report(True, orders=200, billing_acked=120, keys=sorted(KV_KEYS))


async def publish(servers: str, log_path: str, stop: str) -> int:
    """Acknowledged messages go to the log as they come; the primary's loss ends the run after 10 s of failures."""
    client = await connect(servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    js = client.jetstream(timeout=2)
    acked = failures = index = 0
    failing_since: float | None = None
    with open(log_path, "a", buffering=1) as log:
        while not os.path.exists(stop):
            try:
                ack = await js.publish("orders.new", f"m-{index}".encode())
            except Exception:  # the primary going away: the message was not acknowledged
                failures += 1
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > 10:
                    break
                await asyncio.sleep(0.1)
                continue
            failing_since = None
            log.write(f"m-{index} {ack.seq}\n")
            acked += 1
            index += 1
            await asyncio.sleep(0.002)
    await client.close()
    return report(acked > 0, acked=acked, failures=failures)


def acked_messages(log_path: str) -> dict[int, str]:
    """Sequence -> payload of every acknowledged message."""
    acked = {}
    with open(log_path) as log:
        for line in log:
            payload, sequence = line.split()
            acked[int(sequence)] = payload
    return acked


async def stored_messages(client: Any, stream: str, last_seq: int) -> dict[int, str]:
    """Sequence -> payload of every message of the stream, read with an ordered consumer."""
    js = client.jetstream()
    stored: dict[int, str] = {}
    if not last_seq:
        return stored
    subscription = await js.subscribe("orders.>", ordered_consumer=True, stream=stream)
    while True:
        message = await subscription.next_msg(timeout=10)
        stored[message.metadata.sequence.stream] = message.data.decode()
        if message.metadata.sequence.stream >= last_seq:
            break
    await subscription.unsubscribe()
    return stored


async def check(servers: str, log_path: str, report_path: str) -> int:
    """Every message acknowledged up to the report's recovery point is in the standby; the standby holds nothing
    past it, so what the report names as the point is exactly where the loss begins."""
    with open(report_path) as file:
        failover = json.load(file)
    streams = {entry["stream"]: entry for entry in failover["accounts"]["APP"]["streams"]}
    point = streams["ORDERS"]["recovery_point"]["last_seq"]
    acked = acked_messages(log_path)
    client = await connect(servers)
    info = await client.jetstream().stream_info("ORDERS")
    stored = await stored_messages(client, "ORDERS", info.state.last_seq)
    await client.close()
    wrong = [seq for seq, payload in acked.items() if seq <= point and stored.get(seq) != payload]
    missing = sorted(seq for seq in acked if seq > point)
    return report(
        not wrong and info.state.last_seq == point and all(seq not in stored for seq in missing),
        acked=len(acked),
        recovery_point=point,
        standby_last_seq=info.state.last_seq,
        acked_and_lost=len(missing),
        lost_first_last=[missing[0], missing[-1]] if missing else None,
        wrong=wrong[:20],
        consumers=[consumer["consumer"] for consumer in streams["ORDERS"]["consumers"]],
        failover_seconds=failover["seconds"],
    )


async def use(servers: str, colour_now: str, colour_next: str) -> int:
    """What an application does after a failover: publish, consume with its durable, read its KV (the key colour
    holding ``colour_now``, the others as loaded) and write colour_next to it."""
    client = await connect(servers)
    js = client.jetstream()
    ack = await js.publish("orders.new", b"after-the-switch")
    subscription = await js.pull_subscribe_bind("BILLING", "ORDERS")
    fetched = await subscription.fetch(5, timeout=10)
    for message in fetched:
        await message.ack_sync()
    kv = await js.key_value("cfg")
    values = {key: (await kv.get(key)).value for key in KV_KEYS}
    written = await kv.put("colour", colour_next.encode())
    colour = await read_back(kv, "colour", written)
    await client.close()
    expected = {**KV_KEYS, "colour": colour_now.encode()}
    ok = values == expected and colour == colour_next.encode() and len(fetched) > 0
    return report(ok, published_seq=ack.seq, fetched=len(fetched), kv=sorted(values), kv_written=colour.decode())


async def read_back(kv: Any, key: str, revision: int) -> bytes:
    """The key's value once a read shows the revision just written. A KV bucket's reads are direct gets, which
    any replica answers: right after a write a follower may answer with the value before it (NATS's direct get
    is not read-after-write), so the read is asked again for a few seconds."""
    deadline = time.monotonic() + 5
    entry = await kv.get(key)
    while (entry.revision or 0) < revision and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        entry = await kv.get(key)
    return entry.value


async def holds(servers: str, log_path: str, point: str) -> int:
    """SERVERS hold every acknowledged message up to the recovery point, with its payload."""
    acked = acked_messages(log_path)
    client = await connect(servers)
    info = await client.jetstream().stream_info("ORDERS")
    stored = await stored_messages(client, "ORDERS", info.state.last_seq)
    await client.close()
    wrong = [seq for seq, payload in acked.items() if seq <= int(point) and stored.get(seq) != payload]
    return report(not wrong, last_seq=info.state.last_seq, checked=int(point), wrong=wrong[:20])


async def delay(primary: str, standby: str) -> int:
    """How long a message acknowledged by the primary takes to be in the standby's mirror, under the publisher's
    load: 20 samples, each a publish and then reads of the mirror until it holds that sequence."""
    source = await connect(primary)
    target = await connect(standby)
    samples = []
    for _sample in range(20):
        ack = await source.jetstream().publish("orders.new", b"delay-probe")
        started = time.monotonic()
        while (await target.jetstream().stream_info("ORDERS")).state.last_seq < ack.seq:
            await asyncio.sleep(0.001)
        samples.append(round((time.monotonic() - started) * 1000, 1))
        await asyncio.sleep(0.2)
    await source.close()
    await target.close()
    samples.sort()
    return report(True, delay_ms_median=samples[len(samples) // 2], delay_ms_max=samples[-1], samples=len(samples))


def main(command: str, *args: str) -> int:
    commands = {"load": load, "publish": publish, "check": check, "use": use, "holds": holds, "delay": delay}
    if command not in commands:
        raise SystemExit(f"unknown command {command}")
    return asyncio.run(commands[command](*args))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
