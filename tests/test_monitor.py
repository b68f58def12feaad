"""Docker engine events reach the receiver as webhooks (real engine, real containers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from labkit import Receiver
from labkit.runtime import images
from labkit.runtime.monitor import EngineWatch

pytestmark = pytest.mark.docker  # every test here runs containers on the real engine


@pytest.fixture
def base_image(engine_images: None) -> str:
    return images.RECIPES[0].tag


@pytest.fixture
def container_factory() -> Iterator[Any]:
    import docker

    client = docker.from_env()
    made: list[Any] = []

    def run(image: str, command: list[str], project: str) -> Any:
        c = client.containers.run(
            image,
            command,
            detach=True,
            name=f"{project}-web-1",
            labels={"com.docker.compose.project": project, "com.docker.compose.service": "web"},
        )
        made.append(c)
        return c

    try:
        yield run
    finally:
        for c in made:
            c.remove(force=True)
        client.close()


def test_container_start_and_death_arrive_as_engine_webhooks(
    make_receiver: Any, base_image: str, container_factory: Any
) -> None:
    rx: Receiver = make_receiver("s3cret")
    project = f"lkmon{uuid.uuid4().hex[:6]}"
    with EngineWatch(rx, project=project) as watch:
        container_factory(base_image, ["python3", "-c", "import sys; sys.exit(3)"], project)
        got = rx.wait_for(2, timeout=30)
    assert [d.event for d in got] == ["start", "die"], [d.summary() for d in got]
    assert all(d.source == "engine" and d.verified and d.status == "accepted" for d in got)
    die = json.loads(got[1].body)
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert die["Actor"]["Attributes"]["com.docker.compose.project"] == project
    assert not watch.running and len(watch.sent) == 2 and all(o.ok for o in watch.sent)


def test_other_projects_are_not_forwarded(
    make_receiver: Any, base_image: str, container_factory: Any
) -> None:
    rx: Receiver = make_receiver("s3cret")
    mine, other = (f"lkmon{uuid.uuid4().hex[:6]}" for _ in range(2))
    with EngineWatch(rx, secret=rx.token("engine"), project=mine):
        container_factory(base_image, ["true"], other)
        container_factory(base_image, ["true"], mine)
        got = rx.wait_for(2, timeout=30)
    names = {json.loads(d.body)["Actor"]["Attributes"]["name"] for d in got}
    assert names == {f"{mine}-web-1"}


def test_a_container_reaches_the_kernel_receiver_through_the_bridge(
    make_receiver: Any, base_image: str
) -> None:
    import docker

    from labkit import ReceiverError

    with pytest.raises(ReceiverError, match="must check its senders"):
        make_receiver(None, for_containers=True)  # no door opens to containers without a key
    rx: Receiver = make_receiver("s3cret", for_containers=True)
    url = rx.container_url("github")
    assert url.startswith("http://host.docker.internal:")
    script = (
        "import hashlib, hmac, urllib.request as u; "
        "sig = 'sha256=' + hmac.new(b's3cret', b'{}', hashlib.sha256).hexdigest(); "
        f"r = u.Request({url!r}, data=b'{{}}', headers={{"
        "'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': 'from-a-container', "
        "'X-Hub-Signature-256': sig, 'Content-Type': 'application/json'}); "
        "print(u.urlopen(r).status)"
    )
    client = docker.from_env()
    try:
        out = client.containers.run(
            base_image,
            ["python3", "-c", script],
            remove=True,
            extra_hosts={"host.docker.internal": "host-gateway"},
        )
    finally:
        client.close()
    assert out.strip() == b"202"
    arrived = rx.wait_for(1)[0]
    assert arrived.id == "from-a-container" and arrived.verified
    # Only the loopback and the bridge gateway listen: nothing on all interfaces.
    assert rx.host == "127.0.0.1" and rx.container_host not in (None, "0.0.0.0")


def test_without_for_containers_the_error_says_how(make_receiver: Any) -> None:
    from labkit import ReceiverError

    rx: Receiver = make_receiver(None)
    with pytest.raises(ReceiverError, match="for_containers=True"):
        rx.container_url("github")
