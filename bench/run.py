"""Benchmark stream_backup and stream_restore against minimal nats-py loops, on a private nats-server.

    .venv/bin/python bench/run.py [--size 1GiB] [--repeat 3] [--keep]

Starts its own standalone JetStream nats-server on a free 127.0.0.x port, fills a file-storage
stream with --size bytes of half-compressible payloads, then times, each --repeat times and each in a
fresh child process (bench/one.py, so its peak RSS is its own): the bare backup loop, our backup,
the bare restore loop and our restore. Prints a table and writes bench/results/<timestamp>.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import nats

T = TypeVar("T")

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
NATS_SERVER = REPO / ".venv" / "bin" / "nats-server"
STREAM = "BENCH"
MIB = 1024 * 1024
MIN_PAYLOAD, MAX_PAYLOAD = 128, 64 * 1024
FLUSH_EVERY = 4 * MIB
PATTERN = b"natsops.jetstream bench pattern|" * (MAX_PAYLOAD // 32)
# Targets from the issue: ours / bare wall time, and peak RSS of the process running a module.
TARGET_RATIO = {"backup": 1.2, "restore": 1.1}
TARGET_PEAK_RSS_MIB = 150

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(text: str) -> int:
    """``64MiB``, ``1GiB``, ``500MB``, ``1g`` (binary unless spelt ``kB``/``MB``/``GB``) or plain bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 64MiB or 1GiB)")
    number, unit, binary, byte = match.groups()
    unit = unit.lower()
    decimal = bool(unit) and byte and not binary  # "MB" is decimal; "M", "MiB" are binary
    factor = _UNITS[unit] if decimal else 1024 ** "_kmgt".index(unit or "_")
    return int(float(number) * factor)


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


# --- the server -------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the server's process: get SIGTERM if the benchmark dies without cleaning up (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_address() -> tuple[str, int]:
    host = f"127.0.0.{random.randint(2, 250)}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:  # a loopback without the whole 127/8 routed
            host = "127.0.0.1"
            probe.bind((host, 0))
        return host, probe.getsockname()[1]


class NatsServer:
    """A standalone JetStream nats-server of our own, in ``workdir``: on ``address`` (host, port), by default a free
    port of a random 127.0.0.x, and run from ``binary``, by default the venv's."""

    def __init__(self, workdir: Path, address: tuple[str, int] | None = None, binary: Path | None = None) -> None:
        self.workdir = workdir
        self.host, self.port = address or free_address()
        self.binary = binary or NATS_SERVER
        self.url = f"nats://{self.host}:{self.port}"
        self.log = workdir / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.workdir / "nats-server.conf"
        config.write_text(
            f'server_name: "natsops-bench"\n'
            f'listen: "{self.host}:{self.port}"\n'
            f"max_payload: 8MB\n"
            f'jetstream {{\n  store_dir: "{self.workdir / "store"}"\n  max_memory_store: 64MB\n}}\n',
            encoding="utf-8",
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                if b"Server is ready" in self.log.read_bytes():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not get ready in 15s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def logs(self) -> str:
        """What to show when the benchmark fails: the tail of the log."""
        return f"--- nats-server log (tail) ---\n{self.log_tail()}"

    def version(self) -> str:
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- JetStream helpers (the benchmark's own connection, never timed) ------------------------------


async def js(nc: Any, suffix: str, body: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    reply = json.loads((await nc.request(f"$JS.API.{suffix}", payload, timeout=timeout)).data)
    if reply.get("error"):
        raise RuntimeError(f"$JS.API.{suffix}: {reply['error']}")
    return reply


async def _stream_state(url: str, stream: str) -> dict[str, Any] | None:
    nc = await nats.connect(url)
    try:
        reply = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=30)).data)
        if reply.get("error"):
            if reply["error"].get("err_code") == 10059:
                return None
            raise RuntimeError(f"stream info: {reply['error']}")
        return reply["state"]
    finally:
        await nc.close()


