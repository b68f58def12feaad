"""Compose stacks without Docker: each service of a compose.yaml as uvicorn processes on 127.0.0.1.

A stand-in for learning, never Docker. ``LocalStack("services")`` reads the same ``compose.yaml`` as
:class:`~labkit.runtime.compose.Stack` and answers the same calls (``up``, ``wait``, ``url``, ``scale``,
``logs``, ``ps``, ``status``, ``hostnames``, ``down``), so a lesson has one code path; :func:`stack`
picks one of the two from the runtime choice. What each part of compose.yaml becomes here, and what
Docker does instead:

- a service with ``build:`` and ``command: ["<module>:<app>"]``: one uvicorn process per replica,
  running the build folder's code on a port of 127.0.0.1 that the system picks. Docker builds an
  image and runs one container per replica, each with its own address on the stack's networks.
- a MariaDB or MySQL ``image:``: no process. A SQLite file under ``$LABKIT_HOME`` stands in, and
  every service that depends on it gets ``DB_URL=sqlite:///<file>``. ``down()`` deletes the file
  as Docker deletes the volume (``down(volumes=False)`` keeps it).
- finding a service by name: Docker's DNS answers ``users`` with the address of each running
  replica. Here every process gets ``SERVICE_ADDRESSES``, the path of a JSON file that maps each
  service name to its healthy processes' ``127.0.0.1:PORT``, rewritten whenever that set changes.
- ``HOSTNAME``: Docker sets it to the container's short id; here it is ``<service>-<replica>``.
- ``healthcheck`` (a probe of ``http://127.0.0.1:<port>/<path>``) is asked from the kernel, and
  ``depends_on`` conditions hold as in Compose: a service starts once what it needs is healthy.
- ``ports:`` decides which services ``url()`` answers for. Nothing is isolated, though: every
  process listens on 127.0.0.1, where Docker's internal network would hide all but the gateway.
  ``networks``, ``user``, ``read_only``, ``cap_drop``, ``secrets`` and ``tmpfs`` are not applied.

The processes of a stack belong to this kernel, shared by every ``LocalStack`` of that name (as a
Compose project is shared by every ``Stack``), so a re-run cell keeps what is already right instead
of starting a second shop. No process outlives the kernel (see :mod:`labkit.runtime.processes`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from labkit.errors import StackError
from labkit.paths import labkit_home, setting
from labkit.runtime import DOCKER, LOCAL, Choice, choose, composefile, processes
from labkit.runtime.compose import STACKS_DIR as STACKS_DIR
from labkit.runtime.compose import Stack, compose_command, format_ps, locate
from labkit.waiting import Deadline

#: What the local stacks call themselves wherever a lesson prints it.
WHAT = "local processes on 127.0.0.1 (a stand-in for Docker, for learning)"
#: Database images a SQLite file stands in for (matched against the image's name).
SQLITE_STAND_INS = ("mariadb", "mysql")
#: Seconds between health probes until a process first answers (Docker waits a whole interval).
FIRST_PROBES = 0.1
#: Seconds a stopped process gets between SIGTERM and SIGKILL (``docker stop`` gives 10).
STOP_GRACE = 5.0
#: uvicorn as the shop's image runs it: access log on, lifespan events on.
SERVER_OPTIONS = {"log_level": "info", "access_log": True, "lifespan": "auto"}
_SKIP = frozenset({"__pycache__", ".secrets", ".git"})


def stack(
    name: str, *, env: dict[str, str] | None = None, choice: Choice | None = None
) -> Stack | LocalStack:
    """The stack ``name`` on the runtime :func:`labkit.runtime.choose` picks (or ``choice``).

    Docker gives a :class:`~labkit.runtime.compose.Stack` (Compose, real containers); the local runtime a
    :class:`LocalStack`. When Docker answers but Compose is not installed, the local stand-in is
    used and its ``reason`` says so, unless ``LABKIT_RUNTIME=docker`` demands Docker.
    """
    choice = choice or choose()
    if choice.name == DOCKER:
        try:
            compose_command()
        except StackError:
            if setting("LABKIT_RUNTIME").lower() == DOCKER:
                raise
            return LocalStack(
                name,
                env=env,
                reason=f"{choice.reason}, but Compose is not "
                "installed (`apt-get install -y docker-compose`), so local "
                "processes stand in",
            )
        return Stack(name, env=env)
    if choice.name != LOCAL:
        raise StackError(f"Unknown runtime {choice.name!r}: use {DOCKER!r} or {LOCAL!r}.")
    return LocalStack(name, env=env, reason=choice.reason)


# --- what compose.yaml asks for ----------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One service of compose.yaml as the local stand-in runs it: an app and how to probe it."""

    name: str
    app: str
    app_dir: Path
    environment: dict[str, str]
    target: int
    published: tuple[int | None, ...]
    #: The address a published port is bound to: ``127.0.0.1`` as ``"127.0.0.1::8000"`` asks,
    #: ``0.0.0.0`` (every interface, as Docker does) for ``"8000"`` or ``"8000:8000"``.
    address: str
    probe: str | None
    interval: float
    timeout: float
    patience: float
    depends_on: dict[str, str]
    digest: str


