"""A corpus of crafted bad requests, sent over raw sockets to a real receiver on 127.0.0.1.

Each case asserts the 4xx it must get (never a 5xx), that /healthz still answers 200 afterwards,
and that the rejection is in the delivery log with a reason. A few requests are refused by the
HTTP parser (uvicorn/h11) or the router before labkit sees them; those are marked
``logged=False`` and assert instead that nothing was logged for them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import labkit.webhooks.app as receiver_app
from labkit import Receiver
from labkit.webhooks import signing

from conftest import SECRET
from support import RawResponse, poll, raw_exchange, request_bytes

#: What token sources present to a receiver whose one secret serves every source.
TOKEN = signing.token_for(SECRET)

CAP = 64 * 1024
BODY_TIMEOUT = 1.0

Headers = list[tuple[str, str | bytes]]


@dataclass(frozen=True)
class Case:
    name: str
    source: str | None  # the log's `source` for the rejection; None: never reaches labkit
    expect: int | frozenset[int]  # the status, or the statuses that are each right
    send: Callable[[int], RawResponse]
    logged: bool = True
    may_lose_response: bool = False  # the client hung up first: no answer can reach it


# --- request builders --------------------------------------------------------------------------


def post(path: str, headers: Headers, body: bytes, **kw: Any) -> Callable[[int], RawResponse]:
    content_length = kw.pop("content_length", "auto")
    data = request_bytes("POST", path, headers, body, content_length=content_length)
    return lambda port: raw_exchange(port, data, **kw)


def gh(
    body: bytes,
    *,
    sign: bytes | None = None,
    event: str | None = "push",
    delivery: str | None = "<new>",
    ctype: str = "application/json",
    sig_headers: Headers | None = None,
) -> Headers:
    headers: Headers = [("Content-Type", ctype)]
    if event is not None:
        headers.append(("X-GitHub-Event", event))
    if delivery is not None:
        headers.append(
            ("X-GitHub-Delivery", f"gh-bad-{uuid.uuid4()}" if delivery == "<new>" else delivery)
        )
    if sig_headers is not None:
        headers += sig_headers
    else:
        headers.append(
            (
                "X-Hub-Signature-256",
                signing.github_signature_256(body if sign is None else sign, SECRET),
            )
        )
    return headers


def gh_post(body: bytes, **kw: Any) -> Callable[[int], RawResponse]:
    send_kw = {
        k: kw.pop(k)
        for k in ("content_length", "trickle", "trickle_every", "half_close")
        if k in kw
    }
    return post("/hooks/github", gh(body, **kw), body, **send_kw)


def std(
    body: bytes,
    *,
    msg_id: str | None = "msg_bad",
    ts: int | str | None = None,
    sig: str | None = None,
    secret: str = SECRET,
) -> Headers:
    stamp = int(time.time()) if ts is None else ts
    headers: Headers = [("Content-Type", "application/json")]
    if msg_id is not None:
        headers.append(("webhook-id", msg_id))
    headers.append(("webhook-timestamp", str(stamp)))
    if sig is None:
        sig = signing.standard_sign(
            secret, msg_id or "msg_bad", int(stamp) if str(stamp).lstrip("-").isdigit() else 0, body
        )
    if sig != "<omit>":
        headers.append(("webhook-signature", sig))
    return headers


def std_post(body: bytes, **kw: Any) -> Callable[[int], RawResponse]:
    # Built at send time so the timestamp is fresh when the case runs.
    return lambda port: post("/hooks/standard", std(body, **kw), body)(port)


def bearer(token: str | None = TOKEN, ctype: str = "application/json") -> Headers:
    headers: Headers = [("Content-Type", ctype)]
    if token is not None:
        headers.append(("Authorization", token if " " in token or not token else f"Bearer {token}"))
    return headers


REG_CT = "application/vnd.docker.distribution.events.v1+json"
REG_EVENT = {"id": "reg-1", "action": "push", "target": {"repository": "r", "tag": "t"}}
AM_BODY = {"version": "4", "status": "firing", "receiver": "r", "alerts": [], "groupKey": "g"}
ENGINE = {
    "Type": "container",
    "Action": "start",
    "Actor": {"ID": "c1", "Attributes": {}},
    "time": 1,
    "timeNano": 1,
}
HUB = {
    "push_data": {"tag": "latest", "pusher": "p", "pushed_at": 1},
    "repository": {"repo_name": "o/r"},
}


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


def _wrong_sig(body: bytes) -> Headers:
    return [("X-Hub-Signature-256", "sha256=" + "ab" * 32)]


GOOD_GH = b'{"ref":"refs/heads/main"}'
GOOD_SIG = signing.github_signature_256(GOOD_GH, SECRET)
OTHER_SIG = signing.github_signature_256(GOOD_GH, "someone-else")
EITHER_400_401 = frozenset({400, 401})
CHUNK = b"4000\r\n" + b" " * 0x4000 + b"\r\n"


CASES: list[Case] = [
    # --- GitHub: signatures ---
    Case("gh-no-signature", "github", 401, gh_post(GOOD_GH, sig_headers=[])),
    Case("gh-wrong-signature", "github", 401, gh_post(GOOD_GH, sig_headers=_wrong_sig(GOOD_GH))),
    Case("gh-tampered-body", "github", 401, gh_post(GOOD_GH + b" ", sign=GOOD_GH)),
    Case(
        "gh-signed-with-other-secret",
        "github",
        401,
        gh_post(GOOD_GH, sig_headers=[("X-Hub-Signature-256", OTHER_SIG)]),
    ),
    Case(
        "gh-truncated-signature",
        "github",
        401,
        gh_post(GOOD_GH, sig_headers=[("X-Hub-Signature-256", GOOD_SIG[:30])]),
    ),
    Case(
        "gh-signature-without-prefix",
        "github",
        401,
        gh_post(GOOD_GH, sig_headers=[("X-Hub-Signature-256", GOOD_SIG[7:])]),
    ),
    Case(
        "gh-signature-with-non-ascii-bytes",
        "github",
        401,
        gh_post(
            GOOD_GH, sig_headers=[("X-Hub-Signature-256", GOOD_SIG[:-2].encode() + b"\xe9\xff")]
        ),
    ),
    Case(
        "gh-empty-signature-and-wrong-sha1",
        "github",
        401,
        gh_post(
            GOOD_GH,
            sig_headers=[("X-Hub-Signature-256", ""), ("X-Hub-Signature", "sha1=" + "0" * 40)],
        ),
    ),
    Case(
        "gh-duplicated-signature-bogus-last",
        "github",
        EITHER_400_401,
        gh_post(
            GOOD_GH,
            sig_headers=[
                ("X-Hub-Signature-256", GOOD_SIG),
                ("X-Hub-Signature-256", "sha256=" + "0" * 64),
            ],
        ),
    ),
    # Two values for one signature header are ambiguous (a proxy may check one, the app the
    # other): a receiver must refuse them whichever order they come in.
    Case(
        "gh-duplicated-signature-bogus-first",
        "github",
        EITHER_400_401,
        gh_post(
            GOOD_GH,
            sig_headers=[
                ("X-Hub-Signature-256", "sha256=" + "0" * 64),
                ("X-Hub-Signature-256", GOOD_SIG),
            ],
        ),
    ),
    # --- GitHub: headers ---
    Case("gh-missing-event-header", "github", 400, gh_post(GOOD_GH, event=None)),
    Case("gh-missing-delivery-header", "github", 400, gh_post(GOOD_GH, delivery=None)),
    # --- GitHub: bodies (all correctly signed: the parse step must refuse them) ---
    Case("gh-empty-body", "github", 400, gh_post(b"")),
    Case("gh-malformed-json", "github", 400, gh_post(b'{"ref": "refs/heads/main",}')),
    Case("gh-truncated-json", "github", 400, gh_post(GOOD_GH[:-1])),
    Case("gh-json-array", "github", 400, gh_post(b'[{"ref":"x"}]')),
    Case("gh-json-number", "github", 400, gh_post(b"42")),
    Case("gh-json-string", "github", 400, gh_post(b'"push"')),
    Case("gh-json-null", "github", 400, gh_post(b"null")),
    Case("gh-json-huge-integer", "github", 400, gh_post(b'{"n":' + b"9" * 5000 + b"}")),
    Case("gh-two-json-documents", "github", 400, gh_post(b"{}{}")),
    Case("gh-invalid-utf8", "github", 400, gh_post(b'{"ref":"\xff\xfe"}')),
    Case("gh-overlong-utf8", "github", 400, gh_post(b'{"ref":"\xc0\xaf"}')),
    Case("gh-utf8-encoded-surrogate", "github", 400, gh_post(b'{"ref":"\xed\xa0\x80"}')),
    Case("gh-raw-control-char-in-string", "github", 400, gh_post(b'{"ref":"a\x00b"}')),
    Case("gh-deeply-nested-json", "github", 400, gh_post(b"[" * 5000 + b"]" * 5000)),
    Case("gh-deeply-nested-object", "github", 400, gh_post(b'{"a":' * 3000 + b"1" + b"}" * 3000)),
    Case("gh-content-type-text-plain", "github", 415, gh_post(GOOD_GH, ctype="text/plain")),
    Case("gh-content-type-xml", "github", 415, gh_post(b"<push/>", ctype="application/xml")),
    Case(
        "gh-form-without-payload",
        "github",
        400,
        gh_post(b"zen=hello", ctype="application/x-www-form-urlencoded"),
    ),
    Case(
        "gh-form-payload-not-json",
        "github",
        400,
        gh_post(b"payload=%7Bnope", ctype="application/x-www-form-urlencoded"),
    ),
    Case(
        "gh-form-payload-array",
        "github",
        400,
        gh_post(b"payload=%5B1%5D", ctype="application/x-www-form-urlencoded"),
    ),
    Case(
        "gh-form-invalid-utf8",
        "github",
        400,
        gh_post(b"payload=\xff\xfe", ctype="application/x-www-form-urlencoded"),
    ),
    # --- GitHub: sizes and framing ---
    Case(
        "gh-content-length-over-cap",
        "github",
        413,
        gh_post(b"{" + b" " * 1000, content_length=1 << 30),
    ),
    Case(
        "gh-chunked-body-over-cap",
        "github",
        413,
        post(
            "/hooks/github",
            gh(b"{}") + [("Transfer-Encoding", "chunked")],
            CHUNK * 5 + b"0\r\n\r\n",
            content_length=None,
        ),
    ),
    Case(
        "gh-lying-content-length-connection-held", "github", 408, gh_post(b"{}", content_length=500)
    ),
    Case(
        "gh-slow-trickle",
        "github",
        408,
        gh_post(b"", content_length=200, trickle=[b" "] * 8, trickle_every=0.25),
    ),
    Case(
        "gh-truncated-body-then-hangup",
        "github",
        400,
        gh_post(b'{"ref":', content_length=500, half_close=True),
        may_lose_response=True,
    ),
    Case(
        "gh-content-length-not-a-number",
        None,
        400,
        gh_post(GOOD_GH, content_length="ten"),
        logged=False,
    ),
    Case(
        "gh-negative-content-length", None, 400, gh_post(GOOD_GH, content_length=-1), logged=False
    ),
    Case(
        "gh-two-different-content-lengths",
        None,
        400,
        post("/hooks/github", gh(GOOD_GH) + [("Content-Length", "3")], GOOD_GH),
        logged=False,
    ),
    # --- Standard Webhooks ---
    Case(
        "std-stale-timestamp",
        "standard",
        401,
        std_post(j({"type": "t"}), ts=int(time.time()) - 3600),
    ),
    Case(
        "std-future-timestamp",
        "standard",
        401,
        std_post(j({"type": "t"}), ts=int(time.time()) + 3600),
    ),
    Case("std-timestamp-not-a-number", "standard", 401, std_post(j({"type": "t"}), ts="soon")),
    Case(
        "std-timestamp-iso-date",
        "standard",
        401,
        std_post(j({"type": "t"}), ts="2026-01-15T09:30:00Z"),
    ),
    Case("std-malformed-signature-v1abc", "standard", 401, std_post(j({"type": "t"}), sig="v1abc")),
    Case("std-signature-empty-value", "standard", 401, std_post(j({"type": "t"}), sig="v1,")),
    Case(
        "std-only-v1a-entry",
        "standard",
        401,
        std_post(j({"type": "t"}), sig="v1a,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ),
    Case(
        "std-truncated-signature",
        "standard",
        401,
        std_post(j({"type": "t"}), sig=signing.standard_sign(SECRET, "msg_bad", 0, b"")[:20]),
    ),
    Case("std-missing-webhook-id", "standard", 401, std_post(j({"type": "t"}), msg_id=None)),
    Case("std-missing-signature", "standard", 401, std_post(j({"type": "t"}), sig="<omit>")),
    Case(
        "std-signed-with-other-secret",
        "standard",
        401,
        std_post(j({"type": "t"}), secret="someone-else"),
    ),
    Case("std-body-without-type", "standard", 400, std_post(j({"data": {}}))),
    Case("std-body-is-array", "standard", 400, std_post(j([{"type": "t"}]))),
    # --- registry (bearer) ---
    Case(
        "reg-no-authorization",
        "registry",
        401,
        post("/hooks/registry", bearer(None, REG_CT), j({"events": [REG_EVENT]})),
    ),
    Case(
        "reg-wrong-bearer",
        "registry",
        401,
        post("/hooks/registry", bearer("nope", REG_CT), j({"events": [REG_EVENT]})),
    ),
    Case(
        "reg-basic-auth",
        "registry",
        401,
        post("/hooks/registry", bearer("Basic czNjcmV0Og==", REG_CT), j({"events": [REG_EVENT]})),
    ),
    Case(
        "reg-empty-bearer",
        "registry",
        401,
        post("/hooks/registry", bearer("Bearer ", REG_CT), j({"events": [REG_EVENT]})),
    ),
    Case(
        "reg-bearer-with-secret-prefix-only",
        "registry",
        401,
        post("/hooks/registry", bearer(TOKEN[:-1], REG_CT), j({"events": [REG_EVENT]})),
    ),
    Case(
        "reg-empty-events",
        "registry",
        400,
        post("/hooks/registry", bearer(ctype=REG_CT), j({"events": []})),
    ),
    Case(
        "reg-no-events-key",
        "registry",
        400,
        post("/hooks/registry", bearer(ctype=REG_CT), j({"event": REG_EVENT})),
    ),
    Case(
        "reg-events-not-a-list",
        "registry",
        400,
        post("/hooks/registry", bearer(ctype=REG_CT), j({"events": REG_EVENT})),
    ),
    Case(
        "reg-event-not-an-object",
        "registry",
        400,
        post("/hooks/registry", bearer(ctype=REG_CT), j({"events": ["push"]})),
    ),
    Case(
        "reg-event-without-action",
        "registry",
        400,
        post("/hooks/registry", bearer(ctype=REG_CT), j({"events": [{"id": "x"}]})),
    ),
    Case(
        "reg-event-action-null",
        "registry",
        400,
        post("/hooks/registry", bearer(ctype=REG_CT), j({"events": [{"id": "x", "action": None}]})),
    ),
    Case(
        "reg-wrong-content-type",
        "registry",
        415,
        post("/hooks/registry", bearer(ctype="text/plain"), j({"events": [REG_EVENT]})),
    ),
    # --- Alertmanager (bearer) ---
    Case(
        "am-wrong-version",
        "alertmanager",
        400,
        post("/hooks/alertmanager", bearer(), j({**AM_BODY, "version": "3"})),
    ),
    Case(
        "am-missing-version",
        "alertmanager",
        400,
        post(
            "/hooks/alertmanager", bearer(), j({k: v for k, v in AM_BODY.items() if k != "version"})
        ),
    ),
    Case(
        "am-unknown-status",
        "alertmanager",
        400,
        post("/hooks/alertmanager", bearer(), j({**AM_BODY, "status": "pending"})),
    ),
    Case(
        "am-alerts-not-a-list",
        "alertmanager",
        400,
        post("/hooks/alertmanager", bearer(), j({**AM_BODY, "alerts": {}})),
    ),
    Case(
        "am-bad-token",
        "alertmanager",
        401,
        post("/hooks/alertmanager", bearer("wrong"), j(AM_BODY)),
    ),
    # --- Docker engine events (bearer) ---
    Case(
        "engine-no-actor",
        "engine",
        400,
        post("/hooks/engine", bearer(), j({k: v for k, v in ENGINE.items() if k != "Actor"})),
    ),
    Case(
        "engine-action-not-a-string",
        "engine",
        400,
        post("/hooks/engine", bearer(), j({**ENGINE, "Action": 7})),
    ),
    Case("engine-bad-token", "engine", 401, post("/hooks/engine", bearer("wrong"), j(ENGINE))),
    # --- Docker Hub (URL token) ---
    Case("dh-missing-token", "dockerhub", 401, post("/hooks/dockerhub", bearer(None), j(HUB))),
    Case(
        "dh-wrong-token",
        "dockerhub",
        401,
        post("/hooks/dockerhub?token=nope", bearer(None), j(HUB)),
    ),
    Case(
        "dh-token-in-header-not-url", "dockerhub", 401, post("/hooks/dockerhub", bearer(), j(HUB))
    ),
    Case(
        "dh-not-a-hub-payload",
        "dockerhub",
        400,
        post(f"/hooks/dockerhub?token={TOKEN}", bearer(None), j({"hello": "world"})),
    ),
    Case(
        "dh-json-array",
        "dockerhub",
        400,
        post(f"/hooks/dockerhub?token={TOKEN}", bearer(None), j([HUB])),
    ),
    # --- routing: refused before any labkit code runs ---
    Case(
        "get-on-a-hook-route",
        None,
        frozenset({404, 405}),
        lambda port: raw_exchange(
            port, request_bytes("GET", "/hooks/github", [], b"", content_length=None)
        ),
        logged=False,
    ),
    Case(
        "post-to-an-unknown-source",
        None,
        404,
        post("/hooks/gitlab", [("Content-Type", "application/json")], b"{}"),
        logged=False,
    ),
]


def _http_impls() -> list[str]:
    impls = ["h11"]
    try:
        import httptools  # noqa: F401
    except ImportError:
        pass
    else:
        impls.append("httptools")
    return impls


@pytest.fixture(scope="module", params=_http_impls())
def bad_rx(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """One receiver per HTTP parser uvicorn can use (`labkit listen --http h11|httptools`)."""

    before = receiver_app.BODY_TIMEOUT
    receiver_app.BODY_TIMEOUT = BODY_TIMEOUT  # slow-body cases take 1 s, not 10
    rx = Receiver(SECRET, max_body=CAP, name=f"bad-requests-{request.param}")
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    rx._serving.config["http"] = request.param  # wrapped in the kit's header deadline
    rx.start()
    try:
        server = rx._serving._server
        assert server is not None
        assert issubclass(server.config.http, import_from_string(HTTP_PROTOCOLS[request.param]))
        assert server.config.http.header_deadline
        yield rx
    finally:
        rx.stop()
        receiver_app.BODY_TIMEOUT = before


def _top_seq(url: str) -> int:
    rows = httpx.get(f"{url}/deliveries", params={"limit": 1}, timeout=10).json()
    return int(rows[0]["seq"]) if rows else 0


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_request(bad_rx: Receiver, case: Case) -> None:
    url = bad_rx.url
    since = _top_seq(url)
    response = case.send(bad_rx.port)

    if case.may_lose_response and response.status is None:
        pass  # the client hung up mid-body; the log below must still show the rejection
    else:
        assert response.status is not None, f"no HTTP response at all: {response.head!r}"
        assert response.status < 500, f"server error {response.status}: {response.body[:300]!r}"
        expected = case.expect if isinstance(case.expect, frozenset) else {case.expect}
        assert response.status in expected, (response.status, response.body[:300])

    health = httpx.get(f"{url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"

    def new_rows() -> list[dict[str, Any]]:
        rows = httpx.get(f"{url}/deliveries", params={"limit": 20}, timeout=10).json()
        return [r for r in rows if int(r["seq"]) > since]

    if case.logged:
        rows = poll(new_rows, timeout=5, what=f"the rejection of {case.name} in the log")
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["status"] == "rejected", row
        assert row["source"] == case.source, row
        assert isinstance(row["reason"], str) and len(row["reason"]) > 5, row
    else:
        assert new_rows() == []


def test_receiver_still_accepts_good_deliveries_after_the_corpus(bad_rx: Receiver) -> None:
    headers = dict(gh(GOOD_GH, delivery="after-the-corpus"))
    response = httpx.post(
        f"{bad_rx.url}/hooks/github",
        content=GOOD_GH,
        headers={k: v for k, v in headers.items() if isinstance(v, str)},
    )
    assert response.status_code == 202, response.text
    assert bad_rx.running


def test_a_rejected_body_is_kept_only_in_part_with_its_size_and_digest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Anyone who reaches the port can send 5 MB of junk; the log keeps 64 KiB of it, the size
    and a sha256, not the whole body."""
    import hashlib

    import httpx

    from labkit import Receiver
    from labkit.webhooks.store import REJECTED_BODY_KEPT

    rx = Receiver(secret="s", db=str(tmp_path / "log.db")).start()
    try:
        junk = bytes(range(256)) * (5 * 1024 * 1024 // 256)
        answer = httpx.post(
            rx.hook_url("github"),
            content=junk,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
            },
        )
        assert answer.status_code == 401
        row = rx.deliveries(1)[0]
        assert row.status == "rejected" and row.size == len(junk)
        assert row.body == junk[:REJECTED_BODY_KEPT] and len(row.body) == 64 * 1024
        assert row.sha256 == hashlib.sha256(junk).hexdigest()
        assert row.detail()["body_sha256"] == row.sha256 and row.detail()["body_kept"] == 65536
    finally:
        rx.stop()
    assert (tmp_path / "log.db").stat().st_size < 2 * 1024 * 1024


