"""A real local git repository for the lab's web app whose ``post-receive`` hook sends GitHub-format push webhooks.

``GitSource.create(rx)`` makes a bare repository (the "server", like a repository on GitHub) and a
working clone (where you edit), both under ``$LABKIT_HOME/git/``. Every ``git push`` to the bare
repository runs its ``post-receive`` hook, which reads the pushed refs, collects the real commits
and sends a signed ``push`` delivery, exactly as GitHub would, to the receiver's URL. The URL lives
in the bare repository's git config (``labkit.url``) and the secret in a file beside it that only
its owner reads (``labkit-webhook-secret``, 0600), as a webhook's settings live on GitHub. A push from a terminal in the clone works the same way.
"""

from __future__ import annotations

import getpass
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from labkit.errors import GitSourceError
from labkit.paths import app_seed, labkit_home, package_parent
from labkit.private import private_file
from labkit.webhooks import events
from labkit.webhooks.sender import send

#: The app every pipeline lesson starts from.
APP_SEED = app_seed()
#: The Dockerfile lesson 06 has the learner finish (``# TASK n:`` lines in place of steps).
STARTER_DOCKERFILE = APP_SEED.parent / "Dockerfile.starter"
ZERO = "0" * 40
#: The hook's secret, in the bare repository (0600): like a webhook's secret on GitHub.
SECRET_FILE = "labkit-webhook-secret"
#: GitHub lists at most this many commits in one push delivery.
MAX_COMMITS = 20
_HOOK = """#!/bin/sh
# Installed by labkit: send a GitHub-format push webhook for every pushed ref.
PYTHONPATH={kit_root}${{PYTHONPATH:+:$PYTHONPATH}}
export PYTHONPATH
exec {python} -c 'import sys; from labkit.pipeline.gitsource import main; sys.exit(main(["hook"]))'
"""
_FIELD, _RECORD = "\x1f", "\x1e"


class Pushed(str):
    """What ``git push`` printed; :attr:`hook` is the part the server's hook said."""

    @property
    def hook(self) -> str:
        """The ``remote:`` lines (what the post-receive hook printed), without the prefix."""
        return "\n".join(
            line.removeprefix("remote:").strip()
            for line in self.splitlines()
            if line.startswith("remote:")
        )

    @property
    def undelivered(self) -> list[str]:
        """The delivery ids of push webhooks the hook could not deliver (to redeliver them)."""
        return _UNDELIVERED.findall(self.hook)


_UNDELIVERED = re.compile(r"NOT delivered to \S+ \(delivery ([\w-]+)\)")


class _HasHookUrl(Protocol):
    def hook_url(self, source: str) -> str: ...


