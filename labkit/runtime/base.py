"""What every runtime does for the pipeline: build, ship, deploy, say where a service is, and clean up.

Two runtimes implement :class:`Runtime`: the Docker one (image build through the Docker SDK, push to a
registry container, a new container that must get healthy before traffic switches) and the local one
(a content-addressed snapshot, a local store, uvicorn processes behind a front proxy). The pipeline only
talks to this interface, so a lesson runs the same cells on both.

A runtime knows nothing about receivers or handlers. Like a real registry or Alertmanager, it is only
*configured* with where to send its notifications (:class:`WebhookTargets`: URLs and a bearer token).
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from labkit.errors import BuildError, DeployError, RuntimeFailure, RuntimeUnavailable, ShipError
from labkit.runtime.proxy import Front
from labkit.waiting import Deadline
from labkit.webhooks.events import Event
from labkit.webhooks.sender import send

#: Where build, ship and deploy write their log lines (one line per call, no newline).
LogSink = Callable[[str], None]
DeploymentStatus = Literal["deployed", "rolled back"]
DEPLOYED: DeploymentStatus = "deployed"
ROLLED_BACK: DeploymentStatus = "rolled back"


def _ignore(line: str) -> None:
    """The log sink used when the caller gives none."""


@dataclass(frozen=True)
class Artifact:
    """One built version of a service: what a Docker image is to the Docker runtime.

    ``tag`` is the short commit id, ``digest`` the content address (``sha256:<hex>``),
    ``location`` where the runtime keeps it (a file, an image id, a registry reference).
    """

    service: str
    commit: str
    tag: str
    digest: str
    size: int
    location: str
    shipped: bool = False

    @property
    def ref(self) -> str:
        """``service:tag``, the name people use for it."""
        return f"{self.service}:{self.tag}"

    def __str__(self) -> str:
        return f"{self.ref} ({self.digest[:19]}, {self.size} bytes)"


@dataclass(frozen=True)
class Deployment:
    """The result of :meth:`Runtime.deploy`: the new version serves, or it was rolled back."""

    service: str
    status: DeploymentStatus
    attempted: Artifact
    serving: Artifact | None
    previous: Artifact | None
    reason: str
    seconds: float
    url: str
    #: How the version that served before ended once replaced: 0 or 143 when it stopped on
    #: SIGTERM within the grace period (as ``docker stop``), 137 when it had to be killed;
    #: ``None`` when nothing was replaced.
    previous_exit_code: int | None = None

    @classmethod
    def replaced(
        cls,
        service: str,
        artifact: Artifact,
        previous: Artifact | None,
        *,
        seconds: float,
        url: str,
        previous_exit_code: int | None,
    ) -> Deployment:
        """The new version is healthy and serves where the old one did."""
        return cls(
            service=service,
            status=DEPLOYED,
            attempted=artifact,
            serving=artifact,
            previous=previous,
            seconds=seconds,
            url=url,
            reason="healthy, serving at the same address as before",
            previous_exit_code=previous_exit_code,
        )

    @classmethod
    def kept(
        cls,
        service: str,
        artifact: Artifact,
        kept: Artifact | None,
        *,
        seconds: float,
        url: str,
        reason: str,
    ) -> Deployment:
        """The new version never got healthy: ``kept`` (or nothing) still serves."""
        return cls(
            service=service,
            status=ROLLED_BACK,
            attempted=artifact,
            serving=kept,
            previous=kept,
            seconds=seconds,
            url=url,
            reason=reason,
        )

    @property
    def ok(self) -> bool:
        return self.status == DEPLOYED

    @property
    def rolled_back(self) -> bool:
        return self.status == ROLLED_BACK

    def __str__(self) -> str:
        if self.ok:
            return f"{self.attempted.ref} deployed: {self.reason}"
        return f"{self.attempted.ref} rolled back: {self.reason}"


class HasHookUrl(Protocol):
    """Anything that says where each kind of webhook goes (a :class:`labkit.Receiver`)."""

    def hook_url(self, source: str) -> str: ...


@dataclass(frozen=True)
class WebhookTargets:
    """Where a runtime's registry, monitor and engine send their webhooks, and the bearer token.

    The same settings a real registry (``notifications.endpoints``), Alertmanager
    (``webhook_configs``) and an engine-event forwarder would be given.
    """

    registry: str | None = None
    alertmanager: str | None = None
    engine: str | None = None
    token: str | None = None

    @classmethod
    def of(cls, receiver: HasHookUrl, token: str | None = None) -> WebhookTargets:
        """The receiver's hook URLs; ``token`` defaults to its registry secret if it has one."""
        if token is None:
            settings = getattr(receiver, "settings", None)
            secrets: dict[str, list[str]] = getattr(settings, "secrets", {}) or {}
            tokens = secrets.get("registry") or []
            token = tokens[0] if tokens else None
        return cls(
            registry=receiver.hook_url("registry"),
            alertmanager=receiver.hook_url("alertmanager"),
            engine=receiver.hook_url("engine"),
            token=token,
        )

    def url_for(self, source: str) -> str | None:
        return {
            "registry": self.registry,
            "alertmanager": self.alertmanager,
            "engine": self.engine,
        }.get(source)