def test_a_log_written_before_digests_were_kept_opens_and_keeps_its_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from labkit.webhooks.store import DeliveryLog

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT,
            source TEXT NOT NULL, event TEXT, status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '', verified INTEGER NOT NULL DEFAULT 0,
            received_at TEXT NOT NULL, headers TEXT NOT NULL DEFAULT '{}', body BLOB,
            size INTEGER NOT NULL DEFAULT 0, handled TEXT NOT NULL DEFAULT '',
            handler_error TEXT NOT NULL DEFAULT '');
        INSERT INTO deliveries (id, source, event, status, received_at, body, size)
            VALUES ('d1', 'github', 'push', 'accepted', '2026-01-01T00:00:00.000Z', x'7b7d', 2);
    """)
    old.commit()
    old.close()
    log = DeliveryLog(str(path))
    (row,) = log.latest(5)
    assert row.id == "d1" and row.body == b"{}" and row.sha256 == ""


@pytest.mark.parametrize("client", ["urllib", "httpx"])
def test_an_oversized_body_gets_a_readable_413_from_every_client(client: str) -> None:
    """urllib sends its whole body before it reads the answer: the receiver reads the rest
    (bounded) before answering, so urllib sees the 413 instead of a reset connection."""
    import urllib.error
    import urllib.request

    import httpx

    from labkit import Receiver

    rx = Receiver(secret="s", max_body=1024 * 1024).start()
    try:
        body = b"x" * (30 * 1024 * 1024)  # far beyond what socket buffers absorb
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        if client == "urllib":
            request = urllib.request.Request(rx.hook_url("github"), data=body, headers=headers)
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            status, text = caught.value.code, caught.value.read().decode()
        else:
            answer = httpx.post(rx.hook_url("github"), content=body, headers=headers, timeout=30)
            status, text = answer.status_code, answer.text
        assert status == 413 and "cap" in text
        assert httpx.get(rx.url + "/healthz").status_code == 200
    finally:
        rx.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/dockerhub",
        "/hooks/alertmanager",
        "/hooks/engine",
        "/hooks/standard",
        "/hooks/registry",
    ],
)
@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_what_a_web_page_can_post_without_cors_is_refused(path: str, ctype: str) -> None:
    """A page on any site can POST these three content types to 127.0.0.1 without asking;
    no JSON-only sender's endpoint takes them."""
    import httpx

    from labkit import Receiver

    rx = Receiver().start()
    try:
        answer = httpx.post(
            rx.url + path,
            content=b'{"status": "firing"}',
            headers={"Content-Type": ctype, "webhook-id": "msg_1"},
        )
        assert answer.status_code == 415, (answer.status_code, answer.text)
        assert rx.deliveries(1)[0].status == "rejected"
    finally:
        rx.stop()


