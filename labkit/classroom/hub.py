"""``labkit classroom up / status / down``: a workshop hub on this machine, one command each.

Everything lives in ``$LABKIT_HOME/classroom/`` (0700): the settings, the hub's database, its
log, and the secrets (0600 files, made once and kept, so a restarted hub keeps its passwords).
The hub runs detached from the command that started it; ``down`` stops every learner's server,
then the hub, the proxy and the class view, and removes the containers and the network. Each
learner's work stays in their own volume (``labkit-learner-NAME``) unless ``--forget-work``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from labkit import engine
from labkit.classroom.ledger import LEARNER
from labkit.errors import ClassroomError
from labkit.paths import labkit_home, lessons_dir
from labkit.private import private_file
from labkit.runtime import images
from labkit.waiting import Deadline
from labkit.webhooks.serving import free_port

IMAGE = "labkit/learner:bookworm"
NETWORK = "labkit-classroom"
CONTAINER_PREFIX = "labkit-learner-"
INSTRUCTOR = "instructor"
#: Debian's node does not search its own module folder; the proxy needs it (see the README).
NODE_PATH = "/usr/share/nodejs"
START_SECONDS = 90.0
#: The hub's API lists at most 200 users per answer (api_page_max_limit).
MAX_LEARNERS = 200

Say = Callable[[str], None]


def folder() -> Path:
    return labkit_home() / "classroom"


@dataclass(frozen=True)
class Classroom:
    """A running (or last started) classroom, as its settings file says."""

    folder: Path
    url: str
    learners: tuple[str, ...]
    instructor: str
    spawner: str

    @property
    def api(self) -> str:
        return self.url.rstrip("/") + "/hub/api"

    def admin_token(self) -> str:
        return (self.folder / "admin-token").read_text().strip()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the hub's REST API as the kit's ``labkit-admin`` service."""
        headers = {"Authorization": f"token {self.admin_token()}"}
        return httpx.request(
            method, self.api + path, headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs
        )


def learner_names(count: int = 0, names: Sequence[str] = ()) -> list[str]:
    """``learner01``... for a count, or the given names checked (lowercase, a-z 0-9 - _)."""
    if names:
        chosen = [n.strip().lower() for n in names if n.strip() and not n.startswith("#")]
    else:
        if not 1 <= count <= MAX_LEARNERS:
            raise ClassroomError(
                f"A classroom has 1 to {MAX_LEARNERS} learners (--learners N): the hub lists at "
                "most that many users in one answer, and one server holds far fewer anyway "
                "(docs/instructor.md, capacity)."
            )
        chosen = [f"learner{i:02d}" for i in range(1, count + 1)]
    bad = [n for n in chosen if not LEARNER.match(n) or n == INSTRUCTOR]
    if bad:
        raise ClassroomError(
            f"Not a learner's name: {', '.join(bad[:5])} (lowercase letters, digits, - and _, "
            f"at most 40, not {INSTRUCTOR!r})."
        )
    if len(chosen) > MAX_LEARNERS:
        raise ClassroomError(f"At most {MAX_LEARNERS} learners in one classroom.")
    if len(set(chosen)) != len(chosen):
        raise ClassroomError("A learner's name appears twice in the list.")
    return chosen


def _secret(path: Path, make: Callable[[], bytes]) -> None:
    if not path.exists() or path.stat().st_size == 0:
        private_file(path)
        path.write_bytes(make())


