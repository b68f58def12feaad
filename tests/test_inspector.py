"""The event inspector: live rows, filtering, detail, replay and one subscription per receiver."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import labkit
from labkit import Receiver
from labkit.webhooks import events
from labkit.widgets import Inspector, inspect
from labkit.widgets import inspector as inspector_module

from support import poll

SECRET = "s3cret"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def insp(rx: Receiver) -> Any:
    view = inspect(rx, interval=0.05)
    yield view
    view.stop()


def send_pushes(rx: Receiver, n: int) -> None:
    for _ in range(n):
        assert labkit.send(events.github.push(), rx, secret=SECRET, retries=0).status == 202


def post_pushes(rx: Receiver, n: int) -> None:
    """``n`` signed pushes over one connection (fast enough for hundreds)."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        for _ in range(n):
            event = events.github.push().signed(SECRET)
            response = client.post(
                rx.hook_url("github"), content=event.body, headers=dict(event.headers)
            )
            assert response.status_code == 202


# --- in-process ----------------------------------------------------------------------------


def test_empty_receiver_shows_no_rows_and_a_hint(insp: Inspector) -> None:
    assert insp.rows() == []
    assert "No deliveries yet" in insp.table.value
    assert insp.text() == "(no deliveries)"
    assert insp.selected is None


def test_rows_follow_deliveries_live_without_refresh(rx: Receiver, insp: Inspector) -> None:
    send_pushes(rx, 3)
    rows = poll(lambda: len(insp.rows()) == 3 and insp.rows(), what="three rows in the view")
    assert [r["seq"] for r in rows] == [3, 2, 1]  # newest first
    assert {(r["source"], r["event"], r["status"], r["verified"]) for r in rows} == {
        ("github", "push", "accepted", True)
    }
    assert tuple(rows[0]) == inspector_module.ROW_KEYS


def test_hundreds_of_events_stay_correct_and_redraws_are_coalesced(
    rx: Receiver, make_receiver: Callable[..., Receiver]
) -> None:
    view = inspect(rx, limit=200, interval=0.25)
    redraws: list[Any] = []
    view.table.observe(redraws.append, names="value")
    try:
        n = 300
        started = time.monotonic()
        post_pushes(rx, n)
        rx.wait_for(n, timeout=30)
        elapsed = time.monotonic() - started
        poll(lambda: view.rows() and view.rows()[0]["seq"] == n, what="the newest row drawn")
        rows = view.rows()
        assert len(rows) == 200  # capped
        assert [r["seq"] for r in rows] == list(range(n, n - 200, -1))
        assert all(r["status"] == "accepted" for r in rows)
        assert f"{n} deliveries in the log" in view.summary.value
        # One redraw per interval at most while deliveries stream in, not one per delivery.
        assert len(redraws) <= elapsed / 0.25 + 3, f"{len(redraws)} redraws in {elapsed:.1f} s"
        assert len(redraws) < n / 2
        assert view.table.value.count("<tr>") == 201  # header + 200 rows
    finally:
        view.stop()


def test_filter_by_source(rx: Receiver, insp: Inspector) -> None:
    send_pushes(rx, 2)
    assert labkit.send(events.dockerhub.push(tag="v1"), rx).status == 202
    insp.refresh()
    assert len(insp.rows()) == 3
    insp.source = "dockerhub"
    assert [(r["source"], r["event"]) for r in insp.rows()] == [("dockerhub", "push")]
    insp.filter.value = "github"  # what a click on the toggle button does
    assert {r["source"] for r in insp.rows()} == {"github"} and len(insp.rows()) == 2
    insp.source = None
    assert len(insp.rows()) == 3
    with pytest.raises(ValueError, match="Unknown source"):
        insp.source = "gitlab"


def test_replay_makes_a_duplicate_row(rx: Receiver, insp: Inspector) -> None:
    handled: list[str | None] = []
    rx.on("github", "push")(lambda d: handled.append(d.id))
    send_pushes(rx, 2)
    rx.wait_for(2)
    result = insp.replay()
    assert result.ok and result.http_status == 200 and result.status == "duplicate"
    assert result.of_seq == 2 and result.seq == 3
    assert str(result) == "Replayed #2: HTTP 200, duplicate, new row #3"
    rows = insp.rows()
    assert rows[0]["status"] == "duplicate" and rows[0]["id"] == rows[1]["id"]
    rx.idle()
    assert len(handled) == 2  # the replay did not run the handler again
    assert "duplicate" in insp.status.value


