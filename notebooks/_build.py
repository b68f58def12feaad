"""Write the lesson notebooks from the cells below, run them, and save them with their outputs.

    .venv/bin/python notebooks/_build.py          # every lesson
    .venv/bin/python notebooks/_build.py 02       # only lessons whose file starts with 02

The committed .ipynb files are the lessons; this script keeps their cells in one readable place
and makes every rebuild produce the same cell ids and metadata. Exercise answers and solutions
come from ``labkit.exercises``, so a notebook and its checks never disagree.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.exercises import EXERCISES

HERE = Path(__file__).resolve().parent
LESSONS = [
    ("00-start-here.ipynb", "00 Start here"),
    ("01-webhooks-101.ipynb", "01 Webhooks 101"),
    ("02-github-events.ipynb", "02 GitHub events"),
    ("03-dockerhub-registry-and-alerts.ipynb", "03 Docker Hub, registry and alerts"),
    ("04-services-with-compose.ipynb", "04 Services with Compose"),
    ("05-swarm-and-beyond.ipynb", "05 Swarm and beyond"),
    ("06-push-build-deploy-monitor.ipynb", "06 Push, build, deploy, monitor"),
    ("07-when-things-go-wrong.ipynb", "07 When things go wrong"),
]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
IGNORE_OUTPUT = "nbval-ignore-output"

Cell = tuple[str, str, tuple[str, ...]]


def md(text: str) -> Cell:
    return ("markdown", text.strip("\n"), ())


def code(source: str, *tags: str) -> Cell:
    return ("code", source.strip("\n"), tags)


def nav(filename: str) -> Cell:
    names = [f for f, _ in LESSONS]
    i = names.index(filename)
    parts = []
    if i > 0:
        parts.append(f"[← {LESSONS[i - 1][1]}]({LESSONS[i - 1][0]})")
    parts.append("[Contents](00-start-here.ipynb)")
    if i + 1 < len(LESSONS):
        parts.append(f"[{LESSONS[i + 1][1]} →]({LESSONS[i + 1][0]})")
    return md(" | ".join(parts))


def exercise(number: int, exercise_id: str, title: str, task: str, why: str) -> list[Cell]:
    """Task, answer cell (holding a working answer), check cell, and a solution to reveal."""
    solution = EXERCISES[exercise_id].solution
    return [
        md(f"### Exercise {number}: {title}\n\n{task.strip()}"),
        code(solution, "exercise-answer"),
        code(f'labkit.exercises.check("{exercise_id}", answer)'),
        md(f"<details><summary>Show a solution</summary>\n\n```python\n{solution}\n```\n\n"
           f"{why.strip()}\n\n</details>"),
    ]


EXERCISES_INTRO = md("""
## Exercises

Each exercise has a task, an answer cell and a check cell. The answer cells already hold one
working answer, so the whole lesson runs from top to bottom. To practise, replace the answer
cell with `answer = ...`, write your own, and run the check: it says **PASS**, or **NOT YET**
with a hint about what is missing. Each solution can be revealed under the check, or with
`labkit.exercises.solution("<exercise id>")`.
""")


# --- 00 Start here ------------------------------------------------------------------------------

def lesson_00() -> list[Cell]:
    name = "00-start-here.ipynb"
    return [
        md("# Webhooks and services in Docker: start here"),
        nav(name),
        md("""
## Overview

This lab kit teaches **webhooks**: the HTTP requests one system sends to another the moment
something happens there, such as a `git push`, a new image in a registry or a failing health
check. You will run a real webhook receiver inside this notebook, send it deliveries shaped
exactly like the ones GitHub, Docker Hub, a container registry and Alertmanager send, and see
what a careful receiver does with each of them.

Webhooks are how the **services** of a containerised system tell each other what happened: a
code host tells the build server, the registry tells the deployer, the monitor tells the person
on call. A service here means a program with one job that others reach over the network (a web
app, a database, a registry), usually running in its own container.

**In this notebook** you will see the lesson map, learn how to run cells, and check that this
machine is ready.

**Time needed:** about 10 minutes.
"""),
        md("""
## Prerequisites

- JupyterLab open on this notebook. From the kit's folder, `./dev lab` starts it.
- Some Python: variables, functions, lists and dicts. No webhook or Docker experience is needed.
"""),
        md("""
## The lesson map

Every lesson builds on the one before it:

```mermaid
flowchart LR
    L00["00 Start here<br/>preflight check"] --> L01["01 Webhooks 101<br/>receiver, first delivery, handlers"]
    L01 --> L02["02 GitHub events<br/>push, ping, pull_request, signatures"]
    L02 --> L03["03 Docker Hub, registry, alerts<br/>tokens, timestamps, key rotation"]
    L03 --> L04["04 Services with Compose<br/>microservices, health, scaling"]
    L04 --> L05["05 Swarm and beyond<br/>replicas, rolling updates, Kubernetes"]
    L05 --> L06["06 Push, build, deploy, monitor<br/>a real git push, live"]
    L06 --> L07["07 When things go wrong<br/>broken builds, rollbacks, crashes, retries"]
```

| Lesson | What you do | Time |
|---|---|---|
| [01 Webhooks 101](01-webhooks-101.ipynb) | compare polling with webhooks, start a receiver, send a first event, write a handler | 30 min |
| [02 GitHub events](02-github-events.ipynb) | read push, ping and pull_request deliveries, sign and verify them, watch forgeries and replays fail | 40 min |
| [03 Docker Hub, registry and alerts](03-dockerhub-registry-and-alerts.ipynb) | handle image and alert webhooks, timestamped signatures, key rotation, senders that cannot sign | 45 min |
| [04 Services with Compose](04-services-with-compose.ipynb) | start a shop of microservices and a database, wait for health, find services by name, scale one to three | 45 min |
| [05 Swarm and beyond](05-swarm-and-beyond.ipynb) | deploy the same shop on a single-node Swarm, update it one task at a time, read its Kubernetes manifests | 40 min |
| [06 Push, build, deploy, monitor](06-push-build-deploy-monitor.ipynb) | change an app, `git push`, and watch the webhooks build, ship, deploy and monitor it | 45 min |
| [07 When things go wrong](07-when-things-go-wrong.ipynb) | break the build, ship an unhealthy version, crash the app, take the receiver down, deliver twice | 30 min |

The lessons follow the chain that real deployments run on, one webhook after another:

```mermaid
flowchart LR
    push["git push"] -- "webhook (02)" --> build["build an image"]
    build --> registry["registry"]
    registry -- "webhook (03)" --> deploy["deploy the service"]
    deploy -- "services (04)" --> monitor["monitor"]
    monitor -- "alert webhook (03)" --> oncall["whoever is on call"]
```
"""),
        md("""
## How to run a notebook

- Click a cell and press **Shift+Enter**: the cell runs and the next one is selected.
- **Run ▸ Run All Cells** runs a whole lesson from the top.
- Output appears under the cell. `[*]` next to a cell means it is still running.
- Every cell is safe to run again. If things get tangled, use
  **Kernel ▸ Restart Kernel and Run All Cells** for a clean start.

Try it on the cell below:
"""),
        code("""
print("Hello from the kernel!")
6 * 7
"""),
        md("""
The `print` wrote a line, and the cell's last expression, `6 * 7`, was shown as the cell's
result. Lessons use both.

## Preflight check

`labkit.doctor()` checks everything the lessons need: Python, the packages, Docker and Compose,
the runtime and a free port for JupyterLab. Each line says **OK**, or **FIX** followed by the one
thing to do. Its output differs from machine to machine, so it is the one cell whose output is
not compared when the lessons are tested.
"""),
        code("""
