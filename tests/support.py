"""Helpers shared by the receiver, sender, CLI and durability tests.

Everything here talks to 127.0.0.1 only and cleans up after itself.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from labkit.webhooks import signing

HOST = "127.0.0.1"
IN_CI = os.environ.get("CI", "").lower() == "true"
VENV_BIN = Path(sys.executable).parent
LABKIT = str(VENV_BIN / "labkit")


# --- waiting without pretending ------------------------------------------------------------


def poll(
    predicate: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Call ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}"
                + (f" (last error: {last_exc!r})" if last_exc else "")
            )
        time.sleep(interval)


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, close)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def refused(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return False
    except OSError:
        return True


# --- building requests by hand (independent of labkit.events) -----------------------------


def github_headers(
    body: bytes,
    secret: str | None,
    *,
    event: str | None = "push",
    delivery_id: str | None = None,
    content_type: str | None = "application/json",
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if event is not None:
        headers["X-GitHub-Event"] = event
    headers["X-GitHub-Delivery"] = delivery_id or str(uuid.uuid4())
    if secret is not None:
        headers["X-Hub-Signature-256"] = signing.github_signature_256(body, secret)
    return headers


def standard_headers(
    body: bytes, secret: str, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    ts = int(time.time()) if timestamp is None else timestamp
    headers = signing.standard_headers(secret, msg_id, ts, body)
    headers["Content-Type"] = "application/json"
    return headers


def push_body(**extra: Any) -> bytes:
    payload = {
        "ref": "refs/heads/main",
        "after": uuid.uuid4().hex,
        "repository": {"full_name": "o/r"},
    }
    payload.update(extra)
    return json.dumps(payload).encode()


# --- raw HTTP over a socket (for what httpx refuses to craft) -------------------------------


@dataclass
class RawResponse:
    status: int | None
    head: bytes
    body: bytes
    elapsed: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    method: str,
    path: str,
    headers: Iterable[tuple[str, str | bytes]],
    body: bytes = b"",
    *,
    content_length: int | str | None = "auto",
) -> bytes:
    """An HTTP/1.1 request; ``headers`` may repeat names; ``content_length=None`` omits it."""
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {HOST}".encode(), b"Connection: close"]
    for name, value in headers:
        raw = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + raw)
    if content_length == "auto":
        lines.append(b"Content-Length: " + str(len(body)).encode())
    elif content_length is not None:
        lines.append(b"Content-Length: " + str(content_length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def raw_exchange(
    port: int,
    data: bytes,
    *,
    trickle: Iterable[bytes] = (),
    trickle_every: float = 0.0,
    half_close: bool = False,
    timeout: float = 15.0,
) -> RawResponse:
    """Send ``data`` (then ``trickle`` pieces, one every ``trickle_every`` s), read to EOF."""
    started = time.monotonic()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            for piece in trickle:
                time.sleep(trickle_every)
                sock.sendall(piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read what it said
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = None
    if head.startswith(b"HTTP/1.1 ") or head.startswith(b"HTTP/1.0 "):
        status = int(head.split(b" ", 2)[1])
    return RawResponse(status, head, body, time.monotonic() - started)


# --- a scripted HTTP server for the sender tests ------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class ScriptedServer:
    """Answers each request with the next :class:`Reply` (the last one repeats); records requests."""

    def __init__(self, replies: Iterable[Reply | int], *, port: int = 0) -> None:
        self.replies = [r if isinstance(r, Reply) else Reply(r) for r in replies]
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer._lock:
                    outer.seen.append(
                        Seen(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                    index = min(len(outer.seen), len(outer.replies)) - 1
                reply = outer.replies[index]
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


# --- `labkit listen` as a subprocess ---------------------------------------------------------


class Listener:
    """``labkit listen`` in a subprocess on a free port; ``stop()`` always reaps it."""

    def __init__(
        self,
        db: Path,
        *,
        secret: str | None = None,
        extra: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.db, self.secret, self.extra = db, secret, list(extra)
        self.env = {**os.environ, **(env or {})}
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = db.with_suffix(".listener.log")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 20.0) -> Listener:
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):  # a probed free port can be taken before the bind
            port = self.port if fixed else free_port()
            cmd = [
                LABKIT,
                "listen",
                "--host",
                HOST,
                "--port",
                str(port),
                "--db",
                str(self.db),
                *self.extra,
            ]
            if self.secret is not None:
                cmd += ["--secret", self.secret]
            self._out = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self.proc = subprocess.Popen(
                cmd,
                stdout=self._out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
            self.port = port
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            self.stop()
        raise AssertionError(f"labkit listen did not come up; log:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        out = getattr(self, "_out", None)
        if out is not None:
            out.close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_labkit(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run the ``labkit`` command to completion, capturing its output."""
    return subprocess.run(
        [LABKIT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def deliveries(base_url: str, limit: int = 1000) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/deliveries", params={"limit": limit}, timeout=10)
    response.raise_for_status()
    return list(response.json())


def require(ok: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``ok``; under CI=true (an engine answers there) fail instead."""
    import pytest

    if ok:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true and a Docker engine answers, so this is a failure)")
    pytest.skip(reason)
