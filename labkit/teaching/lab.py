"""``labkit lab``: JupyterLab on the learner's workspace (or the solutions), bound to 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path

from labkit.errors import LabkitError
from labkit.paths import checkout, labkit_home, lessons_dir, setting
from labkit.runtime import choose
from labkit.teaching.workspace import find_lesson, reset, sync

START = "00-start-here.ipynb"


def notebooks_dir() -> Path:
    """The committed lessons (solution editions): ``$LABKIT_NOTEBOOKS``, else the kit's."""
    return lessons_dir()


def workspace_dir() -> Path:
    """The learner's own copies: ``$LABKIT_WORKSPACE``, else ``workspace/`` next to the lessons
    of a checkout, else ``$LABKIT_HOME/workspace``."""
    env = setting("LABKIT_WORKSPACE")
    if env:
        return Path(env)
    root = checkout()
    if root is not None:
        return root / "workspace"
    return labkit_home() / "workspace"


def prepare_workspace() -> Path:
    """Create or update the workspace from the lessons and say what happened; returns it."""

    report = sync(notebooks_dir(), workspace_dir())
    print(report)
    return report.folder


def reset_lesson(lesson: str, *, yes: bool = False) -> int:
    """``labkit lab --reset NN``: after confirmation, the lesson's student edition again."""

    folder = workspace_dir()
    name = find_lesson(notebooks_dir(), lesson).name
    if not yes:
        if not sys.stdin.isatty():
            raise LabkitError(
                f"--reset {lesson} replaces {folder / name} with a fresh copy: "
                "confirm by adding --yes."
            )
        answer = input(
            f"Replace your {name} with a fresh copy? Yours is kept in {folder / '.backups'}. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing changed.")
            return 1
    restored, backup = reset(notebooks_dir(), folder, lesson)
    print(
        f"{restored}: a fresh student edition"
        + (f"; your copy is kept as {backup}" if backup else "")
    )
    return 0


def run_lab(port: int = 8888, open_browser: bool = True, *, solutions: bool = False) -> int:
    """Start JupyterLab on the workspace (or the solutions); returns when JupyterLab exits."""
    lessons = notebooks_dir()
    if not (lessons / START).is_file():
        raise LabkitError(
            f"No {START} in {lessons}: run this from the labkit checkout, or set "
            "LABKIT_NOTEBOOKS to the notebooks folder."
        )
    folder = lessons if solutions else None
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise LabkitError(
                f"Port {port} is taken (another Jupyter?). Stop it, or run "
                f"`labkit lab --port {port + 1}`."
            ) from None
    if folder is None:
        folder = prepare_workspace()
    else:
        print(f"Solution editions (every answer filled in): {folder}")

    print(f"Runtime: {choose()}")
    token = setting("LABKIT_LAB_TOKEN") or secrets.token_urlsafe(24)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--LabApp.default_url=/lab/tree/{START}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # JupyterLab refuses root unless told; it listens on 127.0.0.1 only and asks for a token.
        print(
            "Running as root (usual in containers): passing --allow-root; the lab listens on "
            "127.0.0.1 only and needs the token below."
        )
        argv.append("--allow-root")
    if not open_browser:
        argv.append("--no-browser")
    print(
        f"Open http://127.0.0.1:{port}/lab/tree/{START}?token={token} (Ctrl+C stops it)", flush=True
    )
    os.execv(sys.executable, argv)
    return 0  # not reached: execv replaces this process
