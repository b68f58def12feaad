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
#     title: 04 Services with Compose
# ---

# %% [markdown]
# # 04 · Services with Compose: a shop of microservices

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# You will learn, by writing it yourself:
#
# - what a Compose file declares, starting from the classic web + database example, and what a
#   careful one adds: healthchecks, readiness, networks, secrets, loopback-only ports;
# - how to start a stack with Compose's own command line and wait until every service is
#   **healthy**, not just started;
# - how services find each other **by name**, and why only one of them is reachable from outside;
# - how to **scale** a service to three replicas and watch requests spread over them;
# - how to read a stack's logs and take it down cleanly.
#
# You work on **your own copy** of the shop's Compose file, `my-shop/compose.yaml`: it runs as
# the kit gives it, and it has four lines marked `TASK` for you to write. Five tasks sit inside the
# sections; each check reads your file as Compose reads it, or the running stack itself.
#
# **Time needed:** about 50 minutes (plus about 3 minutes the first time the Docker images are
# built).
#
# ## Prerequisites
#
# - [00 Start here](00-start-here.ipynb) with the preflight check passing. Lessons 01 to 03 are
#   not needed.
# - Docker is **optional**. With a Docker engine and Compose (`docker compose` or
#   `docker-compose`; the kit finds either), the shop runs as real containers. Nothing is pulled
#   from a registry: `labkit images build` makes every image on this machine from Debian packages
#   and Python wheels (a few minutes the first time, seconds after that), or `labkit images load
#   FILE` restores them from a workshop bundle; the cell below builds whatever is missing.
# - Without Docker, the same shop runs as **local processes**: a stand-in for learning, not
#   Docker. The lesson says at each step what Docker does that the stand-in does not.

# %%
import collections

import httpx
import labkit

if labkit.choose_runtime().name == "docker":  # the lab images, made here, never pulled
    labkit.images.build(progress=None)

# %% [markdown]
# <!-- labkit: tasks-intro -->

# %% [markdown]
# ## 1. The classic example: a web app and its database
#
# Most Compose tutorials start with a file like this one:
#
# ```yaml
# services:
#   db:
#     image: mysql:5.7
#     environment:
#       MYSQL_ROOT_PASSWORD: example
#   web:
#     image: my-web-app:latest
#     ports:
#       - "8080:80"
#     depends_on:
#       - db
# ```
#
# It declares two **services**. Each becomes one or more containers made from an `image`;
# Compose puts them on a network of their own, where `web` reaches the database at the host
# name `db`. `ports` publishes the web app's port 80 on port 8080 of the machine, and
# `depends_on` starts `db` before `web`.
#
# It works on a laptop, and it has four problems that bite later:
#
# | line | the problem | what this lesson's stack does instead |
# |---|---|---|
# | `"8080:80"` | publishes on **every** interface of the machine: anyone on the Wi-Fi can connect | `"127.0.0.1::8000"`: this machine only, on a port Docker picks |
# | `depends_on: [db]` | waits for the database **container** to start, not for the database to accept connections | `condition: service_healthy` and a `healthcheck` on every service |
# | `MYSQL_ROOT_PASSWORD: example` | the password sits in the file, in `docker inspect` and in `/proc/<pid>/environ` of the server's process (plain `ps` does not show it) | a Compose **secret**: a file mounted at `/run/secrets/db_password` |
# | one flat network | every container can reach every other, and the internet | an `internal` backend network; only the gateway also joins a front one |
#
# ## 2. Your copy of the shop
#
# The stack in `compose/services/` is a small shop split into **microservices**, each a small
# FastAPI app in its own container:
#
# ```mermaid
# flowchart LR
#     you["this notebook"] -- "127.0.0.1:PORT" --> gateway
#     subgraph frontend["frontend network"]
#         gateway
#     end
#     subgraph backend["backend network (internal)"]
#         gateway --> users
#         gateway --> products
#         gateway --> orders
#         orders --> users
#         orders --> products
#         orders --> db[("db<br/>MariaDB")]
#     end
# ```
#
# `labkit.copy_stack` copies it into the folder `my-shop/` next to this notebook, with a compose
# file that is not finished yet. A file you already have there is never replaced, so running the
# cell again keeps your work:

# %%
shop = labkit.copy_stack("services", "my-shop")
shop

# %% [markdown]
# Open [my-shop/compose.yaml](my-shop/compose.yaml) in JupyterLab's editor next to this
# notebook. Read it from the top:
#
# - **`x-app: &app`** is a block of settings shared by the four app services: the same image
#   (built from `./shop`, `FROM labkit/python-app`), a non-root `user`, a read-only file system,
#   no Linux capabilities. `<<: *app` merges it into each service, which then only says which app
#   to run (`command:`).
# - **`secrets`**: the database password is a file (made at random the first time, under
#   `~/.labkit/secrets/`). MariaDB and the orders service read it from `/run/secrets/db_password`.
# - **`volumes`**: the database keeps its data in the named volume `dbdata`.
# - **`.env`** (next to it, written by the kit): Compose reads it by itself. It names the
#   project `labkit-my-shop` and says where the secrets are, so the command line and the kit's
#   Python calls see one and the same stack.
# - four lines marked **`TASK`**: yours.
#
# ### The same file without Docker
#
# On the local runtime, `LocalStack` reads this file and does what it can with processes on this
# machine. What Docker does, and what the stand-in does instead:
#
# | compose.yaml says | Docker (Compose) | the local stand-in |
# |---|---|---|
# | `build: ./shop`, `command: ["users:app"]` | builds one image; runs a container per replica, each with its own IP address | runs `uvicorn users:app` from `my-shop/shop/`: one process per replica, each on a free port |
# | `db`: MariaDB, its data in the volume `dbdata` | a MariaDB container | no database server: the orders service writes to a **SQLite file** (`DB_URL=sqlite:///...`); `down -v` deletes it as Docker deletes the volume |
# | names such as `http://users:8000` | Docker's DNS answers each name with its replicas' addresses | a table of names and `127.0.0.1:PORT` addresses in a file every process reads (`SERVICE_ADDRESSES`), rewritten when a service scales |
# | `healthcheck`, `depends_on` with `service_healthy` | the engine runs the check inside the container | the kernel asks each process's `/healthz`; the same start order, the same condition |
# | `ports` | publishes on the address the entry names, `0.0.0.0` (every interface) when it names none | the process listens on that same address |
# | `networks` | only services on a shared network reach each other; `internal` has no way out | not applied: every process can reach every other |
# | `user`, `read_only`, `cap_drop`, `secrets` | enforced by the engine | not applied: the processes run as you |
# | the hostname in each answer | the container's short id | `<service>-<replica>`, e.g. `products-2` |
#
# ## 3. Healthchecks: "are you ready?"
#
# A running container is not a ready service: the app inside may still be starting, or stuck.
# A **`healthcheck`** tells Docker how to ask: a command the engine runs inside the container
# every `interval`; after `retries` failures in a row the container is `unhealthy`. Each shop app
# answers `GET /healthz`, and the image has a tiny client for it, `labkit-probe URL`, which exits
# 0 on a 2xx answer and 1 otherwise. The database has its own check already (`mariadb-admin
# ping`).
#
# ### Task 1: a healthcheck for every app
#
# In `x-app`, replace the line marked `TASK 1` with a `healthcheck` that runs
# `["CMD", "labkit-probe", "http://127.0.0.1:8000/healthz"]` every 2 s (`interval: 2s`,
# `timeout: 3s`, `retries: 30`). Written once in `x-app`, every service that merges `*app`
# gets it. Save the file, then run the answer cell and the check.

# %% tags=["exercise-answer"]
# labkit: answer 04-healthcheck

# %%
labkit.exercises.check("04-healthcheck", answer)

