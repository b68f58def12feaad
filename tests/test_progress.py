"""Progress bars: the terminal bar, plain lines for logs, the notebook widget, and their wiring.

The wiring tests drive ``Stack.wait`` with a scripted ``ps()`` (no engine needed), feed
``images`` the lines debootstrap, apt-get and docker build really print, and, where a Docker
engine answers, run ``labkit images build`` and ``labkit stack up services --wait`` for real.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from labkit.errors import StackError
from labkit.progress import (
    BarView,
    LinesView,
    Progress,
    SilentView,
    Snapshot,
    progress_for,
)
from labkit.runtime import compose, images
from labkit.runtime.compose import Stack
from labkit.widgets.progress import WidgetView

from support import poll, require

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Terminal(io.StringIO):
    """What a terminal is to the bar: a stream that says it is a TTY."""

    def isatty(self) -> bool:
        return True


class Recorder:
    """A view that keeps every call, so a test sees exactly what a progress reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Snapshot, str]] = []

    def line(self, state: Snapshot, text: str) -> None:
        self.calls.append(("line", state, text))

    def count(self, state: Snapshot) -> None:
        self.calls.append(("count", state, ""))

    def status(self, state: Snapshot) -> None:
        self.calls.append(("status", state, state.status))

    def finish(self, state: Snapshot, text: str) -> None:
        self.calls.append(("finish", state, text))

    def lines(self) -> list[str]:
        return [text for kind, _, text in self.calls if kind == "line"]

    def statuses(self) -> list[str]:
        return [text for kind, _, text in self.calls if kind == "status"]


# -- which view, where ---------------------------------------------------------------------------


def test_a_terminal_gets_a_bar_and_anything_else_plain_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert isinstance(Progress("x", 2, stream=Terminal()).view, BarView)
    assert isinstance(Progress("x", 2, stream=io.StringIO()).view, LinesView)
    monkeypatch.setenv("TERM", "dumb")  # a terminal that cannot move the cursor back
    assert isinstance(Progress("x", 2, stream=Terminal()).view, LinesView)


def test_the_progress_argument_picks_the_view() -> None:
    lines: list[str] = []
    assert isinstance(progress_for(None, "x", 1).view, SilentView)
    assert isinstance(progress_for(False, "x", 1).view, SilentView)
    assert isinstance(progress_for(lines.append, "x", 1).view, LinesView)
    mine = Progress("mine", 3, view="off")
    assert progress_for(mine, "other", 9) is mine
    with pytest.raises(TypeError, match="progress="):
        progress_for("loud", "x", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="widget, bar, lines or off"):
        Progress("x", 1, view="fancy")


# -- the terminal bar ----------------------------------------------------------------------------


def test_the_terminal_bar_redraws_in_place_and_keeps_lines_above_it() -> None:
    out = Terminal()
    bar = Progress("lab images", 4, view=BarView(out, width=80))
    bar.step("labkit/base:bookworm: building")
    bar.status("debootstrap: Unpacking the base system (phase 6 of 8)")
    bar.advance("labkit/base:bookworm: built")
    bar.update(3)
    bar.finish("4 images ready")
    text = out.getvalue()
    # Every draw starts at column 0 and clears the line; kept lines end with a newline.
    draws = text.split("\r\x1b[K")[1:]
    assert draws and all(len(d.split("\n")[-1]) <= 79 for d in draws), draws
    assert "[1/4] labkit/base:bookworm: building\n" in text
    assert "[1/4] labkit/base:bookworm: built\n" in text
    assert "lab images  [######..................] 1/4" in text  # a quarter of 24 cells
    assert "[##################......] 3/4" in text
    last = draws[-1]
    assert last.startswith("lab images  [########################] 4/4  done  4 images ready")
    assert last.endswith(" s\n") and text.count("\n") == 3  # two kept lines and the last bar


def test_a_long_status_is_cut_to_the_terminal_width() -> None:
    out = Terminal()
    bar = Progress("services stack", 5, view=BarView(out, width=60))
    bar.status("waiting for " + ", ".join(f"service-{n} (starting)" for n in range(20)))
    bar.finish()
    assert all(len(d.rstrip("\n")) <= 59 for d in out.getvalue().split("\r\x1b[K")[1:])


def test_a_failed_bar_keeps_its_count_and_says_why() -> None:
    out = Terminal()
    with pytest.raises(RuntimeError):
        with Progress("lab images", 6, view=BarView(out, width=100)) as bar:
            bar.advance()
            bar.advance()
            raise RuntimeError("apt-get install failed (exit 100)\nE: Unable to locate package")
    last = out.getvalue().split("\r\x1b[K")[-1]
    assert "2/6  FAILED  apt-get install failed (exit 100)" in last
    assert "Unable to locate" not in last  # the first line only; the error itself says the rest
    assert bar.finished and not bar.state.ok and bar.state.done == 2


