"""Engine tests cannot pass, or quietly skip, without an engine when CI=true: with no engine
answering they fail; on a machine without CI=true they skip and say why."""

from __future__ import annotations

import ast
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


# --- every engine test carries the docker marker ------------------------------------------------
#
# `-m "not docker"` must keep a run off the engine. A test reaches the engine through names this
# reads in the source: `import docker`, `docker_engine_version` (what support.require asks
# about), `docker_gateway`, `DockerRuntime`, or the session fixture `engine_images`; directly, or
# through a helper or fixture of its own module (or conftest) that does, however deep.

ENGINE_NAMES = frozenset({"docker_engine_version", "docker_gateway", "DockerRuntime"})
ENGINE_FIXTURES = frozenset({"engine_images"})


def _marked_docker(node: ast.AST) -> bool:
    return any("mark.docker" in ast.unparse(d) for d in getattr(node, "decorator_list", []))


def _reaches_engine_directly(func: ast.AST) -> bool:
    for node in ast.walk(func):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "docker" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "docker":
            return True
        # Read, not assigned: a stand-in put in a fake module's place reaches nothing.
        if (
            isinstance(node, ast.Name)
            and node.id in ENGINE_NAMES
            and isinstance(node.ctx, ast.Load)
        ):
            return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENGINE_NAMES
            and isinstance(node.ctx, ast.Load)
        ):
            return True
    return False


def _uses(func: ast.FunctionDef) -> set[str]:
    """The names a function refers to, and the fixtures it asks for (its parameters)."""
    names = {n.id for n in ast.walk(func) if isinstance(n, ast.Name)}
    return names | {a.arg for a in func.args.args + func.args.kwonlyargs}


def engine_tests_without_the_marker(tests_dir: Path) -> list[str]:
    conftest = ast.parse((tests_dir / "conftest.py").read_text())
    shared = {
        f.name: f for f in conftest.body if isinstance(f, ast.FunctionDef)
    }  # conftest's fixtures
    unmarked = []
    for path in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_marked = any(
            isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets)
            and "mark.docker" in ast.unparse(n.value)
            for n in tree.body
        )
        local = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        functions = {**shared, **local}  # a module's own fixture shadows conftest's
        engine = set(ENGINE_FIXTURES) | {
            n for n, f in functions.items() if _reaches_engine_directly(f)
        }
        grew = True
        while grew:  # through helpers and fixtures, however deep
            grew = False
            for name, func in functions.items():
                if name not in engine and _uses(func) & engine:
                    engine.add(name)
                    grew = True
        for name, func in local.items():
            if name.startswith("test_") and name in engine:
                if not (module_marked or _marked_docker(func)):
                    unmarked.append(f"{path.name}::{name}")
    return sorted(unmarked)


def test_every_test_that_reaches_the_engine_is_marked_docker() -> None:
    unmarked = engine_tests_without_the_marker(ROOT / "tests")
    assert unmarked == [], (
        "these tests reach the Docker engine but lack @pytest.mark.docker (or a module "
        f"pytestmark), so `-m 'not docker'` would not keep them off it: {unmarked}"
    )


def test_the_marker_check_sees_helpers_fixtures_and_conftest(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "from labkit.runtime import docker_engine_version\n"
        "def _client():\n    import docker\n    return docker.from_env()\n"
        "def _count():\n    return len(_client().containers.list())\n"
        "@pytest.fixture\ndef stack(engine_images):\n    yield 1\n"
        "def test_helper():\n    assert _count() >= 0\n"
        "def test_fixture(stack):\n    pass\n"
        "def test_session_fixture(engine_images):\n    pass\n"
        "def test_require():\n    require(docker_engine_version() is not None, 'no engine')\n"
        "@pytest.mark.docker\ndef test_marked():\n    assert _count() >= 0\n"
        "def test_offline():\n    fake = object()\n    fake.DockerRuntime = None\n"
    )
    assert engine_tests_without_the_marker(tmp_path) == [
        "test_sample.py::test_fixture",
        "test_sample.py::test_helper",
        "test_sample.py::test_require",
        "test_sample.py::test_session_fixture",
    ]
    (tmp_path / "test_sample.py").write_text(
        "import pytest\npytestmark = [pytest.mark.docker]\n"
        + (tmp_path / "test_sample.py").read_text().split("\n", 1)[1]
    )
    assert engine_tests_without_the_marker(tmp_path) == []
