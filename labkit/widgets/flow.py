"""The flow widget: a pipeline's four stages as boxes that change with each run, a live log tail and the run history."""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from labkit.named import ByName
from labkit.pipeline.runs import (
    FAILED,
    PASSED,
    ROLLED_BACK,
    RUNNING,
    SKIPPED,
    STAGES,
    WAITING,
    PipelineRun,
    Stage,
)
from labkit.widgets._redraw import Redraw

if TYPE_CHECKING:
    from labkit.pipeline.pipeline import Pipeline

#: Live updates are coalesced: at most one redraw per this many seconds.
DEFAULT_INTERVAL = 0.2
#: The log tail shows this many lines; the history this many runs.
TAIL_LINES = 14
HISTORY = 8
# Colour *and* a word for every status, so the state never depends on seeing colour.
_LOOK = {
    WAITING: ("#f6f8fa", "#57606a", "○"),
    RUNNING: ("#ddf4ff", "#0969da", "◐"),
    PASSED: ("#dafbe1", "#1a7f37", "✔"),
    FAILED: ("#ffebe9", "#cf222e", "✘"),
    ROLLED_BACK: ("#fff8c5", "#9a6700", "↩"),
    SKIPPED: ("#f6f8fa", "#8c959f", "–"),
}
_ACTIVE: ByName[Flow] = ByName()


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {int(value % 60)} s"


def _box(stage: Stage | None, name: str) -> str:
    status = stage.status if stage is not None else WAITING
    background, colour, mark = _LOOK.get(status, _LOOK[WAITING])
    took = _seconds(stage.seconds) if stage is not None else ""
    detail = html.escape(stage.detail) if stage is not None and stage.detail else "&nbsp;"
    return (
        f'<div style="border:2px solid {colour};background:{background};border-radius:8px;'
        f'padding:6px 10px;width:11em;min-height:5.2em;font-family:sans-serif">'
        f'<div style="font-weight:700;font-size:14px">{name}</div>'
        f'<div style="color:{colour};font-weight:700">{mark} {html.escape(status)}</div>'
        f'<div style="color:#57606a;font-size:12px">{took or "&nbsp;"}</div>'
        f'<div style="color:#57606a;font-size:11px;overflow:hidden;text-overflow:ellipsis;'
        f'white-space:nowrap" title="{detail}">{detail}</div></div>'
    )


def _header(run: PipelineRun | None) -> str:
    if run is None:
        return (
            '<p style="color:#57606a;margin:4px 0">No run yet: commit a change and '
            "<code>git push</code> it, and the stages below light up.</p>"
        )
    colour = _LOOK.get(run.status, _LOOK[RUNNING])[1]
    message = html.escape(run.message or "")
    return (
        f'<div style="margin:4px 0;font-family:sans-serif"><b>Run {run.id}</b> &middot; '
        f"commit <code>{run.short}</code> {message} &middot; "
        f'<span style="color:{colour};font-weight:700">{html.escape(run.status)}</span> '
        f"&middot; {_seconds(run.seconds)}"
        + (
            f' &middot; <span style="color:#57606a">{html.escape(run.reason)}</span>'
            if run.reason
            else ""
        )
        + "</div>"
    )


def _tail(run: PipelineRun | None, lines: int) -> str:
    if run is None:
        return ""
    out = []
    for stage in run.stages:
        out += [f"{stage.name:8} {line}" for line in stage.log.splitlines()]
    text = "\n".join(out[-lines:]) or "(no log lines yet)"
    return (
        '<pre style="max-height:16em;overflow:auto;background:#f6f8fa;padding:6px;'
        f'font-size:12px;margin:4px 0">{html.escape(text)}</pre>'
    )


def _timeline(run: PipelineRun) -> str:
    """One bar per run: a segment per stage, as wide as the stage took, in its status colour."""
    total = max(run.seconds, 0.001)
    parts = []
    for stage in run.stages:
        if stage.seconds is None:
            continue
        width = max(2.0, 100.0 * stage.seconds / total)
        colour = _LOOK.get(stage.status, _LOOK[WAITING])[1]
        parts.append(
            f'<span title="{stage.name}: {stage.status}, {_seconds(stage.seconds)}" '
            f'style="display:inline-block;height:10px;width:{width:.0f}%;'
            f'background:{colour};opacity:0.75;margin-right:1px"></span>'
        )
    return f'<div style="width:14em;white-space:nowrap;overflow:hidden">{"".join(parts)}</div>'


