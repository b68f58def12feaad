"""Coalesced redraws: any thread may ask; one redraw runs per interval, in a timer thread."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Redraw:
    """Schedules ``render`` at most once per ``interval`` seconds, however often it is asked.

    ``render`` must only assign widget traits (safe from any thread). An exception in it is
    swallowed: a view must never raise in a background thread. ``after`` runs after each timed
    redraw (a view whose clocks keep moving asks again from there).
    """

    def __init__(
        self, render: Callable[[], None], interval: float, after: Callable[[], None] | None = None
    ) -> None:
        self.render, self.interval, self.after = render, interval, after
        self.stopped = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def request(self) -> None:
        """Redraw within ``interval`` seconds (a no-op when one is already scheduled)."""
        with self._lock:
            if self.stopped or self._timer is not None:
                return
            self._timer = threading.Timer(self.interval, self._run)
            self._timer.daemon = True
            self._timer.start()

    def now(self) -> None:
        """Redraw at once, in this thread, dropping a scheduled one."""
        self._cancel()
        self.render()

    def stop(self) -> None:
        """No more redraws (idempotent)."""
        with self._lock:
            self.stopped = True
        self._cancel()

    def _cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _run(self) -> None:
        with self._lock:
            self._timer = None
            if self.stopped:
                return
        try:
            self.render()
        except Exception:  # noqa: BLE001 - a view must never raise in a background thread
            pass
        if self.after is not None:
            self.after()
