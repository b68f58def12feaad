"""The classroom's configuration without a running hub: what `labkit classroom up` hands to
JupyterHub, the workshop's sign-in rule, learner names, and the Zero to JupyterHub values file
kept in step with the hub on one server."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from labkit.classroom import hub, hubconfig
from labkit.classroom.view import ADMIN_SERVICE, NAME
from labkit.paths import kit_root
from labkit.teaching.reporting import learner_secret

ROOT = kit_root()


def _settings(tmp_path: Path, **changes: Any) -> Path:
    room = tmp_path / "classroom"
    room.mkdir(parents=True)
    (room / "classroom.key").write_bytes(b"k" * 32)
    (room / "workshop-password").write_text("learners-pw\n")
    (room / "instructor-password").write_text("instructor-pw\n")
    (room / "admin-token").write_text("t" * 64)
    settings = {
        "folder": str(room),
        "learners": ["ada", "bo"],
        "instructor": "instructor",
        "spawner": "docker",
        "ip": "127.0.0.1",
        "port": 8000,
        "hub_ip": "172.30.0.1",
        "hub_port": 8081,
        "view_port": 8082,
        "proxy_api_port": 8001,
        "image": hub.IMAGE,
        "network": hub.NETWORK,
        "mem": "1G",
        "cpus": 1.0,
        "lessons": str(tmp_path / "lessons"),
        **changes,
    }
    path = room / "settings.json"
    path.write_text(json.dumps(settings))
    return path


def _configured(tmp_path: Path, **changes: Any) -> Config:
    c = Config()
    hubconfig.configure(c, _settings(tmp_path, **changes))
    return c


def test_the_hub_listens_on_this_machine_only_and_learners_reach_it_on_the_network(
    tmp_path: Path,
) -> None:
    c = _configured(tmp_path)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.hub_connect_url == "http://172.30.0.1:8081"
    assert c.DockerSpawner.pull_policy == "never"  # the image is built here
    assert c.DockerSpawner.image == "labkit/learner:bookworm"
    assert c.DockerSpawner.volumes == {"labkit-learner-{username}": "/home/learner"}
    assert (c.DockerSpawner.mem_limit, c.DockerSpawner.cpu_limit) == ("1G", 1.0)
    public = _configured(tmp_path / "p", ip="0.0.0.0")
    assert public.JupyterHub.bind_url == "http://0.0.0.0:8000"


def test_no_secret_is_written_into_the_configuration(tmp_path: Path) -> None:
    c = _configured(tmp_path)
    text = repr(dict(c))
    for secret in ("learners-pw", "instructor-pw", "kkkk"):
        assert secret not in text


def test_each_learner_gets_their_own_progress_secret(tmp_path: Path) -> None:
    env = _configured(tmp_path).Spawner.environment
    spawner = types.SimpleNamespace(user=types.SimpleNamespace(name="ada"))
    assert env["LABKIT_LEARNER"](spawner) == "ada"
    assert env["LABKIT_CLASSROOM_SECRET"](spawner) == learner_secret(b"k" * 32, "ada")
    assert env["LABKIT_CLASSROOM_SECRET"](spawner) != learner_secret(b"k" * 32, "bo")
    assert env["LABKIT_CLASSROOM_URL"] == f"http://172.30.0.1:8082/services/{NAME}/progress"
    assert env["LABKIT_RUNTIME"] == "local"


def test_a_learner_cannot_sign_in_as_the_instructor(tmp_path: Path) -> None:
    c = _configured(tmp_path)
    auth = c.JupyterHub.authenticator_class()

    def sign_in(name: str, password: str) -> str | None:
        result: str | None = asyncio.run(
            auth.authenticate(None, {"username": name, "password": password})
        )
        return result

    assert sign_in("ada", "learners-pw") == "ada"
    assert sign_in("instructor", "instructor-pw") == "instructor"
    assert sign_in("instructor", "learners-pw") is None
    assert sign_in("ada", "instructor-pw") is None
    assert sign_in("eve", "learners-pw") is None  # not on the list


def test_the_class_view_and_the_kit_have_only_the_scopes_they_use(tmp_path: Path) -> None:
    c = _configured(tmp_path)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles[NAME]["scopes"] == ["list:users", "read:users", "read:servers"]
    assert roles[ADMIN_SERVICE]["services"] == [ADMIN_SERVICE]
    assert "admin-ui" not in roles[ADMIN_SERVICE]["scopes"]


def test_learner_names() -> None:
    assert hub.learner_names(3) == ["learner01", "learner02", "learner03"]
    assert hub.learner_names(names=["Ada", "", "# a comment", "bo"]) == ["ada", "bo"]
    for bad in (["ada", "ada"], ["instructor"], ["a b"], ["x" * 41]):
        with pytest.raises(hub.ClassroomError):
            hub.learner_names(names=bad)
    with pytest.raises(hub.ClassroomError, match="1 to 200"):
        hub.learner_names(0)


def test_the_kubernetes_values_match_the_hub_on_one_server(tmp_path: Path) -> None:
    values = yaml.safe_load((ROOT / "deploy" / "z2jh-values.yaml").read_text())
    c = _configured(tmp_path)
    single = values["singleuser"]
    assert single["cmd"] == c.DockerSpawner.cmd[0] == "labkit-learner"
    assert single["storage"]["homeMountPath"] == hubconfig.LEARNER_HOME
    assert single["memory"]["limit"] == "1G" and single["cpu"]["limit"] == 1
    view = values["hub"]["services"][NAME]
    assert view["command"][-1] == "labkit.classroom.view"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert values["hub"]["loadRoles"][NAME]["scopes"] == roles[NAME]["scopes"]
    assert values["cull"]["enabled"] is False
    # Never `dummy`: with no password it lets anyone in, as the instructor too.
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "shared-password"
    assert view["environment"]["LABKIT_CLASSROOM_BIND"] == "0.0.0.0"
    dockerfile = (ROOT / "compose" / "images" / "learner" / "Dockerfile").read_text()
    assert 'CMD ["labkit-learner"]' in dockerfile and "USER learner" in dockerfile
    # What the hub's extra configuration imports from labkit exists under that name.
    extra = "\n".join(values["hub"]["extraConfig"].values())
    imported = re.findall(r"(?m)^\s*from (labkit[\w.]*) import ([\w, ]+)$", extra)
    assert imported, "the extra configuration imports labkit's per-learner secrets"
    for module, names in imported:
        loaded = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(loaded, name.strip()), f"{module} has no {name.strip()}"


def test_the_learner_image_carries_labkit_as_a_wheel_would_install_it(tmp_path: Path) -> None:
    from labkit.runtime import images

    images._copy_kit(tmp_path)
    kit = tmp_path / "labkit"
    assert (kit / "classroom" / "view.py").is_file()
    assert (kit / "_kit" / "compose" / "services" / "starter.yaml").is_file()
    lessons = sorted(p.name for p in (kit / "_kit" / "notebooks").glob("*.ipynb"))
    assert lessons[0].startswith("00-") and any(n.startswith("07-") for n in lessons)
    assert not list(tmp_path.rglob("__pycache__"))
    assert not (kit / "_kit" / "notebooks" / "src").exists()  # the sources stay home
    assert images._BY_NAME["learner"].kit and images.recipe_hash(images._BY_NAME["learner"])


def test_the_classroom_command_says_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from labkit.cli import main

    assert main(["classroom", "status"]) == 0
    assert "No classroom is running" in capsys.readouterr().out
    assert main(["classroom", "up", "--learners", "0"]) == 2
    assert "1 to 200 learners" in capsys.readouterr().err
    names = tmp_path / "names.txt"
    names.write_text("ada\nAda\n")
    assert main(["classroom", "up", "--names", str(names)]) == 2
    assert "appears twice" in capsys.readouterr().err
    assert main(["classroom", "down"]) == 0  # nothing running: nothing to stop, no error
