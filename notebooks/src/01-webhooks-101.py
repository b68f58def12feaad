# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   labkit:
#     title: 01 Webhooks 101
# ---

# %% [markdown]
# # 01 · Webhooks 101: your first receiver

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# You will:
#
# - count what polling costs next to webhooks;
# - **write a webhook receiver yourself**: a FastAPI app with one route, served in this kernel;
# - post to it by hand, from Python and from a terminal with `curl`, and read the request line,
#   headers and body it received;
# - switch to labkit's full receiver and see what it adds: a durable log, duplicate detection,
#   clear status codes, handlers that run after the answer;
# - predict the status codes a receiver gives, and write a handler that reacts to pushes.
#
# **Time needed:** about 50 minutes (six tasks).
#
# ## Prerequisites
#
# - [00 Start here](00-start-here.ipynb), with the preflight check passing. Docker is not needed.
# - Python functions, lists and dicts; a first look at HTTP (a request has a method, a path,
#   headers and a body; the answer has a status code) helps.
#
# The first cell loads the kit. `deterministic(seed=1)` makes every delivery id and timestamp the
# same on each run, so what you see matches what this page shows.

# %%
import httpx

import labkit
from labkit import events

events.deterministic(seed=1)

# %% [markdown]
# <!-- labkit: tasks-intro -->

# %% [markdown]
# ## 1. Polling, or being told
#
# A build server that wants to know about new commits can **poll**: ask the code host "anything
# new?" over and over. Most answers are "no", and a change waits until the next question.
# With a **webhook** the code host makes one request, to a URL you gave it, at the moment
# something happens.
#
# ```mermaid
# sequenceDiagram
#     participant B as Build server
#     participant G as Code host
#     Note over B,G: Polling
#     loop every 30 seconds
#         B->>G: anything new?
#         G-->>B: no
#     end
#     B->>G: anything new?
#     G-->>B: yes, a push
#     Note over B,G: Webhook
#     G->>B: POST /hooks/github (a push just happened)
#     B-->>G: 202 Accepted
# ```
#
# Count the requests for one hour with 3 pushes:

# %%
seconds, interval, pushes = 60 * 60, 30, 3
polls = seconds // interval
print(f"polling : {polls} requests, {polls - pushes} of them answered 'nothing new'")
print(f"webhooks: {pushes} requests, one per push, sent when it happens")
print(f"polling hears of a push {interval // 2} s late on average; a webhook at once")

# %% [markdown]
# ### Task 1: the cost of polling
#
# A poller asks a code host for news every **30 seconds** during an **8-hour** working day. That
# day, the repository gets **12 pushes**. How many requests does polling make, and how many
# webhook deliveries? Answer with `{"polling": ..., "webhooks": ...}`.

# %% tags=["exercise-answer"]
# labkit: answer 01-polling-cost

# %%
labkit.exercises.check("01-polling-cost", answer)

# %% [markdown]
# <!-- labkit: solution 01-polling-cost -->
#
# Polling makes one request per interval whatever happens: 8 × 3600 / 30 = 960. Webhooks make one request per event: 12.

# %% [markdown]
# The price of webhooks: the sender must be able to reach your receiver, and your receiver must
# be ready for whatever arrives.
#
# ## 2. A receiver of your own
#
# A webhook **receiver** is a web server with a URL the sender posts to. Nothing more is needed
# to start: one route that accepts a `POST`, reads what came, and answers quickly. With
# [FastAPI](https://fastapi.tiangolo.com/) that is a function with a decorator:
#
# - `app = FastAPI()` makes the app; `@app.post("/hooks/{source}")` sends every `POST` to
#   `/hooks/<anything>` to the function under it, with `source` set to the last part of the path.
# - A parameter `request: Request` gives the raw request: `await request.body()` is the body as
#   the exact **bytes** that arrived (lesson 02 shows why a receiver must keep them as they are),
#   and `request.headers` the headers.
# - `return Response(status_code=202)` answers **202 Accepted**: "stored, work happens later".
#   Senders wait only a few seconds (GitHub gives up after 10), so a receiver answers first and
#   works afterwards.
#
# ### Task 2: write the receiver
#
# Write `app` with one route, `POST /hooks/{source}`, that reads the raw body and the
# `X-GitHub-Event` header, appends `(source, event, len(body))` to a list `received`, and answers
# 202. End with `answer = app`. The check serves your app for a moment, posts a GitHub `ping` to
# `/hooks/github` and reads what your app answered.

