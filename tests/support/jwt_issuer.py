"""Just enough of nsc to run a server in operator mode: operator, account and user JWTs, and creds files.

JWTs are signed with ed25519 nkeys as nats-server verifies them (header ``ed25519-nkey``, claims
version 2). Accounts are preloaded into a MEMORY resolver, so no account server is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
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


def encode_jwt(issuer: Identity, subject: str, name: str, nats: dict[str, Any]) -> str:
    claims = {
        "iat": int(time.time()),
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


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1}
JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


class Operator:
    """An operator with a system account; make accounts and users under it."""

    def __init__(self) -> None:
        self.key = Identity.new(nkeys.PREFIX_BYTE_OPERATOR)
        self.accounts: dict[str, tuple[Identity, str]] = {}
        self.system = self.account("SYS", jetstream=False)
        self.jwt = encode_jwt(
            self.key, self.key.public, "OP", {"type": "operator", "system_account": self.system.public}
        )

    def account(self, name: str, jetstream: bool = True) -> Identity:
        key = Identity.new(nkeys.PREFIX_BYTE_ACCOUNT)
        limits = {**UNLIMITED, "leaf": -1, **(JETSTREAM if jetstream else {})}
        token = encode_jwt(self.key, key.public, name, {"type": "account", "limits": limits})
        self.accounts[name] = (key, token)
        return key

    def creds(self, account: str, user: str = "user") -> str:
        """A creds file's content for a new user of ``account``."""
        account_key = self.accounts[account][0]
        user_key = Identity.new(nkeys.PREFIX_BYTE_USER)
        token = encode_jwt(account_key, user_key.public, user, {"type": "user", "pub": {}, "sub": {}, **UNLIMITED})
        return (
            f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{user_key.seed.decode()}\n------END USER NKEY SEED------\n"
        )

    def server_config(self) -> str:
        preload = ",\n".join(f"  {key.public}: {token}" for key, token in self.accounts.values())
        return (
            f"operator: {self.jwt}\nsystem_account: {self.system.public}\n"
            f"resolver: MEMORY\nresolver_preload: {{\n{preload}\n}}\n"
        )
