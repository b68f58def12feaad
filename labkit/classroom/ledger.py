"""The class's progress, as the class view keeps it: every check each learner reported.

One SQLite file in the classroom's folder. A check is stored once per (learner, id): a batch
sent again after a lost answer adds nothing. What the instructor sees (:func:`Ledger.rows`,
:func:`Ledger.most_failed`) is computed from the checks, never stored twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import BadReport
from labkit.sqlite import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    learner TEXT NOT NULL,
    id INTEGER NOT NULL,
    at REAL NOT NULL,
    lesson TEXT NOT NULL,
    exercise TEXT NOT NULL,
    passed INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    received REAL NOT NULL,
    PRIMARY KEY (learner, id)
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    learner TEXT NOT NULL,
    received REAL NOT NULL
)"""

_EXERCISE = re.compile(r"^[0-9]{2}-[a-z0-9-]{1,60}$")
LEARNER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class Check:
    id: int
    at: float
    lesson: str
    exercise: str
    passed: bool
    tier: int


def checks_from(data: Mapping[str, Any]) -> tuple[str, list[Check]]:
    """The learner and checks of a report's ``data``; :class:`BadReport` says what is wrong."""
    who = data.get("learner")
    if not isinstance(who, str) or not LEARNER.match(who):
        raise BadReport("data.learner must be a learner's name (a-z, 0-9, - and _)")
    items = data.get("checks")
    if not isinstance(items, list) or not items or len(items) > 1000:
        raise BadReport("data.checks must be a list of 1 to 1000 checks")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadReport(f"data.checks[{n}] must be an object")
        try:
            check = Check(
                int(item["id"]),
                float(item["at"]),
                str(item["lesson"]),
                str(item["exercise"]),
                bool(item["passed"]),
                int(item["tier"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadReport(f"data.checks[{n}]: {type(exc).__name__} {exc}") from None
        if (
            check.id < 1
            or not _EXERCISE.match(check.exercise)
            or check.lesson != check.exercise[:2]
        ):
            raise BadReport(f"data.checks[{n}] has no valid id, exercise and lesson")
        if not isinstance(item["passed"], bool) or not 0 <= check.tier <= 9:
            raise BadReport(f"data.checks[{n}]: passed must be true or false, tier 0 to 9")
        out.append(check)
    return who, out


@dataclass(frozen=True)
class LearnerRow:
    """One learner, as the instructor's table shows them."""

    learner: str
    lesson: str  # the lesson of their latest check, "" before any
    last_check: float | None
    passed: int  # exercises passed at least once
    tried: int  # exercises checked at least once
    stuck_on: str  # an exercise tried and not passed yet, the latest one; "" when none
    stuck_tries: int


@dataclass(frozen=True)
class FailedCheck:
    """An exercise across the class: failed checks, and who has not passed it yet."""

    exercise: str
    failures: int
    learners_tried: int
    learners_not_passed: int


class Ledger:
    """The class view's store of every learner's checks."""

    def __init__(self, file: Path) -> None:
        self.file = Path(file)
        # No write-ahead log: ``classroom down --forget-work`` forgets the class by one file.
        self._store = Database(self.file, what="the class ledger", schema=_SCHEMA, wal=False)

    def add(self, learner: str, msg_id: str, checks: Iterable[Check]) -> int:
        """Store a report; returns how many checks were new (0 for a message seen before)."""
        now = time.time()
        with self._store.write() as db:
            seen = db.execute(
                "INSERT OR IGNORE INTO messages (id, learner, received) VALUES (?,?,?)",
                (msg_id, learner, now),
            )
            if seen.rowcount == 0:
                return 0
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO checks VALUES (?,?,?,?,?,?,?,?)",
                [
                    (learner, c.id, c.at, c.lesson, c.exercise, int(c.passed), c.tier, now)
                    for c in checks
                ],
            )
            return db.total_changes - before

    def learners(self) -> list[str]:
        return [str(r[0]) for r in self._store.rows("SELECT DISTINCT learner FROM checks")]

    def rows(self, learners: Iterable[str] = ()) -> list[LearnerRow]:
        """One row per learner (those named, and any who reported), sorted by name."""
        checks = self._store.rows(
            "SELECT learner, at, lesson, exercise, passed FROM checks ORDER BY at, id"
        )
        names = sorted(set(learners) | {str(r[0]) for r in checks})
        out = []
        for name in names:
            mine = [r for r in checks if r[0] == name]
            passed = {r[3] for r in mine if r[4]}
            tried = {r[3] for r in mine}
            stuck = [r for r in mine if r[3] not in passed]
            stuck_on = stuck[-1][3] if stuck else ""
            out.append(
                LearnerRow(
                    name,
                    mine[-1][2] if mine else "",
                    float(mine[-1][1]) if mine else None,
                    len(passed),
                    len(tried),
                    stuck_on,
                    sum(1 for r in stuck if r[3] == stuck_on),
                )
            )
        return out

    def most_failed(self, limit: int = 10) -> list[FailedCheck]:
        """The exercises with the most failed checks across the class, most first."""
        rows = self._store.rows(
            """SELECT exercise,
                          SUM(1 - passed),
                          COUNT(DISTINCT learner),
                          COUNT(DISTINCT learner) - COUNT(DISTINCT CASE WHEN passed
                                                                   THEN learner END)
                   FROM checks GROUP BY exercise HAVING SUM(1 - passed) > 0
                   ORDER BY 2 DESC, 1 LIMIT ?""",
            (limit,),
        )
        return [FailedCheck(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]
