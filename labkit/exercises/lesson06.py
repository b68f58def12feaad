"""Lesson 06 (push, build, deploy, monitor): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from ._core import Exercise, Verdict, _as_text


def _shipped_change(answer: Any) -> Verdict:
    stages = getattr(answer, "stages", None)
    if stages is None or not hasattr(answer, "status"):
        return False, (
            "set answer to what pipeline.wait(commit, timeout=60) returns: the run of "
            "the commit you pushed."
        )
    if answer.id <= 2:
        return False, (
            f"run {answer.id} is one of the lesson's own runs: change the greeting, "
            "commit, push, then wait for the run of your commit."
        )
    if answer.status != "passed":
        stuck = [f"{s.name} {s.status}" for s in stages if s.status != "passed"]
        return False, (
            f"run {answer.id} did not pass ({', '.join(stuck)}): read "
            "answer.reason, fix the app, commit and push again."
        )
    return True, (
        f"run {answer.id} passed: your change was built, shipped, deployed and stayed healthy."
    )


def _deploy_trigger(answer: Any) -> Verdict:
    text = (_as_text(answer) or "").lower().removeprefix("/hooks/")
    if text == "registry":
        return True, (
            "the registry's push notification for the new tag starts the deploy: the "
            "build is only deployed once it is really in the registry."
        )
    if text == "github":
        return False, (
            "the push starts the build and the ship; which sender tells the pipeline "
            "that the build has arrived where the deploy pulls it from?"
        )
    if text in ("alertmanager", "engine"):
        return False, (
            "those webhooks come from the monitor, after a deploy; look at what arrives "
            "between the ship and the deploy."
        )
    return False, "answer with one source name: 'github', 'registry', 'alertmanager' or 'engine'."


EXERCISES = (
    Exercise(
        "06-ship-a-change",
        "Change the greeting, commit, push, and wait for the run of your commit.",
        _shipped_change,
        'src.replace("app.py", "version 2", "version 3")\n'
        'commit = src.commit("Say version 3")\n'
        "print(src.push().hook)\n"
        "answer = pipeline.wait(commit, timeout=60)",
    ),
    Exercise(
        "06-which-webhook-deploys",
        "Which webhook source starts the deploy?",
        _deploy_trigger,
        'answer = "registry"',
    ),
)
