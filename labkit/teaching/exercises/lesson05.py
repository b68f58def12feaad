"""Lesson 05 (Swarm and beyond): its exercises' checks and solutions."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.errors import ServeError
from labkit.runtime import kube
from labkit.runtime.compose import Stack
from labkit.runtime.swarm import STACK_NAME, Swarm
from labkit.teaching.exercises._core import Exercise, Hint, Verdict
from labkit.webhooks.serving import Served


def _swarm_deploy(answer: Any) -> Verdict:
    if isinstance(answer, (str, Path)) and str(answer).endswith((".yaml", ".yml")):
        return _deployed_stack(Path(answer))
    if not isinstance(answer, dict):
        return False, Hint(
            "answer with the path of the stack file you deployed: answer = path.",
            "path = sw.stack_file(...).write('my-stack.yaml'), then sw.stack_deploy(path), "
            "then answer = path.",
        )
    return _deploy_section(answer)


def _deploy_section(answer: dict[Any, Any]) -> Verdict:
    if "deploy" in answer and isinstance(answer["deploy"], dict):
        return False, "give only what goes under deploy:, without the 'deploy' key around it."
    replicas = answer.get("replicas")
    if isinstance(replicas, str) and replicas.strip().isdigit():
        return False, "replicas is a number in a stack file: 3, not '3'."
    if replicas != 3 or isinstance(replicas, bool):
        return False, "run 3 tasks of the service: 'replicas': 3."
    update = answer.get("update_config")
    if not isinstance(update, dict):
        return False, (
            "how Swarm replaces tasks goes in 'update_config': parallelism, order and "
            "failure_action."
        )
    if update.get("parallelism") != 1:
        return False, (
            "'parallelism' is how many tasks are replaced at once: one at a time is "
            "'parallelism': 1 (0 would mean all at once)."
        )
    order = str(update.get("order", "stop-first"))
    if order == "stop-first":
        return False, (
            "stop-first (the default) stops an old task before its replacement runs, "
            "so only 2 of 3 serve for a while: use 'order': 'start-first'."
        )
    if order != "start-first":
        return False, "'order' is 'stop-first' or 'start-first'."
    action = str(update.get("failure_action", "pause"))
    if action in ("pause", "continue"):
        return False, (
            f"failure_action {action!r} leaves the failed tasks in place; to go back "
            "to the old version on its own, use 'failure_action': 'rollback'."
        )
    if action != "rollback":
        return False, "'failure_action' is 'pause', 'continue' or 'rollback'."
    if "resources" in answer:
        limits = _limits(answer["resources"])
        if isinstance(limits, str):
            return False, limits
    return True, (
        "3 replicas, replaced one at a time, each new task running before an old one "
        "stops, and a failed update rolls itself back."
    )


#: What the deploy task asks each task of products to be limited to: half a CPU, 128 MiB.
CPUS, MEMORY = 0.5, 128 * 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _bytes(value: Any) -> int | None:
    """A Compose memory size (``128M``, ``128m``, ``134217728``) in bytes, as Docker reads it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)[iI]?[bB]?", str(value).strip())
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _limits(resources: Any) -> tuple[float, int] | str:
    """(cpus, memory bytes) of a deploy section's resources.limits, or what is wrong with them."""
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return (
            "limits go under resources: 'resources': {'limits': {'cpus': '0.5', 'memory': '128M'}}."
        )
    limits = resources["limits"]
    try:
        cpus = float(limits.get("cpus"))
    except (TypeError, ValueError):
        return "'cpus' is a share of CPUs as a string: '0.5' is half a CPU."
    memory = _bytes(limits.get("memory"))
    if memory is None:
        return "'memory' is a size with a unit: '128M' is 128 MiB."
    if cpus != CPUS:
        return f"each task may use half a CPU: 'cpus': '0.5', not {limits.get('cpus')!r}."
    if memory != MEMORY:
        return f"each task may use 128 MiB: 'memory': '128M', not {limits.get('memory')!r}."
    return cpus, memory


