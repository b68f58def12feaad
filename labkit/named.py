"""Live objects by name, one at a time: what makes re-running a notebook cell safe.

A receiver, a served app, a front, a runtime, a pipeline, a background command and each live view
is held under its name while it runs. Starting a second one of the same name stops the first, so
running a cell again never leaks a server, a thread or a port; stopping lets the name go only if
it is still held by that same object.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar


class Stoppable(Protocol):
    def stop(self) -> object: ...


T = TypeVar("T", bound=Stoppable)


class ByName(Generic[T]):
    """The live objects of one kind, by name."""

    def __init__(self) -> None:
        self._held: dict[str, T] = {}
        self._lock = threading.Lock()

    def stop_other(self, name: str, new: T) -> None:
        """Stop whatever other object holds ``name`` (before ``new`` starts under it)."""
        with self._lock:
            old = self._held.get(name)
        if old is not None and old is not new:
            old.stop()

    def hold(self, name: str, obj: T) -> None:
        """``obj`` holds ``name`` from now on."""
        with self._lock:
            self._held[name] = obj

    def release(self, name: str, obj: T) -> None:
        """Let ``name`` go, if ``obj`` (and not a newer object) holds it."""
        with self._lock:
            if self._held.get(name) is obj:
                del self._held[name]

    def get(self, name: str) -> T | None:
        with self._lock:
            return self._held.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def live(self) -> list[T]:
        """Every object held now."""
        with self._lock:
            return list(self._held.values())
