# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Account JWTs and the built-in ``nats`` account resolver of servers in operator mode, as ``nsc push`` uses it.

What the servers (nats-server ``server/accounts.go``, ``events.go``, ``dirstore.go``) answer, all on the
system account:

- ``$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP``: answered only by servers with a ``full`` resolver, each
  with the raw JWT it holds as the payload (not JSON), or an empty payload when it holds none. A ``cache``
  resolver does not answer; without any ``nats`` resolver nobody does (a 503 no-responders status).
- ``$SYS.REQ.CLAIMS.UPDATE`` (the JWT as the payload): answered by every server with a ``full`` or a
  ``cache`` resolver, each with ``{"server": {"name": ...}, "data": {"account": KEY, "code": 200,
  "message": "jwt updated"}}`` (a cache: ``jwt updated cache``, or ``jwt update cache skipped`` for an
  account it does not use yet), or ``{"server": {...}, "error": {"account": KEY or "n/a", "code": 500,
  "description": "jwt update resulted in error - <reason>"}}``.

A ``full`` resolver stores whatever decodes and validates: a JWT older than the one it holds (the account
rolled back) and a JWT signed by an operator it does not trust (stored, then unusable) both get ``jwt
updated``. Both are refused here, before anything is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.system import (
    NotSystemAccount,
    account_name,
    gather,
    gather_messages,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import format_time
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, poll

LOOKUP_SUBJECT = "$SYS.REQ.ACCOUNT.{account}.CLAIMS.LOOKUP"
UPDATE_SUBJECT = "$SYS.REQ.CLAIMS.UPDATE"
VARZ_SUBJECT = "$SYS.REQ.SERVER.PING.VARZ"
UPDATED = 200  # the code of a ``data`` reply; an ``error`` reply has 500

ACCOUNT_KEY = re.compile(r"^A[A-Z2-7]{55}$")
_JWT = re.compile(r"^[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}$")
_ARMORED = re.compile(r"-----BEGIN NATS ([A-Z ]+?) JWT-----\s*\n\s*(\S+)")
_SEED = re.compile(r"S[A-Z][A-Z2-7]{56}")
_SEED_ARMOR = "NKEY SEED-----"
CONFIRM_INTERVAL = 0.25  # between lookups while waiting for every full resolver to show the JWT

NSC_HINT = "nsc describe account NAME --raw, or the .jwt file under nsc's store"


class AccountJwtError(NatsOpsError):
    """A refusal or failure of this procedure; ``reason`` (returned with the failure) says which."""

    reason = "failed"

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg, reason=self.reason, **details)


class InvalidAccountJwt(AccountJwtError):
    """The text given is not an account JWT: refused before anything is sent."""

    reason = "invalid_jwt"


class SecretInJwt(InvalidAccountJwt):
    """The text holds an nkey seed (a creds or nkey file given by mistake): refused, and masked in the output."""

    reason = "seed_in_jwt"


class NotSystemAccountConnection(AccountJwtError):
    reason = "not_system_account"


class NotOperatorMode(AccountJwtError):
    reason = "not_operator_mode"


class UntrustedIssuer(AccountJwtError):
    reason = "untrusted_issuer"


class OlderThanHeld(AccountJwtError):
    reason = "older_than_held"


class NoNatsResolver(AccountJwtError):
    reason = "no_nats_resolver"


class ServerRefused(AccountJwtError):
    reason = "server_refused"


class NotConfirmed(AccountJwtError):
    reason = "not_confirmed"


# ---------------------------------------------------------------------------------------------- the JWT


def _segment(text: str) -> dict[str, Any]:
    padded = text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError):
        raise ValueError("undecodable") from None
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


@dataclass(frozen=True)
class AccountJwt:
    """An account JWT and its claims, decoded without a signature check (the servers check it)."""

    text: str
    claims: dict[str, Any]

    @property
    def account(self) -> str:
        return str(self.claims["sub"])

    @property
    def name(self) -> str:
        return str(self.claims.get("name") or "")

    @property
    def issuer(self) -> str:
        return str(self.claims.get("iss") or "")

    @property
    def issued_at(self) -> int:
        value = self.claims.get("iat")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def label(self) -> str:
        return f"{self.name} ({self.account})" if self.name else self.account

    def view(self) -> dict[str, Any]:
        """The claims as the diff shows them: who, when, and the account's settings (limits, exports...)."""
        nats = self.claims.get("nats") if isinstance(self.claims.get("nats"), dict) else {}
        shown: dict[str, Any] = {
            "account": self.account,
            "name": self.name,
            "issuer": self.issuer,
            "issued_at": seconds_text(self.claims.get("iat")),
            "expires": seconds_text(self.claims.get("exp")),
            "id": self.claims.get("jti"),
        }
        shown.update({key: value for key, value in sorted(nats.items()) if key not in ("type", "version")})
        return shown


