"""Shared pieces of the hostile-input suite (tests/functional/hostile): module arguments, 'nothing lost'."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from support.servers import APP_PASSWORD, APP_USER
from support.streams import SyncJs


def app(server: Any, **args: Any) -> dict[str, Any]:
    """Module arguments that connect to ``server`` as the APP account."""
    return {"servers": list(server.urls), "user": APP_USER, "password": APP_PASSWORD, **args}


def js(server: Any) -> SyncJs:
    return SyncJs(list(server.urls), APP_USER, APP_PASSWORD)


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or ``path`` itself) with a digest of its content: what 'untouched' compares."""
    if path.is_symlink():
        return {".": f"symlink -> {path.readlink()}"}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    found = {}
    for entry in sorted(path.rglob("*")):
        key = str(entry.relative_to(path))
        found[key] = "dir" if entry.is_dir() else hashlib.sha256(entry.read_bytes()).hexdigest()
    return found


def hidden_leftovers(path: Path) -> list[str]:
    """Work in progress a run could leave beside its target (.NAME.partial-*, .NAME.replaced-*)."""
    return sorted(entry.name for entry in path.parent.iterdir() if entry.name.startswith(f".{path.name}."))


def fill(client: SyncJs, name: str, count: int = 5000, size: int = 4000, replicas: int = 1) -> None:
    """About 20 MB by default: with 1 KiB chunks a backup or restore of it lasts long enough to be cut short."""
    client.create_stream(name, num_replicas=replicas)
    client.publish(f"{name}.x", count, size=size)


def s2_chunks(path: Path) -> list[tuple[int, int]]:
    """(offset of the body, length) of every chunk after the S2 stream identifier."""
    data = path.read_bytes()
    chunks, offset = [], 10
    while offset < len(data):
        length = int.from_bytes(data[offset + 1 : offset + 4], "little")
        chunks.append((offset + 4, length))
        offset += 4 + length
    return chunks


def damage_inside_a_chunk(path: Path, which: int) -> None:
    """Flip one byte inside a data chunk's body: the S2 framing stays whole, the data (and its CRC) do not."""
    body, length = s2_chunks(path)[which]
    data = bytearray(path.read_bytes())
    data[body + 4 + length // 2] ^= 0x55  # past the chunk's CRC
    path.write_bytes(bytes(data))


def make_many(server: Any, prefix: str, count: int = 300, messages: int = 5) -> list[str]:
    """``count`` small streams (one connection for all: the harness's SyncJs opens one per call)."""
    import asyncio

    import nats

    names = [f"{prefix}_{index:03d}" for index in range(count)]

    async def make() -> None:
        nc = await nats.connect(list(server.urls), user=APP_USER, password=APP_PASSWORD)
        jetstream = nc.jetstream(timeout=10)
        try:
            for name in names:
                await jetstream.add_stream(name=name, subjects=[f"{name}.>"])
                for index in range(messages):
                    await jetstream.publish(f"{name}.x", f"{name} {index}".encode())
        finally:
            await nc.close()

    asyncio.run(make())
    return names


def wait_until(condition: Any, timeout: float = 30.0, interval: float = 0.01) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s")
