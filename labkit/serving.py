"""Serve an ASGI app from a daemon thread of this process (the in-kernel receiver, the pipeline's front)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn


def bind(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one); raises ``OSError``."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(backlog)
    return sock


def quiet_uvicorn() -> None:
    """In a notebook, uvicorn's start-up and access lines would land in random cells."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [logging.NullHandler()]
        logger.propagate = False


class ServerThread:
    """uvicorn serving ``app`` on given sockets in a daemon thread: start, wait, stop, and why it died."""

    def __init__(self, app: Any, *, name: str, **config: Any) -> None:
        self.app, self.name, self.config = app, name, config
        self.error: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, sockets: list[socket.socket], timeout: float = 10.0) -> str | None:
        """Serve; returns ``None`` once connections are accepted, else why it did not start.

        The sockets are closed when serving ends (or at once, if it never starts).
        """
        quiet_uvicorn()
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=2, **self.config))
        self.error = None
        self._thread = threading.Thread(target=self._serve, args=(sockets,), daemon=True,
                                        name=self.name)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                return f"its thread died while starting: {self.error!r}"
            if time.monotonic() > deadline:
                self.stop()
                return f"it did not start within {timeout:.0f} s"
            time.sleep(0.01)
        return None

    def _serve(self, sockets: list[socket.socket]) -> None:
        assert self._server is not None
        try:
            self._server.run(sockets=sockets)
        except BaseException as exc:  # noqa: BLE001 - kept to explain the death to the user
            self.error = exc
        finally:
            for sock in sockets:
                sock.close()

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called and :meth:`stop` was not."""
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
