"""The front proxy in front of each deployed version: what it passes on, and what it refuses."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request

import labkit
from labkit.runtime.proxy import MAX_BODY, Front


@pytest.fixture
def front() -> Iterator[tuple[Front, labkit.Served]]:
    app = FastAPI()

    @app.api_route("/{rest:path}", methods=["GET", "POST"])
    async def echo(rest: str, request: Request) -> dict[str, object]:
        return {
            "path": "/" + rest,
            "size": len(await request.body()),
            "forwarded": request.headers.getlist("x-forwarded-for"),
        }

    upstream = labkit.serve(app, name="proxy-upstream")
    proxy = Front("proxy-test").start()
    proxy.switch(upstream.url)
    try:
        yield proxy, upstream
    finally:
        proxy.stop()
        upstream.stop()


def test_a_client_cannot_claim_another_address(front: tuple[Front, labkit.Served]) -> None:
    proxy, _ = front
    seen = httpx.get(proxy.url + "/who", headers={"X-Forwarded-For": "10.0.0.1"}).json()
    assert seen["forwarded"] == ["127.0.0.1"], seen


def test_a_body_over_the_cap_is_refused_and_never_reaches_the_app(
    front: tuple[Front, labkit.Served],
) -> None:
    proxy, upstream = front
    before = len(upstream.exchanges)
    answer = httpx.post(proxy.url + "/big", content=b"x" * (MAX_BODY + 1))
    assert answer.status_code == 413 and str(MAX_BODY) in answer.json()["detail"]
    assert len(upstream.exchanges) == before
    assert httpx.post(proxy.url + "/small", content=b"x" * 1000).json()["size"] == 1000


def test_an_absolute_target_never_leaves_for_another_host(
    front: tuple[Front, labkit.Served],
) -> None:
    """``GET http://169.254.169.254/latest``: the front answers 400, or (uvicorn's parser keeps
    only the path) passes ``/latest`` to the app behind it; never a request to that address."""
    proxy, upstream = front
    where = urlsplit(proxy.url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as conn:
        conn.sendall(
            b"GET http://169.254.169.254/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    status = reply.split(b"\r\n", 1)[0]
    if b" 400" not in status:
        assert status.endswith(b"200 OK") and b'"path":"/latest"' in reply, reply[:300]
        assert upstream.exchanges[-1].path == "/latest"