# %% tags=["exercise-answer"]
# labkit: answer 01-own-receiver

# %%
labkit.exercises.check("01-own-receiver", answer)

# %% [markdown]
# <!-- labkit: solution 01-own-receiver -->
#
# The route takes `request: Request` instead of a typed body, so FastAPI hands over the request untouched and `await request.body()` returns the bytes as sent. `received` is created in the same cell, so a re-run starts from an empty list.

# %% [markdown]
# ## 3. Post to it by hand
#
# `labkit.serve(app, name="mine")` runs your app in a background thread of this kernel, on
# `127.0.0.1` and a free port, so the notebook stays usable while it listens. Running it again
# with the same name replaces the old server instead of starting a second one. It also keeps every
# request it received in `server.exchanges`, and `.as_http()` shows one as it came over the wire.
#
# A webhook is nothing but this `POST`. Before you send one, **predict**: what status code will
# come back, and which headers will your server see that you did not set yourself?
#
# ### Task 3: a POST from Python
#
# Serve your app as `server`, post a small JSON body to `server.url + "/hooks/github"` with
# `httpx.post` (with headers `Content-Type: application/json` and `X-GitHub-Event: ping`), print
# the status and what your server received, and set `answer = server`.

# %% tags=["exercise-answer"]
# labkit: answer 01-post-by-hand

# %%
labkit.exercises.check("01-post-by-hand", answer)

# %% [markdown]
# <!-- labkit: solution 01-post-by-hand -->
#
# The first line is the **request line**: method, path, protocol. httpx added `host`, `accept`, `accept-encoding`, `connection`, `user-agent` and `content-length` by itself; a sender such as GitHub adds its own `user-agent` and event headers the same way.

# %% [markdown]
# ### Task 4: the same from a terminal
#
# In a notebook, a line that starts with `!` runs in a terminal, and IPython fills in Python
# expressions written in braces, such as `{server.url}`. (So JSON typed into that line would
# confuse it: keep the body in a Python variable and write `'{body}'`.) `curl -i` prints the
# answer's status line and headers before its body; `-d` sends a body and makes the request a
# `POST`. Post a JSON body to your server with `!curl -i -X POST {server.url}/hooks/github ...`,
# then set `answer = server`. The check reads your server's record for a request whose
# `user-agent` is curl's.

# %% tags=["exercise-answer"]
# labkit: answer 01-curl

# %%
labkit.exercises.check("01-curl", answer)

# %% [markdown]
# <!-- labkit: solution 01-curl -->
#
# `HTTP/1.1 202 Accepted` is the status line; `date`, `server` and `content-length` are the answer's headers. The answer has no body: 202 says everything.

# %% [markdown]
# ## 4. What a real receiver adds
#
# Your receiver works, and it is what every webhook endpoint is at heart. It forgets everything
# when the kernel stops, though, runs the same work twice when a sender tries again, accepts a
# body that is not JSON, and would keep the sender waiting while it works. `labkit.Receiver` is
# the same idea with those gaps closed:
#
# - a **durable log**: every request is written to SQLite, and a delivery is committed before its
#   `202` goes back, so nothing acknowledged is lost;
# - **duplicates** noticed by delivery id (a repeat gets `200` and its handlers do not run again);
# - **status codes** that tell the sender what went wrong (`400`, `401`, `413`, `415`);
# - **handlers** that run in a worker thread after the answer has gone back;
# - one URL per sender, and the signature checks of lessons 02 and 03.
#
# `name=` identifies it: running the cell again replaces the old receiver.

# %%
rx = labkit.Receiver(name="lesson01").start()
rx

