"""Pytest fixtures: real nats-server processes (see servers.py), shared where tests allow it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from support import servers


@pytest.fixture(scope="session")
def nats_server_version() -> tuple[int, int, int]:
    return servers.server_version()


@pytest.fixture(scope="session")
def nats_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.NatsNode]:
    """A shared standalone JetStream server; tests use unique stream names on it."""
    node = servers.NatsNode("standalone", tmp_path_factory.mktemp("standalone")).start()
    yield node
    node.stop()


@pytest.fixture
def fresh_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.NatsNode]:
    """A new standalone server for one test, which may break it."""
    node = servers.NatsNode("fresh", tmp_path_factory.mktemp("fresh")).start()
    yield node
    node.kill()


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.NatsCluster]:
    """A shared 3-node JetStream cluster; tests use unique stream names on it and must not break it."""
    cluster = servers.NatsCluster(tmp_path_factory.mktemp("cluster"), size=3).start()
    yield cluster
    cluster.stop_all()


@pytest.fixture
def cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., servers.NatsCluster]]:
    """Make new clusters (of any size) for one test, which may break them."""
    made: list[servers.NatsCluster] = []

    def make(size: int = 3) -> servers.NatsCluster:
        cluster = servers.NatsCluster(tmp_path_factory.mktemp("fresh-cluster"), size=size).start()
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for node in cluster.nodes:
            node.kill()


@pytest.fixture
def fresh_cluster(cluster_factory: Callable[..., servers.NatsCluster]) -> servers.NatsCluster:
    return cluster_factory(3)


_names = itertools.count(1)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Stream names that never repeat within a test run (shared servers keep their streams)."""

    def make(prefix: str) -> str:
        return f"{prefix}_{next(_names)}"

    return make


@pytest.fixture
def free_port() -> int:
    return servers.free_port()
