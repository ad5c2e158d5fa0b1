"""The nats_server role's own tasks (pre-flight, TLS files, the validated config), run by ansible-playbook
against local "hosts": one config and store directory each, on distinct loopback addresses. systemd and the
install steps are covered by the molecule scenarios; this renders what the config says, fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from support.servers import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

# The role's own tasks, minus install and systemd: pre-flight, TLS files, the validated config.
RENDER_PLAYBOOK = """
- hosts: all
  connection: local
  gather_facts: false
  vars:
    _nats_server_started: {changed: true}  # no systemd here: the role's restart/reload handlers stand down
  tasks:
    - ansible.builtin.include_role: {name: natsops.jetstream.nats_server, tasks_from: preflight}
    - ansible.builtin.include_role: {name: natsops.jetstream.nats_server, tasks_from: tls}
    - ansible.builtin.include_role: {name: natsops.jetstream.nats_server, tasks_from: configure}
"""


def run_role(
    tmp_path: Path,
    hosts: dict[str, dict],
    group_vars: dict[str, Any],
    leaves: dict[str, dict] | None = None,
    verbosity: int = 0,
) -> subprocess.CompletedProcess:
    """The role's tasks on ``hosts`` (group nats, ``group_vars``) and on ``leaves`` (their own vars only), at
    ``verbosity`` (-v count: what an operator debugging a run would see)."""
    inventory = {"all": {"children": {"nats": {"hosts": hosts, "vars": group_vars}, "leaves": {"hosts": leaves or {}}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "render.yml").write_text(RENDER_PLAYBOOK)
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_VERBOSITY": str(verbosity),
    }
    command = [PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "render.yml")]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def host_vars(tmp_path: Path, name: str, address: str) -> dict[str, Any]:
    client, monitor, cluster, leafnode, gateway = free_ports(address, 5)
    return {
        "ansible_host": address,
        "nats_server_listen_host": address,
        "nats_server_client_port": client,
        "nats_server_monitor_port": monitor,
        "nats_server_cluster_port": cluster,
        "nats_server_leafnode_port": leafnode,
        "nats_server_gateway_port": gateway,
        "nats_server_config_dir": str(tmp_path / name / "etc"),
        "nats_server_store_dir": str(tmp_path / name / "store"),
        "nats_server_log_file": str(tmp_path / name / "nats-server.log"),
    }
