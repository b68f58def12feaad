"""GitHub webhook deliveries (push, ping, pull_request, release, ...) exactly as GitHub sends them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from labkit.webhooks.events._base import Event, ids, iso, json_body

__all__ = [
    "PUSH_KINDS",
    "ZERO_SHA",
    "create",
    "delete",
    "ping",
    "pull_request",
    "push",
    "release",
    "workflow_run",
]

#: ``before`` of a newly created ref and ``after`` of a deleted one.
ZERO_SHA = "0" * 40
PushKind = Literal["normal", "new_branch", "force", "tag", "delete"]
#: What :func:`push` can simulate.
PUSH_KINDS: tuple[PushKind, ...] = ("normal", "new_branch", "force", "tag", "delete")
CommitSpec = int | Sequence[str | Mapping[str, Any]]

PATH = "/hooks/github"
DEFAULT_REPO = "octo-org/hello-app"
DEFAULT_SENDER = "octocat"

_API = "https://api.github.com"
_WEB = "https://github.com"
_MESSAGES = (
    "Fix health check path",
    "Add /version endpoint",
    "Bump base image to python:3.12-slim",
    "Update README",
    "Handle SIGTERM for graceful shutdown",
    "Pin dependencies",
    "Add retry to the webhook sender",
    "Log the delivery id",
)
_FILES = (
    "app.py",
    "Dockerfile",
    "README.md",
    "requirements.txt",
    "compose.yaml",
    "tests/test_app.py",
)
_ZEN = (
    "Keep it logically awesome.",
    "Design for failure.",
    "Speak like a human.",
    "Approachable is better than simple.",
    "Mind your words, they are important.",
    "Non-blocking is better than blocking.",
    "Favor focus over features.",
    "Avoid administrative distraction.",
    "Practicality beats purity.",
    "Anything added dilutes everything else.",
    "It's not fully shipped until it's fast.",
    "Responsive is better than fast.",
)


# --- stable identities ------------------------------------------------------------------------
# A repository, a user and a hook keep the same numeric id across deliveries (receivers key on
# them), so those are derived from their names. Everything that differs per delivery (GUIDs,
# shas, times, the Hookshot build) comes from ``ids()``.


def _stable(kind: str, name: str, low: int = 1_000_000, high: int = 199_999_999) -> int:
    digest = hashlib.sha256(f"{kind}:{name}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low)


def _node_id(kind: str, number: int) -> str:
    """The legacy global node id: base64 of ``0<len(kind)>:<kind><number>``."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def _split(repo: str) -> tuple[str, str]:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"repo must look like 'owner/name', not {repo!r}.")
    return owner, name


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _user(login: str, *, org: bool = False) -> dict[str, Any]:
    number = _stable("org" if org else "user", login)
    base = f"{_API}/users/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": _node_id("Organization" if org else "User", number),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"{_WEB}/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": "Organization" if org else "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def _email(login: str) -> str:
    return f"{_stable('user', login)}+{login}@users.noreply.github.com"


def _is_org(owner: str, sender: str) -> bool:
    return owner != sender


def _organization(login: str) -> dict[str, Any]:
    number = _stable("org", login)
    base = f"{_API}/orgs/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": _node_id("Organization", number),
        "url": base,
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events",
        "hooks_url": f"{base}/hooks",
        "issues_url": f"{base}/issues",
        "members_url": f"{base}/members{{/member}}",
        "public_members_url": f"{base}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "description": None,
    }


