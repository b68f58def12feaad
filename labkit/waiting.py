"""Waiting for something to happen, with a timeout that says what did not happen.

Every wait in labkit polls real state (a log, a queue, a container, a port) until it holds; none
sleeps in the hope that work is done. :func:`wait_until` is that loop, written once: the check,
how long at most, how often to look, and what to raise when time is up, in the caller's words.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a wait looks again unless the caller says otherwise.
INTERVAL = 0.05


class Deadline:
    """A moment ``seconds`` from now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self._end - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() > self._end


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str = "",
    interval: float = INTERVAL,
    error: Callable[[], BaseException] | None = None,
) -> T:
    """Call ``check`` until it returns something true, and return that.

    When ``timeout`` seconds pass first, raise ``error()`` (the caller's own exception, with
    what it saw), or ``TimeoutError("<what> did not happen within N s")``. ``check`` may raise to
    give up early (a process that ended, a container that exited); that error goes through.
    """
    deadline = Deadline(timeout)
    while True:
        result = check()
        if result:
            return result
        if deadline.passed():
            if error is not None:
                raise error()
            raise TimeoutError(f"{what or 'The wait'} did not happen within {timeout:g} s.")
        time.sleep(min(interval, max(deadline.left(), 0.001)))


def waited(check: Callable[[], object], *, timeout: float, interval: float = INTERVAL) -> bool:
    """Whether ``check`` came true within ``timeout`` seconds (for waits that answer yes or no)."""
    try:
        wait_until(lambda: bool(check()), timeout=timeout, interval=interval)
    except TimeoutError:
        return False
    return True
