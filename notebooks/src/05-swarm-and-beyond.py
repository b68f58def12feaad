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
# - start a single-node **Swarm**, deploy the shop, then **write the `deploy:` section yourself**
#   (replicas, updates, resource limits) and deploy your file with `docker stack deploy`;
# - watch a **rolling update** replace the tasks of a service one at a time, and see how requests
#   find a replica;
# - read the **Kubernetes** equivalents generated from the same Compose file, then **write a
#   Deployment and a Service yourself**, checked by the Kubernetes client and by `kubectl`;
# - **write a Kubernetes admission webhook**: the API server's `AdmissionReview`, and the answer
#   it expects.
#
# **Time needed:** about 60 minutes (five tasks).
#
# ## Prerequisites
#
# - [04 Services with Compose](04-services-with-compose.ipynb): the shop, healthchecks, networks,
#   secrets and scaling. [01 Webhooks 101](01-webhooks-101.ipynb): a FastAPI route.
# - Docker is **optional**. The Swarm part needs a Docker engine that may start Swarm mode; where
#   it cannot (the local runtime, no engine, an engine that refuses), section 3 says why, and each
#   Swarm cell shows its command and what it asks of Swarm without running it. The Kubernetes part
#   runs everywhere and **needs no cluster**: manifests are files, the checks read them with the
#   Kubernetes Python client and `kubectl`, and your webhook runs in this kernel.

# %% [markdown]
# <!-- labkit: tasks-intro -->

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
# ## 3. A single-node Swarm, where one can start
#
# Swarm is a mode of the Docker engine: `docker swarm init` turns this engine into the manager of
# a cluster of one. The kit checks first: which runtime this lesson uses, whether an engine
# answers, and whether it is already part of a Swarm. This is the one cell whose output depends on
# the machine:

# %% tags=["nbval-ignore-output"]
sw = swarm.Swarm()
print(sw.check())
print("virtual IPs work here (the kernel has IPVS):", sw.virtual_ips_work())

# %% [markdown]
# Each Swarm cell below prints the command it runs and what it asks of Swarm. Where Swarm can be
# used, the kit runs the command, reads what the engine did, and stops with an error if Swarm did
# anything else; `.result` holds what the engine said. Where it cannot, the cell only shows the
# command and the state it asks for (`.result` says why it was skipped), and the lesson goes on.
#
# `sw.init_step()` starts the Swarm. The manager listens on this machine only, so no other machine
# can join: a cluster of one, for learning. (A real cluster advertises an address the other nodes
# reach, and they join with `docker swarm join --token ...`.) The kit labels the node when it
# starts the Swarm, so that the clean-up at the end leaves the engine as it found it.

# %%
print(sw.init_step())

# %% [markdown]
# ## 4. `docker stack deploy`
#
# `sw.deploy_step(shop)` does what you would do by hand:
#
# 1. build the shop's image (Swarm never builds; a real cluster pulls it from a registry);
# 2. write the stack file and run `docker stack deploy` (`--resolve-image never`: do not ask a
#    registry about the image, it is on this node; `--prune`: remove services the file no longer
#    has);
# 3. wait until every task is running and healthy.
#
# Swarm creates the secret from its file, the overlay networks (`labkit-swarm-shop_backend`, ...)
# and one service per entry (`labkit-swarm-shop_products`, ...). It takes 15 to 30 seconds:

# %%
print(sw.deploy_step(shop))