import labkit

labkit.doctor()
""", IGNORE_OUTPUT),
        md("""
## Which runtime, and why

Later lessons start real services. When a Docker engine answers, they run as containers; when
none does (a locked-down laptop, a hosted Jupyter), the kit uses its **local runtime**, which
runs the same small apps as ordinary processes. The local runtime is a stand-in for learning,
not Docker, and the lessons that start services say plainly which one they are on. The
`runtime` line of the check above shows the choice and the reason.

You can force the choice with the `LABKIT_RUNTIME` environment variable (`docker` or `local`):
"""),
        code("""
import os

os.environ["LABKIT_RUNTIME"] = "local"
print(labkit.choose_runtime())
del os.environ["LABKIT_RUNTIME"]
"""),
        md("""
Lessons 01 to 03 need neither: their webhook receiver runs inside this notebook's kernel.

## A first delivery

Here is the whole idea in three lines: start a receiver, send it a GitHub `ping`, and look at
the answer. Lesson 01 takes this apart step by step.
"""),
        code("""
with labkit.Receiver(name="start-here") as rx:
    outcome = labkit.send(labkit.events.github.ping(), rx)
outcome
"""),
        md("""
`HTTP 202` means the receiver accepted the delivery. The kit can build realistic deliveries
from six kinds of senders:
"""),
        code("""
sorted({kind.split(".")[0] for kind in labkit.events.CATALOG})
"""),
        EXERCISES_INTRO,
        *exercise(1, "00-lesson-map", "find your way",
                  "Which lesson teaches you to verify a webhook signature? Look at the lesson "
                  "map and set `answer` to its number.",
                  "The map lists signatures under lesson 02, *GitHub events*."),
        md("""
## Summary and what's next

- A webhook is an HTTP request a system sends the moment something happens, so nobody has to
  keep asking.
- The lessons run a receiver inside the kernel and send it realistic deliveries; no Docker is
  needed until the later, service-heavy lessons.
- `labkit.doctor()` is the preflight check; run it again whenever something seems off.

**Next:** [01 Webhooks 101](01-webhooks-101.ipynb) starts a receiver and sends it a first event.
"""),
        nav(name),
    ]


# --- 01 Webhooks 101 ----------------------------------------------------------------------------

def lesson_01() -> list[Cell]:
    name = "01-webhooks-101.ipynb"
    return [
        md("# 01 · Webhooks 101: your first receiver"),
        nav(name),
        md("""
## Overview

You will learn:

- why webhooks replace polling;
- how to run a webhook receiver inside this notebook's kernel;
- what a delivery is made of: an HTTP `POST` with headers and a JSON body;
- what the receiver's status codes tell the sender;
- how a handler reacts to an event.

**Time needed:** about 30 minutes.

## Prerequisites

- [00 Start here](00-start-here.ipynb), with the preflight check passing. Docker is not needed.
- Python functions, lists and dicts.

The first cell loads the kit. `deterministic(seed=1)` makes every delivery id and timestamp the
same on each run, so what you see matches what this page shows.
"""),
        code("""
import labkit
from labkit import events

events.deterministic(seed=1)
"""),
        md("""
## 1. Polling, or being told

A build server that wants to know about new commits can **poll**: ask the code host "anything
new?" over and over. Most answers are "no", and a change waits until the next question.
With a **webhook** the code host makes one request, to a URL you gave it, at the moment
something happens.

```mermaid
sequenceDiagram
    participant B as Build server
    participant G as Code host
    Note over B,G: Polling
    loop every 30 seconds
        B->>G: anything new?
        G-->>B: no
    end
    B->>G: anything new?
    G-->>B: yes, a push
    Note over B,G: Webhook
    G->>B: POST /hooks/github (a push just happened)
    B-->>G: 202 Accepted
```

Count the requests for one hour with 3 pushes:
"""),
        code("""
seconds, interval, pushes = 60 * 60, 30, 3
polls = seconds // interval
print(f"polling : {polls} requests, {polls - pushes} of them answered 'nothing new'")
print(f"webhooks: {pushes} requests, one per push, sent when it happens")
print(f"polling hears of a push {interval // 2} s late on average; a webhook at once")
"""),
        md("""
The price of webhooks: the sender must be able to reach your receiver, and your receiver must
be ready for whatever arrives. The rest of the lessons are about doing that well.

## 2. A receiver in the kernel

A webhook **receiver** is a small web server with one URL per sender. This one runs in a
background thread of the notebook's kernel, so the notebook stays usable while it listens.
`name=` identifies it: running the cell again replaces the old receiver instead of starting a
second one.
"""),
        code("""
rx = labkit.Receiver(name="lesson01").start()
rx
"""),
        md("""
Each kind of sender has its own URL on the receiver (its **endpoint**). On GitHub you would
paste this into the repository's *Settings ▸ Webhooks ▸ Payload URL*:
"""),
        code("""
rx.hook_url("github")
"""),
        md("""
`127.0.0.1` is only reachable from this machine, so GitHub itself cannot post here. Instead,
`labkit` plays GitHub: it builds the same requests GitHub sends and posts them to the receiver.

## 3. Watch deliveries arrive

The **inspector** shows what the receiver has seen, live: a table of deliveries, a source
filter, one delivery in detail (headers and body), and a **Replay** button. Keep it in view
while you run the next cells.
"""),
        code("""
insp = labkit.inspect(rx)
insp
"""),
        md("""
## 4. Send a first event

When you add a webhook on GitHub, it first sends a `ping`: a hello that proves the URL works.
`events.github.ping()` builds one, byte for byte as GitHub would; `labkit.send` posts it.
"""),
        code("""
ping = events.github.ping()
labkit.send(ping, rx)
"""),
        md("""
A new row appeared in the inspector. The receiver answered `202 Accepted`: it stored the
delivery and will process it.

## 5. What a delivery is made of: headers

A delivery is one HTTP `POST`. Its **headers** say what it is before anyone reads the body.
`rx.wait_for(1)` waits until one delivery has arrived and returns it as the receiver logged it:
"""),
        code("""
first = rx.wait_for(1)[0]
for header in ("content-type", "user-agent", "x-github-event", "x-github-delivery"):
    print(f"{header:18} {first.headers[header]}")
"""),
        md("""
- `content-type`: the body is JSON.
- `user-agent`: GitHub's delivery service.
- `x-github-event`: which event this is; a receiver routes on it.
- `x-github-delivery`: a unique id for this delivery. A sender that tries again uses the same
  id, which lets the receiver notice repeats.

## 6. ... and a body

The **body** is the event itself, as JSON. `first.body` holds the exact bytes that arrived;
`first.payload` is the same data parsed into Python. Lesson 02 shows why both matter.
"""),
        code("""
print(len(first.body), "bytes; top-level keys:", sorted(first.payload))
print("zen:", first.payload["zen"])
"""),
        md("""
The inspector's detail view shows the same headers and the body, pretty-printed.

## 7. Status codes: the receiver's answer

The sender only learns what the receiver made of a delivery from the **status code**:

| Code | Meaning here | What the sender should do |
|---|---|---|
| `202 Accepted` | stored; handlers will run | nothing more |
| `200 OK` + `duplicate` | this delivery id was seen before; handlers do not run again | nothing more |
| `400 Bad Request` | the request cannot be read (not JSON, a header missing) | fix the sender; retrying will not help |
| `401 Unauthorized` | the signature or token is wrong (lesson 02) | check the secret |
| `413 Content Too Large` | the body is over the size limit | send less |
| `5xx` | the receiver is broken right now | try again later |

