"""What an encrypted restic repository adds to a stream backup: time, and growth from one backup to the next.

    .venv/bin/python bench/repository.py [--size 1GiB] [--repeat 3] [--keep]

Starts its own standalone JetStream nats-server on 127.0.0.200-209, fills a file-storage stream (R1) with
--size bytes of 1-4 KiB messages, then:

1. times, each --repeat times, a plain `stream_backup` (bench/one.py, as bench/run.py does) against the same
   backup followed by `restic backup .` of its directory into a fresh local repository, for each restic
   option set of --variants;
2. backs the stream up four times into one repository (first, unchanged, after appending 1% more
   messages, after purging the oldest 1% as retention limits do) and reports how much the repository grew
   each time, why (the archives compared S2 block by block), and the same for a prototype that hands restic
   the decompressed archive instead;
3. prints a table and writes bench/results/repository-<timestamp>.json and .md.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import platform
import random
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import nats
import one
import run
from run import (
    NATS_SERVER,
    NatsServer,
    _die_with_parent,
    directory_bytes,
    guarded,
    human,
    js,
    parse_size,
    save_results,
    workdir_base,
)

one.expose_collection()
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup_files import (  # noqa: E402
    DATA_FILE,
    S2_MAGIC,
    decode_s2_block,
)

STREAM = run.STREAM  # bench/one.py backs up this name
MB = 1000 * 1000
MIB = 1024 * 1024
HOSTS = [f"127.0.0.{last}" for last in range(200, 210)]  # this benchmark's loopback addresses
MIN_PAYLOAD, MAX_PAYLOAD = 1024, 4096
APPEND_FRACTION = 0.01
PURGE_FRACTION = 0.01  # the oldest messages removed, as a stream's max_age / max_msgs limits do
TARGET_RATIO = 1.3  # (backup + restic) / plain backup, from the issue
RAW_FILE = "stream.natsarc"  # the prototype's decompressed archive
SNAPPY_MAGIC = b"\xff\x06\x00\x00sNaPpY"


# --- restic option sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    version: str = "2"  # repository format: 2 compresses (restic 0.14's "stable"), 1 never does
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


OFF = ("--compression", "off")  # the archive is S2 already: zstd finds little left to take
VARIANTS = {
    "default": Variant("repo v2, --compression auto (restic's defaults)"),
    "off": Variant("repo v2, --compression off", flags=OFF),
    "v1": Variant("repo v1 (no compression format)", version="1"),
    "off-pack64": Variant("off, --pack-size 64", flags=(*OFF, "--pack-size", "64")),
    "off-conn4": Variant("off, -o local.connections=4", flags=(*OFF, "-o", "local.connections=4")),
    "off-procs1": Variant("off, GOMAXPROCS=1", flags=OFF, env={"GOMAXPROCS": "1"}),
    "off-nocache": Variant("off, --no-cache", flags=(*OFF, "--no-cache")),
    "max": Variant("repo v2, --compression max", flags=("--compression", "max")),
}
DEFAULT_VARIANTS = "default,off,v1,off-pack64,off-conn4,off-procs1"


# --- the server and the stream -----------------------------------------------------------------------


def own_address() -> tuple[str, int]:
    """A free port on the first of our loopback addresses that takes one."""
    for host in HOSTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, 0))
            except OSError:
                continue
            return host, probe.getsockname()[1]
    raise SystemExit(f"none of {HOSTS[0]}-{HOSTS[-1]} can be bound: is 127.0.0.0/8 routed to lo?")


def uniform_size(rng: random.Random) -> int:
    return rng.randint(MIN_PAYLOAD, MAX_PAYLOAD)


def publish_until(url: str, target: int, seed: int, create: bool = False) -> dict[str, Any]:
    """Core-publish 1-4 KiB payloads, half random and half pattern (S2 halves them), until the stream holds
    ``target`` bytes (a new R1 stream if ``create``); what the server dropped is topped up: bench/run.py's fill."""
    return asyncio.run(run._fill(url, STREAM, target, seed, uniform_size, create))


