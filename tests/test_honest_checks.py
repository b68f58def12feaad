"""Engine tests cannot pass, or quietly skip, without an engine when CI=true: with no engine
answering they fail; on a machine without CI=true they skip and say why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One test per way an engine test finds the engine: the stack fixture, the image fixture, the
# session's image build (engine_images), and a check made inside the test.
ENGINE_TESTS = [
    "tests/test_stack.py::test_compose_is_found",
    "tests/test_images.py::test_loading_a_missing_file_says_what_to_pass",
    "tests/test_pipeline_stack.py::test_web_counts_visits_in_mariadb",
    "tests/test_swarm.py::test_leave_keeps_a_swarm_the_kit_did_not_start",
]


def _run(ci: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DOCKER_HOST")}
    env.update(CI=ci, DOCKER_HOST="unix:///nonexistent.sock")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:nbval",
            "-o",
            "addopts=",
            "-q",
            "-rs",
            *ENGINE_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(600)
def test_with_ci_and_no_engine_every_engine_test_fails() -> None:
    done = _run("true")
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 1, done.stdout[-3000:]
    assert "skipped" not in summary and "passed" not in summary, summary
    assert "no Docker engine answers" in done.stdout


@pytest.mark.timeout(600)
def test_without_ci_they_skip_and_say_why() -> None:
    done = _run("")
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(ENGINE_TESTS)} skipped" in summary, summary
    assert "no Docker engine answers" in done.stdout