# %% [markdown]
# The managers keep comparing what runs with what is wanted: stop a task's container and Swarm
# starts a new task to replace it. On Docker, `!docker service ls` shows `REPLICAS` as
# running/wanted.
#
# ### Your `deploy:` section
#
# The kit wrote a `deploy:` section for every service. Now write the one for `products` yourself.
# What you can say there:
#
# - **`replicas`**: how many tasks run. Scaling is a change of this number, by file or with
#   `docker service scale`; on a cluster the new tasks may land on other nodes.
# - **`update_config`**: how Swarm replaces tasks when the service changes: `parallelism` (how
#   many at once; `0` means all), `order` (`stop-first`, the default, or `start-first`), and
#   `failure_action` (`pause`, the default, `continue`, or `rollback`).
# - **`resources`**: `limits` cap what one task may use. `cpus: "0.5"` lets it use half a CPU
#   (the kernel throttles it beyond that); `memory: 128M` is a hard cap: a task that goes over is
#   killed by the kernel's OOM killer, and Swarm starts a new one. `reservations` are different:
#   the scheduler only places a task on a node with that much left unreserved.
#
# A stack is changed by deploying it again: `docker stack deploy` with a changed file updates each
# service whose definition changed. `sw.stack_file(shop, deploy={"products": {...}})` is section
# 2's stack file with your section for `products` (written as you give it; on a kernel without
# IPVS the kit adds `endpoint_mode: dnsrr`), `.write("my-stack.yaml")` saves it
# in `$LABKIT_HOME/swarm/`, and `sw.stack_deploy(path)` runs `docker stack deploy --resolve-image
# never -c PATH labkit-swarm-shop` and waits.
#
# ### Task 1: deploy your own `deploy:` section
#
# Write the `deploy:` section of `products` (as a Python dict, the way YAML would load it): **3
# replicas**, replaced **one at a time**, each new task started **before** an old one stops, a
# failed update **rolled back** on its own, and each task **limited to half a CPU and 128M** of
# memory. Put it in a stack file, deploy it, and set `answer` to the file's path. The check reads
# your file, and where Swarm runs the stack, the engine's spec of `labkit-swarm-shop_products`
# (`docker service inspect`): your file is only half of it until the engine runs it.

# %% tags=["exercise-answer"]
# labkit: answer 05-swarm-deploy

# %%
labkit.exercises.check("05-swarm-deploy", answer)

# %% [markdown]
# <!-- labkit: solution 05-swarm-deploy -->
#
# The solution makes its own `sw` and reads the shop with `labkit.Stack("services")`, so that it
# runs on its own; in this notebook they are the `sw` and `shop` you already have.
# `parallelism: 1` replaces one task at a time; `order: start-first` keeps three serving while it
# does; `failure_action: rollback` returns to the old definition when new tasks fail. The engine
# stores the limits in its own units: `docker service inspect` shows `NanoCPUs: 500000000` and
# `MemoryBytes: 134217728` (128 × 1024 × 1024).

# %% [markdown]
# ## 5. How a request finds a replica
#
# Inside the stack's network, Swarm's DNS answers each service name in one of two ways:
#
# - **`vip`** (the default): the name is one **virtual IP**; the kernel's IPVS load balancer
#   spreads connections to it over the healthy tasks;
# - **`dnsrr`**: the name answers with every task's address (DNS round robin), and the caller
#   picks one, as the shop's gateway does.
#
# `tasks.<name>` always answers with every task's address. Virtual IPs need IPVS in the kernel;
# where section 3 found none, the kit deploys every service with `endpoint_mode: dnsrr`. A one-off container joins the `backend`
# network (it is `attachable`), asks both names, and sends six requests through the gateway;
# every response names the task that answered (its hostname is the container's short id):

# %%
spread = sw.spread_step("products", "/api/products", via="gateway")
print(spread)

# %% [markdown]
# On Docker, `print(spread.result)` shows the answering tasks as letters, in the order they
# answered (`A B C A B C`), and how many addresses each name gave.
#
# ## 6. A rolling update
#
# A new version means a new task definition: another image tag (`docker service update --image
# labkit/shop:2 ...`), a new command, or new environment. Swarm then replaces every task as
# `update_config` says. Here the change is an environment variable, `SHOP_RELEASE=2`. Before
# running it, **predict** from your `update_config`: how many replicas serve while it runs? The
# kit samples the tasks while Swarm works (about half a minute) and stops with an error if Swarm
# breaks that promise:

# %%
rollout = sw.update_step("products", SHOP_RELEASE="2")
print(rollout)

# %% [markdown]
# On Docker, `print(rollout.result)` shows what was sampled: an `old+new` line such as
# `3+0 -> 3+1 -> 2+1 -> 2+2 -> ...`. A new task starts (`3+1`), and only when it is healthy does
# an old one stop (`2+1`); then the next. Had the new tasks failed their healthcheck, `failure_action:
# rollback` would have put the old definition back: the same choice the pipeline of lessons 06 and
# 07 makes when a new version never turns healthy.
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
# `docker stack rm` removes the stack; the kit waits until its tasks, networks, secret and volume
# are gone. It leaves the Swarm only if this lesson started it and nothing else runs in it:

# %%
print(sw.clean_up_step())

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

# %% [markdown]
# ### Task 2: a probe from a healthcheck
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
# ### Task 3: which Service type, and why?
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
# ### Task 4: a Deployment and a Service of your own
#
# Now write two manifests yourself, for `users`, as YAML text, without the generator:
#
# - a **Deployment** `users` (`apps/v1`) running **2** pods labelled
#   `app.kubernetes.io/name: users`, each with one container: image `labkit/shop:latest`, the
#   Compose file's command `users:app` (as what, `command` or `args`?), container port 8000, and a
#   readiness probe on `/healthz`;
# - a **Service** `users` (`v1`), type ClusterIP, that sends port 8000 to those pods.
#
# Save the text with `path = kube.save("users.yaml", manifest)` (it writes
# `$LABKIT_HOME/kube/users.yaml`) and set `answer = path`. The check reads your file three ways,
# none of which needs a cluster: into the Kubernetes Python client's models (strict: a misspelt
# field or a quoted number fails, as the API server would refuse it); with `kubectl create
# --dry-run=client -f`, where kubectl is installed (even a client-side dry run asks an API server
# which kinds exist, so the check gives kubectl a small stand-in on 127.0.0.1 that only answers
# that); and for sense: does the Service's selector find the Deployment's pods?

# %% tags=["exercise-answer"]
# labkit: answer 05-manifests

# %%
labkit.exercises.check("05-manifests", answer)

# %% [markdown]
# <!-- labkit: solution 05-manifests -->
#
# Labels tie the objects together: the Deployment's `selector` must match its own pod template's
# labels (the API server refuses the Deployment otherwise), and the Service's `selector` must
# match them too, or the Service has no endpoints and every call to `users:8000` fails although
# nothing reports an error. `args` is Compose's `command`; Kubernetes' `command` would replace the
# image's entrypoint.

# %% [markdown]
# ## 10. A Kubernetes webhook: admission control
#
# Kubernetes calls webhooks too. Before the API server stores an object (a Deployment you
# `kubectl apply`, say), it can ask **admission webhooks** whether to accept it. A
# `ValidatingWebhookConfiguration` names which operations and kinds to send, and where: an HTTPS
# URL or a Service in the cluster, and a path. For each request the API server `POST`s an
# **`AdmissionReview`** (`admission.k8s.io/v1`) whose `request` says who asks, what they do, and
# carries the object itself. `kube.admission_review` builds one as the API server would send it,
# here for the gateway's Deployment (the `uid` is the API server's id for this one request):

# %%
review = kube.admission_review(
    kube.find(manifests, "Deployment", "gateway"), uid="705ab4f5-6393-11e8-b7cc-42010a800002"
)
request = review["request"]
print(review["apiVersion"], review["kind"])
print({key: request[key] for key in ("uid", "operation", "name", "namespace")})
print("kind:", request["kind"], "| resource:", request["resource"]["resource"])
print("user:", request["userInfo"]["username"])
print("object:", request["object"]["kind"], request["object"]["metadata"]["name"])