def test_the_log_is_not_readable_through_a_rebound_name() -> None:
    """A page whose own domain name was rebound to 127.0.0.1 sends that name as Host: the read
    API refuses it, and still answers 127.0.0.1, localhost and host.docker.internal."""
    import httpx

    from labkit import Receiver, send
    from labkit.webhooks import events

    rx = Receiver().start()
    try:
        send(events.github.ping(), rx)
        for host in ("attacker.example", "attacker.example:80", "127.0.0.1.nip.io"):
            for path in ("/deliveries", "/deliveries/1", "/healthz"):
                answer = httpx.get(rx.url + path, headers={"Host": host})
                assert answer.status_code == 403, (host, path, answer.status_code)
        for host in (
            f"127.0.0.1:{rx.port}",
            f"localhost:{rx.port}",
            "host.docker.internal",
            "[::1]:8000",
        ):
            assert httpx.get(rx.url + "/deliveries", headers={"Host": host}).status_code == 200
        # Webhooks themselves may come through a tunnel with its own name.
        tunnelled = httpx.post(
            rx.hook_url("github"),
            content=b"{}",
            headers={
                "Host": "abc.tunnel.example",
                "Content-Type": "application/json",
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": "d-9",
            },
        )
        assert tunnelled.status_code == 202
    finally:
        rx.stop()
