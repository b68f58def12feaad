"""Lesson 02 (GitHub events): its exercises' checks and solutions."""

from __future__ import annotations

import hashlib
import hmac
import inspect as _inspect

from typing import Any

from ._core import _as_text, _ints, Exercise, GITHUB_BODY, GITHUB_SECRET, GITHUB_SIGNATURE, Verdict


def _github_signature(answer: Any) -> Verdict:
    text = _as_text(answer)
    if text is None:
        return False, "answer with the header value as a string: 'sha256=<64 hex digits>'."
    key, body = GITHUB_SECRET.encode(), GITHUB_BODY
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    if text == GITHUB_SIGNATURE:
        return True, "that is exactly the X-Hub-Signature-256 GitHub would send."
    if text == digest:
        return False, "right digest, but the header value starts with 'sha256='."
    if text.lower() == GITHUB_SIGNATURE:
        return False, "GitHub writes the hex digest in lowercase: use .hexdigest() as it is."
    if text.removeprefix("sha1=") == hmac.new(key, body, hashlib.sha1).hexdigest():
        return False, "that is the legacy SHA-1 signature: use hashlib.sha256."
    if text.removeprefix("sha256=") == hashlib.sha256(body).hexdigest():
        return False, ("that is a plain SHA-256 of the body: anyone can compute it. Use "
                       "hmac.new(secret, body, hashlib.sha256) so the secret is mixed in.")
    if text.removeprefix("sha256=") == hashlib.sha256(key + body).hexdigest():
        return False, "sha256(secret + body) is not an HMAC: use hmac.new(secret, body, sha256)."
    return False, ("not the expected signature. HMAC-SHA256 of the exact body bytes "
                   "b'Hello, World!' with the secret \"It's a Secret to Everybody\", as "
                   "'sha256=' + hexdigest().")


def _verify_function(answer: Any) -> Verdict:
    if not callable(answer):
        return False, "answer with your function itself: answer = verify (no parentheses)."
    good = (GITHUB_BODY, GITHUB_SIGNATURE, GITHUB_SECRET)
    cases = (
        ("a correct signature", good, True),
        ("a tampered body", (b"Hello, World?", GITHUB_SIGNATURE, GITHUB_SECRET), False),
        ("the wrong secret", (GITHUB_BODY, GITHUB_SIGNATURE, "guess"), False),
        ("a missing header (None)", (GITHUB_BODY, None, GITHUB_SECRET), False),
        ("an empty header", (GITHUB_BODY, "", GITHUB_SECRET), False),
        ("a digest without 'sha256='", (GITHUB_BODY, GITHUB_SIGNATURE[7:], GITHUB_SECRET), False),
    )
    for what, args, want in cases:
        try:
            got = answer(*args)
        except Exception as exc:  # noqa: BLE001 - the learner's code may raise anything
            return False, (f"verify raised {type(exc).__name__} for {what}; a receiver answers "
                           "bad input with False (then 401), never a crash.")
        if got is not want:
            return False, (f"verify returned {got!r} for {what}; expected {want}. "
                           + ("Compute HMAC-SHA256 over the body with the secret." if want else
                              "Only an exact 'sha256=<hex>' match over these bytes may pass."))
    try:
        source = _inspect.getsource(answer)
    except (OSError, TypeError):
        source = "compare_digest"
    if "compare_digest" not in source:
        return False, ("it gives the right answers, but compare with hmac.compare_digest, not ==: "
                       "== stops at the first differing character, and that timing leaks.")
    return True, "correct on good, tampered, wrong-secret and missing signatures, in constant time."


def _redelivery(answer: Any) -> Verdict:
    if not isinstance(answer, dict) or "statuses" not in answer or "runs" not in answer:
        return False, "answer with {'statuses': [...three status codes...], 'runs': <count>}."
    codes = _ints(answer["statuses"])
    if codes is None or len(codes) != 3:
        return False, ("'statuses' holds the three status codes: the first send and two "
                       "redeliveries.")
    if codes[0] != 202:
        return False, (f"the first send got {codes[0]}, not 202: send it signed "
                       "(secret=SECRET) to the receiver.")
    if codes[1:] != [200, 200]:
        return False, (f"the redeliveries got {codes[1:]}; they carry the same delivery id, so "
                       "the receiver should answer 200 'duplicate'. Use "
                       "labkit.redeliver(event.delivery_id).")
    runs = answer["runs"]
    if runs == 3:
        return False, ("the handler ran 3 times: count runs in a handler, and let the receiver "
                       "dedupe.")
    if runs == 0:
        return False, "the handler never ran: register it before sending, and wait with rx.idle()."
    if runs != 1:
        return False, f"runs is {runs!r}; one delivery id means the handler runs once."
    return True, "one accepted delivery, two duplicates, and the handler ran exactly once."



EXERCISES = (
    Exercise(
        "02-signature",
        "Compute X-Hub-Signature-256 by hand for GitHub's test body and secret.",
        _github_signature,
        "secret = \"It's a Secret to Everybody\"\n"
        "body = b\"Hello, World!\"\n"
        "answer = \"sha256=\" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()",
    ),
    Exercise(
        "02-verify",
        "Write verify(body, signature, secret) -> bool that never raises.",
        _verify_function,
        "def verify(body, signature, secret):\n"
        "    if not signature or not signature.startswith(\"sha256=\"):\n"
        "        return False\n"
        "    expected = \"sha256=\" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()\n"
        "    return hmac.compare_digest(expected, signature)\n\n"
        "answer = verify",
    ),
    Exercise(
        "02-redelivery",
        "Send one push, redeliver it twice; collect the statuses and count handler runs.",
        _redelivery,
        "runs = []\n\n"
        "@rx.on(\"github\", \"push\")\n"
        "def count_runs(delivery):\n"
        "    runs.append(delivery.id)\n\n"
        "push = events.github.push()\n"
        "statuses = [labkit.send(push, rx, secret=SECRET).status]\n"
        "statuses += [labkit.redeliver(push.delivery_id).status for _ in range(2)]\n"
        "rx.idle()\n"
        "answer = {\"statuses\": statuses, \"runs\": len(runs)}",
    ),
)