async def _purge_head(url: str, fraction: float) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        state = (await js(nc, f"STREAM.INFO.{STREAM}"))["state"]
        keep_from = int(state["first_seq"]) + int(state["messages"] * fraction)
        return await js(nc, f"STREAM.PURGE.{STREAM}", {"seq": keep_from})  # removes every message below it
    finally:
        await nc.close()


def purge_head(url: str, fraction: float) -> dict[str, Any]:
    return asyncio.run(_purge_head(url, fraction))


def our_backup(url: str, path: Path) -> dict[str, Any]:
    """stream_backup in a fresh child (bench/one.py): its ``seconds`` are the module's main() alone."""
    if path.exists():
        shutil.rmtree(path)
    return run.run_child("backup", url, path)


# --- restic -------------------------------------------------------------------------------------------


class Restic:
    """restic with a password file and caches of our own; nothing of the caller's RESTIC_* environment."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.password_file = workdir / "restic-password"
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="ascii")
        self.password_file.chmod(0o600)
        self.base_env = {
            key: value for key, value in os.environ.items() if not key.startswith(("RESTIC_", "GOMAXPROCS", "GOGC"))
        }
        self.base_env["RESTIC_PASSWORD_FILE"] = str(self.password_file)
        self.cpu_s = 0.0

    def version(self) -> str:
        out = subprocess.run([self.binary, "version"], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def run(
        self, args: list[str], repo: Path, cache: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> tuple[float, str]:
        """Run ``restic -r REPO ARGS``; return its wall time and stdout (its CPU time in ``self.cpu_s``)."""
        command = [self.binary, "-r", str(repo), "--cache-dir", str(cache), *args]
        cpu_before = children_cpu()
        seconds, out = run.run_captured(
            command,
            " ".join(command),
            cwd=cwd,
            env={**self.base_env, **(env or {})},
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.cpu_s = children_cpu() - cpu_before  # restic is the only child reaped meanwhile
        return seconds, out.decode()

    def init(self, repo: Path, version: str) -> None:
        self.run(["init", "--repository-version", version], repo, repo.parent / "cache-init")

    def backup(self, repo: Path, cache: Path, variant: Variant, directory: Path, stamp: str) -> dict[str, Any]:
        """`restic backup .` from inside the backup directory, as a playbook would run it; its summary."""
        args = ["backup", ".", "--host", "natsops", "--tag", f"account:{STREAM}", "--tag", f"set:{stamp}"]
        seconds, out = self.run([*args, "--json", *variant.flags], repo, cache, variant.env, cwd=directory)
        summary = next(
            (line for line in map(json.loads, out.splitlines()) if line.get("message_type") == "summary"), None
        )
        if summary is None:
            raise RuntimeError(f"restic backup printed no summary:\n{out[-2000:]}")
        return {"seconds": seconds, "cpu_s": self.cpu_s, **summary}

    def stats(self, repo: Path, cache: Path) -> dict[str, Any]:
        return json.loads(self.run(["stats", "--json", "--mode", "raw-data"], repo, cache)[1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


# --- S2 archives: what changes between two backups --------------------------------------------------------


def s2_chunks(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The chunks of an S2 (or Snappy) framed stream: (type, body)."""
    if handle.read(len(S2_MAGIC)) not in (S2_MAGIC, SNAPPY_MAGIC):
        raise ValueError("not an S2 stream")
    while len(header := handle.read(4)) == 4:
        yield header[0], handle.read(int.from_bytes(header[1:4], "little"))


def uvarint(data: bytes, index: int) -> tuple[int, int]:
    """The unsigned varint at ``data[index]``, and the index after it."""
    value = shift = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, index


def s2_decode_block(block: bytes) -> bytes:
    """Decode one S2 block, checked against the length it starts with. For investigation: no CRC check."""
    length = uvarint(block, 0)[0]
    out = decode_s2_block(block)
    if len(out) != length:
        raise ValueError(f"S2 block decoded to {len(out)} bytes, its header says {length}")
    return out


