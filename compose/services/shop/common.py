"""What every shop service shares: the replica's hostname, a health route and a quiet access log."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException

# Docker sets each container's hostname to its short id, so responses show which replica answered.
HOSTNAME = socket.gethostname()


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
