#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: account_jwt
short_description: Push an account JWT to the nats resolver of servers in operator mode
version_added: 0.1.0
description:
  - "Adds or updates an account of servers in operator mode (decentralized JWT authentication) by pushing its JWT
    to their built-in C(nats) account resolver through C($SYS.REQ.CLAIMS.UPDATE), as C(nsc push) does. No server
    restarts: the servers apply the new claims (limits, exports, imports, signing keys...) at once, and the
    clients already connected stay connected."
  - "Needs the servers in operator mode with a C(nats) resolver (C(resolver: {type: full, dir: ...}), or
    C(cache)), and a connection as a user of the B(system account) (usually O(creds)). A connection of another
    account, servers not in operator mode, and servers with a C(MEMORY) or URL resolver are each refused with a
    message that says which."
  - "The JWT is decoded first, without a signature check (the servers check it): a text that is not a JWT, a JWT
    that is not an account's, and one whose subject is not an account public key are refused before anything is
    sent. So are a JWT signed by a key that is neither the operator the servers trust nor one of its signing keys,
    and a JWT older (by its issue time) than the one the servers hold: nats-server would store both (the second
    rolls the account back), answering that all went well."
  - "Idempotent: what the servers with a C(full) resolver hold is read first
    (C($SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP)); when every one of them holds exactly this JWT, nothing is sent.
    Otherwise the replies of every server are collected; any server's error fails the task with the server's own
    words, and the servers that acknowledged are named. After the push the same lookup confirms that every server
    with a C(full) resolver holds exactly this JWT. O(timeout) bounds each wait for the servers' answers."
  - "Servers with a C(cache) resolver acknowledge the push but keep the JWT only for an account they already use;
    they fetch the others from a C(full) resolver when a client needs them. A text that holds an nkey seed (a
    creds or nkey file given by mistake) is refused, and masked wherever the task's output shows it."
  - "A server enables a new account's JetStream when it first loads the account: for a moment after the push, the
    very first JetStream request of the account (answered by the meta leader) may be refused with C(JetStream not
    enabled for account) (err_code 10039). Applications should retry it; the modules of this collection ask again
    for up to 5 seconds before reporting it."
