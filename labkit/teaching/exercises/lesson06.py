"""Lesson 06 (push, build, deploy, monitor): the learner's Dockerfile, push trigger and deploy
notification, checked against the files, the git hook's real pushes and the pipeline's runs."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

from labkit.pipeline.pipeline import PIPELINES
from labkit.runtime.composefile import dockerfile_instructions, seconds
from labkit.teaching.exercises._core import Exercise, Hint, Verdict, _as_text

_TASK = re.compile(r"#\s*TASK \d+:")
_ZERO = "0" * 40
FEATURE = "refs/heads/feature/check"

DOCKERFILE_BUILD = """\
labkit.fill_task(src.workdir / "Dockerfile", 1, '''
COPY --chown=app:app . /app/
RUN python3 -m compileall -q /app
''')
answer = src.workdir / "Dockerfile\""""

DOCKERFILE_HEALTH = """\
labkit.fill_task(src.workdir / "Dockerfile", 2, '''
HEALTHCHECK --interval=1s --timeout=2s --retries=30 CMD ["labkit-probe", "http://127.0.0.1:8000/healthz"]
''')
answer = src.workdir / "Dockerfile\""""

TRIGGER = """\
@rx.on("github", "push")
def release_on_push(delivery):
    push = delivery.payload
    if push["ref"] == "refs/heads/main" and not push["deleted"]:
        pipeline.release(push["after"], delivery)

answer = release_on_push"""

FIRST_PUSH = """\
src.commit("Write the Dockerfile")
print(src.push().hook)
answer = pipeline.wait(src.head, timeout=90)"""

NOTIFY = """\
pipeline.notify_deploys(monitoring.hook_url("standard"), secret=MONITORING_SECRET)
src.replace("app.py", "version 2", "version 3")
src.commit("Say version 3")
src.push()
answer = monitoring.wait_for(source="standard", since=seen, timeout=90)[0]"""


def _dockerfile_starter(task: int) -> str:
    return (
        f"# Write the lines of TASK {task} in your clone's Dockerfile, with\n"
        f'# labkit.fill_task(src.workdir / "Dockerfile", {task}, """...your lines...""")\n'
        "# (or in a terminal editor), then run this cell and the check.\n"
        'answer = src.workdir / "Dockerfile"'
    )


def _dockerfile(answer: Any) -> tuple[list[tuple[str, str]] | None, str, str]:
    """The instructions of the Dockerfile ``answer`` names, its text, or why not."""

    path = Path(os.fspath(answer)) if isinstance(answer, (str, os.PathLike)) else None
    if path is None or not path.is_file():
        return None, "", 'Set answer to the path of your Dockerfile: src.workdir / "Dockerfile".'
    text = path.read_text()
    return dockerfile_instructions(text), text, ""


_LOOKED_FILE = "your Dockerfile, instruction by instruction, as the builder reads it"


def _dockerfile_build(answer: Any) -> Verdict:
    steps, text, why = _dockerfile(answer)
    if steps is None:
        return False, why
    froms = [args for keyword, args in steps if keyword == "FROM"]
    if froms != ["labkit/python-app:bookworm"]:
        return (
            False,
            "Keep the one FROM line as it was, FROM labkit/python-app:bookworm: that image is "
            "built on this machine, so the build never pulls anything.",
            _LOOKED_FILE,
        )
    copies = [(i, args) for i, (keyword, args) in enumerate(steps) if keyword in ("COPY", "ADD")]
    runs = [(i, args) for i, (keyword, args) in enumerate(steps) if keyword == "RUN"]
    if "TASK 1:" in text and not copies:
        return (
            False,
            Hint(
                "The TASK 1 line is still a comment: the image has no code in it yet. Two "
                "steps go there: copy the repository into /app/, then compile it.",
                'labkit.fill_task(src.workdir / "Dockerfile", 1, "COPY --chown=app:app . '
                '/app/\\nRUN python3 -m compileall -q /app")',
            ),
            _LOOKED_FILE,
        )
    if not copies or not any(
        " . " in f" {args} " and args.split()[-1].rstrip("/") == "/app" for _, args in copies
    ):
        return (
            False,
            "COPY the repository (the build context, `.`) to /app/: COPY --chown=app:app . /app/",
            _LOOKED_FILE,
        )
    index, copy = copies[-1]
    if "--chown=app" not in copy:
        return (
            False,
            Hint(
                "The app runs as the user app (USER app); files COPY writes belong to root "
                "unless you say otherwise, and the compile step cannot write its cache there.",
                "Write COPY --chown=app:app . /app/",
            ),
            _LOOKED_FILE,
        )
    compile_steps = [i for i, args in runs if "compileall" in args and "/app" in args]
    if not compile_steps:
        return (
            False,
            Hint(
                "Nothing in the build would notice a module that does not compile: the broken "
                "commit would be shipped and fail only when it starts. Add a RUN step.",
                "After the COPY: RUN python3 -m compileall -q /app (it exits 1 on a "
                "syntax error, so the build fails there).",
            ),
            _LOOKED_FILE,
        )
    if compile_steps[-1] < index:
        return False, "RUN the compile step after the COPY: before it, /app is empty.", _LOOKED_FILE
    return (
        True,
        "the build copies the repository into /app/ as the user app and fails on a module "
        "that does not compile.",
        _LOOKED_FILE,
    )


