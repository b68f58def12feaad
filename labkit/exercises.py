"""Self-checking exercises: ``check(id, answer)`` passes or hints; ``solution(id)`` shows one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect as _inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ExerciseError

__all__ = ["EXERCISES", "Exercise", "Result", "Solution", "check", "ids", "solution"]

Verdict = tuple[bool, str]

# --- known-answer material the tasks use ---------------------------------------------------------
#: GitHub's documented test vector for ``X-Hub-Signature-256``.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#: The Standard Webhooks specification's test vector.
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TIMESTAMP = 1614265330
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#: The secret that replaces :data:`STANDARD_SECRET` in the key-rotation exercise.
ROTATION_NEW_SECRET = "whsec_2a9tMnCVsEvvG1Al+K0jg6XFIqhFgeOz0ncbtyIhe8w="


@dataclass(frozen=True)
class Result:
    """What a check made of an answer; shows as ``PASS: ...`` or ``NOT YET: <hint>``."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'NOT YET'}: {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        colour = "#1a7f37" if self.passed else "#9a6700"
        word = "PASS" if self.passed else "NOT YET"
        return (f'<div style="border-left:4px solid {colour};padding:2px 8px">'
                f'<b style="color:{colour}">{word}</b>: {html.escape(self.message)}</div>')


@dataclass(frozen=True)
class Solution:
    """One working answer to an exercise, shown as code."""

    exercise: str
    code: str

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"# A solution to {self.exercise}\n{self.code}"


@dataclass(frozen=True)
class Exercise:
    """A task, the function that checks an answer, and one working answer."""

    id: str
    task: str
    checker: Callable[[Any], Verdict]
    solution: str


# --- small helpers -------------------------------------------------------------------------------

def _empty(answer: Any) -> bool:
    if answer is None or answer is Ellipsis:
        return True
    return isinstance(answer, (str, bytes, list, tuple, dict, set, frozenset)) and not answer


def _as_text(answer: Any) -> str | None:
    if isinstance(answer, bytes):
        try:
            return answer.decode()
        except UnicodeDecodeError:
            return None
    return answer.strip() if isinstance(answer, str) else None


def _ints(answer: Any) -> list[int] | None:
    """A list of status codes, also from Outcome objects or digit strings."""
    if not isinstance(answer, (list, tuple)):
        return None
    out = []
    for item in answer:
        item = getattr(item, "status", item)
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if not isinstance(item, int) or isinstance(item, bool):
            return None
        out.append(item)
    return out


# --- 00 ------------------------------------------------------------------------------------------

def _lesson_map(answer: Any) -> Verdict:
    text = str(answer).strip().lower()
    number = text.split("-")[0].lstrip("0") or "0"
    if number == "2":
        return True, "lesson 02 signs and verifies GitHub deliveries."
    if number == "1":
        return False, ("lesson 01 sends unsigned deliveries to get you started; look in the lesson "
                       "map for the lesson that mentions signatures.")
    if number == "3":
        return False, ("lesson 03 uses signatures with timestamps, but the first lesson on "
                       "signing is an earlier one: look at the lesson map again.")
    return False, "give the lesson number as it appears in the lesson map, for example 1 or '01'."


# --- 01 ------------------------------------------------------------------------------------------

def _polling_cost(answer: Any) -> Verdict:
    if isinstance(answer, dict):
        polling, webhooks = answer.get("polling"), answer.get("webhooks")
    elif isinstance(answer, (list, tuple)) and len(answer) == 2:
        polling, webhooks = answer
    else:
        return False, "answer with a dict: {'polling': <requests>, 'webhooks': <requests>}."
    if not isinstance(polling, int) or not isinstance(webhooks, int):
        return False, "both counts are whole numbers of requests (int): use // to divide."
    if polling == 16:
        return False, "the poller asks every 30 seconds, not every 30 minutes: 8 * 3600 s / 30 s."
    if polling == 28_800:
        return False, "the poller asks every 30 seconds, not every second: 8 * 3600 s / 30 s."
    if polling == 120:
        return False, "that is one hour of polling; the working day has 8."
    if polling != 960:
        return False, "polling: one request every 30 seconds for 8 hours (8 * 60 * 60 seconds)."
    if webhooks != 12:
        return False, ("with webhooks the sender makes one request per change, and there were "
                       "12 pushes.")
    return True, "960 polls to learn about 12 pushes; webhooks need 12 requests, each one news."


