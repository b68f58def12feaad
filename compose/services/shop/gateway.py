"""The gateway: the shop's one published door. It forwards /api/<service>/... to that service.

Each service is found by its Compose service name. When a service runs several replicas, Docker's
DNS answers that name with every replica's address; the gateway takes them in turn (round robin),
so scaling products to three shows requests spread over three hostnames. (Without Docker, the
addresses come from the table labkit's local stand-in writes: see common.addresses.)
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from fastapi import HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from common import HOSTNAME, addresses, pick, service

UPSTREAMS = ("users", "products", "orders")

app = service("gateway")


def forward(name: str, path: str, method: str, body: bytes, content_type: str) -> Response:
    try:
        address = pick(name)
    except OSError as exc:
        raise HTTPException(502, f"{name}: no replica found ({exc})") from exc
    request = urllib.request.Request(f"http://{address}{path}", data=body or None,
                                     method=method, headers={"Content-Type": content_type,
                                                             "Host": name})
    try:
        with urllib.request.urlopen(request, timeout=5) as upstream:
            status, payload = upstream.status, upstream.read()
            kind = upstream.headers.get("Content-Type", "application/json")
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
        kind = exc.headers.get("Content-Type", "application/json")
    except OSError as exc:
        raise HTTPException(502, f"{name} at {address} is not answering: {exc}") from exc
    return Response(payload, status_code=status, media_type=kind,
                    headers={"X-Upstream": f"{name}@{address}"})


@app.get("/")
def index() -> dict[str, Any]:
    return {"service": "gateway", "hostname": HOSTNAME,
            "routes": [f"/api/{name}" for name in UPSTREAMS]}


@app.get("/replicas/{name}")
def show_replicas(name: str) -> dict[str, Any]:
    if name not in UPSTREAMS:
        raise HTTPException(404, f"no service {name}; try one of {', '.join(UPSTREAMS)}")
    return {"service": name, "addresses": addresses(name)}


@app.api_route("/api/{name}", methods=["GET", "POST"])
@app.api_route("/api/{name}/{rest:path}", methods=["GET", "POST"])
async def api(name: str, request: Request, rest: str = "") -> Response:
    if name not in UPSTREAMS:
        raise HTTPException(404, f"no service {name}; try one of {', '.join(UPSTREAMS)}")
    path = f"/{name}" + (f"/{rest}" if rest else "")
    if request.url.query:
        path += f"?{request.url.query}"
    body = await request.body()
    return await run_in_threadpool(forward, name, path, request.method, body,
                                   request.headers.get("content-type", "application/json"))