def _deployed_stack(path: Path) -> Verdict:
    """Your stack file, then, where Swarm runs the stack, the engine's spec of products."""
    import yaml

    looked = (
        f"your stack file {path.name}, and the engine's spec of {STACK_NAME}_products "
        "where Swarm runs the stack"
    )
    try:
        data = yaml.safe_load(path.expanduser().read_text())
    except (OSError, yaml.YAMLError) as exc:
        return False, f"cannot read your stack file: {exc}", looked
    deploy = (((data or {}).get("services") or {}).get("products") or {}).get("deploy")
    if not isinstance(deploy, dict):
        return (
            False,
            Hint(
                "your file has no deploy: section for products.",
                "Give it yours: sw.stack_file(shop, deploy={'products': {...}}).",
            ),
            looked,
        )
    verdict = _deploy_section(deploy)
    if not verdict[0]:
        return verdict[0], verdict[1], looked
    if "resources" not in deploy:
        return (
            False,
            Hint(
                "nothing limits what one task of products may use: add resources.",
                "'resources': {'limits': {'cpus': '0.5', 'memory': '128M'}}.",
            ),
            looked,
        )
    spec = Swarm().service_spec("products")
    if spec is not None:
        replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        update = spec.get("UpdateConfig") or {}
        limits = ((spec.get("TaskTemplate") or {}).get("Resources") or {}).get("Limits") or {}
        running = {
            "replicas": replicas,
            "parallelism": update.get("Parallelism"),
            "order": update.get("Order"),
            "failure_action": update.get("FailureAction"),
            "cpus": (limits.get("NanoCPUs") or 0) / 1e9,
            "memory": limits.get("MemoryBytes") or 0,
        }
        wanted = {
            "replicas": 3,
            "parallelism": 1,
            "order": "start-first",
            "failure_action": "rollback",
            "cpus": CPUS,
            "memory": MEMORY,
        }
        different = [k for k in wanted if running[k] != wanted[k]]
        if different:
            none = {"cpus": "no CPU limit", "memory": "no memory limit"}
            said = ", ".join(
                none[k] if k in none and not running[k] else f"{k} {running[k]}" for k in different
            )
            return (
                False,
                Hint(
                    f"your file is right, but the engine still runs products with {said}: "
                    "the stack has not been deployed from your file yet.",
                    "Deploy it: sw.stack_deploy(path) runs docker stack deploy -c PATH "
                    f"{STACK_NAME}.",
                ),
                looked,
            )
    return (
        True,
        "products: 3 replicas, replaced one at a time, each new task running before an old "
        "one stops, rolled back on failure, and each task limited to 0.5 CPU and 128 MiB",
        looked,
    )


_REACH = "kubectl port-forward service/gateway :8000"


def _kube_service_types(answer: Any) -> Verdict:
    example = '{"gateway": "<type>", "orders": "<type>", "reach": "kubectl ..."}'
    if not isinstance(answer, dict):
        return False, f"answer with a dict: {example}."
    given = {str(k): v for k, v in answer.items()}
    if set(given) != {"gateway", "orders", "reach"}:
        return False, (
            f"give exactly three entries, 'gateway', 'orders' and 'reach' (the "
            f"command that reaches the gateway from your machine): {example}."
        )
    kinds = {name: str(given[name]) for name in ("gateway", "orders")}
    known = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    for kind in kinds.values():
        if kind not in known:
            near = [k for k in known if k.lower() == kind.replace(" ", "").lower()]
            if near:
                return False, f"write the type as Kubernetes spells it: {near[0]!r}."
            return False, f"{kind!r} is not a Service type; the types are {', '.join(known)}."
    if kinds["orders"] != "ClusterIP":
        return False, Hint(
            f"orders is only called by other services (the gateway), so it needs no address "
            f"outside the cluster, and {kinds['orders']} would give it one.",
            "Use ClusterIP: a stable name and virtual IP inside the cluster only.",
        )
    if kinds["gateway"] == "LoadBalancer":
        return False, Hint(
            "a LoadBalancer asks the cloud for an address outside the cluster: on a cloud, a "
            "public one. Look at where Compose publishes the gateway: ports: "
            "['127.0.0.1::8000'].",
            "127.0.0.1 is this machine only, so the generator keeps the gateway inside the "
            "cluster: ClusterIP. A LoadBalancer is what it makes for a port published on all "
            "interfaces ('8080:8000'): one you chose to make public.",
        )
    if kinds["gateway"] == "NodePort":
        return False, Hint(
            "NodePort opens the port on every node, for anyone who can reach a node: wider "
            "than Compose's 127.0.0.1.",
            "The generator keeps a loopback-only port inside the cluster: ClusterIP, reached "
            "from your machine with kubectl port-forward.",
        )
    if kinds["gateway"] != "ClusterIP":
        return False, "ExternalName points a name at something outside; the gateway runs inside."
    return _port_forward(given["reach"])


