"""The Event value every builder returns, and the id/clock source that makes builders deterministic."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from labkit.private import fingerprinted_headers
from labkit.webhooks import signing

#: The instant a deterministic source starts at (notebook outputs stay stable).
FIXED_CLOCK = datetime(2026, 1, 15, 9, 30, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One webhook delivery as its real sender would put it on the wire.

    ``body`` holds the exact bytes; ``headers`` the exact headers (signature headers are
    added by :meth:`signed`). ``path`` is the receiver route it belongs to.
    """

    source: str
    name: str
    delivery_id: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = ""

    def __repr__(self) -> str:
        # A bearer token signed in by the learner must not show wherever the event is printed.
        return (
            f"Event(source={self.source!r}, name={self.name!r}, "
            f"delivery_id={self.delivery_id!r}, body=<{len(self.body)} bytes>, "
            f"headers={fingerprinted_headers(self.headers)!r}, path={self.path!r})"
        )

    @property
    def payload(self) -> Any:
        """The body parsed back into Python (JSON, or the ``payload`` field of a form body)."""
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            from urllib.parse import parse_qs

            return json.loads(parse_qs(self.body.decode())["payload"][0])
        return json.loads(self.body)

    @property
    def kind(self) -> str:
        """``source.name``, the form ``labkit trigger`` uses."""
        return f"{self.source}.{self.name}"

    def with_body(self, body: bytes) -> Event:
        """The same delivery with other body bytes and unchanged headers (to show tampering)."""
        return replace(self, body=body)

    def with_headers(self, headers: Mapping[str, str] | None = None, /, **more: str) -> Event:
        """The same delivery with headers added or replaced.

        Pass a mapping for names with dashes (``{"X-GitHub-Delivery": ...}``) or keywords.
        """
        merged = dict(self.headers)
        merged.update(headers or {})
        merged.update(more)
        return replace(self, headers=merged)

    def signed(self, secret: str | bytes, *, timestamp: int | None = None) -> Event:
        """The delivery with the authentication its real sender would add for ``secret``.

        GitHub: ``X-Hub-Signature`` and ``X-Hub-Signature-256``. Standard Webhooks: a
        ``webhook-signature`` over id, timestamp and body. Docker Hub: the token goes in the
        URL (see :func:`labkit.send`), so the event is unchanged. Registry and Alertmanager:
        ``Authorization: Bearer <secret>``.
        """
        headers = dict(self.headers)
        if self.source == "github":
            headers.update(signing.github_headers(self.body, secret))
        elif self.source == "standard":
            ts = timestamp if timestamp is not None else int(headers.get("webhook-timestamp", "0"))
            headers["webhook-timestamp"] = str(ts)
            headers["webhook-signature"] = signing.standard_sign(
                secret, self.delivery_id, ts, self.body
            )
        elif self.source in ("registry", "alertmanager", "engine"):
            token = secret.decode() if isinstance(secret, bytes) else secret
            headers["Authorization"] = f"Bearer {token}"
        return replace(self, headers=headers)


class IdSource:
    """Where builders get ids and the time: random and the real clock, or seeded and fixed."""

    def __init__(self, seed: int | None = None, now: datetime | None = None) -> None:
        self._random = random.Random(seed) if seed is not None else None
        self._now = now
        self._ticks = 0

    @property
    def deterministic(self) -> bool:
        return self._random is not None

    def guid(self) -> str:
        """A GUID like GitHub's ``X-GitHub-Delivery``."""
        if self._random is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def hex(self, length: int) -> str:
        """``length`` lowercase hex digits (commit ids, digests, fingerprints)."""
        if self._random is None:
            return _random_hex(length)
        return "".join(self._random.choice("0123456789abcdef") for _ in range(length))

    def number(self, low: int, high: int) -> int:
        """An integer id in ``[low, high]``."""
        if self._random is None:
            return random.randint(low, high)
        return self._random.randint(low, high)

    def now(self) -> datetime:
        """The current instant; a fixed clock advances one second per call."""
        if self._now is None:
            return datetime.now(UTC).replace(microsecond=0)
        from datetime import timedelta

        at = self._now + timedelta(seconds=self._ticks)
        self._ticks += 1
        return at


def _random_hex(length: int) -> str:
    import secrets

    return secrets.token_hex((length + 1) // 2)[:length]


_source = IdSource()


def ids() -> IdSource:
    """The id source builders use now."""
    return _source


def deterministic(seed: int = 0, now: datetime = FIXED_CLOCK) -> None:
    """Make every builder from now on draw seeded ids and a fixed clock (stable notebook output).

    Call it again with the same seed to start the same sequence over.
    """
    global _source
    _source = IdSource(seed, now)


def live() -> None:
    """Go back to random ids and the real clock."""
    global _source
    _source = IdSource()


@contextmanager
def seeded(seed: int = 0, now: datetime = FIXED_CLOCK) -> Iterator[IdSource]:
    """``with seeded(1): ...``: deterministic inside the block, as before after it."""
    global _source
    before = _source
    _source = IdSource(seed, now)
    try:
        yield _source
    finally:
        _source = before


def json_body(payload: Any) -> bytes:
    """Compact JSON the way the real senders serialise it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def iso(at: datetime) -> str:
    """``2026-01-15T09:30:00Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_json_body(payload: Any, *, indent: int | None = None, newline: bool = False) -> bytes:
    """JSON the way Go's ``encoding/json`` writes it (registry, Alertmanager).

    Compact (``json.Marshal``/``Encoder.Encode``) or indented (``json.MarshalIndent``), with
    ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as Go does; ``newline`` adds the ``\\n``
    that ``Encoder.Encode`` ends with.
    """
    if indent is None:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(payload, indent=indent, ensure_ascii=False)
    # These characters only ever occur inside JSON strings, so a plain replace is safe.
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return (text + ("\n" if newline else "")).encode()


def rfc3339_nano(at: datetime, nanos: int = 0) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds with trailing zeros trimmed."""
    base = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"
