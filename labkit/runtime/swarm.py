"""Swarm mode on this engine: can it start, a single-node Swarm, a stack deployed, scaled, updated, removed.

``stack_file(compose)`` (pure, in :mod:`labkit.runtime.swarmfile`) turns a Compose file into a
stack file that ``docker stack deploy`` accepts, and lists every change with its reason. :class:`Swarm` drives the engine: ``check`` says whether Swarm can start here and why
not, ``init`` starts a single-node Swarm on 127.0.0.1 and marks the node so that ``leave`` only
undoes what the lesson did. Where Swarm cannot be used (the local runtime, no engine, an engine that
refuses), every step returns :class:`Skipped` with the reason instead of failing, so a lesson goes on.

Swarm's routing mesh publishes ports on every interface of every node; the kit publishes nothing
beyond 127.0.0.1, so the stack file publishes no port and :meth:`Swarm.spread` sends requests from a
one-off container inside the stack's own (attachable) network, through the service's virtual IP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import engine
from labkit.errors import StackError
from labkit.paths import labkit_home, learner
from labkit.runtime import LOCAL, choose, composefile, docker_engine_version
from labkit.runtime.swarmfile import Change as Change
from labkit.runtime.swarmfile import StackFile as StackFile
from labkit.runtime.swarmfile import stack_file as stack_file
from labkit.waiting import Deadline

if TYPE_CHECKING:
    from labkit.runtime.compose import Stack

STACK_NAME = "labkit-swarm-shop"
#: The node label ``init`` sets when this kit started the Swarm (so ``leave`` knows it may leave).
STARTED_BY = "org.labkit.swarm.started"
#: Set as well when ``docker_gwbridge`` did not exist before, so that ``leave`` removes it again.
MADE_GWBRIDGE = "org.labkit.swarm.made-gwbridge"
NAMESPACE = "com.docker.stack.namespace"
PROBE = "org.labkit.swarm.probe"


# -- the engine -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    """Whether Swarm can be used here, and why (not)."""

    ok: bool
    reason: str

    def __str__(self) -> str:
        return f"{'Swarm can be used' if self.ok else 'Swarm is not used here'}: {self.reason}"


@dataclass(frozen=True)
class Skipped:
    """What a Swarm step returns where Swarm cannot be used: the reason, and that the lesson goes on."""

    step: str
    reason: str

    def __str__(self) -> str:
        first = self.reason.split(". ")[0].rstrip(".")  # the whole reason is in Swarm.check()
        return f"skipped {self.step}: {first}"

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Spread:
    """Which replicas answered requests sent to one service name from inside its network."""

    service: str
    endpoint_mode: str
    name_ips: list[str]
    task_ips: list[str]
    hostnames: list[str]
    replicas: list[str]

    def letters(self) -> str:
        """The answering hostnames as letters in order of first appearance: ``A B C A B C``."""
        order = {host: chr(ord("A") + i) for i, host in enumerate(dict.fromkeys(self.hostnames))}
        return " ".join(order[host] for host in self.hostnames)

    def __str__(self) -> str:
        counts = sorted(self.hostnames.count(h) for h in set(self.hostnames))
        name = (
            "1 virtual IP"
            if self.endpoint_mode == "vip"
            else f"{len(self.name_ips)} addresses (DNS round robin)"
        )
        return (
            f"the name {self.service!r}: {name}; 'tasks.{self.service}': "
            f"{len(self.task_ips)} addresses\n{self.letters()}\n"
            f"{len(set(self.hostnames))} replicas answered, {counts} requests each\n"
            f"the same containers as the service's tasks: "
            f"{set(self.hostnames) == set(self.replicas)}"
        )


@dataclass(frozen=True)
class Rollout:
    """What a rolling update did, sampled while it ran."""

    service: str
    replaced: int
    steps: list[tuple[int, int]]
    min_serving: int
    max_starting: int
    seconds: float
    state: str

    def __str__(self) -> str:
        path = " -> ".join(f"{old}+{new}" for old, new in self.steps)
        return (
            f"{self.service}: update {self.state}, {self.replaced} tasks replaced "
            f"in {self.seconds:.0f} s\nold+new running: {path}\n"
            f"serving at every moment: at least {self.min_serving}\n"
            f"new tasks starting at once: at most {self.max_starting}"
        )


@dataclass(frozen=True)
class Step:
    """A Swarm step as a lesson shows it: the command, and what it asks of Swarm.

    Its text is the same on every machine, so a notebook compares it on both runtimes. Where Swarm
    is used the step has run, and been checked against what it asks (the call raises
    :class:`~labkit.errors.StackError` where Swarm did otherwise); ``result`` is what the engine
    did, or :class:`Skipped` with the reason where Swarm is not used.
    """

    command: str
    asks: str
    result: Any = None

    @property
    def ran(self) -> bool:
        return not isinstance(self.result, Skipped)

    def __str__(self) -> str:
        return f"$ {self.command}\n{self.asks}"

    def __repr__(self) -> str:
        return str(self)


#: The stack file each stack was last deployed from (or would have been, where Swarm is not used),
#: by stack name: what a later step, such as a rolling update, was asked to follow.
_DEPLOYED: dict[str, dict[str, Any]] = {}


def _promise(deploy: dict[str, Any]) -> str:
    """What a service's update_config promises while its tasks are replaced."""
    replicas = int(deploy.get("replicas", 1))
    update = deploy.get("update_config") or {}
    parallelism = int(update.get("parallelism", 1))
    order = str(update.get("order", "stop-first"))
    action = str(update.get("failure_action", "pause"))
    at_once = "all at once" if parallelism == 0 else f"{parallelism} at a time"
    if order == "start-first":
        serving = replicas
        how = "each new task started before an old one stops"
    else:
        serving = 0 if parallelism == 0 else max(0, replicas - parallelism)
        how = "old tasks stopped before their replacements start"
    return (
        f"update_config: parallelism {parallelism}, order {order}, failure_action {action}\n"
        f"so: {at_once}, {how}: at least {serving} of {replicas} serving throughout"
    )


