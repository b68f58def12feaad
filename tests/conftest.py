"""Fixtures for the labkit tests: an isolated LABKIT_HOME and in-process receivers that always stop."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# `import support` from every test module. The project root goes first too: the venv's editable
# install (setuptools' finder) lists `labkit` as a namespace package, so without it `import
# labkit` under `.venv/bin/pytest` would skip labkit/__init__.py (see the test report).
for _path in (str(TESTS), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from labkit import Receiver  # noqa: E402

SECRET = "s3cret"


@pytest.fixture(autouse=True)
def labkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own LABKIT_HOME (the sender's log lives there), and no proxy env."""
    home = tmp_path / "labkit-home"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    monkeypatch.delenv("LABKIT_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("LABKIT_ALLOW_PRIVATE", raising=False)
    return home


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    """Start in-process receivers (unique names unless given); all are stopped afterwards."""
    started: list[Receiver] = []

    def make(secret: str | None = SECRET, **options: Any) -> Receiver:
        options.setdefault("name", f"test-{uuid.uuid4().hex[:8]}")
        rx = Receiver(secret, **options)
        started.append(rx)
        return rx.start()

    try:
        yield make
    finally:
        for rx in started:
            rx.stop()


@pytest.fixture
def rx(make_receiver: Callable[..., Receiver]) -> Receiver:
    """A receiver with the lesson secret on every source and a 64 KiB body cap."""
    return make_receiver(SECRET, max_body=64 * 1024)


@pytest.fixture(scope="session")
def engine_images() -> None:
    """Every lab image built (or found up to date) on a real engine, once per session.

    Skips where no Docker engine answers; fails instead under CI=true when the engine answers
    but the build cannot run (a broken CI machine is not a reason to skip).
    """
    import os
    import shutil

    from labkit.runtime import docker_engine_version, images

    from support import require

    require(
        docker_engine_version() is not None,
        "no Docker engine answers: start Docker to run the engine tests",
    )
    require(
        shutil.which("debootstrap") is not None and os.geteuid() == 0,
        "building the lab images needs root and debootstrap (apt-get install debootstrap)",
    )
    images.build(progress=None)