def _history(runs: list[PipelineRun]) -> str:
    if not runs:
        return ""
    head = "".join(
        f'<th style="text-align:left;padding:2px 8px">{h}</th>'
        for h in ("run", "commit", "message", "status", *STAGES, "took", "timeline")
    )
    rows = []
    for run in runs:
        colour = _LOOK.get(run.status, _LOOK[RUNNING])[1]
        cells = [
            str(run.id),
            f"<code>{run.short}</code>",
            html.escape(run.message[:40]),
            f'<b style="color:{colour}">{html.escape(run.status)}</b>',
        ]
        for stage in run.stages:
            look = _LOOK.get(stage.status, _LOOK[WAITING])
            cells.append(
                f'<span style="color:{look[1]}">{look[2]} {html.escape(stage.status)}</span>'
            )
        cells += [_seconds(run.seconds), _timeline(run)]
        rows.append(
            "<tr>" + "".join(f'<td style="padding:2px 8px">{c}</td>' for c in cells) + "</tr>"
        )
    return (
        '<details open><summary>Run history</summary><table style="border-collapse:collapse;'
        f'font-size:12px"><thead style="background:#f6f8fa"><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


class Flow:
    """A live view of a :class:`~labkit.Pipeline`: build -> ship -> deploy -> monitor.

    Each stage is a box whose colour *and* words show its status (waiting, running, passed,
    failed, rolled back, skipped) and how long it took; above them the run and its commit,
    below them the newest log lines and the history of runs with a timeline bar each. It
    updates by itself while runs progress. One flow per pipeline: a new one stops the old.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        interval: float = DEFAULT_INTERVAL,
        tail: int = TAIL_LINES,
        history: int = HISTORY,
    ) -> None:
        self.pipeline = pipeline
        self.interval, self.tail_lines, self.history_size = interval, tail, history
        self._redraw = Redraw(self._render, interval, after=self._keep_ticking)
        self._render_lock = threading.RLock()
        self.header = widgets.HTML()
        self.boxes = {name: widgets.HTML() for name in STAGES}
        arrows = [
            widgets.HTML('<div style="font-size:22px;padding:1.2em 4px 0">→</div>')
            for _ in STAGES[1:]
        ]
        row: list[widgets.Widget] = []
        for i, name in enumerate(STAGES):
            row.append(self.boxes[name])
            if i < len(arrows):
                row.append(arrows[i])
        self.log_view = widgets.HTML()
        self.history_view = widgets.HTML()
        self.view = widgets.VBox([self.header, widgets.HBox(row), self.log_view, self.history_view])
        _ACTIVE.stop_other(pipeline.name, self)
        _ACTIVE.hold(pipeline.name, self)
        self._unsubscribe = pipeline.runs.subscribe(self._changed)
        self.refresh()

    # --- what it shows ------------------------------------------------------------------------
    @property
    def run(self) -> PipelineRun | None:
        """The run the boxes show: the newest one."""
        return self.pipeline.latest()

    def text(self) -> str:
        """The boxes in words, without ids or times (stable from one run of a notebook to the next)."""
        run = self.run
        if run is None:
            return "no run yet: " + " -> ".join(f"[{name}: waiting]" for name in STAGES)
        boxes = " -> ".join(f"[{s.name}: {s.status}]" for s in run.stages)
        return f"run {run.id} {run.status}: {boxes}"

    def refresh(self) -> None:
        """Redraw now (live updates do this by themselves)."""
        self._redraw.now()

    def stop(self) -> None:
        """Stop following the pipeline (idempotent); the view shows its last state."""
        self._unsubscribe()
        if not self._redraw.stopped:
            self._redraw.now()  # a redraw still waiting would otherwise be dropped
        self._redraw.stop()
        _ACTIVE.release(self.pipeline.name, self)

    @property
    def stopped(self) -> bool:
        return self._redraw.stopped

    def __repr__(self) -> str:
        state = "stopped" if self._redraw.stopped else "live"
        return f"<Flow of pipeline {self.pipeline.name!r}: {' -> '.join(STAGES)}, {state}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.view._repr_mimebundle_(**kwargs)
        # What the view shows as it is displayed, in words: a notebook's saved output that
        # nbval compares (the widget itself it cannot).
        bundle["text/plain"] = f"{self!r}\n{self.text()}"
        return bundle

    # --- live updates (called from the pipeline's threads) ------------------------------------
    def _changed(self, run_id: int) -> None:
        self._redraw.request()

    def _keep_ticking(self) -> None:
        # A running stage's clock keeps moving: redraw again while anything runs.
        run = self.run
        if run is not None and run.status == RUNNING:
            self._redraw.request()

    def _render(self) -> None:
        with self._render_lock:
            runs = self.pipeline.history(self.history_size)
            run = runs[0] if runs else None
            if self._redraw.stopped:
                return
            self.header.value = _header(run)
            for name in STAGES:
                stage = run.stage(name) if run is not None else None
                self.boxes[name].value = _box(stage, name)
            self.log_view.value = _tail(run, self.tail_lines)
            self.history_view.value = _history(runs)


def flow(pipeline: Pipeline, **options: Any) -> Flow:
    """A live :class:`Flow` of ``pipeline`` (display it as a cell's last line)."""
    return Flow(pipeline, **options)


__all__ = ["Flow", "flow"]
