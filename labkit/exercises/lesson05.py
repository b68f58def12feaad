"""Lesson 05 (Swarm and beyond): its exercises' checks and solutions."""

from __future__ import annotations

from typing import Any

from ._core import Exercise, Verdict


def _swarm_deploy(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, ("answer with the deploy: section as a dict, e.g. {'replicas': 3, "
                       "'update_config': {...}}.")
    if "deploy" in answer and isinstance(answer["deploy"], dict):
        return False, "give only what goes under deploy:, without the 'deploy' key around it."
    replicas = answer.get("replicas")
    if isinstance(replicas, str) and replicas.strip().isdigit():
        return False, "replicas is a number in a stack file: 3, not '3'."
    if replicas != 3 or isinstance(replicas, bool):
        return False, "run 3 tasks of the service: 'replicas': 3."
    update = answer.get("update_config")
    if not isinstance(update, dict):
        return False, ("how Swarm replaces tasks goes in 'update_config': parallelism, order and "
                       "failure_action.")
    if update.get("parallelism") != 1:
        return False, ("'parallelism' is how many tasks are replaced at once: one at a time is "
                       "'parallelism': 1 (0 would mean all at once).")
    order = str(update.get("order", "stop-first"))
    if order == "stop-first":
        return False, ("stop-first (the default) stops an old task before its replacement runs, "
                       "so only 2 of 3 serve for a while: use 'order': 'start-first'.")
    if order != "start-first":
        return False, "'order' is 'stop-first' or 'start-first'."
    action = str(update.get("failure_action", "pause"))
    if action in ("pause", "continue"):
        return False, (f"failure_action {action!r} leaves the failed tasks in place; to go back "
                       "to the old version on its own, use 'failure_action': 'rollback'.")
    if action != "rollback":
        return False, "'failure_action' is 'pause', 'continue' or 'rollback'."
    return True, ("3 replicas, replaced one at a time, each new task running before an old one "
                  "stops, and a failed update rolls itself back.")


def _kube_service_types(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, "answer with a dict: {'gateway': '<type>', 'orders': '<type>'}."
    kinds = {str(k): str(v) for k, v in answer.items()}
    if set(kinds) != {"gateway", "orders"}:
        return False, "give a type for exactly two services: 'gateway' and 'orders'."
    known = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    for name, kind in kinds.items():
        if kind not in known:
            near = [k for k in known if k.lower() == kind.replace(" ", "").lower()]
            if near:
                return False, f"write the type as Kubernetes spells it: {near[0]!r}."
            return False, f"{kind!r} is not a Service type; the types are {', '.join(known)}."
    if kinds["orders"] != "ClusterIP":
        return False, (f"orders is only called by other services (the gateway), so it needs no "
                       f"address outside the cluster: {kinds['orders']} would give it one. "
                       "Use ClusterIP.")
    if kinds["gateway"] == "ClusterIP":
        return False, ("a ClusterIP is only reachable inside the cluster; the gateway is the "
                       "shop's front door, reached from outside.")
    if kinds["gateway"] == "NodePort":
        return False, ("NodePort opens the same port on every node, which callers must then know "
                       "about; LoadBalancer puts one address in front of them, like Compose's "
                       "one published port.")
    if kinds["gateway"] != "LoadBalancer":
        return False, "ExternalName points a name at something outside; the gateway runs inside."
    return True, ("the gateway gets an address outside the cluster (LoadBalancer); orders keeps "
                  "a stable name and virtual IP inside it (ClusterIP).")


def _kube_probe(answer: Any) -> Verdict:
    if not isinstance(answer, dict):
        return False, "answer with the probe as a dict: {'httpGet': {...}, 'periodSeconds': ...}."
    if "readinessProbe" in answer:
        return False, "give what goes under readinessProbe:, without the key around it."
    http = answer.get("httpGet")
    exec_ = answer.get("exec")
    if isinstance(http, dict):
        if http.get("host") in ("127.0.0.1", "localhost"):
            return False, ("leave 'host' out: the kubelet asks the pod's own address, and "
                           "127.0.0.1 would be the node's.")
        port = http.get("port")
        if isinstance(port, str) and port.isdigit():
            return False, ("a port given as a string is a port's *name* in Kubernetes: write "
                           "the number 8000.")
        if port != 8000:
            return False, "the healthcheck asks port 8000: 'port': 8000."
        if http.get("path") != "/healthz":
            return False, "the healthcheck asks the path /healthz: 'path': '/healthz'."
    elif isinstance(exec_, dict):
        if list(exec_.get("command") or []) != ["labkit-probe", "http://127.0.0.1:8000/healthz"]:
            return False, ("an exec probe runs the healthcheck's command without 'CMD': "
                           "['labkit-probe', 'http://127.0.0.1:8000/healthz'].")
    else:
        return False, ("say how to probe: 'httpGet': {'path': ..., 'port': ...} (the kubelet "
                       "asks over HTTP itself).")
    numbers = {"periodSeconds": 2, "timeoutSeconds": 3, "failureThreshold": 30}
    for key, want in numbers.items():
        got = answer.get(key)
        if isinstance(got, str):
            return False, f"Kubernetes counts {key} as a whole number: {want}, not {got!r}."
        if got is None:
            source = {"periodSeconds": "interval", "timeoutSeconds": "timeout",
                      "failureThreshold": "retries"}[key]
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
        'answer = {\n'
        '    "replicas": 3,\n'
        '    "update_config": {"parallelism": 1, "order": "start-first",\n'
        '                      "failure_action": "rollback"},\n'
        '}',
    ),
    Exercise(
        "05-service-types",
        "The Kubernetes Service type for the gateway and for orders.",
        _kube_service_types,
        'answer = {"gateway": "LoadBalancer", "orders": "ClusterIP"}',
    ),
    Exercise(
        "05-probe",
        "The readinessProbe Kubernetes gets from the gateway's healthcheck.",
        _kube_probe,
        'answer = {\n'
        '    "httpGet": {"path": "/healthz", "port": 8000},\n'
        '    "periodSeconds": 2,\n'
        '    "timeoutSeconds": 3,\n'
        '    "failureThreshold": 30,\n'
        '}',
    ),
)
