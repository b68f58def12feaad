"""``%compose``: the Compose command line, typed in a notebook cell, on whichever runtime runs.

With Docker, ``%compose -f my-shop/compose.yaml up --wait`` runs the real command this machine
has, ``docker compose`` (v2) or ``docker-compose`` (v1), and first prints it as typed in a
terminal. Compose's own output (build steps, containers created) streams into a progress view
while it runs; then the cell prints the stack's state as read from the engine: one line per
service with its replicas, health and published port. That state is the same text on every run,
so a lesson's output can be compared; Compose's chatter (times, ids) never is.

Without Docker, the same words drive the local stand-in (:class:`~labkit.runtime.localstack.LocalStack`)
in this kernel, and the printed command says so (``labkit stand-in``). It knows ``up`` (with
``-d``, ``--wait``, ``--build`` and ``--scale SERVICE=N``), ``ps``, ``logs`` (``--tail N``,
services) and ``down`` (``-v``).

Compose v1 has no ``up --wait``: there the command runs without it and the kit then waits until
every service is healthy, and says so.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.errors import StackError
from labkit.progress import progress_for
from labkit.runtime.compose import Stack, compose_command, project_lock
from labkit.runtime.localstack import LocalStack, stack
from labkit.runtime.stackstate import table as state

#: What the printed command starts with when the local stand-in runs it.
STAND_IN = "labkit stand-in"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: The subcommands the local stand-in knows.
KNOWN = ("up", "ps", "logs", "down")


def compose(line: str) -> None:
    """The ``%compose`` line magic: ``%compose [-f FILE] COMMAND [ARGS...]``."""
    words = shlex.split(line)
    file = "compose.yaml"
    while words and words[0] in ("-f", "--file"):
        if len(words) < 2:
            raise StackError("-f needs a file: %compose -f my-shop/compose.yaml ps")
        file, words = words[1], words[2:]
    if not words:
        raise StackError(
            "Say what Compose should do, e.g. `%compose -f my-shop/compose.yaml up --wait`, "
            "`ps`, `logs gateway` or `down`."
        )
    target = stack(file if Path(file).suffix else str(Path(file) / "compose.yaml"))
    command, args = words[0], words[1:]
    if isinstance(target, Stack):
        _docker(target, file, command, args)
    else:
        _local(target, file, command, args)


# --- Docker: the real command line --------------------------------------------------------------


def _docker(target: Stack, file: str, command: str, args: list[str]) -> None:
    # Compose v1 has no `up --wait`: run it detached, then wait here, and say so.
    wait_after = command == "up" and "--wait" in args and compose_command() == ("docker-compose",)
    if wait_after:
        args = [a for a in args if a != "--wait"]
        args = args if "-d" in args or "--detach" in args else ["-d", *args]
    if command == "up":
        target.prepare()  # the lab images are here, the generated secrets exist
    cmd = [*compose_command(), "-f", file, command, *args]
    note = (
        "   # v1 has no --wait: labkit waits until every service is healthy" if wait_after else ""
    )
    print("$", shlex.join(cmd) + note)
    if command == "logs":
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(target), timeout=120)
        print(_ANSI.sub("", done.stdout + done.stderr).rstrip())
        if done.returncode:
            raise StackError(f"`{shlex.join(cmd)}` failed (exit {done.returncode}).")
        return
    if command in ("up", "down"):  # one change of a project at a time (two kernels, two tabs)
        with project_lock(target.project):
            _stream(cmd, target)
    else:
        _stream(cmd, target)
    if wait_after:
        target.wait(progress=None)
    if command in ("up", "ps", "down", "start", "stop", "restart", "rm"):
        print(state(target))


def _env(target: Stack) -> dict[str, str]:
    return {**os.environ, **target.env}


def _stream(cmd: Sequence[str], target: Stack) -> None:
    """Run ``cmd``, its output going line by line into a progress view (not the cell's text)."""
    kept: list[str] = []
    title = " ".join([*cmd[: len(compose_command())], cmd[len(compose_command()) + 2]])
    with progress_for(True, title, 0) as bar:
        process = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(target),
        )
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            if line:
                kept.append(line)
                bar.line(line)
        code = process.wait()
        if code:
            bar.fail(f"exit {code}")
    if code:
        tail = "\n".join(kept[-15:])
        raise StackError(f"`{shlex.join(cmd)}` failed (exit {code}). Its last lines:\n{tail}")


# --- the local stand-in --------------------------------------------------------------------------


def _local(target: LocalStack, file: str, command: str, args: list[str]) -> None:
    print("$", STAND_IN, shlex.join(["-f", file, command, *args]))
    if command not in KNOWN:
        raise StackError(
            f"The local stand-in knows {', '.join(KNOWN)}; `{command}` needs Docker's Compose."
        )
    if command == "logs":
        tail = int(args[args.index("--tail") + 1]) if "--tail" in args else 20
        named = [a for a in args if not a.startswith("-") and not a.isdigit()]
        print(target.logs(named[0] if named else None, tail=tail))
        return
    # The same view as Compose's output on Docker: what the stand-in did, line by line.
    with progress_for(True, f"{STAND_IN} {command}", 0) as bar:
        if command == "up":
            target.up(wait=True)
            for service, count in _scales(args).items():
                target.scale(service, count)
        elif command == "down":
            target.down(volumes="-v" in args or "--volumes" in args)
        for row in target.ps():
            bar.line(f"{row['container']}: {row['state']} {row['health']}".rstrip())
    print(state(target))


def _scales(args: list[str]) -> dict[str, int]:
    out = {}
    for i, word in enumerate(args):
        if word == "--scale" and i + 1 < len(args):
            service, _, count = args[i + 1].partition("=")
            out[service] = int(count)
        elif word.startswith("--scale="):
            service, _, count = word.removeprefix("--scale=").partition("=")
            out[service] = int(count)
    return out


def register(shell: Any) -> None:
    """Make ``%compose`` known in an IPython shell."""
    shell.register_magic_function(compose, "line", "compose")
