"""The webhook receiver: verify raw bytes, log every request, dedupe, then run handlers off the request path."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from labkit.errors import ReceiverError, SignatureError, StoreError
from labkit.webhooks import signing
from labkit.webhooks.serving import ServerThread, bind
from labkit.webhooks.store import ACCEPTED, REJECTED, REJECTED_BODY_KEPT, Delivery, DeliveryLog, Row

#: GitHub's own cap on payload size; larger requests get 413 without being buffered.
DEFAULT_MAX_BODY = 25 * 1024 * 1024
#: A body that takes longer than this to arrive gets 408 (slow-body protection).
BODY_TIMEOUT = 10.0
SOURCES = ("github", "dockerhub", "registry", "alertmanager", "engine", "standard")

Handler = Callable[[Delivery], Any]


class Rejected(Exception):
    """A request the receiver answers with a 4xx (never a 5xx for bad input)."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        event: str | None = None,
        delivery_id: str | None = None,
        verified: bool = False,
    ) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
        self.event, self.delivery_id, self.verified = event, delivery_id, verified


@dataclass(frozen=True)
class Settings:
    """What a receiver checks: secrets per source, body cap, timestamp tolerance."""

    secrets: dict[str, list[str]]
    max_body: int = DEFAULT_MAX_BODY
    tolerance: int = signing.DEFAULT_TOLERANCE
    #: Sources accepted without a secret although others have one: opened on purpose.
    open: frozenset[str] = frozenset()

    @property
    def checks_senders(self) -> bool:
        """True once any source has a secret: then no source is open unless opened on purpose."""
        return bool(self.secrets)

    @classmethod
    def build(
        cls,
        secret: str | None,
        secrets: dict[str, str | list[str]] | None,
        max_body: int,
        tolerance: int,
        open: Iterable[str] = (),
    ) -> Settings:
        # One secret for every source: the signing sources use it as their key, the token
        # sources get a token derived from it (signing.token_for), never the key itself.
        table: dict[str, list[str]] = (
            {
                s: [signing.token_for(secret) if s in signing.TOKEN_SOURCES else secret]
                for s in SOURCES
            }
            if secret
            else {}
        )
        for source, value in (secrets or {}).items():
            if source not in SOURCES:
                raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)}.")
            values = [value] if isinstance(value, str) else list(value)
            if not values or not all(values):
                raise ValueError(
                    f"secrets[{source!r}] is or holds an empty secret: anyone could "
                    "sign with it. Give real secrets, or leave the source out."
                )
            table[source] = values
        opened = frozenset(open)
        unknown = opened - set(SOURCES)
        if unknown:
            raise ValueError(
                f"Unknown source {sorted(unknown)[0]!r} in open=; use one of {', '.join(SOURCES)}."
            )
        return cls(table, max_body, tolerance, opened)


def _json(body: bytes) -> Any:
    try:
        # Decode strictly first: json.loads(bytes) lets UTF-8-encoded surrogates through.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "Body is not UTF-8 JSON.") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Rejected(400, f"Body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise Rejected(400, "Body JSON is nested too deeply.") from None


def _object(body: bytes) -> dict[str, Any]:
    value = _json(body)
    if not isinstance(value, dict):
        raise Rejected(400, f"Body must be a JSON object, not {type(value).__name__}.")
    return value


def _content_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _json_only(headers: dict[str, str], sender: str, verified: bool = False) -> None:
    """415 unless the body is declared JSON: a web page's no-cors POST (text/plain, a form)
    cannot reach a sender's endpoint then."""
    ctype = _content_type(headers)
    if ctype != "application/json" and not (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raise Rejected(
            415,
            f"Content-Type {ctype or 'none'!r} is not what {sender} sends: application/json.",
            verified=verified,
        )


def _bearer(settings: Settings, source: str, headers: dict[str, str]) -> bool:
    tokens = settings.secrets.get(source)
    if not tokens:
        return False
    offered = headers.get("authorization", "")
    if not offered.lower().startswith("bearer "):
        raise Rejected(
            401,
            "Missing 'Authorization: Bearer <token>' header; configure the sender's "
            "headers (registry) or http_config (Alertmanager) with the token.",
        )
    given = offered[7:].strip().encode()
    if not any(hmac.compare_digest(given, t.encode()) for t in tokens):
        raise Rejected(401, "Bearer token does not match.")
    return True


def _short_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:20]


