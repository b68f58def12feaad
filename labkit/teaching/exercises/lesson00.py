"""Lesson 00 (start here): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from labkit.teaching.exercises._core import Exercise, Verdict


def _lesson_map(answer: Any) -> Verdict:
    text = str(answer).strip().lower()
    number = text.split("-")[0].lstrip("0") or "0"
    if number == "2":
        return True, "lesson 02 signs and verifies GitHub deliveries."
    if number == "1":
        return False, (
            "lesson 01 sends unsigned deliveries to get you started; look in the lesson "
            "map for the lesson that mentions signatures."
        )
    if number == "3":
        return False, (
            "lesson 03 uses signatures with timestamps, but the first lesson on "
            "signing is an earlier one: look at the lesson map again."
        )
    return False, "give the lesson number as it appears in the lesson map, for example 1 or '01'."


EXERCISES = (
    Exercise(
        "00-lesson-map",
        "Which lesson teaches you to verify a webhook signature?",
        _lesson_map,
        "answer = 2",
    ),
)
