"""Exercise checks: every solution passes, typical mistakes get a specific hint, nothing raises."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

import labkit
from labkit import Receiver
from labkit.errors import ExerciseError
from labkit.teaching import exercises
from labkit.teaching.exercises import EXERCISES, check, solution
from labkit.webhooks import events

SECRET = "lab-secret-2"


@pytest.fixture
def lesson_namespace(make_receiver: Callable[..., Receiver]) -> Callable[[str], dict[str, Any]]:
    """The names a lesson's answer cells use, as the notebook defines them."""

    def make(exercise_id: str) -> dict[str, Any]:
        ns: dict[str, Any] = {
            "labkit": labkit,
            "events": events,
            "hmac": hmac,
            "hashlib": hashlib,
            "base64": base64,
        }
        lesson = exercise_id[:2]
        if lesson == "01":
            ns["rx"] = make_receiver(None)
            ns["httpx"] = httpx
            if exercise_id in ("01-post-by-hand", "01-curl"):
                exec(solution("01-own-receiver").code, ns)  # noqa: S102 - our own solution
        elif lesson == "02":
            ns["rx"] = make_receiver(SECRET)
            ns["SECRET"] = SECRET
            if exercise_id == "02-guarded-receiver":
                exec(solution("02-verify").code, ns)  # noqa: S102 - our own solution
        elif lesson == "03":
            ns.update(
                TEST_SECRET=exercises.STANDARD_SECRET,
                TEST_ID=exercises.STANDARD_ID,
                TEST_TIMESTAMP=exercises.STANDARD_TIMESTAMP,
                TEST_BODY=exercises.STANDARD_BODY,
                OLD_SECRET=exercises.STANDARD_SECRET,
                NEW_SECRET=exercises.ROTATION_NEW_SECRET,
            )
        return ns

    return make


def test_every_lesson_has_enough_exercises() -> None:
    per_lesson = {
        lesson: sum(1 for i in EXERCISES if i.startswith(lesson))
        for lesson in ("00", "01", "02", "03")
    }
    assert per_lesson["00"] >= 1
    assert all(per_lesson[lesson] >= 2 for lesson in ("01", "02", "03")), per_lesson
    assert exercises.ids() == list(EXERCISES)


# These need a running stack or pipeline: lessons 04 and 06 run their solutions under nbval.
LIVE = {
    # Lesson 04's tasks edit the learner's copy of the shop and read it running: see
    # tests/test_lesson04_tasks.py, and nbval runs them in the lesson.
    "04-healthcheck",
    "04-depends-on",
    "04-loopback-port",
    "04-internal-network",
    "04-scale-users",
    # Lessons 06 and 07 run their tasks on the learner's repository and a live pipeline: see
    # tests/test_lesson06_tasks.py and tests/test_lesson07_tasks.py; nbval runs them too.
    "06-dockerfile-build",
    "06-dockerfile-healthcheck",
    "06-push-trigger",
    "06-first-push",
    "06-deploy-notification",
    "07-broken-build",
    "07-never-healthy",
    "07-recover",
    "07-crash-alert",
    "07-redeploy",
    "07-receiver-outage",
    "07-duplicate",
    # Terminal lines (!curl, !labkit): run by nbval in lessons 01 and 03, and by
    # test_curl_* and test_labkit_commands_* below.
    "01-curl",
    "03-cli-triggers",
}


@pytest.mark.parametrize("exercise_id", [i for i in EXERCISES if i not in LIVE])
def test_the_solution_passes(
    exercise_id: str, lesson_namespace: Callable[[str], dict[str, Any]]
) -> None:
    ns = lesson_namespace(exercise_id)
    exec(solution(exercise_id).code, ns)  # noqa: S102 - the solution is our own code
    result = check(exercise_id, ns["answer"])
    assert result.passed, str(result)
    assert str(result).startswith("PASS: ") and repr(result) == str(result)
    assert bool(result)
    assert "PASS" in result._repr_html_()


