"""Schemathesis over the receiver's own OpenAPI document: no input may produce a 5xx.

Two receivers: one with a secret (most requests stop at authentication) and one without (the
bodies reach the parsers). Bounded to ~30 examples per operation.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from labkit.webhooks.receiver import Receiver

# Not started: schemathesis drives the ASGI app in-process.
SECURED = Receiver("s3cret", max_body=256 * 1024, name="schemathesis-secured")
OPEN = Receiver(None, max_body=256 * 1024, name="schemathesis-open")


def _from_loopback(app: Any) -> Any:
    """The in-process client says Host: testserver; a real caller of the log is on 127.0.0.1
    (the read API refuses other names, see test_bad_requests)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope = {**scope, "headers": [*headers, (b"host", b"127.0.0.1")]}
        await app(scope, receive, send)

    return wrapped


secured_schema = schemathesis.openapi.from_asgi("/openapi.json", _from_loopback(SECURED.app))
open_schema = schemathesis.openapi.from_asgi("/openapi.json", _from_loopback(OPEN.app))

BOUNDED = settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def test_schema_lists_every_route() -> None:
    paths = set(secured_schema.raw_schema["paths"])
    for source in ("github", "dockerhub", "registry", "alertmanager", "engine", "standard"):
        assert f"/hooks/{source}" in paths
    assert {"/deliveries", "/deliveries/{delivery_id}", "/healthz"} <= paths


@secured_schema.parametrize()
@BOUNDED
def test_secured_receiver_never_answers_5xx(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=[not_a_server_error])


@open_schema.parametrize()
@BOUNDED
def test_open_receiver_never_answers_5xx(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=[not_a_server_error])
