"""Docker Hub repository webhooks (the push notification) and the legacy callback a receiver posts back."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from labkit.webhooks.events._base import Event, ids, json_body

__all__ = ["CALLBACK_STATES", "callback", "push"]

PATH = "/hooks/dockerhub"
#: Where :func:`callback` is aimed when no ``callback_url`` is given (a lab route, not Hub's).
CALLBACK_PATH = "/hooks/dockerhub/callback"
#: The ``state`` values the callback accepts.
CALLBACK_STATES = ("success", "failure", "error")
#: Documented limits of the callback fields.
MAX_DESCRIPTION = 255
MAX_CONTEXT = 100

_HEADERS = {"Content-Type": "application/json"}


def push(
    repo: str = "octo-org/hello-app",
    tag: str = "latest",
    *,
    pusher: str = "octocat",
    callback_url: str | None = None,
    description: str = "",
    is_private: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """The POST Docker Hub sends after ``docker push REPO:TAG``.

    Hub sends no signature, no event header and no delivery id: ``delivery_id`` (a generated
    GUID unless given) lives only in the :class:`Event`, not on the wire. ``callback_url`` is
    Hub's per-delivery URL a receiver may POST a :func:`callback` to.
    """
    namespace, sep, name = repo.partition("/")
    if not sep:
        namespace, name = "library", repo
    if not name or "/" in name:
        raise ValueError(f"repo must look like 'namespace/name', not {repo!r}.")
    now = ids().now()
    guid = delivery_id if delivery_id is not None else ids().guid()
    if callback_url is None:
        callback_url = f"https://registry.hub.docker.com/u/{namespace}/{name}/hook/{ids().hex(40)}/"
    created = int(now.timestamp()) - 86_400 * (30 + ids().number(0, 300))
    payload: dict[str, Any] = {
        "callback_url": callback_url,
        "push_data": {
            "pushed_at": int(now.timestamp()),
            "pusher": pusher,
            "tag": tag,
        },
        "repository": {
            "comment_count": 0,
            "date_created": created,
            "description": description,
            "dockerfile": "",
            "full_description": "",
            "is_official": False,
            "is_private": is_private,
            "is_trusted": False,
            "name": name,
            "namespace": namespace,
            "owner": namespace,
            "repo_name": f"{namespace}/{name}",
            "repo_url": f"https://hub.docker.com/r/{namespace}/{name}",
            "star_count": 0,
            "status": "Active",
        },
    }
    return Event(
        source="dockerhub",
        name="push",
        delivery_id=guid,
        body=json_body(payload),
        headers=dict(_HEADERS),
        path=PATH,
    )


def callback(
    state: str = "success",
    description: str = "",
    context: str = "",
    target_url: str = "",
    *,
    callback_url: str | None = None,
    delivery_id: str | None = None,
) -> Event:
    """The JSON a receiver POSTs to a push's ``callback_url`` to report its result (legacy Hub API).

    Raises ``ValueError`` when ``state`` is not ``success``/``failure``/``error``, or
    ``description`` exceeds 255 or ``context`` 100 characters. ``path`` is the path of
    ``callback_url`` when given, else ``/hooks/dockerhub/callback``.
    """
    if state not in CALLBACK_STATES:
        raise ValueError(
            f"Docker Hub callback state must be one of {', '.join(CALLBACK_STATES)}, not {state!r}."
        )
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(
            f"Docker Hub callback description is {len(description)} characters; "
            f"the limit is {MAX_DESCRIPTION}."
        )
    if len(context) > MAX_CONTEXT:
        raise ValueError(
            f"Docker Hub callback context is {len(context)} characters; the limit is {MAX_CONTEXT}."
        )
    payload = {
        "state": state,
        "description": description,
        "context": context,
        "target_url": target_url,
    }
    path = (urlsplit(callback_url).path or "/") if callback_url else CALLBACK_PATH
    return Event(
        source="dockerhub",
        name="callback",
        delivery_id=delivery_id if delivery_id is not None else ids().guid(),
        body=json_body(payload),
        headers=dict(_HEADERS),
        path=path,
    )