def s2_data(body: bytes, kind: int) -> bytes | None:
    """A chunk's uncompressed data (after its 4-byte CRC), None for padding and skippable chunks."""
    if kind == 0x00:
        return s2_decode_block(body[4:])
    if kind == 0x01:
        return body[4:]
    return None


def decompress(source: Path, target: Path) -> int:
    """Write the archive inside ``source`` (S2) to ``target``: the prototype's input for restic."""
    written = 0
    with open(source, "rb") as handle, open(target, "wb") as out:
        for kind, body in s2_chunks(handle):
            if (data := s2_data(body, kind)) is not None:
                out.write(data)
                written += len(data)
    return written


def archive_header(path: Path) -> dict[str, Any]:
    """The head of the archive: its format; for V2 (NATSARC1) the snapshot time and the header's length, for
    V1 (tar) the first member's mtime.

    A V2 archive starts with ``NATSARC1\\n``, the snapshot's time (a signed varint of nanoseconds), then
    ``state.json`` and the stream state; the messages' records follow. The state's length moves every
    record behind it, and so every S2 block boundary relative to the data.
    """
    with open(path, "rb") as handle:
        first = next((data for kind, body in s2_chunks(handle) if (data := s2_data(body, kind))), b"")
    if first[257:262] == b"ustar":  # V1: every member's header carries the snapshot's time as its mtime
        with tarfile.open(fileobj=io.BytesIO(first), mode="r|") as tar:  # Go's tar: mtimes in PAX records
            member = tar.next()
        if member is None:
            return {"format": "v1 (tar)"}
        mtime = datetime.fromtimestamp(member.mtime, timezone.utc).isoformat()
        return {"format": "v1 (tar)", "first_member": member.name, "mtime": mtime}
    if not first.startswith(b"NATSARC1"):
        return {"format": "unknown"}
    found: dict[str, Any] = {"format": "v2 (NATSARC1)"}
    with contextlib.suppress(ValueError, IndexError):
        value = uvarint(first, len(b"NATSARC1\n"))[0]
        nanos = (value >> 1) ^ -(value & 1)  # zigzag
        found["snapshot_time"] = datetime.fromtimestamp(nanos / 1e9, timezone.utc).isoformat()
        at = first.index(b"state.json") + len("state.json")
        state, end = json.JSONDecoder().raw_decode(first.decode("latin-1"), at)
        found.update({"header_bytes": end, "state_json_bytes": end - at, "state": state})
    return found


def block_digests(path: Path) -> list[bytes]:
    with open(path, "rb") as handle:
        return [hashlib.sha256(body).digest() for kind, body in s2_chunks(handle) if kind in (0x00, 0x01)]


