"""The one way labkit talks to the Docker engine: a Docker SDK client for ``DOCKER_HOST``.

Every part that needs the engine asks :func:`client`, with the timeout its calls need (an image
build waits minutes, a health read seconds). It raises the SDK's own error when no engine answers;
the caller says what to do about it in its own words (start Docker, or use the local runtime).
"""

from __future__ import annotations

from typing import Any

#: Seconds an engine call may take unless the caller needs longer (builds) or less (probes).
TIMEOUT = 60.0


def client(timeout: float = TIMEOUT, *, ping: bool = True) -> Any:
    """A client for the engine ``DOCKER_HOST`` names (or the local socket); with ``ping``, one
    that has answered once already."""
    import docker

    made = docker.from_env(timeout=timeout)
    if ping:
        made.ping()
    return made
