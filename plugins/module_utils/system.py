# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Requests that only the system account may make: server pings, JSZ, meta-group membership.

Every server answers ``$SYS.REQ.SERVER.PING.*`` itself, so one request gathers many replies; the
servers that do not answer are the ones that are down or cut off.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.jsapi import describe_client_error
from ansible_collections.natsops.jetstream.plugins.module_utils.waiting import Deadline

# After the first answer, stop gathering once no other server has answered for this long.
GATHER_SETTLE = 0.5


class NotSystemAccount(NatsOpsError):
    """The credentials are not the system account's: $SYS requests go unanswered."""


NOT_SYSTEM_ACCOUNT = (
    "the credentials are not those of the system account: no server answers $SYS.REQ.SERVER.PING "
    "(the server's system_account, often SYS). Meta-group facts and changes need them; servers from "
    "2.10.27 on drop $JS.API.SERVER.* requests from other accounts without an answer"
)


async def gather(client: Any, subject: str, body: dict[str, Any] | None, timeout: float) -> list[dict[str, Any]]:
    """Send one request that every server answers; return every JSON answer that came within ``timeout``.

    Nobody subscribed (503) means the connection is not the system account's.
    """
    try:
        messages = await gather_messages(client, subject, json.dumps(body or {}).encode(), timeout)
    except NoAnswer:
        raise NotSystemAccount(NOT_SYSTEM_ACCOUNT) from None
    answers = []
    for message in messages:
        try:
            answers.append(json.loads(message.data))
        except ValueError:
            continue
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
