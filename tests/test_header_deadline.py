"""A client that sends its headers too slowly gets a 408 and loses the connection; one whose
headers have arrived is never cut, however long its app takes (both uvicorn protocols)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from labkit.webhooks.serving import ServerThread, bind, with_header_deadline

from support import raw_exchange

DEADLINE = 0.5


async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers after twice the headers' deadline: its request must still complete."""
    await asyncio.sleep(DEADLINE * 2)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")],
        }
    )
    await send({"type": "http.response.body", "body": b"done"})


@pytest.fixture(params=["h11", "httptools"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    sock = bind("127.0.0.1", 0)
    number = sock.getsockname()[1]
    server = ServerThread(
        slow_app, name="deadline-test", http=with_header_deadline(request.param, DEADLINE)
    )
    # (ServerThread adds the kit's 10 s deadline only to a protocol that has none.)
    assert server.start([sock]) is None
    try:
        yield number
    finally:
        server.stop()


def test_headers_trickled_too_slowly_get_a_408_and_a_closed_connection(port: int) -> None:
    answer = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        trickle=[b"X-Slow: 1\r\n"] * 20,
        trickle_every=DEADLINE / 4,
    )
    assert answer.status == 408
    assert b"too slowly" in answer.body
    # Cut at the deadline, not after the 20 pieces (5 deadlines) the client meant to send.
    assert answer.elapsed < DEADLINE * 4


def test_a_silent_connection_is_closed_too(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE * 20) as sock:
        assert sock.recv(1024).startswith(b"HTTP/1.1 408 ")


def test_a_request_whose_headers_arrived_is_never_cut(port: int) -> None:
    answer = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert answer.status == 200 and answer.body == b"done"
    assert answer.elapsed >= DEADLINE * 2


def test_keep_alive_requests_each_get_their_own_deadline(port: int) -> None:
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE * 20) as sock:
        for _ in range(2):  # each answer takes 2 deadlines: a connection-wide timer would cut
            sock.sendall(request)
            data = b""
            while not data.endswith(b"done"):
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ")