def _hub_pid(where: Path) -> int | None:
    """The running hub's pid, or None (a hub that exited is reaped if this process started it)."""
    try:
        pid = int((where / "hub.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and _is_hub(pid) else None


def _is_hub(pid: int) -> bool:
    """A pid from the file is the hub only if it still runs jupyterhub (pids are reused)."""
    try:
        return b"jupyterhub" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc").is_dir()  # no /proc to ask: trust the file


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our child, and it has just been reaped
    except ChildProcessError:
        pass  # started by another command: ask the system
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def current() -> Classroom | None:
    """The classroom whose hub is running, or None."""
    where = folder()
    if _hub_pid(where) is None:
        return None
    return _load(where)


def _load(where: Path) -> Classroom:
    s = json.loads((where / "settings.json").read_text())
    return Classroom(
        where,
        f"http://{s['ip'] if s['ip'] != '0.0.0.0' else '127.0.0.1'}:{s['port']}/",
        tuple(s["learners"]),
        s["instructor"],
        s["spawner"],
    )


def _network_gateway(say: Say) -> str:

    client = engine.client()
    found = client.networks.list(names=[NETWORK])
    network = next((n for n in found if n.name == NETWORK), None)
    if network is None:
        say(f"  creating the Docker network {NETWORK}")
        network = client.networks.create(
            NETWORK,
            driver="bridge",
            labels={"org.labkit.classroom": "1"},
            # Learners' containers cannot talk to each other; the hub and the class view, on
            # the network's gateway, and the proxy on the host still reach every one.
            options={"com.docker.network.bridge.enable_icc": "false"},
        )
        network.reload()
    config = network.attrs["IPAM"]["Config"]
    if not config or not config[0].get("Gateway"):
        raise ClassroomError(f"The network {NETWORK} has no gateway address: remove it and retry.")
    return str(config[0]["Gateway"])


def up(
    learners: Sequence[str],
    *,
    spawner: str = "docker",
    port: int = 8000,
    public: bool = False,
    mem: str = "1G",
    cpus: float = 1.0,
    say: Say = print,
) -> Classroom:
    """Start the workshop hub and create the learners' accounts; returns when it answers."""
    if spawner not in ("docker", "local"):
        raise ClassroomError("--spawner is docker (a container per learner) or local.")
    if spawner == "local" and public:
        raise ClassroomError(
            "--spawner local runs every learner as this machine's user, who can read the "
            "classroom's secrets: a trial on this machine, never published (drop --public)."
        )
    if shutil.which("configurable-http-proxy") is None:
        raise ClassroomError(
            "JupyterHub's proxy is missing: install Debian's node-configurable-http-proxy "
            "(apt-get install node-configurable-http-proxy)."
        )
    where = folder()
    if _hub_pid(where) is not None:
        running = _load(where)
        raise ClassroomError(
            f"A classroom is already running at {running.url}: `labkit classroom down` first."
        )
    private_file(where / "settings.json")
    _secret(where / "classroom.key", lambda: secrets.token_bytes(32))
    _secret(where / "workshop-password", lambda: secrets.token_urlsafe(9).encode())
    _secret(where / "instructor-password", lambda: secrets.token_urlsafe(15).encode())
    _secret(where / "admin-token", lambda: secrets.token_hex(32).encode())
    _secret(where / "jupyterhub_cookie_secret", lambda: secrets.token_hex(32).encode())

    if spawner == "docker":
        # Built offline, and again whenever the kit or its lessons change (a recipe hash).
        say(f"  {IMAGE}: building or checking it is up to date (offline)")
        images.build(["learner"], progress=say)
        inside = _network_gateway(say)
    else:
        inside = "127.0.0.1"
    ip = "0.0.0.0" if public else "127.0.0.1"
    settings = {
        "folder": str(where),
        "learners": list(learners),
        "instructor": INSTRUCTOR,
        "spawner": spawner,
        "ip": ip,
        "port": port,
        "hub_ip": inside,
        "hub_port": free_port(inside),
        "view_port": free_port(inside),
        "proxy_api_port": free_port(),
        "image": IMAGE,
        "network": NETWORK,
        "mem": mem,
        "cpus": cpus,
        "lessons": str(lessons_dir()),
    }
    (where / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    config = where / "jupyterhub_config.py"
    config.write_text(
        "# Written by `labkit classroom up`; the settings are in settings.json next to it.\n"
        "from labkit.classroom.hubconfig import configure\n\n"
        f"configure(c, {str(where / 'settings.json')!r})  # noqa: F821\n"
    )
    env = dict(os.environ)
    env["NODE_PATH"] = ":".join(p for p in (env.get("NODE_PATH", ""), NODE_PATH) if p)
    log = open(where / "hub.log", "ab")  # noqa: SIM115 - the hub writes to it after we return
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=where,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    (where / "hub.pid").write_text(str(process.pid))
    room = _load(where)
    say(f"  starting JupyterHub (log: {where / 'hub.log'})")
    deadline = Deadline(START_SECONDS)
    while True:
        if process.poll() is not None:
            raise ClassroomError(
                f"JupyterHub stopped at start (exit {process.returncode}); the end of its log:\n"
                + _tail(where / "hub.log")
            )
        try:
            if httpx.get(room.api + "/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if deadline.passed():
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
            for straggler in _strays(where):
                with contextlib.suppress(OSError):
                    os.kill(straggler, signal.SIGTERM)
            raise ClassroomError(
                f"JupyterHub did not answer within {START_SECONDS:.0f} s; the end of its log:\n"
                + _tail(where / "hub.log")
            )
        time.sleep(0.25)
    answer = room.request("POST", "/users", json={"usernames": list(learners)})
    if answer.status_code not in (201, 409):
        raise ClassroomError(f"The hub refused the learners' accounts: {answer.text[:300]}")
    if answer.status_code == 409:  # some exist from an earlier workshop: add the others
        for name in learners:
            room.request("POST", f"/users/{name}")
    say(
        f"Classroom for {len(learners)} learners at {room.url} "
        + (
            f"(published on every interface: the room opens http://{socket.gethostname()}:{port}/)."
            if public
            else "(this machine only; --public publishes it)."
        )
    )
    say(
        f"  learners sign in with their name and the workshop password: {where / 'workshop-password'}"
    )
    say(
        f"  you sign in as {INSTRUCTOR!r} with {where / 'instructor-password'}; the class view: "
        f"{room.url}services/class-view/"
    )
    return room


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def status() -> str:
    """The running classroom in words: where, and each learner's server."""
    room = current()
    if room is None:
        return "No classroom is running (`labkit classroom up --learners N` starts one)."
    try:
        users = room.request("GET", "/users").json()
    except (httpx.HTTPError, ValueError) as exc:
        return (
            f"The hub's process runs but its API at {room.api} does not answer "
            f"({type(exc).__name__}): see {room.folder / 'hub.log'}."
        )
    running = [u["name"] for u in users if u.get("server")]
    return (
        f"Classroom at {room.url}: {len(room.learners)} learners, {len(running)} servers running"
        + (f" ({', '.join(running)})" if running else "")
        + f"; spawner {room.spawner}."
    )


def down(*, forget_work: bool = False, say: Say = print) -> list[str]:
    """Stop every learner's server, the hub, the proxy and the class view; remove the learners'
    containers and the network. Returns what was removed or stopped, in words."""
    where = folder()
    done: list[str] = []
    pid = _hub_pid(where)
    if pid is not None:
        room = _load(where)
        try:
            users = room.request("GET", "/users").json()
            for user in users:
                if user.get("server"):
                    room.request("DELETE", f"/users/{user['name']}/server")
                    done.append(f"stopped {user['name']}'s server")
            deadline = Deadline(60)
            while not deadline.passed():
                users = room.request("GET", "/users").json()
                if not any(u.get("server") or u.get("pending") for u in users):
                    break
                time.sleep(0.5)
        except (httpx.HTTPError, ValueError) as exc:
            say(f"  the hub did not answer ({type(exc).__name__}); stopping it anyway")
        os.kill(pid, signal.SIGTERM)
        # Wait on the pid itself (not the pid file's check): an exiting hub must be reaped.
        deadline = Deadline(30)
        while _alive(pid) and not deadline.passed():
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            deadline = Deadline(10)
            while _alive(pid) and not deadline.passed():
                time.sleep(0.1)
        # The hub's process group: anything of it that outlived the hub.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
        done.append("stopped the hub, its proxy and the class view")
    # The proxy and the class view run in sessions of their own: should the hub have died
    # without stopping them, they would hold the classroom's ports.
    for straggler in _strays(where):
        try:
            os.kill(straggler, signal.SIGTERM)
            done.append(f"stopped process {straggler}, left by the hub")
        except OSError:
            pass
    (where / "hub.pid").unlink(missing_ok=True)
    if forget_work and (where / "class-progress.db").exists():
        # A next group's learner01 starts a new record: the old group's rows must not stay.
        for suffix in ("", "-wal", "-shm"):
            (where / f"class-progress.db{suffix}").unlink(missing_ok=True)
        done.append("removed the class view's record of this group")
    # Only a classroom started from this home with containers has any to remove: another
    # home's classroom on the same engine is not ours to touch.
    if _spawner(where) == "docker":
        done += _remove_docker_leftovers(forget_work)
    elif forget_work and (where / "learners").is_dir():
        shutil.rmtree(where / "learners")
        done.append("removed every learner's folder (their work)")
    for line in done:
        say(f"  {line}")
    return done


def _strays(where: Path) -> list[int]:
    """Processes the hub started that may outlive it: its proxy (pid file in the folder) and
    the class view (its environment names the folder)."""
    found = []
    try:
        found.append(int((where / "jupyterhub-proxy.pid").read_text()))
    except (OSError, ValueError):
        pass
    marker = f"LABKIT_CLASSROOM_DIR={where}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return [p for p in found if p != os.getpid() and _alive(p)]


def _spawner(where: Path) -> str:
    try:
        return str(json.loads((where / "settings.json").read_text())["spawner"])
    except (OSError, ValueError, KeyError):
        return ""


def _remove_docker_leftovers(forget_work: bool) -> list[str]:

    try:
        client = engine.client()
    except Exception:  # noqa: BLE001 - no engine: nothing of ours can be left in it
        return []
    done = []
    for container in client.containers.list(all=True, filters={"name": CONTAINER_PREFIX}):
        if container.name.startswith(CONTAINER_PREFIX):
            container.remove(force=True)
            done.append(f"removed container {container.name}")
    for network in client.networks.list(names=[NETWORK]):
        if network.name == NETWORK:
            network.remove()
            done.append(f"removed network {NETWORK}")
    if forget_work:
        for volume in client.volumes.list(filters={"name": CONTAINER_PREFIX}):
            if volume.name.startswith(CONTAINER_PREFIX):
                volume.remove(force=True)
                done.append(f"removed volume {volume.name} (that learner's work)")
    return done
