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
#     title: 02 GitHub events
# ---

# %% [markdown]
# # 02 · GitHub events: deliveries, signatures and replays

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# You will:
#
# - read what GitHub's `ping`, `push` and `pull_request` deliveries contain;
# - compute GitHub's signature (`X-Hub-Signature-256`) by hand with `hmac`;
# - **write the check yourself**, `verify(secret, body, header)`, and plug it into a receiver of
#   your own that answers `401` to a forgery;
# - attack that receiver with a changed body, a wrong secret, a re-serialised body and a replay,
#   predicting each answer first, and see *why* each one fails with `labkit.signing.explain`;
# - redeliver a delivery and see handlers still run once.
#
# **Time needed:** about 55 minutes (four tasks).
#
# ## Prerequisites
#
# - [01 Webhooks 101](01-webhooks-101.ipynb): your own receiver, deliveries, status codes,
#   handlers.
# - The idea of a hash (a short fingerprint of some data) helps; the lesson explains the rest.

# %%
import hashlib
import hmac
import json

import httpx
from fastapi import FastAPI, Request, Response

import labkit
from labkit import events

events.deterministic(seed=2)

# %% [markdown]
# <!-- labkit: tasks-intro -->

# %% [markdown]
# ## 1. A receiver with a secret
#
# When you add a webhook on GitHub you can set a **secret**: a string only GitHub and your
# receiver know. GitHub then signs every delivery with it, and the receiver refuses anything
# whose signature does not match.

# %%
SECRET = "lab-secret-2"  # a real secret is long, random, and never written in a notebook
rx = labkit.Receiver(secret=SECRET, name="lesson02").start()
insp = labkit.inspect(rx)
insp

# %% [markdown]
# ## 2. Three events, as GitHub sends them
#
# ```mermaid
# sequenceDiagram
#     participant You
#     participant G as GitHub
#     participant R as Receiver
#     You->>G: add a webhook
#     G->>R: ping
#     You->>G: git push
#     G->>R: push
#     You->>G: open a pull request
#     G->>R: pull_request (action: opened)
# ```

# %%
ping = events.github.ping()
push = events.github.push(commits=2)
pr = events.github.pull_request("opened")
for event in (ping, push, pr):
    print(labkit.send(event, rx, secret=SECRET))

# %%
for d in rx.wait_for(3):
    print(f"#{d.seq} {d.event:13} verified={d.verified}  id={d.id}")

# %% [markdown]
# Each delivery was signed with `SECRET` (that is what `secret=` does), so the receiver marked it
# **verified**. A `push` says which branch moved (`ref`), from which commit to which (`before`,
# `after`), the new commits, and who pushed:

# %%
p = push.payload
print("ref:    ", p["ref"])
print("before: ", p["before"][:12], " after:", p["after"][:12])
print("commits:", [c["message"] for c in p["commits"]])
print("pusher: ", p["pusher"]["name"], " repo:", p["repository"]["full_name"])

# %% [markdown]
# `before` is forty zeros when the push created a new branch, and `after` is forty zeros when it
# deleted one. A `pull_request` delivery carries an `action` (`opened`, `synchronize` for new
# commits, `closed`) and the pull request itself:

# %%
pull = pr.payload["pull_request"]
print(pr.payload["action"], f"#{pr.payload['number']}", repr(pull["title"]))
print(pull["head"]["ref"], "->", pull["base"]["ref"], "| merged:", pull["merged"])

# %% [markdown]
# A typical pipeline tests on `pull_request` (`opened`, `synchronize`) and deploys on a `push`
# to `main`.
#
# ## 3. The signature, by hand
#
# The signature is an **HMAC**: a hash of the body mixed with the secret. Anyone can hash a body,
# but only someone holding the secret can produce this value, and changing a single byte of the
# body changes it completely. GitHub sends it as `sha256=` followed by the hex digest:

# %%
body = push.body  # the exact bytes that went over the wire
by_hand = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
by_hand

# %% [markdown]
# The receiver logged the header GitHub (here: `labkit`) sent; it matches, and so does `labkit`'s own function:

# %%
received = rx.wait_for(3)[1]  # the push, as the receiver logged it
print(received.headers["x-hub-signature-256"] == by_hand)
print(labkit.signing.github_signature_256(body, SECRET) == by_hand)

# %% [markdown]
# ### Task 1: a signature by hand
#
# GitHub's documentation gives a test case: with the secret `It's a Secret to Everybody`, the body
# `Hello, World!` has a known `X-Hub-Signature-256`. Compute it with `hmac` and `hashlib` and set
# `answer` to the full header value.

# %% tags=["exercise-answer"]
# labkit: answer 02-signature