# --- one checker per source: (headers, query, body) -> (delivery id, event, verified) ---------


def check_github(
    s: Settings, h: dict[str, str], q: dict[str, str], body: bytes
) -> tuple[str, str, bool]:
    event, delivery_id = h.get("x-github-event"), h.get("x-github-delivery")
    verified = False
    if "github" in s.secrets:
        try:
            # Verify the raw bytes before anything is parsed.
            for secret in s.secrets["github"]:
                try:
                    signing.verify_github(
                        body, secret, h.get("x-hub-signature-256"), h.get("x-hub-signature")
                    )
                    verified = True
                    break
                except SignatureError:
                    if secret == s.secrets["github"][-1]:
                        raise
        except SignatureError as exc:
            raise Rejected(401, str(exc), event=event, delivery_id=delivery_id) from None
    if not event:
        raise Rejected(
            400, "Missing X-GitHub-Event header.", delivery_id=delivery_id, verified=verified
        )
    if not delivery_id:
        raise Rejected(400, "Missing X-GitHub-Delivery header.", event=event, verified=verified)
    ctype = _content_type(h)
    try:
        if ctype == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode(), strict_parsing=False)
            if "payload" not in form:
                raise Rejected(400, "Form body has no 'payload' field.")
            _object(form["payload"][0].encode())
        elif ctype in ("application/json", ""):
            _object(body)
        else:
            raise Rejected(
                415,
                f"Content-Type {ctype!r} is not one GitHub sends: use "
                "application/json or application/x-www-form-urlencoded.",
            )
    except UnicodeDecodeError:
        raise Rejected(
            400, "Form body is not UTF-8.", event=event, delivery_id=delivery_id, verified=verified
        ) from None
    except Rejected as exc:
        exc.event, exc.delivery_id, exc.verified = event, delivery_id, verified
        raise
    return delivery_id, event, verified


def check_dockerhub(
    s: Settings, h: dict[str, str], q: dict[str, str], body: bytes
) -> tuple[str, str, bool]:
    verified = False
    if "dockerhub" in s.secrets:
        token = q.get("token", "").encode()
        if not any(hmac.compare_digest(token, t.encode()) for t in s.secrets["dockerhub"]):
            raise Rejected(
                401,
                "Missing or wrong ?token= in the webhook URL (Docker Hub cannot "
                "sign, so the URL carries the secret).",
                event="push",
            )
        verified = True
    _json_only(h, "Docker Hub", verified)
    payload = _object(body)
    if "state" in payload:
        event = "callback"
    elif isinstance(payload.get("push_data"), dict) and isinstance(payload.get("repository"), dict):
        event = "push"
    else:
        raise Rejected(
            400,
            "Not a Docker Hub payload: expected 'push_data' and 'repository' "
            "objects (or a callback 'state').",
            verified=verified,
        )
    # Docker Hub sends no delivery id: the body itself identifies a push.
    return "dh-" + _short_hash(body), event, verified


def check_registry(
    s: Settings, h: dict[str, str], q: dict[str, str], body: bytes
) -> tuple[str, str, bool]:
    verified = _bearer(s, "registry", h)
    ctype = _content_type(h)
    if ctype not in (
        "application/vnd.docker.distribution.events.v1+json",
        "application/vnd.docker.distribution.events.v2+json",
        "application/json",
    ):
        raise Rejected(
            415,
            f"Content-Type {ctype!r} is not a registry notification "
            "(application/vnd.docker.distribution.events.v1+json).",
            verified=verified,
        )
    events = _object(body).get("events")
    if not isinstance(events, list) or not events or not all(isinstance(e, dict) for e in events):
        raise Rejected(
            400,
            "Registry envelope must hold a non-empty 'events' list of objects.",
            verified=verified,
        )
    first = events[0]
    action = first.get("action")
    if not isinstance(action, str) or not action:
        raise Rejected(400, "Registry event has no 'action' string.", verified=verified)
    return str(first.get("id") or "reg-" + _short_hash(body)), action, verified


