"""Tests of the pure events catalog (labkit.events): shapes, headers, signatures, determinism."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import pytest
from githubkit.webhooks import parse_obj
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.webhooks import events, signing
from labkit.webhooks.events import (
    CATALOG,
    Event,
    alertmanager,
    build,
    dockerhub,
    engine,
    github,
    registry,
    standard,
)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
GITHUB_HEADERS = {
    "Accept",
    "Content-Type",
    "User-Agent",
    "X-GitHub-Delivery",
    "X-GitHub-Event",
    "X-GitHub-Hook-ID",
    "X-GitHub-Hook-Installation-Target-ID",
    "X-GitHub-Hook-Installation-Target-Type",
}
SECRET = "It's a Secret to Everybody"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def _live_after() -> Iterator[None]:
    """Every test leaves the global id source random, whatever it switched to."""
    yield
    events.live()


def github_variants() -> list[tuple[str, Callable[[], Event]]]:
    """Every GitHub builder in every variant the catalog can produce."""
    out: list[tuple[str, Callable[[], Event]]] = []
    for kind in github.PUSH_KINDS:
        out.append((f"push-{kind}", partial(github.push, kind=kind)))
        out.append((f"push-{kind}-form", partial(github.push, kind=kind, form=True)))
    out.append(("push-3-commits", partial(github.push, commits=3)))
    out.append(("push-0-commits", partial(github.push, commits=0)))
    out.append(("push-user-repo", partial(github.push, "octocat/hello-app")))
    out.append(("ping", github.ping))
    out.append(("ping-form-secret", partial(github.ping, form=True, secret="s3cret")))
    for action in github.PR_ACTIONS:
        out.append((f"pull_request-{action}", partial(github.pull_request, action)))
    out.append(("pull_request-merged", partial(github.pull_request, "closed", merged=True)))
    for action in github.RELEASE_ACTIONS:
        out.append((f"release-{action}", partial(github.release, action)))
    out.append(("create-branch", partial(github.create, "branch", "dev")))
    out.append(("create-tag", partial(github.create, "tag", "v1")))
    out.append(("delete-branch", partial(github.delete, "branch", "dev")))
    out.append(("delete-tag", partial(github.delete, "tag", "v1")))
    for action in github.RUN_ACTIONS:
        out.append((f"workflow_run-{action}", partial(github.workflow_run, action)))
    out.append(("workflow_run-failure", partial(github.workflow_run, conclusion="failure")))
    return out


GITHUB_VARIANTS = github_variants()


# --- the catalog ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CATALOG))
def test_every_catalog_entry_builds(kind: str) -> None:
    event = build(kind)
    assert isinstance(event, Event)
    source = kind.split(".", 1)[0]
    assert event.source == source
    if kind not in events.ALIASES and source != "standard":
        assert event.kind == kind
    assert event.delivery_id
    assert isinstance(event.body, bytes)
    assert event.payload  # parses (JSON, or the form's payload field)
    assert event.headers["Content-Type"]
    if kind == "dockerhub.callback":
        assert event.path == "/hooks/dockerhub/callback"
    else:
        assert event.path == f"/hooks/{source}"


def test_catalog_names_the_required_kinds() -> None:
    for kind in (
        "github.push",
        "github.ping",
        "github.pull_request",
        "github.release",
        "github.create",
        "github.delete",
        "github.workflow_run",
        "dockerhub.push",
        "dockerhub.callback",
        "registry.push",
        "registry.pull",
        "registry.delete",
        "registry.mount",
        "alertmanager.firing",
        "alertmanager.resolved",
        "engine.start",
        "engine.die",
        "engine.health_status: healthy",
        "engine.healthy",
        "standard.message",
    ):
        assert kind in CATALOG


def test_build_rejects_unknown_kind_listing_valid_ones() -> None:
    with pytest.raises(ValueError, match="Unknown event kind 'github.nope'") as info:
        build("github.nope")
    for kind in CATALOG:
        assert kind in str(info.value)


def test_build_rejects_unknown_option_listing_accepted_ones() -> None:
    with pytest.raises(ValueError, match="does not take colour") as info:
        build("github.push", colour="red")
    assert "repo" in str(info.value) and "ref" in str(info.value)


def test_build_converts_command_line_strings() -> None:
    event = build("github.push", commits="3", form="true", repo="o/r", ref="dev")
    payload = event.payload
    assert len(payload["commits"]) == 3
    assert payload["ref"] == "refs/heads/dev"
    assert event.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (
        build("github.pull_request", merged="yes", action="closed", number="7").payload["number"]
        == 7
    )
    assert build("engine.die", exit_code="137").payload["Actor"]["Attributes"]["exitCode"] == "137"
    assert (
        build("github.push", commits="Fix the bug").payload["commits"][0]["message"]
        == "Fix the bug"
    )
    with pytest.raises(ValueError, match="true or false"):
        build("github.push", form="maybe")


def test_catalog_presets_conflict_clearly() -> None:
    assert build("registry.pull", action="pull").name == "pull"
    with pytest.raises(ValueError, match="registry.push fixes action='push'"):
        build("registry.push", action="pull")
    assert build("alertmanager.resolved").name == "resolved"
    assert build("engine.unhealthy").name == "health_status: unhealthy"


def test_options_of_lists_builder_options() -> None:
    assert "tag" in events.options_of("registry.push")
    assert "action" not in events.options_of("registry.push")
    assert events.options_of("github.push")["ref"] == "refs/heads/main"


def test_shared_keyword_names_are_consistent() -> None:
    import inspect

    for builder in (
        github.push,
        github.ping,
        github.pull_request,
        github.release,
        github.create,
        github.delete,
        github.workflow_run,
    ):
        params = inspect.signature(builder).parameters
        for name in ("repo", "secret", "form", "delivery_id"):
            assert name in params, (builder.__name__, name)
            assert params["secret"].default is None and params["form"].default is False


# --- determinism ----------------------------------------------------------------------------------


def _run_catalog() -> list[tuple[str, str, bytes, dict[str, str]]]:
    out = []
    for kind in sorted(CATALOG):
        event = build(kind)
        out.append((kind, event.delivery_id, event.body, dict(event.headers)))
    out.extend(
        ("image_push", e.delivery_id, e.body, dict(e.headers)) for e in registry.image_push()
    )
    return out


def test_deterministic_runs_are_byte_identical() -> None:
    events.deterministic(7)
    first = _run_catalog()
    events.deterministic(7)
    second = _run_catalog()
    assert first == second


def test_different_seeds_give_different_ids() -> None:
    events.deterministic(7)
    first = _run_catalog()
    events.deterministic(8)
    second = _run_catalog()
    changed = set()
    for (kind, id_a, body_a, _), (_, id_b, body_b, _) in zip(first, second, strict=True):
        assert id_a != id_b, kind
        if body_a != body_b:
            changed.add(kind)
    # Bodies holding generated shas, digests or ids differ too (create/delete/callback hold none).
    assert {
        "github.push",
        "github.pull_request",
        "registry.push",
        "alertmanager.firing",
        "engine.die",
        "standard.message",
        "dockerhub.push",
        "image_push",
    } <= changed


def test_live_mode_gives_fresh_ids() -> None:
    events.live()
    assert github.push().delivery_id != github.push().delivery_id


def test_seeded_block_restores_the_source() -> None:
    events.live()
    with events.seeded(3):
        a = github.push()
    with events.seeded(3):
        b = github.push()
    assert a == b
    assert not events.ids().deterministic


def test_deterministic_clock_starts_at_fixed_clock() -> None:
    events.deterministic(1)
    payload = github.push().payload
    assert payload["repository"]["pushed_at"] == int(events.FIXED_CLOCK.timestamp())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_any_seed_replays(seed: int) -> None:
    with events.seeded(seed):
        a = [github.push(kind="force"), standard.message(), alertmanager.alert()]
    with events.seeded(seed):
        b = [github.push(kind="force"), standard.message(), alertmanager.alert()]
    assert a == b


# --- GitHub: headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "make"), GITHUB_VARIANTS, ids=[v[0] for v in GITHUB_VARIANTS])
def test_github_headers_are_githubs(label: str, make: Callable[[], Event]) -> None:
    event = make()
    headers = dict(event.headers)
    signed = "secret" in label
    expected = GITHUB_HEADERS | ({"X-Hub-Signature", "X-Hub-Signature-256"} if signed else set())
    assert set(headers) == expected
    assert headers["Content-Type"] in ("application/json", "application/x-www-form-urlencoded")
    assert ("form" in label) == (headers["Content-Type"] == "application/x-www-form-urlencoded")
    assert re.fullmatch(r"GitHub-Hookshot/[0-9a-f]{7}", headers["User-Agent"])
    assert GUID.match(headers["X-GitHub-Delivery"])
    assert headers["X-GitHub-Delivery"] == event.delivery_id
    assert headers["X-GitHub-Event"] == event.name
    assert headers["X-GitHub-Hook-ID"].isdigit()
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "repository"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(event.payload["repository"]["id"])
    assert event.source == "github" and event.path == "/hooks/github"


def test_github_delivery_id_can_be_given() -> None:
    guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    event = github.push(delivery_id=guid)
    assert event.delivery_id == guid == event.headers["X-GitHub-Delivery"]


def test_github_ids_of_one_repository_are_stable() -> None:
    a, b = github.push(), github.pull_request()
    assert a.payload["repository"]["id"] == b.payload["repository"]["id"]
    assert a.headers["X-GitHub-Hook-ID"] == b.headers["X-GitHub-Hook-ID"]
    assert a.delivery_id != b.delivery_id


# --- GitHub: githubkit validation -----------------------------------------------------------------


@pytest.mark.parametrize(("label", "make"), GITHUB_VARIANTS, ids=[v[0] for v in GITHUB_VARIANTS])
def test_github_payloads_validate_against_githubkit(label: str, make: Callable[[], Event]) -> None:
    event = make()
    model = parse_obj(event.name, event.payload)
    assert model is not None
    if event.name in ("pull_request", "release", "workflow_run"):
        assert type(model).__name__.lower().endswith(event.payload["action"].replace("_", ""))


def _without_urls(repository: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in repository.items() if not k.endswith("_url")}


def test_githubkit_check_bites_on_a_stripped_repository() -> None:
    payload = github.push().payload
    parse_obj("push", payload)
    stripped = copy.deepcopy(payload)
    stripped["repository"] = _without_urls(stripped["repository"])
    with pytest.raises(Exception, match="validation error") as info:
        parse_obj("push", stripped)
    assert "forks_url" in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p["repository"].pop("visibility"),
        lambda p: p["repository"].pop("topics"),
        lambda p: p.pop("compare"),
        lambda p: p.pop("pusher"),
        lambda p: p["commits"][0].pop("tree_id"),
        lambda p: p.__setitem__("before", 0),
    ],
    ids=[
        "no-visibility",
        "no-topics",
        "no-compare",
        "no-pusher",
        "commit-without-tree_id",
        "int-before",
    ],
)
def test_githubkit_rejects_damaged_push_payloads(damage: Callable[[dict[str, Any]], Any]) -> None:
    payload = github.push().payload
    damage(payload)
    with pytest.raises(Exception, match="validation error"):
        parse_obj("push", payload)


def test_githubkit_rejects_one_event_as_another() -> None:
    with pytest.raises(Exception, match="validation error"):
        parse_obj("push", github.ping().payload)
    with pytest.raises(Exception, match="validation error"):
        parse_obj("ping", github.push().payload)


# --- GitHub: push semantics -----------------------------------------------------------------------


def test_push_normal() -> None:
    p = github.push(commits=2).payload
    assert list(p)[:3] == ["ref", "before", "after"]
    for key in (
        "ref",
        "before",
        "after",
        "created",
        "deleted",
        "forced",
        "base_ref",
        "compare",
        "commits",
        "head_commit",
        "repository",
        "pusher",
        "sender",
    ):
        assert key in p
    assert SHA.match(p["before"]) and SHA.match(p["after"])
    assert (p["created"], p["deleted"], p["forced"], p["base_ref"]) == (False, False, False, None)
    assert p["after"] == p["commits"][-1]["id"] == p["head_commit"]["id"]
    assert (
        p["compare"]
        == f"https://github.com/octo-org/hello-app/compare/{p['before'][:12]}...{p['after'][:12]}"
    )
    for commit in p["commits"]:
        assert set(commit) == {
            "id",
            "tree_id",
            "distinct",
            "message",
            "timestamp",
            "url",
            "author",
            "committer",
            "added",
            "removed",
            "modified",
        }
        assert set(commit["author"]) == {"name", "email", "username"}
        assert commit["url"] == f"https://github.com/octo-org/hello-app/commit/{commit['id']}"
        assert ISO.match(commit["timestamp"])
    assert p["commits"][0]["timestamp"] < p["commits"][1]["timestamp"]


def test_push_repository_times_are_unix_integers_only_in_push() -> None:
    repository = github.push().payload["repository"]
    assert isinstance(repository["created_at"], int) and isinstance(repository["pushed_at"], int)
    assert repository["url"] == "https://github.com/octo-org/hello-app"
    assert repository["created_at"] < repository["pushed_at"]
    other = github.create().payload["repository"]
    assert ISO.match(other["created_at"]) and ISO.match(other["pushed_at"])
    assert other["url"] == "https://api.github.com/repos/octo-org/hello-app"
    url_fields = [k for k in repository if k.endswith("_url")]
    assert len(url_fields) >= 40


def test_push_new_branch() -> None:
    p = github.push(ref="feature/x", kind="new_branch").payload
    assert p["ref"] == "refs/heads/feature/x"
    assert p["before"] == github.ZERO_SHA and p["created"] is True and p["deleted"] is False
    assert p["compare"].endswith("/compare/feature/x")


def test_push_force() -> None:
    p = github.push(kind="force").payload
    assert p["forced"] is True and p["created"] is False


def test_push_delete() -> None:
    p = github.push(ref="refs/heads/old", kind="delete", before="a" * 40).payload
    assert p["after"] == github.ZERO_SHA and p["deleted"] is True
    assert p["before"] == "a" * 40
    assert p["commits"] == [] and p["head_commit"] is None
    assert p["compare"].endswith("/compare/aaaaaaaaaaaa...000000000000")


def test_push_tag() -> None:
    p = github.push(tag="v2.0.0").payload
    assert p["ref"] == "refs/tags/v2.0.0"
    assert p["created"] is True and p["before"] == github.ZERO_SHA
    assert p["base_ref"] == "refs/heads/main" and p["commits"] == []
    assert p["head_commit"]["id"] == p["after"]
    assert github.push(kind="tag").payload["ref"] == "refs/tags/v1.0.0"


def test_push_from_a_git_hook_with_real_shas() -> None:
    shas = ["1" * 40, "2" * 40]
    p = github.push(
        "me/site",
        "refs/heads/main",
        pusher="me",
        before="0123456789" * 4,
        after=shas[-1],
        commits=[
            {
                "id": shas[0],
                "message": "first",
                "author": {"name": "Ada", "email": "ada@example.org"},
                "timestamp": "2026-01-15T10:00:00+01:00",
                "added": ["a.txt"],
            },
            {"id": shas[1], "message": "second"},
        ],
    ).payload
    assert [c["id"] for c in p["commits"]] == shas
    assert p["after"] == shas[1] and p["before"] == "0123456789" * 4
    first = p["commits"][0]
    assert first["author"] == {"name": "Ada", "email": "ada@example.org", "username": "Ada"}
    assert first["timestamp"] == "2026-01-15T10:00:00+01:00" and first["added"] == ["a.txt"]
    assert p["repository"]["owner"]["type"] == "User" and p["pusher"]["name"] == "me"
    parse_obj("push", p)


def test_push_annotated_tag_has_distinct_after_and_commit_id() -> None:
    p = github.push(tag="v3", after="a" * 40, commit_id="c" * 40).payload
    assert p["after"] == "a" * 40 and p["head_commit"]["id"] == "c" * 40


def test_push_owner_org_adds_organization() -> None:
    org = github.push("octo-org/hello-app").payload
    assert org["repository"]["owner"]["type"] == "Organization" and "organization" in org
    assert list(org).index("organization") == list(org).index("pusher") + 1
    user = github.push("octocat/hello-app").payload
    assert user["repository"]["owner"]["type"] == "User" and "organization" not in user


def test_push_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        github.push(kind="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="owner/name"):
        github.push("no-slash")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=4), form=st.booleans()
)
def test_push_messages_round_trip_and_stay_signed(messages: list[str], form: bool) -> None:
    event = github.push(commits=messages, secret=SECRET, form=form)
    assert [c["message"] for c in event.payload["commits"]] == messages
    assert event.headers["X-Hub-Signature-256"] == signing.github_signature_256(event.body, SECRET)
    assert (
        signing.verify_github(event.body, SECRET, event.headers["X-Hub-Signature-256"]) == "sha256"
    )


def test_pull_request_variants() -> None:
    opened = github.pull_request().payload
    assert opened["action"] == "opened" and opened["pull_request"]["state"] == "open"
    sync = github.pull_request("synchronize").payload
    assert sync["after"] == sync["pull_request"]["head"]["sha"] and SHA.match(sync["before"])
    merged = github.pull_request("closed", merged=True, number=9).payload
    assert merged["number"] == 9 and merged["pull_request"]["merged"] is True
    assert merged["pull_request"]["merged_at"] is not None
    closed = github.pull_request("closed").payload["pull_request"]
    assert closed["merged"] is False and closed["merged_at"] is None and closed["state"] == "closed"
    with pytest.raises(ValueError, match="merged=True"):
        github.pull_request("opened", merged=True)
    with pytest.raises(ValueError, match="action must be one of"):
        github.pull_request("exploded")


def test_ping_create_delete_release_workflow_run() -> None:
    ping = github.ping(url="http://example.test/hook", secret="x").payload
    assert ping["hook"]["config"]["url"] == "http://example.test/hook"
    assert ping["hook_id"] == ping["hook"]["id"] and ping["zen"]
    assert ping["hook"]["config"]["content_type"] == "json"
    created = github.create("tag", "refs/tags/v1").payload
    assert (created["ref"], created["ref_type"]) == ("v1", "tag")
    deleted = github.delete("branch", "dev").payload
    assert (deleted["ref"], deleted["ref_type"], deleted["pusher_type"]) == (
        "dev",
        "branch",
        "user",
    )
    with pytest.raises(ValueError, match="ref_type"):
        github.create("commit", "x")  # type: ignore[arg-type]
    rel = github.release(tag="v9").payload["release"]
    assert rel["tag_name"] == "v9" and rel["html_url"].endswith("/releases/tag/v9")
    run = github.workflow_run(conclusion="failure", head_sha="b" * 40).payload["workflow_run"]
    assert (
        run["conclusion"] == "failure"
        and run["status"] == "completed"
        and run["head_sha"] == "b" * 40
    )
    assert github.workflow_run("requested").payload["workflow_run"]["conclusion"] is None
    with pytest.raises(ValueError, match="conclusion"):
        github.workflow_run(conclusion="meh")


# --- GitHub: signatures ---------------------------------------------------------------------------


def test_known_answer_vector() -> None:
    assert signing.github_signature_256(b"Hello, World!", SECRET) == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


@pytest.mark.parametrize("form", [False, True])
@pytest.mark.parametrize(
    "name", ["push", "ping", "pull_request", "release", "create", "delete", "workflow_run"]
)
def test_github_signatures_cover_the_exact_body(name: str, form: bool) -> None:
    builder = getattr(github, name)
    event = builder(secret=SECRET, form=form)
    assert event.headers["X-Hub-Signature-256"] == signing.github_signature_256(event.body, SECRET)
    assert event.headers["X-Hub-Signature"] == signing.github_signature_sha1(event.body, SECRET)
    if form:
        assert event.body.startswith(b"payload=%7B")
        assert json.loads(parse_qs(event.body.decode())["payload"][0]) == event.payload
    tampered = event.with_body(event.body + b" ")
    assert tampered.headers["X-Hub-Signature-256"] != signing.github_signature_256(
        tampered.body, SECRET
    )


def test_unsigned_github_has_no_signature_headers() -> None:
    assert "X-Hub-Signature-256" not in github.push().headers


@settings(max_examples=25, deadline=None)
@given(secret=st.one_of(st.text(min_size=1, max_size=40), st.binary(min_size=1, max_size=40)))
def test_any_secret_signs_the_body(secret: str | bytes) -> None:
    event = github.create(secret=secret)
    assert event.headers["X-Hub-Signature-256"] == signing.github_signature_256(event.body, secret)


# --- Docker Hub -----------------------------------------------------------------------------------


def test_dockerhub_push_shape() -> None:
    event = dockerhub.push("octo-org/hello-app", "v2", pusher="ci-bot")
    p = event.payload
    assert set(p) == {"callback_url", "push_data", "repository"}
    assert p["push_data"] == {
        "pushed_at": p["push_data"]["pushed_at"],
        "pusher": "ci-bot",
        "tag": "v2",
    }
    assert isinstance(p["push_data"]["pushed_at"], int)
    assert set(p["repository"]) == {
        "comment_count",
        "date_created",
        "description",
        "dockerfile",
        "full_description",
        "is_official",
        "is_private",
        "is_trusted",
        "name",
        "namespace",
        "owner",
        "repo_name",
        "repo_url",
        "star_count",
        "status",
    }
    assert p["repository"]["repo_name"] == "octo-org/hello-app"
    assert (p["repository"]["namespace"], p["repository"]["name"]) == ("octo-org", "hello-app")
    assert p["callback_url"].startswith(
        "https://registry.hub.docker.com/u/octo-org/hello-app/hook/"
    )
    assert dict(event.headers) == {"Content-Type": "application/json"}  # no signature, no id header
    assert GUID.match(event.delivery_id)
    assert (event.source, event.name, event.path) == ("dockerhub", "push", "/hooks/dockerhub")
    assert dockerhub.push(callback_url="http://cb/x").payload["callback_url"] == "http://cb/x"


def test_dockerhub_signed_is_unchanged() -> None:
    event = dockerhub.push()
    assert event.signed("s3cret").headers == event.headers


def test_dockerhub_callback_shape_and_limits() -> None:
    event = dockerhub.callback("failure", "x" * 255, "c" * 100, "http://ci/1")
    assert event.payload == {
        "state": "failure",
        "description": "x" * 255,
        "context": "c" * 100,
        "target_url": "http://ci/1",
    }
    assert (event.source, event.name) == ("dockerhub", "callback")
    assert dockerhub.callback(
        callback_url="https://registry.hub.docker.com/u/a/b/hook/abc/"
    ).path == ("/u/a/b/hook/abc/")
    with pytest.raises(ValueError, match="state must be one of success, failure, error"):
        dockerhub.callback("done")
    with pytest.raises(ValueError, match="description is 256 characters; the limit is 255"):
        dockerhub.callback("success", "x" * 256)
    with pytest.raises(ValueError, match="context is 101 characters; the limit is 100"):
        dockerhub.callback("success", context="c" * 101)


@settings(max_examples=40, deadline=None)
@given(state=st.text(max_size=10), description=st.text(max_size=300), context=st.text(max_size=120))
def test_dockerhub_callback_accepts_exactly_the_valid(
    state: str, description: str, context: str
) -> None:
    valid = state in dockerhub.CALLBACK_STATES and len(description) <= 255 and len(context) <= 100
    if valid:
        assert dockerhub.callback(state, description, context).payload["state"] == state
    else:
        with pytest.raises(ValueError):
            dockerhub.callback(state, description, context)


# --- registry -------------------------------------------------------------------------------------

EVENT_KEYS = {"id", "timestamp", "action", "target", "request", "actor", "source"}


def _only_event(event: Event) -> dict[str, Any]:
    body = event.payload
    assert list(body) == ["events"] and len(body["events"]) == 1
    record: dict[str, Any] = body["events"][0]
    return record


def test_registry_manifest_push_shape() -> None:
    event = registry.notification("push", "hello-app", "v1")
    record = _only_event(event)
    assert list(record) == ["id", "timestamp", "action", "target", "request", "actor", "source"]
    assert record["action"] == "push" and GUID.match(record["id"])
    assert RFC3339_NANO.match(record["timestamp"])
    target = record["target"]
    assert list(target) == ["mediaType", "size", "digest", "length", "repository", "url", "tag"]
    assert target["mediaType"] == registry.MANIFEST_MEDIA_TYPE
    assert target["size"] == target["length"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", target["digest"])
    assert target["url"] == f"http://registry:5000/v2/hello-app/manifests/{target['digest']}"
    assert (target["repository"], target["tag"]) == ("hello-app", "v1")
    assert set(record["request"]) == {"id", "addr", "host", "method", "useragent"}
    assert record["request"]["method"] == "PUT" and record["request"]["useragent"].startswith(
        "docker/"
    )
    assert record["actor"] == {}
    assert set(record["source"]) == {"addr", "instanceID"}
    assert dict(event.headers) == {
        "Content-Type": "application/vnd.docker.distribution.events.v1+json",
        "User-Agent": "Go-http-client/1.1",
    }
    assert event.delivery_id == record["id"]
    assert (event.source, event.name, event.path) == ("registry", "push", "/hooks/registry")
    # json.MarshalIndent(envelope, "", "   ") as distribution serialises it
    assert event.body.startswith(b'{\n   "events": [\n      {\n         "id": ')
    assert not event.body.endswith(b"\n")


def test_registry_other_actions() -> None:
    pull = _only_event(registry.notification("pull", actor="alice"))
    assert pull["request"]["method"] == "GET" and pull["actor"] == {"name": "alice"}
    by_digest = _only_event(registry.notification("delete", digest="sha256:" + "a" * 64))
    assert by_digest["target"] == {"digest": "sha256:" + "a" * 64, "repository": "hello-app"}
    by_tag = _only_event(registry.notification("delete", tag="old"))
    assert by_tag["target"] == {"repository": "hello-app", "tag": "old"}
    mount = _only_event(registry.notification("mount", from_repo="library/python"))
    assert mount["target"]["fromRepository"] == "library/python"
    assert mount["target"]["mediaType"] == registry.BLOB_MEDIA_TYPE and "tag" not in mount["target"]
    blob = _only_event(registry.notification("push", media_type=registry.BLOB_MEDIA_TYPE))
    assert "/blobs/sha256:" in blob["target"]["url"] and "tag" not in blob["target"]
    with pytest.raises(ValueError, match="push, pull, delete, mount"):
        registry.notification("tag")


def test_registry_image_push_sequence() -> None:
    posts = registry.image_push("hello-app", "v2", layers=2)
    records = [_only_event(p) for p in posts]
    assert len(records) == 4  # two layers, the config, the manifest
    assert all(r["action"] == "push" for r in records)
    assert all(
        r["target"]["mediaType"] == registry.BLOB_MEDIA_TYPE and "tag" not in r["target"]
        for r in records[:-1]
    )
    assert records[-1]["target"]["tag"] == "v2"
    assert records[-1]["target"]["mediaType"] == registry.MANIFEST_MEDIA_TYPE
    assert len({r["source"]["instanceID"] for r in records}) == 1
    assert len({r["id"] for r in records}) == 4
    assert [p.delivery_id for p in posts] == [r["id"] for r in records]
    (batched,) = registry.image_push(layers=1, batched=True)
    assert len(batched.payload["events"]) == 3
    assert batched.delivery_id == batched.payload["events"][0]["id"]


def test_registry_wraps_given_events() -> None:
    raw = [{"id": "one", "action": "pull"}, {"id": "two", "action": "push"}]
    event = registry.notification(events=raw)
    assert event.payload == {"events": raw} and event.delivery_id == "one" and event.name == "pull"
    with pytest.raises(ValueError):
        registry.envelope([])


# --- Alertmanager ---------------------------------------------------------------------------------


def test_alertmanager_firing_shape() -> None:
    event = alertmanager.alert()
    p = event.payload
    assert list(p) == [
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ]
    assert (p["version"], p["status"], p["truncatedAlerts"]) == ("4", "firing", 0)
    assert p["groupKey"] == '{}:{alertname="WebDown"}'
    assert p["groupLabels"] == {"alertname": "WebDown"}
    (item,) = p["alerts"]
    assert list(item) == [
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ]
    assert item["endsAt"] == "0001-01-01T00:00:00Z"
    assert RFC3339_NANO.match(item["startsAt"])
    assert re.fullmatch(r"[0-9a-f]{16}", item["fingerprint"])
    assert item["labels"]["severity"] == "critical" and item["labels"]["service"] == "web"
    assert item["annotations"]["summary"] == "web is down"
    assert p["commonLabels"] == item["labels"]
    assert dict(event.headers) == {
        "Content-Type": "application/json",
        "User-Agent": "Alertmanager/0.25.0",
    }
    assert (event.source, event.name, event.path) == (
        "alertmanager",
        "firing",
        "/hooks/alertmanager",
    )
    assert event.body.endswith(b"}\n")  # json.Encoder.Encode adds a newline
    assert b"\\u0026g0.tab=1" in event.body  # Go escapes & in strings
    assert event.delivery_id == alertmanager.delivery_key(p)


def test_alertmanager_resolved_pairs_with_firing() -> None:
    start = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    firing = alertmanager.alert("firing", starts_at=start).payload["alerts"][0]
    resolved = alertmanager.alert("resolved", starts_at=start).payload["alerts"][0]
    assert resolved["fingerprint"] == firing["fingerprint"]
    assert resolved["status"] == "resolved" and resolved["endsAt"] != alertmanager.ZERO_TIME
    assert resolved["startsAt"].startswith("2026-01-15T09:00:00")
    assert resolved["endsAt"] > resolved["startsAt"]
    other = alertmanager.alert(service="db").payload["alerts"][0]
    assert other["fingerprint"] != firing["fingerprint"]
    with pytest.raises(ValueError, match="firing' or 'resolved"):
        alertmanager.alert("pending")


def test_alertmanager_fingerprint_is_prometheus_fnv() -> None:
    assert alertmanager.fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64 offset basis
    assert alertmanager.fingerprint({"b": "2", "a": "1"}) == alertmanager.fingerprint(
        {"a": "1", "b": "2"}
    )


def test_alertmanager_delivery_key_is_stable_for_a_retry() -> None:
    event = alertmanager.alert()
    assert alertmanager.delivery_key(json.loads(event.body)) == event.delivery_id
    assert alertmanager.alert("resolved").delivery_id != event.delivery_id


# --- engine ---------------------------------------------------------------------------------------


def test_engine_container_shape() -> None:
    event = engine.container("die", exit_code=137)
    p = event.payload
    assert list(p) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert (p["Type"], p["Action"], p["scope"]) == ("container", "die", "local")
    assert set(p["Actor"]) == {"ID", "Attributes"} and re.fullmatch(
        r"[0-9a-f]{64}", p["Actor"]["ID"]
    )
    attributes = p["Actor"]["Attributes"]
    assert attributes["exitCode"] == "137" and attributes["name"] == "pipeline-web-1"
    assert attributes["image"] and attributes["com.docker.compose.service"] == "web"
    assert attributes["com.docker.compose.project"] == "pipeline"
    assert p["timeNano"] // 1_000_000_000 == p["time"]
    for old in ("status", "id", "from"):
        assert old not in p  # Engine 29 dropped them
    assert (event.source, event.name, event.path) == ("engine", "die", "/hooks/engine")
    assert event.delivery_id == engine.delivery_key(p)


def test_engine_other_actions() -> None:
    start = engine.container("start").payload
    assert "exitCode" not in start["Actor"]["Attributes"]
    healthy = engine.container("health_status: healthy", labels={"app": "web"}).payload
    assert healthy["Action"] == "health_status: healthy"
    assert healthy["Actor"]["Attributes"] == {
        "app": "web",
        "image": "localhost:5000/hello-app:v1",
        "name": "pipeline-web-1",
    }
    assert start["Actor"]["ID"] == healthy["Actor"]["ID"]  # one container, one ID
    assert engine.container("die").payload["Actor"]["Attributes"]["exitCode"] == "0"
    with pytest.raises(ValueError, match="exit_code"):
        engine.container("start", exit_code=1)
    with pytest.raises(ValueError, match="Container action"):
        engine.container("explode")


def test_engine_from_engine_wraps_unchanged() -> None:
    raw = {
        "status": "start",
        "id": "abc",
        "from": "nginx",
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "nginx"}},
        "scope": "local",
        "time": 1700000000,
        "timeNano": 1700000000123456789,
    }
    event = engine.from_engine(raw)
    assert json.loads(event.body) == raw and list(json.loads(event.body)) == list(raw)
    assert event.name == "start" and event.source == "engine"
    assert engine.from_engine(dict(raw)).delivery_id == event.delivery_id
    with pytest.raises(ValueError, match="Action"):
        engine.from_engine({"Type": "container"})


# --- Standard Webhooks ----------------------------------------------------------------------------


def test_standard_message_shape() -> None:
    event = standard.message("image.pushed", {"tag": "v1"})
    assert event.payload["type"] == "image.pushed" and event.payload["data"] == {"tag": "v1"}
    assert list(event.payload) == ["type", "timestamp", "data"]
    assert set(event.headers) == {"Content-Type", "webhook-id", "webhook-timestamp"}
    assert event.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"msg_[0-9A-Za-z]{24}", event.headers["webhook-id"])
    assert event.delivery_id == event.headers["webhook-id"]
    stamp = datetime.fromisoformat(event.payload["timestamp"].replace("Z", "+00:00"))
    assert int(stamp.timestamp()) == int(event.headers["webhook-timestamp"])
    assert (event.source, event.name, event.path) == ("standard", "image.pushed", "/hooks/standard")
    default = standard.message().payload["data"]
    assert set(default) == {"repository", "tag", "digest"}


def test_standard_signature_verifies() -> None:
    event = standard.message(
        secret=WHSEC, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330
    )
    headers = event.headers
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
    )
    assert headers["webhook-signature"] == signing.standard_sign(
        WHSEC, headers["webhook-id"], 1614265330, event.body
    )
    signing.verify_standard(
        WHSEC,
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
        event.body,
        now=1614265330,
    )


def test_standard_signature_verifies_with_the_reference_library() -> None:
    from standardwebhooks import Webhook

    events.live()  # the library checks the timestamp against the real clock
    event = standard.message("order.paid", {"id": 1}, secret=WHSEC)
    assert Webhook(WHSEC).verify(event.body, dict(event.headers)) == {
        "type": "order.paid",
        "timestamp": event.payload["timestamp"],
        "data": {"id": 1},
    }


def test_standard_signature_rotation() -> None:
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    event = standard.message(secret=[WHSEC, other])
    assert len(event.headers["webhook-signature"].split(" ")) == 2
    assert event.signed(WHSEC).headers["webhook-signature"] == signing.standard_sign(
        WHSEC, event.delivery_id, int(event.headers["webhook-timestamp"]), event.body
    )


def test_standard_timestamp_forms() -> None:
    at = datetime(2026, 1, 15, 9, 30, 1, tzinfo=UTC)
    by_datetime = standard.message(timestamp=at)
    assert by_datetime.headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert by_datetime.payload["timestamp"] == "2026-01-15T09:30:01.000Z"
    with pytest.raises(ValueError):
        standard.message("")
