# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""A thin JetStream API client over nats-py requests.

Replies stay raw dicts: nats-py's dataclasses drop fields they do not know, and a backup must keep
every field the server sent.
"""

from __future__ import annotations

import asyncio
import functools
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import Connection, nats_connection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError, NoAnswer
from ansible_collections.natsops.jetstream.plugins.module_utils.core.nats_client import (
    NatsError,
    NatsTimeoutError,
    NoRespondersError,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, retry

# Seconds to wait for one consumer's leader to answer while polling for it.
LEADER_POLL_TIMEOUT = 0.5

# Seconds a "JetStream not enabled for account" answer is asked again. A server loads an operator-mode
# account on its first use, from its resolver, and enables its JetStream a moment later: a request in
# that moment (the first one of a freshly pushed or fetched account, through a cache resolver) is
# refused though the account has JetStream. An account truly without it fails once this has passed.
ACCOUNT_WARMUP = 5.0
ACCOUNT_WARMUP_PAUSE = 0.25

# What an operator should do about the JetStream errors these modules meet, by err_code.
ERROR_ADVICE = {
    10002: "the account or server has no room for this stream: raise the JetStream limits or free space",
    10005: "no server matches the placement: lower replicas, or change cluster or tags",
    10008: "the cluster has no meta leader: restore quorum (a majority of servers up) and retry",
    10010: "this needs a clustered JetStream server",
    10023: "the server has no room for this stream: raise its JetStream limits or free space",
    10025: "the server refused a field of the request: it may be older than this collection expects",
    10028: "the account or server has no room for this stream: raise the JetStream limits",
    10039: "JetStream is not enabled for this account: enable it in the server's account configuration",
    10040: "the peer is not a member of this stream's group",
    10041: "the Raft group refused the change",
    10044: "the peer is not a member of the meta group",
    10047: "the account or server has no room for this stream: raise the JetStream limits",
    10056: "the stream name in the backup does not match the stream being restored",
    10058: "a stream of that name already exists: choose if_exists skip or replace, or delete it first",
    10059: "check the stream name, the account of the credentials and the JetStream domain",
    10062: "the server could not apply the backup data; its description above says why (the data damaged, "
    "a setting the target cannot hold, an account limit)",
    10064: "the server could not take the snapshot (a snapshot of this stream may already be running; "
    "memory-storage streams cannot be snapshotted)",
    10074: "this server is not clustered: restore with replicas: 1",
    10130: "a stream of that name already exists: choose if_exists skip or replace, or delete it first",
    10202: "a membership change is already in progress: retry shortly",
}

STREAM_NOT_FOUND = 10059
NO_SUITABLE_PEERS = 10005
NO_META_LEADER = 10008
MEMBERSHIP_CHANGE_IN_PROGRESS = 10202
STREAM_ASSIGNMENT_ERROR = 10048  # generic; e.g. "restore for stream ... is stalled" (no data for 5 s)
CONSUMER_NOT_FOUND = 10014
STREAM_NAME_IN_USE = (10058, 10130)
RESTORE_DATA_REJECTED = 10062  # the server could not apply a restore's data
NO_MESSAGE_FOUND = 10037
NOT_ENABLED_FOR_ACCOUNT = 10039


class JetStreamApiError(NatsOpsError):
    """An error reply of the JetStream API."""

    def __init__(self, subject: str, error: dict[str, Any]) -> None:
        self.code = int(error.get("code") or 0)
        self.err_code = int(error.get("err_code") or 0)
        self.description = str(error.get("description") or "")
        advice = ERROR_ADVICE.get(self.err_code)
        msg = f"JetStream API {subject} failed: {self.description} (code {self.code}, err_code {self.err_code})"
        if advice:
            msg += f": {advice}"
        super().__init__(msg, err_code=self.err_code, code=self.code, description=self.description)


class JetStreamApi:
    """Requests to ``$JS.API`` (or ``$JS.<domain>.API``) with JSON bodies and error mapping."""

    def __init__(self, client: Any, domain: str | None = None, timeout: float = 10.0) -> None:
        self.client = client
        self.prefix = f"$JS.{domain}.API" if domain else "$JS.API"
        self.timeout = timeout
        self._account_info: dict[str, Any] | None = None

    def using(self, client: Any) -> JetStreamApi:
        """The same API (prefix, timeout) over another connection."""
        other = JetStreamApi(client, timeout=self.timeout)
        other.prefix = self.prefix
        return other

    def subject(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    async def request(self, suffix: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> dict:
        return await retry(
            functools.partial(self._request_once, suffix, body, timeout),
            Deadline.after(min(ACCOUNT_WARMUP, timeout or self.timeout)),
            ACCOUNT_WARMUP_PAUSE,
            retry_on=lambda exc: isinstance(exc, JetStreamApiError) and exc.err_code == NOT_ENABLED_FOR_ACCOUNT,
        )

    async def _request_once(self, suffix: str, body: dict[str, Any] | None, timeout: float | None) -> dict:
        subject = self.subject(suffix)
        payload = json.dumps(body).encode() if body is not None else b""
        wait = timeout or self.timeout
        try:
            reply = await self.client.request(subject, payload, timeout=wait)
        except NoRespondersError:
            raise NoAnswer(
                f"nothing answers {subject}: JetStream is not enabled for this account, "
                "or the JetStream domain is wrong"
            ) from None
        except (NatsTimeoutError, asyncio.TimeoutError):
            if getattr(self.client, "is_closed", False):  # the reply can no longer come: say why
                raise NatsOpsError(f"JetStream API {subject} failed: the connection to the server was lost") from None
            raise NoAnswer(
                f"JetStream API {subject} did not answer within {wait}s: in a cluster this means the stream has "
                "no leader or does not exist, or the meta group has no leader; raise timeout if the server is busy"
            ) from None
        except NatsError as exc:
            raise NatsOpsError(f"JetStream API {subject} failed: {describe_client_error(exc)}") from None
        try:
            data = json.loads(reply.data)
        except ValueError:
            raise NatsOpsError(f"JetStream API {subject} answered with something that is not JSON") from None
        if isinstance(data, dict) and data.get("error"):
            raise JetStreamApiError(subject, data["error"])
        return data

    async def account_info(self) -> dict[str, Any]:
        if self._account_info is None:
            self._account_info = await self.request("INFO")
        return self._account_info

    async def api_level(self) -> int:
        """The JetStream API level; servers before 2.11 report none (level 0)."""
        info = await self.account_info()
        return int((info.get("api") or {}).get("level") or 0)

    async def stream_info(self, stream: str) -> dict[str, Any] | None:
        """The stream's info, or None when the account has no such stream."""
        try:
            return await self.request(f"STREAM.INFO.{stream}")
        except JetStreamApiError as exc:
            if exc.err_code == STREAM_NOT_FOUND:
                return None
            raise

    async def _paged(self, suffix: str, key: str, body: dict[str, Any] | None = None) -> list[Any]:
        items: list[Any] = []
        while True:
            page = await self.request(suffix, {**(body or {}), "offset": len(items)})
            batch = page.get(key) or []
            items.extend(batch)
            if not batch or len(items) >= int(page.get("total") or 0):
                return items

    async def streams(self) -> list[dict[str, Any]]:
        """Info of every stream in the account."""
        return (await self.stream_list())[0]

    async def stream_list(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Info of every stream in the account, and the names of those whose leader did not answer.

        In a cluster the meta leader asks every stream's leader; a stream with none (all its replicas
        down, or an election under way) is only named in the reply's ``missing``, after a few seconds.
        """
        return await self._listed("STREAM.LIST", "streams")

    async def consumer_list(self, stream: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Info of every consumer of the stream, and the names of those whose leader did not answer."""
        return await self._listed(f"CONSUMER.LIST.{stream}", "consumers")

    async def _listed(self, suffix: str, key: str) -> tuple[list[dict[str, Any]], list[str]]:
        infos: list[dict[str, Any]] = []
        missing: list[str] = []
        while True:
            # The offset counts the missing too; the server waits a few seconds for them before answering.
            page = await self.request(suffix, {"offset": len(infos) + len(missing)}, timeout=self.timeout + 5)
            batch = page.get(key) or []
            gone = [name for name in page.get("missing") or [] if name not in missing]
            infos.extend(batch)
            missing.extend(gone)
            if not (batch or gone) or len(infos) + len(missing) >= int(page.get("total") or 0):
                return infos, missing

    async def consumer_names(self, stream: str) -> list[str]:
        return await self._paged(f"CONSUMER.NAMES.{stream}", "consumers")

    async def consumers(self, stream: str) -> list[dict[str, Any]]:
        return (await self.consumer_list(stream))[0]

    async def consumer_positions(self, stream: str) -> dict[str, dict[str, int]]:
        """Where each durable consumer of the stream stands, by name.

        Ephemeral ones (watchers, ordered consumers) are left out: a restore does not keep them (servers
        before 2.15 drop them; 2.15 lets them expire), so they are nothing a restore can be checked against.
        """
        return {info["name"]: consumer_position(info) for info in await self.consumers(stream) if is_durable(info)}

    async def led_consumer_positions(self, stream: str, deadline: Deadline) -> dict[str, dict[str, int]]:
        """Where each durable consumer stands, asking each one's leader and waiting (until ``deadline``) for it.

        Right after a stream is created or restored in a cluster its consumers elect leaders; CONSUMER.LIST
        waits about 4 s for a consumer without one before naming it missing. Asking CONSUMER.INFO with a
        short timeout instead answers as soon as every consumer has a leader. A consumer still without one
        at the deadline is left out.
        """
        positions: dict[str, dict[str, int]] = {}
        for name in await self.consumer_names(stream):
            ask = functools.partial(self.request, f"CONSUMER.INFO.{stream}.{name}", timeout=LEADER_POLL_TIMEOUT)
            try:
                info = await retry(ask, deadline, 0.1, retry_on=_leaderless, overrun=True)
            except NatsOpsError:
                continue  # deleted since it was named, or still without a leader at the deadline
            if is_durable(info):
                positions[name] = consumer_position(info)
        return positions

    async def delete_stream(self, stream: str) -> None:
        await self.request(f"STREAM.DELETE.{stream}")