def test_replay_of_a_chosen_delivery_and_the_button(rx: Receiver, insp: Inspector) -> None:
    send_pushes(rx, 3)
    insp.refresh()
    insp.select(1)
    assert insp.picker.value == 1 and insp.selected is not None and insp.selected.seq == 1
    insp.replay_button.click()
    rows = insp.rows()
    assert rows[0]["seq"] == 4 and rows[0]["status"] == "duplicate"
    assert rows[0]["id"] == next(r["id"] for r in rows if r["seq"] == 1)
    assert insp.picker.value == 1  # the choice survives the redraw
    insp.picker.value = 0  # "newest" again
    assert insp.selected is not None and insp.selected.seq == 4
    with pytest.raises(ValueError, match="no delivery #99"):
        insp.select(99)


def test_replay_with_nothing_to_replay_explains(insp: Inspector) -> None:
    result = insp.replay()
    assert not result.ok and result.http_status is None
    assert "send one first" in str(result)
    insp.replay_button.click()  # never raises
    assert "Replay not sent" in insp.status.value


def test_replay_keeps_the_exact_body_and_signature(rx: Receiver, insp: Inspector) -> None:
    event = events.github.push()
    labkit.send(event, rx, secret=SECRET)
    insp.replay()
    original, again = sorted(rx.deliveries(2), key=lambda d: d.seq)
    assert again.body == original.body == event.body
    assert again.headers["x-hub-signature-256"] == original.headers["x-hub-signature-256"]
    assert again.verified and again.status == "duplicate"


def test_detail_view_shows_headers_and_pretty_body_and_hides_tokens(
    make_receiver: Callable[..., Receiver],
) -> None:
    rx = make_receiver(secrets={"registry": "bearer-token-123"})
    view = inspect(rx)
    try:
        event = events.registry.notification("push", tag="v7")
        assert labkit.send(event, rx, secret="bearer-token-123").status == 202
        view.refresh()
        detail = view.detail_view.value
        assert "bearer-token-123" not in detail and "Bearer ****" in detail
        assert "application/vnd.docker.distribution.events.v1+json" in detail
        assert "&quot;tag&quot;: &quot;v7&quot;" in detail  # indented JSON, escaped
    finally:
        view.stop()


def test_detail_view_explains_every_rejected_signature(rx: Receiver, insp: Inspector) -> None:
    push = events.github.push().signed(SECRET)
    spaced = json.dumps(json.loads(push.body)).encode()
    cases = [
        (push.with_body(spaced), "re-serialized"),
        (push.with_body(push.body.replace(b"main", b"prod")), "mismatch"),
        (events.github.push(), "no-signature"),
    ]
    for event, cause in cases:
        assert labkit.send(event, rx, retries=0).status == 401
        insp.refresh()
        assert insp.explain() is not None and insp.explain().cause == cause
        assert f"signature: <b>{cause}</b>" in insp.detail_view.value
    assert "first difference at byte" in str(insp.explain(rx.deliveries(3)[-1].seq))
    assert labkit.send(events.github.push(), rx, secret=SECRET).status == 202
    insp.refresh()
    assert insp.explain() is None and "signature: <b>" not in insp.detail_view.value


def test_html_is_escaped(rx: Receiver, insp: Inspector) -> None:
    hostile = events.github.ping().with_headers(**{"X-GitHub-Event": "<script>x()</script>"})
    labkit.send(hostile, rx, secret=SECRET)
    insp.refresh()
    assert insp.rows()[0]["event"] == "<script>x()</script>"
    for html in (insp.table.value, insp.detail_view.value):
        assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_new_inspector_replaces_the_old_one(rx: Receiver) -> None:
    before = len(rx.log._subscribers)
    first = inspect(rx)
    second = inspect(rx)  # a re-run cell
    try:
        assert first.stopped and not second.stopped
        assert len(rx.log._subscribers) == before + 1
        assert "no longer updates" in first.summary.value
        assert first.replay_button.disabled
        send_pushes(rx, 1)
        poll(lambda: len(second.rows()) == 1, what="the new inspector to update")
        assert first.rows() == []  # the stopped one no longer follows
    finally:
        second.stop()
    assert len(rx.log._subscribers) == before
    second.stop()  # idempotent


def test_repr_is_stable_and_used_as_plain_text(rx: Receiver, insp: Inspector) -> None:
    expected = f"<Inspector of receiver {rx.name!r}: newest 200 deliveries, source: all>"
    assert repr(insp) == expected
    bundle = insp._repr_mimebundle_()
    assert bundle["text/plain"] == expected + "\n(no deliveries)"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    send_pushes(rx, 2)
    insp.refresh()
    assert repr(insp) == expected  # no counts, no times: the same on every run
    # As displayed, the plain text (what nbval compares) is the table's content in words.
    shown = insp._repr_mimebundle_()["text/plain"]
    assert shown == f"{expected}\n{insp.text()}" and shown.count("\n") == 3, shown


