"""The nats_server role's own tasks (pre-flight, TLS files, the validated config), run by ansible-playbook
against local "hosts": one config and store directory each, on distinct loopback addresses. systemd and the
install steps are covered by the molecule scenarios; this renders what the config says, fast.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from support.playbooks import run_playbook
from support.servers import free_ports

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
    (tmp_path / "render.yml").write_text(RENDER_PLAYBOOK)
    return run_playbook(tmp_path / "render.yml", tmp_path, inventory=inventory, verbosity=verbosity)


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