# -- plain lines (logs, pipes, CI) ---------------------------------------------------------------


def test_plain_lines_have_no_carriage_returns_and_leave_status_out() -> None:
    out = io.StringIO()
    bar = Progress("lab images", 3, stream=out)
    bar.step("labkit/base:bookworm: building")
    for n in range(1, 46):
        bar.status(f"apt-get: set up {n} of 45 packages")  # a bar shows these; a log does not
    bar.line("  docker import labkit/base:bookworm")
    bar.advance("labkit/base:bookworm: built")
    bar.advance("labkit/python-app:bookworm: up to date")
    bar.advance("labkit/mariadb:bookworm: up to date")
    bar.finish("3 images ready")
    bar.advance("after the end")  # ignored: a finished progress stays as it ended
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[:5] == [
        "[1/3] labkit/base:bookworm: building",
        "  docker import labkit/base:bookworm",
        "[1/3] labkit/base:bookworm: built",
        "[2/3] labkit/python-app:bookworm: up to date",
        "[3/3] labkit/mariadb:bookworm: up to date",
    ]
    assert lines[5].startswith("lab images: 3 images ready in ") and len(lines) == 6


def test_a_function_gets_the_same_lines_and_a_failure() -> None:
    got: list[str] = []
    bar = progress_for(got.append, "services stack", 2)
    bar.advance("db: healthy after 3 s")
    bar.fail("gateway is unhealthy")
    assert got == [
        "[1/2] db: healthy after 3 s",
        "services stack: FAILED at 1/2: gateway is unhealthy",
    ]


# -- the notebook widget, in this process ----------------------------------------------------------


def test_the_widget_shows_count_status_and_the_newest_lines() -> None:
    view = WidgetView("lab images", 6)
    bar = Progress("lab images", 6, view=view)
    assert (view.bar.value, view.bar.max, view.bar.description) == (0, 6, "lab images")
    bar.step("labkit/mariadb:bookworm: building")
    for n in range(1, 6):
        bar.line(f"  line {n}")
    bar.advance()
    bar.advance()
    bar.status("apt-get: set up 12 of 45 packages")
    view.refresh()
    assert view.bar.value == 2 and view.bar.bar_style == "info"
    assert view.count_label.value.startswith("2/6")
    assert view.label.value.endswith(">apt-get: set up 12 of 45 packages</span>")
    assert "line 5" in view.lines.value and "line 1" not in view.lines.value  # newest 4 only
    bar.finish("6 images ready")
    assert view.bar.value == 6 and view.bar.bar_style == "success"
    assert view.count_label.value.startswith("6/6  done")
    assert "6 images ready" in view.label.value


