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
# You will learn:
#
# - what a Compose file declares, starting from the classic web + database example, and what a
#   careful one adds: healthchecks, readiness, networks, secrets, loopback-only ports;
# - how to start a stack and wait until every service is **healthy**, not just started;
# - how services find each other **by name**, and why only one of them is reachable from outside;
# - how to **scale** a service to three replicas and watch requests spread over them;
# - how to read a stack's logs and take it down cleanly.
#
# **Time needed:** about 40 minutes (plus about 3 minutes the first time the Docker images are
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
#
# The cell below says which runtime this notebook uses and why, so its output differs from
# machine to machine:

# %% tags=["nbval-ignore-output"]
import collections

import httpx
import labkit

print("runtime:", labkit.choose_runtime())
stack = labkit.stack("services")
if isinstance(stack, labkit.Stack):  # Docker: the lab images, made on this machine, never pulled
    labkit.images.build(progress=None)
stack

# %% [markdown]
# `labkit.stack("services")` gives the kit's handle on the folder `compose/services/`: a
# `Stack` on Docker, which runs Compose, or a `LocalStack` on the local runtime. Both read the same
# Compose file and answer the same calls (`up`, `status`, `url`, `scale`, `logs`, `down`), so every
# other cell of this lesson is the same on both.
#
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
# ## 2. The shop: one gateway, three services, one database
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
# Here is its whole Compose file:

# %%
print(stack.file.read_text())

# %% [markdown]
# Read it from the top:
#
# - **`x-app: &app`** is a block of settings shared by the four app services: the same image
#   (built from `./shop`, `FROM labkit/python-app`), a non-root `user`, a read-only file system,
#   no Linux capabilities, and a `healthcheck` that asks the app's `/healthz`. `<<: *app` merges
#   it into each service, which then only says which app to run (`command:`).
# - **`healthcheck`** tells Docker how to ask a container "are you ready?"; every service has one.
# - **`depends_on` with `condition: service_healthy`** makes Compose wait until `db`, `users`
#   and `products` are *healthy* before it starts `orders`, and so on up to the gateway.
# - **`networks`**: `backend` is `internal`, with no way out and nothing published; only the
#   gateway is also on `frontend`, where its one port is published on `127.0.0.1`.
# - **`secrets`**: the database password is a file (made at random on the first `up`, ignored by
#   git). MariaDB and the orders service read it from `/run/secrets/db_password`.
# - **`volumes`**: the database keeps its data in the named volume `dbdata`.
#
# ### The same file without Docker
#
# On the local runtime, `LocalStack` reads this file and does what it can with processes on this
# machine. What Docker does, and what the stand-in does instead:
#
# | compose.yaml says | Docker (Compose) | the local stand-in |
# |---|---|---|
# | `build: ./shop`, `command: ["users:app"]` | builds one image; runs a container per replica, each with its own IP address | runs `uvicorn users:app` from `compose/services/shop/`: one process per replica, each on a free port of `127.0.0.1` |
# | `db`: MariaDB, its data in the volume `dbdata` | a MariaDB container | no database server: the orders service writes to a **SQLite file** (`DB_URL=sqlite:///...`); `down()` deletes it as Docker deletes the volume |
# | names such as `http://users:8000` | Docker's DNS answers each name with its replicas' addresses | a table of names and `127.0.0.1:PORT` addresses in a file every process reads (`SERVICE_ADDRESSES`), rewritten when a service scales |
# | `healthcheck`, `depends_on` with `service_healthy` | the engine runs the check inside the container | the kernel asks each process's `/healthz`; the same start order, the same condition |
# | `networks`, `ports` | only the gateway can be reached from this machine | every process listens on `127.0.0.1`, so nothing is hidden; `url()` still answers only for the gateway |
# | `user`, `read_only`, `cap_drop`, `secrets` | enforced by the engine | not applied: the processes run as you |
# | the hostname in each answer | the container's short id | `<service>-<replica>`, e.g. `products-2` |
#
# ## 3. Up, and wait until healthy
#
# `stack.up()` starts every service in `depends_on` order and waits until each one reports
# **healthy**. On Docker it runs `compose up` and reads each container's state through the Docker
# API, by the labels Compose puts on them; on the local runtime it starts the processes and probes
# them itself. Running the cell again is safe: on Docker the project name is fixed
# (`labkit-services`), and on the local runtime the processes belong to the stack's name in this
# kernel, so either way `up` keeps what is already right instead of starting a second shop.
#
# The table lists the containers on Docker (with `db`), and the processes on the local runtime
# (each with the address it listens on, followed by the file that stands in for `db`), so its
# output differs by runtime:

# %% tags=["nbval-ignore-output"]
stack.up()
print(stack.status())

# %% [markdown]
# Every service is `running` and `healthy`. On Docker only the gateway has a port, on
# `127.0.0.1`. `stack.status()` is a snapshot. For a view that keeps itself current while you
# work (it reads the state every second), display a `StackStatus`; keep it in sight when you
# scale in section 6:

# %%
view = labkit.widgets.StackStatus(stack)
view

