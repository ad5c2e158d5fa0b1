"""Hostile input: TLS asked for, and a server that offers none. Nothing may be sent in plaintext."""

from __future__ import annotations

import asyncio
import json

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import nats_connection, resolve_options
from support.certificates import make_certificates
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER, NatsNode

LOGIN = {"user": APP_USER, "password": APP_PASSWORD}


@pytest.fixture(scope="module")
def plaintext_server(tmp_path_factory):
    """A server without TLS that traces every protocol line, so a CONNECT it received shows in its log."""
    node = NatsNode("plain", tmp_path_factory.mktemp("plain"), extra_config="trace: true").start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def certs(tmp_path_factory, plaintext_server):
    return make_certificates(tmp_path_factory.mktemp("certs"), [plaintext_server.host, "127.0.0.1"])


def connects_seen(node: NatsNode) -> int:
    """CONNECT lines from this collection's client in the server's trace."""
    lines = node.log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "CONNECT" in line and "natsops" in line)


def plan(**connection) -> dict:
    return run_module("stream_backup", {"streams": ["all"], "path": "/nonexistent/never-written", **connection}, True)


def test_the_trace_shows_a_plaintext_connect(plaintext_server):
    """The control: without TLS asked for, the CONNECT arrives and the trace shows it."""
    before = connects_seen(plaintext_server)
    with pytest.raises(ModuleFailed, match="no stream to back up"):
        plan(servers=plaintext_server.urls, **LOGIN)
    assert connects_seen(plaintext_server) > before


@pytest.mark.parametrize("asked", ["tls-url", "tls_ca", "tls_cert-and-key", "context-ca"])
def test_tls_asked_for_is_never_dropped(asked, plaintext_server, certs, tmp_path, monkeypatch):
    args: dict = {"servers": plaintext_server.urls, **LOGIN}
    if asked == "tls-url":
        args["servers"] = [url.replace("nats://", "tls://") for url in plaintext_server.urls]
    elif asked == "tls_ca":
        args["tls_ca"] = certs["ca.pem"]
    elif asked == "tls_cert-and-key":
        args.update(tls_cert=certs["server.pem"], tls_key=certs["server.key"])
    else:
        contexts = tmp_path / "nats" / "context"
        contexts.mkdir(parents=True)
        (contexts / "secure.json").write_text(json.dumps({"url": plaintext_server.url, "ca": certs["ca.pem"]}))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        args = {"context": "secure", **LOGIN}
    before = connects_seen(plaintext_server)
    with pytest.raises(ModuleFailed) as refused:
        plan(**args)
    msg = refused.value.result["msg"]
    assert "offers no TLS" in msg and "secure connection required" in msg, msg
    assert "Enable TLS on the server" in msg
    assert APP_PASSWORD not in msg
    # Refused at the server's INFO: no CONNECT, so no credentials, ever reached the server.
    assert connects_seen(plaintext_server) == before


def test_tls_offered_but_not_required_is_used(tmp_path):
    """A server that allows both (allow_non_tls) is upgraded when TLS was asked for, as the Go client does."""
    node = NatsNode("mixed", tmp_path)
    certs = make_certificates(tmp_path / "certs", [node.host])
    node.extra_config = (
        f'tls {{ cert_file: "{certs["server.pem"]}", key_file: "{certs["server.key"]}" }}\nallow_non_tls: true'
    )
    node.start()
    try:

        async def tls_version_seen() -> str | None:
            options = resolve_options({"servers": node.urls, "tls_ca": certs["ca.pem"], **LOGIN})
            options.update(connect_timeout=5.0, timeout=5.0)
            async with nats_connection(options):
                conns = node.monitor("/connz")["connections"]
                return next(conn.get("tls_version") for conn in conns if conn.get("name") == "natsops.jetstream")

        assert asyncio.run(tls_version_seen()), "the connection stayed in plaintext"
        with pytest.raises(ModuleFailed, match="no stream to back up"):
            plan(servers=node.urls, tls_ca=certs["ca.pem"], **LOGIN)
    finally:
        node.kill()
