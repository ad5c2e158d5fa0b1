"""One measured operation, in a fresh process so that its peak RSS is its own.

Run by bench/run.py, not by hand:  python bench/one.py OP --url URL [--stream S] [--path P]

OP is one of:
  baseline-bare    import nats-py and exit (the floor of the bare loops' RSS)
  baseline-module  import nats-py, ansible and both modules and exit (the floor of the modules' RSS)
  bare-backup      minimal nats-py snapshot loop: ack every full chunk, discard the data
  bare-backup-write  the same loop writing the data to --path (buffered, fsync at the end, no hash)
  backup           natsops.jetstream.stream_backup (stream, path)
  bare-restore     minimal nats-py restore loop: backup.json, then stream.tar.s2 in 1 MiB requests
  restore          natsops.jetstream.stream_restore (path)
  verify           only the restore module's pre-check of a backup (manifest sizes and sha256)

Prints one JSON line: seconds (wall time of the operation alone, after imports), cpu_seconds (this
process's user+system time during it), rss_ready_kib (RSS once imports are done), peak_rss_kib
(VmHWM: the peak RSS of the whole process, imports included) and op-specific details.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import nats

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS_ROOT = REPO / ".build" / "collections"

SNAPSHOT_CHUNK = 128 * 1024  # the backup module's default chunk_size
RESTORE_CHUNK = 1024 * 1024  # the restore module's default chunk_size
PENDING_BYTES = 256 * 1024 * 1024  # same client-side buffer as the module
PENDING_MSGS = 1024 * 1024


def expose_collection() -> None:
    """Make ``ansible_collections.natsops.jetstream`` importable, as tests/conftest.py does."""
    link = COLLECTIONS_ROOT / "ansible_collections" / "natsops" / "jetstream"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO, target_is_directory=True)
    for entry in (str(COLLECTIONS_ROOT), str(REPO / "tests")):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status: VmRSS (now) or VmHWM (peak).

    VmHWM is used for the peak rather than ru_maxrss: the kernel carries the forking parent's peak
    over exec into the child's ru_maxrss, so a child of a big parent would report the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def js_reply(data: bytes, what: str) -> dict[str, Any]:
    body = json.loads(data) if data else {}
    if isinstance(body, dict) and body.get("error"):
        raise RuntimeError(f"{what}: {body['error']}")
    return body


async def bare_backup(url: str, stream: str, keep: Path | None = None) -> dict[str, Any]:
    """The minimal snapshot loop: what any client must do, and nothing more.

    With ``keep``, the data is also written there (buffered, one fsync at the end, no hashing): the
    floor of any backup that saves its data, to tell disk cost from our own overhead.
    """
    out = open(keep, "wb") if keep else None  # noqa: SIM115  (closed below)
    nc = await nats.connect(url)
    try:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, pending_msgs_limit=PENDING_MSGS, pending_bytes_limit=PENDING_BYTES)
        request = {"deliver_subject": inbox, "no_consumers": False, "chunk_size": SNAPSHOT_CHUNK, "jsck": False}
        reply = await nc.request(f"$JS.API.STREAM.SNAPSHOT.{stream}", json.dumps(request).encode(), timeout=30)
        js_reply(reply.data, "snapshot")
        size = chunks = 0
        while True:
            msg = await sub.next_msg(timeout=10)
            if not msg.data:
                status = (msg.headers or {}).get("Status", "204")
                if status != "204":
                    raise RuntimeError(f"snapshot ended with status {status}")
                break
            if msg.reply:
                await nc.publish(msg.reply, b"")
            if out:
                out.write(msg.data)
            size += len(msg.data)
            chunks += 1
        if out:
            out.flush()
            os.fsync(out.fileno())
        return {"bytes": size, "chunks": chunks}
    finally:
        if out:
            out.close()
        await nc.close()


async def bare_restore(url: str, path: Path) -> dict[str, Any]:
    """The minimal restore loop: one 1 MiB request in flight, then the empty request that ends it."""
    backup = json.loads((path / "backup.json").read_text(encoding="utf-8"))
    stream = backup["config"]["name"]
    nc = await nats.connect(url)
    try:
        body = json.dumps({"config": backup["config"], "state": backup["state"]}).encode()
        reply = await nc.request(f"$JS.API.STREAM.RESTORE.{stream}", body, timeout=30)
        deliver = js_reply(reply.data, "restore")["deliver_subject"]
        size = chunks = 0
        with open(path / "stream.tar.s2", "rb") as handle:
            while chunk := handle.read(RESTORE_CHUNK):
                answer = await nc.request(deliver, chunk, timeout=10)
                if answer.data:
                    js_reply(answer.data, "restore chunk")
                size += len(chunk)
                chunks += 1
        final = js_reply((await nc.request(deliver, b"", timeout=3600)).data, "restore end")
        state = final.get("state") or {}
        return {"bytes": size, "chunks": chunks, "messages": state.get("messages"), "stream_bytes": state.get("bytes")}
    finally:
        await nc.close()


def module_runner() -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Import everything a module run needs (counted in the baseline, not in the timing)."""
    expose_collection()
    from support.modules import run_module

    for name in ("stream_backup", "stream_restore"):
        importlib.import_module(f"ansible_collections.natsops.jetstream.plugins.modules.{name}")
    return run_module


