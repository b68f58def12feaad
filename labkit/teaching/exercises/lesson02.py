"""Lesson 02 (GitHub events): its exercises' checks and solutions."""

from __future__ import annotations

import hashlib
import hmac
import inspect as _inspect
from typing import Any

from labkit.teaching.exercises._core import (
    GITHUB_BODY,
    GITHUB_SECRET,
    GITHUB_SIGNATURE,
    Exercise,
    Hint,
    Verdict,
    _as_text,
    _ints,
)
from labkit.webhooks.events import github

#: The secret lesson 02's receivers share with the sender (``SECRET`` in the lesson).
LESSON_SECRET = "lab-secret-2"


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
        return False, (
            "that is a plain SHA-256 of the body: anyone can compute it. Use "
            "hmac.new(secret, body, hashlib.sha256) so the secret is mixed in."
        )
    if text.removeprefix("sha256=") == hashlib.sha256(key + body).hexdigest():
        return False, "sha256(secret + body) is not an HMAC: use hmac.new(secret, body, sha256)."
    return False, (
        "not the expected signature. HMAC-SHA256 of the exact body bytes "
        "b'Hello, World!' with the secret \"It's a Secret to Everybody\", as "
        "'sha256=' + hexdigest()."
    )


def _verify_function(answer: Any) -> Verdict:
    if not callable(answer):
        return False, "answer with your function itself: answer = verify (no parentheses)."
    good = (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE)
    cases = (
        ("a correct signature", good, True),
        ("a tampered body", (GITHUB_SECRET, b"Hello, World?", GITHUB_SIGNATURE), False),
        ("the wrong secret", ("guess", GITHUB_BODY, GITHUB_SIGNATURE), False),
        ("a missing header (None)", (GITHUB_SECRET, GITHUB_BODY, None), False),
        ("an empty header", (GITHUB_SECRET, GITHUB_BODY, ""), False),
        ("a digest without 'sha256='", (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE[7:]), False),
    )
    for what, args, want in cases:
        try:
            got = answer(*args)
        except Exception as exc:  # noqa: BLE001 - the learner's code may raise anything
            return False, (
                f"verify raised {type(exc).__name__} for {what}; a receiver answers "
                "bad input with False (then 401), never a crash."
            )
        if got is not want:
            return False, (
                f"verify returned {got!r} for {what}; expected {want}. "
                + (
                    "Compute HMAC-SHA256 over the body with the secret."
                    if want
                    else "Only an exact 'sha256=<hex>' match over these bytes may pass."
                )
            )
    try:
        source = _inspect.getsource(answer)
    except (OSError, TypeError):
        source = "compare_digest"
    if "compare_digest" not in source:
        return False, (
            "it gives the right answers, but compare with hmac.compare_digest, not ==: "
            "== stops at the first differing character, and that timing leaks."
        )
    return True, "correct on good, tampered, wrong-secret and missing signatures, in constant time."


def _redelivery(answer: Any) -> Verdict:
    if not isinstance(answer, dict) or "statuses" not in answer or "runs" not in answer:
        return False, "answer with {'statuses': [...three status codes...], 'runs': <count>}."
    codes = _ints(answer["statuses"])
    if codes is None or len(codes) != 3:
        return False, (
            "'statuses' holds the three status codes: the first send and two redeliveries."
        )
    if codes[0] != 202:
        return False, (
            f"the first send got {codes[0]}, not 202: send it signed "
            "(secret=SECRET) to the receiver."
        )
    if codes[1:] != [200, 200]:
        return False, (
            f"the redeliveries got {codes[1:]}; they carry the same delivery id, so "
            "the receiver should answer 200 'duplicate'. Use "
            "labkit.redeliver(event.delivery_id)."
        )
    runs = answer["runs"]
    if runs == 3:
        return False, (
            "the handler ran 3 times: count runs in a handler, and let the receiver dedupe."
        )
    if runs == 0:
        return False, "the handler never ran: register it before sending, and wait with rx.idle()."
    if runs != 1:
        return False, f"runs is {runs!r}; one delivery id means the handler runs once."
    return True, "one accepted delivery, two duplicates, and the handler ran exactly once."