# %% [markdown]
# Each kind of sender has its own URL on the receiver (its **endpoint**). On GitHub you would
# paste this into the repository's *Settings ▸ Webhooks ▸ Payload URL*:

# %%
rx.hook_url("github")

# %% [markdown]
# `127.0.0.1` is only reachable from this machine, so GitHub itself cannot post here. Instead,
# `labkit` plays GitHub: it builds the same requests GitHub sends and posts them to the receiver.
#
# ## 5. Watch deliveries arrive
#
# The **inspector** shows what the receiver has seen, live: a table of deliveries, a source
# filter, one delivery in detail (headers and body), and a **Replay** button. Keep it in view
# while you run the next cells: right-click its output and choose **Create New View for Cell
# Output**, and JupyterLab opens it in a panel of its own that you can dock beside the notebook
# (no extra package needed).

# %%
insp = labkit.inspect(rx)
insp

# %% [markdown]
# ## 6. Send a first event
#
# When you add a webhook on GitHub, it first sends a `ping`: a hello that proves the URL works.
# `events.github.ping()` builds one, byte for byte as GitHub would; `labkit.send` posts it.

# %%
ping = events.github.ping()
labkit.send(ping, rx)

# %% [markdown]
# A new row appeared in the inspector. The receiver answered `202 Accepted`: it stored the
# delivery and will process it.
#
# ## 7. What a delivery is made of: headers
#
# A delivery is one HTTP `POST`. Its **headers** say what it is before anyone reads the body.
# `rx.wait_for(1)` waits until one delivery has arrived and returns it as the receiver logged it:

# %%
first = rx.wait_for(1)[0]
for header in ("content-type", "user-agent", "x-github-event", "x-github-delivery"):
    print(f"{header:18} {first.headers[header]}")

# %% [markdown]
# - `content-type`: the body is JSON.
# - `user-agent`: GitHub's delivery service.
# - `x-github-event`: which event this is; a receiver routes on it.
# - `x-github-delivery`: a unique id for this delivery. A sender that tries again uses the same
#   id, which lets the receiver notice repeats.
#
# ## 8. ... and a body
#
# The **body** is the event itself, as JSON. `first.body` holds the exact bytes that arrived;
# `first.payload` is the same data parsed into Python. Lesson 02 shows why both matter.

# %%
print(len(first.body), "bytes; top-level keys:", sorted(first.payload))
print("zen:", first.payload["zen"])

# %% [markdown]
# The inspector's detail view shows the same headers and the body, pretty-printed.
#
# ## 9. Status codes: the receiver's answer
#
# The sender only learns what the receiver made of a delivery from the **status code**:
#
# | Code | Meaning here | What the sender should do |
# |---|---|---|
# | `202 Accepted` | stored; handlers will run | nothing more |
# | `200 OK` + `duplicate` | this delivery id was seen before; handlers do not run again | nothing more |
# | `400 Bad Request` | the request cannot be read (not JSON, a header missing) | fix the sender; retrying will not help |
# | `401 Unauthorized` | the signature or token is wrong (lesson 02) | check the secret |
# | `413 Content Too Large` | the body is over the size limit | send less |
# | `5xx` | the receiver is broken right now | try again later |
#
# ### Task 5: predict, then run
#
# Before running anything, write down the three status codes you expect for: a new `pull_request`
# delivery; the very same delivery sent again; and a `push` whose body is cut off after 100 bytes
# (`push.with_body(push.body[:100])`). Then send them to `rx` with `labkit.send` and collect the
# codes in a list. Were you right?

# %% tags=["exercise-answer"]
# labkit: answer 01-status-codes

# %%
labkit.exercises.check("01-status-codes", answer)

# %% [markdown]
# <!-- labkit: solution 01-status-codes -->
#
# New deliveries get `202`; a repeated delivery id gets `200` with `duplicate`; a body that is not complete JSON cannot be read, so `400`.

# %% [markdown]
# The same with the ping from section 6, and each answer's reason: send it again, and then once
# with a body that is not JSON.

