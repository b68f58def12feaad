"""A live table of a Compose stack: each container's service, replica, state, health and ports."""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from labkit.errors import LabkitError
from labkit.named import ByName
from labkit.runtime.stackstate import table

if TYPE_CHECKING:
    from labkit.runtime.compose import Stack

#: Seconds between two reads of the stack's state (one Docker API call per container).
DEFAULT_INTERVAL = 1.0

_HEALTH_COLOURS = {"healthy": "#1a7f37", "starting": "#9a6700", "unhealthy": "#cf222e"}
_STATE_COLOURS = {"running": "#1a7f37", "exited": "#cf222e", "dead": "#cf222e"}

# One view per stack: re-running the cell that makes one stops the old one first.
_ACTIVE: ByName[StackStatus] = ByName()


def render(rows: list[dict[str, Any]]) -> str:
    """``Stack.ps()`` rows as an HTML table, coloured by state and health."""
    if not rows:
        return '<span style="color:#57606a">No containers: the stack is down.</span>'
    head = "".join(
        f'<th style="text-align:left;padding:2px 10px">{h}</th>'
        for h in ("service", "replica", "state", "health", "ports")
    )
    body = []
    for r in rows:
        state_colour = _STATE_COLOURS.get(r["state"], "#57606a")
        health = r["health"] or "no healthcheck"
        health_colour = _HEALTH_COLOURS.get(r["health"], "#57606a")
        ports = ", ".join(r["ports"]) or "-"
        body.append(
            "<tr>"
            f'<td style="padding:2px 10px">{html.escape(r["service"])}</td>'
            f'<td style="padding:2px 10px">{r["replica"]}</td>'
            f'<td style="padding:2px 10px;color:{state_colour}">{html.escape(r["state"])}</td>'
            f'<td style="padding:2px 10px;color:{health_colour}">{html.escape(health)}</td>'
            f'<td style="padding:2px 10px;font-family:monospace">{html.escape(ports)}</td>'
            "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class StackStatus:
    """Shows a stack's containers and keeps the table current while the notebook runs.

    A background thread reads the state every ``interval`` seconds and only assigns the widget's
    value; the widget itself is made here, in the caller's (main) thread.
    """

    def __init__(
        self, stack: Stack, *, interval: float = DEFAULT_INTERVAL, live: bool = True
    ) -> None:
        _ACTIVE.stop_other(stack.project, self)
        self.stack = stack
        self.interval = interval
        self.title = widgets.HTML(
            f"<b>Stack {html.escape(stack.name)}</b> "
            f'<span style="color:#57606a">({html.escape(stack.project)})'
            "</span>"
        )
        self.table = widgets.HTML()
        self.note = widgets.HTML()
        self.view = widgets.VBox([self.title, self.table, self.note])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()
        if live:
            _ACTIVE.hold(stack.project, self)
            self._thread = threading.Thread(
                target=self._follow, name=f"status-{stack.project}", daemon=True
            )
            self._thread.start()

    def refresh(self) -> list[dict[str, Any]]:
        """Read the stack's state now and redraw; returns the rows."""
        try:
            rows = self.stack.ps()
        except LabkitError as exc:
            self.note.value = f'<span style="color:#cf222e">{html.escape(str(exc))}</span>'
            return []
        value = render(rows)
        if self.table.value != value:
            self.table.value = value
        if self.note.value and not self.stopped:
            self.note.value = ""
        return rows

    def stop(self) -> None:
        """Stop following the stack (idempotent); the table keeps its last state."""
        self._stop.set()
        _ACTIVE.release(self.stack.project, self)
        self.note.value = '<span style="color:#57606a">This view no longer updates.</span>'

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def text(self) -> str:
        """The stack's state in words, one line per service (see :func:`labkit.runtime.stackstate.table`)."""
        try:
            return table(self.stack)
        except LabkitError as exc:
            return f"(cannot read the stack: {exc})"

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else f"live, every {self.interval:g} s"
        return f"<StackStatus of {self.stack.name!r}: {state}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.view._repr_mimebundle_(**kwargs)
        # What the view shows as it is displayed, in words: a notebook's saved output that
        # nbval compares (the widget itself it cannot).
        bundle["text/plain"] = f"{self!r}\n{self.text()}"
        return bundle