A good receiver answers within a few seconds and does slow work afterwards; GitHub gives up
after 10 seconds. Send the same ping again, and then one whose body is not JSON:
"""),
        code("""
again = labkit.send(ping, rx)
broken = labkit.send(ping.with_body(b"this is not JSON"), rx)
print(again, again.response, sep="\\n")
print(broken, broken.response, sep="\\n")
"""),
        md("""
The repeat was answered `200` with status `duplicate`; the broken one `400`, with a reason
the sender's logs can show. Both are rows in the inspector too.

## 8. React to an event: a handler

A receiver that only stores deliveries is a logbook. A **handler** is a function the receiver
calls for each accepted delivery of a kind: this is where a build server would start a build.
`@rx.on("github", "push")` registers one. Handlers run in a worker thread after the `202` has
gone back, so a slow build never keeps the sender waiting.

Handlers do not `print` (their output would land in whichever cell runs at that moment). They
collect results in a list, which you read after `rx.idle()` has waited for them to finish.
"""),
        code("""
actions = []

@rx.on("github", "push")
def deploy_main(delivery):
    branch = delivery.payload["ref"].removeprefix("refs/heads/")
    actions.append(f"build and deploy {branch}" if branch == "main" else f"build {branch} only")
"""),
        code("""
labkit.send(events.github.push(ref="refs/heads/main"), rx)
labkit.send(events.github.push(ref="refs/heads/feature/login"), rx)
rx.idle()
actions
"""),
        md("""
A repeated delivery does not run the handler again: the same push sent three times adds one
action, not three.
"""),
        code("""
push = events.github.push()
statuses = [labkit.send(push, rx).status for _ in range(3)]
rx.idle()
print(statuses, "->", len(actions), "actions")
"""),
        md("""
And when a handler fails? The sender already has its `202`; the failure is recorded for you,
on the delivery, and the receiver carries on:
"""),
        code("""
@rx.on("github", "ping")
def greet(delivery):
    raise RuntimeError("this handler has a bug")

print(labkit.send(events.github.ping(), rx))
rx.idle()
print(rx.deliveries(1)[0].handled, "->", rx.deliveries(1)[0].handler_error)
"""),
        md("""
## 9. Filter and replay

In the inspector, click **github** to filter by source, pick a delivery in the **Delivery** list,
and press **Replay**: the receiver gets the same headers and body again and marks it
`duplicate`. The same from code, on the newest delivery:
"""),
        code("""
insp.source = "github"
insp.replay()
"""),
        code("""
print(insp.text())
"""),
        EXERCISES_INTRO,
        *exercise(1, "01-polling-cost", "the cost of polling", """
A poller asks a code host for news every **30 seconds** during an **8-hour** working day. That
day, the repository gets **12 pushes**. How many requests does polling make, and how many
webhook deliveries? Answer with `{"polling": ..., "webhooks": ...}`.
""", "Polling makes one request per interval whatever happens: 8 × 3600 / 30 = 960. Webhooks make "
     "one request per event: 12."),
        *exercise(2, "01-status-codes", "predict the status codes", """
Before running anything, predict the three status codes for: a new `pull_request` delivery;
the very same delivery sent again; and a `push` whose body is cut off after 100 bytes
(`push.with_body(push.body[:100])`). Then send them and collect the codes in a list.
""", "New deliveries get `202`; a repeated delivery id gets `200` with `duplicate`; a body that "
     "is not complete JSON cannot be read, so `400`."),
        *exercise(3, "01-handler", "a handler of your own", """
Register a handler for GitHub `push` deliveries that appends the branch name, without
`refs/heads/`, to a list `branches`. Send one push to `refs/heads/main` and one to
`refs/heads/feature/login`, wait for the handlers, and set `answer = branches`.
""", "The branch is in the payload's `ref`; `str.removeprefix` strips `refs/heads/`. Creating the "
     "list in the same cell as the handler means a re-run starts from an empty list."),
        md("""
## Clean up

Stopping the inspector and the receiver frees the port. Running the lesson again starts them
afresh.
"""),
        code("""
insp.stop()
rx.stop()
rx
"""),
        md("""
## Summary and what's next

- Polling asks again and again; a webhook is one `POST` to your URL when something happens.
- A delivery is headers (what it is, its id) plus a body (the event, as JSON).
- The receiver's status code is the sender's only feedback: `202` accepted, `200` duplicate,
  `4xx` fix the request, `5xx` try later.
- Handlers react after the receiver has answered; a delivery id seen before does not run them
  again.

Anyone who finds the URL could post here, though. **Next:**
[02 GitHub events](02-github-events.ipynb) shows how GitHub signs its deliveries and how a
receiver checks them.
"""),
        nav(name),
    ]


# --- 02 GitHub events ---------------------------------------------------------------------------

def lesson_02() -> list[Cell]:
    name = "02-github-events.ipynb"
    return [
        md("# 02 · GitHub events: deliveries, signatures and replays"),
        nav(name),
        md("""
## Overview

You will learn:

- what GitHub's `ping`, `push` and `pull_request` deliveries contain;
- how GitHub signs a delivery (`X-Hub-Signature-256`), by hand with `hmac` and with `labkit`;
- what a signature stops (a changed body, a wrong secret) and what it does not (a replay);
- why a receiver must verify the raw bytes it received, not re-encoded JSON;
- how redelivery works, and why handlers still run only once.

**Time needed:** about 40 minutes.

## Prerequisites

- [01 Webhooks 101](01-webhooks-101.ipynb): receivers, deliveries, status codes, handlers.
- The idea of a hash (a short fingerprint of some data) helps; the lesson explains the rest.
"""),
        code("""
import hashlib
import hmac
import json

import labkit
from labkit import events

events.deterministic(seed=2)
"""),
        md("""
## 1. A receiver with a secret

When you add a webhook on GitHub you can set a **secret**: a string only GitHub and your
receiver know. GitHub then signs every delivery with it, and the receiver refuses anything
whose signature does not match.
"""),
        code("""
SECRET = "lab-secret-2"  # a real secret is long, random, and never written in a notebook
rx = labkit.Receiver(secret=SECRET, name="lesson02").start()
insp = labkit.inspect(rx)
insp
"""),
        md("""
## 2. Three events, as GitHub sends them

```mermaid
sequenceDiagram
    participant You
    participant G as GitHub
    participant R as Receiver
    You->>G: add a webhook
    G->>R: ping
    You->>G: git push
    G->>R: push
    You->>G: open a pull request
    G->>R: pull_request (action: opened)
```
"""),
        code("""
ping = events.github.ping()
push = events.github.push(commits=2)
pr = events.github.pull_request("opened")
for event in (ping, push, pr):
    print(labkit.send(event, rx, secret=SECRET))
"""),
        code("""
for d in rx.wait_for(3):
    print(f"#{d.seq} {d.event:13} verified={d.verified}  id={d.id}")
"""),
        md("""
Each delivery was signed with `SECRET` (that is what `secret=` does), so the receiver marked it
**verified**. A `push` says which branch moved (`ref`), from which commit to which (`before`,
`after`), the new commits, and who pushed:
"""),
        code("""
p = push.payload
print("ref:    ", p["ref"])
print("before: ", p["before"][:12], " after:", p["after"][:12])
print("commits:", [c["message"] for c in p["commits"]])
print("pusher: ", p["pusher"]["name"], " repo:", p["repository"]["full_name"])
"""),
        md("""
`before` is forty zeros when the push created a new branch, and `after` is forty zeros when it
deleted one. A `pull_request` delivery carries an `action` (`opened`, `synchronize` for new
commits, `closed`) and the pull request itself:
"""),
        code("""