def stream_state(url: str, stream: str) -> dict[str, Any] | None:
    return asyncio.run(_stream_state(url, stream))


async def _delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        reply = json.loads((await nc.request(f"$JS.API.STREAM.DELETE.{stream}", b"", timeout=60)).data)
        if reply.get("error") and reply["error"].get("err_code") != 10059:
            raise RuntimeError(f"stream delete: {reply['error']}")
    finally:
        await nc.close()


def delete_stream(url: str, stream: str) -> None:
    asyncio.run(_delete_stream(url, stream))


async def _settle(nc: Any, stream: str, published: int) -> dict[str, Any]:
    """Wait until the stream has stored what was published, or stopped growing (core publishes may drop)."""
    last, still_since = -1, time.monotonic()
    while True:
        state = (await js(nc, f"STREAM.INFO.{stream}"))["state"]
        if state["messages"] >= published:
            return state
        if state["messages"] != last:
            last, still_since = state["messages"], time.monotonic()
        elif time.monotonic() - still_since > 2:
            return state
        await asyncio.sleep(0.1)


def log_uniform_size(rng: random.Random) -> int:
    """A payload size of 128 B..64 KiB, log-uniform: many small payloads and some large ones."""
    return int(math.exp(rng.uniform(math.log(MIN_PAYLOAD), math.log(MAX_PAYLOAD))))


async def _fill(
    url: str,
    stream: str,
    target: int,
    seed: int,
    payload_size: Callable[[random.Random], int] = log_uniform_size,
    create: bool = True,
) -> dict[str, Any]:
    """Core-publish payloads of ``payload_size``, half random and half pattern, until the stream holds ``target``
    bytes: into a new file-storage stream, or (``create`` false) onto what the stream already holds."""
    rng = random.Random(seed)
    nc = await nats.connect(url, pending_size=16 * MIB)
    try:
        if create:
            config = {"name": stream, "subjects": [f"{stream}.>"], "storage": "file"}
            state = (await js(nc, f"STREAM.CREATE.{stream}", config))["state"]
        else:
            state = (await js(nc, f"STREAM.INFO.{stream}"))["state"]
        published = start = int(state["messages"])
        while state["bytes"] < target:
            # Payload bytes undercount stored bytes (subjects, headers, record overhead): never overshoots much.
            budget, unflushed = target - state["bytes"], 0
            while budget > 0:
                size = payload_size(rng)
                half = size // 2
                await nc.publish(f"{stream}.load.{published % 16}", rng.randbytes(half) + PATTERN[: size - half])
                published += 1
                budget -= size
                unflushed += size
                if unflushed >= FLUSH_EVERY:
                    await nc.flush(timeout=60)
                    unflushed = 0
            await nc.flush(timeout=60)
            state = await _settle(nc, stream, published)
        return {"published": published - start, "dropped": published - state["messages"], "state": state}
    finally:
        await nc.close()


# --- children ------------------------------------------------------------------------------------

_current_child: subprocess.Popen[bytes] | None = None


def run_captured(command: list[str], what: str, **popen: Any) -> tuple[float, bytes]:
    """Run ``command`` (``popen``: more Popen arguments) and return its wall time and stdout; its stderr goes into
    the RuntimeError if it fails. ``_current_child`` holds the process meanwhile, for the caller's cleanup."""
    global _current_child
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        _current_child = process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, **popen)
        assert process.stdout is not None
        out = process.stdout.read()
        process.wait()
        process.stdout.close()
        _current_child = None
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{what} failed (exit {process.returncode}):\n{stderr.read().decode(errors='replace')}")
    return elapsed, out


def run_child(op: str, url: str, path: Path | None = None, profile: Path | None = None) -> dict[str, Any]:
    """Run bench/one.py OP in a fresh interpreter and return its report (timing, peak RSS)."""
    command = [sys.executable, str(BENCH / "one.py"), op, "--url", url, "--stream", STREAM]
    if path is not None:
        command += ["--path", str(path)]
    if profile is not None:
        command += ["--profile", str(profile)]
    os.sync()  # don't let one run's dirty pages be written back during the next
    elapsed, out = run_captured(command, op)
    report = json.loads(out.decode().strip().splitlines()[-1])
    report["process_seconds"] = elapsed  # interpreter start and imports included
    return report


