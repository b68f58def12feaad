"""Webhook signatures, always over the raw body bytes and compared in constant time (pure, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from labkit.errors import SignatureError

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

#: The sources that prove who they are with a token they present (a bearer header, or
#: ``?token=`` in the URL) rather than with a signature.
TOKEN_SOURCES = frozenset({"dockerhub", "registry", "alertmanager", "engine"})


def token_for(secret: str | bytes) -> str:
    """The token a token-presenting sender is given when one secret serves every source.

    A bearer token travels in clear (a header, a URL, a proxy's log), so it must never be the
    key that signs GitHub deliveries: whoever saw it could forge them. It is derived from the
    secret instead (HMAC-SHA256 with a fixed label, base64url): the receiver and the kit's
    senders compute the same token, and the token does not give the secret away.
    """
    digest = hmac.new(_key(secret), b"labkit bearer token v1", hashlib.sha256).digest()
    return "lkt_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def standard_key(secret: str | bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret.

    ``whsec_<base64>`` is decoded as the specification says; any other text is used as raw
    key bytes, so one lesson secret such as ``s3cret`` works for every scheme.
    """
    if isinstance(secret, bytes):
        return secret
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
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
        missing = [
            n
            for n, v in (
                ("webhook-id", msg_id),
                ("webhook-timestamp", timestamp),
                ("webhook-signature", signature),
            )
            if not v
        ]
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


# --- why a signature fails: the explainer ----------------------------------------------------

OK, NO_SIGNATURE, MALFORMED = "ok", "no-signature", "malformed"
WRONG_ALGORITHM, RE_SERIALIZED, MISMATCH = "wrong-algorithm", "re-serialized", "mismatch"
STALE_TIMESTAMP = "stale-timestamp"
#: Every cause :func:`explain` can give, from "all is well" to "nothing matches".
CAUSES = (OK, NO_SIGNATURE, MALFORMED, WRONG_ALGORITHM, RE_SERIALIZED, MISMATCH, STALE_TIMESTAMP)

_HEX = frozenset("0123456789abcdef")
Secrets = str | bytes | list[str] | list[bytes]


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` found: ``cause`` (one of :data:`CAUSES`), the scheme, and why.

    ``str(explanation)`` reads as a short paragraph; ``diff`` shows, for ``re-serialized``, the
    first byte where the bytes you checked differ from the bytes that were signed.
    """

    cause: str
    scheme: str
    summary: str
    advice: str = ""
    diff: str = ""
    signed_body: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.cause == OK

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        scheme = f" ({self.scheme})" if self.scheme else ""
        text = f"{self.cause}{scheme}: {self.summary}"
        if self.advice:
            text += f"\n  fix: {self.advice}"
        if self.diff:
            text += "\n" + self.diff
        return text

    def __repr__(self) -> str:
        return f"<Explanation {self.cause}: {self.summary}>"


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _keys(secret: Secrets) -> list[str | bytes]:
    return list(secret) if isinstance(secret, list) else [secret]


def _reserializations(body: bytes) -> list[tuple[str, bytes]]:
    """The same JSON written the other ways a framework or proxy writes it, labelled."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return []
    out: list[tuple[str, bytes]] = []
    for separators, spacing in (((",", ":"), "compact"), ((", ", ": "), "spaced")):
        for ensure_ascii in (False, True):
            for sort_keys in (False, True):
                text = json.dumps(
                    value, separators=separators, ensure_ascii=ensure_ascii, sort_keys=sort_keys
                )
                label = f"{spacing} separators, ensure_ascii={ensure_ascii}" + (
                    ", keys sorted" if sort_keys else ""
                )
                out.append((label, text.encode()))
    for indent in (2, 4):
        text = json.dumps(value, indent=indent, ensure_ascii=False)
        out.append((f"indent={indent}", text.encode()))
        out.append((f"indent={indent} and a final newline", (text + "\n").encode()))
    seen = {body}
    unique = []
    for label, candidate in out:
        if candidate not in seen:
            seen.add(candidate)
            unique.append((label, candidate))
    return unique


def _shown(data: bytes) -> str:
    """Bytes as text, one visible unit per byte: printable ASCII as is, the rest as \\xNN."""
    return "".join(
        chr(b) if 0x20 <= b < 0x7F and b != 0x5C else ("\\\\" if b == 0x5C else f"\\x{b:02x}")
        for b in data
    )


def byte_diff(checked: bytes, signed: bytes, context: int = 16) -> str:
    """Where two byte strings first differ, a few bytes around it, and a caret under it."""
    at = next(
        (i for i, (a, b) in enumerate(zip(checked, signed, strict=False)) if a != b),
        min(len(checked), len(signed)),
    )
    start = max(0, at - context)
    lead = "..." if start else ""
    lines = [
        f"  first difference at byte {at} (checked {len(checked)} bytes, signed {len(signed)}):"
    ]
    for label, data in (("checked", checked), ("signed ", signed)):
        tail = "..." if len(data) > at + context else ""
        lines.append(f"    {label}: {lead}{_shown(data[start : at + context])}{tail}")
    lines.append(
        "    " + " " * (len("checked: ") + len(lead) + len(_shown(checked[start:at]))) + "^"
    )
    return "\n".join(lines)


def _github_explain(secret: Secrets, body: bytes, h: dict[str, str]) -> Explanation:
    keys = _keys(secret)
    sha256, sha1 = h.get("x-hub-signature-256"), h.get("x-hub-signature")
    if not sha256 and sha1:
        value = sha1.strip()
        matches = any(
            hmac.compare_digest(github_signature_sha1(body, k).encode(), value.encode())
            for k in keys
        )
        return Explanation(
            WRONG_ALGORITHM,
            "github",
            "only the legacy X-Hub-Signature (HMAC-SHA1) came, no X-Hub-Signature-256"
            + (" (it does match the body)." if matches else " (and it does not match either)."),
            "verify X-Hub-Signature-256 (HMAC-SHA256); GitHub sends it whenever the webhook has "
            "a secret, so a delivery without it did not come from such a webhook.",
        )
    if not sha256:
        return Explanation(
            NO_SIGNATURE,
            "github",
            "no X-Hub-Signature-256 header: the sender has no secret set, or it is not GitHub.",
            "set the same secret on the sender (Settings > Webhooks > Secret).",
        )
    value = sha256.strip()
    algorithm, sep, digest = value.partition("=")
    if sep and algorithm.lower() == "sha1":
        return Explanation(
            WRONG_ALGORITHM,
            "github",
            "X-Hub-Signature-256 holds a 'sha1=' value: that is the legacy header's algorithm.",
            "sign with HMAC-SHA256 and write 'sha256=' + hexdigest().",
        )
    if not sep or algorithm != "sha256" or len(digest) != 64 or not set(digest) <= _HEX:
        return Explanation(
            MALFORMED,
            "github",
            f"X-Hub-Signature-256 is {value[:24]!r}{'...' if len(value) > 24 else ''}"
            f" ({len(value)} characters): not 'sha256=' followed by 64 lowercase "
            "hex digits.",
            "write 'sha256=' + hmac.new(secret, body, hashlib.sha256).hexdigest().",
        )
    if any(
        hmac.compare_digest(github_signature_256(body, k).encode(), value.encode()) for k in keys
    ):
        return Explanation(OK, "github", "X-Hub-Signature-256 matches these exact body bytes.")
    for label, candidate in _reserializations(body):
        if any(
            hmac.compare_digest(github_signature_256(candidate, k).encode(), value.encode())
            for k in keys
        ):
            return _reserialized("github", label, body, candidate)
    return Explanation(
        MISMATCH,
        "github",
        "X-Hub-Signature-256 matches neither these bytes nor any re-serialisation "
        "of their JSON: another secret signed it, or bytes changed on the way.",
        "check that both ends hold the same secret, and that nothing between them "
        "rewrites the body.",
    )


def _reserialized(scheme: str, label: str, body: bytes, signed: bytes) -> Explanation:
    return Explanation(
        RE_SERIALIZED,
        scheme,
        f"the signature matches the same JSON written another way ({label}), not these bytes: "
        "the body was parsed and written out again between signing and checking.",
        "verify the raw body exactly as it arrived (await request.body()), before any JSON "
        "parsing; never json.dumps(parsed) to check a signature.",
        byte_diff(body, signed),
        signed,
    )


def _standard_explain(
    secret: Secrets, body: bytes, h: dict[str, str], tolerance: int, now: float | None
) -> Explanation:
    signature = h.get("webhook-signature")
    msg_id, timestamp = h.get("webhook-id"), h.get("webhook-timestamp")
    if not signature:
        return Explanation(
            NO_SIGNATURE,
            "standard",
            "no webhook-signature header.",
            "sign each attempt: 'v1,' + base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'.",
        )
    if not msg_id or not timestamp:
        missing = " and ".join(
            n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", timestamp)) if not v
        )
        return Explanation(
            MALFORMED,
            "standard",
            f"{missing} missing: the signature covers them, so it cannot be checked without them.",
            "send webhook-id, webhook-timestamp and webhook-signature together.",
        )
    try:
        ts = int(timestamp)
    except ValueError:
        return Explanation(
            MALFORMED,
            "standard",
            f"webhook-timestamp {timestamp[:24]!r} is not whole Unix seconds.",
            "send int(time.time()) as the timestamp.",
        )
    entries = signature.split()
    v1 = []
    others = []
    for entry in entries:
        version, sep, value = entry.partition(",")
        if not sep or not value:
            return Explanation(
                MALFORMED,
                "standard",
                f"webhook-signature entry {entry[:40]!r} is not 'v1,<base64>'.",
                "write each entry as 'v1,' + base64 of the 32-byte digest; "
                "separate entries with one space.",
            )
        if version == "v1":
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                raw = b""
            if len(raw) != hashlib.sha256().digest_size:
                return Explanation(
                    MALFORMED,
                    "standard",
                    f"the v1 entry {entry[:40]!r} is not base64 of a 32-byte "
                    "HMAC-SHA256 digest (hex instead of base64?).",
                    "base64.b64encode(hmac.new(key, signed, sha256).digest()).",
                )
            v1.append(entry)
        else:
            others.append(version)
    if not v1:
        return Explanation(
            WRONG_ALGORITHM,
            "standard",
            f"no 'v1' (HMAC-SHA256) entry, only {', '.join(sorted(set(others)))}:"
            " this receiver holds a symmetric secret (whsec_...).",
            "sign with the shared secret, as a 'v1,' entry.",
        )
    try:
        keys = [standard_key(k) for k in _keys(secret)]
    except SignatureError as exc:
        return Explanation(MALFORMED, "standard", str(exc), "give the secret as it was issued.")

    def matches(content: bytes) -> bool:
        expected = {standard_signature(k, msg_id, ts, content).encode() for k in keys}
        return any(hmac.compare_digest(want, e.encode()) for want in expected for e in v1)

    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        age = (
            f"{int(current - ts)} s old" if ts < current else f"{int(ts - current)} s in the future"
        )
        still = (
            "the signature itself matches, so this is a replay of a genuine message or a "
            "sender with a wrong clock"
            if matches(body)
            else "the signature does not match either"
        )
        return Explanation(
            STALE_TIMESTAMP,
            "standard",
            f"webhook-timestamp is {age}, outside the {tolerance} s tolerance; {still}.",
            "the sender signs each attempt with the current time; if it did, "
            "check both clocks (NTP).",
        )
    if matches(body):
        return Explanation(
            OK, "standard", "a v1 entry matches id, timestamp and these exact body bytes."
        )
    for label, candidate in _reserializations(body):
        if matches(candidate):
            return _reserialized("standard", label, body, candidate)
    return Explanation(
        MISMATCH,
        "standard",
        "no v1 entry matches id, timestamp and body: another secret signed it, or "
        "the id, the timestamp or the body changed on the way.",
        "check the secret (the base64 after 'whsec_' is the key) and that nothing "
        "rewrites the body.",
    )


def explain(
    secret: Secrets,
    body: bytes,
    headers: Mapping[str, str] | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Explanation:
    """Say why a delivery's signature passes or fails, in words (GitHub or Standard Webhooks).

    The scheme is read from the headers (``webhook-*`` headers mean Standard Webhooks, anything
    else is checked as GitHub). Nothing is raised: the answer is an :class:`Explanation` whose
    ``cause`` is one of :data:`CAUSES`. Secrets are never shown in it.
    """
    h = _lower(headers)
    if isinstance(body, str):
        body = body.encode()
    if any(name in h for name in ("webhook-signature", "webhook-id", "webhook-timestamp")):
        return _standard_explain(secret, body, h, tolerance, now)
    return _github_explain(secret, body, h)
