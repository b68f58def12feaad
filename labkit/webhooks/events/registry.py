"""Distribution (Docker) registry notifications: the ``{"events": [...]}`` envelopes a registry POSTs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.webhooks.events._base import Event, go_json_body, ids, rfc3339_nano

__all__ = [
    "ACTIONS",
    "BLOB_MEDIA_TYPE",
    "CONTENT_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "OCI_MANIFEST_MEDIA_TYPE",
    "envelope",
    "image_push",
    "notification",
]

PATH = "/hooks/registry"
#: The envelope media type of distribution 2.x (Debian bookworm's docker-registry 2.8.2).
#: Distribution v3 sends ``application/vnd.docker.distribution.events.v2+json``.
CONTENT_TYPE = "application/vnd.docker.distribution.events.v1+json"
ACTIONS = ("push", "pull", "delete", "mount")
#: Docker's classic image manifest (what ``docker push`` with the classic image store sends).
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
#: What the registry reports for every blob (layers and image config alike).
BLOB_MEDIA_TYPE = "application/octet-stream"

_MANIFEST_TYPES = (
    MANIFEST_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_DOCKER_UA = (
    "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0-18-amd64 os/linux arch/amd64 "
    "UpstreamClient(Docker-Client/24.0.7 \\(linux\\))"
)
_HEADERS = {"Content-Type": CONTENT_TYPE, "User-Agent": "Go-http-client/1.1"}


@dataclass(frozen=True)
class _Context:
    """What stays the same across one client session: the registry node and the client."""

    host: str
    source_addr: str
    instance_id: str
    client_addr: str
    useragent: str
    actor: str | None


def _context(host: str, actor: str | None, useragent: str) -> _Context:
    port = host.rpartition(":")[2] if ":" in host else "5000"
    return _Context(
        host=host,
        source_addr=f"{ids().hex(12)}:{port}",
        instance_id=ids().guid(),
        client_addr=f"172.18.0.1:{ids().number(32768, 60999)}",
        useragent=useragent,
        actor=actor,
    )


def _digest() -> str:
    return "sha256:" + ids().hex(64)


def _record(
    ctx: _Context,
    action: str,
    method: str,
    target: dict[str, Any],
) -> dict[str, Any]:
    """One event, keys in the order distribution's ``Event`` struct marshals them."""
    at = ids().now()
    return {
        "id": ids().guid(),
        "timestamp": rfc3339_nano(at, ids().number(0, 999_999_999)),
        "action": action,
        "target": target,
        "request": {
            "id": ids().guid(),
            "addr": ctx.client_addr,
            "host": ctx.host,
            "method": method,
            "useragent": ctx.useragent,
        },
        "actor": {"name": ctx.actor} if ctx.actor else {},
        "source": {"addr": ctx.source_addr, "instanceID": ctx.instance_id},
    }


def _target(
    ctx: _Context,
    repo: str,
    *,
    media_type: str | None,
    digest: str | None,
    size: int | None,
    tag: str | None = None,
    from_repo: str | None = None,
) -> dict[str, Any]:
    """``target`` with distribution's field order and ``omitempty`` behaviour."""
    out: dict[str, Any] = {}
    if media_type:
        out["mediaType"] = media_type
    if size:
        out["size"] = size
    if digest:
        out["digest"] = digest
    if size:
        out["length"] = size
    out["repository"] = repo
    if from_repo:
        out["fromRepository"] = from_repo
    if media_type and digest:
        kind = "manifests" if media_type in _MANIFEST_TYPES else "blobs"
        out["url"] = f"http://{ctx.host}/v2/{repo}/{kind}/{digest}"
    if tag:
        out["tag"] = tag
    return out


