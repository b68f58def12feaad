"""Self-checking exercises: ``check(id, answer)`` passes or hints; ``solution(id)`` shows one.

Each lesson keeps its checks and solutions in its own module (``lesson01`` ... ``lesson07``);
this module holds the catalogue, in lesson order, and the two calls the notebooks use.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from labkit.errors import ExerciseError
from labkit.teaching import record, reporting
from labkit.teaching.exercises import (
    lesson00,
    lesson01,
    lesson02,
    lesson03,
    lesson04,
    lesson05,
    lesson06,
    lesson07,
)
from labkit.teaching.exercises._core import (
    GITHUB_BODY,
    GITHUB_SECRET,
    GITHUB_SIGNATURE,
    ROTATION_NEW_SECRET,
    STANDARD_BODY,
    STANDARD_ID,
    STANDARD_SECRET,
    STANDARD_SIGNATURE,
    STANDARD_TIMESTAMP,
    Exercise,
    Hint,
    Result,
    Solution,
    _empty,
)

__all__ = [
    "EXERCISES",
    "Exercise",
    "Hint",
    "Result",
    "Solution",
    "check",
    "ids",
    "solution",
    "GITHUB_BODY",
    "GITHUB_SECRET",
    "GITHUB_SIGNATURE",
    "ROTATION_NEW_SECRET",
    "STANDARD_BODY",
    "STANDARD_ID",
    "STANDARD_SECRET",
    "STANDARD_SIGNATURE",
    "STANDARD_TIMESTAMP",
]

_LESSONS = (lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07)

#: Every exercise by id, in lesson order.
EXERCISES: dict[str, Exercise] = {e.id: e for lesson in _LESSONS for e in lesson.EXERCISES}


def ids() -> list[str]:
    """Every exercise id, in lesson order."""
    return list(EXERCISES)


def _exercise(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except (KeyError, TypeError):
        raise ExerciseError(
            f"No exercise {exercise_id!r}. The exercises are: {', '.join(EXERCISES)}."
        ) from None


#: How often each check said NOT YET with a :class:`Hint`, in this kernel: the first time shows
#: the nudge, later times the specific fix too.
_misses: dict[tuple[str, str], int] = {}


def _tiered(exercise_id: str, hint: Hint) -> tuple[str, int]:
    key = (exercise_id, hint.nudge)
    _misses[key] = _misses.get(key, 0) + 1
    if _misses[key] == 1:
        return (
            f"{hint.nudge} (Run the check again for a more specific hint, or "
            f"labkit.exercises.solution({exercise_id!r}) for a solution.)"
        ), 1
    return f"{hint.nudge} {hint.fix}", 2


def check(exercise_id: str, answer: Any) -> Result:
    """Check ``answer`` to exercise ``exercise_id``: ``PASS: ...`` or ``NOT YET: <hint>``.

    A hint comes in tiers: the first NOT YET for a mistake gives a nudge, the same mistake
    checked again gives the specific fix. Never raises for an answer, however wrong; an
    unknown id raises :class:`ExerciseError`.
    """
    exercise = _exercise(exercise_id)
    looked_at = ""
    if _empty(answer):
        verdict: tuple[Any, ...] = (
            False,
            Hint(
                f"no answer yet. Task: {exercise.task}",
                "Put your answer in `answer` in the cell above, run it, then run this check.",
            ),
        )
    else:
        try:
            verdict = tuple(exercise.checker(answer))
        except Exception as exc:  # noqa: BLE001 - a check explains, it never shows a traceback
            verdict = (
                False,
                f"the check could not read this answer ({type(exc).__name__}: "
                f"{exc}). Task: {exercise.task}",
            )
    passed, said = bool(verdict[0]), verdict[1]
    if len(verdict) > 2:
        looked_at = str(verdict[2])
    tier = 0
    if isinstance(said, Hint):
        message, tier = (said.nudge, 0) if passed else _tiered(exercise_id, said)
    else:
        message, tier = str(said), (0 if passed else 1)
    result = Result(exercise_id, passed, message, tier, looked_at)
    why = record.keep(result)
    if why is None:
        reporting.report_soon()
    else:
        result = dataclasses.replace(
            result, note=f"your progress record did not keep this check: {why}"
        )
    return result


def solution(exercise_id: str) -> Solution:
    """One working answer to ``exercise_id`` (try it yourself first)."""
    exercise = _exercise(exercise_id)
    return Solution(exercise_id, exercise.solution)
