"""The kit as a wheel: built from the sources, installed into a fresh venv outside the checkout,
it carries its stacks, image recipes, app seed and lessons, and runs them from there.

The fresh venv gets labkit only from the wheel. Its dependencies (FastAPI, JupyterLab, ...) are
this test venv's, made visible with a ``.pth`` line rather than downloaded again: that line
adds a folder to ``sys.path`` without running the editable install's hooks, so ``import labkit``
can only find the wheel's copy (asserted below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "workspace",
    "*.egg-info",
    "__pycache__",
    ".secrets",
    "student-notebooks",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by pip from a copy of the sources (the checkout stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=SKIPPED)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(work / "dist"),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (built,) = (work / "dist").glob("labkit-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, outside the checkout, with the wheel installed; returns its bin folder."""
    folder = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "labkit-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return folder / "bin"


def _run(
    venv: Path, *args: str, cwd: Path, home: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABKIT_", "PYTHON", "VIRTUAL_ENV"))
    }
    environ.update(PATH=f"{venv}:{environ.get('PATH', '')}", LABKIT_HOME=str(home), **env)
    return subprocess.run(
        list(args), cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


def test_the_wheel_carries_the_kit(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in (
        "labkit/_kit/compose/services/compose.yaml",
        "labkit/_kit/compose/pipeline/config/render",
        "labkit/_kit/compose/pipeline/app/app.py",
        "labkit/_kit/compose/images/base/rootfs/usr/local/bin/labkit-probe",
        "labkit/_kit/notebooks/04-services-with-compose.ipynb",
    ):
        assert wanted in names
    lessons = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert (
        sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("labkit/_kit/notebooks/"))
        == lessons
    )
    assert not [n for n in names if "/.secrets/" in n or n.endswith(".pyc")]


def test_the_installed_wheel_finds_its_files_outside_the_checkout(
    venv: Path, tmp_path: Path
) -> None:
    done = _run(
        venv,
        str(venv / "python"),
        "-c",
        "import json, labkit, labkit.paths as p, labkit.runtime.compose as c; print(json.dumps("
        "[labkit.__file__, str(p.kit_root()), str(p.checkout()), c.stacks()]))",
        cwd=tmp_path,
        home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    module, kit, checkout, stacks = json.loads(done.stdout)
    assert module.startswith(str(venv.parent)), module
    assert kit.startswith(str(venv.parent)) and kit.endswith("labkit/_kit")
    assert checkout == "None"
    assert stacks == ["pipeline", "services"]


def test_the_learner_workspace_comes_from_the_wheel(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _run(venv, str(venv / "labkit"), "lab", "--prepare-only", cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    made = sorted(p.name for p in (home / "workspace").glob("*.ipynb"))
    assert made == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_lesson_04_runs_from_the_wheel_on_the_local_runtime(venv: Path, tmp_path: Path) -> None:
    script = (
        "import sys, nbformat, labkit.paths as p\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(p.lessons_dir() / '04-services-with-compose.ipynb', as_version=4)\n"
        "NotebookClient(nb, timeout=180, kernel_name='python3', allow_errors=False,"
        " resources={'metadata': {'path': sys.argv[1]}}).execute()\n"
        "print('ran', sum(c.cell_type == 'code' for c in nb.cells), 'code cells')\n"
    )
    done = _run(
        venv,
        str(venv / "python"),
        "-c",
        script,
        str(tmp_path),
        cwd=tmp_path,
        home=tmp_path / "home",
        timeout=600,
        LABKIT_RUNTIME="local",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "ran " in done.stdout


@pytest.mark.docker
def test_the_services_stack_comes_up_from_the_wheel(
    venv: Path, tmp_path: Path, engine_images: None
) -> None:
    home = tmp_path / "home"
    project = "labkit-services"
    try:
        up = _run(
            venv,
            str(venv / "labkit"),
            "stack",
            "up",
            "services",
            "--wait",
            cwd=tmp_path,
            home=home,
            timeout=600,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        ps = _run(venv, str(venv / "labkit"), "stack", "ps", "services", cwd=tmp_path, home=home)
        assert "gateway" in ps.stdout and "healthy" in ps.stdout, ps.stdout
        # The generated secret is the learner's, under LABKIT_HOME, never in the installed kit.
        secret = home / "secrets" / project / "db_password"
        assert secret.is_file() and (secret.parent.stat().st_mode & 0o777) == 0o700
        assert not list(venv.parent.rglob(".secrets"))
    finally:
        _run(venv, str(venv / "labkit"), "stack", "down", "services", cwd=tmp_path, home=home)
