"""Swarm: the stack file made from the shop's Compose file, and a real single-node Swarm on the engine.

The stack-file tests need nothing. The engine tests skip with a reason where no Docker engine
answers; where one answers and CI=true, anything missing (the docker command line, the lab images,
an engine that refuses Swarm) is a failure, not a skip. They deploy their own stack
(``labkit-swarm-test``) and leave the engine's Swarm as they found it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from labkit import Stack
from labkit.errors import StackError
from labkit.runtime import composefile, docker_engine_version, images, swarm
from labkit.teaching.exercises import check

from support import require

TEST_STACK = "labkit-swarm-test"
APPS = ("users", "products", "orders", "gateway")


@pytest.fixture
def compose() -> dict[str, Any]:
    return composefile.read(Stack("services"))


# -- the stack file -------------------------------------------------------------------------------


def test_the_stack_file_has_what_stack_deploy_needs(compose: dict[str, Any]) -> None:
    data = swarm.stack_file(compose, replicas={"products": 3}).data
    assert data["version"] == "3.8"
    assert list(data["services"]) == ["db", "users", "products", "orders", "gateway"]
    for name, spec in data["services"].items():
        assert spec["image"], name
        for key in (
            "build",
            "ports",
            "depends_on",
            "pull_policy",
            "security_opt",
            "tmpfs",
            "container_name",
        ):
            assert key not in spec, (name, key)
        assert spec["deploy"]["replicas"] == (3 if name == "products" else 1)
        assert spec["deploy"]["restart_policy"]["condition"] == "any"
        assert spec["healthcheck"] == compose["services"][name]["healthcheck"]
    assert data["networks"] == {
        "backend": {"driver": "overlay", "attachable": True, "internal": True},
        "frontend": {"driver": "overlay", "attachable": True},
    }
    assert data["secrets"] == compose["secrets"] and data["volumes"] == {"dbdata": {}}


def test_apps_update_start_first_and_the_database_stop_first_on_one_node(
    compose: dict[str, Any],
) -> None:
    services = swarm.stack_file(compose).data["services"]
    for name in APPS:
        update = services[name]["deploy"]["update_config"]
        assert update["parallelism"] == 1 and update["order"] == "start-first"
        assert update["failure_action"] == "rollback"
        assert check("05-swarm-deploy", {"replicas": 3, "update_config": update}).passed
        assert {"type": "tmpfs", "target": "/tmp"} in services[name]["volumes"]
        assert services[name]["cap_drop"] == ["ALL"] and services[name]["read_only"] is True
    db = services["db"]["deploy"]
    assert db["update_config"]["order"] == "stop-first"
    assert db["placement"] == {"constraints": ["node.role == manager"]}


def test_every_change_is_listed_with_a_reason(compose: dict[str, Any]) -> None:
    stack_file = swarm.stack_file(compose)
    changed = {(c.service, c.key) for c in stack_file.changes}
    for name in APPS:
        assert {
            (name, "build"),
            (name, "security_opt"),
            (name, "tmpfs"),
            (name, "deploy"),
        } <= changed
    assert {
        ("gateway", "ports"),
        ("gateway", "depends_on"),
        ("orders", "depends_on"),
        ("db", "pull_policy"),
        ("*", "version"),
        ("*", "networks"),
    } <= changed
    assert all(c.why for c in stack_file.changes)
    text = stack_file.explain()
    assert "ports (gateway): removed" in text and "127.0.0.1" in text
    assert "build (users, products, orders, gateway)" in text


def test_the_yaml_is_deterministic_without_anchors(compose: dict[str, Any]) -> None:
    import yaml

    text = swarm.stack_file(compose).yaml()
    assert text == swarm.stack_file(composefile.read(Stack("services"))).yaml()
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == swarm.stack_file(compose).data
    assert swarm.stack_file(compose).service("gateway").startswith("gateway:\n  image: ")
    with pytest.raises(StackError, match="has no service 'nope'"):
        swarm.stack_file(compose).service("nope")


def test_dnsrr_for_kernels_without_ipvs(compose: dict[str, Any]) -> None:
    stack_file = swarm.stack_file(compose, endpoint_mode="dnsrr")
    assert {s["deploy"]["endpoint_mode"] for s in stack_file.data["services"].values()} == {"dnsrr"}
    assert "endpoint_mode" not in swarm.stack_file(compose).data["services"]["db"]["deploy"]
    with pytest.raises(StackError, match="'vip' or 'dnsrr'"):
        swarm.stack_file(compose, endpoint_mode="round-robin")


def test_a_built_service_without_an_image_name_is_refused() -> None:
    with pytest.raises(StackError, match="add `image: <name>:<tag>`"):
        swarm.stack_file({"services": {"web": {"build": {"context": "/tmp"}}}})


def test_compose_configs_output_gives_the_same_rules() -> None:
    """`compose config` writes networks, ports, secrets and volumes in other forms; all are read."""
    try:
        config = Stack("services").config()
    except StackError as exc:
        require(False, f"no Compose here: {exc}")
        raise
    services = swarm.stack_file(config).data["services"]
    assert services["gateway"]["networks"] == ["frontend", "backend"] or sorted(
        services["gateway"]["networks"]
    ) == ["backend", "frontend"]
    assert services["orders"]["secrets"] == ["db_password"]
    assert all("ports" not in s and "depends_on" not in s for s in services.values())


# -- where Swarm cannot be used ---------------------------------------------------------------------


def test_the_local_runtime_skips_every_step_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    sw = swarm.Swarm(TEST_STACK)
    availability = sw.check()
    assert not availability.ok and "local runtime was chosen" in str(availability)
    shop = Stack("services")
    steps = [
        sw.init(),
        sw.node(),
        sw.deploy(shop),
        sw.ps(),
        sw.status(),
        sw.scale("products", 3),
        sw.spread("products"),
        sw.update("products", SHOP_RELEASE="2"),
        sw.remove(),
        sw.leave(),
    ]
    for step in steps:
        assert isinstance(step, swarm.Skipped), step
        assert str(step).startswith("skipped ") and "local runtime" in str(step)


def test_learners_sharing_an_engine_never_start_its_one_swarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "docker")
    monkeypatch.setenv("LABKIT_LEARNER", "ada")
    sw = swarm.Swarm(TEST_STACK)
    availability = sw.check()
    assert not availability.ok and "one per engine" in str(availability)
    step = sw.init()
    assert isinstance(step, swarm.Skipped) and "LABKIT_LEARNER=ada" in str(step)


def test_no_engine_says_start_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    availability = swarm.Swarm(TEST_STACK).check()
    assert not availability.ok and "no Docker engine answers" in availability.reason
    assert isinstance(swarm.Swarm(TEST_STACK).init(), swarm.Skipped)


def test_a_wrong_deploy_section_gets_a_specific_hint() -> None:
    good = {"parallelism": 1, "order": "start-first", "failure_action": "rollback"}
    cases = [
        ({"replicas": 3, "update_config": {**good, "order": "stop-first"}}, "start-first"),
        ({"replicas": 3, "update_config": {**good, "failure_action": "pause"}}, "'rollback'"),
        ({"replicas": 3, "update_config": {**good, "parallelism": 3}}, "one at a time"),
        ({"replicas": "3", "update_config": good}, "a number"),
        ({"deploy": {"replicas": 3, "update_config": good}}, "without the 'deploy' key"),
        ({"replicas": 3}, "update_config"),
    ]
    for answer, hint in cases:
        result = check("05-swarm-deploy", answer)
        assert not result.passed and hint in result.message, (answer, result.message)


# -- a real Swarm -----------------------------------------------------------------------------------


def _client() -> Any:
    import docker

    return docker.from_env()


@pytest.mark.docker
def test_leave_keeps_a_swarm_the_kit_did_not_start() -> None:
    require(docker_engine_version() is not None, "no Docker engine answers")
    client = _client()
    require(
        (client.info().get("Swarm") or {}).get("LocalNodeState") == "inactive",
        "the engine is in a Swarm already; this test starts one of its own",
    )
    had_gwbridge = bool(client.networks.list(names=["docker_gwbridge"]))
    client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        sw = swarm.Swarm(TEST_STACK)
        assert "already a Swarm manager" in sw.check().reason
        assert sw.init() is sw and sw.started_here is False
        assert "stays on" in str(sw.leave())
        assert (client.info().get("Swarm") or {}).get("LocalNodeState") == "active"
    finally:
        client.swarm.leave(force=True)
        if not had_gwbridge:
            swarm.Swarm(TEST_STACK)._remove_gwbridge(client)
        assert bool(client.networks.list(names=["docker_gwbridge"])) == had_gwbridge


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[swarm.Swarm]:
    """A single-node Swarm with the test stack deployed; removed and left as found afterwards."""
    require(
        docker_engine_version() is not None,
        "no Docker engine answers: start Docker to run the Swarm tests",
    )
    require(shutil.which("docker") is not None, "the docker command line is not installed")
    if images.missing():
        require(
            os.geteuid() == 0 and shutil.which("debootstrap") is not None,
            "the lab images are not built and cannot be here: run `labkit images build` "
            "as root with debootstrap installed (apt-get install -y debootstrap)",
        )
        images.build(progress=None)
    before = (_client().info().get("Swarm") or {}).get("LocalNodeState")
    had_gwbridge = bool(_client().networks.list(names=["docker_gwbridge"]))
    sw = swarm.Swarm(TEST_STACK)
    availability = sw.check()
    require(availability.ok, f"Swarm cannot be used here: {availability.reason}")
    started = sw.init()
    require(not isinstance(started, swarm.Skipped), str(started))
    try:
        sw.deploy(Stack("services"), timeout=180)
        yield sw
    finally:
        sw.remove()
        sw.leave()
        after = (_client().info().get("Swarm") or {}).get("LocalNodeState")
        assert after == before, f"the Swarm was {before} before the tests and is {after} now"
        if before == "inactive" and not had_gwbridge:
            assert not _client().networks.list(names=["docker_gwbridge"])


@pytest.mark.docker
def test_deploy_converges_with_every_task_healthy(engine: swarm.Swarm) -> None:
    rows = engine.ps()
    assert not isinstance(rows, swarm.Skipped)
    assert {r["service"]: (r["running"], r["wanted"]) for r in rows} == {
        name: (1, 1) for name in ("db", *APPS)
    }
    mode = "vip" if engine.virtual_ips_work() else "dnsrr"
    assert {engine.endpoint_mode(name) for name in APPS} == {mode}
    client = _client()
    for name in APPS:  # published nowhere: the kit publishes only on 127.0.0.1
        attrs = client.api.inspect_service(f"{TEST_STACK}_{name}")
        assert not (attrs.get("Endpoint") or {}).get("Ports")


@pytest.mark.docker
def test_three_replicas_share_the_requests(engine: swarm.Swarm) -> None:
    assert "products  3/3" in str(engine.scale("products", 3))
    spread = engine.spread("products", "/api/products", via="gateway")
    assert isinstance(spread, swarm.Spread)
    assert len(spread.task_ips) == 3 and len(spread.replicas) == 3
    assert set(spread.hostnames) == set(spread.replicas)
    assert sorted(spread.hostnames.count(h) for h in set(spread.hostnames)) == [2, 2, 2]
    assert not _client().containers.list(all=True, filters={"label": swarm.PROBE})


@pytest.mark.docker
def test_a_rolling_update_replaces_tasks_one_at_a_time(engine: swarm.Swarm) -> None:
    engine.scale("products", 3)
    rollout = engine.update("products", SHOP_RELEASE="test")
    assert isinstance(rollout, swarm.Rollout)
    assert rollout.state == "completed" and rollout.replaced == 3
    assert rollout.min_serving >= 3 and rollout.max_starting <= 1
    assert rollout.steps[0] == (3, 0) and rollout.steps[-1] == (0, 3)
    with pytest.raises(StackError, match="already runs with SHOP_RELEASE=test"):
        engine.update("products", SHOP_RELEASE="test")


@pytest.mark.docker
def test_remove_leaves_nothing_of_the_stack(engine: swarm.Swarm) -> None:
    assert "removed" in str(engine.remove())
    client = _client()
    selector = {"label": f"{swarm.NAMESPACE}={TEST_STACK}"}
    assert client.services.list(filters=selector) == []
    assert client.api.containers(all=True, filters=selector) == []
    assert client.networks.list(filters=selector) == []
    assert client.volumes.list(filters=selector) == []
