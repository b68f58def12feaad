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
#     title: 06 Push, build, deploy, monitor
# ---

# %% [markdown]
# # 06 · Push, build, deploy, monitor: a release made of webhooks

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# In lessons 02 and 03 you sent push, registry and alert webhooks by hand. Here they are sent by
# the real thing: you `git push`, and a chain of webhooks takes the commit all the way to a
# running, monitored version. You write the two parts a team owns:
#
# - the app's **Dockerfile**, which the pipeline builds from every commit you push;
# - the **trigger**: your handler on the receiver that turns a verified push into a release
#   (build, ship, deploy stay the kit's);
#
# and you watch the rest: the git server's `post-receive` hook that sends the push, the four
# stages in the **flow** widget, a deploy that no caller notices, the deliveries that made it
# happen, and a **deploy notification** that tells a monitoring tool about the new version.
#
# **Time needed:** about 45 minutes.
#
# ## Prerequisites
#
# - [01 Webhooks 101](01-webhooks-101.ipynb) to [03 Docker Hub, registry and alerts](03-dockerhub-registry-and-alerts.ipynb):
#   receivers, handlers (`@rx.on`), push payloads, signatures, registry and Alertmanager webhooks.
# - Docker is **not** required. Without it the services run as local processes; the lesson says
#   which one you are on, and what the stand-in does instead of Docker.

# %% [markdown]
# <!-- labkit: tasks-intro -->

# %% [markdown]
# ## The chain
#
# Every arrow marked *webhook* is an HTTP `POST`. The stages hand over through webhooks: the
# build starts because a push arrived, the deploy because the registry said the build is in. Two
# parts do ask on their own, by design: Prometheus scrapes the app's `/metrics` every second (what
# it finds reaches you as Alertmanager's webhook), and the deploy asks the new version's
# `/healthz` until it is healthy.
#
# ```mermaid
# sequenceDiagram
#     participant You as You (git push)
#     participant Git as Git server (bare repository)
#     participant Rx as Receiver (this kernel)
#     participant P as Pipeline
#     participant Reg as Registry
#     participant Run as Runtime (the app)
#     participant Mon as Monitoring tool
#     You->>Git: git push
#     Git->>Rx: webhook: GitHub push (signed, from the post-receive hook)
#     Rx->>P: your trigger: release this commit
#     P->>P: build the commit with your Dockerfile
#     P->>Reg: ship the build, tagged with the short commit id
#     Reg->>Rx: webhook: registry push (the manifest and its tag)
#     Rx->>P: this tag is in the registry
#     P->>Run: deploy: start the new version, wait for healthy, switch traffic
#     Run->>Rx: webhooks: engine events (start, healthy, the old one's die)
#     P->>Mon: webhook: deployment.succeeded
#     Note over Run,Rx: later: alerts (Alertmanager) if it goes down
# ```
#
# ## 1. A receiver, the runtime, the inspector
#
# One secret authenticates every sender: the git server signs its pushes with it, and the registry
# and the monitor send it as a bearer token. `for_containers=True` also lets containers reach the
# receiver (the Docker runtime's registry runs in one); without Docker it changes nothing. The
# inspector lists every delivery as it arrives; keep it in view.

# %%
import httpx
import labkit

SECRET = "lesson06-shared-secret"
rx = labkit.Receiver(secret=SECRET, name="lesson06", for_containers=True).start()
insp = labkit.inspect(rx)
insp

# %% [markdown]
# Next, the **runtime**: what builds and runs the app. `labkit.runtime.get()` picks the Docker
# runtime when a Docker engine answers and the local runtime otherwise (`LABKIT_RUNTIME=local` or
# `docker` decides for it). It says which one it is and why; this output differs from machine to
# machine, so it is the one output of this lesson that is not compared when the lesson is tested:

# %% tags=["nbval-ignore-output"]
runtime = labkit.runtime.get("lesson06")
print(runtime.describe())
print("why:", runtime.reason)