def _leaderless(exc: Exception) -> bool:
    """Mostly no answer: the consumer has no leader yet. One deleted since it was named is not waited for."""
    deleted = isinstance(exc, JetStreamApiError) and exc.err_code == CONSUMER_NOT_FOUND
    return isinstance(exc, NatsOpsError) and not deleted


def is_durable(info: dict[str, Any]) -> bool:
    return bool((info.get("config") or {}).get("durable_name"))


def consumer_position(info: dict[str, Any]) -> dict[str, int]:
    """The parts of a consumer's info that a faithful restore must give back."""
    return {
        "delivered_stream_seq": int((info.get("delivered") or {}).get("stream_seq") or 0),
        "ack_floor_stream_seq": int((info.get("ack_floor") or {}).get("stream_seq") or 0),
        "num_pending": int(info.get("num_pending") or 0),
        "num_ack_pending": int(info.get("num_ack_pending") or 0),
    }


def consumer_progress(positions: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """What a restore must keep of each consumer: its ack floor and how many messages it has not acked.

    A clustered restore may return delivered-but-unacked messages to pending (they are redelivered),
    so the delivered sequence itself is not compared.
    """
    return {
        name: {
            "ack_floor_stream_seq": position["ack_floor_stream_seq"],
            "unacked": position["num_pending"] + position["num_ack_pending"],
        }
        for name, position in positions.items()
    }


def describe_client_error(exc: BaseException) -> str:
    """nats-py errors often have empty messages: name the condition instead."""
    name = type(exc).__name__
    if "ConnectionClosed" in name or "StaleConnection" in name or "ConnectionDraining" in name:
        return "the connection to the server was lost"
    return str(exc) or name


@asynccontextmanager
async def jetstream_session(options: dict[str, Any]) -> AsyncIterator[tuple[Connection, JetStreamApi]]:
    """A connection with the options' credentials, and the JetStream API of its account and domain."""
    async with nats_connection(options) as connection:
        yield connection, JetStreamApi(connection.client, options["domain"], options["timeout"])
