"""The sender: authenticate, deliver with retries, refuse dangerous addresses, and log every attempt."""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import sqlite3
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

import httpcore
import httpx

from labkit.errors import BlockedAddressError, DeliveryError
from labkit.paths import labkit_home, setting
from labkit.private import (
    FINGERPRINT,
    SECRET_HEADERS,
    fingerprint,
    fingerprinted_headers,
)
from labkit.sqlite import Database
from labkit.webhooks import signing
from labkit.webhooks.events import Event

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
#: Cloud metadata endpoints that are not link-local (AWS IPv6, Alibaba).
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)


class HasHookUrl(Protocol):
    def hook_url(self, source: str) -> str: ...


# --- SSRF guard ---------------------------------------------------------------------------


def check_address(address: str, *, allow_private: bool = False, name: str | None = None) -> None:
    """Refuse link-local, metadata, unspecified and multicast addresses; private ones unless allowed.

    Loopback is where the kit's receivers listen, so a URL that says so itself
    (``http://127.0.0.1:PORT``, ``http://[::1]:PORT``, ``http://localhost:PORT``) is allowed.
    ``name`` is the DNS name ``address`` was resolved from, if any: a name that resolves to
    loopback is refused unless ``allow_private`` (``LABKIT_ALLOW_PRIVATE=1``), because that is how
    DNS rebinding reaches services on this machine.
    """
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        ip = ip.sixtofour
    if ip.is_loopback:
        if name is None or allow_private:
            return
        raise BlockedAddressError(
            f"Refusing to send to {name}: the name resolves to {address}, this machine's loopback "
            "address, which is how DNS rebinding reaches local services. For a receiver on this "
            "machine use http://127.0.0.1:PORT or http://localhost:PORT; if you mean this name, "
            "pass allow_private=True or set LABKIT_ALLOW_PRIVATE=1."
        )
    if ip.is_link_local or ip in METADATA_ADDRESSES:
        raise BlockedAddressError(
            f"Refusing to send to {address}: link-local and cloud-metadata addresses are never "
            "webhook targets (SSRF guard)."
        )
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        raise BlockedAddressError(f"Refusing to send to {address}: not a unicast host address.")
    if (ip.is_private or not ip.is_global) and not allow_private:
        raise BlockedAddressError(
            f"Refusing to send to the private address {address}. If you mean it (a container "
            "on this machine), pass allow_private=True or set LABKIT_ALLOW_PRIVATE=1."
        )


def _cannot_rebind(host: str) -> bool:
    """An IP literal or ``localhost``: a host the learner typed, which no DNS answer can move."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def _resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` once and check every answer: the only addresses to connect to.

    Raises :class:`socket.gaierror` when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    name = None if _cannot_rebind(host) else host
    for address in addresses:
        check_address(address, allow_private=allow_private, name=name)
    return addresses


def check_url(url: str, *, allow_private: bool = False) -> list[str]:
    """Check every address the URL's host resolves to; return them, the ones to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{url!r} is not an http(s) URL with a host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        return _resolve_checked(parts.hostname, port, allow_private=allow_private)
    except socket.gaierror as exc:
        raise DeliveryError(f"Cannot resolve {parts.hostname!r}: {exc.strerror}.") from None


class _CheckedBackend(httpcore.SyncBackend):
    """Connects to addresses the SSRF guard has just checked, never to a name.

    Left alone, httpx resolves the host again when it connects, and a DNS-rebinding name can
    answer a safe address to the check and 127.0.0.1 or 169.254.169.254 to the connect. Here
    each connection resolves once, checks every answer and connects only to those; the first
    uses the answer :func:`send` checked. TLS still verifies the URL's name and the Host header
    stays that name: httpcore takes both from the URL, not from ``connect_tcp``.
    """

    def __init__(self, checked: list[str], *, allow_private: bool) -> None:
        self.checked: list[str] | None = checked
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses, self.checked = self.checked, None
        if addresses is None:
            try:
                addresses = _resolve_checked(host, port, allow_private=self.allow_private)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(f"Cannot resolve {host!r}: {exc.strerror}") from None
        error: Exception = httpcore.ConnectError(f"{host!r} resolved to no address")
        for address in addresses:  # in resolver order, as socket.create_connection tries them
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


def _client(backend: _CheckedBackend, timeout: float) -> httpx.Client:
    """An httpx client that connects through ``backend`` and opens a new connection per attempt."""
    transport = httpx.HTTPTransport(verify=_tls(), trust_env=False)
    # httpx has no public way to pass a network backend; its transport wraps this pool. No
    # keep-alive, so every retry resolves and is checked afresh.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_tls(), max_keepalive_connections=0, network_backend=backend
    )
    return httpx.Client(
        transport=transport, follow_redirects=False, timeout=timeout, trust_env=False
    )


