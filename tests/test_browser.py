"""Lessons 01 and 06, and a learner typing an answer into a student edition, in a real browser.

Chromium is Debian's, never a downloaded one. Skips where it or Playwright is missing, and fails
instead when ``CI=true``. Everything talks to 127.0.0.1 only. ``LABKIT_SCREENSHOTS=1`` also
rewrites ``docs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import IN_CI, free_port, poll

ROOT = Path(__file__).resolve().parent.parent
LESSON = "01-webhooks-101.ipynb"
PIPELINE_LESSON = "06-push-build-deploy-monitor.ipynb"
STAGES = ("build", "ship", "deploy", "monitor")
CHROMIUM = Path(os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = os.environ.get("LABKIT_SCREENSHOTS", "").strip().lower() in ("1", "true", "yes")
SHOTS = ROOT / "docs" / "screenshots"
# Without the background-networking flags Chromium tries to reach hosts outside the machine.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# No news toast; no "Select Kernel" dialog for notebooks without kernelspec metadata; and every
# cell in the page (windowing leaves cells out of the DOM until they are scrolled to).
SETTINGS_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {
        "autoStartDefaultKernel": True,
        "windowingMode": "none",
    },
}
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# The debugger button is enabled only once a kernel really exists; "idle" shows up earlier.
KERNEL_READY = f'{PANEL} .jp-DebuggerBugButton[aria-disabled="false"]'
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

pytestmark = pytest.mark.timeout(120)


def _require(ok: bool, reason: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the browser test must run here)")
        pytest.skip(reason)


# --- JupyterLab on a copy of the lessons ---------------------------------------------------------


@dataclass
class Lab:
    """A JupyterLab server on 127.0.0.1 with its own config, runtime, settings and workspaces."""

    base: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def notebooks(self) -> Path:
        return self.base / "notebooks"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        try:
            return (self.base / "jupyterlab.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            trust_env=False,
            timeout=10,
            headers={"Authorization": f"token {self.token}"},
        )

    def start(self) -> Lab:
        shutil.copytree(
            ROOT / "notebooks",
            self.notebooks,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
        dirs = {
            name: self.base / name
            for name in ("config", "runtime", "data", "settings", "workspaces", "labkit-home")
        }
        for path in dirs.values():
            path.mkdir()
        (dirs["settings"] / "overrides.json").write_text(json.dumps(SETTINGS_OVERRIDES))
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "LABKIT_HOME": str(dirs["labkit-home"]),
            # Lesson 06 on the local runtime: the same run on every machine, Docker or not
            # (lesson 01 uses no runtime).
            "LABKIT_RUNTIME": "local",
            # Kernels import this checkout's labkit, whatever their working directory.
            "PYTHONPATH": str(ROOT),
        }
        for _ in range(3):  # a probed free port can be taken before the server binds it
            self.port = free_port()
            argv = [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.notebooks}",
                f"--LabApp.app_settings_dir={dirs['settings']}",
                "--LabApp.expose_app_in_browser=True",
            ]
            with open(self.base / "jupyterlab.log", "ab") as log:
                self.proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.base,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with self.api() as api:
                        if api.get("/api/status").status_code == 200:
                            return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            self.stop()
        raise AssertionError(f"JupyterLab did not come up; its log ends:\n{self.log}")

    def _children(self) -> set[int]:
        """Processes the server started (its kernels), read from /proc."""
        if self.proc is None:
            return set()
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.proc.pid:
                found.add(int(stat.parent.name))
        return found

    def delete_sessions(self) -> None:
        try:
            with self.api() as api:
                for session in api.get("/api/sessions").json():
                    api.delete(f"/api/sessions/{session['id']}")
        except httpx.HTTPError:
            pass

    def stop(self) -> None:
        if self.proc is None:
            return
        kernels = self._children()
        if self.proc.poll() is None:
            self.delete_sessions()
            try:
                with self.api() as api:
                    api.post("/api/shutdown")
                self.proc.wait(timeout=15)
            except (httpx.HTTPError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
        for pid in kernels:  # kernels run in their own sessions: end any the server left
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require(False, "Playwright is not installed: pip install -e '.[test]'")
    server = Lab(tmp_path_factory.mktemp("browser"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def page(lab: Lab, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
            lab.delete_sessions()


# --- driving the notebook ----------------------------------------------------------------------


def _command(page: Any, command: str) -> None:
    page.evaluate("(id) => window.jupyterapp.commands.execute(id)", command)


def _progress(page: Any) -> dict[str, Any]:
    """Code cells, how many have run, and what went wrong, from the notebook model and the page.

    Counts come from the model, which holds every cell; errors from both the model (error and
    stderr outputs) and the page (what the learner sees, including widget failures).
    """
    result: dict[str, Any] = page.evaluate(
        """([panel, stderr]) => {
            const notebook = window.jupyterapp.shell.currentWidget;
            const code = notebook.content.widgets.filter(w => w.model.type === 'code');
            const failed = code.flatMap(w => w.model.outputs.toJSON().filter(
                o => o.output_type === 'error' || o.name === 'stderr'));
            const node = document.querySelector(panel);
            return {
                cells: code.length,
                done: code.filter(w => w.model.executionCount !== null).length,
                domCells: node.querySelectorAll('.jp-CodeCell').length,
                stderr: [...node.querySelectorAll(stderr)].map(e => e.textContent)
                    .concat(failed.map(o => o.text || (o.ename + ': ' + o.evalue))),
                widgetErrors: (node.textContent.match(/Error displaying widget/g) || []).length,
                kernel: notebook.sessionContext.session?.kernel?.status,
            };
        }""",
        [PANEL, STDERR],
    )
    return result


def _open(page: Any, lab: Lab, notebook: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}&reset")
    page.wait_for_selector(KERNEL_READY, timeout=60_000)
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).first.wait_for(
        timeout=30_000
    )


def _clear(page: Any) -> int:
    """Clear the committed outputs, so all that shows comes from this run; returns the cells."""
    _command(page, "notebook:clear-all-cell-outputs")
    before = _progress(page)
    cells: int = before["cells"]
    assert cells > 10 and before["done"] == 0, before
    assert before["domCells"] == cells, f"only {before['domCells']} of {cells} cells in the page"
    return cells


def _check(state: dict[str, Any], cells: int) -> None:
    assert not state["stderr"], f"a cell wrote to stderr or failed: {state['stderr']}"
    assert not state["widgetErrors"], "a widget failed to display (Error displaying widget)"
    assert state["done"] == cells, state


def _run_all(page: Any) -> None:
    cells = _clear(page)
    _command(page, "notebook:run-all-cells")
    _check(_wait_until_run(page, cells), cells)


def _run_above(page: Any, startswith: str) -> int:
    """Run every cell above the code cell starting with ``startswith`` (made the active cell);
    returns how many code cells ran."""
    index = _code_cell_index(page, startswith)
    above: int = page.evaluate(
        """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                   nb.activeCellIndex = i;
                   return nb.widgets.slice(0, i).filter(w => w.model.type === 'code').length; }""",
        index,
    )
    _command(page, "notebook:run-all-above")
    _check(_wait_until_run(page, above), above)
    return above


def _wait_until_run(page: Any, cells: int, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = _progress(page)
        if state["stderr"] or state["widgetErrors"]:
            return state  # Run All stops at an error: no point waiting for the rest
        if state["done"] >= cells and state["kernel"] == "idle":
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the lesson did not finish in {timeout} s: {state}")
        time.sleep(0.25)


def _code_cell_index(page: Any, startswith: str) -> int:
    index: int = page.evaluate(
        """(text) => window.jupyterapp.shell.currentWidget.content.widgets.findIndex(
               w => w.model.type === 'code' && w.model.sharedModel.getSource().startsWith(text))""",
        startswith,
    )
    assert index >= 0, f"no code cell starting with {startswith!r} in the notebook"
    return index


def _output(page: Any, source: str) -> Any:
    """The first output of the code cell whose source contains ``source``."""
    cell = page.locator(f"{PANEL} .jp-CodeCell").filter(has_text=source)
    return cell.locator(".jp-OutputArea-output").first


def _inspector(page: Any) -> Any:
    return _output(page, "insp = labkit.inspect(rx)")


def _element_screenshot(page: Any, element: Any, path: Path) -> None:
    """The whole element, uncut: no file browser, and a viewport taller than the element (the
    notebook scrolls inside its own panel, so a full-page shot would not help)."""
    _command(page, "application:toggle-left-area")
    page.set_viewport_size({"width": 1500, "height": 900})
    page.wait_for_timeout(300)
    box = element.bounding_box()
    assert box is not None, f"nothing laid out to photograph for {path.name}"
    page.set_viewport_size({"width": 1500, "height": int(box["height"]) + 300})
    element.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let the last coalesced redraw land
    SHOTS.mkdir(parents=True, exist_ok=True)
    element.screenshot(path=str(path))


def _screenshots(page: Any) -> None:
    """Re-run the lesson up to its clean-up, so the inspector is live, and photograph it."""
    _command(page, "notebook:clear-all-cell-outputs")
    _run_above(page, "insp.stop()")
    inspector = _inspector(page)
    inspector.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let the last coalesced redraw land
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lesson-01.png"))
    _element_screenshot(page, inspector, SHOTS / "inspector.png")


# --- the test ------------------------------------------------------------------------------------


def test_lesson_01_runs_all_and_the_inspector_shows_deliveries(lab: Lab, page: Any) -> None:
    started = time.monotonic()
    _open(page, lab, LESSON)
    _run_all(page)

    inspector = _inspector(page)
    rows = inspector.locator(".widget-html-content table tbody tr")
    # Widget views update over the comm channel, which can trail the kernel's "idle" a little.
    poll(lambda: rows.count() >= 3, timeout=10, what="three rows in the inspector's table")
    # textContent rather than innerText: it does not depend on the cell being laid out.
    table = rows.all_text_contents()
    assert any("github" in row and "ping" in row for row in table), table
    assert "Replay" in (inspector.text_content() or "")

    if SCREENSHOTS:
        _screenshots(page)
    print(f"lesson 01 in the browser: {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(240)
def test_lesson_06_runs_all_and_the_flow_shows_every_stage_passed(lab: Lab, page: Any) -> None:
    """A real git push, build, ship, deploy and monitor on the local runtime, seen in the flow.

    The flow is read while it is live, before the clean-up cell stops it (and the pipeline);
    that cell runs afterwards, so every cell of the lesson runs.
    """
    started = time.monotonic()
    _open(page, lab, PIPELINE_LESSON)
    cells = _clear(page)
    _run_above(page, "insp.stop()")

    flow = _output(page, "flow = labkit.Flow(pipeline)")
    boxes = flow.locator(".widget-hbox .widget-html-content")

    def stage_boxes() -> dict[str, str]:
        # textContent rather than innerText: it does not depend on the cell being laid out.
        texts = [" ".join(t.split()) for t in boxes.all_text_contents()]
        return {name: text for name in STAGES for text in texts if text.startswith(name)}

    def all_passed() -> bool:
        shown = stage_boxes()
        return len(shown) == len(STAGES) and all("✔ passed" in t for t in shown.values())

    # The boxes redraw over the comm channel, which can trail the kernel's "idle" a little.
    try:
        poll(all_passed, timeout=15, what="the flow's four stage boxes, each saying passed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the flow shows: {boxes.all_text_contents()}") from None
    shown = stage_boxes()
    assert list(shown) == list(STAGES), shown
    for name, text in shown.items():
        # The name, then the status in words (not only a colour), then how long it took.
        assert re.match(rf"{name}\s*✔ passed\s*\d+\.\d s", text), text
    header = " ".join((flow.locator(".widget-html-content").first.text_content() or "").split())
    assert re.match(r"Run \d+ · commit [0-9a-f]{7} .* · passed", header), header
    history = flow.locator("details table tbody tr").all_text_contents()
    assert len(history) >= 2 and all("passed" in row for row in history), history

    if SCREENSHOTS:
        _element_screenshot(page, flow, SHOTS / "flow.png")
    _command(page, "notebook:run-all-below")  # from the clean-up cell, the active one
    _check(_wait_until_run(page, cells), cells)
    print(f"lesson 06 in the browser: {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize(
    ("lesson", "expected"),
    [
        ("02-github-events.ipynb", ("github", "push", "rejected")),
        ("03-dockerhub-registry-and-alerts.ipynb", ("dockerhub", "registry", "alertmanager")),
    ],
)
def test_the_inspector_lessons_show_their_deliveries(
    lab: Lab, page: Any, lesson: str, expected: tuple[str, ...]
) -> None:
    """Lessons 02 and 03, run up to their clean-up: the live inspector lists their deliveries."""
    _open(page, lab, lesson)
    cells = _clear(page)
    _run_above(page, "insp.stop()")
    rows = _inspector(page).locator(".widget-html-content table tbody tr")

    def shown() -> str:
        return " ".join(rows.all_text_contents())

    # Widget views update over the comm channel, which can trail the kernel's "idle" a little.
    poll(lambda: all(word in shown() for word in expected), timeout=15, what=str(expected))
    assert rows.count() >= 3, shown()
    _command(page, "notebook:run-all-below")  # from the clean-up cell, the active one
    _check(_wait_until_run(page, cells), cells)


@pytest.mark.timeout(240)
def test_lesson_04_shows_the_learners_stack_live(lab: Lab, page: Any) -> None:
    """Lesson 04 on the local runtime, run up to its clean-up: the stack view lists the
    learner's services, healthy, with products scaled to three and users to two."""
    _open(page, lab, "04-services-with-compose.ipynb")
    cells = _clear(page)
    _run_above(page, "view.stop()")
    rows = _output(page, "view = labkit.widgets.StackStatus(stack)").locator("table tbody tr")

    def table() -> list[str]:
        return [" ".join(t.split()) for t in rows.all_text_contents()]

    def settled() -> bool:
        shown = table()
        return (
            sum(r.startswith("users") for r in shown) == 2
            and all("healthy" in r for r in shown)
            and any(r.startswith("gateway") for r in shown)
        )

    try:
        poll(settled, timeout=15, what="the stack view: users twice, every row healthy")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the view shows: {table()}") from None
    _command(page, "notebook:run-all-below")
    _check(_wait_until_run(page, cells), cells)