def summarise(runs: list[dict[str, Any]], stream_bytes: int) -> dict[str, Any]:
    seconds = [run["seconds"] for run in runs]
    best, median = min(seconds), statistics.median(seconds)
    return {
        "runs": len(runs),
        "seconds": seconds,
        "best_s": best,
        "median_s": median,
        "mib_s_best": stream_bytes / MIB / best,
        "mib_s_median": stream_bytes / MIB / median,
        "cpu_s_median": statistics.median(run["cpu_seconds"] for run in runs),
        "peak_rss_mib": max(run["peak_rss_kib"] for run in runs) / 1024,
        "rss_ready_mib": max(run["rss_ready_kib"] for run in runs) / 1024,
        "details": runs[-1]["details"],
    }


# --- the benchmark -------------------------------------------------------------------------------


def workdir_base(requested: str | None) -> Path:
    """A temp dir on the same filesystem as the repository (so the disk is the one /work uses)."""
    if requested:
        return Path(requested)
    system = Path(tempfile.gettempdir())
    if os.stat(system).st_dev == os.stat(REPO).st_dev:
        return system
    fallback = RESULTS / "tmp"  # git-ignored
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def save_results(prefix: str, result: dict[str, Any], text: str) -> None:
    """Print the report ``text``; write it and ``result`` to bench/results/<prefix>-<timestamp>.md and .json."""
    print()
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{prefix}-{datetime.now().strftime('%Y%m%dT%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    print(f"results written to {stem.relative_to(REPO)}.json and .md")


def check_disk(base: Path, size: int) -> None:
    free = shutil.disk_usage(base).free
    need = 4 * size + 512 * MIB  # store + restored copy + two backups + slack
    if free < need:
        raise SystemExit(f"not enough free disk under {base}: {human(free)} free, about {human(need)} needed")


def bench(args: argparse.Namespace, workdir: Path, server: NatsServer) -> dict[str, Any]:
    url = server.url
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)

    def child(op: str, index: int, path: Path | None = None, warmup: bool = False) -> dict[str, Any]:
        profile = profile_dir / f"{op}-{index}.prof" if profile_dir and not warmup else None
        report = run_child(op, url, path, profile)
        peak = report["peak_rss_kib"] / 1024
        run = "warm-up" if warmup else f"run {index + 1}"
        print(f"  {op:<17} {run:>7}: {report['seconds']:7.2f} s  peak RSS {peak:6.1f} MiB", flush=True)
        return report

    def restore(op: str, index: int, source: Path, warmup: bool = False) -> dict[str, Any]:
        delete_stream(url, STREAM)
        report = child(op, index, source, warmup)
        restored = stream_state(url, STREAM) or {}
        if (restored.get("messages"), restored.get("bytes")) != (messages, stream_bytes):
            raise RuntimeError(f"{op}: restored stream holds {restored}, expected {messages} msgs/{stream_bytes} B")
        return report

    print(f"filling stream {STREAM} with {human(args.size)} on {url} ...")
    started = time.perf_counter()
    filled = asyncio.run(_fill(url, STREAM, args.size, args.seed))
    fill_seconds = time.perf_counter() - started
    state = filled["state"]
    stream_bytes, messages = int(state["bytes"]), int(state["messages"])
    print(
        f"  {messages} messages, {human(stream_bytes)} in {fill_seconds:.1f} s "
        f"({stream_bytes / MIB / fill_seconds:.0f} MiB/s; {filled['dropped']} core publishes dropped and re-sent)"
    )

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ("baseline-bare", "baseline-module")}
    for name in runs:
        runs[name].append(child(name, 0))

    backups = workdir / "backups"
    backups.mkdir()
    # The backup that the restores use: taken by our module, in the (unmeasured) warm-up if any.
    source = backups / "source"
    if args.warmup:
        child("bare-backup", 0, warmup=True)
        child("backup", 0, source, warmup=True)

    backup_ops = ("bare-backup", "bare-backup-write", "backup")
    for index in range(args.repeat):
        # Rotate who goes first, so drift (page cache, server compaction) does not favour one side.
        for op in backup_ops[index % 3 :] + backup_ops[: index % 3]:
            if op == "bare-backup":
                runs.setdefault(op, []).append(child(op, index))
                continue
            path = source if op == "backup" and not source.exists() else backups / f"{op}-{index}"
            runs.setdefault(op, []).append(child(op, index, path))
            # Delete what was written at once, so that the next writer reuses its page-cache memory
            # instead of faulting in fresh memory (slow and erratic on VMs with free page reporting).
            if path == source:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    backup_size = (source / "stream.tar.s2").stat().st_size

    for index in range(args.repeat):
        runs.setdefault("verify", []).append(child("verify", index, source))

    if args.warmup:
        restore("bare-restore", 0, source, warmup=True)  # the first store write after the fill is the slowest
    for index in range(args.repeat):
        order = ("bare-restore", "restore") if index % 2 == 0 else ("restore", "bare-restore")
        for op in order:
            runs.setdefault(op, []).append(restore(op, index, source))

    summary = {name: summarise(reports, stream_bytes) for name, reports in runs.items()}
    for ours, bare in (("backup", "bare-backup"), ("restore", "bare-restore")):
        summary[ours]["ratio_best"] = summary[ours]["best_s"] / summary[bare]["best_s"]
        summary[ours]["ratio_median"] = summary[ours]["median_s"] / summary[bare]["median_s"]
        summary[ours]["target_ratio"] = TARGET_RATIO[ours]
        summary[ours]["rss_growth_mib"] = summary[ours]["peak_rss_mib"] - summary["baseline-module"]["peak_rss_mib"]
    summary["bare-backup-write"]["ratio_median"] = (
        summary["bare-backup-write"]["median_s"] / summary["bare-backup"]["median_s"]
    )
    summary["backup"]["ratio_median_vs_bare_write"] = (
        summary["backup"]["median_s"] / summary["bare-backup-write"]["median_s"]
    )
    for bare in ("bare-backup", "bare-backup-write", "bare-restore"):
        summary[bare]["rss_growth_mib"] = summary[bare]["peak_rss_mib"] - summary["baseline-bare"]["peak_rss_mib"]
    summary["verify"]["rss_growth_mib"] = summary["verify"]["peak_rss_mib"] - summary["baseline-module"]["peak_rss_mib"]

    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "size_requested": args.size,
        "repeat": args.repeat,
        "warmup": bool(args.warmup),
        "stream": {"name": STREAM, "bytes": stream_bytes, "messages": messages, "backup_file_bytes": backup_size},
        "fill": {"seconds": fill_seconds, "published": filled["published"], "dropped": filled["dropped"]},
        "server": {"url": url, "version": server.version(), "max_payload": "8MB"},
        "host": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "workdir": str(workdir),
        },
        "targets": {"ratio": TARGET_RATIO, "peak_rss_mib": TARGET_PEAK_RSS_MIB},
        "ops": summary,
    }


