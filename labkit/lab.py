"""``labkit lab``: JupyterLab on the lessons, bound to 127.0.0.1, with clear errors instead of tracebacks."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from .errors import LabkitError

START = "00-start-here.ipynb"


def notebooks_dir() -> Path:
    """The lessons folder: ``$LABKIT_NOTEBOOKS``, else ``notebooks/`` of this checkout."""
    env = os.environ.get("LABKIT_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / "notebooks"
    if here.is_dir():
        return here
    return Path.cwd() / "notebooks"


def run_lab(port: int = 8888, open_browser: bool = True) -> int:
    """Start JupyterLab on ``00-start-here.ipynb`` (returns when JupyterLab exits)."""
    folder = notebooks_dir()
    if not (folder / START).is_file():
        raise LabkitError(f"No {START} in {folder}: run this from the labkit checkout, or set "
                          "LABKIT_NOTEBOOKS to the notebooks folder.")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise LabkitError(f"Port {port} is taken (another Jupyter?). Stop it, or run "
                              f"`labkit lab --port {port + 1}`.") from None
    from .runtime import choose

    print(f"Runtime: {choose()}")
    print(f"Opening JupyterLab on http://127.0.0.1:{port}/lab/tree/{START} (Ctrl+C stops it)")
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}",
            "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--LabApp.default_url=/lab/tree/{START}"]
    if not open_browser:
        argv.append("--no-browser")
    os.execv(sys.executable, argv)
    return 0  # not reached: execv replaces this process