# %% [markdown]
# <!-- labkit: solution 04-healthcheck -->
#
# `"CMD"` runs the program directly (no shell in between); `127.0.0.1` is the container itself,
# since the engine runs the check inside it. The check reads the file through `compose config`,
# the way Compose reads it, so the anchor is merged into every service.

# %% [markdown]
# ## 4. Start order: wait for healthy, not for started
#
# `depends_on: [db, users, products]` (the short form) makes Compose *start* those containers
# before `orders`, and that is all: `orders` may start while MariaDB is still creating its
# database, and its first orders fail. The long form waits for a **condition**:
# `service_started` (the same as the short form), `service_healthy` (the healthcheck passed), or
# `service_completed_successfully` (a one-off job exited 0).
#
# ### Task 2: orders waits for healthy services
#
# Replace the line marked `TASK 2` (in `orders`) with the long form: `db`, `users` and
# `products`, each with `{condition: service_healthy}`. Predict first: what would Compose say
# about `service_healthy` on a service that has no healthcheck? (It refuses to start the stack,
# naming the service: one more reason Task 1 comes first.)

# %% tags=["exercise-answer"]
# labkit: answer 04-depends-on

# %%
labkit.exercises.check("04-depends-on", answer)

# %% [markdown]
# <!-- labkit: solution 04-depends-on -->
#
# The long form is a mapping: each service `orders` needs, with the state to wait for.

# %% [markdown]
# ## 5. Up, with Compose's own command line
#
# In a terminal you would type `docker compose -f my-shop/compose.yaml up --wait` (Compose v2)
# or `docker-compose -f my-shop/compose.yaml up -d` (v1, which has no `--wait`). In this
# notebook, **`%compose`** runs exactly that: the Compose this machine has, with the words you
# give it, after printing the command. Compose's own output (the image build, each container
# created) shows in the progress view while it works; then the cell prints the stack's state as
# read from the engine: how many replicas of each service run, their health, and where the port
# is published. Without Docker, `%compose` drives the local stand-in instead, and its printed
# command starts with `labkit stand-in` to say so.
#
# `up` creates what the file declares, in `depends_on` order; `--wait` returns once every
# service is healthy. Running it again changes only what differs from the file: the project name
# (`labkit-my-shop`, from `.env`) is fixed, so there is never a second shop.

# %%
%compose -f my-shop/compose.yaml up --wait

# %% [markdown]
# `ps` shows the same state at any time. Look at the gateway's line: predict what
# "every interface" means for who can reach your shop.

# %%
%compose -f my-shop/compose.yaml ps

# %% [markdown]
# For Python, `labkit.stack` gives a handle on the same stack: `url`, `ps`, `logs` and the
# rest. For a view that keeps itself current while you work (it reads the state every second),
# display a `StackStatus`; keep it in sight when you scale in section 9:

# %%
stack = labkit.stack("my-shop/compose.yaml")
view = labkit.widgets.StackStatus(stack)
view

# %% [markdown]
# ## 6. One door, on this machine only
#
# `ports: ["8000"]` publishes the gateway's port 8000 on a port Docker picks, on **every**
# interface of the machine (`0.0.0.0`): anyone on the same Wi-Fi or network can reach your
# shop. The address goes first to keep it on this machine: `"127.0.0.1::8000"` reads
# `HOST_IP:HOST_PORT:CONTAINER_PORT`, with the host port left empty so that Docker picks a free
# one and two copies never clash.
#
# ### Task 3: publish on 127.0.0.1 only
#
# Replace the line marked `TASK 3` with `ports: ["127.0.0.1::8000"]`, save, and run
# `%compose -f my-shop/compose.yaml up --wait` again. Predict: which containers does Compose
# recreate? (Only the gateway: nothing else changed.) The check reads where the *running*
# gateway is published, so a saved file alone is not enough.

# %% tags=["exercise-answer"]
# labkit: answer 04-loopback-port

# %%
labkit.exercises.check("04-loopback-port", answer)

