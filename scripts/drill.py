"""The main job (see scripts/drill): deploy a local cluster on systemd-nspawn hosts and run dr_drill against it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.buckets import fill_kv, fill_objects  # noqa: E402
from support.streams import SyncJs, wait_for_counts  # noqa: E402

INVENTORY = REPO / "inventories" / "local" / "hosts.yml"
HOSTS = {"drill1": "127.0.0.81", "drill2": "127.0.0.82", "drill3": "127.0.0.83", "scratch1": "127.0.0.84"}
SOURCE = [f"nats://{HOSTS[name]}:4222" for name in ("drill1", "drill2", "drill3")]
SCRATCH = [f"nats://{HOSTS['scratch1']}:4222"]
APP = {"user": "app", "password": "app-secret"}
DRILLS = REPO / ".build" / "drills"


def testhosts(*args: str) -> None:
    script = str(REPO / "scripts" / "testhosts.py")
    subprocess.run([sys.executable, script, *args], check=True, stdout=subprocess.DEVNULL)


def playbook(name: str, extra_vars: dict) -> None:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
        "ANSIBLE_FORKS": "10",
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY), f"natsops.jetstream.{name}"]
    extra = {"ansible_python_interpreter": sys.executable, **extra_vars} if name == "dr_drill" else extra_vars
    subprocess.run([*command, "-e", json.dumps(extra)], env=env, check=True)


def load_demo_data(client: SyncJs) -> None:
    """Streams an operator would recognise: orders with consumers part-way through, events, a stream that
    sources the paid orders, a key-value bucket of settings and an object store of invoices."""
    client.create_stream("ORDERS", subjects=["orders.>"], num_replicas=3)
    client.publish("orders.new", 2000, size=400, with_headers_every=2)
    client.publish("orders.paid", 1000, size=300)
    client.create_durable("ORDERS", "billing", filter_subject="orders.paid")
    client.create_durable("ORDERS", "audit")
    client.consume_and_ack("ORDERS", "audit", fetch=1500, ack=1500)
    client.create_stream("EVENTS", subjects=["events.>"], num_replicas=3, max_msgs_per_subject=500)
    client.publish("events.login", 3000, size=120)
    client.create_stream(
        "PAID", subjects=[], num_replicas=3, sources=[{"name": "ORDERS", "filter_subject": "orders.paid"}]
    )
    wait_for_counts(client, {"PAID": 1000}, settle=0)
    sources = SimpleNamespace(urls=client.urls)
    fill_kv(sources, "settings", replicas=3)
    fill_objects(sources, "invoices", random.Random(7).randbytes(600_000), replicas=3)


def main(keep: bool) -> int:
    started = time.monotonic()
    testhosts("down", *HOSTS)  # start from blank hosts
    print(f"booting {', '.join(f'{name} ({address})' for name, address in HOSTS.items())} ...", flush=True)
    testhosts("up", *(f"{name}={address}" for name, address in HOSTS.items()))
    try:
        playbook("deploy", {"natsops_group": "testhosts"})
        load_demo_data(SyncJs(SOURCE, APP["user"], APP["password"]))
        playbook(
            "dr_drill",
            {
                "natsops_dr_drill_source": {"servers": SOURCE, **APP},
                "natsops_dr_drill_scratch": {"servers": SCRATCH, **APP},
                "natsops_dr_drill_replicas": 1,
                "natsops_dr_drill_workdir": str(DRILLS),
            },
        )
    except subprocess.CalledProcessError as error:
        print(f"the drill failed ({error.cmd[3] if len(error.cmd) > 3 else error.cmd}); see the output above")
        return 1
    finally:
        if not keep:
            testhosts("down", *HOSTS)
    report = sorted(DRILLS.glob("*/report.md"))[-1]
    print(f"drill passed in {time.monotonic() - started:.0f} s; report: {report} (and report.json beside it)")
    if keep:
        print(f"hosts left running: {', '.join(HOSTS)}; stop them with: .venv/bin/python scripts/testhosts.py down")
    return 0


if __name__ == "__main__":
    sys.exit(main(keep="--keep" in sys.argv[1:]))
