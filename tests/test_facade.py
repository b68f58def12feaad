"""`import labkit`: every public name resolves, and a process that needs one module loads only it."""

from __future__ import annotations

import subprocess
import sys

import labkit


def test_every_public_name_resolves_and_is_listed_once() -> None:
    assert sorted(labkit._LAZY) == sorted(labkit.__all__)
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None, name
    assert set(labkit.__all__) <= set(dir(labkit))


def test_an_unknown_name_says_so() -> None:
    try:
        labkit.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("labkit.no_such_name did not raise AttributeError")


def test_the_push_hook_loads_neither_the_receiver_nor_the_runtimes() -> None:
    # What the post-receive hook runs on every `git push`, in a fresh interpreter.
    code = (
        "import sys; from labkit.pipeline.gitsource import main; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'uvicorn', 'docker', 'ipywidgets') or m.startswith('labkit.runtime'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == []
