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
# the real thing: you change a web app, commit, and `git push`, and a chain of webhooks takes the
# change all the way to a running version. You will:
#
# - set up a git repository whose server side sends a signed GitHub `push` webhook on every push;
# - start a pipeline that builds the pushed commit, ships it to a registry, deploys it and watches it;
# - watch the four stages in the **flow** widget while they happen;
# - check that nobody calling the app saw a failed request while the new version took over;
# - read the deliveries that made it all happen: the push, the registry's notifications, and the
#   monitoring events.
#
# **Time needed:** about 45 minutes.
#
# ## Prerequisites
#
# - [01 Webhooks 101](01-webhooks-101.ipynb) to [03 Docker Hub, registry and alerts](03-dockerhub-registry-and-alerts.ipynb):
#   receivers, handlers, push payloads, signatures, registry and Alertmanager webhooks.
# - Docker is **not** required. Without it the services run as local processes; the lesson says
#   which one you are on.

# %% [markdown]
# ## The chain
#
# Every arrow marked *webhook* is an HTTP `POST` to the receiver in this notebook. No stage asks
# the one before it whether it is done: each step starts because the step before it sent a
# webhook. (Prometheus does poll, by design: it scrapes the app's `/metrics` every second. What it
# finds reaches you as Alertmanager's webhook.)
#
# ```mermaid
# sequenceDiagram
#     participant You as You (git push)
#     participant Git as Git server (bare repository)
#     participant Rx as Receiver (this kernel)
#     participant P as Pipeline
#     participant Reg as Registry
#     participant Run as Runtime (the app)
#     You->>Git: git push
#     Git->>Rx: webhook: GitHub push (signed)
#     Rx->>P: verified push to main
#     P->>P: build the commit
#     P->>Reg: ship the build, tagged with the short commit id
#     Reg->>Rx: webhook: registry push (the manifest and its tag)
#     Rx->>P: this tag is in the registry
#     P->>Run: deploy: start the new version, wait for healthy, switch traffic
#     Run->>Rx: webhooks: container events (start, healthy, stop of the old one)
#     Note over Run,Rx: later: health alerts (Alertmanager format) if it goes down
# ```
#
# ## 1. A receiver, and where the services run
#
# One secret authenticates every sender: the git server signs its pushes with it, and the registry
# and the monitor send it as a bearer token. `for_containers=True` also lets containers reach the
# receiver (the Docker runtime's registry runs in one); without Docker it changes nothing. Running
# the cell again replaces the receiver.

# %%
import labkit

SECRET = "lesson06-shared-secret"
rx = labkit.Receiver(secret=SECRET, name="lesson06", for_containers=True).start()
rx

# %% [markdown]
# Next, the **runtime**: what builds and runs the app. `labkit.runtime.get()` picks the Docker
# runtime when a Docker engine answers and the local runtime otherwise (`LABKIT_RUNTIME=local` or
# `docker` decides for it). It says plainly which one it is, and why it was chosen on this
# machine (so this output differs from machine to machine):

# %% tags=["nbval-ignore-output"]
runtime = labkit.runtime.get("lesson06")
print(runtime.describe())
print("why:", runtime.reason)

# %% [markdown]
# The **local runtime** is a stand-in for learning, not Docker. Each stage does real work, but
# not Docker's:
#
# | stage | local runtime (here, without Docker) | Docker runtime |
# |---|---|---|
# | build | checks every module compiles, packs the commit's files into a tar whose sha256 is its identity | `docker build`: runs the Dockerfile, makes an image |
# | ship | stores it in a content-addressed store under `$LABKIT_HOME` that sends registry-format webhooks | `docker push` to a registry container that sends its own webhooks |
# | deploy | starts the app with `uvicorn` on `127.0.0.1`, waits for `/healthz`, switches a front proxy to it | starts a container, waits for its healthcheck, switches traffic to it |
# | monitor | probes `/healthz`, sends Alertmanager-format alerts and Docker-engine-shaped events | Prometheus scrapes the container, Alertmanager sends its alerts; the engine's own events, which labkit forwards to the receiver as webhooks |
#
# ## 2. The app and its repository
#
# `GitSource.create` makes two real git repositories: a **bare** one that plays the server (like
# your repository on GitHub) and a **working clone** where you edit. The clone starts with one
# commit: the small web app in `compose/pipeline/app/`, not pushed yet.

