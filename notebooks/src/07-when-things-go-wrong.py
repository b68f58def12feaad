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
# # 07 · When things go wrong: failures the chain survives

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# Lesson 06 showed the chain from `git push` to a running version when everything works. Real
# releases also fail, and a good chain of webhooks fails safely. You will break it on purpose, one
# way at a time:
#
# 1. push a commit that does not even build;
# 2. push a version that starts but never gets healthy;
# 3. crash the version that serves;
# 4. send an event while the receiver is down;
# 5. deliver the same push twice.
#
# Each time you will check the same things: what the pipeline recorded, which webhooks arrived,
# and which version answers.
#
# **Time needed:** about 30 minutes.
#
# ## Prerequisites
#
# - [06 Push, build, deploy, monitor](06-push-build-deploy-monitor.ipynb): the receiver, the git
#   repository with its push hook, the pipeline and the runtime.
# - Docker is **not** required: without it the services run as local processes.

# %% [markdown]
# ## Set up: the chain from lesson 06
#
# The same four parts as in lesson 06: a receiver that every sender authenticates to with one
# secret, a runtime, a git repository whose hook sends signed pushes, and the pipeline. Running
# the cell again replaces each of them.

# %%
import tempfile
import threading
import time
from pathlib import Path

import httpx
import labkit

SECRET = "lesson07-shared-secret"
rx = labkit.Receiver(secret=SECRET, name="lesson07", for_containers=True).start()
runtime = labkit.runtime.get("lesson07")
src = labkit.GitSource.create(rx)
pipeline = labkit.Pipeline(rx, runtime, src, name="lesson07").start()
print("pipeline listening:", pipeline.running)

# %% [markdown]
# Which runtime this is depends on the machine:

# %% tags=["nbval-ignore-output"]
print(runtime.describe())

# %% [markdown]
# Push the first commit and wait until it serves. `serving()` asks the app's `/version` which
# commit answers; the address stays the same whichever version is behind it.

# %%
def serving():
    return httpx.get(pipeline.url + "/version").json()["version"]


first = src.head
src.push()
print(pipeline.wait(first, timeout=60).summary())
print("serving the first commit:", serving() == first[:7])

# %% [markdown]
# ## 1. A commit that does not build
#
# Remove the colon after a function header: a syntax error, the kind of mistake a quick edit
# makes. Commit it and push it as if nothing were wrong.

# %%
src.replace("app.py", "def hello() -> dict[str, str]:", "def hello() -> dict[str, str]")
broken = src.commit("Tidy up hello()")
src.push()
run = pipeline.wait(broken, timeout=60)
print(run.summary())
print("failed stage:", [stage.name for stage in run.stages if stage.status == "failed"])

# %% [markdown]
# The build compiles every module (on Docker, the Dockerfile's `RUN python3 -m compileall`), so
# the run stops there. Nothing was shipped, so the registry sent no webhook and nothing was
# deployed: the first commit still answers.

# %%
print("still serving the first commit:", serving() == first[:7])

# %% [markdown]
# The run's reason says what failed and what kept serving (the wording of the compiler's error differs between runtimes):

# %% tags=["nbval-ignore-output"]
print(run.reason)

# %% [markdown]
# ## 2. A version that never gets healthy
#
# This time the code compiles, but the app says it is not well: `HEALTHY = False` makes its
# `/healthz` answer `503`. Fix the colon, set the flag, commit and push. The deploy starts the new
# version next to the old one and waits up to 10 seconds for it to get healthy; wait for it.

# %%
src.replace("app.py", "def hello() -> dict[str, str]\n", "def hello() -> dict[str, str]:\n")
src.replace("app.py", "HEALTHY = True", "HEALTHY = False")
unhealthy = src.commit("Fix hello(), but report unhealthy")
src.push()
run = pipeline.wait(unhealthy, timeout=90)
print(run.summary())

# %% [markdown]
# Build and ship passed, so the registry's webhook started the deploy. The new version never
# answered its health check, so the runtime stopped it and left traffic where it was: the deploy
# stage is **rolled back** and the run **failed**. Nobody was switched to the broken version:

# %%
print("deploy stage:", run.stage("deploy").status)
print("still serving the first commit:", serving() == first[:7])

# %% [markdown]
# The deploy log tells the story step by step (names, times and the last health answer differ between runtimes):

# %% tags=["nbval-ignore-output"]
print(run.stage("deploy").log)

# %% [markdown]
# ## 3. The serving version crashes
#
# A healthy version can still die: out of memory, a bug, a killed process. `runtime.crash("web")`
# kills the serving version with `SIGKILL`, as a crash would: on Docker it does what `docker kill`
# does to the container; on the local runtime it kills the app's process.

# %%
pipeline.idle()
rx.idle()
mark = rx.log.count()  # deliveries so far
crashed = runtime.crash("web")  # the container's name on Docker, the process id locally

# %% [markdown]
# Nobody has to notice by hand. On Docker, the stack's **Prometheus** scrapes the serving
# container's `/metrics` every second; its rule `WebDown` (no successful scrape for 3 s) fires, and
# **Alertmanager** sends the alert to the receiver as a webhook. The local runtime's probe stands
# in for both: it asks `/healthz` every half second and sends the same kind of alert after 1.5 s.
# Wait for it:

# %%
alert = rx.wait_for(source="alertmanager", since=mark, timeout=60)[0]
print(alert.payload["status"], alert.payload["alerts"][0]["labels"]["alertname"])
print("verified:", alert.verified)

# %% [markdown]
# The engine emitted a container `die` event too, with exit code 137 (128 + 9, the number of
# `SIGKILL`), and labkit forwarded it to the receiver as a webhook. Other engine events may have arrived as well; pick the death of the
# version that served:

# %%
rx.wait_for(source="engine", since=mark, timeout=30)
died = [d for d in rx.deliveries(200, source="engine") if d.seq > mark and d.event == "die"
        and d.payload["Actor"]["Attributes"]["image"].endswith(":" + first[:7])]
print(len(died), "die event, exit code", died[0].payload["Actor"]["Attributes"]["exitCode"])

# %% [markdown]
# The pipeline listens for alerts too: a `firing` alert for the service marks the run that was
# serving as failed, in its monitor stage. And the app's address has nothing behind it now:

# %%
pipeline.idle()
print(pipeline.run_of(first).summary())
print("the app answers HTTP", httpx.get(pipeline.url).status_code)

# %% [markdown]
# Nothing restarts it on its own here: that is the job of a restart policy or an orchestrator, and
# the next push will deploy a new version anyway (section 5).
#
# ## 4. The receiver is down
#
# So far the receiver was always up. A sender must cope when it is not: a deploy of the receiver,
# a restart, a network blip. Start a second receiver that keeps its log in a file, note its
# address, and stop it:

# %%
db = str(Path(tempfile.mkdtemp(prefix="lesson07-")) / "deliveries.db")
rx2 = labkit.Receiver(name="lesson07-down", db=db).start()
port, url = rx2.port, rx2.hook_url("github")
rx2.stop()
print(rx2)

# %% [markdown]
# Now send a push to it in a background thread with labkit's sender, which tries up to 8 more
# times with exponential backoff. GitHub itself does not: a failed delivery stays failed until
# someone redelivers it (lesson 02). A registry does retry its notifications (its `threshold`
# and `backoff` settings). While the first tries fail, start the receiver again on the
# same port with the same log file:

# %%
event = labkit.events.github.push()
sent = {}
sender = threading.Thread(target=lambda: sent.update(
    outcome=labkit.send(event, url, retries=8, backoff=0.5)))
sender.start()
time.sleep(1.5)  # the receiver stays down for a while
rx2 = labkit.Receiver(name="lesson07-down", port=port, db=db).start()
sender.join()
outcome = sent["outcome"]
print("delivered:", outcome.ok, "| more than one attempt:", len(outcome.attempts) > 1)
print("the first attempt:", outcome.attempts[0].error.split(":")[0])

# %% [markdown]
# Each attempt, with its status or error (how many there were depends on the random part of the backoff):

# %% tags=["nbval-ignore-output"]
for attempt in outcome.attempts:
    print(attempt.number, attempt.status or attempt.error)

