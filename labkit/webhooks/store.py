"""The delivery log: every request a receiver saw, in SQLite, committed before the sender hears 2xx."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from labkit.errors import StoreError
from labkit.private import SECRET_HEADERS, fingerprinted_headers, private_file

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT,
    source       TEXT NOT NULL,
    event        TEXT,
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    verified     INTEGER NOT NULL DEFAULT 0,
    received_at  TEXT NOT NULL,
    headers      TEXT NOT NULL DEFAULT '{}',
    body         BLOB,
    size         INTEGER NOT NULL DEFAULT 0,
    handled      TEXT NOT NULL DEFAULT '',
    handler_error TEXT NOT NULL DEFAULT '',
    sha256       TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS one_accepted_per_id
    ON deliveries(source, id) WHERE status = 'accepted';
CREATE INDEX IF NOT EXISTS by_id ON deliveries(id);
"""


_COLUMNS = "(id, source, event, status, reason, verified, received_at, headers, body, size, sha256)"
_INSERT = f"INSERT INTO deliveries {_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: Of a rejected request, the log keeps this much of the body (with its size and sha256): enough
#: to see what went wrong, too little for anyone who reaches the port to fill the disk.
REJECTED_BODY_KEPT = 64 * 1024
_SEEN = "SELECT 1 FROM deliveries WHERE source = ? AND id = ? AND status = 'accepted' LIMIT 1"


class Row(NamedTuple):
    """One delivery to record (what :meth:`DeliveryLog.record_many` takes)."""

    id: str | None
    source: str
    event: str | None
    status: str
    reason: str = ""
    verified: bool = False
    headers: dict[str, str] = {}
    body: bytes = b""
    size: int | None = None
    #: sha256 of the whole body, when ``body`` holds only its beginning.
    sha256: str = ""


@dataclass(frozen=True)
class Delivery:
    """One request as the receiver recorded it."""

    seq: int
    id: str | None
    source: str
    event: str | None
    status: str
    reason: str
    verified: bool
    received_at: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    size: int = 0
    handled: str = ""
    handler_error: str = ""
    #: sha256 of the whole body when only its first bytes were kept (a rejected request).
    sha256: str = ""

    @property
    def payload(self) -> Any:
        """The body as JSON (the ``payload`` field of a form body); ``None`` if it is neither."""
        from urllib.parse import parse_qs

        try:
            if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return json.loads(parse_qs(self.body.decode())["payload"][0])
            return json.loads(self.body)
        except (ValueError, KeyError, UnicodeDecodeError):
            return None

    def summary(self) -> dict[str, Any]:
        """The fields ``GET /deliveries`` lists."""
        return {
            "seq": self.seq,
            "id": self.id,
            "source": self.source,
            "event": self.event,
            "status": self.status,
            "reason": self.reason,
            "verified": self.verified,
            "received_at": self.received_at,
            "size": self.size,
            "handled": self.handled,
            "handler_error": self.handler_error,
        }

    def detail(self) -> dict[str, Any]:
        """The summary plus headers and the body as text."""
        out = self.summary()
        out["headers"] = redacted(self.headers)
        out["body"] = self.body.decode("utf-8", errors="replace")
        if self.sha256:
            out["body_sha256"] = self.sha256
            out["body_kept"] = len(self.body)
        return out


def redacted(headers: dict[str, str]) -> dict[str, str]:
    """Headers safe to show: bearer tokens and the like replaced by ``****``."""
    return {
        k: (v.split(" ", 1)[0] + " ****" if " " in v else "****")
        if k.lower() in SECRET_HEADERS
        else v
        for k, v in headers.items()
    }


