"""The receiver's HTTP side: hook POSTs verified and logged (with group commit) on a raw ASGI path,
the rest (deliveries, health, the OpenAPI description) on FastAPI.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from labkit.errors import StoreError
from labkit.webhooks.dispatch import Dispatcher
from labkit.webhooks.store import ACCEPTED, REJECTED, REJECTED_BODY_KEPT, Delivery, DeliveryLog, Row
from labkit.webhooks.verify import CHECKS, SOURCES, Rejected, Settings

#: A body that takes longer than this to arrive gets 408 (slow-body protection).
BODY_TIMEOUT = 10.0

# --- HTTP ---------------------------------------------------------------------------------------

#: Route path -> source; the Docker Hub callback lands on the same checks as a push.
HOOK_ROUTES = {f"/hooks/{source}": source for source in SOURCES}
HOOK_ROUTES["/hooks/dockerhub/callback"] = "dockerhub"
#: Headers that decide authentication or identity: sent twice, they are ambiguous.
SINGLE_HEADERS = frozenset(
    {
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature",
        "x-hub-signature-256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "authorization",
        "content-type",
        "content-length",
    }
)

_AUTH = {
    "github": "X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body> (X-Hub-Signature "
    "sha1 is accepted when sha256 is absent)",
    "dockerhub": "?token=<secret> in the URL",
    "registry": "Authorization: Bearer <secret>",
    "alertmanager": "Authorization: Bearer <secret>",
    "engine": "Authorization: Bearer <secret>",
    "standard": "webhook-id, webhook-timestamp, webhook-signature (Standard Webhooks)",
}
_HEADERS = {
    "github": ["X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256"],
    "dockerhub": [],
    "registry": ["Authorization"],
    "alertmanager": ["Authorization"],
    "engine": ["Authorization"],
    "standard": ["webhook-id", "webhook-timestamp", "webhook-signature"],
}
_CONTENT_TYPES = {"registry": "application/vnd.docker.distribution.events.v1+json"}


class GroupCommit:
    """Commit the rows of every request that is ready in one transaction (group commit).

    A request's row joins the pending batch and the request waits; the batch is written at the
    next turn of the event loop, so requests that arrived together share one commit. Each
    request still answers only after its own row is committed.
    """

    def __init__(self, log: DeliveryLog) -> None:
        self.log = log
        self._pending: list[tuple[Row, asyncio.Future[Delivery]]] = []

    async def record(self, row: Row) -> Delivery:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivery] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((row, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            written = self.log.record_many([row for row, _ in batch])
        except StoreError as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreError(str(exc)))
            return
        for (_, future), delivery in zip(batch, written, strict=True):
            if not future.done():
                future.set_result(delivery)


class Hooks:
    """The ``POST /hooks/*`` endpoints as a plain ASGI app: the hot path, kept free of framework work.

    Order of checks: size (413), then the source's checks (authentication on the raw bytes
    before any parsing, then headers and shape), then the log; the 2xx is sent only after the
    delivery is committed.
    """

    def __init__(self, log: DeliveryLog, settings: Settings, dispatcher: Dispatcher) -> None:
        self.log, self.settings, self.dispatcher = log, settings, dispatcher
        self.commits = GroupCommit(log)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        source = HOOK_ROUTES[scope["path"]]
        headers: dict[str, str] = {}
        duplicated = ""
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name in headers and name in SINGLE_HEADERS:
                duplicated = name
            headers[name] = raw_value.decode("latin-1")
        raw_query = scope.get("query_string", b"")
        query = (
            {k: v[-1] for k, v in parse_qs(raw_query.decode("latin-1")).items()}
            if raw_query
            else {}
        )
        body = b""
        try:
            if duplicated:
                raise Rejected(400, f"Header {duplicated!r} was sent more than once.")
            body = await self._read_body(headers, receive)
            settings = self.settings
            if (
                settings.checks_senders
                and source not in settings.secrets
                and source not in settings.open
            ):
                raise Rejected(
                    401,
                    f"This receiver checks its senders and has no secret for "
                    f"{source}: give it one (secrets={{'{source}': ...}}) or "
                    f"open it on purpose (open=['{source}']).",
                )
            delivery_id, event, verified = CHECKS[source](self.settings, headers, query, body)
        except Rejected as exc:
            try:
                kept = body[:REJECTED_BODY_KEPT] if exc.status != 413 else b""
                await self.commits.record(
                    Row(
                        exc.delivery_id,
                        source,
                        exc.event,
                        REJECTED,
                        exc.reason,
                        exc.verified,
                        headers,
                        kept,
                        len(body),
                        hashlib.sha256(body).hexdigest() if len(kept) < len(body) else "",
                    )
                )
            except StoreError:
                pass  # the rejection is answered even when it cannot be logged
            await _respond(send, exc.status, {"status": REJECTED, "detail": exc.reason})
            return
        try:
            delivery = await self.commits.record(
                Row(delivery_id, source, event, ACCEPTED, "", verified, headers, body)
            )
        except StoreError as exc:
            await _respond(
                send, 503, {"status": "unavailable", "detail": str(exc)}, [(b"retry-after", b"5")]
            )
            return
        answer = {"status": delivery.status, "id": delivery_id, "seq": delivery.seq}
        if delivery.status == ACCEPTED:
            self.dispatcher.submit(delivery)
            await _respond(send, 202, answer)
        else:
            await _respond(send, 200, answer)

    async def _read_body(self, headers: dict[str, str], receive: Any) -> bytes:
        cap = self.settings.max_body
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise Rejected(400, "Content-Length is not a number.")
            if int(length) > cap:
                # Read the rest before answering (bounded), so that a client that sends its whole
                # body before it reads, as urllib does, gets the 413 and not a reset.
                if int(length) <= cap + DRAIN_LIMIT:
                    await _drain(receive)
                raise Rejected(413, f"Body of {length} bytes is over the {cap}-byte cap.")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Rejected(400, "The client went away before the body was complete.")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        if message.get("more_body", False):
                            await _drain(receive)
                        raise Rejected(413, f"Body is over the {cap}-byte cap.")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise Rejected(408, f"Body did not arrive within {BODY_TIMEOUT:.0f} s.") from None
        return b"".join(chunks)


#: How much of an oversized body the receiver reads and throws away before its 413, and for
#: how long: enough for any client to see the answer, bounded so nobody can keep it busy.
DRAIN_LIMIT = 64 * 1024 * 1024
DRAIN_TIMEOUT = 10.0


async def _drain(receive: Any) -> None:
    """Read and discard the rest of a request body, up to :data:`DRAIN_LIMIT` bytes and
    :data:`DRAIN_TIMEOUT` seconds."""
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            while drained <= DRAIN_LIMIT:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


async def _respond(
    send: Any, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: Names a request for the log may carry in its Host header. Any IP address is fine too: a page
#: that rebinds its own domain name to 127.0.0.1 still sends that domain name as the Host.
TRUSTED_HOST_NAMES = frozenset({"localhost", "host.docker.internal"})


def _trusted_host(scope: dict[str, Any]) -> bool:
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
    if not host:
        return True  # HTTP/1.0 without Host: no browser sends that
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name in TRUSTED_HOST_NAMES:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class ReceiverApp:
    """The whole receiver: hook POSTs go straight to :class:`Hooks`, the rest to the FastAPI app."""

    def __init__(self, api: FastAPI, hooks: Hooks) -> None:
        self.api, self.hooks = api, hooks

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in HOOK_ROUTES:
            await self.hooks(scope, receive, send)
        elif scope["type"] == "http" and not _trusted_host(scope):
            await _respond(
                send,
                403,
                {
                    "detail": "This receiver's log is read through 127.0.0.1, "
                    "localhost or host.docker.internal only."
                },
            )
        else:
            await self.api(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """The API description, hook routes included (what schemathesis tests against)."""
        return self.api.openapi()


def _hook_operation(path: str, source: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
        for h in _HEADERS[source]
    ]
    if source == "dockerhub":
        params.append(
            {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}
        )
    reply = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "post": {
            "summary": f"Receive a {source} delivery"
            + (" callback" if path.endswith("callback") else ""),
            "description": f"Authentication: {_AUTH[source]}.",
            "operationId": "hook_" + path.removeprefix("/hooks/").replace("/", "_"),
            "parameters": params,
            "requestBody": {
                "required": True,
                "content": {
                    _CONTENT_TYPES.get(source, "application/json"): {
                        "schema": {"type": "object", "additionalProperties": True}
                    }
                },
            },
            "responses": {
                "200": {"description": "Duplicate: seen before, handlers not run again", **reply},
                "202": {"description": "Accepted and committed to the log", **reply},
                "400": {"description": "Malformed request", **reply},
                "401": {"description": "Authentication failed", **reply},
                "408": {"description": "Body too slow", **reply},
                "413": {"description": "Body over the cap", **reply},
                "415": {"description": "Unsupported content type", **reply},
                "503": {"description": "The delivery log cannot be written", **reply},
            },
        }
    }


def create_app(log: DeliveryLog, settings: Settings, dispatcher: Dispatcher) -> ReceiverApp:
    """The receiver's HTTP API (also served by ``labkit listen``)."""
    api = FastAPI(
        title="labkit webhook receiver",
        version="1",
        description="Receives GitHub, Docker Hub, registry, Alertmanager, Docker engine "
        "and Standard Webhooks deliveries.",
    )

    @api.get("/deliveries")
    def deliveries(
        limit: int = Query(50, ge=1, le=1000), source: str | None = Query(None)
    ) -> list[dict[str, Any]]:
        """Recorded deliveries, newest first."""
        return [d.summary() for d in log.latest(limit, source=source)]

    @api.get("/deliveries/{delivery_id}", responses={404: {"description": "Unknown id"}})
    def delivery(delivery_id: str) -> Response:
        """One delivery with its headers and body."""
        found = log.get(delivery_id)
        if found is None:
            return JSONResponse(
                {"detail": f"No delivery with id {delivery_id!r}."}, status_code=404
            )
        return JSONResponse(found.detail())

    @api.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness and the number of recorded deliveries."""
        return {"status": "ok", "deliveries": log.count()}

    plain_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = plain_openapi()
            for path, source in HOOK_ROUTES.items():
                schema["paths"][path] = _hook_operation(path, source)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return ReceiverApp(api, Hooks(log, settings, dispatcher))