def test_a_learner_types_an_answer_into_the_student_edition_and_sees_pass(
    lab: Lab, page: Any
) -> None:
    """What a learner does: open their copy, type an answer into an empty answer cell, run it
    and the check under it, and read PASS; before typing, the same check says NOT YET."""
    import nbformat

    from labkit.teaching.student import PLACEHOLDER, student_notebook

    name = "01-student-edition.ipynb"
    student, exercises, _ = student_notebook(
        nbformat.read(lab.notebooks / LESSON, as_version=4), LESSON
    )
    assert exercises[0] == "01-polling-cost"
    nbformat.write(student, lab.notebooks / name)
    _open(page, lab, name)
    index = _code_cell_index(page, PLACEHOLDER)
    _run_above(page, PLACEHOLDER)
    cells = page.locator(f"{PANEL} .jp-Cell")  # every cell, as the notebook counts them
    check_cell = cells.nth(index + 1)

    def run_answer_and_check() -> None:
        page.evaluate(
            "(i) => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index
        )
        _command(page, "notebook:run-cell-and-select-next")
        _command(page, "notebook:run-cell-and-select-next")

    run_answer_and_check()
    output = check_cell.locator(".jp-OutputArea-output").first
    output.wait_for(timeout=30_000)
    poll(lambda: "NOT YET" in (output.text_content() or ""), timeout=30, what="NOT YET")

    # Type the answer as a learner does: into the cell's editor, replacing the placeholder.
    editor = cells.nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('answer = {"polling": 8 * 60 * 60 // 30, "webhooks": 12}')
    run_answer_and_check()
    poll(
        lambda: "PASS" in (check_cell.locator(".jp-OutputArea-output").first.text_content() or ""),
        timeout=30,
        what="PASS under the check",
    )
