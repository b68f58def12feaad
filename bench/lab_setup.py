"""Fresh clone to a running lab: `./dev lab` timed until JupyterLab's /api/status answers.

Run: .venv/bin/python bench/lab_setup.py [--rounds 1]
Each round clones this repository (HEAD) into a temporary folder and runs `./dev lab --no-browser`
there: venv, `pip install -e .` (the lesson dependencies only), workspace, JupyterLab. Cold: an
empty pip cache (every wheel downloaded or built; a find-links wheelhouse in PIP_FIND_LINKS is
switched off). Warm: the cache the cold round filled. Also reports the learner venv's size.
Prints a Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from labkit import free_port  # noqa: E402 - this checkout's labkit

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def _size_mb(folder: Path) -> float:
    return (
        sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        / 2**20
    )


def one_round(cache: Path, work: Path) -> tuple[float, float]:
    """Seconds from `git clone` to /api/status 200, and the venv's size in MiB."""
    clone = work / "labkit"
    shutil.rmtree(clone, ignore_errors=True)
    port = free_port()
    env = {
        **os.environ,
        "PIP_CACHE_DIR": str(cache),
        "PIP_FIND_LINKS": "",
        "LABKIT_LAB_TOKEN": TOKEN,
        "LABKIT_HOME": str(work / "home"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
    }
    env.pop("VIRTUAL_ENV", None)
    began = time.monotonic()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    lab = subprocess.Popen(
        ["./dev", "lab", "--no-browser", "--port", str(port)],
        cwd=clone,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if lab.poll() is not None:
                raise SystemExit(f"./dev lab exited with {lab.returncode}")
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/status", params={"token": TOKEN}, timeout=1
                )
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - began > 900:
                raise SystemExit("no lab after 15 minutes")
            time.sleep(0.2)
        seconds = time.monotonic() - began
    finally:
        lab.terminate()
        lab.wait(30)
    return seconds, _size_mb(clone / ".venv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="warm rounds after the cold one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-lab-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "pip-cache"
        cold, size = one_round(cache, work)
        warm = [one_round(cache, work)[0] for _ in range(args.rounds)]
    print("## Fresh clone to a running lab (`./dev lab`, the learner install)\n")
    print(
        "Command: `.venv/bin/python bench/lab_setup.py`. From `git clone` to JupyterLab's "
        "`/api/status` answering 200 with the token: venv, `pip install -e .` (no test tools), "
        "the workspace of student editions, JupyterLab started. Cold: an empty pip cache. "
        "Warm: the cache of the cold round (goal <= 60 s).\n"
    )
    print("| pip cache | seconds |")
    print("|---|---|")
    print(f"| cold | {cold:.1f} |")
    for s in warm:
        print(f"| warm | {s:.1f} |")
    print(f"\nLearner venv: {size:.0f} MiB (`./dev test`'s venv with the test tools is larger).\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
