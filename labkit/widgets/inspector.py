"""The event inspector: a live table of a receiver's deliveries, one in detail, and replay."""

from __future__ import annotations

import html
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import ipywidgets as widgets

from labkit.errors import LabkitError
from labkit.named import ByName
from labkit.webhooks import signing
from labkit.webhooks.store import ACCEPTED, DUPLICATE, REJECTED, Delivery, redacted
from labkit.webhooks.verify import SOURCES
from labkit.widgets._redraw import Redraw

if TYPE_CHECKING:
    from labkit.webhooks.receiver import Receiver

#: The table shows at most this many deliveries (newest first), so it stays fast.
DEFAULT_LIMIT = 200
#: Live updates are coalesced: at most one redraw per this many seconds.
DEFAULT_INTERVAL = 0.25
#: The keys of every row :meth:`Inspector.rows` returns.
ROW_KEYS = ("seq", "time", "source", "event", "id", "verified", "status", "reason", "handled")
#: Columns of :meth:`Inspector.text` when none are given (no times: they change every run).
TEXT_COLUMNS = ("seq", "source", "event", "verified", "status", "reason")

# Headers that describe one HTTP connection rather than the delivery; httpx sets its own.
_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "accept-encoding",
        "transfer-encoding",
        "keep-alive",
        "te",
        "upgrade",
    }
)
_STATUS_COLOURS = {ACCEPTED: "#1a7f37", DUPLICATE: "#9a6700", REJECTED: "#cf222e"}
_MAX_BODY_SHOWN = 20_000
_NEWEST = 0  # the picker's "follow the newest delivery" entry; real seqs start at 1

# One inspector per receiver name: re-running the cell that creates one replaces the old one.
_ACTIVE: ByName[Inspector] = ByName()


@dataclass(frozen=True)
class Replay:
    """What happened when a stored delivery was sent to the receiver again."""

    of_seq: int | None
    http_status: int | None
    status: str
    seq: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300

    def __str__(self) -> str:
        if self.http_status is None:
            return f"Replay not sent: {self.detail}"
        row = f", new row #{self.seq}" if self.seq is not None else ""
        why = f" ({self.detail})" if self.detail else ""
        return f"Replayed #{self.of_seq}: HTTP {self.http_status}, {self.status}{row}{why}"

    def __repr__(self) -> str:
        return f"<{self}>"


def _time(received_at: str) -> str:
    """``HH:MM:SS`` of an ISO timestamp (UTC, as the log stores it)."""
    _, _, clock = received_at.partition("T")
    return clock[:8] or received_at


def _row(d: Delivery) -> dict[str, Any]:
    return {
        "seq": d.seq,
        "time": _time(d.received_at),
        "source": d.source,
        "event": d.event or "",
        "id": d.id or "",
        "verified": d.verified,
        "status": d.status,
        "reason": d.reason,
        "handled": d.handled,
    }


def _pretty_body(d: Delivery) -> str:
    payload = d.payload
    if payload is not None:
        text = json.dumps(payload, indent=2, ensure_ascii=False)
    else:
        text = d.body.decode("utf-8", errors="replace")
    if len(text) > _MAX_BODY_SHOWN:
        text = text[:_MAX_BODY_SHOWN] + f"\n... ({len(text) - _MAX_BODY_SHOWN} more characters)"
    return text


