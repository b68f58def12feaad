"""What every shop service shares: the replica's hostname, finding other services, a health route
and a quiet access log."""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException

# Docker sets each container's hostname (and $HOSTNAME) to its short id, so responses show which
# replica answered. labkit's local stand-in, which runs each replica as a process on one machine,
# sets $HOSTNAME to <service>-<replica> for the same reason.
HOSTNAME = os.environ.get("HOSTNAME") or socket.gethostname()
PORT = 8000

_turns: dict[str, itertools.count[int]] = collections.defaultdict(itertools.count)


def addresses(name: str) -> list[str]:
    """``host:port`` of every replica of service ``name``.

    In Docker, each network has a DNS server that answers a service's name with the address of
    every running replica. labkit's local stand-in has no such DNS: it writes the same answer for
    every service into a JSON file (one ``127.0.0.1:PORT`` per healthy process) whose path is in
    $SERVICE_ADDRESSES, and rewrites it whenever a service is scaled.
    """
    table = os.environ.get("SERVICE_ADDRESSES")
    if table:
        with open(table) as f:
            return sorted(json.load(f).get(name, []))
    infos = socket.getaddrinfo(name, PORT, socket.AF_INET, socket.SOCK_STREAM)
    return sorted({f"{info[4][0]}:{PORT}" for info in infos})


def pick(name: str) -> str:
    """One replica of service ``name`` (``host:port``), taking them in turn (round robin)."""
    found = addresses(name)
    if not found:
        raise OSError(f"no replica of {name} is running")
    return found[next(_turns[name]) % len(found)]


class _SkipHealthChecks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "/healthz" not in record.getMessage()


logging.getLogger("uvicorn.access").addFilter(_SkipHealthChecks())


def service(name: str, *, check: Callable[[], None] | None = None, lifespan: Any = None) -> FastAPI:
    """A FastAPI app for a service; ``GET /healthz`` (the container healthcheck) runs ``check``."""
    app = FastAPI(title=f"shop: {name}", lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        if check is not None:
            try:
                check()
            except Exception as exc:
                raise HTTPException(503, f"{name} is not ready: {exc}") from exc
        return {"status": "ok", "service": name, "hostname": HOSTNAME}

    return app