def envelope(events: Sequence[Mapping[str, Any]], *, delivery_id: str | None = None) -> Event:
    """One POST carrying ``events`` as the registry serialises it (``json.MarshalIndent``, 3 spaces).

    ``name`` is the first event's action and ``delivery_id`` its ``id``.
    """
    if not events:
        raise ValueError("A registry notification carries at least one event.")
    first = events[0]
    return Event(
        source="registry",
        name=str(first.get("action", "push")),
        delivery_id=delivery_id if delivery_id is not None else str(first.get("id", "")),
        body=go_json_body({"events": [dict(e) for e in events]}, indent=3),
        headers=dict(_HEADERS),
        path=PATH,
    )


def notification(
    action: str = "push",
    repo: str = "hello-app",
    tag: str | None = "v1",
    digest: str | None = None,
    media_type: str = MANIFEST_MEDIA_TYPE,
    events: Sequence[Mapping[str, Any]] | None = None,
    *,
    size: int | None = None,
    from_repo: str = "library/python",
    actor: str | None = None,
    host: str = "registry:5000",
    useragent: str = _DOCKER_UA,
) -> Event:
    """One registry notification: a single event, as distribution 2.x sends one per POST.

    ``push``/``pull``: a manifest event (``tag`` set) or, with ``media_type=BLOB_MEDIA_TYPE``,
    a blob event. ``delete``: a manifest delete (``target{digest, repository}``) when
    ``digest`` is given, else a tag delete (``target{repository, tag}``). ``mount``: a blob
    mounted ``from_repo``. ``actor`` is the authenticated user (``{}`` when anonymous).
    ``events``: ready-made event dicts to wrap instead (e.g. several in one envelope).
    """
    if events is not None:
        return envelope(events)
    if action not in ACTIONS:
        raise ValueError(f"Registry action must be one of {', '.join(ACTIONS)}, not {action!r}.")
    ctx = _context(host, actor, useragent)
    if action == "delete":
        target = _target(
            ctx,
            repo,
            media_type=None,
            digest=digest,
            size=None,
            tag=None if digest else (tag or "latest"),
        )
        record = _record(ctx, "delete", "DELETE", target)
    elif action == "mount":
        target = _target(
            ctx,
            repo,
            media_type=BLOB_MEDIA_TYPE,
            digest=digest or _digest(),
            size=size or ids().number(1_000_000, 30_000_000),
            from_repo=from_repo,
        )
        record = _record(ctx, "mount", "POST", target)
    else:
        is_blob = media_type not in _MANIFEST_TYPES
        target = _target(
            ctx,
            repo,
            media_type=media_type,
            digest=digest or _digest(),
            size=size
            or (ids().number(1_000_000, 30_000_000) if is_blob else ids().number(500, 2_000)),
            tag=None if is_blob else tag,
        )
        method = "PUT" if action == "push" else "GET"
        record = _record(ctx, action, method, target)
    return envelope([record])


def image_push(
    repo: str = "hello-app",
    tag: str = "v1",
    *,
    layers: int = 3,
    media_type: str = MANIFEST_MEDIA_TYPE,
    actor: str | None = None,
    host: str = "registry:5000",
    batched: bool = False,
) -> list[Event]:
    """What a registry sends for one ``docker push``: a blob push per layer, one for the image
    config, then one manifest push carrying the tag.

    Distribution 2.x POSTs each event on its own (one event per envelope, delivery order not
    guaranteed), so this returns one :class:`Event` per POST; ``batched=True`` returns a
    single envelope holding them all (handy to test a receiver that loops over ``events``).
    """
    if layers < 1:
        raise ValueError("An image has at least one layer.")
    ctx = _context(host, actor, _DOCKER_UA)
    records: list[dict[str, Any]] = []
    for _ in range(layers + 1):  # the layers, then the image config blob
        target = _target(
            ctx,
            repo,
            media_type=BLOB_MEDIA_TYPE,
            digest=_digest(),
            size=ids().number(1_000, 30_000_000),
        )
        records.append(_record(ctx, "push", "PUT", target))
    manifest = _target(
        ctx, repo, media_type=media_type, digest=_digest(), size=ids().number(500, 2_000), tag=tag
    )
    records.append(_record(ctx, "push", "PUT", manifest))
    if batched:
        return [envelope(records)]
    return [envelope([r]) for r in records]
