"""Lesson 04 (services with Compose): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from ._core import Exercise, Verdict, _as_text


def _depends_on(answer: Any) -> Verdict:
    if isinstance(answer, (list, tuple)) and list(answer) == ["db"]:
        return False, (
            "The short form `depends_on: [db]` only orders container starts; use the "
            "long form {'db': {'condition': ...}}."
        )
    if not isinstance(answer, dict) or set(answer) != {"db"}:
        return False, "The key is the service to wait for ('db'); its value is a dict."
    condition = answer["db"].get("condition") if isinstance(answer["db"], dict) else None
    if condition == "service_healthy":
        return True, "orders waits until db's healthcheck passes."
    if condition == "service_started":
        return False, "service_started only waits for the container to start, not to be ready."
    return False, "The value is {'condition': <which state of db to wait for>}."


def _scale_users(answer: Any) -> Verdict:
    if not isinstance(answer, (set, frozenset)):
        return False, "Collect the hostnames in a set: {... for _ in range(4)}."
    from ..localstack import stack

    try:  # the stack on the lesson's runtime: Docker's containers, or the local processes
        replicas = set(stack("services").hostnames("users"))
    except Exception as exc:  # noqa: BLE001 - no engine, no stack: say so as a hint
        return False, f"The services stack does not answer ({exc}); run the lesson's start cell."
    if len(replicas) != 2:
        return False, f"{len(replicas)} users replica(s) run: stack.scale('users', 2) first."
    if answer != replicas:
        return False, (
            f"{len(answer)} of the 2 replicas answered: send a few requests through "
            "the gateway (url + '/api/users') after scaling."
        )
    return True, "both replicas answered: the gateway spreads requests over them."


def _loopback_port(answer: Any) -> Verdict:
    text = _as_text(answer)
    if text is None:
        return False, "Write the ports entry as a string, e.g. 'HOST_IP:HOST_PORT:CONTAINER_PORT'."
    if text in ("8000", "8000:8000", "0.0.0.0:8000:8000", "0.0.0.0::8000"):
        return False, "That publishes on every interface: put 127.0.0.1 first."
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "127.0.0.1" or parts[2] != "8000":
        return False, "The form is HOST_IP:HOST_PORT:CONTAINER_PORT with HOST_IP 127.0.0.1."
    if parts[1]:
        return False, "Leave HOST_PORT empty (127.0.0.1::8000) so Docker picks a free one."
    return True, "published on this machine only, on a port Docker picks."


EXERCISES = (
    Exercise(
        "04-depends-on",
        "The depends_on entry that waits until db is healthy.",
        _depends_on,
        'answer = {"db": {"condition": "service_healthy"}}',
    ),
    Exercise(
        "04-scale-users",
        "Scale users to 2 and collect the hostnames that answer.",
        _scale_users,
        'stack.scale("users", 2)\n'
        'answer = {httpx.get(url + "/api/users").json()["hostname"] for _ in range(4)}',
    ),
    Exercise(
        "04-loopback-port",
        "The ports entry that publishes 8000 on 127.0.0.1 only.",
        _loopback_port,
        'answer = "127.0.0.1::8000"',
    ),
)