def _attacks() -> list[tuple[str, Any, set[int], Hint]]:
    """(what, event, the answers that pass, the hint when it does not) for each delivery."""
    import json

    genuine = github.push().signed(LESSON_SECRET)
    tampered = github.push().signed(LESSON_SECRET)
    tampered = tampered.with_body(tampered.body.replace(b"refs/heads/main", b"refs/heads/prod"))
    reserialized = github.push().signed(LESSON_SECRET)
    reserialized = reserialized.with_body(json.dumps(reserialized.payload).encode())
    unsigned = github.push()
    refuse = {401}
    return [
        (
            "a genuine signed push",
            genuine,
            {202},
            Hint(
                "your receiver refused a delivery signed with SECRET.",
                "Verify over the raw bytes (body = await request.body()), with the header "
                "request.headers.get('x-hub-signature-256') and the secret SECRET; answer 202 when "
                "verify says True.",
            ),
        ),
        (
            "a push whose body was changed after signing",
            tampered,
            refuse,
            Hint(
                "your receiver accepted a body that was changed after it was signed.",
                "Call verify(SECRET, body, header) on every request and return "
                "Response(status_code=401) when it is False.",
            ),
        ),
        (
            "a push signed with another secret",
            github.push().signed("a-guess"),
            refuse,
            Hint(
                "your receiver accepted a push signed with a secret it does not know.",
                "Compare against SECRET only, and answer 401 when verify is False.",
            ),
        ),
        (
            "the same data re-serialised (spaces after : and ,)",
            reserialized,
            refuse,
            Hint(
                "your receiver accepted a body that is the same JSON but not the bytes that were "
                "signed.",
                "Verify the bytes exactly as they arrived, before any json.loads / json.dumps.",
            ),
        ),
        (
            "a push with no signature header",
            unsigned,
            refuse,
            Hint(
                "your receiver did not answer 401 to a push with no X-Hub-Signature-256.",
                "verify must return False for a missing header (None), and the route then 401.",
            ),
        ),
        (
            "the genuine push replayed (same X-GitHub-Delivery)",
            genuine,
            {200, 409},
            Hint(
                "your receiver accepted a replayed delivery as new: its signature is valid, so only "
                "the delivery id gives it away.",
                "Keep a set of X-GitHub-Delivery ids already accepted; for one seen before answer "
                "200 (duplicate) and do nothing.",
            ),
        ),
    ]


def _guarded_receiver(answer: Any) -> Verdict:
    """Send the learner's own served receiver a genuine push and five attacks; read its answers."""
    import httpx

    url = getattr(answer, "url", None)
    if getattr(answer, "exchanges", None) is None or not isinstance(url, str):
        return False, Hint(
            "answer with your server: answer = server.",
            'Serve your app with server = labkit.serve(app, name="guarded"), then answer = server.',
        )
    answers: list[str] = []
    with httpx.Client(timeout=10) as client:
        for what, event, passing, hint in _attacks():
            try:
                status = client.post(
                    url + "/hooks/github", content=event.body, headers=dict(event.headers)
                ).status_code
            except httpx.HTTPError as exc:
                return (
                    False,
                    f"your server did not answer {what}: {exc}",
                    "your receiver's answers: " + "; ".join(answers),
                )
            answers.append(f"{what}: {status}")
            if status == 404:
                return (
                    False,
                    Hint(
                        "your app has no route for POST /hooks/github.",
                        'Use @app.post("/hooks/github") (or "/hooks/{source}").',
                    ),
                    "your receiver's answers: " + "; ".join(answers),
                )
            if status >= 500:
                return (
                    False,
                    Hint(
                        f"your receiver crashed ({status}) on {what}.",
                        "verify must never raise: return False for a missing or "
                        "malformed header, and check verify is defined.",
                    ),
                    "your receiver's answers: " + "; ".join(answers),
                )
            if status not in passing:
                return False, hint, "your receiver's answers: " + "; ".join(answers)
    return (
        True,
        (
            "202 for the genuine push, 401 for every forgery, and the replay caught by its "
            "delivery id: your check guards your receiver."
        ),
        "your receiver's answers: " + "; ".join(answers),
    )


EXERCISES = (
    Exercise(
        "02-signature",
        "Compute X-Hub-Signature-256 by hand for GitHub's test body and secret.",
        _github_signature,
        'secret = "It\'s a Secret to Everybody"\n'
        'body = b"Hello, World!"\n'
        'answer = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()',
    ),
    Exercise(
        "02-verify",
        "Write verify(secret, body, header) -> bool that never raises.",
        _verify_function,
        "def verify(secret, body, header):\n"
        '    if not header or not header.startswith("sha256="):\n'
        "        return False\n"
        '    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()\n'
        "    return hmac.compare_digest(expected, header)\n\n"
        "answer = verify",
    ),
    Exercise(
        "02-guarded-receiver",
        "Plug verify into a receiver of your own: 401 on a bad signature, a replay not accepted.",
        _guarded_receiver,
        "from fastapi import FastAPI, Request, Response\n\n"
        "app = FastAPI()\n"
        "seen = set()  # delivery ids already accepted\n\n"
        '@app.post("/hooks/github")\n'
        "async def github_hook(request: Request) -> Response:\n"
        "    body = await request.body()  # the raw bytes: verify before parsing\n"
        '    if not verify(SECRET, body, request.headers.get("x-hub-signature-256")):\n'
        '        return Response("signature does not match", status_code=401)\n'
        '    delivery = request.headers.get("x-github-delivery", "")\n'
        "    if delivery in seen:\n"
        '        return Response("duplicate", status_code=200)\n'
        "    seen.add(delivery)\n"
        "    return Response(status_code=202)\n\n"
        'server = labkit.serve(app, name="guarded")\n'
        "answer = server",
    ),
    Exercise(
        "02-redelivery",
        "Send one push, redeliver it twice; collect the statuses and count handler runs.",
        _redelivery,
        "runs = []\n\n"
        '@rx.on("github", "push")\n'
        "def count_runs(delivery):\n"
        "    runs.append(delivery.id)\n\n"
        "push = events.github.push()\n"
        "statuses = [labkit.send(push, rx, secret=SECRET).status]\n"
        "statuses += [labkit.redeliver(push.delivery_id).status for _ in range(2)]\n"
        "rx.idle()\n"
        'answer = {"statuses": statuses, "runs": len(runs)}',
    ),
)
