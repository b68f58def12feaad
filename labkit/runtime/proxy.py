"""The front: one stable address in front of a service whose versions come and go, switched with no failed request.

Every request is forwarded to the upstream of the moment. :meth:`Front.switch` changes the upstream
atomically: requests already on their way finish on the old version, new ones go to the new version,
and :meth:`Front.drain` says when the old version has no request left, so it can be stopped. This is
what a load balancer in front of containers does during a rolling update.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import httpx

from labkit.errors import FrontError
from labkit.named import ByName
from labkit.waiting import Deadline
from labkit.webhooks.serving import ServerThread, bind

# Headers about one connection, not the request: never forwarded (RFC 9110, section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Set by this front alone: a client's own value would let it claim any address.
_SET_HERE = frozenset({"x-forwarded-for", "forwarded", "x-real-ip"})
#: The largest request body the front passes on (the apps behind it take small JSON).
MAX_BODY = 1024 * 1024
# httpx hands over the body decoded, so its encoding header no longer applies.
_NOT_RETURNED = _HOP_BY_HOP | {"content-encoding"}
_RUNNING: ByName[Front] = ByName()


class Front:
    """A reverse proxy on 127.0.0.1 that forwards to one upstream at a time.

    >>> front = Front("web").start()          # doctest: +SKIP
    >>> front.switch("http://127.0.0.1:40001")  # doctest: +SKIP

    Until an upstream is set it answers ``503`` and says that nothing is deployed yet; when the
    upstream does not answer it says ``502``. ``stats`` counts the answers by status code.
    ``service`` is what its answers call the service (default: ``name``). Starting a front of
    the same ``name`` again stops the old one first.
    """

    def __init__(
        self,
        name: str = "web",
        *,
        service: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 30.0,
    ) -> None:
        self.name, self.host, self.requested_port, self.timeout = name, host, port, timeout
        self.service = service or name
        self.port = 0
        self.stats: Counter[int] = Counter()
        self._upstream: str | None = None
        self._inflight: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._client: httpx.AsyncClient | None = None
        self._serving = ServerThread(
            self._app,
            name=f"labkit-front-{name}",
            interface="asgi3",
            proxy_headers=False,
            timeout_keep_alive=30,
        )

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Front:
        """Listen in a daemon thread; returns once connections are accepted."""
        _RUNNING.stop_other(self.name, self)
        if self.running:
            return self
        try:
            sock = bind(self.host, self.requested_port, backlog=1024)
        except OSError as exc:
            raise FrontError(
                f"The front for {self.name!r} cannot listen on {self.host}:"
                f"{self.requested_port}: {exc.strerror}. Pick another port, or 0 "
                "for any free one."
            ) from None
        self.port = sock.getsockname()[1]
        failure = self._serving.start([sock], timeout)
        if failure is not None:
            raise FrontError(f"The front for {self.name!r} could not start: {failure}.")
        _RUNNING.hold(self.name, self)
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        self._serving.stop()
        self._client = None  # its event loop has ended; its connections close with it
        _RUNNING.release(self.name, self)

    @property
    def running(self) -> bool:
        return self._serving.running

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the same whichever version serves."""
        if not self.running:
            raise FrontError(f"The front for {self.name!r} is not running: start it first.")
        return f"http://{self.host}:{self.port}"

    # --- switching --------------------------------------------------------------------------
    @property
    def upstream(self) -> str | None:
        """Where new requests go now (``None``: nothing deployed)."""
        return self._upstream

    def switch(self, upstream: str | None) -> str | None:
        """Send new requests to ``upstream`` from now on; returns the previous upstream."""
        with self._lock:
            previous, self._upstream = self._upstream, upstream
        return previous

    def drain(self, upstream: str, timeout: float = 10.0) -> bool:
        """Wait until ``upstream`` has no request in flight; ``False`` if it still has some."""
        deadline = Deadline(timeout)
        with self._lock:
            while self._inflight[upstream]:
                left = deadline.left()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def __repr__(self) -> str:
        state = f"on {self.host}:{self.port}" if self.running else "stopped"
        return f"<Front {self.name!r} {state}>"

    # --- the proxy itself -------------------------------------------------------------------
    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("raw_path") or scope["path"].encode()
        if not path.startswith(b"/"):
            # An absolute-form or asterisk target would be pasted after the upstream's address.
            await self._answer(send, 400, {"detail": "The request target must start with '/'."})
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await self._answer(send, 413, {"detail": f"The body is over {MAX_BODY} bytes."})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _HOP_BY_HOP | _SET_HERE
        ]
        client = scope.get("client") or ("", 0)
        headers.append(("x-forwarded-for", str(client[0])))
        target = path.decode("latin-1") + (
            ("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else ""
        )
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout, trust_env=False, follow_redirects=False
            )
        tried: set[str] = set()
        while True:
            with self._lock:
                upstream = self._upstream
                if upstream is not None:
                    self._inflight[upstream] += 1
            if upstream is None:
                await self._answer(
                    send,
                    503,
                    {
                        "detail": f"No version of {self.service} is "
                        "deployed yet: push a commit, and the "
                        "pipeline deploys it."
                    },
                )
                return
            tried.add(upstream)
            try:
                response = await self._client.request(
                    scope["method"], upstream + target, headers=headers, content=body
                )
            except httpx.ConnectError:
                # The version we picked is gone (stopped or crashed). If traffic has been
                # switched since, the request never reached any app: send it to the new one.
                if self._upstream is not None and self._upstream not in tried:
                    continue
                await self._answer(
                    send,
                    502,
                    {"detail": f"{self.service} does not answer: its process is not running."},
                )
                return
            except httpx.HTTPError as exc:
                await self._answer(
                    send, 502, {"detail": f"{self.service} failed to answer: {type(exc).__name__}."}
                )
                return
            finally:
                with self._lock:
                    self._inflight[upstream] -= 1
                    self._lock.notify_all()
            break
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in _NOT_RETURNED
        ]
        out.append((b"content-length", str(len(response.content)).encode()))
        self.stats[response.status_code] += 1
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})

    async def _answer(self, send: Any, status: int, payload: dict[str, Any]) -> None:
        self.stats[status] += 1
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


__all__ = ["Front", "FrontError"]