pull = pr.payload["pull_request"]
print(pr.payload["action"], f"#{pr.payload['number']}", repr(pull["title"]))
print(pull["head"]["ref"], "->", pull["base"]["ref"], "| merged:", pull["merged"])
"""),
        md("""
A typical pipeline tests on `pull_request` (`opened`, `synchronize`) and deploys on a `push`
to `main`.

## 3. The signature, by hand

The signature is an **HMAC**: a hash of the body mixed with the secret. Anyone can hash a body,
but only someone holding the secret can produce this value, and changing a single byte of the
body changes it completely. GitHub sends it as `sha256=` followed by the hex digest:
"""),
        code("""
body = push.body  # the exact bytes that went over the wire
by_hand = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
by_hand
"""),
        md("The receiver logged the header GitHub (here: `labkit`) sent; it matches, and so does "
           "`labkit`'s own function:"),
        code("""
received = rx.wait_for(3)[1]  # the push, as the receiver logged it
print(received.headers["x-hub-signature-256"] == by_hand)
print(labkit.signing.github_signature_256(body, SECRET) == by_hand)
"""),
        md("""
To **verify**, a receiver computes the same HMAC over the bytes it received and compares the two
with `hmac.compare_digest`, which takes the same time whether the first or the last character
differs, so the comparison leaks nothing. `labkit.signing.verify_github` does exactly that and
returns the scheme that matched, or raises `SignatureError` saying what is wrong:
"""),
        code("""
labkit.signing.verify_github(received.body, SECRET, received.headers["x-hub-signature-256"])
"""),
        md("""
## 4. What a signature stops, and what it does not

**A changed body.** Someone between GitHub and you rewrites the branch in a signed delivery:
"""),
        code("""
signed = push.signed(SECRET)  # the push with its signature headers
tampered = signed.with_body(signed.body.replace(b"refs/heads/main", b"refs/heads/prod"))
outcome = labkit.send(tampered, rx)  # no secret= here: it goes out exactly as it is
print(outcome)
print(outcome.response)
"""),
        md("**A wrong secret, or none at all:**"),
        code("""
for secret in ("a-guess", None):
    outcome = labkit.send(events.github.push(), rx, secret=secret)
    print(outcome.status, outcome.detail)
"""),
        md("""
**A replay.** Someone who captured a genuine delivery sends it again. Its signature is valid;
what saves the receiver is the delivery id it has seen before:
"""),
        code("""
replayed = labkit.send(signed, rx)
print(replayed.status, replayed.response)
"""),
        md("""
But GitHub's signature covers only the body: not the delivery id, and not the time. Give the
captured delivery a made-up id and it is accepted as new:
"""),
        code("""
renamed = signed.with_headers({"X-GitHub-Delivery": "00000000-0000-4000-8000-000000000000"})
print(labkit.send(renamed, rx).status)
"""),
        md("""
