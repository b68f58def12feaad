"""The services stack on the real engine: healthy, on 127.0.0.1 only, scalable, gone after down.

Skips with a reason where no Docker engine answers; fails instead when CI=true and an engine answers
but something is missing. The lab images are built (or found up to date) first, so CI needs nothing
prepared by hand besides debootstrap and docker-compose.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit.runtime import docker_engine_version, images
from labkit.runtime.compose import PROJECT, SERVICE, Stack, StackError, compose_command, stacks

from support import require

APPS = ("users", "products", "orders", "gateway")


def _client() -> Any:
    import docker

    return docker.from_env()


def _containers(stack: Stack) -> list[dict[str, Any]]:
    client = _client()
    return [
        client.api.inspect_container(c["Id"])
        for c in client.api.containers(all=True, filters={"label": [f"{PROJECT}={stack.project}"]})
    ]


@pytest.fixture(scope="module")
def services() -> Iterator[Stack]:
    """The services stack, up and healthy; always brought down afterwards."""
    require(
        docker_engine_version() is not None,
        "no Docker engine answers: start Docker to run the stack tests",
    )
    try:
        compose_command()
    except StackError as exc:
        require(False, str(exc))
    if images.missing():
        require(
            os.geteuid() == 0 and shutil.which("debootstrap") is not None,
            "the lab images are not built and cannot be here: run `labkit images build` "
            "as root with debootstrap installed (apt-get install -y debootstrap)",
        )
        images.build(progress=None)
    stack = Stack("services")
    try:
        stack.down()
        start = time.monotonic()
        stack.up(timeout=300)
        print(f"\nservices stack up (healthy): {time.monotonic() - start:.1f} s")
        yield stack
    finally:
        stack.down()


# -- without an engine -----------------------------------------------------------------------------


def test_unknown_stack_lists_the_known_ones() -> None:
    with pytest.raises(StackError, match="services"):
        Stack("nope")
    assert "services" in stacks()
    assert "images" not in stacks()


def test_no_engine_says_start_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(StackError, match="start Docker"):
        Stack("services").up()


def test_the_status_table_colours_state_and_health() -> None:
    from labkit.widgets.stack_status import render

    assert "stack is down" in render([])
    page = render(
        [
            {
                "service": "web",
                "replica": 2,
                "container": "x",
                "state": "running",
                "health": "unhealthy",
                "ports": ["127.0.0.1:1234->8000/tcp"],
            },
            {
                "service": "<db>",
                "replica": 1,
                "container": "y",
                "state": "exited",
                "health": "",
                "ports": [],
            },
        ]
    )
    assert '#cf222e">unhealthy' in page and "no healthcheck" in page
    assert "&lt;db&gt;" in page and "127.0.0.1:1234-&gt;8000/tcp" in page


def test_the_compose_file_keeps_the_security_defaults() -> None:
    text = Stack("services").file.read_text()
    assert "docker.sock" not in text
    assert "0.0.0.0" not in text
    assert "privileged" not in text
    assert "PASSWORD:" not in text  # the password only travels as a secret file


# -- against the engine ----------------------------------------------------------------------------


@pytest.mark.docker
def test_missing_lab_images_say_run_images_build(monkeypatch: pytest.MonkeyPatch) -> None:
    require(docker_engine_version() is not None, "no Docker engine answers")
    from labkit.runtime import compose

    monkeypatch.setattr(compose, "_absent", lambda client, tag: tag == "labkit/mariadb:bookworm")
    with pytest.raises(StackError, match=r"labkit/mariadb:bookworm\. Run `labkit images build`"):
        Stack("services").up()


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_compose_is_found(services: Stack) -> None:
    assert compose_command() in (("docker", "compose"), ("docker-compose",))


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_every_service_is_up_and_healthy(services: Stack) -> None:
    rows = services.ps()
    assert sorted({r["service"] for r in rows}) == sorted(["db", *APPS])
    for row in rows:
        assert (row["state"], row["health"]) == ("running", "healthy"), row


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_the_gateway_answers_on_loopback(services: Stack) -> None:
    url = services.url("gateway")
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/", timeout=10).json()["service"] == "gateway"
    users = httpx.get(url + "/api/users", timeout=10).json()["users"]
    assert [u["name"] for u in users] == ["Ada", "Grace", "Linus"]
    made = httpx.post(
        url + "/api/orders", json={"user_id": 2, "product_id": 3, "quantity": 4}, timeout=10
    )
    assert made.status_code == 201, made.text
    order = made.json()
    assert order["order"]["total_cents"] == 1200
    assert set(order["checked_with"]) == {"users", "products"}
    listed = httpx.get(url + "/api/orders", timeout=10).json()["orders"]
    assert order["order"]["id"] in [o["id"] for o in listed]
    refused = httpx.post(url + "/api/orders", json={"user_id": 99, "product_id": 1}, timeout=10)
    assert refused.status_code == 422


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_only_the_gateway_publishes_and_only_on_loopback(services: Stack) -> None:
    published = {}
    for attrs in _containers(services):
        service = attrs["Config"]["Labels"][SERVICE]
        for key, bindings in (attrs["HostConfig"].get("PortBindings") or {}).items():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", (service, key, binding)
                published[service] = key
        for key, bindings in (attrs["NetworkSettings"].get("Ports") or {}).items():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", (service, key, binding)
    assert published == {"gateway": "8000/tcp"}


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_no_container_gets_the_docker_socket_or_privileges(services: Stack) -> None:
    for attrs in _containers(services):
        name = attrs["Name"]
        for mount in attrs.get("Mounts") or []:
            assert "docker.sock" not in str(mount.get("Source", "")), (name, mount)
        assert not attrs["HostConfig"].get("Privileged"), name


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_services_run_as_non_root_users(services: Stack) -> None:
    client = _client()
    for attrs in _containers(services):
        service = attrs["Config"]["Labels"][SERVICE]
        uid = client.api.exec_start(client.api.exec_create(attrs["Id"], ["id", "-u"])["Id"])
        assert int(uid.decode().strip()) != 0, service
        if service in APPS:
            assert attrs["HostConfig"]["ReadonlyRootfs"], service
            assert attrs["HostConfig"]["CapDrop"] == ["ALL"], service


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_the_database_password_is_a_secret_file_never_shown(services: Stack) -> None:
    secret = Path(services.env["LABKIT_SECRETS"]) / "db_password"
    password = secret.read_text().strip()
    assert len(password) >= 24
    # The learner's, under LABKIT_HOME in a folder only they may enter; never in the kit.
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    for attrs in _containers(services):
        env = "\n".join(attrs["Config"].get("Env") or [])
        assert password not in env, attrs["Name"]
    assert password not in services.logs(tail=500)


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_scaling_products_spreads_requests_over_three_replicas(services: Stack) -> None:
    url = services.url("gateway")
    try:
        services.scale("products", 3)
        replicas = services.hostnames("products")
        assert len(replicas) == 3
        seen = [httpx.get(url + "/api/products", timeout=10).json()["hostname"] for _ in range(6)]
        assert sorted(set(seen)) == replicas
        assert all(seen.count(h) == 2 for h in replicas), seen  # the gateway takes turns
    finally:
        services.scale("products", 1)
    assert len(services.hostnames("products")) == 1


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_up_again_changes_nothing(services: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same learner (the same LABKIT_HOME, so the same secrets) as the one who started it.
    monkeypatch.setenv("LABKIT_HOME", str(Path(services.env["LABKIT_SECRETS"]).parents[1]))
    before = sorted(a["Id"] for a in _containers(services))
    Stack("services").up(timeout=120)  # a re-run notebook cell makes a new object: same project
    after = sorted(a["Id"] for a in _containers(services))
    assert after == before


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_logs_show_requests_but_not_health_checks(services: Stack) -> None:
    httpx.get(services.url("gateway") + "/api/products", timeout=10)
    logs = services.logs("gateway", tail=50)
    assert "GET /api/products" in logs
    assert "/healthz" not in logs
    assert all(line.startswith("gateway-") for line in logs.splitlines())


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_the_status_widget_follows_the_stack(services: Stack) -> None:
    from labkit.widgets.stack_status import StackStatus

    first = StackStatus(services, interval=0.1)
    second = StackStatus(services, interval=0.1)  # a re-run cell: the first one stops
    try:
        assert first.stopped and not second.stopped
        rows = second.refresh()
        assert {r["service"] for r in rows} == {"db", *APPS}
        assert second.table.value.count(">healthy<") == len(rows)
    finally:
        second.stop()
    assert second.stopped


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_down_removes_everything(services: Stack) -> None:
    services.down()
    client = _client()
    selector = {"label": f"{PROJECT}={services.project}"}
    assert client.containers.list(all=True, filters=selector) == []
    assert client.networks.list(filters=selector) == []
    assert client.volumes.list(filters=selector) == []
    assert services.ps() == []