@dataclass
class NotifierStats:
    """How the notifier's deliveries went: sent (2xx), failed (after retries), dropped (no target)."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str = ""


class Notifier:
    """Posts a runtime's events in the background, in order, with retries (as a registry does).

    Each runtime part queues :class:`~labkit.webhooks.events.Event` values; one thread sends them to the
    :class:`WebhookTargets` of the moment. Sending never blocks the part that queued the event.
    """

    def __init__(
        self, name: str, *, retries: int = 3, backoff: float = 0.2, timeout: float = 5.0
    ) -> None:
        self.name = name
        self.targets = WebhookTargets()
        self.stats = NotifierStats()
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"labkit-notifier-{self.name}"
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the thread."""
        self.flush(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=2)
        self._thread = None

    def post(self, event: Event) -> None:
        """Queue ``event`` for its source's target (dropped, and counted, if it has none)."""
        with self._lock:
            self._pending += 1
        self._queue.put(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was sent or given up on; ``False`` on timeout."""
        deadline = Deadline(timeout)
        with self._lock:
            while self._pending:
                left = deadline.left()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._lock.wait(left)
        return True

    def _run(self) -> None:

        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                url = self.targets.url_for(event.source)
                if url is None:
                    self.stats.dropped += 1
                    continue
                outcome = send(
                    event,
                    url,
                    secret=self.targets.token,
                    retries=self.retries,
                    backoff=self.backoff,
                    timeout=self.timeout,
                )
                if outcome.ok:
                    self.stats.sent += 1
                else:
                    self.stats.failed += 1
                    self.stats.last_error = f"{event.kind} to {url}: {outcome!r} {outcome.detail}"
            except Exception as exc:  # noqa: BLE001 - a lost notification must not kill the thread
                self.stats.failed += 1
                self.stats.last_error = f"{event.kind}: {type(exc).__name__}: {exc}"
            finally:
                with self._lock:
                    self._pending -= 1
                    self._lock.notify_all()


class Runtime(ABC):
    """Runs the lab's services for the pipeline: build, ship, deploy, and where they answer.

    ``name`` is ``"docker"`` or ``"local"``; ``reason`` says why this runtime was chosen;
    ``what`` says in a few words what it really is (lessons print it, so nobody mistakes one
    for the other). Start it (or use it as a context manager) before the first build; starting
    a runtime of the same ``instance`` name again stops the old one first.
    """

    name: str = ""
    what: str = ""

    def __init__(self, instance: str = "default", *, reason: str = "") -> None:
        self.instance, self.reason = instance, reason
        # One front per service: the stable address that deploys switch behind.
        self._fronts: dict[str, Front] = {}
        self._lock = threading.RLock()

    def _front(self, service: str) -> Front:
        with self._lock:
            front = self._fronts.get(service)
            if front is None or not front.running:
                front = Front(f"{self.instance}-{service}", service=service).start()
                self._fronts[service] = front
            return front

    def _stop_fronts(self) -> None:
        for front in self._fronts.values():
            front.stop()
        self._fronts.clear()

    # --- lifecycle ------------------------------------------------------------------------
    @abstractmethod
    def start(self) -> Runtime:
        """Get ready (reap what a dead earlier session left behind); returns ``self``."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every service this runtime started and its helpers (idempotent)."""

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @abstractmethod
    def send_webhooks_to(self, targets: WebhookTargets) -> None:
        """Where the registry, the monitor's alerts and engine events go from now on."""

    # --- the pipeline's stages ------------------------------------------------------------
    @abstractmethod
    def build(
        self, source_dir: Path, commit: str, *, service: str = "web", log: LogSink = _ignore
    ) -> Artifact:
        """Build ``source_dir`` (a checkout of ``commit``), tagged with the short commit id.

        Raises :class:`BuildError` (with the failing step in its message) when the build fails.
        """

    @abstractmethod
    def ship(self, artifact: Artifact, *, log: LogSink = _ignore) -> Artifact:
        """Store ``artifact`` in the runtime's registry, which notifies its webhook target."""

    @abstractmethod
    def deploy(
        self, artifact: Artifact, *, health_timeout: float = 10.0, log: LogSink = _ignore
    ) -> Deployment:
        """Start ``artifact`` next to the old version, switch traffic once it is healthy.

        No request fails during the switch. A version that is not healthy within
        ``health_timeout`` seconds is stopped and the old one keeps serving: the result's
        ``status`` is ``"rolled back"`` and its ``reason`` says what the health check saw.
        """

    # --- where things are -----------------------------------------------------------------
    @abstractmethod
    def url(self, service: str = "web") -> str:
        """The stable address of ``service`` (on 127.0.0.1), the same across deploys."""

    @abstractmethod
    def current(self, service: str = "web") -> Artifact | None:
        """The version of ``service`` that serves now, if any."""

    def logs(self, service: str = "web", lines: int = 50) -> str:
        """The last ``lines`` lines the serving version wrote."""
        return ""

    def describe(self) -> str:
        """``<name> runtime: <what>``, for a lesson to print."""
        return f"{self.name} runtime: {self.what}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance!r}: {self.what}>"


__all__ = [
    "DEPLOYED",
    "ROLLED_BACK",
    "Artifact",
    "BuildError",
    "DeployError",
    "Deployment",
    "HasHookUrl",
    "LogSink",
    "Notifier",
    "Runtime",
    "RuntimeFailure",
    "RuntimeUnavailable",
    "ShipError",
    "WebhookTargets",
]