def _port_forward(command: Any) -> Verdict:
    """The learner's command to reach the gateway from their machine."""
    if not isinstance(command, str):
        return False, f"give 'reach' as the command, a string: \"{_REACH[:20]}...\"."
    words = command.strip().removeprefix("$").removeprefix("!").split()
    if words[:2] != ["kubectl", "port-forward"]:
        return False, Hint(
            "a ClusterIP has no address outside the cluster, so you reach it through kubectl, "
            "which tunnels from your machine to a pod.",
            f"The command is kubectl port-forward: {_REACH!r}.",
        )
    args = words[2:]
    address = re.search(r"--address[= ](\S+)", " ".join(args))
    if address and set(address.group(1).split(",")) - {"localhost", "127.0.0.1", "::1"}:
        return False, Hint(
            f"--address {address.group(1)} listens on more than your machine's loopback, the "
            "very thing the Compose file avoided.",
            "Leave --address out: kubectl port-forward listens on localhost by default.",
        )
    targets = [a for a in args if "/" in a]
    if targets not in (["service/gateway"], ["svc/gateway"], ["services/gateway"]):
        return False, Hint(
            f"forward to the gateway's Service; your command names "
            f"{', '.join(targets) or 'no TYPE/NAME'}.",
            f"Name it as TYPE/NAME: service/gateway, as in {_REACH!r}.",
        )
    ports = [a for a in args if re.fullmatch(r"\d*:\d+|\d+", a)]
    remote = [p.rpartition(":")[2] for p in ports]
    if remote != ["8000"]:
        return False, Hint(
            "give one port pair LOCAL:REMOTE, REMOTE being the Service's port (8000).",
            "LOCAL may be any free port on your machine, or nothing (':8000') to let kubectl "
            f"pick one, as Docker did for '127.0.0.1::8000': {_REACH!r}.",
        )
    return True, (
        "the gateway stays inside the cluster (ClusterIP), because Compose publishes it "
        "on 127.0.0.1 only, and kubectl port-forward listens on your machine's "
        "loopback, as Compose did; orders keeps a name inside the cluster (ClusterIP). "
        "A LoadBalancer is for a service you choose to make public."
    )


