"""What the workshop hub runs with: the ``jupyterhub_config.py`` that ``labkit classroom up``
writes holds two lines that call :func:`configure` with the classroom's ``settings.json``.

Kept in the package (not written out as text) so that it is type-checked and tested like the
rest of the kit. Secrets are read from their 0600 files at start; none is written into the
configuration.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator

from labkit.teaching.reporting import learner_secret
from labkit.teaching.workspace import sync

LEARNER_HOME = "/home/learner"


class WorkshopAuthenticator(Authenticator):  # type: ignore[misc]
    """Learners sign in with the workshop's shared password, the instructor with their own.

    JupyterHub's ``dummy`` authenticator has one password for every name, so a learner could
    sign in as the instructor; this one cannot be. Fine for a closed workshop; for anything
    longer-lived use the hub's OAuth or LDAP authenticators.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._passwords: dict[str, str] = {}

    def use(self, *, learners: list[str], learner_password: str, instructor: str,
            instructor_password: str) -> None:  # fmt: skip
        self._passwords = dict.fromkeys(learners, learner_password)
        self._passwords[instructor] = instructor_password

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = str(data.get("username", "")).strip().lower()
        want = self._passwords.get(name)
        given = str(data.get("password", ""))
        if want is None or not hmac.compare_digest(want.encode(), given.encode()):
            return None
        return name


def _read(folder: Path, name: str) -> str:
    return (folder / name).read_text().strip()


def configure(c: Any, settings_file: str | Path) -> None:
    """Fill JupyterHub's config object ``c`` from a classroom's ``settings.json``."""
    settings = json.loads(Path(settings_file).read_text())
    folder = Path(settings["folder"])
    key = (folder / "classroom.key").read_bytes()
    learners: list[str] = settings["learners"]
    instructor: str = settings["instructor"]
    inside = settings["hub_ip"]  # where learners' servers reach the hub and the class view

    c.JupyterHub.bind_url = f"http://{settings['ip']}:{settings['port']}"
    c.JupyterHub.hub_bind_url = f"http://{inside}:{settings['hub_port']}"
    c.JupyterHub.hub_connect_url = f"http://{inside}:{settings['hub_port']}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
    c.JupyterHub.db_url = f"sqlite:///{folder / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(folder / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(folder / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    c.JupyterHub.shutdown_on_logout = False

    c.Authenticator.allowed_users = set(learners) | {instructor}
    c.Authenticator.admin_users = {instructor}

    def authenticator_ready(authenticator: Any) -> None:
        authenticator.use(
            learners=learners,
            learner_password=_read(folder, "workshop-password"),
            instructor=instructor,
            instructor_password=_read(folder, "instructor-password"),
        )

    c.JupyterHub.authenticator_class = _bound(WorkshopAuthenticator, authenticator_ready)

    view_url = f"http://{inside}:{settings['view_port']}"
    c.JupyterHub.services = [
        {
            "name": "class-view",
            "url": view_url,
            "command": [sys.executable, "-m", "labkit.classroom.view"],
            "environment": {"LABKIT_CLASSROOM_DIR": str(folder)},
            "oauth_no_confirm": True,
            "display": True,
        },
        {"name": "labkit-admin", "api_token": _read(folder, "admin-token")},
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "class-view",
            "scopes": ["list:users", "read:users", "read:servers"],
            "services": ["class-view"],
        },
        {
            "name": "labkit-admin",
            "description": "`labkit classroom` itself: users, servers, and their Jupyter APIs",
            "scopes": [
                "admin:users",
                "admin:servers",
                "access:servers",
                "list:users",
                "read:users",
            ],
            "services": ["labkit-admin"],
        },
    ]

    environment: dict[str, Any] = {
        "LABKIT_RUNTIME": "local",
        "LABKIT_LEARNER": lambda spawner: spawner.user.name,
        "LABKIT_CLASSROOM_URL": f"{view_url}/services/class-view/progress",
        "LABKIT_CLASSROOM_SECRET": lambda spawner: learner_secret(key, spawner.user.name),
    }
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 300
    c.Spawner.http_timeout = 300
    c.Spawner.mem_limit = settings["mem"]
    c.Spawner.cpu_limit = float(settings["cpus"])

    if settings["spawner"] == "docker":
        c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
        c.DockerSpawner.image = settings["image"]
        c.DockerSpawner.pull_policy = "never"  # the image is built here, offline
        c.DockerSpawner.network_name = settings["network"]
        c.DockerSpawner.use_internal_ip = True
        c.DockerSpawner.remove = True
        c.DockerSpawner.name_template = "labkit-learner-{username}"
        # The learner's work lives in a volume of their own and outlives their server.
        c.DockerSpawner.volumes = {"labkit-learner-{username}": LEARNER_HOME}
        c.DockerSpawner.notebook_dir = f"{LEARNER_HOME}/lessons"
        c.DockerSpawner.cmd = ["labkit-learner"]
        c.DockerSpawner.extra_host_config = {"pids_limit": 1024}
        c.DockerSpawner.mem_limit = settings["mem"]
        c.DockerSpawner.cpu_limit = float(settings["cpus"])
    else:
        # Local processes as the hub's own user, a folder per learner: a trial, or a machine
        # without Docker. No isolation beyond folders; the lessons' local ports are shared.
        homes = folder / "learners"
        c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
        c.SimpleLocalProcessSpawner.home_dir_template = f"{homes}/{{username}}"
        c.Spawner.notebook_dir = f"{homes}/{{username}}/lessons"
        c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
        if os.geteuid() == 0:  # a root hub runs its learners as root: say so to Jupyter
            c.Spawner.args = ["--allow-root"]
        environment["LABKIT_HOME"] = lambda spawner: f"{homes}/{spawner.user.name}/.labkit"
        environment["LABKIT_WORKSPACE"] = lambda spawner: f"{homes}/{spawner.user.name}/lessons"
        lessons = Path(settings["lessons"])

        def workspace(spawner: Any) -> None:
            sync(lessons, homes / spawner.user.name / "lessons")

        c.Spawner.pre_spawn_hook = workspace
    c.Spawner.environment = environment


def _bound(cls: type, ready: Any) -> type:
    """A subclass of ``cls`` that hands itself to ``ready`` once made (passwords from files)."""

    class Ready(cls):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            ready(self)

    Ready.__name__ = cls.__name__
    return Ready
