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


LABKIT = ROOT / "labkit"
#: Variables the kit sets for its own child processes (never a user's setting).
HANDSHAKE = {
    "LABKIT_APP",
    "LABKIT_APP_DIR",
    "LABKIT_SOCKET_FD",
    "LABKIT_LIFELINE_FD",
    "LABKIT_UVICORN",
    "LABKIT_TARGETS",
    "LABKIT_REGISTRY_HOOK",
    "LABKIT_ALERTS_HOOK",
    "LABKIT_WEBHOOK_TOKEN_FILE",
    "LABKIT_SECRETS",
}


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted(LABKIT.rglob("*.py"))]


def test_every_setting_is_read_in_one_place_and_documented() -> None:
    import re

    from labkit.paths import SETTINGS

    readme = (ROOT / "README.md").read_text()
    stray = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p, text in _sources()
        for m in re.finditer(
            r"(?:environ\.get\(|getenv\()\s*\"(LABKIT_\w+)\"|environ\[\"(LABKIT_\w+)\"\](?!\s*=[^=])",
            text,
        )
        if (m.group(1) or m.group(2)) not in HANDSHAKE and p.name != "paths.py"
    ]
    assert not stray, "read these through labkit.paths.setting():\n" + "\n".join(stray)
    undocumented = [name for name in SETTINGS if f"`{name}`" not in readme]
    assert not undocumented, f"the README's settings table lacks {undocumented}"


def test_one_sqlite_helper_and_one_clock_for_waits() -> None:
    """Stores open SQLite through labkit.sqlite; waits count time through labkit.waiting."""
    own_connect = [str(p.relative_to(ROOT)) for p, text in _sources() if "sqlite3.connect(" in text]
    assert own_connect == ["labkit/sqlite.py"], own_connect
    own_deadline = [
        str(p.relative_to(ROOT)) for p, text in _sources() if "deadline = time.monotonic()" in text
    ]
    assert own_deadline == [], own_deadline


def test_no_import_of_labkit_hides_inside_a_function() -> None:
    """Imports of labkit's own modules sit at the top, where the floors' contract sees them.

    The command line loads each command's modules when it runs (so ``labkit listen`` starts
    fast), and the package's surface registers the notebook's views only in a kernel; type-only
    imports stay under ``TYPE_CHECKING``.
    """
    import ast

    hidden = []
    for path, text in _sources():
        if path.relative_to(ROOT).as_posix() in ("labkit/cli.py", "labkit/__init__.py"):
            continue
        tree = ast.parse(text)
        type_only = [
            (node.lineno, node.end_lineno or node.lineno)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        ]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.col_offset > 0
                and (node.module or "").startswith("labkit")
                and not any(a <= node.lineno <= b for a, b in type_only)
            ):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}")
    assert not hidden, "move these to the top of their module:\n" + "\n".join(hidden)