def _kube_probe(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, "answer with the probe as a dict: {'httpGet': {...}, 'periodSeconds': ...}."
    if "readinessProbe" in answer:
        return False, "give what goes under readinessProbe:, without the key around it."
    http = answer.get("httpGet")
    exec_ = answer.get("exec")
    if isinstance(http, dict):
        if http.get("host") in ("127.0.0.1", "localhost"):
            return False, (
                "leave 'host' out: the kubelet asks the pod's own address, and "
                "127.0.0.1 would be the node's."
            )
        port = http.get("port")
        if isinstance(port, str) and port.isdigit():
            return False, (
                "a port given as a string is a port's *name* in Kubernetes: write the number 8000."
            )
        if port != 8000:
            return False, "the healthcheck asks port 8000: 'port': 8000."
        if http.get("path") != "/healthz":
            return False, "the healthcheck asks the path /healthz: 'path': '/healthz'."
    elif isinstance(exec_, dict):
        if list(exec_.get("command") or []) != ["labkit-probe", "http://127.0.0.1:8000/healthz"]:
            return False, (
                "an exec probe runs the healthcheck's command without 'CMD': "
                "['labkit-probe', 'http://127.0.0.1:8000/healthz']."
            )
    else:
        return False, (
            "say how to probe: 'httpGet': {'path': ..., 'port': ...} (the kubelet "
            "asks over HTTP itself)."
        )
    numbers = {"periodSeconds": 2, "timeoutSeconds": 3, "failureThreshold": 30}
    for key, want in numbers.items():
        got = answer.get(key)
        if isinstance(got, str):
            return False, f"Kubernetes counts {key} as a whole number: {want}, not {got!r}."
        if got is None:
            source = {
                "periodSeconds": "interval",
                "timeoutSeconds": "timeout",
                "failureThreshold": "retries",
            }[key]
            return False, f"add {key!r}: it comes from the healthcheck's {source}."
        if got != want:
            return False, f"{key} should be {want}, from the healthcheck; got {got!r}."
    how = "over HTTP" if isinstance(http, dict) else "with the same command"
    return True, f"the kubelet asks {how}, every 2 s, waits 3 s, and gives up after 30 failures."


# -- your manifests ---------------------------------------------------------------------------------


def _read_models(doc: dict[str, Any], type_name: str) -> str | None:
    """Read ``doc`` into the kubernetes client's model ``type_name`` (strict, no unknown fields):
    None, or where it does not fit, as ``spec.replicas: <why>``."""
    import kubernetes.client.models as models
    from pydantic import ValidationError

    model = getattr(models, type_name)
    try:
        model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
        ).replace(".[", "[")
        why = {
            "extra_forbidden": "no such field here (check its spelling and where it sits)",
            "int_type": "a whole number, without quotes",
            "string_type": "a string",
            "missing": "required",
        }.get(first["type"], first["msg"])
        return f"{doc.get('kind')} {where}: {why}"
    return None


