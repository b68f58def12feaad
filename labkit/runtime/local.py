"""The local runtime: the lab's apps as uvicorn processes on 127.0.0.1, a stand-in for Docker when there is none.

What each stage really does here, and what Docker would do instead:

- build: check that every module compiles, then pack the commit's files into a deterministic tar (the
  *layer*) and describe it in a JSON config; the config's sha256 is the build's id. Docker would run
  the Dockerfile and produce an image with its own layers.
- ship: store layer, config and an OCI manifest in a content-addressed store under ``$LABKIT_HOME``
  (the layout of a registry's storage), and POST registry-format notifications, as a registry does.
- deploy: unpack the manifest's layer, start ``uvicorn`` on a free port, wait for ``GET /healthz``,
  then switch the :class:`~labkit.runtime.proxy.Front` to it and drain and stop the old process. Docker
  would start a container and switch traffic the same way once its healthcheck passes.
- monitor: probe every serving process; after ``alert_after`` seconds of failures send an
  Alertmanager-format ``firing`` alert (``resolved`` when it recovers), and report starts, health
  changes and exits as Docker-engine-shaped events.

No process outlives the kernel: each one reads a *lifeline* pipe whose other end only the kernel
holds, and stops when it closes (even after ``kill -9`` of the kernel); a pidfile under
``$LABKIT_HOME`` lets the next start reap anything left over; ``atexit`` stops the rest. That
machinery lives in :mod:`labkit.runtime.processes`, shared with the local stacks of lesson 04.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from labkit.named import ByName
from labkit.paths import labkit_home
from labkit.runtime.base import (
    Artifact,
    BuildError,
    DeployError,
    Deployment,
    LogSink,
    Notifier,
    Runtime,
    ShipError,
    WebhookTargets,
    _ignore,
)
from labkit.runtime.processes import (
    BOOTSTRAP,
    PidFile,
    app_environment,
    listen,
    reap_orphans,
    spawn,
)
from labkit.runtime.processes import alive as _alive  # noqa: F401 - importable from here, as before
from labkit.runtime.processes import tail as _tail
from labkit.waiting import Deadline
from labkit.webhooks.events import alertmanager, engine, registry

#: What the local runtime calls itself wherever a lesson prints it.
WHAT = "local processes on 127.0.0.1 (a stand-in for Docker, for learning)"
#: The user agent and host its registry-format notifications carry.
STORE_HOST = "local-store"
USER_AGENT = "labkit-local-runtime/0.1"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_MEDIA_TYPE = registry.OCI_MANIFEST_MEDIA_TYPE
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".venv", ".pytest_cache"})

# --- the content-addressed store (the "registry") --------------------------------------------


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _now_rfc3339() -> str:
    now = time.time_ns()
    at = datetime.fromtimestamp(now // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{now % 1_000_000_000:09d}".rstrip("0")
    return f"{at}.{fraction}Z" if fraction else f"{at}Z"


class LocalStore:
    """Blobs by sha256 and tags pointing at manifests, laid out like a registry's storage.

    ``blobs/sha256/<hex>`` holds every layer, config and manifest once, whatever its tags;
    ``repositories/<repo>/tags/<tag>`` holds the digest of a manifest. Every push POSTs the
    registry's notifications through ``notifier``: one per new blob, one for the manifest.
    """

    def __init__(self, root: Path, notifier: Notifier) -> None:
        self.root, self.notifier = root, notifier

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64:
            raise ShipError(f"{digest!r} is not a sha256 digest.")
        return self.root / "blobs" / "sha256" / hexdigest

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob(self, data: bytes) -> tuple[str, bool]:
        """Store ``data`` under its digest; returns the digest and whether it was new."""
        digest = _sha256(data)
        path = self.blob_path(digest)
        if path.is_file():
            return digest, False
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a reader never sees half a blob
        return digest, True

    def read_blob(self, digest: str) -> bytes:
        """The blob's bytes, checked against its digest."""
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise DeployError(
                f"The local store has no blob {digest}: ship the build first."
            ) from None
        if _sha256(data) != digest:
            raise DeployError(
                f"Blob {digest} in the local store is corrupt (its content has "
                "another digest): delete it and ship the build again."
            )
        return data

    def tag(self, repository: str, tag: str, manifest_digest: str) -> None:
        path = self.root / "repositories" / repository / "tags" / tag
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest_digest)

    def resolve(self, repository: str, tag: str) -> str:
        """The manifest digest ``repository:tag`` points at."""
        path = self.root / "repositories" / repository / "tags" / tag
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise DeployError(
                f"The local store has no {repository}:{tag}: ship it first."
            ) from None

    def tags(self, repository: str) -> list[str]:
        folder = self.root / "repositories" / repository / "tags"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def push(
        self,
        repository: str,
        tag: str,
        layer: bytes,
        config: bytes,
        annotations: dict[str, str],
        log: LogSink,
    ) -> str:
        """Store an image (layer, config, manifest), tag it, notify; returns the manifest digest."""
        records = []
        for what, data, media in (
            ("layer", layer, registry.BLOB_MEDIA_TYPE),
            ("config", config, registry.BLOB_MEDIA_TYPE),
        ):
            digest, new = self.put_blob(data)
            if new:
                log(f"{what} {digest[:19]}: pushed ({len(data)} bytes)")
                records.append(self._record(repository, media, digest, len(data), None, "blobs"))
            else:
                log(f"{what} {digest[:19]}: already in the store, not pushed again")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {
                    "mediaType": CONFIG_MEDIA_TYPE,
                    "digest": _sha256(config),
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": LAYER_MEDIA_TYPE, "digest": _sha256(layer), "size": len(layer)}
                ],
                "annotations": annotations,
            },
            indent=3,
        ).encode()
        manifest_digest, _ = self.put_blob(manifest)
        self.tag(repository, tag, manifest_digest)
        log(f"manifest {manifest_digest[:19]}: tagged {repository}:{tag}")
        records.append(
            self._record(
                repository, MANIFEST_MEDIA_TYPE, manifest_digest, len(manifest), tag, "manifests"
            )
        )
        # A registry POSTs each event on its own (one event per envelope).
        for record in records:
            self.notifier.post(registry.envelope([record]))
        return manifest_digest

    def pull(self, repository: str, tag: str) -> tuple[str, dict[str, Any], bytes]:
        """``(manifest digest, manifest, layer bytes)`` for ``repository:tag``, all checked."""
        digest = self.resolve(repository, tag)
        manifest = json.loads(self.read_blob(digest))
        layer = self.read_blob(manifest["layers"][0]["digest"])
        return digest, manifest, layer

    def _record(
        self, repository: str, media_type: str, digest: str, size: int, tag: str | None, kind: str
    ) -> dict[str, Any]:
        # Keys in the order distribution's Event struct marshals them.
        target: dict[str, Any] = {
            "mediaType": media_type,
            "size": size,
            "digest": digest,
            "length": size,
            "repository": repository,
            "url": f"http://{STORE_HOST}/v2/{repository}/{kind}/{digest}",
        }
        if tag:
            target["tag"] = tag
        return {
            "id": _guid(),
            "timestamp": _now_rfc3339(),
            "action": "push",
            "target": target,
            "request": {
                "id": _guid(),
                "addr": "127.0.0.1",
                "host": STORE_HOST,
                "method": "PUT",
                "useragent": USER_AGENT,
            },
            "actor": {},
            "source": {"addr": f"{socket.gethostname()}:0", "instanceID": _instance_id},
        }