So with GitHub webhooks, also make handlers **idempotent**: running twice for the same commit
(the payload's `after`) should do no harm, for example by skipping a build that already exists.
Always use HTTPS, so deliveries cannot be captured in the first place. Lesson 03 shows a scheme
that signs the id and a timestamp as well.

## 5. Verify the raw bytes, not re-encoded JSON

A common bug: a web framework parses the JSON body, and the code that checks the signature
turns the parsed data back into JSON. The data is the same; the bytes are not:
"""),
        code("""
reencoded = json.dumps(received.payload).encode()
print(received.body[:60])
print(reencoded[:60])
print(len(received.body), "bytes received,", len(reencoded), "bytes re-encoded")
"""),
        md("Spaces after `:` and `,` (and key order, and how non-ASCII text is escaped) are "
           "enough to break the signature:"),
        code("""
sent_signature = received.headers["x-hub-signature-256"]
print(labkit.signing.github_signature_256(reencoded, SECRET) == sent_signature)
print(labkit.send(signed.with_body(reencoded), rx).status)
"""),
        md("""
The rule: verify the body **exactly as it arrived**, before parsing it. The `labkit` receiver
checks the signature over the raw bytes first and only then reads the JSON. The same goes for
proxies and forwarders between GitHub and your receiver: they must pass the body through
untouched.

## 6. Redelivery

GitHub does not retry a failed delivery by itself. Its *Recent Deliveries* page has a
**Redeliver** button, which sends the same delivery, with the same id, again.
`labkit.redeliver(delivery_id)` does the same from the log of what `labkit.send` sent, and the
inspector's **Replay** does it from what the receiver logged. Either way, the receiver
recognises the id, and handlers run once:
"""),
        code("""
built = []

@rx.on("github", "push")
def build(delivery):
    built.append(delivery.payload["after"][:7])
"""),
        code("""
fix = events.github.push(commits=["Fix the health check"])
print(labkit.send(fix, rx, secret=SECRET))
print(labkit.redeliver(fix.delivery_id))
rx.idle()
built
"""),
        md("The inspector can replay the newest delivery too; here is everything this receiver "
           "has seen so far:"),
        code("""
print(insp.replay())
print(insp.text(columns=("seq", "event", "verified", "status", "reason")))
"""),
        EXERCISES_INTRO,
        *exercise(1, "02-signature", "a signature by hand", """
GitHub's documentation gives a test case: with the secret `It's a Secret to Everybody`, the body
`Hello, World!` has a known `X-Hub-Signature-256`. Compute it with `hmac` and `hashlib` and set
`answer` to the full header value.
""", "HMAC-SHA256 with the secret as key, over the exact body bytes, written as `sha256=` plus "
     "the lowercase hex digest."),
        *exercise(2, "02-verify", "write a verifier", """
Write `verify(body, signature, secret)` that returns `True` only when `signature` is the correct
`sha256=...` value for `body` and `secret`, and `False` otherwise: for a changed body, a wrong
secret, a missing (`None`) or empty header. It must never raise, and it should compare in
constant time. Set `answer = verify`.
""", "Reject a missing or malformed header first, then compare the expected value with "
     "`hmac.compare_digest`, which does not reveal where two values differ."),
        *exercise(3, "02-redelivery", "redeliver, and count", """
Register a handler `count_runs` for pushes that records each run in a list `runs`. Send one new
signed push, then redeliver it twice with `labkit.redeliver`. Set `answer` to
`{"statuses": [...the three status codes...], "runs": len(runs)}`.
""", "The first delivery is accepted (`202`); both redeliveries carry the same id, so they are "
     "answered `200` as duplicates and the handler runs once."),
        md("## Clean up"),
        code("""
insp.stop()
rx.stop()
rx
"""),
        md("""
## Summary and what's next

- GitHub names the event in `X-GitHub-Event`, identifies the delivery in `X-GitHub-Delivery`,
  and signs the body in `X-Hub-Signature-256` (HMAC-SHA256 with the webhook's secret).
- Verify over the raw bytes, before parsing, with a constant-time comparison; answer `401` when
  it fails.
- A signature stops changed bodies and unknown senders. It does not stop a replay: dedupe on the
  delivery id, keep handlers idempotent, and use HTTPS.
- Redelivery resends the same id, so a deduping receiver runs its handlers once.

**Next:** [03 Docker Hub, registry and alerts](03-dockerhub-registry-and-alerts.ipynb): webhooks
from senders that cannot sign, and a signature scheme with timestamps and key rotation.
"""),
        nav(name),
    ]


# --- 03 Docker Hub, registry and alerts --------------------------------------------------------

def lesson_03() -> list[Cell]:
    name = "03-dockerhub-registry-and-alerts.ipynb"
    return [
        md("# 03 · Docker Hub, registry notifications and alerts"),
        nav(name),
        md("""
## Overview

You will learn:

- what Docker Hub sends after an image push, and how its callback reports back;
- how a private registry notifies you of every push;
- how Alertmanager turns a failing service into a webhook;
- how Standard Webhooks sign a timestamp and an id, and how to rotate a secret without downtime;
- how to protect a sender that cannot sign (a URL or bearer token), and what that leaves open.

**Time needed:** about 45 minutes.

## Prerequisites

- [01 Webhooks 101](01-webhooks-101.ipynb) and [02 GitHub events](02-github-events.ipynb),
  especially HMAC signatures.
"""),
        code("""
import base64
import hashlib
import hmac
import time

import labkit
from labkit import events

events.deterministic(seed=3)
"""),
        md("""
## The senders in this lesson

```mermaid
flowchart LR
    dev["docker push"] --> hub["Docker Hub"]
    hub -- "push webhook<br/>(token in the URL)" --> rx["your receiver"]
    rx -- "callback: success or failure" --> hub
    dev2["docker push"] --> reg["private registry"]
    reg -- "notifications<br/>(bearer token)" --> rx
    prom["Prometheus"] -- "firing rule" --> am["Alertmanager"]
    am -- "webhook_config<br/>(bearer token)" --> rx
    svc["a Standard Webhooks sender"] -- "signed id + time + body" --> rx
```

Each sender proves who it is in its own way, so the receiver gets one secret per source. The
Standard Webhooks entry holds two secrets; section 6 explains why.
"""),
        code("""
HUB_TOKEN = "hub-token-3f9a"  # lesson values: real ones are long and random
REGISTRY_TOKEN = "registry-token-7c21"
ALERT_TOKEN = "alert-token-5d80"
OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_2a9tMnCVsEvvG1Al+K0jg6XFIqhFgeOz0ncbtyIhe8w="
"""),
        code("""
rx = labkit.Receiver(name="lesson03", secrets={
    "dockerhub": HUB_TOKEN, "registry": REGISTRY_TOKEN,
    "alertmanager": ALERT_TOKEN, "standard": [NEW_SECRET, OLD_SECRET],
}).start()
insp = labkit.inspect(rx)
insp
"""),
        md("""
## 1. Docker Hub: the push webhook

After `docker push octo-org/hello-app:v1`, Docker Hub posts a small JSON document to every
webhook URL of the repository: which repository, which tag, who pushed. It sends no signature,
no event header and no delivery id. A handler here would pull the new image and restart the
service that runs it:
"""),
        code("""
deploys = []

@rx.on("dockerhub", "push")
def pull_and_restart(delivery):
    data = delivery.payload
    deploys.append(f'{data["repository"]["repo_name"]}:{data["push_data"]["tag"]}')
"""),
        code("""
hub_push = events.dockerhub.push("octo-org/hello-app", tag="v1")
print(labkit.send(hub_push, rx))  # rx.hook_url("dockerhub") carries ?token=HUB_TOKEN
print(dict(hub_push.headers), sorted(hub_push.payload))
rx.idle()
deploys
"""),
        md("""
## 2. Telling Docker Hub how it went: the callback

Each push carries a `callback_url`. When the pipeline is done, the receiver may post the result
there: a `state` (`success`, `failure` or `error`), a short `description`, a `context` and a
`target_url` with details, and Docker Hub marks the webhook chain as succeeded or failed.
(This API is legacy on Docker Hub, but the pattern, *report back to whoever triggered you*, is
everywhere.) The receiver here stands in for Docker Hub:
"""),
        code("""
callback = events.dockerhub.callback(
    "success", description="Deployed octo-org/hello-app:v1", context="lab pipeline",
    callback_url=hub_push.payload["callback_url"])
print(callback.body.decode())
labkit.send(callback, rx)
"""),
        md("""
## 3. Registry notifications

A private registry (the CNCF *distribution* registry, `registry:2`) can notify you of every
push, pull and delete. You list endpoints in its configuration; it can only add static headers,
so a bearer token is how it authenticates:

```yaml
notifications:
  endpoints:
    - name: lab
      url: http://receiver:8000/hooks/registry
      headers:
        Authorization: [Bearer registry-token-7c21]
      timeout: 5s
      threshold: 5
      backoff: 10s
```

One `docker push` sends several notifications: one per layer (a *blob*), one for the image
configuration, and one for the **manifest**, the only one that carries the tag. The registry
retries each one until it gets a `2xx` or `3xx` answer, and does not promise any order. A
deployer waits for the manifest:
"""),
        code("""
tagged = []

@rx.on("registry", "push")
def on_manifest(delivery):
    for item in delivery.payload["events"]:
        target = item["target"]
        if "manifest" in target["mediaType"] and target.get("tag"):
            tagged.append(f'{target["repository"]}:{target["tag"]}')
"""),
        code("""
for event in events.registry.image_push("hello-app", tag="v1", layers=2):
    target = event.payload["events"][0]["target"]
    outcome = labkit.send(event, rx, secret=REGISTRY_TOKEN)  # adds Authorization: Bearer ...
    print(outcome.status, target["mediaType"], target.get("tag", ""))
rx.idle()
tagged
"""),
        md("Without the token, the receiver refuses:"),
        code("""
labkit.send(events.registry.notification("push"), rx).status
"""),
        md("""
## 4. Alertmanager: alerts as webhooks

Prometheus checks your services against alert rules; Alertmanager groups the alerts that fire,
removes repeats and routes them. A `webhook_config` route posts them as JSON, with a bearer
token from its `http_config`:

```yaml
receivers:
  - name: lab
    webhook_configs:
      - url: http://receiver:8000/hooks/alertmanager
        http_config:
          authorization:
            credentials: alert-token-5d80
```

Each notification has a `status` (`firing` or `resolved`) and a list of `alerts`, each with
`labels` (what and where), `annotations` (text for people), and when it started and ended.
Alertmanager also sends `resolved` when the problem goes away, unless told not to.
"""),
        code("""
pages = []

@rx.on("alertmanager")
def page_on_call(delivery):
    for alert in delivery.payload["alerts"]:
        pages.append(f'{alert["status"]:8} {alert["labels"]["alertname"]}: '
                     f'{alert["annotations"]["summary"]}')
"""),
        code("""
firing = events.alertmanager.alert("firing", alertname="WebDown", service="web")
resolved = events.alertmanager.alert("resolved", alertname="WebDown", service="web")
for event in (firing, resolved):
    print(labkit.send(event, rx, secret=ALERT_TOKEN))
rx.idle()
print(*pages, sep="\\n")
print("endsAt while firing:", firing.payload["alerts"][0]["endsAt"])
"""),
        md("""
A firing alert has not ended yet, so its `endsAt` is the zero time `0001-01-01T00:00:00Z`.
Alertmanager retries when the receiver answers `5xx`, so a receiver should answer `5xx` only
when trying again could help.

## 5. Standard Webhooks: a signed id and a signed time

[Standard Webhooks](https://www.standardwebhooks.com/) is a shared specification many services
use. It fixes the gap lesson 02 found in GitHub's scheme by signing more than the body:

- `webhook-id`: the message id (the same on every retry, for deduping);
- `webhook-timestamp`: when this attempt was sent, in Unix seconds;
- `webhook-signature`: `v1,` plus the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`. The
  secret is written `whsec_` followed by its bytes in base64.
"""),
        code("""
msg = events.standard.message("image.pushed")
signed = msg.signed(NEW_SECRET)
for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
    print(f"{header:18} {signed.headers[header]}")
"""),
        md("""
The specification publishes a test message, which `labkit.signing` reproduces. Exercise 1 asks
you to compute it by hand.
"""),
        code("""
TEST_SECRET, TEST_ID = OLD_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek"
TEST_TIMESTAMP, TEST_BODY = 1614265330, b'{"test": 2432232314}'
labkit.signing.standard_sign(TEST_SECRET, TEST_ID, TEST_TIMESTAMP, TEST_BODY)
"""),
        md("""
Receivers refuse a timestamp more than 5 minutes from their clock. A captured message therefore
stops working after 5 minutes, and within those 5 minutes the id stops a second delivery.
`labkit.send(..., secret=...)` signs each attempt with the current time; here is a message
signed 10 minutes ago:
"""),
        code("""
ten_minutes_ago = int(time.time()) - 600
stale = events.standard.message("image.pushed").signed(NEW_SECRET, timestamp=ten_minutes_ago)
outcome = labkit.send(stale, rx)  # already signed: sent as it is
print(outcome.status, outcome.detail)
"""),
        md("A fresh message is accepted once, and, unlike in lesson 02, a new id does not help "
           "a replay, because the id is signed:"),
        code("""
fresh = events.standard.message("image.pushed").signed(NEW_SECRET, timestamp=int(time.time()))
renamed = fresh.with_headers({"webhook-id": "msg_a_new_id_to_dodge_dedupe"})
for event in (fresh, fresh, renamed):
    outcome = labkit.send(event, rx)
    print(outcome.status, outcome.detail)
"""),
        md("""
## 6. Rotating a secret without downtime

Secrets have to change: one leaked, someone left, or a policy says so. Changing both ends at the
same instant is impossible, so a rotation goes in steps:

```mermaid
flowchart LR
    a["1. receiver accepts<br/>old and new"] --> b["2. sender signs with<br/>new (or both)"]
    b --> c["3. receiver drops<br/>the old secret"]
```

The receiver above is in step 1: its `standard` entry holds both secrets. A sender in step 2 may
sign with both, putting two space-separated entries in `webhook-signature`, so receivers on
either secret accept it. A secret that was already retired fails:
"""),
        code("""
retired = "whsec_" + base64.b64encode(b"r" * 32).decode()
choices = {"old": OLD_SECRET, "new": NEW_SECRET,
           "both": [NEW_SECRET, OLD_SECRET], "retired": retired}
for label, secret in choices.items():
    outcome = labkit.send(events.standard.message("image.pushed"), rx, secret=secret)
    print(f"{label:8} -> {outcome.status}")
"""),
        md("""
## 7. Senders that cannot sign: tokens, and their limits

Docker Hub, the registry and Alertmanager cannot compute an HMAC. What they can do is send a
secret along: in the URL (`?token=...`, Docker Hub) or in a header (`Authorization: Bearer ...`,
registry and Alertmanager). The receiver compares it in constant time:
"""),
        code("""
print(labkit.send(events.dockerhub.push(tag="v3"), rx.url + "/hooks/dockerhub").status)  # no token
print(labkit.send(events.dockerhub.push(tag="v3"), rx).status)  # the receiver's URL, token included
"""),
        md("""
That keeps out anyone who does not know the token. It does **not** protect the body: the token
stays valid whatever the body says. Here a push is changed on the way and still accepted:
"""),
        code("""
genuine = events.dockerhub.push(tag="v4")
forged = genuine.with_body(genuine.body.replace(b'"v4"', b'"evil"'))
print(labkit.send(forged, rx).status, "- accepted, with a tag nobody pushed")
"""),
        md("""
Nor does it stop **replays**: a captured request carries its token and can be sent again. This
receiver dedupes Docker Hub pushes on a hash of the body (there is no delivery id), which stops
an exact copy, but changing any byte makes a "new" delivery, as above.

And the token **leaks** wherever the URL is written down. A URL token is part of every access
log line, proxy log and screenshot of the webhook settings:
"""),
        code("""
("token=" + HUB_TOKEN) in rx.hook_url("dockerhub")
"""),
        md("""
| A token (URL or bearer) | protects? |
|---|---|
| strangers who do not know it posting fake events | yes |
| a body changed on the way | **no**: only a signature over the body does |
| a captured request sent again | **no**: dedupe, timestamps (Standard Webhooks) |
| the secret staying secret | **weak**: URLs are logged; prefer a header, rotate tokens |

So: always HTTPS; a bearer header rather than a URL token where the sender allows it; long
random tokens, rotated; handlers that check what they are told (does tag `v4` exist in the
registry?) before acting; and a signing sender whenever there is a choice.
"""),
        EXERCISES_INTRO,
        *exercise(1, "03-standard-signature", "a Standard Webhooks signature by hand", """
Compute the `webhook-signature` entry for the specification's test message (`TEST_SECRET`,
`TEST_ID`, `TEST_TIMESTAMP` and `TEST_BODY` above) with `base64`, `hmac` and `hashlib`, without
`labkit.signing`. Set `answer` to the `v1,...` string.
""", "The key is the base64 after `whsec_`, decoded. The signed content is the id, a dot, the "
     "timestamp, a dot, then the body bytes. The digest is written in base64 after `v1,`."),
        *exercise(2, "03-rotation", "sign during a rotation", """
