"""`labkit stack up pipeline --wait` on the real engine: every service healthy, its webhooks real.

The registry's notification and Alertmanager's alert reach a receiver on this machine through the
Docker bridge gateway; Prometheus scrapes the web app, which counts visits in MariaDB.
Skips where no engine answers; fails under CI=true when the images cannot be built.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit import Receiver
from labkit.runtime.compose import PROJECT, Stack
from labkit.runtime.docker import container_reachable

from support import run_labkit

# Every character a shell, sed or YAML would treat specially: the stack must take it literally.
TOKEN = "pipe|amp&back\\slash\"quote'$(touch /tmp/pwned)`touch /tmp/pwned`;s|.*|x|e"
SERVICES = {"registry", "db", "web", "prometheus", "alertmanager"}


@pytest.fixture(scope="module")
def pipeline(engine_images: None) -> Iterator[tuple[Stack, Receiver, dict[str, str]]]:
    with tempfile.TemporaryDirectory() as folder:
        rx = Receiver(  # the stack's token, given to the two sources that present it
            secrets={"registry": TOKEN, "alertmanager": TOKEN},
            for_containers=True,
            name=f"stack-{uuid.uuid4().hex[:8]}",
            db=str(Path(folder) / "deliveries.db"),
        ).start()
        token_file = Path(folder) / "token"
        token_file.write_text(TOKEN)
        token_file.chmod(0o600)  # private, as a secret should be: the stack still reads it
        Path(folder).chmod(0o700)
        env = {
            "LABKIT_REGISTRY_HOOK": container_reachable(rx.hook_url("registry")),
            "LABKIT_ALERTS_HOOK": container_reachable(rx.hook_url("alertmanager")),
            "LABKIT_WEBHOOK_TOKEN_FILE": str(token_file),
        }
        stack = Stack("pipeline", env=env)
        try:
            stack.down()
            done = run_labkit("stack", "up", "pipeline", "--wait", env=env, timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            yield stack, rx, env
        finally:
            stack.down()
            rx.stop()


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_every_service_is_healthy_and_published_on_loopback_only(pipeline: Any) -> None:
    stack, _, _ = pipeline
    rows = stack.ps()
    assert {r["service"] for r in rows} == SERVICES
    assert all(r["state"] == "running" and r["health"] == "healthy" for r in rows), rows
    import docker

    client = docker.from_env()
    try:
        for summary in client.api.containers(filters={"label": f"{PROJECT}={stack.project}"}):
            attrs = client.api.inspect_container(summary["Id"])
            for bindings in (attrs["NetworkSettings"].get("Ports") or {}).values():
                assert all(b["HostIp"] == "127.0.0.1" for b in bindings or []), attrs["Name"]
            assert not any("docker.sock" in str(m.get("Source", "")) for m in attrs["Mounts"])
            env = "\n".join(attrs["Config"].get("Env") or [])
            assert TOKEN not in env  # the token is a secret file, never in the environment
    finally:
        client.close()


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_web_counts_visits_in_mariadb(pipeline: Any) -> None:
    stack, _, _ = pipeline
    first = httpx.get(stack.url("web") + "/visits", timeout=10).json()
    second = httpx.get(stack.url("web") + "/visits", timeout=10).json()
    assert first["database"].startswith("MariaDB ")
    assert second["visits"] == first["visits"] + 1


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_prometheus_scrapes_web_and_knows_the_alert_rule(pipeline: Any) -> None:
    stack, _, _ = pipeline
    prometheus = stack.url("prometheus")
    result: list[Any] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = httpx.get(
            prometheus + "/api/v1/query", params={"query": 'up{job="web"}'}, timeout=5
        ).json()["data"]["result"]
        if result and result[0]["value"][1] == "1":
            break
        time.sleep(0.5)
    assert result and result[0]["value"][1] == "1", result
    rules = httpx.get(prometheus + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert [r["name"] for g in rules for r in g["rules"]] == ["WebDown"]


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_a_push_to_the_registry_sends_its_notification(pipeline: Any) -> None:
    import docker

    stack, rx, _ = pipeline
    repository = f"{stack.url('registry').removeprefix('http://')}/base"
    client = docker.from_env()
    try:
        client.api.tag("labkit/base:bookworm", repository, "lesson")
        for chunk in client.api.push(repository, "lesson", stream=True, decode=True):
            assert "error" not in chunk, chunk
        client.api.remove_image(f"{repository}:lesson")
    finally:
        client.close()
    pushed = [d for d in rx.wait_for(source="registry", timeout=30) if d.event == "push"]
    assert pushed and pushed[0].verified
    assert pushed[0].payload["events"][0]["target"]["tag"] == "lesson"


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_the_token_is_taken_literally_and_dropped_with_root(pipeline: Any) -> None:
    import docker

    stack, _, _ = pipeline
    client = docker.from_env()
    try:
        for service in ("registry", "alertmanager"):
            (summary,) = client.api.containers(
                filters={
                    "label": [f"{PROJECT}={stack.project}", f"com.docker.compose.service={service}"]
                }
            )
            container = client.containers.get(summary["Id"])
            status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            assert fields["Uid"].split()[0] != "0", service  # the service itself is not root
            assert int(fields["CapEff"].strip(), 16) == 0, service  # and has no capability
            assert container.exec_run(["cat", "/tmp/labkit/webhook_token"]).output.decode() == TOKEN
            assert container.exec_run(["test", "-e", "/tmp/pwned"]).exit_code == 1, service
    finally:
        client.close()


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_a_dead_web_brings_alertmanager_s_alert(pipeline: Any) -> None:
    stack, rx, env = pipeline
    mark = rx.log.count()
    import docker

    client = docker.from_env()
    try:
        for container in client.containers.list(
            filters={"label": [f"{PROJECT}={stack.project}", "com.docker.compose.service=web"]}
        ):
            container.kill()
    finally:
        client.close()
    alert = rx.wait_for(source="alertmanager", since=mark, timeout=60)[0]
    assert alert.verified and alert.payload["status"] == "firing"
    assert alert.payload["alerts"][0]["labels"]["alertname"] == "WebDown"
    # `up` again brings web back (Compose starts the stopped container), and the alert resolves.
    # Counted before `up`: Prometheus can scrape web again before its healthcheck passes.
    after = rx.log.count()
    stack.env = env
    stack.up(services=["web"], timeout=120)
    resolved = rx.wait_for(source="alertmanager", since=after, timeout=60)[0]
    assert resolved.payload["status"] == "resolved"


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_down_removes_every_container_network_and_volume(pipeline: Any) -> None:
    import docker

    stack, _, _ = pipeline
    stack.down()
    client = docker.from_env()
    try:
        selector = {"label": f"{PROJECT}={stack.project}"}
        assert client.containers.list(all=True, filters=selector) == []
        assert client.networks.list(filters=selector) == []
        assert client.volumes.list(filters=selector) == []
    finally:
        client.close()
    assert os.path.isdir(stack.folder)