def git(
    *args: str,
    cwd: Path | str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run ``git args`` in ``cwd``; return what it printed (stdout then stderr)."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    except FileNotFoundError:
        raise GitSourceError(
            "git is not installed: install it (`apt-get install -y git`, or "
            "https://git-scm.com), then run the cell again."
        ) from None
    output = done.stdout + done.stderr
    if check and done.returncode != 0:
        raise GitSourceError(
            f"`git {' '.join(args)}` failed (exit {done.returncode}):\n{output.strip()}"
        )
    return output


def _git_env() -> dict[str, str]:
    """The environment for git commands, without GIT_* variables a calling hook may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


class GitSource:
    """The web app's repository: a bare "server" repository and a working clone to edit.

    >>> src = GitSource.create(rx)                     # doctest: +SKIP
    >>> src.replace("app.py", "Hello", "Howdy")        # doctest: +SKIP
    >>> src.commit("Say howdy")                        # doctest: +SKIP
    >>> print(src.push())                              # doctest: +SKIP
    """

    def __init__(
        self,
        name: str = "web",
        *,
        root: Path | str | None = None,
        branch: str = "main",
        owner: str = "lab",
    ) -> None:

        self.name, self.branch, self.owner = name, branch, owner
        self.root = Path(root) if root is not None else labkit_home() / "git"
        self.bare = self.root / f"{name}.git"
        self.workdir = self.root / name

    @property
    def full_name(self) -> str:
        """``owner/name``, the repository's name in the push payload."""
        return f"{self.owner}/{self.name}"

    @property
    def ref(self) -> str:
        """The default branch as a full ref, ``refs/heads/main``."""
        return f"refs/heads/{self.branch}"

    # --- making it ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        receiver: _HasHookUrl | None = None,
        *,
        name: str = "web",
        seed: Path | str = APP_SEED,
        secret: str | None = None,
        url: str | None = None,
        root: Path | str | None = None,
        branch: str = "main",
        starter: bool = False,
    ) -> GitSource:
        """A fresh bare repository and clone holding ``seed``'s files in one commit, not pushed.

        With ``receiver`` (or ``url`` and ``secret``) the push hook is installed at once; the
        secret defaults to the receiver's GitHub secret. ``starter=True`` puts the unfinished
        Dockerfile (:data:`STARTER_DOCKERFILE`, with ``# TASK n:`` lines) in place of the app's.
        Any earlier repository of this name is replaced, so re-running the cell starts over.
        """
        src = cls(name, root=root, branch=branch)
        shutil.rmtree(src.bare, ignore_errors=True)
        shutil.rmtree(src.workdir, ignore_errors=True)
        src.root.mkdir(parents=True, exist_ok=True)
        env = _git_env()
        git(
            "init",
            "--quiet",
            "--bare",
            f"--initial-branch={branch}",
            str(src.bare),
            cwd=src.root,
            env=env,
        )
        git("clone", "--quiet", str(src.bare), str(src.workdir), cwd=src.root, env=env)
        git("config", "user.name", "Lab Learner", cwd=src.workdir, env=env)
        git("config", "user.email", "learner@lab.invalid", cwd=src.workdir, env=env)
        git("checkout", "--quiet", "-B", branch, cwd=src.workdir, env=env)
        for path in sorted(Path(seed).rglob("*")):
            rel = path.relative_to(seed)
            if path.is_file() and "__pycache__" not in rel.parts:
                target = src.workdir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        if starter:
            shutil.copyfile(STARTER_DOCKERFILE, src.workdir / "Dockerfile")
        src.commit("Start the web app")
        if receiver is not None or url is not None:
            src.connect(receiver, secret=secret, url=url)
        return src

    def connect(
        self,
        receiver: _HasHookUrl | None = None,
        *,
        secret: str | None = None,
        url: str | None = None,
    ) -> None:
        """Point the push webhook at ``receiver`` (or ``url``) and install the hook.

        Like adding a webhook on GitHub: the settings (URL, secret) are stored with the
        repository, in the bare repository's git config.
        """
        if url is None:
            if receiver is None:
                raise ValueError("Give a receiver, or url= the hook URL.")
            url = receiver.hook_url("github")
        if secret is None and receiver is not None:
            settings = getattr(receiver, "settings", None)
            secret = ((getattr(settings, "secrets", {}) or {}).get("github") or [None])[0]
        env = _git_env()
        git("config", "labkit.url", url, cwd=self.bare, env=env)
        # The secret goes in a file of its own (0600), never on a command line (where any
        # process listing shows it) nor in the git config (which git writes 0644).
        git("config", "--unset-all", "labkit.secret", cwd=self.bare, env=env, check=False)
        secret_file = Path(self.bare) / SECRET_FILE
        if secret:
            private_file(secret_file).write_text(secret)  # made 0600 before it is written
        else:
            secret_file.unlink(missing_ok=True)
        git("config", "labkit.repository", self.full_name, cwd=self.bare, env=env)
        git("config", "labkit.pusher", _login(), cwd=self.bare, env=env)
        hook = self.bare / "hooks" / "post-receive"
        hook.write_text(
            _HOOK.format(
                kit_root=_sh_quote(str(package_parent())), python=_sh_quote(sys.executable)
            )
        )
        hook.chmod(0o755)

    @property
    def hook(self) -> Path:
        """The bare repository's ``post-receive`` hook: the program git runs after each push."""
        return self.bare / "hooks" / "post-receive"

    # --- working in the clone --------------------------------------------------------------
    def git(self, *args: str) -> str:
        """Run ``git args`` in the working clone; return what it printed."""
        return git(*args, cwd=self.workdir, env=_git_env())

    def read(self, path: str) -> str:
        return (self.workdir / path).read_text()

    def edit(self, path: str, text: str) -> Path:
        """Write ``text`` to ``path`` in the clone (a new file, or a whole new content)."""
        target = self.workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def replace(self, path: str, old: str, new: str) -> Path:
        """Replace ``old`` by ``new`` in ``path``; fails if ``old`` is not there."""
        text = self.read(path)
        if old not in text:
            raise ValueError(f"{old!r} is not in {path}: read it with src.read({path!r}).")
        return self.edit(path, text.replace(old, new))

    def commit(self, message: str) -> str:
        """Commit every change in the clone; returns the new commit id."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.head

    def push(self, *args: str) -> Pushed:
        """``git push origin HEAD:<branch>`` (plus ``args``); returns what git printed.

        The lines starting with ``remote:`` come from the server's hook: they say whether the
        webhook was delivered (``.hook`` has only those).
        """
        return Pushed(self.git("push", *args, "origin", f"HEAD:{self.ref}"))

    @property
    def head(self) -> str:
        """The clone's current commit id."""
        return self.git("rev-parse", "HEAD").strip()

    def pushed(self) -> str | None:
        """The commit the bare repository's branch points at (``None`` before the first push)."""
        out = git(
            "rev-parse", "--verify", "--quiet", self.ref, cwd=self.bare, env=_git_env(), check=False
        ).strip()
        return out or None

    def export(self, commit: str, dest: Path | str) -> Path:
        """Write the files of ``commit`` (from the bare repository) into ``dest``."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["git", "archive", "--format=tar", commit],
            cwd=self.bare,
            capture_output=True,
            env=_git_env(),
            timeout=60,
        )
        if done.returncode != 0:
            raise GitSourceError(
                f"`git archive {commit}` failed: {done.stderr.decode(errors='replace').strip()}"
            )
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
            tar.extractall(dest, filter="data")
        return dest

    def __repr__(self) -> str:
        return f"<GitSource {self.full_name!r}, branch {self.branch!r}>"


def _sh_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _login() -> str:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "learner"
    return "".join(c if c.isalnum() or c == "-" else "-" for c in login) or "learner"


# --- the hook ---------------------------------------------------------------------------------


def _config(key: str, git_dir: Path) -> str | None:
    out = git("config", "--get", key, cwd=git_dir, check=False).strip()
    return out or None


def _commits(git_dir: Path, old: str, new: str, ref: str) -> list[dict[str, Any]]:
    """The commits a push added to ``ref``, oldest first, as GitHub lists them (at most 20)."""
    if new == ZERO:
        return []
    if old == ZERO:
        others = [
            line.split()[1]
            for line in git(
                "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", cwd=git_dir
            ).splitlines()
            if line.split()[1] != ref
        ]
        revs = [new, *(f"^{r}" for r in others)]
    else:
        revs = [f"{old}..{new}"]
    fmt = _FIELD.join(("%H", "%T", "%an", "%ae", "%cn", "%ce", "%aI", "%B")) + _RECORD
    out = git(
        "log",
        "--reverse",
        f"--max-count={MAX_COMMITS}",
        f"--format={fmt}",
        *revs,
        "--",
        cwd=git_dir,
    )
    commits = []
    for record in out.split(_RECORD):
        record = record.strip("\n")
        if not record:
            continue
        sha, tree, an, ae, cn, ce, when, message = record.split(_FIELD)
        changes: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
        status = git(
            "diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha, cwd=git_dir
        )
        for line in status.splitlines():
            kind, _, path = line.partition("\t")
            bucket = {"A": "added", "D": "removed"}.get(kind[:1], "modified")
            changes[bucket].append(path.split("\t")[-1])
        commits.append(
            {
                "id": sha,
                "tree_id": tree,
                "message": message.strip(),
                "timestamp": when,
                "author": {"name": an, "email": ae, "username": _username(an)},
                "committer": {"name": cn, "email": ce, "username": _username(cn)},
                **changes,
            }
        )
    return commits


def _username(name: str) -> str:
    return "-".join(name.lower().split()) or "unknown"


def deliver(git_dir: Path, lines: Sequence[str]) -> list[str]:
    """Send one push delivery per ``<old> <new> <ref>`` line; returns what to tell the pusher."""

    url = _config("labkit.url", git_dir)
    if url is None:
        return ["labkit: no webhook configured (labkit.url), so no push webhook was sent"]
    secret_file = Path(git_dir) / SECRET_FILE
    secret = secret_file.read_text() if secret_file.is_file() else None
    repo = _config("labkit.repository", git_dir) or f"lab/{git_dir.name.removesuffix('.git')}"
    pusher = _config("labkit.pusher", git_dir) or "learner"
    said = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        commits = _commits(git_dir, old, new, ref)
        if ref.startswith("refs/tags/"):
            kind = "delete" if new == ZERO else "tag"
        elif new == ZERO:
            kind = "delete"
        elif old == ZERO:
            kind = "new_branch"
        else:
            ancestor = subprocess.run(
                ["git", "merge-base", "--is-ancestor", old, new],
                cwd=git_dir,
                capture_output=True,
                timeout=30,
            )
            kind = "normal" if ancestor.returncode == 0 else "force"
        options: dict[str, Any] = {
            "repo": repo,
            "ref": ref,
            "kind": kind,
            "pusher": pusher,
            "commits": commits,
        }
        if kind != "new_branch":
            options["before"] = old
        if kind != "delete":
            options["after"] = new
        event = events.github.push(**options)
        outcome = send(event, url, secret=secret, retries=2, backoff=0.2, timeout=10)
        n = len(commits)
        what = f"{ref} ({n} commit{'s' if n != 1 else ''})"
        if outcome.ok:
            said.append(
                f"labkit: push webhook for {what} delivered to {url}: "
                f"HTTP {outcome.status} {outcome.detail}"
            )
        else:
            said.append(
                f"labkit: push webhook for {what} NOT delivered to {url} "
                f"(delivery {event.delivery_id}): {outcome!r} {outcome.detail}; like GitHub, "
                "nothing sends it again until someone redelivers it"
            )
    return said


def _hook_main() -> int:
    git_dir = Path(os.environ.get("GIT_DIR", ".")).resolve()
    lines = sys.stdin.read().splitlines()
    try:
        for message in deliver(git_dir, lines):
            print(message)
    except Exception as exc:  # noqa: BLE001 - the push is done; say why no webhook went out
        print(f"labkit: the push webhook was not sent: {type(exc).__name__}: {exc}")
    return 0  # post-receive cannot undo a push, so never report failure to git


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["hook"]:
        return _hook_main()
    print(
        "usage: python -m labkit.pipeline.gitsource hook   (what the post-receive hook runs)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())

__all__ = [
    "APP_SEED",
    "STARTER_DOCKERFILE",
    "GitSource",
    "GitSourceError",
    "Pushed",
    "deliver",
    "git",
]
