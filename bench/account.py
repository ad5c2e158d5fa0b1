"""Account-scale benchmark of stream_backup / stream_restore: hundreds of streams, parallel 1 and 4, R1 and R3.

    .venv/bin/python bench/account.py [--scale 1] [--repeat 1] [--keep]

Starts its own nats-servers on free 127.0.0.x ports (a source, a restore target, and a 3-node cluster for
the R3 rows), fills the source with an account of 450 small streams, 40 of 2-5 MB, 10 of 50 MB (times
--scale) and 20 key-value buckets, then times, each in a fresh child process (bench/account_one.py, so
its peak RSS is its own) and each --repeat times: `streams: all` backups and restores at parallel 1 and
4, the same for the 450 small streams alone and for 100 of them, a bare nats-py snapshot loop, and the
restore with replicas 3 into the cluster. Prints a table and writes bench/results/account-<timestamp>.json
and .md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nats
from run import (
    NATS_SERVER,
    PATTERN,
    _die_with_parent,
    directory_bytes,
    guarded,
    human,
    kill,
    save_results,
    workdir_base,
)

BENCH = Path(__file__).resolve().parent
MB = 1000 * 1000
MIB = 1024 * 1024
FLUSH_EVERY = 4 * MIB
BIG_MIN_PAYLOAD, BIG_MAX_PAYLOAD = 128, 64 * 1024
# Targets from the issue.
TARGET_PARALLEL_RATIO = 0.6  # parallel 4 time / parallel 1 time
ROW_GROUPS = ("backup", "bare", "restore", "r3")
server_binary = NATS_SERVER  # --server


# --- the account ----------------------------------------------------------------------------------


class Account:
    """The streams of the benchmark's account: names and what each should hold."""

    def __init__(self, small: int, scale: float, seed: int) -> None:
        rng = random.Random(seed)
        self.small = [f"S_{index:03d}" for index in range(small)]
        self.medium = [f"M_{index:02d}" for index in range(40)]
        self.large = [f"L_{index}" for index in range(10)]
        self.buckets = [f"B{index:02d}" for index in range(20)]
        # Messages per small stream (20-200 of 100-1000 B); payload bytes per big stream.
        self.small_messages = {name: rng.randint(20, 200) for name in self.small}
        self.big_bytes = {name: int(rng.uniform(2, 5) * MB * scale) for name in self.medium}
        self.big_bytes.update({name: int(50 * MB * scale) for name in self.large})

    @property
    def streams(self) -> list[str]:
        return self.small + self.medium + self.large + [f"KV_{bucket}" for bucket in self.buckets]


# --- servers ---------------------------------------------------------------------------------------


def free_ports(host: str, count: int) -> list[int]:
    with contextlib.ExitStack() as probes:
        ports: list[int] = []
        while len(ports) < count:
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(probe.getsockname()[1])
        return ports


def free_host() -> str:
    host = f"127.0.0.{random.randint(2, 250)}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:  # a loopback without the whole 127/8 routed
            return "127.0.0.1"
    return host