@dataclass(frozen=True)
class StandIn:
    """A service the stand-in does not run: a file takes its place (a database, as SQLite)."""

    name: str
    image: str
    path: Path

    def describe(self) -> str:
        return f"{self.name}: a SQLite file in place of {self.image} ({self.path})"


def _ports(value: Any, service: str) -> list[tuple[int, int | None, str]]:
    """``(container port, host port or None, host address)`` for each ``ports:`` entry, read by
    :func:`labkit.runtime.composefile.ports`; the address is ``0.0.0.0`` where the entry names none, as
    Docker publishes it."""
    try:
        entries = composefile.ports({"ports": value})
    except (ValueError, KeyError, TypeError):
        raise StackError(
            f"{service}: the local stand-in cannot read the ports entries {value!r}; write "
            'each as "127.0.0.1:HOST:CONTAINER".'
        ) from None
    return [(e["target"], e["published"], e["host_ip"] or "0.0.0.0") for e in entries]


def _digest(folder: Path, *extra: str) -> str:
    """What a process runs (its folder's files, its command, its environment), as one hash.

    A different hash at ``up()`` means the code or the settings changed: the process is replaced,
    as Compose recreates a container whose image or configuration changed.
    """
    h = hashlib.sha256("\0".join(extra).encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _SKIP.intersection(path.relative_to(folder).parts):
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _dockerfile(context: Path) -> tuple[int, list[str]]:
    """The port the image EXPOSEs (8000 if none) and its CMD (``[]`` if none or not JSON)."""
    try:
        steps = dict(composefile.dockerfile_instructions((context / "Dockerfile").read_text()))
    except OSError:
        return 8000, []
    exposed = steps.get("EXPOSE", "").split("/")[0].split()
    try:
        command = [str(c) for c in json.loads(steps.get("CMD", "[]"))]
    except ValueError:
        command = []
    return (int(exposed[0]) if exposed and exposed[0].isdigit() else 8000), command


def _probe_path(healthcheck: dict[str, Any], target: int) -> str | None:
    """The path a healthcheck asks on the service's own port, e.g. ``/healthz``."""
    if not healthcheck or healthcheck.get("disable"):
        return None
    test = healthcheck.get("test")
    text = " ".join(test) if isinstance(test, list) else str(test or "")
    for url in re.findall(r"https?://[^\s'\"]+", text):
        parts = urllib.parse.urlsplit(url)
        if parts.hostname in ("127.0.0.1", "localhost") and (parts.port or 80) == target:
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return None


# --- what runs ----------------------------------------------------------------------------------


@dataclass
class Replica:
    """One process of a service: the local stand-in's counterpart of a container."""

    service: Service
    number: int
    process: subprocess.Popen[bytes]
    pidfile: processes.PidFile
    port: int
    log_path: Path
    health: str = "starting"
    failing_since: float | None = None
    next_probe: float = 0.0
    stopping: bool = False
    exit_code: int | None = None
    probes: int = field(default=0, repr=False)

    @property
    def name(self) -> str:
        return f"{self.service.name}-{self.number}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.exit_code is None and not self.stopping

    @property
    def serving(self) -> bool:
        """Running and healthy (or without a healthcheck): what the address table lists."""
        return self.running and self.health in ("healthy", "")


class _Project:
    """What runs for one stack in this kernel; every ``LocalStack`` of that name shares it."""

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.root = home / "local-stacks" / name
        self.run_dir = self.root / f"run-{os.getpid()}"
        self.volumes = self.root / "volumes"
        self.table_path = self.run_dir / "addresses.json"
        self.replicas: dict[tuple[str, int], Replica] = {}
        self.lock = threading.RLock()
        self._table: dict[str, list[str]] | None = None
        self._monitor: threading.Thread | None = None
        self._forget_stale_runs()

    def _forget_stale_runs(self) -> None:
        """Remove the address tables and logs of kernels that are gone."""
        for folder in self.root.glob("run-*"):
            pid = folder.name.removeprefix("run-")
            if folder != self.run_dir and (not pid.isdigit() or not processes.alive(int(pid))):
                shutil.rmtree(folder, ignore_errors=True)

    def held_elsewhere(self) -> int | None:
        """The pid of another live kernel serving this stack (its processes listed in its
        address table), or None. Two kernels' copies of one stack would share its database
        file and each other's ``down -v``: one copy runs at a time."""
        for folder in self.root.glob("run-*"):
            pid = folder.name.removeprefix("run-")
            if folder == self.run_dir or not pid.isdigit() or not processes.alive(int(pid)):
                continue
            try:
                table = json.loads((folder / "addresses.json").read_text())
            except (OSError, ValueError):
                continue
            if table:
                return int(pid)
        return None

    # -- starting and stopping ------------------------------------------------------------------
    def start(self, service: Service, number: int, stand_ins: dict[str, StandIn]) -> Replica:
        host_port = service.published[0] if service.published else None
        try:
            sock = processes.listen(host_port or 0, service.address)
        except OSError as exc:
            raise StackError(
                f"{service.name} cannot listen on {service.address}:{host_port}: {exc.strerror or exc}. "
                "Another program (or another copy of this stack) holds that port: stop it, or "
                f'leave the host port empty in compose.yaml ("127.0.0.1::{service.target}") so '
                "that a free one is picked."
            ) from None
        port = int(sock.getsockname()[1])
        name = f"{service.name}-{number}"
        log_path = self.run_dir / "logs" / f"{name}.log"
        log_path.unlink(missing_ok=True)  # a new replica starts with an empty log, as in Docker
        self.write_table(force=True)
        env = processes.app_environment(
            {
                **service.environment,
                "HOSTNAME": name,
                "SERVICE_ADDRESSES": str(self.table_path),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        for dependency in service.depends_on:
            if dependency in stand_ins:
                env["DB_URL"] = f"sqlite:///{stand_ins[dependency].path}"
        process, pidfile = processes.spawn(
            app=service.app,
            app_dir=service.app_dir,
            sock=sock,
            log_path=log_path,
            owner=f"stack:{self.name}",
            name=name,
            env=env,
            uvicorn=SERVER_OPTIONS,
        )
        replica = Replica(
            service=service,
            number=number,
            process=process,
            pidfile=pidfile,
            port=port,
            log_path=log_path,
            health="starting" if service.probe else "",
        )
        with self.lock:
            self.replicas[(service.name, number)] = replica
        self._ensure_monitor()
        return replica

    def stop(self, replicas: list[Replica]) -> None:
        """Stop like ``docker stop``: out of the address table first, then SIGTERM, then SIGKILL."""
        with self.lock:
            for replica in replicas:
                replica.stopping = True
            self.write_table()
        for replica in replicas:
            if replica.process.poll() is None:  # not exited (and reaped) already: its pid is ours
                processes.kill_group(replica.pid, STOP_GRACE)
            try:
                code = replica.process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                code = -9
            replica.pidfile.remove()
            if replica.exit_code is None:
                replica.exit_code = code if code >= 0 else 128 - code

    def remove(self, replicas: list[Replica]) -> None:
        """Stop the replicas and forget them (``docker rm -f``)."""
        self.stop(replicas)
        with self.lock:
            for replica in replicas:
                if self.replicas.get((replica.service.name, replica.number)) is replica:
                    del self.replicas[(replica.service.name, replica.number)]

    def running(self, service: str | None = None) -> list[Replica]:
        with self.lock:
            return sorted(
                (
                    r
                    for r in self.replicas.values()
                    if r.running and (service is None or r.service.name == service)
                ),
                key=lambda r: (r.service.name, r.number),
            )

    def all(self) -> list[Replica]:
        with self.lock:
            return sorted(self.replicas.values(), key=lambda r: (r.service.name, r.number))

    # -- the address table: the stand-in for Docker's DNS ---------------------------------------
    def write_table(self, *, force: bool = False) -> None:
        with self.lock:
            table: dict[str, list[str]] = {}
            for replica in sorted(self.replicas.values(), key=lambda r: r.number):
                if replica.serving:
                    table.setdefault(replica.service.name, []).append(f"127.0.0.1:{replica.port}")
            if table == self._table and not force:
                return
            self.run_dir.mkdir(parents=True, exist_ok=True)
            partial = self.table_path.with_suffix(".partial")
            partial.write_text(json.dumps(table, indent=1, sort_keys=True))
            partial.replace(self.table_path)  # a reader never sees half a table
            self._table = table

    # -- health: the kernel probes every process, as Docker runs each healthcheck ---------------
    def _ensure_monitor(self) -> None:
        with self.lock:
            if self._monitor is None or not self._monitor.is_alive():
                self._monitor = threading.Thread(
                    target=self._watch, daemon=True, name=f"labkit-localstack-{self.name}"
                )
                self._monitor.start()

    def _watch(self) -> None:
        import httpx

        with httpx.Client(trust_env=False) as client:
            while True:
                with self.lock:
                    watched = [r for r in self.replicas.values() if r.running]
                    if not watched:
                        self._monitor = None
                        return
                results: list[tuple[Replica, int | None, bool | None]] = []
                for replica in watched:
                    code = replica.process.poll()
                    if code is not None:
                        results.append((replica, code, None))
                    elif replica.service.probe and time.monotonic() >= replica.next_probe:
                        results.append((replica, None, _probe(client, replica)))
                with self.lock:
                    for replica, code, ok in results:
                        self._record(replica, code, ok)
                    self.write_table()
                time.sleep(0.05)

    def _record(self, replica: Replica, code: int | None, ok: bool | None) -> None:
        if replica.stopping or replica.exit_code is not None:
            return
        now = time.monotonic()
        if code is not None:
            replica.exit_code = code if code >= 0 else 128 - code  # as Docker reports a signal
            replica.pidfile.remove()
            return
        service = replica.service
        if ok:
            replica.health, replica.failing_since = "healthy", None
            replica.next_probe = now + service.interval
            return
        if replica.failing_since is None:
            replica.failing_since = now
        if now - replica.failing_since >= service.patience:
            replica.health = "unhealthy"
        replica.next_probe = now + (
            FIRST_PROBES if replica.health == "starting" else service.interval
        )

    def shutdown(self) -> None:
        self.remove(self.all())

    def forget_files(self, *, volumes: bool) -> None:
        """Delete this kernel's address table and logs, and with ``volumes`` the SQLite files."""
        with self.lock:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self._table = None
            if volumes:
                shutil.rmtree(self.volumes, ignore_errors=True)


def _probe(client: Any, replica: Replica) -> bool:
    import httpx

    try:
        response = client.get(
            f"http://127.0.0.1:{replica.port}{replica.service.probe}",
            timeout=min(replica.service.timeout, 5.0),
        )
        return bool(response.status_code < 400)
    except httpx.HTTPError:
        return False


_PROJECTS: dict[tuple[str, str], _Project] = {}
_PROJECTS_LOCK = threading.Lock()


def _project(name: str) -> _Project:
    home = labkit_home().resolve()
    with _PROJECTS_LOCK:
        project = _PROJECTS.get((str(home), name))
        if project is None:
            processes.reap_orphans()  # what a dead kernel left (its lifeline stops the rest)
            project = _Project(name, home)
            _PROJECTS[(str(home), name)] = project
        return project


def _stop_all() -> None:
    for project in list(_PROJECTS.values()):
        try:
            project.shutdown()
        except Exception:  # noqa: BLE001 - the interpreter is exiting; stop what can be stopped
            pass


atexit.register(_stop_all)


# --- the stack ------------------------------------------------------------------------------------


class LocalStack:
    """A Compose stack of the kit run as local processes, e.g. ``LocalStack("services")``.

    The same calls as :class:`~labkit.runtime.compose.Stack`: ``up()`` returns when every service is
    healthy; ``url(service)`` says where a published service listens (always 127.0.0.1);
    ``scale``, ``logs``, ``ps``, ``status``, ``hostnames`` and ``down`` do what their names say.
    Used as a context manager, the stack is up inside the ``with`` block and down after it.
    ``reason`` says why the local stand-in runs it rather than Docker.
    """

    runtime = LOCAL
    what = WHAT

    def __init__(self, name: str, *, env: dict[str, str] | None = None, reason: str = "") -> None:
        place = locate(name, STACKS_DIR)
        self.name = place.name
        self.folder = place.folder
        self.file = place.file
        self.project = place.project
        self.env = dict(env or {})
        self.reason = reason

    def __repr__(self) -> str:
        why = f"; {self.reason}" if self.reason else ""
        return f"<LocalStack {self.name!r}: {WHAT}{why}>"

    def __enter__(self) -> LocalStack:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    @property
    def _running(self) -> _Project:
        return _project(self.name)

    # -- what the stack declares ----------------------------------------------------------------

    @property
    def services(self) -> list[str]:
        """The services declared in compose.yaml, the database too (a SQLite file here)."""
        return list(self.config().get("services", {}))

    def config(self) -> dict[str, Any]:
        """compose.yaml as a dict: ``${VARIABLES}`` filled in from ``env`` and the environment."""
        import yaml

        data = yaml.safe_load(composefile.interpolate(self.file.read_text(), self.env))
        return data if isinstance(data, dict) else {}

    def plan(self) -> dict[str, Service | StandIn]:
        """What each service of compose.yaml becomes here: processes to run, or a file."""
        volumes = self._running.volumes
        plan: dict[str, Service | StandIn] = {}
        declared = self.config().get("services") or {}
        for name, spec in declared.items():
            spec = spec or {}
            build = spec.get("build")
            if not build:
                image = str(spec.get("image", ""))
                if any(word in image.split("/")[-1] for word in SQLITE_STAND_INS):
                    plan[name] = StandIn(name, image, volumes / f"{name}.sqlite3")
                    continue
                raise StackError(
                    f"The local stand-in cannot run {name} (image {image or '?'}): "
                    "it runs only services built from this kit's Python apps, and "
                    "a SQLite file in place of MariaDB. Run this stack with Docker."
                )
            context = self.folder / (build["context"] if isinstance(build, dict) else build)
            target, default_cmd = _dockerfile(context)
            command = spec.get("command") or default_cmd
            command = command.split() if isinstance(command, str) else [str(c) for c in command]
            if len(command) != 1 or ":" not in command[0]:
                raise StackError(
                    f"The local stand-in runs each service as `uvicorn "
                    f"<module>:<app>` from its build folder; {name}'s command "
                    f"{command!r} is not one. Run this stack with Docker."
                )
            ports = _ports(spec.get("ports"), name)
            if len({t for t, _, _ in ports}) > 1:
                raise StackError(
                    f"{name} publishes several container ports; a local process "
                    "listens on one. Run this stack with Docker."
                )
            if ports:
                target = ports[0][0]
            check = spec.get("healthcheck") or {}
            interval = composefile.duration(check.get("interval"), 30.0)
            environment = composefile.environment(spec)
            app = command[0]
            plan[name] = Service(
                name=name,
                app=app,
                app_dir=context.resolve(),
                environment=environment,
                target=target,
                published=tuple(host for _, host, _ in ports),
                address=ports[0][2] if ports else "127.0.0.1",
                probe=_probe_path(check, target),
                interval=interval,
                timeout=composefile.duration(check.get("timeout"), 30.0),
                patience=composefile.duration(check.get("start_period"), 0.0)
                + interval * int(check.get("retries", 3)),
                depends_on=composefile.depends_on(spec),
                digest=_digest(
                    context, app, json.dumps(environment, sort_keys=True), json.dumps(ports)
                ),
            )
        for name, item in plan.items():
            if isinstance(item, Service):
                unknown = sorted(set(item.depends_on) - set(plan))
                if unknown:
                    raise StackError(
                        f"{name} depends on {', '.join(unknown)}, which compose.yaml "
                        "does not declare."
                    )
        return plan

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self, *, wait: bool = True, timeout: float = 180.0, build: bool = True) -> LocalStack:
        """Start every service in ``depends_on`` order; with ``wait``, return once all are healthy.

        Running ``up`` again changes nothing that is already right: processes whose code or
        settings changed are replaced, replicas added with ``scale`` go, exited ones start again.
        There is nothing to build (``build`` is accepted so the calls match ``Stack``). If
        starting fails or is interrupted, every process of the stack is stopped; the error says
        which service failed and shows its last log lines.
        """
        plan = self.plan()
        deadline = Deadline(timeout)
        project = self._running
        other = project.held_elsewhere()
        if other is not None:
            raise StackError(
                f"{self.name} is already up in another kernel (pid {other}): another notebook, "
                "or the same lesson open in a second tab. One copy of a stack runs at a time, "
                "so this one was not started and that one keeps working. Use the stack from "
                "there, or run `down` there (or shut that kernel down) and then `up` here."
            )
        try:
            project.volumes.mkdir(parents=True, exist_ok=True)
            # What is not exactly as planned goes: changed code or settings, extra or exited
            # replicas, services no longer declared.
            project.remove(
                [
                    r
                    for r in project.all()
                    if r.number > 1 or not r.running or r.service != plan.get(r.service.name)
                ]
            )
            self._start_in_order(plan, deadline)
            if wait:
                self.wait(timeout=deadline.left())
        except BaseException:
            project.stop(project.all())
            raise
        return self

    def _start_in_order(self, plan: dict[str, Service | StandIn], deadline: Deadline) -> None:
        project = self._running
        stand_ins = {n: s for n, s in plan.items() if isinstance(s, StandIn)}
        pending = [s for s in plan.values() if isinstance(s, Service)]
        while pending:
            for service in list(pending):
                waiting_for = [
                    d
                    for d, condition in service.depends_on.items()
                    if not self._satisfied(plan, d, condition)
                ]
                if not waiting_for:
                    if not project.running(service.name):
                        project.start(service, 1, stand_ins)
                    pending.remove(service)
            if not pending:
                return
            if deadline.passed():
                waits = {
                    s.name: [d for d, c in s.depends_on.items() if not self._satisfied(plan, d, c)]
                    for s in pending
                }
                raise StackError(
                    f"{self.name}: not started in time; "
                    + "; ".join(f"{n} still waits for {', '.join(d)}" for n, d in waits.items())
                    + f".\n{self.status()}"
                )
            time.sleep(0.05)

    def _satisfied(
        self, plan: dict[str, Service | StandIn], dependency: str, condition: str
    ) -> bool:
        if isinstance(plan[dependency], StandIn):
            return True
        replicas = [r for r in self._running.all() if r.service.name == dependency]
        for replica in replicas:
            if replica.exit_code is not None and condition != "service_completed_successfully":
                self._fail(replica)
            if replica.health == "unhealthy":
                self._fail(replica)
        if condition == "service_completed_successfully":
            return bool(replicas) and all(r.exit_code == 0 for r in replicas)
        if condition == "service_healthy":
            return bool(replicas) and all(
                r.running and r.health in ("healthy", "") for r in replicas
            )
        return bool(replicas) and all(r.running for r in replicas)

    def _fail(self, replica: Replica) -> None:
        what = (
            f"exited with code {replica.exit_code}"
            if replica.exit_code is not None
            else f"is {replica.health}"
        )
        raise StackError(
            f"{replica.name} ({replica.service.name}, pid {replica.pid}) {what}. "
            f"Its last log lines:\n{self.logs(replica.service.name, tail=15)}\n"
            "Fix the cause, then run up() again."
        )

    def wait(
        self, *, timeout: float = 180.0, services: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Block until every process of the services is running and healthy; returns ``ps()``."""
        project = self._running
        names = services or [n for n, s in self.plan().items() if isinstance(s, Service)]
        deadline = Deadline(timeout)
        while True:
            replicas = [r for r in project.all() if r.service.name in names]
            for replica in replicas:
                if replica.exit_code is not None or replica.health == "unhealthy":
                    self._fail(replica)
            ready = {n: [r for r in replicas if r.service.name == n] for n in names}
            if all(rs and all(r.serving for r in rs) for rs in ready.values()):
                return self.ps()
            if deadline.passed():
                waiting = sorted(
                    n for n, rs in ready.items() if not rs or not all(r.serving for r in rs)
                )
                raise StackError(
                    f"{self.name}: not healthy after {timeout:.0f} s, still waiting "
                    f"for {', '.join(waiting)}.\n{self.status()}\nSee "
                    f"stack.logs({waiting[0]!r}) for why."
                )
            time.sleep(0.05)

    def scale(
        self, service: str, replicas: int, *, wait: bool = True, timeout: float = 120.0
    ) -> LocalStack:
        """Run ``replicas`` processes of one service (the others are left as they are).

        New processes get the next free replica numbers; scaling down stops the highest ones.
        If a new process fails to get healthy (or waiting is interrupted), the new ones stop.
        """
        plan = self.plan()
        if service not in plan:
            raise StackError(f"{self.name} has no service {service!r}: it has {', '.join(plan)}.")
        spec = plan[service]
        if isinstance(spec, StandIn):
            raise StackError(
                f"{service} is a SQLite file here, not a process, so it cannot be "
                "scaled (on Docker, databases are scaled with replication, not "
                "with more copies of one container)."
            )
        if replicas < 0:
            raise StackError("replicas must be 0 or more.")
        project = self._running
        project.remove([r for r in project.all() if r.service.name == service and not r.running])
        current = project.running(service)
        if replicas <= len(current):
            project.remove(current[replicas:])
            return self
        stand_ins = {n: s for n, s in plan.items() if isinstance(s, StandIn)}
        used = {r.number for r in current}
        numbers = [n for n in range(1, replicas + len(used) + 1) if n not in used]
        started: list[Replica] = []
        try:
            for number in numbers[: replicas - len(current)]:
                started.append(project.start(spec, number, stand_ins))
            if wait:
                self.wait(timeout=timeout, services=[service])
        except BaseException:
            project.remove(started)
            raise
        return self

    def down(self, *, volumes: bool = True, timeout: float = 120.0) -> None:
        """Stop every process of the stack and forget it (and delete its SQLite files, by default).

        Like Docker's volumes, the database file survives ``down(volumes=False)``.
        """
        project = self._running
        project.shutdown()
        project.forget_files(volumes=volumes)

    # -- what is running ------------------------------------------------------------------------

    def ps(self) -> list[dict[str, Any]]:
        """Every process of the stack: service, replica, container (its name), state, health,
        ports (where it listens) and pid, in the shape of ``Stack.ps()`` rows."""
        rows = []
        for replica in self._running.all():
            rows.append(
                {
                    "service": replica.service.name,
                    "replica": replica.number,
                    "container": replica.name,
                    "state": "running" if replica.running else "exited",
                    "health": replica.health if replica.running else "",
                    "ports": [f"{replica.service.address}:{replica.port}"]
                    if replica.running
                    else [],
                    "pid": replica.pid,
                }
            )
        return rows

    def networks(self) -> dict[str, dict[str, Any]]:
        """The networks compose.yaml declares, in the shape of ``Stack.networks()``. The
        stand-in makes none: this is what the file asks for, and nothing enforces it here."""
        config = self.config()
        running = {r["service"] for r in self.ps() if r["state"] == "running"}
        running |= {n for n, s in self.plan().items() if isinstance(s, StandIn)}
        out: dict[str, dict[str, Any]] = {}
        for name, spec in (config.get("networks") or {}).items():
            services = [
                s
                for s, body in (config.get("services") or {}).items()
                if s in running
                and name in composefile.names((body or {}).get("networks") or ["default"])
            ]
            out[name] = {
                "internal": bool((spec or {}).get("internal")),
                "services": sorted(services),
            }
        return dict(sorted(out.items()))

    def status(self) -> str:
        """``ps()`` as a small text table, and what stands in for the services not run here."""
        lines = [format_ps(self.ps())]
        try:
            plan = self.plan()
        except StackError:
            plan = {}
        lines += [item.describe() for item in plan.values() if isinstance(item, StandIn)]
        return "\n".join(lines)

    def url(self, service: str, port: int | None = None) -> str:
        """``http://127.0.0.1:PORT``, where a service that compose.yaml publishes listens."""
        spec = self.plan().get(service)
        running = self._running.running(service)
        if not isinstance(spec, Service) or not spec.published or not running:
            raise StackError(
                f"{service} has no port published on 127.0.0.1 (is the stack up? "
                "Only some services publish one: see stack.ps())."
            )
        if port is not None and port != spec.target:
            raise StackError(f"{service} does not publish port {port}; it publishes {spec.target}.")
        return f"http://127.0.0.1:{running[0].port}"

    def hostnames(self, service: str) -> list[str]:
        """The hostnames (``<service>-<replica>``) of a service's running processes."""
        return sorted(r.name for r in self._running.running(service))

    def logs(self, service: str | None = None, *, tail: int = 20) -> str:
        """The last ``tail`` log lines of each process (of one service, or all), by replica."""
        lines = []
        for replica in self._running.all():
            if service is None or replica.service.name == service:
                text = processes.tail(replica.log_path, tail)
                lines += [(replica.name, line) for line in text.splitlines()]
        width = max((len(who) for who, _ in lines), default=0)
        return "\n".join(f"{who:<{width}} | {text}" for who, text in lines)


__all__ = ["WHAT", "LocalStack", "Replica", "Service", "StandIn", "stack"]
