"""The sender's trust rules: it connects to the address it checked (no DNS rebinding), a name for
this machine needs allow_private, and tokens live in its log only as fingerprints."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit import BlockedAddressError, DeliveryError, Receiver, redeliver, send
from labkit.webhooks import events, signing
from labkit.webhooks.sender import SentLog, check_address, default_log

from support import HOST, ScriptedServer, require

FAST: dict[str, Any] = {"retries": 1, "backoff": 0.01, "timeout": 2.0}
TOKEN = "tok-9c1e-never-stored"
PRINT = "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
PUBLIC = "93.184.216.34"


class Resolver:
    """A DNS stub: each listed name answers the next of its scripted answers (the last repeats)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.asked: dict[str, int] = {}

    def script(self, name: str, *answers: list[str]) -> None:
        self.answers[name], self.asked[name] = list(answers), 0

    def getaddrinfo(
        self, real: Callable[..., Any], host: Any, port: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if host not in self.answers:
            return real(host, port, *args, **kwargs)
        script = self.answers[host]
        answer = script[min(self.asked[host], len(script) - 1)]
        self.asked[host] += 1
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (ip, int(port)),
            )
            for ip in answer
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    resolver, real = Resolver(), socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: resolver.getaddrinfo(real, *a, **k))
    return resolver


@pytest.fixture
def sent(tmp_path: Path) -> SentLog:
    return SentLog(tmp_path / "sent.db")


# --- the connection goes to the address that was checked -----------------------------------------


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(
    dns: Resolver, sent: SentLog
) -> None:
    # The check hears 127.0.0.1 (allowed here); anyone resolving again would hear the metadata
    # address and connect there instead.
    with ScriptedServer([200]) as server:
        dns.script("hook.example", ["127.0.0.1"], ["169.254.169.254"])
        outcome = send(
            events.github.ping(),
            f"http://hook.example:{server.port}/hooks/github",
            log=sent,
            allow_private=True,
            **FAST,
        )
    assert outcome.ok, outcome
    assert [s.headers["host"] for s in server.seen] == [f"hook.example:{server.port}"]
    assert dns.asked["hook.example"] == 1