# %% [markdown]
# The webhook answers **`200 OK`** with an `AdmissionReview` of the same `apiVersion` and `kind`,
# whose `response` carries the request's **`uid`** (the API server rejects an answer with another
# one) and **`allowed`**. To refuse, it sets `allowed: false` and may add a `status` with a `code`
# and a `message`, which the API server passes back to the user (`kubectl` prints it after
# `admission webhook "..." denied the request:`). Any other HTTP status, or no answer within the
# configuration's `timeoutSeconds` (10 by default), counts as the webhook failing, not as a
# refusal: its `failurePolicy` then decides (`Fail`, the default in `v1`, refuses the request;
# `Ignore` lets it through). A refusal looks like this:

# %%
refusal = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "response": {
        "uid": request["uid"],
        "allowed": False,
        "status": {"code": 403, "message": "this pod needs no Kubernetes API token"},
    },
}
print(kube.to_yaml(refusal))

# %% [markdown]
# ### Task 5: your admission webhook
#
# Section 9 gave every pod `automountServiceAccountToken: false`. Enforce it: write a FastAPI
# `app` with a route `POST /validate` that reads the `AdmissionReview`, **allows** a Deployment
# whose pod template (`request.object.spec.template.spec`) sets `automountServiceAccountToken` to
# `false`, and **refuses** any other, with a message. End with `answer = app`. The check serves
# your app on 127.0.0.1 for a moment and posts two real-shaped reviews, as the API server would:
# the gateway's Deployment as generated, and the same with the setting removed (so Kubernetes
# would mount a token). A real API server only calls webhooks over HTTPS, with a certificate it
# trusts (`caBundle`); the check uses plain HTTP inside this machine.

# %% tags=["exercise-answer"]
# labkit: answer 05-admission

# %%
labkit.exercises.check("05-admission", answer)

# %% [markdown]
# <!-- labkit: solution 05-admission -->
#
# A missing `automountServiceAccountToken` means Kubernetes mounts the token, so the test is
# `is False`, not "is not True". The answer is always `200`: the verdict lives in
# `response.allowed`, and the `uid` is copied from the request so the API server can match it.

# %% [markdown]
# ## Summary
#
# - An orchestrator keeps a **desired state** on a cluster: replicas, placement, restarts and
#   gradual updates. Swarm is a mode of the Docker engine; Kubernetes is a system of its own.
# - A **stack file** is a Compose file for Swarm: images instead of builds, a `deploy:` section,
#   no `depends_on` (services must cope with missing dependencies), overlay networks.
# - The **`deploy:` section** you wrote says how many replicas run, how they are replaced
#   (`parallelism`, `start-first`, `failure_action: rollback`) and what each may use
#   (`resources.limits`); deploying the changed file with `docker stack deploy` is how a stack
#   changes, and the engine's own spec is where to check it took.
# - A **rolling update** replaces tasks one at a time; `start-first` keeps every replica serving.
# - Requests find replicas through Swarm's DNS (a virtual IP, or every task's address); the
#   **routing mesh** publishes a port on every node, which is why this kit does not use it.
# - On **Kubernetes**, a service becomes a Deployment plus a Service, tied together by labels: a
#   Service whose selector matches no pod has no endpoints. A port Compose kept on `127.0.0.1`
#   stays a ClusterIP (reached with `kubectl port-forward`); a LoadBalancer is for a port you chose
#   to make public. Healthchecks become probes, secrets mounted Secrets, volumes claims, and no pod
#   gets an API token it does not need. Manifests can be checked without a cluster.
# - The API server calls **admission webhooks** with an `AdmissionReview`; the answer is `200`
#   with the same `uid` and `allowed`, and a `status.message` when it refuses.
#
# **Next:** [06 Push, build, deploy, monitor](06-push-build-deploy-monitor.ipynb) sends the
# webhooks that build and deploy a new version on their own.

# %% [markdown]
# <!-- labkit: nav -->