def first_difference(one: Path, other: Path) -> int | None:
    with open(one, "rb") as left, open(other, "rb") as right:
        offset = 0
        while True:
            a, b = left.read(MIB), right.read(MIB)
            if a != b:
                same = (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
                return offset + next(same, min(len(a), len(b)))
            if not a:
                return None
            offset += len(a)


def compare_archives(previous: Path, current: Path) -> dict[str, Any]:
    """How much of ``current`` is byte for byte in ``previous``, S2 block by S2 block."""
    before, after = block_digests(previous), block_digests(current)
    same_place = sum(1 for a, b in zip(before, after, strict=False) if a == b)
    head_before, head_after = archive_header(previous), archive_header(current)
    result = {
        "blocks": len(after),
        "blocks_same_place": same_place,
        "blocks_anywhere": len(set(before) & set(after)),
        "first_difference": first_difference(previous, current),
        "header_before": head_before,
        "header_after": head_after,
    }
    if "header_bytes" in head_before and "header_bytes" in head_after:
        result["shift"] = head_after["header_bytes"] - head_before["header_bytes"]
    return result


# --- the benchmark ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, server: NatsServer, restic: Restic) -> None:
        self.args = args
        self.workdir = workdir
        self.server = server
        self.restic = restic
        self.backups = workdir / "backups"
        self.backups.mkdir()
        self.templates: dict[str, Path] = {}

    def fresh_repo(self, name: str, version: str) -> tuple[Path, Path]:
        """A new empty repository and cache: a copy of one `restic init` per format version (init spends
        seconds calibrating its key derivation; the copy is the same empty repository)."""
        if version not in self.templates:
            self.templates[version] = self.workdir / f"template-v{version}"
            self.restic.init(self.templates[version], version)
        repo, cache = self.workdir / f"repo-{name}", self.workdir / f"cache-{name}"
        for path in (repo, cache):
            shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(self.templates[version], repo)
        return repo, cache

    def fill(self) -> dict[str, Any]:
        url = self.server.url
        print(f"filling stream {STREAM} with {human(self.args.size)} of 1-4 KiB messages on {url} ...", flush=True)
        started = time.perf_counter()
        filled = publish_until(url, self.args.size, self.args.seed, create=True)
        seconds = time.perf_counter() - started
        state = filled["state"]
        print(f"  {state['messages']} messages, {human(state['bytes'])} in {seconds:.1f} s", flush=True)
        return {"seconds": seconds, **filled}

    def timed(self, op: str, index: int, warmup: bool = False) -> dict[str, Any]:
        """One measured run: a plain backup, or the backup then restic with the options of ``op``."""
        path = self.backups / f"timed-{op}"
        report = our_backup(self.server.url, path)
        result: dict[str, Any] = {
            "backup_s": report["seconds"],
            "backup_bytes": report["details"].get("bytes"),
            "total_s": report["seconds"],
        }
        line = f"backup {report['seconds']:6.2f} s"
        if op != "plain":
            variant = VARIANTS[op]
            repo, cache = self.fresh_repo("timed", variant.version)
            summary = self.restic.backup(repo, cache, variant, path, stamp())
            result.update(restic_s=summary["seconds"], restic=summary, repo_bytes=directory_bytes(repo))
            result["total_s"] += summary["seconds"]
            line += (
                f" + restic {summary['seconds']:6.2f} s (its own {summary['total_duration']:.2f} s)"
                f" = {result['total_s']:6.2f} s"
            )
            shutil.rmtree(repo)
            shutil.rmtree(cache, ignore_errors=True)
        # Deleted at once, so that the next writer reuses this page-cache memory (see bench/README.md, "Noise").
        shutil.rmtree(path)
        run_label = "warm-up" if warmup else f"run {index + 1}"
        print(f"  {op:<12} {run_label:>7}: {line}", flush=True)
        return result

    def timing(self) -> dict[str, Any]:
        ops = ["plain", *self.args.variants]
        if self.args.warmup:
            print("timing (warm-up: one plain backup and one with restic, not counted)", flush=True)
            self.timed("plain", 0, warmup=True)
            self.timed(self.args.variants[0], 0, warmup=True)
        runs: dict[str, list[dict[str, Any]]] = {op: [] for op in ops}
        for index in range(self.args.repeat):
            shift = index % len(ops)  # rotate who goes first, so drift favours no one
            for op in ops[shift:] + ops[:shift]:
                runs[op].append(self.timed(op, index))
        return runs

    def dedupe(self) -> list[dict[str, Any]]:
        """Four backups of the stream into one repository (and the prototype's), growth after each."""
        variant = VARIANTS[self.args.dedupe_variant]
        repo, cache = self.fresh_repo("dedupe", variant.version)
        raw_variant = VARIANTS["default"]  # the decompressed archive wants restic's compression
        raw_repo, raw_cache = self.fresh_repo("raw", raw_variant.version)
        # The same paths every time, as a scheduled backup would use: restic takes the last snapshot as parent.
        target, raw_dir = self.backups / STREAM, self.workdir / "raw" / STREAM
        raw_dir.mkdir(parents=True)
        previous = self.workdir / "previous.tar.s2"
        sets: list[dict[str, Any]] = []
        steps = ("first", "unchanged", f"+{APPEND_FRACTION:.0%} messages", f"oldest {PURGE_FRACTION:.0%} purged")
        for step, label in enumerate(steps):
            if step == 2:
                before = run.stream_state(self.server.url, STREAM) or {}
                target_bytes = int(before["bytes"] * (1 + APPEND_FRACTION))
                added = publish_until(self.server.url, target_bytes, self.args.seed + 1)
                print(f"  appended {added['published']} messages ({before['messages']} before)", flush=True)
            elif step == 3:
                purged = purge_head(self.server.url, PURGE_FRACTION)["purged"]
                print(f"  purged the oldest {purged} messages", flush=True)
            if target.exists():
                os.replace(target / DATA_FILE, previous)
            report = our_backup(self.server.url, target)
            entry: dict[str, Any] = {"set": label, "backup_s": report["seconds"]}
            entry["backup_bytes"] = (target / DATA_FILE).stat().st_size
            entry["stream"] = run.stream_state(self.server.url, STREAM)
            entry["restic"] = self.grow(repo, cache, variant, target)
            if previous.exists():
                entry["compare"] = compare_archives(previous, target / DATA_FILE)
            # The prototype: the same backup with the archive decompressed (restic then compresses it itself).
            started = time.perf_counter()
            for name in ("backup.json", "manifest.json"):
                shutil.copyfile(target / name, raw_dir / name)
            entry["raw_bytes"] = decompress(target / DATA_FILE, raw_dir / RAW_FILE)
            entry["decompress_s"] = time.perf_counter() - started
            entry["raw"] = self.grow(raw_repo, raw_cache, raw_variant, raw_dir)
            sets.append(entry)
            print(f"  {label:<14}: {describe_set(entry)}", flush=True)
        return sets

    def grow(self, repo: Path, cache: Path, variant: Variant, directory: Path) -> dict[str, Any]:
        before = self.restic.stats(repo, cache)
        disk_before = directory_bytes(repo)
        summary = self.restic.backup(repo, cache, variant, directory, stamp())
        after = self.restic.stats(repo, cache)
        return {
            **summary,
            "stats_before": before,
            "stats_after": after,
            "growth": after["total_size"] - before["total_size"],
            "disk_growth": directory_bytes(repo) - disk_before,
        }

    def run(self) -> dict[str, Any]:
        fill = self.fill()
        state = fill["state"]
        print(f"timing: plain backup against backup + restic, {self.args.repeat} run(s) each", flush=True)
        runs = self.timing()
        print(f"deduplication: four backups into one repository ({self.args.dedupe_variant})", flush=True)
        sets = self.dedupe()
        return {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "size_requested": self.args.size,
            "repeat": self.args.repeat,
            "warmup": bool(self.args.warmup),
            "stream": {
                "name": STREAM,
                "bytes": int(state["bytes"]),
                "messages": int(state["messages"]),
                "payload_bytes": [MIN_PAYLOAD, MAX_PAYLOAD],
                "storage": "file",
                "replicas": 1,
            },
            "fill": {"seconds": fill["seconds"], "published": fill["published"]},
            "server": {"url": self.server.url, "version": self.server.version()},
            "restic": {"version": self.restic.version(), "binary": self.restic.binary},
            "host": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "kernel": platform.release(),
                "workdir": str(self.workdir),
            },
            "target_ratio": TARGET_RATIO,
            "variants": {name: dataclasses.asdict(VARIANTS[name]) for name in self.args.variants},
            "timing": summarise(runs, int(state["bytes"])),
            "dedupe_variant": self.args.dedupe_variant,
            "dedupe": sets,
        }

    def stop(self) -> None:
        run.kill(run._current_child)  # bench/one.py or restic
        self.server.stop()


