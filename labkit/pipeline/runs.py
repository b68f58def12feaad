"""The pipeline-run store: every run and its stages (build, ship, deploy, monitor) in SQLite, with their logs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.sqlite import Database

STAGES = ("build", "ship", "deploy", "monitor")
WAITING, RUNNING, PASSED, FAILED, ROLLED_BACK, SKIPPED = (
    "waiting",
    "running",
    "passed",
    "failed",
    "rolled back",
    "skipped",
)
#: Every status a stage can have; a run is ``running``, ``passed`` or ``failed``.
STATUSES = (WAITING, RUNNING, PASSED, FAILED, ROLLED_BACK, SKIPPED)
FINISHED = frozenset({PASSED, FAILED, ROLLED_BACK, SKIPPED})
#: A stage keeps at most this many characters of log (the oldest lines go first).
MAX_LOG = 64_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline    TEXT NOT NULL,
    service     TEXT NOT NULL,
    commit_id   TEXT NOT NULL,
    ref         TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL DEFAULT '',
    delivery_id TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    artifact    TEXT NOT NULL DEFAULT '',
    started_at  REAL NOT NULL,
    ended_at    REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_run_per_commit ON runs(pipeline, service, commit_id);
CREATE TABLE IF NOT EXISTS stages (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  REAL,
    ended_at    REAL,
    detail      TEXT NOT NULL DEFAULT '',
    log         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, name)
);
"""


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its status, when it started and ended, a one-line detail, its log."""

    name: str
    status: str
    started_at: float | None = None
    ended_at: float | None = None
    detail: str = ""
    log: str = ""

    @property
    def seconds(self) -> float | None:
        """How long it took (so far, while running); ``None`` before it started."""
        if self.started_at is None:
            return None
        return (self.ended_at if self.ended_at is not None else time.time()) - self.started_at

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class PipelineRun:
    """One push going through the pipeline: the commit, its stages and the outcome."""

    id: int
    pipeline: str
    service: str
    commit: str
    ref: str
    message: str
    author: str
    delivery_id: str
    status: str
    reason: str
    artifact: str
    started_at: float
    ended_at: float | None
    stages: tuple[Stage, ...] = field(default_factory=tuple)

    @property
    def short(self) -> str:
        return self.commit[:7]

    @property
    def finished(self) -> bool:
        return self.status != RUNNING

    @property
    def seconds(self) -> float:
        return (self.ended_at if self.ended_at is not None else time.time()) - self.started_at

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"No stage {name!r}; the stages are {', '.join(STAGES)}.")

    @property
    def outcome(self) -> str:
        """What happened, with the deploy and what came after it told apart:
        ``deployed``, ``deployed, then failed: alert WebDown firing``, ``rolled back``,
        ``failed at build``."""
        by_name = {s.name: s for s in self.stages}
        deploy, monitor = by_name.get("deploy"), by_name.get("monitor")
        if deploy is not None and deploy.status == PASSED:
            if monitor is not None and monitor.status == FAILED:
                return f"deployed, then failed: {self.reason or monitor.detail}"
            return "deployed" if self.finished else "deployed, monitoring"
        if self.status == ROLLED_BACK or (deploy is not None and deploy.status == ROLLED_BACK):
            return "rolled back"
        failed = next((s.name for s in self.stages if s.status == FAILED), None)
        if failed is not None:
            return f"failed at {failed}"
        return self.status

    def summary(self) -> str:
        """``run 2: passed (build passed, ship passed, ...)``: stable words, no ids or times."""
        stages = ", ".join(f"{s.name} {s.status}" for s in self.stages)
        return f"run {self.id}: {self.status} ({stages})"

    def __repr__(self) -> str:
        return f"<PipelineRun {self.id} of {self.service}@{self.short}: {self.status}>"


_RUN_FIELDS = (
    "id",
    "pipeline",
    "service",
    "commit",
    "ref",
    "message",
    "author",
    "delivery_id",
    "status",
    "reason",
    "artifact",
    "started_at",
    "ended_at",
)


class RunStore:
    """SQLite store of pipeline runs; thread-safe; one run per (pipeline, service, commit).

    ``path=":memory:"`` keeps it in the kernel only. ``subscribe`` calls back on every change,
    which is how the flow widget stays live.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._store = Database(path, what="the run store", schema=_SCHEMA)
        self.path = self._store.path
        self._subscribers: list[Callable[[int], None]] = []

    # --- writing --------------------------------------------------------------------------
    def open_run(
        self,
        *,
        pipeline: str,
        service: str,
        commit: str,
        ref: str = "",
        message: str = "",
        author: str = "",
        delivery_id: str = "",
    ) -> PipelineRun | None:
        """Start a run with every stage ``waiting``; ``None`` if this commit already has one."""
        now = time.time()
        try:
            with self._store.write() as db:
                run_id = int(
                    db.execute(
                        "INSERT INTO runs (pipeline, service, commit_id, ref, message, author,"
                        " delivery_id, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            pipeline,
                            service,
                            commit,
                            ref,
                            message,
                            author,
                            delivery_id,
                            RUNNING,
                            now,
                        ),
                    ).lastrowid
                    or 0
                )
                db.executemany(
                    "INSERT INTO stages (run_id, position, name, status) VALUES (?, ?, ?, ?)",
                    [(run_id, i, name, WAITING) for i, name in enumerate(STAGES)],
                )
        except sqlite3.IntegrityError:
            return None
        self._publish(run_id)
        return self.get(run_id)

    def stage(self, run_id: int, name: str, status: str, detail: str | None = None) -> None:
        """Set a stage's status (and one-line detail); start and end times follow the status."""
        if status not in STATUSES:
            raise ValueError(f"{status!r} is not a stage status: use one of {', '.join(STATUSES)}.")
        now = time.time()
        sets = ["status = ?"]
        args: list[Any] = [status]
        if status == RUNNING:
            sets.append("started_at = COALESCE(started_at, ?)")
            args.append(now)
        if status in FINISHED:
            sets.append("ended_at = ?")
            args.append(None if status == SKIPPED else now)
            if status != SKIPPED:
                sets.append("started_at = COALESCE(started_at, ?)")
                args.append(now)
        if detail is not None:
            sets.append("detail = ?")
            args.append(detail)
        with self._store.write() as db:
            db.execute(
                f"UPDATE stages SET {', '.join(sets)} WHERE run_id = ? AND name = ?",
                (*args, run_id, name),
            )
        self._publish(run_id)

    def log(self, run_id: int, name: str, line: str) -> None:
        """Add a line to a stage's log."""
        with self._store.write() as db:
            db.execute(
                "UPDATE stages SET log = substr(log || ? || char(10), -?) "
                "WHERE run_id = ? AND name = ?",
                (line, MAX_LOG, run_id, name),
            )
        self._publish(run_id)

    def finish(
        self, run_id: int, status: str, reason: str = "", artifact: str | None = None
    ) -> None:
        """End a run ``passed`` or ``failed``; stages still ``waiting`` become ``skipped``."""
        with self._store.write() as db:
            db.execute(
                "UPDATE runs SET status = ?, reason = ?, ended_at = ?,"
                " artifact = COALESCE(?, artifact) WHERE id = ?",
                (status, reason, time.time(), artifact, run_id),
            )
            db.execute(
                "UPDATE stages SET status = ? WHERE run_id = ? AND status = ?",
                (SKIPPED, run_id, WAITING),
            )
        self._publish(run_id)

    def set_artifact(self, run_id: int, artifact: str) -> None:
        with self._store.write() as db:
            db.execute("UPDATE runs SET artifact = ? WHERE id = ?", (artifact, run_id))
        self._publish(run_id)

    def reopen(self, run_id: int, status: str, reason: str) -> None:
        """Change a finished run's status later (an alert after it passed)."""
        with self._store.write() as db:
            db.execute(
                "UPDATE runs SET status = ?, reason = ? WHERE id = ?", (status, reason, run_id)
            )
        self._publish(run_id)

    # --- reading --------------------------------------------------------------------------
    def get(self, run_id: int) -> PipelineRun | None:
        runs = self._runs("WHERE id = ?", (run_id,))
        return runs[0] if runs else None

    def for_commit(self, commit: str, *, pipeline: str | None = None) -> PipelineRun | None:
        """The run of ``commit`` (a full id or a prefix of at least 7 characters)."""
        if len(commit) < 7:
            raise ValueError("Give at least 7 characters of the commit id.")
        where, args = "WHERE commit_id LIKE ?", [commit + "%"]
        if pipeline is not None:
            where += " AND pipeline = ?"
            args.append(pipeline)
        runs = self._runs(where + " ORDER BY id DESC LIMIT 1", tuple(args))
        return runs[0] if runs else None

    def latest(self, limit: int = 20, *, pipeline: str | None = None) -> list[PipelineRun]:
        """Newest first."""
        if pipeline is None:
            return self._runs("ORDER BY id DESC LIMIT ?", (limit,))
        return self._runs("WHERE pipeline = ? ORDER BY id DESC LIMIT ?", (pipeline, limit))

    def _runs(self, where: str, args: tuple[Any, ...]) -> list[PipelineRun]:
        with self._store.read() as db:
            rows = db.execute(
                "SELECT id, pipeline, service, commit_id, ref, message, author, delivery_id,"
                f" status, reason, artifact, started_at, ended_at FROM runs {where}",
                args,
            ).fetchall()
            out = []
            for row in rows:
                stages = tuple(
                    Stage(*s)
                    for s in db.execute(
                        "SELECT name, status, started_at, ended_at, detail, log FROM stages"
                        " WHERE run_id = ? ORDER BY position",
                        (row[0],),
                    ).fetchall()
                )
                fields = dict(zip(_RUN_FIELDS, row, strict=True))
                out.append(PipelineRun(**fields, stages=stages))
        return out

    # --- live views ---------------------------------------------------------------------
    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(run_id)`` after every change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, run_id: int) -> None:
        for callback in list(self._subscribers):
            try:
                callback(run_id)
            except Exception:  # noqa: BLE001 - a broken view must never break the pipeline
                pass

    def close(self) -> None:
        self._store.close()


__all__ = [
    "FAILED",
    "PASSED",
    "ROLLED_BACK",
    "RUNNING",
    "SKIPPED",
    "STAGES",
    "STATUSES",
    "WAITING",
    "PipelineRun",
    "RunStore",
    "Stage",
]
