"""The Docker runtime against the real engine: build, ship, deploy, roll back, and real monitoring."""

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

pytestmark = pytest.mark.docker  # every test here runs containers on the real engine


@pytest.fixture
def runtime(engine_images: None, make_receiver: Any) -> Iterator[tuple[DockerRuntime, Receiver]]:
    rx: Receiver = make_receiver(SECRET, for_containers=True)
    rt = DockerRuntime("test-docker").start()
    try:
        rt.send_webhooks_to(WebhookTargets.of(rx))  # presents the token derived from SECRET
        yield rt, rx
    finally:
        rt.stop()


def _app(tmp_path: Path, *, healthy: bool = True, greeting: str = "hello") -> Path:
    target = tmp_path / f"app-{greeting}-{healthy}"
    shutil.copytree(APP, target)
    source = (target / "app.py").read_text()
    source = source.replace(
        'GREETING = "Hello from the lab\'s web app!"', f"GREETING = {greeting!r}"
    )
    if not healthy:
        source = source.replace("HEALTHY = True", "HEALTHY = False")
    (target / "app.py").write_text(source)
    return target


def _first_engine_event(rx: Receiver, action: str, *, since: int) -> Any:
    """The first forwarded engine event ``action`` after ``since``: waits for one more delivery
    at a time (the new container's start and health come before the old one's die)."""
    count = 1
    while True:
        got = [
            d
            for d in rx.wait_for(count, source="engine", since=since, timeout=30)
            if d.event == action
        ]
        if got:
            return got[0]
        count += 1


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
    runtime: Any, tmp_path: Path
) -> None:
    rt, rx = runtime
    first = rt.ship(rt.build(_app(tmp_path, greeting="one"), "1" * 40))
    assert rt.deploy(first, health_timeout=30).ok
    mark = rx.log.count()
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
        replaced = rt.deploy(second, health_timeout=30)
        assert replaced.ok
        broken = rt.ship(rt.build(_app(tmp_path, greeting="bad", healthy=False), "3" * 40))
        result = rt.deploy(broken, health_timeout=4)
    finally:
        stop.set()
        loop.join()
    assert failures == [], failures[:5]
    # The old version was stopped as `docker stop` does: SIGTERM, and it exited by itself (0 or
    # 143), not SIGKILL's 137; the engine's own `die` event, forwarded as a webhook, says the same.
    assert replaced.previous_exit_code in (0, 143), replaced.previous_exit_code
    died = _first_engine_event(rx, "die", since=mark)
    assert died.payload["Actor"]["Attributes"]["exitCode"] in ("0", "143"), died.payload
    assert {"one", "two"} <= set(answers) and "bad" not in answers
    assert result.rolled_back and result.serving is not None and result.serving.tag == "2222222"
    assert httpx.get(url, timeout=5).json()["message"] == "two"


def test_a_broken_build_raises_and_ships_nothing(runtime: Any, tmp_path: Path) -> None:
    from labkit.errors import BuildError

    rt, _ = runtime
    source = _app(tmp_path, greeting="syntax")
    (source / "app.py").write_text("def broken(:\n")
    with pytest.raises(BuildError, match="failed"):
        rt.build(source, "4" * 40)


def test_a_crash_brings_the_engine_event_and_a_real_alertmanager_alert(
    runtime: Any, tmp_path: Path
) -> None:
    rt, rx = runtime
    shipped = rt.ship(rt.build(_app(tmp_path, greeting="crash"), "5" * 40))
    assert rt.deploy(shipped, health_timeout=30).ok
    mark = rx.log.count()
    name = rt.crash("web")
    alert = rx.wait_for(source="alertmanager", since=mark, timeout=60)[0]
    # Sent by the stack's Alertmanager (Prometheus' rule WebDown), not by labkit itself.
    assert alert.verified and alert.payload["status"] == "firing"
    assert alert.payload["receiver"] == "labkit" and alert.payload["version"] == "4"
    labels = alert.payload["alerts"][0]["labels"]
    assert labels["alertname"] == "WebDown" and labels["job"] == "web"
    assert labels["instance"] == f"{name}:8000" and labels["version"] == "5555555"
    # The engine's kill event can be forwarded before its die event: wait for the die itself.
    died = _first_engine_event(rx, "die", since=mark)
    assert died.payload["Actor"]["Attributes"]["exitCode"] == "137", died.payload
    # The next version serves again and the alert resolves.
    fixed = rt.ship(rt.build(_app(tmp_path, greeting="fixed"), "6" * 40))
    after = rx.log.count()  # before the deploy: the alert can resolve while it runs
    assert rt.deploy(fixed, health_timeout=30).ok
    resolved = rx.wait_for(source="alertmanager", since=after, timeout=60)[0]
    assert resolved.payload["status"] == "resolved"


