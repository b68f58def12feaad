"""What labkit writes about deliveries is its owner's alone: files 0600, folders it makes 0700,
and a URL token never printed by the command line."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import Receiver, send
from labkit.pipeline.runs import RunStore
from labkit.webhooks import events
from labkit.webhooks.sender import SentLog


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_receivers_delivery_log_is_private(tmp_path: Path) -> None:
    db = tmp_path / "new-folder" / "deliveries.db"
    rx = Receiver(secret="s", db=str(db)).start()
    try:
        assert send(events.github.ping(), rx, secret="s").status == 202
    finally:
        rx.stop()
    assert _mode(db) == 0o600 and _mode(db.parent) == 0o700
    for extra in (Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        if extra.exists():
            assert _mode(extra) == 0o600, extra


def test_an_existing_log_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "sent.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    SentLog(db)
    assert _mode(db) == 0o600
    runs = tmp_path / "runs.db"
    RunStore(runs).close()
    assert _mode(runs) == 0o600


def test_the_command_line_never_prints_a_url_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    token = "tok-3f9a-never-shown"
    rx = Receiver(secrets={"dockerhub": token}).start()
    try:
        cli = [sys.executable, "-m", "labkit.cli"]
        sent = subprocess.run(
            [*cli, "trigger", "dockerhub.push", "--to", rx.url, "--token", token],
            capture_output=True,
            text=True,
            timeout=60,
        )
        listed = subprocess.run([*cli, "deliveries"], capture_output=True, text=True, timeout=60)
    finally:
        rx.stop()
    assert sent.returncode == 0, sent.stderr
    assert "token=***" in sent.stdout and "token=***" in listed.stdout
    assert token not in sent.stdout + sent.stderr + listed.stdout + listed.stderr
    assert _mode(tmp_path / "sent.db") == 0o600


def test_no_secret_or_token_lies_in_clear_in_any_file_or_output(tmp_path: Path) -> None:
    """`labkit listen --db` with one secret, then every token source triggered with it: the
    secret and the token derived from it appear in no file under LABKIT_HOME (nor the
    receiver's log, -wal included) and in no output of the command line."""
    from labkit.webhooks import signing

    from support import Listener

    secret = "one-secret-4e1d-never-stored"
    token = signing.token_for(secret)
    home = tmp_path / "home"
    env = {"LABKIT_HOME": str(home)}
    home.mkdir(mode=0o700)
    listener = Listener(home / "deliveries.db", secret=secret, env=env).start()
    cli = [sys.executable, "-m", "labkit.cli"]
    outputs = []
    try:
        for kind in (
            "dockerhub.push",
            "registry.push",
            "alertmanager.firing",
            "engine.start",
            "github.push",
        ):
            done = subprocess.run(
                [*cli, "trigger", kind, "--to", listener.url, "--secret", secret],
                capture_output=True,
                text=True,
                timeout=60,
                env={**env, **_path()},
            )
            assert done.returncode == 0 and "delivered" in done.stdout, done.stdout + done.stderr
            outputs.append(done.stdout + done.stderr)
        for extra in ([], ["--json"]):
            done = subprocess.run(
                [*cli, "deliveries", *extra],
                capture_output=True,
                text=True,
                timeout=60,
                env={**env, **_path()},
            )
            outputs.append(done.stdout + done.stderr)
    finally:
        listener.stop()
    outputs.append(listener.output())
    for text in outputs:
        assert secret not in text and token not in text
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "sent.db" for p in files) and any(p.name == "deliveries.db" for p in files)
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data and token.encode() not in data, path


def _path() -> dict[str, str]:
    import os

    return {"PATH": os.environ.get("PATH", "")}


def test_an_event_shows_its_bearer_token_only_as_a_fingerprint() -> None:
    signed = events.build("registry.push").signed("tok-5e2a-not-for-eyes")
    assert signed.headers["Authorization"] == "Bearer tok-5e2a-not-for-eyes"  # on the wire
    shown = repr(signed)
    assert "tok-5e2a-not-for-eyes" not in shown and "Bearer sha256:" in shown


def test_an_existing_labkit_home_is_made_private(labkit_home: Path) -> None:
    labkit_home.mkdir(mode=0o755)
    labkit_home.chmod(0o755)
    SentLog()  # opens $LABKIT_HOME/sent.db
    assert _mode(labkit_home) == 0o700 and _mode(labkit_home / "sent.db") == 0o600
