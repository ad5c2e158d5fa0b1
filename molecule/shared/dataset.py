"""Test data for the disaster-recovery scenarios: load R3 streams with durables part-way through, or check them.

    dataset.py load SERVERS RECORD   # create the streams, write what must survive to RECORD (JSON)
    dataset.py check SERVERS RECORD  # compare the streams now with RECORD; prints JSON, exits 1 on a difference

The checks reuse the test suite's helpers (tests/support): every message by sequence with headers and
time, and each consumer's ack floor and unacked count (a restore redelivers what was delivered but not acked).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[2])) / "tests"))

from support.streams import SyncJs, progress

STREAMS = {"ORDERS": 1500, "EVENTS": 700}
# A follower is "current" when its last contact with the leader is recent; on a loaded machine one can miss that
# window for a moment after it caught up. Read again for this long before reporting a replica as not current.
CURRENT_WAIT = 30.0


def load(client: SyncJs) -> dict:
    for name, count in STREAMS.items():
        client.create_stream(name, num_replicas=3)
        client.publish(f"{name}.new", count, size=300, with_headers_every=3)
        client.create_durable(name, "BILLING")
        client.create_durable(name, "AUDIT")
        client.consume_and_ack(name, "BILLING", fetch=count // 2, ack=count // 2)
        client.consume_and_ack(name, "AUDIT", fetch=100, ack=60)
    return {name: progress(client.snapshot_of(name)) for name in STREAMS}


def check(client: SyncJs, recorded: dict) -> dict:
    report = {}
    for name, expected in recorded.items():
        info, replicas = current_replicas(client, name)
        actual = progress(client.snapshot_of(name)) if info else None
        report[name] = {"match": actual == expected, "current_replicas": sorted(filter(None, replicas))}
        if actual != expected:
            report[name].update(expected=expected, actual=actual)
    return report


def current_replicas(client: SyncJs, name: str) -> tuple[dict, list[str | None]]:
    """The stream's info and its leader with the followers that are current, once all are or CURRENT_WAIT ends."""
    deadline = time.monotonic() + CURRENT_WAIT
    while True:
        info = client.stream_info(name) or {}
        cluster = info.get("cluster") or {}
        peers = cluster.get("replicas") or []
        followers = [peer["name"] for peer in peers if peer.get("current")]
        if (cluster.get("leader") and len(followers) == len(peers)) or not info or time.monotonic() > deadline:
            return info, [cluster.get("leader"), *followers]
        time.sleep(1)


def main(command: str, servers: str, record: str) -> int:
    # NATSOPS_DATASET_CREDS: an APP user's creds file, for servers in operator mode.
    client = SyncJs(servers.split(","), "app", "app-secret", os.environ.get("NATSOPS_DATASET_CREDS"))
    if command == "load":
        Path(record).write_text(json.dumps(load(client)))
        return 0
    report = check(client, json.loads(Path(record).read_text()))
    print(json.dumps(report))
    return 0 if all(entry["match"] for entry in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