def test_a_retry_resolves_again_and_a_rebound_answer_is_refused(
    dns: Resolver, sent: SentLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public answer to the check, loopback to the retry: the retry never connects."""
    real_connect = socket.create_connection
    connected: list[tuple[str, int]] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address)
        # The "public" receiver is the scripted server (no traffic leaves this machine).
        where = (HOST, address[1]) if address[0] == PUBLIC else address
        return real_connect(where, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    with ScriptedServer([503, 200]) as server:
        dns.script("hook.example", [PUBLIC], ["127.0.0.1"])
        with pytest.raises(BlockedAddressError, match="hook.example.*allow_private"):
            send(
                events.github.ping(),
                f"http://hook.example:{server.port}/hooks/github",
                log=sent,
                **FAST,
            )
    assert connected == [(PUBLIC, server.port)]
    assert len(server.seen) == 1 and dns.asked["hook.example"] == 2


def test_a_retry_to_a_metadata_address_is_refused_even_with_allow_private(
    dns: Resolver, sent: SentLog
) -> None:
    with ScriptedServer([503, 200]) as server:
        dns.script("hook.example", ["127.0.0.1"], ["169.254.169.254"])
        with pytest.raises(BlockedAddressError, match="169.254.169.254"):
            send(
                events.github.ping(),
                f"http://hook.example:{server.port}/hooks/github",
                log=sent,
                allow_private=True,
                **FAST,
            )
    assert len(server.seen) == 1
    assert [r["status"] for r in sent.recent()] == [503]


def test_every_checked_address_is_tried_in_order(dns: Resolver, sent: SentLog) -> None:
    """``localhost`` often answers ::1 first while a receiver listens on 127.0.0.1 only."""
    with ScriptedServer([200]) as server:
        dns.script("localhost", ["::1", "127.0.0.1"])
        assert send(
            events.github.ping(), f"http://localhost:{server.port}/hooks/github", log=sent, **FAST
        ).ok
    assert len(server.seen) == 1


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``hook.example``."""
    require(
        shutil.which("openssl") is not None,
        "openssl is not installed: cannot make a test certificate",
    )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hook.example",
            "-addext",
            "subjectAltName=DNS:hook.example",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def heard(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name or "")

    context.sni_callback = heard

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield int(server.server_address[1]), cert, names
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_tls_verifies_the_name_not_the_pinned_address(
    dns: Resolver,
    sent: SentLog,
    tls_server: tuple[int, Path, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, cert, names = tls_server
    monkeypatch.setattr(
        "labkit.webhooks.sender._tls_context", ssl.create_default_context(cafile=cert)
    )
    dns.script("hook.example", ["127.0.0.1"])
    outcome = send(
        events.github.ping(),
        f"https://hook.example:{port}/hooks/github",
        log=sent,
        allow_private=True,
        **FAST,
    )
    assert outcome.ok, outcome.attempts
    assert names == ["hook.example"]
    # The same server by its address: the certificate does not name 127.0.0.1, so it fails.
    by_address = send(
        events.github.ping(),
        f"https://127.0.0.1:{port}/hooks/github",
        log=sent,
        retries=0,
        timeout=2.0,
    )
    assert not by_address.ok and "CERTIFICATE_VERIFY_FAILED" in by_address.attempts[0].error


# --- loopback: typed yes, reached by a name only when allowed -----------------------------------


def test_a_name_that_resolves_to_loopback_needs_allow_private(
    dns: Resolver, sent: SentLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedServer([200]) as server:
        dns.script("rebind.example", ["127.0.0.1"])
        url = f"http://rebind.example:{server.port}/hooks/github"
        with pytest.raises(BlockedAddressError) as refused:
            send(events.github.ping(), url, log=sent, **FAST)
        assert server.seen == [] and sent.recent() == []
        message = str(refused.value)
        assert "rebind.example" in message and "127.0.0.1" in message
        assert "allow_private=True" in message and "LABKIT_ALLOW_PRIVATE=1" in message
        monkeypatch.setenv("LABKIT_ALLOW_PRIVATE", "1")
        assert send(events.github.ping(), url, log=sent, **FAST).ok
    assert len(server.seen) == 1


def test_typed_loopback_is_allowed(sent: SentLog) -> None:
    with ScriptedServer([200]) as server:
        for host in ("127.0.0.1", "localhost", "LOCALHOST"):
            assert send(
                events.github.ping(), f"http://{host}:{server.port}/", log=sent, **FAST
            ).ok, host
    assert len(server.seen) == 3


def test_check_address_loopback_policy() -> None:
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.0.2"):
        check_address(address)
        check_address(address, name="hook.example", allow_private=True)
        with pytest.raises(BlockedAddressError, match="hook.example"):
            check_address(address, name="hook.example")


# --- tokens: fingerprints in the log, the real one again to redeliver ---------------------------


def _leaks(home: Path, secret: str) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _holds(home: Path, text: str) -> bool:
    return any(text.encode() in p.read_bytes() for p in home.rglob("*") if p.is_file())


@pytest.fixture
def token_rx(make_receiver: Callable[..., Receiver]) -> Receiver:
    """Each token source given TOKEN itself (a value given per source is taken as it is)."""
    return make_receiver(None, secrets={s: TOKEN for s in signing.TOKEN_SOURCES})


def test_redelivery_with_the_one_secret_finds_the_token_derived_from_it(
    make_receiver: Callable[..., Receiver], labkit_home: Path
) -> None:
    rx = make_receiver(TOKEN)  # one secret for every source: registry gets a derived token
    first = send(events.build("registry.push"), rx, secret=rx.token("registry"), **FAST)
    assert first.ok, first.response
    again = redeliver(first.delivery_id, secret=TOKEN, **FAST)  # what `labkit listen` was given
    assert again.ok, again.response
    with pytest.raises(DeliveryError, match="does not derive it"):
        redeliver(first.delivery_id, secret="another-secret", **FAST)
    assert _leaks(labkit_home, rx.token("registry") or "") == []


def test_tokens_are_kept_only_as_fingerprints(token_rx: Receiver, labkit_home: Path) -> None:
    bearer = send(events.build("registry.push"), token_rx, secret=TOKEN, **FAST)
    query = send(events.dockerhub.push(), token_rx, secret=TOKEN, **FAST)  # ?token= in the URL
    assert bearer.ok and query.ok, (bearer.response, query.response)
    assert "?token=" in token_rx.hook_url("dockerhub")
    assert _leaks(labkit_home, TOKEN) == []
    # The scan reads the log (the -wal too, where SQLite writes first): both messages are there.
    assert _holds(labkit_home, bearer.delivery_id) and _holds(labkit_home, query.delivery_id)
    assert _holds(labkit_home, f"Bearer {PRINT}") and _holds(labkit_home, f"token={PRINT}")
    logged = default_log().message(bearer.delivery_id)
    assert logged is not None and logged[0].headers["Authorization"] == f"Bearer {PRINT}"
    assert query.url.endswith(f"?token={PRINT}")
    shown = repr(bearer) + repr(query) + query.url + repr(default_log().recent())
    assert TOKEN not in shown and TOKEN not in repr(default_log().message(query.delivery_id))


def test_the_command_line_listing_shows_no_token(token_rx: Receiver, labkit_home: Path) -> None:
    assert send(events.dockerhub.push(), token_rx, secret=TOKEN, **FAST).ok
    cli = [sys.executable, "-m", "labkit.cli", "deliveries"]
    for extra in ([], ["--json"]):
        listed = subprocess.run([*cli, *extra], capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "dockerhub.push" in listed.stdout and TOKEN not in listed.stdout + listed.stderr


@pytest.mark.parametrize("kind", ["registry.push", "alertmanager.firing", "dockerhub.push"])
def test_redelivery_takes_the_token_again(token_rx: Receiver, labkit_home: Path, kind: str) -> None:
    first = send(events.build(kind), token_rx, secret=TOKEN, **FAST)
    assert first.ok, first.response
    with pytest.raises(DeliveryError, match=r"secret=TOKEN.*--secret TOKEN"):
        redeliver(first.delivery_id, **FAST)
    again = redeliver(first.delivery_id, secret=TOKEN, **FAST)
    assert again.ok, again.response
    received = token_rx.wait_for(2)
    assert all(d.verified for d in received), received
    assert received[0].body == received[1].body
    assert _leaks(labkit_home, TOKEN) == []


def test_redelivery_of_a_github_push_needs_no_secret(
    make_receiver: Callable[..., Receiver],
) -> None:
    """GitHub's signature is no secret (it only proves the body), so the log keeps it."""
    rx = make_receiver(TOKEN)
    first = send(events.github.push(), rx, secret=TOKEN, **FAST)
    assert first.ok
    assert redeliver(first.delivery_id, **FAST).ok


def test_a_log_from_before_fingerprints_is_cleaned_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "sent.db"
    url = f"http://127.0.0.1:9/hooks/dockerhub?token={TOKEN}"
    old = sqlite3.connect(db, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript("""
        CREATE TABLE messages (delivery_id TEXT PRIMARY KEY, kind TEXT, source TEXT, path TEXT,
            url TEXT, headers TEXT, body BLOB, secret_scheme TEXT);
        CREATE TABLE disabled (url TEXT PRIMARY KEY, since TEXT);
    """)
    old.execute(
        "INSERT INTO messages VALUES ('old-1', 'registry.push', 'registry', '', ?, ?, x'7b7d', '')",
        (url, json.dumps({"Authorization": f"Bearer {TOKEN}"})),
    )
    old.execute("INSERT INTO disabled VALUES (?, 'then')", (url,))
    old.close()
    assert _leaks(tmp_path, TOKEN)  # the old log does hold it
    log = SentLog(db)
    assert _leaks(tmp_path, TOKEN) == []
    found = log.message("old-1")
    assert found is not None and found[0].headers["Authorization"] == f"Bearer {PRINT}"
    assert found[1].endswith(f"token={PRINT}")
    assert log.is_disabled(url)
    log.enable(url)
    assert not log.is_disabled(url)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_log_is_private(token_rx: Receiver, labkit_home: Path) -> None:
    assert not labkit_home.exists()
    assert send(events.build("registry.push"), token_rx, secret=TOKEN, **FAST).ok
    assert _mode(labkit_home) == 0o700
    files = [p for p in labkit_home.iterdir() if p.name.startswith("sent.db")]
    assert labkit_home / "sent.db" in files
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