class Swarm:
    """Swarm mode on this machine's engine, for one stack (``labkit-swarm-shop`` by default).

    ``check()`` says whether Swarm can be used; ``init()`` starts a single-node Swarm (or uses the
    one that is active); ``deploy``, ``scale``, ``spread``, ``update``, ``status`` and ``remove``
    work on the stack; ``leave()`` leaves the Swarm only if ``init`` started it. Every step returns
    :class:`Skipped` where Swarm cannot be used, so the same cells run on every machine.
    """

    def __init__(self, name: str = STACK_NAME, *, timeout: float = 120.0) -> None:
        self.name = name
        self.timeout = timeout
        self.started_here = False
        self._why_not: str | None = None

    def __repr__(self) -> str:
        return f"Swarm({self.name!r})"

    # -- can it start? ------------------------------------------------------------------------

    def check(self) -> Availability:
        """Whether this machine can run Swarm for the lesson, and why (not), without changing it."""

        if self._why_not:
            return Availability(False, self._why_not)
        choice = choose()
        if choice.name == LOCAL:
            return Availability(
                False,
                f"the local runtime was chosen ({choice.reason}). It runs "
                "apps as processes on this machine; Swarm is a mode of "
                "the Docker engine, so these steps are skipped. With "
                "Docker they start a single-node Swarm.",
            )
        if learner():
            return Availability(
                False,
                f"this engine is shared by several learners (LABKIT_LEARNER={learner()}), and "
                "Swarm is one per engine: every learner's stack would land in the same Swarm "
                "and leave() would end it for all. So the Swarm steps are skipped here, and "
                "the lesson explains them; your instructor can show them once for the room.",
            )
        version = docker_engine_version()
        if version is None:
            return Availability(
                False,
                "no Docker engine answers: start Docker (`sudo systemctl "
                "start docker`) and run the lesson again.",
            )
        if shutil.which("docker") is None:
            return Availability(
                False,
                "`docker stack deploy` needs the docker command line, "
                "which is not installed (apt-get install docker.io).",
            )
        info = self._client().info().get("Swarm") or {}
        state = info.get("LocalNodeState", "inactive")
        if state == "active" and not info.get("ControlAvailable"):
            return Availability(
                False,
                "this engine is a worker in another Swarm; only a manager "
                "can deploy stacks. Leave it (`docker swarm leave`) or "
                "use a manager.",
            )
        if state in ("error", "locked"):
            return Availability(
                False,
                f"the engine's Swarm is {state}: {info.get('Error') or 'unlock it or leave it'}.",
            )
        if state == "active" and self._node_labels().get(STARTED_BY) == "true":
            return Availability(
                True,
                f"engine {version} is in the single-node Swarm this lesson "
                "started; leave() ends it",
            )
        if state == "active":
            return Availability(
                True,
                f"engine {version} is already a Swarm manager; the lesson "
                "uses that Swarm and leaves it on",
            )
        return Availability(
            True,
            f"engine {version} answers and is not in a Swarm yet; init() starts a single-node one",
        )

    @property
    def usable(self) -> bool:
        return self.check().ok

    # -- the Swarm ----------------------------------------------------------------------------

    def init(self) -> Swarm | Skipped:
        """Start a single-node Swarm that listens on 127.0.0.1 only, or use the active one."""
        availability = self.check()
        if not availability.ok:
            return Skipped("docker swarm init", availability.reason)
        import docker.errors

        client = self._client()
        info = client.info().get("Swarm") or {}
        if info.get("LocalNodeState") != "active":
            had_gwbridge = bool(client.networks.list(names=["docker_gwbridge"]))
            try:
                client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
            except docker.errors.APIError as exc:
                self._why_not = (
                    f"the engine refused to start a Swarm "
                    f"({exc.explanation or exc}); the Swarm steps are skipped."
                )
                return Skipped("docker swarm init", self._why_not)
            labels = {STARTED_BY: "true", **({} if had_gwbridge else {MADE_GWBRIDGE: "true"})}
            self._label_node(labels)
        self.started_here = self._node_labels().get(STARTED_BY) == "true"
        return self

    def node(self) -> str | Skipped:
        """This node as ``docker node ls`` shows it: role, state, availability, address."""
        if not self.usable:
            return Skipped("docker node ls", self.check().reason)
        attrs = self._client().nodes.get(self._node_id()).attrs
        status, spec = attrs.get("Status") or {}, attrs.get("Spec") or {}
        manager = attrs.get("ManagerStatus") or {}
        return (
            f"role: {spec.get('Role')}{' (leader)' if manager.get('Leader') else ''}, "
            f"state: {status.get('State')}, availability: {spec.get('Availability')}, "
            f"address: {status.get('Addr')}, started by this lesson: {self.started_here}"
        )

    def leave(self) -> str | Skipped:
        """Leave the Swarm if ``init`` started it and nothing else runs in it; say what was done."""
        if not self.usable:
            return Skipped("docker swarm leave", self.check().reason)
        client = self._client()
        if (client.info().get("Swarm") or {}).get("LocalNodeState") != "active":
            return "not in a Swarm: nothing to leave"
        labels = self._node_labels()
        if labels.get(STARTED_BY) != "true":
            return "the Swarm was active before this lesson started it, so it stays on"
        others = sorted(s.name for s in client.services.list())
        if others:
            return (
                f"the Swarm stays on: services that this lesson did not remove still run in "
                f"it ({', '.join(others)})"
            )
        client.swarm.leave(force=True)
        self.started_here = False
        if labels.get(MADE_GWBRIDGE) == "true":
            self._remove_gwbridge(client)
        state = (client.info().get("Swarm") or {}).get("LocalNodeState")
        return f"left the Swarm this lesson started; the engine's Swarm is {state} again"

    # -- the stack ----------------------------------------------------------------------------

    def deploy(
        self, stack: Stack, *, replicas: dict[str, int] | None = None, timeout: float | None = None
    ) -> str | Skipped:
        """Build what the Compose file builds, ``docker stack deploy`` it, and wait until converged."""
        if not self.usable:
            return Skipped("docker stack deploy", self.check().reason)
        compose = composefile.read(stack)
        mode = "vip" if self.virtual_ips_work() else "dnsrr"
        file = stack_file(compose, replicas=replicas, endpoint_mode=mode)
        self._build_images(compose)
        stack._make_secrets(compose)

        folder = labkit_home() / "swarm"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.yaml"
        path.write_text(file.yaml())
        self._docker(
            "stack", "deploy", "--prune", "--resolve-image", "never", "-c", str(path), self.name
        )
        self.wait(timeout=timeout)
        how = (
            "each service has one virtual IP"
            if mode == "vip"
            else "this kernel has no IPVS, "
            "so each service name answers with its tasks' addresses (endpoint_mode: dnsrr)"
        )
        return f"{self.status()}\n{how}"

    def services(self) -> list[str]:
        """The stack's services, as named in the Compose file (without the stack prefix)."""
        prefix = f"{self.name}_"
        return sorted(
            s.name[len(prefix) :]
            for s in self._client().services.list(filters={"label": f"{NAMESPACE}={self.name}"})
        )

    def ps(self) -> list[dict[str, Any]] | Skipped:
        """Every service of the stack: tasks running of those wanted, and each task's state."""
        if not self.usable:
            return Skipped("docker stack ps", self.check().reason)
        rows = []
        for service in self.services():
            attrs = self._client().api.inspect_service(self._full(service))
            wanted = int(
                ((attrs["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0)
            )
            tasks = self._tasks(service)
            running = [t for t in tasks if t["desired"] == "running" and t["state"] == "running"]
            rows.append(
                {"service": service, "running": len(running), "wanted": wanted, "tasks": tasks}
            )
        return rows

    def status(self) -> str | Skipped:
        """``ps()`` as a small table: SERVICE, REPLICAS (running/wanted)."""
        rows = self.ps()
        if isinstance(rows, Skipped):
            return rows
        if not rows:
            return f"the stack {self.name} is not deployed"
        table = [("SERVICE", "REPLICAS")] + [
            (r["service"], f"{r['running']}/{r['wanted']}") for r in rows
        ]
        width = max(len(row[0]) for row in table)
        return "\n".join(f"{a:<{width}}  {b}" for a, b in table)

    def wait(self, *, services: list[str] | None = None, timeout: float | None = None) -> None:
        """Block until every task wanted is running (healthy, where there is a healthcheck)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = Deadline(timeout)
        while True:
            rows = self.ps()
            assert not isinstance(rows, Skipped)
            rows = [r for r in rows if services is None or r["service"] in services]
            pending = [
                r
                for r in rows
                if r["running"] != r["wanted"]
                or any(t["desired"] == "running" and t["state"] != "running" for t in r["tasks"])
            ]
            if rows and not pending:
                return
            if deadline.passed():
                detail = (
                    "; ".join(
                        f"{r['service']} {r['running']}/{r['wanted']}"
                        + "".join(
                            f", task {t['slot']} {t['state']}"
                            + (f" ({t['error']})" if t["error"] else "")
                            for t in r["tasks"]
                            if t["desired"] == "running" and t["state"] != "running"
                        )
                        for r in pending
                    )
                    or "no services"
                )
                raise StackError(
                    f"{self.name}: not converged after {timeout:.0f} s: {detail}. "
                    f"See `docker service ps {self.name}_<service> --no-trunc`."
                )
            time.sleep(0.3)

    def scale(self, service: str, replicas: int, *, timeout: float | None = None) -> str | Skipped:
        """Run ``replicas`` tasks of one service (``docker service scale``) and wait for them."""
        if not self.usable:
            return Skipped("docker service scale", self.check().reason)
        if replicas < 0:
            raise StackError("replicas must be 0 or more.")
        self._service(service)  # a clear error for an unknown service
        # The CLI, not the SDK's Service.scale: that one rewrites the task template, which
        # replaces the running tasks as well.
        self._docker("service", "scale", "--detach", f"{self._full(service)}={replicas}")
        self.wait(services=[service], timeout=timeout)
        return self.status()

    def spread(
        self,
        service: str,
        path: str = "/",
        *,
        via: str | None = None,
        requests: int = 6,
        port: int = 8000,
        network: str = "backend",
    ) -> Spread | Skipped:
        """Send ``requests`` GETs from a one-off container inside the stack's ``network``.

        The container (the service's own image, removed afterwards) asks Swarm's DNS for the
        service name and for ``tasks.<name>`` (one address per task), then GETs
        ``http://<via or service>:<port><path>``; each answer's ``hostname`` says which task of
        ``service`` served it. ``via="gateway"`` sends the requests through the gateway.
        """
        if not self.usable:
            return Skipped("requests inside the stack's network", self.check().reason)
        attrs = self._client().api.inspect_service(self._full(service))
        image = attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
        script = (
            "import json, socket, urllib.request\n"
            f"name, n = {service!r}, {int(requests)}\n"
            "vips = socket.gethostbyname_ex(name)[2]\n"
            "tasks = socket.gethostbyname_ex('tasks.' + name)[2]\n"
            # repr() keeps any quote or newline in a name or path out of the code it builds.
            f"url = {f'http://{via or service}:{int(port)}{path}'!r}\n"
            "hosts = [json.load(urllib.request.urlopen(url, timeout=5))['hostname'] "
            "for _ in range(n)]\n"
            "print(json.dumps({'vips': vips, 'tasks': tasks, 'hosts': hosts}))\n"
        )
        try:
            out = self._client().containers.run(
                image,
                entrypoint=["python3", "-c", script],
                command=[],
                remove=True,
                network=f"{self.name}_{network}",
                labels={PROBE: self.name},
                read_only=True,
                cap_drop=["ALL"],
                stdout=True,
                stderr=True,
            )
        except Exception as exc:
            raise StackError(f"The probe container could not ask {service}: {exc}") from exc
        found = json.loads(out.decode().strip().splitlines()[-1])
        replicas = sorted(
            t["container"][:12]
            for t in self._tasks(service)
            if t["desired"] == "running" and t["state"] == "running"
        )
        return Spread(
            service,
            self.endpoint_mode(service),
            sorted(found["vips"]),
            sorted(found["tasks"]),
            found["hosts"],
            replicas,
        )

    def endpoint_mode(self, service: str) -> str:
        """``vip`` (one virtual IP for the name) or ``dnsrr`` (every task's address)."""
        attrs = self._client().api.inspect_service(self._full(service))
        return str(((attrs.get("Spec") or {}).get("EndpointSpec") or {}).get("Mode", "vip"))

    def virtual_ips_work(self) -> bool:
        """Whether this kernel has IPVS, which Swarm's virtual IPs and routing mesh are made of.

        Only knowable for an engine on this machine (the default socket); a remote one is trusted.
        """
        import os

        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return True
        return Path("/proc/net/ip_vs").exists()

    def update(
        self, service: str, *, timeout: float | None = None, **env: str
    ) -> Rollout | Skipped:
        """A rolling update that sets environment variables, watched until it completes.

        ``docker service update --env-add KEY=VALUE`` changes the task template, so Swarm replaces
        every task, one at a time, as ``update_config`` says; this samples the tasks meanwhile.
        """
        if not self.usable:
            return Skipped("docker service update", self.check().reason)
        if not env:
            raise StackError("Say what to change, e.g. update('products', SHOP_RELEASE='2').")
        pairs = [f"{k}={v}" for k, v in env.items()]
        current = self._client().api.inspect_service(self._full(service))
        if set(pairs) <= set(current["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []):
            raise StackError(
                f"{service} already runs with {', '.join(pairs)}: nothing would "
                "change. Choose another value."
            )
        before = {t["id"] for t in self._tasks(service) if t["desired"] == "running"}
        args = [a for pair in pairs for a in ("--env-add", pair)]
        started = time.monotonic()
        self._docker("service", "update", "--detach", *args, self._full(service))
        timeout = self.timeout if timeout is None else timeout
        steps: list[tuple[int, int]] = []
        serving, starting = [], []
        state = ""
        while True:
            tasks = self._tasks(service)
            new = [t for t in tasks if set(pairs) <= set(t["env"])]
            old = [t for t in tasks if t not in new]
            running_old = sum(t["state"] == "running" for t in old)
            running_new = sum(t["state"] == "running" for t in new)
            if not steps or steps[-1] != (running_old, running_new):
                steps.append((running_old, running_new))
            serving.append(running_old + running_new)
            starting.append(sum(t["desired"] == "running" and t["state"] != "running" for t in new))
            status = (
                self._client().api.inspect_service(self._full(service)).get("UpdateStatus") or {}
            )
            state = str(status.get("State", ""))
            if state in ("completed", "rollback_completed", "paused", "rollback_paused"):
                break
            if time.monotonic() - started > timeout:
                raise StackError(
                    f"The update of {service} did not finish in {timeout:.0f} s "
                    f"(state {state or 'unknown'}): see `docker service ps "
                    f"{self._full(service)}`."
                )
            time.sleep(0.1)
        if state != "completed":
            raise StackError(
                f"The update of {service} ended {state}: "
                f"{status.get('Message', '')}. Swarm kept or restored the old "
                "tasks; see `docker service ps` for why the new ones failed."
            )
        self.wait(services=[service], timeout=timeout)
        while True:  # the last old task may still be stopping
            tasks = self._tasks(service)
            running_new = sum(
                t["state"] == "running" and set(pairs) <= set(t["env"]) for t in tasks
            )
            last = (sum(t["state"] == "running" for t in tasks) - running_new, running_new)
            if last[0] == 0 or time.monotonic() - started > timeout:
                break
            time.sleep(0.1)
        if steps[-1] != last:
            steps.append(last)
        after = {t["id"] for t in tasks if t["desired"] == "running"}
        return Rollout(
            service,
            len(before - after),
            steps,
            min(serving),
            max(starting),
            time.monotonic() - started,
            state,
        )

    def remove(self, *, timeout: float = 60.0) -> str | Skipped:
        """``docker stack rm``, then wait until its containers, networks and volumes are gone."""
        if not self.usable:
            return Skipped("docker stack rm", self.check().reason)
        client = self._client()
        if (client.info().get("Swarm") or {}).get("LocalNodeState") != "active":
            return f"{self.name} is not deployed (no Swarm is active)"
        selector = {"label": f"{NAMESPACE}={self.name}"}
        if client.services.list(filters=selector):
            self._docker("stack", "rm", self.name)
        deadline = Deadline(timeout)
        while client.api.containers(all=True, filters=selector):
            if deadline.passed():
                raise StackError(
                    f"The containers of {self.name} are still there after "
                    f"{timeout:.0f} s: see `docker ps -a --filter label={NAMESPACE}="
                    f"{self.name}`."
                )
            time.sleep(0.3)
        for kind in ("networks", "volumes"):
            while True:
                left = getattr(client, kind).list(filters=selector)
                if not left:
                    break
                for item in left:
                    try:
                        item.remove()
                    except Exception:  # noqa: BLE001 - still in use for a moment; try again
                        pass
                if deadline.passed():
                    raise StackError(
                        f"The {kind} of {self.name} are still there after "
                        f"{timeout:.0f} s: remove them with `docker {kind[:-1]} rm`."
                    )
                time.sleep(0.3)
        return f"{self.name} removed: its services, tasks, networks, secrets and volumes are gone"

    # -- the lesson's steps: the same text on every machine -----------------------------------

    def stack_file(self, compose: dict[str, Any] | Stack, **options: Any) -> StackFile:
        """:func:`stack_file` for this machine: DNS round robin where the kernel has no IPVS."""
        options.setdefault("endpoint_mode", "vip" if self.virtual_ips_work() else "dnsrr")
        return stack_file(compose, **options)

    def stack_deploy(self, path: str | Path, *, timeout: float | None = None) -> str | Skipped:
        """``docker stack deploy --resolve-image never -c PATH <stack>``: your stack file, deployed.

        Deploying again with a changed file is how a stack is changed: Swarm updates each service
        whose spec differs. The shop must be deployed once first (:meth:`deploy` builds its image
        and makes its secret). Waits until every task wanted runs.
        """
        import yaml

        path = Path(path).expanduser()
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise StackError(f"Cannot read the stack file {path}: {exc}") from None
        _DEPLOYED[self.name] = data if isinstance(data, dict) else {}
        if not self.usable:
            return Skipped("docker stack deploy", self.check().reason)
        if (self._client().info().get("Swarm") or {}).get(
            "LocalNodeState"
        ) != "active" or not self.services():
            return Skipped(
                "docker stack deploy",
                f"{self.name} is not deployed yet. Start the Swarm and deploy the shop "
                "first: sw.init(), then sw.deploy(shop).",
            )
        self._docker("stack", "deploy", "--resolve-image", "never", "-c", str(path), self.name)
        self.wait(timeout=timeout)
        return self.status()

    def service_spec(self, service: str) -> dict[str, Any] | None:
        """The engine's spec of one service of the stack (``docker service inspect``), or None
        where Swarm is not used or the stack does not run that service."""
        import docker.errors

        if not self.usable:
            return None
        if (self._client().info().get("Swarm") or {}).get("LocalNodeState") != "active":
            return None
        try:
            attrs = self._client().api.inspect_service(self._full(service))
        except docker.errors.NotFound:
            return None
        return dict(attrs.get("Spec") or {})

    def init_step(self) -> Step:
        """:meth:`init`, shown as its command; checks that this node is a manager."""
        result = self.init()
        step = Step(
            "docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377",
            "a Swarm of one node: this engine is its manager, on 127.0.0.1 only",
            result,
        )
        if step.ran:
            node = self._client().nodes.get(self._node_id()).attrs
            if (node.get("Spec") or {}).get("Role") != "manager":
                raise StackError("This node is not a manager of its Swarm: see `docker node ls`.")
        return step

    def deploy_step(self, stack: Stack, *, replicas: dict[str, int] | None = None) -> Step:
        """:meth:`deploy`, shown as its command and the tasks it wants; checks they all run."""
        file = self.stack_file(stack, replicas=replicas)
        wanted = {n: int(s["deploy"].get("replicas", 1)) for n, s in file.data["services"].items()}
        result = self.deploy(stack, replicas=replicas)
        _DEPLOYED[self.name] = file.data
        if not isinstance(result, Skipped):
            rows = self.ps()
            assert not isinstance(rows, Skipped)
            running = {r["service"]: r["running"] for r in rows}
            if running != wanted:
                raise StackError(f"{self.name} runs {running}, not the tasks wanted: {wanted}.")
        return Step(
            f"docker stack deploy --prune --resolve-image never -c {self.name}.yaml {self.name}",
            "wanted, each task running and healthy: "
            + ", ".join(f"{n} {c}" for n, c in sorted(wanted.items())),
            result,
        )

    def spread_step(
        self, service: str, path: str = "/", *, via: str | None = None, requests: int = 6
    ) -> Step:
        """:meth:`spread`, shown as the requests it sends; checks that every task answered."""
        result = self.spread(service, path, via=via, requests=requests)
        if isinstance(result, Spread) and set(result.hostnames) != set(result.replicas):
            raise StackError(
                f"{len(set(result.hostnames))} of the {len(result.replicas)} tasks of {service} "
                f"answered: {result}"
            )
        return Step(
            f"{requests} x GET http://{via or service}:8000{path}, from a container in the "
            "stack's backend network",
            f"every running task of {service} answers some of them",
            result,
        )

    def update_step(self, service: str, **env: str) -> Step:
        """:meth:`update`, shown as its command and what update_config promises; checks the promise."""
        deploy = ((_DEPLOYED.get(self.name) or {}).get("services") or {}).get(service) or {}
        promise = _promise(deploy.get("deploy") or {})
        changes: dict[str, Any] = dict(env)  # never the timeout keyword
        result = self.update(service, **changes)
        if isinstance(result, Rollout):
            spec = deploy.get("deploy") or {}
            update = spec.get("update_config") or {}
            replicas = int(spec.get("replicas", 1))
            parallelism = int(update.get("parallelism", 1)) or replicas
            serving = replicas if update.get("order") == "start-first" else replicas - parallelism
            if result.min_serving < serving or result.max_starting > parallelism:
                raise StackError(f"Swarm did not keep update_config's promise: {result}")
        pairs = " ".join(f"--env-add {k}={v}" for k, v in env.items())
        return Step(f"docker service update {pairs} {self._full(service)}", promise, result)

    def clean_up_step(self) -> Step:
        """:meth:`remove` then :meth:`leave`; the engine is left as the lesson found it."""
        removed = self.remove()
        left = self.leave() if not isinstance(removed, Skipped) else removed
        return Step(
            f"docker stack rm {self.name}\n$ docker swarm leave --force   # only if this "
            "lesson started the Swarm and nothing else runs in it",
            "the stack's services, tasks, networks, secret and volume are gone; the engine's "
            "Swarm is as the lesson found it",
            left,
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _remove_gwbridge(self, client: Any, timeout: float = 15.0) -> None:
        """Remove docker_gwbridge (made by ``init``) once the ingress sandbox has let go of it."""
        import docker.errors

        deadline = Deadline(timeout)
        for network in client.networks.list(names=["docker_gwbridge"]):
            while True:
                network.reload()
                attached = network.attrs.get("Containers") or {}
                if not attached:
                    try:
                        network.remove()
                        return
                    except docker.errors.APIError:
                        pass
                elif any(
                    key != "ingress-sbox" and "ingress-sbox" not in str(v.get("Name", ""))
                    for key, v in attached.items()
                ):
                    return  # a container still uses it: keep it
                if deadline.passed():
                    return
                time.sleep(0.3)

    def _client(self) -> Any:
        return engine.client(ping=False)

    def _docker(self, *args: str, timeout: float = 120.0) -> str:
        try:
            done = subprocess.run(
                ["docker", *args], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"`docker {' '.join(args[:2])}` took longer than {timeout:.0f} s."
            ) from exc
        if done.returncode != 0:
            raise StackError(
                f"`docker {' '.join(args)}` failed:\n{(done.stderr or done.stdout).strip()[-1500:]}"
            )
        return done.stdout

    def _full(self, service: str) -> str:
        return f"{self.name}_{service}"

    def _service(self, service: str) -> Any:
        import docker.errors

        try:
            return self._client().services.get(self._full(service))
        except docker.errors.NotFound:
            raise StackError(
                f"{self.name} has no service {service!r}: it has "
                f"{', '.join(self.services()) or 'none (deploy it first)'}."
            ) from None

    def _tasks(self, service: str) -> list[dict[str, Any]]:
        rows = []
        for task in self._client().api.tasks(filters={"service": self._full(service)}):
            status = task.get("Status") or {}
            spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
            rows.append(
                {
                    "id": task["ID"],
                    "slot": task.get("Slot", 0),
                    "state": status.get("State", ""),
                    "desired": task.get("DesiredState"),
                    "error": status.get("Err", ""),
                    "env": list(spec.get("Env") or []),
                    "container": ((status.get("ContainerStatus") or {}).get("ContainerID", "")),
                }
            )
        return rows

    def _node_id(self) -> str:
        return str((self._client().info().get("Swarm") or {}).get("NodeID", ""))

    def _node_labels(self) -> dict[str, str]:
        node = self._client().nodes.get(self._node_id())
        return dict((node.attrs.get("Spec") or {}).get("Labels") or {})

    def _label_node(self, labels: dict[str, str]) -> None:
        node = self._client().nodes.get(self._node_id())
        spec = dict(node.attrs["Spec"])
        spec["Labels"] = {**(spec.get("Labels") or {}), **labels}
        node.update(spec)

    def _build_images(self, compose: dict[str, Any]) -> None:
        """Build each image the Compose file builds (cached), and check the others exist."""
        import docker.errors

        client = self._client()
        for name, spec in (compose.get("services") or {}).items():
            image, build = spec.get("image"), spec.get("build")
            if build:
                try:
                    client.images.build(
                        path=build["context"],
                        tag=image,
                        rm=True,
                        pull=False,
                        dockerfile=build.get("dockerfile", "Dockerfile"),
                    )
                except (docker.errors.BuildError, docker.errors.APIError) as exc:
                    raise StackError(
                        f"Building {image} for {name} failed ({exc}). Its base is "
                        "a lab image: run `labkit images build` first."
                    ) from exc
            elif image:
                try:
                    client.images.get(image)
                except docker.errors.ImageNotFound:
                    raise StackError(
                        f"{name} needs {image}, which is not on this machine: run "
                        "`labkit images build`."
                    ) from None
