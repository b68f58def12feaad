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
#     title: 00 Start here
# ---

# %% [markdown]
# # Webhooks and services in Docker: start here

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# This lab kit teaches **webhooks**: the HTTP requests one system sends to another the moment
# something happens there, such as a `git push`, a new image in a registry or a failing health
# check. You will run a real webhook receiver inside this notebook, send it deliveries shaped
# exactly like the ones GitHub, Docker Hub, a container registry and Alertmanager send, and see
# what a careful receiver does with each of them.
#
# Webhooks are how the **services** of a containerised system tell each other what happened: a
# code host tells the build server, the registry tells the deployer, the monitor tells the person
# on call. A service here means a program with one job that others reach over the network (a web
# app, a database, a registry), usually running in its own container.
#
# **In this notebook** you will see the lesson map, learn how to run cells, and check that this
# machine is ready.
#
# **Time needed:** about 10 minutes.

# %% [markdown]
# ## Prerequisites
#
# - JupyterLab open on this notebook. From the kit's folder, `./dev lab` starts it.
# - Some Python: variables, functions, lists and dicts. No webhook or Docker experience is needed.

# %% [markdown]
# ## The lesson map
#
# Every lesson builds on the one before it:
#
# ```mermaid
# flowchart LR
#     L00["00 Start here<br/>preflight check"] --> L01["01 Webhooks 101<br/>receiver, first delivery, handlers"]
#     L01 --> L02["02 GitHub events<br/>push, ping, pull_request, signatures"]
#     L02 --> L03["03 Docker Hub, registry, alerts<br/>tokens, timestamps, key rotation"]
#     L03 --> L04["04 Services with Compose<br/>microservices, health, scaling"]
#     L04 --> L05["05 Swarm and beyond<br/>replicas, rolling updates, Kubernetes"]
#     L05 --> L06["06 Push, build, deploy, monitor<br/>a real git push, live"]
#     L06 --> L07["07 When things go wrong<br/>broken builds, rollbacks, crashes, retries"]
# ```
#
# | Lesson | What you do | Time |
# |---|---|---|
# | [01 Webhooks 101](01-webhooks-101.ipynb) | write a receiver of your own, post to it with httpx and curl, then meet the kit's receiver: status codes, handlers | 50 min |
# | [02 GitHub events](02-github-events.ipynb) | read push, ping and pull_request deliveries, write the signature check, put it in your receiver and attack it | 55 min |
# | [03 Docker Hub, registry and alerts](03-dockerhub-registry-and-alerts.ipynb) | image and alert webhooks, timestamped signatures, key rotation, tokens; `labkit listen` and `trigger` in a terminal | 60 min |
# | [04 Services with Compose](04-services-with-compose.ipynb) | complete your own compose file for a shop of microservices, run it with Compose, wait for health, find services by name, scale one to three | 50 min |
# | [05 Swarm and beyond](05-swarm-and-beyond.ipynb) | write the shop's Swarm `deploy:` section and update it one task at a time; write a Kubernetes Deployment, a Service and an admission webhook | 40 min |
# | [06 Push, build, deploy, monitor](06-push-build-deploy-monitor.ipynb) | change an app, `git push`, and watch the webhooks build, ship, deploy and monitor it | 45 min |
# | [07 When things go wrong](07-when-things-go-wrong.ipynb) | break the build, ship an unhealthy version, crash the app, take the receiver down, deliver twice | 30 min |
#
# The lessons follow the chain that real deployments run on, one webhook after another:
#
# ```mermaid
# flowchart LR
#     push["git push"] -- "webhook (02)" --> build["build an image"]
#     build --> registry["registry"]
#     registry -- "webhook (03)" --> deploy["deploy the service"]
#     deploy -- "services (04)" --> monitor["monitor"]
#     monitor -- "alert webhook (03)" --> oncall["whoever is on call"]
# ```

# %% [markdown]
# ## How to run a notebook
#
# - Click a cell and press **Shift+Enter**: the cell runs and the next one is selected.
# - **Run ▸ Run All Cells** runs a whole lesson from the top.
# - Output appears under the cell. `[*]` next to a cell means it is still running.
# - Every cell is safe to run again. If things get tangled, use
#   **Kernel ▸ Restart Kernel and Run All Cells** for a clean start.
#
# Try it on the cell below:

# %%
print("Hello from the kernel!")
6 * 7

# %% [markdown]
# The `print` wrote a line, and the cell's last expression, `6 * 7`, was shown as the cell's
# result. Lessons use both.
#
# ## Preflight check
#
# `labkit.doctor()` checks everything the lessons need: Python, the packages, Docker and Compose,
# the runtime and a free port for JupyterLab. Each line says **OK**, or **FIX** followed by the one
# thing to do. Its output differs from machine to machine, so it is the one cell whose output is
# not compared when the lessons are tested.

# %% tags=["nbval-ignore-output"]
import labkit

labkit.doctor()

# %% [markdown]
# ## Which runtime, and why
#
# Later lessons start real services. When a Docker engine answers, they run as containers; when
# none does (a locked-down laptop, a hosted Jupyter), the kit uses its **local runtime**, which
# runs the same small apps as ordinary processes. The local runtime is a stand-in for learning,
# not Docker, and the lessons that start services say plainly which one they are on. The
# `runtime` line of the check above shows the choice and the reason.
#
# You can force the choice with the `LABKIT_RUNTIME` environment variable (`docker` or `local`):

# %%
import os

os.environ["LABKIT_RUNTIME"] = "local"
print(labkit.choose_runtime())
del os.environ["LABKIT_RUNTIME"]

# %% [markdown]
# Lessons 01 to 03 need neither: their webhook receiver runs inside this notebook's kernel.
#
# ## A first delivery
#
# Here is the whole idea in three lines: start a receiver, send it a GitHub `ping`, and look at
# the answer. Lesson 01 takes this apart step by step.

# %%
with labkit.Receiver(name="start-here") as rx:
    outcome = labkit.send(labkit.events.github.ping(), rx)
outcome

# %% [markdown]
# `HTTP 202` means the receiver accepted the delivery. The kit can build realistic deliveries
# from six kinds of senders:

# %%
sorted({kind.split(".")[0] for kind in labkit.events.CATALOG})

# %% [markdown]
# <!-- labkit: exercises-intro -->

# %% [markdown]
# ### Exercise 1: find your way
#
# Which lesson teaches you to verify a webhook signature? Look at the lesson map and set `answer` to its number.

# %% tags=["exercise-answer"]
# labkit: answer 00-lesson-map

# %%
labkit.exercises.check("00-lesson-map", answer)

# %% [markdown]
# <!-- labkit: solution 00-lesson-map -->
#
# The map lists signatures under lesson 02, *GitHub events*.

# %% [markdown]
# ## Summary and what's next
#
# - A webhook is an HTTP request a system sends the moment something happens, so nobody has to
#   keep asking.
# - The lessons run a receiver inside the kernel and send it realistic deliveries; no Docker is
#   needed until the later, service-heavy lessons.
# - `labkit.doctor()` is the preflight check; run it again whenever something seems off.
#
# **Next:** [01 Webhooks 101](01-webhooks-101.ipynb) starts a receiver and sends it a first event.

# %% [markdown]
# <!-- labkit: nav -->
