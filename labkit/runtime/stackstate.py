"""A stack's state as one line per service, the same text on Docker and on the local stand-in.

``table(stack)`` reads the running stack (the engine's containers, or the stand-in's processes)
and says, per service, how many replicas run, their health, and where its port is published:
``127.0.0.1 only`` or ``every interface``. No ids, host ports or times, so a notebook that prints
it (``%compose``, ``StackStatus``) can be compared from one run to the next and across runtimes.
"""

from __future__ import annotations

from typing import Any

from labkit.errors import StackError
from labkit.runtime.compose import Stack, bound_addresses
from labkit.runtime.localstack import LocalStack, Service, StandIn

#: What the local stand-in's database line adds (a sanitize rule of the lessons removes it).
STAND_IN_NOTE = "(stand-in: a SQLite file)"


def table(target: Stack | LocalStack) -> str:
    """One line per service: running replicas, their health, and where its port is published.
    ``<project>: nothing running`` when no container (or process) runs."""
    rows = target.ps()
    if not any(r["state"] == "running" for r in rows):  # a stand-in file alone runs nothing
        return f"{target.project}: nothing running"
    # The local stand-in's plan says what each service is here; read the file once for it.
    plan = target.plan() if isinstance(target, LocalStack) else None
    try:
        declared = list(plan) if plan is not None else target.services
    except StackError:
        declared = [r["service"] for r in rows]
    lines = [("SERVICE", "RUNNING", "HEALTH", "PUBLISHED")]
    for service in sorted(set(declared)):
        spec = plan.get(service) if plan is not None else None
        if isinstance(spec, StandIn):
            lines.append((service, "1", "healthy", f"-  {STAND_IN_NOTE}"))
            continue
        mine = [r for r in rows if r["service"] == service and r["state"] == "running"]
        healths = sorted({r["health"] or "no healthcheck" for r in mine})
        published = _published(mine, spec, local=plan is not None)
        lines.append((service, str(len(mine)), ", ".join(healths) or "-", published))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:3], widths, strict=True)), line[3]])
        for line in lines
    )


def _published(rows: list[dict[str, Any]], spec: Service | StandIn | None, *, local: bool) -> str:
    """Where a service's port is published: ``ps()`` rows of Docker read ``IP:PORT->8000/tcp``;
    a local process always listens somewhere, so its plan (``spec``) says whether that counts."""
    addresses = bound_addresses(rows)
    if local:
        if not isinstance(spec, Service) or not spec.published or not addresses:
            return "-"
        port = spec.target
    else:
        if not addresses:
            return "-"
        port = int(rows[0]["ports"][0].rsplit("->", 1)[1].split("/")[0])
    if addresses <= {"127.0.0.1", "::1"}:
        return f"{port} on 127.0.0.1 only"
    return f"{port} on every interface (0.0.0.0)"
