"""Progress webhooks, end to end without a hub: a learner's checks reach the class view over
real HTTP, signed with that learner's own secret; forged, malformed and repeated reports are
refused or ignored, and an offline learner's checks arrive when they come back."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labkit.classroom.ledger import Ledger
from labkit.classroom.view import make_app
from labkit.teaching import record
from labkit.teaching import reporting as report
from labkit.teaching.exercises import check
from labkit.teaching.reporting import learner_secret
from labkit.webhooks.serving import ServerThread, bind
from labkit.webhooks.signing import standard_headers

KEY = secrets.token_bytes(32)


@pytest.fixture
def view(tmp_path: Path) -> Iterator[str]:
    room = tmp_path / "room"
    room.mkdir()
    (room / "classroom.key").write_bytes(KEY)
    sock = bind("127.0.0.1", 0)
    server = ServerThread(make_app(room, None), name="class-view-test")
    assert server.start([sock]) is None
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/services/class-view/progress"
    finally:
        server.stop()


def _as_learner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, url: str) -> Path:
    home = tmp_path / name
    monkeypatch.setenv("LABKIT_HOME", str(home))
    monkeypatch.setenv("LABKIT_LEARNER", name)
    monkeypatch.setenv("LABKIT_CLASSROOM_URL", url)
    monkeypatch.setenv("LABKIT_CLASSROOM_SECRET", learner_secret(KEY, name))
    return home / record.FILENAME


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "room" / "class-progress.db")


def test_a_learners_checks_reach_the_class_view(
    view: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_learner(monkeypatch, tmp_path, "ada", view)
    assert not check("01-polling-cost", {"polling": 1, "webhooks": 12}).passed
    assert check("01-polling-cost", {"polling": 960, "webhooks": 12}).passed
    assert report.wait_sent() in ("2 check(s) sent", "nothing to send")
    rows = {r.learner: r for r in _ledger(tmp_path).rows()}
    assert rows["ada"].passed == 1 and rows["ada"].tried == 1 and rows["ada"].lesson == "01"
    failed = _ledger(tmp_path).most_failed()
    assert [(f.exercise, f.failures, f.learners_not_passed) for f in failed] == [
        ("01-polling-cost", 1, 0)
    ]


def test_an_offline_learner_catches_up_and_nothing_is_counted_twice(
    view: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = _as_learner(monkeypatch, tmp_path, "bo", "http://127.0.0.1:9/nowhere")
    record.record("01", "01-event-type", False, 1, file=file)
    assert "not reachable" in report.report_now(file)
    assert len(record.unreported(file)) == 1  # kept locally
    monkeypatch.setenv("LABKIT_CLASSROOM_URL", view)
    record.record("01", "01-event-type", True, 0, file=file)
    assert report.report_now(file) == "2 check(s) sent"
    assert report.report_now(file) == "nothing to send"
    row = _ledger(tmp_path).rows()[0]
    assert (row.learner, row.passed, row.tried, row.stuck_on) == ("bo", 1, 1, "")


def _report(name: str, checks: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {"type": "progress.checked", "data": {"learner": name, "checks": checks}}
    ).encode()


CHECK = {"id": 1, "at": 1.0, "lesson": "02", "exercise": "02-verify", "passed": True, "tier": 0}


def test_a_forged_report_is_refused_and_shown_nowhere(view: str, tmp_path: Path) -> None:
    body = _report("cy", [CHECK])
    # Signed with another learner's secret: a learner cannot report for a classmate.
    headers = standard_headers(learner_secret(KEY, "dee"), "msg_1", int(time.time()), body)
    answer = httpx.post(view, content=body, headers=headers)
    assert answer.status_code == 401
    assert "signature" in answer.json()["error"]
    unsigned = httpx.post(view, content=body)
    assert unsigned.status_code == 401
    assert _ledger(tmp_path).rows() == []


@pytest.mark.parametrize(
    "body, says",
    [
        (b"{not json", "not a progress report"),
        (json.dumps({"type": "push", "data": {}}).encode(), "type must be"),
        (_report("Not A Name!", [CHECK]), "learner"),
        (_report("cy", [{**CHECK, "exercise": "../etc"}]), "exercise"),
        (_report("cy", [{**CHECK, "passed": "yes"}]), "passed must be"),
        (_report("cy", []), "1 to 1000"),
    ],
)
def test_a_malformed_report_gets_a_422_that_says_what_is_wrong(
    view: str, tmp_path: Path, body: bytes, says: str
) -> None:
    headers = standard_headers(learner_secret(KEY, "cy"), "msg_2", int(time.time()), body)
    answer = httpx.post(view, content=body, headers=headers)
    assert answer.status_code == 422
    assert says in answer.json()["error"]
    assert _ledger(tmp_path).rows() == []


def test_a_signed_report_is_stored_once_per_message(view: str, tmp_path: Path) -> None:
    body = _report("cy", [CHECK])
    headers = standard_headers(learner_secret(KEY, "cy"), "msg_3", int(time.time()), body)
    first = httpx.post(view, content=body, headers=headers)
    again = httpx.post(view, content=body, headers=headers)
    assert (first.status_code, first.json()["new"]) == (202, 1)
    assert (again.status_code, again.json()["new"]) == (202, 0)
    # The answer was lost and the learner sends the same check in a new message: not new either.
    resent = standard_headers(learner_secret(KEY, "cy"), "msg_4", int(time.time()), body)
    assert httpx.post(view, content=body, headers=resent).json()["new"] == 0
    assert [(r.learner, r.passed) for r in _ledger(tmp_path).rows()] == [("cy", 1)]


def test_the_class_pages_are_for_instructors_only(view: str) -> None:
    base = view.rsplit("/", 1)[0] + "/"
    for page in ("", "table", "class.csv", "class.html", "class.json"):
        answer = httpx.get(base + page, headers={"Authorization": "token guessed"})
        assert answer.status_code == 403, page


def test_an_oversized_or_deeply_nested_report_is_refused_and_the_view_stays_up(
    view: str, tmp_path: Path
) -> None:
    big = httpx.post(view, content=b"x" * (600 * 1024))
    assert big.status_code == 413
    nested = b"[" * 100_000 + b"]" * 100_000
    assert httpx.post(view, content=nested).status_code == 422
    body = _report("cy", [CHECK])
    headers = standard_headers(learner_secret(KEY, "cy"), "msg_5", int(time.time()), body)
    assert httpx.post(view, content=body, headers=headers).status_code == 202
