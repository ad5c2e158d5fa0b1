"""Run a blocking call in a thread, so a test can break a server while the call is under way."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


class Outcome:
    def __init__(self, call: Callable[[], Any]) -> None:
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self._result = call()
        except BaseException as exc:  # handed to the test
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.01) -> None:
        """Wait until ``condition()`` holds while the call still runs; fail if it ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.done:
                raise AssertionError(f"the call ended before the condition held: {self._error or self._result}")
            time.sleep(interval)
        raise AssertionError(f"condition not reached within {timeout}s")

    def error(self, timeout: float) -> BaseException | None:
        """The exception the call raised (None if it succeeded), waiting at most ``timeout``."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the call did not end within {timeout}s")
        return self._error

    @property
    def result(self) -> Any:
        """What the call returned (once it has ended without an error)."""
        return self._result
