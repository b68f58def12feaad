"""The git source: a real bare repository whose post-receive hook sends signed GitHub push webhooks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from labkit import Receiver
from labkit.errors import GitSourceError
from labkit.pipeline.gitsource import ZERO, GitSource

SECRET = "s3cret"


def pushes(rx: Receiver) -> list[dict]:
    rx.idle()
    return [d.payload for d in reversed(rx.deliveries(source="github")) if d.status == "accepted"]


def test_the_first_push_delivers_a_verified_push_with_the_real_commit(rx: Receiver) -> None:
    src = GitSource.create(rx)
    assert src.pushed() is None, "create() commits the seed but does not push it"
    head = src.head
    out = src.push()
    assert "remote: labkit: push webhook for refs/heads/main (1 commit) delivered to" in out
    assert "HTTP 202 accepted" in out and SECRET not in out
    assert out.hook.startswith("labkit: push webhook for refs/heads/main (1 commit) delivered")
    assert "remote:" not in out.hook and "To " not in out.hook
    assert src.pushed() == head
    delivery = rx.deliveries(source="github")[0]
    assert delivery.verified and delivery.status == "accepted" and delivery.event == "push"
    assert delivery.headers["x-hub-signature-256"].startswith("sha256=")
    payload = delivery.payload
    assert payload["ref"] == "refs/heads/main" and payload["after"] == head
    assert payload["before"] == ZERO and payload["created"] is True
    assert payload["repository"]["full_name"] == "lab/web"
    (commit,) = payload["commits"]
    assert commit["id"] == head == payload["head_commit"]["id"]
    assert commit["message"] == "Start the web app"
    assert commit["author"]["name"] == "Lab Learner"
    assert commit["author"]["email"] == "learner@lab.invalid"
    assert "app.py" in commit["added"]
    tree = src.git("rev-parse", "HEAD^{tree}").strip()
    assert commit["tree_id"] == tree


def test_a_second_push_lists_the_new_commits_and_what_they_changed(rx: Receiver) -> None:
    src = GitSource.create(rx)
    src.push()
    before = src.head
    src.replace("app.py", "Hello from", "Howdy from")
    first = src.commit("Say howdy")
    src.edit("NOTES.md", "notes\n")
    second = src.commit("Add notes\n\nWith a longer body.")
    src.push()
    payload = pushes(rx)[-1]
    assert (payload["before"], payload["after"]) == (before, second)
    assert payload["created"] is False and payload["forced"] is False
    assert [c["id"] for c in payload["commits"]] == [first, second]
    assert payload["commits"][0]["modified"] == ["app.py"]
    assert payload["commits"][1]["added"] == ["NOTES.md"]
    assert payload["commits"][1]["message"] == "Add notes\n\nWith a longer body."


def test_a_new_branch_lists_only_its_own_commits_and_a_force_push_is_marked(rx: Receiver) -> None:
    src = GitSource.create(rx)
    src.push()
    src.git("checkout", "--quiet", "-b", "feature")
    mine = src.commit("Work on a feature")
    src.git("push", "--quiet", "origin", "feature")
    payload = pushes(rx)[-1]
    assert payload["ref"] == "refs/heads/feature" and payload["before"] == ZERO
    assert [c["id"] for c in payload["commits"]] == [mine]
    src.git("reset", "--quiet", "--hard", "HEAD~1")
    replaced = src.commit("Work on it differently")
    src.git("push", "--quiet", "--force", "origin", "feature")
    payload = pushes(rx)[-1]
    assert payload["forced"] is True and payload["after"] == replaced


def test_a_tag_push_and_a_branch_delete(rx: Receiver) -> None:
    src = GitSource.create(rx)
    src.push()
    src.git("tag", "v1.0.0")
    src.git("push", "--quiet", "origin", "v1.0.0")
    payload = pushes(rx)[-1]
    assert payload["ref"] == "refs/tags/v1.0.0" and payload["commits"] == []
    assert payload["head_commit"]["id"] == src.head
    src.git("push", "--quiet", "origin", "HEAD:refs/heads/tmp")
    src.git("push", "--quiet", "origin", "--delete", "tmp")
    payload = pushes(rx)[-1]
    assert payload["ref"] == "refs/heads/tmp" and payload["deleted"] is True
    assert payload["after"] == ZERO


def test_a_push_from_a_terminal_is_a_real_push_too(rx: Receiver) -> None:
    src = GitSource.create(rx)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    done = subprocess.run(
        ["git", "push", "origin", "main"],
        cwd=src.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "HTTP 202 accepted" in done.stderr
    assert pushes(rx)[-1]["after"] == src.head


def test_a_wrong_secret_is_rejected_and_git_says_so(make_receiver: Callable[..., Receiver]) -> None:
    rx = make_receiver(SECRET)
    src = GitSource.create(rx, secret="not-the-secret")
    out = src.push()
    assert "NOT delivered" in out and "401" in out
    assert rx.deliveries(source="github")[0].status == "rejected"
    assert src.pushed() == src.head, "a post-receive hook cannot undo the push"


def test_without_a_webhook_the_push_still_works_and_says_nothing_was_sent(tmp_path) -> None:
    src = GitSource.create(root=tmp_path)
    assert src.push().count("remote:") == 0
    src.connect(url="http://127.0.0.1:9/hooks/github", secret=SECRET)
    src.commit("Another")
    out = src.push()
    assert "NOT delivered" in out


def test_export_writes_the_files_of_a_commit(rx: Receiver, tmp_path) -> None:
    src = GitSource.create(rx)
    src.push()
    first = src.head
    src.replace("app.py", "Hello from", "Howdy from")
    src.commit("Howdy")
    src.push()
    out = src.export(first, tmp_path / "checkout")
    assert "Hello from" in (out / "app.py").read_text()
    with pytest.raises(GitSourceError, match="git archive"):
        src.export("f" * 40, tmp_path / "nothing")
    with pytest.raises(ValueError, match="is not in app.py"):
        src.replace("app.py", "no such text", "x")


def test_create_again_starts_over(rx: Receiver) -> None:
    src = GitSource.create(rx)
    src.push()
    again = GitSource.create(rx)
    assert again.pushed() is None
    assert again.git("log", "--oneline").count("\n") == 1
