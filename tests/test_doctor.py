"""The preflight check, the runtime choice and the lab launcher's errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import labkit
from labkit import runtime
from labkit.errors import LabkitError
from labkit.runtime import docker_engine_version
from labkit.teaching.lab import run_lab

from support import require


def test_doctor_reports_every_line_with_ok_or_a_fix() -> None:
    report = labkit.doctor(ports=())
    names = [c.name for c in report.checks]
    assert names[:2] == ["python", "fastapi"]
    assert "runtime" in names and "docker engine" in names
    for check in report.checks:
        assert check.ok or check.fix, f"{check.name} fails without saying what to do"
    assert str(report).splitlines()[-1] in (
        "Everything is ready.",
        "Fix the lines marked FIX, then run the check again.",
    )


def test_doctor_flags_a_taken_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        report = labkit.doctor(ports=(port,))
    line = next(c for c in report.checks if c.name == f"port {port}")
    assert not line.ok and "in use" in line.detail and str(port) in line.fix
    assert not report.ok


def test_runtime_override_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    choice = runtime.choose()
    assert choice.name == "local" and "LABKIT_RUNTIME=local" in choice.reason


def test_runtime_follows_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_RUNTIME", raising=False)
    monkeypatch.setattr(runtime, "docker_engine_version", lambda timeout=3.0: None)
    assert runtime.choose().name == "local"
    monkeypatch.setattr(runtime, "docker_engine_version", lambda timeout=3.0: "28.0")
    assert runtime.choose() == runtime.Choice("docker", "Docker engine 28.0 answers")


def test_runtime_forced_docker_without_engine_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "docker")
    monkeypatch.setattr(runtime, "docker_engine_version", lambda timeout=3.0: None)
    assert "start Docker" in runtime.choose().reason


def test_lab_refuses_a_taken_port_with_a_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LabkitError, match=f"Port {port} is taken"):
            run_lab(port=port, open_browser=False)


def test_lab_without_notebooks_says_where_to_run(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(tmp_path))
    with pytest.raises(LabkitError, match="00-start-here.ipynb"):
        run_lab(port=0, open_browser=False)


@pytest.mark.docker
def test_a_database_volume_from_another_labkit_home_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trap: LABKIT_HOME changed while a stack's database volume survived."""
    from labkit import engine
    from labkit.paths import secrets_dir
    from labkit.teaching.doctor import _orphan_volumes

    require(docker_engine_version() is not None, "no Docker engine answers")
    client = engine.client()
    project = f"labkit-doctor-{os.getpid()}"
    volume = client.volumes.create(
        f"{project}_dbdata", labels={"com.docker.compose.project": project}
    )
    try:
        check = _orphan_volumes()
        assert not check.ok and project in check.detail and "LABKIT_HOME" in check.fix
        secrets_dir(project).mkdir(parents=True)  # made under this home: no longer named
        assert project not in _orphan_volumes().detail
    finally:
        volume.remove(force=True)
