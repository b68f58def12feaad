"""Self-checking exercises: ``check(id, answer)`` passes or hints; ``solution(id)`` shows one.

Each lesson keeps its checks and solutions in its own module (``lesson01`` ... ``lesson07``);
this module holds the catalogue, in lesson order, and the two calls the notebooks use.
"""

from __future__ import annotations

from typing import Any

from ..errors import ExerciseError
from . import lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07
from ._core import (
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
    Result,
    Solution,
    _empty,
)

__all__ = ["EXERCISES", "Exercise", "Result", "Solution", "check", "ids", "solution",
           "GITHUB_BODY", "GITHUB_SECRET", "GITHUB_SIGNATURE", "ROTATION_NEW_SECRET",
           "STANDARD_BODY", "STANDARD_ID", "STANDARD_SECRET", "STANDARD_SIGNATURE",
           "STANDARD_TIMESTAMP"]

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
        raise ExerciseError(f"No exercise {exercise_id!r}. The exercises are: "
                            f"{', '.join(EXERCISES)}.") from None


def check(exercise_id: str, answer: Any) -> Result:
    """Check ``answer`` to exercise ``exercise_id``: ``PASS: ...`` or ``NOT YET: <hint>``.

    Never raises for an answer, however wrong; an unknown id raises :class:`ExerciseError`.
    """
    exercise = _exercise(exercise_id)
    if _empty(answer):
        return Result(exercise_id, False, f"no answer yet. Task: {exercise.task} Put your answer "
                                          "in `answer` in the cell above and run both cells.")
    try:
        passed, message = exercise.checker(answer)
    except Exception as exc:  # noqa: BLE001 - a check explains, it never shows a traceback
        passed, message = False, (f"the check could not read this answer ({type(exc).__name__}: "
                                  f"{exc}). Task: {exercise.task}")
    return Result(exercise_id, passed, message)


def solution(exercise_id: str) -> Solution:
    """One working answer to ``exercise_id`` (try it yourself first)."""
    exercise = _exercise(exercise_id)
    return Solution(exercise_id, exercise.solution)
