"""The pipeline end to end on the local runtime: git push -> build -> ship -> registry webhook -> deploy -> monitor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import labkit
from labkit import Receiver
from labkit.errors import PipelineError
from labkit.pipeline.gitsource import GitSource
from labkit.pipeline.pipeline import Pipeline, Traffic
from labkit.runtime.local import LocalRuntime, _alive
from labkit.runtime.processes import pids_dir
from labkit.webhooks import events
from labkit.widgets.flow import Flow

from support import poll

SECRET = "s3cret"


@dataclass
class Lab:
    rx: Receiver
    runtime: LocalRuntime
    src: GitSource
    pipeline: Pipeline

    def push(self, change: str | None = None, message: str = "Change the greeting") -> str:
        if change is not None:
            text = self.src.read("app.py")
            start = text.index('GREETING = "') + len('GREETING = "')
            end = text.index('"', start)
            self.src.edit("app.py", text[:start] + change + text[end:])
        commit = self.src.commit(message)
        out = self.src.push()
        assert "HTTP 202 accepted" in out, out
        return commit

    def get(self, path: str = "/") -> httpx.Response:
        return httpx.get(self.pipeline.url + path, trust_env=False, timeout=5)


@pytest.fixture
def lab(rx: Receiver) -> Iterator[Lab]:
    runtime = LocalRuntime("pipeline-test", probe_interval=0.1, alert_after=0.3).start()
    src = GitSource.create(rx)
    pipeline = Pipeline(rx, runtime, src, name="test", health_timeout=8, settle=0.3).start()
    try:
        yield Lab(rx, runtime, src, pipeline)
    finally:
        pids = [p.pid for p in runtime.processes()]
        pipeline.stop()
        runtime.stop()
        assert not [p for p in pids if _alive(p)], "an app process outlived the test"
        assert not list(pids_dir().glob("*.json"))


def first_deploy(lab: Lab) -> str:
    commit = lab.src.head
    assert "HTTP 202 accepted" in lab.src.push()
    run = lab.pipeline.wait(commit, timeout=30)
    assert run.status == "passed", run.summary()
    return commit


def test_a_push_builds_ships_deploys_and_monitors_the_commit(lab: Lab) -> None:
    assert lab.get().status_code == 503
    commit = first_deploy(lab)
    run = lab.pipeline.run_of(commit)
    assert run is not None
    assert run.summary() == (
        "run 1: passed (build passed, ship passed, deploy passed, monitor passed)"
    )
    assert run.commit == commit and run.message == "Start the web app"
    assert run.artifact == f"web:{commit[:7]}"
    assert lab.get("/version").json() == {"version": commit[:7], "commit": commit}
    for stage in run.stages:
        assert stage.started_at is not None and stage.ended_at is not None
        assert stage.ended_at >= stage.started_at
    assert "#4 built web:" in run.stage("build").log
    assert "registry webhook" in run.stage("deploy").log, "deploy waits for the registry"
    lab.rx.idle()
    sources = {d.source for d in lab.rx.deliveries(100)}
    assert {"github", "registry", "engine"} <= sources
    assert all(d.verified for d in lab.rx.deliveries(100))


def test_a_rollout_under_load_has_zero_failed_requests(lab: Lab) -> None:
    first_deploy(lab)
    failures: list[str] = []
    served: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(trust_env=False, timeout=5) as client:
            while not stop.is_set():
                try:
                    response = client.get(lab.pipeline.url + "/")
                    if response.status_code == 200:
                        served.append(response.json()["message"])
                    else:
                        failures.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        commits = [lab.push(f"Version {n}") for n in (2, 3)]
        for commit in commits:
            assert lab.pipeline.wait(commit, timeout=30).status == "passed"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == []
    assert len(served) > 50 and served[-1] == "Version 3"
    assert {"Version 2", "Version 3"} <= set(served)


def test_a_broken_commit_fails_the_build_and_the_old_version_keeps_serving(lab: Lab) -> None:
    good = first_deploy(lab)
    lab.src.edit("app.py", lab.src.read("app.py") + "\ndef broken(:\n")
    bad = lab.push(message="Break the build")
    run = lab.pipeline.wait(bad, timeout=30)
    assert run.summary().endswith("(build failed, ship skipped, deploy skipped, monitor skipped)")
    assert run.status == "failed" and f"web:{good[:7]} keeps serving" in run.reason
    assert "SyntaxError" in run.stage("build").log
    assert lab.get("/version").json()["commit"] == good
    assert lab.runtime.store.tags("web") == [good[:7]], "nothing was shipped"


def test_a_version_that_never_gets_healthy_is_rolled_back(lab: Lab) -> None:
    good = first_deploy(lab)
    lab.pipeline.health_timeout = 3
    lab.src.replace("app.py", "HEALTHY = True", "HEALTHY = False")
    bad = lab.push(message="Ship an unhealthy version")
    run = lab.pipeline.wait(bad, timeout=30)
    assert run.status == "failed"
    assert run.stage("deploy").status == "rolled back" and run.stage("monitor").status == "skipped"
    assert "HTTP 503" in run.stage("deploy").detail
    assert lab.get("/version").json()["commit"] == good


def test_the_same_push_delivered_twice_builds_once(lab: Lab) -> None:
    commit = first_deploy(lab)
    original = lab.rx.deliveries(source="github")[0]
    assert original.id is not None
    again = labkit.redeliver(original.id)  # the same delivery id: the receiver dedupes it
    assert again.status == 200 and again.detail == "duplicate"
    # A new delivery (new id) of the same commit: the pipeline's own guard by commit id.
    payload = original.payload
    resent = events.github.push(
        repo="lab/web",
        ref="refs/heads/main",
        before=payload["before"],
        after=commit,
        commits=[{"id": commit, "message": "again"}],
        kind="new_branch",
    )
    assert labkit.send(resent, lab.rx, secret=SECRET).status == 202
    lab.rx.idle()
    assert lab.pipeline.idle(10)
    assert [r.id for r in lab.pipeline.history()] == [1]
    assert any("already built that commit" in n for n in lab.pipeline.notes)


def test_pushes_the_pipeline_does_not_deploy_are_noted_not_built(lab: Lab) -> None:
    first_deploy(lab)
    lab.src.git("checkout", "--quiet", "-b", "feature")
    lab.src.commit("Feature work")
    lab.src.git("push", "--quiet", "origin", "feature")
    other = events.github.push(repo="someone/else", ref="refs/heads/main")
    assert labkit.send(other, lab.rx, secret=SECRET).status == 202
    lab.rx.idle()
    assert lab.pipeline.idle(10)
    assert len(lab.pipeline.history()) == 1
    notes = " | ".join(lab.pipeline.notes)
    assert "only refs/heads/main is deployed" in notes and "someone/else" in notes


def test_unverified_pushes_do_nothing(make_receiver: Callable[..., Receiver]) -> None:
    rx = make_receiver(None)  # no secret: nothing can be verified
    runtime = LocalRuntime("unverified").start()
    pipeline = Pipeline(rx, runtime, GitSource.create(rx), name="unverified").start()
    try:
        assert "HTTP 202" in pipeline.source.push()
        rx.idle()
        assert pipeline.idle(10)
        assert pipeline.history() == []
        assert "not verified" in pipeline.notes[-1]
        with pytest.raises(PipelineError, match="No run for commit"):
            pipeline.wait(pipeline.source.head, timeout=0.2)
    finally:
        pipeline.stop()
        runtime.stop()


def test_a_crash_after_the_deploy_arrives_as_an_alert_and_fails_the_run(lab: Lab) -> None:
    commit = first_deploy(lab)
    lab.runtime.crash()
    poll(
        lambda: lab.pipeline.run_of(commit).status == "failed",
        timeout=10,
        what="the alert webhook to fail the serving run",
    )
    run = lab.pipeline.run_of(commit)
    assert run.stage("monitor").status == "failed"
    assert "alert WebDown firing" in run.stage("monitor").detail
    fixed = lab.push("Back again")
    assert lab.pipeline.wait(fixed, timeout=30).status == "passed"
    poll(
        lambda: lab.pipeline.run_of(fixed).stage("monitor").detail == "alert WebDown resolved",
        timeout=10,
        what="the resolved alert",
    )


def test_the_flow_widget_follows_the_runs(lab: Lab) -> None:
    flow = Flow(lab.pipeline)
    try:
        assert repr(flow) == ("<Flow of pipeline 'test': build -> ship -> deploy -> monitor, live>")
        assert flow.text().startswith("no run yet")
        assert "No run yet" in flow.header.value
        commit = first_deploy(lab)
        poll(
            lambda: "passed" in flow.boxes["monitor"].value,
            timeout=5,
            what="a live redraw from the pipeline's thread",
        )
        assert flow.text() == (
            "run 1 passed: [build: passed] -> [ship: passed] -> "
            "[deploy: passed] -> [monitor: passed]"
        )
        assert commit[:7] in flow.header.value and "#4 built web:" in flow.log_view.value
        lab.src.edit("app.py", lab.src.read("app.py") + "\ndef broken(:\n")
        lab.pipeline.wait(lab.push(message="Break it"), timeout=30)
        poll(lambda: "failed" in flow.boxes["build"].value, timeout=5, what="the failed build")
        assert "skipped" in flow.boxes["deploy"].value
        assert flow.history_view.value.count("<tr>") == 3  # header and two runs
        second = Flow(lab.pipeline)
        assert flow.stopped and not second.stopped
        second.stop()
    finally:
        flow.stop()


def test_push_to_serving_is_fast_and_traffic_sees_both_versions(lab: Lab) -> None:
    first_deploy(lab)
    with Traffic(lab.pipeline.url) as traffic:
        commit = lab.push("Fast")
        started = time.monotonic()
        poll(
            lambda: lab.get("/version").json()["commit"] == commit,
            timeout=15,
            interval=0.01,
            what="the new version to answer",
        )
        took = time.monotonic() - started
        lab.pipeline.wait(commit, timeout=30)
    assert took < 10
    assert traffic.failed == 0 and traffic.total > 10
    assert traffic.seen == ["Hello from the lab's web app!", "Fast"]
    assert "0 failed" in repr(traffic)


def test_stopping_the_flow_widget_shows_the_last_state_not_a_stale_one(lab: Lab) -> None:
    # A redraw interval longer than the run: every change waits for a redraw that stop() must
    # not drop, or the boxes would keep saying "running" (Run All ends with flow.stop()).
    flow = Flow(lab.pipeline, interval=600)
    try:
        first_deploy(lab)
        assert "No run yet" in flow.header.value  # nothing redrawn yet: the view is stale
    finally:
        flow.stop()
    assert flow.stopped
    assert "passed" in flow.boxes["monitor"].value and "No run yet" not in flow.header.value


def test_an_alert_about_a_version_that_no_longer_serves_fails_nothing(lab: Lab) -> None:
    commit = first_deploy(lab)
    serving = lab.runtime.current()
    assert serving is not None
    # Prometheus labels each alert with the version it scraped; a replaced container's alert
    # can still arrive after the switch. It is news about the past.
    labels = {
        "alertname": "WebDown",
        "job": "web",
        "service": "web",
        "severity": "page",
        "instance": "old-web:8000",
        "version": "0000000",
    }
    stale = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "old-web is down"},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "0" * 16,
    }
    outcome = labkit.send(
        events.alertmanager.alert("firing", alerts=[stale]),
        lab.rx,
        secret=lab.rx.token("alertmanager"),
    )
    assert outcome.ok
    lab.rx.idle()
    poll(
        lambda: "which no longer serves" in lab.pipeline.run_of(commit).stage("monitor").log,
        timeout=10,
        what="the alert to be noted",
    )
    assert lab.pipeline.run_of(commit).status == "passed"
    # The same alert about the serving version does fail the run.
    current = {**stale, "labels": {**labels, "version": serving.tag}}
    assert labkit.send(
        events.alertmanager.alert("firing", alerts=[current]),
        lab.rx,
        secret=lab.rx.token("alertmanager"),
    ).ok
    poll(
        lambda: lab.pipeline.run_of(commit).status == "failed",
        timeout=10,
        what="the alert about the serving version to fail the run",
    )


def test_the_history_tells_a_failed_deploy_from_an_alert_after_it(tmp_path: Path) -> None:
    from labkit.pipeline.runs import FAILED, PASSED, ROLLED_BACK, RunStore

    store = RunStore(tmp_path / "runs.db")
    try:

        def run(commit: str, stages: dict[str, str], status: str, reason: str = "") -> str:
            rid = store.open_run(pipeline="p", service="web", commit=commit * 40).id
            for name, state in stages.items():
                store.stage(rid, name, state, f"{name} {state}")
            store.finish(rid, status, reason)
            found = store.get(rid)
            assert found is not None
            return found.outcome

        passed = {"build": PASSED, "ship": PASSED, "deploy": PASSED}
        assert run("a", {**passed, "monitor": PASSED}, PASSED) == "deployed"
        # Deployed fine, and a crash alert failed it later: the history must say both.
        crashed = run("b", {**passed}, PASSED)
        assert crashed == "deployed"
        rid = store.for_commit("b" * 40)
        assert rid is not None
        store.stage(rid.id, "monitor", FAILED, "alert WebDown firing: web is down")
        store.reopen(rid.id, FAILED, "alert WebDown firing")
        again = store.get(rid.id)
        assert again is not None and again.status == FAILED
        assert again.outcome == "deployed, then failed: alert WebDown firing"
        assert (
            run("c", {"build": PASSED, "ship": PASSED, "deploy": ROLLED_BACK}, ROLLED_BACK)
            == "rolled back"
        )
        assert run("d", {"build": FAILED}, FAILED) == "failed at build"
    finally:
        store.close()
