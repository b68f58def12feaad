"""Lesson suite wall time: the whole nbval strict run over notebooks/, per runtime.

Run: .venv/bin/python bench/lessons.py [--runtime docker|local ...]
Prints a Markdown section (bench/run.py collects it).
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", action="append", choices=("docker", "local"))
    args = ap.parse_args()
    rows = []
    for runtime in args.runtime or ["docker", "local"]:
        env = {**os.environ, "LABKIT_RUNTIME": runtime,
               "LABKIT_HOME": tempfile.mkdtemp(prefix="labkit-bench-")}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "notebooks/"], cwd=ROOT,
                              env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
        rows.append((runtime, seconds, summary))
    print("## Lesson suite wall time (nbval strict over notebooks/)\n")
    print("Command: `.venv/bin/python bench/lessons.py` (images already built: warm)\n")
    print("| runtime | wall time s | pytest summary |")
    print("|---|---|---|")
    for runtime, seconds, summary in rows:
        print(f"| {runtime} | {seconds:.1f} | {summary} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
