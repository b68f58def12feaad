"""labkit.Receiver in-process, over real HTTP on 127.0.0.1: routes, auth per source, log, handlers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from labkit import Delivery, Receiver, ReceiverError
from labkit.webhooks import events, signing

from conftest import SECRET
from support import (
    github_headers,
    poll,
    push_body,
    raw_exchange,
    refused,
    request_bytes,
    standard_headers,
)

SUMMARY_KEYS = {"id", "source", "event", "status", "reason", "received_at"}


def post_github(
    rx: Receiver, body: bytes, *, secret: str | None = SECRET, **options: object
) -> httpx.Response:
    headers = github_headers(body, secret, **options)  # type: ignore[arg-type]
    return httpx.post(f"{rx.url}/hooks/github", content=body, headers=headers, timeout=10)


def listing(rx: Receiver, limit: int = 50) -> list[dict[str, Any]]:
    response = httpx.get(f"{rx.url}/deliveries", params={"limit": limit}, timeout=10)
    assert response.status_code == 200
    return list(response.json())


def newest(rx: Receiver) -> dict[str, Any]:
    rows = listing(rx, 1)
    assert rows, "nothing was logged"
    return rows[0]


# --- GitHub ---------------------------------------------------------------------------------------


def test_github_valid_signature_is_accepted_and_logged(rx: Receiver) -> None:
    body = push_body()
    response = post_github(rx, body, delivery_id="gh-ok-1")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    row = newest(rx)
    assert SUMMARY_KEYS <= set(row)
    assert (row["id"], row["source"], row["event"], row["status"]) == (
        "gh-ok-1",
        "github",
        "push",
        "accepted",
    )
    assert row["verified"] is True


def test_github_event_built_by_labkit_events_is_accepted(rx: Receiver) -> None:
    event = events.github.push(secret=SECRET)
    response = httpx.post(
        f"{rx.url}{event.path}", content=event.body, headers=dict(event.headers), timeout=10
    )
    assert response.status_code == 202, response.text
    assert newest(rx)["id"] == event.delivery_id


def test_github_form_encoded_payload_is_accepted(rx: Receiver) -> None:
    body = urlencode({"payload": json.dumps({"zen": "Design for failure."})}).encode()
    response = post_github(rx, body, event="ping", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("case", ["missing", "wrong", "tampered", "other-secret"])
def test_github_bad_signature_is_401(rx: Receiver, case: str) -> None:
    body = push_body()
    headers = github_headers(body, SECRET, delivery_id=f"gh-{case}")
    if case == "missing":
        del headers["X-Hub-Signature-256"]
    elif case == "wrong":
        headers["X-Hub-Signature-256"] = "sha256=" + "ab" * 32
    elif case == "tampered":
        body = body.replace(b"main", b"mainx")
    else:
        headers["X-Hub-Signature-256"] = signing.github_signature_256(body, "not-the-secret")
    response = httpx.post(f"{rx.url}/hooks/github", content=body, headers=headers, timeout=10)
    assert response.status_code == 401, response.text
    row = newest(rx)
    assert (row["status"], row["source"]) == ("rejected", "github")
    assert row["reason"]


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_github_missing_event_or_delivery_header_is_400(rx: Receiver, missing: str) -> None:
    body = push_body()
    headers = github_headers(body, SECRET)
    del headers[missing]
    response = httpx.post(f"{rx.url}/hooks/github", content=body, headers=headers, timeout=10)
    assert response.status_code == 400, response.text
    row = newest(rx)
    assert row["status"] == "rejected" and missing in str(row["reason"])


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"", "application/json"),
        (b"zen=x", "application/x-www-form-urlencoded"),
        (b"payload=not-json", "application/x-www-form-urlencoded"),
    ],
)
def test_github_body_not_a_json_object_is_400(rx: Receiver, body: bytes, content_type: str) -> None:
    response = post_github(rx, body, content_type=content_type)
    assert response.status_code == 400, response.text
    assert newest(rx)["status"] == "rejected"


def test_github_without_a_secret_accepts_unsigned(make_receiver: Callable[..., Receiver]) -> None:
    rx = make_receiver(None)
    response = post_github(rx, push_body(), secret=None)
    assert response.status_code == 202
    assert newest(rx)["verified"] is False


def test_github_secret_rotation(make_receiver: Callable[..., Receiver]) -> None:
    rx = make_receiver(None, secrets={"github": ["new-secret", "old-secret"]})
    for secret in ("new-secret", "old-secret"):
        assert post_github(rx, push_body(), secret=secret).status_code == 202
    assert post_github(rx, push_body(), secret="retired").status_code == 401


# --- body cap -------------------------------------------------------------------------------------


def test_body_over_the_cap_is_413(make_receiver: Callable[..., Receiver]) -> None:
    rx = make_receiver(SECRET, max_body=1000)
    small = push_body(pad="x" * 500)
    big = push_body(pad="x" * 2000)
    assert post_github(rx, small).status_code == 202
    response = post_github(rx, big)
    assert response.status_code == 413
    assert newest(rx)["status"] == "rejected"


def test_413_is_answered_before_the_body_is_sent(rx: Receiver) -> None:
    """A Content-Length over the cap is refused at once: the receiver does not wait for (or
    buffer) the body. Only 1 KB of a declared 1 GB is ever sent."""
    headers = list(github_headers(b"{}", SECRET).items())
    data = request_bytes(
        "POST", "/hooks/github", headers, b"{" + b" " * 1023, content_length=1 << 30
    )
    response = raw_exchange(rx.port, data, timeout=5)
    assert response.status == 413, response.head
    assert response.elapsed < 3
    row = newest(rx)
    assert row["status"] == "rejected" and "cap" in str(row["reason"])


def test_chunked_body_over_the_cap_is_413(rx: Receiver) -> None:
    """Without a Content-Length the receiver counts as it reads and stops at the cap."""
    headers = [*github_headers(b"{}", SECRET).items(), ("Transfer-Encoding", "chunked")]
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    data = request_bytes(
        "POST", "/hooks/github", headers, chunk * 8 + b"0\r\n\r\n", content_length=None
    )
    response = raw_exchange(rx.port, data, timeout=5)
    assert response.status == 413, response.head


# --- dedupe ----------------------------------------------------------------------------------------


def test_duplicate_delivery_is_2xx_and_handler_runs_once(rx: Receiver) -> None:
    calls: list[str | None] = []
    rx.on("github", "push")(lambda d: calls.append(d.id))
    body = push_body()
    first = post_github(rx, body, delivery_id="dup-1")
    second = post_github(rx, body, delivery_id="dup-1")
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert rx.idle(10)
    assert calls == ["dup-1"]
    rows = listing(rx)
    assert [r["status"] for r in rows[:2]] == ["duplicate", "accepted"]
    assert rows[0]["reason"]


def test_same_delivery_id_twenty_times_at_once(rx: Receiver) -> None:
    calls: list[str | None] = []
    lock = threading.Lock()

    def handler(d: Delivery) -> None:
        with lock:
            calls.append(d.id)

    rx.on("github", "push")(handler)
    body = push_body()
    headers = github_headers(body, SECRET, delivery_id="race-1")
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def fire() -> None:
        with httpx.Client(timeout=10) as client:
            barrier.wait()
            r = client.post(f"{rx.url}/hooks/github", content=body, headers=headers)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(statuses) == [200] * 19 + [202]
    assert rx.idle(10)
    assert calls == ["race-1"]
    rows = [r for r in listing(rx, 100) if r["id"] == "race-1"]
    assert sorted(str(r["status"]) for r in rows) == ["accepted"] + ["duplicate"] * 19


# --- the other sources -----------------------------------------------------------------------------


def test_dockerhub_token_in_the_url(rx: Receiver) -> None:
    event = events.dockerhub.push()
    url = f"{rx.url}/hooks/dockerhub"
    assert httpx.post(url, content=event.body, headers=dict(event.headers)).status_code == 401
    assert (
        httpx.post(
            url, params={"token": "nope"}, content=event.body, headers=dict(event.headers)
        ).status_code
        == 401
    )
    ok = httpx.post(rx.hook_url("dockerhub"), content=event.body, headers=dict(event.headers))
    assert ok.status_code == 202, ok.text
    assert newest(rx)["event"] == "push"


@pytest.mark.parametrize("kind", ["registry.push", "alertmanager.firing", "engine.start"])
def test_bearer_sources(rx: Receiver, kind: str) -> None:
    event = events.build(kind)
    url = f"{rx.url}{event.path}"
    headers = dict(event.headers)
    assert httpx.post(url, content=event.body, headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer nope"}
    assert httpx.post(url, content=event.body, headers=wrong).status_code == 401
    # One secret serves every source, and a bearer source presents the token derived from
    # it: never the secret itself, which signs GitHub deliveries.
    the_secret = {**headers, "Authorization": f"Bearer {SECRET}"}
    assert httpx.post(url, content=event.body, headers=the_secret).status_code == 401
    token = rx.token(event.source)
    assert token == signing.token_for(SECRET) and SECRET not in token
    right = {**headers, "Authorization": f"Bearer {token}"}
    response = httpx.post(url, content=event.body, headers=right)
    assert response.status_code == 202, response.text
    assert newest(rx)["source"] == kind.split(".")[0]


def test_standard_webhooks_signature_and_timestamp(rx: Receiver) -> None:
    body = json.dumps({"type": "image.pushed", "data": {}}).encode()
    url = f"{rx.url}/hooks/standard"
    ok = httpx.post(url, content=body, headers=standard_headers(body, SECRET, msg_id="msg_ok"))
    assert ok.status_code == 202, ok.text
    assert newest(rx)["event"] == "image.pushed"
    stale = standard_headers(body, SECRET, timestamp=int(time.time()) - 600)
    assert httpx.post(url, content=body, headers=stale).status_code == 401
    future = standard_headers(body, SECRET, timestamp=int(time.time()) + 600)
    assert httpx.post(url, content=body, headers=future).status_code == 401
    unsigned = {k: v for k, v in standard_headers(body, SECRET).items() if k != "webhook-signature"}
    assert httpx.post(url, content=body, headers=unsigned).status_code == 401
    malformed = {**standard_headers(body, SECRET), "webhook-signature": "v1abc"}
    assert httpx.post(url, content=body, headers=malformed).status_code == 401
    again = httpx.post(url, content=body, headers=standard_headers(body, SECRET, msg_id="msg_ok"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


def test_standard_webhooks_whsec_rotation(make_receiver: Callable[..., Receiver]) -> None:
    old = signing.new_standard_secret(b"o" * 32)
    new = signing.new_standard_secret(b"n" * 32)
    rx = make_receiver(None, secrets={"standard": [new, old]})
    body = b'{"type":"t"}'
    for secret in (old, new):
        r = httpx.post(
            f"{rx.url}/hooks/standard", content=body, headers=standard_headers(body, secret)
        )
        assert r.status_code == 202, r.text
    r = httpx.post(
        f"{rx.url}/hooks/standard",
        content=body,
        headers=standard_headers(body, signing.new_standard_secret(b"x" * 32)),
    )
    assert r.status_code == 401


# --- the read side ----------------------------------------------------------------------------------


def test_deliveries_newest_first_with_limit_and_every_status(rx: Receiver) -> None:
    body = push_body()
    post_github(rx, body, delivery_id="list-1")  # accepted
    post_github(rx, body, delivery_id="list-1")  # duplicate
    post_github(rx, body, secret="wrong", delivery_id="list-2")  # rejected
    rows = listing(rx)
    assert [(r["id"], r["status"]) for r in rows] == [
        ("list-2", "rejected"),
        ("list-1", "duplicate"),
        ("list-1", "accepted"),
    ]
    for row in rows:
        assert SUMMARY_KEYS <= set(row)
        assert row["received_at"].endswith("Z")
    assert [r["status"] for r in listing(rx, 2)] == ["rejected", "duplicate"]
    assert rows[0]["reason"] and not rows[2]["reason"]
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs, reverse=True)


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc"])
def test_deliveries_bad_limit_is_422(rx: Receiver, limit: str) -> None:
    assert httpx.get(f"{rx.url}/deliveries", params={"limit": limit}).status_code == 422


def test_delivery_by_id(rx: Receiver) -> None:
    body = push_body()
    post_github(rx, body, delivery_id="one-1")
    found = httpx.get(f"{rx.url}/deliveries/one-1")
    assert found.status_code == 200
    detail = found.json()
    assert detail["id"] == "one-1" and detail["status"] == "accepted"
    assert detail["body"] == body.decode()
    assert detail["headers"]["x-github-event"] == "push"
    assert httpx.get(f"{rx.url}/deliveries/nope").status_code == 404


def test_healthz_counts_deliveries(rx: Receiver) -> None:
    assert httpx.get(f"{rx.url}/healthz").json() == {"status": "ok", "deliveries": 0}
    post_github(rx, push_body())
    post_github(rx, push_body(), secret="wrong")
    assert httpx.get(f"{rx.url}/healthz").json() == {"status": "ok", "deliveries": 2}


# --- handlers ------------------------------------------------------------------------------------------


def test_handler_runs_off_the_request_path(rx: Receiver) -> None:
    release = threading.Event()
    started = threading.Event()

    @rx.on("github", "push")
    def slow(d: Delivery) -> None:
        started.set()
        assert release.wait(10)

    t0 = time.monotonic()
    response = post_github(rx, push_body(), delivery_id="slow-1")
    assert response.status_code == 202
    assert started.wait(5)  # the handler is running ...
    assert not release.is_set()  # ... and has not finished, yet the sender already has its 202
    assert time.monotonic() - t0 < 5
    assert httpx.get(f"{rx.url}/healthz").status_code == 200
    assert newest(rx)["handled"] == ""
    release.set()
    poll(lambda: newest(rx)["handled"] == "ok", what="handled=ok")


def test_handler_filtering_by_source_and_event(rx: Receiver) -> None:
    seen: list[str] = []
    rx.on("github", "push")(lambda d: seen.append(f"push:{d.id}"))
    rx.on("github")(lambda d: seen.append(f"any-github:{d.id}"))
    rx.on("*")(lambda d: seen.append(f"star:{d.id}"))
    post_github(rx, push_body(), delivery_id="f-1")
    post_github(rx, b'{"zen":"x"}', event="ping", delivery_id="f-2")
    assert rx.idle(10)
    assert "push:f-1" in seen and "push:f-2" not in seen
    assert "any-github:f-2" in seen and "star:f-2" in seen


def test_failing_handler_is_recorded_and_receiver_keeps_serving(rx: Receiver) -> None:
    @rx.on("github", "push")
    def boom(d: Delivery) -> None:
        raise RuntimeError(f"cannot handle {d.id}")

    for n in range(3):
        assert post_github(rx, push_body(), delivery_id=f"boom-{n}").status_code == 202
    assert rx.idle(10)

    def all_failed() -> bool:
        rows = [r for r in listing(rx) if str(r["id"]).startswith("boom-")]
        return len(rows) == 3 and all(r["handled"] == "failed" for r in rows)

    poll(all_failed, what="three failed handlers recorded")
    row = httpx.get(f"{rx.url}/deliveries/boom-1").json()
    assert "RuntimeError" in row["handler_error"] and "boom-1" in row["handler_error"]
    assert httpx.get(f"{rx.url}/healthz").status_code == 200
    assert rx.running


def test_handler_without_error_is_marked_ok(rx: Receiver) -> None:
    rx.on("github", "push")(lambda d: None)
    post_github(rx, push_body(), delivery_id="okh-1")
    poll(
        lambda: httpx.get(f"{rx.url}/deliveries/okh-1").json()["handled"] == "ok", what="handled=ok"
    )


# --- lifecycle -----------------------------------------------------------------------------------------


def test_restarting_a_receiver_of_the_same_name_stops_the_old_one(
    make_receiver: Callable[..., Receiver],
) -> None:
    name = f"same-{uuid.uuid4().hex[:6]}"
    first = make_receiver(SECRET, name=name)
    old_port = first.port
    assert httpx.get(f"{first.url}/healthz").status_code == 200
    second = make_receiver(SECRET, name=name)
    assert not first.running
    poll(lambda: refused(old_port), what="the old port to close")
    assert httpx.get(f"{second.url}/healthz").status_code == 200
    with pytest.raises(ReceiverError):
        first.check()


def test_receivers_of_other_names_run_side_by_side(make_receiver: Callable[..., Receiver]) -> None:
    a = make_receiver(SECRET)
    b = make_receiver(SECRET)
    assert a.running and b.running and a.port != b.port


def test_port_in_use_raises_receivererror(make_receiver: Callable[..., Receiver]) -> None:
    a = make_receiver(SECRET)
    with pytest.raises(ReceiverError):
        make_receiver(SECRET, port=a.port)


def test_context_manager_stops(make_receiver: Callable[..., Receiver]) -> None:
    with Receiver(SECRET, name=f"ctx-{uuid.uuid4().hex[:6]}") as rx:
        port = rx.port
        assert httpx.get(f"{rx.url}/healthz").status_code == 200
    poll(lambda: refused(port), what="the port to close")


def test_file_db_survives_a_restart(tmp_path: Path, make_receiver: Callable[..., Receiver]) -> None:
    db = tmp_path / "rx.db"
    rx = make_receiver(SECRET, db=str(db))
    post_github(rx, push_body(), delivery_id="persist-1")
    rx.stop()
    again = make_receiver(SECRET, db=str(db))
    assert httpx.get(f"{again.url}/deliveries/persist-1").json()["status"] == "accepted"
    assert post_github(again, push_body(), delivery_id="persist-1").json()["status"] == "duplicate"


# --- secrets: configuration edge cases and exposure -------------------------------------------------


def test_dockerhub_hook_url_survives_a_secret_with_url_characters(
    make_receiver: Callable[..., Receiver],
) -> None:
    """`rx.hook_url("dockerhub")` must percent-encode the token (`+ & # %` are URL syntax)."""
    secret = "p+ss&word#frag%20"
    rx = make_receiver(secret)
    event = events.dockerhub.push()
    response = httpx.post(rx.hook_url("dockerhub"), content=event.body, headers=dict(event.headers))
    assert response.status_code == 202, (rx.hook_url("dockerhub"), response.text)


def test_sending_to_a_receiver_object_with_a_url_unsafe_secret(
    make_receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    from labkit import send
    from labkit.webhooks.sender import SentLog

    secret = "a+b&c"
    rx = make_receiver(secret)
    outcome = send(
        events.dockerhub.push(), rx, secret=secret, log=SentLog(tmp_path / "s.db"), retries=0
    )
    assert outcome.ok, (outcome, outcome.response)


ALL_KINDS = [
    "github.push",
    "registry.push",
    "alertmanager.firing",
    "engine.start",
    "standard.message",
    "dockerhub.push",
]


@pytest.mark.parametrize("source", [kind.split(".")[0] for kind in ALL_KINDS])
def test_an_empty_secret_list_is_refused_up_front(source: str) -> None:
    """`secrets={source: []}` lists no valid secret: rather than leave the source open, the
    receiver refuses the configuration."""
    with pytest.raises(ValueError, match=rf"secrets\['{source}'\] is or holds an empty secret"):
        Receiver(None, secrets={source: []}, name=f"empty-{uuid.uuid4().hex[:6]}")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_source_given_its_own_secret_accepts_only_authenticated_deliveries(
    make_receiver: Callable[..., Receiver], kind: str, tmp_path: Path
) -> None:
    """`secrets={source: [secret]}` (the configuration an empty list must not stand for): no
    authentication and the wrong secret are 401, the right one is 202."""
    from labkit import send
    from labkit.webhooks.sender import SentLog

    source = kind.split(".")[0]
    rx = make_receiver(None, secrets={source: ["real-secret"]})
    event = events.build(kind)
    response = httpx.post(f"{rx.url}{event.path}", content=event.body, headers=dict(event.headers))
    assert response.status_code == 401, (kind, response.status_code, response.text)
    log = SentLog(tmp_path / "sent.db")
    wrong = send(events.build(kind), rx.url, secret="not-the-secret", log=log, retries=0)
    assert wrong.status == 401, (kind, wrong.status, wrong.response)
    right = send(events.build(kind), rx.url, secret="real-secret", log=log, retries=0)
    assert right.ok and right.status == 202, (kind, right.status, right.response)


@pytest.mark.parametrize("kind", ["registry.push", "alertmanager.firing", "engine.start"])
def test_read_api_does_not_reveal_the_bearer_secret(rx: Receiver, kind: str) -> None:
    """GET /deliveries/{id} is unauthenticated: it must not hand out the receiver's secret."""
    event = events.build(kind)
    token = rx.token(event.source)
    assert token
    event = event.signed(token)
    response = httpx.post(f"{rx.url}{event.path}", content=event.body, headers=dict(event.headers))
    assert response.status_code == 202
    delivery_id = response.json()["id"]
    detail = httpx.get(f"{rx.url}/deliveries/{delivery_id}")
    assert detail.status_code == 200
    assert "authorization" in {k.lower() for k in detail.json()["headers"]}  # still shown ...
    assert token not in detail.text and SECRET not in detail.text  # ... but redacted


