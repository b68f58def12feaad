"""The pipeline: verified pushes start build -> ship; the registry's webhook starts deploy -> monitor; alerts come back.

Every step is driven by a real webhook arriving at the receiver, as in a real deployment chain:

1. ``git push`` -> the repository's hook sends a signed GitHub ``push`` -> a *trigger* (a handler
   on the receiver: the kit's, or one a lesson has the learner write) calls :meth:`Pipeline.release`,
   and the pipeline builds the pushed commit and ships it to the runtime's registry;
2. the registry sends its ``push`` notification for the new tag -> the pipeline deploys that tag
   (the new version must get healthy, or it is rolled back and the old one keeps serving);
3. the pipeline watches the new version settle; from then on the runtime's monitor sends
   Alertmanager alerts (and engine events), and a ``firing`` alert marks the serving run failed.

After each deploy the pipeline can tell a monitoring tool about it (:meth:`Pipeline.notify_deploys`):
a signed Standard Webhooks message ``deployment.succeeded`` or ``deployment.rolled_back``.

Handlers only queue work (a receiver must answer fast); one worker thread runs the stages in order,
and records each in a :class:`~labkit.pipeline.runs.RunStore`. A commit is built once, however often it is
pushed or its delivery repeated.
"""

from __future__ import annotations

import queue
import re
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from labkit.errors import LabkitError, PipelineError
from labkit.named import ByName
from labkit.pipeline.runs import FAILED, PASSED, ROLLED_BACK, RUNNING, PipelineRun, RunStore
from labkit.runtime.base import Artifact, Runtime, WebhookTargets
from labkit.runtime.composefile import dockerfile_instructions
from labkit.waiting import wait_until, waited
from labkit.webhooks.events import standard
from labkit.webhooks.sender import send
from labkit.webhooks.store import Delivery

if TYPE_CHECKING:
    from labkit.pipeline.gitsource import GitSource
    from labkit.webhooks.receiver import Receiver

PIPELINES: ByName[Pipeline] = ByName()
_ZERO = "0" * 40
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass
class _Awaiting:
    """A shipped run that waits for the registry's webhook before it deploys."""

    run_id: int
    artifact: Artifact
    deadline: float


@dataclass(frozen=True)
class _Release:
    """A trigger's request: build and ship this commit (the push that asked, if any)."""

    commit: str
    delivery: Delivery | None


@dataclass
class _Settling:
    """A deployed run whose new version must stay healthy for a moment before it passes."""

    run_id: int
    until: float
    deadline: float
    healthy_since: float | None = None


