"""Just enough of nsc to run a server in operator mode: operator, account and user JWTs, and creds files.

JWTs are signed with ed25519 nkeys as nats-server verifies them (header ``ed25519-nkey``, claims
version 2). By default accounts are preloaded into a MEMORY resolver, so no account server is needed;
``server_config(resolver="full")`` (or ``"cache"``) gives the built-in ``nats`` resolver instead, with only
the system account preloaded, as ``nsc generate config --nats-resolver`` does: other accounts are then
pushed to the servers (``nsc push``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Identity:
    seed: bytes
    public: str

    @classmethod
    def new(cls, prefix: int) -> Identity:
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        return cls(seed, nkeys.from_seed(bytearray(seed)).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        return nkeys.from_seed(bytearray(self.seed)).sign(data)


def encode_jwt(issuer: Identity, subject: str, name: str, nats: dict[str, Any], issued_at: int | None = None) -> str:
    claims = {
        "iat": int(time.time()) if issued_at is None else issued_at,
        "iss": issuer.public,
        "name": name,
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()).decode()
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(issuer.sign(f"{header}.{body}".encode()))
    return f"{header}.{body}.{signature}"


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (no signature check)."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1}
JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
RESOLVERS = ("MEMORY", "full", "cache")


class Operator:
    """An operator with a system account; make accounts and users under it."""

    def __init__(self) -> None:
        self.key = Identity.new(nkeys.PREFIX_BYTE_OPERATOR)
        self.accounts: dict[str, tuple[Identity, str]] = {}  # name -> (key, its latest JWT)
        self.limits: dict[str, dict[str, Any]] = {}  # name -> the limits of its latest JWT
        self.system = self.account("SYS", jetstream=False)
        self.jwt = encode_jwt(
            self.key, self.key.public, "OP", {"type": "operator", "system_account": self.system.public}
        )

    def account(self, name: str, jetstream: bool = True, **limits: Any) -> Identity:
        """A new account; ``limits`` override the unlimited defaults (``conn=5``, ``streams=2``...)."""
        key = Identity.new(nkeys.PREFIX_BYTE_ACCOUNT)
        self.limits[name] = {**UNLIMITED, "leaf": -1, **(JETSTREAM if jetstream else {}), **limits}
        token = encode_jwt(self.key, key.public, name, {"type": "account", "limits": self.limits[name]})
        self.accounts[name] = (key, token)
        return key

    def reissue(
        self, name: str, issued_at: int | None = None, nats: dict[str, Any] | None = None, **limits: Any
    ) -> str:
        """A new version of ``name``'s JWT with ``limits`` changed (and ``nats`` claims added, such as
        ``signing_keys``), issued a second after the last one by default (``issued_at`` earlier than that makes an
        older one, which is not kept as the latest)."""
        key, latest = self.accounts[name]
        if issued_at is None:
            issued_at = max(int(time.time()), decode_claims(latest)["iat"] + 1)
        merged = {**self.limits[name], **limits}
        claims = {"type": "account", "limits": merged, **(nats or {})}
        token = encode_jwt(self.key, key.public, name, claims, issued_at=issued_at)
        if issued_at > decode_claims(latest)["iat"]:
            self.accounts[name] = (key, token)
            self.limits[name] = merged
        return token

    def account_jwt(self, name: str) -> str:
        return self.accounts[name][1]

    def creds(self, account: str, user: str = "user", deny_publish: list[str] | None = None) -> str:
        """A creds file's content for a new user of ``account`` (denied publishing to ``deny_publish``)."""
        account_key = self.accounts[account][0]
        user_key = Identity.new(nkeys.PREFIX_BYTE_USER)
        publish = {"deny": deny_publish} if deny_publish else {}
        claims = {"type": "user", "pub": publish, "sub": {}, **UNLIMITED}
        token = encode_jwt(account_key, user_key.public, user, claims)
        return (
            f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{user_key.seed.decode()}\n------END USER NKEY SEED------\n"
        )

    def server_config(
        self, resolver: str = "MEMORY", resolver_dir: Path | str | None = None, preload: Iterable[str] | None = None
    ) -> str:
        """The operator-mode part of a server's config.

        ``resolver``: ``MEMORY`` (every account preloaded, the default), or ``full`` / ``cache``, the built-in
        ``nats`` resolver keeping its JWTs in ``resolver_dir`` (one directory per server), with only the system
        account preloaded. ``preload`` names the accounts to preload instead.
        """
        if resolver not in RESOLVERS:
            raise ValueError(f"resolver {resolver!r}: one of {', '.join(RESOLVERS)}")
        if preload is None:
            preload = self.accounts if resolver == "MEMORY" else ["SYS"]
        entries = ",\n".join(f"  {self.accounts[name][0].public}: {self.accounts[name][1]}" for name in preload)
        if resolver == "MEMORY":
            setting = "MEMORY"
        else:
            if resolver_dir is None:
                raise ValueError(f"a {resolver} resolver needs resolver_dir")
            Path(resolver_dir).mkdir(parents=True, exist_ok=True)
            extra = 'allow_delete: false, interval: "2m"' if resolver == "full" else 'ttl: "2m"'
            setting = f'{{ type: {resolver}, dir: "{resolver_dir}", {extra} }}'
        return (
            f"operator: {self.jwt}\nsystem_account: {self.system.public}\n"
            f"resolver: {setting}\nresolver_preload: {{\n{entries}\n}}\n"
        )
