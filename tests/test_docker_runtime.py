"""The Docker runtime against the real engine: build, ship to a registry container, deploy, roll back."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit import Receiver
from labkit.runtime.base import WebhookTargets
from labkit.runtime.docker import DockerRuntime

APP = Path(__file__).resolve().parent.parent / "compose" / "pipeline" / "app"
SECRET = "s3cret"


@pytest.fixture
def runtime(engine_images: None, make_receiver: Any) -> Iterator[tuple[DockerRuntime, Receiver]]:
    rx: Receiver = make_receiver(SECRET, for_containers=True)
    rt = DockerRuntime("test-docker").start()
    try:
        rt.send_webhooks_to(WebhookTargets.of(rx, token=SECRET))
        yield rt, rx
    finally:
        rt.stop()


def _app(tmp_path: Path, *, healthy: bool = True, greeting: str = "hello") -> Path:
    target = tmp_path / f"app-{greeting}-{healthy}"
    shutil.copytree(APP, target)
    source = (target / "app.py").read_text()
    source = source.replace('GREETING = "Hello from the lab\'s web app!"', f"GREETING = {greeting!r}")
    if not healthy:
        source = source.replace("HEALTHY = True", "HEALTHY = False")
    (target / "app.py").write_text(source)
    return target


def test_build_ship_deploy_and_a_registry_webhook(runtime: Any, tmp_path: Path) -> None:
    rt, rx = runtime
    lines: list[str] = []
    built = rt.build(_app(tmp_path, greeting="v1"), "a" * 40, log=lines.append)
    assert built.tag == "aaaaaaa" and built.digest.startswith("sha256:")
    shipped = rt.ship(built, log=lines.append)
    assert shipped.shipped and shipped.digest.startswith("sha256:")
    assert shipped.location == f"127.0.0.1:{rt.registry_port}/web:aaaaaaa"
    # The registry container itself notified the kernel's receiver about the manifest push.
    pushed = [d for d in rx.wait_for(1, timeout=30) if d.source == "registry"]
    assert pushed and pushed[0].event == "push" and pushed[0].verified
    assert pushed[0].payload["events"][0]["target"]["tag"] == "aaaaaaa"
    result = rt.deploy(shipped, health_timeout=30, log=lines.append)
    assert result.ok, result.reason
    answer = httpx.get(rt.url("web") + "/", timeout=5).json()
    assert answer == {"message": "v1", "version": "aaaaaaa"}
    assert rt.url("web").startswith("http://127.0.0.1:")


def test_rollout_has_no_failed_requests_and_a_bad_version_rolls_back(
        runtime: Any, tmp_path: Path) -> None:
    rt, _ = runtime
    first = rt.ship(rt.build(_app(tmp_path, greeting="one"), "1" * 40))
    assert rt.deploy(first, health_timeout=30).ok
    url = rt.url("web") + "/"
    failures: list[str] = []
    answers: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    r = client.get(url)
                    if r.status_code != 200:
                        failures.append(str(r.status_code))
                    else:
                        answers.append(r.json()["message"])
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)

    loop = threading.Thread(target=hammer)
    loop.start()
    try:
        second = rt.ship(rt.build(_app(tmp_path, greeting="two"), "2" * 40))
        assert rt.deploy(second, health_timeout=30).ok
        broken = rt.ship(rt.build(_app(tmp_path, greeting="bad", healthy=False), "3" * 40))
        result = rt.deploy(broken, health_timeout=4)
    finally:
        stop.set()
        loop.join()
    assert failures == [], failures[:5]
    assert {"one", "two"} <= set(answers) and "bad" not in answers
    assert result.rolled_back and result.serving is not None and result.serving.tag == "2222222"
    assert httpx.get(url, timeout=5).json()["message"] == "two"


def test_a_broken_build_raises_and_ships_nothing(runtime: Any, tmp_path: Path) -> None:
    from labkit.runtime.base import BuildError

    rt, _ = runtime
    source = _app(tmp_path, greeting="syntax")
    (source / "app.py").write_text("def broken(:\n")
    with pytest.raises(BuildError, match="failed"):
        rt.build(source, "4" * 40)


def test_stop_leaves_nothing_running(engine_images: None) -> None:
    import docker

    rt = DockerRuntime("test-docker-stop").start()
    rt.stop()
    client = docker.from_env()
    try:
        left = client.containers.list(all=True, filters={"label": "labkit.runtime=test-docker-stop"})
        assert left == []
        assert [n for n in client.networks.list(names=["labkit-test-docker-stop"])
                if n.name == "labkit-test-docker-stop"] == []
    finally:
        client.close()