def _created_at(repo: str) -> datetime:
    """When the repository was created: fixed per name, some time in 2024."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=_stable("created", repo, 0, 365 * 24 * 3600))


def _repository(repo: str, sender: str, now: datetime, *, push_style: bool) -> dict[str, Any]:
    """The full repository object; ``push_style`` is the push payload's legacy variant.

    In push payloads ``url`` is the web URL, the owner carries ``name``/``email`` and
    ``created_at``/``pushed_at`` are Unix integers; everywhere else they are ISO strings.
    """
    owner_login, name = _split(repo)
    org = _is_org(owner_login, sender)
    owner = _user(owner_login, org=org)
    if push_style:
        owner = {"name": owner_login, "email": None if org else _email(owner_login), **owner}
    number = _stable("repo", repo)
    api = f"{_API}/repos/{repo}"
    created = _created_at(repo)
    created_value: int | str = int(created.timestamp()) if push_style else iso(created)
    pushed_value: int | str = int(now.timestamp()) if push_style else iso(now)
    body: dict[str, Any] = {
        "id": number,
        "node_id": _node_id("Repository", number),
        "name": name,
        "full_name": repo,
        "private": False,
        "owner": owner,
        "html_url": f"{_WEB}/{repo}",
        "description": "The app the lab builds, ships and watches.",
        "fork": False,
        "url": f"{_WEB}/{repo}" if push_style else api,
        "forks_url": f"{api}/forks",
        "keys_url": f"{api}/keys{{/key_id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "teams_url": f"{api}/teams",
        "hooks_url": f"{api}/hooks",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "events_url": f"{api}/events",
        "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "tags_url": f"{api}/tags",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "languages_url": f"{api}/languages",
        "stargazers_url": f"{api}/stargazers",
        "contributors_url": f"{api}/contributors",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "merges_url": f"{api}/merges",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{api}/downloads",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}",
        "releases_url": f"{api}/releases{{/id}}",
        "deployments_url": f"{api}/deployments",
        "created_at": created_value,
        "updated_at": iso(now),
        "pushed_at": pushed_value,
        "git_url": f"git://github.com/{repo}.git",
        "ssh_url": f"git@github.com:{repo}.git",
        "clone_url": f"{_WEB}/{repo}.git",
        "svn_url": f"{_WEB}/{repo}",
        "homepage": None,
        "size": 42,
        "stargazers_count": 3,
        "watchers_count": 3,
        "language": "Python",
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": True,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 0,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 1,
        "license": None,
        "allow_forking": True,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [],
        "visibility": "public",
        "forks": 0,
        "open_issues": 1,
        "watchers": 3,
        "default_branch": "main",
    }
    if push_style:
        body["stargazers"] = 3
        body["master_branch"] = "main"
        if org:
            body["organization"] = owner_login
    return body


def _envelope(repo: str, sender: str, now: datetime, *, push_style: bool = False) -> dict[str, Any]:
    """The ``repository``, ``organization`` and ``sender`` every repository event carries."""
    owner_login, _ = _split(repo)
    out: dict[str, Any] = {"repository": _repository(repo, sender, now, push_style=push_style)}
    if _is_org(owner_login, sender):
        out["organization"] = _organization(owner_login)
    out["sender"] = _user(sender)
    return out


def _deliver(
    event: str,
    payload: Mapping[str, Any],
    repo: str,
    *,
    secret: str | bytes | None,
    form: bool,
    delivery_id: str | None,
) -> Event:
    """Serialise ``payload`` and add the headers GitHub sends (signature ones when ``secret``)."""
    raw = json_body(payload)
    if form:
        body = urlencode({"payload": raw.decode()}).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        body = raw
        content_type = "application/json"
    guid = delivery_id if delivery_id is not None else ids().guid()
    headers = {
        "Accept": "*/*",
        "Content-Type": content_type,
        "User-Agent": f"GitHub-Hookshot/{ids().hex(7)}",
        "X-GitHub-Delivery": guid,
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": str(_stable("hook", repo, 100_000_000, 599_999_999)),
        "X-GitHub-Hook-Installation-Target-ID": str(_stable("repo", repo)),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    out = Event(
        source="github", name=event, delivery_id=guid, body=body, headers=headers, path=PATH
    )
    return out.signed(secret) if secret is not None else out


# --- push -------------------------------------------------------------------------------------


def _commit(
    spec: str | Mapping[str, Any] | None,
    repo: str,
    pusher: str,
    at: datetime,
    *,
    commit_id: str | None = None,
) -> dict[str, Any]:
    """One entry of ``commits``: generated, from a message, or from a (partial) dict."""
    given: Mapping[str, Any] = {"message": spec} if isinstance(spec, str) else (spec or {})
    sha = str(given.get("id") or commit_id or ids().hex(40))
    message = given.get("message")
    if message is None:
        message = _MESSAGES[ids().number(0, len(_MESSAGES) - 1)]
    people: dict[str, dict[str, Any]] = {}
    for role in ("author", "committer"):
        who = given.get(role, given.get("author"))
        if isinstance(who, Mapping):
            login = str(who.get("username", who.get("name", pusher)))
            person = {
                "name": str(who.get("name", login)),
                "email": str(who.get("email", _email(login))),
                "username": login,
            }
        else:
            login = str(who) if who else pusher
            person = {"name": login, "email": _email(login), "username": login}
        people[role] = person
    if "added" in given or "removed" in given or "modified" in given:
        added = list(given.get("added", []))
        removed = list(given.get("removed", []))
        modified = list(given.get("modified", []))
    else:
        added, removed, modified = [], [], [_FILES[ids().number(0, len(_FILES) - 1)]]
    timestamp = given.get("timestamp")
    return {
        "id": sha,
        "tree_id": str(given.get("tree_id") or ids().hex(40)),
        "distinct": bool(given.get("distinct", True)),
        "message": str(message),
        "timestamp": str(timestamp) if timestamp else iso(at),
        "url": f"{_WEB}/{repo}/commit/{sha}",
        "author": people["author"],
        "committer": people["committer"],
        "added": added,
        "removed": removed,
        "modified": modified,
    }


def push(
    repo: str = DEFAULT_REPO,
    ref: str = "refs/heads/main",
    *,
    kind: PushKind = "normal",
    commits: CommitSpec = 1,
    before: str | None = None,
    after: str | None = None,
    commit_id: str | None = None,
    tag: str | None = None,
    pusher: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """A ``push`` delivery.

    ``kind``: ``normal`` (fast-forward), ``new_branch`` (``before`` is 40 zeros),
    ``force`` (``forced``), ``tag`` (a new tag: ``refs/tags/...``, no commits, ``base_ref``
    set) or ``delete`` (``after`` is 40 zeros, no commits, ``head_commit`` null).
    ``tag="v1"`` is short for ``kind="tag", ref="refs/tags/v1"``.
    ``commits``: how many to generate, or a list of messages or commit dicts (``id``,
    ``message``, ``timestamp``, ``author``, ``added``...; missing keys are filled in), so a
    git hook can pass real shas. ``after`` is the new ref value (defaults to the last commit
    id); ``commit_id`` the head commit's id when it differs (an annotated tag's commit).
    """
    if kind not in PUSH_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PUSH_KINDS)}, not {kind!r}.")
    if tag is not None:
        if kind == "normal":
            kind = "tag"
        ref = f"refs/tags/{_short_ref(tag)}"
    if kind == "tag" and not ref.startswith("refs/tags/"):
        ref = "refs/tags/" + (_short_ref(ref) if ref != "refs/heads/main" else "v1.0.0")
    if not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    if isinstance(commits, str):  # one message, not a sequence of one-letter messages
        commits = [commits]
    if isinstance(commits, int) and commits < 0:
        raise ValueError("commits must be >= 0.")

    now = ids().now()
    specs: list[str | Mapping[str, Any] | None]
    if kind in ("delete", "tag"):
        specs = []
    elif isinstance(commits, int):
        specs = [None] * commits
    else:
        specs = list(commits)

    start = now - timedelta(minutes=2 * len(specs))
    built: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        last = index == len(specs) - 1
        built.append(
            _commit(
                spec,
                repo,
                pusher,
                start + timedelta(minutes=2 * index),
                commit_id=(commit_id or after) if last else None,
            )
        )

    head: dict[str, Any] | None
    if kind == "delete":
        head = None
        old = before or ids().hex(40)
        new = ZERO_SHA
    elif kind == "tag":
        # A tag on an existing commit: nothing new is pushed, head_commit is the tagged commit.
        head = _commit(None, repo, pusher, now - timedelta(hours=1), commit_id=commit_id or after)
        head["distinct"] = False
        old = ZERO_SHA
        new = after or head["id"]
    else:
        if not built:
            head = _commit(
                None, repo, pusher, now - timedelta(hours=1), commit_id=commit_id or after
            )
            head["distinct"] = False
        else:
            head = built[-1]
        old = ZERO_SHA if kind == "new_branch" else (before or ids().hex(40))
        new = after or head["id"]

    short = _short_ref(ref)
    if old == ZERO_SHA:
        compare = f"{_WEB}/{repo}/compare/{short}"
    else:
        compare = f"{_WEB}/{repo}/compare/{old[:12]}...{new[:12]}"
    envelope = _envelope(repo, pusher, now, push_style=True)
    # GitHub's key order: organization (when the owner is one) between pusher and sender.
    payload: dict[str, Any] = {
        "ref": ref,
        "before": old,
        "after": new,
        "repository": envelope.pop("repository"),
        "pusher": {"name": pusher, "email": _email(pusher)},
        **envelope,
        "created": old == ZERO_SHA,
        "deleted": new == ZERO_SHA,
        "forced": kind == "force",
        "base_ref": "refs/heads/main" if kind == "tag" else None,
        "compare": compare,
        "commits": built,
        "head_commit": head,
    }
    return _deliver("push", payload, repo, secret=secret, form=form, delivery_id=delivery_id)


# --- ping -------------------------------------------------------------------------------------


def ping(
    repo: str = DEFAULT_REPO,
    *,
    url: str = "http://receiver:8000/hooks/github",
    events: Sequence[str] = ("push",),
    sender: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """The ``ping`` GitHub sends when a webhook is created (``hook.config`` mirrors the hook)."""
    now = ids().now()
    hook_id = _stable("hook", repo, 100_000_000, 599_999_999)
    api_hook = f"{_API}/repos/{repo}/hooks/{hook_id}"
    config: dict[str, Any] = {
        "content_type": "form" if form else "json",
        "insecure_ssl": "0",
        "url": url,
    }
    if secret is not None:
        config["secret"] = "********"
    payload: dict[str, Any] = {
        "zen": _ZEN[ids().number(0, len(_ZEN) - 1)],
        "hook_id": hook_id,
        "hook": {
            "type": "Repository",
            "id": hook_id,
            "name": "web",
            "active": True,
            "events": list(events),
            "config": config,
            "updated_at": iso(now),
            "created_at": iso(now),
            "url": api_hook,
            "test_url": f"{api_hook}/test",
            "ping_url": f"{api_hook}/pings",
            "deliveries_url": f"{api_hook}/deliveries",
            "last_response": {"code": None, "status": "unused", "message": None},
        },
        **_envelope(repo, sender, now),
    }
    return _deliver("ping", payload, repo, secret=secret, form=form, delivery_id=delivery_id)


# --- pull_request -----------------------------------------------------------------------------

PR_ACTIONS = ("opened", "synchronize", "closed", "reopened", "edited", "ready_for_review")


def _branch_end(
    owner: str, branch: str, sha: str, repository: dict[str, Any], org: bool
) -> dict[str, Any]:
    """``pull_request.head`` / ``.base``: a branch of the same repository."""
    return {
        "label": f"{owner}:{branch}",
        "ref": branch,
        "sha": sha,
        "user": _user(owner, org=org),
        "repo": repository,
    }


def pull_request(
    action: str = "opened",
    *,
    repo: str = DEFAULT_REPO,
    number: int = 1,
    merged: bool = False,
    title: str = "Add /version endpoint",
    head: str = "feature/version",
    base: str = "main",
    sender: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """A ``pull_request`` delivery: ``opened``, ``synchronize`` (new head commit, with
    ``before``/``after``), ``closed`` (``merged=True`` for a merge), ``reopened``, ``edited``,
    ``ready_for_review``."""
    if action not in PR_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(PR_ACTIONS)}, not {action!r}.")
    if merged and action != "closed":
        raise ValueError("merged=True only makes sense with action='closed'.")
    now = ids().now()
    owner_login, _ = _split(repo)
    org = _is_org(owner_login, sender)
    env = _envelope(repo, sender, now)
    repository = env["repository"]
    user = _user(sender)
    head_sha = ids().hex(40)
    base_sha = ids().hex(40)
    opened_at = now - timedelta(hours=2) if action != "opened" else now
    closed = action == "closed"
    api = f"{_API}/repos/{repo}"
    web = f"{_WEB}/{repo}"
    pr_id = _stable("pr", f"{repo}#{number}")
    state = "closed" if closed else "open"
    pr: dict[str, Any] = {
        "url": f"{api}/pulls/{number}",
        "id": pr_id,
        "node_id": _node_id("PullRequest", pr_id),
        "html_url": f"{web}/pull/{number}",
        "diff_url": f"{web}/pull/{number}.diff",
        "patch_url": f"{web}/pull/{number}.patch",
        "issue_url": f"{api}/issues/{number}",
        "number": number,
        "state": state,
        "locked": False,
        "title": title,
        "user": user,
        "body": "Adds a `/version` endpoint so the pipeline can check what is deployed.",
        "created_at": iso(opened_at),
        "updated_at": iso(now),
        "closed_at": iso(now) if closed else None,
        "merged_at": iso(now) if merged else None,
        "merge_commit_sha": ids().hex(40) if (merged or action != "opened") else None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [],
        "milestone": None,
        "draft": False,
        "commits_url": f"{api}/pulls/{number}/commits",
        "review_comments_url": f"{api}/pulls/{number}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{number}/comments",
        "statuses_url": f"{api}/statuses/{head_sha}",
        "head": _branch_end(owner_login, head, head_sha, repository, org),
        "base": _branch_end(owner_login, base, base_sha, repository, org),
        "_links": {
            "self": {"href": f"{api}/pulls/{number}"},
            "html": {"href": f"{web}/pull/{number}"},
            "issue": {"href": f"{api}/issues/{number}"},
            "comments": {"href": f"{api}/issues/{number}/comments"},
            "review_comments": {"href": f"{api}/pulls/{number}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{number}/commits"},
            "statuses": {"href": f"{api}/statuses/{head_sha}"},
        },
        "author_association": "MEMBER" if org else "OWNER",
        "auto_merge": None,
        "active_lock_reason": None,
        "merged": merged,
        "mergeable": None if action == "opened" else True,
        "rebaseable": None if action == "opened" else True,
        "mergeable_state": "unknown" if action == "opened" else "clean",
        "merged_by": user if merged else None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 12,
        "deletions": 1,
        "changed_files": 2,
    }
    payload: dict[str, Any] = {"action": action, "number": number}
    if action == "synchronize":
        payload["before"] = ids().hex(40)
        payload["after"] = head_sha
    if action == "edited":
        payload["changes"] = {"title": {"from": "WIP: " + title}}
    payload["pull_request"] = pr
    payload.update(env)
    return _deliver(
        "pull_request", payload, repo, secret=secret, form=form, delivery_id=delivery_id
    )


# --- release ----------------------------------------------------------------------------------

RELEASE_ACTIONS = (
    "published",
    "created",
    "released",
    "prereleased",
    "edited",
    "deleted",
    "unpublished",
)


def release(
    action: str = "published",
    *,
    repo: str = DEFAULT_REPO,
    tag: str = "v1.0.0",
    name: str | None = None,
    prerelease: bool = False,
    sender: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """A ``release`` delivery (default ``published``) for tag ``tag``."""
    if action not in RELEASE_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(RELEASE_ACTIONS)}, not {action!r}.")
    tag = _short_ref(tag)
    now = ids().now()
    release_id = _stable("release", f"{repo}@{tag}")
    api = f"{_API}/repos/{repo}"
    web = f"{_WEB}/{repo}"
    payload: dict[str, Any] = {
        "action": action,
        "release": {
            "url": f"{api}/releases/{release_id}",
            "assets_url": f"{api}/releases/{release_id}/assets",
            "upload_url": (
                f"https://uploads.github.com/repos/{repo}/releases/{release_id}/assets{{?name,label}}"
            ),
            "html_url": f"{web}/releases/tag/{tag}",
            "id": release_id,
            "author": _user(sender),
            "node_id": _node_id("Release", release_id),
            "tag_name": tag,
            "target_commitish": "main",
            "name": name if name is not None else tag,
            "draft": False,
            "immutable": False,
            "prerelease": prerelease or action == "prereleased",
            "created_at": iso(now - timedelta(minutes=5)),
            "updated_at": iso(now),
            "published_at": None if action == "unpublished" else iso(now),
            "assets": [],
            "tarball_url": f"{api}/tarball/{tag}",
            "zipball_url": f"{api}/zipball/{tag}",
            "body": f"Release {tag} of the lab app.",
        },
        **_envelope(repo, sender, now),
    }
    if action == "edited":
        payload["changes"] = {"body": {"from": f"Draft notes for {tag}."}}
    return _deliver("release", payload, repo, secret=secret, form=form, delivery_id=delivery_id)


# --- create / delete --------------------------------------------------------------------------

RefType = Literal["branch", "tag"]


def _check_ref_type(ref_type: str) -> None:
    if ref_type not in ("branch", "tag"):
        raise ValueError(f"ref_type must be 'branch' or 'tag', not {ref_type!r}.")


def create(
    ref_type: RefType = "branch",
    ref: str = "feature/version",
    *,
    repo: str = DEFAULT_REPO,
    sender: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """A ``create`` delivery: a branch or tag was created (``ref`` is the short name)."""
    _check_ref_type(ref_type)
    now = ids().now()
    payload: dict[str, Any] = {
        "ref": _short_ref(ref),
        "ref_type": ref_type,
        "master_branch": "main",
        "description": "The app the lab builds, ships and watches.",
        "pusher_type": "user",
        **_envelope(repo, sender, now),
    }
    return _deliver("create", payload, repo, secret=secret, form=form, delivery_id=delivery_id)


def delete(
    ref_type: RefType = "branch",
    ref: str = "feature/version",
    *,
    repo: str = DEFAULT_REPO,
    sender: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """A ``delete`` delivery: a branch or tag was deleted (``ref`` is the short name)."""
    _check_ref_type(ref_type)
    now = ids().now()
    payload: dict[str, Any] = {
        "ref": _short_ref(ref),
        "ref_type": ref_type,
        "pusher_type": "user",
        **_envelope(repo, sender, now),
    }
    return _deliver("delete", payload, repo, secret=secret, form=form, delivery_id=delivery_id)


# --- workflow_run -----------------------------------------------------------------------------

RUN_ACTIONS = ("requested", "in_progress", "completed")
CONCLUSIONS = (
    "success",
    "failure",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "neutral",
)


def _minimal_repo(repo: str, sender: str) -> dict[str, Any]:
    """The short repository object inside ``workflow_run``: ids, names, owner and API URLs."""
    full = _repository(repo, sender, _created_at(repo), push_style=False)
    keep = (
        "id",
        "node_id",
        "name",
        "full_name",
        "private",
        "owner",
        "html_url",
        "description",
        "fork",
        "url",
    )
    clone_urls = ("git_url", "ssh_url", "clone_url", "svn_url", "mirror_url")
    return {
        k: v for k, v in full.items() if k in keep or (k.endswith("_url") and k not in clone_urls)
    }


def workflow_run(
    action: str = "completed",
    *,
    conclusion: str | None = "success",
    repo: str = DEFAULT_REPO,
    workflow: str = "CI",
    ref: str = "main",
    head_sha: str | None = None,
    sender: str = DEFAULT_SENDER,
    secret: str | bytes | None = None,
    form: bool = False,
    delivery_id: str | None = None,
) -> Event:
    """A ``workflow_run`` delivery for workflow ``workflow`` on branch ``ref``.

    ``conclusion`` only appears when ``action='completed'`` (null otherwise).
    """
    if action not in RUN_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(RUN_ACTIONS)}, not {action!r}.")
    if action == "completed" and conclusion not in CONCLUSIONS:
        raise ValueError(f"conclusion must be one of {', '.join(CONCLUSIONS)}, not {conclusion!r}.")
    branch = _short_ref(ref)
    now = ids().now()
    env = _envelope(repo, sender, now)
    api = f"{_API}/repos/{repo}"
    web = f"{_WEB}/{repo}"
    workflow_id = _stable("workflow", f"{repo}:{workflow}")
    path = f".github/workflows/{workflow.lower().replace(' ', '-')}.yml"
    run_id = ids().number(10_000_000_000, 19_999_999_999)
    suite_id = ids().number(30_000_000_000, 39_999_999_999)
    sha = head_sha or ids().hex(40)
    run_number = ids().number(1, 400)
    started = now - timedelta(minutes=3) if action == "completed" else now
    message = _MESSAGES[ids().number(0, len(_MESSAGES) - 1)]
    actor = _user(sender)
    short_repo = _minimal_repo(repo, sender)
    status = {"requested": "queued", "in_progress": "in_progress", "completed": "completed"}[action]
    run: dict[str, Any] = {
        "id": run_id,
        "name": workflow,
        "node_id": _node_id("WorkflowRun", run_id),
        "head_branch": branch,
        "head_sha": sha,
        "path": path,
        "display_title": message,
        "run_number": run_number,
        "event": "push",
        "status": status,
        "conclusion": conclusion if action == "completed" else None,
        "workflow_id": workflow_id,
        "check_suite_id": suite_id,
        "check_suite_node_id": _node_id("CheckSuite", suite_id),
        "url": f"{api}/actions/runs/{run_id}",
        "html_url": f"{web}/actions/runs/{run_id}",
        "pull_requests": [],
        "created_at": iso(started),
        "updated_at": iso(now),
        "actor": actor,
        "triggering_actor": actor,
        "run_attempt": 1,
        "referenced_workflows": [],
        "run_started_at": iso(started),
        "jobs_url": f"{api}/actions/runs/{run_id}/jobs",
        "logs_url": f"{api}/actions/runs/{run_id}/logs",
        "check_suite_url": f"{api}/check-suites/{suite_id}",
        "artifacts_url": f"{api}/actions/runs/{run_id}/artifacts",
        "cancel_url": f"{api}/actions/runs/{run_id}/cancel",
        "rerun_url": f"{api}/actions/runs/{run_id}/rerun",
        "previous_attempt_url": None,
        "workflow_url": f"{api}/actions/workflows/{workflow_id}",
        "head_commit": {
            "id": sha,
            "tree_id": ids().hex(40),
            "message": message,
            "timestamp": iso(started - timedelta(seconds=30)),
            "author": {"name": sender, "email": _email(sender)},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
        "repository": short_repo,
        "head_repository": short_repo,
    }
    payload: dict[str, Any] = {
        "action": action,
        "workflow_run": run,
        "workflow": {
            "id": workflow_id,
            "node_id": _node_id("Workflow", workflow_id),
            "name": workflow,
            "path": path,
            "state": "active",
            "created_at": iso(_created_at(repo)),
            "updated_at": iso(_created_at(repo)),
            "url": f"{api}/actions/workflows/{workflow_id}",
            "html_url": f"{web}/blob/main/{path}",
            "badge_url": f"{web}/workflows/{workflow}/badge.svg",
        },
        **env,
    }
    return _deliver(
        "workflow_run", payload, repo, secret=secret, form=form, delivery_id=delivery_id
    )