def prepare(args: argparse.Namespace) -> Callable[[], dict[str, Any]]:
    """Do the imports for ``args.op`` and return the operation itself."""
    op = args.op
    if op == "baseline-bare":
        return dict
    if op == "bare-backup":
        return lambda: asyncio.run(bare_backup(args.url, args.stream))
    if op == "bare-backup-write":
        return lambda: asyncio.run(bare_backup(args.url, args.stream, Path(args.path)))
    if op == "bare-restore":
        return lambda: asyncio.run(bare_restore(args.url, Path(args.path)))
    if op == "verify":
        module_runner()  # same imports as the restore module, so its RSS compares with baseline-module
        from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (
            verify_stream_backup,
        )

        return lambda: verify_stream_backup(Path(args.path))
    run_module = module_runner()
    if op == "baseline-module":
        return dict
    if op == "backup":
        params = {"servers": [args.url], "stream": args.stream, "path": args.path}
        return lambda: module_details(run_module("stream_backup", params))
    if op == "restore":
        return lambda: module_details(run_module("stream_restore", {"servers": [args.url], "path": args.path}))
    raise SystemExit(f"unknown op {op}")


def module_details(result: dict[str, Any]) -> dict[str, Any]:
    """The few facts of a module result worth keeping with the timing."""
    entries = result.get("backups") or result.get("restored") or [{}]
    entry = entries[0]
    keep = ("bytes", "chunks", "duration", "throughput_mib_s")
    details = {key: entry[key] for key in keep if key in entry}
    if "verification" in entry:
        details["verification_match"] = entry["verification"].get("match")
    details["warnings"] = result.get("warnings") or []
    return details


def measure(op: str, operation: Callable[[], Any], profile: str = "") -> None:
    """Run the prepared ``operation`` once, timed, and print its report (JSON, one line) for the parent."""
    ready_rss = status_kib("VmRSS")
    profiler = cProfile.Profile() if profile else None
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    details = operation()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    if profiler:
        profiler.dump_stats(profile)
    report = {
        "op": op,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_ready_kib": ready_rss,
        "peak_rss_kib": status_kib("VmHWM"),
        "details": details if isinstance(details, dict) else {},
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op")
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--stream", default="BENCH")
    parser.add_argument("--path", default="")
    parser.add_argument("--profile", default="", help="write cProfile stats of the operation to this file")
    args = parser.parse_args()

    measure(args.op, prepare(args), args.profile)
    os._exit(0)  # skip interpreter teardown: nothing left to release, and it is not measured


if __name__ == "__main__":
    main()