# %% [markdown]
# The **local runtime** is a stand-in for learning, not Docker. Each stage does real work, but
# not Docker's:
#
# | stage | local runtime (without Docker) | Docker runtime |
# |---|---|---|
# | build | reads your Dockerfile and does **not** run it (it has no engine; the build log says so); instead it checks that every module compiles and packs the commit's files into a tar whose sha256 is its identity | the engine runs your Dockerfile, instruction by instruction, and makes an image |
# | ship | stores it in a content-addressed store under `$LABKIT_HOME` that sends registry-format webhooks | `docker push` to a registry container that sends its own webhooks |
# | deploy | starts the app with `uvicorn` on `127.0.0.1`, asks `/healthz` until it answers, switches a front proxy to it | starts a container, waits until its `HEALTHCHECK` says healthy, switches traffic to it |
# | monitor | probes `/healthz`, sends Alertmanager-format alerts, and reports its processes as events in the engine's format | Prometheus scrapes the container, Alertmanager sends the alerts its rules raise; the engine emits its events, and labkit forwards them to the receiver as webhooks |
#
# ## 2. The app, its repository, and the push hook
#
# `GitSource.create` makes two real git repositories: a **bare** one that plays the server (your
# repository on GitHub) and a **working clone** where you edit. The clone starts with one commit,
# not pushed yet: the small web app, with a Dockerfile for you to finish (`starter=True`).
# Running the cell again starts both repositories over.

# %%
src = labkit.GitSource.create(rx, starter=True)
print(src.git("log", "--format=%s (by %an)"))
print(src.git("ls-files"))

# %% [markdown]
# The app answers `GET /` with a greeting and its version. These two lines decide what it says
# and whether it reports itself healthy:

# %%
print("\n".join(line for line in src.read("app.py").splitlines()
                if line.startswith(("GREETING", "HEALTHY"))))

# %% [markdown]
# On GitHub you would add a webhook in the repository's settings: a payload URL and a secret.
# `create(rx)` did the same for the bare repository: the URL is in its git config, the secret in a
# file only you can read, and it installed a **`post-receive` hook**, a program git runs on the
# server after every push. Here it is (the two paths are this machine's Python and kit):

# %%
print(src.hook.read_text())

# %% [markdown]
# The hook reads one line per pushed ref from git (`<old commit> <new commit> <ref>`), collects
# the pushed commits with `git log`, and sends a signed `push` delivery with their real ids,
# messages and authors. A `post-receive` hook runs after the push is done, so it cannot refuse a
# push; whatever it prints, git shows the pusher.
#
# ## 3. Your Dockerfile
#
# The pipeline builds every pushed commit with the Dockerfile **in that commit**. Yours is not
# finished:

# %%
print(src.read("Dockerfile"))

# %% [markdown]
# Read it from the top: `FROM` a base image made on this machine (nothing is pulled), the port,
# a line for task 2, how the container starts (`ENTRYPOINT` and `CMD`), and `USER app`: the app
# does not run as root. The settings come first and the code last, so a new commit re-runs only
# the last steps; the steps before come from the build cache.
#
# ### Task 1: put the code in the image, and stop a broken commit
#
# In place of the `TASK 1` line write two instructions: `COPY` the repository (the build
# context, `.`) into `/app/`, owned by the user `app` (`--chown=app:app`); then a `RUN` step that
# compiles every module, `python3 -m compileall -q /app`. It exits 1 on a syntax error, and a
# failing `RUN` fails the build: a broken commit is never shipped. `labkit.fill_task` writes
# lines in place of a `TASK` line, as in lesson 04; or edit `src.workdir / "Dockerfile"` in a
# terminal.

# %% tags=["exercise-answer"]
# labkit: answer 06-dockerfile-build

# %%
labkit.exercises.check("06-dockerfile-build", answer)

# %% [markdown]
# <!-- labkit: solution 06-dockerfile-build -->
#
# Without `--chown`, the files belong to root, and the compile step (run as `app`) cannot write
# its `__pycache__` next to them. Lesson 07 pushes a commit that does not compile and watches
# this step stop it.

# %% [markdown]
# ### Task 2: tell the engine how to ask "are you ready?"
#
# The deploy switches traffic to a new container only once it is **healthy**. In place of the
# `TASK 2` line write a `HEALTHCHECK` that runs `["labkit-probe",
# "http://127.0.0.1:8000/healthz"]` (a tiny client in the base image: exit 0 on a 2xx answer)
# every second: `--interval=1s --timeout=2s --retries=30`. Predict first: with Docker's default
# interval of 30 s, what would every deploy do?

# %% tags=["exercise-answer"]
# labkit: answer 06-dockerfile-healthcheck

# %%
labkit.exercises.check("06-dockerfile-healthcheck", answer)