def summarise(runs: dict[str, list[dict[str, Any]]], stream_bytes: int) -> dict[str, Any]:
    plain = statistics.median(r["total_s"] for r in runs["plain"])
    summary: dict[str, Any] = {}
    for op, reports in runs.items():
        total = statistics.median(r["total_s"] for r in reports)
        row: dict[str, Any] = {
            "runs": reports,
            "backup_s": statistics.median(r["backup_s"] for r in reports),
            "total_s": total,
            "total_best_s": min(r["total_s"] for r in reports),
            "ratio": total / plain,
            "stream_mb_s": stream_bytes / MB / total,
            "backup_bytes": reports[-1]["backup_bytes"],
        }
        if op != "plain":
            restic = [r["restic"] for r in reports]
            row["restic_s"] = statistics.median(r["restic_s"] for r in reports)
            row["restic_own_s"] = statistics.median(r["total_duration"] for r in restic)
            row["restic_cpu_s"] = statistics.median(r["cpu_s"] for r in restic)
            row["restic_mb_s"] = restic[-1]["total_bytes_processed"] / MB / row["restic_s"]
            row["repo_bytes"] = reports[-1]["repo_bytes"]
            row["verdict"] = "ok" if row["ratio"] <= TARGET_RATIO else "SLOW"
        summary[op] = row
    return summary