class Server:
    """A JetStream nats-server of our own in ``workdir/name``, standalone or one node of a cluster."""

    def __init__(self, workdir: Path, name: str, cluster: str | None = None) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.host = free_host()
        self.port, self.monitor_port, self.cluster_port = free_ports(self.host, 3)
        self.cluster = cluster
        self.routes: list[str] = []
        self.url = f"nats://{self.host}:{self.port}"
        self.log = self.dir / "nats-server.log"
        self.log_start = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def route_url(self) -> str:
        return f"nats-route://{self.host}:{self.cluster_port}"

    def start(self) -> None:
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "{self.host}:{self.port}"',
            f'http: "{self.host}:{self.monitor_port}"',
            "max_payload: 8MB",
            f'jetstream {{\n  store_dir: "{self.dir / "store"}"\n  max_memory_store: 64MB\n}}',
        ]
        if self.cluster:
            routes = ", ".join(f'"{route}"' for route in self.routes)
            lines.append(
                f'cluster {{ name: "{self.cluster}", listen: "{self.host}:{self.cluster_port}", routes: [{routes}] }}'
            )
        config = self.dir / "nats-server.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log_start = self.log.stat().st_size if self.log.exists() else 0  # this run's part of the log
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(server_binary), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited at start:\n{self.log_tail()}")
            if self.http_status("/healthz?js-enabled-only=true") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} did not get ready in 20s:\n{self.log_tail()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (from /proc; 0 where there is none)."""
        if not self.alive:
            return 0.0
        assert self.process is not None
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def http_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.monitor_port}{path}", timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def monitor(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.host}:{self.monitor_port}{path}", timeout=5) as response:
            return dict(json.loads(response.read()))

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def crash_evidence(self) -> str:
        """The panic (or fatal error) a crashed server logged: its first lines and the goroutine that failed."""
        with contextlib.suppress(OSError):
            with open(self.log, "rb") as log:
                log.seek(self.log_start)
                text = log.read().decode(errors="replace").splitlines()
            for index, line in enumerate(text):
                if line.startswith(("fatal error", "panic:")) or "[FTL]" in line:
                    return "\n".join(text[index : index + 30])
        return self.log_tail(30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart_empty(self) -> None:
        """Stop (if still running), wipe the store, start again: after a crash."""
        self.stop()
        shutil.rmtree(self.dir / "store", ignore_errors=True)
        self.start()


class Cluster:
    """Three Servers routed to each other; healthy once they agree on a meta leader with every peer current."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.nodes = [Server(workdir, f"c-n{index + 1}", cluster="bench") for index in range(size)]
        for node in self.nodes:
            node.routes = [other.route_url for other in self.nodes if other is not node]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                metas = [node.monitor("/jsz").get("meta_cluster") or {} for node in self.nodes]
                leaders = {meta.get("leader") for meta in metas}
                if len(leaders) == 1 and None not in leaders:
                    leader = next(meta for node, meta in zip(self.nodes, metas, strict=True) if node.name in leaders)
                    peers = leader.get("replicas") or []
                    if len(peers) == len(self.nodes) - 1 and all(peer.get("current") for peer in peers):
                        return
            time.sleep(0.1)
        raise RuntimeError("cluster not healthy within 30s:\n" + "\n".join(node.log_tail(5) for node in self.nodes))

    @property
    def alive(self) -> bool:
        return all(node.alive for node in self.nodes)

    def crash_evidence(self) -> str:
        return "\n".join(f"--- {node.name}\n{node.crash_evidence()}" for node in self.nodes if not node.alive)

    def restart_empty(self) -> None:
        for node in self.nodes:
            node.stop()
            shutil.rmtree(node.dir / "store", ignore_errors=True)
        self.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


# --- JetStream helpers (the benchmark's own connection, never timed) --------------------------------


async def connect(url: str, **options: Any) -> Any:
    """A connection of the benchmark's own: one try, no reconnecting (a dead server fails it at once)."""
    return await nats.connect(url, connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=1, **options)


async def js_request(nc: Any, suffix: str, body: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    reply = json.loads((await nc.request(f"$JS.API.{suffix}", payload, timeout=timeout)).data)
    if reply.get("error"):
        raise RuntimeError(f"$JS.API.{suffix}: {reply['error']}")
    return dict(reply)


async def list_states(nc: Any) -> dict[str, dict[str, Any]]:
    """Every stream's state, by name (STREAM.LIST, paged)."""
    states: dict[str, dict[str, Any]] = {}
    while True:
        page = await js_request(nc, "STREAM.LIST", {"offset": len(states)}, timeout=60)
        batch = page.get("streams") or []
        for info in batch:
            states[info["config"]["name"]] = info["state"]
        if not batch or len(states) >= int(page.get("total") or 0):
            return states


def account_state(url: str) -> dict[str, dict[str, Any]]:
    async def run() -> dict[str, dict[str, Any]]:
        nc = await connect(url)
        try:
            return await list_states(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


def delete_all_streams(url: str) -> int:
    """Delete every stream of the account (untimed, between restores); how many there were."""

    async def run() -> int:
        nc = await connect(url)
        try:
            names = list(await list_states(nc))
            limit = asyncio.Semaphore(16)

            async def delete(name: str) -> None:
                async with limit:
                    reply = json.loads((await nc.request(f"$JS.API.STREAM.DELETE.{name}", b"", timeout=60)).data)
                    if reply.get("error") and reply["error"].get("err_code") != 10059:
                        raise RuntimeError(f"deleting {name}: {reply['error']}")

            await asyncio.gather(*(delete(name) for name in names))
            left = await list_states(nc)
            if left:
                raise RuntimeError(f"{len(left)} streams left after deleting all: {sorted(left)[:5]}")
            return len(names)
        finally:
            await nc.close()

    return asyncio.run(run())


def payload(rng: random.Random, size: int) -> bytes:
    half = size // 2
    return rng.randbytes(half) + PATTERN[: size - half]


async def fill(url: str, account: Account, seed: int) -> dict[str, Any]:
    """Create and fill the account: core publishes (flushed every 4 MiB), then top up what was dropped."""
    rng = random.Random(seed + 1)
    low, high = math.log(BIG_MIN_PAYLOAD), math.log(BIG_MAX_PAYLOAD)
    nc = await connect(url, pending_size=16 * MIB)
    js = nc.jetstream(timeout=30)
    planned: dict[str, int] = {}  # messages each plain stream must end with
    unflushed = published = 0

    async def send(name: str, size: int) -> None:
        nonlocal unflushed, published
        await nc.publish(f"{name}.m.{published % 8}", payload(rng, size))
        published += 1
        unflushed += size
        if unflushed >= FLUSH_EVERY:
            await nc.flush(timeout=60)
            unflushed = 0

    try:
        for name in account.small + account.medium + account.large:
            await js_request(nc, f"STREAM.CREATE.{name}", {"name": name, "subjects": [f"{name}.>"], "storage": "file"})
        for name in account.small:
            planned[name] = account.small_messages[name]
            for _message in range(planned[name]):
                await send(name, rng.randint(100, 1000))
        for name in account.medium + account.large:
            budget, count = account.big_bytes[name], 0
            while budget > 0:
                size = int(math.exp(rng.uniform(low, high)))
                await send(name, size)
                budget -= size
                count += 1
            planned[name] = count
        await nc.flush(timeout=60)
        dropped = 0
        for _attempt in range(20):  # core publishes the server did not store: send that many more
            await asyncio.sleep(0.5)
            states = await list_states(nc)
            short = {name: want - int(states[name]["messages"]) for name, want in planned.items()}
            short = {name: missing for name, missing in short.items() if missing > 0}
            if not short:
                break
            dropped += sum(short.values())
            for name, missing in short.items():
                for _attempt in range(missing):
                    await send(name, rng.randint(100, 1000) if name in account.small_messages else 4096)
            await nc.flush(timeout=60)
        else:
            raise RuntimeError(f"streams still short of messages after 20 top-ups: {sorted(short)[:5]}")
        for bucket in account.buckets:  # KV puts are acknowledged: nothing to top up
            kv = await js.create_key_value(bucket=bucket, history=5)
            keys = [f"key.{index:03d}" for index in range(50)]
            for key in keys:
                for _revision in range(rng.randint(1, 5)):
                    await kv.put(key, payload(rng, rng.randint(20, 400)))
            for key in keys[::7]:
                await kv.delete(key)
        return {"published": published, "dropped": dropped}
    finally:
        await nc.close()


# --- children ---------------------------------------------------------------------------------------

_current_child: subprocess.Popen[bytes] | None = None


class ChildFailed(RuntimeError):
    def __init__(self, op: str, code: int, stderr: str) -> None:
        super().__init__(f"{op} failed (exit {code}):\n{stderr[-3000:]}")
        self.stderr = stderr


def run_child(op: str, url: str, extra: list[str], profile: Path | None = None) -> dict[str, Any]:
    """Run bench/account_one.py OP in a fresh interpreter and return its report (timing, peak RSS)."""
    global _current_child
    command = [sys.executable, str(BENCH / "account_one.py"), op, "--url", url, *extra]
    if profile is not None:
        command += ["--profile", str(profile)]
    os.sync()  # don't let one run's dirty pages be written back during the next
    with tempfile.TemporaryFile() as stderr:
        _current_child = process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        out = process.stdout.read()
        process.wait()
        process.stdout.close()
        _current_child = None
        if process.returncode != 0:
            stderr.seek(0)
            raise ChildFailed(op, process.returncode, stderr.read().decode(errors="replace"))
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


# --- the benchmark ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.account = Account(args.small, args.scale, args.seed)
        self.source = Server(workdir, "source")
        self.target = Server(workdir, "target")
        self.cluster = Cluster(workdir) if "r3" in args.rows else None
        self.backups = workdir / "backups"
        self.profile_dir = Path(args.profile) if args.profile else None
        self.rows: dict[str, dict[str, Any]] = {}
        self.crashes: list[dict[str, str]] = []
        self.expected: dict[str, dict[str, dict[str, Any]]] = {}  # selection -> stream -> state

    def servers(self) -> list[Server]:
        return [self.source, self.target, *(self.cluster.nodes if self.cluster else [])]

    def stop(self) -> None:
        for server in self.servers():
            server.stop()

    # selections: which streams a row covers, as the module's `streams` option and as names
    def selections(self) -> dict[str, list[str]]:
        small = self.account.small
        subset = small[: min(self.args.rss_small, len(small))]
        return {"all": ["all"], f"{len(small)} small": ["S_*"], f"{len(subset)} small": subset}

    def names_of(self, selection: str) -> list[str]:
        patterns = self.selections()[selection]
        if patterns == ["all"]:
            return self.account.streams
        if patterns == ["S_*"]:
            return self.account.small
        return patterns

    def child(self, label: str, op: str, url: str, extra: list[str], index: int) -> dict[str, Any]:
        profile = None
        if self.profile_dir:
            slug = label.replace(" ", "-").replace("/", "")
            profile = self.profile_dir / f"{slug}-{index}.prof"
        if self.cluster and url == self.cluster.url:
            serving = list(self.cluster.nodes)  # a restore into the cluster works all three
        else:
            serving = [server for server in self.servers() if server.url == url]
        before = sum(server.cpu_seconds() for server in serving)
        report = run_child(op, url, extra, profile)
        report["server_cpu_seconds"] = sum(server.cpu_seconds() for server in serving) - before
        peak = report["peak_rss_kib"] / 1024
        print(
            f"  {label:<40} run {index + 1}: {report['seconds']:7.2f} s  cpu {report['cpu_seconds']:5.2f} s  "
            f"server cpu {report['server_cpu_seconds']:5.2f} s  peak RSS {peak:6.1f} MiB",
            flush=True,
        )
        return report

    def record(self, key: str, meta: dict[str, Any], report: dict[str, Any] | None, failure: str = "") -> None:
        row = self.rows.setdefault(key, {**meta, "reports": [], "failures": []})
        if report is not None:
            row["reports"].append(report)
        if failure:
            row["failures"].append(failure)

    def run(self) -> dict[str, Any]:
        args = self.args
        for server in (self.source, self.target):
            server.start()
        if self.cluster:
            self.cluster.start()
        if self.profile_dir:
            self.profile_dir.mkdir(parents=True, exist_ok=True)

        account = self.account
        total_big = sum(account.big_bytes.values())
        print(
            f"filling the account on {self.source.url}: {len(account.small)} small streams, 40 of 2-5 MB and 10 of "
            f"50 MB (x{args.scale}: {total_big / MB:.0f} MB of payload), 20 KV buckets ..."
        )
        started = time.perf_counter()
        filled = asyncio.run(fill(self.source.url, account, args.seed))
        fill_seconds = time.perf_counter() - started
        states = account_state(self.source.url)
        if sorted(states) != sorted(account.streams):
            raise RuntimeError(f"the account holds {len(states)} streams, expected {len(account.streams)}")
        for selection in self.selections():
            self.expected[selection] = {name: states[name] for name in self.names_of(selection)}
        account_bytes = sum(int(state["bytes"]) for state in states.values())
        print(
            f"  {len(states)} streams, {sum(int(s['messages']) for s in states.values())} messages, "
            f"{human(account_bytes)} in {fill_seconds:.1f} s ({filled['dropped']} core publishes dropped and re-sent)"
        )

        baseline = self.child("import modules", "baseline-module", self.source.url, [], 0)
        self.record("import modules", {"group": "baseline"}, baseline)
        self.backups.mkdir()
        fs_before = filesystem(self.workdir)
        print(f"  filesystem {fs_before}", flush=True)
        sources = self.backup_rows()
        if "bare" in args.rows:
            self.bare_rows()
        if "restore" in args.rows or "r3" in args.rows:
            self.restore_rows(sources)

        return {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "scale": args.scale,
            "repeat": args.repeat,
            "warmup": bool(args.warmup),
            "account": {
                "streams": len(states),
                "small": len(account.small),
                "medium": len(account.medium),
                "large": len(account.large),
                "buckets": len(account.buckets),
                "bytes": account_bytes,
                "messages": sum(int(state["messages"]) for state in states.values()),
                "selections": {
                    name: {
                        "streams": len(chosen),
                        "bytes": sum(int(state["bytes"]) for state in chosen.values()),
                        "backup_bytes": sources.get(name, {}).get("backup_bytes"),
                    }
                    for name, chosen in self.expected.items()
                },
            },
            "fill": {"seconds": fill_seconds, **filled},
            "server": {"version": server_version(), "max_payload": "8MB"},
            "host": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "kernel": platform.release(),
                "workdir": str(self.workdir),
            },
            "filesystem": {"before": fs_before, "after": filesystem(self.workdir)},
            "targets": {"parallel4_over_parallel1": TARGET_PARALLEL_RATIO},
            "crashes": self.crashes,
            "rows": {key: summarise(row) for key, row in self.rows.items()},
        }

    def backup_rows(self) -> dict[str, dict[str, Any]]:
        """Time the backups; keep one backup per selection as the restores' source (the warm-up's, if any)."""
        args = self.args
        sources: dict[str, dict[str, Any]] = {}
        for selection, patterns in self.selections().items():
            path = self.backups / selection.replace(" ", "-")
            extra = ["--path", str(path), "--streams", *patterns]
            label = f"backup {selection}"
            if args.warmup or "backup" not in args.rows:
                run_child("backup", self.source.url, [*extra, "--parallel", "4"])
            if "backup" in args.rows:
                for index in range(args.repeat):
                    order = (1, 4) if index % 2 == 0 else (4, 1)
                    for parallel in order:
                        target = path if not path.exists() else self.backups / f"tmp-{selection}-{parallel}-{index}"
                        target_extra = ["--path", str(target), "--streams", *patterns, "--parallel", str(parallel)]
                        key = f"{label} p{parallel}"
                        report = self.child(key, "backup", self.source.url, target_extra, index)
                        self.record(key, {"group": "backup", "selection": selection, "parallel": parallel}, report)
                        if target != path:
                            shutil.rmtree(target)
            sources[selection] = {"path": path, "backup_bytes": directory_bytes(path)}
        return sources

    def bare_rows(self) -> None:
        small = f"{len(self.account.small)} small"
        for selection, patterns in (("all", ["all"]), (small, ["S_*"])):
            for parallel, connections in ((1, 1), (4, 1), (4, 4), (16, 1)):
                if selection == "all" and (connections > 1 or parallel > 4):
                    continue
                key = f"bare {selection} p{parallel}" + (f" x{connections} conn" if connections > 1 else "")
                for index in range(self.args.repeat):
                    extra = ["--streams", *patterns, "--parallel", str(parallel), "--connections", str(connections)]
                    report = self.child(key, "bare-backup", self.source.url, extra, index)
                    meta = {"group": "bare", "selection": selection, "parallel": parallel, "connections": connections}
                    self.record(key, meta, report)

    def restore_rows(self, sources: dict[str, dict[str, Any]]) -> None:
        args = self.args
        plan: list[tuple[str, str, int, int]] = []  # (selection, where, parallel, replicas)
        if "restore" in args.rows:
            plan += [(selection, "target", parallel, 1) for selection in self.selections() for parallel in (1, 4)]
        if "r3" in args.rows:
            plan += [("all", "cluster", parallel, 3) for parallel in args.r3_parallel]
        if args.warmup and "restore" in args.rows:  # the first store writes after the fill are the slowest
            self.restore_once("warm-up restore all p1", "all", sources, self.target, 1, 1, None)
        for index in range(args.repeat):
            ordered = plan if index % 2 == 0 else list(reversed(plan))
            for selection, where, parallel, replicas in ordered:
                server: Server | Cluster = self.cluster if where == "cluster" else self.target  # type: ignore[assignment]
                into = "3-node cluster R3" if replicas == 3 else "one server"
                key = f"restore {selection} p{parallel} into {into}"
                meta = {"group": "restore", "selection": selection, "parallel": parallel, "replicas": replicas}
                self.restore_once(key, selection, sources, server, parallel, replicas, (index, meta))

    def restore_once(
        self,
        key: str,
        selection: str,
        sources: dict[str, dict[str, Any]],
        server: Server | Cluster,
        parallel: int,
        replicas: int,
        measured: tuple[int, dict[str, Any]] | None,
    ) -> None:
        """Restore one backup into ``server``, check it, delete what was restored (untimed).

        A server that crashes under the restore is recorded with its log, started again empty, and the
        restore tried again, up to --crash-retries times.
        """
        url = server.url
        extra = ["--path", str(sources[selection]["path"]), "--parallel", str(parallel)]
        if replicas != 1:
            extra += ["--replicas", str(replicas)]
        for attempt in range(1 + self.args.crash_retries):
            try:
                if measured is None:
                    run_child("restore", url, extra)
                else:
                    self.record(key, measured[1], self.child(key, "restore", url, extra, measured[0]))
                break
            except ChildFailed as exc:
                if server.alive:  # the module failed and the server lives: note it, clear the target, go on
                    print(f"  {key}: the restore failed:\n{exc.stderr[-1500:]}", flush=True)
                    if measured is not None:
                        self.record(key, measured[1], None, failure=exc.stderr.strip().splitlines()[-1][:300])
                    delete_all_streams(url)
                    return
                # The server died under the restore: keep its own words, start it again empty, try again.
                evidence = server.crash_evidence()
                print(f"  {key}: nats-server crashed during the restore; its log:\n{evidence[:1200]}", flush=True)
                self.crashes.append(
                    {"row": key, "attempt": attempt + 1, "server_log": evidence, "module_error": exc.stderr[-2000:]}
                )
                if measured is not None:
                    self.record(key, measured[1], None, failure=f"nats-server crashed (attempt {attempt + 1})")
                server.restart_empty()
        else:
            return  # crashed every time
        restored = account_state(url)
        expected = self.expected[selection]
        wrong = [
            name
            for name, state in expected.items()
            if (restored.get(name) or {}).get("messages") != state["messages"]
            or (restored.get(name) or {}).get("bytes") != state["bytes"]
        ]
        if wrong or len(restored) != len(expected):
            raise RuntimeError(f"{key}: {len(restored)} streams restored, {len(wrong)} differ: {wrong[:5]}")
        started = time.perf_counter()
        delete_all_streams(url)
        print(f"  (deleted the {len(restored)} restored streams in {time.perf_counter() - started:.1f} s)", flush=True)


def filesystem(path: Path) -> dict[str, Any]:
    """The filesystem the benchmark writes to, and what creating a file there costs (it weighs on every stream).

    On ext4 without a journal, creating a file or directory scans past the inodes freed in the last minutes
    (ext4's recently_deleted()): right after many deletions it costs milliseconds instead of microseconds.
    """
    found: dict[str, Any] = {"type": "unknown"}
    with contextlib.suppress(OSError):
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
        best = max((m for m in mounts if str(path).startswith(m[1])), key=lambda m: len(m[1]), default=None)
        if best:
            found = {"device": best[0], "mount": best[1], "type": best[2], "options": best[3]}
            if best[2] == "ext4":
                found["journal"] = any(Path("/proc/fs/jbd2").glob(f"{Path(best[0]).name}-*"))
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=path))
    try:
        started = time.perf_counter()
        for index in range(100):
            (probe / f"d{index}").mkdir()
            (probe / f"d{index}" / "f").write_bytes(b"x")
        found["create_us"] = round((time.perf_counter() - started) / 200 * 1e6)  # a directory or a file
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return found