# %% [markdown]
# <!-- labkit: solution 04-loopback-port -->
#
# `"8000:8000"` or `"8000"` would publish on every interface. Writing the address first keeps
# the service on this machine; leaving the host port empty avoids clashes when several stacks
# (or several learners on one server) run at once.

# %% [markdown]
# `stack.url("gateway")` says where the gateway's port 8000 is published now. The gateway
# forwards `/api/<service>/...` to that service:

# %%
url = stack.url("gateway")
print(url)
httpx.get(url + "/api/products").json()["products"]

# %% [markdown]
# The other services publish nothing, so the stack gives no address for them:

# %%
try:
    stack.url("users")
except labkit.StackError as error:
    print(error)

# %% [markdown]
# ## 7. An internal network
#
# Services on one network reach each other; a container reaches nothing it shares no network
# with. Your file has two: `frontend`, with only the gateway, and `backend`, with everything.
# Marked **`internal: true`**, a network has no route out of the machine, and no port can be
# published from it: only the gateway, which is on both, is a way in. On a Linux host, this
# machine itself still reaches the containers by their IP addresses on that network (Docker
# Desktop on macOS or Windows runs the containers in a VM, where even that fails).
#
# ### Task 4: make backend internal
#
# Replace the line marked `TASK 4` with `backend:` and, under it, `internal: true`. Compose does
# not change a network's options while it exists, so apply it with
# `%compose -f my-shop/compose.yaml down`, then `up --wait` (`down` without `-v` keeps the
# database's volume). The check reads the networks as the engine has them.

# %% tags=["exercise-answer"]
# labkit: answer 04-internal-network

# %%
labkit.exercises.check("04-internal-network", answer)

# %% [markdown]
# <!-- labkit: solution 04-internal-network -->
#
# An internal network keeps the backend's containers from reaching out (and anything from
# being published on it); the gateway, on both networks, is the only way in.

# %% [markdown]
# Which service is on which network, as the engine has them (on the local runtime: as the file
# declares them, since the stand-in makes no networks):

# %%
for name, network in stack.networks().items():
    kind = "internal" if network["internal"] else "ordinary"
    print(f"{name:9} {kind:9} {', '.join(network['services'])}")

# %% [markdown]
# ## 8. Service discovery by name
#
# Inside the stack, no one uses IP addresses. Placing an order makes the **orders** service ask
# the services named `users` and `products`, then write to the database. On Docker, each network
# has a DNS server (at `127.0.0.11` inside every container) that answers a **service name** with
# the addresses of that service's containers, and the database is found at host `db`. On the
# local runtime there is no such DNS: each process finds the same names in the address table
# `LocalStack` writes, and the orders go into the SQLite file. The answer says which replica of
# each service checked the order:

# %%
url = stack.url("gateway")  # the gateway is a new container since Task 4: a new port
response = httpx.post(url + "/api/orders", json={"user_id": 1, "product_id": 2, "quantity": 2})
if response.status_code == 201:
    order = response.json()
    print(response.status_code, "total:", order["order"]["total_cents"], "cents")
    print("checked with:", sorted(order["checked_with"]))
else:  # without Tasks 1 and 2, orders may take requests before its database is ready
    print(response.status_code, response.text[:120])

# %% [markdown]
# An order for a user who does not exist is refused by the orders service with a clear reason,
# after it asked the users service:

# %%
refused = httpx.post(url + "/api/orders", json={"user_id": 42, "product_id": 2})
print(refused.status_code, refused.text[:120])

# %% [markdown]
# ## 9. Scale out: three replicas of products
#
# `--scale products=3` asks `up` for three copies of the same service: three containers on
# Docker, three processes on the local runtime. The rest stays as it is:

# %%
%compose -f my-shop/compose.yaml up --wait --scale products=3

# %% [markdown]
# All three answer to the name `products`. The gateway shows what it finds for that name: on
# Docker, the DNS answer (three container addresses); on the local runtime, the address table
# (three `127.0.0.1` ports). Either way, three addresses:

# %%
addresses = httpx.get(url + "/replicas/products").json()["addresses"]
print(len(addresses), "addresses for the name products")

# %% [markdown]
# The gateway takes them in turn (round robin). Each response carries the **hostname** of the
# replica that answered: the short container id on Docker, `products-1`, `products-2`, ... on the
# local runtime. Six requests through the gateway, with the hostnames replaced by letters in the
# order they first appear:

# %%
seen = [httpx.get(url + "/api/products").json()["hostname"] for _ in range(6)]
letters = {host: "ABC"[i] for i, host in enumerate(dict.fromkeys(seen))}
print(" ".join(letters[host] for host in seen))
print(len(set(seen)), "replicas,", sorted(collections.Counter(seen).values()), "requests each")
print("the same replicas as the stack lists:", set(seen) == set(stack.hostnames("products")))

# %% [markdown]
# That is horizontal scaling in one line: more copies of a stateless service behind one name.
# It only works because `products` keeps no state of its own; the orders, which must survive, live
# in the database. Scaling the gateway itself this way would not work here: its published port
# is one port on this machine, and that is what a load balancer or Swarm's routing mesh
# (lesson 05) is for.
#
# ### Task 5: scale the users service
#
# Scale `users` to 2 replicas with `%compose ... up --wait --scale users=2`, then send 4
# requests to `/api/users` through the gateway. Set `answer` to the **set** of hostnames that
# answered. (An `up` without `--scale products=3` takes products back to the one replica the
# file declares.)

# %% tags=["exercise-answer"]
# labkit: answer 04-scale-users

# %%
labkit.exercises.check("04-scale-users", answer)

# %% [markdown]
# <!-- labkit: solution 04-scale-users -->
#
# The gateway takes the replicas in turn, so 4 requests reach both of them twice.

# %% [markdown]
# ## 10. Logs
#
# `logs` gathers the last lines of each replica of a service, each marked with its replica. The
# gateway logged the requests above (its health checks are left out on purpose). The addresses
# and ports in them differ on every run:

# %% tags=["nbval-ignore-output"]
%compose -f my-shop/compose.yaml logs --tail 4 gateway

# %% [markdown]
# ## Clean up
#
# `down -v` removes every container and network of the stack, and its volumes too: the database
# starts empty next time (`down` alone keeps them). On the local runtime it stops every process
# and deletes the SQLite file. Your `my-shop/` folder stays as you wrote it. Nothing keeps running
# after the notebook either: the local processes stop with the kernel, even when it is
# interrupted, restarted or killed.

# %%
view.stop()
%compose -f my-shop/compose.yaml down -v

# %% [markdown]
# ## Summary and what's next
#
# - You wrote a Compose file's key parts yourself: a **healthcheck**, `depends_on` with
#   `condition: service_healthy`, a loopback-only port and an internal network, and ran it with
#   Compose's own command line; a fixed project name makes `up` safe to repeat.
# - **Healthchecks** plus `depends_on: condition: service_healthy` start each service only when
#   what it needs is ready; `stack.up()` returns when every service is healthy.
# - Services find each other **by name** through Docker's DNS; an `internal` network keeps the
#   backend unreachable from outside, and the one published port binds `127.0.0.1`.
# - **Scaling** a stateless service adds replicas behind the same name; requests spread over them.
# - Secrets travel as files, never in the environment or the logs; apps run as non-root users
#   on read-only file systems.
# - Without Docker, the local stand-in runs the same apps from the same file as processes, with
#   SQLite for the database and an address table for the DNS; what it cannot give is isolation:
#   the networks, users and read-only file systems that the engine enforces.
#
# Next, when one machine is not enough: Swarm services, rolling updates and the routing mesh, and
# their Kubernetes equivalents. Back to the [contents](00-start-here.ipynb).

# %% [markdown]
# <!-- labkit: nav -->