# %% [markdown]
# <!-- labkit: solution 06-dockerfile-healthcheck -->
#
# Inside the container, `127.0.0.1` is the container itself. With a 30 s interval the first
# check would come after the pipeline's 20 s wait, so every new version would be rolled back.

# %% [markdown]
# Your Dockerfile now reads:

# %%
print(src.read("Dockerfile"))

# %% [markdown]
# ## 4. Your trigger
#
# A push webhook does nothing until something acts on it. On GitHub that is a CI service's
# handler; here it is a handler you write on `rx`. The pipeline below has **no trigger** of its
# own (`trigger=False`): it listens for the registry's webhook (to deploy) and for alerts, and it
# offers its stages to you as one call, `pipeline.release(commit, delivery)`: build and ship that
# commit, then deploy it when the registry says it is in. `release` only queues the work, so your
# handler returns at once, as a handler must. A new version gets 20 s to become healthy
# (`health_timeout`), or it is rolled back.

# %%
pipeline = labkit.Pipeline(rx, runtime, src, name="lesson06", trigger=False, health_timeout=20).start()
pipeline

# %% [markdown]
# The **flow** widget shows the four stages of the newest run. Each box changes colour *and*
# words as its stage goes from waiting to running to passed (or failed, or rolled back), with how
# long it took; below are the newest log lines and the history of runs. Keep it in view.

# %%
flow = labkit.Flow(pipeline)
flow

# %% [markdown]
# ### Task 3: the trigger
#
# Write a handler for GitHub `push` deliveries on `rx` (`@rx.on("github", "push")`, as in lesson
# 01) that reads the payload and calls `pipeline.release(push["after"], delivery)` for a push to
# `refs/heads/main`, and for nothing else: not another branch, and not a push that deletes a
# branch (its payload says `"deleted": true`). The receiver runs handlers only for verified
# deliveries, since it has a secret. Set `answer` to your function.
#
# The check pushes a feature branch through the real hook and then deletes it, and asks what
# your handler did with each; then it shows your handler the same push made to `main`.

# %% tags=["exercise-answer"]
# labkit: answer 06-push-trigger

# %%
labkit.exercises.check("06-push-trigger", answer)

# %% [markdown]
# <!-- labkit: solution 06-push-trigger -->
#
# `after` is the commit the branch points at now; for a deleted branch it is forty zeros, and
# there is nothing to build. Passing the delivery lets the run record which push started it.

# %% [markdown]
# ## 5. The first push
#
# Nothing serves yet: the app's address answers `503` until the first deploy. Predict: what will
# the hook print, and which deliveries will the inspector list?
#
# ### Task 4: commit, push, wait
#
# Commit your Dockerfile, push (`src.push()`; `.hook` is what the server's hook printed: in a
# terminal git shows those lines after `remote:`, here without that prefix), and set `answer` to
# the run, `pipeline.wait(src.head, timeout=90)`. On Docker the engine builds your Dockerfile now.

# %% tags=["exercise-answer"]
# labkit: answer 06-first-push

# %%
labkit.exercises.check("06-first-push", answer)

# %% [markdown]
# <!-- labkit: solution 06-first-push -->
#
# The check found the run's push in the receiver's log (the run records its delivery id), your
# trigger's request in `pipeline.releases`, and your Dockerfile in the pushed commit. To read
# what the build did with it: `print(answer.stage("build").log)` (on Docker, one `Step` per
# instruction; on the local runtime, a line that says it read the Dockerfile and did not run it).

# %% [markdown]
# ## 6. The kit's trigger, next to yours
#
# The kit has a trigger too: `pipeline.add_kit_trigger()` puts it on `rx` next to yours. What it
# adds to yours: it ignores a push to another repository (the payload's `repository.full_name`),
# and it writes down why it ignored a delivery (`pipeline.notes`). Both triggers now ask for a
# release of every push to `main`. The pipeline opens **one run per commit**, so the second ask is
# noted and ignored: asking twice builds once.

# %%
pipeline.add_kit_trigger()
print(pipeline)

# %% [markdown]
# ## 7. Change, commit, push, and watch
#
# Change the greeting and commit, as you would in any project:

# %%
first = src.pushed()  # the commit that serves now
src.replace("app.py", "Hello from the lab's web app!", "Hello from version 2, shipped by webhooks!")
commit = src.commit("Change the greeting")
print(src.git("show", "--stat", "--format=%s", "HEAD"))

