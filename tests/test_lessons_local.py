"""Every lesson passes nbval strict on the local runtime too (the main run uses the default choice)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_lessons_pass_nbval_strict_on_the_local_runtime(tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_RUNTIME": "local", "LABKIT_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "notebooks/"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


def test_most_code_cells_of_every_lesson_stay_output_checked() -> None:
    """Cells whose output differs by runtime are tagged, and they are the exception: at least
    60% of each lesson's code cells are compared by nbval on both runtimes."""
    import json

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        ignored = [c for c in cells if "nbval-ignore-output" in c["metadata"].get("tags", [])]
        checked = 1 - len(ignored) / len(cells)
        assert checked >= 0.6, f"{path.name}: only {checked:.0%} of its code cells are checked"


def test_the_hands_on_lessons_compare_at_least_70_percent_of_their_other_code_cells() -> None:
    """Lessons 01-03: of the code cells that are not the learner's answers, nbval compares at
    least 70% (an ignored cell must be the rare exception)."""
    import json

    for path in sorted((ROOT / "notebooks").glob("0[1-3]-*.ipynb")):
        cells = [
            c
            for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code" and "exercise-answer" not in c["metadata"].get("tags", [])
        ]
        ignored = [c for c in cells if "nbval-ignore-output" in c["metadata"].get("tags", [])]
        checked = 1 - len(ignored) / len(cells)
        assert checked >= 0.7, f"{path.name}: only {checked:.0%} of its code cells are checked"
