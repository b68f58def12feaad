"""Lesson 07 (when things go wrong): each failure caused by the learner's own change, then
repaired, checked against the run history, the version that serves, the alert log and the
delivery log."""

from __future__ import annotations

from typing import Any

import httpx

from labkit.pipeline.pipeline import PIPELINES
from labkit.teaching.exercises._core import Exercise, Hint, Verdict
from labkit.waiting import wait_until, waited
from labkit.webhooks.sender import default_log

BROKEN = """\
src.replace("app.py", "def hello() -> dict[str, str]:", "def hello() -> dict[str, str]")
src.commit("Tidy up hello()")
src.push()
answer = pipeline.wait(src.head, timeout=90)"""

UNHEALTHY = """\
src.replace("app.py", "def hello() -> dict[str, str]\\n", "def hello() -> dict[str, str]:\\n")
src.replace("app.py", "HEALTHY = True", "HEALTHY = False")
src.commit("Fix hello(), but report unhealthy")
src.push()
answer = pipeline.wait(src.head, timeout=90)"""

RECOVER = """\
src.replace("app.py", "HEALTHY = False", "HEALTHY = True")
src.commit("Report healthy again")
src.push()
answer = pipeline.wait(src.head, timeout=90)"""

CRASH = """\
runtime.crash("web")
alert = rx.wait_for(source="alertmanager", since=mark, timeout=60)[0]
answer = alert"""

REDEPLOY = """\
src.commit("Redeploy after the crash")
src.push()
answer = pipeline.wait(src.head, timeout=90)"""

OUTAGE = """\
rx.stop()
src.replace("app.py", "Hello from the lab's web app!", "Hello, despite the outage!")
src.commit("Ship during the outage")
lost = src.push().undelivered[0]
rx.start()
answer = labkit.redeliver(lost)
run = pipeline.wait(src.head, timeout=90)"""

DUPLICATE = """\
answer = labkit.redeliver(lost)"""

#: How long the redeploy check waits for the monitor's resolved alert.
RESOLVE_WAIT = 45
_LOOKED_RUNS = "the run history and the version that answers /version now"


def _pipelines() -> list[Any]:

    return [p for p in PIPELINES.live() if p.running]


def _serving(pipeline: Any) -> str | None:
    """The short commit id the app's address answers with now, or None when nothing answers."""
    try:
        with httpx.Client(timeout=3.0, trust_env=False) as client:
            reply = client.get(pipeline.url + "/version")
        return str(reply.json()["version"]) if reply.is_success else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _run_and_pipeline(answer: Any, task: str) -> tuple[Any, Any, str]:
    """The stored run ``answer`` names and its pipeline, or why not."""

    if not hasattr(answer, "stages") or not hasattr(answer, "pipeline"):
        return (
            None,
            None,
            f"Set answer to the run, pipeline.wait(src.head, timeout=90), after you {task}.",
        )
    pipeline = PIPELINES.get(answer.pipeline)
    if pipeline is None:
        return None, None, "The lesson's pipeline is not running: run the set-up cells again."
    run = pipeline.runs.get(answer.id)
    if run is None or run.commit != pipeline.source.pushed():
        return None, None, f"That is not the run of the commit on main now: {task}, then wait."
    return run, pipeline, ""


def _broken_build(answer: Any) -> Verdict:
    run, pipeline, why = _run_and_pipeline(answer, "commit and push the broken change")
    if run is None:
        return False, why
    build = run.stage("build")
    if build.status == "passed":
        return (
            False,
            Hint(
                "That commit built: break it in a way the build catches (your Dockerfile's "
                "compile step).",
                'A syntax error: src.replace("app.py", "def hello() -> dict[str, str]:", '
                '"def hello() -> dict[str, str]"), then commit and push.',
            ),
            _LOOKED_RUNS,
        )
    serving = _serving(pipeline)
    if run.stage("ship").status != "skipped" or serving is None or serving == run.short:
        return False, f"Unexpected: {run.summary()}; the app answers {serving!r}.", _LOOKED_RUNS
    return (
        True,
        f"run {run.id} failed at build: nothing was shipped or deployed, and the version from "
        "before still answers.",
        _LOOKED_RUNS,
    )