def _status_codes(answer: Any) -> Verdict:
    codes = _ints(answer)
    if codes is None or len(codes) != 3:
        return False, ("answer with a list of three status codes, e.g. "
                       "[labkit.send(e, rx).status for e in (...)].")
    hints = (
        (202, "the first send is a new delivery: the receiver stores it and answers 202 Accepted."),
        (200, "the second send carries the same X-GitHub-Delivery id: send the very same event "
              "object again, and the receiver answers 200 with status 'duplicate'."),
        (400, "the third body is cut off, so it is not valid JSON "
              "(push.with_body(push.body[:100])): the receiver answers 400 Bad Request."),
    )
    for got, (want, hint) in zip(codes, hints):
        if got != want:
            return False, f"got {got} where {want} was expected: {hint}"
    return True, "202 for new, 200 for a duplicate (handlers not run again), 400 for broken JSON."


def _handler_branches(answer: Any) -> Verdict:
    if not isinstance(answer, (list, tuple)):
        return False, "answer with the list your handler filled, e.g. answer = branches."
    items = [str(x) for x in answer]
    if any(x.startswith("refs/") for x in items):
        return False, ("the payload's 'ref' is the full ref, like 'refs/heads/main': strip the "
                       "'refs/heads/' prefix (str.removeprefix).")
    if len(items) > 2:
        return False, (f"{len(items)} branches for 2 pushes: reset the list in the same cell "
                       "that registers the handler, so a re-run starts from empty.")
    if sorted(items) != ["feature/login", "main"]:
        return False, ("expected the branches 'main' and 'feature/login'. Did both pushes arrive, "
                       "and did you wait (rx.idle()) before reading the list?")
    return True, "the handler saw both pushes and pulled the branch out of each payload."


# --- 02 ------------------------------------------------------------------------------------------

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


# --- 03 ------------------------------------------------------------------------------------------

