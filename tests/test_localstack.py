"""The services stack without Docker: the same compose.yaml run as local processes, a SQLite file in
place of MariaDB, scaling as more processes, clear errors, and no process left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import labkit
from labkit.errors import StackError
from labkit.runtime import DOCKER, LOCAL, Choice, localstack
from labkit.runtime.compose import STACKS_DIR, Stack
from labkit.runtime.localstack import LocalStack, stack
from labkit.runtime.processes import alive, pids_dir

from support import poll

ROOT = Path(__file__).resolve().parent.parent
APPS = ["gateway", "orders", "products", "users"]


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10, trust_env=False)


def post(url: str, body: dict[str, int]) -> httpx.Response:
    return httpx.post(url, json=body, timeout=10, trust_env=False)


def pids(s: LocalStack, service: str | None = None) -> list[int]:
    return [r["pid"] for r in s.ps() if service is None or r["service"] == service]


@pytest.fixture
def services() -> Iterator[LocalStack]:
    """The kit's services stack as local processes, up and healthy; always down afterwards."""
    s = LocalStack("services")
    try:
        s.up(timeout=60)
        yield s
    finally:
        started = pids(s)
        s.down()
        assert not [p for p in started if alive(p)], "down() left processes running"
        assert not list(pids_dir().glob("*.json")), "down() left pidfiles behind"


@pytest.fixture
def copy_of_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Path]]:
    """A copy of compose/services to change: ``copy({"shop/users.py": (old, new), ...})``.

    Each edit replaces ``old`` once in that file; the copy is what ``LocalStack`` reads, and
    every process it starts is stopped after the test.
    """
    stacks_dir = tmp_path / "stacks"
    monkeypatch.setattr(localstack, "STACKS_DIR", stacks_dir)
    made: list[LocalStack] = []

    def copy(edits: dict[str, tuple[str, str]] | None = None) -> Path:
        folder = stacks_dir / "services"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(
            STACKS_DIR / "services",
            folder,
            ignore=shutil.ignore_patterns("__pycache__", ".secrets"),
        )
        for name, (old, new) in (edits or {}).items():
            path = folder / name
            text = path.read_text()
            assert old in text, f"{old!r} is not in {name}"
            path.write_text(text.replace(old, new, 1))
        made.append(LocalStack("services"))
        return folder

    yield copy
    for s in made:
        s.down()


# --- up, healthy, where -------------------------------------------------------------------------


