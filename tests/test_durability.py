"""Every delivery the receiver acknowledged with a 2xx survives a SIGKILL of `labkit listen`."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import threading
import uuid
from pathlib import Path

import httpx

from labkit.webhooks import signing

from support import Listener, deliveries, github_headers, poll

SECRET = "durable-s3cret"
N = 200
SENDERS = 8
KILL_AFTER = 60  # acknowledged deliveries before the listener is killed


def signed(delivery_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "n": delivery_id}).encode()
    return body, github_headers(body, SECRET, delivery_id=delivery_id)


def accepted_in_db(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id FROM deliveries WHERE status = 'accepted'").fetchall()
    return [r[0] for r in rows]


def test_acknowledged_deliveries_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    ids = [f"dur-{n:03d}-{uuid.uuid4().hex[:8]}" for n in range(N)]
    work: queue.Queue[str] = queue.Queue()
    for delivery_id in ids:
        work.put(delivery_id)
    acked: set[str] = set()
    failed: set[str] = set()
    lock = threading.Lock()

    listener = Listener(db, secret=SECRET).start()
    url = f"{listener.url}/hooks/github"
    try:

        def sender() -> None:
            with httpx.Client(timeout=5) as client:
                while True:
                    try:
                        delivery_id = work.get_nowait()
                    except queue.Empty:
                        return
                    body, headers = signed(delivery_id)
                    try:
                        ok = client.post(url, content=body, headers=headers).is_success
                    except httpx.HTTPError:
                        ok = False
                    with lock:
                        (acked if ok else failed).add(delivery_id)

        threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
        for t in threads:
            t.start()
        poll(
            lambda: len(acked) >= KILL_AFTER,
            timeout=30,
            interval=0.001,
            what=f"{KILL_AFTER} acknowledged deliveries",
        )
        listener.kill(signal.SIGKILL)
        assert listener.proc is not None and listener.proc.returncode == -signal.SIGKILL
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive()
    finally:
        listener.stop()

    assert len(acked) + len(failed) == N
    # The kill landed mid-stream: some deliveries were acknowledged and some were not.
    assert KILL_AFTER <= len(acked) < N, (len(acked), len(failed))
    assert failed

    # Straight from the file, with nothing running ...
    on_disk = set(accepted_in_db(db))
    lost = acked - on_disk
    assert not lost, f"{len(lost)} acknowledged deliveries are missing after SIGKILL"

    # ... and through a restarted listener on the same log.
    with Listener(db, secret=SECRET) as again:
        logged = {r["id"] for r in deliveries(again.url) if r["status"] == "accepted"}
        assert acked <= logged

        # The sender retries what it never saw acknowledged: each lands exactly once, either
        # accepted now or recognised as a duplicate of one committed before the kill.
        with httpx.Client(timeout=10) as client:
            for delivery_id in sorted(failed):
                body, headers = signed(delivery_id)
                response = client.post(f"{again.url}/hooks/github", content=body, headers=headers)
                assert response.status_code in (200, 202), response.text
                expected = "duplicate" if delivery_id in on_disk else "accepted"
                assert response.json()["status"] == expected
        final = [r["id"] for r in deliveries(again.url) if r["status"] == "accepted"]
    assert sorted(final) == sorted(ids)  # all N, none twice


def test_signature_helper_matches_the_receiver() -> None:
    """Guard for the test above: its deliveries are signed the way the receiver checks."""
    body, headers = signed("x")
    assert signing.verify_github(body, SECRET, headers["X-Hub-Signature-256"]) == "sha256"