def _never_healthy(answer: Any) -> Verdict:
    run, pipeline, why = _run_and_pipeline(answer, "commit and push")
    if run is None:
        return False, why
    if run.stage("build").status == "failed":
        return (
            False,
            "It still does not build: put the colon back after def hello() -> dict[str, str].",
            _LOOKED_RUNS,
        )
    deploy = run.stage("deploy")
    if deploy.status == "passed":
        return (
            False,
            Hint(
                "That version got healthy and serves: the task is a version that never does.",
                'src.replace("app.py", "HEALTHY = True", "HEALTHY = False"), commit and push.',
            ),
            _LOOKED_RUNS,
        )
    serving = _serving(pipeline)
    if deploy.status != "rolled back" or serving is None or serving == run.short:
        return False, f"Unexpected: {run.summary()}; the app answers {serving!r}.", _LOOKED_RUNS
    return (
        True,
        f"run {run.id} was rolled back: its version never answered /healthz with 2xx, so "
        "traffic never left the version from before.",
        _LOOKED_RUNS,
    )


def _recovered(answer: Any) -> Verdict:
    run, pipeline, why = _run_and_pipeline(answer, "repair the app, commit and push")
    if run is None:
        return False, why
    if run.status != "passed":
        return (
            False,
            Hint(
                f"Run {run.id} did not pass ({run.outcome}): the app still has a fault.",
                "Set HEALTHY = True again (and keep the colon), commit and push.",
            ),
            _LOOKED_RUNS,
        )
    if _serving(pipeline) != run.short:
        return False, "The run passed, but another version answers: wait a moment.", _LOOKED_RUNS
    earlier = [r.outcome for r in pipeline.history(50) if r.id < run.id]
    if "failed at build" not in earlier or "rolled back" not in earlier:
        return (
            False,
            "The repair serves; first break it twice (tasks 1 and 2), so the history shows "
            "what it recovered from.",
            _LOOKED_RUNS,
        )
    return (
        True,
        f"run {run.id} serves, and the history keeps both failures before it: one that never "
        "built, one that was rolled back.",
        _LOOKED_RUNS,
    )


def _crash_alert(answer: Any) -> Verdict:
    looked = "the receiver's alert log, the run history and the app's address"
    if not hasattr(answer, "payload") or not hasattr(answer, "source"):
        return False, (
            "Set answer to the alert as the receiver logged it: "
            'rx.wait_for(source="alertmanager", since=mark, timeout=60)[0].'
        )
    if answer.source != "alertmanager":
        return (
            False,
            Hint(
                f"That is a {answer.source} delivery; the alert comes from Alertmanager (on the "
                "local runtime, its stand-in).",
                'rx.wait_for(source="alertmanager", since=mark, timeout=60)[0]',
            ),
            looked,
        )
    payload = answer.payload or {}
    if not answer.verified or payload.get("status") != "firing":
        return False, "Wait for a verified alert whose status is firing.", looked
    for pipeline in _pipelines():
        if pipeline.receiver.log.by_seq(answer.seq) is None:
            continue

        # The pipeline acts on the alert in its own thread, a moment after the receiver logged
        # it (it may not have started when this check runs): wait for the mark, bounded.
        def marked(p: Any = pipeline) -> list[Any]:
            p.idle(15)
            return [r for r in p.history(50) if r.outcome.startswith("deployed, then failed")]

        try:
            crashed = wait_until(marked, timeout=30, interval=0.1)
        except TimeoutError:
            crashed = []
        if _serving(pipeline) is not None:
            return (
                False,
                "The app still answers: crash the version that serves, runtime.crash('web').",
                looked,
            )
        if not crashed:
            return False, "No run is marked failed by the alert yet: wait a moment.", looked
        return (
            True,
            f"the alert fired and came in as a webhook; run {crashed[0].id} is marked "
            "'deployed, then failed', and nothing answers at the app's address.",
            looked,
        )
    return False, "That alert is not in the lesson's receiver: use rx.wait_for(...).", looked


