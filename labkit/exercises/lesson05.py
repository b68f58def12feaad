"""Lesson 05 (Swarm and beyond): its exercises' checks and solutions."""

from __future__ import annotations

import re
from typing import Any

from ._core import Exercise, Hint, Verdict


def _swarm_deploy(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, (
            "answer with the deploy: section as a dict, e.g. {'replicas': 3, "
            "'update_config': {...}}."
        )
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
    return True, (
        "3 replicas, replaced one at a time, each new task running before an old one "
        "stops, and a failed update rolls itself back."
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


EXERCISES = (
    Exercise(
        "05-swarm-deploy",
        "The deploy: section for 3 replicas, updated one at a time, start-first, rolling back.",
        _swarm_deploy,
        "answer = {\n"
        '    "replicas": 3,\n'
        '    "update_config": {"parallelism": 1, "order": "start-first",\n'
        '                      "failure_action": "rollback"},\n'
        "}",
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
)