def check_alertmanager(
    s: Settings, h: dict[str, str], q: dict[str, str], body: bytes
) -> tuple[str, str, bool]:
    verified = _bearer(s, "alertmanager", h)
    _json_only(h, "Alertmanager", verified)
    payload = _object(body)
    status = payload.get("status")
    if status not in ("firing", "resolved") or not isinstance(payload.get("alerts"), list):
        raise Rejected(
            400,
            "Not an Alertmanager notification: expected 'status' firing|resolved "
            "and an 'alerts' list.",
            verified=verified,
        )
    if str(payload.get("version")) != "4":
        raise Rejected(
            400,
            f"Alertmanager webhook version {payload.get('version')!r} is not '4'.",
            verified=verified,
        )
    return "am-" + _short_hash(body), str(status), verified


def check_engine(
    s: Settings, h: dict[str, str], q: dict[str, str], body: bytes
) -> tuple[str, str, bool]:
    verified = _bearer(s, "engine", h)
    _json_only(h, "the engine-event forwarder", verified)
    payload = _object(body)
    actor = payload.get("Actor")
    if not isinstance(payload.get("Action"), str) or not isinstance(actor, dict):
        raise Rejected(
            400, "Not a Docker engine event: expected 'Action' and 'Actor'.", verified=verified
        )
    ident = f"{actor.get('ID', '')}:{payload['Action']}:{payload.get('timeNano', '')}"
    return "ev-" + hashlib.sha256(ident.encode()).hexdigest()[:20], payload["Action"], verified


def check_standard(
    s: Settings, h: dict[str, str], q: dict[str, str], body: bytes
) -> tuple[str, str, bool]:
    msg_id = h.get("webhook-id")
    verified = False
    if "standard" in s.secrets:
        try:
            signing.verify_standard(
                s.secrets["standard"],
                msg_id,
                h.get("webhook-timestamp"),
                h.get("webhook-signature"),
                body,
                tolerance=s.tolerance,
            )
            verified = True
        except SignatureError as exc:
            raise Rejected(401, str(exc), delivery_id=msg_id) from None
    if not msg_id:
        raise Rejected(400, "Missing webhook-id header.")
    _json_only(h, "a Standard Webhooks sender", verified)
    payload = _object(body)
    event = payload.get("type")
    if not isinstance(event, str) or not event:
        raise Rejected(
            400,
            "Standard Webhooks body needs a 'type' string.",
            delivery_id=msg_id,
            verified=verified,
        )
    return msg_id, event, verified


CHECKS = {
    "github": check_github,
    "dockerhub": check_dockerhub,
    "registry": check_registry,
    "alertmanager": check_alertmanager,
    "engine": check_engine,
    "standard": check_standard,
}


class Dispatcher:
    """Runs handlers in one worker thread, in arrival order, recording each outcome."""

    def __init__(self, log: DeliveryLog, *, checks_senders: bool = False) -> None:
        self.log = log
        #: When the receiver checks its senders, an unverified delivery (from a source opened on
        #: purpose) runs only the handlers that asked for it.
        self.checks_senders = checks_senders
        #: (source, event, handler, runs for unverified deliveries too)
        self.handlers: list[tuple[str, str | None, Handler, bool]] = []
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def add(
        self, source: str, event: str | None, handler: Handler, *, unverified: bool = False
    ) -> None:
        self.handlers = [
            (s, e, h, u)
            for s, e, h, u in self.handlers
            if not (s == source and e == event and h.__name__ == handler.__name__)
        ]
        self.handlers.append((source, event, handler, unverified))

    def submit(self, delivery: Delivery) -> None:
        if not self.handlers:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="labkit-handlers", daemon=True)
            self._thread.start()
        self._queue.put(delivery)

    def idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if delivery is None:
                    return
                self._handle(delivery)
            finally:
                self._queue.task_done()

    def _handle(self, delivery: Delivery) -> None:
        trusted = delivery.verified or not self.checks_senders
        matching = [
            h
            for s, e, h, unverified in self.handlers
            if s in (delivery.source, "*")
            and e in (None, "*", delivery.event)
            and (trusted or unverified)
        ]
        if not matching:
            return
        errors = []
        for handler in matching:
            try:
                handler(delivery)
            except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the receiver
                errors.append(f"{handler.__name__}: {type(exc).__name__}: {exc}")
        try:
            self.log.set_handled(delivery.seq, "failed" if errors else "ok", "; ".join(errors))
        except StoreError:
            pass


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


