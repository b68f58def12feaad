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
#     title: 03 Docker Hub, registry and alerts
# ---

# %% [markdown]
# # 03 · Docker Hub, registry notifications and alerts

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# You will:
#
# - see what Docker Hub sends after an image push, and how its callback reports back;
# - how a private registry notifies you of every push;
# - how Alertmanager turns a failing service into a webhook;
# - how Standard Webhooks sign a timestamp and an id, and how to rotate a secret without downtime;
# - how to protect a sender that cannot sign (a URL or bearer token), and what that leaves open;
# - drive a receiver from a terminal: `labkit listen`, `trigger`, `deliveries`, `redeliver`.
#
# **Time needed:** about 60 minutes (four tasks).
#
# ## Prerequisites
#
# - [01 Webhooks 101](01-webhooks-101.ipynb) and [02 GitHub events](02-github-events.ipynb),
#   especially HMAC signatures.

# %%
import base64
import hashlib
import hmac
import os
import tempfile
import time

import labkit
from labkit import events

events.deterministic(seed=3)

# %% [markdown]
# <!-- labkit: tasks-intro -->

# %% [markdown]
# ## The senders in this lesson
#
# ```mermaid
# flowchart LR
#     dev["docker push"] --> hub["Docker Hub"]
#     hub -- "push webhook<br/>(token in the URL)" --> rx["your receiver"]
#     rx -- "callback: success or failure" --> hub
#     dev2["docker push"] --> reg["private registry"]
#     reg -- "notifications<br/>(bearer token)" --> rx
#     prom["Prometheus"] -- "firing rule" --> am["Alertmanager"]
#     am -- "webhook_config<br/>(bearer token)" --> rx
#     svc["a Standard Webhooks sender"] -- "signed id + time + body" --> rx
# ```
#
# Each sender proves who it is in its own way, so the receiver gets one secret per source. The
# Standard Webhooks entry holds two secrets; section 6 explains why.

# %%
HUB_TOKEN = "hub-token-3f9a"  # lesson values: real ones are long and random
REGISTRY_TOKEN = "registry-token-7c21"
ALERT_TOKEN = "alert-token-5d80"
OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_2a9tMnCVsEvvG1Al+K0jg6XFIqhFgeOz0ncbtyIhe8w="

# %%
rx = labkit.Receiver(name="lesson03", secrets={
    "dockerhub": HUB_TOKEN, "registry": REGISTRY_TOKEN,
    "alertmanager": ALERT_TOKEN, "standard": [NEW_SECRET, OLD_SECRET],
}).start()
insp = labkit.inspect(rx)
insp

# %% [markdown]
# ## 1. Docker Hub: the push webhook
#
# After `docker push octo-org/hello-app:v1`, Docker Hub posts a small JSON document to every
# webhook URL of the repository: which repository, which tag, who pushed. It sends no signature,
# no event header and no delivery id. A handler here would pull the new image and restart the
# service that runs it:

# %%
deploys = []

@rx.on("dockerhub", "push")
def pull_and_restart(delivery):
    data = delivery.payload
    deploys.append(f'{data["repository"]["repo_name"]}:{data["push_data"]["tag"]}')

# %%
hub_push = events.dockerhub.push("octo-org/hello-app", tag="v1")
print(labkit.send(hub_push, rx))  # rx.hook_url("dockerhub") carries ?token=HUB_TOKEN
print(dict(hub_push.headers), sorted(hub_push.payload))
rx.idle()
deploys

# %% [markdown]
# ## 2. Telling Docker Hub how it went: the callback
#
# Each push carries a `callback_url`. When the pipeline is done, the receiver may post the result
# there: a `state` (`success`, `failure` or `error`), a short `description`, a `context` and a
# `target_url` with details, and Docker Hub marks the webhook chain as succeeded or failed.
# (This API is legacy on Docker Hub, but the pattern, *report back to whoever triggered you*, is
# everywhere.) The receiver here stands in for Docker Hub:

# %%
callback = events.dockerhub.callback(
    "success", description="Deployed octo-org/hello-app:v1", context="lab pipeline",
    callback_url=hub_push.payload["callback_url"])
print(callback.body.decode())
labkit.send(callback, rx)

# %% [markdown]
# ## 3. Registry notifications
#
# A private registry (the CNCF *distribution* registry, `registry:2`) can notify you of every
# push, pull and delete. You list endpoints in its configuration; it can only add static headers,
# so a bearer token is how it authenticates:
#
# ```yaml
# notifications:
#   endpoints:
#     - name: lab
#       url: http://receiver:8000/hooks/registry
#       headers:
#         Authorization: [Bearer registry-token-7c21]
#       timeout: 5s
#       threshold: 5
#       backoff: 10s
# ```
#
# One `docker push` sends several notifications: one per layer (a *blob*), one for the image
# configuration, and one for the **manifest**, the only one that carries the tag. The registry
# retries each one until it gets a `2xx` or `3xx` answer, and does not promise any order. A
# deployer waits for the manifest:

# %%
tagged = []

@rx.on("registry", "push")
def on_manifest(delivery):
    for item in delivery.payload["events"]:
        target = item["target"]
        if "manifest" in target["mediaType"] and target.get("tag"):
            tagged.append(f'{target["repository"]}:{target["tag"]}')

# %%
for event in events.registry.image_push("hello-app", tag="v1", layers=2):
    target = event.payload["events"][0]["target"]
    outcome = labkit.send(event, rx, secret=REGISTRY_TOKEN)  # adds Authorization: Bearer ...
    print(outcome.status, target["mediaType"], target.get("tag", ""))
rx.idle()
tagged

# %% [markdown]
# Without the token, the receiver refuses:

# %%
labkit.send(events.registry.notification("push"), rx).status

# %% [markdown]
# ## 4. Alertmanager: alerts as webhooks
#
# Prometheus checks your services against alert rules; Alertmanager groups the alerts that fire,
# removes repeats and routes them. A `webhook_config` route posts them as JSON, with a bearer
# token from its `http_config`:
#
# ```yaml
# receivers:
#   - name: lab
#     webhook_configs:
#       - url: http://receiver:8000/hooks/alertmanager
#         http_config:
#           authorization:
#             credentials: alert-token-5d80
# ```
#
# Each notification has a `status` (`firing` or `resolved`) and a list of `alerts`, each with
# `labels` (what and where), `annotations` (text for people), and when it started and ended.
# Alertmanager also sends `resolved` when the problem goes away, unless told not to.

# %%
pages = []

@rx.on("alertmanager")
def page_on_call(delivery):
    for alert in delivery.payload["alerts"]:
        pages.append(f'{alert["status"]:8} {alert["labels"]["alertname"]}: '
                     f'{alert["annotations"]["summary"]}')

# %%
firing = events.alertmanager.alert("firing", alertname="WebDown", service="web")
resolved = events.alertmanager.alert("resolved", alertname="WebDown", service="web")
for event in (firing, resolved):
    print(labkit.send(event, rx, secret=ALERT_TOKEN))
rx.idle()
print(*pages, sep="\n")
print("endsAt while firing:", firing.payload["alerts"][0]["endsAt"])

# %% [markdown]
# A firing alert has not ended yet, so its `endsAt` is the zero time `0001-01-01T00:00:00Z`.
# Alertmanager retries when the receiver answers `5xx`, so a receiver should answer `5xx` only
# when trying again could help.
#
# ## 5. Standard Webhooks: a signed id and a signed time
#
# [Standard Webhooks](https://www.standardwebhooks.com/) is a shared specification many services
# use. It fixes the gap lesson 02 found in GitHub's scheme by signing more than the body:
#
# - `webhook-id`: the message id (the same on every retry, for deduping);
# - `webhook-timestamp`: when this attempt was sent, in Unix seconds;
# - `webhook-signature`: `v1,` plus the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`. The
#   secret is written `whsec_` followed by its bytes in base64.

# %%
msg = events.standard.message("image.pushed")
signed = msg.signed(NEW_SECRET)
for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
    print(f"{header:18} {signed.headers[header]}")

# %% [markdown]
# The specification publishes a test message, which `labkit.signing` reproduces. Task 1 asks
# you to compute it by hand.

# %%
TEST_SECRET, TEST_ID = OLD_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek"
TEST_TIMESTAMP, TEST_BODY = 1614265330, b'{"test": 2432232314}'
labkit.signing.standard_sign(TEST_SECRET, TEST_ID, TEST_TIMESTAMP, TEST_BODY)

# %% [markdown]
# ### Task 1: a Standard Webhooks signature by hand
#
# Compute the `webhook-signature` entry for the specification's test message (`TEST_SECRET`,
# `TEST_ID`, `TEST_TIMESTAMP` and `TEST_BODY` above) with `base64`, `hmac` and `hashlib`, without
# `labkit.signing`. Set `answer` to the `v1,...` string.

# %% tags=["exercise-answer"]
# labkit: answer 03-standard-signature

# %%
labkit.exercises.check("03-standard-signature", answer)

# %% [markdown]
# <!-- labkit: solution 03-standard-signature -->
#
# The key is the base64 after `whsec_`, decoded. The signed content is the id, a dot, the timestamp, a dot, then the body bytes. The digest is written in base64 after `v1,`.