# %%
again = labkit.send(ping, rx)
broken = labkit.send(ping.with_body(b"this is not JSON"), rx)
print(again, again.response, sep="\n")
print(broken, broken.response, sep="\n")

# %% [markdown]
# The repeat was answered `200` with status `duplicate`; the broken one `400`, with a reason
# the sender's logs can show. Both are rows in the inspector too.
#
# ## 10. React to an event: a handler
#
# A receiver that only stores deliveries is a logbook. A **handler** is a function the receiver
# calls for each accepted delivery of a kind: this is where a build server would start a build.
# `@rx.on("github", "push")` registers one. Handlers run in a worker thread after the `202` has
# gone back, so a slow build never keeps the sender waiting.
#
# Handlers do not `print` (their output would land in whichever cell runs at that moment). They
# collect results in a list, which you read after `rx.idle()` has waited for them to finish.

# %%
actions = []

@rx.on("github", "push")
def deploy_main(delivery):
    branch = delivery.payload["ref"].removeprefix("refs/heads/")
    actions.append(f"build and deploy {branch}" if branch == "main" else f"build {branch} only")

# %%
labkit.send(events.github.push(ref="refs/heads/main"), rx)
labkit.send(events.github.push(ref="refs/heads/feature/login"), rx)
rx.idle()
actions

# %% [markdown]
# A repeated delivery does not run the handler again: the same push sent three times adds one
# action, not three.

# %%
push = events.github.push()
before = len(actions)
statuses = [labkit.send(push, rx).status for _ in range(3)]
rx.idle()
print(statuses, "->", len(actions) - before, "new action")

# %% [markdown]
# And when a handler fails? The sender already has its `202`; the failure is recorded for you,
# on the delivery, and the receiver carries on:

# %%
@rx.on("github", "ping")
def greet(delivery):
    raise RuntimeError("this handler has a bug")

print(labkit.send(events.github.ping(), rx))
rx.idle()
print(rx.deliveries(1)[0].handled, "->", rx.deliveries(1)[0].handler_error)

# %% [markdown]
# ### Task 6: a handler of your own
#
# Register a handler for GitHub `push` deliveries that appends the branch name, without
# `refs/heads/`, to a list `branches`. Send one push to `refs/heads/main` and one to
# `refs/heads/feature/login`, wait for the handlers, and set `answer = branches`.

# %% tags=["exercise-answer"]
# labkit: answer 01-handler

# %%
labkit.exercises.check("01-handler", answer)

# %% [markdown]
# <!-- labkit: solution 01-handler -->
#
# The branch is in the payload's `ref`; `str.removeprefix` strips `refs/heads/`. Creating the list in the same cell as the handler means a re-run starts from an empty list.

# %% [markdown]
# ## 11. Filter and replay
#
# In the inspector, click **github** to filter by source, pick a delivery in the **Delivery** list,
# and press **Replay**: the receiver gets the same headers and body again and marks it
# `duplicate`. The same from code, on the newest delivery:

# %%
insp.source = "github"
insp.replay()

# %%
print(insp.text())

# %% [markdown]
# ## Clean up
#
# Stopping the inspector, the receiver and your own server frees their ports. Running the lesson
# again starts them afresh.

# %%
insp.stop()
rx.stop()
print("stopped:", labkit.stop_serving())
rx

# %% [markdown]
# ## Summary and what's next
#
# - Polling asks again and again; a webhook is one `POST` to your URL when something happens.
# - A receiver is a web server with a route: you wrote one in a dozen lines, served it, and sent it
#   requests from Python and from `curl`.
# - A delivery is a request line, headers (what it is, its id) and a body (the event, as JSON).
# - The receiver's status code is the sender's only feedback: `202` accepted, `200` duplicate,
#   `4xx` fix the request, `5xx` try later.
# - A real receiver adds a durable log, duplicate detection and handlers that run after the
#   answer; a delivery id seen before does not run them again.
#
# Anyone who finds the URL could post to either receiver, though. **Next:**
# [02 GitHub events](02-github-events.ipynb) shows how GitHub signs its deliveries and how your
# receiver checks them.

# %% [markdown]
# <!-- labkit: nav -->
