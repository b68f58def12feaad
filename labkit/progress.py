"""Progress of long work (image builds, stack start-up): a bar in the notebook or in the terminal.

One :class:`Progress` counts steps out of a total and says what runs now. Where it shows:

- in a Jupyter kernel, called from the main thread: the notebook view that the views floor
  registers (:func:`use_notebook_view`; an ipywidgets bar in ``labkit.widgets.progress``);
- in a terminal (stdout is a TTY): one bar line redrawn in place, with kept lines above it;
- anywhere else (a pipe, a CI log, a file): plain lines, one per step and per kept line, never a
  carriage return;
- ``progress=None`` or ``False``: nowhere.

Functions that do long work take ``progress=``: ``True`` (the default) picks the view above, a
callable gets every line as text (``progress=print``, ``progress=lines.append``), ``None`` is
silent, and a :class:`Progress` is used as it is.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import IO, Any, Protocol, Union

#: What a ``progress=`` parameter accepts (see the module's docstring; a :class:`Progress`
#: itself is passed on, so one bar can cover several calls).
ProgressArg = Union[bool, "Progress", Callable[[str], None], None]

#: A terminal bar redraws its status at most this often (steps and kept lines redraw at once).
BAR_INTERVAL = 0.1
#: A notebook bar coalesces its redraws to one per this many seconds.
WIDGET_INTERVAL = 0.2
#: The notebook view keeps this many of the newest kept lines under the bar.
WIDGET_LINES = 4
_BAR_CELLS = 24


@dataclass(frozen=True)
class Snapshot:
    """What a progress shows at one moment (views render this and nothing else)."""

    title: str
    total: int
    done: int = 0
    status: str = ""
    lines: tuple[str, ...] = ()
    seconds: float = 0.0
    finished: bool = False
    ok: bool = True


class View(Protocol):
    """Where a :class:`Progress` shows: each method gets the state right after the change."""

    def line(self, state: Snapshot, text: str) -> None: ...
    def count(self, state: Snapshot) -> None: ...
    def status(self, state: Snapshot) -> None: ...
    def finish(self, state: Snapshot, text: str) -> None: ...


class Progress:
    """Steps done out of ``total``, what runs now, and the lines worth keeping.

    ``step(text)`` says which step begins, ``advance(text)`` counts one as done, ``update(done)``
    sets the count (``first(key, text)`` names each thing counted once), ``status(text)`` says what happens inside the step (a notebook or terminal
    bar shows it; plain lines leave it out, so logs stay short), ``line(text)`` keeps a line,
    and ``finish``/``fail`` end it. Used as a context manager it finishes on the way out, or
    fails with the exception's first line. Every method may be called from any thread.
    """

    def __init__(
        self,
        title: str,
        total: int,
        *,
        view: View | str | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        # Re-entrant: a view is called with the lock held, so views see changes in order.
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._state = Snapshot(title, max(int(total), 0))
        self._named: list[str] = []
        self.view: View = _pick(view, title, self._state.total, stream)

    # -- what is happening -------------------------------------------------------------------

    @property
    def state(self) -> Snapshot:
        """The current state (``done``, ``total``, ``status``, ...)."""
        with self._lock:
            return replace(self._state, seconds=time.monotonic() - self._started)

    @property
    def finished(self) -> bool:
        return self.state.finished

    def step(self, text: str) -> None:
        """Step ``done + 1`` begins: says so as a kept line ``[n/total] text`` and as the status."""
        with self._lock:
            number = self._state.done + 1
            self.status(text)
            self.line(self._numbered(number, text))

    def advance(self, text: str = "") -> None:
        """One more step is done; ``text`` (if any) is kept as ``[n/total] text``."""
        with self._lock:
            self.update(self._state.done + 1, text)

    def update(self, done: int, text: str = "") -> None:
        """``done`` steps are done now (a count may also go down: a service that stops again)."""
        with self._lock:
            total = self._state.total
            state = self._change(done=max(0, min(done, total) if total else done))
            if state is None:
                return
            self._show(self.view.count, state)
            if text:
                self.line(self._numbered(state.done, text))

    def first(self, key: str, text: str) -> None:
        """Keep ``[n/total] text`` the first time ``key`` is reported, numbered in that order;
        later reports of the same key say nothing (e.g. a service healthy again after a restart).
        """
        with self._lock:
            if key in self._named or self._state.finished:
                return
            self._named.append(key)
            self.line(self._numbered(len(self._named), text))

    def status(self, text: str) -> None:
        """What the current step is doing now (shown on a bar; plain lines leave it out)."""
        with self._lock:
            if text == self._state.status:
                return
            state = self._change(status=text)
            if state is not None:
                self._show(self.view.status, state)

    def line(self, text: str) -> None:
        """A line worth keeping: printed above a terminal bar, listed under a notebook bar."""
        with self._lock:
            state = self._change(line=text)
            if state is not None:
                self._show(self.view.line, state, text)

    def finish(self, text: str = "") -> None:
        """All done (the bar fills up); ``text`` is the last word, e.g. how much was done."""
        self._end(True, text)

    def fail(self, text: str) -> None:
        """Stopped by a failure; the bar keeps its count and says why."""
        self._end(False, text)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish()
        else:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.fail(first)

    def __repr__(self) -> str:
        s = self.state
        where = "finished" if s.finished else s.status or "running"
        return f"<Progress {s.title!r}: {s.done}/{s.total}, {where}>"

    # -- internals ---------------------------------------------------------------------------

    def _numbered(self, number: int, text: str) -> str:
        total = self._state.total
        return f"[{number}/{total}] {text}" if total else text

    def _change(
        self, *, done: int | None = None, status: str | None = None, line: str | None = None
    ) -> Snapshot | None:
        with self._lock:
            if self._state.finished:
                return None
            s = self._state
            if done is not None:
                s = replace(s, done=done)
            if status is not None:
                s = replace(s, status=status)
            if line is not None:
                s = replace(s, lines=(*s.lines[-(WIDGET_LINES - 1) :], line))
            self._state = s
            return replace(s, seconds=time.monotonic() - self._started)

    def _end(self, ok: bool, text: str) -> None:
        with self._lock:
            if self._state.finished:
                return
            done = self._state.total if ok else self._state.done
            self._state = replace(
                self._state, done=done, finished=True, ok=ok, status=text or self._state.status
            )
            state = replace(self._state, seconds=time.monotonic() - self._started)
            self._show(self.view.finish, state, text)

    @staticmethod
    def _show(method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except (OSError, ValueError):
            pass  # a closed or broken output stream must not stop the work it reports on


def progress_for(arg: ProgressArg, title: str, total: int) -> Progress:
    """The :class:`Progress` a ``progress=`` argument asks for (see the module's docstring)."""
    if isinstance(arg, Progress):
        return arg
    if arg is True:
        return Progress(title, total)
    if arg is None or arg is False:
        return Progress(title, total, view="off")
    if callable(arg):
        return Progress(title, total, view=LinesView(arg))
    raise TypeError(f"progress= takes True, None or a function of one line, not {arg!r}.")


def in_notebook() -> bool:
    """True in the main thread of a Jupyter kernel (where widgets can be displayed)."""
    shell = _kernel_shell()
    return shell is not None and threading.current_thread() is threading.main_thread()


def _kernel_shell() -> Any | None:
    if "IPython" not in sys.modules:
        return None  # not even imported: certainly not a kernel, and no import cost
    from IPython import get_ipython

    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


#: How a notebook shows progress. The views floor (``labkit.widgets.progress``) sets it when it is
#: imported, which ``import labkit`` does in a kernel; this floor never imports a widget.
_notebook_view: Callable[[str, int], View] | None = None


def use_notebook_view(factory: Callable[[str, int], View] | None) -> None:
    """Show progress in a notebook with ``factory(title, total)``: a view, already displayed."""
    global _notebook_view
    _notebook_view = factory


def _pick(view: View | str | None, title: str, total: int, stream: IO[str] | None) -> View:
    if view is not None and not isinstance(view, str):
        return view
    out = stream if stream is not None else sys.stdout
    if view is None:
        if _kernel_shell() is not None:
            # Only the main thread may display a widget; a background thread's progress would
            # otherwise print into whatever cell runs now.
            view = "widget" if in_notebook() else "off"
        else:
            view = "bar" if _is_terminal(out) else "lines"
    if view == "widget":
        if _notebook_view is None:
            return LinesView(lambda text: print(text, file=out, flush=True))
        return _notebook_view(title, total)
    if view == "bar":
        return BarView(out)
    if view == "lines":
        return LinesView(lambda text: print(text, file=out, flush=True))
    if view == "off":
        return SilentView()
    raise ValueError(f"No progress view {view!r}: use widget, bar, lines or off.")


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def clock(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


class SilentView:
    """Shows nothing (``progress=None``)."""

    def line(self, state: Snapshot, text: str) -> None:
        pass

    def count(self, state: Snapshot) -> None:
        pass

    def status(self, state: Snapshot) -> None:
        pass

    def finish(self, state: Snapshot, text: str) -> None:
        pass


class LinesView:
    """Plain lines for logs and pipes: the kept lines (steps among them) and the outcome."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self._lock = threading.Lock()

    def line(self, state: Snapshot, text: str) -> None:
        with self._lock:
            self.write(text)

    def count(self, state: Snapshot) -> None:
        pass  # a counted step comes with its own kept line

    def status(self, state: Snapshot) -> None:
        pass  # what runs now changes often; a log keeps steps and kept lines only

    def finish(self, state: Snapshot, text: str) -> None:
        with self._lock:
            if state.ok:
                self.write(f"{state.title}: {text or 'done'} in {clock(state.seconds)}")
            else:
                self.write(
                    f"{state.title}: FAILED at {state.done}/{state.total}"
                    + (f": {text}" if text else "")
                )


class BarView:
    """One bar line in a terminal, redrawn in place; kept lines scroll by above it."""

    def __init__(self, stream: IO[str], width: int | None = None) -> None:
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()
        self._last = 0.0

    def render(self, state: Snapshot) -> str:
        """The bar as text, cut to the terminal's width so it never wraps."""
        width = self.width or shutil.get_terminal_size((100, 24)).columns
        if state.total:
            filled = round(_BAR_CELLS * state.done / state.total)
            bar = f"[{'#' * filled}{'.' * (_BAR_CELLS - filled)}] {state.done}/{state.total}"
        else:
            bar = f"[{'.' * _BAR_CELLS}]"
        mark = "" if not state.finished else ("done" if state.ok else "FAILED")
        text = "  ".join(
            part for part in (state.title, bar, mark, state.status, clock(state.seconds)) if part
        )
        return text[: max(width - 1, 10)]

    def line(self, state: Snapshot, text: str) -> None:
        with self._lock:
            self.stream.write(f"\r\x1b[K{text}\n{self.render(state)}")
            self.stream.flush()

    def count(self, state: Snapshot) -> None:
        self._draw(state, force=True)

    def status(self, state: Snapshot) -> None:
        self._draw(state, force=False)

    def finish(self, state: Snapshot, text: str) -> None:
        with self._lock:
            self.stream.write(f"\r\x1b[K{self.render(state)}\n")
            self.stream.flush()

    def _draw(self, state: Snapshot, *, force: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < BAR_INTERVAL:
                return
            self._last = now
            self.stream.write(f"\r\x1b[K{self.render(state)}")
            self.stream.flush()


__all__ = [
    "BarView",
    "LinesView",
    "Progress",
    "ProgressArg",
    "SilentView",
    "Snapshot",
    "View",
    "in_notebook",
    "use_notebook_view",
    "progress_for",
]
