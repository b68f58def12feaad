"""A test session that runs a lesson starts it from the files the kit gives a learner."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from labkit.lessons import SCRATCH, clear_scratch

    notebooks = Path(__file__).resolve().parent / "notebooks"
    lessons = {item.path.name[:2] for item in items if item.path.parent == notebooks}
    clear_scratch(notebooks, tuple(sorted(lessons & set(SCRATCH))))
