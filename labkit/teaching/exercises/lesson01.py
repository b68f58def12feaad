"""Lesson 01 (webhooks 101): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from labkit.errors import ServeError
from labkit.teaching.exercises._core import Exercise, Hint, Verdict, _ints
from labkit.webhooks.serving import Served

#: What the check of your receiver posts to it: a GitHub ping, as GitHub sends its headers.
PROBE_BODY = b'{"zen": "Design for failure.", "hook_id": 1}'
PROBE_HEADERS = {
    "Content-Type": "application/json",
    "X-GitHub-Event": "ping",
    "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "User-Agent": "GitHub-Hookshot/044aadd",
}


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
        return False, (
            "with webhooks the sender makes one request per change, and there were 12 pushes."
        )
    return True, "960 polls to learn about 12 pushes; webhooks need 12 requests, each one news."


def _status_codes(answer: Any) -> Verdict:
    codes = _ints(answer)
    if codes is None or len(codes) != 3:
        return False, (
            "answer with a list of three status codes, e.g. "
            "[labkit.send(e, rx).status for e in (...)]."
        )
    hints = (
        (202, "the first send is a new delivery: the receiver stores it and answers 202 Accepted."),
        (
            200,
            "the second send carries the same X-GitHub-Delivery id: send the very same event "
            "object again, and the receiver answers 200 with status 'duplicate'.",
        ),
        (
            400,
            "the third body is cut off, so it is not valid JSON "
            "(push.with_body(push.body[:100])): the receiver answers 400 Bad Request.",
        ),
    )
    for got, (want, hint) in zip(codes, hints, strict=False):
        if got != want:
            return False, f"got {got} where {want} was expected: {hint}"
    return True, "202 for new, 200 for a duplicate (handlers not run again), 400 for broken JSON."


def _handler_branches(answer: Any) -> Verdict:
    if not isinstance(answer, (list, tuple)):
        return False, "answer with the list your handler filled, e.g. answer = branches."
    items = [str(x) for x in answer]
    if any(x.startswith("refs/") for x in items):
        return False, (
            "the payload's 'ref' is the full ref, like 'refs/heads/main': strip the "
            "'refs/heads/' prefix (str.removeprefix)."
        )
    if len(items) > 2:
        return False, (
            f"{len(items)} branches for 2 pushes: reset the list in the same cell "
            "that registers the handler, so a re-run starts from empty."
        )
    if sorted(items) != ["feature/login", "main"]:
        return False, (
            "expected the branches 'main' and 'feature/login'. Did both pushes arrive, "
            "and did you wait (rx.idle()) before reading the list?"
        )
    return True, "the handler saw both pushes and pulled the branch out of each payload."


def _own_receiver(answer: Any) -> Verdict:
    """Serve the learner's app for a moment, post a ping to it, and read what it answered."""
    import httpx

    if not callable(answer) or isinstance(answer, type):
        return False, Hint(
            "answer with your app itself: answer = app.",
            "Create it with app = FastAPI(), add a route with @app.post(...), "
            "then answer = app (no parentheses).",
        )
    served = Served(answer, name="01-check-your-receiver")
    try:
        served.start()
    except ServeError as exc:
        return False, f"your app could not be served: {exc}"
    try:
        with httpx.Client(timeout=10) as client:
            response = client.post(
                served.url + "/hooks/github", content=PROBE_BODY, headers=PROBE_HEADERS
            )
    except httpx.HTTPError as exc:
        return False, f"your app did not answer: {type(exc).__name__}: {exc}"
    finally:
        served.stop()
    exchange = served.exchanges[-1] if served.exchanges else None
    looked = (
        f"your app's answer to POST /hooks/github ({len(PROBE_BODY)} bytes, a GitHub "
        f"ping), served on 127.0.0.1 for this check: {response.status_code}"
    )
    status = response.status_code
    if status == 404:
        return (
            False,
            Hint(
                "your app has no route for POST /hooks/github.",
                'Decorate the function with @app.post("/hooks/{source}") (or '
                '"/hooks/github"), so a POST to that path reaches it.',
            ),
            looked,
        )
    if status == 405:
        return (
            False,
            Hint(
                "the path exists, but not for POST: a webhook is always a POST.",
                "Use @app.post(...), not @app.get(...).",
            ),
            looked,
        )
    if status == 422:
        return (
            False,
            Hint(
                "FastAPI refused the request before your function ran: it tried to "
                "read the body into a parameter.",
                "Take `request: Request` as the parameter and read the raw bytes with "
                "`body = await request.body()`.",
            ),
            looked,
        )
    if status >= 500:
        error = exchange.error if exchange is not None and exchange.error else "an error"
        return (
            False,
            Hint(
                f"your function raised {error} while handling the ping.",
                "Read the body with `await request.body()` inside an `async def`, "
                "and return Response(status_code=202).",
            ),
            looked,
        )
    if status != 202:
        return (
            False,
            Hint(
                f"your app answered {status}; a receiver that stored a delivery for "
                "later work answers 202 Accepted.",
                "return Response(status_code=202) (from fastapi import Response).",
            ),
            looked,
        )
    return (
        True,
        ("your app received GitHub's ping and answered 202 Accepted: that is a webhook receiver."),
        looked,
    )


def _exchanges_of(answer: Any) -> list[Any] | None:
    exchanges = getattr(answer, "exchanges", None)
    return None if exchanges is None else list(exchanges)


