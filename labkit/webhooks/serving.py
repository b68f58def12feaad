"""Serve an ASGI app from a daemon thread of this process (the in-kernel receiver, the pipeline's front)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn

from labkit.errors import ServeError
from labkit.named import ByName
from labkit.waiting import Deadline

#: Connections and requests served at once; beyond it uvicorn answers 503 instead of letting a
#: flood of connections use up the kernel's memory and file descriptors.
MAX_CONCURRENCY = 1000


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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for a command that takes ``--port``)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: Seconds a client has to send a request's headers, from its first byte (or from connecting).
#: uvicorn has no such limit of its own: a client trickling headers one byte at a time would
#: hold a connection (one of MAX_CONCURRENCY) for ever.
HEADER_TIMEOUT = 10.0
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: 37\r\n\r\nThe request's headers came too slowly."
)


def with_header_deadline(http: str | type = "auto", seconds: float = HEADER_TIMEOUT) -> type:
    """uvicorn's HTTP protocol (``"auto"``, ``"h11"``, ``"httptools"`` or a class) with a
    deadline for each request's headers: past it, the client gets a 408 and the connection
    closes. A request whose headers have arrived is never cut (its app may take its time)."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base = import_from_string(HTTP_PROTOCOLS[http]) if isinstance(http, str) else http

    class HeaderDeadline(base):  # type: ignore[valid-type,misc]
        header_deadline = seconds
        _deadline: asyncio.TimerHandle | None = None

        def _waiting_for_headers(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is None or bool(cycle.response_complete)

        def _arm(self) -> None:
            if self._deadline is None and not self.transport.is_closing():
                self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.write(_TIMED_OUT)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_headers():
                self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            # Between requests, uvicorn's keep-alive timeout is the limit; the next request's
            # first bytes arm a new deadline.
            self._disarm()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"HeaderDeadline{base.__name__}"
    return HeaderDeadline


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
        options = {"limit_concurrency": MAX_CONCURRENCY, **self.config}
        if not getattr(options.get("http"), "header_deadline", None):
            options["http"] = with_header_deadline(options.get("http", "auto"))
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
                **options,
            )
        )
        self.error = None
        self._thread = threading.Thread(
            target=self._serve, args=(sockets,), daemon=True, name=self.name
        )
        self._thread.start()
        deadline = Deadline(timeout)
        while not self._server.started:
            if not self._thread.is_alive():
                return f"its thread died while starting: {self.error!r}"
            if deadline.passed():
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


# --- the learner's own app, served from a notebook cell -----------------------------------------

#: How many requests a :class:`Served` app remembers (the oldest are forgotten first).
MAX_EXCHANGES = 200


@dataclass(frozen=True)
class Exchange:
    """One request your app received and what it answered (``status`` 0: it never answered)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response_body: bytes = b""
    error: str = ""

    def __str__(self) -> str:
        answer = f"{self.status}" if self.status else f"no answer ({self.error or 'none sent'})"
        return f"{self.method} {self.path} ({len(self.body)} bytes) -> {answer}"

    def as_http(self) -> str:
        """The request as it came over the wire: request line, headers, a blank line, body."""
        target = self.path + (f"?{self.query}" if self.query else "")
        lines = [f"{self.method} {target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return "\n".join(lines) + "\n\n" + self.body.decode("utf-8", errors="replace")


class _Recorder:
    """ASGI wrapper that notes every HTTP request and the status the wrapped app answered."""

    def __init__(self, app: Any, exchanges: deque[Exchange]) -> None:
        self.app, self.exchanges = app, exchanges

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        answer: dict[str, Any] = {"status": 0, "body": []}

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                answer["body"].append(message.get("body", b""))
            await send(message)

        error = ""
        try:
            await self.app(scope, recording_receive, recording_send)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in scope.get("headers", [])
            }
            self.exchanges.append(
                Exchange(
                    scope["method"],
                    scope["path"],
                    scope.get("query_string", b"").decode("latin-1"),
                    headers,
                    b"".join(chunks),
                    answer["status"],
                    b"".join(answer["body"]),
                    error,
                )
            )


_SERVED: ByName[Served] = ByName()


class Served:
    """An ASGI app (yours: FastAPI, Starlette, ...) served from a daemon thread of the kernel.

    ``url`` is where it listens, ``stop()`` ends it, and ``exchanges`` lists what it was sent and
    what it answered, newest last, so a check can see what really happened.
    """

    def __init__(
        self, app: Any, *, name: str = "app", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not callable(app):
            raise ServeError(
                f"labkit.serve needs an ASGI app, such as app = FastAPI(); got a "
                f"{type(app).__name__}."
            )
        self.app, self.name, self.host, self.requested_port = app, name, host, port
        self.exchanges: deque[Exchange] = deque(maxlen=MAX_EXCHANGES)
        self.port = 0
        self._serving = ServerThread(_Recorder(app, self.exchanges), name=f"labkit-serve-{name}")

    def start(self, timeout: float = 10.0) -> Served:
        """Listen and serve; returns once connections are accepted, else raises ``ServeError``."""
        for other in _SERVED.live():
            if other is not self and (
                other.name == self.name
                or (self.requested_port and other.port == self.requested_port)
            ):
                other.stop()
        if self.running:
            return self
        try:
            sock = bind(self.host, self.requested_port)
        except OSError as exc:
            raise ServeError(
                f"Cannot listen on {self.host}:{self.requested_port}: "
                f"{exc.strerror}. Another program holds that port: pick another, or "
                "port=0 for any free one."
            ) from None
        self.port = sock.getsockname()[1]
        failure = self._serving.start([sock], timeout)
        if failure is not None:
            raise ServeError(
                f"Your app could not be served: {failure}. Is `app` an ASGI app "
                "(for example app = FastAPI())?"
            )
        _SERVED.hold(self.name, self)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); ``exchanges`` stays readable."""
        self._serving.stop()
        _SERVED.release(self.name, self)

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._serving.running

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; raises ``ServeError`` if the server is not running."""
        if not self._serving.started:
            raise ServeError(f"{self.name!r} is not being served: run labkit.serve(app) again.")
        if not self._serving.running:
            raise ServeError(
                f"The server thread of {self.name!r} died "
                f"({self._serving.error!r}): run labkit.serve(app) again."
            )
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        state = f"serving on {self.host}:{self.port}" if self.running else "stopped"
        return f"<Served app {self.name!r} {state}>"


def stop_serving() -> list[str]:
    """Stop every app that :func:`serve` runs in this process; returns their names."""
    names = _SERVED.names()
    for served in _SERVED.live():
        served.stop()
    return names


def serve(
    app: Any, port: int = 0, *, name: str = "app", host: str = "127.0.0.1", timeout: float = 10.0
) -> Served:
    """Serve ``app`` in a daemon thread on ``host:port`` (port 0: any free one) and return it.

    Serving again under the same ``name`` (a re-run cell) stops the old server first.

    >>> server = labkit.serve(app, name="mine")   # doctest: +SKIP
    >>> httpx.post(server.url + "/hooks/github", content=b"{}")   # doctest: +SKIP
    """
    return Served(app, name=name, host=host, port=port).start(timeout)