def _dockerfile_healthcheck(answer: Any) -> Verdict:

    steps, text, why = _dockerfile(answer)
    if steps is None:
        return False, why
    checks = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    if not checks:
        return (
            False,
            Hint(
                "No HEALTHCHECK yet: the engine cannot tell a started container from a ready "
                "one, and the deploy waits for healthy before it switches traffic.",
                'labkit.fill_task(src.workdir / "Dockerfile", 2, \'HEALTHCHECK --interval=1s '
                '--timeout=2s --retries=30 CMD ["labkit-probe", '
                '"http://127.0.0.1:8000/healthz"]\')',
            ),
            _LOOKED_FILE,
        )
    check = checks[-1]
    options, _, command = check.partition("CMD")
    if not command.strip():
        return (
            False,
            'The HEALTHCHECK needs a command: ... CMD ["labkit-probe", '
            '"http://127.0.0.1:8000/healthz"]',
            _LOOKED_FILE,
        )
    if "labkit-probe" not in command or "/healthz" not in command or "8000" not in command:
        return (
            False,
            f"The check runs {command.strip()}: it must ask the app itself, with labkit-probe "
            "on http://127.0.0.1:8000/healthz (inside the container, 127.0.0.1 is the app).",
            _LOOKED_FILE,
        )
    interval = re.search(r"--interval=(\S+)", options)
    if interval is None or seconds(interval.group(1)) > 2:
        return (
            False,
            Hint(
                "Docker's default interval is 30 s, and the first check comes one interval "
                "after the start: the lesson's pipeline gives a new version 20 s to get healthy, so "
                "every deploy would be rolled back.",
                "Add --interval=1s (and --timeout=2s --retries=30) before CMD.",
            ),
            _LOOKED_FILE,
        )
    return (
        True,
        "the engine asks /healthz every second, and the deploy switches traffic only once "
        "the new container says healthy.",
        _LOOKED_FILE,
    )


def _pipelines() -> list[Any]:

    return [p for p in PIPELINES.live() if p.running]


def _registered(pipeline: Any, handler: Any) -> list[tuple[str, str | None]]:
    return [(s, e) for s, e, h, _ in pipeline.receiver.dispatcher.handlers if h is handler]


def _simulate(pipeline: Any, handler: Any, delivery: Any, **changes: Any) -> list[tuple[Any, ...]]:
    """Call ``handler`` with ``delivery``'s payload changed, ``pipeline.release`` recorded
    instead of run; returns the calls it made."""
    payload = dict(delivery.payload)
    payload.update(changes)
    fake = dataclasses.replace(delivery, body=json.dumps(payload).encode())
    calls: list[tuple[Any, ...]] = []
    pipeline.release = lambda *args, **kwargs: calls.append((*args, *kwargs.values()))
    try:
        handler(fake)
    finally:
        del pipeline.release  # the class's method again
    return calls


