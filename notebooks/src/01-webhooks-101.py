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
# You will learn:
#
# - why webhooks replace polling;
# - how to run a webhook receiver inside this notebook's kernel;
# - what a delivery is made of: an HTTP `POST` with headers and a JSON body;
# - what the receiver's status codes tell the sender;
# - how a handler reacts to an event.
#
# **Time needed:** about 30 minutes.
#
# ## Prerequisites
#
# - [00 Start here](00-start-here.ipynb), with the preflight check passing. Docker is not needed.
# - Python functions, lists and dicts.
#
# The first cell loads the kit. `deterministic(seed=1)` makes every delivery id and timestamp the
# same on each run, so what you see matches what this page shows.

# %%
import labkit
from labkit import events

events.deterministic(seed=1)

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
# The price of webhooks: the sender must be able to reach your receiver, and your receiver must
# be ready for whatever arrives. The rest of the lessons are about doing that well.
#
# ## 2. A receiver in the kernel
#
# A webhook **receiver** is a small web server with one URL per sender. This one runs in a
# background thread of the notebook's kernel, so the notebook stays usable while it listens.
# `name=` identifies it: running the cell again replaces the old receiver instead of starting a
# second one.

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
# ## 3. Watch deliveries arrive
#
# The **inspector** shows what the receiver has seen, live: a table of deliveries, a source
# filter, one delivery in detail (headers and body), and a **Replay** button. Keep it in view
# while you run the next cells.

# %%
insp = labkit.inspect(rx)
insp

# %% [markdown]
# ## 4. Send a first event
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
# ## 5. What a delivery is made of: headers
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
# ## 6. ... and a body
#
# The **body** is the event itself, as JSON. `first.body` holds the exact bytes that arrived;
# `first.payload` is the same data parsed into Python. Lesson 02 shows why both matter.

# %%
print(len(first.body), "bytes; top-level keys:", sorted(first.payload))
print("zen:", first.payload["zen"])

# %% [markdown]
# The inspector's detail view shows the same headers and the body, pretty-printed.
#
# ## 7. Status codes: the receiver's answer
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
# A good receiver answers within a few seconds and does slow work afterwards; GitHub gives up
# after 10 seconds. Send the same ping again, and then one whose body is not JSON:

# %%
again = labkit.send(ping, rx)
broken = labkit.send(ping.with_body(b"this is not JSON"), rx)
print(again, again.response, sep="\n")
print(broken, broken.response, sep="\n")

# %% [markdown]
# The repeat was answered `200` with status `duplicate`; the broken one `400`, with a reason
# the sender's logs can show. Both are rows in the inspector too.
#
# ## 8. React to an event: a handler
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
statuses = [labkit.send(push, rx).status for _ in range(3)]
rx.idle()
print(statuses, "->", len(actions), "actions")

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
# ## 9. Filter and replay
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
# <!-- labkit: exercises-intro -->

# %% [markdown]
# ### Exercise 1: the cost of polling
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
# ### Exercise 2: predict the status codes
#
# Before running anything, predict the three status codes for: a new `pull_request` delivery;
# the very same delivery sent again; and a `push` whose body is cut off after 100 bytes
# (`push.with_body(push.body[:100])`). Then send them and collect the codes in a list.

# %% tags=["exercise-answer"]
# labkit: answer 01-status-codes

# %%
labkit.exercises.check("01-status-codes", answer)

# %% [markdown]
# <!-- labkit: solution 01-status-codes -->
#
# New deliveries get `202`; a repeated delivery id gets `200` with `duplicate`; a body that is not complete JSON cannot be read, so `400`.

# %% [markdown]
# ### Exercise 3: a handler of your own
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
# ## Clean up
#
# Stopping the inspector and the receiver frees the port. Running the lesson again starts them
# afresh.

# %%
insp.stop()
rx.stop()
rx

# %% [markdown]
# ## Summary and what's next
#
# - Polling asks again and again; a webhook is one `POST` to your URL when something happens.
# - A delivery is headers (what it is, its id) plus a body (the event, as JSON).
# - The receiver's status code is the sender's only feedback: `202` accepted, `200` duplicate,
#   `4xx` fix the request, `5xx` try later.
# - Handlers react after the receiver has answered; a delivery id seen before does not run them
#   again.
#
# Anyone who finds the URL could post here, though. **Next:**
# [02 GitHub events](02-github-events.ipynb) shows how GitHub signs its deliveries and how a
# receiver checks them.

# %% [markdown]
# <!-- labkit: nav -->