def server_version() -> str:
    out = subprocess.run([str(server_binary), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def summarise(row: dict[str, Any]) -> dict[str, Any]:
    reports = row.pop("reports")
    summary: dict[str, Any] = {**row, "runs": len(reports)}
    if not reports:
        return summary
    seconds = [report["seconds"] for report in reports]
    summary.update(
        {
            "seconds": seconds,
            "best_s": min(seconds),
            "median_s": statistics.median(seconds),
            "cpu_s_median": statistics.median(report["cpu_seconds"] for report in reports),
            "server_cpu_s_median": statistics.median(report.get("server_cpu_seconds", 0.0) for report in reports),
            "peak_rss_mib": max(report["peak_rss_kib"] for report in reports) / 1024,
            "rss_ready_mib": max(report["rss_ready_kib"] for report in reports) / 1024,
            "details": reports[-1]["details"],
        }
    )
    return summary


# --- the report -------------------------------------------------------------------------------------


def analyse(result: dict[str, Any]) -> list[str]:
    """Ratios and verdicts: parallel 4 over parallel 1, per-stream cost, RSS against the number of streams."""
    rows = result["rows"]
    selections = result["account"]["selections"]
    notes: list[str] = []
    for row in rows.values():
        if "median_s" in row and row.get("selection"):
            row["streams"] = selections[row["selection"]]["streams"]
            row["ms_per_stream"] = row["median_s"] / row["streams"] * 1000
            row["mib"] = selections[row["selection"]]["bytes"] / MIB
    for key, row in rows.items():
        if row.get("parallel", 1) == 1 or "median_s" not in row:
            continue
        one = rows.get(key.replace(f" p{row.get('parallel')}", " p1").replace(" x4 conn", ""))
        if one and "median_s" in one:
            row["ratio_vs_p1"] = row["median_s"] / one["median_s"]
            if row["group"] in ("backup", "restore"):
                row["verdict"] = "ok" if row["ratio_vs_p1"] < TARGET_PARALLEL_RATIO else "MISSED"
    names = list(selections)
    if len(names) == 3:
        many, few = names[1], names[2]
        extra = selections[many]["streams"] - selections[few]["streams"]
        for group, suffix in (("backup", ""), ("restore", " into one server")):
            for parallel in (1, 4):
                big = rows.get(f"{group} {many} p{parallel}{suffix}", {})
                small = rows.get(f"{group} {few} p{parallel}{suffix}", {})
                if "median_s" in big and "median_s" in small and extra > 0:
                    marginal = (big["median_s"] - small["median_s"]) / extra * 1000
                    growth = big["peak_rss_mib"] - small["peak_rss_mib"]
                    allrow = rows.get(f"{group} all p{parallel}{suffix}", {})
                    with_all = ""
                    if "peak_rss_mib" in allrow:
                        growth_all = allrow["peak_rss_mib"] - small["peak_rss_mib"]
                        with_all = f", {growth_all:+.1f} MiB for all {selections['all']['streams']} (big ones included)"
                    notes.append(
                        f"{group} p{parallel}: each stream beyond the first {selections[few]['streams']} costs "
                        f"{marginal:.1f} ms; peak RSS {small['peak_rss_mib']:.1f} MiB for {selections[few]['streams']} "
                        f"streams, {growth:+.1f} MiB for {selections[many]['streams']}{with_all}"
                    )
    for key, row in rows.items():
        if row.get("replicas") == 3 and "median_s" in row:
            one = rows.get(key.replace("into 3-node cluster R3", "into one server"), {})
            if "median_s" in one:
                row["ratio_r3_r1"] = row["median_s"] / one["median_s"]
                notes.append(
                    f"replication (p{row['parallel']}): R3 into a 3-node cluster {row['median_s']:.1f} s vs R1 into "
                    f"one server {one['median_s']:.1f} s = {row['ratio_r3_r1']:.2f}x"
                )
            else:
                notes.append(
                    f"replication (p{row['parallel']}): R3 into a 3-node cluster {row['median_s']:.1f} s; R1 into one "
                    "server at the same parallel has no figure (see its row)"
                )
    return notes


def table(result: dict[str, Any]) -> list[str]:
    header = (
        "| row | streams | MiB | best s | median s | ms/stream | pN/p1 | cpu s | server cpu | peak RSS | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    )
    lines = list(header)
    for key, row in result["rows"].items():
        if "median_s" not in row:
            if row.get("group") == "baseline":
                continue
            lines.append(f"| {key} | | | | | | | | | | FAILED: {'; '.join(row.get('failures') or [])} |")
            continue
        if row["group"] == "baseline":
            lines.append(f"| {key} (RSS floor) | | | | | | | | | {row['peak_rss_mib']:.1f} | |")
            continue
        ratio = f"{row['ratio_vs_p1']:.2f}" if "ratio_vs_p1" in row else ""
        verdict = row.get("verdict", "")
        if row.get("failures"):
            verdict += f" (after {len(row['failures'])} failed attempt(s))"
        lines.append(
            f"| {key} | {row.get('streams', '')} | {row.get('mib', 0):.0f} | {row['best_s']:.2f} | "
            f"{row['median_s']:.2f} | {row.get('ms_per_stream', 0):.1f} | {ratio} | {row['cpu_s_median']:.2f} | "
            f"{row['server_cpu_s_median']:.2f} | "
            f"{row['peak_rss_mib']:.1f} | {verdict} |"
        )
    return lines


def bare_notes(result: dict[str, Any]) -> list[str]:
    notes = []
    for key, row in result["rows"].items():
        if row.get("group") == "bare" and "details" in row:
            details = row["details"]
            notes.append(
                f"{key}: STREAM.SNAPSHOT reply {details['reply_ms_median']:.1f} ms median "
                f"({details['reply_ms_p90']:.1f} p90), whole snapshot {details['snapshot_ms_median']:.1f} ms median "
                f"({details['snapshot_ms_p90']:.1f} p90)"
            )
    return notes


def report(result: dict[str, Any]) -> str:
    account = result["account"]
    notes = analyse(result)
    lines = [
        f"# Account benchmark {result['timestamp']}",
        "",
        f"Account: {account['streams']} streams ({account['small']} small, {account['medium']} of 2-5 MB and "
        f"{account['large']} of 50 MB at scale {result['scale']}, {account['buckets']} KV buckets), "
        f"{human(account['bytes'])}, {account['messages']} messages; {result['server']['version']}; "
        f"{result['host']['cpus']} CPUs; {result['repeat']} run(s) per row, median shown.",
        "",
        *table(result),
        "",
        "ms/stream = median / streams. pN/p1 = the time at parallel N over the time at parallel 1 (target "
        "at parallel 4: < "
        f"{TARGET_PARALLEL_RATIO}). Peak RSS = the child's VmHWM, imports included.",
        "",
        *[f"- {note}" for note in notes + bare_notes(result)],
    ]
    fs = result["filesystem"]
    lines += [
        "",
        f"Filesystem of the backups and server stores: {fs['before'].get('type')}"
        f"{'' if 'journal' not in fs['before'] else ' with journal' if fs['before']['journal'] else ' WITHOUT journal'}"
        "; creating a file or directory took "
        f"{fs['before'].get('create_us')} us before the rows and {fs['after'].get('create_us')} us after.",
    ]
    for index, crash in enumerate(result["crashes"]):
        first = next((line for line in crash["server_log"].splitlines() if line.strip()), "")
        lines += ["", f"nats-server crashed during `{crash['row']}` (attempt {crash['attempt']}): {first}"]
        if index == 0:
            lines += ["", "```", "\n".join(crash["server_log"].splitlines()[:16]), "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Account-scale benchmark of stream_backup / stream_restore.")
    parser.add_argument("--scale", type=float, default=1.0, help="factor on the medium and large streams' sizes")
    parser.add_argument("--small", type=int, default=450, help="small streams (default 450)")
    parser.add_argument("--rss-small", type=int, default=100, help="small streams of the smaller account (100)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (default 1)")
    parser.add_argument("--warmup", type=int, choices=(0, 1), default=1, help="unmeasured first runs (default 1)")
    parser.add_argument("--rows", default=",".join(ROW_GROUPS), help=f"row groups to run (default {ROW_GROUPS})")
    parser.add_argument("--r3-parallel", default="1,4", help="parallel values of the R3 rows (default 1,4)")
    parser.add_argument(
        "--crash-retries", type=int, default=2, help="restores tried again after the server crashed (default 2)"
    )
    parser.add_argument("--server", default=str(NATS_SERVER), help="nats-server binary (default: the venv's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (stores, backups, logs)")
    parser.add_argument("--tmpdir", help="where to make the temporary directory (default: system temp, same disk)")
    parser.add_argument("--seed", type=int, default=20241122, help="seed of the payload generator")
    parser.add_argument("--profile", metavar="DIR", help="write cProfile stats of every measured run to DIR")
    args = parser.parse_args()
    args.rows = [group.strip() for group in args.rows.split(",") if group.strip()]
    args.r3_parallel = [int(value) for value in args.r3_parallel.split(",") if value.strip()]
    if set(args.rows) - set(ROW_GROUPS) or args.repeat < 1 or args.scale <= 0 or args.small < 1:
        parser.error(f"--rows takes {', '.join(ROW_GROUPS)}; --repeat, --scale and --small must be above 0")
    global server_binary
    server_binary = Path(args.server)
    if not server_binary.exists():
        parser.error(f"{server_binary} not found: run make setup")

    base = workdir_base(args.tmpdir)
    need = int((50 * 10 + 3.5 * 40) * MB * args.scale * (3 if "r3" not in args.rows else 6)) + 512 * MIB
    if shutil.disk_usage(base).free < need:
        raise SystemExit(f"not enough free disk under {base}: about {human(need)} needed")
    workdir = Path(tempfile.mkdtemp(prefix="natsops-bench-account-", dir=base))
    bench = Bench(args, workdir)

    def logs() -> str:
        tails = "\n".join(f"--- {server.name}\n{server.log_tail(10)}" for server in bench.servers())
        return f"--- nats-server logs (tails) ---\n{tails}"

    def stop() -> None:
        kill(_current_child)
        bench.stop()

    result = guarded(bench.run, workdir, args.keep, stop, logs)
    save_results("account", result, report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
