"""The learner's progress record: every check, kept in one private SQLite file under $LABKIT_HOME.

Keeping the record must never get in the way of learning: a missing, locked or corrupted file
makes :func:`record` return why it was not kept, and the check still answers.
"""

from __future__ import annotations

import html
import itertools
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import StoreError
from labkit.paths import labkit_home
from labkit.sqlite import Database

FILENAME = "progress.db"
#: A pause longer than this between two checks of a lesson is not counted as time spent.
IDLE_GAP = 15 * 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    lesson TEXT NOT NULL,
    exercise TEXT NOT NULL,
    passed INTEGER NOT NULL,
    tier INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reported (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    upto INTEGER NOT NULL
)"""


def path() -> Path:
    """Where this learner's record lives: in ``$LABKIT_HOME`` (``~/.labkit``)."""
    return labkit_home() / FILENAME


def _open(file: Path) -> Database:
    # Opened for each call and closed again: the kernel, the command line and the classroom's
    # reporter all use the same file. A check waits at most half a second for another writer.
    return Database(file, what="the progress record", schema=_SCHEMA, wal=False, busy=0.5)


def record(
    lesson: str,
    exercise: str,
    passed: bool,
    tier: int,
    *,
    file: Path | None = None,
    at: float | None = None,
) -> str | None:
    """Add one check to the record; ``None`` when kept, else why it was not (never raises)."""
    file = file or path()
    try:
        db = _open(file)
        try:
            with db.write() as c:
                c.execute(
                    "INSERT INTO checks (at, lesson, exercise, passed, tier) VALUES (?,?,?,?,?)",
                    (time.time() if at is None else at, lesson, exercise, int(passed), tier),
                )
        finally:
            db.close()
    except (StoreError, sqlite3.Error, OSError) as exc:
        return f"{type(exc).__name__}: {exc} ({file})"
    return None


@dataclass(frozen=True)
class Attempt:
    """One recorded check."""

    at: float
    lesson: str
    exercise: str
    passed: bool
    tier: int


def attempts(file: Path | None = None) -> list[Attempt]:
    """Every recorded check, oldest first (empty when there is no record yet)."""
    file = file or path()
    if not file.exists():
        return []
    db = _open(file)
    try:
        rows = db.rows("SELECT at, lesson, exercise, passed, tier FROM checks ORDER BY at, id")
        return [Attempt(float(r[0]), str(r[1]), str(r[2]), bool(r[3]), int(r[4])) for r in rows]
    finally:
        db.close()


def unreported(file: Path | None = None) -> list[tuple[int, Attempt]]:
    """The checks a classroom has not acknowledged yet, with their ids, oldest first."""
    file = file or path()
    if not file.exists():
        return []
    db = _open(file)
    try:
        row = db.rows("SELECT upto FROM reported WHERE one = 1")
        rows = db.rows(
            "SELECT id, at, lesson, exercise, passed, tier FROM checks WHERE id > ? ORDER BY id",
            (int(row[0][0]) if row else 0,),
        )
        return [
            (int(r[0]), Attempt(float(r[1]), str(r[2]), str(r[3]), bool(r[4]), int(r[5])))
            for r in rows
        ]
    finally:
        db.close()


def mark_reported(upto: int, file: Path | None = None) -> None:
    """Remember that the classroom acknowledged every check up to id ``upto``."""
    db = _open(file or path())
    try:
        with db.write() as c:
            c.execute(
                "INSERT INTO reported (one, upto) VALUES (1, ?) "
                "ON CONFLICT(one) DO UPDATE SET upto = max(upto, excluded.upto)",
                (upto,),
            )
    finally:
        db.close()


@dataclass(frozen=True)
class LessonProgress:
    """One lesson's line in the report."""

    lesson: str
    exercises: tuple[str, ...]
    done: tuple[str, ...]
    tried: tuple[str, ...]
    seconds: float
    hints: int
    checks: int

    @property
    def not_started(self) -> tuple[str, ...]:
        return tuple(e for e in self.exercises if e not in self.done and e not in self.tried)


def summarise(catalogue: Iterable[str], checks: list[Attempt]) -> list[LessonProgress]:
    """Per lesson: exercises done (passed once), tried (never passed), time spent, hints seen."""
    by_lesson: dict[str, list[str]] = {}
    for exercise in catalogue:
        by_lesson.setdefault(exercise[:2], []).append(exercise)
    for attempt in checks:
        known = by_lesson.setdefault(attempt.lesson, [])
        if attempt.exercise not in known:
            known.append(attempt.exercise)
    out = []
    for lesson, exercises in sorted(by_lesson.items()):
        mine = [a for a in checks if a.lesson == lesson]
        done = {a.exercise for a in mine if a.passed}
        tried = {a.exercise for a in mine} - done
        times = [a.at for a in mine]
        seconds = sum(min(b - a, IDLE_GAP) for a, b in itertools.pairwise(times))
        out.append(
            LessonProgress(
                lesson,
                tuple(exercises),
                tuple(e for e in exercises if e in done),
                tuple(e for e in exercises if e in tried),
                seconds,
                sum(1 for a in mine if a.tier > 0),
                len(mine),
            )
        )
    return out


def _minutes(seconds: float) -> str:
    return f"{round(seconds / 60)} min"


def table(progress: list[LessonProgress]) -> str:
    """The learner's progress as a plain-text table."""
    lines = [
        f"{'lesson':<7} {'done':>5} {'tried':>6} {'not started':>12} {'time':>8} "
        f"{'checks':>7} {'hints':>6}"
    ]
    for p in progress:
        lines.append(
            f"{p.lesson:<7} {len(p.done):>2}/{len(p.exercises):<2} {len(p.tried):>6} "
            f"{len(p.not_started):>12} {_minutes(p.seconds):>8} {p.checks:>7} "
            f"{p.hints:>6}"
        )
    return "\n".join(lines)


def html_report(progress: list[LessonProgress], *, who: str = "") -> str:
    """A one-page report a learner can hand in."""

    def cell(items: tuple[str, ...]) -> str:
        return html.escape(", ".join(items)) or "&ndash;"

    rows = "\n".join(
        f"<tr><td>{html.escape(p.lesson)}</td><td>{len(p.done)}/{len(p.exercises)}</td>"
        f"<td>{cell(p.done)}</td><td>{cell(p.tried)}</td><td>{cell(p.not_started)}</td>"
        f"<td>{_minutes(p.seconds)}</td><td>{p.checks}</td><td>{p.hints}</td></tr>"
        for p in progress
    )
    title = "labkit progress" + (f": {html.escape(who)}" if who else "")
    made = time.strftime("%Y-%m-%d %H:%M")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>{title}</h1><p>Made {made} from this learner's own record of every check.</p>
<table><tr><th>lesson</th><th>done</th><th>passed</th><th>tried, not yet passed</th>
<th>not started</th><th>time</th><th>checks run</th><th>hints shown</th></tr>
{rows}
</table></body></html>
"""


def lesson_of(exercise_id: str) -> str:
    """``"02-verify"`` -> ``"02"``."""
    return exercise_id[:2]


def keep(result: Any) -> str | None:
    """Record an exercise :class:`~labkit.teaching.exercises.Result`; ``None`` or why it was not kept."""
    return record(
        lesson_of(result.exercise),
        result.exercise,
        bool(result.passed),
        int(getattr(result, "tier", 0)),
    )
