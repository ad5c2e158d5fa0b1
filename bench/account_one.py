"""One measured account-scale operation, in a fresh process so that its peak RSS is its own.

Run by bench/account.py, not by hand:

    python bench/account_one.py OP --url URL [--path P] [--streams PATTERN ...] [--parallel N] [--replicas R]

OP is one of:
  baseline-module  import nats-py, ansible and both modules and exit (the floor of the modules' RSS)
  backup           natsops.jetstream.stream_backup with streams (default all), path and parallel
  restore          natsops.jetstream.stream_restore with path, parallel and (optionally) replicas and streams
  bare-backup      minimal nats-py snapshot loop over the streams --streams selects, --parallel at a time over
                   --connections connections: subscribe, request STREAM.SNAPSHOT, ack, discard the data. What
                   the server alone costs per stream; it also times each request's reply and each snapshot

Prints one JSON line, as bench/one.py does: seconds (wall time of the operation alone, after imports),
cpu_seconds, rss_ready_kib, peak_rss_kib (VmHWM, imports included) and op-specific details.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import statistics
import time
from typing import Any, Callable

import nats
from one import PENDING_BYTES, PENDING_MSGS, SNAPSHOT_CHUNK, js_reply, measure, module_runner


async def stream_names(nc: Any, patterns: list[str]) -> list[str]:
    names: list[str] = []
    while True:
        reply = await nc.request("$JS.API.STREAM.NAMES", json.dumps({"offset": len(names)}).encode(), timeout=30)
        page = js_reply(reply.data, "stream names")
        batch = page.get("streams") or []
        names.extend(batch)
        if not batch or len(names) >= int(page.get("total") or 0):
            break
    if patterns and "all" not in patterns:
        names = [name for name in names if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)]
    return sorted(names)


async def bare_snapshot(nc: Any, stream: str) -> dict[str, float]:
    """One stream's snapshot, data discarded; seconds to the request's reply and to the end marker."""
    inbox = nc.new_inbox()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    size = 0

    async def on_chunk(msg: Any) -> None:
        nonlocal size
        if done.done():
            return
        if not msg.data:
            status = (msg.headers or {}).get("Status", "204")
            if status != "204":
                done.set_exception(RuntimeError(f"snapshot of {stream} ended with status {status}"))
            else:
                done.set_result(None)
            return
        if msg.reply:
            await nc.publish(msg.reply, b"")
        size += len(msg.data)

    sub = await nc.subscribe(inbox, cb=on_chunk, pending_msgs_limit=PENDING_MSGS, pending_bytes_limit=PENDING_BYTES)
    started = time.perf_counter()
    request = {"deliver_subject": inbox, "no_consumers": False, "chunk_size": SNAPSHOT_CHUNK, "jsck": False}
    reply = await nc.request(f"$JS.API.STREAM.SNAPSHOT.{stream}", json.dumps(request).encode(), timeout=60)
    replied = time.perf_counter()
    js_reply(reply.data, f"snapshot of {stream}")
    await asyncio.wait_for(done, 60)
    ended = time.perf_counter()
    await sub.unsubscribe()
    return {"reply_s": replied - started, "snapshot_s": ended - started, "bytes": size}


async def bare_backup(url: str, patterns: list[str], parallel: int, connections: int) -> dict[str, Any]:
    """Snapshot every selected stream, ``parallel`` at a time, spread over ``connections`` connections."""
    clients = [await nats.connect(url, pending_size=64 * 1024 * 1024) for _index in range(max(1, connections))]
    try:
        names = await stream_names(clients[0], patterns)
        limit = asyncio.Semaphore(max(1, parallel))
        timings: list[dict[str, float]] = []

        async def one(index: int, name: str) -> None:
            async with limit:
                timings.append(await bare_snapshot(clients[index % len(clients)], name))

        await asyncio.gather(*(one(index, name) for index, name in enumerate(names)))
        replies = [timing["reply_s"] for timing in timings]
        snapshots = [timing["snapshot_s"] for timing in timings]
        return {
            "streams": len(names),
            "bytes": sum(int(timing["bytes"]) for timing in timings),
            "connections": len(clients),
            "parallel": parallel,
            "reply_ms_median": statistics.median(replies) * 1000,
            "reply_ms_p90": sorted(replies)[int(0.9 * (len(replies) - 1))] * 1000,
            "snapshot_ms_median": statistics.median(snapshots) * 1000,
            "snapshot_ms_p90": sorted(snapshots)[int(0.9 * (len(snapshots) - 1))] * 1000,
        }
    finally:
        for client in clients:
            await client.close()


def module_summary(result: dict[str, Any], key: str) -> dict[str, Any]:
    """The few facts of an account-wide module result worth keeping with the timing."""
    entries = result.get(key) or []
    durations = sorted(float(entry.get("duration") or 0) for entry in entries)
    return {
        "streams": len(entries),
        "bytes": sum(int(entry.get("bytes") or 0) for entry in entries),
        "module_duration": result.get("duration"),
        "stream_s_median": statistics.median(durations) if durations else 0.0,
        "stream_s_max": durations[-1] if durations else 0.0,
        "stream_s_sum": sum(durations),
        "warnings": result.get("warnings") or [],
    }


def prepare(args: argparse.Namespace) -> Callable[[], dict[str, Any]]:
    """Do the imports for ``args.op`` and return the operation itself."""
    patterns = args.streams or ["all"]
    if args.op == "bare-backup":
        return lambda: asyncio.run(bare_backup(args.url, patterns, args.parallel, args.connections))
    run_module = module_runner()
    if args.op == "baseline-module":
        return dict
    if args.op == "backup":
        params = {"servers": [args.url], "streams": patterns, "path": args.path, "parallel": args.parallel}
        return lambda: module_summary(run_module("stream_backup", params), "backups")
    if args.op == "restore":
        params = {"servers": [args.url], "path": args.path, "parallel": args.parallel}
        if args.streams:
            params["streams"] = args.streams
        if args.replicas:
            params["replicas"] = args.replicas
        return lambda: module_summary(run_module("stream_restore", params), "restored")
    raise SystemExit(f"unknown op {args.op}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op")
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--path", default="")
    parser.add_argument("--streams", nargs="*", default=[], help="stream names or patterns (default: all)")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--connections", type=int, default=1, help="bare-backup only")
    parser.add_argument("--replicas", type=int, default=0, help="restore only; 0: the backup's")
    parser.add_argument("--profile", default="", help="write cProfile stats of the operation to this file")
    args = parser.parse_args()

    measure(args.op, prepare(args), args.profile)
    os._exit(0)  # skip interpreter teardown: not measured


if __name__ == "__main__":
    main()