# %% [markdown]
# The same stack can be used in a `with labkit.stack("services") as stack:` block: it is up
# inside the block and down after it.
#
# ## 4. Through the one published door
#
# `stack.url("gateway")` says where the gateway's port 8000 is published on this machine (on
# the local runtime: where the gateway process listens). The gateway forwards
# `/api/<service>/...` to that service:

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
# On Docker that is enforced: the other services live on the `internal` backend network and
# publish no port, so nothing outside this machine reaches them. On a Linux host, this machine
# itself still can, by the container's IP address on that network (Docker Desktop on macOS or
# Windows runs the containers in a VM, where even that fails). On the local runtime every process needs a
# port of `127.0.0.1`, so anything on this machine could call `users` directly; `url()` only
# keeps to what the Compose file publishes. That isolation is one of the things containers add.
#
# ## 5. Service discovery by name
#
# Inside the stack, no one uses IP addresses. Placing an order makes the **orders** service ask
# the services named `users` and `products`, then write to the database. On Docker, each network
# has a DNS server (at `127.0.0.11` inside every container) that answers a **service name** with
# the addresses of that service's containers, and the database is found at host `db`. On the
# local runtime there is no such DNS: each process finds the same names in the address table
# `LocalStack` writes, and the orders go into the SQLite file. The answer says which replica of
# each service checked the order:

# %%
response = httpx.post(url + "/api/orders", json={"user_id": 1, "product_id": 2, "quantity": 2})
order = response.json()
print(response.status_code, "total:", order["order"]["total_cents"], "cents")
print("checked with:", sorted(order["checked_with"]))

# %% [markdown]
# An order for a user who does not exist is refused by the orders service with a clear reason,
# after it asked the users service:

# %%
refused = httpx.post(url + "/api/orders", json={"user_id": 42, "product_id": 2})
print(refused.status_code, refused.json()["detail"])

# %% [markdown]
# ## 6. Scale out: three replicas of products
#
# `stack.scale("products", 3)` asks for three copies of the same service and waits until the new
# ones are healthy: three containers on Docker (`compose up --scale products=3`), three processes
# on the local runtime. The table differs by runtime, as in section 3:

# %% tags=["nbval-ignore-output"]
stack.scale("products", 3)
print(stack.status())

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
# ## 7. Logs
#
# `stack.logs(service, tail=N)` gathers the last lines of each replica of a service, each marked
# with its replica. The gateway logged the requests above (its health checks are left out on
# purpose). The addresses and ports in them differ on every run:

# %% tags=["nbval-ignore-output"]
print(stack.logs("gateway", tail=4))

# %% [markdown]
# <!-- labkit: exercises-intro -->

# %% [markdown]
# ### Exercise 1: wait for the database, not for its container
#
# Write the `depends_on` entry (as a Python dict, the way YAML would load it) that makes a
# service wait until `db` passes its healthcheck. Set `answer` to it.

# %% tags=["exercise-answer"]
# labkit: answer 04-depends-on

# %%
labkit.exercises.check("04-depends-on", answer)

# %% [markdown]
# <!-- labkit: solution 04-depends-on -->
#
# The short form `depends_on: [db]` only orders the start of containers. The long form with
# `condition: service_healthy` waits for `db`'s `healthcheck` to pass.

# %% [markdown]
# ### Exercise 2: scale the users service
#
# Scale `users` to 2 replicas, then send 4 requests to `/api/users` through the gateway. Set
# `answer` to the **set** of hostnames that answered.

# %% tags=["exercise-answer"]
# labkit: answer 04-scale-users

# %%
labkit.exercises.check("04-scale-users", answer)

# %% [markdown]
# <!-- labkit: solution 04-scale-users -->
#
# The gateway takes the replicas in turn, so 4 requests reach both of them twice.

# %% [markdown]
# ### Exercise 3: publish on this machine only
#
# Write the `ports:` entry that publishes container port `8000` on `127.0.0.1` only, on a host
# port Docker picks. Set `answer` to the string.

# %% tags=["exercise-answer"]
# labkit: answer 04-loopback-port

# %%
labkit.exercises.check("04-loopback-port", answer)

# %% [markdown]
# <!-- labkit: solution 04-loopback-port -->
#
# `"8000:8000"` or `"8000"` would publish on every interface (`0.0.0.0`). Writing the address
# first keeps the service on this machine; leaving the host port empty avoids clashes when
# several stacks (or several learners on one server) run at once.

# %% [markdown]
# ## Clean up
#
# `stack.down()` removes every container and network of the stack, and its volumes too: the
# database starts empty next time. On the local runtime it stops every process and deletes the
# SQLite file. (`stack.down(volumes=False)` keeps the data, on both.) Nothing keeps running after
# the notebook either: the local processes stop with the kernel, even when it is interrupted,
# restarted or killed.

# %%
view.stop()
stack.down()
stack.ps()

# %% [markdown]
# ## Summary and what's next
#
# - A Compose file declares **services** (image, command, ports, networks, volumes, secrets);
#   `up` makes containers of them, and a fixed project name makes `up` safe to repeat.
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