def test_prometheus_scrapes_only_the_serving_version(runtime: Any, tmp_path: Path) -> None:
    rt, _ = runtime
    shipped = rt.ship(rt.build(_app(tmp_path, greeting="scraped"), "7" * 40))
    assert rt.deploy(shipped, health_timeout=30).ok
    prometheus = rt.monitoring_urls()["prometheus"]
    assert prometheus.startswith("http://127.0.0.1:")
    found: list[Any] = []
    for _ in range(100):  # Prometheus re-reads the target file and scrapes every second
        query = httpx.get(
            prometheus + "/api/v1/query", params={"query": 'up{job="web"}'}, timeout=5
        ).json()
        found = query["data"]["result"]
        if found and found[0]["value"][1] == "1":
            break
        threading.Event().wait(0.2)
    assert [r["metric"]["version"] for r in found] == ["7777777"]
    assert found[0]["value"][1] == "1"


def test_a_dead_registry_is_a_clear_ship_error_and_shipping_again_works(
    runtime: Any, tmp_path: Path
) -> None:
    from labkit.errors import ShipError

    rt, rx = runtime
    built = rt.build(_app(tmp_path, greeting="registry-down"), "8" * 40)
    registry = [r for r in rt.stack.ps() if r["service"] == "registry"][0]["container"]
    rt.client.containers.get(registry).kill()
    tries: list[str] = []
    with pytest.raises(ShipError, match="registry"):
        rt.ship(built, log=tries.append, attempts=2)
    assert any("Trying again in 1 s" in line for line in tries), tries
    # Bring the registry back (what `docker start` or `compose up` would do), and ship again.
    rt.stack.up(services=["registry"], build=False, timeout=60, progress=None)
    mark = rx.log.count()
    shipped = rt.ship(built)
    assert shipped.shipped
    pushed = [
        d for d in rx.wait_for(source="registry", since=mark, timeout=30) if d.event == "push"
    ]
    assert pushed and pushed[0].payload["events"][0]["target"]["tag"] == "8888888"


def test_stop_leaves_nothing_running(engine_images: None) -> None:
    import docker

    client = docker.from_env()
    volumes_before = {v.name for v in client.volumes.list()}
    rt = DockerRuntime("test-docker-stop").start()
    assert {r["service"] for r in rt.stack.ps()} == {"registry", "prometheus", "alertmanager"}
    # As every pipeline does: the registry and Alertmanager start again with new settings.
    rt.send_webhooks_to(
        WebhookTargets(
            registry="http://127.0.0.1:9/hooks/registry",
            alertmanager="http://127.0.0.1:9/hooks/alertmanager",
            token="t",
        )
    )
    rt.stop()
    try:
        # Not even an anonymous volume (an image's VOLUME) is left behind.
        assert {v.name for v in client.volumes.list()} - volumes_before == set()
        for label in (
            "labkit.runtime=test-docker-stop",
            "com.docker.compose.project=labkit-test-docker-stop",
        ):
            assert client.containers.list(all=True, filters={"label": label}) == []
            assert client.volumes.list(filters={"label": label}) == []
        assert [
            n for n in client.networks.list() if n.name.startswith("labkit-test-docker-stop")
        ] == []
    finally:
        client.close()
