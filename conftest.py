"""A lesson that makes files next to itself (lesson 04's `my-shop/`) starts, in every test run,
from the files the kit gives a learner: what an earlier run left there is cleared just before
the lesson's first cell runs (an earlier run may be this session's own, such as the local-runtime
pass of tests/test_lessons_local.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
_started: set[Path] = set()


def pytest_runtest_setup(item: pytest.Item) -> None:
    path = item.path
    if path.parent != NOTEBOOKS or path in _started:
        return
    _started.add(path)
    from labkit.teaching.lessons import SCRATCH, clear_scratch

    if path.name[:2] in SCRATCH:
        clear_scratch(NOTEBOOKS, (path.name[:2],))
