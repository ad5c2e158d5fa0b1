"""The nats_server role's secure defaults, on real nats-server processes started from the configs it renders.

Clients need credentials unless anonymous access is asked for; the system account always exists, with a
password generated on the controller and kept there as the modules' connection options; monitoring stays on
loopback; cluster, gateway and leafnode listeners off loopback need credentials; a server deployed with the
old open defaults is not closed to its clients without consent; a server without the route credentials
cannot join the cluster. (On systemd hosts: molecule/operator.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from support.jwt_issuer import Operator
from support.modules import run_module
from support.monitoring import monitor_json
from support.role_render import host_vars, run_role
from support.servers import free_ports, next_address, server_binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role's tasks set root ownership")

APP = {"APP": {"jetstream": True, "users": [{"user": "app", "password": "app-secret"}]}}
ROUTE_PASSWORD = "route-secret-4d1e"


def base_vars(tmp_path: Path) -> dict[str, Any]:
    return {
        "nats_server_binary": server_binary(),
        "nats_server_group": "root",
        "nats_server_credentials_dir": str(tmp_path / "controller" / "credentials"),
    }


def prepared(tmp_path: Path, names: list[str], **extra: Any) -> dict[str, dict[str, Any]]:
    listeners_off = {"nats_server_leafnode_port": 0, "nats_server_gateway_port": 0}
    hosts = {name: {**host_vars(tmp_path, name, next_address()), **listeners_off, **extra} for name in names}
    for vars_ in hosts.values():  # made by the install tasks on a real host
        Path(vars_["nats_server_config_dir"]).mkdir(parents=True, exist_ok=True)
        Path(vars_["nats_server_store_dir"]).mkdir(parents=True, exist_ok=True)
    return hosts


def config_of(vars_: dict[str, Any]) -> Path:
    return Path(vars_["nats_server_config_dir"]) / "nats-server.conf"


@contextlib.contextmanager
def running(*configs: Path) -> Iterator[list[subprocess.Popen]]:
    processes = [subprocess.Popen([server_binary(), "-c", str(config)], stderr=subprocess.PIPE) for config in configs]
    try:
        yield processes
    finally:
        for process in processes:
            process.kill()
            process.wait()


def monitor(vars_: dict[str, Any], path: str, host: str | None = None) -> dict[str, Any]:
    return monitor_json(f"http://{host or vars_['ansible_host']}:{vars_['nats_server_monitor_port']}/{path}")


def client_url(vars_: dict[str, Any]) -> str:
    return f"nats://{vars_['ansible_host']}:{vars_['nats_server_client_port']}"


def connect_error(url: str, **credentials: Any) -> str | None:
    """None when a client with ``credentials`` connects and reaches JetStream, else what refused it."""

    async def attempt() -> None:
        client = await nats.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, **credentials
        )
        try:
            await client.jetstream().account_info()
        finally:
            await client.close()

    try:
        asyncio.run(attempt())
    except Exception as exc:  # the test reports whatever refused the client
        return str(exc)
    return None


def test_defaults_refuse_anonymous_clients_and_generate_the_system_user(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["def1"])
    vars_ = hosts["def1"]
    rendered = run_role(tmp_path, hosts, {**base_vars(tmp_path), "nats_server_accounts": APP})
    assert rendered.returncode == 0, rendered.stdout[-4000:]

    credentials = tmp_path / "controller" / "credentials"
    system = json.loads((credentials / "system.json").read_text())
    assert stat.S_IMODE((credentials / "system.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    assert system["user"] == "sys" and len(system["password"]) == 32
    assert system["servers"] == [client_url(vars_)]
    assert system["password"] not in rendered.stdout + rendered.stderr

    with running(config_of(vars_)):
        # Monitoring stays on the (loopback) client address.
        assert monitor(vars_, "varz")["http_host"] == vars_["ansible_host"]
        assert "Authorization Violation" in (connect_error(client_url(vars_)) or "")
        assert connect_error(client_url(vars_), user="app", password="app-secret") is None
        # The generated system user, with the options as the file gives them, is the system account.
        facts = run_module("cluster_info", {**system, "wait_for": "healthy", "wait_timeout": 30})
        assert facts["cluster_info"]["system_account"] is True

    # Later runs keep the password: nothing changes. Even at -vvv (the running config is read, and it holds
    # the passwords) no secret is shown.
    again = run_role(tmp_path, hosts, {**base_vars(tmp_path), "nats_server_accounts": APP}, verbosity=3)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in again.stdout
    config_as_read = base64.b64encode(config_of(vars_).read_bytes()).decode()
    for secret in [system["password"], "app-secret", config_as_read[:200]]:
        assert secret not in again.stdout + again.stderr
    assert json.loads((credentials / "system.json").read_text()) == system


def test_a_given_system_password_is_used_and_not_kept(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["given1"])
    group = {**base_vars(tmp_path), "nats_server_accounts": APP, "nats_server_system_password": "from-the-vault-91"}
    rendered = run_role(tmp_path, hosts, group)
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    credentials = tmp_path / "controller" / "credentials"
    assert json.loads((credentials / "system.json").read_text())["password"] == "from-the-vault-91"
    assert not (credentials / "system-password").exists()
    assert "from-the-vault-91" not in rendered.stdout + rendered.stderr


def test_a_deploy_where_no_client_could_connect_is_refused(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["nobody1"])
    refused = run_role(tmp_path, hosts, base_vars(tmp_path))
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "no client could connect" in output
    assert "nats_server_accounts" in output and "nats_server_allow_anonymous: true" in output
    assert not config_of(hosts["nobody1"]).exists()


def test_anonymous_clients_when_allowed_act_in_the_global_account(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["anon1"])
    vars_ = hosts["anon1"]
    rendered = run_role(tmp_path, hosts, {**base_vars(tmp_path), "nats_server_allow_anonymous": True})
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    assert "warning: nats_server_allow_anonymous is true" in rendered.stdout
    system = json.loads((tmp_path / "controller" / "credentials" / "system.json").read_text())
    with running(config_of(vars_)):
        monitor(vars_, "healthz")
        assert connect_error(client_url(vars_)) is None
        assert run_module("cluster_info", {**system, "wait_for": "healthy", "wait_timeout": 30})["cluster_info"]


def test_anonymous_clients_can_act_as_a_named_user(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["named1"])
    vars_ = hosts["named1"]
    group = {
        **base_vars(tmp_path),
        "nats_server_accounts": APP,
        "nats_server_allow_anonymous": True,
        "nats_server_no_auth_user": "app",
    }
    rendered = run_role(tmp_path, hosts, group)
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    with running(config_of(vars_)):
        monitor(vars_, "healthz")

        async def account_of_anonymous() -> str:
            client = await nats.connect(client_url(vars_), allow_reconnect=False)
            try:
                reply = await client.request("$SYS.REQ.USER.INFO", b"", timeout=5)
                return json.loads(reply.data)["data"]["account"]
            finally:
                await client.close()

        assert asyncio.run(account_of_anonymous()) == "APP"


def test_a_server_deployed_open_is_not_closed_to_its_clients_without_consent(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["old1"])
    vars_ = hosts["old1"]
    # What the role's earlier defaults rendered: no accounts, anyone in.
    old = (
        f'server_name: "old1"\nlisten: "{vars_["ansible_host"]}:{vars_["nats_server_client_port"]}"\n'
        f'jetstream {{\n  store_dir: "{vars_["nats_server_store_dir"]}"\n}}\n'
    )
    config_of(vars_).write_text(old)
    group = {**base_vars(tmp_path), "nats_server_accounts": APP}
    refused = run_role(tmp_path, hosts, group)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "runs a config that lets clients in without credentials" in output
    assert "nats_server_accept_auth_change: true" in output and "nats_server_allow_anonymous: true" in output
    assert config_of(vars_).read_text() == old

    kept_open = run_role(tmp_path, hosts, {**group, "nats_server_allow_anonymous": True})
    assert kept_open.returncode == 0, kept_open.stdout[-3000:]
    assert "no_auth_user" in config_of(vars_).read_text()

    config_of(vars_).write_text(old)
    consented = run_role(tmp_path, hosts, {**group, "nats_server_accept_auth_change": True})
    assert consented.returncode == 0, consented.stdout[-3000:]
    assert "no_auth_user" not in config_of(vars_).read_text()


def test_listeners_off_loopback_need_credentials(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["open1"])
    leafnode, gateway = free_ports("127.0.0.1", 2)
    hosts["open1"].update(
        {
            "nats_server_leafnode_port": leafnode,
            "nats_server_gateway_port": gateway,
            "nats_server_listen_host": "0.0.0.0",
            "nats_server_cluster_name": "open",
            "nats_server_cluster_group": "nats",
            "nats_server_jetstream": False,  # a one-server cluster, only to have a route listener
        }
    )
    group = {**base_vars(tmp_path), "nats_server_accounts": APP}
    refused = run_role(tmp_path, hosts, group)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    for listener in ["cluster listener 0.0.0.0:", "gateway listener 0.0.0.0:", "leafnode listener 0.0.0.0:"]:
        assert listener in output, listener
    for fix in ["nats_server_cluster_user", "nats_server_gateway_user", "nats_server_leafnode_users"]:
        assert fix in output, fix
    assert "nats_server_allow_unauthenticated_routes: true" in output
    assert not config_of(hosts["open1"]).exists()

    allowed = run_role(tmp_path, hosts, {**group, "nats_server_allow_unauthenticated_routes": True})
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    assert "warning: nats_server_allow_unauthenticated_routes is true" in allowed.stdout
    # Listening everywhere, the monitoring endpoint still stays on loopback.
    assert f'http: "127.0.0.1:{hosts["open1"]["nats_server_monitor_port"]}"' in config_of(hosts["open1"]).read_text()

    secured = {
        **group,
        "nats_server_cluster_user": "router",
        "nats_server_cluster_password": ROUTE_PASSWORD,
        "nats_server_gateway_user": "gw",
        "nats_server_gateway_password": "gw-secret",
        "nats_server_leafnode_users": [{"user": "leaf", "password": "leaf-secret", "account": "APP"}],
        "nats_server_gateways": [{"name": "west", "urls": ["nats://127.0.0.1:7222", "nats://own:pw@127.0.0.2:7222"]}],
    }
    accepted = run_role(tmp_path, hosts, secured)
    assert accepted.returncode == 0, accepted.stdout[-3000:]
    assert "nats_server_allow_unauthenticated_routes" not in accepted.stdout
    # The gateway user goes into each gateway URL that names no user of its own.
    config = config_of(hosts["open1"]).read_text()
    assert '"nats://gw:gw-secret@127.0.0.1:7222"' in config and '"nats://own:pw@127.0.0.2:7222"' in config


def test_monitoring_given_an_exposed_address_is_announced(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["mon1"], nats_server_monitor_host="0.0.0.0")
    rendered = run_role(tmp_path, hosts, {**base_vars(tmp_path), "nats_server_accounts": APP})
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    assert "note: monitoring listens on 0.0.0.0:" in rendered.stdout


def test_a_server_without_the_route_credentials_cannot_join(tmp_path: Path) -> None:
    hosts = prepared(tmp_path, ["rt1", "rt2", "rt3"])
    group = {
        **base_vars(tmp_path),
        "nats_server_accounts": APP,
        "nats_server_cluster_name": "guarded",
        "nats_server_cluster_group": "nats",
        "nats_server_cluster_user": "router",
        "nats_server_cluster_password": ROUTE_PASSWORD,
    }
    rendered = run_role(tmp_path, hosts, group)
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    first = hosts["rt1"]

    rogue_dir = tmp_path / "rogue"
    rogue_dir.mkdir()
    rogue_address = next_address()
    client, monitor_port, cluster = free_ports(rogue_address, 3)
    rogue_config = rogue_dir / "rogue.conf"
    rogue_config.write_text(
        f'server_name: rogue\nlisten: "{rogue_address}:{client}"\nhttp: "{rogue_address}:{monitor_port}"\n'
        f'jetstream {{ store_dir: "{rogue_dir}" }}\n'
        f'cluster {{\n  name: guarded\n  listen: "{rogue_address}:{cluster}"\n'
        f'  routes: ["nats-route://{first["ansible_host"]}:{first["nats_server_cluster_port"]}"]\n}}\n'
    )
    with running(*(config_of(vars_) for vars_ in hosts.values())):
        assert wait_routes(first, 2)
        with running(rogue_config) as (rogue,):
            rogue_vars = {"ansible_host": rogue_address, "nats_server_monitor_port": monitor_port}
            monitor(rogue_vars, "varz")
            time.sleep(3)  # several route attempts
            assert monitor(rogue_vars, "routez")["num_routes"] == 0
            assert {route["remote_name"] for route in monitor(first, "routez")["routes"]} == {"rt2", "rt3"}
            rogue.kill()
            log = rogue.stderr.read().decode() if rogue.stderr else ""
        assert "Authorization Violation" in log


def wait_routes(vars_: dict[str, Any], count: int) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len({route["remote_name"] for route in monitor(vars_, "routez")["routes"]}) >= count:
            return True
        time.sleep(0.2)
    return False


def operator_group(tmp_path: Path, operator: Operator) -> dict[str, Any]:
    return {
        **base_vars(tmp_path),
        "nats_server_operator_jwt": operator.jwt + "\n",
        "nats_server_resolver_preload": {key.public: token for key, token in operator.accounts.values()},
    }


def test_operator_mode_with_full_and_cache_resolvers(tmp_path: Path) -> None:
    operator = Operator()
    operator.account("APP")
    hosts = prepared(tmp_path, ["op1", "op2", "op3"])
    for vars_ in hosts.values():
        vars_["nats_server_resolver_dir"] = str(Path(vars_["nats_server_store_dir"]) / "jwt")
    hosts["op3"]["nats_server_resolver_type"] = "cache"  # fetches the accounts it needs from op1 and op2
    group = {
        **operator_group(tmp_path, operator),
        "nats_server_user": "root",
        "nats_server_cluster_name": "operated",
        "nats_server_cluster_group": "nats",
        "nats_server_cluster_user": "router",
        "nats_server_cluster_password": ROUTE_PASSWORD,
    }
    rendered = run_role(tmp_path, hosts, group)
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    # The system account came from the operator JWT; nothing was generated for a config-mode system user.
    assert f'system_account: "{operator.system.public}"' in config_of(hosts["op1"]).read_text()
    assert not (tmp_path / "controller" / "credentials").exists()
    assert all(Path(vars_["nats_server_resolver_dir"]).is_dir() for vars_ in hosts.values())

    (tmp_path / "sys.creds").write_text(operator.creds("SYS"))
    (tmp_path / "app.creds").write_text(operator.creds("APP"))
    urls = [client_url(vars_) for vars_ in hosts.values()]
    with running(*(config_of(vars_) for vars_ in hosts.values())):
        system = {"servers": urls, "creds": str(tmp_path / "sys.creds")}
        facts = run_module("cluster_info", {**system, "wait_for": "healthy", "wait_timeout": 60})["cluster_info"]
        assert facts["meta"]["size"] == 3
        assert "Authorization Violation" in (connect_error(urls[2]) or "")
        # A user of the preloaded account, through the cache-resolver server too.
        app = {"servers": [urls[2]], "creds": str(tmp_path / "app.creds")}
        assert run_module("stream", {**app, "name": "OPERATED", "subjects": ["op.>"], "replicas": 3})["changed"]
        assert connect_error(urls[0], user_credentials=str(tmp_path / "app.creds")) is None


def test_operator_mode_settings_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    operator = Operator()
    app = operator.account("APP")
    hosts = prepared(tmp_path, ["opx1"])
    group = operator_group(tmp_path, operator)

    not_operator = run_role(tmp_path, hosts, {**group, "nats_server_operator_jwt": operator.accounts["APP"][1]})
    assert "is a JWT of type account, not an operator JWT" in not_operator.stdout

    no_system = {**group, "nats_server_resolver_preload": {app.public: operator.accounts["APP"][1]}}
    refused = run_role(tmp_path, hosts, no_system)
    assert f"the system account {operator.system.public} is not in nats_server_resolver_preload" in refused.stdout

    mislabelled = {**group, "nats_server_resolver_preload": {operator.system.public: operator.accounts["APP"][1]}}
    refused = run_role(tmp_path, hosts, mislabelled)
    assert (
        f"entry {operator.system.public} is not the JWT of that account (its subject is {app.public}" in refused.stdout
    )

    with_accounts = run_role(tmp_path, hosts, {**group, "nats_server_accounts": APP})
    assert "leave nats_server_accounts empty" in with_accounts.stdout
    anonymous = run_role(tmp_path, hosts, {**group, "nats_server_allow_anonymous": True})
    assert "operator mode has no anonymous clients" in anonymous.stdout

    garbage = run_role(tmp_path, hosts, {**group, "nats_server_operator_jwt": "not-a-jwt"})
    assert "not a JWT" in garbage.stdout + garbage.stderr
    for result in [not_operator, refused, with_accounts, anonymous, garbage]:
        assert result.returncode != 0
    assert not config_of(hosts["opx1"]).exists()
