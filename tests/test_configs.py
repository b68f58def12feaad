"""Cloud and container configs: Binder (repo2docker) and the dev container are valid and install."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from labkit.teaching.lab import run_lab

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
REQUIRES_PYTHON = SpecifierSet(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
)
# What an install needs from the checkout: repo2docker and the dev container see all of it.
PACKAGE_FILES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "constraints.txt",
    "README.md",
    "labkit",
    "compose",
    "notebooks",
    "binder",
    ".devcontainer",
)
INSTALL_TIMEOUT = 150


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _checkout_copy(tmp_path: Path) -> Path:
    """The files an install reads, copied, so installing never writes into this checkout."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(source, copy / name)
    return copy


def _env(**extra: str) -> dict[str, str]:
    # `python3` in the configs' commands is this interpreter; nothing leaks in from this venv.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _run(cmd: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


# --- Binder / repo2docker ------------------------------------------------------------------------


def test_binder_installs_this_kit_on_a_supported_python() -> None:
    # repo2docker runs `pip install -r binder/requirements.txt` from the repository root, and a
    # binder/ folder makes it ignore pyproject.toml at the root: "." is what installs labkit.
    # A wheel built from ".", not an editable install: the lessons run from what it carries.
    assert _requirements(BINDER / "requirements.txt") == ["-c ../constraints.txt", "."]
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(3\.\d+)", runtime)
    assert match, f"runtime.txt should read python-3.X, not {runtime!r}"
    assert REQUIRES_PYTHON.contains(match.group(1) + ".0"), (runtime, str(REQUIRES_PYTHON))


def test_binder_start_selects_the_local_runtime_and_runs_the_server_command(tmp_path: Path) -> None:
    start = BINDER / "start"
    assert start.stat().st_mode & stat.S_IXUSR, "binder/start must be executable (chmod +x)"
    assert start.read_text().startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n", str(start)], check=True)
    done = subprocess.run(
        [str(start), "sh", "-c", 'echo "$LABKIT_RUNTIME|$0|$1"', "first", "2nd"],
        env=_env(LABKIT_RUNTIME="docker", LABKIT_WORKSPACE=str(tmp_path / "ws")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout == "local|first|2nd\n"
    # The learner's workspace is ready before the server starts: student editions of every lesson.
    assert (tmp_path / "ws" / "00-start-here.ipynb").is_file(), done.stderr
    assert "Your workspace" in done.stderr


def test_binder_install_command_works_here(tmp_path: Path) -> None:
    """Run what repo2docker runs, in a fresh venv, then import the kit as the lessons do."""
    checkout = _checkout_copy(tmp_path)
    venv = tmp_path / "binder-venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "-r",
            "binder/requirements.txt",
        ],
        cwd=checkout,
    )
    probe = (
        "import labkit, ipywidgets, jupyterlab; "
        "print(labkit.__file__); print(labkit.choose_runtime())"
    )
    done = _run([str(checkout / "binder" / "start"), str(python), "-c", probe], cwd=tmp_path)
    where, runtime = done.stdout.splitlines()[:2]
    assert str(venv) in where, f"labkit was imported from {where}, not the Binder env"
    assert "local" in runtime and "LABKIT_RUNTIME=local" in runtime, runtime


# --- dev container (Codespaces-style workshops) --------------------------------------------------


def _devcontainer() -> dict[str, object]:
    config = json.loads(DEVCONTAINER.read_text())  # plain JSON, no comments: any tool reads it
    assert isinstance(config, dict)
    return config


def test_devcontainer_has_docker_in_docker_and_a_supported_python() -> None:
    config = _devcontainer()
    for key in ("name", "image", "features", "postCreateCommand", "forwardPorts"):
        assert key in config, f"devcontainer.json has no {key!r}"
    image = str(config["image"])
    assert image.startswith("mcr.microsoft.com/devcontainers/python:"), image
    version = re.search(r":(?:\d+-)?(3\.\d+)", image)
    assert version and REQUIRES_PYTHON.contains(version.group(1) + ".0"), image
    features = config["features"]
    assert isinstance(features, dict)
    assert any(
        re.fullmatch(r"ghcr\.io/devcontainers/features/docker-in-docker:\d+(\.\d+)*", f)
        for f in features
    ), f"no Docker-in-Docker feature in {list(features)}"
    lab_port = inspect.signature(run_lab).parameters["port"].default
    ports = config["forwardPorts"]
    assert isinstance(ports, list) and lab_port in ports, "forward the port `labkit lab` uses"


def test_devcontainer_post_create_command_installs_the_kit(tmp_path: Path) -> None:
    """Run postCreateCommand in a copy of the checkout, its pip step as a dry run of the kit.

    The Binder test already installs the kit and its dependencies for real; here the venv is
    created and the editable install is built and resolved, without fetching the rest again.
    """
    command = _devcontainer()["postCreateCommand"]
    assert isinstance(command, str), command
    last_step = command.split("&&")[-1]
    assert "pip install" in last_step and "-e ." in last_step, command
    checkout = _checkout_copy(tmp_path)
    report = tmp_path / "install-report.json"
    _run(["bash", "-c", f"{command} --dry-run --no-deps --report {report}"], cwd=checkout)
    would_install = {
        item["metadata"]["name"]: item for item in json.loads(report.read_text())["install"]
    }
    kit = would_install["labkit"]
    assert kit["download_info"]["dir_info"] == {"editable": True}
    requires = {re.split(r"[^\w-]", r, maxsplit=1)[0] for r in kit["metadata"]["requires_dist"]}
    assert {"jupyterlab", "ipywidgets", "docker"} <= requires, requires
    assert (checkout / ".venv" / "bin" / "python").exists()


@pytest.mark.parametrize(
    "path",
    [BINDER / "requirements.txt", BINDER / "runtime.txt", BINDER / "start", DEVCONTAINER],
    ids=lambda p: p.name,
)
def test_configs_are_plain_text_with_a_final_newline(path: Path) -> None:
    text = path.read_bytes()
    assert text.endswith(b"\n") and b"\r" not in text


def test_the_constraints_pin_every_dependency_a_workshop_installs() -> None:
    import tomllib

    from packaging.requirements import Requirement

    pins = {}
    for line in _requirements(ROOT / "constraints.txt"):
        name, _, version = line.partition("==")
        assert version, f"constraints.txt: {line!r} is not pinned with =="
        pins[name.lower().replace("_", "-")] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["test"], *extras["classroom"]]
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.name == project["name"]:  # the test tools take the kit's own extras
            assert requirement.extras <= set(extras), requirement
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
