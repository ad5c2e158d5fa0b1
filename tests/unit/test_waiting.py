"""The deadline, poll and retry helpers, on a virtual clock: every pause and every try is seen exactly."""

from __future__ import annotations

import asyncio
import itertools
import types

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core import waiting
from ansible_collections.natsops.jetstream.plugins.module_utils.core.waiting import Deadline, backoff, poll, retry


class Clock:
    """Monotonic time that only pauses move; what each try saw."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []
        self.tries: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(waiting, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(waiting, "asyncio", types.SimpleNamespace(sleep=fake.sleep))
    return fake


def reads(clock: Clock, *values):
    """A read that returns ``values`` one after another (the last one from then on), noting when."""
    it = itertools.chain(values, itertools.repeat(values[-1]))

    async def read():
        clock.tries.append(clock.now - 100.0)
        return next(it)

    return read


def failures(clock: Clock, *outcomes):
    """An attempt that raises or returns ``outcomes`` one after another, noting when."""
    it = iter(outcomes)

    async def attempt():
        clock.tries.append(round(clock.now - 100.0, 6))
        outcome = next(it)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt


class Busy(Exception):
    pass


class Refused(Exception):
    pass


def busy(exc: Exception) -> bool:
    return isinstance(exc, Busy)


# --- Deadline --------------------------------------------------------------------------------------------


def test_deadline_counts_from_now(clock):
    deadline = Deadline.after(2.0)
    assert deadline.at == 102.0 and deadline.remaining() == 2.0 and not deadline.expired()
    clock.now = 102.0
    assert deadline.expired() and deadline.remaining() == 0.0
    clock.now = 103.0
    assert deadline.remaining() == 0.0


def test_a_strict_deadline_allows_only_pauses_that_end_by_it(clock):
    deadline = Deadline.after(1.0)
    assert deadline.allows(1.0) and not deadline.allows(1.01)


def test_an_overrun_deadline_allows_any_pause_begun_before_it(clock):
    deadline = Deadline.after(1.0)
    assert deadline.allows(60.0, overrun=True)
    clock.now = 101.0
    assert not deadline.allows(0.0, overrun=True)


def test_backoff_doubles_up_to_its_most():
    assert list(itertools.islice(backoff(0.25, 2.0), 6)) == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert list(itertools.islice(backoff(1.0, 5.0, factor=3), 3)) == [1.0, 3.0, 5.0]


# --- poll ------------------------------------------------------------------------------------------------


def test_poll_returns_the_first_accepted_value_without_a_pause(clock):
    assert asyncio.run(poll(reads(clock, "ready"), Deadline.after(1.0), 0.1)) == "ready"
    assert clock.pauses == [] and clock.tries == [0.0]


def test_poll_reads_until_accepted(clock):
    value = asyncio.run(poll(reads(clock, 1, 2, 3), Deadline.after(10.0), 0.5, until=lambda n: n >= 3))
    assert value == 3 and clock.pauses == [0.5, 0.5]


def test_poll_never_pauses_past_a_strict_deadline(clock):
    value = asyncio.run(poll(reads(clock, False), Deadline.after(1.0), 0.25))
    # Reads at 0, .25, .5, .75 and 1.0: the last one starts at the deadline, none after it.
    assert value is False and clock.tries == [0.0, 0.25, 0.5, 0.75, 1.0] and clock.pauses == [0.25] * 4


def test_poll_with_overrun_reads_once_more_after_the_deadline(clock):
    value = asyncio.run(poll(reads(clock, "no"), Deadline.after(1.0), 0.4, until=lambda v: v == "yes", overrun=True))
    assert value == "no" and clock.tries == pytest.approx([0.0, 0.4, 0.8, 1.2])


def test_poll_follows_a_backoff(clock):
    asyncio.run(poll(reads(clock, False), Deadline.after(1.0), backoff(0.1, 0.4)))
    assert clock.pauses == [0.1, 0.2, 0.4]  # a fourth (0.4 at 0.7) would end past the deadline


def test_poll_draws_each_pause_after_judging_the_read(clock):
    """A stateful ``until`` that is also the pauses: the confirming read comes a fixed while after a good one."""

    class Confirmed:
        def __init__(self) -> None:
            self.in_a_row, self.pause = 0, 0.01

        def __call__(self, good: bool) -> bool:
            self.in_a_row = self.in_a_row + 1 if good else 0
            self.pause = 0.5 if good else self.pause * 2
            return self.in_a_row >= 2

        def __iter__(self):
            return self

        def __next__(self) -> float:
            return self.pause

    confirmed = Confirmed()
    read = reads(clock, False, False, True, False, True, True)
    asyncio.run(poll(read, Deadline.after(10.0), confirmed, until=confirmed))
    assert clock.pauses == [0.02, 0.04, 0.5, 1.0, 0.5]


def test_poll_passes_a_read_failure_through(clock):
    async def read():
        raise Refused("no")

    with pytest.raises(Refused):
        asyncio.run(poll(read, Deadline.after(1.0), 0.1))
    assert clock.pauses == []


# --- retry -----------------------------------------------------------------------------------------------


def test_retry_returns_what_the_attempt_returns(clock):
    assert asyncio.run(retry(failures(clock, "done"), Deadline.after(1.0), 0.1, retry_on=busy)) == "done"
    assert clock.pauses == []


def test_retry_tries_again_after_an_accepted_failure(clock):
    attempt = failures(clock, Busy(), Busy(), "done")
    assert asyncio.run(retry(attempt, Deadline.after(5.0), backoff(0.25, 2.0), retry_on=busy)) == "done"
    assert clock.pauses == [0.25, 0.5]


def test_retry_raises_any_other_failure_at_once(clock):
    with pytest.raises(Refused):
        asyncio.run(retry(failures(clock, Busy(), Refused()), Deadline.after(5.0), 0.1, retry_on=busy))
    assert clock.tries == [0.0, 0.1]


def test_retry_raises_the_last_failure_at_a_strict_deadline(clock):
    last = Busy("third")
    with pytest.raises(Busy) as raised:
        asyncio.run(retry(failures(clock, Busy(), Busy(), last), Deadline.after(1.0), 0.5, retry_on=busy))
    assert raised.value is last and clock.tries == [0.0, 0.5, 1.0]


def test_retry_with_overrun_tries_once_more_after_the_deadline(clock):
    with pytest.raises(Busy):
        attempt = failures(clock, Busy(), Busy(), Busy())
        asyncio.run(retry(attempt, Deadline.after(0.6), 0.5, retry_on=busy, overrun=True))
    assert clock.tries == [0.0, 0.5, 1.0]


def test_retry_within_no_time_tries_once(clock):
    with pytest.raises(Busy):
        asyncio.run(retry(failures(clock, Busy(), "never"), Deadline.after(0.0), 0.05, retry_on=busy, overrun=True))
    assert clock.tries == [0.0] and clock.pauses == []


def test_retry_never_swallows_a_cancellation(clock):
    with pytest.raises(asyncio.CancelledError):
        attempt = failures(clock, asyncio.CancelledError())
        asyncio.run(retry(attempt, Deadline.after(5.0), 0.1, retry_on=lambda exc: True))
    assert clock.pauses == []


def test_the_real_clock_is_used_without_a_fake():
    async def twice() -> list[int]:
        seen: list[int] = []

        async def read() -> int:
            seen.append(len(seen))
            return len(seen)

        await poll(read, Deadline.after(5.0), 0.001, until=lambda n: n >= 2)
        return seen

    assert asyncio.run(twice()) == [0, 1]
