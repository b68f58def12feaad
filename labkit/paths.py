"""Where labkit's files are (the kit's own stacks, image recipes and lessons, and the learner's
home), and every ``LABKIT_*`` setting: :data:`SETTINGS` names them all, and :func:`setting` is the
one place the kit reads one.

The kit's files live in two places, depending on how labkit was installed:

- from a wheel (``pip install labkit``, Binder, a workshop image): inside the package, as
  ``labkit/_kit/compose/`` and ``labkit/_kit/notebooks/``, put there by the build (setup.py)
  and read with :mod:`importlib.resources`;
- from a checkout (``pip install -e .``, ``./dev``): the checkout's own ``compose/`` and
  ``notebooks/``, which are what an instructor edits.

Nothing here imports the rest of labkit: every floor may use it.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

#: The folder inside the package that a wheel's build fills with the kit's files.
PACKAGED = "_kit"

#: Every setting a learner or an instructor may give labkit, and what it does.
SETTINGS = {
    "LABKIT_HOME": "where labkit keeps its own files (default ~/.labkit)",
    "LABKIT_RUNTIME": "docker or local: which runtime runs the lab's services (default: Docker "
    "when an engine answers)",
    "LABKIT_LEARNER": "this learner's name, when several share one Docker engine",
    "LABKIT_WORKSPACE": "where the learner's own copies of the lessons and stacks are",
    "LABKIT_NOTEBOOKS": "where the committed lessons (solution editions) are",
    "LABKIT_CACHE": "downloads kept between image builds (default ~/.cache/labkit)",
    "LABKIT_WEBHOOK_SECRET": "the receiver's and the sender's secret, when not given in the call",
    "LABKIT_ALLOW_PRIVATE": "1: the sender may deliver to private addresses",
    "LABKIT_LAB_TOKEN": "the token `labkit lab` starts JupyterLab with (default: a new one)",
    "LABKIT_CLASSROOM_URL": "the class view's progress endpoint (set by a workshop hub)",
    "LABKIT_CLASSROOM_SECRET": "this learner's progress signing secret (set by a workshop hub)",
    "LABKIT_CLASSROOM_DIR": "the classroom's folder, for the class view (set by the hub)",
    "LABKIT_CLASSROOM_BIND": "the address the class view listens on (Kubernetes: 0.0.0.0)",
}


def setting(name: str) -> str:
    """The value of the ``LABKIT_*`` setting ``name``, stripped; ``""`` when unset."""
    if name not in SETTINGS:
        raise KeyError(f"{name} is not a labkit setting (see labkit.paths.SETTINGS).")
    return os.environ.get(name, "").strip()


def package_parent() -> Path:
    """The folder that holds the ``labkit`` package (what ``PYTHONPATH`` needs to find it)."""
    return Path(__file__).resolve().parent.parent


def checkout() -> Path | None:
    """The source checkout labkit runs from (an editable install), or None."""
    root = package_parent()
    if (root / "pyproject.toml").is_file() and (root / "compose").is_dir():
        return root
    return None


def kit_root() -> Path:
    """The folder holding the kit's ``compose/`` and ``notebooks/`` (see the module's text)."""
    packaged = resources.files("labkit") / PACKAGED
    if packaged.is_dir():
        return Path(str(packaged))
    return checkout() or package_parent()


def stacks_dir() -> Path:
    """The stacks: one folder with a ``compose.yaml`` each."""
    return kit_root() / "compose"


def recipes_dir() -> Path:
    """The offline image recipes."""
    return stacks_dir() / "images"


def app_seed() -> Path:
    """The web app every pipeline lesson starts from."""
    return stacks_dir() / "pipeline" / "app"


def lessons_dir() -> Path:
    """The committed lessons (solution editions): ``$LABKIT_NOTEBOOKS``, else the kit's."""
    env = setting("LABKIT_NOTEBOOKS")
    return Path(env) if env else kit_root() / "notebooks"


def labkit_home() -> Path:
    """Where labkit keeps its own files: ``$LABKIT_HOME`` or ``~/.labkit``."""
    return Path(setting("LABKIT_HOME") or Path.home() / ".labkit")


def learner() -> str:
    """Who runs this kit, when several learners share one Docker engine (a classroom server):
    ``$LABKIT_LEARNER``, reduced to what a Compose project name may hold; ``""`` when unset."""
    return re.sub(r"[^a-z0-9_-]", "", setting("LABKIT_LEARNER").lower())


def project_name(name: str) -> str:
    """The Compose project (and container, network, volume prefix) for a stack ``name``:
    ``labkit-<name>``, or ``labkit-<learner>-<name>`` so that learners on one engine never
    share a name."""
    who = learner()
    return f"labkit-{who}-{name}" if who else f"labkit-{name}"


def secrets_dir(project: str) -> Path:
    """Where a stack's generated secrets live: under the learner's home, never in the kit."""
    return labkit_home() / "secrets" / project
