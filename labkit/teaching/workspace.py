"""The learner's workspace: student editions of the lessons, created once, never overwriting work.

A manifest (``.labkit-workspace.json``) keeps the sha256 of every notebook the kit wrote. A
notebook whose bytes still have that hash is the kit's own and may be replaced by a newer
edition; any other is the learner's and is left alone. ``reset`` puts one lesson back to its
student edition and keeps the learner's copy in ``.backups/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import LabkitError
from labkit.teaching.student import LESSON_GLOB, student_notebook

MANIFEST = ".labkit-workspace.json"
BACKUPS = ".backups"


@dataclass
class SyncReport:
    """What one :func:`sync` did to each lesson."""

    folder: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"Your workspace: {self.folder}"]
        if self.added:
            lines.append(f"  new lessons: {', '.join(self.added)}")
        if self.updated:
            lines.append(f"  updated (you had not changed them): {', '.join(self.updated)}")
        if self.kept:
            lines.append(
                f"  left as you edited them (a newer edition exists; `labkit lab --reset NN` "
                f"takes it, keeping yours in {BACKUPS}/): {', '.join(self.kept)}"
            )
        if not (self.added or self.updated or self.kept):
            lines.append(f"  {len(self.unchanged)} lessons, all up to date")
        return "\n".join(lines)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _edition(path: Path) -> bytes:
    """The student edition of the committed lesson at ``path``, as the bytes written to disk."""
    import nbformat

    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    nb, _, _ = student_notebook(nb, path.name)
    text: str = nbformat.writes(nb)  # type: ignore[no-untyped-call,unused-ignore]
    return (text + "\n").encode()


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    written = data.get("written", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in written.items()} if isinstance(written, dict) else {}


def _write_manifest(folder: Path, written: dict[str, str]) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"written": dict(sorted(written.items()))}, indent=1) + "\n")
    os.replace(tmp, folder / MANIFEST)


def _write(target: Path, data: bytes) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _lessons(source: Path) -> list[Path]:
    lessons = sorted(source.glob(LESSON_GLOB))
    if not lessons:
        raise LabkitError(
            f"No lessons ({LESSON_GLOB}) in {source}: point LABKIT_NOTEBOOKS at the lessons folder."
        )
    return lessons


def sync(source: Path, folder: Path) -> SyncReport:
    """Create or bring up to date the workspace ``folder`` from the lessons in ``source``.

    A lesson missing from the workspace is added; one the kit wrote and the learner never
    changed is replaced by its newer edition; one the learner changed is never touched.
    """
    source, folder = Path(source), Path(folder)
    if folder.resolve() == source.resolve():
        raise LabkitError(
            f"The workspace would be the lessons folder itself ({source}): choose "
            "another folder (LABKIT_WORKSPACE)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    written = _read_manifest(folder)
    report = SyncReport(folder)
    for path in _lessons(source):
        name, target = path.name, folder / path.name
        fresh = _edition(path)
        if not target.exists():
            _write(target, fresh)
            written[name] = _digest(fresh)
            report.added.append(name)
            continue
        current = _digest(target.read_bytes())
        if current == _digest(fresh):
            written[name] = current
            report.unchanged.append(name)
        elif written.get(name) == current:
            _write(target, fresh)
            written[name] = _digest(fresh)
            report.updated.append(name)
        else:
            report.kept.append(name)
    _write_manifest(folder, written)
    return report


def find_lesson(source: Path, lesson: str) -> Path:
    """The committed lesson whose number (or name) starts with ``lesson``: ``"04"`` or ``"4"``."""
    key = lesson.zfill(2) if lesson.isdigit() else lesson
    found = [p for p in _lessons(Path(source)) if p.name.startswith(key)]
    if len(found) != 1:
        names = ", ".join(p.name[:2] for p in _lessons(Path(source)))
        raise LabkitError(f"No single lesson {lesson!r}; the lessons are {names}.")
    return found[0]


def reset(source: Path, folder: Path, lesson: str) -> tuple[Path, Path | None]:
    """Put ``lesson`` back to its student edition; the learner's copy moves to ``.backups/``.

    Returns the restored notebook and the backup (``None`` when there was nothing to keep).
    """
    path = find_lesson(source, lesson)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    backup = None
    if target.exists():
        backups = folder / BACKUPS
        backups.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = backups / f"{target.stem}.{stamp}.ipynb"
        n = 1
        while backup.exists():
            n += 1
            backup = backups / f"{target.stem}.{stamp}-{n}.ipynb"
        os.replace(target, backup)
    fresh = _edition(path)
    _write(target, fresh)
    written = _read_manifest(folder)
    written[path.name] = _digest(fresh)
    _write_manifest(folder, written)
    return target, backup
