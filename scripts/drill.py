"""Run the dr_drill playbook against a local source cluster and a scratch cluster (see scripts/drill)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.servers import APP_PASSWORD, APP_USER, NatsCluster, new_workdir  # noqa: E402
from support.streams import SyncJs  # noqa: E402


def expose_collection() -> Path:
    """ansible-playbook finds natsops.jetstream through a symlink named as the collection."""
    root = REPO / ".build" / "collections"
    link = root / "ansible_collections" / "natsops" / "jetstream"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO, target_is_directory=True)
    return root


def load_demo_data(client: SyncJs) -> None:
    """Streams an operator would recognise: orders with consumers part-way through, and events."""
    client.create_stream("ORDERS", subjects=["orders.>"], num_replicas=3)
    client.publish("orders.new", 2000, size=400, with_headers_every=2)
    client.publish("orders.paid", 1000, size=300)
    client.create_durable("ORDERS", "billing", filter_subject="orders.paid")
    client.create_durable("ORDERS", "audit")
    client.consume_and_ack("ORDERS", "audit", fetch=1500, ack=1500)
    client.create_stream("EVENTS", subjects=["events.>"], num_replicas=3, max_msgs_per_subject=500)
    client.publish("events.login", 3000, size=120)


def main() -> int:
    workdir = new_workdir("natsops-drill-")
    source = NatsCluster(workdir / "source", size=3, name="source")
    scratch = NatsCluster(workdir / "scratch", size=3, name="scratch")
    try:
        print("starting the source cluster (3 nodes) and a scratch cluster (3 nodes) on loopback ...")
        source.start()
        scratch.start()
        load_demo_data(SyncJs(source.urls, APP_USER, APP_PASSWORD))
        credentials = {"user": APP_USER, "password": APP_PASSWORD}
        extra_vars = {
            "dr_drill_source": {"servers": source.urls, **credentials},
            "dr_drill_scratch": {"servers": scratch.urls, **credentials},
            "dr_drill_workdir": str(REPO / ".build" / "drills"),
            "ansible_python_interpreter": sys.executable,
        }
        vars_file = workdir / "drill-vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(expose_collection()),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        }
        playbook = [str(Path(sys.executable).parent / "ansible-playbook"), "natsops.jetstream.dr_drill"]
        return subprocess.run([*playbook, "-e", f"@{vars_file}"], env=env, check=False).returncode
    finally:
        source.stop_all()
        scratch.stop_all()


if __name__ == "__main__":
    sys.exit(main())