def _kubectl_dry_run(path: Path) -> str | None:
    """``kubectl create --dry-run=client -f PATH`` where kubectl exists: None, or what it said.

    A client-side dry run still asks an API server which kinds exist, so it runs against a tiny
    discovery endpoint of the kit's, on 127.0.0.1, that knows Deployments and Services.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    with _discovery() as kubeconfig, tempfile.TemporaryDirectory() as cache:
        done = subprocess.run(
            [
                kubectl,
                "create",
                "--dry-run=client",
                "--validate=false",
                "-o",
                "name",
                "-f",
                str(path),
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                cache,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"kubectl exited with {done.returncode}"
    return ""


def _resource(name: str, kind: str) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    return {
        "name": name,
        "singularName": kind.lower(),
        "namespaced": True,
        "kind": kind,
        "verbs": verbs,
    }


#: What kubectl asks an API server before a client-side dry run: which groups, versions and
#: kinds exist. Only the kinds this lesson writes.
_DISCOVERY = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0-labkit-discovery"},
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            _resource("services", "Service"),
            _resource("pods", "Pod"),
            _resource("secrets", "Secret"),
            _resource("persistentvolumeclaims", "PersistentVolumeClaim"),
        ],
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [_resource("deployments", "Deployment")],
    },
}


@contextlib.contextmanager
def _discovery() -> Iterator[Path]:
    """A kubeconfig for a discovery-only endpoint on 127.0.0.1 (stopped afterwards): enough
    for kubectl's client-side dry run, with no cluster anywhere."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            doc = _DISCOVERY.get(self.path.split("?")[0])
            body = json.dumps(doc or {"kind": "Status", "status": "Failure", "code": 404}).encode()
            self.send_response(200 if doc else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - its signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    thread = threading.Thread(target=server.serve_forever, name="kube-discovery", daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            kubeconfig = Path(folder) / "kubeconfig"
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "none",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "none", "user": {}}],
                "contexts": [
                    {
                        "name": "none",
                        "context": {"cluster": "none", "user": "none", "namespace": "default"},
                    }
                ],
                "current-context": "none",
            }
            kubeconfig.write_text(json.dumps(config))
            yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _manifests(answer: Any) -> Verdict:
    """Your Deployment and Service for users: read by the kubernetes client, kubectl, and for sense."""
    import yaml

    if not isinstance(answer, (str, Path)) or not str(answer).endswith((".yaml", ".yml")):
        return False, Hint(
            "answer with the path of the file you saved: answer = kube.save('users.yaml', manifest).",
            "kube.save writes your YAML text to $LABKIT_HOME/kube/users.yaml and returns its path.",
        )
    path = Path(answer).expanduser()
    looked = f"your file {path.name}, read by the kubernetes client's models and by kubectl create --dry-run=client"
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        return False, f"cannot read your file as YAML: {exc}", looked
    if not all(isinstance(d, dict) for d in docs):
        return (
            False,
            "each document (between ---) is one object: apiVersion, kind, metadata, spec.",
            looked,
        )
    kinds = sorted(str(d.get("kind")) for d in docs)
    if kinds != ["Deployment", "Service"]:
        return (
            False,
            Hint(
                f"your file holds {', '.join(kinds) or 'nothing'}; the task asks for one Deployment "
                "and one Service.",
                "Two documents, separated by a line '---': kind: Deployment, then kind: Service.",
            ),
            looked,
        )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    service = next(d for d in docs if d["kind"] == "Service")
    for doc, version in ((deployment, "apps/v1"), (service, "v1")):
        if doc.get("apiVersion") != version:
            return (
                False,
                f"a {doc['kind']} is apiVersion: {version}, not {doc.get('apiVersion')!r}.",
                looked,
            )
        if ((doc.get("metadata") or {}).get("name")) != "users":
            return False, f"name the {doc['kind']} users: metadata: {{name: users}}.", looked
        problem = _read_models(doc, f"V1{doc['kind']}")
        if problem:
            return (
                False,
                Hint(f"{problem}.", "Compare with kube.to_yaml(kube.find(manifests, ...)) above."),
                looked,
            )
    said = _kubectl_dry_run(path)
    if said:
        return False, f"kubectl create --dry-run=client refused your file: {said}", looked
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        return (
            False,
            Hint(
                f"the Deployment's selector {selector} does not match its pods' labels {labels}: "
                "the API server refuses such a Deployment.",
                "Give the pods a label (template.metadata.labels) and select it: "
                "selector: {matchLabels: {app.kubernetes.io/name: users}}.",
            ),
            looked,
        )
    if spec.get("replicas") != 2:
        return False, f"run 2 pods: replicas: 2 (yours: {spec.get('replicas')!r}).", looked
    containers = (template.get("spec") or {}).get("containers") or []
    if len(containers) != 1:
        return False, "the pod runs one container, the users app.", looked
    container = containers[0]
    if container.get("image") != "labkit/shop:latest":
        return False, "users runs the shop's image: image: labkit/shop:latest.", looked
    if container.get("command") == ["users:app"]:
        return (
            False,
            "Kubernetes' command replaces the image's entrypoint; Compose's command is args: "
            "args: ['users:app'].",
            looked,
        )
    if container.get("args") != ["users:app"]:
        return False, "start the users app as Compose does: args: ['users:app'].", looked
    ports = {p.get("containerPort"): p.get("name") for p in container.get("ports") or []}
    if 8000 not in ports:
        return False, "the app listens on 8000: ports: [{containerPort: 8000}].", looked
    probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
    if probe.get("path") != "/healthz" or probe.get("port") not in (8000, ports[8000]):
        return (
            False,
            Hint(
                "no traffic should reach a pod before it is ready: add a readinessProbe.",
                "readinessProbe: {httpGet: {path: /healthz, port: 8000}}.",
            ),
            looked,
        )
    sspec = service.get("spec") or {}
    if sspec.get("type", "ClusterIP") != "ClusterIP":
        return (
            False,
            "users is only called inside the cluster: type ClusterIP (the default).",
            looked,
        )
    chosen = sspec.get("selector") or {}
    if not chosen or any(labels.get(k) != v for k, v in chosen.items()):
        return (
            False,
            Hint(
                f"the Service selects pods labelled {chosen}, and the Deployment's pods are "
                f"labelled {labels}: it would have no endpoints, and every call would fail.",
                "Use the same label as the pods: selector: {app.kubernetes.io/name: users}.",
            ),
            looked,
        )
    sports = sspec.get("ports") or []
    target = [p.get("targetPort", p.get("port")) for p in sports if p.get("port") == 8000]
    if not target:
        return (
            False,
            "callers use http://users:8000: ports: [{port: 8000, targetPort: 8000}].",
            looked,
        )
    if target[0] not in (8000, ports[8000]):
        return False, f"targetPort {target[0]!r} is not the container's port: 8000.", looked
    return (
        True,
        "a Deployment of 2 users pods with a readiness probe, and a ClusterIP Service users:8000 "
        "whose selector finds them: the kubernetes client reads both"
        + (
            ""
            if said is None
            else ", and kubectl's client-side dry run says deployment.apps/users and service/users"
        ),
        looked,
    )


# -- your admission webhook -------------------------------------------------------------------------

#: The uids of the two AdmissionReviews the check sends (the API server makes one per request).
ALLOW_UID = "705ab4f5-6393-11e8-b7cc-42010a800002"
DENY_UID = "b4a2c1d8-0e5f-4c3a-9d7e-2f1a6b8c9d01"


def _reviews() -> list[tuple[dict[str, Any], bool]]:
    """Two reviews of the gateway's Deployment: as generated (no API token: allowed), and with
    the pod's token left to the default (refused)."""
    import copy

    deployment = kube.find(kube.manifests(Stack("services")), "Deployment", "gateway")
    token = copy.deepcopy(deployment)
    del token["spec"]["template"]["spec"]["automountServiceAccountToken"]
    return [
        (kube.admission_review(deployment, uid=ALLOW_UID), True),
        (kube.admission_review(token, uid=DENY_UID), False),
    ]


def _admission(answer: Any) -> Verdict:
    """Serve your app, post two AdmissionReviews to POST /validate as the API server would."""
    import httpx

    if not callable(answer) or isinstance(answer, type):
        return False, Hint(
            "answer with your app itself: answer = app.",
            'app = FastAPI(), a route @app.post("/validate"), then answer = app.',
        )
    looked = (
        "your app's answers to two AdmissionReviews (admission.k8s.io/v1) posted to "
        "POST /validate, served on 127.0.0.1 for this check"
    )
    served = Served(answer, name="05-check-your-webhook")
    try:
        served.start()
    except ServeError as exc:
        return False, f"your app could not be served: {exc}", looked
    answers = []
    try:
        with httpx.Client(timeout=10) as client:
            for review, allowed in _reviews():
                answers.append(
                    (review, allowed, client.post(served.url + "/validate", json=review))
                )
    except httpx.HTTPError as exc:
        return False, f"your app did not answer: {type(exc).__name__}: {exc}", looked
    finally:
        served.stop()
    for review, allowed, response in answers:
        what = (
            "a Deployment whose pods get no API token"
            if allowed
            else "a Deployment whose pods would get one"
        )
        if response.status_code == 404:
            return (
                False,
                Hint(
                    "your app has no route for POST /validate.",
                    'Decorate the function with @app.post("/validate").',
                ),
                looked,
            )
        if response.status_code != 200:
            return (
                False,
                Hint(
                    f"your app answered {response.status_code} to {what}. The API server "
                    "counts any status but 200 as the webhook failing, not as a refusal.",
                    "Always answer 200; say no with response.allowed: false.",
                ),
                looked,
            )
        try:
            body = response.json()
        except ValueError:
            return False, "your app's answer is not JSON: return a dict.", looked
        if (
            not isinstance(body, dict)
            or body.get("apiVersion") != "admission.k8s.io/v1"
            or body.get("kind") != "AdmissionReview"
        ):
            return (
                False,
                Hint(
                    "the answer is an AdmissionReview too, of the same apiVersion and kind as "
                    "the request.",
                    'Return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", '
                    '"response": {...}}.',
                ),
                looked,
            )
        result = body.get("response")
        if not isinstance(result, dict):
            return False, "put your verdict under 'response': {'uid': ..., 'allowed': ...}.", looked
        uid = review["request"]["uid"]
        if result.get("uid") != uid:
            return (
                False,
                Hint(
                    f"response.uid is {result.get('uid')!r}; the API server matches an answer "
                    "to its request by uid and rejects any other.",
                    'Copy it from the request: "uid": review["request"]["uid"].',
                ),
                looked,
            )
        if result.get("allowed") is not allowed:
            return (
                False,
                Hint(
                    f"your webhook said allowed: {result.get('allowed')!r} to {what}.",
                    "Allow only when request.object.spec.template.spec."
                    "automountServiceAccountToken is False (missing means a token is mounted).",
                ),
                looked,
            )
        message = (result.get("status") or {}).get("message") if not allowed else "ok"
        if not message:
            return (
                False,
                Hint(
                    "you refused, but said nothing: kubectl would print only that the webhook "
                    "denied the request.",
                    'Add "status": {"code": 403, "message": "..."}: the API server passes the '
                    "message to the user.",
                ),
                looked,
            )
    return (
        True,
        f"your webhook allowed the gateway's Deployment as generated (uid {ALLOW_UID[:8]}...) and "
        f"refused it with a token mounted (uid {DENY_UID[:8]}...), each answer an AdmissionReview "
        "with the request's uid",
        looked,
    )


