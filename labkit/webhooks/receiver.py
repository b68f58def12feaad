"""The webhook receiver you run in the kernel: :class:`Receiver` puts the parts together.

Its parts, each in its own module: ``verify`` (one check per source, on the raw bytes),
``app`` (the HTTP side: log every request, dedupe, answer), ``dispatch`` (handlers run off the
request path), ``store`` (the durable delivery log) and ``serving`` (uvicorn in a thread).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import quote

from labkit import engine
from labkit.errors import ReceiverError
from labkit.named import ByName
from labkit.paths import setting
from labkit.waiting import Deadline, wait_until
from labkit.webhooks import signing
from labkit.webhooks.app import create_app
from labkit.webhooks.dispatch import Dispatcher, Handler
from labkit.webhooks.serving import ServerThread, bind
from labkit.webhooks.store import Delivery, DeliveryLog
from labkit.webhooks.verify import DEFAULT_MAX_BODY, SOURCES, Settings


def _listen(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        raise ReceiverError(
            f"Cannot listen on {host}:{port}: {exc.strerror}. Another program holds that port: "
            "pick another with port=..., or port=0 for any free one."
        ) from None


def docker_gateway() -> str | None:
    """The host's address on Docker's default bridge (what ``host-gateway`` maps to), if any."""
    try:
        client = engine.client(3, ping=False)
        try:
            config = client.networks.get("bridge").attrs["IPAM"]["Config"]
        finally:
            client.close()
        for entry in config:
            if entry.get("Gateway"):
                return str(entry["Gateway"])
            if entry.get("Subnet"):  # the engine left the gateway implicit: the first host
                return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
        return None
    except Exception:  # noqa: BLE001 - no engine, no bridge: containers cannot reach us anyway
        return None


_RUNNING: ByName[Receiver] = ByName()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Receiver:
    """A webhook receiver you run inside the notebook kernel.

    >>> rx = Receiver(secret="s3cret").start()   # doctest: +SKIP
    >>> rx.url                                   # doctest: +SKIP
    'http://127.0.0.1:40123'

    ``secret`` authenticates every source: it is the key of GitHub and Standard Webhooks
    signatures, and the Docker Hub URL token and the registry/Alertmanager/engine bearer token
    are derived from it (``rx.token(source)``, :func:`labkit.webhooks.signing.token_for`), so a token
    seen in a log cannot forge a signature. ``secrets`` gives a source its own value, taken as
    it is (a list means several valid secrets, for key rotation). Starting a receiver stops any other
    running receiver of the same ``name`` first, so re-running a cell never leaks a server.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        secrets: dict[str, str | list[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str = ":memory:",
        max_body: int = DEFAULT_MAX_BODY,
        tolerance: int = signing.DEFAULT_TOLERANCE,
        name: str = "default",
        for_containers: bool = False,
        sync: str = "normal",
        open: Iterable[str] = (),
    ) -> None:
        self.for_containers = for_containers
        self.container_host: str | None = None
        self.container_port = 0
        self.settings = Settings.build(secret, secrets, max_body, tolerance, open)
        if not self.settings.checks_senders and (for_containers or not _loopback(host)):
            where = "to containers" if for_containers else f"on {host}"
            raise ReceiverError(
                f"A receiver that listens {where} must check its senders: give "
                "it a secret (secret=... or secrets={...}; LABKIT_WEBHOOK_SECRET "
                "for `labkit listen`). Without one it listens on 127.0.0.1 only."
            )
        self.host, self.requested_port, self.name = host, port, name
        self.log = DeliveryLog(db, sync=sync)
        self.dispatcher = Dispatcher(self.log, checks_senders=self.settings.checks_senders)
        self.app = create_app(self.log, self.settings, self.dispatcher)
        self._serving = ServerThread(self.app, name=f"labkit-receiver-{name}")
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Receiver:
        """Serve in a daemon thread; returns once the server accepts connections."""
        _RUNNING.stop_other(self.name, self)
        if self.running:
            return self
        sock = _listen(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        sockets = [sock]
        self.container_host = None
        if self.for_containers:
            gateway = docker_gateway()
            if gateway is not None:
                # The same port on the bridge gateway: containers reach the kernel through the
                # host's own bridge address, never through one other machines can reach.
                try:
                    sockets.append(_listen(gateway, self.port))
                except ReceiverError:
                    sockets.append(_listen(gateway, 0))
                self.container_host = gateway
                self.container_port = sockets[-1].getsockname()[1]
        failure = self._serving.start(sockets, timeout)
        if failure is not None:
            raise ReceiverError(f"The receiver could not start: {failure}.")
        _RUNNING.hold(self.name, self)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent). The delivery log stays readable."""
        self._serving.stop()
        self.dispatcher.stop()
        _RUNNING.release(self.name, self)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._serving.running

    def check(self) -> None:
        """Raise :class:`ReceiverError` if the server thread has died."""
        if not self._serving.started:
            raise ReceiverError("The receiver is not running: call rx.start() first.")
        if not self._serving.running:
            raise ReceiverError(
                f"The receiver's server thread died ({self._serving.error!r}). "
                "Run rx.start() again."
            )

    # --- where it is --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        self.check()
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def token(self, source: str) -> str | None:
        """What a token-presenting sender (Docker Hub, registry, Alertmanager, engine) must
        present to this receiver: its ``Authorization: Bearer`` value or ``?token=``."""
        if source not in signing.TOKEN_SOURCES:
            raise ValueError(
                f"{source} signs its deliveries rather than presenting a token; "
                f"the token sources are {', '.join(sorted(signing.TOKEN_SOURCES))}."
            )
        tokens = self.settings.secrets.get(source)
        return tokens[0] if tokens else None

    def hook_url(self, source: str) -> str:
        """The URL a sender of ``source`` posts to (Docker Hub's carries its token)."""
        if source not in SOURCES:
            raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)}.")
        url = f"{self.url}/hooks/{source}"
        if source == "dockerhub" and "dockerhub" in self.settings.secrets:
            url += "?token=" + quote(self.settings.secrets["dockerhub"][0], safe="")
        return url

    def container_url(self, source: str) -> str:
        """The hook URL as a container sees it: ``host.docker.internal``, which a container maps
        to the bridge gateway with ``extra_hosts: ["host.docker.internal:host-gateway"]``."""
        self.check()
        if self.container_host is None:
            raise ReceiverError(
                "This receiver is not reachable from containers: start it with "
                "Receiver(..., for_containers=True) on a machine with Docker."
            )
        return self.hook_url(source).replace(
            f"{self.host}:{self.port}", f"host.docker.internal:{self.container_port}", 1
        )

    # --- handlers and waiting -----------------------------------------------------------------
    def on(
        self, source: str, event: str | None = None, *, unverified: bool = False
    ) -> Callable[[Handler], Handler]:
        """Decorator: run the function for every accepted delivery of ``source`` (and ``event``).

        Handlers run in a worker thread after the 2xx has been sent. Registering a function of
        the same name again (a re-run cell) replaces the old one. On a receiver with secrets, a
        delivery that was not verified (from a source opened with ``open=``) runs only handlers
        registered with ``unverified=True``.
        """
        if source not in SOURCES and source != "*":
            raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)} or '*'.")

        def register(handler: Handler) -> Handler:
            self.dispatcher.add(source, event, handler, unverified=unverified)
            return handler

        return register

    def deliveries(self, limit: int = 50, *, source: str | None = None) -> list[Delivery]:
        """The newest ``limit`` deliveries (all statuses), newest first."""
        return self.log.latest(limit, source=source)

    def wait_for(
        self, count: int = 1, *, timeout: float = 10.0, since: int = 0, source: str | None = None
    ) -> list[Delivery]:
        """Block until ``count`` deliveries with ``seq > since`` (of ``source``, if given) are
        logged and handled; returns them oldest first."""
        deadline = Deadline(timeout)
        if count <= 0:
            self.dispatcher.idle(timeout)
            return []

        def logged() -> list[Delivery]:
            return [
                d for d in self.log.latest(max(count, 1) + 1000, source=source) if d.seq > since
            ]

        def arrived() -> list[Delivery] | None:
            got = logged()
            if len(got) >= count:
                return got
            if self._serving.started:
                self.check()  # a server that died says so now, not after the timeout
            return None

        def late() -> TimeoutError:
            what = f"{source} deliveries" if source else "deliveries"
            return TimeoutError(f"Only {len(logged())} of {count} {what} arrived in {timeout} s.")

        got = wait_until(arrived, timeout=timeout, interval=0.01, error=late)
        self.dispatcher.idle(deadline.left())
        return list(reversed(got))[:count]

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued handler has run."""
        return self.dispatcher.idle(timeout)

    def __repr__(self) -> str:
        state = f"listening on {self.host}:{self.port}" if self.running else "stopped"
        return f"<Receiver {self.name!r} {state}>"


def secret_from_env() -> str | None:
    """``LABKIT_WEBHOOK_SECRET``, the CLI's default secret."""
    return setting("LABKIT_WEBHOOK_SECRET") or None
