"""Verification: one check per source turns a request's raw bytes and headers into a delivery id,
an event name and whether it was verified, or a :class:`Rejected` with the status to answer.

The receiver's settings (secrets, tokens, limits) live here too, since every check reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from labkit.errors import SignatureError
from labkit.webhooks import signing

#: GitHub's own cap on payload size; larger requests get 413 without being buffered.
DEFAULT_MAX_BODY = 25 * 1024 * 1024
SOURCES = ("github", "dockerhub", "registry", "alertmanager", "engine", "standard")


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