def _wrong_verify(secret: str, body: bytes, signature: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return expected == signature  # right answers, but not in constant time


def _crashing_verify(secret: str, body: bytes, signature: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)  # type: ignore[type-var]  # None raises


def _always_true(secret: str, body: bytes, signature: str | None) -> bool:
    return True


def _standard(secret: bytes, signed: bytes, hexdigest: bool = False) -> str:
    mac = hmac.new(secret, signed, hashlib.sha256)
    return "v1," + (mac.hexdigest() if hexdigest else base64.b64encode(mac.digest()).decode())


_KEY = base64.b64decode(exercises.STANDARD_SECRET.removeprefix("whsec_"))
_SIGNED = (
    f"{exercises.STANDARD_ID}.{exercises.STANDARD_TIMESTAMP}.".encode() + exercises.STANDARD_BODY
)
_NEW_ENTRY = labkit.signing.standard_signature(
    exercises.ROTATION_NEW_SECRET,
    exercises.STANDARD_ID,
    exercises.STANDARD_TIMESTAMP,
    exercises.STANDARD_BODY,
)

# (exercise, a typical wrong answer, words the hint must contain)
WRONG = [
    ("00-lesson-map", 1, "lesson 01"),
    ("00-lesson-map", "03", "earlier one"),
    ("00-lesson-map", "signatures", "lesson number"),
    ("01-polling-cost", {"polling": 16, "webhooks": 12}, "not every 30 minutes"),
    ("01-polling-cost", {"polling": 28_800, "webhooks": 12}, "not every second"),
    ("01-polling-cost", {"polling": 960, "webhooks": 960}, "one request per change"),
    ("01-polling-cost", (960.0, 12), "whole numbers"),
    ("01-polling-cost", "960 and 12", "answer with a dict"),
    ("01-own-receiver", "app", "your app itself"),
    ("01-status-codes", [202, 202, 400], "same X-GitHub-Delivery id"),
    ("01-status-codes", [202, 200, 500], "not valid JSON"),
    ("01-status-codes", [202, 200], "three status codes"),
    ("01-handler", ["refs/heads/main", "refs/heads/feature/login"], "refs/heads/"),
    ("01-handler", ["main", "feature/login", "main", "feature/login"], "re-run"),
    ("01-handler", ["main"], "did you wait"),
    ("01-handler", "main", "the list your handler filled"),
    ("02-signature", exercises.GITHUB_SIGNATURE[len("sha256=") :], "starts with 'sha256='"),
    ("02-signature", exercises.GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256="), "lowercase"),
    (
        "02-signature",
        "sha1="
        + hmac.new(
            exercises.GITHUB_SECRET.encode(), exercises.GITHUB_BODY, hashlib.sha1
        ).hexdigest(),
        "SHA-1",
    ),
    (
        "02-signature",
        "sha256=" + hashlib.sha256(exercises.GITHUB_BODY).hexdigest(),
        "plain SHA-256",
    ),
    ("02-signature", "sha256=" + "0" * 64, "exact body bytes"),
    ("02-signature", 12345, "as a string"),
    ("02-verify", _wrong_verify, "compare_digest"),
    ("02-verify", _crashing_verify, "raised TypeError for a missing header"),
    ("02-verify", _always_true, "tampered body"),
    ("02-verify", "verify", "your function itself"),
    ("02-redelivery", {"statuses": [202, 202, 202], "runs": 3}, "labkit.redeliver"),
    ("02-redelivery", {"statuses": [202, 200, 200], "runs": 3}, "let the receiver dedupe"),
    ("02-redelivery", {"statuses": [202, 200, 200], "runs": 0}, "never ran"),
    ("02-redelivery", {"statuses": [401, 200, 200], "runs": 1}, "signed"),
    ("02-redelivery", [202, 200, 200], "'statuses'"),
    ("03-standard-signature", exercises.STANDARD_SIGNATURE[3:], "'v1,'"),
    ("03-standard-signature", _standard(_KEY, _SIGNED, hexdigest=True), "base64, not hex"),
    (
        "03-standard-signature",
        _standard(exercises.STANDARD_SECRET.encode(), _SIGNED),
        "decoded to bytes",
    ),
    ("03-standard-signature", _standard(_KEY, exercises.STANDARD_BODY), "only the body"),
    ("03-standard-signature", b"\xff\xfe", "as a string"),
    ("03-rotation", exercises.STANDARD_SIGNATURE, "only the old secret's entry"),
    ("03-rotation", _NEW_ENTRY, "only the new secret's entry"),
    ("03-rotation", f"{exercises.STANDARD_SIGNATURE},{_NEW_ENTRY}", "single space"),
    ("03-rotation", f"{exercises.STANDARD_SIGNATURE} v1,AAAA", "add the new secret's"),
    ("03-rotation", "v1,AAAA v1,BBBB", "neither entry matches"),
    ("03-token-limits", {"a", "b"}, "not b"),
    ("03-token-limits", "a c", "not c"),
    ("03-token-limits", ["A", "D"], "not d"),
    ("03-token-limits", {"z"}, "only a, b, c and d"),
    ("03-token-limits", 7, "set of letters"),
    ("04-scale-users", ["users-1", "users-2"], "in a set"),
    ("04-healthcheck", "no/such/compose.yaml", "path of your compose file"),
    ("04-depends-on", 42, "path of your compose file"),
    ("06-dockerfile-build", "no/such/Dockerfile", "path of your Dockerfile"),
    ("06-dockerfile-healthcheck", 42, "path of your Dockerfile"),
    ("06-push-trigger", "release_on_push", "handler function itself"),
    ("06-first-push", "passed", "pipeline.wait(src.head"),
    ("06-deploy-notification", "deployment.succeeded", "monitoring receiver logged it"),
    ("06-which-webhook-deploys", "github", "build and ship"),
    ("06-which-webhook-deploys", "compile", "one source name"),
    ("07-broken-build", "build", "pipeline.wait(src.head"),
    ("07-never-healthy", "rolled back", "pipeline.wait(src.head"),
    ("07-recover", 3, "pipeline.wait(src.head"),
    ("07-crash-alert", "WebDown", "alert as the receiver logged it"),
    ("07-redeploy", "passed", "pipeline.wait(src.head"),
    ("07-receiver-outage", "202", "labkit.redeliver(lost)"),
    ("07-duplicate", 200, "labkit.redeliver(lost)"),
]


@pytest.mark.parametrize(
    ("exercise_id", "answer", "hint"), WRONG, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(WRONG)]
)
def test_a_wrong_answer_gets_a_specific_hint(exercise_id: str, answer: Any, hint: str) -> None:
    result = check(exercise_id, answer)
    assert not result.passed
    assert str(result).startswith("NOT YET: ")
    assert hint in result.message, result.message
    assert "NOT YET" in result._repr_html_()


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
@pytest.mark.parametrize(
    "empty",
    [None, ..., "", [], {}, set(), b""],
    ids=["None", "Ellipsis", "str", "list", "dict", "set", "bytes"],
)
def test_an_empty_answer_gets_the_task_back(exercise_id: str, empty: Any) -> None:
    result = check(exercise_id, empty)
    assert not result.passed
    assert result.message.startswith("no answer yet")
    assert EXERCISES[exercise_id].task in result.message


class _Weird:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("cannot compare")

    def __str__(self) -> str:
        raise RuntimeError("cannot print")

    def __iter__(self) -> Any:
        raise RuntimeError("cannot iterate")


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
@pytest.mark.parametrize(
    "odd",
    [42, 3.5, True, object(), _Weird(), [None, None, None], {"polling": None}, lambda *a: 1 / 0],
    ids=["int", "float", "bool", "object", "weird", "nones", "dict", "raising-callable"],
)
def test_a_wrong_type_never_raises(exercise_id: str, odd: Any) -> None:
    result = check(exercise_id, odd)
    assert not result.passed
    assert result.message


def test_an_unknown_exercise_id_says_which_exist() -> None:
    with pytest.raises(ExerciseError, match="02-verify"):
        check("02-verfy", "x")
    with pytest.raises(ExerciseError, match="No exercise"):
        solution("nope")


def test_a_solution_shows_as_code() -> None:
    shown = solution("02-verify")
    assert "compare_digest" in str(shown)
    assert repr(shown).startswith("# A solution to 02-verify\n")


def test_exercises_are_reachable_from_labkit() -> None:
    assert labkit.exercises.check is check


def _app(
    route: str = "/hooks/{source}", status: int = 202, *, method: str = "post", model: bool = False
) -> FastAPI:
    app = FastAPI()

    if model:
        from pydantic import BaseModel

        class Push(BaseModel):
            ref: str

        @app.post(route)
        async def typed(source: str, push: Push) -> Response:
            return Response(status_code=202)

        return app

    async def hook(request: Request) -> Response:
        await request.body()
        return Response(status_code=status)

    getattr(app, method)(route)(hook)
    return app


@pytest.mark.parametrize(
    ("app", "words"),
    [
        (_app(status=200), "202 Accepted"),
        (_app(method="get"), "not for POST"),
        (_app(route="/webhook"), "no route for POST /hooks/github"),
        (_app(model=True), "read the body into a parameter"),
    ],
    ids=["200", "get", "404", "422"],
)
def test_your_receiver_is_checked_by_posting_to_it(app: FastAPI, words: str) -> None:
    result = check("01-own-receiver", app)
    assert not result.passed and words in result.message, result.message
    assert "your app's answer to POST /hooks/github" in result.looked_at


def test_a_server_that_heard_nothing_is_not_a_post_by_hand() -> None:
    server = labkit.serve(_app(), name="mine-test")
    try:
        result = check("01-post-by-hand", server)
        assert not result.passed and "not received a request from httpx" in result.message
        assert "0 request(s)" in result.looked_at
        httpx.get(server.url + "/hooks/github")
        assert "a webhook is a POST" in check("01-post-by-hand", server).message
    finally:
        server.stop()


def test_curl_posting_to_your_server_passes_and_a_get_does_not() -> None:
    import shutil
    import subprocess

    assert shutil.which("curl"), "curl is needed (`.ci/run` installs it)"
    server = labkit.serve(_app(), name="mine-curl")
    try:
        assert "not received a request from curl" in check("01-curl", server).message
        subprocess.run(["curl", "-s", server.url + "/hooks/github"], check=True, timeout=30)
        assert "without -d it makes a GET" in check("01-curl", server).message
        subprocess.run(
            ["curl", "-s", "-X", "POST", server.url + "/hooks/github", "-d", '{"zen": "hi"}'],
            check=True,
            timeout=30,
        )
        result = check("01-curl", server)
        assert result.passed, str(result)
    finally:
        server.stop()


def test_the_same_mistake_twice_gets_the_specific_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exercises, "_misses", {})  # as in a fresh kernel
    first = check("01-own-receiver", _app(status=200))
    second = check("01-own-receiver", _app(status=200))
    assert first.tier == 1 and "Run the check again" in first.message
    assert second.tier == 2 and "Response(status_code=202)" in second.message


