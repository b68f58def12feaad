"""The learner's progress record: every check kept (privately), shown by `labkit progress`, and
never in the way: a broken or locked record leaves the check working."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.teaching import record
from labkit.teaching.exercises import check, solution
from labkit.teaching.student import student_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("LABKIT_HOME", str(folder))
    monkeypatch.setenv(
        "LABKIT_RUNTIME", "local"
    )  # no docker marker: keep its kernels off the engine
    return folder


def _progress(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", "progress", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


def test_a_student_edition_in_a_real_kernel_records_a_wrong_then_a_right_answer(
    home: Path, tmp_path: Path
) -> None:
    nb, exercises, _ = student_notebook(
        nbformat.read(NOTEBOOKS / "00-start-here.ipynb", as_version=4), "00-start-here.ipynb"
    )
    assert exercises == ("00-lesson-map",)
    answer = next(c for c in nb.cells if "exercise-answer" in c.metadata.get("tags", []))
    answer.source = "answer = 3"  # a wrong answer, typed by the learner
    env = {"path": str(tmp_path)}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": env}).execute()
    answer.source = solution("00-lesson-map").code
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": env}).execute()
    shown = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "PASS" in shown
    kept = record.attempts()
    assert [(a.exercise, a.passed) for a in kept] == [
        ("00-lesson-map", False),
        ("00-lesson-map", True),
    ]
    assert kept[0].tier == 1, "the wrong answer got a hint"
    table = _progress()
    assert table.returncode == 0, table.stderr
    line = next(row for row in table.stdout.splitlines() if row.startswith("00"))
    assert line.split()[1:3] == ["1/1", "0"] and line.split()[-2] == "2", line
    assert "01" in table.stdout and "0/" in table.stdout, "lessons not started are listed too"


def test_the_record_is_private(home: Path) -> None:
    check("01-polling-cost", {"polling": 16, "webhooks": 12})
    assert stat.S_IMODE(record.path().stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_an_html_report_to_hand_in(home: Path, tmp_path: Path) -> None:
    check("01-polling-cost", {"polling": 960, "webhooks": 12})
    check("02-signature", "sha256=00")
    out = tmp_path / "report.html"
    done = _progress("--html", str(out), "--name", "Ada <Lovelace>")
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "Ada &lt;Lovelace&gt;" in page and "01-polling-cost" in page and "02-signature" in page


def test_a_corrupted_record_never_breaks_a_check(home: Path) -> None:
    home.mkdir(mode=0o700)
    record.path().write_bytes(b"this is not a database" * 100)
    result = check("01-polling-cost", {"polling": 960, "webhooks": 12})
    assert result.passed and str(result).startswith("PASS")
    assert "did not keep this check" in str(result) and "progress.db" in result.note


def test_a_locked_record_never_breaks_a_check(home: Path) -> None:
    check("01-polling-cost", 1)
    holder = sqlite3.connect(record.path(), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = check("01-polling-cost", {"polling": 960, "webhooks": 12})
        assert result.passed and "locked" in result.note
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert check("01-polling-cost", {"polling": 960, "webhooks": 12}).note == ""


def test_a_missing_home_is_created(home: Path) -> None:
    assert not home.exists()
    assert check("01-polling-cost", 1).note == ""
    assert len(record.attempts()) == 1
