"""labkit.send against real local HTTP servers: retries, Retry-After, 410, redirects, ids, SSRF guard."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from labkit import (
    BlockedAddressError,
    DeliveryError,
    Outcome,
    Receiver,
    events,
    redeliver,
    send,
    signing,
)
from labkit.webhooks.events import Event
from labkit.webhooks.sender import SentLog, check_address

from conftest import SECRET
from support import Reply, ScriptedServer, free_port, poll

FAST: dict[str, Any] = {"retries": 3, "backoff": 0.01, "timeout": 5.0}


@pytest.fixture
def sent(tmp_path: Path) -> SentLog:
    return SentLog(tmp_path / "sent.db")


def gh_event(delivery_id: str = "gh-1") -> Event:
    return events.github.push(delivery_id=delivery_id)


def std_event(msg_id: str = "msg_sender1") -> Event:
    return Event(
        source="standard",
        name="message",
        delivery_id=msg_id,
        body=b'{"type":"image.pushed","data":{}}',
        headers={"Content-Type": "application/json", "webhook-id": msg_id},
        path="/hooks/standard",
    )


# --- retries ---------------------------------------------------------------------------------


def test_connection_refused_is_retried_then_fails(sent: SentLog) -> None:
    port = free_port()
    t0 = time.monotonic()
    outcome = send(gh_event(), f"http://127.0.0.1:{port}", secret=SECRET, log=sent, **FAST)
    assert not outcome.ok
    assert len(outcome.attempts) == FAST["retries"] + 1
    assert all(a.status is None and "Connect" in a.error for a in outcome.attempts)
    assert [a.number for a in outcome.attempts] == [1, 2, 3, 4]
    assert time.monotonic() - t0 < 5  # backoff=0.01 keeps the whole schedule short
    assert len(sent.recent(50)) == 4


def test_connection_refused_then_the_receiver_comes_up(sent: SentLog) -> None:
    """Down for the first attempt(s), up for a later one: the retry delivers it."""
    port = free_port()
    result: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: result.append(
            send(
                gh_event("gh-late"),
                f"http://127.0.0.1:{port}",
                secret=SECRET,
                log=sent,
                retries=30,
                backoff=0.05,
                timeout=5.0,
            )
        )
    )
    worker.start()
    try:
        poll(lambda: len(sent.recent()) >= 1, what="the first refused attempt")
        with ScriptedServer([202], port=port) as server:
            worker.join(timeout=30)
            assert not worker.is_alive()
    finally:
        worker.join(timeout=30)
    outcome = result[0]
    assert outcome.ok
    assert outcome.attempts[0].status is None and outcome.attempts[-1].status == 202
    assert [s.headers["x-github-delivery"] for s in server.seen] == ["gh-late"]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_retryable_statuses_are_retried_with_the_same_delivery_id(
    sent: SentLog, status: int
) -> None:
    with ScriptedServer([status, status, 200]) as server:
        outcome = send(gh_event("gh-retry"), server.url, secret=SECRET, log=sent, **FAST)
    assert outcome.ok
    assert [a.status for a in outcome.attempts] == [status, status, 200]
    assert len(server.seen) == 3
    assert {s.headers["x-github-delivery"] for s in server.seen} == {"gh-retry"}
    # every attempt is signed over the same body
    for seen in server.seen:
        assert signing.verify_github(seen.body, SECRET, seen.headers["x-hub-signature-256"])


def test_retries_are_bounded(sent: SentLog) -> None:
    with ScriptedServer([500]) as server:
        outcome = send(gh_event(), server.url, secret=SECRET, log=sent, **FAST)
    assert not outcome.ok and outcome.status == 500
    assert len(server.seen) == FAST["retries"] + 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(sent: SentLog, status: int) -> None:
    with ScriptedServer([status, 200]) as server:
        outcome = send(gh_event(), server.url, secret=SECRET, log=sent, **FAST)
    assert not outcome.ok
    assert outcome.status == status
    assert len(server.seen) == 1


def test_429_retry_after_seconds_is_honoured(sent: SentLog) -> None:
    with ScriptedServer([Reply(429, {"Retry-After": "1"}), 200]) as server:
        outcome = send(gh_event(), server.url, secret=SECRET, log=sent, **FAST)
    assert outcome.ok
    gap = server.seen[1].at - server.seen[0].at
    assert gap >= 0.95, f"retried after {gap:.3f} s despite Retry-After: 1"
    assert gap < 5


def test_503_retry_after_http_date_is_honoured(sent: SentLog) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    with ScriptedServer([Reply(503, {"Retry-After": when}), 200]) as server:
        outcome = send(gh_event(), server.url, secret=SECRET, log=sent, **FAST)
    assert outcome.ok
    gap = server.seen[1].at - server.seen[0].at
    assert gap >= 0.9, f"retried after {gap:.3f} s despite Retry-After: {when}"
    assert gap < 5


# --- 410 and redirects -----------------------------------------------------------------------


def test_410_disables_the_url(sent: SentLog) -> None:
    with ScriptedServer([410, 200]) as server:
        url = f"{server.url}/hooks/github"
        outcome = send(gh_event(), url, secret=SECRET, log=sent, **FAST)
        assert not outcome.ok and outcome.status == 410
        assert len(server.seen) == 1
        assert sent.is_disabled(url)
        with pytest.raises(DeliveryError, match="410"):
            send(gh_event("gh-2"), url, secret=SECRET, log=sent, **FAST)
        assert len(server.seen) == 1  # nothing went out
        sent.enable(url)
        assert send(gh_event("gh-3"), url, secret=SECRET, log=sent, **FAST).ok
        assert len(server.seen) == 2


def test_redirect_is_a_failure_and_not_followed(sent: SentLog) -> None:
    with (
        ScriptedServer([200]) as elsewhere,
        ScriptedServer([Reply(302, {"Location": f"{elsewhere.url}/hooks/github"})]) as server,
    ):
        outcome = send(gh_event(), server.url, secret=SECRET, log=sent, **FAST)
        assert not outcome.ok
        assert outcome.status == 302
        assert len(server.seen) == 1  # 3xx is final, not retried
        assert elsewhere.seen == []  # and the Location was never visited


@pytest.mark.parametrize("status", [301, 307, 308])
def test_other_redirects_are_not_followed_either(sent: SentLog, status: int) -> None:
    with (
        ScriptedServer([200]) as elsewhere,
        ScriptedServer([Reply(status, {"Location": elsewhere.url})]) as server,
    ):
        outcome = send(gh_event(), server.url, secret=SECRET, log=sent, **FAST)
    assert not outcome.ok and outcome.status == status
    assert elsewhere.seen == []


# --- Standard Webhooks: same id, fresh timestamp and signature per attempt -------------------------


def test_standard_webhooks_fresh_timestamp_per_attempt(sent: SentLog) -> None:
    secret = signing.new_standard_secret(b"k" * 32)
    with ScriptedServer(
        [Reply(429, {"Retry-After": "1"}), Reply(503, {"Retry-After": "1"}), 200]
    ) as server:
        outcome = send(std_event(), server.url, secret=secret, log=sent, **FAST)
    assert outcome.ok
    assert len(server.seen) == 3
    assert {s.headers["webhook-id"] for s in server.seen} == {"msg_sender1"}
    stamps = [int(s.headers["webhook-timestamp"]) for s in server.seen]
    assert stamps[0] < stamps[1] < stamps[2], stamps
    assert len({s.headers["webhook-signature"] for s in server.seen}) == 3
    for seen, ts in zip(server.seen, stamps, strict=True):
        signing.verify_standard(
            secret,
            seen.headers["webhook-id"],
            seen.headers["webhook-timestamp"],
            seen.headers["webhook-signature"],
            seen.body,
            now=ts,
        )


def test_standard_webhooks_delivered_to_a_receiver(
    make_receiver: Callable[..., Receiver], sent: SentLog
) -> None:
    secret = signing.new_standard_secret(b"r" * 32)
    rx = make_receiver(None, secrets={"standard": secret})
    outcome = send(std_event("msg_to_rx"), rx, secret=secret, log=sent, **FAST)
    assert outcome.ok, outcome
    assert rx.deliveries(1)[0].id == "msg_to_rx"


# --- SSRF guard --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hooks/github",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://100.100.100.200/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:8000/",
        "http://[::]:8000/",
        "http://224.0.0.1/",
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 wrapping 169.254.169.254
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
        "http://[::a9fe:a9fe]/",  # IPv4-compatible form
    ],
)
def test_ssrf_guard_always_refuses(sent: SentLog, url: str) -> None:
    with pytest.raises(BlockedAddressError):
        send(gh_event(), url, secret=SECRET, log=sent, **FAST)
    with pytest.raises(BlockedAddressError):
        send(gh_event(), url, secret=SECRET, log=sent, allow_private=True, **FAST)
    assert sent.recent() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.10/",
        "http://172.16.0.1/",
        "http://[fd12::1]/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_ssrf_guard_refuses_private_unless_allowed(sent: SentLog, url: str) -> None:
    with pytest.raises(BlockedAddressError, match="private"):
        send(gh_event(), url, secret=SECRET, log=sent, **FAST)
    host = url.split("//")[1].split("/")[0].strip("[]")
    check_address(host, allow_private=True)  # allowed (not sent: nothing listens there)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, list[str]], None]:
    """Make a test hostname resolve to several addresses (for the sender's check and httpx)."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port)))
                for ip in table[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lambda host, addresses: table.__setitem__(host, addresses)


def test_every_resolved_address_is_checked(
    sent: SentLog, fake_dns: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns("mixed.test", ["127.0.0.1", "10.0.0.1"])
    fake_dns("metadata.test", ["127.0.0.1", "169.254.169.254"])
    with ScriptedServer([200]) as server:
        url = f"http://mixed.test:{server.port}/hooks/github"
        with pytest.raises(BlockedAddressError, match="private"):
            send(gh_event(), url, secret=SECRET, log=sent, **FAST)
        assert server.seen == []
        # LABKIT_ALLOW_PRIVATE=1 (or allow_private=True) lets private addresses through ...
        monkeypatch.setenv("LABKIT_ALLOW_PRIVATE", "1")
        assert send(gh_event(), url, secret=SECRET, log=sent, **FAST).ok
        assert len(server.seen) == 1
        # ... but never link-local / metadata ones.
        with pytest.raises(BlockedAddressError):
            send(
                gh_event(),
                f"http://metadata.test:{server.port}/",
                secret=SECRET,
                log=sent,
                allow_private=True,
                **FAST,
            )
        assert len(server.seen) == 1


def test_loopback_is_allowed(sent: SentLog) -> None:
    with ScriptedServer([200]) as server:
        assert send(gh_event(), server.url, secret=SECRET, log=sent, **FAST).ok
        assert send(
            gh_event("gh-lh"), f"http://localhost:{server.port}", secret=SECRET, log=sent, **FAST
        ).ok
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "file:///etc/passwd", "http:///nohost", "127.0.0.1:8000"]
)
def test_not_an_http_url(sent: SentLog, url: str) -> None:
    with pytest.raises(DeliveryError):
        send(gh_event(), url, secret=SECRET, log=sent, **FAST)


# --- redelivery ------------------------------------------------------------------------------------


def test_redeliver_sends_the_same_id_again(
    make_receiver: Callable[..., Receiver], sent: SentLog
) -> None:
    rx = make_receiver(SECRET)
    event = gh_event("gh-redeliver")
    first = send(event, rx, secret=SECRET, log=sent, **FAST)
    assert first.ok and first.status == 202
    again = redeliver("gh-redeliver", log=sent, **FAST)
    assert again.ok and again.status == 200
    assert again.delivery_id == "gh-redeliver"
    rows = rx.deliveries(5)
    assert [(d.id, d.status) for d in rows[:2]] == [
        ("gh-redeliver", "duplicate"),
        ("gh-redeliver", "accepted"),
    ]
    assert rows[0].body == rows[1].body


def test_redeliver_standard_webhooks_gets_a_fresh_signature(
    make_receiver: Callable[..., Receiver], sent: SentLog
) -> None:
    secret = signing.new_standard_secret(b"q" * 32)
    rx = make_receiver(None, secrets={"standard": secret})
    assert send(std_event("msg_redo"), rx, secret=secret, log=sent, **FAST).ok
    again = redeliver("msg_redo", secret=secret, log=sent, **FAST)
    assert again.ok, again
    assert rx.deliveries(1)[0].status == "duplicate"


def test_redeliver_unknown_id(sent: SentLog) -> None:
    with pytest.raises(DeliveryError, match="nope"):
        redeliver("nope", log=sent)


def test_sent_log_records_every_attempt(sent: SentLog) -> None:
    with ScriptedServer([500, 200]) as server:
        send(gh_event("gh-log"), server.url, secret=SECRET, log=sent, **FAST)
    rows = sent.recent()
    assert [(r["delivery_id"], r["attempt"], r["status"]) for r in rows] == [
        ("gh-log", 2, 200),
        ("gh-log", 1, 500),
    ]
    assert rows[0]["kind"] == "github.push"


def test_default_log_lives_under_labkit_home(labkit_home: Path) -> None:
    with ScriptedServer([200]) as server:
        assert send(gh_event("gh-home"), server.url, secret=SECRET, **FAST).ok
    assert (labkit_home / "sent.db").exists()


# --- every source authenticates the way its receiver expects ------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "github.push",
        "dockerhub.push",
        "registry.push",
        "alertmanager.firing",
        "engine.start",
        "standard.message",
    ],
)
def test_send_to_receiver_every_source(
    make_receiver: Callable[..., Receiver], sent: SentLog, kind: str
) -> None:
    rx = make_receiver(SECRET)
    event = events.build(kind)
    # A token source presents the token derived from the receiver's one secret.
    key = rx.token(event.source) if event.source in signing.TOKEN_SOURCES else SECRET
    outcome = send(event, rx, secret=key, log=sent, **FAST)
    assert outcome.ok, (outcome, outcome.response)
    assert rx.deliveries(1)[0].status == "accepted"
    # ... and without the secret every source is refused (a base URL: a Receiver object's
    # Docker Hub hook URL would carry the token itself).
    bare = send(events.build(kind), rx.url, log=sent, **FAST)
    assert bare.status == 401, (kind, bare.response)


def test_a_receiver_that_never_answers_times_out_and_is_retried(sent: SentLog) -> None:
    """A listening socket nobody accept()s: the request goes out, no answer ever comes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        outcome = send(
            gh_event(),
            f"http://127.0.0.1:{port}",
            secret=SECRET,
            log=sent,
            retries=1,
            backoff=0.01,
            timeout=0.3,
        )
    assert not outcome.ok
    assert [a.status for a in outcome.attempts] == [None, None]
    assert all("Timeout" in a.error for a in outcome.attempts), outcome.attempts
    assert 0.5 <= time.monotonic() - t0 < 5
