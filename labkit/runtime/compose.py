"""Compose stacks from ``compose/<name>/``: start, wait for healthy, find, scale, read logs, stop.

Compose itself runs through its command line, ``docker compose`` (v2) where present, else
``docker-compose`` (v1), detected at run time. What is running is read through the Docker SDK by the
labels Compose puts on every container (``com.docker.compose.project`` and ``.service``), never by
parsing the command's tables, so both Compose versions give the same answers.

A stack's project name is fixed (``labkit-<name>``), so starting it again from a re-run notebook
cell updates the same containers instead of leaking a second copy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from labkit import engine
from labkit.errors import StackError
from labkit.paths import labkit_home, project_name, secrets_dir, stacks_dir
from labkit.progress import Progress, ProgressArg, progress_for
from labkit.runtime import composefile
from labkit.runtime.recipes import RECIPES
from labkit.waiting import Deadline

STACKS_DIR = stacks_dir()

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"


def stacks(kit: Path | None = None) -> list[str]:
    """The names of the stacks in ``compose/`` (each folder with a ``compose.yaml``)."""
    return sorted(p.parent.name for p in (kit or STACKS_DIR).glob("*/compose.yaml"))


@functools.lru_cache(maxsize=1)
def compose_command() -> tuple[str, ...]:
    """``("docker", "compose")`` when the v2 plugin answers, else ``("docker-compose",)`` (v1)."""
    for cmd in (("docker", "compose"), ("docker-compose",)):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            done = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return cmd
    raise StackError(
        "Neither `docker compose` nor `docker-compose` is installed: install the "
        "Compose plugin, or `apt-get install -y docker-compose`, then try again."
    )


@dataclass(frozen=True)
class Place:
    """Where a stack's compose file is, what it is called, and its Compose project name."""

    name: str
    folder: Path
    file: Path
    project: str


def locate(name: str, kit: Path | None = None) -> Place:
    """A kit stack by name (``"services"``: ``compose/services/compose.yaml``, project
    ``labkit-services``), or a compose file anywhere by its path (``"my-shop/compose.yaml"``,
    named after its folder, project ``COMPOSE_PROJECT_NAME`` from the folder's ``.env`` as
    Compose itself reads it, else the folder's name)."""
    given = Path(name).expanduser()
    if given.suffix in (".yaml", ".yml") or os.sep in name or "/" in name:
        file = given if given.suffix in (".yaml", ".yml") else given / "compose.yaml"
        if not file.is_file():
            raise StackError(
                f"There is no compose file at {file}: check the path (relative to "
                f"{Path.cwd()}), or copy a stack first with labkit.copy_stack(...)."
            )
        folder = file.resolve().parent
        project = dotenv(folder / ".env").get("COMPOSE_PROJECT_NAME") or folder.name
        return Place(folder.name, folder, file.resolve(), _project_name(project))
    kit = kit or STACKS_DIR
    folder = kit / name
    if not (folder / "compose.yaml").is_file():
        raise StackError(
            f"There is no stack called {name!r}: choose one of "
            f"{', '.join(stacks(kit)) or '(none found in ' + str(kit) + ')'}, or give "
            "the path of a compose file."
        )
    return Place(name, folder, folder / "compose.yaml", project_name(name))