# --- secrets in the log -----------------------------------------------------------------------

_TOKEN_IN_URL = re.compile(r"([?&]token=)([^&#]+)")
_LOGGED_TOKEN = re.compile(rf"([?&]token=){FINGERPRINT.pattern}(?=[&#]|$)")


def _redacted_url(url: str) -> str:
    """``url`` with a ``?token=`` value replaced by its fingerprint."""
    return _TOKEN_IN_URL.sub(lambda m: m[1] + fingerprint(unquote_plus(m[2])), url)


# --- the log of sent attempts ---------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One try at delivering: the HTTP status, or the error that stopped it."""

    number: int
    status: int | None
    error: str
    duration_ms: float
    sent_at: str


@dataclass
class Outcome:
    """The result of :func:`send`: every attempt, and whether one got a 2xx."""

    kind: str
    delivery_id: str
    url: str
    attempts: list[Attempt] = field(default_factory=list)
    response: str = ""

    @property
    def status(self) -> int | None:
        return self.attempts[-1].status if self.attempts else None

    @property
    def detail(self) -> str:
        """The receiver's explanation (its JSON ``detail``), or the raw response text."""
        try:
            answer = json.loads(self.response)
        except ValueError:
            return self.response
        if isinstance(answer, dict) and "detail" in answer:
            return str(answer["detail"])
        if isinstance(answer, dict) and "status" in answer:
            return str(answer["status"])
        return self.response

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def __repr__(self) -> str:
        last = self.attempts[-1] if self.attempts else None
        what = (
            f"HTTP {last.status}"
            if last and last.status is not None
            else (last.error if last else "not sent")
        )
        n = len(self.attempts)
        return (
            f"<{self.kind} {'delivered' if self.ok else 'FAILED'}: {what} after {n} "
            f"attempt{'s' if n != 1 else ''}>"
        )


class SentLog:
    """Every message sent and every attempt, like GitHub's "Recent Deliveries" page.

    Bearer tokens and ``?token=`` values are kept only as fingerprints (``Bearer sha256:ab12cd34``),
    so :func:`redeliver` takes the token again. The file is its owner's alone (0600).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._store = Database(
            path or labkit_home() / "sent.db",
            what="the sent log",
            schema=_SENT_SCHEMA,
            upgrade=_hide_old_secrets,
        )
        self.path = self._store.path

    def remember(self, event: Event, url: str) -> None:
        with self._store.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.delivery_id,
                    event.kind,
                    event.source,
                    event.path,
                    _redacted_url(url),
                    json.dumps(fingerprinted_headers(event.headers)),
                    event.body,
                    "",
                ),
            )

    def add(self, delivery_id: str, attempt: Attempt) -> None:
        with self._store.write() as db:
            db.execute(
                "INSERT INTO attempts (delivery_id, number, status, error, duration_ms, sent_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    delivery_id,
                    attempt.number,
                    attempt.status,
                    attempt.error,
                    attempt.duration_ms,
                    attempt.sent_at,
                ),
            )

    def message(self, delivery_id: str) -> tuple[Event, str] | None:
        """The event as first sent (unsigned headers kept) and its URL, secrets fingerprinted."""
        with self._store.read() as db:
            row = db.execute(
                "SELECT kind, source, path, url, headers, body FROM messages WHERE delivery_id = ?",
                (delivery_id,),
            ).fetchone()
        if row is None:
            return None
        kind, source, path, url, headers, body = row
        event = Event(
            source=source,
            name=kind.split(".", 1)[1],
            delivery_id=delivery_id,
            body=bytes(body),
            headers=json.loads(headers),
            path=path,
        )
        return event, url

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """Newest attempts first, with the message kind and URL."""
        with self._store.read() as db:
            rows = db.execute(
                "SELECT a.sent_at, a.delivery_id, m.kind, m.url, a.number, a.status, a.error,"
                " a.duration_ms FROM attempts a LEFT JOIN messages m USING (delivery_id)"
                " ORDER BY a.n DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("sent_at", "delivery_id", "kind", "url", "attempt", "status", "error", "ms")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def disable(self, url: str) -> None:
        with self._store.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO disabled VALUES (?, ?)",
                (_redacted_url(url), datetime.now(UTC).isoformat()),
            )

    def enable(self, url: str) -> None:
        """Send to ``url`` again after it answered 410 Gone."""
        with self._store.write() as db:
            db.execute("DELETE FROM disabled WHERE url = ?", (_redacted_url(url),))

    def is_disabled(self, url: str) -> bool:
        with self._store.read() as db:
            return (
                db.execute("SELECT 1 FROM disabled WHERE url = ?", (_redacted_url(url),)).fetchone()
                is not None
            )


_SENT_SCHEMA = """
            CREATE TABLE IF NOT EXISTS messages (
                delivery_id TEXT PRIMARY KEY, kind TEXT, source TEXT, path TEXT, url TEXT,
                headers TEXT, body BLOB, secret_scheme TEXT);
            CREATE TABLE IF NOT EXISTS attempts (
                n INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id TEXT, number INTEGER,
                status INTEGER, error TEXT, duration_ms REAL, sent_at TEXT);
            CREATE TABLE IF NOT EXISTS disabled (url TEXT PRIMARY KEY, since TEXT);
        """


def _hide_old_secrets(db: sqlite3.Connection) -> None:
    """Fingerprint the secrets a log from before labkit did so still holds, leaving no copy."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= 1:
        return
    db.execute("PRAGMA secure_delete=ON")  # zero the old bytes instead of only unlinking them
    db.execute("BEGIN IMMEDIATE")
    for delivery_id, url, headers in db.execute(
        "SELECT delivery_id, url, headers FROM messages"
    ).fetchall():
        db.execute(
            "UPDATE messages SET url = ?, headers = ? WHERE delivery_id = ?",
            (
                _redacted_url(url),
                json.dumps(fingerprinted_headers(json.loads(headers))),
                delivery_id,
            ),
        )
    disabled = db.execute("SELECT url, since FROM disabled").fetchall()
    db.execute("DELETE FROM disabled")
    db.executemany(
        "INSERT OR REPLACE INTO disabled VALUES (?, ?)",
        [(_redacted_url(url), since) for url, since in disabled],
    )
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # old pages live on in the WAL too