# %% [markdown]
# Now push it, with traffic: `labkit.Traffic` calls the app over and over in the background while
# the new version is built and takes over, and counts every request that fails. Watch the flow
# widget above while this runs.

# %%
mark = rx.log.count()  # deliveries so far
with labkit.Traffic(pipeline.url) as traffic:
    print(src.push().hook)
    run = pipeline.wait(commit, timeout=90)
print(run.summary())
print("failed requests:", traffic.failed)
print("runs for this commit:", sum(r.commit == commit for r in pipeline.history()))

# %% [markdown]
# The app answers at the pipeline's address, which stays the same across versions:

# %%
reply = httpx.get(pipeline.url).json()
print(reply["message"])
print("answered by the pushed commit:", reply["version"] == commit[:7])

# %% [markdown]
# **Zero** failed requests: the old version served until the new one was healthy, then the
# front switched, the old one finished the requests it had, and only then was it stopped. A new
# version that never gets healthy is rolled back instead, and the old one keeps serving (lesson
# 07).
#
# ## 8. Read the deliveries that made it happen
#
# Every step of that release was a webhook to the receiver. The senders, in the order they
# first sent, and whether every delivery was verified:

# %%
caused = [d for d in reversed(rx.deliveries(200)) if d.seq > mark]
print(" -> ".join(dict.fromkeys(d.source for d in caused)))
print("all verified:", all(d.verified for d in caused))

# %% [markdown]
# - **github push**: from the git server's hook, signed with the secret; your trigger released
#   the commit it names:

# %%
push = caused[0].payload
print(push["ref"], "|", push["head_commit"]["message"], "|", push["head_commit"]["author"]["name"])
print("after is the commit you pushed:", push["after"] == commit)
print("before is the commit that served until now:", push["before"] == first)

# %% [markdown]
# - **registry push**: a registry notifies once per new blob (the files, the build's config) and
#   once for the **manifest**, the only one that carries the tag. The tag is the short commit id;
#   the deploy started when this notification arrived, not before:

# %%
targets = [e["target"] for d in caused if d.source == "registry" for e in d.payload["events"]]
manifest = [t for t in targets if t.get("tag")][-1]
print("a manifest:", "manifest" in manifest["mediaType"])
print("tagged with the short commit id:", manifest["tag"] == commit[:7])

# %% [markdown]
# ### Task 5: which webhook starts the deploy?
#
# Set `answer` to the source of the webhook whose arrival starts the deploy, as the receiver
# names sources (`"github"`, `"registry"`, `"alertmanager"`, `"engine"` or `"standard"`).

# %% tags=["exercise-answer"]
# labkit: answer 06-which-webhook-deploys

# %%
labkit.exercises.check("06-which-webhook-deploys", answer)

# %% [markdown]
# <!-- labkit: solution 06-which-webhook-deploys -->
#
# Your trigger only asks for build and ship. The deploy waits for the registry's notification
# that the manifest with the new tag was pushed: what is deployed is what is in the registry.

# %% [markdown]
# - **engine events**: the engine emits an event whenever a container starts, changes health or
#   dies, and labkit forwards them to the receiver as webhooks (the local runtime reports its
#   processes in the same format). The new version `start`ed and turned healthy; the old one
#   `die`d:

# %%
def actions(tag):
    return [d.event for d in caused if d.source == "engine"
            and d.payload["Actor"]["Attributes"]["image"].endswith(":" + tag)]

print("new version:", list(dict.fromkeys(a for a in actions(commit[:7]) if a != "health_status: starting")))
print("old version:", [a for a in actions(push["before"][:7]) if a == "die"])

# %% [markdown]
# The old version was stopped the way `docker stop` stops a container: `SIGTERM` (signal 15),
# then `SIGKILL` (signal 9) only if it has not exited after a grace period (10 s on Docker, the
# `docker stop` default; 5 s on the local runtime). Its `die` event carries the exit code it got:

# %%
died = [d for d in caused if d.source == "engine" and d.event == "die"]
code = int(died[0].payload["Actor"]["Attributes"]["exitCode"]) if died else None
print("exit code after SIGTERM:", code)
print("needed SIGKILL (exit code 137 = 128 + 9):", code == 137)

