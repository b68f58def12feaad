"""The Docker runtime: image builds through the SDK, the pipeline's Compose stack, blue/green containers.

build  = ``docker build`` of the pushed commit (the app's Dockerfile, FROM an offline-built image)
ship   = push to the stack's CNCF distribution registry, whose ``notifications:`` post to the receiver
deploy = a new container next to the old one on the stack's network; traffic switches at the front
         once the container's own HEALTHCHECK says healthy; an unhealthy one is removed and the old
         keeps serving
monitor = the stack's Prometheus scrapes the serving container (file-based service discovery) and
         its Alertmanager sends the alerts as webhooks; Docker engine events (start, die,
         health_status) of the app's containers are forwarded as webhooks too

The stack is ``compose/pipeline/`` (registry, prometheus and alertmanager are started from it;
its own ``web`` and ``db`` are for ``labkit stack up pipeline``), under the project
``labkit-<instance>``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from labkit import engine
from labkit.errors import StackError
from labkit.named import ByName
from labkit.paths import labkit_home, project_name
from labkit.runtime.base import (
    Artifact,
    BuildError,
    DeployError,
    Deployment,
    LogSink,
    Runtime,
    RuntimeUnavailable,
    ShipError,
    WebhookTargets,
    _ignore,
)
from labkit.runtime.compose import Stack
from labkit.runtime.monitor import EngineWatch
from labkit.waiting import Deadline

WHAT = "real containers on this machine's Docker engine, images kept in a local registry container"
REGISTRY_IMAGE = "labkit/registry:bookworm"
APP_BASE_IMAGE = "labkit/python-app:bookworm"
IMAGES = (
    REGISTRY_IMAGE,
    APP_BASE_IMAGE,
    "labkit/prometheus:bookworm",
    "labkit/alertmanager:bookworm",
)
STACK = "pipeline"
INFRA = ["registry", "prometheus", "alertmanager"]  # of the stack; web versions are deployed here
LABEL = "labkit.runtime"
SERVICE_LABEL = "labkit.service"
_RUNNING: ByName[DockerRuntime] = ByName()


def container_reachable(url: str) -> str:
    """A receiver URL on 127.0.0.1 as a container reaches it (``host.docker.internal``).

    The receiver must listen on the bridge gateway too: ``Receiver(..., for_containers=True)``.
    """
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost"):
        return urlunsplit(parts._replace(netloc=f"host.docker.internal:{parts.port}"))
    return url


def _home() -> Path:
    return labkit_home()


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` in one step, so a reader (Prometheus) never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    # Made with its final mode: a secret is never readable by others, not even for a moment.
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w") as f:
        f.write(text)
    temporary.chmod(mode)
    temporary.replace(path)


@dataclass
class _Running:
    container: Any
    artifact: Artifact
    url: str


class DockerRuntime(Runtime):
    """Build, ship, deploy and monitor the lab's apps as real containers.

    The registry, Prometheus and Alertmanager come from the ``compose/pipeline`` stack, under the
    Compose project ``labkit-<instance>``; each deployed version of an app is a container the
    runtime starts on that stack's network, labelled ``labkit.runtime=<instance>``. Starting a
    runtime of the same instance removes what an earlier one left behind. Every published port
    binds 127.0.0.1; no container gets the Docker socket.
    """

    name = "docker"
    what = WHAT

    def __init__(
        self, instance: str = "default", *, reason: str = "", stop_timeout: float = 10.0
    ) -> None:
        super().__init__(instance, reason=reason)
        #: The grace period between SIGTERM and SIGKILL when a version is replaced.
        self.stop_timeout = stop_timeout
        self.project = project_name(instance)
        self.network = f"{self.project}_default"  # the stack's network, as Compose names it
        self.targets = WebhookTargets()
        self.client: Any = None
        self.stack: Stack | None = None
        self.registry_port = 0
        self.files = _home() / "docker-runtime" / instance
        self._serving: dict[str, _Running] = {}
        self._watch: EngineWatch | None = None
        self._counter = 0
        #: False builds every step again (a cold build cache, as on a fresh machine).
        self.build_cache = True

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> DockerRuntime:
        _RUNNING.stop_other(self.instance, self)
        if self.client is not None:
            return self
        try:
            self.client = engine.client()
        except Exception as exc:  # noqa: BLE001 - any failure means "no usable engine"
            self.client = None
            raise RuntimeUnavailable(
                f"No Docker engine answers ({exc}). Start Docker, or set "
                "LABKIT_RUNTIME=local to use the local runtime."
            ) from None
        missing = [i for i in IMAGES if not self._has_image(i)]
        if missing:
            self.client.close()
            self.client = None
            raise RuntimeUnavailable(
                f"Missing image(s) {', '.join(missing)}: run `labkit images "
                "build` (offline, from local material) or `labkit images "
                "load FILE` with a workshop bundle."
            )
        self._remove_apps()
        (self.files / "targets").mkdir(parents=True, exist_ok=True)
        # Private: it holds the webhook token. Prometheus reads targets/ through its own bind
        # mount, which the engine sets up as root, so only that folder is open to read.
        self.files.chmod(0o700)
        (self.files / "targets").chmod(0o755)
        self._write_targets({})
        try:
            self._start_stack(recreate=False)
        except (StackError, RuntimeUnavailable):
            self.client.close()
            self.client = None
            raise
        _RUNNING.hold(self.instance, self)
        return self

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        self._stop_fronts()
        self._serving.clear()
        if self.client is not None:
            self._remove_apps()
            if self.stack is not None:
                try:
                    self.stack.down(volumes=True)
                except StackError:
                    pass  # what it left is swept by the next start of this instance
                self.stack = None
            self.client.close()
            self.client = None
        _RUNNING.release(self.instance, self)

    def _has_image(self, tag: str) -> bool:
        import docker

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _remove_apps(self) -> None:
        """Remove the app containers this instance deployed (the stack's own go with ``down``)."""
        for container in self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={self.instance}"}
        ):
            container.remove(force=True)

    def _require_started(self) -> None:
        if self.client is None:
            raise DeployError(
                f"The Docker runtime {self.instance!r} is not started: call "
                ".start() first (or use it in a `with` block)."
            )

    # --- the stack: registry, Prometheus, Alertmanager ----------------------------------------
    def _stack_env(self) -> dict[str, str]:
        token_file = self.files / "webhook_token"
        _write_atomically(token_file, self.targets.token or "", 0o600)
        env = {
            "LABKIT_WEBHOOK_TOKEN_FILE": str(token_file),
            "LABKIT_TARGETS": str(self.files / "targets"),
        }
        # Without a receiver the URLs stay the stack's defaults: nothing listens there, and the
        # registry and Alertmanager keep retrying in the background, as real ones would.
        if self.targets.registry:
            env["LABKIT_REGISTRY_HOOK"] = container_reachable(self.targets.registry)
        if self.targets.alertmanager:
            env["LABKIT_ALERTS_HOOK"] = container_reachable(self.targets.alertmanager)
        return env

    def _start_stack(self, *, recreate: bool) -> None:
        """Start (or restart, with new webhook settings) the stack's registry and monitoring."""
        self.stack = Stack(STACK, project=self.project, env=self._stack_env())
        # The registry and Alertmanager read their webhook settings only when they start.
        self.stack.up(services=INFRA, build=False, recreate=recreate, timeout=60, progress=None)
        self._find_registry()

    def _find_registry(self) -> None:
        """Where the registry is published now (a restarted container may get another port)."""
        assert self.stack is not None
        try:
            self.registry_port = int(self.stack.url("registry").rsplit(":", 1)[1])
        except StackError:
            raise ShipError(
                f"The registry of {self.project} is not running: start it again "
                "with runtime.stack.up(services=['registry']), then push again "
                "(or redeliver the push webhook)."
            ) from None

    def monitoring_urls(self) -> dict[str, str]:
        """Where Prometheus and Alertmanager answer on this machine (their web pages and APIs)."""
        self._require_started()
        assert self.stack is not None
        return {name: self.stack.url(name) for name in ("prometheus", "alertmanager")}

    def _write_targets(self, serving: dict[str, _Running]) -> None:
        """Tell Prometheus what to scrape: the serving container of each service, by its name."""
        for service in {*serving, "web"}:
            running = serving.get(service)
            groups = (
                []
                if running is None
                else [
                    {
                        "targets": [f"{running.container.name}:8000"],
                        "labels": {"service": service, "version": running.artifact.tag},
                    }
                ]
            )
            _write_atomically(
                self.files / "targets" / f"{service}.json", json.dumps(groups, indent=2)
            )

    # --- webhooks -------------------------------------------------------------------------
    def send_webhooks_to(self, targets: WebhookTargets) -> None:
        """Restart the registry and Alertmanager with these webhook settings; forward engine events."""
        self.targets = targets
        if self.client is None:
            return
        self._start_stack(recreate=True)
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if targets.engine:
            self._watch = EngineWatch(
                targets.engine, secret=targets.token, labels=[f"{LABEL}={self.instance}"]
            ).start()

    # --- build, ship, deploy --------------------------------------------------------------
    def build(
        self, source_dir: Path, commit: str, *, service: str = "web", log: LogSink = _ignore
    ) -> Artifact:
        self._require_started()
        tag = commit[:7]
        image_tag = f"{self.project}/{service}:{tag}"
        log(f"docker build {source_dir} -> {image_tag}")
        image_id = ""
        # No build-time labels: the legacy builder turns each into a step of its own (a layer
        # commit, ~1.4 s here); containers get their labels when they are run.
        for chunk in self.client.api.build(
            path=str(source_dir),
            tag=image_tag,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            nocache=not self.build_cache,
        ):
            if "error" in chunk:
                raise BuildError(f"The build of {commit[:7]} failed: {str(chunk['error']).strip()}")
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                log(text)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
        image = self.client.images.get(image_id or image_tag)
        return Artifact(
            service=service,
            commit=commit,
            tag=tag,
            digest=image.id,
            size=int(image.attrs.get("Size", 0)),
            location=image_tag,
        )

    def ship(self, artifact: Artifact, *, log: LogSink = _ignore, attempts: int = 3) -> Artifact:
        """Push the image to the stack's registry; a failed push is tried again, as docker does."""
        self._require_started()
        for attempt in range(1, attempts + 1):
            try:
                if attempt > 1:
                    self._find_registry()  # restarted containers can get another port
                return self._push(artifact, log)
            except ShipError as exc:
                if attempt == attempts:
                    raise
                log(f"{exc} Trying again in {attempt} s (attempt {attempt + 1} of {attempts}).")
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _push(self, artifact: Artifact, log: LogSink) -> Artifact:
        repository = f"127.0.0.1:{self.registry_port}/{artifact.service}"
        self.client.api.tag(artifact.location, repository, artifact.tag)
        log(f"docker push {repository}:{artifact.tag}")
        digest, size = "", artifact.size
        try:
            for chunk in self.client.api.push(repository, artifact.tag, stream=True, decode=True):
                if "error" in chunk:
                    raise ShipError(
                        f"Push to the registry failed: {chunk['error']}. Is the "
                        "registry container running? (`docker ps`)"
                    )
                if "status" in chunk and "progress" not in chunk:
                    log(f"{chunk.get('id', '')} {chunk['status']}".strip())
                aux = chunk.get("aux") or {}
                if "Digest" in aux:
                    digest, size = str(aux["Digest"]), int(aux.get("Size", size))
        except ShipError:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's own errors, made readable
            raise ShipError(f"Push to the registry failed: {exc}.") from None
        return Artifact(
            service=artifact.service,
            commit=artifact.commit,
            tag=artifact.tag,
            digest=digest or artifact.digest,
            size=size,
            location=f"{repository}:{artifact.tag}",
            shipped=True,
        )

    def deploy(
        self, artifact: Artifact, *, health_timeout: float = 10.0, log: LogSink = _ignore
    ) -> Deployment:
        self._require_started()
        with self._lock:
            self._counter += 1
            number = self._counter
        service, began = artifact.service, time.monotonic()
        front = self._front(service)
        previous = self._serving.get(service)
        name = f"{self.project}-{service}-{artifact.tag}-{number}"
        container = self._run_app(artifact, name)
        log(
            f"started container {name}; waiting up to {health_timeout:g} s for its "
            "HEALTHCHECK to say healthy"
        )
        healthy, detail = self._wait_healthy(container, health_timeout)
        seconds = round(time.monotonic() - began, 3)
        if not healthy:
            tail = container.logs(tail=5).decode(errors="replace").strip()
            container.remove(force=True)
            kept = previous.artifact if previous else None
            keeps = (
                f"{kept.ref} keeps serving"
                if kept
                else "nothing was serving before, so nothing serves now"
            )
            log(f"{name} is not healthy ({detail}); removed it: rolled back, {keeps}")
            if tail:
                log(f"its last log lines: {tail}")
            return Deployment.kept(
                service,
                artifact,
                kept,
                seconds=seconds,
                url=front.url,
                reason=f"not healthy within {health_timeout:g} s ({detail}); {keeps}",
            )
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        upstream = f"http://127.0.0.1:{port}"
        with self._lock:
            front.switch(upstream)
            self._serving[service] = _Running(container, artifact, upstream)
            self._write_targets(self._serving)
        log(f"healthy; traffic switched to {name}; Prometheus scrapes it from now on")
        exit_code = None
        if previous is not None:
            drained = front.drain(previous.url, timeout=10.0)
            log(
                f"{previous.container.name} drained "
                f"({'no request left' if drained else 'gave up after 10 s'}); stopping it as "
                f"`docker stop` does (SIGTERM, then SIGKILL after {self.stop_timeout:g} s)"
            )
            exit_code = self._stop_gracefully(previous.container)
            log(f"{previous.container.name} exited with code {exit_code}; removed it")
        return Deployment.replaced(
            service,
            artifact,
            previous.artifact if previous else None,
            seconds=seconds,
            url=front.url,
            previous_exit_code=exit_code,
        )

    def _stop_gracefully(self, container: Any) -> int:
        """``docker stop`` then ``docker rm``: SIGTERM, a grace period, SIGKILL; the exit code."""
        try:
            container.stop(timeout=int(self.stop_timeout))
            code = int(container.wait(timeout=self.stop_timeout + 10).get("StatusCode", -1))
        finally:
            container.remove(force=True)
        return code

    def _run_app(self, artifact: Artifact, name: str) -> Any:
        """Start a version on the stack's network, found there as its service's name too."""
        api = self.client.api
        networking = api.create_networking_config(
            {self.network: api.create_endpoint_config(aliases=[artifact.service])}
        )
        created = api.create_container(
            artifact.location,
            name=name,
            detach=True,
            ports=[8000],
            labels={LABEL: self.instance, SERVICE_LABEL: artifact.service},
            environment={"APP_VERSION": artifact.tag, "APP_COMMIT": artifact.commit},
            host_config=api.create_host_config(
                port_bindings={8000: ("127.0.0.1", None)},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
            ),
            networking_config=networking,
        )
        container = self.client.containers.get(created["Id"])
        container.start()
        return container

    def crash(self, service: str = "web") -> str:
        """Kill the serving container of ``service`` with SIGKILL, as ``docker kill`` does (lesson 07).

        Returns the container's name. Nothing restarts it: the front has nothing behind it until
        the next deploy, Prometheus' scrapes fail, and Alertmanager's alert follows.
        """
        self._require_started()
        running = self._serving.get(service)
        if running is None:
            raise DeployError(f"No version of {service} is serving, so there is nothing to crash.")
        running.container.kill()
        return str(running.container.name)

    def _wait_healthy(self, container: Any, timeout: float) -> tuple[bool, str]:
        deadline = Deadline(timeout)
        detail = "no health report yet"
        while not deadline.passed():
            container.reload()
            state = container.attrs["State"]
            if state.get("Status") in ("exited", "dead"):
                return False, f"the container exited with code {state.get('ExitCode')}"
            health = state.get("Health") or {}
            status = health.get("Status", "")
            if status == "healthy":
                return True, "healthy"
            logs = health.get("Log") or []
            if logs:
                detail = (
                    f"health check: {status}, last probe exit {logs[-1].get('ExitCode')}: "
                    f"{str(logs[-1].get('Output', '')).strip()[:120]}"
                )
            time.sleep(0.1)
        return False, detail

    # --- where things are -----------------------------------------------------------------
    def url(self, service: str = "web") -> str:
        return self._front(service).url

    def current(self, service: str = "web") -> Artifact | None:
        running = self._serving.get(service)
        return running.artifact if running else None

    def logs(self, service: str = "web", lines: int = 50) -> str:
        running = self._serving.get(service)
        if running is None:
            return ""
        return str(running.container.logs(tail=lines).decode(errors="replace"))
