"""Docker Engine container events (``GET /events``) wrapped as webhook deliveries by a forwarder."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from labkit.webhooks.events._base import Event, ids, json_body

__all__ = ["ACTIONS", "container", "delivery_key", "from_engine"]

PATH = "/hooks/engine"
#: Container actions the builder knows (the engine emits more; :func:`from_engine` takes any).
ACTIONS = (
    "create",
    "start",
    "restart",
    "stop",
    "kill",
    "die",
    "destroy",
    "oom",
    "pause",
    "unpause",
    "health_status: healthy",
    "health_status: unhealthy",
    "health_status: starting",
)
#: Headers of the lab's forwarder (the engine itself sends no webhooks).
_HEADERS = {"Content-Type": "application/json", "User-Agent": "labkit-engine-forwarder/0.1"}


def delivery_key(raw: Mapping[str, Any]) -> str:
    """A delivery id for an engine event, which has none: sha256 of container id, action and
    ``timeNano`` (first 32 hex digits). The same event forwarded twice gets the same key."""
    actor = raw.get("Actor") or {}
    parts = [
        str(actor.get("ID", raw.get("id", ""))),
        str(raw.get("Action", raw.get("status", ""))),
        str(raw.get("timeNano", raw.get("time", ""))),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _compose_labels(name: str, image: str) -> dict[str, str]:
    """The labels Compose puts on ``<project>-<service>-<n>``."""
    project, _, rest = name.partition("-")
    service, _, number = rest.rpartition("-")
    if not project or not service or not number.isdigit():
        return {}
    return {
        "com.docker.compose.config-hash": hashlib.sha256(f"config:{name}".encode()).hexdigest(),
        "com.docker.compose.container-number": number,
        "com.docker.compose.depends_on": "",
        "com.docker.compose.image": "sha256:"
        + hashlib.sha256(f"image:{image}".encode()).hexdigest(),
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project": project,
        "com.docker.compose.project.config_files": f"/work/{project}/compose.yaml",
        "com.docker.compose.project.working_dir": f"/work/{project}",
        "com.docker.compose.service": service,
        "com.docker.compose.version": "2.24.5",
    }


def container(
    action: str = "start",
    name: str = "pipeline-web-1",
    image: str = "localhost:5000/hello-app:v1",
    exit_code: int | None = None,
    labels: Mapping[str, str] | None = None,
    *,
    container_id: str | None = None,
    signal: int = 15,
) -> Event:
    """A container event as the engine reports it, forwarded as a webhook.

    ``Actor.Attributes`` holds the container's labels (Compose ones derived from
    ``<project>-<service>-<n>`` names unless ``labels`` is given), ``image``, ``name``,
    ``exitCode`` on ``die`` (0 unless ``exit_code``) and ``signal`` on ``kill``.
    ``Actor.ID`` is derived from ``name`` unless ``container_id`` is given, so every event of
    one container carries the same ID. ``delivery_id`` is :func:`delivery_key`.
    """
    if action not in ACTIONS:
        raise ValueError(f"Container action must be one of {', '.join(ACTIONS)}, not {action!r}.")
    if exit_code is not None and action != "die":
        raise ValueError("exit_code only goes with action='die'.")
    cid = container_id or hashlib.sha256(f"container:{name}".encode()).hexdigest()
    attributes: dict[str, str] = (
        dict(labels) if labels is not None else _compose_labels(name, image)
    )
    if action == "die":
        attributes["exitCode"] = str(exit_code if exit_code is not None else 0)
    attributes["image"] = image
    attributes["name"] = name
    if action == "kill":
        attributes["signal"] = str(signal)
    now = ids().now()
    seconds = int(now.timestamp())
    raw: dict[str, Any] = {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": cid, "Attributes": dict(sorted(attributes.items()))},
        "scope": "local",
        "time": seconds,
        "timeNano": seconds * 1_000_000_000 + ids().number(0, 999_999_999),
    }
    return from_engine(raw)


def from_engine(raw: Mapping[str, Any]) -> Event:
    """Wrap a decoded engine event (``client.api.events(decode=True)``) unchanged.

    ``name`` is its ``Action`` (``status`` on engines before 29 that still send it).
    """
    action = raw.get("Action", raw.get("status"))
    if not isinstance(action, str) or not action:
        raise ValueError("An engine event needs an 'Action' (or legacy 'status') string.")
    return Event(
        source="engine",
        name=action,
        delivery_id=delivery_key(raw),
        body=json_body(raw),
        headers=dict(_HEADERS),
        path=PATH,
    )
