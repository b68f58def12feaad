"""A Compose file made into a Swarm stack file: pure, no engine, runs anywhere.

``stack_file(compose)`` turns a Compose file (read by :func:`labkit.runtime.composefile.read`) into
a stack file that ``docker stack deploy`` accepts, and lists every change with its reason.
:mod:`labkit.runtime.swarm` deploys it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import StackError
from labkit.paths import labkit_home
from labkit.runtime import composefile

if TYPE_CHECKING:
    from labkit.runtime.compose import Stack

STACK_VERSION = "3.8"


# -- the stack file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between the Compose file and the stack file, and why it is needed."""

    service: str
    key: str
    what: str
    why: str


@dataclass
class StackFile:
    """A stack file for ``docker stack deploy`` (``data``) and the ``changes`` made to get it."""

    data: dict[str, Any]
    changes: list[Change] = field(default_factory=list)

    def yaml(self) -> str:
        """The whole file as YAML, keys in a fixed order."""
        return composefile.yaml_text(self.data, flow=None)

    def service(self, name: str) -> str:
        """One service of the file as YAML."""
        if name not in self.data["services"]:
            raise StackError(
                f"The stack file has no service {name!r}: it has "
                f"{', '.join(self.data['services'])}."
            )
        return composefile.yaml_text({name: self.data["services"][name]}, flow=None)

    def write(self, name: str) -> Path:
        """Write the file as ``name`` in the kit's Swarm folder (``$LABKIT_HOME/swarm``)."""

        if "/" in name or not name.endswith((".yaml", ".yml")):
            raise StackError(f"Give a file name ending in .yaml, without a folder: not {name!r}.")
        folder = labkit_home() / "swarm"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(self.yaml())
        return path

    def explain(self) -> str:
        """Every change as ``key (services): what - why``, one per kind of change."""
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for change in self.changes:
            grouped.setdefault((change.key, change.what, change.why), []).append(change.service)
        lines = []
        for (key, what, why), services in grouped.items():
            lines.append(f"{key} ({', '.join(services)}): {what}\n    why: {why}")
        return "\n".join(lines)


def stack_file(
    compose: dict[str, Any] | Stack,
    *,
    replicas: dict[str, int] | None = None,
    endpoint_mode: str = "vip",
    deploy: dict[str, dict[str, Any]] | None = None,
) -> StackFile:
    """The stack file ``docker stack deploy`` needs for a Compose file, with each change explained.

    ``replicas`` sets how many tasks a service starts with (1 each by default). The database keeps
    one replica, is updated stop-first and stays on one node, because its volume lives there.
    ``endpoint_mode="dnsrr"`` gives each service DNS round robin instead of a virtual IP, for
    kernels without IPVS (see :meth:`Swarm.virtual_ips_work`). ``deploy`` gives a service your own
    ``deploy:`` section instead of the one made here (as written; only ``endpoint_mode`` is added).
    """
    if endpoint_mode not in ("vip", "dnsrr"):
        raise StackError(f"endpoint_mode is 'vip' or 'dnsrr', not {endpoint_mode!r}.")
    if not isinstance(compose, dict):
        compose = composefile.read(compose)
    compose = copy.deepcopy(compose)  # YAML anchors share objects; the output must not
    replicas = replicas or {}
    deploy = deploy or {}
    changes: list[Change] = []
    services: dict[str, Any] = {}
    for name, spec in (compose.get("services") or {}).items():
        services[name] = _service(name, spec, replicas.get(name, 1), changes)
        if name in deploy:
            if not isinstance(deploy[name], dict):
                raise StackError(f"deploy[{name!r}] is the service's deploy: section, a dict.")
            services[name]["deploy"] = copy.deepcopy(deploy[name])
            changes = [c for c in changes if (c.service, c.key) != (name, "deploy")]
            changes.append(Change(name, "deploy", "yours", "the deploy: section you wrote"))
        if endpoint_mode == "dnsrr":
            services[name]["deploy"]["endpoint_mode"] = "dnsrr"
            changes.append(
                Change(
                    name,
                    "deploy",
                    "endpoint_mode: dnsrr",
                    "this kernel has no IPVS, which virtual IPs need: the name "
                    "answers with every task's address instead",
                )
            )
    networks = {}
    for name, spec in (compose.get("networks") or {}).items():
        spec = spec or {}
        networks[name] = {
            "driver": "overlay",
            "attachable": True,
            **({"internal": True} if spec.get("internal") else {}),
        }
    if networks:
        changes.append(
            Change(
                "*",
                "networks",
                "driver: overlay, attachable: true",
                "an overlay network spans every node of the Swarm; attachable lets "
                "a plain container join it, as this lesson's probe does",
            )
        )
    data: dict[str, Any] = {"version": STACK_VERSION, "services": services}
    if networks:
        data["networks"] = networks
    if compose.get("volumes"):
        data["volumes"] = {k: v or {} for k, v in compose["volumes"].items()}
    if compose.get("secrets"):
        data["secrets"] = {k: dict(v or {}) for k, v in compose["secrets"].items()}
    changes.insert(
        0,
        Change(
            "*",
            "version",
            f'"{STACK_VERSION}"',
            "docker stack deploy reads the version 3 file format and needs the "
            "version written at the top",
        ),
    )
    return StackFile(data, changes)


