"""Key-value and object store buckets through nats-py's own KV and object store APIs: filling them, and
what a test compares before and after a restore (independently of the module's reader)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from nats.js.api import KeyValueConfig, ObjectMeta, ObjectStoreConfig
from nats.js.errors import NotFoundError
from support.servers import APP_PASSWORD, APP_USER
from support.streams import connect


def _run(server: Any, operation: Any, *args: Any) -> Any:
    async def session() -> Any:
        nc = await connect(list(server.urls), APP_USER, APP_PASSWORD)
        try:
            return await operation(nc.jetstream(timeout=10), *args)
        finally:
            await nc.close()

    return asyncio.run(session())


async def _fill_kv(js: Any, bucket: str, keys: int, replicas: int) -> None:
    kv = await js.create_key_value(KeyValueConfig(bucket=bucket, history=5, replicas=replicas))
    for index in range(keys):
        for revision in range(3):
            await kv.put(f"key.{index}", f"{bucket} {index} v{revision}".encode())
    await kv.delete("key.1")
    await kv.purge("key.2")
    await kv.put("key.2", b"after the purge")


def fill_kv(server: Any, bucket: str, keys: int = 20, replicas: int = 1) -> None:
    """A bucket with history (3 revisions a key, 5 kept), a deleted key and a purged then rewritten key."""
    _run(server, _fill_kv, bucket, keys, replicas)


async def _kv_contents(js: Any, bucket: str) -> list[tuple[str, int, str, bytes]]:
    kv = await js.key_value(bucket)
    # As many entries as the bucket's stream holds: nats-py's end-of-history marker (None) can come first when
    # the watcher's consumer reports nothing pending yet (seen on a loaded machine: an empty bucket read).
    expected = (await js.stream_info(f"KV_{bucket}")).state.messages
    watcher = await kv.watchall(include_history=True)
    entries = []
    try:
        while len(entries) < expected:
            entry = await watcher.updates(timeout=5)
            if entry is not None:
                entries.append((entry.key, entry.revision, entry.operation or "PUT", entry.value or b""))
        # nats-py keeps a watcher's consumer for five minutes: a backup taken meanwhile would hold it.
        consumer = (await watcher._sub.consumer_info()).name
    finally:
        await watcher.stop()
    await js.delete_consumer(f"KV_{bucket}", consumer)
    return entries


def kv_contents(server: Any, bucket: str) -> list[tuple[str, int, str, bytes]]:
    """Every revision of every key, as the KV API delivers them: (key, revision, operation, value)."""
    return _run(server, _kv_contents, bucket)


async def _fill_objects(js: Any, bucket: str, big: bytes, replicas: int) -> None:
    store = await js.create_object_store(bucket, ObjectStoreConfig(bucket=bucket, replicas=replicas))
    await store.put("big.bin", big, meta=ObjectMeta(name="big.bin", description="several chunks"))
    await store.put("small.txt", b"a small object")
    await store.put("gone.txt", b"deleted after")
    await store.delete("gone.txt")


def fill_objects(server: Any, bucket: str, big: bytes, replicas: int = 1) -> None:
    """An object store with a multi-chunk object, a small one and a deleted one."""
    _run(server, _fill_objects, bucket, big, replicas)


async def _object_contents(js: Any, bucket: str) -> dict[str, tuple[int, str, str, str | None]]:
    store = await js.object_store(bucket)
    try:
        infos = await store.list()
    except NotFoundError:
        return {}
    contents = {}
    for info in infos:
        if info.deleted:
            contents[info.name] = (0, "", "deleted", None)
            continue
        result = await store.get(info.name)  # nats-py checks the data against the digest
        contents[info.name] = (info.size, info.digest, hashlib.sha256(result.data).hexdigest(), info.description)
    return contents


def object_contents(server: Any, bucket: str) -> dict[str, tuple[int, str, str, str | None]]:
    """Every object as the object store API gives it back: size, digest, sha256 of its data, description."""
    return _run(server, _object_contents, bucket)