def remove_project(project: str, *, volumes: bool = True, client: Any = None) -> None:
    """Remove every container and network Compose made for ``project`` (found by its label),
    and with ``volumes`` its volumes, with or without the compose file that made them."""
    if client is None:
        client = engine.client(ping=False)
    selector = {"label": f"{PROJECT}={project}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=volumes)
    for network in client.networks.list(filters=selector):
        network.remove()
    if volumes:
        for volume in client.volumes.list(filters=selector):
            volume.remove(force=True)


#: How long a stack change waits for another process that is changing the same stack.
LOCK_WAIT = 600.0


@contextlib.contextmanager
def project_lock(project: str, *, timeout: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the lock of one Compose project while Compose changes it: two ``compose up`` of one
    project at once (two kernels, two tabs) leave duplicate networks that break every later run.
    The second one says who holds the lock, waits for it (at most ``timeout``), then goes on.
    The lock lives in ``$LABKIT_HOME/locks`` (so it serialises the processes of one learner; on
    one engine shared by several learners, each one's projects carry their own names)."""
    import fcntl

    folder = labkit_home() / "locks"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / f"{project}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            print(
                f"Another process (pid {holder}) is changing the {project} stack now: waiting "
                f"for it to finish (at most {timeout:.0f} s).",
                file=sys.stderr,
            )
            deadline = Deadline(timeout)
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline.passed():
                        raise StackError(
                            f"Process {holder} has been changing the {project} stack for more "
                            f"than {timeout:.0f} s. Let it finish, or stop it (kill {holder}), "
                            "then run this again."
                        ) from None
                    time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def duplicate_networks(client: Any, prefix: str = "labkit") -> dict[str, list[str]]:
    """Network names that more than one network carries, among the Compose projects whose
    name starts with ``prefix``: what two ``compose up`` at once leave (``network ... is
    ambiguous``). Name -> the ids."""
    seen: dict[str, list[str]] = {}
    for network in client.networks.list(filters={"label": PROJECT}):
        if str((network.attrs.get("Labels") or {}).get(PROJECT, "")).startswith(prefix):
            seen.setdefault(network.name, []).append(network.id)
    return {name: ids for name, ids in sorted(seen.items()) if len(ids) > 1}


def _project_name(text: str) -> str:
    """A project name as Compose makes one: lower case, letters, digits, ``-`` and ``_``."""
    return re.sub(r"[^a-z0-9_-]", "", text.lower()) or "default"


def dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a Compose ``.env`` file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                values[key.strip()] = value.strip().strip("'\"")
    return values


class Stack:
    """One Compose stack of the kit, e.g. ``Stack("services")`` for ``compose/services/``.

    ``up()`` returns when every service is healthy; ``url(service)`` says where a published port is
    (always on 127.0.0.1); ``scale``, ``logs``, ``ps`` and ``down`` do what their names say. Used as
    a context manager, the stack is up inside the ``with`` block and down after it.
    """

    def __init__(
        self, name: str, *, env: dict[str, str] | None = None, project: str | None = None
    ) -> None:
        place = locate(name)
        self.name = place.name
        self.folder = place.folder
        self.file = place.file
        # One project per stack by default; a runtime that runs its own copy names its own.
        self.project = project or place.project
        # Fixed when the stack is made: a secret's path that changed between two `up`s would
        # make Compose recreate every service with a new random password.
        self._secrets_folder = secrets_dir(self.project)
        self.env = dict(env or {})

    @property
    def env(self) -> dict[str, str]:
        """Values for the ${VARIABLES} compose.yaml reads (for example where the receiver
        listens): the ones given, over the kit's defaults. Generated secrets live under the
        learner's home (0700), never in the kit's folder, which an installed wheel may not even
        let us write."""
        folder = self._secrets_folder
        defaults = {"LABKIT_SECRETS": str(folder)}
        if "LABKIT_WEBHOOK_TOKEN_FILE" not in os.environ:
            defaults["LABKIT_WEBHOOK_TOKEN_FILE"] = str(folder / "webhook_token")
        return {**defaults, **self._env}

    @env.setter
    def env(self, values: dict[str, str]) -> None:
        self._env = dict(values)

    def __repr__(self) -> str:
        return f"Stack({self.name!r}, project={self.project!r})"

    def __enter__(self) -> Stack:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # -- what the stack declares ----------------------------------------------------------------

    @property
    def services(self) -> list[str]:
        """The services declared in compose.yaml (as ``compose config`` lists them)."""
        return list(self.config().get("services", {}))

    def config(self) -> dict[str, Any]:
        """compose.yaml as Compose reads it (``compose config``): paths absolute, anchors merged."""
        import yaml

        text = self._compose("config")
        data = yaml.safe_load(text)
        return data if isinstance(data, dict) else {}

    # -- lifecycle ------------------------------------------------------------------------------

    def up(
        self,
        *,
        wait: bool = True,
        timeout: float = 180.0,
        build: bool = True,
        services: list[str] | None = None,
        recreate: bool = False,
        progress: ProgressArg = True,
    ) -> Stack:
        """Create or update every service (or only ``services``); with ``wait``, return once all
        of them are healthy.

        Running ``up`` on a stack that is already up changes nothing that is already right. It
        brings the stack back to what compose.yaml says, so replicas added with ``scale`` go.
        ``recreate`` restarts the services' containers even when nothing Compose sees changed
        (a secret file's content, for example).
        ``progress`` (with ``wait``) shows the start-up as one bar: what Compose does,
        then the services healthy out of all of them (see :meth:`wait`).
        """
        self._client()
        config = self.config()
        if services:
            unknown = sorted(set(services) - set(config.get("services") or {}))
            if unknown:
                raise StackError(f"{self.name} has no service {', '.join(unknown)}.")
            config = {**config, "services": {n: config["services"][n] for n in services}}
        self._check_images(config)
        self._make_secrets(config)
        names = list(config.get("services") or {})
        bar = progress_for(progress if wait else None, f"{self.name} stack", len(names))
        with bar:
            doing = f"compose up{' --build' if build else ''}:"
            bar.status(f"{doing} creating the containers")
            with self._reporting(names, bar, doing) if wait else contextlib.nullcontext():
                self._compose(
                    "up",
                    "-d",
                    *([] if services else ["--remove-orphans"]),
                    *(["--build"] if build else []),
                    *(["--force-recreate"] if recreate else []),
                    *(services or []),
                    timeout=max(timeout, 60.0) + 600.0,
                )
            if wait:
                self.wait(timeout=timeout, services=services, progress=bar)
        return self

    def prepare(self) -> Stack:
        """What ``up`` needs before Compose runs: the lab images are here (else a clear error
        says how to build them) and every generated secret exists. For running the Compose
        command line by hand after it."""
        self._client()
        config = self.config()
        self._check_images(config)
        self._make_secrets(config)
        return self

    def wait(
        self,
        *,
        timeout: float = 180.0,
        services: list[str] | None = None,
        progress: ProgressArg = True,
    ) -> list[dict[str, Any]]:
        """Block until every container of the services is running and healthy; returns ``ps()``.

        ``progress`` counts the services that are healthy, names each one as it gets there and
        those still waiting: a bar (``True``: a widget in a notebook, a bar in a terminal, plain
        lines in a log), a function that takes each line, or ``None`` for silence.
        """
        names = services or self.services
        with progress_for(progress, f"{self.name} stack", len(names)) as bar:
            rows = self._wait_healthy(names, timeout, bar)
            bar.finish(f"{len(names)} of {len(names)} services healthy")
            return rows

    def _wait_healthy(
        self, names: list[str], timeout: float, bar: Progress
    ) -> list[dict[str, Any]]:
        deadline = Deadline(timeout)
        while True:
            rows = self.ps()
            for row in rows:
                if row["service"] in names and (
                    row["state"] in ("exited", "dead") or row["health"] == "unhealthy"
                ):
                    raise StackError(
                        f"{row['container']} ({row['service']}) is {row['health'] or row['state']}"
                        f". Its last log lines:\n{self.logs(row['service'], tail=15)}\n"
                        f"Fix the cause, then run up() again."
                    )
            waiting = self._report(names, rows, bar)
            if not waiting:
                return rows
            if deadline.passed():
                raise StackError(
                    f"{self.name}: not healthy after {timeout:.0f} s, still waiting "
                    f"for {', '.join(sorted(waiting))}.\n{format_ps(rows)}\nSee "
                    f"stack.logs({sorted(waiting)[0]!r}) for why."
                )
            time.sleep(0.5)

    @staticmethod
    def _report(
        names: list[str], rows: list[dict[str, Any]], bar: Progress, doing: str = ""
    ) -> list[str]:
        """Show how many services are healthy now; returns those that are not."""
        ready = {name: [r for r in rows if r["service"] == name] for name in names}
        healthy = [n for n in names if ready[n] and all(_is_ready(r) for r in ready[n])]
        # The count is how many are healthy now; each service is named once, the first time
        # (a container that restarts lowers the count, and is not named again).
        bar.update(len(healthy))
        for name in healthy:
            bar.first(name, f"{name}: {_readiness(ready[name])} after {bar.state.seconds:.0f} s")
        waiting = [n for n in names if n not in healthy]
        if waiting:
            bar.status(
                " ".join(p for p in (doing, "waiting for") if p)
                + " "
                + ", ".join(_waiting_for(n, ready[n]) for n in waiting)
            )
        return waiting

    @contextlib.contextmanager
    def _reporting(self, names: list[str], bar: Progress, doing: str) -> Iterator[None]:
        """Report health from a thread while Compose works (it waits for ``depends_on`` itself)."""
        stop = threading.Event()

        def follow() -> None:
            while not stop.wait(0.5):
                try:
                    self._report(names, self.ps(), bar, doing)
                except Exception:  # noqa: BLE001 - the wait after compose up says what is wrong
                    pass

        thread = threading.Thread(target=follow, name=f"progress-{self.project}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def scale(
        self, service: str, replicas: int, *, wait: bool = True, timeout: float = 120.0
    ) -> Stack:
        """Run ``replicas`` containers of one service (the others are left as they are)."""
        declared = self.services
        if service not in declared:
            raise StackError(
                f"{self.name} has no service {service!r}: it has {', '.join(declared)}."
            )
        if replicas < 0:
            raise StackError("replicas must be 0 or more.")
        self._compose(
            "up",
            "-d",
            "--no-deps",
            "--no-recreate",
            "--scale",
            f"{service}={replicas}",
            service,
            timeout=timeout + 60.0,
        )
        if wait and replicas:
            self.wait(timeout=timeout, services=[service])
        return self

    def down(self, *, volumes: bool = True, timeout: float = 120.0) -> None:
        """Stop and remove every container and network of the stack (and its volumes, by default).

        Lab stacks are disposable, so ``volumes=True`` also drops the database's data; pass
        ``volumes=False`` to keep it for the next ``up``.
        """
        client = self._client()
        try:
            self._compose(
                "down",
                "--remove-orphans",
                "--timeout",
                "5",
                *(["-v"] if volumes else []),
                timeout=timeout,
            )
            failed = None
        except StackError as exc:  # e.g. "network ... is ambiguous": two networks of one name
            failed = exc
        # Compose only removes what the current file declares, and gives up on duplicate
        # networks; sweep everything the project's label finds, by id.
        remove_project(self.project, volumes=volumes, client=client)
        if failed is not None and self._containers():
            raise failed

    # -- what is running ------------------------------------------------------------------------

    def ps(self) -> list[dict[str, Any]]:
        """Every container of the stack: service, replica, container, state, health and ports.

        ``replica`` is Compose's container number (1, 2, ...); ``container`` the name, which
        differs between Compose v1 and v2; ``health`` is ``""`` without a healthcheck; ``ports``
        read ``127.0.0.1:HOST->CONTAINER/tcp``. Read through the Docker SDK, not the CLI.
        """
        rows = []
        for attrs in self._containers():
            labels = attrs["Config"].get("Labels") or {}
            state = attrs.get("State") or {}
            rows.append(
                {
                    "service": labels.get(SERVICE, "?"),
                    "replica": int(labels.get(NUMBER, "0") or 0),
                    "container": attrs["Name"].lstrip("/"),
                    "state": state.get("Status", "?"),
                    "health": (state.get("Health") or {}).get("Status", ""),
                    "ports": _ports(attrs),
                }
            )
        rows.sort(key=lambda r: (r["service"], r["replica"]))
        return rows

    def networks(self) -> dict[str, dict[str, Any]]:
        """The stack's networks as the engine has them, by their name in compose.yaml:
        ``{"backend": {"internal": True, "services": ["db", "orders", ...]}}``."""
        client = self._client()
        selector = {"label": f"{PROJECT}={self.project}"}
        service_of = {
            c["Id"]: (c.get("Labels") or {}).get(SERVICE, "?")
            for c in client.api.containers(all=True, filters=selector)
        }
        out: dict[str, dict[str, Any]] = {}
        for network in client.networks.list(filters=selector):
            network.reload()  # the list leaves out which containers are attached
            attrs = network.attrs
            name = (attrs.get("Labels") or {}).get("com.docker.compose.network", attrs["Name"])
            services = sorted({service_of.get(c, "?") for c in attrs.get("Containers") or {}})
            out[name] = {"internal": bool(attrs.get("Internal")), "services": services}
        return dict(sorted(out.items()))

    def status(self) -> str:
        """``ps()`` as a small text table, for printing."""
        return format_ps(self.ps())

    def url(self, service: str, port: int | None = None) -> str:
        """``http://127.0.0.1:PORT``, where a service's container port is published on this host."""
        published: dict[str, str] = {}
        for attrs in self._containers():
            labels = attrs["Config"].get("Labels") or {}
            if (
                labels.get(SERVICE) != service
                or (attrs.get("State") or {}).get("Status") != "running"
            ):
                continue
            for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
                for binding in bindings or []:
                    if binding.get("HostIp") == "127.0.0.1":
                        published.setdefault(key.split("/")[0], binding["HostPort"])
        if not published:
            raise StackError(
                f"{service} has no port published on 127.0.0.1 (is the stack up? "
                f"Only some services publish one: see stack.ps())."
            )
        if port is None:
            if len(published) > 1:
                raise StackError(
                    f"{service} publishes ports {', '.join(sorted(published))}: "
                    "say which with url(service, port)."
                )
            return f"http://127.0.0.1:{next(iter(published.values()))}"
        if str(port) not in published:
            raise StackError(
                f"{service} does not publish port {port}; it publishes "
                f"{', '.join(sorted(published))}."
            )
        return f"http://127.0.0.1:{published[str(port)]}"

    def hostnames(self, service: str) -> list[str]:
        """The hostnames (short container ids) of a service's running replicas."""
        return sorted(
            str(a["Config"].get("Hostname", ""))
            for a in self._containers()
            if (a["Config"].get("Labels") or {}).get(SERVICE) == service
            and (a.get("State") or {}).get("Status") == "running"
        )

    def logs(self, service: str | None = None, *, tail: int = 20) -> str:
        """The last ``tail`` log lines of each container (of one service, or all), oldest first."""
        client = self._client()
        lines: list[tuple[str, str, str]] = []
        for attrs in self._containers():
            labels = attrs["Config"].get("Labels") or {}
            if service is not None and labels.get(SERVICE) != service:
                continue
            who = f"{labels.get(SERVICE, '?')}-{labels.get(NUMBER, '?')}"
            raw = client.api.logs(attrs["Id"], tail=tail, timestamps=True)
            for line in raw.decode("utf-8", "replace").splitlines():
                stamp, _, text = line.partition(" ")
                lines.append((stamp, who, text))
        lines.sort(key=lambda item: item[0])
        width = max((len(who) for _, who, _ in lines), default=0)
        return "\n".join(f"{who:<{width}} | {text}" for _, who, text in lines)

    # -- plumbing -------------------------------------------------------------------------------

    def _compose(self, *args: str, timeout: float = 300.0) -> str:
        if args[0] in ("up", "down"):  # the commands that make or remove networks
            with project_lock(self.project):
                return self._run_compose(*args, timeout=timeout)
        return self._run_compose(*args, timeout=timeout)

    def _run_compose(self, *args: str, timeout: float = 300.0) -> str:
        cmd = [
            *compose_command(),
            "--ansi",
            "never",
            "-p",
            self.project,
            "-f",
            str(self.file),
            "--project-directory",
            str(self.folder),
            *args,
        ]
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.folder,
                env={**os.environ, **self.env},
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"`{' '.join(compose_command())} {args[0]}` for {self.name} took "
                f"longer than {timeout:.0f} s: see stack.logs()."
            ) from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise StackError(
                f"`compose {' '.join(args)}` failed for the {self.name} stack:\n{tail}"
            )
        return done.stdout

    def _client(self) -> Any:
        try:
            return engine.client()
        except Exception as exc:
            raise StackError(
                "No Docker engine answers: start Docker (`sudo systemctl start "
                "docker`) and run this again. Without Docker, the lessons use the "
                "local runtime."
            ) from exc

    def _containers(self) -> list[dict[str, Any]]:
        import docker.errors

        client = self._client()
        out = []
        for summary in client.api.containers(
            all=True, filters={"label": [f"{PROJECT}={self.project}"]}
        ):
            if (summary.get("Labels") or {}).get(ONEOFF) == "True":
                continue
            try:
                out.append(client.api.inspect_container(summary["Id"]))
            except docker.errors.NotFound:
                continue
        return out

    def _check_images(self, config: dict[str, Any]) -> None:
        lab_tags = {r.tag for r in RECIPES}
        needed: set[str] = set()
        for spec in (config.get("services") or {}).values():
            build = spec.get("build")
            if build:
                context = Path(build["context"] if isinstance(build, dict) else build)
                dockerfile = context / (
                    build.get("dockerfile", "Dockerfile")
                    if isinstance(build, dict)
                    else "Dockerfile"
                )
                if dockerfile.is_file():
                    text = dockerfile.read_text()
                    stages = set(re.findall(r"(?im)^\s*FROM\s+\S+\s+AS\s+(\S+)", text))
                    needed.update(set(re.findall(r"(?im)^\s*FROM\s+(\S+)", text)) - stages)
            elif spec.get("image"):
                needed.add(str(spec["image"]))
        client = self._client()
        absent = sorted(tag for tag in needed if _absent(client, tag))
        lab = [t for t in absent if t in lab_tags]
        other = [t for t in absent if t not in lab_tags]
        if lab:
            raise StackError(
                f"The {self.name} stack needs images that are not built yet: "
                f"{', '.join(lab)}. Run `labkit images build` (offline, a few "
                "minutes the first time) or `labkit images load FILE`."
            )
        if other:
            raise StackError(
                f"The {self.name} stack needs {', '.join(other)}, which this machine "
                "does not have and labkit does not build: `docker pull` it where "
                "pulls work, or `docker load` it from a file."
            )

    def _make_secrets(self, config: dict[str, Any]) -> None:
        """Create each missing file secret of ``$LABKIT_SECRETS`` with a random value.

        The folder is 0700. A secret whose every reader starts as root (and drops to its own
        user after reading it, as the pipeline's ``render`` does) is 0600; one that a service's
        non-root user reads itself must be 0644, because Compose bind-mounts the file with the
        host's owner and mode: the folder is what keeps other users of this machine out.
        """
        secret_dir = Path(self.env["LABKIT_SECRETS"])
        services = (config.get("services") or {}).values()
        for name, spec in (config.get("secrets") or {}).items():
            path = Path(str((spec or {}).get("file", "")))
            if not path.is_absolute() or path.parent != secret_dir or path.exists():
                continue
            readers = [s for s in services if name in composefile.names(s.get("secrets"))]
            mode = (
                0o600
                if all(str(s.get("user", "")).split(":")[0] in ("root", "0") for s in readers)
                else 0o644
            )
            secret_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            secret_dir.chmod(0o700)
            if secret_dir.parent.name == "secrets":  # $LABKIT_HOME/secrets: ours, private too
                secret_dir.parent.chmod(0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
            path.chmod(mode)


def format_ps(rows: list[dict[str, Any]]) -> str:
    """A text table of ``Stack.ps()`` rows."""
    header = ("SERVICE", "REPLICA", "STATE", "HEALTH", "PORTS")
    table = [
        header,
        *(
            (
                r["service"],
                str(r["replica"]),
                r["state"],
                r["health"] or "-",
                ", ".join(r["ports"]) or "-",
            )
            for r in rows
        ),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def _is_ready(row: dict[str, Any]) -> bool:
    return row["state"] == "running" and row["health"] in ("healthy", "")


def _readiness(rows: list[dict[str, Any]]) -> str:
    word = "healthy" if any(r["health"] for r in rows) else "running (no healthcheck)"
    return word if len(rows) == 1 else f"{word}, {len(rows)} replicas"


def _waiting_for(service: str, rows: list[dict[str, Any]]) -> str:
    """``name (what it is now)`` for a service that is not ready yet."""
    if not rows:
        return f"{service} (no container yet)"
    late = [r for r in rows if not _is_ready(r)]
    now = late[0]["health"] if late[0]["state"] == "running" else late[0]["state"]
    if len(rows) > 1:
        now += f", {len(rows) - len(late)} of {len(rows)} ready"
    return f"{service} ({now})"


def bound_addresses(rows: list[dict[str, Any]]) -> set[str]:
    """The host addresses the ``ports`` of ``ps()`` rows are bound to (``127.0.0.1``,
    ``0.0.0.0``, ``::``), from entries such as ``127.0.0.1:49153->8000/tcp``."""
    return {b.split("->")[0].rsplit(":", 1)[0] for r in rows for b in r["ports"]}


def _ports(attrs: dict[str, Any]) -> list[str]:
    out = []
    for key, bindings in sorted(((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items()):
        for binding in bindings or []:
            out.append(f"{binding.get('HostIp', '')}:{binding.get('HostPort', '')}->{key}")
    return out


def _absent(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return False
    except docker.errors.ImageNotFound:
        return True
