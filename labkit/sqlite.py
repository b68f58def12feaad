"""The one way labkit keeps a SQLite file: the delivery log, the sent log, pipeline runs, the
learner's progress record and the class view's ledger all open theirs through :class:`Database`.

- The file is private (0600) before SQLite writes a byte into it; ``":memory:"`` keeps the data
  in this process only.
- ``wal=True``: write-ahead logging with ``synchronous`` NORMAL (a committed row survives a killed
  process) or FULL (it also waits for the disk). Another process's readers never wait for a
  writer; within this process, threads share one connection under one lock, so a read waits for
  a write transaction under way.
- Every write is one ``BEGIN IMMEDIATE`` transaction.
- A write that fails (a disk error, or a lock another process did not release in time) marks the
  database failed; the next write opens the file afresh (a disk that turned read-only, or was
  mounted again, is only seen through a new open). Until one succeeds the old connection stays,
  so what was kept can still be read.
- Errors are :class:`~labkit.errors.StoreError` in words: what cannot be written, and what is wrong
  with the folder (read-only, full) when a probe write there shows it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labkit.errors import StoreError
from labkit.private import private_file

MEMORY = ":memory:"
#: How far a commit goes before it returns (SQLite's ``synchronous`` setting, with ``wal=True``).
SYNC_MODES = {"normal": "NORMAL", "full": "FULL"}


class Database:
    """One SQLite file (or ``":memory:"``) with its schema, shared by this process's threads.

    ``what`` names it in errors ("the delivery log"). ``schema`` is run on every open
    (``CREATE TABLE IF NOT EXISTS ...``); ``upgrade(connection)`` then brings an older file's
    tables up to date. ``busy`` is how long a write waits for another process's write.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        what: str,
        schema: str,
        wal: bool = True,
        sync: str = "normal",
        busy: float = 5.0,
        upgrade: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        if sync not in SYNC_MODES:
            raise StoreError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}.")
        self.path, self.what, self.sync = str(path), what, sync
        self._schema, self._wal, self._busy, self._upgrade = schema, wal, busy, upgrade
        self._lock = threading.RLock()
        self._failed = False
        try:
            if not self.in_memory:
                private_file(self.path)
            self._db = self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"Cannot open {what} at {self.path}: {exc}. Check that the folder exists and is "
                "writable, or use ':memory:'."
            ) from None

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=self._busy
        )
        try:
            if self._wal and not self.in_memory:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={SYNC_MODES[self.sync]}")
            db.executescript(self._schema)
            if self._upgrade is not None:
                self._upgrade(db)
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. An ``IntegrityError`` (a duplicate key) is rolled back and raised
        as it is, for the caller to answer; any other SQLite error becomes a :class:`StoreError`."""
        with self._lock:
            try:
                if self._failed and not self.in_memory:
                    fresh = self._connect()
                    self._db.close()
                    self._db = fresh
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
                self._failed = False
            except BaseException as exc:
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    self._failed = True
                try:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # rolled back by SQLite itself (the file cannot take it), or closed
                if isinstance(exc, sqlite3.IntegrityError) or not isinstance(exc, sqlite3.Error):
                    raise
                raise StoreError(
                    f"{self.what[0].upper()}{self.what[1:]} cannot be written: {str(exc).rstrip('.')}"
                    f"{disk_trouble(self.path)}."
                ) from None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads, while no other thread uses it."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot read {self.what} at {self.path}: {exc}.") from None

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Every row of one query."""
        with self.read() as db:
            return db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def disk_trouble(path: str) -> str:
    """Why a database's folder refuses writes, found by writing a byte there ('' if it takes it).

    SQLite reports a file system that turned read-only under an open file as a plain "disk I/O
    error"; whoever runs it needs to hear which disk and what is wrong with it.
    """
    if path == MEMORY:
        return ""
    folder = Path(path).resolve().parent
    probe = folder / f".labkit-write-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            probe.unlink()
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return f" (the file system under {folder} is read-only: remount it read-write)"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f" (the disk under {folder} is full: free some space)"
        return f" ({folder} refuses writes: {exc.strerror})"
    return ""
