"""Lesson 07 (when things go wrong): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from ._core import Exercise, Verdict, _as_text

_STAGES = ("build", "ship", "deploy", "monitor")


def _broken_build_stage(answer: Any) -> Verdict:
    text = (_as_text(answer) or "").lower()
    if text == "build":
        return True, (
            "the build compiles every module, so a syntax error stops the run there: "
            "nothing is shipped, and the old version keeps serving."
        )
    if text in ("ship", "deploy", "monitor"):
        return False, (
            f"the run never reached {text}: which stage turns the commit's files into "
            "something that can run, and checks that they compile?"
        )
    if text in ("push", "github"):
        return False, (
            "the push webhook arrived and was verified; the run started. Which of its "
            "stages failed?"
        )
    return False, f"answer with one stage name: {', '.join(repr(s) for s in _STAGES)}."


def _duplicate_builds(answer: Any) -> Verdict:
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return False, "answer with a whole number: how many builds did the two deliveries cause?"
    if answer == 1:
        return True, (
            "the receiver marks the second delivery a duplicate by its delivery id, and "
            "the pipeline builds a commit once, however often it is delivered."
        )
    if answer == 2:
        return False, (
            "the second delivery carries the same X-GitHub-Delivery id: the receiver "
            "marks it duplicate, and the pipeline never builds a commit twice."
        )
    if answer == 0:
        return False, (
            "the first delivery is new and verified: the pipeline does build the commit, once."
        )
    return False, "count the runs the pipeline opened for that commit: one per distinct commit."


EXERCISES = (
    Exercise(
        "07-which-stage-fails",
        "Which stage fails for a commit with a syntax error?",
        _broken_build_stage,
        'answer = "build"',
    ),
    Exercise(
        "07-duplicate-builds",
        "How many times does the pipeline build a push that is delivered twice?",
        _duplicate_builds,
        "answer = 1",
    ),
)
