"""The static checks are tests like any other: mypy strict over labkit/, ruff (lint and format)
over labkit/, tests/ and bench/, and the import contracts of pyproject.toml (import-linter).

Each runs the real tool on the real tree and fails with what the tool said.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(600)
def test_mypy_strict_finds_nothing_in_labkit() -> None:
    done = _run(sys.executable, "-m", "mypy", "--cache-dir", "/dev/null", "labkit")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_lint_finds_nothing() -> None:
    done = _run(str(BIN / "ruff"), "check", "--no-cache", "labkit", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_leaves_everything_as_it_is() -> None:
    done = _run(str(BIN / "ruff"), "format", "--check", "--no-cache", "labkit", "tests", "bench")
    assert done.returncode == 0, (
        done.stdout + done.stderr + "\n(run: ruff format labkit tests bench)"
    )


def test_every_import_contract_is_kept() -> None:
    done = _run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0 and "0 broken" in done.stdout, done.stdout + done.stderr
