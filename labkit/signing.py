"""Webhook signatures, always over the raw body bytes and compared in constant time (pure, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from .errors import SignatureError

#: Standard Webhooks: how far a timestamp may be from now, in seconds.
DEFAULT_TOLERANCE = 5 * 60


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


# --- GitHub -------------------------------------------------------------------------------

def github_signature_256(body: bytes, secret: str | bytes) -> str:
    """``sha256=<hex>``: the value of ``X-Hub-Signature-256``."""
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def github_signature_sha1(body: bytes, secret: str | bytes) -> str:
    """``sha1=<hex>``: the value of the legacy ``X-Hub-Signature``."""
    return "sha1=" + hmac.new(_key(secret), body, hashlib.sha1).hexdigest()


def github_headers(body: bytes, secret: str | bytes) -> dict[str, str]:
    """Both signature headers GitHub sends when a webhook has a secret."""
    return {
        "X-Hub-Signature": github_signature_sha1(body, secret),
        "X-Hub-Signature-256": github_signature_256(body, secret),
    }


def verify_github(
    body: bytes,
    secret: str | bytes,
    signature_256: str | None,
    signature_sha1: str | None = None,
) -> str:
    """Check a GitHub delivery; return the scheme that matched (``sha256`` or ``sha1``).

    ``sha256`` is preferred; the legacy ``sha1`` header is used only when ``sha256`` is absent.
    Raises :class:`SignatureError` saying what is wrong.
    """
    if signature_256:
        expected = github_signature_256(body, secret)
        if not signature_256.startswith("sha256="):
            raise SignatureError("X-Hub-Signature-256 must look like 'sha256=<64 hex digits>'.")
        if hmac.compare_digest(expected.encode(), signature_256.strip().encode()):
            return "sha256"
        raise SignatureError(
            "X-Hub-Signature-256 does not match the body: wrong secret, or the body was changed."
        )
    if signature_sha1:
        expected = github_signature_sha1(body, secret)
        if not signature_sha1.startswith("sha1="):
            raise SignatureError("X-Hub-Signature must look like 'sha1=<40 hex digits>'.")
        if hmac.compare_digest(expected.encode(), signature_sha1.strip().encode()):
            return "sha1"
        raise SignatureError(
            "X-Hub-Signature does not match the body: wrong secret, or the body was changed."
        )
    raise SignatureError(
        "No X-Hub-Signature-256 header: the sender has no secret set, or it is not GitHub."
    )


# --- Standard Webhooks ---------------------------------------------------------------------

def standard_key(secret: str | bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret.

    ``whsec_<base64>`` is decoded as the specification says; any other text is used as raw
    key bytes, so one lesson secret such as ``s3cret`` works for every scheme.
    """
    if isinstance(secret, bytes):
        return secret
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except ValueError as exc:
            raise SignatureError(f"The secret after 'whsec_' is not valid base64: {exc}.") from None
    return secret.encode()


def new_standard_secret(random_bytes: bytes) -> str:
    """``whsec_`` + base64 of 24 to 64 random bytes (pass ``secrets.token_bytes(32)``)."""
    if not 24 <= len(random_bytes) <= 64:
        raise ValueError("A Standard Webhooks secret holds 24 to 64 random bytes.")
    return "whsec_" + base64.b64encode(random_bytes).decode()


def standard_signature(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` entry over ``{id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_sign(
    secrets: str | bytes | list[str] | list[bytes], msg_id: str, timestamp: int, body: bytes
) -> str:
    """The ``webhook-signature`` header: one entry per secret, space-separated (key rotation)."""
    keys = secrets if isinstance(secrets, list) else [secrets]
    return " ".join(standard_signature(k, msg_id, timestamp, body) for k in keys)


def standard_headers(
    secrets: str | bytes | list[str] | list[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_sign(secrets, msg_id, timestamp, body),
    }


def verify_standard(
    secrets: str | bytes | list[str] | list[bytes],
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a Standard Webhooks delivery against one or more secrets (rotation).

    Raises :class:`SignatureError` for a missing header, a timestamp outside ``tolerance``
    seconds, a malformed signature list, or no matching ``v1`` entry.
    """
    if not msg_id or not timestamp or not signature:
        missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", timestamp),
                                  ("webhook-signature", signature)) if not v]
        raise SignatureError(f"Missing Standard Webhooks header(s): {', '.join(missing)}.")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp must be whole Unix seconds.") from None
    current = time.time() if now is None else now
    if ts < current - tolerance:
        raise SignatureError(
            f"webhook-timestamp is {int(current - ts)} s old (tolerance {tolerance} s): a replay, "
            "or the sender's clock is wrong."
        )
    if ts > current + tolerance:
        raise SignatureError(
            f"webhook-timestamp is {int(ts - current)} s in the future (tolerance {tolerance} s): "
            "check the sender's clock."
        )
    keys = secrets if isinstance(secrets, list) else [secrets]
    expected = {standard_signature(k, msg_id, ts, body).encode() for k in keys}
    offered = []
    for entry in signature.split(" "):
        version, sep, value = entry.partition(",")
        if not sep or not value:
            raise SignatureError(
                f"Malformed webhook-signature entry {entry[:40]!r}: expected 'v1,<base64>'."
            )
        if version == "v1":
            offered.append(entry.encode())
    matched = False
    for candidate in offered:
        for want in expected:
            # Compare every pair so the time taken does not depend on which one matched.
            matched |= hmac.compare_digest(want, candidate)
    if not matched:
        raise SignatureError(
            "No webhook-signature entry matches: wrong secret, or the body, id or timestamp changed."
        )