@pytest.mark.parametrize("value", [[""], ["real-secret", ""]])
def test_an_empty_string_secret_is_refused_up_front(value: list[str]) -> None:
    """An HMAC key of b"" is public knowledge: anyone can sign with it, so it must not be
    accepted as one of a source's secrets."""
    with pytest.raises(ValueError):
        Receiver(None, secrets={"github": value}, name=f"empty-{uuid.uuid4().hex[:6]}")


def test_a_delivery_signed_with_an_empty_key_is_not_accepted(
    make_receiver: Callable[..., Receiver],
) -> None:
    """A list holding an empty key is refused up front (the test above); a receiver with the
    real key alone refuses what an empty key signed, and accepts what the real key signed."""
    rx = make_receiver(None, secrets={"github": ["real-secret"]})
    forged = post_github(rx, push_body(), secret="")
    assert forged.status_code == 401, forged.text
    assert newest(rx)["status"] == "rejected"
    assert post_github(rx, push_body(), secret="real-secret").status_code == 202


def test_once_a_secret_is_set_no_source_is_open_unless_opened_on_purpose() -> None:
    from labkit import Receiver, send
    from labkit.webhooks import events

    rx = Receiver(secrets={"github": "gh-secret"}).start()
    try:
        for event in (
            events.dockerhub.push(),
            events.alertmanager.alert("firing"),
            events.standard.message("image.pushed"),
            events.engine.container("die"),
        ):
            answer = send(event, rx)
            assert answer.status == 401 and "has no secret for" in answer.detail, answer.detail
    finally:
        rx.stop()


