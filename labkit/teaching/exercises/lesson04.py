"""Lesson 04 (services with Compose): the learner's own compose file, checked as Compose reads
it and as the running stack shows it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labkit.errors import StackError
from labkit.runtime import composefile
from labkit.runtime.compose import bound_addresses
from labkit.runtime.localstack import stack
from labkit.teaching.exercises._core import Exercise, Hint, Verdict

#: Where the lesson copies the shop for the learner (relative to the notebook's folder).
FILE = "my-shop/compose.yaml"
APPS = ("users", "products", "orders", "gateway")

HEALTHCHECK = """\
labkit.fill_task("my-shop/compose.yaml", 1, '''
healthcheck:
  test: ["CMD", "labkit-probe", "http://127.0.0.1:8000/healthz"]
  interval: 2s
  timeout: 3s
  retries: 30
''')
answer = "my-shop/compose.yaml\""""

DEPENDS_ON = """\
labkit.fill_task("my-shop/compose.yaml", 2, '''
depends_on:
  db: {condition: service_healthy}
  users: {condition: service_healthy}
  products: {condition: service_healthy}
''')
answer = "my-shop/compose.yaml\""""

LOOPBACK = """\
labkit.fill_task("my-shop/compose.yaml", 3, 'ports: ["127.0.0.1::8000"]')
%compose -f my-shop/compose.yaml up --wait
answer = "my-shop/compose.yaml\""""

INTERNAL = """\
labkit.fill_task("my-shop/compose.yaml", 4, '''
backend:
  internal: true
''')
%compose -f my-shop/compose.yaml down
%compose -f my-shop/compose.yaml up --wait
answer = "my-shop/compose.yaml\""""


def _starter(task: int, then: str = "") -> str:
    return (
        f"# Open {FILE}, replace the line marked TASK {task} as the task says, and save it.\n"
        + (f"# Then {then}\n" if then else "")
        + f'answer = "{FILE}"'
    )


def _stack(answer: Any) -> tuple[Any, str]:
    """The learner's stack from ``answer`` (the path of their compose file), or why not."""

    path = Path(os.fspath(answer)) if isinstance(answer, (str, os.PathLike)) else None
    if path is None or not path.is_file():
        return None, f"Set answer to the path of your compose file: answer = {FILE!r}."
    try:
        return stack(str(path)), ""
    except StackError as exc:
        return None, str(exc)


def _read(answer: Any) -> tuple[Any, dict[str, Any] | None, str]:
    """The learner's stack and its compose file as Compose reads it, or why not."""
    target, why = _stack(answer)
    if target is None:
        return None, None, why
    try:
        return target, target.config(), ""
    except Exception as exc:  # noqa: BLE001 - Compose's or YAML's complaint, shown as a hint
        first = str(exc).strip().splitlines()
        return (
            target,
            None,
            (
                "Compose cannot read your file: "
                + " ".join(first[-3:])
                + " Check the indentation of the lines you wrote (spaces, never tabs)."
            ),
        )


def _services(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v or {} for k, v in (config.get("services") or {}).items()}


def _healthcheck(answer: Any) -> Verdict:
    _, config, why = _read(answer)
    if config is None:
        return False, why
    services = _services(config)
    missing = [s for s in APPS if not services.get(s, {}).get("healthcheck")]
    looked = f"{FILE} as Compose reads it (anchors merged)"
    if len(missing) == len(APPS):
        return (
            False,
            Hint(
                "No app service has a healthcheck yet. Write it once, in x-app where the "
                "TASK 1 line is: every service that merges *app gets it.",
                'In place of the TASK 1 line: healthcheck: with test: ["CMD", '
                '"labkit-probe", "http://127.0.0.1:8000/healthz"], interval: 2s, timeout: 3s, '
                "retries: 30 (each on its own line, indented under healthcheck:).",
            ),
            looked,
        )
    if missing:
        return False, f"{', '.join(missing)} still have no healthcheck: put it in x-app.", looked
    for name in APPS:
        check = services[name]["healthcheck"]
        test = check.get("test")
        words = [str(t) for t in test] if isinstance(test, list) else [str(test)]
        text = " ".join(words)
        if not words or words[0] not in ("CMD", "CMD-SHELL"):
            return (
                False,
                (f'{name}\'s test must start with "CMD" (run a program) or "CMD-SHELL".'),
                looked,
            )
        if "/healthz" not in text or "8000" not in text:
            return (
                False,
                (
                    f"{name}'s test runs {text!r}: it must ask http://127.0.0.1:8000/healthz, the "
                    "app's own health route."
                ),
                looked,
            )
        if composefile.seconds(check.get("interval", "30s")) > 5:
            return (
                False,
                (
                    "Set interval: 2s: with the default of 30 s, every service waits half a minute "
                    "before it first counts as healthy."
                ),
                looked,
            )
    return True, "every app service asks its own /healthz every 2 s.", looked


def _depends_on(answer: Any) -> Verdict:
    _, config, why = _read(answer)
    if config is None:
        return False, why
    looked = f"{FILE} as Compose reads it"
    orders = _services(config).get("orders", {})
    needs = orders.get("depends_on") or {}
    if isinstance(needs, list):
        return (
            False,
            Hint(
                "orders still uses the short form, which only waits for the containers to "
                "start. Use the long form: a mapping with a condition for each service.",
                "In place of the TASK 2 line: depends_on: then, indented, db: {condition: "
                "service_healthy}, and the same for users and products.",
            ),
            looked,
        )
    wanted = {"db", "users", "products"}
    if set(needs) != wanted:
        return False, f"orders must wait for exactly {', '.join(sorted(wanted))}.", looked
    for name, spec in needs.items():
        condition = (spec or {}).get("condition")
        if condition == "service_started":
            return (
                False,
                (
                    f"{name}: service_started only waits for the container to start, not for it "
                    "to be ready."
                ),
                looked,
            )
        if condition != "service_healthy":
            return False, f"{name}: the condition is service_healthy.", looked
    return True, "orders starts only once db, users and products pass their healthchecks.", looked


