"""Alertmanager ``webhook_config`` notifications (version 4), as Alertmanager 0.25 POSTs them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from labkit.webhooks.events._base import Event, go_json_body, ids, rfc3339_nano

__all__ = ["STATUSES", "ZERO_TIME", "alert", "delivery_key", "fingerprint", "group_key"]

PATH = "/hooks/alertmanager"
STATUSES = ("firing", "resolved")
#: ``endsAt`` of a firing alert: Go's zero ``time.Time``.
ZERO_TIME = "0001-01-01T00:00:00Z"
VERSION = "0.25.0"

_HEADERS = {"Content-Type": "application/json", "User-Agent": f"Alertmanager/{VERSION}"}
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """The alert fingerprint Alertmanager reports: FNV-1a 64 over the sorted labels, 16 hex digits.

    The same labels always give the same fingerprint, so the ``resolved`` notification of an
    alert carries the fingerprint of its ``firing`` one (prometheus/common ``LabelSet.Fingerprint``).
    """
    value = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (
            name.encode(),
            bytes([_SEPARATOR]),
            labels[name].encode(),
            bytes([_SEPARATOR]),
        ):
            for byte in chunk:
                value ^= byte
                value = (value * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def _label_set(labels: Mapping[str, str]) -> str:
    """Prometheus ``LabelSet.String()``: ``{a="1", b="2"}``, sorted."""
    return "{" + ", ".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def group_key(group_labels: Mapping[str, str], route: str = "{}") -> str:
    """``<route key>:<group labels>``, e.g. ``{}:{alertname="WebDown"}`` for the root route."""
    return f"{route}:{_label_set(group_labels)}"


def delivery_key(payload: Mapping[str, Any]) -> str:
    """A delivery id derived from a notification's content (Alertmanager sends none).

    sha256 over ``groupKey``, ``status`` and each alert's fingerprint, ``startsAt`` and
    ``endsAt``; the first 32 hex digits. A retry of the same notification gets the same key; a
    receiver can compute it from the body it got.
    """
    parts = [str(payload.get("groupKey", "")), str(payload.get("status", ""))]
    for item in sorted(
        f"{a.get('fingerprint', '')}@{a.get('startsAt', '')}@{a.get('endsAt', '')}"
        for a in payload.get("alerts", [])
    ):
        parts.append(item)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def alert(
    status: str = "firing",
    alertname: str = "WebDown",
    service: str = "web",
    severity: str = "critical",
    summary: str | None = None,
    *,
    description: str | None = None,
    instance: str = "pipeline-web-1:8000",
    job: str | None = None,
    receiver: str = "labkit",
    starts_at: datetime | None = None,
    external_url: str = "http://alertmanager:9093",
    alerts: Sequence[Mapping[str, Any]] | None = None,
) -> Event:
    """One Alertmanager notification for a group of one alert (or of ``alerts``, given raw).

    ``firing``: ``endsAt`` is ``0001-01-01T00:00:00Z``. ``resolved``: ``endsAt`` is now and
    ``startsAt`` a few minutes before (or ``starts_at``, to pair it with a firing one). The
    group is by ``alertname``. ``delivery_id`` is :func:`delivery_key` of the payload.
    """
    if status not in STATUSES:
        raise ValueError(f"Alertmanager status must be 'firing' or 'resolved', not {status!r}.")
    now = ids().now()
    job = job or service
    labels = {
        "alertname": alertname,
        "instance": instance,
        "job": job,
        "service": service,
        "severity": severity,
    }
    annotations = {
        "description": description
        or f"{instance} of job {job} has not answered its health check for 1 minute.",
        "summary": summary or f"{service} is down",
    }
    if alerts is None:
        started = starts_at or (now - timedelta(minutes=1 if status == "firing" else 6))
        expr = f'up{{job="{job}"}} == 0'
        item: dict[str, Any] = {
            "status": status,
            "labels": dict(sorted(labels.items())),
            "annotations": dict(sorted(annotations.items())),
            "startsAt": rfc3339_nano(started, ids().number(0, 999_999_999)),
            "endsAt": ZERO_TIME
            if status == "firing"
            else rfc3339_nano(now, ids().number(0, 999_999_999)),
            "generatorURL": f"http://prometheus:9090/graph?g0.expr={quote_plus(expr)}&g0.tab=1",
            "fingerprint": fingerprint(labels),
        }
        items: list[dict[str, Any]] = [item]
    else:
        items = [dict(a) for a in alerts]
        if not items:
            raise ValueError("A notification carries at least one alert.")
    all_labels = [dict(a.get("labels", {})) for a in items]
    all_annotations = [dict(a.get("annotations", {})) for a in items]
    group_labels = {"alertname": str(all_labels[0].get("alertname", alertname))}
    payload: dict[str, Any] = {
        "receiver": receiver,
        "status": status,
        "alerts": items,
        "groupLabels": group_labels,
        "commonLabels": _common(all_labels),
        "commonAnnotations": _common(all_annotations),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key(group_labels),
        "truncatedAlerts": 0,
    }
    return Event(
        source="alertmanager",
        name=status,
        delivery_id=delivery_key(payload),
        body=go_json_body(payload, newline=True),
        headers=dict(_HEADERS),
        path=PATH,
    )


def _common(sets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The pairs every set shares, sorted like Go marshals a map."""
    first = sets[0]
    return {k: first[k] for k in sorted(first) if all(s.get(k) == first[k] for s in sets[1:])}
