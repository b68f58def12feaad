"""A command of the lessons running in the background (``labkit listen``), stopped with the kernel.

``labkit.background("labkit listen --port 8000 ...", name="listen")`` starts it; running the
cell again stops the old one first. Its output goes to a log file, so a chatty command never
blocks; ``wait_for(text)`` waits until a line says it is ready (never a fixed sleep).
"""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from labkit.errors import LabkitError
from labkit.named import ByName
from labkit.waiting import wait_until

_RUNNING: ByName[Background] = ByName()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the kernel dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Background:
    """One background command: ``wait_for`` a line, read ``output()``, ``stop()``."""

    def __init__(self, command: str | list[str], *, name: str) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise LabkitError(
                'labkit.background needs a command, e.g. "labkit listen --port 8000".'
            )
        self.name = name
        folder = Path(tempfile.mkdtemp(prefix=f"labkit-{name}-"))
        self.log = folder / "output.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Background:
        _RUNNING.stop_other(self.name, self)
        with open(self.log, "wb") as out:
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except FileNotFoundError:
                raise LabkitError(f"No command {self.argv[0]!r} on this machine's PATH.") from None
        _RUNNING.hold(self.name, self)
        return self

    def output(self) -> str:
        """Everything the command printed so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Wait until a line of output contains ``text``; return that line. Raises, with the
        output so far, if the command ends first or ``timeout`` passes."""

        def printed() -> str | None:
            for line in self.output().splitlines():
                if text in line:
                    return line
            if not self.running:
                code = self.process.returncode if self.process is not None else None
                raise LabkitError(
                    f"{self.argv[0]} ended (exit code {code}) before printing "
                    f"{text!r}. It printed:\n{self.output()}"
                )
            return None

        return wait_until(
            printed,
            timeout=timeout,
            error=lambda: LabkitError(
                f"{self.argv[0]} printed no {text!r} within {timeout:g} s. "
                f"It printed:\n{self.output()}"
            ),
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code (``None``: never ran)."""
        process = self.process
        _RUNNING.release(self.name, self)
        if process is None:
            return None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Background {self.name!r} {state}: {shlex.join(self.argv)}>"


def background(command: str | list[str], *, name: str) -> Background:
    """Start ``command`` in the background under ``name`` (a re-run replaces it)."""
    return Background(command, name=name).start()


def stop_background() -> list[str]:
    """Stop every background command of this process; returns their names."""
    names = _RUNNING.names()
    for job in _RUNNING.live():
        job.stop()
    return names


atexit.register(stop_background)