def _loopback_port(answer: Any) -> Verdict:
    target, config, why = _read(answer)
    if config is None:
        return False, why
    rows = [r for r in target.ps() if r["service"] == "gateway" and r["state"] == "running"]
    looked = "the running gateway's published port (as docker ps shows it)"
    if not rows:
        return (
            False,
            ("The gateway is not running: %compose -f my-shop/compose.yaml up --wait"),
            looked,
        )
    ports = [str(p) for p in _services(config).get("gateway", {}).get("ports") or []]
    written = ports[0] if ports else ""
    bound = bound_addresses(rows)
    if bound <= {"127.0.0.1"} and bound:
        parts = written.split(":")
        if len(parts) == 3 and parts[1]:
            return (
                False,
                (
                    "Loopback only, good; now leave the host port empty (127.0.0.1::8000) so "
                    "Docker picks a free one and two copies never clash."
                ),
                looked,
            )
        return True, "the gateway is published on 127.0.0.1 only, on a port Docker picked.", looked
    if written.startswith("127.0.0.1:"):
        return (
            False,
            (
                "Your file says 127.0.0.1, but the running gateway still listens on every interface: "
                "run %compose -f my-shop/compose.yaml up --wait again, so Compose recreates it."
            ),
            looked,
        )
    return (
        False,
        Hint(
            f"ports: [{written!r}] publishes on every interface (0.0.0.0): anyone who can reach "
            "this machine reaches the shop. Put the address first.",
            'In place of the TASK 3 line: ports: ["127.0.0.1::8000"] (address, empty host '
            "port, container port); then run up --wait again.",
        ),
        looked,
    )


def _internal_network(answer: Any) -> Verdict:
    target, config, why = _read(answer)
    if config is None:
        return False, why
    written = bool(((config.get("networks") or {}).get("backend") or {}).get("internal"))
    # One text on both runtimes: the lesson's committed output is compared on each.
    looked = "the stack's networks (as the engine has them; the local stand-in: as your file says)"
    if not written:
        return (
            False,
            Hint(
                "backend is an ordinary network: its containers can reach out, and anything "
                "published on it is reachable. Make it internal.",
                "In place of the TASK 4 line: backend: and under it internal: true; then "
                "%compose ... down and %compose ... up --wait.",
            ),
            looked,
        )
    networks = target.networks()
    backend = networks.get("backend")
    if backend is None:
        return False, "The stack has no backend network: run %compose ... up --wait.", looked
    if not backend["internal"]:
        return (
            False,
            (
                "Your file says internal, but the running network is not: Compose does not change "
                "a network in place. Run %compose ... down, then %compose ... up --wait."
            ),
            looked,
        )
    front = networks.get("frontend", {}).get("services", [])
    if front != ["gateway"]:
        return False, f"Only the gateway belongs on frontend; now it holds {front}.", looked
    return True, "backend is internal, and only the gateway is also on frontend.", looked


def _scale_users(answer: Any) -> Verdict:
    if not isinstance(answer, (set, frozenset)):
        return False, "Collect the hostnames in a set: {... for _ in range(4)}."
    target, why = _stack(FILE)
    if target is None:
        return False, why
    try:  # the stack on the lesson's runtime: Docker's containers, or the local processes
        replicas = set(target.hostnames("users"))
    except Exception as exc:  # noqa: BLE001 - no engine, no stack: say so as a hint
        return False, f"Your stack does not answer ({exc}); run the up cell of section 5."
    looked = "the running users replicas"
    if len(replicas) != 2:
        return (
            False,
            f"{len(replicas)} users replica(s) run: "
            "%compose -f my-shop/compose.yaml up --wait --scale users=2 first.",
            looked,
        )
    if answer != replicas:
        return (
            False,
            f"{len(answer)} of the 2 replicas answered: send a few requests through "
            "the gateway (url + '/api/users') after scaling.",
            looked,
        )
    return True, "both replicas answered: the gateway spreads requests over them.", looked


EXERCISES = (
    Exercise(
        "04-healthcheck",
        "A healthcheck for every app service, written once in x-app.",
        _healthcheck,
        HEALTHCHECK,
        _starter(1),
    ),
    Exercise(
        "04-depends-on",
        "orders waits until db, users and products are healthy.",
        _depends_on,
        DEPENDS_ON,
        _starter(2),
    ),
    Exercise(
        "04-loopback-port",
        "The gateway published on 127.0.0.1 only, on a port Docker picks.",
        _loopback_port,
        LOOPBACK,
        _starter(3, "run: %compose -f my-shop/compose.yaml up --wait"),
    ),
    Exercise(
        "04-internal-network",
        "backend is an internal network; only the gateway is on frontend too.",
        _internal_network,
        INTERNAL,
        _starter(4, "run %compose ... down, then %compose ... up --wait"),
    ),
    Exercise(
        "04-scale-users",
        "Scale users to 2 and collect the hostnames that answer.",
        _scale_users,
        "%compose -f my-shop/compose.yaml up --wait --scale users=2\n"
        'answer = {httpx.get(url + "/api/users").json()["hostname"] for _ in range(4)}',
    ),
)
