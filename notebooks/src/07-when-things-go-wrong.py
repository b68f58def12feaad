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
#     title: 07 When things go wrong
# ---

# %% [markdown]
# # 07 · When things go wrong: break the chain, then repair it

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# Lesson 06 took a `git push` to a running version when everything worked. Real releases also
# fail, and a good chain of webhooks fails safely. You break it on purpose, with a change of your
# own each time, watch how it reacts, and repair it:
#
# 1. a commit that does not build;
# 2. a version that starts but never gets healthy; then the repair;
# 3. a crash of the version that serves; then a redeploy;
# 4. a push while the receiver is down; then a redelivery;
# 5. the same push delivered twice.
#
# Each check reads the real state: the pipeline's run history, the version that answers, the
# alert log, the delivery log.
#
# **Time needed:** about 30 minutes.
#
# ## Prerequisites
#
# - [06 Push, build, deploy, monitor](06-push-build-deploy-monitor.ipynb): the receiver, the git
#   repository with its push hook, the Dockerfile, the trigger, the pipeline and the runtime.
# - Docker is **not** required: without it the services run as local processes.

# %% [markdown]
# <!-- labkit: tasks-intro -->

# %% [markdown]
# ## Set up: the chain from lesson 06
#
# The same parts as in lesson 06, finished: a receiver on a fixed port (section 4 stops it and
# starts it again at the same address), a runtime, the repository with the finished Dockerfile,
# and the pipeline with the kit's trigger. Running the cell again replaces each of them.

# %%
import httpx
import labkit

SECRET = "lesson07-shared-secret"
rx = labkit.Receiver(secret=SECRET, name="lesson07", port=labkit.free_port(), for_containers=True).start()
runtime = labkit.runtime.get("lesson07")
src = labkit.GitSource.create(rx)
pipeline = labkit.Pipeline(rx, runtime, src, name="lesson07", health_timeout=10).start()
pipeline

# %% [markdown]
# Which runtime this is depends on the machine (the one output of this lesson that is not
# compared when the lesson is tested):

# %% tags=["nbval-ignore-output"]
print(runtime.describe())

# %% [markdown]
# The flow widget shows the newest run's stages; keep it in view. Then push the first commit and
# wait until it serves. `serving()` asks the app's `/version` which commit answers (`None` when
# nothing does); the address stays the same whichever version is behind it.

# %%
flow = labkit.Flow(pipeline)
flow

# %%
def serving():
    reply = httpx.get(pipeline.url + "/version")
    return reply.json()["version"] if reply.is_success else None


first = src.head
src.push()
print(pipeline.wait(first, timeout=90).summary())
print("serving the first commit:", serving() == first[:7])

# %% [markdown]
# ## 1. A commit that does not build
#
# ### Task 1: break the build
#
# Remove the colon after `def hello() -> dict[str, str]` in `app.py` (`src.replace(...)`): a
# syntax error, the kind of slip a quick edit makes. Commit it, push it as if nothing were wrong,
# and set `answer` to its run, `pipeline.wait(src.head, timeout=90)`. Predict: which stage
# fails, and which version answers afterwards?

# %% tags=["exercise-answer"]
# labkit: answer 07-broken-build

# %%
labkit.exercises.check("07-broken-build", answer)

# %% [markdown]
# <!-- labkit: solution 07-broken-build -->
#
# The Dockerfile's `RUN python3 -m compileall -q /app` exits 1 on the syntax error, so the build
# fails there (on the local runtime, its own compile step). Nothing was shipped, so the registry
# sent no webhook and nothing was deployed.

# %% [markdown]
# The first commit still answers:

# %%
print("still serving the first commit:", serving() == first[:7])

# %% [markdown]
# ## 2. A version that never gets healthy
#
# ### Task 2: ship a version that says it is not well
#
# This time the code compiles, but the app reports itself unhealthy: `HEALTHY = False` makes its
# `/healthz` answer `503`. Put the colon back, set the flag, commit, push, and set `answer` to
# the run. The deploy starts the new version next to the old one and waits up to 10 seconds
# (`health_timeout=10` above) for it to get healthy.

