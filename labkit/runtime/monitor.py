"""Docker engine container events, forwarded to a receiver as webhooks (the monitor's eyes on Docker)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from labkit import engine
from labkit.errors import LabkitError
from labkit.webhooks import events
from labkit.webhooks.sender import HasHookUrl, Outcome, send

#: What a pipeline cares about; ``exec_*`` events from every health probe are left out.
DEFAULT_ACTIONS = ("start", "die", "oom", "health_status")


class EngineWatch:
    """Stream container events from the Docker engine and POST each one to ``to``.

    >>> with EngineWatch(rx, project="pipeline"):   # doctest: +SKIP
    ...     ...                                     # container starts and deaths arrive at rx

    ``secret`` is the bearer token the events present; sent to a :class:`Receiver`, it is
    that receiver's own (``rx.token("engine")``) unless given. ``project`` limits the watch to one Compose project's containers (by its label), ``labels``
    to containers carrying every one of these ``key=value`` labels.
    Sending happens in the watch thread, with the sender's retries; the engine's stream is
    closed by :meth:`stop`, which ends the thread promptly.
    """

    def __init__(
        self,
        to: str | HasHookUrl,
        *,
        secret: str | None = None,
        project: str | None = None,
        labels: Sequence[str] = (),
        actions: Sequence[str] = DEFAULT_ACTIONS,
    ) -> None:
        if secret is None and not isinstance(to, str) and hasattr(to, "token"):
            secret = to.token("engine")  # a Receiver: the bearer token it expects from the engine
        self.to, self.secret, self.project, self.actions = to, secret, project, tuple(actions)
        self.labels = [*([f"com.docker.compose.project={project}"] if project else []), *labels]
        self.sent: list[Outcome] = []
        self._stream: Any = None
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> EngineWatch:
        if self.running:
            return self
        try:
            self._client = engine.client(timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means "no usable engine"
            raise LabkitError(
                f"No Docker engine answers ({exc}); start Docker, or use the "
                "local runtime, whose monitor needs no engine."
            ) from None
        filters: dict[str, Any] = {"type": "container", "event": list(self.actions)}
        if self.labels:
            filters["label"] = list(self.labels)
        self._stream = self._client.api.events(decode=True, filters=filters)
        self._thread = threading.Thread(target=self._run, name="labkit-engine-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for raw in self._stream:
                if raw.get("Type", "container") != "container":
                    continue
                event = events.engine.from_engine(raw)
                self.sent.append(send(event, self.to, secret=self.secret, retries=3, backoff=0.2))
        except Exception as exc:  # noqa: BLE001 - a closed stream ends here too
            if self._stream is not None:
                self.error = exc

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> EngineWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        scope = f"containers labelled {', '.join(self.labels)}" if self.labels else "all containers"
        return (
            f"<EngineWatch of {scope}: {'running' if self.running else 'stopped'}, "
            f"{len(self.sent)} events forwarded>"
        )
