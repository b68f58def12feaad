"""Which runtime runs the lab's services: the real Docker engine, or local processes as a stand-in."""

from __future__ import annotations

import os
from dataclasses import dataclass

DOCKER, LOCAL = "docker", "local"


@dataclass(frozen=True)
class Choice:
    """The runtime to use and the reason, in words a learner can act on."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def docker_engine_version(timeout: float = 3.0) -> str | None:
    """The engine's version if a Docker engine answers, else ``None``."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return str(client.version().get("Version", "unknown"))
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return None


def choose() -> Choice:
    """Docker when an engine answers, local processes otherwise; ``LABKIT_RUNTIME`` overrides."""
    forced = os.environ.get("LABKIT_RUNTIME", "").strip().lower()
    if forced == LOCAL:
        return Choice(LOCAL, "LABKIT_RUNTIME=local is set")
    version = docker_engine_version()
    if forced == DOCKER:
        if version is None:
            return Choice(DOCKER, "LABKIT_RUNTIME=docker is set, but no engine answers: start "
                                  "Docker, or unset LABKIT_RUNTIME to use the local runtime")
        return Choice(DOCKER, f"LABKIT_RUNTIME=docker is set; engine {version} answers")
    if forced:
        return Choice(LOCAL if version is None else DOCKER,
                      f"LABKIT_RUNTIME={forced!r} is not 'docker' or 'local', so it was ignored")
    if version is None:
        return Choice(LOCAL, "no Docker engine answers, so services run as local processes")
    return Choice(DOCKER, f"Docker engine {version} answers")
