"""The delivery log: every request a receiver saw, in SQLite, committed before the sender hears 2xx."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from labkit.private import SECRET_HEADERS, fingerprinted_headers
from labkit.sqlite import Database

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


class DeliveryLog:
    """SQLite log of deliveries; thread-safe; dedupes accepted deliveries on (source, id).

    ``path=":memory:"`` keeps it in the kernel only; a file path survives restarts.
    ``sync``: ``"normal"`` (the default) means a committed delivery survives a killed process;
    ``"full"`` also waits for the disk (fsync) before a delivery is acknowledged, so it survives
    power loss or a failing disk too, for about 30% less throughput (bench/RESULTS.md).
    """

    def __init__(self, path: str | Path = ":memory:", *, sync: str = "normal") -> None:
        self._store = Database(
            path, what="the delivery log", schema=_SCHEMA, sync=sync, upgrade=_upgrade
        )
        self.path, self.sync = self._store.path, sync
        self._subscribers: list[Callable[[Delivery], None]] = []

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
        with self._store.write() as db:
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
        with self._store.write() as db:
            db.execute(
                "UPDATE deliveries SET handled = ?, handler_error = ? WHERE seq = ?",
                (handled, error, seq),
            )
        updated = self.by_seq(seq)
        if updated is not None:
            self._publish(updated)

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Delivery]:
        return [_delivery(r) for r in self._store.rows(sql, args)]

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
        if status:
            return int(
                self._store.rows("SELECT COUNT(*) FROM deliveries WHERE status = ?", (status,))[0][
                    0
                ]
            )
        return int(self._store.rows("SELECT COUNT(*) FROM deliveries")[0][0])

    def clear(self) -> None:
        """Forget every delivery (a fresh start for an exercise)."""
        with self._store.write() as db:
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
        self._store.close()


def _upgrade(db: sqlite3.Connection) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
    if "sha256" not in columns:  # a log written by an older labkit
        db.execute("ALTER TABLE deliveries ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''")


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
