"""The local runtime: content-addressed builds, a store that notifies, zero-downtime deploys, rollback,
monitoring as webhooks, and no process left behind (even when the kernel is killed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from labkit import Receiver
from labkit.errors import BuildError, DeployError, RuntimeUnavailable
from labkit.pipeline.gitsource import APP_SEED
from labkit.runtime import DOCKER, LOCAL, Choice, get
from labkit.runtime.base import WebhookTargets
from labkit.runtime.local import LocalRuntime, _alive, reap_orphans
from labkit.runtime.processes import pids_dir

from support import poll

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the pipeline's web app, optionally changed: ``app(greeting=..., healthy=...)``."""
    made = 0

    def make(greeting: str | None = None, *, healthy: bool = True, broken: bool = False) -> Path:
        nonlocal made
        made += 1
        folder = tmp_path / f"app{made}"
        shutil.copytree(APP_SEED, folder, ignore=shutil.ignore_patterns("__pycache__"))
        code = (folder / "app.py").read_text()
        if greeting is not None:
            code = code.replace("Hello from the lab's web app!", greeting)
        if not healthy:
            code = code.replace("HEALTHY = True", "HEALTHY = False")
        if broken:
            code += "\ndef broken(:\n"
        (folder / "app.py").write_text(code)
        return folder

    return make


@pytest.fixture
def runtime(rx: Receiver) -> Iterator[LocalRuntime]:
    rt = LocalRuntime("test", probe_interval=0.1, alert_after=0.3, stop_timeout=3).start()
    rt.send_webhooks_to(WebhookTargets.of(rx))
    try:
        yield rt
    finally:
        pids = [p.pid for p in rt.processes()]
        rt.stop()
        assert not [p for p in pids if _alive(p)], "stop() left app processes running"
        assert not list(pids_dir().glob("*.json")), "stop() left pidfiles behind"


def commit_id(n: int) -> str:
    return f"{n:07x}" + "c" * 33


def ship(rt: LocalRuntime, folder: Path, n: int) -> object:
    return rt.ship(rt.build(folder, commit_id(n)))


def version(url: str) -> str:
    return str(httpx.get(url + "/version", trust_env=False, timeout=5).json()["version"])


# --- build and ship ----------------------------------------------------------------------


def test_build_is_content_addressed_and_logs_its_steps(
    runtime: LocalRuntime, app: Callable[..., Path]
) -> None:
    lines: list[str] = []
    first = runtime.build(app(), commit_id(1), log=lines.append)
    again = runtime.build(app(), commit_id(1))
    other = runtime.build(app("Changed"), commit_id(1))
    assert first.tag == commit_id(1)[:7] and first.ref == f"web:{commit_id(1)[:7]}"
    assert first.digest.startswith("sha256:") and len(first.digest) == 71
    assert first.digest == again.digest, "same files and commit, same digest"
    assert first.digest != other.digest
    assert any("compileall" in line for line in lines) and lines[-1].startswith("#4 built web:")


def test_a_module_that_does_not_compile_fails_the_build_with_the_error_in_the_log(
    runtime: LocalRuntime, app: Callable[..., Path]
) -> None:
    lines: list[str] = []
    with pytest.raises(BuildError, match="does not compile"):
        runtime.build(app(broken=True), commit_id(2), log=lines.append)
    assert any("SyntaxError" in line for line in lines)
    assert not any(str(app()) in line for line in lines), "log shows paths relative to the app"


