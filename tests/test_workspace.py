"""The learner's workspace: student editions created once, edited notebooks never overwritten,
a lesson reset only after confirmation, and `labkit lab` (as root too) serving it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import pytest

from labkit.errors import LabkitError
from labkit.teaching.workspace import BACKUPS, reset, sync

from support import free_port, poll

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def lessons(tmp_path: Path) -> Path:
    """A copy of two committed lessons: a source folder the test may change."""
    folder = tmp_path / "lessons"
    folder.mkdir()
    for name in ("00-start-here.ipynb", "01-webhooks-101.ipynb"):
        shutil.copy(NOTEBOOKS / name, folder / name)
    return folder


def _answers(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if "exercise-answer" in c.metadata.get("tags", [])]


def test_the_workspace_holds_student_editions(lessons: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    report = sync(lessons, ws)
    assert report.added == ["00-start-here.ipynb", "01-webhooks-101.ipynb"]
    nb = nbformat.read(ws / "01-webhooks-101.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] for c in code), "no saved output, no saved PASS"
    answers = _answers(ws / "01-webhooks-101.ipynb")
    assert answers and all(a.startswith("answer = ...") for a in answers)
    # Solutions stay revealable: the committed "Show a solution" blocks are still there.
    assert any("<details" in c.source for c in nb.cells if c.cell_type == "markdown")
    again = sync(lessons, ws)
    assert again.added == [] and again.updated == [] and again.kept == []
    assert "all up to date" in str(again)


def test_an_edited_notebook_is_never_overwritten(lessons: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sync(lessons, ws)
    mine = ws / "01-webhooks-101.ipynb"
    nb = nbformat.read(mine, as_version=4)
    answer = next(c for c in nb.cells if "exercise-answer" in c.metadata.get("tags", []))
    answer.source = "answer = {'polling': 960, 'webhooks': 12}  # my work"
    nbformat.write(nb, mine)
    edited = mine.read_bytes()
    untouched = (ws / "00-start-here.ipynb").read_bytes()
    # A newer kit: lesson 00 changed, lesson 01 changed, and a lesson 02 is new.
    for name in ("00-start-here.ipynb", "01-webhooks-101.ipynb"):
        newer = nbformat.read(lessons / name, as_version=4)
        newer.cells[0].source += "\n\nNew in this edition."
        nbformat.write(newer, lessons / name)
    shutil.copy(NOTEBOOKS / "02-github-events.ipynb", lessons / "02-github-events.ipynb")
    report = sync(lessons, ws)
    assert report.added == ["02-github-events.ipynb"]
    assert report.updated == ["00-start-here.ipynb"]
    assert report.kept == ["01-webhooks-101.ipynb"]
    assert "left as you edited them" in str(report) and "01-webhooks-101" in str(report)
    assert mine.read_bytes() == edited
    assert (ws / "00-start-here.ipynb").read_bytes() != untouched
    assert "New in this edition." in (ws / "00-start-here.ipynb").read_text()


def test_a_lost_manifest_keeps_every_existing_notebook(lessons: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sync(lessons, ws)
    nb = nbformat.read(ws / "00-start-here.ipynb", as_version=4)
    nb.cells[0].source += " (mine)"
    nbformat.write(nb, ws / "00-start-here.ipynb")
    (ws / ".labkit-workspace.json").write_text("{not json")
    before = (ws / "00-start-here.ipynb").read_bytes()
    report = sync(lessons, ws)
    assert report.kept == ["00-start-here.ipynb"]
    assert (ws / "00-start-here.ipynb").read_bytes() == before
    json.loads((ws / ".labkit-workspace.json").read_text())


def test_reset_restores_one_lesson_and_keeps_the_old_copy(lessons: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sync(lessons, ws)
    mine = ws / "01-webhooks-101.ipynb"
    mine.write_text(mine.read_text().replace("answer = ...", "answer = 42", 1))
    restored, backup = reset(lessons, ws, "1")
    assert restored == mine and backup is not None and backup.parent == ws / BACKUPS
    assert "answer = 42" in backup.read_text()
    assert all(a.startswith("answer = ...") for a in _answers(mine))
    assert sync(lessons, ws).kept == []
    with pytest.raises(LabkitError, match="the lessons are 00, 01"):
        reset(lessons, ws, "09")


def _cli(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


def test_lab_reset_asks_first(lessons: Path, tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(lessons), "LABKIT_WORKSPACE": str(tmp_path / "w")}
    assert _cli("lab", "--prepare-only", env=env).returncode == 0
    mine = tmp_path / "w" / "01-webhooks-101.ipynb"
    mine.write_text(mine.read_text().replace("answer = ...", "answer = 42", 1))
    refused = _cli("lab", "--reset", "01", env=env, stdin="")
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert "answer = 42" in mine.read_text()
    done = _cli("lab", "--reset", "01", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert "answer = 42" not in mine.read_text() and "kept as" in done.stdout


def test_labkit_lab_serves_the_workspace_with_a_token(lessons: Path, tmp_path: Path) -> None:
    """As root (CI runs as root) JupyterLab would exit at once without --allow-root."""
    port, token = free_port(), "test-token-0123456789"
    ws = tmp_path / "w"
    env = {
        **os.environ,
        "LABKIT_NOTEBOOKS": str(lessons),
        "LABKIT_WORKSPACE": str(ws),
        "LABKIT_LAB_TOKEN": token,
        "LABKIT_RUNTIME": "local",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
    }
    lab = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "lab", "--no-browser", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert lab.stdout is not None
        first: list[str] = []
        while not first or not first[-1].startswith("Open http"):
            line = lab.stdout.readline()
            assert line, f"labkit lab ended before printing the URL: {first}"
            first.append(line)
        url = first[-1]
        assert f"127.0.0.1:{port}/lab/tree/00-start-here.ipynb?token={token}" in url, first
        if os.geteuid() == 0:
            assert any("--allow-root" in line for line in first), first

        def status() -> httpx.Response | None:
            if lab.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {lab.returncode}")
            r = httpx.get(f"http://127.0.0.1:{port}/api/status", params={"token": token}, timeout=2)
            return r if r.status_code == 200 else None

        poll(status, timeout=60, interval=0.2, what="JupyterLab's /api/status")
        refused = httpx.get(f"http://127.0.0.1:{port}/api/contents", timeout=5)
        assert refused.status_code == 403, "no token, no access"
        listing = httpx.get(
            f"http://127.0.0.1:{port}/api/contents", params={"token": token}, timeout=5
        ).json()
        names = {item["name"] for item in listing["content"]}
        assert {"00-start-here.ipynb", "01-webhooks-101.ipynb"} <= names
        assert (ws / "01-webhooks-101.ipynb").is_file()
    finally:
        lab.terminate()
        try:
            lab.wait(20)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