class Pipeline:
    """Push -> build -> ship -> deploy -> monitor for one service, driven by webhooks.

    ``receiver`` gets the webhooks (its secrets authenticate them: only verified deliveries
    act); ``runtime`` builds, ships and runs the versions; ``source`` is the repository whose
    pushes to its default branch are deployed. ``health_timeout``: how long a new version has
    to become healthy before it is rolled back; ``registry_timeout``: how long to wait for the
    registry's webhook after shipping; ``settle``: how long a new version must stay healthy
    before its run passes. A pipeline of the same ``name`` started again replaces the old one.

    ``trigger=False`` leaves pushes to a trigger of your own: a handler on the receiver that
    calls :meth:`release` (the stages stay the kit's); :meth:`add_kit_trigger` adds the kit's.
    """

    def __init__(
        self,
        receiver: Receiver,
        runtime: Runtime,
        source: GitSource,
        *,
        name: str = "default",
        service: str = "web",
        health_timeout: float = 10.0,
        registry_timeout: float = 15.0,
        settle: float = 1.0,
        db: str | Path = ":memory:",
        trigger: bool = True,
    ) -> None:
        self.receiver, self.runtime, self.source = receiver, runtime, source
        self.name, self.service = name, service
        self.health_timeout, self.registry_timeout, self.settle = (
            health_timeout,
            registry_timeout,
            settle,
        )
        self.runs = RunStore(db)
        self.trigger = trigger
        #: Every commit a trigger asked :meth:`release` to build, in order (repeats included).
        self.releases: list[str] = []
        #: Every deploy notification sent (:meth:`notify_deploys`): what went where, and how.
        self.notifications: list[Any] = []
        self._notify: tuple[str, str | None] | None = None
        #: What the pipeline decided about deliveries it did not act on (newest last).
        self.notes: deque[str] = deque(maxlen=200)
        self._jobs: queue.Queue[tuple[str, Delivery | _Release | None] | None] = queue.Queue()
        self._awaiting: dict[tuple[str, str], _Awaiting] = {}
        self._settling: dict[int, _Settling] = {}
        self._serving_run: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._busy = threading.Event()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Listen for pushes, registry notifications and alerts; returns ``self``."""
        PIPELINES.stop_other(self.name, self)
        if self.running:
            return self
        self.receiver.check()
        self.runtime.send_webhooks_to(WebhookTargets.of(self.receiver))
        self._stopped.clear()
        for source, event, kind in (
            ("github", "push", "push"),
            ("registry", "push", "registry"),
            ("alertmanager", None, "alert"),
        ):
            if kind != "push" or self.trigger:
                self.receiver.on(source, event)(self._handler(kind))
        self._thread = threading.Thread(
            target=self._work, daemon=True, name=f"labkit-pipeline-{self.name}"
        )
        self._thread.start()
        PIPELINES.hold(self.name, self)
        return self

    def stop(self) -> None:
        """Stop acting on webhooks (idempotent). The runtime keeps running; stop it yourself."""
        self._stopped.set()
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
        self._thread = None
        PIPELINES.release(self.name, self)

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _handler(self, kind: str) -> Any:
        def handle(delivery: Delivery) -> None:
            if not self._stopped.is_set():
                self._jobs.put((kind, delivery))

        # The receiver replaces a handler of the same name: a re-run cell leaves one.
        handle.__name__ = f"pipeline_{self.name}_{kind}"
        return handle

    # --- triggers and notifications -----------------------------------------------------------
    def release(self, commit: str, delivery: Delivery | None = None) -> None:
        """Build and ship ``commit`` (a full commit id); the registry's webhook then deploys it.

        What a trigger calls from its handler: it only queues the work, so the receiver's
        handler returns at once. ``delivery`` (the push) names the commit's message, author and
        delivery id in the run. A commit already built is not built again (``notes`` says so).
        """
        commit = str(commit).strip()
        if not _COMMIT.fullmatch(commit):
            raise ValueError(
                f"{commit!r} is not a full commit id (40 hex digits): pass the push's "
                'payload["after"].'
            )
        self.releases.append(commit)
        if not self._stopped.is_set():
            self._jobs.put(("release", _Release(commit, delivery)))

    def add_kit_trigger(self) -> None:
        """Add the kit's own trigger on the receiver (next to any of yours), as ``trigger=True``."""
        self.trigger = True
        self.receiver.on("github", "push")(self._handler("push"))

    def notify_deploys(self, url: str, *, secret: str | None = None) -> None:
        """After every deploy, send a Standard Webhooks message to ``url`` (a monitoring tool):
        ``deployment.succeeded`` or ``deployment.rolled_back``, signed with ``secret``."""
        self._notify = (url, secret)

    def _send_notification(self, kind: str, rid: int, artifact: Artifact, detail: str) -> None:
        if self._notify is None:
            return

        url, secret = self._notify
        run = self.runs.get(rid)
        event = standard.message(
            f"deployment.{kind}",
            {
                "service": artifact.service,
                "version": artifact.tag,
                "commit": artifact.commit,
                "run": rid,
                "message": run.message if run is not None else "",
                "detail": detail,
            },
            secret=secret,
        )

        def deliver() -> None:
            outcome = send(event, url, secret=secret, retries=3, backoff=0.2, timeout=5)
            self.notifications.append(outcome)
            if not outcome.ok:
                self.runs.log(rid, "deploy", f"deploy notification NOT delivered: {outcome!r}")

        self.runs.log(rid, "deploy", f"deploy notification deployment.{kind} -> {url}")
        threading.Thread(target=deliver, daemon=True, name="labkit-deploy-notify").start()

    # --- what notebooks and tests ask --------------------------------------------------------
    @property
    def url(self) -> str:
        """Where the service answers (the same address across deploys)."""
        return self.runtime.url(self.service)

    def latest(self) -> PipelineRun | None:
        runs = self.runs.latest(1, pipeline=self.name)
        return runs[0] if runs else None

    def history(self, limit: int = 20) -> list[PipelineRun]:
        """Runs, newest first."""
        return self.runs.latest(limit, pipeline=self.name)

    def run_of(self, commit: str) -> PipelineRun | None:
        return self.runs.for_commit(commit, pipeline=self.name)

    def wait(self, commit: str, timeout: float = 60.0) -> PipelineRun:
        """Block until the run of ``commit`` has finished (passed or failed); return it."""

        def finished() -> PipelineRun | None:
            run = self.run_of(commit)
            if run is not None and run.finished:
                return run
            if not self.running:
                raise PipelineError("The pipeline is stopped: start it with pipeline.start().")
            return None

        def late() -> PipelineError:
            run = self.run_of(commit)
            if run is None:
                return PipelineError(
                    f"No run for commit {commit[:7]} started within {timeout:g} s: was it "
                    f"pushed to {self.source.branch}? pipeline.notes says what was ignored."
                )
            return PipelineError(
                f"The run of {commit[:7]} did not finish within {timeout:g} s: {run.summary()}."
            )

        return wait_until(finished, timeout=timeout, interval=0.02, error=late)

    def idle(self, timeout: float = 30.0) -> bool:
        """Wait until no job is queued or running and no run waits or settles."""
        return waited(
            lambda: (
                self._jobs.empty()
                and not self._busy.is_set()
                and not self._awaiting
                and not self._settling
            ),
            timeout=timeout,
            interval=0.02,
        )

    def __repr__(self) -> str:
        state = "listening" if self.running else "stopped"
        return (
            f"<Pipeline {self.name!r}: pushes to {self.source.full_name} "
            f"{self.source.branch} -> build, ship, deploy, monitor; {state}>"
        )

    # --- the worker ---------------------------------------------------------------------------
    def _note(self, text: str) -> None:
        self.notes.append(text)

    def _work(self) -> None:
        handlers: dict[str, Any] = {
            "push": self._on_push,
            "registry": self._on_registry,
            "alert": self._on_alert,
            "release": self._on_release,
        }
        while True:
            try:
                job = self._jobs.get(timeout=0.05)
            except queue.Empty:
                job = ("tick", None)
            if job is None:
                return
            self._busy.set()
            try:
                kind, item = job
                if item is not None:
                    handlers[kind](item)
                self._tick()
            except Exception as exc:  # noqa: BLE001 - one bad job must not stop the pipeline
                self._note(f"internal error: {type(exc).__name__}: {exc}")
            finally:
                self._busy.clear()

    # --- 1. a push: build and ship ------------------------------------------------------------
    def _on_push(self, delivery: Delivery) -> None:
        payload = delivery.payload or {}
        ref, after = payload.get("ref"), str(payload.get("after") or "")
        repository = (payload.get("repository") or {}).get("full_name")
        if not delivery.verified:
            self._note(
                f"ignored push {delivery.id}: its signature was not verified (give the "
                "receiver a secret, and the repository the same one)"
            )
            return
        if repository != self.source.full_name:
            self._note(
                f"ignored push to {repository}: this pipeline deploys {self.source.full_name}"
            )
            return
        if ref != self.source.ref:
            self._note(f"ignored push to {ref}: only {self.source.ref} is deployed")
            return
        if payload.get("deleted") or after == _ZERO:
            self._note(f"ignored push that deleted {ref}")
            return
        self._on_release(_Release(after, delivery))

    def _on_release(self, release: _Release) -> None:
        delivery, commit = release.delivery, release.commit
        if commit == _ZERO:
            self._note("release of 0000000 ignored: a deleted branch has nothing to build")
            return
        payload = (delivery.payload or {}) if delivery is not None else {}
        head = payload.get("head_commit") or {"message": self._commit_message(commit)}
        run = self.runs.open_run(
            pipeline=self.name,
            service=self.service,
            commit=commit,
            ref=str(payload.get("ref") or self.source.ref),
            message=str(head.get("message", "")).splitlines()[0] if head.get("message") else "",
            author=str((head.get("author") or {}).get("name", "")),
            delivery_id=(delivery.id or "") if delivery is not None else "",
        )
        if run is None:
            earlier = self.run_of(commit)
            via = f"push {delivery.id}" if delivery is not None else "a release"
            self._note(
                f"{via} of {commit[:7]} ignored: run "
                f"{earlier.id if earlier else '?'} already built that commit"
            )
            return
        self._build_and_ship(run)

    def _commit_message(self, commit: str) -> str:
        try:
            return self.source.git("log", "-1", "--format=%s", commit).strip()
        except Exception:  # noqa: BLE001 - a missing message only leaves the run's blank
            return ""

    def _build_and_ship(self, run: PipelineRun) -> None:
        rid = run.id
        serving = self.runtime.current(self.service)
        keeps = f"{serving.ref} keeps serving" if serving else "nothing was serving"
        self.runs.stage(rid, "build", RUNNING, f"building {run.short}")
        try:
            with tempfile.TemporaryDirectory(prefix="labkit-build-") as checkout:
                self.source.export(run.commit, checkout)
                if self.runtime.name != "docker":
                    self._say_dockerfile_not_run(Path(checkout), rid)
                artifact = self.runtime.build(
                    Path(checkout), run.commit, service=self.service, log=self._logger(rid, "build")
                )
        except Exception as exc:  # noqa: BLE001 - any failure fails the stage, with its reason
            self._fail(rid, "build", exc, f"build failed; {keeps}")
            return
        self.runs.stage(rid, "build", PASSED, f"built {artifact.ref}")
        self.runs.stage(rid, "ship", RUNNING, f"pushing {artifact.ref}")
        try:
            artifact = self.runtime.ship(artifact, log=self._logger(rid, "ship"))
        except Exception as exc:  # noqa: BLE001
            self._fail(rid, "ship", exc, f"ship failed; {keeps}")
            return
        self.runs.set_artifact(rid, artifact.ref)
        self.runs.stage(rid, "ship", PASSED, f"{artifact.ref} is in the registry")
        self.runs.stage(rid, "deploy", RUNNING, "waiting for the registry's webhook")
        self.runs.log(
            rid, "deploy", f"waiting for the registry's push notification of {artifact.ref}"
        )
        self._awaiting[(artifact.service, artifact.tag)] = _Awaiting(
            rid, artifact, time.monotonic() + self.registry_timeout
        )

    def _say_dockerfile_not_run(self, checkout: Path, rid: int) -> None:
        """The local stand-in has no engine: say what it does with the commit's Dockerfile."""
        dockerfile = checkout / "Dockerfile"
        if not dockerfile.is_file():
            self.runs.log(rid, "build", "no Dockerfile in this commit")
            return
        steps = [keyword for keyword, _ in dockerfile_instructions(dockerfile.read_text())]
        self.runs.log(
            rid,
            "build",
            f"Dockerfile: {len(steps)} instructions ({' '.join(steps)}), read but NOT run: the "
            f"{self.runtime.name} runtime has no engine. It runs its own fixed steps instead "
            "(compile every module, pack the files); Docker would run each instruction.",
        )

    # --- 2. the registry's webhook: deploy -----------------------------------------------------
    def _on_registry(self, delivery: Delivery) -> None:
        for event in (delivery.payload or {}).get("events", []):
            target = event.get("target") or {}
            key = (str(target.get("repository")), str(target.get("tag")))
            if event.get("action") != "push" or not target.get("tag"):
                continue  # blob pushes: the manifest push is the one with the tag
            waiting = self._awaiting.get(key)
            if waiting is None:
                self._note(f"registry push of {key[0]}:{key[1]} ignored: no run waits for it")
                continue
            del self._awaiting[key]
            rid = waiting.run_id
            if not delivery.verified:
                self._fail(
                    rid,
                    "deploy",
                    None,
                    "the registry's webhook was not verified: give "
                    "the receiver a registry token (Receiver(secret=...))",
                )
                continue
            self.runs.log(
                rid,
                "deploy",
                f"registry webhook {delivery.id}: {key[0]}:{key[1]} "
                f"pushed ({str(target.get('digest'))[:19]})",
            )
            self._deploy(rid, waiting.artifact)

    def _deploy(self, rid: int, artifact: Artifact) -> None:
        newer = [r for r in self.history(50) if r.id > rid and r.stage("deploy").status == PASSED]
        if newer:
            self.runs.stage(rid, "deploy", "skipped", f"run {newer[0].id} deployed a newer commit")
            self.runs.finish(rid, FAILED, f"superseded by run {newer[0].id}")
            return
        self.runs.stage(rid, "deploy", RUNNING, f"deploying {artifact.ref}")
        try:
            result = self.runtime.deploy(
                artifact, health_timeout=self.health_timeout, log=self._logger(rid, "deploy")
            )
        except Exception as exc:  # noqa: BLE001
            self._fail(rid, "deploy", exc, "deploy failed")
            return
        if result.rolled_back:
            self.runs.stage(rid, "deploy", ROLLED_BACK, result.reason)
            self.runs.finish(rid, FAILED, f"rolled back: {result.reason}")
            self._send_notification("rolled_back", rid, artifact, result.reason)
            return
        self.runs.stage(rid, "deploy", PASSED, f"{artifact.ref} serves")
        if result.previous_exit_code is not None and result.previous is not None:
            self.runs.log(
                rid,
                "deploy",
                f"the version that served before ({result.previous.ref}) exited with code "
                f"{result.previous_exit_code}",
            )
        self._send_notification("succeeded", rid, artifact, f"{artifact.ref} serves")
        self._serving_run = rid
        self.runs.stage(rid, "monitor", RUNNING, f"watching {artifact.ref}")
        now = time.monotonic()
        self._settling[rid] = _Settling(
            rid, until=now + self.settle, deadline=now + self.settle + self.health_timeout
        )

    # --- 3. monitor: settle, then alerts -------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        for key, waiting in list(self._awaiting.items()):
            if now > waiting.deadline:
                del self._awaiting[key]
                self._fail(
                    waiting.run_id,
                    "deploy",
                    None,
                    f"the registry's webhook for {key[0]}:{key[1]} did not arrive within "
                    f"{self.registry_timeout:g} s: is the receiver running, and does the "
                    "registry have its URL and token?",
                )
        for rid, settling in list(self._settling.items()):
            ok = self._healthy()
            if ok and settling.healthy_since is None:
                settling.healthy_since = now
            elif not ok:
                settling.healthy_since = None
            if (
                settling.healthy_since is not None
                and now >= settling.until
                and now - settling.healthy_since >= min(self.settle, 0.5)
            ):
                del self._settling[rid]
                self.runs.log(
                    rid,
                    "monitor",
                    f"healthy for {self.settle:g} s; from now on the "
                    "monitor's alerts arrive as webhooks",
                )
                self.runs.stage(rid, "monitor", PASSED, "healthy; alerts arrive as webhooks")
                self.runs.finish(rid, PASSED, "serving")
            elif now > settling.deadline:
                del self._settling[rid]
                self._fail(rid, "monitor", None, "the new version did not stay healthy")

    def _healthy(self) -> bool:
        try:
            with httpx.Client(timeout=1.0, trust_env=False) as client:
                return client.get(self.url + "/healthz").is_success
        except httpx.HTTPError:
            return False

    def _on_alert(self, delivery: Delivery) -> None:
        rid = self._serving_run
        if rid is None or not delivery.verified:
            self._note(f"alert {delivery.id} noted: no verified alert for a serving run")
            return
        serving = self.runtime.current(self.service)
        for alert in (delivery.payload or {}).get("alerts", []):
            labels = alert.get("labels") or {}
            if self.service not in (labels.get("service"), labels.get("job")):
                continue
            name = labels.get("alertname", "alert")
            version = labels.get("version")
            if version and serving is not None and version != serving.tag:
                # About a version that no longer serves (Prometheus may scrape a replaced
                # container for a moment): news about the past, not about the serving run.
                self.runs.log(
                    rid,
                    "monitor",
                    f"alert {name} {alert.get('status')} about "
                    f"{version}, which no longer serves: noted "
                    f"(webhook {delivery.id})",
                )
                continue
            summary = (alert.get("annotations") or {}).get("summary", "")
            status = alert.get("status")
            self.runs.log(
                rid, "monitor", f"alert {name} {status}: {summary} (webhook {delivery.id})"
            )
            if status == "firing":
                self._settling.pop(rid, None)
                self.runs.stage(rid, "monitor", FAILED, f"alert {name} firing: {summary}")
                self.runs.reopen(rid, FAILED, f"alert {name} firing")
            elif status == "resolved":
                self.runs.stage(rid, "monitor", PASSED, f"alert {name} resolved")
                self.runs.reopen(rid, PASSED, f"alert {name} resolved")

    # --- helpers ------------------------------------------------------------------------------
    def _logger(self, rid: int, stage: str) -> Any:
        def log(line: str) -> None:
            self.runs.log(rid, stage, line)

        return log

    def _fail(self, rid: int, stage: str, exc: BaseException | None, reason: str) -> None:
        what = (
            str(exc)
            if isinstance(exc, LabkitError)
            else (f"{type(exc).__name__}: {exc}" if exc is not None else reason)
        )
        self.runs.log(rid, stage, what)
        self.runs.stage(rid, stage, FAILED, what)
        self.runs.finish(rid, FAILED, reason if exc is None else f"{reason}: {what}")


