"""The Docker runtime: image builds through the SDK, a real registry container, blue/green containers.

build  = ``docker build`` of the pushed commit (the app's Dockerfile, FROM an offline-built image)
ship   = push to a CNCF distribution registry container whose ``notifications:`` post to the receiver
deploy = a new container next to the old one; traffic switches at the front once the container's
         own HEALTHCHECK says healthy; an unhealthy one is removed and the old keeps serving
monitor = Docker engine events (start, die, health_status) forwarded as webhooks, and a health
         probe that sends Alertmanager-format alerts while the serving version fails
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..events import alertmanager
from ..monitor import EngineWatch
from ..proxy import Front
from .base import (
    DEPLOYED,
    ROLLED_BACK,
    Artifact,
    BuildError,
    Deployment,
    DeployError,
    LogSink,
    Notifier,
    RuntimeUnavailable,
    ShipError,
    WebhookTargets,
    Runtime,
    _ignore,
)

WHAT = "real containers on this machine's Docker engine, images kept in a local registry container"
REGISTRY_IMAGE = "labkit/registry:bookworm"
APP_BASE_IMAGE = "labkit/python-app:bookworm"
LABEL = "labkit.runtime"
_RUNNING: dict[str, DockerRuntime] = {}


def container_reachable(url: str) -> str:
    """A receiver URL on 127.0.0.1 as a container reaches it (``host.docker.internal``).

    The receiver must listen on the bridge gateway too: ``Receiver(..., for_containers=True)``.
    """
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost"):
        return urlunsplit(parts._replace(netloc=f"host.docker.internal:{parts.port}"))
    return url


def _registry_config(targets: WebhookTargets) -> bytes:
    lines = [
        "version: 0.1",
        "log: {level: warn}",
        "storage:",
        "  filesystem: {rootdirectory: /var/lib/docker-registry}",
        "  delete: {enabled: true}",
        "http: {addr: ':5000'}",
    ]
    if targets.registry:
        lines += [
            "notifications:",
            "  endpoints:",
            "    - name: labkit-receiver",
            f"      url: {container_reachable(targets.registry)}",
            "      timeout: 2s",
            "      threshold: 5",
            "      backoff: 1s",
            # Layer blobs are noise for a lesson: only manifests (the tagged image) are sent.
            "      ignoredmediatypes: [application/octet-stream]",
        ]
        if targets.token:
            lines += ["      headers:", f"        Authorization: [Bearer {targets.token}]"]
    return ("\n".join(lines) + "\n").encode()


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class _Running:
    container: Any
    artifact: Artifact
    url: str
    healthy: bool = True


class DockerRuntime(Runtime):
    """Build, ship, deploy and monitor the lab's apps as real containers.

    Everything it starts carries the label ``labkit.runtime=<instance>`` and joins the network
    ``labkit-<instance>``; starting a runtime of the same instance removes what an earlier
    one left behind. Every published port binds 127.0.0.1; no container gets the Docker socket.
    """

    name = "docker"
    what = WHAT

    def __init__(self, instance: str = "default", *, reason: str = "",
                 probe_interval: float = 0.5, alert_after: float = 1.5) -> None:
        super().__init__(instance, reason=reason)
        self.probe_interval, self.alert_after = probe_interval, alert_after
        self.project = f"labkit-{instance}"
        self.targets = WebhookTargets()
        self.notifier = Notifier(f"docker-{instance}")
        self.client: Any = None
        self.registry: Any = None
        self.registry_port = 0
        self._fronts: dict[str, Front] = {}
        self._serving: dict[str, _Running] = {}
        self._firing: dict[str, dict[str, Any]] = {}
        self._failing_since: dict[str, float] = {}
        self._watch: EngineWatch | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._lock = threading.RLock()
        self._counter = 0

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> DockerRuntime:
        old = _RUNNING.get(self.instance)
        if old is not None and old is not self:
            old.stop()
        if self.client is not None:
            return self
        try:
            import docker

            self.client = docker.from_env(timeout=60)
            self.client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "no usable engine"
            self.client = None
            raise RuntimeUnavailable(f"No Docker engine answers ({exc}). Start Docker, or set "
                                     "LABKIT_RUNTIME=local to use the local runtime.") from None
        missing = [i for i in (REGISTRY_IMAGE, APP_BASE_IMAGE) if not self._has_image(i)]
        if missing:
            self.client.close()
            self.client = None
            raise RuntimeUnavailable(f"Missing image(s) {', '.join(missing)}: run `labkit images "
                                     "build` (offline, from local material) or `labkit images "
                                     "load FILE` with a workshop bundle.")
        self._remove_leftovers()
        self.client.networks.create(self.project, driver="bridge", labels={LABEL: self.instance})
        self._start_registry()
        self.notifier.start()
        self._stop.clear()
        self._monitor = threading.Thread(target=self._probe_loop, daemon=True,
                                         name=f"labkit-docker-monitor-{self.instance}")
        self._monitor.start()
        _RUNNING[self.instance] = self
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if self._monitor is not None:
            self._monitor.join(timeout=5)
            self._monitor = None
        for front in self._fronts.values():
            front.stop()
        self._fronts.clear()
        self._serving.clear()
        self.notifier.stop(timeout=5)
        if self.client is not None:
            self._remove_leftovers()
            self.client.close()
            self.client = None
        if _RUNNING.get(self.instance) is self:
            del _RUNNING[self.instance]

    def _has_image(self, tag: str) -> bool:
        import docker

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _remove_leftovers(self) -> None:
        for container in self.client.containers.list(all=True,
                                                     filters={"label": f"{LABEL}={self.instance}"}):
            container.remove(force=True)
        for network in self.client.networks.list(names=[self.project]):
            if network.name == self.project:
                network.remove()

    def _require_started(self) -> None:
        if self.client is None:
            raise DeployError(f"The Docker runtime {self.instance!r} is not started: call "
                              ".start() first (or use it in a `with` block).")

    # --- webhooks -------------------------------------------------------------------------
    def send_webhooks_to(self, targets: WebhookTargets) -> None:
        """Reconfigure the registry's notifications and the engine-event forwarder."""
        self.targets = targets
        self.notifier.targets = targets
        if self.client is None:
            return
        self._start_registry()  # a registry reads its notification endpoints at start-up only
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if targets.engine:
            self._watch = EngineWatch(targets.engine, secret=targets.token,
                                      project=self.project).start()

    def _start_registry(self) -> None:
        import docker

        if self.registry is not None:
            try:
                self.registry.remove(force=True)
            except docker.errors.NotFound:
                pass
        name = f"{self.project}-registry"
        self.registry = self.client.containers.create(
            REGISTRY_IMAGE, name=name, network=self.project,
            labels=self._labels("registry"),
            ports={"5000/tcp": ("127.0.0.1", self.registry_port or None)},
            extra_hosts={"host.docker.internal": "host-gateway"},
            volumes={f"{self.project}-registry-data": {"bind": "/var/lib/docker-registry",
                                                       "mode": "rw"}})
        self.registry.put_archive("/etc/docker/registry",
                                  _tar("config.yml", _registry_config(self.targets)))
        self.registry.start()
        self.registry.reload()
        self.registry_port = int(self.registry.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]
                                 ["HostPort"])
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while True:
                try:
                    if http.get(f"http://127.0.0.1:{self.registry_port}/v2/").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeUnavailable("The registry container did not answer within 30 s: "
                                             + self.registry.logs(tail=20).decode(errors="replace"))
                time.sleep(0.1)

    def _labels(self, service: str) -> dict[str, str]:
        return {LABEL: self.instance, "com.docker.compose.project": self.project,
                "com.docker.compose.service": service}

    # --- build, ship, deploy --------------------------------------------------------------
    def build(self, source_dir: Path, commit: str, *, service: str = "web",
              log: LogSink = _ignore) -> Artifact:
        self._require_started()
        tag = commit[:7]
        image_tag = f"{self.project}/{service}:{tag}"
        log(f"docker build {source_dir} -> {image_tag}")
        image_id = ""
        # No build-time labels: the legacy builder turns each into a step of its own (a layer
        # commit, ~1.4 s here); containers get their labels when they are run.
        for chunk in self.client.api.build(path=str(source_dir), tag=image_tag, rm=True,
                                           forcerm=True, decode=True, pull=False):
            if "error" in chunk:
                raise BuildError(f"The build of {commit[:7]} failed: "
                                 f"{str(chunk['error']).strip()}")
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                log(text)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
        image = self.client.images.get(image_id or image_tag)
        return Artifact(service=service, commit=commit, tag=tag, digest=image.id,
                        size=int(image.attrs.get("Size", 0)), location=image_tag)

    def ship(self, artifact: Artifact, *, log: LogSink = _ignore) -> Artifact:
        self._require_started()
        repository = f"127.0.0.1:{self.registry_port}/{artifact.service}"
        self.client.api.tag(artifact.location, repository, artifact.tag)
        log(f"docker push {repository}:{artifact.tag}")
        digest, size = "", artifact.size
        try:
            for chunk in self.client.api.push(repository, artifact.tag, stream=True, decode=True):
                if "error" in chunk:
                    raise ShipError(f"Push to the registry failed: {chunk['error']}. Is the "
                                    "registry container running? (`docker ps`)")
                if "status" in chunk and "progress" not in chunk:
                    log(f"{chunk.get('id', '')} {chunk['status']}".strip())
                aux = chunk.get("aux") or {}
                if "Digest" in aux:
                    digest, size = str(aux["Digest"]), int(aux.get("Size", size))
        except ShipError:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's own errors, made readable
            raise ShipError(f"Push to the registry failed: {exc}.") from None
        return Artifact(service=artifact.service, commit=artifact.commit, tag=artifact.tag,
                        digest=digest or artifact.digest, size=size,
                        location=f"{repository}:{artifact.tag}", shipped=True)

    def deploy(self, artifact: Artifact, *, health_timeout: float = 10.0,
               log: LogSink = _ignore) -> Deployment:
        self._require_started()
        with self._lock:
            self._counter += 1
            number = self._counter
        service, began = artifact.service, time.monotonic()
        front = self._front(service)
        previous = self._serving.get(service)
        name = f"{self.project}-{service}-{artifact.tag}-{number}"
        container = self.client.containers.run(
            artifact.location, name=name, detach=True, network=self.project,
            labels=self._labels(service), environment={"APP_VERSION": artifact.tag,
                                                      "APP_COMMIT": artifact.commit},
            ports={"8000/tcp": ("127.0.0.1", None)})
        log(f"started container {name}; waiting up to {health_timeout:g} s for its "
            "HEALTHCHECK to say healthy")
        healthy, detail = self._wait_healthy(container, health_timeout)
        seconds = round(time.monotonic() - began, 3)
        if not healthy:
            tail = container.logs(tail=5).decode(errors="replace").strip()
            container.remove(force=True)
            kept = previous.artifact if previous else None
            keeps = (f"{kept.ref} keeps serving" if kept else
                     "nothing was serving before, so nothing serves now")
            log(f"{name} is not healthy ({detail}); removed it: rolled back, {keeps}")
            if tail:
                log(f"its last log lines: {tail}")
            return Deployment(service=service, status=ROLLED_BACK, attempted=artifact,
                              serving=kept, previous=kept, seconds=seconds, url=front.url,
                              reason=f"not healthy within {health_timeout:g} s ({detail}); "
                                     f"{keeps}")
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        upstream = f"http://127.0.0.1:{port}"
        with self._lock:
            front.switch(upstream)
            self._serving[service] = _Running(container, artifact, upstream)
            self._failing_since.pop(service, None)
        log(f"healthy; traffic switched to {name}")
        if previous is not None:
            drained = front.drain(previous.url, timeout=10.0)
            log(f"{previous.container.name} drained "
                f"({'no request left' if drained else 'gave up after 10 s'}); removing it")
            previous.container.remove(force=True)
        return Deployment(service=service, status=DEPLOYED, attempted=artifact,
                          serving=artifact, previous=previous.artifact if previous else None,
                          seconds=seconds, url=front.url,
                          reason="healthy, serving at the same address as before")

    def _wait_healthy(self, container: Any, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        detail = "no health report yet"
        while time.monotonic() < deadline:
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
                detail = (f"health check: {status}, last probe exit {logs[-1].get('ExitCode')}: "
                          f"{str(logs[-1].get('Output', '')).strip()[:120]}")
            time.sleep(0.1)
        return False, detail

    def _front(self, service: str) -> Front:
        with self._lock:
            front = self._fronts.get(service)
            if front is None or not front.running:
                front = Front(f"{self.instance}-{service}", service=service).start()
                self._fronts[service] = front
            return front

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

    # --- monitor: alerts in Alertmanager's format -----------------------------------------
    def _probe_loop(self) -> None:
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while not self._stop.wait(self.probe_interval):
                for service, running in list(self._serving.items()):
                    try:
                        ok = http.get(running.url + "/healthz").is_success
                    except httpx.HTTPError:
                        ok = False
                    try:
                        self._judge(service, running, ok)
                    except Exception:  # noqa: BLE001 - the monitor must keep watching
                        pass

    def _judge(self, service: str, running: _Running, ok: bool) -> None:
        if self._serving.get(service) is not running:
            return
        now = time.monotonic()
        if ok:
            self._failing_since.pop(service, None)
            firing = self._firing.pop(service, None)
            if firing is not None:
                self.notifier.post(alertmanager.alert(
                    "resolved", alertname=firing["alertname"], service=service,
                    instance=running.container.name, starts_at=firing["starts_at"]))
            return
        since = self._failing_since.setdefault(service, now)
        if service not in self._firing and now - since >= self.alert_after:
            alertname = "".join(p.title() for p in service.split("-")) + "Down"
            event = alertmanager.alert("firing", alertname=alertname, service=service,
                                       instance=running.container.name,
                                       summary=f"{service} does not answer /healthz")
            self._firing[service] = {"alertname": alertname,
                                     "starts_at": event.payload["alerts"][0]["startsAt"]}
            self.notifier.post(event)
