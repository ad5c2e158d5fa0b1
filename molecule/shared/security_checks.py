"""What a stranger can and cannot do to a cluster deployed with the role's defaults (the operator scenario).

    security_checks.py anonymous URL                      # a client without credentials is refused
    security_checks.py rogue ROUTE_URL MONITOR_URL NAMES  # a server without the route credentials cannot join
    security_checks.py monitoring PORT                    # the monitoring port listens on loopback only
    security_checks.py hold URL CREDS STATE STOP          # stay connected, publishing, until STOP exists
    security_checks.py connects URL CREDS                 # a user of this creds file connects and uses JetStream

Each prints a JSON line and exits 1 when the promise does not hold.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nats

ROGUE_ADDRESS = "127.0.0.109"


def report(ok: bool, **facts: Any) -> int:
    print(json.dumps({"ok": ok, **facts}))
    return 0 if ok else 1


def anonymous(url: str) -> int:
    async def attempt() -> str:
        try:
            client = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5)
        except nats.errors.Error as exc:
            return str(exc)
        await client.close()
        return "connected"

    outcome = asyncio.run(attempt())
    return report("authorization violation" in outcome.lower(), outcome=outcome)


def monitor_json(url: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return json.loads(reply.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def rogue(route_url: str, monitor_url: str, members: str) -> int:
    """Start a server of the same cluster name, routing to the cluster without its credentials."""
    binary = str(Path(sys.executable).parent / "nats-server")
    with tempfile.TemporaryDirectory() as store:
        config = Path(store) / "rogue.conf"
        config.write_text(
            f'server_name: rogue\nlisten: "{ROGUE_ADDRESS}:4222"\nhttp: "{ROGUE_ADDRESS}:8222"\n'
            f'jetstream {{ store_dir: "{store}" }}\n'
            f'cluster {{ name: {cluster_name(monitor_url)}, listen: "{ROGUE_ADDRESS}:6222",'
            f' routes: ["{route_url}"] }}\n'
        )
        log_path = Path(store) / "rogue.log"
        with log_path.open("w") as log_file:
            process = subprocess.Popen([binary, "-c", str(config)], stderr=log_file)
        try:
            monitor_json(f"http://{ROGUE_ADDRESS}:8222/varz")
            # Wait for the cluster's refusal in the rogue's log (a loaded machine may take a while), then a few
            # seconds more for a route that might come up after all.
            deadline = time.monotonic() + 30
            while "authorization violation" not in log_path.read_text().lower() and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)
            rogue_routes = monitor_json(f"http://{ROGUE_ADDRESS}:8222/routez")
            cluster_routes = monitor_json(f"{monitor_url}/routez")
        finally:
            process.kill()
            process.wait()
        log = log_path.read_text()
    remotes = sorted({route.get("remote_name", "") for route in cluster_routes["routes"]})
    refused = "authorization violation" in log.lower()
    joined = rogue_routes["num_routes"] > 0 or "rogue" in remotes
    return report(refused and not joined and remotes == sorted(members.split(",")), remotes=remotes, refused=refused)


def cluster_name(monitor_url: str) -> str:
    return monitor_json(f"{monitor_url}/varz")["cluster"]["name"]


def listening_addresses(port: int) -> list[str]:
    """Local addresses with a listening TCP socket on ``port`` (/proc/net/tcp and tcp6, state 0A)."""
    found = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.append(decode_address(address))
    return found


def decode_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[index : index + 4][::-1] for index in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def global_address() -> str | None:
    """An address of this machine other than loopback, if it has one (the test hosts share its network)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=False
    )
    for line in shown.stdout.splitlines():
        return line.split()[3].split("/")[0]
    return None


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def monitoring(port: int) -> int:
    addresses = listening_addresses(port)
    outside = global_address()
    from_outside = reachable(outside, port) if outside else False
    ok = addresses == ["127.0.0.1"] and not from_outside
    return report(ok, listening=addresses, global_address=outside, reachable_from_global_address=from_outside)


def hold(url: str, creds: str, state: str, stop: str) -> int:
    """One connection held open while something else changes the servers; records every disconnect."""

    async def session() -> dict[str, Any]:
        disconnects = 0

        async def disconnected() -> None:
            nonlocal disconnects
            disconnects += 1

        client = await nats.connect(url, user_credentials=creds, disconnected_cb=disconnected, connect_timeout=5)
        published = failed = 0
        errors: list[str] = []
        Path(state).write_text(json.dumps({"connected": True}))
        while not Path(stop).exists():
            try:
                await client.jetstream().account_info()
                published += 1
            except Exception as exc:  # the failures are the finding
                failed += 1
                errors = [*errors, f"{type(exc).__name__}: {exc}"][:5]
            await asyncio.sleep(0.2)
        facts = {"disconnects": disconnects, "requests": published, "failed": failed, "errors": errors}
        await client.close()
        return facts

    facts = asyncio.run(session())
    Path(state).write_text(json.dumps(facts))
    return report(facts["disconnects"] == 0 and facts["failed"] == 0 and facts["requests"] > 0, **facts)


def connects(url: str, creds: str) -> int:
    async def attempt() -> dict[str, Any]:
        client = await nats.connect(url, user_credentials=creds, allow_reconnect=False, connect_timeout=5)
        try:
            info = await client.jetstream().account_info()
            return {"streams": info.streams}
        finally:
            await client.close()

    try:
        return report(True, **asyncio.run(attempt()))
    except Exception as exc:  # what refused it is the finding
        return report(False, error=str(exc))


def main(command: str, *args: str) -> int:
    if command == "anonymous":
        return anonymous(*args)
    if command == "rogue":
        return rogue(*args)
    if command == "monitoring":
        return monitoring(int(args[0]))
    if command == "hold":
        return hold(*args)
    if command == "connects":
        return connects(*args)
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
