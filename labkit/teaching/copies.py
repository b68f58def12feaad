"""The learner's own copy of a kit stack: a folder they edit, never overwritten by the kit.

``copy_stack("services", "my-shop")`` copies ``compose/services/`` into ``my-shop/`` with the
stack's ``starter.yaml`` (a compose file with ``# TASK n:`` lines left to write) as its
``compose.yaml``, and a ``.env`` that gives the copy its own Compose project name and the folder
of its generated secrets, so that ``docker compose -f my-shop/compose.yaml ...`` typed in a
terminal and ``labkit.stack("my-shop/compose.yaml")`` in Python see one and the same stack.
Files the learner already has are kept as they are; only ``.env`` (the kit's) is rewritten.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import LabkitError
from labkit.paths import project_name, secrets_dir
from labkit.runtime.compose import locate

#: The file in a kit stack's folder that the learner's copy starts from, when there is one.
STARTER = "starter.yaml"
_SKIP = {"__pycache__", ".secrets", STARTER, "README.md"}


@dataclass
class StackCopy:
    """What :func:`copy_stack` did: the compose file to work on, and which files it wrote."""

    file: Path
    project: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        # The same text whether the files were copied now or kept from before, so a lesson
        # that runs twice shows the same thing (`written` and `kept` say which it was).
        where = f"{self.file.parent.name}/{self.file.name}"
        return (
            f"your compose file: {where} (Compose project {self.project})\n"
            "  (a file you already have there is kept as it is, never replaced)"
        )

    def __repr__(self) -> str:
        return str(self)

    def __fspath__(self) -> str:
        return str(self.file)


def copy_stack(name: str, to: str | Path, *, project: str | None = None) -> StackCopy:
    """Copy the kit's stack ``name`` into the folder ``to`` (made if missing) for the learner.

    ``compose.yaml`` comes from the stack's ``starter.yaml`` when it has one (else its own
    ``compose.yaml``); the build folders come as they are. A file that already exists in ``to``
    is the learner's and is never replaced. ``project`` names the Compose project (default
    ``labkit-<folder name>``); it goes into ``.env`` with ``LABKIT_SECRETS``.
    """
    source = locate(name).folder
    target = Path(to)
    if target.resolve() == source.resolve():
        raise LabkitError(f"{target} is the kit's own stack folder: copy it somewhere else.")
    target.mkdir(parents=True, exist_ok=True)
    project = project or project_name(target.resolve().name)
    report = StackCopy(file=target / "compose.yaml", project=project)
    starter = source / STARTER
    pairs = [(starter if starter.is_file() else source / "compose.yaml", target / "compose.yaml")]
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and not _SKIP & set(relative.parts) and relative.name != "compose.yaml":
            pairs.append((path, target / relative))
    for origin, copy in pairs:
        shown = str(copy.relative_to(target))
        if copy.exists():
            report.kept.append(shown)
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, copy)
        report.written.append(shown)
    (target / ".env").write_text(
        "# Written by labkit.copy_stack each time it runs: Compose reads it from this folder.\n"
        f"COMPOSE_PROJECT_NAME={project}\n"
        f"LABKIT_SECRETS={secrets_dir(project)}\n"
    )
    return report


def fill_task(path: str | Path, task: int | str, text: str) -> bool:
    """Replace the line of ``path`` marked ``# TASK <task>:`` with ``text``, indented as that
    line was. Returns True when it replaced a line, False when no such line is left (the task
    is done already, so running it again changes nothing)."""
    file = Path(path)
    if not file.is_file():
        raise LabkitError(f"There is no {file}: run the lesson's copy cell first.")
    lines = file.read_text().splitlines(keepends=True)
    marker = re.compile(rf"#\s*TASK {re.escape(str(task))}:")
    for i, line in enumerate(lines):
        if marker.search(line):
            indent = line[: len(line) - len(line.lstrip())]
            block = [indent + row if row.strip() else row for row in text.strip("\n").split("\n")]
            lines[i : i + 1] = [row + "\n" for row in block]
            file.write_text("".join(lines))
            return True
    return False
