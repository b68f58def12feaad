"""Student editions: every lesson converts, runs through its exercises, and every check hints."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.errors import LabkitError
from labkit.teaching.exercises import EXERCISES, solution
from labkit.teaching.student import (
    ANSWER_TAG,
    LESSON_GLOB,
    PLACEHOLDER,
    StudentEdition,
    make_student_editions,
    student_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob(LESSON_GLOB))
# Found independently of labkit.teaching.student, so a bug there cannot hide a check cell.
CHECK_CALL = re.compile(r"""check\(\s*["']([\w.-]+)["']\s*,\s*answer""")


def _text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return str(data.get("text/plain", "")) + str(data.get("text/html", ""))


def _run(nb: Any, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel imports this checkout's labkit whatever its working directory (as ./dev lessons does).
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # The local runtime, whatever this machine has: a lesson on Docker would start containers,
    # and these tests carry no docker marker (the engine's lessons run in the engine tests).
    monkeypatch.setenv("LABKIT_RUNTIME", "local")
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()  # no allow_errors: any traceback fails the test, with the cell shown


#: Lessons rewritten as hands-on (tasks inside the sections) and the tasks each must keep.
MIN_TASKS = {"01": 4, "02": 4, "03": 4, "04": 4, "05": 4, "06": 4, "07": 4}


def test_there_are_lessons() -> None:
    assert LESSONS, f"no lessons matching {LESSON_GLOB} in {NOTEBOOKS}"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_student_edition_runs_and_every_check_hints(
    lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = nbformat.read(lesson, as_version=4)
    student, exercises, unmarked = student_notebook(
        nbformat.read(lesson, as_version=4), lesson.name
    )
    if unmarked:
        warnings.warn(
            f"{lesson.name}: cells {', '.join(unmarked)} answer hand-made checks, so "
            "their answers stay in the student edition; use labkit.exercises.check "
            "(notebooks/src: `# labkit: answer ID`) or tag them 'exercise-answer'.",
            stacklevel=1,
        )
    path = tmp_path / lesson.name
    nbformat.validate(student)
    nbformat.write(student, path)
    student = nbformat.read(path, as_version=4)

    calls = {
        i: CHECK_CALL.search(c.source)
        for i, c in enumerate(original.cells)
        if c.cell_type == "code"
    }
    checks = [i for i, call in calls.items() if call]
    assert list(exercises) == [call.group(1) for call in calls.values() if call]
    # Hands-on lessons: at least this many self-checking tasks in the student edition.
    assert len(exercises) >= MIN_TASKS.get(lesson.name[:2], 1), exercises
    assert len(student.cells) == len(original.cells)

    # Answers are gone from the answer cells; checks, and solutions to reveal, are still there.
    answer_cells = [
        i for i, c in enumerate(student.cells) if ANSWER_TAG in c.metadata.get("tags", [])
    ]
    assert len(answer_cells) == len(exercises)
    for i, exercise_id in zip(answer_cells, exercises, strict=True):
        # A task done in a file the learner edits starts from a pointer to it, not a blank.
        assert student.cells[i].source == (EXERCISES[exercise_id].starter or PLACEHOLDER)
        leaked = [
            line
            for line in original.cells[i].source.splitlines()
            if line.strip()
            and line.strip() in student.cells[i].source
            and line.strip() not in EXERCISES[exercise_id].starter  # the pointer itself
        ]
        assert not leaked, f"solution lines left in answer cell {student.cells[i].id}: {leaked}"
    markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    for exercise_id in exercises:
        assert solution(exercise_id).code in markdown, f"{exercise_id}: no solution to reveal"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")

    # A learner's first wrong attempt, checked in the lesson's own kernel after its last cell.
    for exercise_id in exercises:
        student.cells.append(
            new_code_cell(
                f'answer = "not the answer"\nlabkit.exercises.check("{exercise_id}", answer)'
            )
        )
    wrong = range(len(original.cells), len(student.cells))

    _run(student, tmp_path, monkeypatch)

    for i in [*checks, *wrong]:
        cell = student.cells[i]
        outputs = cell.outputs
        assert outputs, f"check cell {cell.id} showed nothing"
        assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"], (
            f"check cell {cell.id}: {outputs}"
        )
        shown = "".join(_text(o) for o in outputs)
        assert "NOT YET" in shown and "Traceback" not in shown, shown


def test_make_student_editions_writes_every_lesson(tmp_path: Path) -> None:
    src = tmp_path / "lessons"
    src.mkdir()
    for lesson in LESSONS[:2]:
        shutil.copy(lesson, src / lesson.name)
    (src / "_build.py").write_text("# not a lesson\n")
    before = {p.name: p.read_bytes() for p in src.iterdir()}

    editions = make_student_editions(src, tmp_path / "student")

    assert [e.lesson for e in editions] == [p.name for p in LESSONS[:2]]
    written = sorted(p.name for p in (tmp_path / "student").iterdir())
    assert written == [p.name for p in LESSONS[:2]]
    for edition in editions:
        nb = nbformat.read(edition.path, as_version=4)
        assert nb.metadata["labkit"] == {"edition": "student"}
        assert all(
            c.source == PLACEHOLDER for c in nb.cells if ANSWER_TAG in c.metadata.get("tags", [])
        )
        assert str(edition.path) in str(edition)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_refuses_to_overwrite_the_lessons(tmp_path: Path) -> None:
    shutil.copy(LESSONS[0], tmp_path / LESSONS[0].name)
    with pytest.raises(LabkitError, match="overwrite"):
        make_student_editions(tmp_path, tmp_path / ".")
    with pytest.raises(LabkitError, match="No lessons"):
        make_student_editions(tmp_path / "empty", tmp_path / "out")


def _lesson(*cells: Any) -> Any:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def test_tagged_answer_cells_are_blanked_whatever_they_hold() -> None:
    answer = new_code_cell("x = 6 * 7\nanswer = x", metadata={"tags": [ANSWER_TAG]})
    answer.outputs = [new_output("execute_result", {"text/plain": "42"}, execution_count=1)]
    answer.execution_count = 1
    nb, exercises, _ = student_notebook(
        _lesson(
            new_markdown_cell("## Exercises\n\nThe answer cells hold working answers."),
            answer,
            new_code_cell('labkit.exercises.check("made-up-id", answer)'),
        )
    )
    assert nb.cells[1].source == PLACEHOLDER
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None
    assert "working answers" not in nb.cells[0].source
    assert "NOT YET" in nb.cells[0].source
    assert exercises == ("made-up-id",)


def test_solution_cells_are_recognised_without_a_tag() -> None:
    exercise_id = next(iter(EXERCISES))
    nb, exercises, _ = student_notebook(
        _lesson(
            new_code_cell(EXERCISES[exercise_id].solution + "\n"),
            new_code_cell(f'labkit.exercises.check("{exercise_id}", answer)'),
        )
    )
    assert exercises == (exercise_id,)
    assert nb.cells[0].source == PLACEHOLDER
    assert ANSWER_TAG in nb.cells[0].metadata["tags"]


def test_an_unrecognised_answer_is_an_error_not_a_leak() -> None:
    exercise_id = next(iter(EXERCISES))
    with pytest.raises(LabkitError, match=ANSWER_TAG):
        student_notebook(
            _lesson(
                new_code_cell("answer = 'something else entirely'"),
                new_code_cell(f'labkit.exercises.check("{exercise_id}", answer)'),
            ),
            "lesson.ipynb",
        )


def test_answers_to_hand_made_checks_are_reported() -> None:
    nb, exercises, unmarked = student_notebook(
        _lesson(
            new_code_cell('answer = {"db": "healthy"}'),
            new_code_cell('print("PASS" if answer == {"db": "healthy"} else "NOT YET")'),
            # `answer` as an ordinary variable of the lesson is no exercise:
            new_code_cell('answer = httpx.get(url).json()\nprint(answer["message"])'),
            new_code_cell("print(stack.status())"),
        ),
        "lesson.ipynb",
    )
    assert exercises == () and unmarked == (nb.cells[0].id,)
    assert nb.cells[0].source == 'answer = {"db": "healthy"}'
    shown = str(StudentEdition("x.ipynb", Path("out/x.ipynb"), (), unmarked))  # as the CLI prints
    assert "warning" in shown and nb.cells[0].id in shown


def test_labkit_student_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from labkit import cli

    src, out = tmp_path / "lessons", tmp_path / "student"
    src.mkdir()
    shutil.copy(LESSONS[0], src / LESSONS[0].name)
    capsys.readouterr()
    assert cli.main(["student", str(out), "--from", str(src)]) == 0
    assert (out / LESSONS[0].name).is_file()
    assert str(out / LESSONS[0].name) in capsys.readouterr().out
    assert cli.main(["student", str(src), "--from", str(src)]) == 2  # never over the lessons