def test_text_lists_rows_oldest_first(rx: Receiver, insp: Inspector) -> None:
    send_pushes(rx, 1)
    labkit.send(events.github.push(), rx, secret="wrong")
    lines = insp.text().splitlines()
    assert lines[0].split() == ["seq", "source", "event", "verified", "status", "reason"]
    assert lines[1].split()[:5] == ["1", "github", "push", "yes", "accepted"]
    assert lines[2].split()[:5] == ["2", "github", "push", "no", "rejected"]
    assert insp.text(columns=("seq", "handled")).splitlines()[0].split() == ["seq", "handled"]
    with pytest.raises(ValueError, match="the columns are seq, time"):
        insp.text(columns=("seq", "colour"))


def test_inspector_needs_a_receiver() -> None:
    with pytest.raises(TypeError, match="labkit Receiver"):
        Inspector("http://127.0.0.1:1")  # type: ignore[arg-type]


def test_labkit_re_exports_the_inspector() -> None:
    assert labkit.inspect is inspect and labkit.Inspector is Inspector
    assert inspector_module.DEFAULT_LIMIT == 200


# --- in a real kernel ----------------------------------------------------------------------

KERNEL_SETUP = """
import json
import time
import labkit
from labkit.webhooks import events
rx = labkit.Receiver(secret="s3cret", name="kernel-test").start()
"""
CREATE = """
insp = labkit.inspect(rx)
insp
"""
SEND = """
for _ in range(8):
    labkit.send(events.github.push(), rx, secret="s3cret")
for tag in ("v1", "v2", "v3", "v4"):
    labkit.send(events.dockerhub.push(tag=tag), rx)
rx.wait_for(12)
insp.refresh()
print(json.dumps({"rows": insp.rows(), "subscribers": len(rx.log._subscribers)}))
"""
FILTER = """
insp.source = "dockerhub"
print(json.dumps(insp.rows()))
insp.source = None
"""
REPLAY = """
result = insp.replay()
print(json.dumps({"result": str(result), "rows": insp.rows()}))
"""
LIVE = """
labkit.send(events.github.ping(), rx, secret="s3cret")
deadline = time.monotonic() + 10
while len(insp.rows()) < 14 and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps(insp.rows()[0]))
insp.stop()
rx.stop()
"""


def _json_output(cell: Any) -> Any:
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    return json.loads(text)


@pytest.mark.timeout(120)
def test_inspector_in_a_real_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell(s.strip())
            for s in (KERNEL_SETUP, CREATE, CREATE, SEND, FILTER, REPLAY, LIVE)
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    # The kernel inherits LABKIT_HOME from the fixture, and imports this checkout's labkit.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    )
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    started = time.monotonic()
    client.execute()
    assert time.monotonic() - started < 100
    nbformat.validate(nb)
    setup, create, recreate, send, filtered, replay, live = nb.cells

    for cell in (create, recreate):
        (shown,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert shown.data["text/plain"] == (
            "<Inspector of receiver 'kernel-test': newest 200 deliveries, source: all>\n"
            "(no deliveries)"
        )
        assert "application/vnd.jupyter.widget-view+json" in shown.data

    sent = _json_output(send)
    assert sent["subscribers"] == 1  # running the creating cell twice left one subscription
    rows = sent["rows"]
    assert len(rows) == 12
    assert all(r["status"] == "accepted" for r in rows)
    assert [r["source"] for r in rows].count("github") == 8
    assert all(r["verified"] for r in rows if r["source"] == "github")

    only_hub = _json_output(filtered)
    assert len(only_hub) == 4 and {r["source"] for r in only_hub} == {"dockerhub"}

    replayed = _json_output(replay)
    assert replayed["result"] == "Replayed #12: HTTP 200, duplicate, new row #13"
    assert len(replayed["rows"]) == 13
    assert replayed["rows"][0]["status"] == "duplicate"
    assert replayed["rows"][0]["id"] == replayed["rows"][1]["id"]

    newest = _json_output(live)
    assert newest["seq"] == 14 and newest["event"] == "ping"  # drawn by the live update
    assert not any(o.output_type == "error" for c in nb.cells for o in c.outputs)
    # The widget state the kernel sent is in the notebook, as a front end would see it.
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
