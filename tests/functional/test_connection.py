"""The shared connection options, each against a real nats-server configured for it."""

from __future__ import annotations

import json
import os
import signal
import ssl
import threading
import time

import nkeys
import pytest
from support.certificates import make_certificates
from support.fixtures import NATSCLI_FIXTURE
from support.jwt_issuer import Operator
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER, NatsNode
from support.streams import SyncJs

FIXTURE = NATSCLI_FIXTURE


def plan_backup(**connection) -> dict:
    """A check-mode backup of every stream: it needs a working connection and JetStream API, writes nothing."""
    return run_module("stream_backup", {"streams": ["all"], "path": "/nonexistent/never-written", **connection}, True)


def with_stream(node: NatsNode, **connect) -> None:
    """Create a stream through a plain nats-py connection made with the same credentials."""
    import asyncio

    import nats

    async def create() -> None:
        nc = await nats.connect(node.url, **connect)
        try:
            reply = await nc.request(
                "$JS.API.STREAM.CREATE.CONN", json.dumps({"name": "CONN", "subjects": ["conn.>"]}).encode(), timeout=5
            )
            assert b'"error"' not in reply.data, reply.data
        finally:
            await nc.close()

    asyncio.run(create())


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("conn")


def test_token(workdir):
    node = NatsNode("token", workdir, auth_config='authorization { token: "s3cret-token" }').start()
    try:
        with_stream(node, token="s3cret-token")
        assert plan_backup(servers=node.urls, token="s3cret-token")["planned"][0]["stream"] == "CONN"
        with pytest.raises(ModuleFailed, match="refused the credentials"):
            plan_backup(servers=node.urls, token="wrong-token")
    finally:
        node.kill()


def test_nkey_seed_file(workdir):
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = workdir / "user.nk"
    seed_file.write_bytes(seed)
    node = NatsNode("nkey", workdir, auth_config=f'authorization {{ users: [{{nkey: "{public}"}}] }}').start()
    try:
        with_stream(node, nkeys_seed=str(seed_file))
        assert plan_backup(servers=node.urls, nkey=str(seed_file))["planned"][0]["stream"] == "CONN"
        other = workdir / "other.nk"
        other.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        with pytest.raises(ModuleFailed, match="refused the credentials"):
            plan_backup(servers=node.urls, nkey=str(other))
    finally:
        node.kill()


def test_creds_file_in_operator_mode(workdir):
    operator = Operator()
    operator.account("ORDERS")
    node = NatsNode("operator", workdir, auth_config=operator.server_config()).start()
    try:
        creds = workdir / "orders.creds"
        creds.write_text(operator.creds("ORDERS"))
        with_stream(node, user_credentials=str(creds))
        assert plan_backup(servers=node.urls, creds=str(creds))["planned"][0]["stream"] == "CONN"
        # A user signed by an account the server does not know is refused.
        stranger = Operator()
        stranger.account("ORDERS")
        (workdir / "stranger.creds").write_text(stranger.creds("ORDERS"))
        with pytest.raises(ModuleFailed, match="refused the credentials"):
            plan_backup(servers=node.urls, creds=str(workdir / "stranger.creds"))
    finally:
        node.kill()


def test_account_without_jetstream_is_refused_with_what_to_do(workdir):
    # The refusal is asked again for a few seconds (a server enables an account's JetStream a moment after
    # loading it), then reported with its err_code: an account truly without JetStream is not waited on forever.
    auth = "accounts { PLAIN { users: [{user: plain, password: plain-secret}] } }"
    node = NatsNode("nojs", workdir, auth_config=auth).start()
    try:
        with pytest.raises(ModuleFailed) as failed:
            plan_backup(servers=node.urls, user="plain", password="plain-secret")
        assert failed.value.result["err_code"] == 10039
        assert "enable it in the server's account configuration" in failed.value.result["msg"]
    finally:
        node.kill()