# %% [markdown]
# Every attempt carried the same delivery id, and only one got through, so the receiver stored
# the event exactly once:

# %%
copies = [d for d in rx2.deliveries(source="github") if d.id == event.delivery_id]
print(len(copies), "copy stored, status", copies[0].status)

# %% [markdown]
# ## 5. The same push, delivered twice
#
# Senders retry when they do not hear back in time, so a receiver can get a delivery it already
# has. Fix the health flag, commit and push; then send the very same push delivery again with
# `labkit.redeliver`, as GitHub's *Redeliver* button does.

# %%
src.replace("app.py", "HEALTHY = False", "HEALTHY = True")
fixed = src.commit("Report healthy again")
mark = rx.log.count()
src.push()
push = rx.wait_for(source="github", since=mark, timeout=30)[0]
again = labkit.redeliver(push.id)
print("first delivery:", push.status, "| again:", again.status, again.detail)

# %% [markdown]
# The receiver knows the delivery id (`X-GitHub-Delivery`), so it answers `200` and records the
# copy as a **duplicate**. The pipeline opens one run per commit anyway, so the commit is built
# once:

# %%
run = pipeline.wait(fixed, timeout=60)
copies = [d for d in reversed(rx.deliveries(100, source="github")) if d.id == push.id]
print("deliveries of that push:", [d.status for d in copies])
print("runs for the commit:", sum(r.commit == fixed for r in pipeline.history()))
print(run.summary())
print("serving the fix:", serving() == fixed[:7])

# %% [markdown]
# The fix serves, and the crash of section 3 is over. The pipeline's history keeps every failure,
# oldest first. `outcome` tells a version that never deployed from one that deployed fine and was
# failed later by an alert:

# %%
for r in reversed(pipeline.history()):
    print(f"{r.message:36} {r.status:7} {r.outcome}")

# %% [markdown]
# <!-- labkit: exercises-intro -->

# %% [markdown]
# ### Exercise 1: which stage fails?
#
# A commit has a syntax error in `app.py`. Set `answer` to the name of the stage whose failure
# stops its run (`"build"`, `"ship"`, `"deploy"` or `"monitor"`).

# %% tags=["exercise-answer"]
# labkit: answer 07-which-stage-fails

# %%
labkit.exercises.check("07-which-stage-fails", answer)

# %% [markdown]
# <!-- labkit: solution 07-which-stage-fails -->
#
# The build compiles every module. A commit that does not compile is never shipped, so no registry webhook comes and no deploy starts.

# %% [markdown]
# ### Exercise 2: how many builds?
#
# A push delivery reaches the receiver twice, with the same delivery id. Set `answer` to the
# number of times the pipeline builds the pushed commit.

# %% tags=["exercise-answer"]
# labkit: answer 07-duplicate-builds

# %%
labkit.exercises.check("07-duplicate-builds", answer)

# %% [markdown]
# <!-- labkit: solution 07-duplicate-builds -->
#
# The receiver records the second copy as a duplicate, and the pipeline opens at most one run per commit, so the commit is built once.

# %% [markdown]
# ## Clean up

# %%
rx2.stop()
pipeline.stop()
runtime.stop()
rx.stop()
print(rx, rx2)

# %% [markdown]
# Stopping the runtime stopped every version it started, on Docker the containers too.
#
# ## Summary
#
# - A commit that does not build fails its run at **build**: nothing is shipped or deployed, and
#   the old version keeps serving.
# - A version that never gets healthy is **rolled back**: the run fails, and traffic never leaves
#   the old version.
# - A crash is reported by webhooks, an engine `die` event and an Alertmanager `firing` alert;
#   the pipeline marks the serving run failed, and the next good push recovers.
# - A sender that retries with backoff gets an event through a receiver's downtime, and the same
#   delivery id makes it arrive once.
# - A duplicate delivery is recorded as `duplicate`, and the pipeline builds a commit once.
#
# This is the last lesson. Go back to the [contents](00-start-here.ipynb) to revisit one.

# %% [markdown]
# <!-- labkit: nav -->
