"""The classroom without Docker (`labkit classroom up --spawner local`): a real hub whose learners
are local processes with a folder each; a check reaches the class view; `down` leaves no process
and touches nothing in Docker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labkit.classroom import hub
from labkit.webhooks.serving import free_port

from hubclient import Kernel, process_group, start_server, wait_until
from support import require

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def room(labkit_home: Path) -> Iterator[hub.Classroom]:
    require(
        shutil.which("configurable-http-proxy") is not None,
        "apt-get install node-configurable-http-proxy (the hub's proxy)",
    )
    started = hub.up(["ada", "bo"], spawner="local", port=free_port(), say=lambda _: None)
    pid = int((started.folder / "hub.pid").read_text())
    try:
        yield started
    finally:
        said = hub.down(forget_work=True, say=lambda _: None)
        assert not any("container" in line or "network" in line for line in said), said
        left = process_group(pid)
        assert left == [], f"processes of the hub's group still run: {left}"
        assert not (started.folder / "learners").exists()


def test_a_local_learner_works_in_their_own_folder_and_the_view_sees_their_check(
    room: hub.Classroom,
) -> None:
    start_server(room, "ada", timeout=120)
    kernel = Kernel(room, "ada").start()
    try:
        status, out = kernel.run(
            "import os\n"
            "from labkit.teaching.exercises import check\n"
            "from labkit.teaching import reporting as report\n"
            "print(check('01-polling-cost', {'polling': 960, 'webhooks': 12}).passed)\n"
            "print(report.wait_sent())\n"
            "print(os.environ['LABKIT_HOME'])"
        )
    finally:
        kernel.stop()
    assert status == "ok", out
    lines = out.strip().splitlines()
    assert lines[0] == "True" and lines[1] in ("1 check(s) sent", "nothing to send")
    assert lines[2] == str(room.folder / "learners" / "ada" / ".labkit")
    assert (room.folder / "learners" / "ada" / "lessons" / "01-webhooks-101.ipynb").is_file()

    def rows() -> dict[str, dict[str, object]] | None:
        answer = httpx.get(
            room.url + "services/class-view/class.json",
            headers={"Authorization": f"token {room.admin_token()}"},
        )
        found = {r["learner"]: r for r in answer.json()["learners"]}
        return found if found.get("ada", {}).get("passed") == 1 else None

    seen = wait_until("ada's check in the class view", rows, 30)
    assert seen["ada"]["server"] == "running" and seen["bo"]["server"] == "stopped"
    assert seen["bo"]["passed"] == 0