def test_an_account_whose_jetstream_comes_up_a_moment_later_is_waited_for(workdir):
    # What a just-pushed operator-mode account does by chance, made certain: the account's JetStream is enabled
    # by a config reload 1.5 s after the module started; the module's first requests are refused (10039) and
    # asked again, and the stream is made.
    plain = "users: [{user: plain, password: plain-secret}]"
    node = NatsNode("warming", workdir, auth_config=f"accounts {{ PLAIN {{ {plain} }} }}").start()

    def enable_jetstream() -> None:
        time.sleep(1.5)
        node.auth_config = f"accounts {{ PLAIN {{ jetstream: enabled, {plain} }} }}"
        node.write_config()
        os.kill(node.process.pid, signal.SIGHUP)

    enabling = threading.Thread(target=enable_jetstream)
    enabling.start()
    try:
        connection = {"servers": node.urls, "user": "plain", "password": "plain-secret"}
        assert run_module("stream", {**connection, "name": "WARMED", "subjects": ["warmed.>"]})["changed"]
        assert SyncJs(node.urls, "plain", "plain-secret").stream_info("WARMED") is not None
    finally:
        enabling.join()
        node.kill()


def test_tls_with_ca(workdir):
    node = NatsNode("tls", workdir)
    certs = make_certificates(workdir, [node.host])
    node.extra_config = f'tls {{ cert_file: "{certs["server.pem"]}", key_file: "{certs["server.key"]}" }}'
    node.start()
    try:
        with_stream(node, user=APP_USER, password=APP_PASSWORD, tls=ssl.create_default_context(cafile=certs["ca.pem"]))
        login = {"servers": node.urls, "user": APP_USER, "password": APP_PASSWORD}
        assert plan_backup(**login, tls_ca=certs["ca.pem"])["planned"][0]["stream"] == "CONN"
        with pytest.raises(ModuleFailed, match="cannot connect to NATS"):
            plan_backup(**login)
    finally:
        node.kill()


def test_jetstream_domain(workdir):
    node = NatsNode("domain", workdir, jetstream_config="domain: hub").start()
    try:
        login = {"servers": node.urls, "user": APP_USER, "password": APP_PASSWORD}
        SyncJs(node.urls, APP_USER, APP_PASSWORD).create_stream("INHUB")
        planned = plan_backup(**login, domain="hub")["planned"]
        assert [entry["stream"] for entry in planned] == ["INHUB"]
        with pytest.raises(ModuleFailed, match="domain"):
            plan_backup(**login, domain="elsewhere", timeout=2.0)
    finally:
        node.kill()


def test_natscli_context_and_environment(nats_standalone, tmp_path, monkeypatch, unique_name):
    name = unique_name("CTX")
    SyncJs(nats_standalone.urls, APP_USER, APP_PASSWORD).create_stream(name)
    contexts = tmp_path / "config" / "nats" / "context"
    contexts.mkdir(parents=True)
    (contexts / "local.json").write_text(
        json.dumps({"url": nats_standalone.url, "user": APP_USER, "password": APP_PASSWORD})
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "backup"
    assert run_module("stream_backup", {"context": "local", "stream": name, "path": str(path)})["changed"]

    # NATS_URL and NATS_CONTEXT stand in for the options, as they do for the nats CLI.
    monkeypatch.setenv("NATS_CONTEXT", "local")
    monkeypatch.setenv("NATS_URL", nats_standalone.url)
    planned = run_module("stream_restore", {"path": str(path), "if_exists": "skip"}, check_mode=True)
    assert planned["planned"][0] == {"stream": name, "action": "skip", "messages": 0, "exists": True}


def test_wrong_account_sees_no_stream(nats_standalone, tmp_path, unique_name):
    """Streams belong to accounts: another account's credentials do not see them."""
    name = unique_name("ACCOUNT")
    SyncJs(nats_standalone.urls, APP_USER, APP_PASSWORD).create_stream(name)
    with pytest.raises(ModuleFailed, match=f"stream {name} not found in this account"):
        run_module(
            "stream_backup",
            {
                "servers": nats_standalone.urls,
                **{"user": "other", "password": "other-secret"},
                **{"stream": name, "path": str(tmp_path / "x")},
            },
        )
