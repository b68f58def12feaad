"""The lab's images as recipes: names, parents, packages. Data only, read by the image builder
(``labkit.runtime.images``) and by the compose-file reader (what an image EXPOSEs, which users it
makes), so reading a recipe needs no engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.paths import recipes_dir

SUITE = "bookworm"
RECIPES_DIR = recipes_dir()


@dataclass(frozen=True)
class Recipe:
    """How one lab image is made; its files are in ``compose/images/<name>/``."""

    name: str
    summary: str
    parent: str | None = None
    packages: tuple[str, ...] = ()
    wheels: bool = False
    # Files the packages make that the image must not carry (e.g. a data directory made at install).
    purge: tuple[str, ...] = ()
    # The image carries labkit itself, its stacks and its lessons (the classroom's learner image).
    kit: bool = False

    @property
    def tag(self) -> str:
        return f"labkit/{self.name}:{SUITE}"

    @property
    def folder(self) -> Path:
        return RECIPES_DIR / self.name


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "base",
        "Debian bookworm (minbase) with Python 3 and CA certificates",
        packages=("python3", "ca-certificates"),
    ),
    Recipe(
        "python-app",
        "the base plus FastAPI, uvicorn, PyMySQL and prometheus-client wheels",
        parent="base",
        wheels=True,
    ),
    Recipe(
        "mariadb",
        "the base plus Debian's mariadb-server",
        parent="base",
        packages=("mariadb-server",),
        purge=("var/lib/mysql",),
    ),
    Recipe(
        "registry",
        "the base plus Debian's docker-registry (CNCF distribution)",
        parent="base",
        packages=("docker-registry",),
    ),
    Recipe(
        "prometheus",
        "the base plus Debian's prometheus",
        parent="base",
        packages=("prometheus",),
        # 212 MB of per-zone JSON; the web UI loads the bundled moment-timezone-with-data.js.
        purge=("usr/share/javascript/moment-timezone/data",),
    ),
    Recipe(
        "alertmanager",
        "the base plus Debian's prometheus-alertmanager",
        parent="base",
        packages=("prometheus-alertmanager",),
    ),
)
#: Images a classroom needs and a single learner does not: built only when named
#: (``labkit images build learner``, or ``labkit classroom up``).
CLASSROOM_RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "learner",
        "a workshop learner's server: JupyterLab, jupyterhub-singleuser, labkit and its lessons "
        "(the local runtime; no Docker socket)",
        parent="base",
        packages=("curl", "git"),
        wheels=True,
        kit=True,
    ),
)
