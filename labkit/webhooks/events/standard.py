"""Standard Webhooks messages (``webhook-id``/``webhook-timestamp``/``webhook-signature``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from labkit.webhooks import signing
from labkit.webhooks.events._base import Event, ids, json_body

__all__ = ["message", "new_msg_id"]

PATH = "/hooks/standard"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_msg_id() -> str:
    """``msg_`` + 24 base62 characters from ``ids()`` (the shape of the spec's examples)."""
    top = len(_ALPHABET) - 1
    return "msg_" + "".join(_ALPHABET[ids().number(0, top)] for _ in range(24))


def _default_data(type: str) -> dict[str, Any]:
    if type == "image.pushed":
        return {
            "repository": "octo-org/hello-app",
            "tag": "latest",
            "digest": "sha256:" + ids().hex(64),
        }
    return {}


def message(
    type: str = "image.pushed",
    data: Mapping[str, Any] | None = None,
    secret: str | bytes | list[str] | list[bytes] | None = None,
    msg_id: str | None = None,
    timestamp: int | datetime | None = None,
) -> Event:
    """A Standard Webhooks message: body ``{"type", "timestamp", "data"}``.

    ``webhook-id`` is ``msg_id`` or a fresh ``msg_...`` (also the ``delivery_id``; a retry
    must reuse it), ``webhook-timestamp`` Unix seconds (``timestamp`` or ``ids().now()``, also
    the body's ISO ``timestamp``). With ``secret`` (one or a list, for rotation) the
    ``webhook-signature`` header is added via :func:`labkit.webhooks.signing.standard_sign`.
    """
    if not type:
        raise ValueError("A Standard Webhooks message needs a non-empty type.")
    if isinstance(timestamp, datetime):
        at = timestamp.astimezone(UTC)
    elif isinstance(timestamp, int):
        at = datetime.fromtimestamp(timestamp, UTC)
    else:
        at = ids().now()
    ident = msg_id if msg_id is not None else new_msg_id()
    payload = {
        "type": type,
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "data": dict(data) if data is not None else _default_data(type),
    }
    event = Event(
        source="standard",
        name=type,
        delivery_id=ident,
        body=json_body(payload),
        headers={
            "Content-Type": "application/json",
            "webhook-id": ident,
            "webhook-timestamp": str(int(at.timestamp())),
        },
        path=PATH,
    )
    if secret is None:
        return event
    return _sign(event, secret)


def _sign(event: Event, secret: str | bytes | list[str] | list[bytes]) -> Event:
    """Add ``webhook-signature`` (one ``v1,`` entry per secret)."""
    timestamp = int(event.headers["webhook-timestamp"])
    signature = signing.standard_sign(secret, event.delivery_id, timestamp, event.body)
    return event.with_headers(**{"webhook-signature": signature})