# %% tags=["exercise-answer"]
# labkit: answer 07-never-healthy

# %%
labkit.exercises.check("07-never-healthy", answer)

# %% [markdown]
# <!-- labkit: solution 07-never-healthy -->
#
# Build and ship passed, so the registry's webhook started the deploy. The new version never
# answered its health check, so the runtime stopped it and left traffic where it was: the deploy
# stage is **rolled back** and the run **failed**. The deploy log says it step by step:
# `print(answer.stage("deploy").log)`.

# %% [markdown]
# Nobody was switched to the broken version:

# %%
print("still serving the first commit:", serving() == first[:7])

# %% [markdown]
# ### Task 3: repair it
#
# Set `HEALTHY = True` again, commit, push, and set `answer` to the run. The check reads the
# history too: the repair should come after both failures.

# %% tags=["exercise-answer"]
# labkit: answer 07-recover

# %%
labkit.exercises.check("07-recover", answer)

# %% [markdown]
# <!-- labkit: solution 07-recover -->
#
# Every run stays in the history, the failed ones too: what was pushed, when, and why it did not
# serve.

# %% [markdown]
# ## 3. The serving version crashes
#
# A healthy version can still die: out of memory, a bug, a killed process. `runtime.crash("web")`
# kills the serving version with `SIGKILL`, as a crash would: on Docker it does what `docker kill`
# does to the container; on the local runtime it kills the app's process.
#
# Nobody has to notice by hand. On Docker, the stack's **Prometheus** scrapes the serving
# container's `/metrics` every second; its rule `WebDown` (no successful scrape for 3 s) fires,
# and **Alertmanager** sends the alert to the receiver as a webhook. The local runtime's probe
# stands in for both: it asks `/healthz` every half second and sends the same kind of alert after
# 1.5 s.
#
# First note how many deliveries the receiver has, to tell the new ones apart:

# %%
mark = rx.log.count()

# %% [markdown]
# ### Task 4: crash it, and catch the alert
#
# Crash the serving version, then wait for the alert:
# `alert = rx.wait_for(source="alertmanager", since=mark, timeout=60)[0]`. Set `answer = alert`.

# %% tags=["exercise-answer"]
# labkit: answer 07-crash-alert

# %%
labkit.exercises.check("07-crash-alert", answer)

# %% [markdown]
# <!-- labkit: solution 07-crash-alert -->
#
# The pipeline listens for alerts: a `firing` alert for the service marks the run that was
# serving as failed, in its monitor stage, without forgetting that its deploy went well (its
# `outcome` says both).

# %% [markdown]
# The engine emitted a container `die` event too, with exit code 137 (128 + 9, the number of
# `SIGKILL`), and labkit forwarded it to the receiver as a webhook (on the local runtime there is
# no engine: the runtime reports the process's death in the same format):

# %%
deaths = [d.payload["Actor"]["Attributes"]["exitCode"] for d in rx.deliveries(200, source="engine")
          if d.event == "die" and d.seq > mark]
print("a die event with exit code 137:", "137" in deaths)
print("the app answers:", serving())

# %% [markdown]
# Nothing restarts it here: that is the job of a restart policy (`restart: unless-stopped` in
# Compose) or an orchestrator, which would start the same version again.
#
# ### Task 5: redeploy
#
# Deploy a new version: commit (`src.commit("Redeploy after the crash")` makes an empty commit,
# which is enough) and push; set `answer` to its run. The check then reads the alert log for the
# monitor's `resolved` alert (it waits up to 45 s for it: the monitor needs a few seconds to see
# the new version answer).

# %% tags=["exercise-answer"]
# labkit: answer 07-redeploy

# %%
labkit.exercises.check("07-redeploy", answer)

