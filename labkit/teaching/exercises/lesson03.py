"""Lesson 03 (Docker Hub, registry and alerts): its exercises' checks and solutions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from labkit.teaching.exercises._core import (
    ROTATION_NEW_SECRET,
    STANDARD_BODY,
    STANDARD_ID,
    STANDARD_SECRET,
    STANDARD_SIGNATURE,
    STANDARD_TIMESTAMP,
    Exercise,
    Hint,
    Verdict,
    _as_text,
)


def _standard(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_") :]) if isinstance(secret, str) else secret
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _standard_signature(answer: Any) -> Verdict:
    text = _as_text(answer)
    if text is None:
        return False, "answer with the signature entry as a string: 'v1,<base64>'."
    if text == STANDARD_SIGNATURE:
        return True, "that matches the specification's test vector."
    key = base64.b64decode(STANDARD_SECRET[len("whsec_") :])
    signed = f"{STANDARD_ID}.{STANDARD_TIMESTAMP}.".encode() + STANDARD_BODY
    if text == STANDARD_SIGNATURE[3:]:
        return False, "right value, but each entry starts with its version: 'v1,'."
    if text.removeprefix("v1,") == hmac.new(key, signed, hashlib.sha256).hexdigest():
        return False, (
            "Standard Webhooks encode the digest in base64, not hex: base64.b64encode(digest)."
        )
    if text == _standard(STANDARD_SECRET.encode(), STANDARD_ID, STANDARD_TIMESTAMP, STANDARD_BODY):
        return False, (
            "the key is the base64 after 'whsec_', decoded to bytes: "
            "base64.b64decode(secret.removeprefix('whsec_'))."
        )
    if (
        text.removeprefix("v1,")
        == base64.b64encode(hmac.new(key, STANDARD_BODY, hashlib.sha256).digest()).decode()
    ):
        return False, (
            "you signed only the body; sign '{id}.{timestamp}.' followed by the body, "
            "so the id and time are protected too."
        )
    return False, (
        "not the expected signature: HMAC-SHA256 with the decoded key over "
        "f'{msg_id}.{timestamp}.'.encode() + body, base64-encoded, prefixed 'v1,'."
    )


def _rotation(answer: Any) -> Verdict:
    text = _as_text(answer)
    if text is None:
        return False, "answer with the webhook-signature header value (a string)."
    if "," in text and " " not in text and text.count(",") > 1:
        return False, "entries are separated by a single space, not a comma: 'v1,... v1,...'."
    entries = text.split()
    args = (STANDARD_ID, STANDARD_TIMESTAMP, STANDARD_BODY)
    old, new = _standard(STANDARD_SECRET, *args), _standard(ROTATION_NEW_SECRET, *args)
    if len(entries) == 1:
        which = "old" if entries[0] == old else "new" if entries[0] == new else None
        if which:
            return False, (
                f"that is only the {which} secret's entry; during a rotation the "
                "sender signs with both, so receivers on either secret accept it."
            )
        return False, "one entry that matches neither secret; sign with both, one entry each."
    if old not in entries and new not in entries:
        return False, (
            "neither entry matches; sign f'{id}.{timestamp}.' + body with each "
            "secret's decoded key, as in the previous exercise."
        )
    if old not in entries:
        return False, "the new secret's entry is right; add the old secret's entry as well."
    if new not in entries:
        return False, "the old secret's entry is right; add the new secret's entry as well."
    return True, "two entries: receivers that know either secret accept the message."


_TOKEN_HINTS = {
    "b": "a token proves who knows the URL, not what the body says: anyone on the path can "
    "change the body and keep the token. Only a signature over the body detects that.",
    "c": "a captured request carries the token, so it can be sent again as it is; a token "
    "has no timestamp and covers no delivery id.",
    "d": "a token in the URL is written to proxy and access logs like any other URL part, "
    "which is exactly how such tokens leak.",
}


def _token_limits(answer: Any) -> Verdict:
    if isinstance(answer, str):
        chosen = {c for c in answer.lower() if c.isalpha()}
    elif isinstance(answer, (set, frozenset, list, tuple)):
        chosen = {str(c).strip().lower() for c in answer}
    else:
        return False, "answer with the set of letters, e.g. {'a', 'c'}."
    unknown = chosen - {"a", "b", "c", "d"}
    if unknown:
        return False, f"only a, b, c and d are choices, not {', '.join(sorted(unknown))}."
    for letter in ("b", "c", "d"):
        if letter in chosen:
            return False, f"not {letter}: {_TOKEN_HINTS[letter]}"
    if "a" not in chosen:
        return False, (
            "a token does stop something: a stranger who does not know the URL "
            "cannot post fake events."
        )
    return True, (
        "a token only keeps out senders who do not know it; it says nothing about "
        "the body, does not stop replays, and leaks wherever URLs are logged."
    )


#: The GitHub delivery id the command-line task redelivers.
CLI_DELIVERY_ID = "6b1e0a52-7f0a-4d8e-9c1a-0c5e2f7d9a31"


def _cli_triggers(answer: Any) -> Verdict:
    """Ask the learner's `labkit listen` what it received (its own read API, real traffic)."""
    import httpx

    url = _as_text(answer)
    if not url or not url.startswith("http://127.0.0.1:"):
        return False, Hint(
            "answer with the listening receiver's address: answer = listen_url.",
            "listen_url is set in the cell that starts `labkit listen`; run it, "
            "then your !labkit lines, then answer = listen_url.",
        )
    try:
        rows = httpx.get(url.rstrip("/") + "/deliveries", params={"limit": 200}, timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        return False, Hint(
            f"nothing answers at {url} ({type(exc).__name__}).",
            "Run the cell that starts `labkit listen` in the background again, "
            "and wait for its 'labkit receiver on' line.",
        )
    looked = (
        f"the log of the receiver you started (GET /deliveries): {len(rows)} deliveries, "
        + ", ".join(f"{r['source']}.{r['event']} {r['status']}" for r in reversed(rows))
    )
    hub = [r for r in rows if r["source"] == "dockerhub" and r["status"] == "accepted"]
    pushes = [r for r in rows if r["source"] == "github" and r["id"] == CLI_DELIVERY_ID]
    if not rows:
        return (
            False,
            Hint(
                "your receiver has received nothing yet.",
                "!labkit trigger dockerhub.push --to {listen_url} --tag v5",
            ),
            looked,
        )
    if not hub:
        rejected = [r for r in rows if r["source"] == "dockerhub"]
        return (
            False,
            Hint(
                "no Docker Hub push was accepted"
                + (" (it was rejected: the token did not match)" if rejected else "")
                + ".",
                "!labkit trigger dockerhub.push --to {listen_url} --tag v5 (the secret "
                "comes from LABKIT_WEBHOOK_SECRET, set above).",
            ),
            looked,
        )
    if not any(r["status"] == "accepted" and r["verified"] for r in pushes):
        return (
            False,
            Hint(
                f"no signed GitHub push with delivery id {CLI_DELIVERY_ID} arrived.",
                f"!labkit trigger github.push --to {{listen_url}} --delivery-id {CLI_DELIVERY_ID}",
            ),
            looked,
        )
    if not any(r["status"] == "duplicate" for r in pushes):
        return (
            False,
            Hint(
                "the GitHub push arrived once; a redelivery has not come yet.",
                f"!labkit redeliver {CLI_DELIVERY_ID} (the same id again, as "
                "GitHub's Redeliver button sends it).",
            ),
            looked,
        )
    return (
        True,
        (
            "your receiver logged the Docker Hub push, the signed GitHub push, and its "
            "redelivery as a duplicate."
        ),
        looked,
    )


EXERCISES = (
    Exercise(
        "03-standard-signature",
        "Compute the webhook-signature entry for the specification's test message by hand.",
        _standard_signature,
        'key = base64.b64decode(TEST_SECRET.removeprefix("whsec_"))\n'
        'signed = f"{TEST_ID}.{TEST_TIMESTAMP}.".encode() + TEST_BODY\n'
        "digest = hmac.new(key, signed, hashlib.sha256).digest()\n"
        'answer = "v1," + base64.b64encode(digest).decode()',
    ),
    Exercise(
        "03-rotation",
        "Build the webhook-signature header a sender sends while rotating from old to new secret.",
        _rotation,
        "answer = labkit.signing.standard_sign([NEW_SECRET, OLD_SECRET], TEST_ID, TEST_TIMESTAMP, "
        "TEST_BODY)",
    ),
    Exercise(
        "03-token-limits",
        "Which of a, b, c, d does a secret URL token protect against?",
        _token_limits,
        'answer = {"a"}',
    ),
    Exercise(
        "03-cli-triggers",
        "With labkit listen running, trigger a Docker Hub push and a GitHub push from a terminal, "
        "list what was sent, and redeliver the GitHub push.",
        _cli_triggers,
        "!labkit trigger dockerhub.push --to {listen_url} --tag v5 --quiet\n"
        f"!labkit trigger github.push --to {{listen_url}} --delivery-id {CLI_DELIVERY_ID} --quiet\n"
        "!labkit deliveries --limit 1\n"
        f"!labkit redeliver {CLI_DELIVERY_ID}\n"
        "answer = listen_url",
    ),
)
