"""Kubernetes manifests from a Compose file: a Deployment per service, Services, a volume claim, probes.

Pure Python and deterministic: the same Compose file gives the same YAML, byte for byte, on every
machine, with or without Docker. Nothing here talks to a cluster. What each part becomes:

- every service -> a **Deployment** (its replicas, image, command, environment, probes, security),
  whose pods get no Kubernetes API token (``automountServiceAccountToken: false``): the apps never
  call the API, and a mounted token is a credential for whoever breaks into a pod;
- a service other services reach -> a **ClusterIP Service** of the same name, so ``http://users:8000``
  works as it did under Compose;
- a service Compose publishes on one address only (``127.0.0.1:8080:8000``, as the kit's stacks do)
  -> a **ClusterIP Service** too, annotated with how to reach it from your machine:
  ``kubectl port-forward service/NAME 8080:8000``, which listens on your loopback, as Compose did
  (``:8000`` where Compose left the host port to Docker: kubectl picks a free one);
- a service Compose publishes on all interfaces (``8080:8000``, ``0.0.0.0:8080:8000``) -> a
  **LoadBalancer Service**, an address outside the cluster: that is what the Compose file asked for;
- a Compose secret -> a reference to a **Secret** (made with ``kubectl create secret``, never written
  into a manifest) mounted where Compose put it, ``/run/secrets/<name>``;
- a named volume -> a **PersistentVolumeClaim**, and its Deployment replaces pods stop-first
  (``Recreate``) as Swarm did;
- a healthcheck -> a readiness and a liveness probe; ``user``, ``read_only``, ``cap_drop`` and
  ``no-new-privileges`` -> the container's ``securityContext``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from labkit.errors import StackError
from labkit.paths import kit_root, labkit_home
from labkit.runtime import composefile

if TYPE_CHECKING:
    from labkit.runtime.compose import Stack

NAME = "app.kubernetes.io/name"
PART_OF = "app.kubernetes.io/part-of"
# Kubernetes' well-known annotation for describing how an object behaves; kubectl describe shows it.
DESCRIPTION = "kubernetes.io/description"
# host_ip values that mean every interface; any other address (127.0.0.1) limits who may connect.
ALL_INTERFACES = ("", "0.0.0.0", "::")
# The kit's images answer health probes through this small command; Kubernetes asks over HTTP itself.
PROBE_COMMAND = "labkit-probe"
SECRETS_DIR = "/run/secrets"


def manifests(
    compose: dict[str, Any] | Stack, *, app: str = "shop", replicas: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """Every manifest for a Compose file (or a :class:`~labkit.Stack`), in a fixed order.

    Volume claims first, then for each service its Deployment and, where it has ports, its
    Service. ``replicas`` overrides the Compose file's ``deploy.replicas`` (1 by default).
    A published service is a LoadBalancer only when Compose published every one of its ports on
    all interfaces; published on loopback (or any one address), it stays inside the cluster.
    """
    if not isinstance(compose, dict):
        compose = composefile.read(compose)
    replicas = replicas or {}
    services = compose.get("services") or {}
    out: list[dict[str, Any]] = []
    for volume in compose.get("volumes") or {}:
        out.append(_claim(volume, app))
    for name, spec in services.items():
        count = replicas.get(name, int((spec.get("deploy") or {}).get("replicas", 1)))
        ports = _container_ports(spec)
        out.append(_deployment(name, spec, count, app, ports, compose))
        published = composefile.ports(spec)
        if published and all(_everywhere(p) for p in published):
            out.append(_service(name, app, [p["target"] for p in published], "LoadBalancer"))
        elif published:
            service = _service(name, app, [p["target"] for p in published], "ClusterIP")
            service["metadata"]["annotations"] = {DESCRIPTION: _reach_note(name, published)}
            out.append(service)
        elif ports:
            out.append(_service(name, app, ports, "ClusterIP"))
    return out


def to_yaml(objects: list[dict[str, Any]] | dict[str, Any]) -> str:
    """Manifests as one YAML stream (``---`` between documents), keys in the order written."""
    if isinstance(objects, dict):
        return composefile.yaml_text(objects)
    return composefile.yaml_text(objects, documents=True)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The manifest of ``kind`` called ``name``."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    have = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    raise StackError(f"There is no {kind} called {name!r}; there are: {have}.")


def summary(objects: list[dict[str, Any]]) -> str:
    """One line per manifest: kind, name, and what it says in a few words."""
    rows = [("KIND", "NAME", "WHAT")]
    for obj in objects:
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj["spec"]
        if kind == "Deployment":
            pod = spec["template"]["spec"]
            container = pod["containers"][0]
            what = f"{spec['replicas']} x {container['image']}"
            if "readinessProbe" in container:
                what += ", probes"
            if pod.get("volumes"):
                what += ", " + ", ".join(sorted(_volume_kind(v) for v in pod["volumes"]))
        elif kind == "Service":
            ports = ", ".join(str(p["port"]) for p in spec["ports"])
            what = f"{spec['type']} on port {ports}"
            note = obj["metadata"].get("annotations", {}).get(DESCRIPTION)
            if note:
                what += ", from your machine: " + note[note.index("kubectl ") :]
        else:
            what = f"{spec['resources']['requests']['storage']}, {spec['accessModes'][0]}"
        rows.append((kind, name, what))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{k:<{widths[0]}}  {n:<{widths[1]}}  {w}" for k, n, w in rows)


def secret_commands(compose: dict[str, Any] | Stack) -> list[str]:
    """The ``kubectl create secret`` commands that make each Secret the manifests refer to.

    A secret's value belongs in the cluster, not in a file under version control, so the
    manifests only name the Secret; this is how it gets there from the Compose secret's file
    (paths inside the kit are shown relative to its folder, paths in labkit's home as the shell
    finds that home: ``$LABKIT_HOME``, else ``~/.labkit``).
    """
    if not isinstance(compose, dict):
        compose = composefile.read(compose)
    out = []
    for name, spec in (compose.get("secrets") or {}).items():
        path = str((spec or {}).get("file", f"<file holding {name}>"))
        root, home = str(kit_root()), str(labkit_home())
        if path.startswith(f"{root}/"):
            path = path[len(root) + 1 :]
        elif path.startswith(f"{home}/"):
            # The home is per machine (a temporary folder in CI): the same text fits them all.
            path = "${LABKIT_HOME:-$HOME/.labkit}/" + path[len(home) + 1 :]
        out.append(f"kubectl create secret generic {dns_name(name)} --from-file={name}={path}")
    return out


def save(name: str, text: str) -> Path:
    """Write manifests you wrote (YAML text) as ``name`` in the kit's folder, ``$LABKIT_HOME/kube``."""
    if "/" in name or not name.endswith((".yaml", ".yml")):
        raise StackError(f"Give a file name ending in .yaml, without a folder: not {name!r}.")
    folder = labkit_home() / "kube"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


#: The resource (the URL's plural) of each kind an AdmissionReview in this kit may carry.
RESOURCES = {"Deployment": "deployments", "Service": "services", "Pod": "pods"}


def admission_review(obj: dict[str, Any], *, uid: str, operation: str = "CREATE") -> dict[str, Any]:
    """The AdmissionReview (``admission.k8s.io/v1``) the API server posts to a validating webhook
    before it stores ``obj``: who asks, what they do, and the object itself.

    A webhook answers with an AdmissionReview of the same ``apiVersion`` and ``kind`` whose
    ``response`` carries the same ``uid``, ``allowed``, and, to refuse, a ``status`` whose
    ``message`` the API server passes back to the user.
    """
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    kind = str(obj["kind"])
    resource = RESOURCES.get(kind, kind.lower() + "s")
    namespace = obj["metadata"].get("namespace", "default")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": obj["metadata"]["name"],
            "namespace": namespace,
            "operation": operation,
            "userInfo": {
                "username": "kubernetes-admin",
                "groups": ["system:masters", "system:authenticated"],
            },
            "object": {**obj, "metadata": {**obj["metadata"], "namespace": namespace}},
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def dns_name(name: str) -> str:
    """A Compose name as a Kubernetes object name (lowercase letters, digits and ``-``)."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


# -- the parts --------------------------------------------------------------------------------------


def _labels(name: str, app: str) -> dict[str, str]:
    return {NAME: name, PART_OF: app}


def _claim(volume: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": dns_name(volume), "labels": {PART_OF: app}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _service(name: str, app: str, ports: list[int], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": dns_name(name), "labels": _labels(name, app)},
        "spec": {
            "type": kind,
            "selector": {NAME: name},
            "ports": [
                {"name": f"tcp-{port}", "port": port, "targetPort": port, "protocol": "TCP"}
                for port in ports
            ],
        },
    }


def _everywhere(port: dict[str, Any]) -> bool:
    """Whether Compose publishes ``port`` on every interface (no address, 0.0.0.0 or [::])."""
    return str(port["host_ip"] or "").strip("[]") in ALL_INTERFACES


def _reach_note(name: str, published: list[dict[str, Any]]) -> str:
    """How to reach a Service that Compose published on one address only, from your machine."""
    limited = [p for p in published if not _everywhere(p)]
    where = ", ".join(f"{p['target']} on {p['host_ip']}" for p in limited)
    # An empty local port (":8000") lets kubectl pick a free one, as Docker did for "127.0.0.1::8000".
    pairs = " ".join(f"{p['published'] or ''}:{p['target']}" for p in published)
    return (
        f"Compose published port{'s' if len(limited) > 1 else ''} {where} only; to reach it "
        f"from your machine, run kubectl port-forward service/{dns_name(name)} {pairs}"
    )


def _container_ports(spec: dict[str, Any]) -> list[int]:
    ports = [p["target"] for p in composefile.ports(spec)]
    ports += [int(str(p).split("/")[0]) for p in spec.get("expose") or []]
    check = composefile.healthcheck(spec)
    if check and len(check["test"]) > 2 and check["test"][1] == PROBE_COMMAND:
        port = urlsplit(check["test"][2]).port
        if port:
            ports.append(port)
    ports += composefile.exposed_ports(spec)
    return sorted(set(ports))


def _deployment(
    name: str, spec: dict[str, Any], count: int, app: str, ports: list[int], compose: dict[str, Any]
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": dns_name(name),
        "image": spec["image"],
        "imagePullPolicy": "IfNotPresent",
    }
    # Compose's entrypoint is Kubernetes' command; Compose's command is Kubernetes' args.
    for compose_key, kube_key in (("entrypoint", "command"), ("command", "args")):
        value = spec.get(compose_key)
        if value is not None:
            container[kube_key] = [value] if isinstance(value, str) else list(value)
    if ports:
        container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
    env = composefile.environment(spec)
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    probe = _probe(composefile.healthcheck(spec))
    if probe:
        container["readinessProbe"] = probe
        container["livenessProbe"] = copy.deepcopy(probe)
    security = _security(spec)
    if security:
        container["securityContext"] = security
    mounts, volumes = _mounts(spec, compose)
    if mounts:
        container["volumeMounts"] = mounts
    # The apps never call the Kubernetes API; a token in the pod would only serve an intruder.
    pod: dict[str, Any] = {"automountServiceAccountToken": False, "containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    if any(v.get("persistentVolumeClaim") for v in volumes):
        strategy: dict[str, Any] = {"type": "Recreate"}
    else:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": dns_name(name), "labels": _labels(name, app)},
        "spec": {
            "replicas": count,
            "selector": {"matchLabels": {NAME: name}},
            "strategy": strategy,
            "template": {"metadata": {"labels": _labels(name, app)}, "spec": pod},
        },
    }


def _probe(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Compose healthcheck as a probe: HTTP for the kit's probe command, else the command itself."""
    if not check or not check["test"] or check["test"][0] == "NONE":
        return None
    test = check["test"]
    action: dict[str, Any]
    if test[0] == "CMD" and len(test) == 3 and test[1] == PROBE_COMMAND:
        url = urlsplit(test[2])
        action = {"httpGet": {"path": url.path or "/", "port": url.port or 80}}
    elif test[0] == "CMD":
        action = {"exec": {"command": list(test[1:])}}
    else:
        action = {"exec": {"command": ["/bin/sh", "-c", " ".join(test[1:])]}}
    probe = {
        **action,
        "periodSeconds": max(1, check["interval"]),
        "timeoutSeconds": max(1, check["timeout"]),
        "failureThreshold": max(1, check["retries"]),
    }
    if check["start_period"]:
        probe["initialDelaySeconds"] = check["start_period"]
    return probe


def _security(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    user = spec.get("user")
    if user is not None:
        name = str(user).split(":")[0]
        uid = int(name) if name.isdigit() else composefile.user_ids(spec).get(name)
        if uid is None:
            raise StackError(
                f"Kubernetes needs a numeric user id, and the images of this "
                f"service do not say which id {name!r} has: write `user: <uid>`."
            )
        out["runAsUser"] = uid
        out["runAsNonRoot"] = uid != 0
    if spec.get("read_only"):
        out["readOnlyRootFilesystem"] = True
    if any(
        str(o).replace("=", ":").startswith("no-new-privileges") and not str(o).endswith("false")
        for o in spec.get("security_opt") or []
    ):
        out["allowPrivilegeEscalation"] = False
    if spec.get("cap_drop") or spec.get("cap_add"):
        caps: dict[str, Any] = {}
        if spec.get("cap_add"):
            caps["add"] = list(spec["cap_add"])
        if spec.get("cap_drop"):
            caps["drop"] = list(spec["cap_drop"])
        out["capabilities"] = caps
    return out


def _mounts(
    spec: dict[str, Any], compose: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for entry in composefile.volumes(spec):
        if entry["type"] == "volume" and entry["source"] in (compose.get("volumes") or {}):
            name = dns_name(entry["source"])
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
        elif entry["type"] == "tmpfs":
            name = dns_name(entry["target"]) or "tmp"
            volumes.append({"name": name, "emptyDir": {"medium": "Memory"}})
        else:
            raise StackError(
                f"{entry['source']}:{entry['target']} is a bind mount of a host "
                "folder; a pod does not run on your machine, so give it a named "
                "volume (a PersistentVolumeClaim) or bake the files into the image."
            )
        mounts.append(
            {
                "name": volumes[-1]["name"],
                "mountPath": entry["target"],
                **({"readOnly": True} if entry["read_only"] else {}),
            }
        )
    tmpfs = [spec["tmpfs"]] if isinstance(spec.get("tmpfs"), str) else spec.get("tmpfs") or []
    for target in tmpfs:
        name = dns_name(target) or "tmp"
        volumes.append({"name": name, "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": name, "mountPath": target})
    secrets = composefile.names(spec.get("secrets"))
    if secrets:
        volumes.append(
            {
                "name": "secrets",
                "projected": {
                    "sources": [
                        {"secret": {"name": dns_name(s), "items": [{"key": s, "path": s}]}}
                        for s in secrets
                    ]
                },
            }
        )
        mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    return mounts, volumes


def _volume_kind(volume: dict[str, Any]) -> str:
    if "persistentVolumeClaim" in volume:
        return "a volume claim"
    if "projected" in volume:
        return "secrets"
    return "a memory tmpfs"
