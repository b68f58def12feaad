"""Two changes of one stack at once, and what an interrupted or concurrent run leaves behind.

Measured before this existed: lesson 04 in two kernels at once left two networks of one name,
after which every `up` and `down` failed with "network ... is ambiguous". Now one process at a
time changes a project (the second waits, saying who it waits for), `down` removes duplicates by
id, and `labkit doctor` names them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.runtime.compose import PROJECT, Stack, StackError, duplicate_networks, project_lock
from labkit.teaching.doctor import _leftovers

PROJECT_NAME = "labkit-leftover-test"
COMPOSE = """\
services:
  app:
    image: labkit/python-app:bookworm
    pull_policy: never
    command: ["python3", "-c", "import signal; signal.pause()"]
    networks: [backend]
networks:
  backend: {}
"""


def test_a_second_change_of_a_project_waits_and_says_for_whom(tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_HOME": os.environ["LABKIT_HOME"]}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys
                from labkit.runtime.compose import project_lock
                with project_lock("labkit-lock-test"):
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StackError, match=rf"Process {holder.pid} has been changing"):
            with project_lock("labkit-lock-test", timeout=0.5):
                pass
        with project_lock("labkit-other-project", timeout=0.5):  # another project: no wait
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    with project_lock("labkit-lock-test", timeout=5):  # released: the next one goes at once
        pass


def _client() -> Any:
    import docker

    return docker.from_env(timeout=60)


@pytest.fixture
def stack_file(tmp_path: Path, engine_images: None) -> Iterator[Path]:
    folder = tmp_path / "leftover-test"
    folder.mkdir()
    (folder / "compose.yaml").write_text(COMPOSE)
    (folder / ".env").write_text(f"COMPOSE_PROJECT_NAME={PROJECT_NAME}\n")
    yield folder / "compose.yaml"
    from labkit.runtime.compose import remove_project

    remove_project(PROJECT_NAME)


@pytest.mark.docker
def test_down_removes_duplicate_networks_and_doctor_names_them(stack_file: Path) -> None:
    client = _client()
    name = f"{PROJECT_NAME}_backend"
    labels = {PROJECT: PROJECT_NAME, "com.docker.compose.network": "backend"}
    for _ in range(2):  # what two `compose up` at once left behind
        client.networks.create(name, labels=labels, check_duplicate=False)
    assert list(duplicate_networks(client)) == [name]
    check = _leftovers()
    assert not check.ok and name in check.detail and PROJECT_NAME in check.fix

    Stack(str(stack_file)).down()

    assert client.networks.list(filters={"label": f"{PROJECT}={PROJECT_NAME}"}) == []
    assert _leftovers().ok


@pytest.mark.docker
def test_two_ups_of_one_stack_at_once_leave_one_network(stack_file: Path) -> None:
    script = textwrap.dedent(
        f"""
        from labkit.runtime.compose import Stack
        Stack({str(stack_file)!r}).up(progress=None)
        print("up", flush=True)
        """
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert all(out.strip() == "up" for out, _ in outputs), outputs
    client = _client()
    networks = client.networks.list(filters={"label": f"{PROJECT}={PROJECT_NAME}"})
    assert [n.name for n in networks] == [f"{PROJECT_NAME}_backend"]
    assert duplicate_networks(client) == {}
    assert len(Stack(str(stack_file)).ps()) == 1


def test_learners_sharing_an_engine_never_share_a_project_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labkit
    from labkit.paths import project_name

    assert Stack("services").project == "labkit-services"
    monkeypatch.setenv("LABKIT_LEARNER", "Ada Lovelace!")
    assert Stack("services").project == "labkit-adalovelace-services"
    assert project_name("lesson06") == "labkit-adalovelace-lesson06"  # DockerRuntime's too
    monkeypatch.chdir(tmp_path)
    copy = labkit.copy_stack("services", "my-shop")
    assert copy.project == "labkit-adalovelace-my-shop"
    assert Stack("my-shop/compose.yaml").project == copy.project  # as Compose reads .env