A sender is in step 2 of a rotation from `OLD_SECRET` to `NEW_SECRET`. Build the
`webhook-signature` header value it sends for the test message (`TEST_ID`, `TEST_TIMESTAMP`,
`TEST_BODY`), signed with both secrets. You may use `labkit.signing`.
""", "One `v1,` entry per secret, separated by a space. A receiver accepts the message if any "
     "entry matches any secret it holds."),
        *exercise(3, "03-token-limits", "what a token protects", """
A Docker Hub webhook URL carries a secret token. Which of these does the token protect against?
Answer with a set of letters.

- **a** a stranger who does not know the URL posting fake pushes
- **b** a body changed on its way to the receiver
- **c** a captured request sent again later
- **d** the token being read from a proxy's access log
""", "Only **a**: a token proves the sender knows it. It covers no bytes of the body, has no "
     "timestamp, and is written down wherever the URL is."),
        md("## Clean up"),
        code("""
insp.stop()
rx.stop()
rx
"""),
        md("""
## Summary and what's next

- Docker Hub posts `push_data` and `repository` after a push, with no signature; its callback
  reports the pipeline's result back.
- A registry posts one notification per blob and one per manifest; the manifest push carries the
  tag, and order is not guaranteed.
- Alertmanager posts `firing` and `resolved` groups of alerts; a firing alert has the zero
  `endsAt`.
- Standard Webhooks sign id, timestamp and body: stale or renamed copies fail, and two secrets
  at once make rotation painless.
- A URL or bearer token only keeps out those who do not know it: no body integrity, no replay
  protection, and URLs leak into logs.

You have now met every sender in the chain from `git push` to an alert. Go back to the
[contents](00-start-here.ipynb) to revisit a lesson.
"""),
        nav(name),
    ]


def lesson_04() -> list[Cell]:
    name = "04-services-with-compose.ipynb"
    return [
        md("# 04 · Services with Compose: a shop of microservices"),
        nav(name),
        md("""
## Overview

You will learn:

- what a Compose file declares, starting from the classic web + database example, and what a
  careful one adds: healthchecks, readiness, networks, secrets, loopback-only ports;
- how to start a stack and wait until every service is **healthy**, not just started;
- how services find each other **by name**, and why only one of them is reachable from outside;
- how to **scale** a service to three replicas and watch requests spread over them;
- how to read a stack's logs and take it down cleanly.

**Time needed:** about 40 minutes (plus about 3 minutes the first time the Docker images are
built).

## Prerequisites

