"""Lesson sources (``notebooks/src/NN-name.py``, jupytext percent format) built into the notebooks.

    python -m labkit.teaching.lessons                    # build every lesson: execute, write with outputs
    python -m labkit.teaching.lessons 02 04              # only lessons whose file starts with 02 or 04
    python -m labkit.teaching.lessons --runtime local    # the runtime the outputs are made on (default docker)
    python -m labkit.teaching.lessons --check            # sources vs committed cells; no kernel, seconds
    python -m labkit.teaching.lessons 06 --prose         # only Markdown changed: keep the code cells' outputs

A source is plain percent format: ``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown
cell (its lines written as ``# text``), ``tags=[...]`` after the marker sets the cell's tags.
Short markers stand for the blocks every lesson shares:

- a Markdown cell holding only ``<!-- labkit: nav -->``: the navigation line;
- ``<!-- labkit: tasks-intro -->`` (or ``exercises-intro``): how the tasks work;
- an answer cell (tagged ``exercise-answer``) whose only line is ``# labkit: answer ID``: the
  exercise's solution from :mod:`labkit.teaching.exercises` (the student edition blanks it);
- a Markdown cell that starts ``<!-- labkit: solution ID -->``: "Show a solution", with the
  solution's code and then the rest of the cell as the explanation.

Cell ids are a hash of the cell as written in the source, so inserting or editing one cell
changes only that cell's id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import LabkitError
from labkit.paths import package_parent, project_name
from labkit.runtime import choose
from labkit.runtime.compose import remove_project
from labkit.teaching.exercises import solution

NOTEBOOKS = package_parent() / "notebooks"
ANSWER_TAG = "exercise-answer"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}

_CELL = re.compile(r"^# %%(?:[ \t]+\[(markdown|md)\])?(.*)$")
_NAV = "<!-- labkit: nav -->"
_ANSWER = re.compile(r"^# labkit: answer ([\w.-]+)$")
_SOLUTION = re.compile(r"^<!-- labkit: solution ([\w.-]+) -->\n?")
_INTRO = "<!-- labkit: exercises-intro -->"
_TASKS = "<!-- labkit: tasks-intro -->"

TASKS_INTRO = """\
### How the tasks work

