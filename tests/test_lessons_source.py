"""Lesson sources: one per lesson, read the same by jupytext, and drift from the notebooks caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.teaching import lessons

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return folder


def _check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.teaching.lessons", "--check", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_lesson_has_exactly_one_source() -> None:
    notebooks = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    sources = sorted(p.stem for p in (NOTEBOOKS / "src").glob("[0-9][0-9]-*.py"))
    assert notebooks and notebooks == sources


def test_the_committed_notebooks_agree_with_their_sources() -> None:
    result = _check(NOTEBOOKS)
    assert result.returncode == 0, result.stderr
    assert "8 sources agree" in result.stdout or "sources agree" in result.stdout


def test_an_edited_source_is_named_by_the_check(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    assert _check(folder).returncode == 0
    source = folder / "src" / "02-github-events.py"
    source.write_text(
        source.read_text().replace("# %% [markdown]\n", "# %% [markdown]\n# An edit.\n#\n", 3)
    )
    result = _check(folder)
    assert result.returncode == 1
    assert "02-github-events.ipynb" in result.stderr and "differs from the source" in result.stderr
    assert "01-webhooks-101" not in result.stderr


def test_a_notebook_without_a_source_and_a_missing_cell_are_named(tmp_path: Path) -> None:
    import nbformat

    folder = _copy(tmp_path)
    (folder / "src" / "07-when-things-go-wrong.py").unlink()
    path = folder / "04-services-with-compose.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.pop()
    nbformat.write(nb, path)
    result = _check(folder)
    assert result.returncode == 1
    assert "07-when-things-go-wrong.ipynb: no source" in result.stderr
    assert "04-services-with-compose.ipynb" in result.stderr


def test_an_inserted_cell_changes_only_its_own_id(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    before = lessons.sources(folder)
    ids_before = [c["id"] for c in lessons.notebook(before, 1).cells]
    source = folder / "src" / "01-webhooks-101.py"
    text = source.read_text()
    marker = "# %%\nimport httpx\n"
    assert marker in text
    source.write_text(text.replace(marker, "# %% [markdown]\n# A new cell.\n\n" + marker, 1))
    ids_after = [c["id"] for c in lessons.notebook(lessons.sources(folder), 1).cells]
    assert len(ids_after) == len(ids_before) + 1
    new = [i for i in ids_after if i not in ids_before]
    assert len(new) == 1
    assert [i for i in ids_after if i != new[0]] == ids_before


def test_jupytext_reads_every_source_into_the_same_cells() -> None:
    jupytext = pytest.importorskip("jupytext", reason="jupytext is in the test extras")
    for source in lessons.sources(NOTEBOOKS):
        nb = jupytext.read(source.path)
        assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells] == [
            (c.kind, c.source, c.tags) for c in source.cells
        ], source.path.name


def test_markers_expand_to_the_shared_blocks() -> None:
    from labkit.teaching.exercises import solution

    all_sources = lessons.sources(NOTEBOOKS)
    nb = lessons.notebook(all_sources, 2)
    texts = [c.source for c in nb.cells]
    assert texts[1].startswith("[← 01 Webhooks 101](01-webhooks-101.ipynb) | [Contents]")
    assert solution("02-verify").code in texts
    assert any(
        t.startswith("<details><summary>Show a solution</summary>")
        and solution("02-verify").code in t
        for t in texts
    )


def test_a_bad_marker_says_where(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    source = folder / "src" / "00-start-here.py"
    source.write_text(
        source.read_text() + '\n# %% tags=["exercise-answer"]\n# labkit: answer no-such\n'
    )
    with pytest.raises(lessons.LabkitError, match="00-start-here.py:[0-9]+: no exercise 'no-such'"):
        lessons.notebook(lessons.sources(folder), 0)


def test_a_prose_edit_is_rebuilt_without_a_kernel_and_keeps_every_output(tmp_path: Path) -> None:
    import nbformat

    folder = _copy(tmp_path)
    name = "06-push-build-deploy-monitor"
    before = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    source = folder / "src" / f"{name}.py"
    source.write_text(
        source.read_text().replace("# %% [markdown]\n", "# %% [markdown]\n# An edit.\n#\n", 2)
    )
    assert _check(folder).returncode == 1
    assert lessons.rebuild_prose(["06"], folder) == [f"{name}.ipynb"]
    assert _check(folder).returncode == 0
    after = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    code = [(c.source, c.outputs) for c in before.cells if c.cell_type == "code"]
    assert code and code == [(c.source, c.outputs) for c in after.cells if c.cell_type == "code"]


def test_a_changed_code_cell_is_refused_by_the_prose_rebuild(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    source = folder / "src" / "01-webhooks-101.py"
    source.write_text(source.read_text().replace("import labkit\n", "import labkit  # edited\n", 1))
    committed = (folder / "01-webhooks-101.ipynb").read_bytes()
    with pytest.raises(lessons.LabkitError, match="code cell .* changed"):
        lessons.rebuild_prose(["01"], folder)
    assert (folder / "01-webhooks-101.ipynb").read_bytes() == committed
