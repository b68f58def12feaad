"""Lesson suite wall time: the whole nbval strict run over notebooks/, per runtime.

Run: .venv/bin/python bench/lessons.py [--runtime docker|local ...] [--cold]
``--cold`` first removes every labkit/* image from the engine and times `labkit images build`
from nothing (what a fresh machine does once), then runs the suite. Without it the images are
already built (warm). Prints a Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def remove_lab_images() -> None:
    """Every labkit/* image and the cache that `labkit images build` would reuse."""
    import docker

    sys.path.insert(0, str(ROOT))
    from labkit.runtime import images

    client = docker.from_env()
    try:
        for recipe in reversed((*images.RECIPES, *images.CLASSROOM_RECIPES)):  # children first
            try:
                client.images.remove(recipe.tag, force=True)
            except docker.errors.ImageNotFound:
                pass
    finally:
        client.close()


def build_images() -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "labkit"), "images", "build"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", action="append", choices=("docker", "local"))
    ap.add_argument("--cold", action="store_true", help="remove the lab images first")
    args = ap.parse_args()
    built = None
    if args.cold:
        remove_lab_images()
        built = build_images()
    rows = []
    for runtime in args.runtime or ["docker", "local"]:
        env = {
            **os.environ,
            "LABKIT_RUNTIME": runtime,
            "LABKIT_HOME": tempfile.mkdtemp(prefix="labkit-bench-"),
        }
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rf", "notebooks/"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
        for line in done.stdout.splitlines():
            if line.startswith("FAILED "):
                print(f"{runtime}: {line}", file=sys.stderr)  # which cell, to find it again
        if done.returncode != 0:
            report = Path(env["LABKIT_HOME"]) / "pytest-output.txt"
            report.write_text(done.stdout + done.stderr)
            print(f"{runtime}: the whole pytest output is in {report}", file=sys.stderr)
        rows.append((runtime, seconds, summary))
    state = "cold: no lab images at the start" if args.cold else "images already built: warm"
    print(f"## Lesson suite wall time (nbval strict over notebooks/, {state})\n")
    print(f"Command: `.venv/bin/python bench/lessons.py{' --cold' if args.cold else ''}`\n")
    if built is not None:
        print(
            f"`labkit images build` from no lab image at all: {built:.0f} s (once per machine; "
            "the suite below then runs warm).\n"
        )
    print("| runtime | wall time s | pytest summary |")
    print("|---|---|---|")
    for runtime, seconds, summary in rows:
        print(f"| {runtime} | {seconds:.1f} | {summary} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
