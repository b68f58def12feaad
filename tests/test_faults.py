"""Faults the receiver must survive: an outage during sending, and a full disk under its log."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import Listener, free_port

import labkit
from labkit import events

IN_CI = os.environ.get("CI", "").lower() == "true"
SECRET = "fault-s3cret"


def test_a_five_second_outage_loses_nothing_and_processes_each_event_once(
        tmp_path: Path) -> None:
    """100 events sent with retries while the receiver is down for 5 s: all 100 arrive once."""
    db = tmp_path / "outage.db"
    port = free_port()
    listener = Listener(db, secret=SECRET, port=port).start()
    listener.kill()  # the outage begins before the first event is sent
    outcomes: list[labkit.Outcome] = []
    lock = threading.Lock()
    built = [events.github.push(delivery_id=f"outage-{n:03d}-{uuid.uuid4().hex[:6]}")
             for n in range(100)]

    def sender(batch: list[labkit.Event]) -> None:
        for event in batch:
            outcome = labkit.send(event, f"http://127.0.0.1:{port}", secret=SECRET, retries=12,
                                  backoff=0.5)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=sender, args=(built[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    back = Listener(db, secret=SECRET, port=port)
    restarted = threading.Timer(5.0, back.start)
    restarted.start()
    try:
        for t in threads:
            t.join(timeout=120)
        restarted.join()
        assert len(outcomes) == 100 and all(o.ok for o in outcomes), \
            [o for o in outcomes if not o.ok][:3]
        assert sum(len(o.attempts) > 1 for o in outcomes) > 0, "the outage was never felt"
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT id FROM deliveries WHERE status = 'accepted'").fetchall()
        ids = [r[0] for r in rows]
        assert sorted(ids) == sorted(e.delivery_id for e in built)  # every one, exactly once
    finally:
        restarted.cancel()
        restarted.join()
        back.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 320 KiB tmpfs: a disk this machine can fill in a second and then make bigger again."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a small tmpfs here ({done.stderr.strip()}): needs root"
        if IN_CI:
            pytest.fail(reason + " (CI=true)")
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gets_503_with_a_reason_and_recovers(small_disk: Path) -> None:
    rx = labkit.Receiver(SECRET, db=str(small_disk / "deliveries.db"), name="full-disk").start()
    try:
        acknowledged: list[str] = []
        refused: httpx.Response | None = None
        with httpx.Client(timeout=10) as client:
            for n in range(200):
                event = events.github.push(commits=3, delivery_id=f"full-{n:03d}", secret=SECRET)
                r = client.post(rx.hook_url("github"), content=event.body,
                                headers=dict(event.headers))
                if r.status_code == 503:
                    refused = r
                    break
                assert r.status_code == 202, r.text
                acknowledged.append(event.delivery_id)
            assert refused is not None, "the disk never filled up"
            assert "full" in refused.json()["detail"] and refused.headers["retry-after"] == "5"
            assert client.get(rx.url + "/healthz").status_code == 200  # still serving
            stored = {d.id for d in rx.deliveries(1000) if d.status == "accepted"}
            assert stored == set(acknowledged)  # nothing acknowledged was lost
            subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
            event = events.github.push(delivery_id="after-the-disk-grew", secret=SECRET)
            r = client.post(rx.hook_url("github"), content=event.body,
                            headers=dict(event.headers))
            assert r.status_code == 202, r.text
    finally:
        rx.stop()
        rx.log.close()
