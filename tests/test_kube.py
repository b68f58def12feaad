"""Kubernetes manifests from the shop's Compose file: valid objects, consistent, deterministic, no secrets.

Each manifest is checked against the models of the official Kubernetes Python client (generated from
the Kubernetes OpenAPI schema): every key must be a field the API knows, and the model must accept
the values (required fields, types).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit import Stack
from labkit.errors import StackError
from labkit.paths import kit_root
from labkit.runtime import composefile, kube
from labkit.teaching import exercises
from labkit.teaching.exercises import check

MODELS = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return composefile.read(Stack("services"))


@pytest.fixture(scope="module")
def manifests(compose: dict[str, Any]) -> list[dict[str, Any]]:
    return kube.manifests(compose)


def _unknown_keys(data: Any, type_name: str, path: str) -> list[str]:
    """Keys of ``data`` that the Kubernetes model ``type_name`` (and those under it) does not have."""
    from kubernetes import client

    inner = re.fullmatch(r"(?:List|list)\[(.+)\]", type_name)
    if inner:
        return [
            k
            for i, item in enumerate(data or [])
            for k in _unknown_keys(item, inner.group(1), f"{path}[{i}]")
        ]
    model = getattr(client, type_name, None)
    if model is None or not isinstance(data, dict):  # str, int, object, Dict[str, str]
        return []
    by_json = {json_key: py for py, json_key in model.attribute_map.items()}
    unknown = []
    for key, value in data.items():
        if key not in by_json:
            unknown.append(f"{path}.{key}")
            continue
        unknown += _unknown_keys(value, model.openapi_types[by_json[key]], f"{path}.{key}")
    return unknown


def _validate(manifest: dict[str, Any]) -> None:
    from kubernetes import client

    model = MODELS[(manifest["apiVersion"], manifest["kind"])]
    assert _unknown_keys(manifest, model, manifest["kind"]) == []
    getattr(client, model).from_dict(manifest)  # raises on a missing required field or a bad type


# -- the shop -------------------------------------------------------------------------------------


def test_every_service_gets_a_deployment_and_the_listening_ones_a_service(
    manifests: list[dict[str, Any]],
) -> None:
    kinds = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert kinds == [
        ("PersistentVolumeClaim", "dbdata"),
        ("Deployment", "db"),
        ("Service", "db"),
        ("Deployment", "users"),
        ("Service", "users"),
        ("Deployment", "products"),
        ("Service", "products"),
        ("Deployment", "orders"),
        ("Service", "orders"),
        ("Deployment", "gateway"),
        ("Service", "gateway"),
    ]
    types = {m["metadata"]["name"]: m["spec"]["type"] for m in manifests if m["kind"] == "Service"}
    # The gateway is published on 127.0.0.1 only: nothing in the cluster may widen that.
    assert types == {
        "db": "ClusterIP",
        "users": "ClusterIP",
        "products": "ClusterIP",
        "orders": "ClusterIP",
        "gateway": "ClusterIP",
    }


@pytest.mark.parametrize("index", range(11))
def test_each_manifest_is_a_valid_kubernetes_object(
    manifests: list[dict[str, Any]], index: int
) -> None:
    _validate(manifests[index])
    assert DNS_1123.match(manifests[index]["metadata"]["name"])


def test_the_validation_catches_a_misspelt_field_and_a_missing_one(
    manifests: list[dict[str, Any]],
) -> None:
    deployment = kube.find(manifests, "Deployment", "users")
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(AssertionError):
        _validate(misspelt)
    without_selector = {
        **deployment,
        "spec": {k: v for k, v in deployment["spec"].items() if k != "selector"},
    }
    with pytest.raises(Exception, match="selector"):
        _validate(without_selector)


def test_selectors_match_the_pods_and_services_reach_a_listening_port(
    manifests: list[dict[str, Any]],
) -> None:
    pods = {}
    for d in (m for m in manifests if m["kind"] == "Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ports = {
            p["containerPort"]
            for p in d["spec"]["template"]["spec"]["containers"][0].get("ports", [])
        }
        pods[d["metadata"]["name"]] = (labels, ports)
    for service in (m for m in manifests if m["kind"] == "Service"):
        matched = [
            name
            for name, (labels, _) in pods.items()
            if service["spec"]["selector"].items() <= labels.items()
        ]
        assert matched == [service["metadata"]["name"]]
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in pods[matched[0]][1]
    assert {name: ports for name, (_, ports) in pods.items()} == {
        "db": {3306},
        "users": {8000},
        "products": {8000},
        "orders": {8000},
        "gateway": {8000},
    }


def test_the_loopback_gateway_stays_in_the_cluster_with_a_way_in(
    manifests: list[dict[str, Any]],
) -> None:
    gateway = kube.find(manifests, "Service", "gateway")
    assert gateway["spec"]["type"] == "ClusterIP"
    assert gateway["metadata"]["annotations"] == {
        "kubernetes.io/description": (
            "Compose published port 8000 on 127.0.0.1 only; to reach it from your machine, run "
            "kubectl port-forward service/gateway :8000"
        )
    }
    assert (
        "gateway   ClusterIP on port 8000, from your machine: kubectl port-forward "
        "service/gateway :8000" in kube.summary(manifests)
    )
    others = [m for m in manifests if m["kind"] == "Service" and m is not gateway]
    assert all("annotations" not in m["metadata"] for m in others)
    # The lesson's exercise expects exactly what the generator makes.
    answer = {
        name: kube.find(manifests, "Service", name)["spec"]["type"]
        for name in ("gateway", "orders")
    }
    note = gateway["metadata"]["annotations"]["kubernetes.io/description"]
    answer["reach"] = note[note.index("kubectl ") :]
    assert check("05-service-types", answer).passed


def test_no_pod_gets_a_kubernetes_api_token(manifests: list[dict[str, Any]]) -> None:
    templates = [m["spec"]["template"]["spec"] for m in manifests if "template" in m["spec"]]
    assert len(templates) == 5
    assert all(pod["automountServiceAccountToken"] is False for pod in templates)


def test_healthchecks_become_probes(manifests: list[dict[str, Any]]) -> None:
    gateway = kube.find(manifests, "Deployment", "gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    want = {
        "httpGet": {"path": "/healthz", "port": 8000},
        "periodSeconds": 2,
        "timeoutSeconds": 3,
        "failureThreshold": 30,
    }
    assert container["readinessProbe"] == want
    assert container["livenessProbe"] == want
    assert container["readinessProbe"] is not container["livenessProbe"]
    db = kube.find(manifests, "Deployment", "db")["spec"]["template"]["spec"]["containers"][0]
    assert db["readinessProbe"]["exec"] == {"command": ["mariadb-admin", "ping", "--silent"]}
    assert check("05-probe", container["readinessProbe"]).passed


def test_security_settings_become_a_security_context(manifests: list[dict[str, Any]]) -> None:
    for name in ("users", "products", "orders", "gateway"):
        pod = kube.find(manifests, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["containers"][0]["securityContext"] == {
            "runAsUser": 10001,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert {"name": "tmp", "emptyDir": {"medium": "Memory"}} in pod["volumes"]
    db = kube.find(manifests, "Deployment", "db")["spec"]["template"]["spec"]["containers"][0]
    assert "securityContext" not in db  # the Compose file sets none for the database


def test_secrets_are_referenced_and_never_written(
    compose: dict[str, Any], manifests: list[dict[str, Any]]
) -> None:
    text = kube.to_yaml(manifests)
    assert "Secret" not in {m["kind"] for m in manifests}
    assert "stringData" not in text and "\ndata:" not in text
    secret_file = Path(compose["secrets"]["db_password"]["file"])
    if secret_file.exists():
        assert secret_file.read_text().strip() not in text
    for name in ("db", "orders"):
        pod = kube.find(manifests, "Deployment", name)["spec"]["template"]["spec"]
        assert {"name": "secrets", "mountPath": "/run/secrets", "readOnly": True} in pod[
            "containers"
        ][0]["volumeMounts"]
        source = next(v for v in pod["volumes"] if v["name"] == "secrets")
        assert source["projected"]["sources"] == [
            {
                "secret": {
                    "name": "db-password",
                    "items": [{"key": "db_password", "path": "db_password"}],
                }
            }
        ]
    # Read again: the module's compose was read before this test's own LABKIT_HOME was set.
    assert kube.secret_commands(Stack("services")) == [
        "kubectl create secret generic db-password "
        "--from-file=db_password=${LABKIT_HOME:-$HOME/.labkit}/secrets/labkit-services/db_password"
    ]
    in_the_kit = {"secrets": {"token": {"file": f"{kit_root()}/compose/x/token"}}}
    assert kube.secret_commands(in_the_kit) == [
        "kubectl create secret generic token --from-file=token=compose/x/token"
    ]


def test_the_database_keeps_its_volume_and_is_replaced_stop_first(
    manifests: list[dict[str, Any]],
) -> None:
    db = kube.find(manifests, "Deployment", "db")
    assert db["spec"]["strategy"] == {"type": "Recreate"}
    assert {"name": "dbdata", "persistentVolumeClaim": {"claimName": "dbdata"}} in db["spec"][
        "template"
    ]["spec"]["volumes"]
    users = kube.find(manifests, "Deployment", "users")
    assert users["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_the_yaml_is_deterministic_and_reads_back(
    compose: dict[str, Any], manifests: list[dict[str, Any]]
) -> None:
    text = kube.to_yaml(manifests)
    assert text == kube.to_yaml(kube.manifests(Stack("services")))
    assert "&id" not in text and "*id" not in text
    assert text.count("\n---\n") == len(manifests) - 1
    assert list(yaml.safe_load_all(text)) == manifests


def test_replicas_and_an_unknown_name(compose: dict[str, Any]) -> None:
    objects = kube.manifests(compose, replicas={"products": 3})
    assert kube.find(objects, "Deployment", "products")["spec"]["replicas"] == 3
    assert kube.find(objects, "Deployment", "users")["spec"]["replicas"] == 1
    with pytest.raises(StackError, match="Deployment/products"):
        kube.find(objects, "Deployment", "nope")


# -- other Compose files ----------------------------------------------------------------------------


def test_other_compose_forms_become_valid_objects() -> None:
    compose = {
        "services": {
            "Web_App": {
                "image": "example/web:1",
                "entrypoint": "/start",
                "command": "serve --fast",
                "user": "0",
                "expose": ["9000"],
                "environment": ["MODE=prod", "EMPTY="],
                "healthcheck": {
                    "test": "curl -f http://localhost:9000/",
                    "interval": "1m30s",
                    "timeout": "500ms",
                    "retries": 2,
                    "start_period": "10s",
                },
                "cap_add": ["NET_BIND_SERVICE"],
                "tmpfs": "/run",
                "ports": ["8080:9000"],
            }
        }
    }
    objects = kube.manifests(compose, app="demo")
    for obj in objects:
        _validate(obj)
    container = objects[0]["spec"]["template"]["spec"]["containers"][0]
    assert objects[0]["metadata"]["name"] == "web-app"
    assert container["command"] == ["/start"] and container["args"] == ["serve --fast"]
    assert container["env"] == [{"name": "MODE", "value": "prod"}, {"name": "EMPTY", "value": ""}]
    assert container["readinessProbe"] == {
        "exec": {"command": ["/bin/sh", "-c", "curl -f http://localhost:9000/"]},
        "periodSeconds": 90,
        "timeoutSeconds": 1,
        "failureThreshold": 2,
        "initialDelaySeconds": 10,
    }
    assert container["securityContext"] == {
        "runAsUser": 0,
        "runAsNonRoot": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"]},
    }
    assert objects[1]["spec"]["type"] == "LoadBalancer"
    assert objects[1]["spec"]["ports"][0]["port"] == 9000
    assert objects[0]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def _published(ports: list[Any]) -> dict[str, Any]:
    """The Service for one service published with ``ports``, validated as a Kubernetes object."""
    objects = kube.manifests({"services": {"web": {"image": "example/web:1", "ports": ports}}})
    for obj in objects:
        _validate(obj)
    return kube.find(objects, "Service", "web")


@pytest.mark.parametrize(
    ("ports", "forward"),
    [
        (["127.0.0.1:8080:8000"], "8080:8000"),
        (["127.0.0.1::8000"], ":8000"),
        ([{"target": 8000, "published": 8080, "host_ip": "::1"}], "8080:8000"),
        (["localhost:8080:8000/tcp"], "8080:8000"),
        # One port kept on loopback keeps the whole Service (one type for all its ports) inside.
        (["9090:9000", "127.0.0.1:8080:8000"], "9090:9000 8080:8000"),
    ],
)
def test_a_port_published_on_one_address_becomes_a_cluster_ip_with_a_port_forward(
    ports: list[Any], forward: str
) -> None:
    service = _published(ports)
    assert service["spec"]["type"] == "ClusterIP"
    note = service["metadata"]["annotations"]["kubernetes.io/description"]
    assert note.endswith(
        f"; to reach it from your machine, run kubectl port-forward service/web {forward}"
    )
    assert f"kubectl port-forward service/web {forward}" in kube.summary([service])


@pytest.mark.parametrize(
    "ports",
    [
        ["8080:8000"],
        ["0.0.0.0:8080:8000"],
        ["[::]:8080:8000"],
        [{"target": 8000, "published": 8080}],
        ["8000"],
    ],
)
def test_a_port_published_on_all_interfaces_stays_a_load_balancer(ports: list[Any]) -> None:
    service = _published(ports)
    assert service["spec"]["type"] == "LoadBalancer"
    assert "annotations" not in service["metadata"]
    assert "port-forward" not in kube.summary([service])


def test_what_kubernetes_cannot_take_says_what_to_do() -> None:
    bind = {"services": {"web": {"image": "x:1", "volumes": ["./data:/data"]}}}
    with pytest.raises(StackError, match="bind mount"):
        kube.manifests(bind)
    named_user = {"services": {"web": {"image": "x:1", "user": "nobody-known"}}}
    with pytest.raises(StackError, match="numeric user id"):
        kube.manifests(named_user)


def test_compose_durations_and_ports_in_every_form() -> None:
    assert [composefile.seconds(v) for v in ("2s", "1m30s", "500ms", 4, "1h")] == [
        2,
        90,
        0,
        4,
        3600,
    ]
    parsed = composefile.ports(
        {
            "ports": [
                "127.0.0.1::8000",
                "8080:80/udp",
                "9000",
                {"target": 7, "published": "70", "host_ip": "::1"},
            ]
        }
    )
    assert parsed == [
        {"target": 8000, "published": None, "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"target": 80, "published": 8080, "host_ip": None, "protocol": "udp"},
        {"target": 9000, "published": None, "host_ip": None, "protocol": "tcp"},
        {"target": 7, "published": 70, "host_ip": "::1", "protocol": "tcp"},
    ]
    assert composefile.depends_on({"depends_on": ["db"]}) == {"db": "service_started"}


# -- the lesson's exercises -------------------------------------------------------------------------

REACH = "kubectl port-forward service/gateway :8000"


@pytest.mark.parametrize(
    ("answer", "nudge", "fix"),
    [
        (
            {"gateway": "LoadBalancer", "orders": "ClusterIP", "reach": REACH},
            "127.0.0.1::8000",
            "this machine only",
        ),
        (
            {"gateway": "NodePort", "orders": "ClusterIP", "reach": REACH},
            "every node",
            "ClusterIP, reached",
        ),
        (
            {"gateway": "ClusterIP", "orders": "LoadBalancer", "reach": REACH},
            "needs no address",
            "Use ClusterIP",
        ),
        (
            {"gateway": "ClusterIP", "orders": "ClusterIP", "reach": "curl http://gateway:8000"},
            "through kubectl",
            "kubectl port-forward",
        ),
        (
            {
                "gateway": "ClusterIP",
                "orders": "ClusterIP",
                "reach": "kubectl port-forward --address 0.0.0.0 service/gateway :8000",
            },
            "--address 0.0.0.0",
            "Leave --address out",
        ),
        (
            {
                "gateway": "ClusterIP",
                "orders": "ClusterIP",
                "reach": "kubectl port-forward pod/gateway :8000",
            },
            "pod/gateway",
            "service/gateway",
        ),
        (
            {
                "gateway": "ClusterIP",
                "orders": "ClusterIP",
                "reach": "kubectl port-forward service/gateway 8000:80",
            },
            "Service's port (8000)",
            "let kubectl pick",
        ),
    ],
)
def test_a_wrong_service_type_gets_a_nudge_then_the_fix(
    answer: dict[str, str], nudge: str, fix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exercises, "_misses", {})  # as in a fresh kernel
    first, second = check("05-service-types", answer), check("05-service-types", answer)
    assert not first.passed and first.tier == 1
    assert nudge in first.message and fix not in first.message, first.message
    assert second.tier == 2 and fix in second.message, second.message


@pytest.mark.parametrize(
    "reach",
    [
        "kubectl port-forward svc/gateway 8080:8000",
        "$ kubectl port-forward service/gateway 8000",
        "kubectl port-forward --address 127.0.0.1 service/gateway :8000",
    ],
)
def test_other_right_ways_to_reach_the_gateway_pass(reach: str) -> None:
    assert check(
        "05-service-types", {"gateway": "ClusterIP", "orders": "ClusterIP", "reach": reach}
    ).passed


@pytest.mark.parametrize(
    ("exercise_id", "answer", "hint"),
    [
        (
            "05-service-types",
            {"gateway": "clusterip", "orders": "ClusterIP", "reach": REACH},
            "'ClusterIP'",
        ),
        ("05-service-types", {"gateway": "ClusterIP", "orders": "ClusterIP"}, "exactly three"),
        (
            "05-probe",
            {
                "httpGet": {"path": "/healthz", "port": "8000"},
                "periodSeconds": 2,
                "timeoutSeconds": 3,
                "failureThreshold": 30,
            },
            "*name*",
        ),
        ("05-probe", {"httpGet": {"host": "127.0.0.1", "path": "/healthz", "port": 8000}}, "host"),
        (
            "05-probe",
            {
                "httpGet": {"path": "/healthz", "port": 8000},
                "periodSeconds": "2s",
                "timeoutSeconds": 3,
                "failureThreshold": 30,
            },
            "whole number",
        ),
        (
            "05-probe",
            {
                "httpGet": {"path": "/healthz", "port": 8000},
                "periodSeconds": 2,
                "timeoutSeconds": 3,
            },
            "retries",
        ),
        (
            "05-probe",
            {
                "exec": {"command": ["CMD", "labkit-probe", "http://127.0.0.1:8000/healthz"]},
                "periodSeconds": 2,
                "timeoutSeconds": 3,
                "failureThreshold": 30,
            },
            "without 'CMD'",
        ),
        ("05-probe", {"readinessProbe": {}}, "without the key"),
    ],
)
def test_a_wrong_kubernetes_answer_gets_a_specific_hint(
    exercise_id: str, answer: Any, hint: str
) -> None:
    result = check(exercise_id, answer)
    assert not result.passed
    assert hint in result.message, result.message


def test_compose_variables_and_relative_binds_are_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        composefile.interpolate("${A:-x} ${B-y} ${C:-z} $$ ${D}", {"B": "", "C": ""}) == "x  z $ "
    )
    monkeypatch.setenv("LABKIT_TEST_IMAGE", "example/app:2")
    stack = Stack("services")
    monkeypatch.setattr(stack, "file", tmp_path / "compose.yaml")
    monkeypatch.setattr(stack, "folder", tmp_path)
    stack.file.write_text(
        "services:\n  app:\n    image: ${LABKIT_TEST_IMAGE}\n"
        "    volumes: ['./conf:/etc/app:ro', {type: bind, source: ./data, "
        "target: /data}]\n"
    )
    app = composefile.read(stack)["services"]["app"]
    assert app["image"] == "example/app:2"
    assert [v["source"] for v in composefile.volumes(app)] == [
        str(tmp_path / "conf"),
        str(tmp_path / "data"),
    ]
