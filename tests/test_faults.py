"""Faults the receiver must survive: an outage while sending; a full or a read-only log disk."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import labkit
from labkit.webhooks import events

from support import IN_CI, Listener, free_port

SECRET = "fault-s3cret"


def test_a_five_second_outage_loses_nothing_and_processes_each_event_once(tmp_path: Path) -> None:
    """100 events sent with retries while the receiver is down for 5 s: all 100 arrive once."""
    db = tmp_path / "outage.db"
    port = free_port()
    listener = Listener(db, secret=SECRET, port=port).start()
    listener.kill()  # the outage begins before the first event is sent
    outcomes: list[labkit.Outcome] = []
    lock = threading.Lock()
    built = [
        events.github.push(delivery_id=f"outage-{n:03d}-{uuid.uuid4().hex[:6]}") for n in range(100)
    ]

    def sender(batch: list[labkit.Event]) -> None:
        for event in batch:
            outcome = labkit.send(
                event, f"http://127.0.0.1:{port}", secret=SECRET, retries=12, backoff=0.5
            )
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
        assert len(outcomes) == 100 and all(o.ok for o in outcomes), [
            o for o in outcomes if not o.ok
        ][:3]
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
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
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
                r = client.post(
                    rx.hook_url("github"), content=event.body, headers=dict(event.headers)
                )
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
            r = client.post(rx.hook_url("github"), content=event.body, headers=dict(event.headers))
            assert r.status_code == 202, r.text
    finally:
        rx.stop()
        rx.log.close()


@dataclass
class FailingDisk:
    """An ext4 file system on a loop device, mounted the way servers mount their disks.

    ``fail()`` makes the kernel find an error on it, and with ``errors=remount-ro`` the kernel
    turns the file system read-only under the running receiver, as on a failing disk. (A plain
    ``mount -o remount,ro`` cannot do that: Linux refuses it while a file is open for writing.)
    ``repair()`` is what an operator does next: unmount, check, mount again read-write.
    """

    image: Path
    mount: Path
    devices: list[str] = field(default_factory=list)

    def _device(self) -> str:
        return subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(self.mount)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def fail(self) -> None:
        trigger = Path(f"/sys/fs/ext4/{Path(self._device()).name}/trigger_fs_error")
        if not trigger.exists():
            reason = f"this kernel has no {trigger}: the disk cannot be failed on purpose"
            if IN_CI:
                pytest.fail(reason + " (CI=true)")
            pytest.skip(reason)
        trigger.write_text("labkit fault test\n")

    def writable(self) -> bool:
        try:
            (self.mount / "probe").write_text("x")
        except OSError:
            return False
        (self.mount / "probe").unlink()
        return True

    def repair(self) -> None:
        # Lazily: the receiver still holds the log open (read-only) on the failed mount, which
        # keeps its loop device; the repaired file system gets a device of its own, so the
        # kernel mounts it afresh instead of handing back the failed one.
        subprocess.run(["umount", "-l", str(self.mount)], check=True)
        subprocess.run(["fsck.ext4", "-p", str(self.image)], capture_output=True)
        device = subprocess.run(
            ["losetup", "--find", "--show", str(self.image)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.devices.append(device)
        subprocess.run(["mount", "-o", "errors=remount-ro", device, str(self.mount)], check=True)

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], capture_output=True)
        for device in self.devices:  # a device still in use is freed when its last user goes
            subprocess.run(["losetup", "-d", device], capture_output=True)


def _mount_or_skip(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (
            f"cannot {' '.join(argv[:3])} here ({done.stderr.strip()}): needs root and loop devices"
        )
        if IN_CI:
            pytest.fail(reason + " (CI=true)")
        pytest.skip(reason)


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[FailingDisk]:
    if shutil.which("mkfs.ext4") is None:
        reason = "mkfs.ext4 is not installed: apt-get install -y e2fsprogs"
        if IN_CI:
            pytest.fail(reason + " (CI=true)")
        pytest.skip(reason)
    disk = FailingDisk(tmp_path / "disk.img", tmp_path / "disk")
    disk.mount.mkdir()
    with open(disk.image, "wb") as image:
        image.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(disk.image)], check=True, capture_output=True)
    _mount_or_skip(["mount", "-o", "loop,errors=remount-ro", str(disk.image), str(disk.mount)])
    try:
        yield disk
    finally:
        disk.remove()


def _post(client: httpx.Client, rx: labkit.Receiver, delivery_id: str) -> httpx.Response:
    event = events.github.push(delivery_id=delivery_id, secret=SECRET)
    return client.post(rx.hook_url("github"), content=event.body, headers=dict(event.headers))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sync", ["normal", "full"])
def test_a_read_only_disk_gets_503_with_a_reason_and_recovers(
    failing_disk: FailingDisk, sync: str
) -> None:
    rx = labkit.Receiver(
        SECRET, db=str(failing_disk.mount / "deliveries.db"), name="read-only-disk", sync=sync
    ).start()
    try:
        with httpx.Client(timeout=10) as client:
            acknowledged = [f"before-{n:02d}" for n in range(20)]
            for delivery_id in acknowledged:
                r = _post(client, rx, delivery_id)
                assert r.status_code == 202, r.text
            if sync == "normal":
                # Acknowledged means committed with synchronous=NORMAL: in the kernel's hands,
                # on disk at its next writeback. A disk that fails before that loses them, as
                # power loss would (the trade store.py states); here the writeback comes first.
                # With sync="full" every acknowledged delivery is on disk already.
                os.sync()
            failing_disk.fail()
            assert not failing_disk.writable(), "the kernel did not turn the disk read-only"
            for n in range(3):  # every delivery is refused the same way; nothing crashes
                refused = _post(client, rx, f"while-read-only-{n}")
                assert refused.status_code == 503, refused.text
                assert "read-only" in refused.json()["detail"], refused.json()
                assert refused.headers["retry-after"] == "5"
            assert client.get(rx.url + "/healthz").status_code == 200  # still serving
            stored = [d.id for d in rx.deliveries(1000) if d.status == "accepted"]
            assert sorted(stored) == acknowledged  # readable, and nothing acknowledged lost

            failing_disk.repair()
            r = _post(client, rx, "after-the-repair")
            assert r.status_code == 202, r.text
            stored = [d.id for d in rx.deliveries(1000) if d.status == "accepted"]
            assert sorted(stored) == sorted([*acknowledged, "after-the-repair"])
    finally:
        rx.stop()
        rx.log.close()