- [00 Start here](00-start-here.ipynb) with the preflight check passing. Lessons 01 to 03 are
  not needed.
- Docker is **optional**. With a Docker engine and Compose (`docker compose` or
  `docker-compose`; the kit finds either), the shop runs as real containers. Nothing is pulled
  from a registry: `labkit images build` makes every image on this machine from Debian packages
  and Python wheels (a few minutes the first time, seconds after that), or `labkit images load
  FILE` restores them from a workshop bundle; the cell below builds whatever is missing.
- Without Docker, the same shop runs as **local processes**: a stand-in for learning, not
  Docker. The lesson says at each step what Docker does that the stand-in does not.

The cell below says which runtime this notebook uses and why, so its output differs from
machine to machine:
"""),
        code("""
import collections

import httpx
import labkit

print("runtime:", labkit.choose_runtime())
stack = labkit.stack("services")
if isinstance(stack, labkit.Stack):  # Docker: the lab images, made on this machine, never pulled
    labkit.images.build(progress=None)
stack
""", IGNORE_OUTPUT),
        md("""
`labkit.stack("services")` gives the kit's handle on the folder `compose/services/`: a
`Stack` on Docker, which runs Compose, or a `LocalStack` on the local runtime. Both read the same
Compose file and answer the same calls (`up`, `status`, `url`, `scale`, `logs`, `down`), so every
other cell of this lesson is the same on both.

## 1. The classic example: a web app and its database

Most Compose tutorials start with a file like this one:

```yaml
services:
  db:
    image: mysql:5.7
    environment:
      MYSQL_ROOT_PASSWORD: example
  web:
    image: my-web-app:latest
    ports:
      - "8080:80"
    depends_on:
      - db
```

It declares two **services**. Each becomes one or more containers made from an `image`;
Compose puts them on a network of their own, where `web` reaches the database at the host
name `db`. `ports` publishes the web app's port 80 on port 8080 of the machine, and
`depends_on` starts `db` before `web`.

It works on a laptop, and it has four problems that bite later:

| line | the problem | what this lesson's stack does instead |
|---|---|---|
| `"8080:80"` | publishes on **every** interface of the machine: anyone on the Wi-Fi can connect | `"127.0.0.1::8000"`: this machine only, on a port Docker picks |
| `depends_on: [db]` | waits for the database **container** to start, not for the database to accept connections | `condition: service_healthy` and a `healthcheck` on every service |
| `MYSQL_ROOT_PASSWORD: example` | the password sits in the file, in `docker inspect` and in every process listing | a Compose **secret**: a file mounted at `/run/secrets/db_password` |
| one flat network | every container can reach every other, and the internet | an `internal` backend network; only the gateway also joins a front one |

## 2. The shop: one gateway, three services, one database

The stack in `compose/services/` is a small shop split into **microservices**, each a small
FastAPI app in its own container:

```mermaid
flowchart LR
    you["this notebook"] -- "127.0.0.1:PORT" --> gateway
    subgraph frontend["frontend network"]
        gateway
    end
    subgraph backend["backend network (internal)"]
        gateway --> users
        gateway --> products
        gateway --> orders
        orders --> users
        orders --> products
        orders --> db[("db<br/>MariaDB")]
    end
```

Here is its whole Compose file:
"""),
        code("""
print(stack.file.read_text())
"""),
        md("""
Read it from the top:

- **`x-app: &app`** is a block of settings shared by the four app services: the same image
  (built from `./shop`, `FROM labkit/python-app`), a non-root `user`, a read-only file system,
  no Linux capabilities, and a `healthcheck` that asks the app's `/healthz`. `<<: *app` merges
  it into each service, which then only says which app to run (`command:`).
- **`healthcheck`** tells Docker how to ask a container "are you ready?"; every service has one.
- **`depends_on` with `condition: service_healthy`** makes Compose wait until `db`, `users`
  and `products` are *healthy* before it starts `orders`, and so on up to the gateway.
- **`networks`**: `backend` is `internal`, with no way out and nothing published; only the
  gateway is also on `frontend`, where its one port is published on `127.0.0.1`.
- **`secrets`**: the database password is a file (made at random on the first `up`, ignored by
  git). MariaDB and the orders service read it from `/run/secrets/db_password`.
- **`volumes`**: the database keeps its data in the named volume `dbdata`.

### The same file without Docker

On the local runtime, `LocalStack` reads this file and does what it can with processes on this
machine. What Docker does, and what the stand-in does instead:

| compose.yaml says | Docker (Compose) | the local stand-in |
|---|---|---|
| `build: ./shop`, `command: ["users:app"]` | builds one image; runs a container per replica, each with its own IP address | runs `uvicorn users:app` from `compose/services/shop/`: one process per replica, each on a free port of `127.0.0.1` |
| `db`: MariaDB, its data in the volume `dbdata` | a MariaDB container | no database server: the orders service writes to a **SQLite file** (`DB_URL=sqlite:///...`); `down()` deletes it as Docker deletes the volume |
| names such as `http://users:8000` | Docker's DNS answers each name with its replicas' addresses | a table of names and `127.0.0.1:PORT` addresses in a file every process reads (`SERVICE_ADDRESSES`), rewritten when a service scales |
| `healthcheck`, `depends_on` with `service_healthy` | the engine runs the check inside the container | the kernel asks each process's `/healthz`; the same start order, the same condition |
| `networks`, `ports` | only the gateway can be reached from this machine | every process listens on `127.0.0.1`, so nothing is hidden; `url()` still answers only for the gateway |
| `user`, `read_only`, `cap_drop`, `secrets` | enforced by the engine | not applied: the processes run as you |
| the hostname in each answer | the container's short id | `<service>-<replica>`, e.g. `products-2` |

## 3. Up, and wait until healthy

`stack.up()` starts every service in `depends_on` order and waits until each one reports
**healthy**. On Docker it runs `compose up` and reads each container's state through the Docker
API, by the labels Compose puts on them; on the local runtime it starts the processes and probes
them itself. Running the cell again is safe: on Docker the project name is fixed
(`labkit-services`), and on the local runtime the processes belong to the stack's name in this
kernel, so either way `up` keeps what is already right instead of starting a second shop.

The table lists the containers on Docker (with `db`), and the processes on the local runtime
(each with the address it listens on, followed by the file that stands in for `db`), so its
output differs by runtime:
"""),
        code("""
stack.up()
print(stack.status())
""", IGNORE_OUTPUT),
        md("""
Every service is `running` and `healthy`. On Docker only the gateway has a port, on
`127.0.0.1`. `stack.status()` is a snapshot. For a view that keeps itself current while you
work (it reads the state every second), display a `StackStatus`; keep it in sight when you
scale in section 6:
"""),
        code("""
view = labkit.widgets.StackStatus(stack)
view
"""),
        md("""
The same stack can be used in a `with labkit.stack("services") as stack:` block: it is up
inside the block and down after it.

## 4. Through the one published door

`stack.url("gateway")` says where the gateway's port 8000 is published on this machine (on
the local runtime: where the gateway process listens). The gateway forwards
`/api/<service>/...` to that service:
"""),
        code("""
url = stack.url("gateway")
print(url)
httpx.get(url + "/api/products").json()["products"]
"""),
        md("""
The other services publish nothing, so the stack gives no address for them:
"""),
        code("""
try:
    stack.url("users")
except labkit.StackError as error:
    print(error)
"""),
        md("""
On Docker that is enforced: the other services live on the `internal` backend network, and
from this notebook they cannot be reached at all. On the local runtime every process needs a
port of `127.0.0.1`, so anything on this machine could call `users` directly; `url()` only
keeps to what the Compose file publishes. That isolation is one of the things containers add.

