"""Lesson 04's tasks on the learner's own copy of the shop: each check says NOT YET on the file
the kit gives, with the hint for what is missing, and PASS once the task is done, reading the
file as Compose reads it and the stack as it runs (here on the local stand-in)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import labkit
from labkit.runtime.localstack import LocalStack
from labkit.teaching import terminal
from labkit.teaching.exercises import check, lesson04

FILE = lesson04.FILE


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    labkit.copy_stack("services", "my-shop")
    yield tmp_path / FILE
    LocalStack(FILE).down()


def _solve(task: int) -> None:
    code = {
        1: lesson04.HEALTHCHECK,
        2: lesson04.DEPENDS_ON,
    }[task]
    exec(code, {"labkit": labkit})  # noqa: S102 - the lesson's own solution


def test_the_copy_is_the_starter_and_a_second_copy_keeps_the_learners_file(shop: Path) -> None:
    assert "# TASK 1:" in shop.read_text()
    shop.write_text(shop.read_text() + "# mine\n")
    again = labkit.copy_stack("services", "my-shop")
    assert "compose.yaml" in again.kept and shop.read_text().endswith("# mine\n")
    assert "COMPOSE_PROJECT_NAME=labkit-my-shop" in (shop.parent / ".env").read_text()


def test_file_tasks_say_not_yet_then_pass(shop: Path) -> None:
    first = check("04-healthcheck", FILE)
    assert not first.passed and "x-app" in first.message
    assert "fill" not in first.message and first.tier == 1
    assert not check("04-depends-on", FILE).passed
    _solve(1)
    assert check("04-healthcheck", FILE).passed
    short = check("04-depends-on", FILE)
    assert not short.passed and "short form" in short.message
    _solve(2)
    assert check("04-depends-on", FILE).passed
    assert not labkit.fill_task(FILE, 2, "x")  # done already: nothing left to replace


def test_a_broken_file_gets_a_clear_hint(shop: Path) -> None:
    shop.write_text(shop.read_text().replace("services:\n", "services:\n\tbad: [\n", 1))
    result = check("04-healthcheck", FILE)
    assert not result.passed and "Compose cannot read your file" in result.message


def test_the_running_stack_decides_the_port_and_network_tasks(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _solve(1)
    _solve(2)
    terminal.compose(f"-f {FILE} up --wait")
    assert "8000 on every interface (0.0.0.0)" in capsys.readouterr().out
    port = check("04-loopback-port", FILE)
    assert not port.passed and "every interface" in port.message
    # The file alone is not enough: the running gateway still listens on every interface.
    labkit.fill_task(FILE, 3, 'ports: ["127.0.0.1::8000"]')
    stale = check("04-loopback-port", FILE)
    assert not stale.passed and "up --wait again" in stale.message
    terminal.compose(f"-f {FILE} up --wait")
    assert "8000 on 127.0.0.1 only" in capsys.readouterr().out
    assert check("04-loopback-port", FILE).passed
    assert not check("04-internal-network", FILE).passed
    labkit.fill_task(FILE, 4, "backend:\n  internal: true")
    assert check("04-internal-network", FILE).passed
    terminal.compose(f"-f {FILE} up --wait --scale users=2")
    url = LocalStack(FILE).url("gateway")
    answer = {httpx.get(url + "/api/users").json()["hostname"] for _ in range(4)}
    assert check("04-scale-users", answer).passed
    assert not check("04-scale-users", {"users-1"}).passed
    terminal.compose(f"-f {FILE} down -v")
    assert "labkit-my-shop: nothing running" in capsys.readouterr().out


def test_the_stand_in_says_what_it_does_not_know(shop: Path) -> None:
    with pytest.raises(labkit.StackError, match="needs Docker's Compose"):
        terminal.compose(f"-f {FILE} exec users sh")
    with pytest.raises(labkit.StackError, match="Say what Compose should do"):
        terminal.compose(f"-f {FILE}")