The tasks sit inside the sections: a **Task** heading, an answer cell and a check cell. Write your
code in the answer cell, ending with `answer = ...` set to what the task asks for, run it, then run
the check. The check looks at what really happened where it can (the requests your server
received, the receiver's log) and says **PASS**, or **NOT YET** with a nudge; the same mistake
checked again gets the specific fix. Stuck? Open *Show a solution* under the check. Your work is
your own copy: a newer kit never overwrites it."""

EXERCISES_INTRO = """\
## Exercises

Each exercise has a task, an answer cell and a check cell. The answer cells already hold one
working answer, so the whole lesson runs from top to bottom. To practise, replace the answer
cell with `answer = ...`, write your own, and run the check: it says **PASS**, or **NOT YET**
with a hint about what is missing. Each solution can be revealed under the check, or with
`labkit.exercises.solution("<exercise id>")`."""


@dataclass
class Cell:
    """One cell as the source writes it."""

    kind: str
    source: str
    tags: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class Source:
    """One lesson source: its file, its title for the navigation line, and its cells."""

    path: Path
    title: str
    cells: list[Cell]

    @property
    def notebook(self) -> str:
        return self.path.stem + ".ipynb"


def _metadata(text: str, where: str) -> list[str]:
    """The tags of a ``# %% tags=[...]`` line (other keys are refused: one place for metadata)."""
    text = text.strip()
    if not text:
        return []
    match = re.fullmatch(r"tags=(\[.*\])", text)
    if match is None:
        raise LabkitError(
            f"{where}: after '# %%' only [markdown] and tags=[...] are understood, got {text!r}."
        )
    try:
        tags = json.loads(match.group(1))
    except json.JSONDecodeError as exc:
        raise LabkitError(f"{where}: tags must be a JSON list of strings ({exc}).") from None
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise LabkitError(f"{where}: tags must be a JSON list of strings.")
    return tags


def _markdown(lines: list[str], where: str) -> str:
    out = []
    for n, line in enumerate(lines):
        if line == "#":
            out.append("")
        elif line.startswith("# "):
            out.append(line[2:])
        elif not line.strip():
            out.append("")
        else:
            raise LabkitError(
                f"{where}, line {n + 1} of the cell: a Markdown line starts with "
                f"'# ' (got {line[:40]!r})."
            )
    return "\n".join(out).strip("\n")


def read_source(path: Path) -> Source:
    """Parse one lesson source; errors name the file and line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    title = path.stem
    start = 0
    if lines and lines[0] == "# ---":
        end = lines.index("# ---", 1)
        header = yaml.safe_load("\n".join(line[2:] for line in lines[1:end])) or {}
        title = str(((header.get("jupyter") or {}).get("labkit") or {}).get("title", title))
        start = end + 1
    cells: list[Cell] = []
    body: list[str] = []
    current: tuple[str, list[str], int] | None = None

    def close() -> None:
        if current is None:
            return
        kind, tags, line = current
        where = f"{path.name}:{line}"
        text = _markdown(body, where) if kind == "markdown" else "\n".join(body).strip("\n")
        cells.append(Cell(kind, text, tags, line))

    for number, line in enumerate(lines[start:], start + 1):
        match = _CELL.match(line)
        if match:
            close()
            kind = "markdown" if match.group(1) else "code"
            current = (kind, _metadata(match.group(2), f"{path.name}:{number}"), number)
            body = []
        elif current is not None:
            body.append(line)
        elif line.strip():
            raise LabkitError(f"{path.name}:{number}: text before the first '# %%' cell.")
    close()
    return Source(path, title, cells)


def sources(folder: Path = NOTEBOOKS) -> list[Source]:
    paths = sorted((folder / "src").glob("[0-9][0-9]-*.py"))
    if not paths:
        raise LabkitError(f"No lesson sources (src/NN-name.py) in {folder}.")
    return [read_source(p) for p in paths]


def _nav(lessons: list[Source], i: int) -> str:
    parts = []
    if i > 0:
        parts.append(f"[← {lessons[i - 1].title}]({lessons[i - 1].notebook})")
    parts.append(f"[Contents]({lessons[0].notebook})")
    if i + 1 < len(lessons):
        parts.append(f"[{lessons[i + 1].title} →]({lessons[i + 1].notebook})")
    return " | ".join(parts)


def _expand(cell: Cell, lessons: list[Source], i: int) -> str:

    where = f"{lessons[i].path.name}:{cell.line}"
    if cell.kind == "markdown":
        if cell.source == _NAV:
            return _nav(lessons, i)
        if cell.source == _INTRO:
            return EXERCISES_INTRO
        if cell.source == _TASKS:
            return TASKS_INTRO
        match = _SOLUTION.match(cell.source)
        if match:
            code = _solution_code(match.group(1), where, solution)
            why = cell.source[match.end() :].strip("\n")
            return (
                f"<details><summary>Show a solution</summary>\n\n```python\n{code}\n```\n\n"
                f"{why}\n\n</details>"
            )
        return cell.source
    match = _ANSWER.match(cell.source)
    if match:
        if ANSWER_TAG not in cell.tags:
            raise LabkitError(f"{where}: an answer marker belongs in a cell tagged {ANSWER_TAG!r}.")
        return _solution_code(match.group(1), where, solution)
    return cell.source


def _solution_code(exercise_id: str, where: str, solution: Any) -> str:
    try:
        return str(solution(exercise_id).code)
    except LabkitError:
        raise LabkitError(f"{where}: no exercise {exercise_id!r} in labkit.exercises.") from None


def _cell_id(lesson: Source, cell: Cell, seen: set[str]) -> str:
    digest = hashlib.sha256(f"{cell.kind}\n{cell.tags}\n{cell.source}".encode()).hexdigest()
    stem = lesson.path.stem.split("-")[0]
    base = f"lesson{stem}-{digest[:10]}"
    cell_id, n = base, 2
    while cell_id in seen:
        cell_id, n = f"{base}-{n}", n + 1
    seen.add(cell_id)
    return cell_id


def notebook(lessons: list[Source], i: int) -> Any:
    """The solution edition of lesson ``i``, without outputs."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()  # type: ignore[no-untyped-call]
    seen: set[str] = set()
    for cell in lessons[i].cells:
        text = _expand(cell, lessons, i)
        new = new_code_cell(text) if cell.kind == "code" else new_markdown_cell(text)  # type: ignore[no-untyped-call]
        new["id"] = _cell_id(lessons[i], cell, seen)
        if cell.tags:
            new["metadata"]["tags"] = list(cell.tags)
        nb.cells.append(new)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    nbformat.validate(nb)  # type: ignore[no-untyped-call,unused-ignore]
    return nb


def _shape(cell: Any) -> tuple[str, str, str, list[str]]:
    return (
        cell.get("id", ""),
        cell["cell_type"],
        cell["source"],
        list(cell.get("metadata", {}).get("tags", [])),
    )


def drift(folder: Path = NOTEBOOKS) -> list[str]:
    """One line per lesson whose committed notebook and source disagree (empty: all agree)."""
    import nbformat

    lessons = sources(folder)
    problems = []
    names = {lesson.notebook for lesson in lessons}
    for path in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
        if path.name not in names:
            problems.append(f"{path.name}: no source src/{path.stem}.py")
    for i, lesson in enumerate(lessons):
        path = folder / lesson.notebook
        if not path.is_file():
            problems.append(
                f"{lesson.notebook}: not built (run ./dev lessons {lesson.path.stem[:2]})"
            )
            continue
        built = [_shape(c) for c in notebook(lessons, i).cells]
        committed = [_shape(c) for c in nbformat.read(path, as_version=4).cells]  # type: ignore[no-untyped-call]
        for n, (want, got) in enumerate(zip(built, committed, strict=False)):
            if want != got:
                what = next(
                    name
                    for name, a, b in zip(("id", "type", "text", "tags"), want, got, strict=True)
                    if a != b
                )
                problems.append(
                    f"{lesson.notebook}: cell {n + 1} differs from the source "
                    f"({what}; source line {lesson.cells[n].line})"
                )
                break
        else:
            if len(built) != len(committed):
                problems.append(
                    f"{lesson.notebook}: {len(committed)} cells committed, the source "
                    f"has {len(built)}"
                )
    return problems


#: Folders lessons make next to themselves for the learner's own files (lesson 04's copy of
#: the shop). In the kit's own notebooks folder they are only what an earlier run left behind.
SCRATCH = {"04": ("my-shop",)}


def clear_scratch(
    folder: Path = NOTEBOOKS, lessons: tuple[str, ...] = tuple(SCRATCH)
) -> list[Path]:
    """Take down and delete what earlier runs of the lessons left in ``folder`` (never a
    learner's workspace: only the kit's own notebooks folder is cleared, before a build or a
    test run, so that every run starts from the files the kit gives a learner)."""
    import shutil

    cleared = []
    for name in (n for lesson in lessons for n in SCRATCH.get(lesson[:2], ())):
        path = folder / name
        try:  # by its label: the containers and the volume may outlive the folder
            remove_project(project_name(name))
        except Exception:  # noqa: BLE001 - no engine answers: there is nothing of it to remove
            pass
        if not path.is_dir():
            continue
        shutil.rmtree(path, ignore_errors=True)
        cleared.append(path)
    return cleared


def build(prefixes: list[str], runtime: str, folder: Path = NOTEBOOKS) -> None:
    """Execute each chosen lesson on ``runtime`` and write it with its outputs."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["LABKIT_RUNTIME"] = runtime
    if runtime == "docker" and choose().name != "docker":
        raise LabkitError(
            "--runtime docker, but no Docker engine answers: start Docker, or build "
            "with --runtime local (outputs that differ by runtime then change)."
        )
    # Keep this build's delivery logs out of the author's ~/.labkit, and let the kernel import
    # this checkout's labkit whatever its working directory.
    os.environ.setdefault("LABKIT_HOME", tempfile.mkdtemp(prefix="labkit-build-"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(folder.parent), os.environ.get("PYTHONPATH", "")) if p
    )
    lessons = sources(folder)
    for i, lesson in enumerate(lessons):
        if prefixes and not any(lesson.path.stem.startswith(p) for p in prefixes):
            continue
        nb = notebook(lessons, i)
        clear_scratch(folder, (lesson.path.stem[:2],))
        print(f"running {lesson.notebook} on the {runtime} runtime ...", flush=True)
        NotebookClient(
            nb,
            timeout=180,
            kernel_name="python3",
            record_timing=False,
            store_widget_state=False,
            resources={"metadata": {"path": str(folder)}},
        ).execute()
        nb.metadata["language_info"] = dict(LANGUAGE_INFO)
        for cell in nb.cells:
            cell["metadata"].pop("execution", None)
        nbformat.validate(nb)  # type: ignore[no-untyped-call,unused-ignore]
        nbformat.write(nb, folder / lesson.notebook)  # type: ignore[no-untyped-call]


def rebuild_prose(prefixes: list[str], folder: Path = NOTEBOOKS) -> list[str]:
    """Rewrite the chosen lessons from their sources without a kernel, when only Markdown changed.

    Every code cell must be the committed one (same text and tags, in the same order); its
    outputs are kept. nbval still runs every code cell in CI, so no output goes unchecked.
    Returns the notebooks written; raises naming the first code cell that changed.
    """
    import nbformat

    lessons = sources(folder)
    written = []
    for i, lesson in enumerate(lessons):
        if prefixes and not any(lesson.path.stem.startswith(p) for p in prefixes):
            continue
        path = folder / lesson.notebook
        nb = notebook(lessons, i)
        committed = [
            c
            for c in nbformat.read(path, as_version=4).cells  # type: ignore[no-untyped-call]
            if c["cell_type"] == "code"
        ]
        fresh = [(n, c) for n, c in enumerate(nb.cells) if c["cell_type"] == "code"]
        for k, (n, cell) in enumerate(fresh):
            old = committed[k] if k < len(committed) else None
            if old is None or _shape(old)[1:] != _shape(cell)[1:]:
                raise LabkitError(
                    f"{lesson.notebook}: code cell {n + 1} (source line "
                    f"{lesson.cells[n].line}) changed, so its output must be made "
                    f"again: run ./dev lessons {lesson.path.stem[:2]} --runtime ..."
                )
            cell["outputs"], cell["execution_count"] = old["outputs"], old["execution_count"]
        if len(committed) != len(fresh):
            raise LabkitError(
                f"{lesson.notebook}: a code cell was removed; run ./dev lessons "
                f"{lesson.path.stem[:2]} --runtime ..."
            )
        old_meta = nbformat.read(path, as_version=4).metadata  # type: ignore[no-untyped-call]
        nb.metadata.update({k: v for k, v in old_meta.items() if k not in nb.metadata})
        nbformat.validate(nb)  # type: ignore[no-untyped-call,unused-ignore]
        nbformat.write(nb, path)  # type: ignore[no-untyped-call]
        written.append(lesson.notebook)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev lessons", description=__doc__.split("\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers (prefixes), default all")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the sources with the committed notebooks; no kernel",
    )
    parser.add_argument(
        "--runtime",
        choices=("docker", "local"),
        default="docker",
        help="the runtime the committed outputs are made on (default docker)",
    )
    parser.add_argument(
        "--prose",
        action="store_true",
        help="only Markdown changed: rewrite without a kernel, keeping outputs",
    )
    parser.add_argument("--dir", type=Path, default=NOTEBOOKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.prose:
            for name in rebuild_prose(args.lessons, args.dir):
                print(f"{name}: Markdown rewritten, code cells and their outputs kept")
            return 0
        if args.check:
            problems = drift(args.dir)
            for line in problems:
                print(f"DRIFT {line}", file=sys.stderr)
            if problems:
                print(
                    "Edit the source in notebooks/src/, then run ./dev lessons NN and commit both.",
                    file=sys.stderr,
                )
                return 1
            print(f"lessons: {len(sources(args.dir))} sources agree with their notebooks")
            return 0
        build(args.lessons, args.runtime, args.dir)
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
