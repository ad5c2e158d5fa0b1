# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Requests that only the system account may make: server pings, JSZ, meta-group membership.

Every server answers ``$SYS.REQ.SERVER.PING.*`` itself, so one request gathers many replies; the
servers that do not answer are the ones that are down or cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import describe_client_error
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline

# After the first answer, stop gathering once no other server has answered for this long.
GATHER_SETTLE = 0.5
PING = "$SYS.REQ.SERVER.PING"  # + ".VARZ", ".JSZ", ...: every server answers; bare: STATSZ


class NotSystemAccount(NatsOpsError):
    """The credentials are not the system account's: $SYS requests go unanswered."""


NOT_SYSTEM_ACCOUNT = (
    "the credentials are not those of the system account: no server answers $SYS.REQ.SERVER.PING "
    "(the server's system_account, often SYS). Meta-group facts and changes need them; servers from "
    "2.10.27 on drop $JS.API.SERVER.* requests from other accounts without an answer"
)


async def gather(client: Any, subject: str, body: dict[str, Any] | None, timeout: float) -> list[dict[str, Any]]:
    """Send one request that every server answers; return every JSON answer that came within ``timeout``.

    Gathering settles once no server has answered for a moment, and a server slow to answer (a busy machine)
    would pass for one that is down. So the answering servers' routes are asked for too (ROUTEZ, at the same
    time), and every routed server missing from the answers is asked once more on its own, up to ``timeout``.
    Nobody subscribed (503) means the connection is not the system account's.
    """
    payload = json.dumps(body or {}).encode()
    try:
        messages, routes = await asyncio.gather(
            gather_messages(client, subject, payload, timeout),
            gather_messages(client, PING + ".ROUTEZ", b"{}", timeout),
        )
    except NoAnswer:
        raise NotSystemAccount(NOT_SYSTEM_ACCOUNT) from None
    answers = _json_answers(messages)
    answered = {str((answer.get("server") or {}).get("id")) for answer in answers}
    routed = {
        str(route.get("remote_id"))
        for answer in _json_answers(routes)
        for route in (answer.get("data") or {}).get("routes") or []
        if route.get("remote_id")
    }
    late = sorted(routed - answered)
    if late and subject.startswith(PING):
        kind = subject[len(PING) :].lstrip(".") or "STATSZ"  # the bare PING is STATSZ
        asked = [_ask_one(client, f"$SYS.REQ.SERVER.{server_id}.{kind}", payload, timeout) for server_id in late]
        answers += _json_answers([message for message in await asyncio.gather(*asked) if message is not None])
    return answers


async def _ask_one(client: Any, subject: str, payload: bytes, timeout: float) -> Any | None:
    try:
        return await client.request(subject, payload, timeout=timeout)
    except Exception:  # no answer in time, or none at all: the server counts as not answering
        return None


def _json_answers(messages: list[Any]) -> list[dict[str, Any]]:
    answers = []
    for message in messages:
        try:
            answer = json.loads(message.data)
        except ValueError:
            continue
        if isinstance(answer, dict):
            answers.append(answer)
    return answers


async def gather_messages(
    client: Any, subject: str, payload: bytes, timeout: float, expected: int | None = None, every: bool = False
) -> list[Any]:
    """Send one request that several servers answer; return every reply that came within ``timeout``, settling
    once no further server has answered for a moment, or as soon as ``expected`` have. With ``every`` (each of the
    ``expected`` servers answers this request) it never settles early: a server busy with it is not a server gone.

    Raises NoAnswer when nobody subscribes to the subject (a 503 status). A connection lost meanwhile fails
    it: a partial gathering would pass for servers being down.
    """
    try:
        return await _gather_messages(client, subject, payload, timeout, expected, every)
    except NatsOpsError:
        raise
    except Exception as exc:  # nats-py's own errors, from subscribing, publishing or flushing
        raise NatsOpsError(f"asking every server ({subject}) failed: {describe_client_error(exc)}") from None


async def _gather_messages(
    client: Any, subject: str, payload: bytes, timeout: float, expected: int | None, every: bool
) -> list[Any]:
    inbox = client.new_inbox()
    subscription = await client.subscribe(inbox)
    messages: list[Any] = []
    try:
        await client.publish(subject, payload, reply=inbox)
        await client.flush(timeout)
        deadline = Deadline.after(timeout)
        while (expected is None or len(messages) < expected) and (left := deadline.remaining()) > 0:
            try:
                settle = messages and not (every and expected)
                message = await subscription.next_msg(timeout=min(left, GATHER_SETTLE) if settle else left)
            except Exception:  # nats-py's TimeoutError: nobody else is going to answer
                break
            if (message.headers or {}).get("Status") == "503":
                raise NoAnswer(f"nothing answers {subject}")
            messages.append(message)
    finally:
        with contextlib.suppress(Exception):  # the connection may be gone: said below
            await subscription.unsubscribe()
    if client.is_closed:
        raise NatsOpsError(f"asking every server ({subject}) failed: the connection to the server was lost")
    return messages


async def account_name(client: Any, timeout: float) -> str:
    """The account the connection's credentials belong to ($SYS.REQ.USER.INFO, open to every account)."""
    try:
        reply = await client.request("$SYS.REQ.USER.INFO", b"", timeout=timeout)
        data = json.loads(reply.data).get("data") or {}
    except Exception:  # an old server, or no answer: the name is only informative
        return ""
    return str(data.get("account_name") or data.get("account") or "")


class SystemApi:
    """The system account's view of a cluster."""

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def online_servers(self) -> dict[str, dict[str, Any]]:
        """Every server that answers a ping, by name, with what it says about itself."""
        answers = await gather(self.client, "$SYS.REQ.SERVER.PING", None, self.timeout)
        if not answers:
            raise NotSystemAccount(NOT_SYSTEM_ACCOUNT)
        return {answer["server"]["name"]: answer["server"] for answer in answers if answer.get("server")}

    async def jsz(self, streams: bool = False) -> dict[str, dict[str, Any]]:
        """JSZ of every server that answers, by server name; with ``streams``, its local streams and consumers."""
        body = {"accounts": True, "streams": True, "consumer": True, "config": True} if streams else {}
        answers = await gather(self.client, "$SYS.REQ.SERVER.PING.JSZ", body, self.timeout)
        return {
            answer["server"]["name"]: answer.get("data") or {}
            for answer in answers
            if answer.get("server") and not answer.get("error")
        }