def _guarded(verify: Callable[[str, bytes, str | None], bool], *, dedupe: bool) -> Any:
    app = FastAPI()
    seen: set[str] = set()

    @app.post("/hooks/github")
    async def hook(request: Request) -> Response:
        body = await request.body()
        if not verify(SECRET, body, request.headers.get("x-hub-signature-256")):
            return Response(status_code=401)
        delivery = request.headers.get("x-github-delivery", "")
        if dedupe and delivery in seen:
            return Response(status_code=200)
        seen.add(delivery)
        return Response(status_code=202)

    return labkit.serve(app, name="guarded-test")


def _good_verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@pytest.mark.parametrize(
    ("verify", "dedupe", "words"),
    [
        (_always_true, True, "changed after it was signed"),
        (_good_verify, False, "replayed delivery as new"),
        (
            lambda s, b, h: hmac.compare_digest(
                "sha256=" + hmac.new(s.encode(), b, hashlib.sha256).hexdigest(), h
            ),
            True,
            "crashed (500)",
        ),
        (lambda s, b, h: False, True, "refused a delivery signed with SECRET"),
    ],
    ids=["accepts-all", "no-dedupe", "crashes-on-missing-header", "refuses-all"],
)
def test_your_guarded_receiver_is_attacked_for_real(verify: Any, dedupe: bool, words: str) -> None:
    server = _guarded(verify, dedupe=dedupe)
    try:
        result = check("02-guarded-receiver", server)
    finally:
        server.stop()
    assert not result.passed and words in result.message, result.message
    assert "your receiver" in result.looked_at or "answers" in result.looked_at
    recorded = [e.status for e in server.exchanges]
    assert recorded and all(recorded), "the check's requests really reached the server"


