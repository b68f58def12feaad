"""App processes that never outlive the kernel: uvicorn on a socket, pidfiles, reaping, stopping.

The local runtime (:mod:`labkit.runtime.local`) and the local stacks (:mod:`labkit.runtime.localstack`)
start their apps here. Each process reads a *lifeline* pipe whose other end only the kernel
holds, and stops when it closes (even after ``kill -9`` of the kernel); it runs in its own process
group, so a kernel interrupt (SIGINT) does not reach it and stopping the group stops all it
started; and a pidfile under ``$LABKIT_HOME`` lets the next start reap what a dead kernel left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.paths import labkit_home
from labkit.waiting import Deadline

# What runs inside every app process: stop when the lifeline closes (the kernel is gone), then
# serve the app with uvicorn on the socket the kernel bound for it. It needs no labkit.
BOOTSTRAP = r"""
import json, os, signal, socket, sys, threading, time
lifeline = int(os.environ.pop("LABKIT_LIFELINE_FD"))
def watch():
    try:
        while os.read(lifeline, 64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(137)
threading.Thread(target=watch, daemon=True).start()
import uvicorn
sock = socket.socket(fileno=int(os.environ.pop("LABKIT_SOCKET_FD")))
sys.path.insert(0, os.environ["LABKIT_APP_DIR"])
options = {"log_level": "warning", "access_log": False, "lifespan": "off"}
options.update(json.loads(os.environ.pop("LABKIT_UVICORN", "{}")))
config = uvicorn.Config(os.environ["LABKIT_APP"], timeout_graceful_shutdown=5, **options)
uvicorn.Server(config).run(sockets=[sock])
"""


# --- identity and liveness ---------------------------------------------------------------------


def started_at(pid: int) -> float | None:
    """When process ``pid`` started (to tell it from a later process that got the same pid)."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends: no such process
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return float(fields[19])  # starttime, in clock ticks since boot: enough to compare
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


# --- the lifeline --------------------------------------------------------------------------------

_lifeline: tuple[int, int] | None = None
_lifeline_owner = 0
_lifeline_lock = threading.Lock()


def lifeline_fd() -> int:
    """The read end of this process's lifeline; the write end is never given to a child."""
    global _lifeline, _lifeline_owner
    with _lifeline_lock:
        if _lifeline is None or os.getpid() != _lifeline_owner:
            _lifeline = os.pipe()  # both ends non-inheritable; pass_fds hands out the read end
            _lifeline_owner = os.getpid()
        return _lifeline[0]


# --- pidfiles and reaping ------------------------------------------------------------------------


def pids_dir() -> Path:
    """Where every app process labkit starts leaves a pidfile."""
    return labkit_home() / "local-runtime" / "pids"


@dataclass(frozen=True)
class PidFile:
    """What the next start needs to find a process this kernel left behind, and only that one.

    ``runtime`` names the owner: a local runtime instance, or ``stack:<name>`` for a local stack.
    """

    pid: int
    started: float | None
    parent: int
    parent_started: float | None
    runtime: str
    name: str

    @property
    def path(self) -> Path:
        return pids_dir() / f"{self.pid}.json"

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.__dict__))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def reap_orphans(grace: float = 3.0) -> list[int]:
    """Stop every app process whose kernel is gone; returns their pids.

    A process whose parent still runs (another notebook on the same ``LABKIT_HOME``) is left
    alone; a pid that now belongs to an unrelated process (its start time differs) is forgotten.
    """
    reaped: list[int] = []
    folder = pids_dir()
    if not folder.is_dir():
        return reaped
    for path in sorted(folder.glob("*.json")):
        try:
            record = PidFile(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            continue
        parent_alive = alive(record.parent) and started_at(record.parent) == record.parent_started
        if parent_alive:
            continue
        if alive(record.pid) and started_at(record.pid) == record.started:
            kill_group(record.pid, grace)
            reaped.append(record.pid)
        path.unlink(missing_ok=True)
    return reaped


def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the process group (SIGCONT too, in case it is stopped), SIGKILL after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
    deadline = Deadline(grace)
    while not deadline.passed():
        if not alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- starting one --------------------------------------------------------------------------------


def listen(port: int = 0, address: str = "127.0.0.1") -> socket.socket:
    """A listening socket on ``address`` (127.0.0.1 unless a stand-in publishes a port on every
    interface, as Compose's ``"8000"`` asks); ``port`` 0: the system picks; ``OSError`` if
    taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if port:
            # Like any server restarting on its port: a previous run's TIME_WAIT does not block.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


#: What an app process inherits from the kernel: where programs and imports are, the user's
#: home, language and time zone. Nothing else: a kernel's environment may hold a webhook
#: secret, a JupyterHub token or cloud credentials, and an app needs none of them.
INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "SYSTEMROOT",
)


def app_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment an app process starts with: :data:`INHERITED` and ``extra``."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(extra or {})
    return env


def spawn(
    *,
    app: str,
    app_dir: Path,
    sock: socket.socket,
    log_path: Path,
    owner: str,
    name: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    uvicorn: Mapping[str, Any] | None = None,
) -> tuple[subprocess.Popen[bytes], PidFile]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``) with uvicorn on ``sock``, then close it.

    ``env`` is the process's whole environment; ``uvicorn`` overrides the server's options (by
    default quiet: ``log_level="warning"``, no access log, no lifespan). Output goes to
    ``log_path``. The pidfile is written before this returns.
    """
    lifeline = lifeline_fd()
    full_env = {
        **env,
        "LABKIT_APP": app,
        "LABKIT_APP_DIR": str(app_dir),
        "LABKIT_LIFELINE_FD": str(lifeline),
        "LABKIT_SOCKET_FD": str(sock.fileno()),
        "LABKIT_UVICORN": json.dumps(dict(uvicorn or {})),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", BOOTSTRAP],
                cwd=cwd or app_dir,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(lifeline, sock.fileno()),
                start_new_session=True,
            )  # its own process group: a kernel interrupt
            # (SIGINT) does not reach it, and stopping it stops all it started
        finally:
            sock.close()
    record = PidFile(
        pid=process.pid,
        started=started_at(process.pid),
        parent=os.getpid(),
        parent_started=started_at(os.getpid()),
        runtime=owner,
        name=name,
    )
    record.write()
    return process, record


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file ("" if there is none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


__all__ = [
    "BOOTSTRAP",
    "PidFile",
    "alive",
    "kill_group",
    "lifeline_fd",
    "listen",
    "pids_dir",
    "reap_orphans",
    "spawn",
    "started_at",
    "tail",
]
