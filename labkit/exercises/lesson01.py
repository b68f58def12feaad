"""Lesson 01 (webhooks 101): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from ._core import _ints, Exercise, Verdict


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



EXERCISES = (
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
)