def _post_by_hand(answer: Any) -> Verdict:
    exchanges = _exchanges_of(answer)
    if exchanges is None:
        return False, Hint(
            "answer with your server: answer = server.",
            'server = labkit.serve(app, name="mine") serves your app; post to '
            'server.url + "/hooks/github" with httpx.post, then answer = server.',
        )
    looked = f"what your server recorded: {len(exchanges)} request(s)"
    mine = [e for e in exchanges if e.headers.get("user-agent", "").startswith("python-httpx")]
    if not mine:
        return (
            False,
            Hint(
                "your server has not received a request from httpx yet.",
                """httpx.post(server.url + "/hooks/github", content=b'{"zen": "hi"}', """
                """headers={"Content-Type": "application/json"})""",
            ),
            looked,
        )
    last = mine[-1]
    looked += f"; the last from httpx: {last}"
    if last.method != "POST":
        return (
            False,
            Hint(
                f"your last request was a {last.method}; a webhook is a POST.",
                "Use httpx.post, not httpx.get.",
            ),
            looked,
        )
    if not last.body:
        return (
            False,
            Hint(
                "your POST had an empty body; a delivery carries the event as JSON.",
                """Pass content=b'{"zen": "hi"}' (bytes) or json={...}.""",
            ),
            looked,
        )
    if last.status != 202:
        return (
            False,
            Hint(
                f"your server answered {last.status or 'nothing'} to it, not 202.",
                "Post to a path your route serves, e.g. /hooks/github.",
            ),
            looked,
        )
    return (
        True,
        "your POST arrived with its headers and body, and your receiver answered 202.",
        looked,
    )


def _curl(answer: Any) -> Verdict:
    exchanges = _exchanges_of(answer)
    if exchanges is None:
        return False, Hint(
            "answer with your server: answer = server, after the !curl line.",
            """body = '{"zen": "hi"}' then !curl -i -X POST """
            """{server.url}/hooks/github -d '{body}' and answer = server""",
        )
    looked = f"what your server recorded: {len(exchanges)} request(s)"
    mine = [e for e in exchanges if e.headers.get("user-agent", "").startswith("curl/")]
    if not mine:
        return (
            False,
            Hint(
                "your server has not received a request from curl yet.",
                "In a code cell, a line that starts with ! runs in a terminal, and "
                'IPython fills in {python expressions}: body = \'{"zen": "hi"}\' '
                "and then !curl -i -X POST {server.url}/hooks/github -d '{body}'. "
                "(JSON typed into the ! line itself would confuse IPython's braces, "
                "and curl would get {server.url} unfilled.)",
            ),
            looked,
        )
    last = mine[-1]
    looked += f"; the last from curl: {last}"
    if last.method != "POST" or not last.body:
        return (
            False,
            Hint(
                "curl sent no body: without -d it makes a GET.",
                "Add -d '{body}' with body a JSON string (curl then POSTs it).",
            ),
            looked,
        )
    if last.status != 202:
        return (
            False,
            Hint(
                f"your server answered {last.status or 'nothing'} to curl.",
                "Post to /hooks/github, the path your route serves.",
            ),
            looked,
        )
    return (
        True,
        (
            "curl's POST reached your receiver and got 202; `-i` showed you the answer's "
            "status line and headers."
        ),
        looked,
    )


EXERCISES = (
    Exercise(
        "01-polling-cost",
        "A poller asks every 30 s for an 8-hour day with 12 pushes. Requests each way?",
        _polling_cost,
        'answer = {"polling": 8 * 60 * 60 // 30, "webhooks": 12}',
    ),
    Exercise(
        "01-own-receiver",
        "Write a FastAPI app whose POST /hooks/{source} reads the raw body and answers 202.",
        _own_receiver,
        "from fastapi import FastAPI, Request, Response\n\n"
        "app = FastAPI()\n"
        "received = []  # what arrived: (source, event, number of bytes)\n\n"
        '@app.post("/hooks/{source}")\n'
        "async def hook(source: str, request: Request) -> Response:\n"
        "    body = await request.body()  # the raw bytes, exactly as sent\n"
        '    event = request.headers.get("x-github-event", "-")\n'
        "    received.append((source, event, len(body)))\n"
        "    return Response(status_code=202)  # stored; work happens later\n\n"
        "answer = app",
    ),
    Exercise(
        "01-post-by-hand",
        "Serve your app with labkit.serve and POST a JSON body to it with httpx.",
        _post_by_hand,
        'server = labkit.serve(app, name="mine")\n'
        'response = httpx.post(server.url + "/hooks/github", content=b\'{"zen": "Speak like a human."}\',\n'
        '                      headers={"Content-Type": "application/json", "X-GitHub-Event": "ping"})\n'
        "print(response.status_code, response.reason_phrase)\n"
        "print(server.exchanges[-1].as_http())  # what your server received\n"
        "answer = server",
    ),
    Exercise(
        "01-curl",
        "POST to your server with curl in a terminal line (!curl -i ...).",
        _curl,
        'body = \'{"zen": "Keep it logically awesome."}\'  # braces in a ! line are IPython\'s, so the JSON waits in a variable\n'
        '!curl -i -sS -X POST {server.url}/hooks/github -H "Content-Type: application/json" -H "X-GitHub-Event: ping" -d \'{body}\'\n'
        "answer = server",
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
        '@rx.on("github", "push")\n'
        "def collect_branch(delivery):\n"
        '    branches.append(delivery.payload["ref"].removeprefix("refs/heads/"))\n\n'
        'for ref in ("refs/heads/main", "refs/heads/feature/login"):\n'
        "    labkit.send(events.github.push(ref=ref), rx)\n"
        "rx.idle()\n"
        "answer = branches",
    ),
)