def test_the_widget_takes_reports_from_threads_and_ends_red_on_failure() -> None:
    view = WidgetView("services stack", 40)
    bar = Progress("services stack", 40, view=view)

    def report(n: int) -> None:
        bar.status(f"thread {n} reports")
        bar.advance()

    threads = [threading.Thread(target=report, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # The live redraw is coalesced into a timer thread: wait for it rather than forcing one.
    poll(lambda: view.bar.value == 30, timeout=5, what="the coalesced redraw to show 30 of 30")
    bar.fail("orders is unhealthy")
    assert view.bar.bar_style == "danger" and view.bar.value == 30
    assert "FAILED" in view.count_label.value and "orders is unhealthy" in view.label.value


KERNEL_CELLS = [
    "import threading\nfrom labkit.progress import Progress\nbar = Progress('kernel build', 4)",
    "print(type(bar.view).__name__)",
    "def work(n):\n    bar.line(f'step {n}')\n    bar.advance()\n"
    "threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]\n"
    "for t in threads: t.start()\nfor t in threads: t.join()\nbar.finish('all four')",
    "kinds = []\n"
    "t = threading.Thread(target=lambda: kinds.append(type(Progress('bg', 1).view).__name__))\n"
    "t.start(); t.join(); print(kinds)",
]


@pytest.mark.timeout(120)
def test_in_a_kernel_the_bar_is_a_widget_without_text_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a kernel the bar is a widget-only display: nothing that nbval compares as text."""
    nb = new_notebook(cells=[new_code_cell(src) for src in KERNEL_CELLS])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    )
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    make, kind, work, background = nb.cells
    assert [o.output_type for o in make.outputs] == ["display_data"]
    assert list(make.outputs[0].data) == [WIDGET_VIEW]  # no text/plain, no printed lines
    assert [o.text for o in kind.outputs] == ["WidgetView\n"]
    assert work.outputs == []  # reports from threads print nothing into the cell
    assert [o.text for o in background.outputs] == ["['SilentView']\n"]
    # The widget state the kernel sent, as the front end got it.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "IntProgressModel"]
    assert [(b["description"], b["value"], b["max"], b["bar_style"]) for b in bars] == [
        ("kernel build", 4, 4, "success")
    ]
    labels = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any("all four" in v for v in labels) and any("step 3" in v for v in labels)


# -- wiring: image builds ------------------------------------------------------------------------

DEBOOTSTRAP = """\
I: Retrieving InRelease
I: Checking Release signature
I: Retrieving Packages
I: Resolving dependencies of required packages...
I: Retrieving libc6 2.36-9+deb12u9
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking libc6:amd64...
I: Configuring required packages...
I: Unpacking the base system...
I: Configuring the base system...
I: Base system installed successfully.
"""

APT = """\
Reading package lists...
The following NEW packages will be installed:
  libfoo1 foo-common foo
0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.
Need to get 1200 kB of archives.
Get:1 http://deb.example/debian bookworm/main amd64 libfoo1 amd64 1.0 [100 kB]
Fetched 1200 kB in 1s (1200 kB/s)
Selecting previously unselected package libfoo1:amd64.
Unpacking libfoo1:amd64 (1.0) ...
Unpacking foo-common (1.0) ...
Unpacking foo (1.0) ...
Setting up libfoo1:amd64 (1.0) ...
Setting up foo-common (1.0) ...
Setting up foo (1.0) ...
Processing triggers for libc-bin (2.36-9) ...
"""


def test_debootstrap_phases_show_as_phase_n_of_the_known_ones() -> None:
    seen = Recorder()
    phases = images._DebootstrapPhases(Progress("lab images", 6, view=seen))
    kept = [k for k in (phases(line) for line in DEBOOTSTRAP.splitlines()) if k]
    assert seen.statuses() == [
        "debootstrap: Retrieving InRelease (phase 1 of 8)",
        "debootstrap: Resolving dependencies of required packages (phase 2 of 8)",
        "debootstrap: Installing core packages (phase 3 of 8)",
        "debootstrap: Unpacking required packages (phase 4 of 8)",
        "debootstrap: Configuring required packages (phase 5 of 8)",
        "debootstrap: Unpacking the base system (phase 6 of 8)",
        "debootstrap: Configuring the base system (phase 7 of 8)",
        "debootstrap: Base system installed successfully (phase 8 of 8)",
    ]
    assert len(kept) == 8 and "libc6" not in " ".join(kept)  # per-package lines are not kept


def test_apt_counts_come_from_apt_itself() -> None:
    seen = Recorder()
    counts = images._AptCounts(Progress("lab images", 6, view=seen))
    kept = [k for k in (counts(line) for line in APT.splitlines()) if k]
    assert seen.statuses() == [f"apt-get: unpacked {n} of 3 packages" for n in (1, 2, 3)] + [
        f"apt-get: set up {n} of 3 packages" for n in (1, 2, 3)
    ]
    assert kept == [
        "    0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.",
        "    Fetched 1200 kB in 1s (1200 kB/s)",
    ]


def test_apt_without_its_summary_line_claims_no_count() -> None:
    seen = Recorder()
    counts = images._AptCounts(Progress("lab images", 6, view=seen))
    for line in APT.splitlines()[4:]:  # as if the summary had been lost
        counts(line)
    assert seen.statuses() == []


@pytest.mark.docker
def test_images_build_reports_one_step_per_image(engine_images: None) -> None:
    lines: list[str] = []
    built = images.build(progress=lines.append)
    n = len(images.RECIPES)
    assert len(built) == n and all(b.cached for b in built)
    assert lines[:n] == [
        f"[{i}/{n}] {r.tag}: up to date ({images._short(b.id)})"
        for i, (r, b) in enumerate(zip(images.RECIPES, built, strict=True), 1)
    ]
    assert lines[n].startswith(f"lab images: {n} images ready (0 built, {n} up to date) in ")
    assert len(lines) == n + 1


@pytest.mark.docker
def test_the_images_build_command_prints_plain_lines_into_a_log(engine_images: None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "images", "build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout
    lines = done.stdout.splitlines()
    n = len(images.RECIPES)
    assert [line.split(" ", 1)[0] for line in lines[:n]] == [f"[{i}/{n}]" for i in range(1, n + 1)]
    assert lines[-1].startswith(f"lab images: {n} images ready")


# -- wiring: stack start-up ----------------------------------------------------------------------


def _row(
    service: str, state: str = "running", health: str = "healthy", replica: int = 1
) -> dict[str, Any]:
    return {
        "service": service,
        "replica": replica,
        "container": f"labkit-x-{service}-{replica}",
        "state": state,
        "health": health,
        "ports": [],
    }


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, list[list[dict[str, Any]]]]]:
    """The services stack with ``ps()`` replaced by a script of answers, and no real sleeping."""
    stack = Stack("services")
    script: list[list[dict[str, Any]]] = []

    def ps() -> list[dict[str, Any]]:
        return script.pop(0) if len(script) > 1 else script[0]

    monkeypatch.setattr(stack, "ps", ps)
    monkeypatch.setattr(stack, "logs", lambda *a, **k: "(log lines)")
    monkeypatch.setattr(compose.time, "sleep", lambda seconds: None)
    yield stack, script


def test_a_stack_wait_names_each_service_once_when_it_is_healthy(
    scripted: tuple[Stack, list[list[dict[str, Any]]]],
) -> None:
    stack, script = scripted
    script += [
        [],
        [_row("db", health="starting"), _row("users", "created", "")],
        [_row("db"), _row("users", health="starting")],
        [_row("db"), _row("users", health="starting")],
        [_row("db"), _row("users"), _row("gateway", "created", "")],
        # db restarts for a moment: the count goes down, and nothing is named twice
        [_row("db", health="starting"), _row("users"), _row("gateway", "created", "")],
        [
            _row("db"),
            _row("users"),
            _row("gateway", health=""),
            _row("gateway", replica=2, health=""),
        ],
    ]
    seen = Recorder()
    rows = stack.wait(
        services=["db", "users", "gateway"],
        timeout=30,
        progress=Progress("services stack", 3, view=seen),
    )
    assert len(rows) == 4
    assert seen.lines() == [
        "[1/3] db: healthy after 0 s",
        "[2/3] users: healthy after 0 s",
        "[3/3] gateway: running (no healthcheck), 2 replicas after 0 s",
    ]
    counts = [state.done for kind, state, _ in seen.calls if kind == "count"]
    assert counts == [0, 0, 1, 1, 2, 1, 3]
    assert seen.statuses() == [
        "waiting for db (no container yet), users (no container yet), gateway (no container yet)",
        "waiting for db (starting), users (created), gateway (no container yet)",
        "waiting for users (starting), gateway (no container yet)",
        "waiting for gateway (created)",
        "waiting for db (starting), gateway (created)",
    ]
    finish = [(state.done, state.ok, text) for kind, state, text in seen.calls if kind == "finish"]
    assert finish == [(3, True, "3 of 3 services healthy")]


def test_a_stack_wait_that_times_out_fails_the_bar_with_the_reason(
    scripted: tuple[Stack, list[list[dict[str, Any]]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, script = scripted
    script += [[_row("db"), _row("users", health="starting")]]
    got: list[str] = []
    with pytest.raises(StackError, match="still waiting for users"):
        stack.wait(services=["db", "users"], timeout=0, progress=got.append)
    assert got == [
        "[1/2] db: healthy after 0 s",
        "services stack: FAILED at 1/2: services: not healthy after 0 s, still waiting for users.",
    ]


def test_an_unhealthy_service_fails_the_bar_at_once(
    scripted: tuple[Stack, list[list[dict[str, Any]]]],
) -> None:
    stack, script = scripted
    script += [[_row("db", health="unhealthy")]]
    got: list[str] = []
    with pytest.raises(StackError, match="unhealthy"):
        stack.wait(services=["db"], timeout=30, progress=got.append)
    assert got == [
        "services stack: FAILED at 0/1: labkit-x-db-1 (db) is unhealthy. Its last log lines:"
    ]


@pytest.mark.docker
@pytest.mark.timeout(400)
def test_stack_up_wait_in_a_log_names_every_service_once(engine_images: None) -> None:
    """The real services stack, started by the command line into a pipe (a CI log)."""
    try:
        compose.compose_command()
    except StackError as exc:
        require(False, str(exc))
    stack = Stack("services")
    expected = stack.services
    try:
        stack.down()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "labkit.cli",
                "stack",
                "up",
                "services",
                "--wait",
                "--timeout",
                "240",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=360,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "\r" not in done.stdout
        lines = done.stdout.splitlines()
        named = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines if line.startswith("[")]
        assert sorted(named) == sorted(expected), lines  # each service, once
        n = len(expected)
        assert [line.split(" ", 1)[0] for line in lines if line.startswith("[")] == [
            f"[{i}/{n}]" for i in range(1, n + 1)
        ]
        assert any(
            line.startswith(f"services stack: {n} of {n} services healthy in ") for line in lines
        ), lines
    finally:
        stack.down()
