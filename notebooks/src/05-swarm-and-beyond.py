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
#     title: 05 Swarm and beyond
# ---

# %% [markdown]
# # 05 · Swarm and beyond: when one machine is not enough

# %% [markdown]
# <!-- labkit: nav -->

# %% [markdown]
# ## Overview
#
# Lesson 04 ran the shop with Compose on one machine. Real services outgrow that: one machine can
# fail, fill up, or need a restart. An **orchestrator** runs the same services on a group of
# machines and keeps them the way you declared. You will:
#
# - turn the shop's Compose file into a **stack file** for Docker Swarm, and see why each change is
#   needed;
# - start a single-node **Swarm**, deploy the shop with `docker stack deploy`, and scale a service;
# - watch a **rolling update** replace the tasks of a service one at a time;
# - see how requests find a replica: service names, virtual IPs and the **routing mesh**;
# - read the **Kubernetes** equivalents (Deployments, Services, probes, Secrets), generated from
#   the same Compose file, and see why a port on `127.0.0.1` stays inside the cluster.
#
# **Time needed:** about 40 minutes.
#
# ## Prerequisites
#
# - [04 Services with Compose](04-services-with-compose.ipynb): the shop, healthchecks, networks,
#   secrets and scaling.
# - Docker is **optional**. The Swarm part needs a Docker engine that may start Swarm mode; where
#   it cannot (the local runtime, no engine, an engine that refuses), those cells say why and the
#   lesson goes on. The Kubernetes part runs everywhere: it writes manifests and needs no cluster
#   (this lesson uses none).

# %% [markdown]
# ## 1. What an orchestrator adds
#
# Compose starts containers on the machine it runs on, and that is all. If the machine goes
# away, so does the shop; it can only grow as far as that machine's CPUs; and nothing restarts a
# container on another machine or replaces containers one by one when a new version comes.
#
# An orchestrator such as **Docker Swarm** or **Kubernetes** manages a **cluster** of machines
# (**nodes**). You declare the *desired state*: "three replicas of products, from this image,
# replaced one at a time". **Managers** store it and keep comparing it with what runs: they place
# **tasks** (Swarm) or **pods** (Kubernetes) on nodes, start new ones where some die, and roll
# changes out gradually.
#
# ```mermaid
# flowchart LR
#     you["you: docker stack deploy"] --> manager["manager node<br/>desired state"]
#     manager -- schedules --> n1["node 1<br/>products.1, users.1"]
#     manager -- schedules --> n2["node 2<br/>products.2, db.1"]
#     manager -- schedules --> n3["node 3<br/>products.3, gateway.1"]
# ```
#
# The words map onto each other:
#
# | Compose | Swarm | Kubernetes |
# |---|---|---|
# | service | service | Deployment (the pods) + Service (the name) |
# | container | task | pod |
# | `docker compose up --scale products=3` | `deploy: replicas: 3` | `spec.replicas: 3` |
# | `healthcheck` | `healthcheck` (unhealthy tasks are replaced) | readiness and liveness probes |
# | network | overlay network, across nodes | the cluster network |
# | a port on `127.0.0.1` | none: the routing mesh publishes on every node | a ClusterIP Service, reached with `kubectl port-forward` |
# | a port on every interface | the routing mesh, on every node | a Service of type LoadBalancer |
# | secret from a file | Swarm secret, stored by the managers | Secret |
# | named volume | a volume on one node | PersistentVolumeClaim |
#
# The whole lesson works on the shop of lesson 04, read from the same `compose.yaml`.
# `composefile.read` loads it as written (the `x-app` anchor merged, paths made absolute):

# %%
import labkit
from labkit import composefile, kube, swarm

shop = labkit.Stack("services")
compose = composefile.read(shop)
sorted(compose["services"])

# %% [markdown]
# ## 2. From a Compose file to a stack file
#
# `docker stack deploy` reads the same file format (version 3), but a stack runs on many nodes, so
# some settings mean something else there, or nothing. `swarm.stack_file` makes the stack file
# and records every change. Here is `products`, with three replicas:

# %%
stack_file = swarm.stack_file(compose, replicas={"products": 3})
print(stack_file.service("products"))

# %% [markdown]
# New is the **`deploy:`** section, which only an orchestrator reads: how many `replicas`, how to
# replace them (`update_config`: one at a time, the new task started before the old one stops,
# `rollback` if it fails), how to go back (`rollback_config`), and when to restart a task. Gone are
# `build:`, `ports:` and `depends_on:`. Every change, with its reason:

# %%
print(stack_file.explain())

# %% [markdown]
# Two of these deserve a second look:
#
# - **No `depends_on`.** On a cluster, services start in any order, on any node, and restart at
#   any time. Each service must cope with a dependency that is not there yet: `orders` reports
#   itself unhealthy until the database answers, and gets no traffic until then.
# - **No `ports`.** Swarm publishes a port on *every interface of every node* (section 7 explains
#   why). It cannot bind `127.0.0.1`, and this kit never publishes beyond this machine, so the
#   lesson reaches the shop from inside its own network instead.
#
# ## 3. Can Swarm start here?
#
# Swarm is a mode of the Docker engine: `docker swarm init` turns this engine into the manager of
# a cluster of one. The kit checks first: which runtime this lesson uses, whether an engine
# answers, and whether it is already part of a Swarm. On this machine:

# %% tags=["nbval-ignore-output"]
sw = swarm.Swarm()
print(sw.check())

# %% [markdown]
# Where Swarm cannot be used, every Swarm step below prints `skipped ...` with the reason, and the
# lesson goes on; the Kubernetes part (section 9) runs either way.
#
# ## 4. A single-node Swarm
#
# `sw.init()` runs `docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377`. The
# manager listens on this machine only, so no other machine can join: a cluster of one, for
# learning. (A real cluster advertises an address the other nodes reach, and they join with
# `docker swarm join --token ...`.) The kit labels the node when it starts the Swarm, so that
# the clean-up at the end leaves the engine as it found it.

# %% tags=["nbval-ignore-output"]
sw.init()
print(sw.node())

# %% [markdown]
# ## 5. `docker stack deploy`
#
# `sw.deploy(shop)` does what you would do by hand:
#
# 1. build the shop's image (Swarm never builds; a real cluster pulls it from a registry);
# 2. write the stack file and run `docker stack deploy --resolve-image never -c FILE
#    labkit-swarm-shop` (`never`: do not ask a registry about the image; it is on this node);
# 3. wait until every task is running and healthy.
#
# Swarm creates the secret from its file, the overlay networks (`labkit-swarm-shop_backend`, ...)
# and one service per entry (`labkit-swarm-shop_products`, ...). It takes 15 to 30 seconds:

# %% tags=["nbval-ignore-output"]
print(sw.deploy(shop))

# %% [markdown]
# Each service shows `running/wanted` tasks. The managers keep comparing the two: stop a task's
# container and Swarm starts a new task to replace it.
#
# ### Replicas
#
# Scaling is a change of the desired state, `docker service scale labkit-swarm-shop_products=3`;
# on a cluster the new tasks may land on other nodes.

# %% tags=["nbval-ignore-output"]
print(sw.scale("products", 3))

# %% [markdown]
# ### How a request finds a replica
#
# Inside the stack's network, Swarm's DNS answers each service name in one of two ways:
#
# - **`vip`** (the default): the name is one **virtual IP**; the kernel's IPVS load balancer
#   spreads connections to it over the healthy tasks;
# - **`dnsrr`**: the name answers with every task's address (DNS round robin), and the caller
#   picks one, as the shop's gateway does.
#
# `tasks.<name>` always answers with every task's address. The deploy above said which mode this
# machine uses: virtual IPs need IPVS in the kernel. A one-off container joins the `backend`
# network (it is `attachable`), asks both names, and sends six requests through the gateway:

# %% tags=["nbval-ignore-output"]
print(sw.spread("products", "/api/products", via="gateway"))

# %% [markdown]
# Every response names the task that answered (its hostname is the container's short id), so
# the letters show the requests going round the three replicas.
#
# ## 6. A rolling update
#
# A new version means a new task template: another image tag (`docker service update --image
# labkit/shop:2 ...`), a new command, or new environment. Swarm then replaces every task as
# `update_config` says. Here the change is an environment variable, `SHOP_RELEASE=2`; `sw.update`
# starts it with `docker service update --env-add` and samples the tasks while Swarm works. It
# takes about half a minute:

# %% tags=["nbval-ignore-output"]
rollout = sw.update("products", SHOP_RELEASE="2")
print(rollout)

# %% [markdown]
# Read the `old+new` line from left to right: a new task starts (`3+1`), and only when it is
# healthy does an old one stop (`2+1`); then the next. With `order: start-first` at least three
# replicas served at every moment. Had the new tasks failed their healthcheck within the `monitor`
# time, `failure_action: rollback` would have put the old template back: the same choice the
# pipeline of lessons 06 and 07 makes when a new version never turns healthy.
#
# ## 7. The routing mesh
#
# A stack that publishes a port, `ports: ["8080:8000"]`, makes **every node** listen on 8080, on
# every interface, whether a task of that service runs there or not. A request to any node goes
# through the **ingress** overlay network to a healthy task, on that node or another:
#
# ```mermaid
# flowchart LR
#     client["client"] -- ":8080" --> nodeA["node A<br/>(no gateway task)"]
#     client -- ":8080" --> nodeB["node B"]
#     nodeA -- "ingress network" --> g1["gateway.1 on node B"]
#     nodeA -- "ingress network" --> g2["gateway.2 on node C"]
#     nodeB -- "ingress network" --> g1
# ```
#
# That is how a cluster gets one entry point however the tasks move: a load balancer in front
# sends to any node. It is also why this lesson publishes nothing: the mesh cannot listen on
# `127.0.0.1` only, and the kit keeps every port on this machine. (`mode: host` publishes on the
# node that runs the task instead, bypassing the mesh; it is still every interface.)
#
# ## 8. Clean up the Swarm
#
# `sw.remove()` runs `docker stack rm` and waits until the tasks, networks, secret and volume are
# gone. `sw.leave()` leaves the Swarm only if this lesson started it, and nothing else runs in it:

# %% tags=["nbval-ignore-output"]
print(sw.remove())
print(sw.leave())

# %% [markdown]
# ## 9. The same shop on Kubernetes
#
# Kubernetes splits what a Compose service says into separate **objects**, each a YAML document
# (a **manifest**) with `apiVersion`, `kind`, `metadata` and `spec`:
#
# - a **Deployment** keeps a number of identical **pods** running and replaces them on a change;
# - a **Service** gives those pods one stable name and virtual IP: type **ClusterIP** inside the
#   cluster, **LoadBalancer** for an address outside it (on a cloud, a public one);
# - a **PersistentVolumeClaim** asks for storage that outlives pods; a **Secret** holds a password.
#
# There is **no Kubernetes cluster here**: `kube.manifests` writes the objects from the same
# Compose file, and you read them. With a cluster (kind, minikube or k3s on a laptop),
# `kubectl apply -f` on this YAML would run them. Every object it makes:

# %%
manifests = kube.manifests(compose)
print(kube.summary(manifests))

# %% [markdown]
# ### A Deployment
#
# The Deployment of `products`: its pod template says what Compose said about the service.

# %%
print(kube.to_yaml(kube.find(manifests, "Deployment", "products")))

# %% [markdown]
# Read it against the Compose file:
#
# - **`selector`** and the template's **`labels`**: the Deployment owns the pods with the label
#   `app.kubernetes.io/name: products`. Services find pods the same way.
# - **`strategy`**: `maxSurge: 1, maxUnavailable: 0` is Swarm's `start-first`, one at a time.
# - **`args`** is Compose's `command` (Kubernetes' `command` would replace the image's entrypoint).
# - **`readinessProbe`**: no traffic until `/healthz` answers, Compose's `service_healthy`.
#   **`livenessProbe`**: restart the container when it keeps failing, as Swarm does with an
#   unhealthy task. Both come from the one `healthcheck`; the kubelet asks over HTTP itself.
# - **`securityContext`**: `user: app` becomes `runAsUser: 10001`, because Kubernetes checks a
#   number, not a name (the id comes from the image's `useradd`); `read_only` becomes
#   `readOnlyRootFilesystem`; `cap_drop` becomes `capabilities.drop`; and `no-new-privileges`,
#   which Swarm could not keep, becomes `allowPrivilegeEscalation: false`.
# - The `tmpfs` on `/tmp` becomes an **`emptyDir`** volume in memory.
# - **`automountServiceAccountToken: false`**: by default Kubernetes mounts a token for the
#   Kubernetes API into every pod, in `/var/run/secrets/kubernetes.io/serviceaccount/`. The shop
#   never calls that API, so the token would only serve someone who broke into a pod, as a
#   credential to try against the cluster. Every pod the generator writes goes without it.
#
# ### Services: ClusterIP inside, LoadBalancer only by choice
#
# Every service that listens gets a Service of the **same name**, so `http://users:8000` works in
# the cluster as it did in Compose. `users` is only called by other services: a **ClusterIP**.

# %%
print(kube.to_yaml(kube.find(manifests, "Service", "users")))

# %% [markdown]
# The gateway is the one Compose published, with `ports: ["127.0.0.1::8000"]`: on this machine's
# loopback only, where nobody else can connect. The generator keeps that promise, so the gateway
# is a **ClusterIP** too, with a note (the well-known `kubernetes.io/description` annotation, which
# `kubectl describe` shows) on how to reach it from your machine:

# %%
print(kube.to_yaml(kube.find(manifests, "Service", "gateway")))

# %% [markdown]
# `kubectl port-forward service/gateway :8000` listens on your machine's loopback (`127.0.0.1`
# and `::1`) and tunnels each connection through the cluster's API server to one gateway pod. The
# empty local port before `:8000` lets kubectl pick a free one and print it, as Docker picked one
# for `127.0.0.1::8000`; write `8080:8000` to choose it yourself.
#
# A **LoadBalancer** asks the cloud provider for an address outside the cluster, by default a
# public one: anyone on the internet can connect, as with the routing mesh. That is a choice to
# make on purpose, for a service meant to be public, so the generator makes one only when the
# Compose file asked for it, with a port published on all interfaces (`8080:8000`, no address):

# %%
import copy

public = copy.deepcopy(compose)
public["services"]["gateway"]["ports"] = ["8080:8000"]
print(kube.summary([kube.find(kube.manifests(public), "Service", "gateway")]))

# %% [markdown]
# ### Secrets and state
#
# The password never appears in a manifest: the pods of `db` and `orders` mount a Secret called
# `db-password` where Compose mounted the file, in `/run/secrets/`:

# %%
pod = kube.find(manifests, "Deployment", "orders")["spec"]["template"]["spec"]
print(kube.to_yaml({"volumes": pod["volumes"]}))

# %% [markdown]
# The Secret itself is made in the cluster from the same file, never committed:

# %%
print("\n".join(kube.secret_commands(compose)))

# %% [markdown]
# The database keeps its data in a **PersistentVolumeClaim**. A `ReadWriteOnce` volume is
# attached to one node at a time, and two database servers must never open the same files, so its
# Deployment uses the `Recreate` strategy: the old pod stops before the new one starts (Swarm's
# `stop-first`).

# %%
print(kube.to_yaml(kube.find(manifests, "PersistentVolumeClaim", "dbdata")))
print(kube.find(manifests, "Deployment", "db")["spec"]["strategy"])

# %% [markdown]
# The whole file is plain YAML, the same on every machine for the same Compose file, so it can be
# reviewed and kept in git like the Compose file itself:

# %%
import yaml

text = kube.to_yaml(manifests)
print(len(manifests), "objects,", text.count("\n"), "lines")
print("reads back the same:", list(yaml.safe_load_all(text)) == manifests)

# %% [markdown]
# <!-- labkit: exercises-intro -->

# %% [markdown]
# ### Exercise 1: a deploy section for safe updates
#
# Write the `deploy:` section of a stack file (as a Python dict, the way YAML would load it) that
# runs **3 replicas**, replaces them **one at a time**, starts each new task **before** stopping an
# old one, and **rolls back** on its own if the update fails. Set `answer` to it.

# %% tags=["exercise-answer"]
# labkit: answer 05-swarm-deploy

# %%
labkit.exercises.check("05-swarm-deploy", answer)

# %% [markdown]
# <!-- labkit: solution 05-swarm-deploy -->
#
# `parallelism: 1` replaces one task at a time; `order: start-first` keeps three serving while it
# does; `failure_action: rollback` returns to the old template when new tasks fail.

# %% [markdown]
# ### Exercise 2: which Service type, and why?
#
# Compose publishes the shop's `gateway` on `127.0.0.1` only (`ports: ["127.0.0.1::8000"]`), and
# `orders` nowhere: only other services call it. Which Service type does `kube.manifests` give
# each, and with which command do you reach the gateway from your machine? Set `answer` to a dict,
# `{"gateway": "...", "orders": "...", "reach": "kubectl ..."}`.

# %% tags=["exercise-answer"]
# labkit: answer 05-service-types

# %%
labkit.exercises.check("05-service-types", answer)

# %% [markdown]
# <!-- labkit: solution 05-service-types -->
#
# Both are ClusterIP: an address only inside the cluster. For `orders` nothing else makes sense;
# for the gateway it is what `127.0.0.1` meant in Compose, this machine and nobody else. A
# LoadBalancer would give it an address outside the cluster (on a cloud, by default a public
# one), so the generator makes one only for a port Compose published on all interfaces.
# `kubectl port-forward` reaches a ClusterIP from your machine, listening on your loopback; any
# free local port works (`8080:8000`), or none (`:8000`) to let kubectl pick.

# %% [markdown]
# ### Exercise 3: a probe from a healthcheck
#
# The gateway's healthcheck is `test: ["CMD", "labkit-probe", "http://127.0.0.1:8000/healthz"]`,
# `interval: 2s`, `timeout: 3s`, `retries: 30`. Write the `readinessProbe` Kubernetes gets from it
# (as a dict), with the kubelet asking over HTTP. Set `answer` to it.

# %% tags=["exercise-answer"]
# labkit: answer 05-probe

# %%
labkit.exercises.check("05-probe", answer)

# %% [markdown]
# <!-- labkit: solution 05-probe -->
#
# `httpGet` names the path and port; the kubelet asks the pod's own address, so there is no host.
# Kubernetes counts in whole seconds: `interval` is `periodSeconds`, `timeout` is
# `timeoutSeconds`, `retries` is `failureThreshold`.

# %% [markdown]
# ## Summary
#
# - An orchestrator keeps a **desired state** on a cluster: replicas, placement, restarts and
#   gradual updates. Swarm is a mode of the Docker engine; Kubernetes is a system of its own.
# - A **stack file** is a Compose file for Swarm: images instead of builds, a `deploy:` section,
#   no `depends_on` (services must cope with missing dependencies), overlay networks.
# - A **rolling update** replaces tasks one at a time; `start-first` keeps every replica serving,
#   and `failure_action: rollback` undoes a bad version on its own.
# - Requests find replicas through Swarm's DNS (a virtual IP, or every task's address); the
#   **routing mesh** publishes a port on every node, which is why this kit does not use it.
# - On **Kubernetes**, a service becomes a Deployment plus a Service: a ClusterIP inside the
#   cluster, also for a port Compose kept on `127.0.0.1` (reached with `kubectl port-forward`), and
#   a LoadBalancer only for a port you chose to make public. Healthchecks become probes, secrets
#   become mounted Secrets, volumes become claims, the security settings become a
#   `securityContext`, and no pod gets a Kubernetes API token it does not need.
#
# **Next:** [06 Push, build, deploy, monitor](06-push-build-deploy-monitor.ipynb) sends the
# webhooks that build and deploy a new version on their own.

# %% [markdown]
# <!-- labkit: nav -->
