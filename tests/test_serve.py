"""labkit.serve: a learner's own ASGI app in a daemon thread, replaced on a re-run, recorded."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi import FastAPI, Request, Response

import labkit
from labkit.errors import ServeError


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/github")
    async def receive(request: Request) -> Response:
        body = await request.body()
        return Response(status_code=202, content=b"got %d bytes" % len(body))

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("handler bug")

    return app


def test_serves_the_app_and_records_what_it_answered() -> None:
    server = labkit.serve(_app(), name="t-serve")
    try:
        assert server.running
        got = httpx.post(
            server.url + "/hooks/github?x=1",
            content=b'{"a": 1}',
            headers={"X-GitHub-Event": "ping"},
        )
        assert got.status_code == 202 and got.content == b"got 8 bytes"
        missing = httpx.post(server.url + "/nowhere", content=b"")
        assert missing.status_code == 404
        first, second = server.exchanges
        assert (first.method, first.path, first.query, first.body, first.status) == (
            "POST",
            "/hooks/github",
            "x=1",
            b'{"a": 1}',
            202,
        )
        assert first.headers["x-github-event"] == "ping"
        assert first.response_body == b"got 8 bytes"
        assert second.status == 404
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(ServeError, match="not being served"):
        server.url  # noqa: B018 - the property raises


def test_an_app_that_raises_is_recorded_as_a_500_with_its_error() -> None:
    with labkit.serve(_app(), name="t-serve-boom") as server:
        assert httpx.post(server.url + "/boom").status_code == 500
        [exchange] = server.exchanges
        assert exchange.status == 500 and "handler bug" in exchange.error


def test_serving_again_under_the_same_name_stops_the_old_server() -> None:
    old = labkit.serve(_app(), name="t-serve-rerun")
    old_port = old.port
    new = labkit.serve(_app(), name="t-serve-rerun")
    try:
        assert not old.running and new.running
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"http://127.0.0.1:{old_port}/hooks/github", content=b"")
        assert httpx.post(new.url + "/hooks/github", content=b"").status_code == 202
    finally:
        new.stop()


def test_serving_on_a_port_another_served_app_holds_replaces_it() -> None:
    first = labkit.serve(_app(), name="t-serve-a")
    try:
        second = labkit.serve(_app(), port=first.port, name="t-serve-b")
        assert not first.running and second.port == first.port
        second.stop()
    finally:
        first.stop()


def test_a_port_held_by_another_program_fails_loudly() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(ServeError, match="Another program holds that port"):
            labkit.serve(_app(), port=holder.getsockname()[1], name="t-serve-busy")
    finally:
        holder.close()


def test_something_that_is_not_an_app_fails_loudly_and_names_the_fix() -> None:
    with pytest.raises(ServeError, match="ASGI app"):
        labkit.serve(object(), name="t-serve-bad", timeout=5)


def test_an_exchange_shows_the_request_as_it_came_over_the_wire() -> None:
    import httpx
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.post("/hooks/{source}")
    async def hook(source: str, request: Request) -> Response:
        await request.body()
        return Response(status_code=202)

    server = labkit.serve(app, name="wire")
    try:
        httpx.post(
            server.url + "/hooks/github?x=1",
            content=b'{"zen": "hi"}',
            headers={"X-GitHub-Event": "ping"},
        )
        wire = server.exchanges[-1].as_http()
    finally:
        server.stop()
    head, body = wire.split("\n\n", 1)
    assert head.splitlines()[0] == "POST /hooks/github?x=1 HTTP/1.1"
    assert "x-github-event: ping" in head.splitlines() and body == '{"zen": "hi"}'