class Traffic:
    """Calls a URL over and over in a background thread and counts what fails (a rollout's witness).

    >>> with Traffic(pipeline.url) as traffic:   # doctest: +SKIP
    ...     src.push()
    >>> traffic.failed                           # doctest: +SKIP
    0

    ``seen`` lists the distinct values of the JSON field ``field`` in the order they first
    answered (which versions served); ``failures`` says what went wrong, request by request.
    """

    def __init__(
        self, url: str, *, path: str = "/", field: str = "message", clients: int = 2
    ) -> None:
        self.url, self.path, self.field, self.clients = url, path, field, clients
        self.ok = 0
        self.failures: list[str] = []
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def start(self) -> Traffic:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, daemon=True, name=f"labkit-traffic-{i}")
            for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Traffic:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        return self

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.url + self.path)
                    if not response.is_success:
                        problem: str | None = f"HTTP {response.status_code}"
                        value = None
                    else:
                        problem = None
                        body = response.json()
                        value = str(body.get(self.field)) if isinstance(body, dict) else None
                except (httpx.HTTPError, ValueError) as exc:
                    problem, value = f"{type(exc).__name__}: {exc}", None
                with self._lock:
                    if problem is not None:
                        self.failures.append(problem)
                    else:
                        self.ok += 1
                        if value is not None and value not in self.seen:
                            self.seen.append(value)

    def __repr__(self) -> str:
        return f"<Traffic to {self.url}{self.path}: {self.total} requests, {self.failed} failed>"


__all__ = ["Pipeline", "PipelineError", "Traffic", "dockerfile_instructions"]