def _service(name: str, spec: dict[str, Any], count: int, changes: list[Change]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    image = spec.get("image")
    if spec.get("build"):
        if not image:
            raise StackError(
                f"{name} is built (build:) but names no image: Swarm runs images, "
                "so add `image: <name>:<tag>` to the Compose file."
            )
        changes.append(
            Change(
                name,
                "build",
                f"removed; runs image {image}",
                "docker stack deploy never builds: every node runs an image that "
                "already exists, so the image is built first (here by the kit)",
            )
        )
    if image:
        out["image"] = image
    for key in ("entrypoint", "command", "user"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    env = composefile.environment(spec)
    if env:
        out["environment"] = env
    if spec.get("read_only"):
        out["read_only"] = True
    if spec.get("cap_drop"):
        out["cap_drop"] = list(spec["cap_drop"])
    mounts = [v for v in spec.get("volumes") or []]
    for target in (
        [spec["tmpfs"]] if isinstance(spec.get("tmpfs"), str) else spec.get("tmpfs") or []
    ):
        mounts.append({"type": "tmpfs", "target": target})
        changes.append(
            Change(
                name,
                "tmpfs",
                "became a volume of type tmpfs",
                "a service mounts its tmpfs through volumes: in a stack file",
            )
        )
    if mounts:
        out["volumes"] = mounts
    nets = composefile.names(spec.get("networks"))
    if nets:
        out["networks"] = nets
    secrets = composefile.names(spec.get("secrets"))
    if secrets:
        out["secrets"] = secrets
    if spec.get("healthcheck"):
        out["healthcheck"] = dict(spec["healthcheck"])
    if spec.get("security_opt"):
        changes.append(
            Change(
                name,
                "security_opt",
                "removed",
                "Swarm services cannot set security options (stack deploy ignores "
                "them); Kubernetes can: allowPrivilegeEscalation: false",
            )
        )
    if spec.get("ports"):
        changes.append(
            Change(
                name,
                "ports",
                "removed",
                "Swarm publishes through its routing mesh on every interface of "
                "every node and cannot bind 127.0.0.1; this kit publishes nothing "
                "beyond this machine, so the lesson asks from inside the network",
            )
        )
    if spec.get("depends_on"):
        changes.append(
            Change(
                name,
                "depends_on",
                "removed",
                "Swarm starts every service at once and restarts tasks that fail; "
                "a task only gets traffic once its healthcheck passes",
            )
        )
    if spec.get("pull_policy"):
        changes.append(
            Change(
                name,
                "pull_policy",
                "removed",
                "stack files have no pull_policy; `docker stack deploy "
                "--resolve-image never` keeps the engine from asking a registry",
            )
        )
    stateful = any(v["type"] == "volume" for v in composefile.volumes(spec))
    deploy: dict[str, Any] = {"replicas": count}
    if stateful:
        deploy["update_config"] = {
            "parallelism": 1,
            "order": "stop-first",
            "failure_action": "rollback",
        }
        deploy["placement"] = {"constraints": ["node.role == manager"]}
        changes.append(
            Change(
                name,
                "deploy",
                "stop-first updates, placed on one node",
                "a named volume lives on one node, and two databases must never "
                "open the same data at once",
            )
        )
    else:
        deploy["update_config"] = {
            "parallelism": 1,
            "delay": "1s",
            "order": "start-first",
            "failure_action": "rollback",
            "monitor": "2s",
        }
        deploy["rollback_config"] = {"parallelism": 1, "order": "start-first"}
        replicas_text = f"{count} replica{'s' if count != 1 else ''}"
        changes.append(
            Change(
                name,
                "deploy",
                f"{replicas_text}, rolling start-first updates",
                "replace one task at a time, start the new one before stopping the "
                "old, and roll back if the new one fails within 2 s",
            )
        )
    deploy["restart_policy"] = {"condition": "any", "delay": "1s"}
    out["deploy"] = deploy
    return out
