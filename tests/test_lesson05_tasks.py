"""Lesson 05's tasks: the student edition runs to the end on the local runtime with every check
saying NOT YET, and each check reads what the learner made (a stack file, manifests, a webhook)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from fastapi import FastAPI
from nbclient import NotebookClient

from labkit.runtime import kube, swarm
from labkit.teaching.exercises import check, solution
from labkit.teaching.student import student_notebook

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "05-swarm-and-beyond.ipynb"
TASKS = ("05-swarm-deploy", "05-probe", "05-service-types", "05-manifests", "05-admission")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    return tmp_path / "home"


def _text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return str(data.get("text/plain", "")) + str(data.get("text/html", ""))


def test_the_student_edition_runs_on_the_local_runtime_and_every_check_says_not_yet(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb, exercises, _ = student_notebook(nbformat.read(LESSON, as_version=4), LESSON.name)
    assert exercises == TASKS
    # The tasks sit inside the sections: every one comes before the Summary.
    summary = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Summary"))
    checks = [i for i, c in enumerate(nb.cells) if "labkit.exercises.check(" in c.source]
    assert len(checks) == len(TASKS) and max(checks) < summary
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # no allow_errors: a traceback anywhere fails the test
    shown = ["".join(_text(o) for o in nb.cells[i].outputs) for i in checks]
    assert all("NOT YET" in text and "Traceback" not in text for text in shown), shown
    assert sum(text.count("NOT YET") for text in shown) >= 4


def test_the_committed_lesson_ignores_at_most_one_output() -> None:
    cells = [c for c in json.loads(LESSON.read_text())["cells"] if c["cell_type"] == "code"]
    ignored = [c for c in cells if "nbval-ignore-output" in c["metadata"].get("tags", [])]
    others = [c for c in cells if "exercise-answer" not in c["metadata"].get("tags", [])]
    assert len(ignored) <= 1
    assert 1 - len(ignored) / len(others) >= 0.7


def _stack(home: Path, **products: Any) -> Path:
    deploy = {
        "replicas": 3,
        "update_config": {"parallelism": 1, "order": "start-first", "failure_action": "rollback"},
        "resources": {"limits": {"cpus": "0.5", "memory": "128M"}},
        **products,
    }
    from labkit import Stack

    return swarm.stack_file(Stack("services"), deploy={"products": deploy}).write("mine.yaml")


def test_the_deploy_check_reads_your_stack_file(home: Path) -> None:
    assert check("05-swarm-deploy", _stack(home)).passed
    result = check("05-swarm-deploy", _stack(home, resources={"limits": {"cpus": "1"}}))
    assert not result.passed and "memory" in result.message
    no_limits = _stack(home)
    data = yaml.safe_load(no_limits.read_text())
    del data["services"]["products"]["deploy"]["resources"]
    no_limits.write_text(yaml.safe_dump(data))
    result = check("05-swarm-deploy", no_limits)
    assert not result.passed and "resources" in result.message
    assert "my-stack.yaml" not in result.looked_at and "mine.yaml" in result.looked_at


def test_the_stack_file_keeps_your_deploy_section_as_written(home: Path) -> None:
    path = _stack(home)
    deploy = yaml.safe_load(path.read_text())["services"]["products"]["deploy"]
    assert deploy["resources"] == {"limits": {"cpus": "0.5", "memory": "128M"}}
    assert "restart_policy" not in deploy  # yours replaces the kit's, it is not merged


def test_steps_print_the_same_text_where_swarm_is_not_used(home: Path) -> None:
    from labkit import Stack

    sw = swarm.Swarm()
    step = sw.deploy_step(Stack("services"))
    assert not step.ran and isinstance(step.result, swarm.Skipped)
    assert str(step).startswith("$ docker stack deploy --prune --resolve-image never -c ")
    assert "products 1" in str(step) and "skipped" not in str(step)
    sw.stack_deploy(_stack(home))
    update = sw.update_step("products", SHOP_RELEASE="2")
    assert "at least 3 of 3 serving throughout" in str(update)


def _manifest(home: Path, change: tuple[str, str] | None = None) -> Path:
    ns: dict[str, Any] = {}
    exec(solution("05-manifests").code, ns)  # noqa: S102 - our own solution
    text = ns["manifest"]
    if change:
        assert change[0] in text
        text = text.replace(*change, 1)
    return kube.save("users.yaml", text)


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        (None, ""),
        (("replicas: 2", "replicas: '2'"), "spec.replicas: a whole number"),
        (("ports: [{containerPort", "port: [{containerPort"), "containers[0].port: no such field"),
        (("kind: Service", "kind: Servic"), "one Deployment and one Service"),
        (
            (
                "selector: {app.kubernetes.io/name: users}\n  ports",
                "selector: {app: users}\n  ports",
            ),
            "no endpoints",
        ),
        (("args:", "command:"), "args"),
    ],
)
def test_the_manifest_check_reads_your_file(
    home: Path, change: tuple[str, str] | None, hint: str
) -> None:
    result = check("05-manifests", _manifest(home, change))
    assert result.passed is (change is None), result
    assert hint in result.message
    assert "kubernetes client" in result.looked_at


def _webhook(deny_status: int = 200, same_uid: bool = True, message: bool = True) -> FastAPI:
    app = FastAPI()

    @app.post("/validate")
    def validate(review: dict[str, Any]) -> Any:
        from fastapi.responses import JSONResponse

        request = review["request"]
        allowed = (
            request["object"]["spec"]["template"]["spec"].get("automountServiceAccountToken")
            is False
        )
        response: dict[str, Any] = {
            "uid": request["uid"] if same_uid else "0",
            "allowed": allowed,
        }
        if not allowed and message:
            response["status"] = {"code": 403, "message": "no token"}
        body = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }
        return JSONResponse(body, status_code=200 if allowed else deny_status)

    return app


@pytest.mark.parametrize(
    ("app", "hint"),
    [
        (_webhook(), ""),
        (_webhook(deny_status=403), "counts any status but 200"),
        (_webhook(same_uid=False), "matches an answer"),
        (_webhook(message=False), "said nothing"),
    ],
)
def test_the_admission_check_posts_reviews_to_your_app(app: FastAPI, hint: str) -> None:
    result = check("05-admission", app)
    assert result.passed is (hint == ""), result
    assert hint in result.message


def test_an_admission_review_is_shaped_as_the_api_server_sends_it() -> None:
    deployment = kube.find(kube.manifests(copy.deepcopy(_compose())), "Deployment", "users")
    review = kube.admission_review(deployment, uid="u-1")
    request = review["request"]
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert request["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert request["resource"] == {"group": "apps", "version": "v1", "resource": "deployments"}
    assert request["operation"] == "CREATE" and request["oldObject"] is None
    assert request["object"]["metadata"]["namespace"] == "default"


def _compose() -> dict[str, Any]:
    from labkit import Stack
    from labkit.runtime import composefile

    return composefile.read(Stack("services"))
