"""What labkit writes about deliveries is its owner's alone: files 0600, folders it makes 0700,
and a URL token never printed by the command line."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import Receiver, events, send
from labkit.runs import RunStore
from labkit.sender import SentLog


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


def test_the_command_line_never_prints_a_url_token(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    token = "tok-3f9a-never-shown"
    rx = Receiver(secrets={"dockerhub": token}).start()
    try:
        cli = [sys.executable, "-m", "labkit.cli"]
        sent = subprocess.run([*cli, "trigger", "dockerhub.push", "--to", rx.url, "--secret",
                               token], capture_output=True, text=True, timeout=60)
        listed = subprocess.run([*cli, "deliveries"], capture_output=True, text=True, timeout=60)
    finally:
        rx.stop()
    assert sent.returncode == 0, sent.stderr
    assert "token=***" in sent.stdout and "token=***" in listed.stdout
    assert token not in sent.stdout + sent.stderr + listed.stdout + listed.stderr
    assert _mode(tmp_path / "sent.db") == 0o600
