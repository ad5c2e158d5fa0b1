"""The nats_server role's configuration, rendered by the role's own tasks and run by real nats-server processes.

The role's pre-flight, TLS and configure tasks run through ansible-playbook against local "hosts" (one
config and store directory each, on distinct loopback addresses); the servers then start from the configs
the role wrote. systemd and the install steps are covered by the molecule scenarios; this covers what
the config says, fast: TLS everywhere, route authorization, a JetStream domain, tags and unique_tag,
encryption at rest, https monitoring, leafnode and gateway listeners, logging, and the refusals.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import nkeys
import pytest
from support.certificates import make_certificates
from support.modules import run_module
from support.monitoring import monitor_json
from support.role_render import host_vars, run_role
from support.servers import next_address, server_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
ENCRYPTION_KEY = "a-key-that-must-never-be-logged-3f9c"
ROUTE_PASSWORD = "route/secret@with:odd chars"
LEAF_PASSWORD = "leaf-secret"
NKEY_SEED = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
NKEY_PUBLIC = nkeys.from_seed(bytearray(NKEY_SEED)).public_key.decode()

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role's tasks set root ownership")


@pytest.fixture(scope="module")
def secured_cluster(tmp_path_factory: pytest.TempPathFactory):
    """Three servers from configs the role rendered with every security setting on; yields their facts."""
    tmp_path = tmp_path_factory.mktemp("secured")
    addresses = {f"sec{index}": next_address() for index in (1, 2, 3)}
    certs = make_certificates(tmp_path / "certs", list(addresses.values()))
    tls = {"cert": certs["server.pem"], "key": certs["server.key"], "ca": certs["ca.pem"]}
    hosts = {name: {**host_vars(tmp_path, name, address), "nats_server_tags": [f"az:{name[-1]}"]}
             for name, address in addresses.items()}  # fmt: skip
    group_vars = {
        "nats_server_binary": server_binary(),
        "nats_server_group": "root",
        "nats_server_cluster_name": "secure",
        "nats_server_cluster_group": "nats",
        "nats_server_cluster_user": "router",
        "nats_server_cluster_password": ROUTE_PASSWORD,
        "nats_server_tls": tls,
        "nats_server_cluster_tls": {**tls, "verify": True},
        "nats_server_leafnode_tls": tls,
        "nats_server_monitor_https": True,
        "nats_server_gateways": [{"name": "west", "urls": ["nats://127.0.0.1:7222"]}],
        "nats_server_jetstream_domain": "hub",
        "nats_server_jetstream_unique_tag": "az",
        "nats_server_jetstream_cipher": "chachapoly",
        "nats_server_jetstream_key": ENCRYPTION_KEY,
        "nats_server_system_account": "SYS",
        "nats_server_accounts": {
            "APP": {"jetstream": True, "users": [{"user": "app", "password": "app-secret"}, {"nkey": NKEY_PUBLIC}]},
            "SYS": {"users": [{"user": "sys", "password": "sys-secret"}]},
        },
    }
    # A standalone server with its own JetStream domain joins sec1 as a leaf, into account APP, over TLS.
    hub = hosts["sec1"]
    leaf_address = next_address()
    leaves = {
        "leaf1": {
            **host_vars(tmp_path, "leaf1", leaf_address),
            "nats_server_leafnode_port": 0,
            "nats_server_gateway_port": 0,
            "nats_server_binary": server_binary(),
            "nats_server_group": "root",
            "nats_server_jetstream_domain": "leaf",
            "nats_server_accounts": group_vars["nats_server_accounts"],
            "nats_server_system_account": "SYS",
            "nats_server_leafnode_remotes": [
                {
                    "urls": [f"tls://leaf:{LEAF_PASSWORD}@{hub['ansible_host']}:{hub['nats_server_leafnode_port']}"],
                    "account": "APP",
                    "tls": {"ca_file": certs["ca.pem"]},
                }
            ],
        }
    }
    group_vars["nats_server_leafnode_users"] = [{"user": "leaf", "password": LEAF_PASSWORD, "account": "APP"}]
    for vars_ in [*hosts.values(), *leaves.values()]:  # made by the install tasks on a real host
        Path(vars_["nats_server_config_dir"]).mkdir(parents=True, exist_ok=True)
    rendered = run_role(tmp_path, hosts, group_vars, leaves)
    assert rendered.returncode == 0, rendered.stdout[-5000:] + rendered.stderr[-2000:]
    processes = []
    try:
        for vars_ in [*hosts.values(), *leaves.values()]:
            Path(vars_["nats_server_store_dir"]).mkdir(parents=True, exist_ok=True)
            config = Path(vars_["nats_server_config_dir"]) / "nats-server.conf"
            processes.append(subprocess.Popen([server_binary(), "-c", str(config)], stderr=subprocess.DEVNULL))
        yield {
            "hosts": hosts,
            "leaves": leaves,
            "certs": certs,
            "rendered": rendered,
            "tmp_path": tmp_path,
            "group_vars": group_vars,
        }
    finally:
        for process in processes:
            process.kill()
            process.wait()


def https_json(url: str, ca: str) -> dict[str, Any]:
    return monitor_json(url, ca=ca)


def test_every_security_setting_works_on_a_real_cluster(secured_cluster: dict[str, Any]) -> None:
    hosts, certs = secured_cluster["hosts"], secured_cluster["certs"]
    urls = [f"tls://{vars_['ansible_host']}:{vars_['nats_server_client_port']}" for vars_ in hosts.values()]
    first = next(iter(hosts.values()))

    # https monitoring with the client certificate; tags, domain and the leafnode/gateway listeners.
    varz = https_json(f"https://{first['ansible_host']}:{first['nats_server_monitor_port']}/varz", certs["ca.pem"])
    assert varz["tags"] == ["az:1"]
    assert varz["jetstream"]["config"]["domain"] == "hub"
    assert varz["leaf"]["port"] == first["nats_server_leafnode_port"]
    assert varz["gateway"]["port"] == first["nats_server_gateway_port"] and varz["gateway"]["name"] == "secure"
    assert [gateway["name"] for gateway in varz["gateway"]["gateways"]] == ["west"]

    # The leaf connected with its user, over TLS, into account APP.
    deadline = time.monotonic() + 20
    leafz = https_json(f"https://{first['ansible_host']}:{first['nats_server_monitor_port']}/leafz", certs["ca.pem"])
    while leafz["leafnodes"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        leafz = https_json(
            f"https://{first['ansible_host']}:{first['nats_server_monitor_port']}/leafz", certs["ca.pem"]
        )
    assert [leaf["account"] for leaf in leafz["leafs"]] == ["APP"]

    # Routes authenticate and speak TLS with verification: the cluster forms and stays healthy.
    system = {"servers": urls, "user": "sys", "password": "sys-secret", "tls_ca": certs["ca.pem"]}
    facts = run_module("cluster_info", {**system, "wait_for": "healthy", "wait_timeout": 60})["cluster_info"]
    assert facts["meta"]["size"] == 3 and facts["meta"]["has_quorum"]

    # Clients need the CA; JetStream answers under its domain; unique_tag spreads an R3 stream over the az: tags.
    app = {"servers": urls, "user": "app", "password": "app-secret", "tls_ca": certs["ca.pem"], "domain": "hub"}
    created = run_module("stream", {**app, "name": "SECURE", "subjects": ["secure.>"], "replicas": 3})
    assert created["changed"]

    # An nkey user of the account signs in with its seed, and sees the same stream.
    seed_file = secured_cluster["tmp_path"] / "app.nk"
    seed_file.write_bytes(NKEY_SEED)
    by_nkey = {"servers": urls, "nkey": str(seed_file), "tls_ca": certs["ca.pem"], "domain": "hub"}
    assert run_module("stream", {**by_nkey, "name": "SECURE"})["changed"] is False

    # Encryption at rest: the stream's metadata on disk is not readable JSON.
    store = Path(first["nats_server_store_dir"]) / "jetstream" / "APP" / "streams" / "SECURE"
    deadline = time.monotonic() + 10
    while not (store / "meta.inf").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b'"SECURE"' not in (store / "meta.inf").read_bytes()

    # Logging to the file; secrets never in the play's output.
    assert "Server is ready" in Path(first["nats_server_log_file"]).read_text()
    output = secured_cluster["rendered"].stdout
    assert ENCRYPTION_KEY not in output and ROUTE_PASSWORD not in output and LEAF_PASSWORD not in output


def test_the_second_run_changes_nothing(secured_cluster: dict[str, Any]) -> None:
    again = run_role(
        secured_cluster["tmp_path"], secured_cluster["hosts"], secured_cluster["group_vars"], secured_cluster["leaves"]
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(f"{name} " in again.stdout for name in [*secured_cluster["hosts"], *secured_cluster["leaves"]])
    assert "changed=0" in again.stdout and "changed=1" not in again.stdout and "changed=2" not in again.stdout


# One pre-flight rule each: the settings that break it, and what its refusal must say.
REFUSALS = {
    "tls without a key": (
        {"nats_server_tls": {"cert": "/nowhere/cert.pem"}},
        "nats_server_tls needs both cert and key",
    ),
    "verify without a ca": (
        {"nats_server_cluster_tls": {"cert": "/c.pem", "key": "/k.pem", "verify": True}},
        "nats_server_cluster_tls.verify needs a ca",
    ),
    "https monitoring without tls": ({"nats_server_monitor_https": True}, "nats_server_monitor_https serves the"),
    "cipher without a key": (
        {"nats_server_jetstream_cipher": "aes"},
        "encryption at rest needs both nats_server_jetstream_cipher and nats_server_jetstream_key",
    ),
    "route user without a password": (
        {"nats_server_cluster_user": "router"},
        "route authorization needs both nats_server_cluster_user and nats_server_cluster_password",
    ),
    "gateway without a cluster": ({}, "a gateway is named after its cluster: set nats_server_cluster_name"),
    "unique_tag matching no tag": (
        {"nats_server_jetstream_unique_tag": "az", "nats_server_tags": ["rack:1"]},
        "nats_server_jetstream_unique_tag az matches none of nats_server_tags",
    ),
    "binary install without a binary": (
        {"nats_server_install_method": "binary"},
        "install method binary copies nats_server_binary_src from the controller, which is not set",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_settings_that_only_work_together_are_refused_by_name(tmp_path: Path, case: str) -> None:
    settings, refusal = REFUSALS[case]
    hosts = {"lonely": host_vars(tmp_path, "lonely", next_address())}
    if case != "gateway without a cluster":
        hosts["lonely"]["nats_server_gateway_port"] = 0  # host_vars gives every listener a port
    group = {
        "nats_server_binary": server_binary(),
        "nats_server_group": "root",
        "nats_server_accounts": {"APP": {"jetstream": True, "users": [{"user": "app", "password": "app-secret"}]}},
        "nats_server_credentials_dir": str(tmp_path / "credentials"),
        **settings,
    }
    result = run_role(tmp_path, hosts, group)
    assert result.returncode != 0
    assert refusal in result.stdout + result.stderr
    assert not (tmp_path / "lonely" / "etc" / "nats-server.conf").exists()


def test_a_new_encryption_key_for_an_encrypted_store_is_refused(secured_cluster: dict[str, Any]) -> None:
    settings = Path(next(iter(secured_cluster["hosts"].values()))["nats_server_config_dir"]) / "restart-settings.json"
    recorded = settings.read_text()
    changed = {**secured_cluster["group_vars"], "nats_server_jetstream_key": "another-key"}
    hosts, leaves, tmp_path = secured_cluster["hosts"], secured_cluster["leaves"], secured_cluster["tmp_path"]
    refused = run_role(tmp_path, hosts, changed, leaves)
    assert refused.returncode != 0
    assert "was written with another encryption cipher or key" in refused.stdout + refused.stderr
    assert settings.read_text() == recorded
    assert "another-key" not in refused.stdout + refused.stderr

    accepted = run_role(tmp_path, hosts, {**changed, "nats_server_jetstream_accept_key_change": True}, leaves)
    assert accepted.returncode == 0, accepted.stdout[-3000:]
    assert settings.read_text() != recorded


def test_the_leaf_node_fence_disables_the_remotes_and_holds_until_opened(tmp_path: Path) -> None:
    hosts = {"standby": {**host_vars(tmp_path, "standby", next_address()), "nats_server_gateway_port": 0}}
    group = {
        "nats_server_binary": server_binary(),
        "nats_server_group": "root",
        "nats_server_accounts": {"APP": {"jetstream": True, "users": [{"user": "app", "password": "app-secret"}]}},
        "nats_server_credentials_dir": str(tmp_path / "credentials"),
        "nats_server_leafnode_remotes": [{"urls": ["nats-leaf://app:app-secret@127.0.0.1:7422"], "account": "APP"}],
    }
    config = tmp_path / "standby" / "etc" / "nats-server.conf"
    config.parent.mkdir(parents=True)

    def remotes_disabled(fence: str) -> bool:
        result = run_role(tmp_path, hosts, {**group, "nats_server_leafnode_fence": fence})
        assert result.returncode == 0, result.stdout[-3000:]
        return '"disabled": true' in config.read_text()

    assert remotes_disabled("keep") is False
    assert remotes_disabled("fenced") is True  # nats-server -t accepted it: the role validates every config
    assert remotes_disabled("keep") is True  # a routine run keeps the fence
    assert remotes_disabled("open") is False
    assert remotes_disabled("keep") is False