# %% [markdown]
# Receivers refuse a timestamp more than 5 minutes from their clock. A captured message therefore
# stops working after 5 minutes, and within those 5 minutes the id stops a second delivery.
# `labkit.send(..., secret=...)` signs each attempt with the current time; here is a message
# signed 10 minutes ago:

# %%
ten_minutes_ago = int(time.time()) - 600
stale = events.standard.message("image.pushed").signed(NEW_SECRET, timestamp=ten_minutes_ago)
outcome = labkit.send(stale, rx)  # already signed: sent as it is
print(outcome.status, outcome.detail)

# %% [markdown]
# A fresh message is accepted once, and, unlike in lesson 02, a new id does not help a replay, because the id is signed:

# %%
fresh = events.standard.message("image.pushed").signed(NEW_SECRET, timestamp=int(time.time()))
renamed = fresh.with_headers({"webhook-id": "msg_a_new_id_to_dodge_dedupe"})
for event in (fresh, fresh, renamed):
    outcome = labkit.send(event, rx)
    print(outcome.status, outcome.detail)

# %% [markdown]
# ## 6. Rotating a secret without downtime
#
# Secrets have to change: one leaked, someone left, or a policy says so. Changing both ends at the
# same instant is impossible, so a rotation goes in steps:
#
# ```mermaid
# flowchart LR
#     a["1. receiver accepts<br/>old and new"] --> b["2. sender signs with<br/>new (or both)"]
#     b --> c["3. receiver drops<br/>the old secret"]
# ```
#
# The receiver above is in step 1: its `standard` entry holds both secrets. A sender in step 2 may
# sign with both, putting two space-separated entries in `webhook-signature`, so receivers on
# either secret accept it. A secret that was already retired fails:

# %%
retired = "whsec_" + base64.b64encode(b"r" * 32).decode()
choices = {"old": OLD_SECRET, "new": NEW_SECRET,
           "both": [NEW_SECRET, OLD_SECRET], "retired": retired}
for label, secret in choices.items():
    outcome = labkit.send(events.standard.message("image.pushed"), rx, secret=secret)
    print(f"{label:8} -> {outcome.status}")

# %% [markdown]
# ### Task 2: sign during a rotation
#
# A sender is in step 2 of a rotation from `OLD_SECRET` to `NEW_SECRET`. Build the
# `webhook-signature` header value it sends for the test message (`TEST_ID`, `TEST_TIMESTAMP`,
# `TEST_BODY`), signed with both secrets. You may use `labkit.signing`.

# %% tags=["exercise-answer"]
# labkit: answer 03-rotation

# %%
labkit.exercises.check("03-rotation", answer)

# %% [markdown]
# <!-- labkit: solution 03-rotation -->
#
# One `v1,` entry per secret, separated by a space. A receiver accepts the message if any entry matches any secret it holds.

# %% [markdown]
# ## 7. Senders that cannot sign: tokens, and their limits
#
# Docker Hub, the registry and Alertmanager cannot compute an HMAC. What they can do is send a
# secret along: in the URL (`?token=...`, Docker Hub) or in a header (`Authorization: Bearer ...`,
# registry and Alertmanager). The receiver compares it in constant time:

# %%
print(labkit.send(events.dockerhub.push(tag="v3"), rx.url + "/hooks/dockerhub").status)  # no token
print(labkit.send(events.dockerhub.push(tag="v3"), rx).status)  # the receiver's URL, token included

# %% [markdown]
# ### Task 3: what a token protects
#
# Predict before the next cells show it. A Docker Hub webhook URL carries a secret token. Which of
# these does the token protect against? Answer with a set of letters.
#
# - **a** a stranger who does not know the URL posting fake pushes
# - **b** a body changed on its way to the receiver
# - **c** a captured request sent again later
# - **d** the token being read from a proxy's access log

# %% tags=["exercise-answer"]
# labkit: answer 03-token-limits

# %%
labkit.exercises.check("03-token-limits", answer)

# %% [markdown]
# <!-- labkit: solution 03-token-limits -->
#
# Only **a**: a token proves the sender knows it. It covers no bytes of the body, has no timestamp, and is written down wherever the URL is.

# %% [markdown]
# That keeps out anyone who does not know the token. It does **not** protect the body: the token
# stays valid whatever the body says. Here a push is changed on the way and still accepted:

# %%
genuine = events.dockerhub.push(tag="v4")
forged = genuine.with_body(genuine.body.replace(b'"v4"', b'"evil"'))
print(labkit.send(forged, rx).status, "- accepted, with a tag nobody pushed")