_default_log: SentLog | None = None


def default_log() -> SentLog:
    """The sent log under :func:`labkit_home`, opened once per process."""
    global _default_log
    wanted = str(labkit_home() / "sent.db")
    if _default_log is None or _default_log.path != wanted:
        _default_log = SentLog(wanted)
    return _default_log


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """How many retries and how long to wait: exponential backoff with full jitter."""

    retries: int = 4
    backoff: float = 0.5
    max_delay: float = 8.0
    timeout: float = 10.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay * 4)
        return random.uniform(0, min(self.max_delay, self.backoff * 2**retry))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None


_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~20 ms, every send paid it."""
    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


def target_url(event: Event, to: str | HasHookUrl, secret: str | None) -> str:
    """Where the event goes: a receiver's hook URL, a base URL plus the event's path, or a full URL."""
    if not isinstance(to, str):
        return str(to.hook_url(event.source))
    parts = urlsplit(to)
    path = parts.path if parts.path not in ("", "/") else event.path
    query = parts.query
    if event.source == "dockerhub" and secret and "token=" not in query:
        query = urlencode([*parse_qsl(query), ("token", secret)])
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _authenticate(event: Event, secret: str | list[str] | None) -> Event:
    if not secret:
        return event
    if event.source == "standard":
        ts = int(time.time())  # a fresh timestamp and signature on every attempt
        return replace(
            event,
            headers={
                **event.headers,
                **signing.standard_headers(secret, event.delivery_id, ts, event.body),
            },
        )
    if event.source == "dockerhub":
        return event
    key = secret[0] if isinstance(secret, list) else secret
    return event.signed(key)


def send(
    event: Event,
    to: str | HasHookUrl,
    *,
    secret: str | list[str] | None = None,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 10.0,
    allow_private: bool | None = None,
    log: SentLog | None = None,
) -> Outcome:
    """Deliver ``event`` to ``to`` (a Receiver, a base URL or a full hook URL).

    Retries connection errors, 5xx, 408 and 429 (honouring ``Retry-After``) with exponential
    backoff and jitter; other 4xx are final; 410 disables the URL; redirects are not followed.
    Every attempt carries the same delivery id. Returns an :class:`Outcome` (``.ok`` on a 2xx;
    its ``url`` shows a ``?token=`` only as a fingerprint).

    Each attempt resolves the host once, checks every address (:func:`check_address`: loopback
    only when the URL says ``127.0.0.1``, ``[::1]`` or ``localhost``; private addresses only with
    ``allow_private`` or ``LABKIT_ALLOW_PRIVATE=1``) and connects to those addresses only, so a
    name cannot answer one address to the check and another to the connection.
    """
    schedule = Schedule(retries=retries, backoff=backoff, timeout=timeout)
    if allow_private is None:
        allow_private = setting("LABKIT_ALLOW_PRIVATE") not in ("", "0")
    secret_text = secret[0] if isinstance(secret, list) else secret
    url = target_url(event, to, secret_text)
    backend = _CheckedBackend(
        check_url(url, allow_private=allow_private), allow_private=allow_private
    )
    sent = log or default_log()
    shown = _redacted_url(url)
    if sent.is_disabled(url):
        raise DeliveryError(
            f"{shown} answered 410 Gone earlier, so it is disabled. Re-enable it "
            "with labkit.webhooks.sender.default_log().enable(url) if it is back."
        )
    # GitHub signatures do not expire, so redelivery reuses them (the log fingerprints bearer
    # tokens, which redeliver() takes again); Standard Webhooks need a fresh timestamp, so those
    # are kept unsigned.
    sent.remember(event if event.source == "standard" else _authenticate(event, secret), url)
    outcome = Outcome(event.kind, event.delivery_id, shown)
    with _client(backend, schedule.timeout) as client:
        for number in range(1, schedule.retries + 2):
            attempt_event = _authenticate(event, secret)
            started = time.perf_counter()
            sent_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            retry_after: float | None = None
            try:
                response = client.post(
                    url, content=attempt_event.body, headers=dict(attempt_event.headers)
                )
                status: int | None = response.status_code
                error = "" if response.is_success else response.reason_phrase
                outcome.response = response.text[:2000]
                retry_after = _retry_after(response.headers.get("retry-after"))
            except httpx.HTTPError as exc:
                status, error = (
                    None,
                    f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                )
            attempt = Attempt(
                number, status, error, round((time.perf_counter() - started) * 1000, 2), sent_at
            )
            outcome.attempts.append(attempt)
            sent.add(event.delivery_id, attempt)
            if status is not None and 200 <= status < 300:
                break
            if status == 410:
                sent.disable(url)
                break
            if status is not None and status not in RETRY_STATUSES:
                break
            if number <= schedule.retries:
                time.sleep(schedule.delay(number - 1, retry_after))
    return outcome


def redeliver(
    delivery_id: str,
    *,
    to: str | None = None,
    secret: str | list[str] | None = None,
    log: SentLog | None = None,
    **options: Any,
) -> Outcome:
    """Send a logged message again with the same delivery id (like GitHub's "Redeliver").

    The log keeps a bearer token or ``?token=`` only as a fingerprint, so such a message needs
    ``secret`` again (the current one); GitHub signatures are reused as they are.
    """
    sent = log or default_log()
    found = sent.message(delivery_id)
    if found is None:
        raise DeliveryError(
            f"No sent message with delivery id {delivery_id!r}; "
            "`labkit deliveries` lists the ones there are."
        )
    event, url = found
    url = to or url
    hidden = {
        name
        for name, value in event.headers.items()
        if name.lower() in SECRET_HEADERS and FINGERPRINT.search(value)
    }
    if hidden or _LOGGED_TOKEN.search(url):
        token = secret[0] if isinstance(secret, list) else secret
        if not token:
            raise DeliveryError(
                f"Delivery {delivery_id} was sent with a token, and the sent log keeps only its "
                f"fingerprint. Pass the token again: labkit.redeliver({delivery_id!r}, "
                f"secret=TOKEN), or `labkit redeliver {delivery_id} --secret TOKEN` (or set "
                "LABKIT_WEBHOOK_SECRET)."
            )
        # The token it was sent with: the one given, or the one derived from a secret that
        # serves every source (signing.token_for); the logged fingerprint tells which.
        logged = set(FINGERPRINT.findall(" ".join([url, *event.headers.values()])))
        match = next(
            (t for t in (token, signing.token_for(token)) if fingerprint(t) in logged), None
        )
        if match is None:
            raise DeliveryError(
                f"Delivery {delivery_id} was sent with the token {sorted(logged)[0]}; the secret "
                f"given is {fingerprint(token)} and does not derive it. Pass the token (or the "
                "secret) it was sent with."
            )
        token = match
        event = event.with_headers(
            {name: FINGERPRINT.sub(lambda _: token, event.headers[name]) for name in hidden}
        )
        url = _LOGGED_TOKEN.sub(lambda m: m[1] + quote(token, safe=""), url)
        secret = token
    return send(event, url, secret=secret, log=sent, **options)