def print_table(result: dict[str, Any]) -> None:
    stream, ops = result["stream"], result["ops"]
    print()
    print(
        f"stream {stream['name']}: {human(stream['bytes'])} ({stream['bytes']} B), {stream['messages']} messages; "
        f"backup file {human(stream['backup_file_bytes'])}; {result['repeat']} run(s) each; "
        "MiB/s = stream bytes / wall time"
    )
    header = (
        f"{'operation':<16}{'best s':>8}{'median s':>10}{'MiB/s':>8}{'ratio':>7}{'target':>8}"
        f"{'cpu s':>7}{'peak RSS':>10}{'growth':>8}  verdict"
    )
    print(header)
    print("-" * len(header))
    rows = [
        ("baseline-bare", "import nats"),
        ("baseline-module", "import modules"),
        ("bare-backup", "bare backup"),
        ("bare-backup-write", " bare + write"),
        ("backup", "our backup"),
        ("bare-restore", "bare restore"),
        ("restore", "our restore"),
        ("verify", " (its sha256)"),
    ]
    for key, label in rows:
        op = ops[key]
        peak = f"{op['peak_rss_mib']:.1f}M"
        if key.startswith("baseline"):
            print(f"{label:<16}{'':>8}{'':>10}{'':>8}{'':>7}{'':>8}{'':>7}{peak:>10}")
            continue
        ratio = f"{op['ratio_median']:.2f}" if "ratio_median" in op else ""
        target = f"<={op['target_ratio']}" if "target_ratio" in op else ""
        verdict = ""
        if key in TARGET_RATIO:
            ok_time = op["ratio_median"] <= op["target_ratio"]
            ok_rss = op["peak_rss_mib"] < TARGET_PEAK_RSS_MIB
            verdict = ("ok" if ok_time else "SLOW") + " / " + ("ok" if ok_rss else f"RSS>{TARGET_PEAK_RSS_MIB}M")
        print(
            f"{label:<16}{op['best_s']:>8.2f}{op['median_s']:>10.2f}{op['mib_s_median']:>8.1f}{ratio:>7}{target:>8}"
            f"{op['cpu_s_median']:>7.2f}{peak:>10}{op['rss_growth_mib']:>+7.1f}M  {verdict}"
        )
    print(
        "ratio = median / bare loop's median; growth = peak RSS minus the matching baseline (imports only)\n"
        "'bare + write' = the bare backup loop also writing the data to a file (fsync, no hash): "
        f"our backup takes {ops['backup']['ratio_median_vs_bare_write']:.2f}x its time\n"
        "'its sha256' = our restore's check of the backup (sizes, sha256) before it sends anything"
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM: clean up as for Ctrl-C


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """Kill a child that is still running (after Ctrl-C or an error)."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def guarded(body: Callable[[], T], workdir: Path, keep: bool, stop: Callable[[], None], logs: Callable[[], str]) -> T:
    """Run the benchmark ``body``, SIGTERM taken as Ctrl-C; then ``stop`` its servers and children, and remove
    ``workdir`` unless ``keep``. Ctrl-C ends the program with 130; an error with 1, after ``logs()`` (log tails)."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return body()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        print(f"\nbenchmark failed: {exc}\n{logs()}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        stop()
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark stream_backup / stream_restore against bare nats-py loops.")
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="stream size (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per operation (default 3)")
    parser.add_argument("--warmup", type=int, choices=(0, 1), default=1, help="unmeasured first runs (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server store, backups)")
    parser.add_argument("--tmpdir", help="where to make the temporary directory (default: system temp, same disk)")
    parser.add_argument("--seed", type=int, default=20241122, help="seed of the payload generator")
    parser.add_argument("--profile", metavar="DIR", help="write cProfile stats of every measured run to DIR")
    args = parser.parse_args()
    if args.repeat < 1 or args.size < MIB:
        parser.error("--repeat must be >= 1 and --size >= 1MiB")
    if not NATS_SERVER.exists():
        parser.error(f"{NATS_SERVER} not found: run make setup")

    base = workdir_base(args.tmpdir)
    check_disk(base, args.size)
    workdir = Path(tempfile.mkdtemp(prefix="natsops-bench-", dir=base))
    server = NatsServer(workdir)

    def measure() -> dict[str, Any]:
        server.start()
        return bench(args, workdir, server)

    def stop() -> None:
        kill(_current_child)
        server.stop()

    result = guarded(measure, workdir, args.keep, stop, server.logs)
    print_table(result)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
