"""Lesson 06's tasks: the learner's Dockerfile, push trigger and deploy notification. Each check
says NOT YET on what the kit gives, with a hint for what is missing, and PASS once the task is
done, reading the file, real pushes through the git hook, the run history and the monitoring
receiver's log (here on the local runtime)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import labkit
from labkit import Receiver
from labkit.pipeline.gitsource import GitSource
from labkit.pipeline.pipeline import Pipeline
from labkit.runtime.local import LocalRuntime
from labkit.teaching.exercises import check, lesson06

MONITORING_SECRET = "monitoring-s3cret"


@dataclass
class Lab:
    rx: Receiver
    runtime: LocalRuntime
    src: GitSource
    pipeline: Pipeline

    @property
    def dockerfile(self) -> Path:
        return self.src.workdir / "Dockerfile"

    def names(self) -> dict[str, Any]:
        """What the lesson's cells have defined when a solution runs."""
        return {"labkit": labkit, "rx": self.rx, "src": self.src, "pipeline": self.pipeline}


@pytest.fixture
def lab(rx: Receiver) -> Iterator[Lab]:
    runtime = LocalRuntime("lesson06-test", probe_interval=0.1, alert_after=0.3).start()
    src = GitSource.create(rx, starter=True)
    pipeline = Pipeline(
        rx, runtime, src, name="lesson06-test", trigger=False, health_timeout=8, settle=0.3
    ).start()
    try:
        yield Lab(rx, runtime, src, pipeline)
    finally:
        pipeline.stop()
        runtime.stop()


def _run(code: str, names: dict[str, Any]) -> Any:
    exec(code, names)  # noqa: S102 - the lesson's own solution
    return names["answer"]


def test_the_starter_dockerfile_has_two_tasks_and_the_checks_say_what_is_missing(lab: Lab) -> None:
    text = lab.dockerfile.read_text()
    assert "# TASK 1:" in text and "# TASK 2:" in text
    first = check("06-dockerfile-build", lab.dockerfile)
    assert not first.passed and first.tier == 1 and "TASK 1" in first.message
    assert "looked at" in str(first)
    again = check("06-dockerfile-build", lab.dockerfile)
    assert again.tier == 2 and "COPY --chown=app:app" in again.message
    assert not check("06-dockerfile-healthcheck", lab.dockerfile).passed
    assert not check("06-dockerfile-build", "no/such/Dockerfile").passed


@pytest.mark.parametrize(
    ("lines", "hint"),
    [
        ("COPY . /app/\nRUN python3 -m compileall -q /app", "root"),
        ("COPY --chown=app:app . /app/", "RUN step"),
        ("RUN python3 -m compileall -q /app\nCOPY --chown=app:app . /app/", "after the COPY"),
    ],
)
def test_a_half_done_build_step_gets_its_own_hint(lab: Lab, lines: str, hint: str) -> None:
    labkit.fill_task(lab.dockerfile, 1, lines)
    result = check("06-dockerfile-build", lab.dockerfile)
    assert not result.passed and hint in result.message


def test_a_slow_healthcheck_is_explained(lab: Lab) -> None:
    labkit.fill_task(
        lab.dockerfile, 2, 'HEALTHCHECK CMD ["labkit-probe", "http://127.0.0.1:8000/healthz"]'
    )
    result = check("06-dockerfile-healthcheck", lab.dockerfile)
    assert not result.passed and "30 s" in result.message


def _solve_dockerfile(lab: Lab) -> None:
    names = lab.names()
    assert check("06-dockerfile-build", _run(lesson06.DOCKERFILE_BUILD, names)).passed
    assert check("06-dockerfile-healthcheck", _run(lesson06.DOCKERFILE_HEALTH, names)).passed


def test_a_trigger_that_releases_every_push_is_caught_by_a_real_push(lab: Lab) -> None:
    @lab.rx.on("github", "push")
    def greedy(delivery: Any) -> None:
        lab.pipeline.release(delivery.payload["after"], delivery)

    result = check("06-push-trigger", greedy)
    assert not result.passed and "feature/check" in result.message
    # Both real pushes (the branch, its deletion) came through the hook and asked for releases.
    assert len(lab.pipeline.releases) == 2 and lab.pipeline.releases[1] == "0" * 40
    lab.pipeline.idle()
    assert any("nothing to build" in note for note in lab.pipeline.notes)
    pushed = [d for d in lab.rx.deliveries(source="github") if d.verified]
    assert {d.payload["ref"] for d in pushed} == {lesson06.FEATURE}


def test_unregistered_or_broken_triggers_say_so(lab: Lab) -> None:
    def not_registered(delivery: Any) -> None:
        pass

    assert "not a handler" in check("06-push-trigger", not_registered).message

    @lab.rx.on("github", "push")
    def broken(delivery: Any) -> None:
        raise KeyError("refs")

    result = check("06-push-trigger", broken)
    assert not result.passed and "raised" in result.message

    @lab.rx.on("github", "push")
    def forgets_deletions(delivery: Any) -> None:
        if delivery.payload["ref"] == "refs/heads/main":
            lab.pipeline.release(delivery.payload["after"], delivery)

    result = check("06-push-trigger", forgets_deletions)
    assert not result.passed and "deletes" in result.message
    assert not lab.pipeline.releases  # the simulated pushes to main never reached the stages
    assert not check("06-push-trigger", "not a function").passed


def test_the_whole_lesson_path_passes_with_the_solutions(lab: Lab) -> None:
    _solve_dockerfile(lab)
    names = lab.names()
    trigger = _run(lesson06.TRIGGER, names)
    assert check("06-push-trigger", trigger).passed

    run = _run(lesson06.FIRST_PUSH, names)
    result = check("06-first-push", run)
    assert result.passed, result.message
    build_log = run.stage("build").log
    assert "read but NOT run" in build_log  # the stand-in says what it did with the Dockerfile
    assert run.delivery_id and run.commit in lab.pipeline.releases

    # A run the kit's trigger started (no release from the learner's) is not theirs.
    lab.pipeline.add_kit_trigger()
    lab.src.replace("app.py", "Hello from the lab's web app!", "Hello from version 2")
    commit = lab.src.commit("Say version 2")
    lab.src.push()
    second = lab.pipeline.wait(commit, timeout=60)
    assert second.status == "passed"
    assert sum(r.commit == commit for r in lab.pipeline.history()) == 1  # asked twice, built once
    assert any("already built" in note for note in lab.pipeline.notes)

    monitoring = Receiver(secret=MONITORING_SECRET, name="lesson06-monitoring-test").start()
    try:
        names.update(monitoring=monitoring, MONITORING_SECRET=MONITORING_SECRET, seen=0)
        wrong = check("06-deploy-notification", lab.rx.deliveries(1, source="github")[0])
        assert not wrong.passed and "Standard Webhooks" in wrong.message
        notification = _run(lesson06.NOTIFY, names)
        result = check("06-deploy-notification", notification)
        assert result.passed, result.message
        assert notification.payload["data"]["commit"] == lab.src.head
    finally:
        monitoring.stop()


def test_which_webhook_deploys_hints_in_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    import labkit.teaching.exercises

    # A fresh kernel's memory of hints shown (another test may have tried "github" already).
    monkeypatch.setattr(labkit.exercises, "_misses", {})
    first = check("06-which-webhook-deploys", "github")
    again = check("06-which-webhook-deploys", "github")
    assert (first.tier, again.tier) == (1, 2) and not again.passed
    assert check("06-which-webhook-deploys", "registry").passed