# %%
src = labkit.GitSource.create(rx)
print(src.git("log", "--format=%s (by %an)"))
print(src.git("ls-files"))

# %% [markdown]
# The app answers `GET /` with a greeting and its version. These two lines decide what it says and whether it reports itself healthy:

# %%
print("\n".join(line for line in src.read("app.py").splitlines()
                if line.startswith(("GREETING", "HEALTHY"))))

# %% [markdown]
# On GitHub you would add a webhook in the repository's settings: a payload URL and a secret. Here
# `create(rx)` did the same for the bare repository: it stored `rx.hook_url("github")` and the
# secret in the repository's git config and installed a **`post-receive` hook**, a program git runs
# on the server after every push. The hook reads which refs moved, collects the pushed commits with
# `git log`, and sends a signed `push` delivery with their real ids, messages and authors.
#
# ## 3. The pipeline and the flow widget
#
# The pipeline listens for three kinds of webhook on the receiver: verified `push`es to `main`
# (build and ship), the registry's `push` notification for the new tag (deploy), and alerts (mark
# the serving version as failing). Its handlers only queue the work, so the receiver answers at
# once; a worker thread runs the stages and records each run.

# %%
pipeline = labkit.Pipeline(rx, runtime, src, name="lesson06").start()
pipeline

# %% [markdown]
# The **flow** widget shows the four stages of the newest run. Each box changes colour *and*
# words as its stage goes from waiting to running to passed (or failed, or rolled back), with how
# long it took. Below are the newest log lines and the history of runs, each with a timeline bar.
# Keep it in view while you push.

# %%
flow = pipeline.flow()
flow

# %% [markdown]
# ## 4. The first push
#
# Nothing serves yet: the app's address answers `503` until the first deploy. Push the first commit
# and look at what the server's hook printed. In a terminal git shows those lines with a
# `remote:` prefix; `pushed.hook` holds them without it. They say that the webhook was delivered.

# %%
first = src.head
pushed = src.push()
print(pushed.hook)

# %%
run = pipeline.wait(src.head, timeout=60)
print(run.summary())

# %% [markdown]
# The app now answers at the pipeline's address, which stays the same across versions:

# %%
import httpx

answer = httpx.get(pipeline.url).json()
print(answer["message"])
print("answered by the pushed commit:", answer["version"] == src.head[:7])

# %% [markdown]
# ## 5. Change, commit, push, and watch
#
# Change the greeting and commit, as you would in any project:

# %%
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
    run = pipeline.wait(commit, timeout=60)
print(run.summary())
print("failed requests:", traffic.failed)
print("answers, in order:", traffic.seen)

# %% [markdown]
# **Zero** failed requests: the old version served until the new one answered its health check,
# then the front switched, and the old one finished the requests it had before it was stopped. A
# new version that never gets healthy is rolled back instead, and the old one keeps serving;
# lesson 07 shows that and other failures.
#
# ## 6. Read the deliveries that made it happen
#
# Every step of that release was a webhook to the receiver. These are the deliveries the push
# caused, oldest first (how many of each depends on the runtime):

# %% tags=["nbval-ignore-output"]
caused = [d for d in reversed(rx.deliveries(100)) if d.seq > mark]
for d in caused:
    print(f"{d.source:10} {d.event:26} {'verified' if d.verified else 'NOT verified'}")

# %% [markdown]
# Whatever the runtime, they came in this order of senders, and every one was verified:

# %%
print(" -> ".join(dict.fromkeys(d.source for d in caused)))
print("all verified:", all(d.verified for d in caused))