def _redeployed(answer: Any) -> Verdict:
    run, pipeline, why = _run_and_pipeline(answer, "commit (an empty commit is fine) and push")
    if run is None:
        return False, why
    looked = "the run history, the version that answers now, and the receiver's alert log"
    if run.status != "passed" or _serving(pipeline) != run.short:
        return False, f"Run {run.id} does not serve ({run.outcome}): read run.reason.", looked
    rx = pipeline.receiver

    def alerts() -> list[str]:
        return [
            str((d.payload or {}).get("status"))
            for d in reversed(rx.deliveries(200, source="alertmanager"))
        ]

    if "firing" not in alerts():
        return False, "No alert has fired yet: crash the serving version first (task 4).", looked

    # The monitor reports recovery a few seconds after the new version serves (Prometheus
    # scrapes, Alertmanager groups): wait for it, bounded, rather than fail too early.
    def resolved() -> bool:
        seen = alerts()
        return "resolved" in seen[seen.index("firing") :]

    if not waited(resolved, timeout=RESOLVE_WAIT, interval=0.2):
        return (
            False,
            Hint(
                f"The new version serves, but no resolved alert came within {RESOLVE_WAIT} s.",
                "Is the monitor still sending? Run the check again in a moment; "
                "rx.deliveries(5, source='alertmanager') shows what came.",
            ),
            looked,
        )
    return (
        True,
        f"run {run.id} serves again, and the alert that fired on the crash is resolved.",
        looked,
    )


def _deliveries_of(delivery_id: str) -> list[Any]:
    for pipeline in _pipelines():
        found = [d for d in pipeline.receiver.deliveries(500) if d.id == delivery_id]
        if found:
            return list(reversed(found))
    return []


def _outage(answer: Any) -> Verdict:

    looked = "the sender's log (every attempt) and the receiver's delivery log"
    if not hasattr(answer, "attempts") or not hasattr(answer, "delivery_id"):
        return False, "Set answer to what labkit.redeliver(lost) returns."
    tries = [a for a in default_log().recent(500) if a["delivery_id"] == answer.delivery_id]
    failed = [a for a in tries if a["status"] is None]
    if not failed:
        return (
            False,
            Hint(
                "That delivery never failed: stop the receiver before you push.",
                "rx.stop(), then commit and push; the hook says NOT delivered "
                "(src.push().undelivered has its id); rx.start(); labkit.redeliver(id).",
            ),
            looked,
        )
    if not answer.ok:
        return False, "The redelivery failed too: is the receiver running again? rx.start()", looked
    logged = _deliveries_of(answer.delivery_id)
    if [d.status for d in logged][:1] != ["accepted"]:
        return False, "The receiver has no accepted copy of it: redeliver it again.", looked
    return (
        True,
        f"the push failed {len(failed)} times while the receiver was down, nothing retried it "
        "later, and your redelivery got it in: the receiver logged it once, accepted.",
        looked,
    )


def _duplicate(answer: Any) -> Verdict:
    looked = "the receiver's delivery log and the run history"
    if not hasattr(answer, "attempts") or not hasattr(answer, "delivery_id"):
        return False, "Set answer to what labkit.redeliver(lost) returns the second time."
    logged = _deliveries_of(answer.delivery_id)
    statuses = [d.status for d in logged]
    if statuses.count("duplicate") < 1:
        return (
            False,
            Hint(
                "The receiver has not seen this delivery twice yet.",
                "Redeliver the push that already got in: labkit.redeliver(lost).",
            ),
            looked,
        )
    commit = (logged[0].payload or {}).get("after", "")
    runs = sum(r.commit == commit for p in _pipelines() for r in p.history(50))
    if runs != 1:
        return False, f"{runs} runs for that commit: expected one.", looked
    return (
        True,
        f"the receiver answered {answer.status} and logged the copy as duplicate (the same "
        "X-GitHub-Delivery id); the commit has one run.",
        looked,
    )


EXERCISES = (
    Exercise(
        "07-broken-build",
        "Commit a change that does not compile, push it, and wait for its run.",
        _broken_build,
        BROKEN,
    ),
    Exercise(
        "07-never-healthy",
        "Fix the syntax, make the app report itself unhealthy, push, and wait for its run.",
        _never_healthy,
        UNHEALTHY,
    ),
    Exercise(
        "07-recover",
        "Repair the app, push, and wait until the repair serves.",
        _recovered,
        RECOVER,
    ),
    Exercise(
        "07-crash-alert",
        "Crash the serving version and catch the alert that follows.",
        _crash_alert,
        CRASH,
    ),
    Exercise(
        "07-redeploy",
        "Redeploy after the crash and wait for the alert to resolve.",
        _redeployed,
        REDEPLOY,
    ),
    Exercise(
        "07-receiver-outage",
        "Push while the receiver is down, bring it back, and redeliver the lost push.",
        _outage,
        OUTAGE,
    ),
    Exercise(
        "07-duplicate",
        "Redeliver the same push again and see it stored as a duplicate, built once.",
        _duplicate,
        DUPLICATE,
    ),
)
