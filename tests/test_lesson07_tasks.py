"""Lesson 07's tasks: each failure is the learner's own change, and each check reads the real
state (the run history, the version that answers, the alert log, the delivery and sent logs):
NOT YET with a hint before the change or after the wrong one, PASS after the lesson's solution
(here on the local runtime)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import labkit
from labkit import Receiver
from labkit.pipeline.gitsource import GitSource
from labkit.pipeline.pipeline import Pipeline
from labkit.runtime.local import LocalRuntime
from labkit.teaching.exercises import check, lesson07

SECRET = "s3cret"


@dataclass
class Lab:
    rx: Receiver
    runtime: LocalRuntime
    src: GitSource
    pipeline: Pipeline
    names: dict[str, Any]

    def solve(self, code: str) -> Any:
        exec(code, self.names)  # noqa: S102 - the lesson's own solution
        return self.names["answer"]


@pytest.fixture
def lab() -> Iterator[Lab]:
    rx = Receiver(secret=SECRET, name="lesson07-test", port=labkit.free_port()).start()
    runtime = LocalRuntime("lesson07-test", probe_interval=0.1, alert_after=0.3).start()
    src = GitSource.create(rx)
    pipeline = Pipeline(rx, runtime, src, name="lesson07-test", health_timeout=4, settle=0.3)
    pipeline.start()
    src.push()
    assert pipeline.wait(src.head, timeout=60).status == "passed"
    names = {"labkit": labkit, "rx": rx, "src": src, "pipeline": pipeline, "runtime": runtime}
    try:
        yield Lab(rx, runtime, src, pipeline, names)
    finally:
        pipeline.stop()
        runtime.stop()
        rx.stop()


def test_break_then_repair_with_the_hints_on_the_way(lab: Lab) -> None:
    # A change that builds is not the break task 1 asks for: tier 1, then the specific fix.
    lab.src.commit("Nothing broken")
    lab.src.push()
    fine = lab.pipeline.wait(lab.src.head, timeout=60)
    first, again = check("07-broken-build", fine), check("07-broken-build", fine)
    assert not first.passed and (first.tier, again.tier) == (1, 2)
    assert "syntax error" in again.message.lower() or "src.replace" in again.message

    result = check("07-broken-build", lab.solve(lesson07.BROKEN))
    assert result.passed, result.message
    assert not check("07-never-healthy", lab.names["answer"]).passed  # still does not build

    result = check("07-never-healthy", lab.solve(lesson07.UNHEALTHY))
    assert result.passed, result.message
    assert not check("07-recover", lab.names["answer"]).passed  # the rolled-back run

    result = check("07-recover", lab.solve(lesson07.RECOVER))
    assert result.passed, result.message
    outcomes = [r.outcome for r in reversed(lab.pipeline.history())]
    assert outcomes[-3:] == ["failed at build", "rolled back", "deployed"]


def test_crash_alert_and_redeploy(lab: Lab) -> None:
    lab.names["mark"] = lab.rx.log.count()
    assert not check("07-crash-alert", lab.rx.deliveries(1, source="github")[0]).passed
    result = check("07-crash-alert", lab.solve(lesson07.CRASH))
    assert result.passed, result.message
    crashed = lab.pipeline.history()[0]
    assert crashed.outcome == "deployed, then failed: alert WebDown firing"

    result = check("07-redeploy", lab.solve(lesson07.REDEPLOY))
    assert result.passed, result.message
    statuses = [d.payload["status"] for d in reversed(lab.rx.deliveries(20, source="alertmanager"))]
    assert statuses[-1] == "resolved"


def test_outage_redelivery_and_duplicate(lab: Lab) -> None:
    # A redelivery of a push that never failed is not the outage the task asks for.
    lab.src.commit("Delivered fine")
    delivered = lab.src.push()
    assert not delivered.undelivered
    lab.pipeline.wait(lab.src.head, timeout=60)
    push = lab.rx.deliveries(1, source="github")[0]
    assert push.id is not None
    not_lost = labkit.redeliver(push.id)
    assert "stop the receiver" in check("07-receiver-outage", not_lost).message

    result = check("07-receiver-outage", lab.solve(lesson07.OUTAGE))
    assert result.passed, result.message
    assert "failed 3 times" in result.message  # the hook's own three tries, all refused
    lost = lab.names["lost"]
    assert [d.status for d in lab.rx.deliveries(50) if d.id == lost] == ["accepted"]

    result = check("07-duplicate", lab.solve(lesson07.DUPLICATE))
    assert result.passed, result.message
    statuses = [d.status for d in reversed(lab.rx.deliveries(50)) if d.id == lost]
    assert statuses == ["accepted", "duplicate"]