# %% [markdown]
# - **github push**: from the git server's hook, signed with the secret. The pipeline built the
#   commit it names:

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
# - **engine events**: the runtime reports each version's container (on the local runtime, its
#   process, in the same shape): the new one `start`s and turns `health_status: healthy`; the old
#   one is stopped as `docker stop` does it (SIGTERM, signal 15; SIGKILL, signal 9, only if it
#   has not exited after a grace period of 10 s) and `die`s with its exit code: 0, because it
#   shut down cleanly on SIGTERM. The engine emits these events; labkit forwards them to the
#   receiver as webhooks.

# %%
engine = [d for d in caused if d.source == "engine"]
for action in ("start", "health_status: healthy", "die"):
    print(f"{action:24}", any(d.event == action for d in engine))

# %% [markdown]
# In detail (names, exit codes and extra events differ between runtimes):

# %% tags=["nbval-ignore-output"]
for d in engine:
    attributes = d.payload["Actor"]["Attributes"]
    print(f'{attributes["name"]:24} {d.event:24} exit code {attributes.get("exitCode", "-")}')

# %% [markdown]
# Alerts have not arrived: they come only when the serving version stops answering (`firing`) and
# when it is back (`resolved`). On Docker the stack's Prometheus scrapes the serving container
# every second and Alertmanager sends the alerts its rules raise; the local runtime's probe asks
# `/healthz` every half second and sends alerts of the same shape. The inspector shows all of
# these live; filter it on a source to follow one sender:

# %%
insp = labkit.inspect(rx)
insp

# %% [markdown]
# The pipeline keeps its own record of every run, stage by stage, with start and end times and
# logs: `pipeline.history()`, newest first. The flow widget draws it.

# %%
print(len(pipeline.history()), "runs:", [r.status for r in pipeline.history()])
print([stage.name for stage in run.stages])

# %% [markdown]
# The build and deploy logs of the last run (digests, process ids and times differ on every run):

# %% tags=["nbval-ignore-output"]
print(run.stage("build").log)
print(run.stage("deploy").log)

# %% [markdown]
# <!-- labkit: exercises-intro -->

# %% [markdown]
# ### Exercise 1: ship a change of your own
#
# Change the greeting again (any text), commit and push it, and wait for its run. Set `answer` to
# the run `pipeline.wait(...)` returns.

# %% tags=["exercise-answer"]
# labkit: answer 06-ship-a-change

# %%
labkit.exercises.check("06-ship-a-change", answer)

# %% [markdown]
# <!-- labkit: solution 06-ship-a-change -->
#
# A run passes when all four stages pass: the new version built, reached the registry, got healthy and stayed healthy.

# %% [markdown]
# ### Exercise 2: which webhook starts the deploy?
#
# The pipeline deploys when one particular webhook arrives. Set `answer` to its source, as the
# receiver names sources (`"github"`, `"registry"`, `"alertmanager"` or `"engine"`).

# %% tags=["exercise-answer"]
# labkit: answer 06-which-webhook-deploys

# %%
labkit.exercises.check("06-which-webhook-deploys", answer)

# %% [markdown]
# <!-- labkit: solution 06-which-webhook-deploys -->
#
# The push only starts build and ship. The deploy waits for the registry's notification that the manifest with the new tag was pushed.

# %% [markdown]
# ## Clean up

# %%
insp.stop()
flow.stop()
pipeline.stop()
runtime.stop()
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
# - The pipeline acts only on **verified** pushes to `main`; the same commit is built once, however
#   often it is delivered.
# - Each stage hands over to the next through a webhook: the registry's notification starts the
#   deploy; the monitor's events and alerts come back the same way.
# - A deploy switches traffic only once the new version is healthy: zero failed requests.
# - The flow widget and `pipeline.history()` show each run, stage by stage.
#
# **Next:** 07 *When things go wrong*: a broken build, a version that never gets healthy, a crash,
# a receiver that is down, and a duplicate delivery.

# %% [markdown]
# <!-- labkit: nav -->
