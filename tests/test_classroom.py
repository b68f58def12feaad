"""A real workshop hub: JupyterHub started by `labkit classroom up`, five learners in containers
of their own (DockerSpawner, the offline learner image), each running lessons 01 and 04 in their
own kernels at the same time; the instructor's view; and nothing left behind by `down`."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from labkit import engine
from labkit.classroom import hub
from labkit.paths import lessons_dir
from labkit.runtime import docker_engine_version
from labkit.teaching.reporting import learner_secret
from labkit.webhooks.serving import free_port
from labkit.webhooks.signing import standard_headers

from hubclient import Kernel, process_group, start_server, wait_until
from support import require

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]
LEARNERS = hub.learner_names(5)
LESSONS = ("01", "04")


def _lesson_cells(number: str) -> list[tuple[str, bool]]:
    """The code cells of a lesson's solution edition: (source, whether it may raise)."""
    path = next(lessons_dir().glob(f"{number}-*.ipynb"))
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return [
        (c.source, "raises-exception" in c.metadata.get("tags", []))
        for c in nb.cells
        if c.cell_type == "code"
    ]


def _exercises(number: str) -> set[str]:
    found: set[str] = set()
    for source, _ in _lesson_cells(number):
        found |= set(re.findall(r"check\(\s*[\"'](\d\d-[a-z0-9-]+)[\"']", source))
    return found


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hub.Classroom]:
    require(
        docker_engine_version() is not None,
        "no Docker engine answers: start Docker to run the classroom test",
    )
    require(
        shutil.which("configurable-http-proxy") is not None,
        "apt-get install node-configurable-http-proxy (the hub's proxy)",
    )
    home = tmp_path_factory.mktemp("classroom-home")
    saved = os.environ.get("LABKIT_HOME")
    os.environ["LABKIT_HOME"] = str(home)
    try:
        running = [
            c.name
            for c in engine.client().containers.list(all=True)
            if c.name.startswith(hub.CONTAINER_PREFIX)
        ]
        require(not running, f"a classroom's learners are on this engine ({running}): not ours")
        started = hub.up(LEARNERS, port=free_port(), mem="1G", cpus=1.0, say=lambda _: None)
        yield started
    finally:
        pid_file = home / "classroom" / "hub.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        said = hub.down(forget_work=True, say=lambda _: None)
        _nothing_left(pid, said)
        if saved is None:
            os.environ.pop("LABKIT_HOME", None)
        else:
            os.environ["LABKIT_HOME"] = saved


def _nothing_left(pid: int | None, said: list[str]) -> None:
    """Stopping the hub leaves no process, container or network behind."""
    client = engine.client()
    assert not [
        c.name for c in client.containers.list(all=True) if c.name.startswith(hub.CONTAINER_PREFIX)
    ], said
    assert not [n for n in client.networks.list() if n.name == hub.NETWORK], said
    if pid is not None:
        group = process_group(pid)
        assert group == [], f"processes of the hub's group still run: {group}"


