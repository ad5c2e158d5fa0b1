# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Claims on the streams a restore is restoring, so that a second restore of the same stream is refused.

A claim is a subscription, held for as long as the restore's connection lives, on a subject named after
the stream (``_INBOX.natsops.restore.<domain>.<stream>``, in the account's own subject space). Whoever
asks on it is answered with the owner's name and start time. So a restore in progress is told apart
from an interrupted one without heartbeats or clocks: a killed module, or a lost connection, drops its
claims at once, and the half-made stream it left is redone by the next run.

Taking claims costs two round trips per run, not per stream, and overlaps the run's other reads (see
``take``); only a claim held by a stopped process costs a wait, of SILENT_OWNER_WAIT.
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
# How long a run waits for a claimant that has subscribed but does not answer (a stopped process).
SILENT_OWNER_WAIT = 1.0
# How long a run listens for others after its own claims have answered it: two runs that claim at once.
CONTEST_GRACE = 0.05
NO_RESPONDERS = "503"


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
        self._heard_self: set[str] = set()  # streams whose claim answered our own question: it works
        self._probe_answered = True

    def describe(self) -> dict[str, str]:
        return {"owner": self.owner, "since": self.since, "token": self.token}

    async def take(self, streams: list[str], hold: bool = True) -> tuple[dict[str, dict[str, str]], list[str]]:
        """Claim ``streams``; return those another run holds (its owner, start time), and warnings.

        First ask who holds them: nobody (the server answers 'no responders' at once), a live run (it
        answers), or a run that has subscribed but does not answer (stopped: it holds them all the same).
        Then, unless only asked to look (check mode, ``hold`` false: a run that changes nothing must not
        stand in another's way), subscribe and ask again with our own token: an answer besides our own
        is a run that claimed at the same moment, and both give way.
        A claim this run cannot hear itself answer (the account may not use ``_INBOX.>``) protects nothing:
        that is a warning, not a refusal, as before claims existed.
        """
        held, silent = await self._ask(streams, b"", own=False)
        warnings = []
        if silent:
            if self._probe_answered:
                held.update({stream: SILENT_OWNER for stream in silent})
            else:  # publishes here reach no one, or someone listens to every subject: no claim can be judged
                warnings.append(_unchecked(silent))
        if held or not hold:
            return held, warnings
        for stream in streams:
            subject = claim_subject(self.domain, stream)
            self._subscriptions.append(await self.client.subscribe(subject, cb=self._answer(stream)))
        contested, _unsettled = await self._ask(streams, self.token.encode(), own=True)
        unheard = [stream for stream in streams if stream not in self._heard_self]
        if unheard and not warnings:
            warnings.append(_unchecked(unheard))
        return contested, warnings

    async def _ask(self, streams: list[str], payload: bytes, own: bool) -> tuple[dict[str, dict[str, str]], list[str]]:
        """Ask on every stream's claim at once: the answers of other runs by stream, and the streams that got
        neither an answer nor 'no responders' (someone subscribed and silent).

        Each stream gets its own reply subject, so a 'no responders' status names the stream it is for. A
        probe on a subject nobody can hold tells whether such a status can come at all.
        """
        inbox = self.client.new_inbox()
        probe = f"probe-{self.token}"
        asked = [*streams, probe] if not own else list(streams)
        by_reply = {f"{inbox}.{index}": stream for index, stream in enumerate(asked)}
        others: dict[str, dict[str, str]] = {}
        settled: set[str] = set()  # nobody there; or, with ``own``, our own answer came back
        everyone = asyncio.Event()

        async def heard(msg: Any) -> None:
            stream = by_reply.get(msg.subject)
            if stream is None:
                return
            if (msg.headers or {}).get("Status") == NO_RESPONDERS:
                settled.add(stream)
            else:
                answer = _parse(msg.data)
                if answer is None:
                    return
                if answer.get("token") == self.token:
                    self._heard_self.add(stream)
                    settled.add(stream)
                else:
                    others[stream] = answer
                    settled.add(stream)
            if len(settled) == len(asked):
                everyone.set()

        listener = await self.client.subscribe(f"{inbox}.*", cb=heard)
        try:
            for reply, stream in by_reply.items():
                await self.client.publish(claim_subject(self.domain, stream), payload, reply=reply)
            await self.client.flush()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(everyone.wait(), SILENT_OWNER_WAIT)
            if own:
                await asyncio.sleep(CONTEST_GRACE)  # another run's answer may come just after our own
        finally:
            with contextlib.suppress(Exception):
                await listener.unsubscribe()
        if not own:
            self._probe_answered = probe in settled
        return others, [stream for stream in streams if stream not in settled]

    def _answer(self, stream: str) -> Any:
        payload = json.dumps({**self.describe(), "stream": stream}).encode()

        async def answer(msg: Any) -> None:
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


SILENT_OWNER = {"owner": "a restore that does not answer (its process is stopped or stalled)", "since": "?"}


def _unchecked(streams: list[str]) -> str:
    shown = ", ".join(streams[:5]) + (" and others" if len(streams) > 5 else "")
    return (
        f"whether another restore holds {shown} could not be checked (this account may not use {CLAIM_PREFIX}.>, "
        "or something listens to every subject): a second restore of the same stream at the same time would not "
        "be noticed"
    )


def _parse(data: bytes) -> dict[str, str] | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
