"""Schemathesis over the receiver's own OpenAPI document: no input may produce a 5xx.

Two receivers: one with a secret (most requests stop at authentication) and one without (the
bodies reach the parsers). Bounded to ~30 examples per operation.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from labkit.receiver import Receiver

# Not started: schemathesis drives the ASGI app in-process.
SECURED = Receiver("s3cret", max_body=256 * 1024, name="schemathesis-secured")
OPEN = Receiver(None, max_body=256 * 1024, name="schemathesis-open")

secured_schema = schemathesis.openapi.from_asgi("/openapi.json", SECURED.app)
open_schema = schemathesis.openapi.from_asgi("/openapi.json", OPEN.app)

BOUNDED = settings(max_examples=30, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))


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
