"""natsops.jetstream.account_jwt against real servers in operator mode: a 3-server cluster with a full nats
resolver (only the system account and APP preloaded), a cluster with a cache resolver server, and the servers that
have no nats resolver at all."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from support.jwt_issuer import Operator, decode_claims, encode_jwt
from support.modules import ModuleFailed, run_module
from support.servers import SYS_PASSWORD, SYS_USER, NatsCluster, NatsNode, free_port

pytestmark = [pytest.mark.cluster]


@dataclass
class Operated:
    """A cluster in operator mode, the operator that issues its accounts, and where things are written."""

    cluster: NatsCluster
    operator: Operator
    workdir: Path

    def creds(self, account: str) -> str:
        path = self.workdir / f"{account}-{time.monotonic_ns()}.creds"
        path.write_text(self.operator.creds(account))
        return str(path)

    def system(self, **args: Any) -> dict[str, Any]:
        """Module arguments: the system account's creds, every server."""
        return {"servers": self.cluster.urls, "creds": self.creds("SYS"), "_ansible_diff": True, **args}

    def held(self, account: str) -> dict[str, str | None]:
        """What each server's resolver directory holds for the account, by server name."""
        held = {}
        for node in self.cluster.nodes:
            path = node.dir / "jwt" / f"{account}.jwt"
            held[node.name] = path.read_text() if path.exists() else None
        return held


def start_operated(workdir: Path, name: str, resolvers: list[str]) -> Operated:
    operator = Operator()
    operator.account("APP")
    cluster = NatsCluster(workdir, size=len(resolvers), name=name)
    for node, resolver in zip(cluster.nodes, resolvers, strict=True):
        node.auth_config = operator.server_config(resolver, node.dir / "jwt", preload=["SYS", "APP"])
    cluster.start()
    operated = Operated(cluster, operator, workdir)
    jetstream_ready(operated, "APP")
    return operated


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operated]:
    made = start_operated(tmp_path_factory.mktemp("jwt-full"), "jwtfull", ["full", "full", "full"])
    yield made
    for node in made.cluster.nodes:
        node.kill()


@pytest.fixture
def cache_operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operated]:
    made = start_operated(tmp_path_factory.mktemp("jwt-cache"), "jwtcache", ["full", "full", "cache"])
    yield made
    for node in made.cluster.nodes:
        node.kill()