# %% [markdown]
# Nor does it stop **replays**: a captured request carries its token and can be sent again. This
# receiver dedupes Docker Hub pushes on a hash of the body (there is no delivery id), which stops
# an exact copy, but changing any byte makes a "new" delivery, as above.
#
# And the token **leaks** wherever the URL is written down. A URL token is part of every access
# log line, proxy log and screenshot of the webhook settings:

# %%
("token=" + HUB_TOKEN) in rx.hook_url("dockerhub")

# %% [markdown]
# | A token (URL or bearer) | protects? |
# |---|---|
# | strangers who do not know it posting fake events | yes |
# | a body changed on the way | **no**: only a signature over the body does |
# | a captured request sent again | **no**: dedupe, timestamps (Standard Webhooks) |
# | the secret staying secret | **weak**: URLs are logged; prefer a header, rotate tokens |
#
# So: always HTTPS; a bearer header rather than a URL token where the sender allows it; long
# random tokens, rotated; handlers that check what they are told (does tag `v4` exist in the
# registry?) before acting; and a signing sender whenever there is a choice.

# %% [markdown]
# ## 8. From a terminal: listen, trigger, deliveries, redeliver
#
# Everything above has a command-line twin, the way `stripe listen` and `stripe trigger` work
# for Stripe's webhooks: `labkit listen` runs a receiver, `labkit trigger KIND --to URL` sends any
# event of the catalogue, `labkit deliveries` lists what was sent (like GitHub's *Recent
# Deliveries*), and `labkit redeliver ID` sends one again with the same id.
#
# The secret goes in the environment, not on the command line, where every user of the machine
# could read it in the process list. Both commands read `LABKIT_WEBHOOK_SECRET`:

# %%
os.environ["LABKIT_WEBHOOK_SECRET"] = "cli-secret-8e41"  # a lesson value
port = labkit.free_port()
listen_url = f"http://127.0.0.1:{port}"
listen_db = os.path.join(tempfile.mkdtemp(prefix="lesson03-"), "deliveries.db")
listener = labkit.background(f"labkit listen --port {port} --db {listen_db}", name="lesson03-listen")
print(listener.wait_for("labkit receiver on"))

# %% [markdown]
# `labkit.background` only takes the drudgery: it runs the command in the background, stops the
# old one when the cell runs again, and stops it when the kernel ends. In a terminal you would
# simply run `labkit listen --port 8000` in a window of its own.
#
# ### Task 4: trigger, list, redeliver
#
# In terminal lines (`!labkit ...`; IPython fills in `{listen_url}`): trigger a Docker Hub push
# with tag `v5` to your listener; trigger a GitHub push with the delivery id
# `6b1e0a52-7f0a-4d8e-9c1a-0c5e2f7d9a31` (`--delivery-id`); list the last thing you sent with
# `labkit deliveries --limit 1`; and redeliver the GitHub push by its id. Predict first what the
# redelivery's status will be. Set `answer = listen_url`: the check asks your listener what it
# logged.

# %% tags=["exercise-answer"]
# labkit: answer 03-cli-triggers

# %%
labkit.exercises.check("03-cli-triggers", answer)

# %% [markdown]
# <!-- labkit: solution 03-cli-triggers -->
#
# The redelivery carries the same `X-GitHub-Delivery`, so the listener answers `200` and logs it as a duplicate. `--quiet` leaves out the receiver's JSON answer; the `?token=` in a Docker Hub URL is printed as `***`.

# %% [markdown]
# ## Clean up

# %%
insp.stop()
rx.stop()
print("stopped:", labkit.stop_background())
rx

# %% [markdown]
# ## Summary and what's next
#
# - Docker Hub posts `push_data` and `repository` after a push, with no signature; its callback
#   reports the pipeline's result back.
# - A registry posts one notification per blob and one per manifest; the manifest push carries the
#   tag, and order is not guaranteed.
# - Alertmanager posts `firing` and `resolved` groups of alerts; a firing alert has the zero
#   `endsAt`.
# - Standard Webhooks sign id, timestamp and body: stale or renamed copies fail, and two secrets
#   at once make rotation painless.
# - A URL or bearer token only keeps out those who do not know it: no body integrity, no replay
#   protection, and URLs leak into logs.
# - `labkit listen`, `trigger`, `deliveries` and `redeliver` do all of it from a terminal, with the
#   secret in the environment.
#
# You have now met every sender in the chain from `git push` to an alert. Go back to the
# [contents](00-start-here.ipynb) to revisit a lesson.

# %% [markdown]
# <!-- labkit: nav -->