def seconds_text(value: Any) -> str | None:
    """An RFC 3339 time from a JWT's seconds since the epoch (None when absent)."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return format_time(value * 1_000_000_000)


def secrets_in(value: Any) -> set[str]:
    """nkey seeds in the text given as a JWT, and the text itself when it holds one: to be masked everywhere."""
    if not isinstance(value, str):
        return set()
    seeds = set(_SEED.findall(value))
    if seeds or _SEED_ARMOR in value:
        seeds.add(value)
        if value.strip():
            seeds.add(value.strip())
    return seeds


def _unarmored(text: str) -> str:
    """The JWT of nsc's armored form (``-----BEGIN NATS ACCOUNT JWT-----``), or the text as it is."""
    armored = _ARMORED.search(text)
    if armored is None:
        return text
    if armored[1] != "ACCOUNT":
        raise InvalidAccountJwt(
            f"jwt holds a NATS {armored[1].lower()} JWT ('-----BEGIN NATS {armored[1]} JWT-----'), not an account "
            f"JWT: give the account's JWT ({NSC_HINT})"
        )
    return armored[2]


def parse_account_jwt(value: Any) -> AccountJwt:
    """The account JWT given, checked for what it is before anything is sent; the text itself is never shown."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidAccountJwt(f"jwt is empty: give the account's JWT, as nsc writes it ({NSC_HINT})")
    if secrets_in(value):
        raise SecretInJwt(
            "jwt holds an nkey seed (a creds or nkey file?), a secret that must never be sent anywhere: it was "
            f"not sent, and is masked in this task's output. Give the account's JWT instead ({NSC_HINT})"
        )
    text = _unarmored(value.strip()).strip()
    if not _JWT.match(text):
        raise InvalidAccountJwt(
            "jwt is not a JWT (three base64url parts separated by dots): give the account's JWT, as nsc writes it "
            f"({NSC_HINT})"
        )
    header, body, _signature = text.split(".")
    try:
        _segment(header)
        claims = _segment(body)
    except ValueError:
        raise InvalidAccountJwt(
            "jwt is not a JWT: its header or claims do not decode to JSON objects. Check that it was copied whole "
            f"({NSC_HINT})"
        ) from None
    nats = claims.get("nats") if isinstance(claims.get("nats"), dict) else {}
    kind = nats.get("type") or claims.get("type")
    if kind != "account":
        what = f"a NATS {kind} JWT" if isinstance(kind, str) and kind else "a JWT of no NATS type"
        raise InvalidAccountJwt(
            f"jwt is {what}, not an account JWT (its claims' nats.type is {kind!r}, not 'account'): give the "
            f"account's JWT ({NSC_HINT})",
            jwt_type=kind if isinstance(kind, str) else None,
        )
    subject = claims.get("sub")
    if not isinstance(subject, str) or not ACCOUNT_KEY.match(subject):
        raise InvalidAccountJwt(
            f"jwt claims to be an account JWT, but its subject {subject!r} is not an account public key (56 "
            "characters starting with A): it is damaged, or was not made by nsc. Issue it again with nsc"
        )
    return AccountJwt(text, claims)


def decoded_or_none(text: str) -> AccountJwt | None:
    """A JWT a server holds, or None when it does not decode as an account JWT."""
    try:
        return parse_account_jwt(text)
    except InvalidAccountJwt:
        return None


# ---------------------------------------------------------------------------------------------- the servers


@dataclass
class Holding:
    """What the servers with a ``full`` resolver hold for one account: one entry per server that answered."""

    copies: list[str]  # "" for a server that holds none

    @property
    def answered(self) -> int:
        return len(self.copies)

    def holds_exactly(self, wanted: AccountJwt) -> bool:
        return bool(self.copies) and all(copy == wanted.text for copy in self.copies)

    def newest(self) -> AccountJwt | None:
        held = [jwt for jwt in map(decoded_or_none, {copy for copy in self.copies if copy}) if jwt is not None]
        return max(held, key=lambda jwt: jwt.issued_at, default=None)

    def lacking(self, wanted: AccountJwt) -> int:
        return sum(1 for copy in self.copies if copy != wanted.text)


@dataclass
class PushResult:
    acknowledged: list[str] = field(default_factory=list)  # server names
    refused: dict[str, str] = field(default_factory=dict)  # server name -> the server's description


def operator_keys(varz: dict[str, Any]) -> tuple[set[str], list[str]]:
    """The keys a server trusts to sign accounts (each operator's own and its signing keys), and the operators'
    names, from its VARZ."""
    keys: set[str] = set()
    names: list[str] = []
    for claim in varz.get("trusted_operators_claim") or []:
        if not isinstance(claim, dict):
            continue
        names.append(str(claim.get("name") or claim.get("sub") or "?"))
        keys.add(str(claim.get("sub") or ""))
        nats = claim.get("nats") if isinstance(claim.get("nats"), dict) else {}
        keys.update(str(key) for key in nats.get("signing_keys") or [] if isinstance(key, str))
    keys.discard("")
    return keys, names


class AccountResolver:
    """The built-in ``nats`` resolver of a cluster's servers, through the system account."""

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self.varz: dict[str, dict[str, Any]] = {}  # by server name, from servers()

    async def servers(self) -> dict[str, dict[str, Any]]:
        """Every server that answers, by name, with its VARZ; refuses a connection that is not the system
        account's, and servers that are not in operator mode."""
        try:
            answers = await gather(self.client, VARZ_SUBJECT, None, self.timeout)
        except NotSystemAccount:
            answers = []
        self.varz = {
            answer["server"]["name"]: answer.get("data") or {}
            for answer in answers
            if isinstance(answer.get("server"), dict) and answer["server"].get("name") and not answer.get("error")
        }
        if not self.varz:
            account = await account_name(self.client, self.timeout)
            which = f"account {account}" if account else "an account"
            raise NotSystemAccountConnection(
                f"the connection is in {which}, not the system account: no server answers $SYS.REQ.SERVER.PING. "
                "Account JWTs are pushed with the system account's credentials (creds of a user of the operator's "
                "system account, as 'nsc generate creds -a SYS' makes them)",
                connected_account=account or None,
            )
        plain = sorted(name for name, varz in self.varz.items() if not operator_keys(varz)[0])
        if plain:
            raise NotOperatorMode(
                f"server(s) {', '.join(plain)} are not in operator mode (their config names no operator): their "
                "accounts come from the config file, not from account JWTs. Change those accounts in the config "
                "(the natsops.jetstream.nats_server role), or run the servers in operator mode with a nats resolver "
                "(operator, system_account and resolver: {type: full, dir: ...}, as 'nsc generate config "
                "--nats-resolver' writes them). Nothing was sent",
                servers=plain,
            )
        return self.varz

    def require_trusted(self, wanted: AccountJwt) -> None:
        """Refuse a JWT signed by a key no server trusts: a full resolver would store it, and the account would
        then be unusable."""
        distrusting = {name: operator_keys(varz) for name, varz in self.varz.items()}
        distrusting = {name: keys for name, keys in distrusting.items() if wanted.issuer not in keys[0]}
        if distrusting:
            operators = sorted({operator for keys in distrusting.values() for operator in keys[1]})
            raise UntrustedIssuer(
                f"the JWT of account {wanted.label} is signed by {wanted.issuer or 'no issuer'}, which is neither "
                f"the operator the servers trust ({', '.join(operators)}) nor one of its signing keys (servers "
                f"{', '.join(sorted(distrusting))}). The servers would store it and then refuse every user of the "
                "account. Issue it with the right operator's nsc environment ('nsc env -o OPERATOR'). Nothing "
                "was sent",
                issuer=wanted.issuer,
                trusted_operators=operators,
            )

    async def lookup(self, account: str) -> Holding:
        """What every server with a ``full`` resolver holds for the account (none answering: no copies)."""
        messages = await self._collect(LOOKUP_SUBJECT.format(account=account), b"")
        return Holding([_text(message.data) for message in messages or []])

    async def push(self, wanted: AccountJwt) -> PushResult | None:
        """Send the JWT to every server's resolver; None when no server takes such requests (no nats resolver)."""
        # Every server's resolver answers an update (a cache one too), writing it first: wait for each.
        messages = await self._collect(UPDATE_SUBJECT, wanted.text.encode(), every=True)
        if messages is None:
            return None
        result = PushResult()
        for index, message in enumerate(messages, 1):
            try:
                reply = json.loads(message.data)
            except ValueError:
                reply = None
            if not isinstance(reply, dict):
                reply = {}
            server = str((reply.get("server") or {}).get("name") or f"(unnamed server #{index})")
            error, data = reply.get("error"), reply.get("data")
            if isinstance(error, dict):
                result.refused[server] = str(error.get("description") or f"error {error.get('code')}")
            elif isinstance(data, dict) and data.get("code") == UPDATED:
                result.acknowledged.append(server)
            else:
                result.refused[server] = "a reply that is neither an acknowledgement nor an error"
        result.acknowledged.sort()
        return result

    async def confirm(self, wanted: AccountJwt) -> Holding:
        """Look up until every server with a full resolver that answers holds exactly this JWT, or time runs out."""
        return await poll(
            lambda: self.lookup(wanted.account),
            Deadline.after(self.timeout),
            CONFIRM_INTERVAL,
            until=lambda holding: holding.holds_exactly(wanted),
            overrun=True,
        )

    async def _collect(self, subject: str, payload: bytes, every: bool = False) -> list[Any] | None:
        """Every reply within ``timeout``, done once every server known from VARZ has answered; None for a 503
        no-responders status (nobody subscribes)."""
        expected = max(len(self.varz), 1)
        try:
            return await gather_messages(self.client, subject, payload, self.timeout, expected, every)
        except NoAnswer:
            return None


def _text(data: bytes) -> str:
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        return "(not text)"