# %%
labkit.exercises.check("02-signature", answer)

# %% [markdown]
# <!-- labkit: solution 02-signature -->
#
# HMAC-SHA256 with the secret as key, over the exact body bytes, written as `sha256=` plus the lowercase hex digest.

# %% [markdown]
# ## 4. Your check
#
# To **verify**, a receiver computes the same HMAC over the bytes it received and compares it with
# the header. Compare with `hmac.compare_digest`, not `==`: `==` stops at the first character that
# differs, so how long it takes tells an attacker how much of a forged signature was right;
# `compare_digest` takes the same time either way.
#
# ### Task 2: write `verify`
#
# Write `verify(secret, body, header)` that returns `True` only when `header` is the correct
# `sha256=...` value for `body` and `secret`, and `False` otherwise: for a changed body, a wrong
# secret, a missing (`None`) or empty header, a digest without `sha256=`. It must never raise, and
# it compares in constant time. Set `answer = verify`.

# %% tags=["exercise-answer"]
# labkit: answer 02-verify

# %%
labkit.exercises.check("02-verify", answer)

# %% [markdown]
# <!-- labkit: solution 02-verify -->
#
# Reject a missing or malformed header first, then compare the expected value with `hmac.compare_digest`, which does not reveal where two values differ.

# %% [markdown]
# `labkit.signing.verify_github` is the kit's version of the same check; it returns the scheme
# that matched, or raises `SignatureError` saying what is wrong:

# %%
labkit.signing.verify_github(received.body, SECRET, received.headers["x-hub-signature-256"])

# %% [markdown]
# ## 5. Your check, in your receiver
#
# A check only protects what calls it. Take the receiver you wrote in lesson 01 (one `POST` route
# that reads the raw body) and put `verify` in front of the work: read the body **as bytes**,
# verify it against the `X-Hub-Signature-256` header, and answer `401 Unauthorized` when it does
# not match. A valid signature does not make a delivery new, though: keep the
# `X-GitHub-Delivery` ids you accepted, and answer a repeat with `200` (a duplicate) instead of
# doing the work again.
#
# ### Task 3: a receiver that checks
#
# Write `app` with `POST /hooks/github` as described (using your `verify` and `SECRET`), serve it
# with `server = labkit.serve(app, name="guarded")`, and set `answer = server`. The check sends
# your server a genuine signed push and five attacks (a changed body, another secret, the same
# JSON re-serialised, no signature, a replay) and reads what it answered to each.

# %% tags=["exercise-answer"]
# labkit: answer 02-guarded-receiver

# %%
labkit.exercises.check("02-guarded-receiver", answer)

# %% [markdown]
# <!-- labkit: solution 02-guarded-receiver -->
#
# Verification comes first, on the bytes exactly as they arrived, and before any JSON parsing; the set of seen delivery ids catches the replay that the signature cannot.

# %% [markdown]
# ## 6. What a signature stops, and what it does not
#
# The same attacks, sent to the kit's receiver, with `labkit.signing.explain` saying *why* each
# signature fails. Before each cell, **predict** the status code.
#
# **A changed body.** Someone between GitHub and you rewrites the branch in a signed delivery:

# %%
signed = push.signed(SECRET)  # the push with its signature headers
tampered = signed.with_body(signed.body.replace(b"refs/heads/main", b"refs/heads/prod"))
outcome = labkit.send(tampered, rx)  # no secret= here: it goes out exactly as it is
print(outcome)
print(outcome.response)
print(labkit.signing.explain(SECRET, tampered.body, tampered.headers))

# %% [markdown]
# **A wrong secret, or none at all:**

# %%
for secret in ("a-guess", None):
    outcome = labkit.send(events.github.push(), rx, secret=secret)
    print(outcome.status, outcome.detail)
guessed = events.github.push().signed("a-guess")
print(labkit.signing.explain(SECRET, guessed.body, guessed.headers).cause)

# %% [markdown]
# From a terminal, a `POST` with no signature at all gets the same `401`, with the reason in the
# body (`-i` shows the status line and headers first):

# %%
hook = rx.hook_url("github")
!curl -i -sS -X POST {hook} -H "Content-Type: application/json" -H "X-GitHub-Event: ping" -d '[]'

# %% [markdown]
# **A replay.** Someone who captured a genuine delivery sends it again. Its signature is valid;
# what saves the receiver is the delivery id it has seen before:

# %%
replayed = labkit.send(signed, rx)
print(replayed.status, replayed.response)

# %% [markdown]
# But GitHub's signature covers only the body: not the delivery id, and not the time. Give the
# captured delivery a made-up id and it is accepted as new:

# %%
renamed = signed.with_headers({"X-GitHub-Delivery": "00000000-0000-4000-8000-000000000000"})
print(labkit.send(renamed, rx).status)

# %% [markdown]
# So with GitHub webhooks, also make handlers **idempotent**: running twice for the same commit
# (the payload's `after`) should do no harm, for example by skipping a build that already exists.
# Always use HTTPS, so deliveries cannot be captured in the first place. Lesson 03 shows a scheme
# that signs the id and a timestamp as well.
#
# ## 7. Verify the raw bytes, not re-encoded JSON
#
# A common bug: a web framework parses the JSON body, and the code that checks the signature
# turns the parsed data back into JSON. The data is the same; the bytes are not:

# %%
reencoded = json.dumps(received.payload).encode()
print(received.body[:60])
print(reencoded[:60])
print(len(received.body), "bytes received,", len(reencoded), "bytes re-encoded")

# %% [markdown]
# Spaces after `:` and `,` (and key order, and how non-ASCII text is escaped) are enough to break the signature:

# %%
sent_signature = received.headers["x-hub-signature-256"]
print(labkit.signing.github_signature_256(reencoded, SECRET) == sent_signature)
print(labkit.send(signed.with_body(reencoded), rx).status)

# %% [markdown]
# `explain` recognises this mistake: the signature matches a re-serialisation of the same JSON,
# and it shows the first byte where the two differ:

# %%
print(labkit.signing.explain(SECRET, reencoded, {"X-Hub-Signature-256": sent_signature}))

# %% [markdown]
# The rule: verify the body **exactly as it arrived**, before parsing it. The `labkit` receiver
# checks the signature over the raw bytes first and only then reads the JSON. The same goes for
# proxies and forwarders between GitHub and your receiver: they must pass the body through
# untouched.
#
# ## 8. Redelivery
#
# GitHub does not retry a failed delivery by itself. Its *Recent Deliveries* page has a
# **Redeliver** button, which sends the same delivery, with the same id, again.
# `labkit.redeliver(delivery_id)` does the same from the log of what `labkit.send` sent, and the
# inspector's **Replay** does it from what the receiver logged. Either way, the receiver
# recognises the id, and handlers run once:

# %%
built = []

@rx.on("github", "push")
def build(delivery):
    built.append(delivery.payload["after"][:7])

# %%
fix = events.github.push(commits=["Fix the health check"])
print(labkit.send(fix, rx, secret=SECRET))
print(labkit.redeliver(fix.delivery_id))
rx.idle()
built

# %% [markdown]
# The inspector can replay the newest delivery too; here is everything this receiver has seen so far:

# %%
print(insp.replay())
print(insp.text(columns=("seq", "event", "verified", "status", "reason")))

# %% [markdown]
# ### Task 4: predict, redeliver, and count
#
# Predict first: one new signed push, then the same delivery redelivered twice. Which three status
# codes, and how many handler runs? Then register a handler `count_runs` for pushes that records
# each run in a list `runs`, send one new signed push, redeliver it twice with
# `labkit.redeliver`, and set `answer` to
# `{"statuses": [...the three status codes...], "runs": len(runs)}`.

# %% tags=["exercise-answer"]
# labkit: answer 02-redelivery

# %%
labkit.exercises.check("02-redelivery", answer)

# %% [markdown]
# <!-- labkit: solution 02-redelivery -->
#
# The first delivery is accepted (`202`); both redeliveries carry the same id, so they are answered `200` as duplicates and the handler runs once.

# %% [markdown]
# ## Clean up

# %%
insp.stop()
rx.stop()
print("stopped:", labkit.stop_serving())
rx

# %% [markdown]
# ## Summary and what's next
#
# - GitHub names the event in `X-GitHub-Event`, identifies the delivery in `X-GitHub-Delivery`,
#   and signs the body in `X-Hub-Signature-256` (HMAC-SHA256 with the webhook's secret).
# - You wrote the check and put it in front of your own receiver: verify over the raw bytes,
#   before parsing, with a constant-time comparison; answer `401` when it fails.
# - `labkit.signing.explain` says why a signature fails: no signature, malformed, wrong
#   algorithm, re-serialised, or a plain mismatch (another secret, or changed bytes).
# - A signature stops changed bodies and unknown senders. It does not stop a replay: dedupe on the
#   delivery id, keep handlers idempotent, and use HTTPS.
# - Redelivery resends the same id, so a deduping receiver runs its handlers once.
#
# **Next:** [03 Docker Hub, registry and alerts](03-dockerhub-registry-and-alerts.ipynb): webhooks
# from senders that cannot sign, and a signature scheme with timestamps and key rotation.

# %% [markdown]
# <!-- labkit: nav -->