def test_an_opened_source_is_accepted_but_its_handlers_run_only_on_opt_in() -> None:
    from labkit import Receiver, send
    from labkit.webhooks import events

    rx = Receiver(secrets={"github": "gh-secret"}, open=["dockerhub"]).start()
    careful: list[str] = []
    trusting: list[str] = []
    try:

        @rx.on("dockerhub")
        def deploy(delivery: Any) -> None:
            careful.append(delivery.event)

        @rx.on("dockerhub", unverified=True)
        def note(delivery: Any) -> None:
            trusting.append(delivery.event)

        answer = send(events.dockerhub.push(), rx)
        assert answer.status == 202
        rx.idle()
        assert careful == [] and trusting == ["push"]
        assert rx.deliveries(1)[0].verified is False
    finally:
        rx.stop()


@pytest.mark.parametrize("kwargs", [{"for_containers": True}, {"host": "0.0.0.0"}])
def test_a_receiver_beyond_loopback_needs_a_secret(kwargs: dict[str, Any]) -> None:
    from labkit import Receiver, ReceiverError

    with pytest.raises(ReceiverError, match="must check its senders"):
        Receiver(**kwargs)


def test_labkit_listen_for_containers_without_a_secret_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import subprocess
    import sys

    monkeypatch.delenv("LABKIT_WEBHOOK_SECRET", raising=False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "labkit.cli",
            "listen",
            "--for-containers",
            "--port",
            "0",
            "--db",
            str(tmp_path / "x.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "must check its senders" in done.stderr