## 5. Service discovery by name

Inside the stack, no one uses IP addresses. Placing an order makes the **orders** service ask
the services named `users` and `products`, then write to the database. On Docker, each network
has a DNS server (at `127.0.0.11` inside every container) that answers a **service name** with
the addresses of that service's containers, and the database is found at host `db`. On the
local runtime there is no such DNS: each process finds the same names in the address table
`LocalStack` writes, and the orders go into the SQLite file. The answer says which replica of
each service checked the order:
"""),
        code("""
response = httpx.post(url + "/api/orders", json={"user_id": 1, "product_id": 2, "quantity": 2})
order = response.json()
print(response.status_code, "total:", order["order"]["total_cents"], "cents")
print("checked with:", sorted(order["checked_with"]))
"""),
        md("""
An order for a user who does not exist is refused by the orders service with a clear reason,
after it asked the users service:
"""),
        code("""
refused = httpx.post(url + "/api/orders", json={"user_id": 42, "product_id": 2})
print(refused.status_code, refused.json()["detail"])
"""),
        md("""
## 6. Scale out: three replicas of products

`stack.scale("products", 3)` asks for three copies of the same service and waits until the new
ones are healthy: three containers on Docker (`compose up --scale products=3`), three processes
on the local runtime. The table differs by runtime, as in section 3:
"""),
        code("""
stack.scale("products", 3)
print(stack.status())
""", IGNORE_OUTPUT),
        md("""
All three answer to the name `products`. The gateway shows what it finds for that name: on
Docker, the DNS answer (three container addresses); on the local runtime, the address table
(three `127.0.0.1` ports). Either way, three addresses:
"""),
        code("""
addresses = httpx.get(url + "/replicas/products").json()["addresses"]
print(len(addresses), "addresses for the name products")
"""),
        md("""
The gateway takes them in turn (round robin). Each response carries the **hostname** of the
replica that answered: the short container id on Docker, `products-1`, `products-2`, ... on the
local runtime. Six requests through the gateway, with the hostnames replaced by letters in the
order they first appear:
"""),
        code("""
seen = [httpx.get(url + "/api/products").json()["hostname"] for _ in range(6)]
letters = {host: "ABC"[i] for i, host in enumerate(dict.fromkeys(seen))}
print(" ".join(letters[host] for host in seen))
print(len(set(seen)), "replicas,", sorted(collections.Counter(seen).values()), "requests each")
print("the same replicas as the stack lists:", set(seen) == set(stack.hostnames("products")))
"""),
        md("""
That is horizontal scaling in one line: more copies of a stateless service behind one name.
It only works because `products` keeps no state of its own; the orders, which must survive, live
in the database. Scaling the gateway itself this way would not work here: its published port
is one port on this machine, and that is what a load balancer or Swarm's routing mesh
(lesson 05) is for.

## 7. Logs

`stack.logs(service, tail=N)` gathers the last lines of each replica of a service, each marked
with its replica. The gateway logged the requests above (its health checks are left out on
purpose). The addresses and ports in them differ on every run:
"""),
        code("""
print(stack.logs("gateway", tail=4))
""", IGNORE_OUTPUT),
        EXERCISES_INTRO,
        *exercise(1, "04-depends-on", "wait for the database, not for its container", """
Write the `depends_on` entry (as a Python dict, the way YAML would load it) that makes a
service wait until `db` passes its healthcheck. Set `answer` to it.
""", """
The short form `depends_on: [db]` only orders the start of containers. The long form with
`condition: service_healthy` waits for `db`'s `healthcheck` to pass.
"""),
        *exercise(2, "04-scale-users", "scale the users service", """
Scale `users` to 2 replicas, then send 4 requests to `/api/users` through the gateway. Set
`answer` to the **set** of hostnames that answered.
""", """
The gateway takes the replicas in turn, so 4 requests reach both of them twice.
"""),
        *exercise(3, "04-loopback-port", "publish on this machine only", """
Write the `ports:` entry that publishes container port `8000` on `127.0.0.1` only, on a host
port Docker picks. Set `answer` to the string.
""", """
`"8000:8000"` or `"8000"` would publish on every interface (`0.0.0.0`). Writing the address
first keeps the service on this machine; leaving the host port empty avoids clashes when
several stacks (or several learners on one server) run at once.
"""),
        md("""
## Clean up

`stack.down()` removes every container and network of the stack, and its volumes too: the
database starts empty next time. On the local runtime it stops every process and deletes the
SQLite file. (`stack.down(volumes=False)` keeps the data, on both.) Nothing keeps running after
the notebook either: the local processes stop with the kernel, even when it is interrupted,
restarted or killed.
"""),
        code("""
view.stop()
stack.down()
stack.ps()
"""),
        md("""
## Summary and what's next

- A Compose file declares **services** (image, command, ports, networks, volumes, secrets);
  `up` makes containers of them, and a fixed project name makes `up` safe to repeat.
- **Healthchecks** plus `depends_on: condition: service_healthy` start each service only when
  what it needs is ready; `stack.up()` returns when every service is healthy.
- Services find each other **by name** through Docker's DNS; an `internal` network keeps the
  backend unreachable from outside, and the one published port binds `127.0.0.1`.
- **Scaling** a stateless service adds replicas behind the same name; requests spread over them.
- Secrets travel as files, never in the environment or the logs; apps run as non-root users
  on read-only file systems.
- Without Docker, the local stand-in runs the same apps from the same file as processes, with
  SQLite for the database and an address table for the DNS; what it cannot give is isolation:
  the networks, users and read-only file systems that the engine enforces.

Next, when one machine is not enough: Swarm services, rolling updates and the routing mesh, and
their Kubernetes equivalents. Back to the [contents](00-start-here.ipynb).
"""),
        nav(name),
    ]


from _lesson05 import lesson_05  # noqa: E402 - needs the helpers above
from _lesson06 import lesson_06  # noqa: E402 - needs the helpers above
from _lesson07 import lesson_07  # noqa: E402 - needs the helpers above


BUILDERS = {
    "00-start-here.ipynb": lesson_00,
    "01-webhooks-101.ipynb": lesson_01,
    "02-github-events.ipynb": lesson_02,
    "03-dockerhub-registry-and-alerts.ipynb": lesson_03,
    "04-services-with-compose.ipynb": lesson_04,
    "05-swarm-and-beyond.ipynb": lesson_05,
    "06-push-build-deploy-monitor.ipynb": lesson_06,
    "07-when-things-go-wrong.ipynb": lesson_07,
}


def notebook(filename: str, cells: list[Cell]) -> Any:
    nb = new_notebook()
    stem = filename.split("-")[0]
    for i, (kind, source, tags) in enumerate(cells):
        cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
        cell["id"] = f"lesson{stem}-{i:03d}"
        if tags:
            cell["metadata"]["tags"] = list(tags)
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    return nb


def run(nb: Any) -> None:
    client = NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                            store_widget_state=False,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute()
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    for cell in nb.cells:
        cell["metadata"].pop("execution", None)


def main(prefixes: list[str]) -> int:
    # Keep the sender's log of this build out of the user's ~/.labkit, and let the kernel
    # import this checkout's labkit whatever its working directory.
    os.environ.setdefault("LABKIT_HOME", tempfile.mkdtemp(prefix="labkit-build-"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)
    for filename, build in BUILDERS.items():
        if prefixes and not any(filename.startswith(p) for p in prefixes):
            continue
        nb = notebook(filename, build())
        print(f"running {filename} ...", flush=True)
        run(nb)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / filename)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
