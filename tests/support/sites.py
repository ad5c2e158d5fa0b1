"""Two sites on loopback for the standby tests: a primary and a standby server, each its own JetStream domain,
the standby soliciting the primary's leaf node listener for the APP account (as the role deploys them)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from support.servers import APP_PASSWORD, APP_USER, NatsNode, free_port, next_address
from support.streams import SyncJs

PRIMARY_DOMAIN, STANDBY_DOMAIN = "east", "west"


@dataclass
class Sites:
    primary: NatsNode
    standby: NatsNode

    def primary_js(self) -> SyncJs:
        return SyncJs(self.primary.urls, APP_USER, APP_PASSWORD)

    def standby_js(self) -> SyncJs:
        return SyncJs(self.standby.urls, APP_USER, APP_PASSWORD)

    def wait_linked(self, timeout: float = 20.0) -> None:
        """Until the standby reaches the primary's JetStream API through the leaf node link."""
        deadline = time.monotonic() + timeout
        while not primary_answers(self.standby.url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no leaf node link from the standby to the primary:\n{self.standby.log_tail()}")
            time.sleep(0.2)


def primary_answers(standby_url: str) -> bool:
    async def ask() -> bool:
        client = await nats.connect(standby_url, user=APP_USER, password=APP_PASSWORD)
        try:
            reply = await client.request(f"$JS.{PRIMARY_DOMAIN}.API.INFO", b"", timeout=1)
            return "error" not in json.loads(reply.data)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return False
        finally:
            await client.close()

    return asyncio.run(ask())


def make_sites(workdir: Path, standby_binary: str | None = None) -> Sites:
    primary_host = next_address()
    leaf_port = free_port(primary_host)
    primary = NatsNode(
        "primary",
        workdir,
        host=primary_host,
        jetstream_config=f"domain: {PRIMARY_DOMAIN}",
        extra_config=f'leafnodes {{ listen: "{primary_host}:{leaf_port}" }}',
    )
    remote = f"nats-leaf://{APP_USER}:{APP_PASSWORD}@{primary_host}:{leaf_port}"
    standby = NatsNode(
        "standby",
        workdir,
        jetstream_config=f"domain: {STANDBY_DOMAIN}",
        extra_config=f'leafnodes {{ reconnect: "1s", remotes: [ {{ url: "{remote}", account: APP }} ] }}',
        binary=standby_binary,
    )
    sites = Sites(primary.start(), standby.start())
    sites.wait_linked()
    return sites


@pytest.fixture
def two_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    """A primary and a standby site, linked; for one test, which may stop either."""
    sites = make_sites(tmp_path_factory.mktemp("sites"))
    yield sites
    sites.primary.kill()
    sites.standby.kill()


def standby_args(sites: Sites, **args: Any) -> dict[str, Any]:
    """Module arguments that connect to the standby site as APP, mirroring the primary's domain."""
    return {"servers": sites.standby.urls, "user": APP_USER, "password": APP_PASSWORD, **args}


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.1)