@pytest.fixture(scope="module")
def lessons_run(room: hub.Classroom) -> dict[str, list[str]]:
    """Every learner's server started, then each runs lessons 01 and 04 in a kernel of their
    own, all five at the same time. Returns each learner's failed cells (none expected)."""
    for name in LEARNERS:
        room.request("POST", f"/users/{name}/server")
    for name in LEARNERS:
        start_server(room, name)
    failures: dict[str, list[str]] = {name: [] for name in LEARNERS}

    def learner(name: str) -> None:
        kernel = Kernel(room, name).start()
        try:
            for number in LESSONS:
                for source, may_raise in _lesson_cells(number):
                    status, out = kernel.run(source)
                    if status != "ok" and not may_raise:
                        failures[name].append(f"lesson {number}: {source[:80]!r}: {out[-600:]}")
                        return
        except Exception as exc:  # noqa: BLE001 - reported as this learner's failure
            failures[name].append(f"{type(exc).__name__}: {exc}")
        finally:
            kernel.stop()

    threads = [threading.Thread(target=learner, args=(n,)) for n in LEARNERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def test_five_learners_run_lessons_01_and_04_at_the_same_time(
    lessons_run: dict[str, list[str]],
) -> None:
    assert lessons_run == {name: [] for name in LEARNERS}


def test_no_learner_sees_anothers_files_servers_or_ports(
    room: hub.Classroom, lessons_run: dict[str, list[str]]
) -> None:
    probe = (
        "import json, os, socket, fastapi, labkit\n"
        "server = labkit.serve(fastapi.FastAPI(), name='probe')\n"
        "port = server.url.rsplit(':', 1)[1]\n"
        "print(json.dumps({'me': os.environ['LABKIT_LEARNER'], 'ip': socket.gethostbyname("
        "socket.gethostname()), 'port': int(port), 'homes': sorted(os.listdir('/home')), "
        "'lessons': sorted(os.listdir('.'))}))"
    )
    kernels = {name: Kernel(room, name).start() for name in LEARNERS[:2]}
    try:
        seen = {}
        for name, kernel in kernels.items():
            status, out = kernel.run(probe)
            assert status == "ok", out
            seen[name] = json.loads(out.strip().splitlines()[-1])
        a, b = LEARNERS[:2]
        assert seen[a]["me"] == a and seen[b]["me"] == b
        assert seen[a]["homes"] == ["learner"] and "my-shop" in seen[a]["lessons"]
        # a's kernel tries b's server on b's address: the kit binds 127.0.0.1 only.
        reach = (
            "import socket\n"
            f"s = socket.socket(); s.settimeout(3)\n"
            f"print(s.connect_ex(({seen[b]['ip']!r}, {seen[b]['port']})))"
        )
        status, out = kernels[a].run(reach)
        assert status == "ok" and out.strip() != "0", out
    finally:
        for kernel in kernels.values():
            kernel.stop()


def test_a_second_kernel_on_the_same_stack_gets_a_clear_message_and_the_first_works(
    room: hub.Classroom, lessons_run: dict[str, list[str]]
) -> None:
    name = LEARNERS[0]
    first, second = Kernel(room, name).start(), Kernel(room, name).start()
    try:
        status, out = first.run(
            "import labkit, httpx\n%compose -f my-shop/compose.yaml up --wait\n"
            "stack = labkit.stack('my-shop/compose.yaml')"
        )
        assert status == "ok", out
        status, out = second.run("import labkit\n%compose -f my-shop/compose.yaml up --wait")
        assert status == "error"
        assert "already up in another kernel" in out and "keeps working" in out
        status, out = first.run(
            "print(httpx.get(stack.url('gateway') + '/api/products').status_code)"
        )
        assert (status, out.strip().splitlines()[-1]) == ("ok", "200")
    finally:
        first.run("%compose -f my-shop/compose.yaml down -v")
        first.stop()
        second.stop()


def _class(room: hub.Classroom) -> dict[str, object]:
    answer = httpx.get(
        room.url + "services/class-view/class.json",
        headers={"Authorization": f"token {room.admin_token()}"},
        timeout=30,
    )
    answer.raise_for_status()
    data: dict[str, object] = answer.json()
    return data


def test_the_instructor_view_lists_the_five_with_their_progress(
    room: hub.Classroom, lessons_run: dict[str, list[str]]
) -> None:
    expected = _exercises("01") | _exercises("04")
    assert len(expected) >= 8

    def everyone_reported() -> list[dict[str, object]] | None:
        rows = _class(room)["learners"]
        assert isinstance(rows, list)
        done = [r for r in rows if r["passed"] == len(expected)]
        return rows if len(done) == len(LEARNERS) else None

    rows = wait_until("every learner's checks in the class view", everyone_reported, 60)
    assert [r["learner"] for r in rows] == LEARNERS
    assert {r["lesson"] for r in rows} == {"04"}
    assert all(r["server"] == "running" for r in rows)
    csv = httpx.get(
        room.url + "services/class-view/class.csv",
        headers={"Authorization": f"token {room.admin_token()}"},
    )
    assert csv.status_code == 200 and csv.text.count("\n") == len(LEARNERS) + 1
    # Learners are not instructors: the token a learner's own server holds is refused.
    kernel = Kernel(room, LEARNERS[0]).start()
    try:
        status, out = kernel.run("import os; print(os.environ['JUPYTERHUB_API_TOKEN'])")
    finally:
        kernel.stop()
    assert status == "ok", out
    learner_token = out.strip().splitlines()[-1]
    refused = httpx.get(
        room.url + "services/class-view/class.json",
        headers={"Authorization": f"token {learner_token}"},
    )
    assert refused.status_code == 403


def test_a_forged_progress_webhook_is_refused_and_shown_nowhere(room: hub.Classroom) -> None:
    settings = json.loads((room.folder / "settings.json").read_text())
    url = f"http://{settings['hub_ip']}:{settings['view_port']}/services/class-view/progress"
    body = json.dumps(
        {
            "type": "progress.checked",
            "data": {
                "learner": "mallory",
                "checks": [
                    {"id": 1, "at": time.time(), "lesson": "07", "exercise": "07-broken-build",
                     "passed": True, "tier": 0}
                ],
            },
        }
    ).encode()  # fmt: skip
    wrong_key = learner_secret(b"not the classroom key, 32 bytes!", "mallory")
    headers = standard_headers(wrong_key, "msg_forged", int(time.time()), body)
    answer = httpx.post(url, content=body, headers=headers)
    assert answer.status_code == 401
    assert "mallory" not in json.dumps(_class(room))


def test_the_instructor_signs_in_with_a_browser_and_sees_the_class_live(
    room: hub.Classroom, lessons_run: dict[str, list[str]], tmp_path: Path
) -> None:
    """The hub's login page, OAuth to the class view, the table; a learner is turned away."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_FLAGS

    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    view = room.url + "services/class-view/"
    passwords = {
        "instructor": (room.folder / "instructor-password").read_text().strip(),
        LEARNERS[0]: (room.folder / "workshop-password").read_text().strip(),
    }

    def sign_in_and_open(pw: Any, name: str, profile: str) -> tuple[int, str]:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            page.goto(view)  # not signed in: the hub's login page, via OAuth
            page.fill("input[name=username]", name)
            page.fill("input[name=password]", passwords[name])
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_load_state("networkidle")
            if not page.url.startswith(view):
                page.goto(view)
            answer = page.goto(view)
            status = answer.status if answer is not None else 0
            if status == 200:
                # Live: a check made now shows up without reloading the page.
                assert "02-signature" not in page.inner_text("#class")
                kernel = Kernel(room, LEARNERS[-1]).start()
                try:
                    ran = kernel.run(
                        "from labkit.teaching.exercises import check\ncheck('02-signature', 'not it')"
                    )
                finally:
                    kernel.stop()
                assert ran[0] == "ok", ran[1]
                page.wait_for_function(
                    "document.querySelector('#class').innerText.includes('02-signature')",
                    timeout=30_000,
                )
            return status, page.inner_text("body")
        finally:
            context.close()

    with sync_playwright() as pw:
        status, text = sign_in_and_open(pw, "instructor", "instructor")
        assert status == 200, text[:500]
        for name in LEARNERS:
            assert name in text
        assert "Checks most failed across the class" in text
        status, text = sign_in_and_open(pw, LEARNERS[0], "learner")
        # The hub itself refuses: a learner has no access to the class view service.
        assert status == 403 and "permission to access JupyterHub service class-view" in text
