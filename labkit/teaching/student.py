"""Student editions of the lessons: answers blanked, checks and solutions kept, outputs cleared."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError
from labkit.teaching.exercises import EXERCISES

__all__ = [
    "ANSWER_TAG",
    "PLACEHOLDER",
    "StudentEdition",
    "make_student_editions",
    "student_notebook",
]

#: Tag of an exercise's answer cell. Tagged cells are blanked whatever they hold; untagged
#: ones are recognised by position and content (see :func:`student_notebook`).
ANSWER_TAG = "exercise-answer"
#: What an answer cell holds in a student edition; ``check`` reads ``...`` as "no answer yet".
PLACEHOLDER = "answer = ...  # your code here"
#: The lesson notebooks of a folder (sources, checkpoints and other files are not lessons).
LESSON_GLOB = "[0-9][0-9]-*.ipynb"

# `labkit.exercises.check("01-handler", answer)`, also written `check("01-handler", answer)`.
_CHECK = re.compile(r"""\bcheck\(\s*["']([\w.-]+)["']\s*,\s*answer\b""")
# A top-level `answer = ...` followed by a hand-made check (`print("PASS" if answer ...)`): an
# exercise that labkit.exercises does not know, so its answer cannot be told apart from lesson code.
_ASSIGNS_ANSWER = re.compile(r"^answer\s*=", re.MULTILINE)
_HOMEMADE_CHECK = re.compile(r"\bPASS\b")

STUDENT_INTRO = """\
## Exercises

Each exercise has a task, an answer cell and a check cell. Write your code in the answer cell,
ending with `answer = ...` set to your result, then run the answer cell and the check under it.
The check says **PASS**, or **NOT YET** with a hint about what is missing. Stuck? Reveal the
solution under the check, or run `labkit.exercises.solution("<exercise id>")`."""


@dataclass(frozen=True)
class StudentEdition:
    """One student copy: where it was written, the exercises it leaves to the learner, and
    the ids of cells that look like answers to hand-made checks (left as they are)."""

    lesson: str
    path: Path
    exercises: tuple[str, ...]
    unmarked: tuple[str, ...] = ()

    def __str__(self) -> str:
        count = len(self.exercises)
        line = f"{self.path}  ({count} exercise{'s' if count != 1 else ''} to solve)"
        if self.unmarked:
            line += (
                f"\n  warning: cells {', '.join(self.unmarked)} set `answer` before a "
                f"hand-made check and still hold it; tag them {ANSWER_TAG!r} or use "
                "labkit.exercises.check"
            )
        return line


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _same_code(a: str, b: str) -> bool:
    def lines(text: str) -> list[str]:
        return [line.rstrip() for line in text.strip().splitlines()]

    return lines(a) == lines(b)


def _answer_cells(nb: Any, lesson: str) -> dict[int, str]:
    """Index of every answer cell -> its exercise id ("" when only a tag marks it)."""
    cells = nb.cells
    found: dict[int, str] = {}
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        match = _CHECK.search(cell.source)
        if match is None:
            continue
        exercise_id = match.group(1)
        j = next((k for k in range(i - 1, -1, -1) if cells[k].cell_type == "code"), -1)
        known = EXERCISES.get(exercise_id)
        if j < 0 or not (
            ANSWER_TAG in _tags(cells[j])
            or (known is not None and _same_code(cells[j].source, known.solution))
        ):
            where = f"cell {cells[j].get('id', j)}" if j >= 0 else "no code cell"
            raise LabkitError(
                f"{lesson}: cannot tell which cell holds the answer to {exercise_id!r} "
                f"({where} before its check is neither tagged {ANSWER_TAG!r} nor the solution "
                f"in labkit.exercises). Tag the answer cell {ANSWER_TAG!r} in its source, notebooks/src/."
            )
        found[j] = exercise_id
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and ANSWER_TAG in _tags(cell):
            found.setdefault(i, "")
    return found


def student_notebook(
    nb: Any, lesson: str = "notebook"
) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    """Turn ``nb`` (an nbformat notebook, changed in place) into its student edition.

    An answer cell is a code cell tagged ``exercise-answer``, or the code cell just before a
    ``check("<id>", answer)`` cell when it holds exactly that exercise's solution. Anything
    else before a check is an error, so an unrecognised answer is never shipped to learners.
    Returns the notebook, the ids of the exercises left to solve (in order), and the ids of
    cells that set ``answer`` just before a hand-made ``PASS`` check: those look like answers
    but nothing marks them, so they are left as they are and reported.
    """
    answers = _answer_cells(nb, lesson)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    unmarked = []
    for i, after in zip(code, [*code[1:], None], strict=True):
        cell = nb.cells[i]
        if i not in answers and after is not None and _ASSIGNS_ANSWER.search(cell.source):
            check = nb.cells[after].source
            if "answer" in check and _HOMEMADE_CHECK.search(check):
                unmarked.append(str(cell.get("id", i)))
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if i in answers:
                known = EXERCISES.get(answers[i])
                cell.source = (known.starter if known is not None else "") or PLACEHOLDER
                cell.metadata["tags"] = [*(t for t in _tags(cell) if t != ANSWER_TAG), ANSWER_TAG]
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown" and cell.source.lstrip().startswith("## Exercises"):
            cell.source = STUDENT_INTRO
    nb.metadata.pop("widgets", None)
    nb.metadata["labkit"] = {"edition": "student"}
    exercises = tuple(answers[i] for i in sorted(answers) if answers[i])
    return nb, exercises, tuple(unmarked)


def make_student_editions(src_dir: str | Path, out_dir: str | Path) -> list[StudentEdition]:
    """Write a student edition of every lesson in ``src_dir`` to ``out_dir`` (same file names).

    Answer cells get :data:`PLACEHOLDER`, checks and revealable solutions stay, every output is
    cleared. Nothing is written unless every lesson converts, and ``src_dir`` is never touched.
    """
    import nbformat

    src, out = Path(src_dir), Path(out_dir)
    lessons = sorted(src.glob(LESSON_GLOB))
    if not lessons:
        raise LabkitError(f"No lessons ({LESSON_GLOB}) in {src}: point at the notebooks folder.")
    if out.resolve() == src.resolve():
        raise LabkitError(
            f"The student editions would overwrite the lessons in {src}: choose "
            "another folder, e.g. `labkit student student-notebooks`."
        )
    converted = []
    for path in lessons:
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        nb, exercises, unmarked = student_notebook(nb, path.name)
        nbformat.validate(nb)
        converted.append((path.name, nb, exercises, unmarked))
    out.mkdir(parents=True, exist_ok=True)
    editions = []
    for name, nb, exercises, unmarked in converted:
        target = out / name
        nbformat.write(nb, target)  # type: ignore[no-untyped-call]
        editions.append(StudentEdition(name, target, exercises, unmarked))
    return editions