def test_ship_stores_blobs_once_and_the_registry_notifies_the_receiver(
    runtime: LocalRuntime, app: Callable[..., Path], rx: Receiver
) -> None:
    folder = app()
    shipped = runtime.ship(runtime.build(folder, commit_id(3)))
    assert shipped.shipped and "@sha256:" in shipped.location
    assert runtime.store.tags("web") == [commit_id(3)[:7]]
    runtime.notifier.flush()
    rx.idle()
    first = [d for d in reversed(rx.deliveries(source="registry"))]
    assert [d.status for d in first] == ["accepted"] * 3 and all(d.verified for d in first)
    targets = [d.payload["events"][0]["target"] for d in first]
    assert [t["mediaType"] for t in targets] == [
        "application/octet-stream",
        "application/octet-stream",
        "application/vnd.oci.image.manifest.v1+json",
    ]
    assert targets[2]["tag"] == commit_id(3)[:7] and targets[2]["repository"] == "web"
    assert first[0].headers["content-type"] == "application/vnd.docker.distribution.events.v1+json"

    # Another commit with the same files: the layer is already stored, so only the config and
    # the manifest are pushed (a registry skips blobs it has).
    runtime.ship(runtime.build(folder, commit_id(4)))
    runtime.notifier.flush()
    rx.idle()
    assert len(rx.deliveries(source="registry")) == 5


# --- deploy ------------------------------------------------------------------------------


def test_front_answers_503_until_the_first_deploy(runtime: LocalRuntime) -> None:
    response = httpx.get(runtime.url() + "/", trust_env=False)
    assert response.status_code == 503 and "No version of web" in response.json()["detail"]