_MANIFEST_SOLUTION = '''from labkit import kube

manifest = """\\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: users
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: users}
  template:
    metadata:
      labels: {app.kubernetes.io/name: users}
    spec:
      containers:
        - name: users
          image: labkit/shop:latest
          args: ["users:app"]
          ports: [{containerPort: 8000}]
          readinessProbe:
            httpGet: {path: /healthz, port: 8000}
---
apiVersion: v1
kind: Service
metadata:
  name: users
spec:
  selector: {app.kubernetes.io/name: users}
  ports: [{port: 8000, targetPort: 8000}]
"""
answer = kube.save("users.yaml", manifest)'''

_ADMISSION_SOLUTION = """from fastapi import FastAPI

app = FastAPI()


@app.post("/validate")
def validate(review: dict):
    request = review["request"]
    pod = request["object"]["spec"]["template"]["spec"]
    allowed = pod.get("automountServiceAccountToken") is False
    response = {"uid": request["uid"], "allowed": allowed}
    if not allowed:
        response["status"] = {
            "code": 403,
            "message": "set automountServiceAccountToken: false: this pod needs no API token",
        }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


answer = app"""

_DEPLOY_SOLUTION = """from labkit import swarm

sw = swarm.Swarm()
products = {
    "replicas": 3,
    "update_config": {"parallelism": 1, "order": "start-first", "failure_action": "rollback"},
    "resources": {"limits": {"cpus": "0.5", "memory": "128M"}},
}
path = sw.stack_file(labkit.Stack("services"), deploy={"products": products}).write("my-stack.yaml")
deployed = sw.stack_deploy(path)
answer = path"""


EXERCISES = (
    Exercise(
        "05-swarm-deploy",
        "A stack file whose deploy: section runs products as 3 replicas, updated one at a time, "
        "start-first, rolling back, each limited to 0.5 CPU and 128M, deployed with "
        "docker stack deploy.",
        _swarm_deploy,
        _DEPLOY_SOLUTION,
    ),
    Exercise(
        "05-service-types",
        "The Service type kube.manifests gives the gateway (published on 127.0.0.1 only) and "
        "orders, and the command that reaches the gateway from your machine.",
        _kube_service_types,
        "answer = {\n"
        '    "gateway": "ClusterIP",\n'
        '    "orders": "ClusterIP",\n'
        '    "reach": "kubectl port-forward service/gateway :8000",\n'
        "}",
    ),
    Exercise(
        "05-probe",
        "The readinessProbe Kubernetes gets from the gateway's healthcheck.",
        _kube_probe,
        "answer = {\n"
        '    "httpGet": {"path": "/healthz", "port": 8000},\n'
        '    "periodSeconds": 2,\n'
        '    "timeoutSeconds": 3,\n'
        '    "failureThreshold": 30,\n'
        "}",
    ),
    Exercise(
        "05-manifests",
        "A Deployment (2 pods of users, with a readiness probe) and a ClusterIP Service users "
        "on port 8000, saved with kube.save('users.yaml', manifest).",
        _manifests,
        _MANIFEST_SOLUTION,
    ),
    Exercise(
        "05-admission",
        "A FastAPI app whose POST /validate answers AdmissionReviews: allow a Deployment whose "
        "pods set automountServiceAccountToken: false, refuse any other with a message.",
        _admission,
        _ADMISSION_SOLUTION,
    ),
)