# --- the report ---------------------------------------------------------------------------------------


def mb(size: float) -> str:
    return f"{size / MB:,.1f} MB"


def describe_set(entry: dict[str, Any]) -> str:
    restic, raw = entry["restic"], entry["raw"]
    return (
        f"restic {restic['seconds']:.2f} s, data_added {mb(restic['data_added'])}, repository +{mb(restic['growth'])}"
        f"; decompressed prototype: data_added {mb(raw['data_added'])}, repository +{mb(raw['growth'])}"
    )


def report(result: dict[str, Any]) -> str:
    stream, timing = result["stream"], result["timing"]
    plain = timing["plain"]
    lines = [
        f"# Restic repository benchmark {result['timestamp']}",
        "",
        f"Stream {stream['name']}: {human(stream['bytes'])} ({stream['bytes']} B), {stream['messages']} messages of "
        f"1-4 KiB, file storage, R1; backup file ({DATA_FILE}) {mb(plain['backup_bytes'])}; "
        f"{result['server']['version']}; {result['restic']['version'].split(' compiled')[0]}; "
        f"{result['host']['cpus']} CPUs; {result['repeat']} run(s) each, medians.",
        "",
        "| run | backup s | restic s | restic's own s | restic cpu s | total s | ratio | stream MB/s | restic MB/s "
        "| repo MB | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for op, row in timing.items():
        label = "plain backup" if op == "plain" else f"+ restic: {VARIANTS[op].label}"
        if op == "plain":
            cells = f"{row['backup_s']:.2f} | | | | {row['total_s']:.2f} | 1.00 | {row['stream_mb_s']:.0f} | | | |"
            lines.append(f"| {label} | {cells}")
            continue
        lines.append(
            f"| {label} | {row['backup_s']:.2f} | {row['restic_s']:.2f} | {row['restic_own_s']:.2f} | "
            f"{row['restic_cpu_s']:.2f} | "
            f"{row['total_s']:.2f} | {row['ratio']:.2f} | {row['stream_mb_s']:.0f} | {row['restic_mb_s']:.0f} | "
            f"{row['repo_bytes'] / MB:.0f} | {row['verdict']} |"
        )
    fastest = min((op for op in timing if op != "plain"), key=lambda op: timing[op]["total_s"])
    lines += [
        "",
        f"ratio = (backup + restic) / plain backup, target <= {TARGET_RATIO}. restic s = its wall time; restic's own s "
        "= the total_duration of its summary (the rest is start-up: key derivation, lock, index); restic cpu s = its "
        "user+system CPU (2 CPUs: up to twice the wall time). MB/s: "
        "stream bytes / total time, and the bytes restic read / its wall time. repo MB = the repository on disk.",
        f"Fastest: {VARIANTS[fastest].label} ({timing[fastest]['total_s']:.2f} s, {timing[fastest]['ratio']:.2f}x).",
        "",
        f"## Growth of one repository ({VARIANTS[result['dedupe_variant']].label}) from backup to backup",
        "",
        "| set | backup MB | restic s | data_added MB | repo growth MB (stats raw-data) | on disk MB | "
        "S2 blocks as before | archive shift B | decompressed: data_added MB | growth MB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for entry in result["dedupe"]:
        restic, raw, compare = entry["restic"], entry["raw"], entry.get("compare")
        blocks = f"{compare['blocks_same_place']} of {compare['blocks']}" if compare else ""
        shift = compare.get("shift", "") if compare else ""
        lines.append(
            f"| {entry['set']} | {entry['backup_bytes'] / MB:.1f} | {restic['seconds']:.2f} | "
            f"{restic['data_added'] / MB:.1f} | {restic['growth'] / MB:.1f} | {restic['disk_growth'] / MB:.1f} | "
            f"{blocks} | {shift} | {raw['data_added'] / MB:.1f} | {raw['growth'] / MB:.1f} |"
        )
    first = result["dedupe"][0]
    lines += [
        "",
        "S2 blocks as before = S2 chunks of this backup's stream.tar.s2 identical to the previous one's at the same "
        "place; archive shift = change in length of the archive's header (snapshot time and state.json), which moves "
        "every message record behind it. Decompressed = the prototype: the same backup with the archive stored "
        f"decompressed ({mb(first['raw_bytes'])} for the first set) in a repository with restic's compression "
        f"(decompressing took {first['decompress_s']:.1f} s in pure Python).",
    ]
    for entry in result["dedupe"][1:]:
        compare = entry["compare"]
        before, after = compare["header_before"], compare["header_after"]
        if "state_json_bytes" in before and "state_json_bytes" in after:
            lines.append(
                f"- {entry['set']}: first differing byte at {compare['first_difference']}; snapshot time in the "
                f"header {before.get('snapshot_time')} -> {after.get('snapshot_time')}; state.json "
                f"{before['state_json_bytes']} -> {after['state_json_bytes']} B."
            )
        elif "mtime" in before and "mtime" in after:
            lines.append(
                f"- {entry['set']}: first differing byte at {compare['first_difference']}; mtime of the tar's "
                f"members (the first: {after['first_member']}) {before['mtime']} -> {after['mtime']}."
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="What a restic repository adds to stream_backup: time and growth.")
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="stream size (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row (default 3)")
    parser.add_argument("--warmup", type=int, choices=(0, 1), default=1, help="unmeasured first runs (default 1)")
    parser.add_argument(
        "--variants", default=DEFAULT_VARIANTS, help=f"restic option sets to time, of: {', '.join(VARIANTS)}"
    )
    parser.add_argument("--dedupe-variant", default="default", choices=list(VARIANTS), help="for the growth runs")
    parser.add_argument("--restic", default=shutil.which("restic") or "restic", help="restic binary (0.14+)")
    parser.add_argument("--server", default=str(NATS_SERVER), help="nats-server binary (default: the venv's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (store, backups, repos)")
    parser.add_argument("--tmpdir", help="where to make the temporary directory (default: system temp, same disk)")
    parser.add_argument("--seed", type=int, default=20241122, help="seed of the payload generator")
    args = parser.parse_args()
    args.variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    if set(args.variants) - set(VARIANTS) or not args.variants:
        parser.error(f"--variants takes {', '.join(VARIANTS)}")
    if args.repeat < 1 or args.size < MIB:
        parser.error("--repeat must be >= 1 and --size >= 1MiB")
    if not Path(args.server).exists():
        parser.error(f"{args.server} not found: run make setup")
    if not shutil.which(args.restic):
        parser.error(f"{args.restic} not found: apt-get install restic (0.14 or later)")

    base = workdir_base(args.tmpdir)
    # Store, two backups, the decompressed copy, the timed repository and the two growth repositories.
    need = 6 * args.size + 512 * MIB
    if shutil.disk_usage(base).free < need:
        raise SystemExit(f"not enough free disk under {base}: about {human(need)} needed")
    workdir = Path(tempfile.mkdtemp(prefix="natsops-bench-repository-", dir=base))
    server = NatsServer(workdir, own_address(), Path(args.server))  # e.g. a 2.14 server writes V1 (tar) archives
    bench = Bench(args, workdir, server, Restic(args.restic, workdir))

    def measure() -> dict[str, Any]:
        server.start()
        return bench.run()

    result = guarded(measure, workdir, args.keep, bench.stop, server.logs)
    save_results("repository", result, report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