def test_deploy_switches_with_zero_failed_requests_and_stops_the_old_process(
    runtime: LocalRuntime, app: Callable[..., Path]
) -> None:
    one = ship(runtime, app("one"), 1)
    first = runtime.deploy(one)
    assert first.ok and first.previous is None
    url = runtime.url()
    assert url == first.url and version(url) == commit_id(1)[:7]
    old_pid = runtime.processes()[0].pid

    failures: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(trust_env=False, timeout=5) as client:
            while not stop.is_set():
                try:
                    response = client.get(url + "/")
                    if response.status_code != 200:
                        failures.append(f"HTTP {response.status_code}")
                    else:
                        answered.append(response.json()["message"])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        second = runtime.deploy(ship(runtime, app("two"), 2))
        # Keep hammering until the new version has answered a few requests itself.
        served = len(answered)
        poll(
            lambda: len(answered) >= served + 20,
            timeout=30,
            what="requests answered after the switch",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert second.ok and second.previous is not None and second.previous.tag == commit_id(1)[:7]
    # Stopped as `docker stop` does: SIGTERM, and uvicorn exits by itself (0), never a SIGKILL.
    assert second.previous_exit_code in (0, 143), second.previous_exit_code
    assert failures == []
    assert "one" in answered and "two" in answered and answered[-1] == "two"
    assert runtime.url() == url, "the address stays the same across deploys"
    assert runtime.current() == second.attempted
    assert [p.artifact.tag for p in runtime.processes()] == [commit_id(2)[:7]]
    poll(lambda: not _alive(old_pid), timeout=5, what="the old process to exit")


def test_an_unhealthy_version_is_rolled_back_and_the_old_one_keeps_serving(
    runtime: LocalRuntime, app: Callable[..., Path], rx: Receiver
) -> None:
    good = ship(runtime, app(), 1)
    assert runtime.deploy(good).ok
    bad = ship(runtime, app(healthy=False), 2)
    lines: list[str] = []
    result = runtime.deploy(bad, health_timeout=1.5, log=lines.append)
    assert result.rolled_back and not result.ok
    assert result.serving == good and "HTTP 503" in result.reason
    assert f"{good.ref} keeps serving" in result.reason
    assert version(runtime.url()) == good.tag
    assert [p.artifact for p in runtime.processes()] == [good]
    assert any(line.startswith("rolled back") for line in lines)
    runtime.notifier.flush()
    rx.idle()
    actions = [d.event for d in reversed(rx.deliveries(source="engine"))]
    assert "health_status: unhealthy" in actions and actions.count("start") == 2


def test_a_version_that_crashes_at_start_is_rolled_back_at_once(
    runtime: LocalRuntime, app: Callable[..., Path]
) -> None:
    folder = app()
    (folder / "app.py").write_text("raise SystemExit('no database configured')\n")
    # "At once": the exit is seen as it happens, not after the health timeout, which is longer
    # than this test's own timeout (300 s): waiting for it would fail the test.
    result = runtime.deploy(ship(runtime, folder, 5), health_timeout=600)
    assert result.rolled_back
    assert "exited with code" in result.reason and result.serving is None
    assert "nothing was serving" in result.reason


def test_deploy_needs_a_shipped_artifact(runtime: LocalRuntime, app: Callable[..., Path]) -> None:
    built = runtime.build(app(), commit_id(6))
    with pytest.raises(DeployError, match="ship it first"):
        runtime.deploy(built)


# --- monitor -----------------------------------------------------------------------------


def test_a_crash_sends_an_engine_die_event_and_a_firing_then_resolved_alert(
    runtime: LocalRuntime, app: Callable[..., Path], rx: Receiver
) -> None:
    assert runtime.deploy(ship(runtime, app(), 1)).ok
    runtime.crash()

    def alerts() -> list[str]:
        return [str(d.event) for d in reversed(rx.deliveries(source="alertmanager"))]

    poll(lambda: alerts() == ["firing"], timeout=10, what="the firing alert")
    dies = [d for d in rx.deliveries(source="engine") if d.event == "die"]
    assert dies and dies[0].payload["Actor"]["Attributes"]["exitCode"] == "137"
    assert dies[0].payload["Actor"]["Attributes"]["org.labkit.runtime"] == "local"
    firing = rx.deliveries(source="alertmanager")[0].payload
    assert firing["alerts"][0]["labels"]["alertname"] == "WebDown"
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert runtime.deploy(ship(runtime, app("back"), 2)).ok
    poll(lambda: alerts() == ["firing", "resolved"], timeout=10, what="the resolved alert")
    resolved = rx.deliveries(source="alertmanager")[0].payload["alerts"][0]
    assert resolved["fingerprint"] == firing["alerts"][0]["fingerprint"]


# --- cleanup -----------------------------------------------------------------------------


def test_starting_a_runtime_of_the_same_name_stops_the_old_one(
    runtime: LocalRuntime, app: Callable[..., Path]
) -> None:
    assert runtime.deploy(ship(runtime, app(), 1)).ok
    pid = runtime.processes()[0].pid
    again = LocalRuntime("test").start()
    try:
        poll(lambda: not _alive(pid), timeout=5, what="the first runtime's process to stop")
        assert runtime.processes() == []
    finally:
        again.stop()


PARENT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from labkit.runtime.local import LocalRuntime
    rt = LocalRuntime("orphans").start()
    artifact = rt.ship(rt.build(Path(sys.argv[1]), "d" * 40))
    assert rt.deploy(artifact).ok
    print(json.dumps([p.pid for p in rt.processes()]), flush=True)
    time.sleep(120)
""")


def start_parent(folder: Path) -> tuple[subprocess.Popen[str], list[int]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(folder)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line, "the parent script did not deploy"
    return parent, json.loads(line)


def test_killing_the_kernel_with_sigkill_leaves_no_app_process(app: Callable[..., Path]) -> None:
    parent, children = start_parent(app())
    try:
        assert children and all(_alive(p) for p in children)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        poll(
            lambda: not any(_alive(p) for p in children),
            timeout=10,
            what="the app processes to notice their kernel died",
        )
    finally:
        parent.kill()
        parent.wait(10)
        for pid in children:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def _parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` as /proc says, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_the_next_start_reaps_what_a_killed_kernel_left(app: Callable[..., Path]) -> None:
    parent, children = start_parent(app())
    try:
        for pid in children:  # stopped processes cannot react to their lifeline closing
            os.kill(pid, signal.SIGSTOP)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        # Orphaned now (the kernel hands them to another parent when theirs exits); being
        # stopped, they cannot react to their lifeline closing, so they must still be there.
        poll(
            lambda: all(_parent_pid(p) not in (None, parent.pid) for p in children),
            timeout=5,
            what="the orphans to be handed to another parent",
        )
        assert all(_alive(p) for p in children), "a stopped orphan survives its parent"
        assert sorted(int(p.stem) for p in pids_dir().glob("*.json")) == sorted(children)
        rt = LocalRuntime("next-session").start()  # reaps on start
        rt.stop()
        poll(lambda: not any(_alive(p) for p in children), timeout=10, what="the orphans reaped")
        assert not list(pids_dir().glob("*.json"))
    finally:
        parent.kill()
        parent.wait(10)
        for pid in children:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_reaping_leaves_the_processes_of_a_living_kernel_alone(
    runtime: LocalRuntime, app: Callable[..., Path]
) -> None:
    assert runtime.deploy(ship(runtime, app(), 1)).ok
    assert reap_orphans() == []
    assert len(runtime.processes()) == 1


# --- choosing the runtime ------------------------------------------------------------------


def test_get_returns_the_local_runtime_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    rt = get("choice-test")
    try:
        assert isinstance(rt, LocalRuntime) and rt.name == LOCAL
        assert rt.reason == "LABKIT_RUNTIME=local is set"
        assert "stand-in for Docker" in rt.describe()
    finally:
        rt.stop()


def test_docker_chosen_but_not_loadable_falls_back_to_local_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import labkit.runtime as runtimes

    monkeypatch.setitem(runtimes.IMPLEMENTATIONS, DOCKER, ("labkit.runtime.no_such", "X"))
    rt = get("choice-test", Choice(DOCKER, "Docker engine 99 answers"))
    try:
        assert rt.name == LOCAL
        assert rt.reason == (
            "Docker engine 99 answers, but labkit's Docker runtime is not usable "
            "(this version of labkit has no such runtime), so the local runtime "
            "stands in"
        )
    finally:
        rt.stop()
    monkeypatch.setenv("LABKIT_RUNTIME", "docker")
    with pytest.raises(RuntimeUnavailable, match="LABKIT_RUNTIME=docker is set"):
        get("choice-test", Choice(DOCKER, "LABKIT_RUNTIME=docker is set"))


def test_docker_that_cannot_start_falls_back_unless_demanded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    import labkit.runtime as runtimes

    class Unstartable(LocalRuntime):
        def start(self) -> LocalRuntime:
            raise RuntimeUnavailable("the lab's images are not built: run `labkit images build`")

    fake = types.ModuleType("labkit_fake_docker")
    fake.DockerRuntime = Unstartable  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "labkit_fake_docker", fake)
    monkeypatch.setitem(runtimes.IMPLEMENTATIONS, DOCKER, ("labkit_fake_docker", "DockerRuntime"))
    rt = get("choice-test", Choice(DOCKER, "Docker engine 99 answers"))
    try:
        assert type(rt) is LocalRuntime
        assert "cannot start here (the lab's images are not built" in rt.reason
    finally:
        rt.stop()
    monkeypatch.setenv("LABKIT_RUNTIME", "docker")
    with pytest.raises(RuntimeUnavailable, match="images are not built"):
        get("choice-test", Choice(DOCKER, "LABKIT_RUNTIME=docker is set"))


def test_an_app_process_never_sees_the_kernels_secrets(
    runtime: LocalRuntime, app: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABKIT_WEBHOOK_SECRET", "kernel-secret-1")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token-2")
    folder = app()
    code = (folder / "app.py").read_text()
    code += (
        '\n\n@app.get("/environment")\ndef environment() -> list[str]:\n'
        "    import os\n    return sorted(os.environ)\n"
    )
    (folder / "app.py").write_text(code)
    assert runtime.deploy(ship(runtime, folder, 7)).ok
    names = httpx.get(runtime.url() + "/environment", trust_env=False, timeout=5).json()
    assert "LABKIT_WEBHOOK_SECRET" not in names and "JUPYTERHUB_API_TOKEN" not in names
    assert {"APP_VERSION", "APP_COMMIT", "PATH"} <= set(names)