# %% [markdown]
# <!-- labkit: solution 07-redeploy -->
#
# The same alert, `resolved`: the monitor saw the service answer again. Alertmanager sends it
# because its configuration says `send_resolved: true`.

# %% [markdown]
# ## 4. The receiver is down
#
# So far the receiver was always up. A sender must cope when it is not: a deploy of the receiver,
# a restart, a network blip. What does GitHub do with a delivery that fails? It records it as
# failed in the webhook's *Recent Deliveries* and does **not** send it again by itself; someone
# (a person, or a script using the API) has to redeliver it. The lab's hook behaves the same
# after its own three quick tries: the push is in the repository, and no webhook says so.
#
# ### Task 6: push during an outage, then redeliver
#
# Stop the receiver (`rx.stop()`); change the greeting, commit and push. The hook says `NOT
# delivered`, with the delivery's id: `src.push().undelivered` lists those ids. Start the
# receiver again (`rx.start()`, the same address), then redeliver the lost push with
# `labkit.redeliver(id)`, as GitHub's *Redeliver* button does. Set `answer` to what
# `redeliver` returns, and wait for the run of your commit.

# %% tags=["exercise-answer"]
# labkit: answer 07-receiver-outage

# %%
labkit.exercises.check("07-receiver-outage", answer)

# %% [markdown]
# <!-- labkit: solution 07-receiver-outage -->
#
# The redelivery carries the same delivery id and the same signature (GitHub's signature has no
# timestamp, so it stays valid), and the receiver had never seen it, so it is accepted and the
# pipeline builds the commit. Senders that do retry by themselves exist: a registry retries its
# notifications (its `threshold` and `backoff` settings), Alertmanager retries too.

# %% [markdown]
# ## 5. The same push, delivered twice
#
# Senders that retry, and people who press *Redeliver*, can make a receiver get a delivery it
# already has.
#
# ### Task 7: deliver it again
#
# Redeliver the same push once more (`labkit.redeliver(lost)`) and set `answer` to what it
# returns. Predict: what status does the receiver answer, and how many runs does the commit get?

# %% tags=["exercise-answer"]
# labkit: answer 07-duplicate

# %%
labkit.exercises.check("07-duplicate", answer)

# %% [markdown]
# <!-- labkit: solution 07-duplicate -->
#
# The receiver knows the delivery id (`X-GitHub-Delivery`), so it answers `200` and records the
# copy as a **duplicate** without running the handlers. Even a copy with a new id would not build
# twice: the pipeline opens one run per commit.

# %% [markdown]
# ## The history of it all
#
# The pipeline's history keeps every run, oldest first. `outcome` tells a version that never
# deployed from one that deployed fine and was failed later by an alert:

# %%
pipeline.idle()
for r in reversed(pipeline.history()):
    print(f"run {r.id}: {r.message:34} {r.status:7} {r.outcome}")

# %% [markdown]
# ## Clean up

# %%
flow.stop()
pipeline.stop()
runtime.stop()
rx.stop()
rx

# %% [markdown]
# Stopping the runtime stopped every version it started, on Docker the containers too.
#
# ## Summary
#
# - A commit that does not build fails its run at **build**: nothing is shipped or deployed, and
#   the old version keeps serving.
# - A version that never gets healthy is **rolled back**: the run fails, and traffic never leaves
#   the old version.
# - A crash is reported by webhooks, the engine's `die` event and Alertmanager's `firing` alert;
#   the pipeline marks the serving run failed, and a redeploy brings a `resolved` alert.
# - GitHub does not redeliver a failed delivery by itself: after an outage, someone redelivers
#   it, with the same delivery id.
# - A duplicate delivery is recorded as `duplicate`, and the pipeline builds a commit once.
#
# This is the last lesson. Go back to the [contents](00-start-here.ipynb) to revisit one.

# %% [markdown]
# <!-- labkit: nav -->