def _listen(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        raise ReceiverError(
            f"Cannot listen on {host}:{port}: {exc.strerror}. Another program holds that port: "
            "pick another with port=..., or port=0 for any free one."
        ) from None


def docker_gateway() -> str | None:
    """The host's address on Docker's default bridge (what ``host-gateway`` maps to), if any."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            config = client.networks.get("bridge").attrs["IPAM"]["Config"]
        finally:
            client.close()
        for entry in config:
            if entry.get("Gateway"):
                return str(entry["Gateway"])
            if entry.get("Subnet"):  # the engine left the gateway implicit: the first host
                return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
        return None
    except Exception:  # noqa: BLE001 - no engine, no bridge: containers cannot reach us anyway
        return None


_RUNNING: dict[str, Receiver] = {}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Receiver:
    """A webhook receiver you run inside the notebook kernel.

    >>> rx = Receiver(secret="s3cret").start()   # doctest: +SKIP
    >>> rx.url                                   # doctest: +SKIP
    'http://127.0.0.1:40123'

    ``secret`` authenticates every source: it is the key of GitHub and Standard Webhooks
    signatures, and the Docker Hub URL token and the registry/Alertmanager/engine bearer token
    are derived from it (``rx.token(source)``, :func:`labkit.webhooks.signing.token_for`), so a token
    seen in a log cannot forge a signature. ``secrets`` gives a source its own value, taken as
    it is (a list means several valid secrets, for key rotation). Starting a receiver stops any other
    running receiver of the same ``name`` first, so re-running a cell never leaks a server.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        secrets: dict[str, str | list[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str = ":memory:",
        max_body: int = DEFAULT_MAX_BODY,
        tolerance: int = signing.DEFAULT_TOLERANCE,
        name: str = "default",
        for_containers: bool = False,
        sync: str = "normal",
        open: Iterable[str] = (),
    ) -> None:
        self.for_containers = for_containers
        self.container_host: str | None = None
        self.container_port = 0
        self.settings = Settings.build(secret, secrets, max_body, tolerance, open)
        if not self.settings.checks_senders and (for_containers or not _loopback(host)):
            where = "to containers" if for_containers else f"on {host}"
            raise ReceiverError(
                f"A receiver that listens {where} must check its senders: give "
                "it a secret (secret=... or secrets={...}; LABKIT_WEBHOOK_SECRET "
                "for `labkit listen`). Without one it listens on 127.0.0.1 only."
            )
        self.host, self.requested_port, self.name = host, port, name
        self.log = DeliveryLog(db, sync=sync)
        self.dispatcher = Dispatcher(self.log, checks_senders=self.settings.checks_senders)
        self.app = create_app(self.log, self.settings, self.dispatcher)
        self._serving = ServerThread(self.app, name=f"labkit-receiver-{name}")
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Receiver:
        """Serve in a daemon thread; returns once the server accepts connections."""
        old = _RUNNING.get(self.name)
        if old is not None and old is not self:
            old.stop()
        if self.running:
            return self
        sock = _listen(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        sockets = [sock]
        self.container_host = None
        if self.for_containers:
            gateway = docker_gateway()
            if gateway is not None:
                # The same port on the bridge gateway: containers reach the kernel through the
                # host's own bridge address, never through one other machines can reach.
                try:
                    sockets.append(_listen(gateway, self.port))
                except ReceiverError:
                    sockets.append(_listen(gateway, 0))
                self.container_host = gateway
                self.container_port = sockets[-1].getsockname()[1]
        failure = self._serving.start(sockets, timeout)
        if failure is not None:
            raise ReceiverError(f"The receiver could not start: {failure}.")
        _RUNNING[self.name] = self
        return self

    def stop(self) -> None:
        """Stop serving (idempotent). The delivery log stays readable."""
        self._serving.stop()
        self.dispatcher.stop()
        if _RUNNING.get(self.name) is self:
            del _RUNNING[self.name]

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._serving.running

    def check(self) -> None:
        """Raise :class:`ReceiverError` if the server thread has died."""
        if not self._serving.started:
            raise ReceiverError("The receiver is not running: call rx.start() first.")
        if not self._serving.running:
            raise ReceiverError(
                f"The receiver's server thread died ({self._serving.error!r}). "
                "Run rx.start() again."
            )

    # --- where it is --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        self.check()
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def token(self, source: str) -> str | None:
        """What a token-presenting sender (Docker Hub, registry, Alertmanager, engine) must
        present to this receiver: its ``Authorization: Bearer`` value or ``?token=``."""
        if source not in signing.TOKEN_SOURCES:
            raise ValueError(
                f"{source} signs its deliveries rather than presenting a token; "
                f"the token sources are {', '.join(sorted(signing.TOKEN_SOURCES))}."
            )
        tokens = self.settings.secrets.get(source)
        return tokens[0] if tokens else None

    def hook_url(self, source: str) -> str:
        """The URL a sender of ``source`` posts to (Docker Hub's carries its token)."""
        if source not in SOURCES:
            raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)}.")
        url = f"{self.url}/hooks/{source}"
        if source == "dockerhub" and "dockerhub" in self.settings.secrets:
            url += "?token=" + quote(self.settings.secrets["dockerhub"][0], safe="")
        return url

    def container_url(self, source: str) -> str:
        """The hook URL as a container sees it: ``host.docker.internal``, which a container maps
        to the bridge gateway with ``extra_hosts: ["host.docker.internal:host-gateway"]``."""
        self.check()
        if self.container_host is None:
            raise ReceiverError(
                "This receiver is not reachable from containers: start it with "
                "Receiver(..., for_containers=True) on a machine with Docker."
            )
        return self.hook_url(source).replace(
            f"{self.host}:{self.port}", f"host.docker.internal:{self.container_port}", 1
        )

    # --- handlers and waiting -----------------------------------------------------------------
    def on(
        self, source: str, event: str | None = None, *, unverified: bool = False
    ) -> Callable[[Handler], Handler]:
        """Decorator: run the function for every accepted delivery of ``source`` (and ``event``).

        Handlers run in a worker thread after the 2xx has been sent. Registering a function of
        the same name again (a re-run cell) replaces the old one. On a receiver with secrets, a
        delivery that was not verified (from a source opened with ``open=``) runs only handlers
        registered with ``unverified=True``.
        """
        if source not in SOURCES and source != "*":
            raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)} or '*'.")

        def register(handler: Handler) -> Handler:
            self.dispatcher.add(source, event, handler, unverified=unverified)
            return handler

        return register

    def deliveries(self, limit: int = 50, *, source: str | None = None) -> list[Delivery]:
        """The newest ``limit`` deliveries (all statuses), newest first."""
        return self.log.latest(limit, source=source)

    def wait_for(
        self, count: int = 1, *, timeout: float = 10.0, since: int = 0, source: str | None = None
    ) -> list[Delivery]:
        """Block until ``count`` deliveries with ``seq > since`` (of ``source``, if given) are
        logged and handled; returns them oldest first."""
        deadline = time.monotonic() + timeout
        while True:
            got = [d for d in self.log.latest(max(count, 1) + 1000, source=source) if d.seq > since]
            if len(got) >= count:
                self.dispatcher.idle(max(0.0, deadline - time.monotonic()))
                return list(reversed(got))[:count]
            if time.monotonic() > deadline:
                what = f"{source} deliveries" if source else "deliveries"
                raise TimeoutError(f"Only {len(got)} of {count} {what} arrived in {timeout} s.")
            if self._serving.started:
                self.check()
            time.sleep(0.01)

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued handler has run."""
        return self.dispatcher.idle(timeout)

    def __repr__(self) -> str:
        state = f"listening on {self.host}:{self.port}" if self.running else "stopped"
        return f"<Receiver {self.name!r} {state}>"


def secret_from_env() -> str | None:
    """``LABKIT_WEBHOOK_SECRET``, the CLI's default secret."""
    return os.environ.get("LABKIT_WEBHOOK_SECRET") or None