def push(operated: Operated, jwt: str, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    return run_module("account_jwt", operated.system(jwt=jwt, **args), check_mode=check_mode)


def refused(args: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ModuleFailed) as failed:
        run_module("account_jwt", args)
    return failed.value.result


def names(operated: Operated) -> list[str]:
    return sorted(node.name for node in operated.cluster.nodes)


# ---------------------------------------------------------------------------------------------- clients


async def _connect(urls: list[str], creds: str, **kwargs: Any) -> Any:
    return await nats.connect(urls, user_credentials=creds, allow_reconnect=False, connect_timeout=3, **kwargs)


def attempt(urls: list[str], creds: str, action: Any, timeout: float = 20.0) -> Any:
    """Connect and run ``action(nc)``, again until it succeeds (a new account's JetStream comes up a moment after
    the account is loaded)."""

    async def once() -> Any:
        nc = await _connect(urls, creds)
        try:
            return await action(nc)
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            return asyncio.run(once())
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def connects(urls: list[str], creds: str) -> bool:
    async def once() -> bool:
        try:
            nc = await _connect(urls, creds)
        except Exception:
            return False
        await nc.close()
        return True

    return asyncio.run(once())


def jetstream_ready(operated: Operated, account: str) -> None:
    async def info(nc: Any) -> Any:
        return await nc.jetstream().account_info()

    attempt(operated.cluster.urls, operated.creds(account), info, timeout=30)


class LiveClient:
    """A client that stays connected, in a thread of its own, while modules run in the test's thread."""

    def __init__(self, urls: list[str], creds: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.disconnects = 0
        self.nc = self.call(_connect(urls, creds, disconnected_cb=self._disconnected))
        self.client_id = self.nc.client_id

    async def _disconnected(self) -> None:
        self.disconnects += 1

    def call(self, coroutine: Any, timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def echo(self, payload: bytes = b"still here") -> bytes:
        """A message through the server and back, on this same connection."""

        async def roundtrip() -> bytes:
            inbox = self.nc.new_inbox()
            subscription = await self.nc.subscribe(inbox)
            await self.nc.publish(inbox, payload)
            message = await subscription.next_msg(timeout=5)
            await subscription.unsubscribe()
            return message.data

        return self.call(roundtrip())

    def add_stream(self, name: str, replicas: int = 1) -> Any:
        return self.call(self.nc.jetstream().add_stream(name=name, subjects=[f"{name}.>"], num_replicas=replicas))

    @property
    def still_connected(self) -> bool:
        return self.nc.is_connected and self.disconnects == 0 and self.nc.client_id == self.client_id

    def close(self) -> None:
        self.call(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def live_clients() -> Iterator[list[LiveClient]]:
    made: list[LiveClient] = []
    yield made
    for client in made:
        client.close()


# ---------------------------------------------------------------------------------------------- tests


def test_a_new_account_is_added_while_other_clients_stay_connected(operated, live_clients):
    app = LiveClient([operated.cluster.urls[0]], operated.creds("APP"))
    live_clients.append(app)
    assert app.echo() == b"still here"
    key = operated.operator.account("ORDERS")
    jwt = operated.operator.account_jwt("ORDERS")
    user = operated.creds("ORDERS")
    assert not connects(operated.cluster.urls, user), "the servers do not know the account yet"

    pushed = push(operated, jwt)
    assert pushed["changed"]
    assert pushed["account"] == key.public and pushed["name"] == "ORDERS"
    assert pushed["issued_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(decode_claims(jwt)["iat"]))
    assert pushed["previous_issued_at"] is None
    assert pushed["servers"] == names(operated), "every server of the cluster acknowledged"
    assert pushed["diff"]["before"] == {}
    assert pushed["diff"]["after"]["name"] == "ORDERS" and pushed["diff"]["after"]["limits"]["conn"] == -1
    assert operated.held(key.public) == dict.fromkeys(names(operated), jwt)

    # The client of another account never noticed: same connection, still working.
    assert app.still_connected and app.echo() == b"still here"

    # A user of the new account connects, to another server, and uses JetStream (replicated on every server).
    async def use_jetstream(nc: Any) -> int:
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3)
        await js.publish("orders.new", b"first order")
        return (await js.stream_info("ORDERS")).state.messages

    assert attempt([operated.cluster.urls[1]], user, use_jetstream) == 1

    again = push(operated, jwt)
    assert not again["changed"]
    assert again["servers"] == [] and again["previous_issued_at"] == again["issued_at"]
    assert again["msg"].startswith("every server with a full resolver already holds")
    assert again["diff"]["before"] == again["diff"]["after"]


def test_an_updated_jwt_takes_effect_on_the_connections_already_there(operated, live_clients):
    key = operated.operator.account("LIMITED", streams=1)
    first = push(operated, operated.operator.account_jwt("LIMITED"))
    assert first["changed"]
    jetstream_ready(operated, "LIMITED")
    client = LiveClient(operated.cluster.urls, operated.creds("LIMITED"))
    live_clients.append(client)
    client.add_stream("ONE")
    with pytest.raises(Exception, match="maximum number of streams"):
        client.add_stream("TWO")

    updated = operated.operator.reissue("LIMITED", streams=3)
    checked = push(operated, updated, check_mode=True)
    assert checked["changed"] and checked["servers"] == []
    assert checked["msg"].startswith("would push")
    assert checked["previous_issued_at"] == first["issued_at"] and checked["issued_at"] > first["issued_at"]
    assert checked["diff"]["before"]["limits"]["streams"] == 1
    assert checked["diff"]["after"]["limits"]["streams"] == 3
    assert updated not in operated.held(key.public).values(), "check mode pushed nothing"
    with pytest.raises(Exception, match="maximum number of streams"):
        client.add_stream("TWO")

    pushed = push(operated, updated)
    assert pushed["changed"] and pushed["servers"] == names(operated)
    assert pushed["previous_issued_at"] == first["issued_at"]
    assert operated.held(key.public) == dict.fromkeys(names(operated), updated)
    client.add_stream("TWO")  # the new limit, on the same connection
    assert client.still_connected


def test_check_mode_pushes_nothing(operated):
    key = operated.operator.account("CHECKED")
    checked = push(operated, operated.operator.account_jwt("CHECKED"), check_mode=True)
    assert checked["changed"] and checked["servers"] == [] and checked["previous_issued_at"] is None
    assert checked["diff"]["before"] == {} and checked["diff"]["after"]["name"] == "CHECKED"
    assert operated.held(key.public) == dict.fromkeys(names(operated))
    assert not connects(operated.cluster.urls, operated.creds("CHECKED"))


def test_an_older_jwt_is_refused(operated):
    key = operated.operator.account("ROLLBACK", conn=5)
    original = operated.operator.account_jwt("ROLLBACK")
    newer = operated.operator.reissue("ROLLBACK", conn=10)
    older = operated.operator.reissue("ROLLBACK", issued_at=decode_claims(original)["iat"] - 60, conn=1)
    push(operated, newer)

    result = refused(operated.system(jwt=older))
    assert result["reason"] == "older_than_held"
    assert "roll the account back" in result["msg"] and "Nothing was sent" in result["msg"]
    assert result["previous_issued_at"] > result["issued_at"]
    assert operated.held(key.public) == dict.fromkeys(names(operated), newer)
    # The same time as the one held is not older: a JWT edited twice within a second is pushed.
    same_second = operated.operator.reissue("ROLLBACK", issued_at=decode_claims(newer)["iat"], conn=20)
    assert push(operated, same_second)["changed"]
    assert operated.held(key.public) == dict.fromkeys(names(operated), same_second)


def test_a_server_refusal_fails_the_task_with_the_servers_words(operated):
    key = operated.operator.account("INVALID")
    broken = operated.operator.reissue("INVALID", nats={"signing_keys": ["NOT-A-SIGNING-KEY"]})
    result = refused(operated.system(jwt=broken))
    assert result["reason"] == "server_refused"
    assert sorted(result["refused"]) == names(operated)
    assert all("jwt validation failed" in words for words in result["refused"].values())
    assert "jwt validation failed" in result["msg"] and "No server accepted it" in result["msg"]
    assert result["servers"] == []
    assert operated.held(key.public) == dict.fromkeys(names(operated))


def test_a_jwt_of_another_operator_is_refused_before_it_is_sent(operated):
    stranger = Operator()
    key = stranger.account("STRANGER")
    result = refused(operated.system(jwt=stranger.account_jwt("STRANGER")))
    assert result["reason"] == "untrusted_issuer"
    assert result["issuer"] == stranger.key.public and result["trusted_operators"] == ["OP"]
    assert "Nothing was sent" in result["msg"]
    assert operated.held(key.public) == dict.fromkeys(names(operated)), "the servers would have stored it"


def test_what_is_not_an_account_jwt_is_refused_before_any_request(operated):
    operator = operated.operator
    creds = operator.creds("APP")
    user_jwt = creds.splitlines()[1]
    bad_subject = encode_jwt(operator.key, "UNOTANACCOUNT", "BAD", {"type": "account", "limits": {}})
    # Nothing listens at this address: a module that sent anything would fail to connect instead.
    nowhere = {"servers": [f"nats://127.0.0.1:{free_port()}"], "creds": operated.creds("SYS"), "connect_timeout": 1.0}
    cases = {
        "": "invalid_jwt",
        "not a jwt at all": "invalid_jwt",
        "a.b.c": "invalid_jwt",
        user_jwt: "invalid_jwt",
        operator.jwt: "invalid_jwt",
        bad_subject: "invalid_jwt",
        creds: "seed_in_jwt",
        operator.key.seed.decode(): "seed_in_jwt",
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n": "invalid_jwt",
    }
    for text, reason in cases.items():
        result = refused({**nowhere, "jwt": text})
        assert result["reason"] == reason, (text[:40], result["msg"])
        assert "cannot connect" not in result["msg"]
    assert "not an account JWT" in refused({**nowhere, "jwt": user_jwt})["msg"]
    assert "'user'" in refused({**nowhere, "jwt": user_jwt})["msg"]
    assert "not an account public key" in refused({**nowhere, "jwt": bad_subject})["msg"]
    seeded = refused({**nowhere, "jwt": creds})
    assert operator.creds("APP") not in str(seeded)
    assert creds_seed(creds) not in str(seeded), "the seed is masked in what the module returns"


def creds_seed(creds: str) -> str:
    return creds.split("-----BEGIN USER NKEY SEED-----\n")[1].split("\n")[0]


def test_whitespace_and_nsc_armor_are_accepted(operated):
    key = operated.operator.account("ARMORED")
    jwt = operated.operator.account_jwt("ARMORED")
    armored = f"-----BEGIN NATS ACCOUNT JWT-----\n{jwt}\n------END NATS ACCOUNT JWT------\n"
    pushed = push(operated, armored)
    assert pushed["changed"] and pushed["account"] == key.public
    assert operated.held(key.public) == dict.fromkeys(names(operated), jwt)
    assert not push(operated, f"\n   {jwt}  \n\n")["changed"]


def test_a_connection_of_another_account_is_refused(operated):
    result = refused({"servers": operated.cluster.urls, "creds": operated.creds("APP"), "jwt": jwt_of_new(operated)})
    assert result["reason"] == "not_system_account"
    assert "not the system account" in result["msg"]
    assert result["connected_account"] == "APP"  # its name, as the server reports it


def jwt_of_new(operated: Operated) -> str:
    name = f"NEW{time.monotonic_ns()}"
    operated.operator.account(name)
    return operated.operator.account_jwt(name)


def test_servers_not_in_operator_mode_are_refused(nats_standalone):
    operator = Operator()
    operator.account("ANY")
    args = {"servers": nats_standalone.urls, "user": SYS_USER, "password": SYS_PASSWORD}
    result = refused({**args, "jwt": operator.account_jwt("ANY")})
    assert result["reason"] == "not_operator_mode"
    assert result["servers"] == [nats_standalone.name]
    assert "not in operator mode" in result["msg"] and "Nothing was sent" in result["msg"]


def test_a_memory_resolver_cannot_be_pushed_to(tmp_path):
    operator = Operator()
    operator.account("APP")
    node = NatsNode("jwtmemory", tmp_path, auth_config=operator.server_config()).start()
    try:
        creds = tmp_path / "sys.creds"
        creds.write_text(operator.creds("SYS"))
        operator.account("LATER")
        result = refused({"servers": node.urls, "creds": str(creds), "jwt": operator.account_jwt("LATER")})
        assert result["reason"] == "no_nats_resolver"
        assert "none has the nats resolver" in result["msg"]
    finally:
        node.kill()


def test_a_cache_resolver_server_takes_the_updates_of_the_accounts_it_uses(cache_operated, live_clients):
    operated = cache_operated
    cache = operated.cluster.nodes[2]
    key = operated.operator.account("CACHED", conn=2)
    pushed = push(operated, operated.operator.account_jwt("CACHED"))
    assert pushed["servers"] == names(operated), "the cache server acknowledges too"
    held = operated.held(key.public)
    assert held[cache.name] is None, "a cache resolver keeps no account it does not use"
    assert all(held[node.name] for node in operated.cluster.nodes[:2])

    # A user connects to the cache server: it fetches the account from a full resolver.
    user = operated.creds("CACHED")
    client = LiveClient([cache.url], user)
    live_clients.append(client)
    second = LiveClient([cache.url], operated.creds("CACHED"))
    live_clients.append(second)
    assert not connects([cache.url], operated.creds("CACHED")), "conn: 2"

    updated = operated.operator.reissue("CACHED", conn=3)
    again = push(operated, updated)
    assert again["servers"] == names(operated) and again["previous_issued_at"] == pushed["issued_at"]
    assert operated.held(key.public)[cache.name] == updated, "the cache server now uses the account"
    assert connects([cache.url], operated.creds("CACHED")), "the new limit holds on the cache server"
    assert client.still_connected and second.still_connected


def test_a_system_user_that_may_not_push_is_told_what_the_server_said(operated):
    creds = operated.workdir / "restricted-sys.creds"
    creds.write_text(operated.operator.creds("SYS", deny_publish=["$SYS.REQ.CLAIMS.UPDATE"]))
    args = {"servers": operated.cluster.urls, "creds": str(creds), "timeout": 2.0}
    result = refused({**args, "jwt": jwt_of_new(operated)})
    assert result["reason"] == "no_nats_resolver"
    assert any("permissions violation" in error.lower() for error in result["server_errors"]), result["msg"]
    assert "reported on this connection" in result["msg"]