def now_iso() -> str:
    """The receive time with milliseconds, UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: How far a commit goes before a delivery is acknowledged (SQLite's ``synchronous`` setting).
SYNC_MODES = {"normal": "NORMAL", "full": "FULL"}


class DeliveryLog:
    """SQLite log of deliveries; thread-safe; dedupes accepted deliveries on (source, id).

    ``path=":memory:"`` keeps it in the kernel only; a file path survives restarts.
    ``sync``: ``"normal"`` (the default) means a committed delivery survives a killed process;
    ``"full"`` also waits for the disk (fsync) before a delivery is acknowledged, so it survives
    power loss or a failing disk too, for about 30% less throughput (bench/RESULTS.md).
    """

    def __init__(self, path: str | Path = ":memory:", *, sync: str = "normal") -> None:
        if sync not in SYNC_MODES:
            raise StoreError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}.")
        self.path, self.sync = str(path), sync
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Delivery], None]] = []
        # Set by a failed write: the next write opens the file afresh (see _write).
        self._failed = False
        try:
            if self.path != ":memory:":
                private_file(self.path)
            self._db = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the delivery log at {self.path}: {exc}. "
                "Check that the folder exists and is writable, or pass db=':memory:'."
            ) from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            if self.path != ":memory:":
                # WAL + NORMAL: a committed delivery survives a killed process; power loss or a
                # failing disk can drop the last transactions. FULL syncs every commit.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={SYNC_MODES[self.sync]}")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
            if "sha256" not in columns:  # a log written by an older labkit
                db.execute("ALTER TABLE deliveries ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''")
        except sqlite3.Error:
            db.close()
            raise
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                if self._failed and self.path != ":memory:":
                    # A disk that failed under the open file (read-only after an error, or
                    # unmounted and mounted again) is only seen through a fresh open. Until one
                    # succeeds, the old connection stays, so what was logged can still be read.
                    fresh = self._connect()
                    self._db.close()
                    self._db = fresh
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
                self._failed = False
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise
            except sqlite3.Error as exc:
                self._failed = True
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite rolls back itself when the file cannot take it
                raise StoreError(
                    f"The delivery log cannot be written: {exc}{_disk_trouble(self.path)}."
                ) from None

    def record(
        self,
        *,
        id: str | None,
        source: str,
        event: str | None,
        status: str,
        reason: str = "",
        verified: bool = False,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        size: int | None = None,
    ) -> Delivery:
        """Commit one delivery and return it; an ``accepted`` one seen before becomes ``duplicate``."""
        return self.record_many(
            [Row(id, source, event, status, reason, verified, dict(headers or {}), body, size)]
        )[0]

    def record_many(self, rows: list[Row]) -> list[Delivery]:
        """Commit several deliveries in one transaction (group commit), in order.

        Each ``accepted`` row whose (source, id) was accepted before, in an earlier call or
        earlier in this batch, is stored as ``duplicate``. Nothing is returned before the commit.
        """
        received_at = now_iso()
        out: list[Delivery] = []
        with self._write() as db:
            for r in rows:
                status, reason = r.status, r.reason
                size = len(r.body) if r.size is None else r.size
                # A bearer token or cookie is kept only as a fingerprint: the log may be a file.
                headers = fingerprinted_headers(r.headers)
                values = [
                    r.id,
                    r.source,
                    r.event,
                    status,
                    reason,
                    int(r.verified),
                    received_at,
                    json.dumps(headers),
                    r.body,
                    size,
                    r.sha256,
                ]
                # Looked up first (inside the write lock and transaction) rather than left to the
                # unique index, so a duplicate takes the next number and the log has no gaps.
                if status == ACCEPTED and db.execute(_SEEN, (r.source, r.id)).fetchone():
                    status, reason = DUPLICATE, "delivery id seen before; handlers not run again"
                    values[3], values[4] = status, reason
                cur = db.execute(_INSERT, values)
                out.append(
                    Delivery(
                        seq=int(cur.lastrowid or 0),
                        id=r.id,
                        source=r.source,
                        event=r.event,
                        status=status,
                        reason=reason,
                        verified=r.verified,
                        received_at=received_at,
                        headers=headers,
                        body=r.body,
                        size=size,
                        sha256=r.sha256,
                    )
                )
        for delivery in out:
            self._publish(delivery)
        return out

    def set_handled(self, seq: int, handled: str, error: str = "") -> None:
        """Record what the handlers made of delivery ``seq`` (``ok``, ``failed``, ``none``)."""
        with self._write() as db:
            db.execute(
                "UPDATE deliveries SET handled = ?, handler_error = ? WHERE seq = ?",
                (handled, error, seq),
            )
        updated = self.by_seq(seq)
        if updated is not None:
            self._publish(updated)

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Delivery]:
        with self._lock:
            try:
                cur = self._db.execute(sql, args)
                rows = cur.fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"The delivery log cannot be read: {exc}.") from None
        return [_delivery(r) for r in rows]

    def latest(self, limit: int = 50, *, source: str | None = None) -> list[Delivery]:
        """Newest first."""
        if source:
            return self._rows(
                "SELECT * FROM deliveries WHERE source = ? ORDER BY seq DESC LIMIT ?",
                (source, limit),
            )
        return self._rows("SELECT * FROM deliveries ORDER BY seq DESC LIMIT ?", (limit,))

    def get(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id: the accepted one if any, else the newest attempt."""
        rows = self._rows(
            "SELECT * FROM deliveries WHERE id = ? ORDER BY status = 'accepted' DESC, seq DESC"
            " LIMIT 1",
            (delivery_id,),
        )
        return rows[0] if rows else None

    def by_seq(self, seq: int) -> Delivery | None:
        rows = self._rows("SELECT * FROM deliveries WHERE seq = ?", (seq,))
        return rows[0] if rows else None

    def count(self, status: str | None = None) -> int:
        with self._lock:
            if status:
                cur = self._db.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE status = ?", (status,)
                )
            else:
                cur = self._db.execute("SELECT COUNT(*) FROM deliveries")
            return int(cur.fetchone()[0])

    def clear(self) -> None:
        """Forget every delivery (a fresh start for an exercise)."""
        with self._write() as db:
            db.execute("DELETE FROM deliveries")

    def subscribe(self, callback: Callable[[Delivery], None]) -> Callable[[], None]:
        """Call ``callback(delivery)`` for every new or updated delivery; returns an unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, delivery: Delivery) -> None:
        for callback in list(self._subscribers):
            try:
                callback(delivery)
            except Exception:  # noqa: BLE001 - a broken view must never break the receiver
                pass

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _disk_trouble(path: str) -> str:
    """Why the log's folder refuses writes, found by writing a byte there ('' if it takes it).

    SQLite reports a file system that turned read-only under an open file as a plain "disk I/O
    error"; the operator needs to hear which disk and what is wrong with it.
    """
    if path == ":memory:":
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


def _delivery(row: tuple[Any, ...]) -> Delivery:
    (
        seq,
        id_,
        source,
        event,
        status,
        reason,
        verified,
        received_at,
        headers,
        body,
        size,
        handled,
        handler_error,
        sha256,
    ) = row
    return Delivery(
        seq=seq,
        id=id_,
        source=source,
        event=event,
        status=status,
        reason=reason,
        verified=bool(verified),
        received_at=received_at,
        headers=json.loads(headers),
        body=bytes(body or b""),
        size=size,
        handled=handled,
        handler_error=handler_error,
        sha256=sha256 or "",
    )