def test_labkit_commands_reach_your_listener_and_the_check_reads_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from labkit.teaching.exercises.lesson03 import CLI_DELIVERY_ID

    from support import free_port

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.setenv("LABKIT_WEBHOOK_SECRET", "cli-secret")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    labkit_cmd = [sys.executable, "-m", "labkit.cli"]
    listener = labkit.background(
        [*labkit_cmd, "listen", "--port", str(port), "--db", str(tmp_path / "rx.db")],
        name="test-listen",
    )
    try:
        listener.wait_for("labkit receiver on")

        def run(*args: str) -> None:
            subprocess.run([*labkit_cmd, *args], check=True, timeout=60, capture_output=True)

        assert "received nothing yet" in check("03-cli-triggers", url).message
        run("trigger", "dockerhub.push", "--to", url, "--tag", "v5")
        assert "GitHub push" in check("03-cli-triggers", url).message
        run("trigger", "github.push", "--to", url, "--delivery-id", CLI_DELIVERY_ID)
        waiting = check("03-cli-triggers", url)
        assert "redelivery has not come yet" in waiting.message
        assert "dockerhub.push accepted, github.push accepted" in waiting.looked_at
        run("redeliver", CLI_DELIVERY_ID)
        result = check("03-cli-triggers", url)
        assert result.passed, str(result)
    finally:
        listener.stop()
    assert "nothing answers" in check("03-cli-triggers", url).message