def test_up_starts_every_app_healthy_in_depends_on_order(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    start = localstack._Project.start

    def recording(
        self: localstack._Project,
        service: localstack.Service,
        number: int,
        stand_ins: dict[str, localstack.StandIn],
    ) -> localstack.Replica:
        # What each dependency looks like at the moment the service is started.
        for dependency in service.depends_on:
            if dependency not in stand_ins:
                assert [r.health for r in self.running(dependency)] == ["healthy"], (
                    f"{service.name} started before {dependency} was healthy"
                )
        order.append(service.name)
        return start(self, service, number, stand_ins)

    monkeypatch.setattr(localstack._Project, "start", recording)
    s = LocalStack("services")
    try:
        s.up(timeout=60)
        rows = s.ps()
        assert [r["service"] for r in rows] == APPS
        assert all(r["state"] == "running" and r["health"] == "healthy" for r in rows), rows
        assert set(order[:2]) == {"users", "products"} and order[2:] == ["orders", "gateway"]
        assert "db: a SQLite file in place of labkit/mariadb:bookworm" in s.status()
        assert s.services == ["db", "users", "products", "orders", "gateway"]
    finally:
        s.down()


def test_the_gateway_answers_on_loopback_and_only_it_has_a_url(services: LocalStack) -> None:
    url = services.url("gateway")
    assert url.startswith("http://127.0.0.1:")
    assert [p["name"] for p in get(url + "/api/products").json()["products"]] == [
        "webhook mug",
        "compose t-shirt",
        "container stickers",
    ]
    assert services.url("gateway", 8000) == url
    for service in ("users", "products", "orders", "db"):
        with pytest.raises(StackError, match=f"{service} has no port published on 127.0.0.1"):
            services.url(service)
    with pytest.raises(StackError, match="does not publish port 9000"):
        services.url("gateway", 9000)


def test_each_process_says_which_one_answered(services: LocalStack) -> None:
    url = services.url("gateway")
    assert get(url + "/").json()["hostname"] == "gateway-1"
    assert get(url + "/api/users/1").json() == {
        "hostname": "users-1",
        "user": {"id": 1, "name": "Ada"},
    }
    assert services.hostnames("users") == ["users-1"]


def test_orders_ask_users_and_products_by_name_and_land_in_sqlite(services: LocalStack) -> None:
    url = services.url("gateway")
    made = post(url + "/api/orders", {"user_id": 1, "product_id": 2, "quantity": 2})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["order"]["total_cents"] == 5000
    assert body["checked_with"] == {"users": "users-1", "products": "products-1"}
    refused = post(url + "/api/orders", {"user_id": 42, "product_id": 2})
    assert (refused.status_code, refused.json()["detail"]) == (
        422,
        "users says: /users/42 does not exist",
    )
    database = services.plan()["db"]
    assert isinstance(database, localstack.StandIn)
    with sqlite3.connect(database.path) as db:
        rows = db.execute("SELECT id, user_id, product_id, quantity FROM orders").fetchall()
    assert rows == [(body["order"]["id"], 1, 2, 2)]


def test_orders_survive_down_without_volumes_and_go_with_them(services: LocalStack) -> None:
    url = services.url("gateway")
    assert post(url + "/api/orders", {"user_id": 2, "product_id": 1}).status_code == 201
    services.down(volumes=False)
    services.up(timeout=60)
    url = services.url("gateway")
    assert [o["user_id"] for o in get(url + "/api/orders").json()["orders"]] == [2]
    services.down()
    services.up(timeout=60)
    assert get(services.url("gateway") + "/api/orders").json()["orders"] == []


# --- scale ----------------------------------------------------------------------------------------


def test_scaling_products_spreads_requests_over_three_processes(services: LocalStack) -> None:
    url = services.url("gateway")
    services.scale("products", 3)
    replicas = services.hostnames("products")
    assert replicas == ["products-1", "products-2", "products-3"]
    assert len(set(pids(services, "products"))) == 3
    seen = [get(url + "/api/products").json()["hostname"] for _ in range(6)]
    assert sorted(Counter(seen).items()) == [(h, 2) for h in replicas], seen  # in turn
    extra = [r["pid"] for r in services.ps() if r["service"] == "products" and r["replica"] > 1]
    services.scale("products", 1)
    assert services.hostnames("products") == ["products-1"]
    assert not [p for p in extra if alive(p)]
    assert {get(url + "/api/products").json()["hostname"] for _ in range(3)} == {"products-1"}


def test_the_database_cannot_be_scaled_and_unknown_services_are_named(services: LocalStack) -> None:
    with pytest.raises(StackError, match="db is a SQLite file here"):
        services.scale("db", 2)
    with pytest.raises(StackError, match="has no service 'nope'.*gateway"):
        services.scale("nope", 2)
    with pytest.raises(StackError, match="0 or more"):
        services.scale("users", -1)


def test_up_again_from_a_new_handle_keeps_what_is_right(services: LocalStack) -> None:
    before = {r["container"]: r["pid"] for r in services.ps()}
    services.scale("users", 2)
    again = labkit.stack("services", choice=Choice(LOCAL, "test"))  # a re-run cell
    assert isinstance(again, LocalStack)
    assert again.hostnames("users") == ["users-1", "users-2"]  # the same processes
    again.up(timeout=60)
    assert {r["container"]: r["pid"] for r in again.ps()} == before  # the extra replica went


def test_a_changed_app_is_replaced_on_up_and_the_rest_kept(
    copy_of_services: Callable[..., Path],
) -> None:
    folder = copy_of_services()
    s = LocalStack("services")
    s.up(timeout=60)
    before = {r["service"]: r["pid"] for r in s.ps()}
    path = folder / "shop" / "users.py"
    path.write_text(path.read_text().replace('"name": "Ada"', '"name": "Ada Lovelace"'))
    s.up(timeout=60)
    after = {r["service"]: r["pid"] for r in s.ps()}
    changed = sorted(n for n in before if before[n] != after[n])
    # users.py is in the folder every app runs from, so every app is "rebuilt", as with one image.
    assert changed == APPS
    assert get(s.url("gateway") + "/api/users/1").json()["user"]["name"] == "Ada Lovelace"
    s.up(timeout=60)
    assert {r["service"]: r["pid"] for r in s.ps()} == after


# --- logs and status ------------------------------------------------------------------------------


def test_logs_show_requests_but_not_health_checks(services: LocalStack) -> None:
    url = services.url("gateway")
    for _ in range(3):
        get(url + "/api/products")
    lines = services.logs("gateway", tail=50).splitlines()
    requests = [line for line in lines if "GET /api/products" in line]
    assert len(requests) == 3 and all(line.startswith("gateway-1 | ") for line in requests)
    assert not [line for line in lines if "/healthz" in line]
    assert "products-1 | " in services.logs(tail=50)


def test_the_status_widget_follows_a_local_stack(services: LocalStack) -> None:
    from labkit.widgets import StackStatus

    view = StackStatus(services, live=False)
    try:
        assert "gateway" in view.table.value and "healthy" in view.table.value
        services.down()
        assert view.refresh() == []
        assert "the stack is down" in view.table.value
    finally:
        view.stop()


# --- clear errors ---------------------------------------------------------------------------------


def test_a_taken_port_says_which_service_and_port_and_leaves_nothing_running(
    copy_of_services: Callable[..., Path],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        copy_of_services(
            {"compose.yaml": ('ports: ["127.0.0.1::8000"]', f'ports: ["127.0.0.1:{port}:8000"]')}
        )
        s = LocalStack("services")
        with pytest.raises(StackError, match=f"gateway cannot listen on 127.0.0.1:{port}"):
            s.up(timeout=60)
    assert [r["state"] for r in s.ps()] == ["exited"] * 3  # users, products, orders: stopped
    assert not list(pids_dir().glob("*.json"))


def test_a_service_that_never_gets_healthy_is_named_with_its_log(
    copy_of_services: Callable[..., Path],
) -> None:
    copy_of_services(
        {
            "shop/products.py": (
                'app = service("products")',
                'print("products: the catalogue is missing", flush=True)\n'
                'app = service("products", check=lambda: 1 / 0)',
            ),
            "compose.yaml": ("retries: 30\n\nservices:", "retries: 2\n\nservices:"),
        }
    )
    s = LocalStack("services")
    with pytest.raises(StackError) as caught:
        s.up(timeout=60)
    message = str(caught.value)
    assert "products-1 (products" in message and "is unhealthy" in message
    assert "products-1 | products: the catalogue is missing" in message
    assert "run up() again" in message
    assert not [r for r in s.ps() if r["state"] == "running"]
    assert not list(pids_dir().glob("*.json"))


def test_a_service_that_crashes_at_start_says_so(copy_of_services: Callable[..., Path]) -> None:
    copy_of_services(
        {"shop/users.py": ('app = service("users")', "raise SystemExit('users: no such database')")}
    )
    s = LocalStack("services")
    with pytest.raises(
        StackError, match=r"users-1 \(users, pid \d+\) exited with code 1"
    ) as caught:
        s.up(timeout=60)
    assert "users: no such database" in str(caught.value)
    assert "orders" not in {r["service"] for r in s.ps()}  # never started: users never got healthy


def test_a_stack_the_stand_in_cannot_run_says_use_docker(
    copy_of_services: Callable[..., Path],
) -> None:
    copy_of_services({"compose.yaml": ("image: labkit/mariadb:bookworm", "image: redis:7")})
    with pytest.raises(StackError, match=r"cannot run db \(image redis:7\).*with Docker"):
        LocalStack("services").up(timeout=60)


def test_an_unknown_stack_lists_the_known_ones() -> None:
    with pytest.raises(StackError, match="services"):
        LocalStack("nope")


# --- nothing left behind --------------------------------------------------------------------------

PARENT = textwrap.dedent("""
    import json, sys
    from labkit.runtime.localstack import LocalStack
    s = LocalStack("services")
    s.up(timeout=60)
    s.scale("products", 2)
    print(json.dumps([r["pid"] for r in s.ps()]), flush=True)
    sys.stdin.readline()  # until the test closes stdin: then exit as a kernel shuts down
""")


def start_parent() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def children_of(parent: subprocess.Popen[str]) -> list[int]:
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line.startswith("["), f"the parent did not start the stack: {line!r}"
    return list(json.loads(line))


def stop(parent: subprocess.Popen[str], children: list[int]) -> None:
    parent.kill()
    parent.wait(10)
    for pid in children:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_killing_the_kernel_with_sigkill_leaves_no_process() -> None:
    parent = start_parent()
    children: list[int] = []
    try:
        children = children_of(parent)
        assert len(children) == 5 and all(alive(p) for p in children)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        poll(
            lambda: not any(alive(p) for p in children),
            timeout=15,
            what="the stack's processes to notice their kernel died",
        )
    finally:
        stop(parent, children)


def test_a_kernel_that_exits_stops_its_stack() -> None:
    parent = start_parent()
    children: list[int] = []
    try:
        children = children_of(parent)
        assert parent.stdin is not None
        parent.stdin.close()  # the kernel shuts down (a restart asks it to first)
        assert parent.wait(30) == 0
        assert not any(alive(p) for p in children)
        assert not list(pids_dir().glob("*.json"))
    finally:
        stop(parent, children)


def test_the_next_kernel_reaps_what_a_killed_kernel_left() -> None:
    parent = start_parent()
    children: list[int] = []
    try:
        children = children_of(parent)
        for pid in children:  # stopped processes cannot react to their lifeline closing
            os.kill(pid, signal.SIGSTOP)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert all(alive(p) for p in children), "a stopped orphan survives its parent"
        LocalStack("services").ps()  # the first use in this kernel reaps
        poll(lambda: not any(alive(p) for p in children), timeout=15, what="the orphans reaped")
        assert not list(pids_dir().glob("*.json"))
    finally:
        stop(parent, children)


INTERRUPTED = textwrap.dedent("""
    import json, sys, time
    from labkit.runtime import localstack
    from labkit.runtime.localstack import LocalStack
    localstack.STACKS_DIR = __import__("pathlib").Path(sys.argv[1])
    try:
        LocalStack("services").up(timeout=60)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        time.sleep(120)
""")


def test_interrupting_up_stops_what_it_had_started(copy_of_services: Callable[..., Path]) -> None:
    folder = copy_of_services(
        {  # products never gets healthy: up() waits until interrupted
            "shop/products.py": (
                'app = service("products")',
                'app = service("products", check=lambda: 1 / 0)',
            )
        }
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(folder.parent)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    children: list[int] = []
    try:

        def started() -> list[int]:
            records = [json.loads(p.read_text()) for p in pids_dir().glob("*.json")]
            return [r["pid"] for r in records if r["name"] in ("users-1", "products-1")]

        children = poll(
            lambda: len(started()) == 2 and started(),
            timeout=30,
            what="users and products to start",
        )
        poll(lambda: get_health(folder) == "users ok", timeout=30, what="users to answer")
        parent.send_signal(signal.SIGINT)  # what the notebook's interrupt button sends
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "interrupted"
        assert parent.poll() is None, "the parent must still run: its lifeline stays open"
        assert not any(alive(p) for p in children)
        assert not list(pids_dir().glob("*.json"))
    finally:
        stop(parent, children)


def get_health(folder: Path) -> str:
    """ "users ok" once the users process of the copied stack answers its health check."""
    table = next(
        (folder.parent.parent / "labkit-home").glob("local-stacks/services/run-*/addresses.json"),
        None,
    )
    if table is None:
        return ""
    return "users ok" if json.loads(table.read_text()).get("users") else ""


# --- which stack a lesson gets --------------------------------------------------------------------


def test_the_local_runtime_gets_a_local_stack_that_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    s = stack("services")
    assert isinstance(s, LocalStack)
    assert s.reason == "LABKIT_RUNTIME=local is set"
    assert "a stand-in for Docker" in repr(s) and "LABKIT_RUNTIME=local" in repr(s)


def test_docker_gets_compose_unless_compose_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    docker = Choice(DOCKER, "Docker engine 99 answers")
    monkeypatch.setattr(localstack, "compose_command", lambda: ("docker-compose",))
    assert isinstance(stack("services", choice=docker), Stack)

    def missing() -> tuple[str, ...]:
        raise StackError("Neither `docker compose` nor `docker-compose` is installed")

    monkeypatch.setattr(localstack, "compose_command", missing)
    monkeypatch.delenv("LABKIT_RUNTIME", raising=False)
    fallback = stack("services", choice=docker)
    assert isinstance(fallback, LocalStack)
    assert "Compose is not installed" in fallback.reason
    monkeypatch.setenv("LABKIT_RUNTIME", "docker")
    with pytest.raises(StackError, match="Neither"):
        stack("services", choice=docker)


def test_a_real_kernel_rerun_restarted_or_killed_leaves_no_process() -> None:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABKIT_RUNTIME": "local"}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    cell = (
        'import labkit\nstack = labkit.stack("services")\nstack.up(timeout=60)\n'
        'print(sorted(r["pid"] for r in stack.ps()))'
    )

    def run(code: str) -> list[int]:
        out: list[str] = []
        reply = kc.execute_interactive(
            code,
            timeout=90,
            output_hook=lambda msg: (
                out.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None
            ),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return list(json.loads("".join(out)))

    seen: list[int] = []
    try:
        first = run(cell)
        seen += first
        assert run(cell) == first  # the re-run cell keeps the same four processes
        km.restart_kernel(now=False)  # the menu's "Restart Kernel": a graceful shutdown
        poll(
            lambda: not any(alive(p) for p in first),
            timeout=30,
            what="the processes to stop with the restarted kernel",
        )
        kc.wait_for_ready(timeout=60)
        second = run(cell)
        seen += second
        km.restart_kernel(now=True)  # a kernel that does not answer is killed
        poll(
            lambda: not any(alive(p) for p in second),
            timeout=30,
            what="the processes to stop with the killed kernel",
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        for pid in seen:
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_a_second_kernel_gets_a_clear_message_and_the_first_keeps_its_stack() -> None:
    """The same stack in two kernels (a lesson open in two tabs) runs once."""
    parent = start_parent()
    children: list[int] = []
    try:
        children = children_of(parent)
        with pytest.raises(StackError, match=rf"already up in another kernel \(pid {parent.pid}\)"):
            LocalStack("services").up(timeout=60)
        assert all(alive(pid) for pid in children), "the first kernel's stack was touched"
        mine = LocalStack("services")
        assert mine.ps() == []  # nothing of it started here
    finally:
        stop(parent, children)
    # Once that kernel is gone, this one may start the stack.
    s = LocalStack("services")
    try:
        s.up(timeout=60)
        assert {r["service"] for r in s.ps()} >= {"gateway", "users"}
    finally:
        s.down()
