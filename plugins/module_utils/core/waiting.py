# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Waiting against a deadline: one way to poll for a state and one to retry a failing request.

A deadline is kept in one of two ways, chosen per call:

- by default no pause runs past it, so the last try starts by the deadline: a user's ``wait_timeout``
  is kept, and a wait that cannot succeed ends a pause early rather than late;
- ``overrun``: a pause may end past it, and the try after that pause is the last. For the checks that
  take one more look once the time is up rather than judge by a look a pause old.

``pauses`` are the seconds between tries: always the same, or one after another from an iterable
(such as backoff()).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Deadline:
    """A moment on the monotonic clock by which a wait gives up."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def allows(self, pause: float, overrun: bool = False) -> bool:
        """Whether a pause of ``pause`` seconds may begin now: one that ends by the deadline or, with
        ``overrun``, any that begins before it."""
        now = time.monotonic()
        return now < self.at if overrun else now + pause <= self.at


def backoff(first: float, most: float, factor: float = 2.0) -> Iterator[float]:
    """Pauses that grow from ``first`` by ``factor`` up to ``most``, then stay there."""
    pause = first
    while True:
        yield pause
        pause = min(pause * factor, most)


async def poll(
    read: Callable[[], Awaitable[T]],
    deadline: Deadline,
    pauses: float | Iterable[float],
    *,
    until: Callable[[T], bool] = bool,
    overrun: bool = False,
) -> T:
    """``read`` until ``until`` accepts what it read, or the deadline allows no further pause: the last value read.

    The caller judges a value returned at the deadline. Each pause is drawn after ``until`` has judged
    the read before it, so a stateful ``until`` may decide the next pause too.
    """
    pause_after = _pause_iterator(pauses)
    while True:
        value = await read()
        if until(value):
            return value
        pause = next(pause_after)
        if not deadline.allows(pause, overrun):
            return value
        await asyncio.sleep(pause)


async def retry(
    attempt: Callable[[], Awaitable[T]],
    deadline: Deadline,
    pauses: float | Iterable[float],
    *,
    retry_on: Callable[[Exception], bool],
    overrun: bool = False,
) -> T:
    """``attempt`` until it returns. A failure ``retry_on`` accepts is tried again after a pause while the
    deadline allows one; any other failure, and the last one, is raised as it is."""
    pause_after = _pause_iterator(pauses)
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not retry_on(exc):
                raise
            pause = next(pause_after)
            if not deadline.allows(pause, overrun):
                raise
        await asyncio.sleep(pause)


def _pause_iterator(pauses: float | Iterable[float]) -> Iterator[float]:
    if isinstance(pauses, (int, float)):
        return itertools.repeat(float(pauses))
    return iter(pauses)