# %% [markdown]
# The code is not the same on both runtimes, and both are a clean stop. The app (uvicorn)
# catches `SIGTERM`, finishes the requests it has, shuts down, and then raises the `SIGTERM`
# again so that whoever started it sees it end by that signal: 143, that is 128 + 15, on the
# local runtime. In a container the app is process 1, and the kernel does not deliver a signal
# that process 1 has no handler for, so the same re-raise does nothing and the engine reports
# 0. A kill with `SIGKILL` would show 137 (lesson 07 crashes a version that way).
#
# No alert has arrived: alerts come only when the serving version stops answering (`firing`) and
# when it is back (`resolved`). On Docker the stack's Prometheus scrapes the serving container
# every second and Alertmanager sends the alerts its rules raise; the local runtime's probe asks
# `/healthz` every half second and sends alerts of the same shape.
#
# ## 9. Tell the monitoring tool about the deploy
#
# Monitoring tools (Datadog, Grafana, Sentry, ...) take deploy notifications: a webhook that says
# which version went live, so a graph can mark the moment and an error can be tied to a release.
# Here a second receiver plays the monitoring tool, with a secret of its own:

# %%
MONITORING_SECRET = "lesson06-monitoring-secret"
monitoring = labkit.Receiver(secret=MONITORING_SECRET, name="lesson06-monitoring").start()
seen = monitoring.log.count()
monitoring

# %% [markdown]
# `pipeline.notify_deploys(url, secret=...)` makes the pipeline send, after every deploy, a
# signed [Standard Webhooks](https://www.standardwebhooks.com/) message: `deployment.succeeded`,
# or `deployment.rolled_back` when the new version never got healthy.
#
# ### Task 6: the deploy notification
#
# Point the notifications at the monitoring receiver's `standard` hook with its secret; change
# the greeting to say version 3, commit and push; then set `answer` to the notification as the
# monitoring receiver logged it: `monitoring.wait_for(source="standard", since=seen,
# timeout=90)[0]`.

# %% tags=["exercise-answer"]
# labkit: answer 06-deploy-notification

# %%
labkit.exercises.check("06-deploy-notification", answer)

# %% [markdown]
# <!-- labkit: solution 06-deploy-notification -->
#
# The check compared the version the notification names with the version that answers
# `/version` now. A monitoring tool that hears of every deploy can draw a line on its graphs at
# that moment.

# %% [markdown]
# What arrived at the monitoring tool:

# %%
for d in reversed(monitoring.deliveries(10)):
    data = d.payload["data"]
    print(d.event, "| verified:", d.verified, "| version serving now:",
          data["version"] == httpx.get(pipeline.url + "/version").json()["version"])

# %% [markdown]
# ## 10. The run history
#
# The pipeline keeps its own record of every run, stage by stage, with start and end times and
# logs: `pipeline.history()`, newest first. The flow widget draws it.

# %%
pipeline.idle()  # the newest run passes once its version has stayed healthy for a moment
for r in reversed(pipeline.history()):
    print(f"run {r.id}: {r.message:24} {r.status:7} {r.outcome}")

# %% [markdown]
# ## Clean up

# %%
insp.stop()
flow.stop()
pipeline.stop()
runtime.stop()
monitoring.stop()
rx.stop()
rx

# %% [markdown]
# Stopping the runtime stopped every version it started. Even without this cell nothing would be
# left running: the local runtime's processes stop when the kernel goes away, however it goes.
#
# ## Summary and what's next
#
# - A `git push` to a repository with a `post-receive` hook sends a signed GitHub-format `push`
#   webhook with the real commits.
# - Your **Dockerfile** is what the pipeline builds: code copied in as a non-root user, a build
#   step that stops a broken commit, a `HEALTHCHECK` that the deploy waits for.
# - Your **trigger** is a handler that turns a verified push to `main` into a release; the stages
#   stay the kit's. The pipeline builds a commit once, however often it is asked.
# - Each stage hands over to the next through a webhook: the registry's notification starts the
#   deploy; the engine's events come back the same way, and the monitoring tool hears of the
#   deploy from a signed notification.
# - A deploy switches traffic only once the new version is healthy: zero failed requests.
#
# **Next:** 07 *When things go wrong*: you break the chain on purpose (a broken build, a version
# that never gets healthy, a crash, a receiver that is down, a duplicate delivery) and repair it.

# %% [markdown]
# <!-- labkit: nav -->