def _guid() -> str:
    import uuid

    return str(uuid.uuid4())


_instance_id = _guid()


# --- builds -----------------------------------------------------------------------------------


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p in _SKIP_DIRS for p in parts) or path.suffix == ".pyc":
            continue
        if path.is_file() and not path.is_symlink():
            out.append(path)
    return out


def snapshot(root: Path) -> bytes:
    """A tar of ``root``'s files that depends only on their names, contents and exec bits.

    Same files, same bytes, same digest: what makes the store content-addressed.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(root):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- running app processes --------------------------------------------------------------------


@dataclass
class Instance:
    """One app process: the local runtime's counterpart of a container."""

    name: str
    service: str
    artifact: Artifact
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    pidfile: PidFile
    started: float
    id: str
    stopping: bool = False
    exit_code: int | None = None
    healthy: bool | None = None
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class _Watch:
    """What the monitor remembers about one service between probes."""

    failing_since: float | None = None
    firing: dict[str, Any] | None = None
    last_detail: str = ""


_RUNNING: ByName[LocalRuntime] = ByName()


class LocalRuntime(Runtime):
    """Build, ship, deploy and monitor the lab's apps as local processes (no Docker needed).

    ``instance`` names this runtime: starting another of the same name stops this one first,
    so re-running a cell never leaves two. ``probe_interval`` is how often the monitor asks
    every serving process for ``/healthz``; ``alert_after`` how long it must fail before the
    ``firing`` alert is sent. Files live under ``$LABKIT_HOME/local-runtime/<instance>/``.
    """

    name = "local"
    what = WHAT

    def __init__(
        self,
        instance: str = "default",
        *,
        reason: str = "",
        probe_interval: float = 0.5,
        alert_after: float = 1.5,
        stop_timeout: float = 5.0,
    ) -> None:
        super().__init__(instance, reason=reason)
        self.probe_interval, self.alert_after = probe_interval, alert_after
        self.stop_timeout = stop_timeout
        self.root = labkit_home() / "local-runtime" / instance
        self.notifier = Notifier(f"local-{instance}")
        self.store = LocalStore(self.root / "store", self.notifier)
        self._serving: dict[str, Instance] = {}
        self._instances: dict[int, Instance] = {}
        self._watches: dict[str, _Watch] = {}
        self._counter = 0
        self._deploy_lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        """Reap processes an earlier, dead kernel left, start the notifier and the monitor."""
        _RUNNING.stop_other(self.instance, self)
        if self._started:
            return self
        reap_orphans()
        for folder in ("builds", "releases", "logs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.notifier.start()
        self._stop.clear()
        self._monitor = threading.Thread(
            target=self._watch_loop, daemon=True, name=f"labkit-local-monitor-{self.instance}"
        )
        self._monitor.start()
        self._started = True
        _RUNNING.hold(self.instance, self)
        return self

    def stop(self) -> None:
        """Stop every app process, the fronts, the monitor; send what is still queued."""
        self._stop.set()
        with self._lock:
            instances = list(self._instances.values())
            self._serving.clear()
        for inst in instances:
            self._terminate(inst)
        self._stop_fronts()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        self._monitor = None
        self.notifier.stop(timeout=5)
        self._started = False
        _RUNNING.release(self.instance, self)

    def _require_started(self) -> None:
        if not self._started:
            raise DeployError(
                f"The local runtime {self.instance!r} is not started: call "
                ".start() first (or use it in a `with` block)."
            )

    def send_webhooks_to(self, targets: WebhookTargets) -> None:
        self.notifier.targets = targets

    # --- build ----------------------------------------------------------------------------
    def build(
        self, source_dir: Path, commit: str, *, service: str = "web", log: LogSink = _ignore
    ) -> Artifact:
        self._require_started()
        source_dir = Path(source_dir)
        tag = commit[:7]
        files = _files(source_dir)
        if not files:
            raise BuildError(f"Nothing to build: {source_dir} has no files.")
        log(
            f"#1 snapshot of commit {tag}: {len(files)} files "
            f"({sum(p.stat().st_size for p in files)} bytes)"
        )
        log("#2 python -m compileall: does every module compile?")
        with tempfile.TemporaryDirectory(prefix="labkit-pycache-") as cache:
            env = app_environment({"PYTHONPYCACHEPREFIX": cache})
            proc = subprocess.Popen(
                [sys.executable, "-m", "compileall", "-q", str(source_dir)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    log("   " + line.replace(str(source_dir) + os.sep, ""))
            code = proc.wait()
        if code != 0:
            log(f"#2 failed: compileall exited with {code}")
            raise BuildError(
                f"The build of {service}:{tag} failed at step 2: a module does not "
                "compile (the build log shows where). Fix it, commit and push again."
            )
        layer = snapshot(source_dir)
        layer_digest = _sha256(layer)
        log(f"#3 layer {layer_digest[:19]} ({len(layer)} bytes, a deterministic tar)")
        config = json.dumps(
            {
                "architecture": platform.machine(),
                "os": sys.platform,
                "config": {
                    "Env": [f"APP_VERSION={tag}", f"APP_COMMIT={commit}"],
                    "Cmd": ["uvicorn", "app:app"],
                    "Labels": {"org.opencontainers.image.revision": commit},
                },
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            },
            indent=3,
            sort_keys=True,
        ).encode()
        digest = _sha256(config)
        builds = self.root / "builds"
        (builds / f"{layer_digest[7:]}.tar").write_bytes(layer)
        (builds / f"{digest[7:]}.json").write_bytes(config)
        log(f"#4 built {service}:{tag} = {digest[:19]}")
        return Artifact(
            service=service,
            commit=commit,
            tag=tag,
            digest=digest,
            size=len(layer),
            location=str(builds / f"{digest[7:]}.json"),
        )

    # --- ship -----------------------------------------------------------------------------
    def ship(self, artifact: Artifact, *, log: LogSink = _ignore) -> Artifact:
        self._require_started()
        builds = self.root / "builds"
        try:
            config = (builds / f"{artifact.digest[7:]}.json").read_bytes()
            layer_digest = json.loads(config)["rootfs"]["diff_ids"][0]
            layer = (builds / f"{layer_digest[7:]}.tar").read_bytes()
        except (OSError, ValueError, KeyError, IndexError):
            raise ShipError(
                f"{artifact.ref} was not built by this runtime (or its build files "
                "were removed): build it again."
            ) from None
        log(f"pushing {artifact.ref} to the local store")
        manifest = self.store.push(
            artifact.service,
            artifact.tag,
            layer,
            config,
            {"org.opencontainers.image.revision": artifact.commit},
            log,
        )
        return replace(
            artifact, shipped=True, location=f"{STORE_HOST}/{artifact.service}@{manifest}"
        )

    # --- deploy ---------------------------------------------------------------------------
    def deploy(
        self, artifact: Artifact, *, health_timeout: float = 10.0, log: LogSink = _ignore
    ) -> Deployment:
        self._require_started()
        with self._deploy_lock:
            return self._deploy(artifact, health_timeout, log)

    def _deploy(self, artifact: Artifact, health_timeout: float, log: LogSink) -> Deployment:
        service = artifact.service
        began = time.monotonic()
        manifest_digest, manifest, layer = self.store.pull(service, artifact.tag)
        log(f"pulled {artifact.ref} ({manifest_digest[:19]}) from the local store")
        release = self.root / "releases" / manifest["config"]["digest"][7:19]
        if not release.is_dir():
            partial = release.with_name(release.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
                tar.extractall(partial, filter="data")
            partial.replace(release)
        front = self._front(service)
        previous = self._serving.get(service)
        inst = self._spawn(service, artifact, release)
        log(
            f"started {inst.name} (pid {inst.pid}); waiting up to {health_timeout:g} s "
            "for GET /healthz to answer 2xx"
        )
        healthy, detail = self._wait_healthy(inst, health_timeout)
        seconds = round(time.monotonic() - began, 3)
        if not healthy:
            self._engine_event(inst, "health_status: unhealthy")
            log(f"{inst.name} is not healthy: {detail}")
            self._terminate(inst)
            kept = previous.artifact if previous else None
            keeps = (
                f"{kept.ref} keeps serving"
                if kept
                else "nothing was serving before, so nothing serves now"
            )
            log(f"rolled back: stopped {inst.name}; {keeps}")
            return Deployment.kept(
                service,
                artifact,
                kept,
                seconds=seconds,
                url=front.url,
                reason=f"not healthy within {health_timeout:g} s ({detail}); {keeps}",
            )
        inst.healthy = True
        self._engine_event(inst, "health_status: healthy")
        with self._lock:
            front.switch(inst.url)
            self._serving[service] = inst
            self._watches[service] = self._watches.get(service) or _Watch()
        log(
            f"healthy after {time.monotonic() - inst.started:.2f} s; traffic switched to "
            f"{inst.name}"
        )
        exit_code = None
        if previous is not None:
            drained = front.drain(previous.url, timeout=10.0)
            log(
                f"{previous.name} drained ({'no request left' if drained else 'gave up after 10 s'})"
                f"; stopping it (SIGTERM, then SIGKILL after {self.stop_timeout:g} s)"
            )
            self._terminate(previous)
            exit_code = previous.exit_code
            log(f"{previous.name} exited with code {exit_code}")
        return Deployment.replaced(
            service,
            artifact,
            previous.artifact if previous else None,
            seconds=seconds,
            url=front.url,
            previous_exit_code=exit_code,
        )

    def _spawn(self, service: str, artifact: Artifact, release: Path) -> Instance:
        with self._lock:
            self._counter += 1
            name = f"{service}-{self._counter}"
        sock = listen()
        port = sock.getsockname()[1]
        log_path = self.root / "logs" / f"{name}.log"
        env = app_environment(
            {
                "APP_VERSION": artifact.tag,
                "APP_COMMIT": artifact.commit,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        process, record = spawn(
            app="app:app",
            app_dir=release,
            sock=sock,
            log_path=log_path,
            owner=self.instance,
            name=name,
            env=env,
        )
        inst = Instance(
            name=name,
            service=service,
            artifact=artifact,
            process=process,
            port=port,
            log_path=log_path,
            pidfile=record,
            started=time.monotonic(),
            id=hashlib.sha256(
                f"{self.instance}:{name}:{process.pid}:{time.time_ns()}".encode()
            ).hexdigest(),
        )
        with self._lock:
            self._instances[process.pid] = inst
        threading.Thread(
            target=self._reap, args=(inst,), daemon=True, name=f"labkit-local-wait-{name}"
        ).start()
        self._engine_event(inst, "start")
        return inst

    def _wait_healthy(self, inst: Instance, timeout: float) -> tuple[bool, str]:
        deadline = Deadline(timeout)
        detail = "no answer yet"
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while not deadline.passed():
                if inst.exited.is_set():
                    tail = _tail(inst.log_path, 5).strip().splitlines()
                    why = f": {tail[-1]}" if tail else ""
                    return False, f"the process exited with code {inst.exit_code}{why}"
                try:
                    response = client.get(inst.url + "/healthz")
                    if response.is_success:
                        return True, f"HTTP {response.status_code}"
                    detail = f"last answer HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    detail = f"last try {type(exc).__name__}"
                time.sleep(0.05)
        return False, detail

    def _terminate(self, inst: Instance) -> None:
        """Stop like ``docker stop``: SIGTERM, wait, SIGKILL; engine events kill/die/stop."""
        if inst.exited.is_set():
            return
        inst.stopping = True
        self._engine_event(inst, "kill", signal_number=15)
        try:
            os.killpg(inst.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not inst.exited.wait(self.stop_timeout):
            try:
                os.killpg(inst.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            inst.exited.wait(5)

    def _reap(self, inst: Instance) -> None:
        code = inst.process.wait()
        inst.exit_code = code if code >= 0 else 128 - code  # as Docker reports a signal death
        inst.pidfile.remove()
        with self._lock:
            self._instances.pop(inst.pid, None)
            if self._serving.get(inst.service) is inst and inst.stopping:
                del self._serving[inst.service]
        self._engine_event(inst, "die", exit_code=inst.exit_code)
        if inst.stopping:
            self._engine_event(inst, "stop")
        inst.exited.set()

    # --- monitor --------------------------------------------------------------------------
    def _watch_loop(self) -> None:
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while not self._stop.wait(self.probe_interval):
                with self._lock:
                    serving = dict(self._serving)
                for service, inst in serving.items():
                    try:
                        self._probe(client, service, inst)
                    except Exception:  # noqa: BLE001 - the monitor must keep watching
                        pass

    def _probe(self, client: httpx.Client, service: str, inst: Instance) -> None:
        if inst.exited.is_set():
            ok, detail = False, f"{inst.name} exited with code {inst.exit_code}"
        else:
            try:
                response = client.get(inst.url + "/healthz")
                ok, detail = response.is_success, f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{type(exc).__name__}"
        with self._lock:
            if self._serving.get(service) is not inst or inst.stopping:
                return  # switched or stopped while the probe was on its way
        watch = self._watches.setdefault(service, _Watch())
        if ok != inst.healthy and not inst.exited.is_set():
            inst.healthy = ok
            self._engine_event(inst, "health_status: healthy" if ok else "health_status: unhealthy")
        now = time.monotonic()
        if ok:
            watch.failing_since = None
            if watch.firing is not None:
                self._alert(service, inst, "resolved", watch)
            return
        watch.last_detail = detail
        if watch.failing_since is None:
            watch.failing_since = now
        if watch.firing is None and now - watch.failing_since >= self.alert_after:
            self._alert(service, inst, "firing", watch)

    def _alert(self, service: str, inst: Instance, status: str, watch: _Watch) -> None:
        front = self._fronts.get(service)
        base = front.url if front is not None and front.running else inst.url
        if status == "firing":
            labels = {
                "alertname": "".join(p.title() for p in service.split("-")) + "Down",
                "instance": inst.address,
                "job": service,
                "service": service,
                "severity": "critical",
            }
            watch.firing = {
                "status": "firing",
                "labels": dict(sorted(labels.items())),
                "annotations": {
                    "description": f"{inst.name} ({inst.artifact.ref}) has failed its health "
                    f"check for {self.alert_after:g} s: {watch.last_detail}.",
                    "summary": f"{service} is down",
                },
                "startsAt": _now_rfc3339(),
                "endsAt": alertmanager.ZERO_TIME,
                "generatorURL": f"{inst.url}/healthz",
                "fingerprint": alertmanager.fingerprint(labels),
            }
            item = watch.firing
        else:
            assert watch.firing is not None
            item = {**watch.firing, "status": "resolved", "endsAt": _now_rfc3339()}
            watch.firing = None
        self.notifier.post(
            alertmanager.alert(status, alerts=[item], receiver="labkit", external_url=base)
        )

    # --- engine-shaped events ---------------------------------------------------------------
    def _engine_event(
        self,
        inst: Instance,
        action: str,
        *,
        exit_code: int | None = None,
        signal_number: int | None = None,
    ) -> None:
        attributes = {
            "image": inst.artifact.ref,
            "name": inst.name,
            "org.labkit.runtime": "local",
            "org.labkit.service": inst.service,
            "org.labkit.pid": str(inst.pid),
        }
        if exit_code is not None:
            attributes["exitCode"] = str(exit_code)
        if signal_number is not None:
            attributes["signal"] = str(signal_number)
        now = time.time_ns()
        self.notifier.post(
            engine.from_engine(
                {
                    "Type": "container",
                    "Action": action,
                    "Actor": {"ID": inst.id, "Attributes": dict(sorted(attributes.items()))},
                    "scope": "local",
                    "time": now // 1_000_000_000,
                    "timeNano": now,
                }
            )
        )

    # --- where things are -----------------------------------------------------------------
    def url(self, service: str = "web") -> str:
        self._require_started()
        return self._front(service).url

    def current(self, service: str = "web") -> Artifact | None:
        with self._lock:
            inst = self._serving.get(service)
        return inst.artifact if inst is not None else None

    def processes(self) -> list[Instance]:
        """Every app process this runtime has running now."""
        with self._lock:
            return [i for i in self._instances.values() if not i.exited.is_set()]

    def logs(self, service: str = "web", lines: int = 50) -> str:
        with self._lock:
            inst = self._serving.get(service)
        return _tail(inst.log_path, lines) if inst is not None else ""

    def crash(self, service: str = "web") -> int:
        """Kill the serving process of ``service`` with SIGKILL, as a crash would (lesson 07)."""
        with self._lock:
            inst = self._serving.get(service)
        if inst is None:
            raise DeployError(f"No version of {service} is serving, so there is nothing to crash.")
        os.killpg(inst.pid, signal.SIGKILL)
        return inst.pid


def _stop_all() -> None:
    for runtime in _RUNNING.live():
        try:
            runtime.stop()
        except Exception:  # noqa: BLE001 - the interpreter is exiting; stop what can be stopped
            pass


atexit.register(_stop_all)

__all__ = [
    "BOOTSTRAP",
    "Instance",
    "LocalRuntime",
    "LocalStore",
    "PidFile",
    "reap_orphans",
    "snapshot",
]
