# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Claims on the streams a restore is restoring, so that a second restore of the same stream is refused.

A claim is a subscription, held for as long as the restore's connection lives, on a subject named after
the stream (``_INBOX.natsops.restore.<domain>.<stream>``, in the account's own subject space). Whoever
asks on it is answered with the owner's name and start time. So a restore in progress is told apart
from an interrupted one without heartbeats or clocks: a killed module, or a lost connection, drops its
claims at once, and the half-made stream it left is redone by the next run.

Taking claims costs one short window per run, not per stream (and it overlaps the run's other reads):
subscribe to every stream's subject, ask on each with our own token, and listen briefly. Any answer
but our own names another run that holds the stream; two runs that claim a stream at the same moment
both see the other and both give it up, and each says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from datetime import datetime, timezone
from typing import Any

CLAIM_PREFIX = "_INBOX.natsops.restore"
# How long a run listens for other claimants of its streams, once, after it has claimed them.
CONTEST_WINDOW = 0.25


def claim_subject(domain: str | None, stream: str) -> str:
    return f"{CLAIM_PREFIX}.{domain or '_'}.{stream}"


class RestoreClaims:
    """This run's claims, and what it learned of other runs' claims."""

    def __init__(self, client: Any, domain: str | None) -> None:
        self.client = client
        self.domain = domain
        self.token = uuid.uuid4().hex
        self.owner = f"{socket.gethostname()} pid {os.getpid()}"
        self.since = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        self._subscriptions: list[Any] = []
        self._heard_self: set[str] = set()

    def describe(self) -> dict[str, str]:
        return {"owner": self.owner, "since": self.since, "token": self.token}

    async def take(self, streams: list[str], hold: bool = True) -> tuple[dict[str, dict[str, str]], list[str]]:
        """Claim ``streams``; return those another run holds (its owner, start time), and warnings.

        Without ``hold`` (check mode) only ask: a run that changes nothing must not stand in another's way.
        A claim that this run cannot hear itself answer (the account may not subscribe or publish to
        ``_INBOX.>``) protects nothing: that is a warning, not a refusal, as before claims existed.
        """
        if hold:
            for stream in streams:
                subject = claim_subject(self.domain, stream)
                self._subscriptions.append(await self.client.subscribe(subject, cb=self._answer(stream)))
        contested: dict[str, dict[str, str]] = {}
        inbox = self.client.new_inbox()

        async def heard(msg: Any) -> None:
            try:
                answer = json.loads(msg.data)
            except ValueError:
                return
            if isinstance(answer, dict) and answer.get("token") != self.token and answer.get("stream") in streams:
                contested[answer["stream"]] = answer

        listener = await self.client.subscribe(inbox, cb=heard)
        try:
            for stream in streams:
                await self.client.publish(claim_subject(self.domain, stream), self.token.encode(), reply=inbox)
            await self.client.flush()
            await asyncio.sleep(CONTEST_WINDOW)
        finally:
            await listener.unsubscribe()
        unheard = [stream for stream in streams if stream not in self._heard_self]
        warnings = []
        if hold and unheard:
            warnings.append(
                f"the claim on {', '.join(unheard[:5])}{' and others' if len(unheard) > 5 else ''} could not be "
                f"checked (this account may not use {CLAIM_PREFIX}.>): a second restore of the same stream at the "
                "same time would not be noticed"
            )
        return contested, warnings

    def _answer(self, stream: str) -> Any:
        payload = json.dumps({**self.describe(), "stream": stream}).encode()

        async def answer(msg: Any) -> None:
            if msg.data == self.token.encode():
                self._heard_self.add(stream)  # our own check: the claim works, and it is ours
            if msg.reply:
                await self.client.publish(msg.reply, payload)

        return answer

    async def release(self, streams: list[str] | None = None) -> None:
        """Give up the claims (all of them, or those on ``streams``)."""
        keep = []
        for subscription in self._subscriptions:
            stream = subscription.subject.rsplit(".", 1)[-1]
            if streams is None or stream in streams:
                with contextlib.suppress(Exception):  # a lost connection has dropped it already
                    await subscription.unsubscribe()
            else:
                keep.append(subscription)
        self._subscriptions = keep