def _standard(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_"):]) if isinstance(secret, str) else secret
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _standard_signature(answer: Any) -> Verdict:
    text = _as_text(answer)
    if text is None:
        return False, "answer with the signature entry as a string: 'v1,<base64>'."
    if text == STANDARD_SIGNATURE:
        return True, "that matches the specification's test vector."
    key = base64.b64decode(STANDARD_SECRET[len("whsec_"):])
    signed = f"{STANDARD_ID}.{STANDARD_TIMESTAMP}.".encode() + STANDARD_BODY
    if text == STANDARD_SIGNATURE[3:]:
        return False, "right value, but each entry starts with its version: 'v1,'."
    if text.removeprefix("v1,") == hmac.new(key, signed, hashlib.sha256).hexdigest():
        return False, ("Standard Webhooks encode the digest in base64, not hex: "
                       "base64.b64encode(digest).")
    if text == _standard(STANDARD_SECRET.encode(), STANDARD_ID, STANDARD_TIMESTAMP, STANDARD_BODY):
        return False, ("the key is the base64 after 'whsec_', decoded to bytes: "
                       "base64.b64decode(secret.removeprefix('whsec_')).")
    if text.removeprefix("v1,") == base64.b64encode(
            hmac.new(key, STANDARD_BODY, hashlib.sha256).digest()).decode():
        return False, ("you signed only the body; sign '{id}.{timestamp}.' followed by the body, "
                       "so the id and time are protected too.")
    return False, ("not the expected signature: HMAC-SHA256 with the decoded key over "
                   "f'{msg_id}.{timestamp}.'.encode() + body, base64-encoded, prefixed 'v1,'.")


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
            return False, (f"that is only the {which} secret's entry; during a rotation the "
                           "sender signs with both, so receivers on either secret accept it.")
        return False, "one entry that matches neither secret; sign with both, one entry each."
    if old not in entries and new not in entries:
        return False, ("neither entry matches; sign f'{id}.{timestamp}.' + body with each "
                       "secret's decoded key, as in the previous exercise.")
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
        return False, ("a token does stop something: a stranger who does not know the URL "
                       "cannot post fake events.")
    return True, ("a token only keeps out senders who do not know it; it says nothing about "
                  "the body, does not stop replays, and leaks wherever URLs are logged.")


# --- the catalogue -------------------------------------------------------------------------------

# --- 04 ------------------------------------------------------------------------------------------

def _depends_on(answer: Any) -> Verdict:
    if isinstance(answer, (list, tuple)) and list(answer) == ["db"]:
        return False, ("The short form `depends_on: [db]` only orders container starts; use the "
                       "long form {'db': {'condition': ...}}.")
    if not isinstance(answer, dict) or set(answer) != {"db"}:
        return False, "The key is the service to wait for ('db'); its value is a dict."
    condition = answer["db"].get("condition") if isinstance(answer["db"], dict) else None
    if condition == "service_healthy":
        return True, "orders waits until db's healthcheck passes."
    if condition == "service_started":
        return False, "service_started only waits for the container to start, not to be ready."
    return False, "The value is {'condition': <which state of db to wait for>}."


def _scale_users(answer: Any) -> Verdict:
    if not isinstance(answer, (set, frozenset)):
        return False, "Collect the hostnames in a set: {... for _ in range(4)}."
    from .localstack import stack

    try:  # the stack on the lesson's runtime: Docker's containers, or the local processes
        replicas = set(stack("services").hostnames("users"))
    except Exception as exc:  # noqa: BLE001 - no engine, no stack: say so as a hint
        return False, f"The services stack does not answer ({exc}); run the lesson's start cell."
    if len(replicas) != 2:
        return False, f"{len(replicas)} users replica(s) run: stack.scale('users', 2) first."
    if answer != replicas:
        return False, (f"{len(answer)} of the 2 replicas answered: send a few requests through "
                       "the gateway (url + '/api/users') after scaling.")
    return True, "both replicas answered: the gateway spreads requests over them."


def _loopback_port(answer: Any) -> Verdict:
    text = _as_text(answer)
    if text is None:
        return False, "Write the ports entry as a string, e.g. 'HOST_IP:HOST_PORT:CONTAINER_PORT'."
    if text in ("8000", "8000:8000", "0.0.0.0:8000:8000", "0.0.0.0::8000"):
        return False, "That publishes on every interface: put 127.0.0.1 first."
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "127.0.0.1" or parts[2] != "8000":
        return False, "The form is HOST_IP:HOST_PORT:CONTAINER_PORT with HOST_IP 127.0.0.1."
    if parts[1]:
        return False, "Leave HOST_PORT empty (127.0.0.1::8000) so Docker picks a free one."
    return True, "published on this machine only, on a port Docker picks."


# --- 06 ------------------------------------------------------------------------------------------

def _shipped_change(answer: Any) -> Verdict:
    stages = getattr(answer, "stages", None)
    if stages is None or not hasattr(answer, "status"):
        return False, ("set answer to what pipeline.wait(commit, timeout=60) returns: the run of "
                       "the commit you pushed.")
    if answer.id <= 2:
        return False, (f"run {answer.id} is one of the lesson's own runs: change the greeting, "
                       "commit, push, then wait for the run of your commit.")
    if answer.status != "passed":
        stuck = [f"{s.name} {s.status}" for s in stages if s.status != "passed"]
        return False, (f"run {answer.id} did not pass ({', '.join(stuck)}): read "
                       "answer.reason, fix the app, commit and push again.")
    return True, (f"run {answer.id} passed: your change was built, shipped, deployed and stayed "
                  "healthy.")


def _deploy_trigger(answer: Any) -> Verdict:
    text = (_as_text(answer) or "").lower().removeprefix("/hooks/")
    if text == "registry":
        return True, ("the registry's push notification for the new tag starts the deploy: the "
                      "build is only deployed once it is really in the registry.")
    if text == "github":
        return False, ("the push starts the build and the ship; which sender tells the pipeline "
                       "that the build has arrived where the deploy pulls it from?")
    if text in ("alertmanager", "engine"):
        return False, ("those webhooks come from the monitor, after a deploy; look at what arrives "
                       "between the ship and the deploy.")
    return False, "answer with one source name: 'github', 'registry', 'alertmanager' or 'engine'."


# --- 07 ------------------------------------------------------------------------------------------

_STAGES = ("build", "ship", "deploy", "monitor")


def _broken_build_stage(answer: Any) -> Verdict:
    text = (_as_text(answer) or "").lower()
    if text == "build":
        return True, ("the build compiles every module, so a syntax error stops the run there: "
                      "nothing is shipped, and the old version keeps serving.")
    if text in ("ship", "deploy", "monitor"):
        return False, (f"the run never reached {text}: which stage turns the commit's files into "
                       "something that can run, and checks that they compile?")
    if text in ("push", "github"):
        return False, ("the push webhook arrived and was verified; the run started. Which of its "
                       "stages failed?")
    return False, f"answer with one stage name: {', '.join(repr(s) for s in _STAGES)}."


def _duplicate_builds(answer: Any) -> Verdict:
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return False, "answer with a whole number: how many builds did the two deliveries cause?"
    if answer == 1:
        return True, ("the receiver marks the second delivery a duplicate by its delivery id, and "
                      "the pipeline builds a commit once, however often it is delivered.")
    if answer == 2:
        return False, ("the second delivery carries the same X-GitHub-Delivery id: the receiver "
                       "marks it duplicate, and the pipeline never builds a commit twice.")
    if answer == 0:
        return False, ("the first delivery is new and verified: the pipeline does build the "
                       "commit, once.")
    return False, "count the runs the pipeline opened for that commit: one per distinct commit."


EXERCISES: dict[str, Exercise] = {e.id: e for e in (
    Exercise("00-lesson-map", "Which lesson teaches you to verify a webhook signature?",
             _lesson_map, "answer = 2"),
    Exercise(
        "01-polling-cost",
        "A poller asks every 30 s for an 8-hour day with 12 pushes. Requests each way?",
        _polling_cost,
        'answer = {"polling": 8 * 60 * 60 // 30, "webhooks": 12}',
    ),
    Exercise(
        "01-status-codes",
        "Status codes for: a new pull_request, the same one again, a push cut off after 100 bytes.",
        _status_codes,
        "pr = events.github.pull_request()\n"
        "push = events.github.push()\n"
        "sends = (pr, pr, push.with_body(push.body[:100]))\n"
        "answer = [labkit.send(event, rx).status for event in sends]",
    ),
    Exercise(
        "01-handler",
        "A handler collects the branch of every push; push to main and to feature/login.",
        _handler_branches,
        "branches = []\n\n"
        "@rx.on(\"github\", \"push\")\n"
        "def collect_branch(delivery):\n"
        "    branches.append(delivery.payload[\"ref\"].removeprefix(\"refs/heads/\"))\n\n"
        "for ref in (\"refs/heads/main\", \"refs/heads/feature/login\"):\n"
        "    labkit.send(events.github.push(ref=ref), rx)\n"
        "rx.idle()\n"
        "answer = branches",
    ),
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
    Exercise(
        "03-standard-signature",
        "Compute the webhook-signature entry for the specification's test message by hand.",
        _standard_signature,
        "key = base64.b64decode(TEST_SECRET.removeprefix(\"whsec_\"))\n"
        "signed = f\"{TEST_ID}.{TEST_TIMESTAMP}.\".encode() + TEST_BODY\n"
        "digest = hmac.new(key, signed, hashlib.sha256).digest()\n"
        "answer = \"v1,\" + base64.b64encode(digest).decode()",
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
    Exercise("04-depends-on", "The depends_on entry that waits until db is healthy.",
             _depends_on, 'answer = {"db": {"condition": "service_healthy"}}'),
    Exercise("04-scale-users", "Scale users to 2 and collect the hostnames that answer.",
             _scale_users, 'stack.scale("users", 2)\n'
             'answer = {httpx.get(url + "/api/users").json()["hostname"] for _ in range(4)}'),
    Exercise("04-loopback-port", "The ports entry that publishes 8000 on 127.0.0.1 only.",
             _loopback_port, 'answer = "127.0.0.1::8000"'),
    Exercise(
        "06-ship-a-change",
        "Change the greeting, commit, push, and wait for the run of your commit.",
        _shipped_change,
        'src.replace("app.py", "version 2", "version 3")\n'
        'commit = src.commit("Say version 3")\n'
        "print(src.push().hook)\n"
        "answer = pipeline.wait(commit, timeout=60)",
    ),
    Exercise(
        "06-which-webhook-deploys",
        "Which webhook source starts the deploy?",
        _deploy_trigger,
        'answer = "registry"',
    ),    Exercise(
        "07-which-stage-fails",
        "Which stage fails for a commit with a syntax error?",
        _broken_build_stage,
        'answer = "build"',
    ),
    Exercise(
        "07-duplicate-builds",
        "How many times does the pipeline build a push that is delivered twice?",
        _duplicate_builds,
        "answer = 1",
    ),
)}


def ids() -> list[str]:
    """Every exercise id, in lesson order."""
    return list(EXERCISES)


def _exercise(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except (KeyError, TypeError):
        raise ExerciseError(f"No exercise {exercise_id!r}. The exercises are: "
                            f"{', '.join(EXERCISES)}.") from None


def check(exercise_id: str, answer: Any) -> Result:
    """Check ``answer`` to exercise ``exercise_id``: ``PASS: ...`` or ``NOT YET: <hint>``.

    Never raises for an answer, however wrong; an unknown id raises :class:`ExerciseError`.
    """
    exercise = _exercise(exercise_id)
    if _empty(answer):
        return Result(exercise_id, False, f"no answer yet. Task: {exercise.task} Put your answer "
                                          "in `answer` in the cell above and run both cells.")
    try:
        passed, message = exercise.checker(answer)
    except Exception as exc:  # noqa: BLE001 - a check explains, it never shows a traceback
        passed, message = False, (f"the check could not read this answer ({type(exc).__name__}: "
                                  f"{exc}). Task: {exercise.task}")
    return Result(exercise_id, passed, message)


def solution(exercise_id: str) -> Solution:
    """One working answer to ``exercise_id`` (try it yourself first)."""
    exercise = _exercise(exercise_id)
    return Solution(exercise_id, exercise.solution)


# --- 05 ------------------------------------------------------------------------------------------

def _swarm_deploy(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, ("answer with the deploy: section as a dict, e.g. {'replicas': 3, "
                       "'update_config': {...}}.")
    if "deploy" in answer and isinstance(answer["deploy"], dict):
        return False, "give only what goes under deploy:, without the 'deploy' key around it."
    replicas = answer.get("replicas")
    if isinstance(replicas, str) and replicas.strip().isdigit():
        return False, "replicas is a number in a stack file: 3, not '3'."
    if replicas != 3 or isinstance(replicas, bool):
        return False, "run 3 tasks of the service: 'replicas': 3."
    update = answer.get("update_config")
    if not isinstance(update, dict):
        return False, ("how Swarm replaces tasks goes in 'update_config': parallelism, order and "
                       "failure_action.")
    if update.get("parallelism") != 1:
        return False, ("'parallelism' is how many tasks are replaced at once: one at a time is "
                       "'parallelism': 1 (0 would mean all at once).")
    order = str(update.get("order", "stop-first"))
    if order == "stop-first":
        return False, ("stop-first (the default) stops an old task before its replacement runs, "
                       "so only 2 of 3 serve for a while: use 'order': 'start-first'.")
    if order != "start-first":
        return False, "'order' is 'stop-first' or 'start-first'."
    action = str(update.get("failure_action", "pause"))
    if action in ("pause", "continue"):
        return False, (f"failure_action {action!r} leaves the failed tasks in place; to go back "
                       "to the old version on its own, use 'failure_action': 'rollback'.")
    if action != "rollback":
        return False, "'failure_action' is 'pause', 'continue' or 'rollback'."
    return True, ("3 replicas, replaced one at a time, each new task running before an old one "
                  "stops, and a failed update rolls itself back.")


def _kube_service_types(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, "answer with a dict: {'gateway': '<type>', 'orders': '<type>'}."
    kinds = {str(k): str(v) for k, v in answer.items()}
    if set(kinds) != {"gateway", "orders"}:
        return False, "give a type for exactly two services: 'gateway' and 'orders'."
    known = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    for name, kind in kinds.items():
        if kind not in known:
            near = [k for k in known if k.lower() == kind.replace(" ", "").lower()]
            if near:
                return False, f"write the type as Kubernetes spells it: {near[0]!r}."
            return False, f"{kind!r} is not a Service type; the types are {', '.join(known)}."
    if kinds["orders"] != "ClusterIP":
        return False, (f"orders is only called by other services (the gateway), so it needs no "
                       f"address outside the cluster: {kinds['orders']} would give it one. "
                       "Use ClusterIP.")
    if kinds["gateway"] == "ClusterIP":
        return False, ("a ClusterIP is only reachable inside the cluster; the gateway is the "
                       "shop's front door, reached from outside.")
    if kinds["gateway"] == "NodePort":
        return False, ("NodePort opens the same port on every node, which callers must then know "
                       "about; LoadBalancer puts one address in front of them, like Compose's "
                       "one published port.")
    if kinds["gateway"] != "LoadBalancer":
        return False, "ExternalName points a name at something outside; the gateway runs inside."
    return True, ("the gateway gets an address outside the cluster (LoadBalancer); orders keeps "
                  "a stable name and virtual IP inside it (ClusterIP).")


def _kube_probe(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, "answer with the probe as a dict: {'httpGet': {...}, 'periodSeconds': ...}."
    if "readinessProbe" in answer:
        return False, "give what goes under readinessProbe:, without the key around it."
    http = answer.get("httpGet")
    exec_ = answer.get("exec")
    if isinstance(http, dict):
        if http.get("host") in ("127.0.0.1", "localhost"):
            return False, ("leave 'host' out: the kubelet asks the pod's own address, and "
                           "127.0.0.1 would be the node's.")
        port = http.get("port")
        if isinstance(port, str) and port.isdigit():
            return False, ("a port given as a string is a port's *name* in Kubernetes: write "
                           "the number 8000.")
        if port != 8000:
            return False, "the healthcheck asks port 8000: 'port': 8000."
        if http.get("path") != "/healthz":
            return False, "the healthcheck asks the path /healthz: 'path': '/healthz'."
    elif isinstance(exec_, dict):
        if list(exec_.get("command") or []) != ["labkit-probe", "http://127.0.0.1:8000/healthz"]:
            return False, ("an exec probe runs the healthcheck's command without 'CMD': "
                           "['labkit-probe', 'http://127.0.0.1:8000/healthz'].")
    else:
        return False, ("say how to probe: 'httpGet': {'path': ..., 'port': ...} (the kubelet "
                       "asks over HTTP itself).")
    numbers = {"periodSeconds": 2, "timeoutSeconds": 3, "failureThreshold": 30}
    for key, want in numbers.items():
        got = answer.get(key)
        if isinstance(got, str):
            return False, f"Kubernetes counts {key} as a whole number: {want}, not {got!r}."
        if got is None:
            source = {"periodSeconds": "interval", "timeoutSeconds": "timeout",
                      "failureThreshold": "retries"}[key]
            return False, f"add {key!r}: it comes from the healthcheck's {source}."
        if got != want:
            return False, f"{key} should be {want}, from the healthcheck; got {got!r}."
    how = "over HTTP" if isinstance(http, dict) else "with the same command"
    return True, f"the kubelet asks {how}, every 2 s, waits 3 s, and gives up after 30 failures."


EXERCISES.update({e.id: e for e in (
    Exercise(
        "05-swarm-deploy",
        "The deploy: section for 3 replicas, updated one at a time, start-first, rolling back.",
        _swarm_deploy,
        'answer = {\n'
        '    "replicas": 3,\n'
        '    "update_config": {"parallelism": 1, "order": "start-first",\n'
        '                      "failure_action": "rollback"},\n'
        '}',
    ),
    Exercise(
        "05-service-types",
        "The Kubernetes Service type for the gateway and for orders.",
        _kube_service_types,
        'answer = {"gateway": "LoadBalancer", "orders": "ClusterIP"}',
    ),
    Exercise(
        "05-probe",
        "The readinessProbe Kubernetes gets from the gateway's healthcheck.",
        _kube_probe,
        'answer = {\n'
        '    "httpGet": {"path": "/healthz", "port": 8000},\n'
        '    "periodSeconds": 2,\n'
        '    "timeoutSeconds": 3,\n'
        '    "failureThreshold": 30,\n'
        '}',
    ),
)})