def _badge(status: str) -> str:
    colour = _STATUS_COLOURS.get(status, "#57606a")
    return f'<span style="color:{colour};font-weight:600">{html.escape(status)}</span>'


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return (
            '<p style="color:#57606a;margin:4px 0">No deliveries yet. Send one and it '
            "appears here.</p>"
        )
    head = "".join(
        f'<th style="text-align:left;padding:2px 8px">{h}</th>'
        for h in (
            "#",
            "time (UTC)",
            "source",
            "event",
            "delivery id",
            "verified",
            "status",
            "handlers",
            "reason",
        )
    )
    body = []
    for r in rows:
        short_id = r["id"] if len(r["id"]) <= 14 else r["id"][:12] + "…"
        verified = "✔ yes" if r["verified"] else "✘ no"
        cells = (str(r["seq"]), r["time"], r["source"], r["event"], short_id, verified)
        tds = "".join(f'<td style="padding:2px 8px">{html.escape(c)}</td>' for c in cells)
        tds += f'<td style="padding:2px 8px">{_badge(r["status"])}</td>'
        tds += f'<td style="padding:2px 8px">{html.escape(r["handled"])}</td>'
        tds += (
            f'<td style="padding:2px 8px;max-width:32em;overflow:hidden;'
            f'text-overflow:ellipsis;white-space:nowrap" title="{html.escape(r["reason"])}">'
            f"{html.escape(r['reason'])}</td>"
        )
        body.append(f"<tr>{tds}</tr>")
    return (
        '<div style="max-height:22em;overflow-y:auto;border:1px solid #d0d7de">'
        '<table style="border-collapse:collapse;font-family:monospace;font-size:12px;'
        f'width:100%"><thead style="background:#f6f8fa"><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


#: The sources whose senders sign the body, so a rejection can be explained byte by byte.
_SIGNED_SOURCES = ("github", "standard")


def explain_rejection(d: Delivery, secrets: dict[str, list[str]]) -> signing.Explanation | None:
    """Why the receiver's secret for ``d.source`` does or does not match a rejected delivery.

    ``None`` for deliveries that were not rejected, or whose source does not sign (tokens).
    """
    if d.status != REJECTED or d.source not in _SIGNED_SOURCES or not secrets.get(d.source):
        return None
    return signing.explain(list(secrets[d.source]), d.body, d.headers)


def _detail_html(d: Delivery | None, why: signing.Explanation | None = None) -> str:
    if d is None:
        return ""
    facts = (
        f"<b>#{d.seq}</b> {html.escape(d.source)} / {html.escape(d.event or '?')} &middot; "
        f"{_badge(d.status)} &middot; verified: {'yes' if d.verified else 'no'} &middot; "
        f"id <code>{html.escape(d.id or '-')}</code> &middot; {d.size} bytes"
    )
    if d.reason:
        facts += f"<br>reason: {html.escape(d.reason)}"
    if d.handler_error:
        facts += f"<br>handler error: {html.escape(d.handler_error)}"
    if why is not None:
        facts += (
            f'<br>signature: <b>{html.escape(why.cause)}</b><pre style="white-space:'
            f'pre-wrap;margin:2px 0">{html.escape(str(why))}</pre>'
        )
    headers = "\n".join(f"{k}: {v}" for k, v in sorted(redacted(d.headers).items()))
    pre = (
        'style="max-height:18em;overflow:auto;background:#f6f8fa;padding:6px;'
        'font-size:12px;margin:4px 0"'
    )
    return (
        f"<div>{facts}</div><details open><summary>Headers</summary><pre {pre}>"
        f"{html.escape(headers)}</pre></details><details open><summary>Body</summary>"
        f"<pre {pre}>{html.escape(_pretty_body(d))}</pre></details>"
    )


def _label(d: Delivery) -> str:
    return f"#{d.seq} {d.source}/{d.event or '?'} {d.status}"


class Inspector:
    """A live view of what a :class:`~labkit.Receiver` received.

    Shows a table of the newest deliveries (updated while events arrive), one delivery in
    detail (headers and pretty-printed body), a source filter and a *Replay* button that sends
    the selected delivery again, byte for byte, so the receiver can show what it does with a
    repeat. Create it in a notebook cell and leave it as the cell's last line to display it.

    Creating a second inspector for the same receiver name stops the first, so re-running the
    cell never leaves two views subscribed.
    """

    def __init__(
        self,
        receiver: Receiver,
        *,
        limit: int = DEFAULT_LIMIT,
        source: str | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        if not hasattr(receiver, "log") or not hasattr(receiver, "hook_url"):
            raise TypeError(
                "Inspector needs a labkit Receiver: rx = labkit.Receiver().start(), "
                "then labkit.inspect(rx)."
            )
        if source and source not in SOURCES:
            raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)}.")
        self.receiver = receiver
        self.limit = max(1, int(limit))
        self.interval = interval
        self._rows: list[dict[str, Any]] = []
        self._selected: int | None = None
        self._syncing = False
        self._redraw = Redraw(self._render, interval)
        self._render_lock = threading.RLock()

        self.filter = widgets.ToggleButtons(
            options=[("all", ""), *[(s, s) for s in SOURCES]],
            value=source or "",
            description="Source",
            style={"button_width": "auto"},
        )
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.picker = widgets.Dropdown(
            options=[("newest", _NEWEST)],
            value=_NEWEST,
            description="Delivery",
            layout=widgets.Layout(width="28em"),
        )
        self.replay_button = widgets.Button(
            description="Replay",
            icon="repeat",
            tooltip="Send the selected delivery again, unchanged",
        )
        self.status = widgets.HTML()
        self.detail_view = widgets.HTML()
        self.view = widgets.VBox(
            [
                self.filter,
                self.summary,
                self.table,
                widgets.HBox([self.picker, self.replay_button, self.status]),
                self.detail_view,
            ]
        )
        self.filter.observe(self._on_filter, names="value")
        self.picker.observe(self._on_pick, names="value")
        self.replay_button.on_click(self._on_replay_click)

        old = _ACTIVE.get(receiver.name)
        if old is not None and old is not self:
            old.stop(reason="replaced by a newer inspector")
        _ACTIVE.hold(receiver.name, self)
        self._unsubscribe = receiver.log.subscribe(self._on_delivery)
        self.refresh()

    # --- what the table shows ---------------------------------------------------------------
    @property
    def source(self) -> str | None:
        """The source filter (``None`` shows every source)."""
        return self.filter.value or None

    @source.setter
    def source(self, value: str | None) -> None:
        if value and value not in SOURCES:
            raise ValueError(f"Unknown source {value!r}; use one of {', '.join(SOURCES)}.")
        self.filter.value = value or ""

    def rows(self) -> list[dict[str, Any]]:
        """The rows the table shows now, newest first (call :meth:`refresh` to redraw first)."""
        with self._render_lock:
            return [dict(r) for r in self._rows]

    def explain(self, seq: int | None = None) -> signing.Explanation | None:
        """Why delivery ``seq`` (default: the selected one) was rejected, if a signature is why.

        ``None`` when it was not rejected or its source authenticates with a token.
        """
        target = self.receiver.log.by_seq(seq) if seq is not None else self.selected
        if target is None:
            return None
        return explain_rejection(target, self.receiver.settings.secrets)

    def text(self, columns: tuple[str, ...] = TEXT_COLUMNS) -> str:
        """The table as plain text, oldest first, redrawn first so it is up to date."""
        unknown = [c for c in columns if c not in ROW_KEYS]
        if unknown:
            raise ValueError(
                f"No column {', '.join(map(repr, unknown))}; the columns are {', '.join(ROW_KEYS)}."
            )
        self.refresh()
        rows = list(reversed(self.rows()))
        if not rows:
            return "(no deliveries)"

        def cell(row: dict[str, Any], key: str) -> str:
            value = row[key]
            return ("yes" if value else "no") if key == "verified" else str(value)

        widths = {c: max(len(c), *(len(cell(r, c)) for r in rows)) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
        lines += ["  ".join(cell(r, c).ljust(widths[c]) for c in columns).rstrip() for r in rows]
        return "\n".join(lines)

    def refresh(self) -> None:
        """Redraw now from the receiver's log (live updates do this by themselves)."""
        self._redraw.now()

    # --- one delivery in detail -------------------------------------------------------------
    @property
    def selected(self) -> Delivery | None:
        """The delivery the detail view shows: the chosen one, else the newest in the filter."""
        if self._selected is not None:
            return self.receiver.log.by_seq(self._selected)
        # Ask the log, not the last redraw: a delivery may have arrived since.
        newest = self.receiver.log.latest(1, source=self.source)
        return newest[0] if newest else None

    def select(self, seq: int | None) -> None:
        """Show delivery ``seq`` in detail (``None``: follow the newest)."""
        if seq is not None and self.receiver.log.by_seq(seq) is None:
            raise ValueError(
                f"The receiver has no delivery #{seq}; the table's first column "
                "lists the numbers there are."
            )
        self._selected = seq
        self._render()

    # --- replay -----------------------------------------------------------------------------
    def replay(self, seq: int | None = None) -> Replay:
        """Send delivery ``seq`` (default: the selected one) to the receiver again, unchanged.

        The same headers and body go out, so a receiver that dedupes answers ``duplicate``.
        """
        target = self.receiver.log.by_seq(seq) if seq is not None else self.selected
        if target is None:
            what = f"no delivery #{seq}" if seq is not None else "no delivery to replay yet"
            result = Replay(seq, None, "not sent", detail=f"{what}: send one first.")
        else:
            result = self._send_again(target)
        self.status.value = html.escape(str(result))
        self.refresh()
        return result

    def _send_again(self, d: Delivery) -> Replay:
        headers = {k: v for k, v in d.headers.items() if k.lower() not in _HOP_HEADERS}
        try:
            url = self.receiver.hook_url(d.source)
            with httpx.Client(timeout=10.0, trust_env=False, follow_redirects=False) as client:
                response = client.post(url, content=d.body, headers=headers)
        except LabkitError as exc:
            return Replay(d.seq, None, "not sent", detail=str(exc))
        except httpx.HTTPError as exc:
            return Replay(
                d.seq,
                None,
                "not sent",
                detail=f"{type(exc).__name__}: {exc}. Is the receiver running?",
            )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        return Replay(
            d.seq,
            response.status_code,
            str(answer.get("status", "?")),
            seq=answer.get("seq"),
            detail=str(answer.get("detail", "")),
        )

    # --- lifecycle --------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Stop following the receiver (idempotent); the view keeps its last state."""
        self._redraw.stop()
        self._unsubscribe()
        _ACTIVE.release(self.receiver.name, self)
        with self._render_lock:
            self.replay_button.disabled = True
            self.summary.value = (
                f'<span style="color:#57606a">This inspector no longer updates '
                f"({html.escape(reason)}).</span>"
            )

    @property
    def stopped(self) -> bool:
        return self._redraw.stopped

    # --- display ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        state = "stopped" if self._redraw.stopped else f"newest {self.limit} deliveries"
        return (
            f"<Inspector of receiver {self.receiver.name!r}: {state}, "
            f"source: {self.source or 'all'}>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.view._repr_mimebundle_(**kwargs)
        # What the view shows as it is displayed, in words: a notebook's saved output that
        # nbval compares (the widget itself it cannot).
        bundle["text/plain"] = f"{self!r}\n{self.text()}"
        return bundle

    # --- internals --------------------------------------------------------------------------
    def _on_delivery(self, delivery: Delivery) -> None:
        # Called in the receiver's threads: schedule one coalesced redraw and return at once.
        self._redraw.request()

    def _render(self) -> None:
        with self._render_lock:
            log = self.receiver.log
            shown = log.latest(self.limit, source=self.source)
            total = log.count()
            self._rows = [_row(d) for d in shown]
            options = [("newest (follows new deliveries)", _NEWEST)]
            options += [(_label(d), d.seq) for d in shown]
            chosen = self._selected
            if chosen is not None and chosen not in {d.seq for d in shown}:
                extra = log.by_seq(chosen)
                if extra is None:
                    chosen = self._selected = None
                else:
                    options.insert(1, (_label(extra), extra.seq))
            detail = log.by_seq(chosen) if chosen is not None else (shown[0] if shown else None)
            if self._redraw.stopped:
                return
            counts = {
                s: sum(1 for r in self._rows if r["status"] == s)
                for s in (ACCEPTED, DUPLICATE, REJECTED)
            }
            scope = f"{self.source} " if self.source else ""
            summary = (
                f"{total} deliveries in the log; showing the newest {len(shown)} "
                f"{scope}(at most {self.limit}): "
                + ", ".join(f"{n} {_badge(s)}" for s, n in counts.items())
            )
            self.summary.value = summary
            self.table.value = _table_html(self._rows)
            wanted = chosen if chosen is not None else _NEWEST
            new_options = tuple(options) != tuple(self.picker.options)
            if new_options or self.picker.value != wanted:
                self._syncing = True
                try:
                    with self.picker.hold_sync():
                        if new_options:
                            self.picker.options = options
                        self.picker.value = wanted
                finally:
                    self._syncing = False
            why = (
                explain_rejection(detail, self.receiver.settings.secrets)
                if detail is not None
                else None
            )
            self.detail_view.value = _detail_html(detail, why)

    def _on_filter(self, change: dict[str, Any]) -> None:
        self._render()

    def _on_pick(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self._selected = change["new"] or None
        self._render()

    def _on_replay_click(self, button: widgets.Button) -> None:
        try:
            self.replay()
        except Exception as exc:  # noqa: BLE001 - a click must explain, not raise into the void
            self.status.value = html.escape(f"Replay failed: {type(exc).__name__}: {exc}")


def inspect(receiver: Receiver, **options: Any) -> Inspector:
    """A live :class:`Inspector` of ``receiver`` (display it as a cell's last line)."""
    return Inspector(receiver, **options)
