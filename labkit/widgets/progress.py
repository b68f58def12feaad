"""Progress as an ipywidgets bar in the notebook: the notebook view of :mod:`labkit.progress`.

``import labkit`` in a kernel registers :func:`shown` with :func:`labkit.progress.use_notebook_view`,
so long work started from a notebook's main thread (image builds, stack start-up) shows this bar.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets
from IPython.display import display

from labkit.progress import WIDGET_INTERVAL, Snapshot, clock
from labkit.widgets._redraw import Redraw


class WidgetView:
    """An ipywidgets bar: ``IntProgress`` with a count, a label for what runs now, kept lines.

    The widgets are made (and shown, by :meth:`show`) in the caller's thread; later changes are
    coalesced redraws that only assign traits, so reports may come from any thread.
    """

    def __init__(self, title: str, total: int) -> None:
        self.bar = widgets.IntProgress(
            value=0,
            min=0,
            max=max(total, 1),
            description=title,
            bar_style="info",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="32em"),
        )
        self.count_label = widgets.Label(value=f"0/{total}")
        self.label = widgets.HTML(value="")
        self.lines = widgets.HTML(value="")
        self.view = widgets.VBox(
            [widgets.HBox([self.bar, self.count_label]), self.label, self.lines]
        )
        self._state = Snapshot(title, total)
        self._lock = threading.Lock()
        self._redraw = Redraw(self._render, WIDGET_INTERVAL)

    def show(self) -> None:
        """Display the bar in the running cell, as a widget view only.

        No ``text/plain`` goes with it: the bar is live state, not a result, so a notebook's
        stored outputs (which nbval compares as text) stay the same with or without it.
        """
        bundle = self.view._repr_mimebundle_()
        widget_only = {k: v for k, v in bundle.items() if k != "text/plain"}
        display(widget_only, raw=True)  # type: ignore[no-untyped-call]

    def line(self, state: Snapshot, text: str) -> None:
        self._later(state)

    def count(self, state: Snapshot) -> None:
        self._later(state)

    def status(self, state: Snapshot) -> None:
        self._later(state)

    def finish(self, state: Snapshot, text: str) -> None:
        self._redraw.stop()
        with self._lock:
            self._state = state
        self._render()

    def refresh(self) -> None:
        """Redraw now, in this thread (live updates do this by themselves)."""
        self._redraw.now()

    def _later(self, state: Snapshot) -> None:
        with self._lock:
            self._state = state
        self._redraw.request()

    def _render(self) -> None:
        with self._lock:
            s = self._state
        if s.finished:
            self.bar.bar_style = "success" if s.ok else "danger"
        self.bar.max = max(s.total, 1)
        self.bar.value = min(s.done, self.bar.max)
        word = ("done" if s.ok else "FAILED") if s.finished else ""
        self.count_label.value = "  ".join(
            p for p in (f"{s.done}/{s.total}", word, clock(s.seconds)) if p
        )
        colour = "#cf222e" if s.finished and not s.ok else "#24292f"
        self.label.value = (
            f'<span style="color:{colour}">{html.escape(s.status)}</span>' if s.status else ""
        )
        kept = "\n".join(html.escape(line) for line in s.lines)
        self.lines.value = (
            f'<div style="color:#57606a;font-family:monospace;font-size:12px;'
            f'line-height:1.4;white-space:pre">{kept}</div>'
            if kept
            else ""
        )


def shown(title: str, total: int) -> WidgetView:
    """A bar for ``total`` steps of ``title``, displayed in the running cell."""
    view = WidgetView(title, total)
    view.show()
    return view