def _push_trigger(answer: Any) -> Verdict:
    if not callable(answer):
        return False, "Set answer to your handler function itself: answer = release_on_push."
    found = [p for p in _pipelines() if ("github", "push") in _registered(p, answer)]
    if not found:
        return (
            False,
            Hint(
                "Your function is not a handler on the lesson's receiver yet: nothing calls it "
                "when a push arrives.",
                'Put @rx.on("github", "push") on the line above def, and run the cell again.',
            ),
            "the receiver's handlers",
        )
    pipeline = found[-1]
    rx, src = pipeline.receiver, pipeline.source
    looked = (
        "two real pushes through the git hook (a feature branch, then its deletion), what your "
        "handler did with each, and its answer to the same push made to main"
    )
    mark = rx.log.count()
    before = len(pipeline.releases)
    commit = src.git(
        "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "A feature branch (the check's)"
    ).strip()
    src.git("push", "origin", f"{commit}:{FEATURE}")
    src.git("push", "origin", f":{FEATURE}")
    try:
        pushes = rx.wait_for(2, source="github", since=mark, timeout=20)
    except TimeoutError:
        return (
            False,
            "The git hook's push webhooks did not arrive: is the receiver running (rx)?",
            looked,
        )
    rx.idle()
    for push in pushes:
        logged = rx.log.by_seq(push.seq)
        name = getattr(answer, "__name__", "")
        errors = [
            e for e in (logged.handler_error if logged else "").split("; ") if e.startswith(name)
        ]
        if errors:
            return (
                False,
                f"Your handler raised on a real push: {errors[0]}. Read the "
                "push's payload: delivery.payload['ref'], ['after'], ['deleted'].",
                looked,
            )
    if len(pipeline.releases) > before:
        return (
            False,
            Hint(
                f"Your trigger asked for a release of a push to {FEATURE}: only main is "
                "deployed. (The pipeline is building that commit now.)",
                'Release only when delivery.payload["ref"] == "refs/heads/main".',
            ),
            looked,
        )
    main = _simulate(pipeline, answer, pushes[0], ref=src.ref, deleted=False, after=commit)
    if not main:
        return (
            False,
            Hint(
                "The same push made to main did not ask for a release: nothing would deploy.",
                'For refs/heads/main call pipeline.release(delivery.payload["after"], delivery).',
            ),
            looked,
        )
    if main[0][0] != commit:
        return (
            False,
            f"Your trigger asked to release {main[0][0]!r}: pass the pushed commit, "
            'delivery.payload["after"].',
            looked,
        )
    if len(main[0]) < 2 or getattr(main[0][1], "seq", None) is None:
        return (
            False,
            "Pass the delivery too, pipeline.release(push['after'], delivery): the run then "
            "records which push started it.",
            looked,
        )
    deleted = _simulate(pipeline, answer, pushes[1], ref=src.ref, deleted=True, after=_ZERO)
    if deleted:
        return (
            False,
            Hint(
                "A push that deletes main asked for a release: there is nothing to build.",
                'Skip pushes whose payload says "deleted": true.',
            ),
            looked,
        )
    return (
        True,
        "your trigger ignored a feature branch and its deletion, and releases what is pushed "
        "to main.",
        looked,
    )


def _first_push(answer: Any) -> Verdict:

    if not hasattr(answer, "stages") or not hasattr(answer, "delivery_id"):
        return (
            False,
            "Set answer to what pipeline.wait(src.head, timeout=90) returns: the run of the "
            "commit you pushed.",
        )
    pipeline = PIPELINES.get(answer.pipeline)
    if pipeline is None:
        return False, "The lesson's pipeline is not running: run the cells of section 4 again."
    looked = "the pipeline's run history, the push delivery that started the run, the pushed commit"
    run = pipeline.runs.get(answer.id)
    if run is None:
        return False, "That run is not in the pipeline's history: wait for it again.", looked
    src, rx = pipeline.source, pipeline.receiver
    if run.commit != src.pushed():
        return (
            False,
            "That run is not of the commit on main now: push, then wait for src.head.",
            looked,
        )
    dockerfile = src.git("show", f"{run.commit}:Dockerfile")
    if _TASK.search(dockerfile):
        return (
            False,
            Hint(
                "The pushed commit's Dockerfile still has TASK lines: the pipeline builds what "
                "you commit, not what is in your editor.",
                "Finish tasks 1 and 2, then src.commit(...) before src.push().",
            ),
            looked,
        )
    push = next((d for d in rx.deliveries(200, source="github") if d.id == run.delivery_id), None)
    if push is None or not run.delivery_id:
        return (
            False,
            "This run names no push delivery: release it from your trigger with the "
            "delivery, pipeline.release(push['after'], delivery).",
            looked,
        )
    if run.commit not in pipeline.releases:
        return False, "This run was not released by your trigger: is it registered?", looked
    if run.status != "passed":
        stuck = ", ".join(f"{s.name} {s.status}" for s in run.stages if s.status != "passed")
        return (
            False,
            f"Run {run.id} did not pass ({stuck}): read print(answer.reason) and the stage "
            "logs (answer.stage('deploy').log), fix, commit and push again.",
            looked,
        )
    return (
        True,
        f"run {run.id} passed: the hook's signed push reached your trigger, and the commit "
        "with your Dockerfile was built, shipped, deployed and stayed healthy.",
        looked,
    )


def _deploy_notification(answer: Any) -> Verdict:
    looked = "the monitoring receiver's delivery log and the version that serves now"
    if not hasattr(answer, "payload") or not hasattr(answer, "verified"):
        return (
            False,
            "Set answer to the notification as the monitoring receiver logged it: "
            'monitoring.wait_for(source="standard", since=seen, timeout=90)[0].',
        )
    if answer.source != "standard":
        return (
            False,
            Hint(
                f"That is a {answer.source} delivery. The deploy notification is a Standard "
                "Webhooks message, on the monitoring receiver.",
                'pipeline.notify_deploys(monitoring.hook_url("standard"), '
                "secret=MONITORING_SECRET), then push a change.",
            ),
            looked,
        )
    if not answer.verified:
        return (
            False,
            "The monitoring receiver could not verify it: give notify_deploys the monitoring "
            "receiver's secret (secret=MONITORING_SECRET).",
            looked,
        )
    payload = answer.payload or {}
    if payload.get("type") != "deployment.succeeded":
        return (
            False,
            f"It says {payload.get('type')!r}: that deploy did not succeed. Read "
            "answer.payload['data']['detail'], fix, commit and push again.",
            looked,
        )
    data = payload.get("data") or {}
    serving = None
    for pipeline in _pipelines():
        try:
            with httpx.Client(timeout=3.0, trust_env=False) as client:
                serving = client.get(pipeline.url + "/version").json().get("version")
        except (httpx.HTTPError, ValueError):
            continue
        if serving == data.get("version"):
            return (
                True,
                "the monitoring tool heard of the deploy from the pipeline itself: a signed "
                "deployment.succeeded naming the version that serves now.",
                looked,
            )
    return (
        False,
        f"The notification names version {data.get('version')!r}, but {serving!r} serves "
        "now: wait for the notification of your newest push (since=seen, before you pushed).",
        looked,
    )


def _deploy_trigger(answer: Any) -> Verdict:
    text = (_as_text(answer) or "").lower().removeprefix("/hooks/")
    if text == "registry":
        return True, (
            "the registry's push notification for the new tag starts the deploy: the "
            "build is only deployed once it is really in the registry."
        )
    if text == "github":
        return False, Hint(
            "The push starts your trigger, which asks for build and ship, not the deploy.",
            "Which sender tells the pipeline that the build has arrived where the deploy "
            "pulls it from? Look at the deliveries between the push and the engine's start.",
        )
    if text in ("alertmanager", "engine", "standard"):
        return False, Hint(
            "Those webhooks come after a deploy (monitoring, the engine's events, the "
            "notification).",
            "Look at what arrives between the ship and the deploy: the registry's manifest push.",
        )
    return False, (
        "Answer with one source name: 'github', 'registry', 'alertmanager', 'engine' or 'standard'."
    )


EXERCISES = (
    Exercise(
        "06-dockerfile-build",
        "In your Dockerfile, copy the repository into /app/ and fail the build on a module "
        "that does not compile.",
        _dockerfile_build,
        DOCKERFILE_BUILD,
        _dockerfile_starter(1),
    ),
    Exercise(
        "06-dockerfile-healthcheck",
        "In your Dockerfile, a HEALTHCHECK that asks the app's /healthz every second.",
        _dockerfile_healthcheck,
        DOCKERFILE_HEALTH,
        _dockerfile_starter(2),
    ),
    Exercise(
        "06-push-trigger",
        "A handler on rx for GitHub pushes that releases pushes to main (not deletions).",
        _push_trigger,
        TRIGGER,
    ),
    Exercise(
        "06-first-push",
        "Commit your Dockerfile, push, and wait for the run your trigger started.",
        _first_push,
        FIRST_PUSH,
    ),
    Exercise(
        "06-which-webhook-deploys",
        "Which webhook source starts the deploy?",
        _deploy_trigger,
        'answer = "registry"',
    ),
    Exercise(
        "06-deploy-notification",
        "Send a deploy notification to the monitoring receiver, push a change, and catch it.",
        _deploy_notification,
        NOTIFY,
    ),
)