options:
  jwt:
    description:
      - The account JWT, as nsc writes it (C(nsc describe account NAME --raw), or the C(.jwt) file of the account in
        nsc's store), read for example with the P(ansible.builtin.file#lookup) lookup. Surrounding whitespace and
        nsc's C(-----BEGIN NATS ACCOUNT JWT-----) armor are accepted.
      - A JWT is signed public claims, not a secret, and shows in the task's output like any argument.
    type: str
    required: true
  state:
    description:
      - V(present) pushes the JWT unless the servers hold exactly it already.
      - "Deleting an account is not supported: C($SYS.REQ.CLAIMS.DELETE) takes a request signed by the operator's
        own key (not the system account's credentials), and needs C(allow_delete: true) in the resolver's config.
        Use C(nsc delete account) and C(nsc push --prune) where the operator key lives, or push a JWT that takes
        the account's rights away (C(nsc edit account --conns 0 --js-disable)) to shut it out at once."
    type: str
    choices: [present]
    default: present
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reads what the resolvers hold and reports whether the JWT would be pushed; sends nothing.
  diff_mode:
    support: full
    details: The decoded claims of the JWT the resolvers held (newest first) and of the one pushed (name, issuer,
      issue and expiry times, limits, exports, imports, signing keys...).
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: full
    details: Only servers with a C(full) resolver answer lookups; with C(cache) resolvers alone every run pushes.
seealso:
  - name: NATS resolver
    description: The built-in nats account resolver, its full and cache modes, and C(nsc push).
    link: https://docs.nats.io/running-a-nats-service/configuration/securing_nats/auth_intro/jwt/resolver
  - name: Decentralized JWT authentication
    description: Operators, accounts and users, and how nsc issues their JWTs.
    link: https://docs.nats.io/running-a-nats-service/configuration/securing_nats/auth_intro/jwt
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Add the ORDERS account (or update its limits), without restarting any server
  natsops.jetstream.account_jwt:
    servers: [nats://nats1:4222, nats://nats2:4222, nats://nats3:4222]
    creds: /etc/nats/sys.creds
    jwt: "{{ lookup('ansible.builtin.file', 'accounts/ORDERS.jwt') }}"
  delegate_to: localhost
  run_once: true
  register: orders

- name: See what would change, with the claims before and after
  natsops.jetstream.account_jwt:
    context: prod-sys
    jwt: "{{ lookup('ansible.builtin.pipe', 'nsc describe account ORDERS --raw') }}"
  check_mode: true
  diff: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
account:
  description: The account's public key (the JWT's subject).
  returned: always
  type: str
  sample: ACZ6TUHFMMFFGNPTNKMTWNWTQX3AJAOGMIYXAYAQT6G4C6WVKNUYEZCX
name:
  description: The account's name, as the JWT gives it.
  returned: always
  type: str
  sample: ORDERS
issued_at:
  description: When the JWT pushed was issued (its C(iat)), RFC 3339 in UTC.
  returned: always
  type: str
  sample: "2026-11-29T10:15:00Z"
previous_issued_at:
  description:
    - When the newest JWT the resolvers held before was issued; V(null) when they held none (a new account), or
      when no server with a C(full) resolver answered.
  returned: always
  type: str
  sample: "2026-10-02T08:00:00Z"
servers:
  description:
    - Names of the servers that acknowledged the push, sorted; empty when nothing was pushed (the servers held the
      JWT already, or check mode).
  returned: always
  type: list
  elements: str
  sample: [nats1, nats2, nats3]
msg:
  description: What was (or would be) done.
  returned: always
  type: str
  sample: "pushed the JWT of account ORDERS (ACZ6...) issued at 2026-11-29T10:15:00Z, replacing the one issued at
    2026-10-02T08:00:00Z: acknowledged by nats1, nats2, nats3"
reason:
  description:
    - On failure, what kind of failure it was, to decide on in a playbook rather than on the message's words.
    - V(invalid_jwt), V(seed_in_jwt), V(not_system_account), V(not_operator_mode), V(untrusted_issuer),
      V(older_than_held), V(no_nats_resolver), V(server_refused) (with C(refused), each server's own words),
      V(not_confirmed).
  returned: failure
  type: str
  sample: older_than_held
diff:
  description: The decoded claims before (the newest JWT held, empty for a new account) and after.
  returned: with C(--diff)
  type: dict
"""

from functools import partial
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.cluster.account_claims import (
    AccountJwt,
    AccountResolver,
    Holding,
    NoNatsResolver,
    NotConfirmed,
    OlderThanHeld,
    PushResult,
    ServerRefused,
    parse_account_jwt,
    seconds_text,
    secrets_in,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    nats_argument_spec,
    nats_connection,
    resolve_options,
    run_procedure,
)

NO_FULL_RESOLVER = (
    "no server answered the lookup of account {label}: none has a full nats resolver (resolver: {{type: full}}), "
    "the only kind that answers lookups, so what the servers hold could not be read and the JWT is pushed on every "
    "run. Servers with a cache resolver keep it only for an account they already use, and fetch the others from a "
    "full resolver"
)


class AccountJwtModule(NatsModule):
    """NatsModule that also masks an nkey seed given as the JWT by mistake, wherever the result shows it."""

    def secrets_in_params(self, params: dict[str, Any]) -> set[str]:
        return super().secrets_in_params(params) | secrets_in(params.get("jwt"))


def refuse_older(wanted: AccountJwt, previous: AccountJwt | None) -> None:
    """A full resolver stores an older JWT too, rolling the account back: refused here."""
    if previous is not None and previous.issued_at > wanted.issued_at:
        raise OlderThanHeld(
            f"the JWT of account {wanted.label} was issued at {seconds_text(wanted.issued_at)}, before the one the "
            f"servers hold ({seconds_text(previous.issued_at)}): pushing it would roll the account back to older "
            "claims. Nothing was sent. Edit the account with nsc ('nsc edit account', which issues a new JWT) and "
            "push that one",
            issued_at=seconds_text(wanted.issued_at),
            previous_issued_at=seconds_text(previous.issued_at),
        )


def acknowledged_by(wanted: AccountJwt, pushed: PushResult | None, servers: list[str], said: list[str]) -> list[str]:
    """The servers that acknowledged the push; any refusal, or no answer at all, fails the task.

    ``said``: what the server reported on the connection meanwhile (a permissions violation, for a user of the
    system account that may not publish there).
    """
    if pushed is None or not (pushed.acknowledged or pushed.refused):
        reported = f"; the server reported on this connection: {'; '.join(said)}. Otherwise, " if said else ": "
        raise NoNatsResolver(
            f"no server {'takes' if pushed is None else 'answered'} account JWT updates ($SYS.REQ.CLAIMS.UPDATE)"
            f"{reported}servers {', '.join(servers)} are in operator mode, but none has the nats resolver (resolver: "
            "{type: full, dir: ...}, or cache). A MEMORY resolver takes accounts only from the config "
            "(resolver_preload, then a reload); a URL resolver from its account server. Nothing was changed",
            server_errors=said,
        )
    if pushed.refused:
        reasons: dict[str, list[str]] = {}
        for server, description in sorted(pushed.refused.items()):
            reasons.setdefault(description, []).append(server)
        words = "; ".join(f"{', '.join(names)} said: {description}" for description, names in reasons.items())
        accepted = ", ".join(pushed.acknowledged)
        raise ServerRefused(
            f"the servers refused the JWT of account {wanted.label}. {words}. "
            + (
                f"Servers {accepted} accepted it and use it now. "
                if accepted
                else "No server accepted it: nothing was changed. "
            )
            + "Fix the account with nsc and push it again",
            refused=pushed.refused,
            servers=pushed.acknowledged,
        )
    return pushed.acknowledged


def silent_servers(servers: list[str], acknowledged: list[str], timeout: float) -> list[str]:
    missing = sorted(set(servers) - set(acknowledged))
    if not missing:
        return []
    return [
        f"server(s) {', '.join(missing)} did not acknowledge the JWT within {timeout:g}s: they do not use the nats "
        "resolver, or answered too late. A full resolver takes what it lacks from the others at its sync interval "
        "(2 minutes by default)"
    ]


def confirmed(wanted: AccountJwt, holding: Holding, timeout: float) -> None:
    if not holding.holds_exactly(wanted):
        raise NotConfirmed(
            f"after the push, {holding.lacking(wanted)} of the {holding.answered} servers with a full resolver that "
            f"answered the lookup still do not hold this JWT of account {wanted.label} (after {timeout:g}s): they "
            "hold another one, or none. Run the task again; if it fails the same way, read the servers' logs "
            "(DirResolver lines)",
            answered=holding.answered,
            lacking=holding.lacking(wanted),
        )


def summary(wanted: AccountJwt, previous: AccountJwt | None, changed: bool, check_mode: bool, acks: list[str]) -> str:
    what = f"the JWT of account {wanted.label} issued at {seconds_text(wanted.issued_at)}"
    if not changed:
        return f"every server with a full resolver already holds {what}"
    replacing = f"replacing the one issued at {seconds_text(previous.issued_at)}" if previous else "a new account"
    if check_mode:
        return f"would push {what}, {replacing}"
    return f"pushed {what}, {replacing}: acknowledged by {', '.join(acks)}"


async def push_account_jwt(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    wanted = parse_account_jwt(params["jwt"])
    warnings: list[str] = []
    acknowledged: list[str] = []
    async with nats_connection(options) as connection:
        resolver = AccountResolver(connection.client, options["timeout"])
        servers = sorted(await resolver.servers())
        resolver.require_trusted(wanted)
        held = await resolver.lookup(wanted.account)
        previous = held.newest()
        refuse_older(wanted, previous)
        changed = not held.holds_exactly(wanted)
        if not held.answered:
            warnings.append(NO_FULL_RESOLVER.format(label=wanted.label))
        if changed and not check_mode:
            pushed = await resolver.push(wanted)
            acknowledged = acknowledged_by(wanted, pushed, servers, connection.async_errors)
            warnings += silent_servers(servers, acknowledged, options["timeout"])
            if held.answered:
                confirmed(wanted, await resolver.confirm(wanted), options["timeout"])
    result = {
        "changed": changed,
        "account": wanted.account,
        "name": wanted.name,
        "issued_at": seconds_text(wanted.issued_at),
        "previous_issued_at": seconds_text(previous.issued_at) if previous else None,
        "servers": acknowledged,
        "msg": summary(wanted, previous, changed, check_mode, acknowledged),
        "warnings": warnings,
    }
    if diff_mode:
        before = previous.view() if previous else {}
        result["diff"] = {"before": before, "after": wanted.view() if changed else before}
    return result


def main() -> None:
    module = AccountJwtModule(
        argument_spec=nats_argument_spec(
            jwt={"type": "str", "required": True, "no_log": False},
            state={"type": "str", "choices": ["present"], "default": "present"},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, partial(push_account_jwt, diff_mode=module._diff))


if __name__ == "__main__":
    main()
