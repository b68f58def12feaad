"""Dispatch: the handlers of ``rx.on(...)`` run in one worker thread, off the request path, once
per delivery; a failing handler is recorded on its delivery and never stops the next one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from labkit.errors import StoreError
from labkit.waiting import waited
from labkit.webhooks.store import Delivery, DeliveryLog

#: What ``rx.on(...)`` registers: called with each verified delivery, in the worker thread.
Handler = Callable[[Delivery], Any]


class Dispatcher:
    """Runs handlers in one worker thread, in arrival order, recording each outcome."""

    def __init__(self, log: DeliveryLog, *, checks_senders: bool = False) -> None:
        self.log = log
        #: When the receiver checks its senders, an unverified delivery (from a source opened on
        #: purpose) runs only the handlers that asked for it.
        self.checks_senders = checks_senders
        #: (source, event, handler, runs for unverified deliveries too)
        self.handlers: list[tuple[str, str | None, Handler, bool]] = []
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def add(
        self, source: str, event: str | None, handler: Handler, *, unverified: bool = False
    ) -> None:
        self.handlers = [
            (s, e, h, u)
            for s, e, h, u in self.handlers
            if not (s == source and e == event and h.__name__ == handler.__name__)
        ]
        self.handlers.append((source, event, handler, unverified))

    def submit(self, delivery: Delivery) -> None:
        if not self.handlers:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="labkit-handlers", daemon=True)
            self._thread.start()
        self._queue.put(delivery)

    def idle(self, timeout: float) -> bool:
        """Whether every delivery submitted so far has been handled within ``timeout`` s."""
        return waited(lambda: not self._queue.unfinished_tasks, timeout=timeout, interval=0.005)

    def stop(self) -> None:
        """End the worker once the deliveries queued so far are handled. A handler still running
        after 5 s is left to finish: its thread stays known, so a later delivery never starts a
        second worker beside it (two would break the arrival order)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
        if self._thread is not None and not self._thread.is_alive():
            self._thread = None

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if delivery is None:
                    return
                self._handle(delivery)
            finally:
                self._queue.task_done()

    def _handle(self, delivery: Delivery) -> None:
        trusted = delivery.verified or not self.checks_senders
        matching = [
            h
            for s, e, h, unverified in self.handlers
            if s in (delivery.source, "*")
            and e in (None, "*", delivery.event)
            and (trusted or unverified)
        ]
        if not matching:
            return
        errors = []
        for handler in matching:
            try:
                handler(delivery)
            except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the receiver
                errors.append(f"{handler.__name__}: {type(exc).__name__}: {exc}")
        try:
            self.log.set_handled(delivery.seq, "failed" if errors else "ok", "; ".join(errors))
        except StoreError:
            pass
