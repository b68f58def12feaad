"""The `labkit` command, black-box: `labkit listen` in a subprocess, the other commands against it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit.webhooks import events

from support import LABKIT, Listener, deliveries, free_port, poll, require, run_labkit

SECRET = "cli-s3cret"
FAST = ["--backoff", "0.01"]


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    db = tmp_path_factory.mktemp("cli") / "deliveries.db"
    with Listener(db, secret=SECRET) as running:
        yield running


def by_id(listener: Listener, delivery_id: str) -> list[dict[str, Any]]:
    return [r for r in deliveries(listener.url) if r["id"] == delivery_id]


def response_of(stdout: str) -> dict[str, Any]:
    """The receiver's JSON answer, which `labkit trigger` prints last."""
    last = [line for line in stdout.splitlines() if line.strip()][-1]
    return dict(json.loads(last))


# --- trigger ---------------------------------------------------------------------------------------


def test_trigger_github_push_is_accepted(listener: Listener) -> None:
    delivery_id = str(uuid.uuid4())
    done = run_labkit(
        "trigger",
        "github.push",
        "--to",
        f"{listener.url}/hooks/github",
        "--secret",
        SECRET,
        "--delivery-id",
        delivery_id,
        *FAST,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered" in done.stdout
    rows = by_id(listener, delivery_id)
    assert [(r["source"], r["event"], r["status"], r["verified"]) for r in rows] == [
        ("github", "push", "accepted", True)
    ]


def test_trigger_with_the_wrong_secret_fails(listener: Listener) -> None:
    delivery_id = str(uuid.uuid4())
    done = run_labkit(
        "trigger",
        "github.push",
        "--to",
        f"{listener.url}/hooks/github",
        "--secret",
        "not-" + SECRET,
        "--delivery-id",
        delivery_id,
        *FAST,
    )
    assert done.returncode != 0
    assert "FAILED" in done.stdout
    assert done.stdout.count("attempt ") == 1  # a 401 is final: not retried
    rows = by_id(listener, delivery_id)
    assert len(rows) == 1 and rows[0]["status"] == "rejected" and rows[0]["reason"]


def test_trigger_without_any_secret_is_rejected(listener: Listener) -> None:
    done = run_labkit("trigger", "github.ping", "--to", listener.url, *FAST)
    assert done.returncode != 0


def test_trigger_secret_from_the_environment(listener: Listener) -> None:
    delivery_id = str(uuid.uuid4())
    done = run_labkit(
        "trigger",
        "github.ping",
        "--to",
        listener.url,
        "--delivery-id",
        delivery_id,
        *FAST,
        env={"LABKIT_WEBHOOK_SECRET": SECRET},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert by_id(listener, delivery_id)[0]["status"] == "accepted"


KINDS = sorted(events.CATALOG)


def test_trigger_every_catalog_kind_is_accepted(listener: Listener) -> None:
    """`labkit trigger KIND --to BASE_URL` for every kind in labkit.events.CATALOG."""

    def trigger(kind: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        return kind, run_labkit(
            "trigger", kind, "--to", listener.url, "--secret", SECRET, "--retries", "0"
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(trigger, KINDS))
    failures = {
        kind: (done.returncode, done.stdout[-300:] + done.stderr[-300:])
        for kind, done in results
        if done.returncode != 0
    }
    assert failures == {}, failures
    logged = {r["id"]: r for r in deliveries(listener.url)}
    for kind, done in results:
        answer = response_of(done.stdout)
        assert answer["status"] == "accepted", (kind, answer)
        row = logged[answer["id"]]
        assert row["status"] == "accepted" and row["source"] == kind.split(".")[0], (kind, row)


def test_catalog_is_not_empty() -> None:
    assert {k.split(".")[0] for k in KINDS} == {
        "github",
        "dockerhub",
        "registry",
        "alertmanager",
        "engine",
        "standard",
    }


def test_trigger_unknown_kind_exits_2_and_lists_kinds(listener: Listener) -> None:
    done = run_labkit("trigger", "github.nope", "--to", listener.url, "--secret", SECRET)
    assert done.returncode == 2
    assert "github.push" in done.stderr


def test_trigger_to_a_dead_port_fails_after_its_retries() -> None:
    port = free_port()
    t0 = time.monotonic()
    done = run_labkit(
        "trigger",
        "github.push",
        "--to",
        f"http://127.0.0.1:{port}",
        "--secret",
        SECRET,
        "--retries",
        "1",
        "--backoff",
        "0.01",
    )
    assert done.returncode == 1
    assert done.stdout.count("attempt ") == 2
    assert "FAILED" in done.stdout
    assert time.monotonic() - t0 < 20


def test_trigger_to_a_metadata_address_is_refused() -> None:
    done = run_labkit(
        "trigger",
        "github.push",
        "--to",
        "http://169.254.169.254/",
        "--secret",
        SECRET,
        "--retries",
        "0",
    )
    assert done.returncode == 2
    assert "169.254.169.254" in done.stderr and "attempt" not in done.stdout


# --- deliveries and redeliver ------------------------------------------------------------------------


def test_deliveries_lists_every_attempt(listener: Listener) -> None:
    good = str(uuid.uuid4())
    bad = str(uuid.uuid4())
    assert (
        run_labkit(
            "trigger",
            "github.push",
            "--to",
            listener.url,
            "--secret",
            SECRET,
            "--delivery-id",
            good,
            *FAST,
        ).returncode
        == 0
    )
    dead = f"http://127.0.0.1:{free_port()}"
    assert (
        run_labkit(
            "trigger",
            "github.push",
            "--to",
            dead,
            "--secret",
            SECRET,
            "--delivery-id",
            bad,
            "--retries",
            "2",
            *FAST,
        ).returncode
        == 1
    )
    text = run_labkit("deliveries")
    assert text.returncode == 0
    assert good in text.stdout and bad in text.stdout
    listed = run_labkit("deliveries", "--json", "--limit", "50")
    rows = json.loads(listed.stdout)
    assert [(r["attempt"], r["status"]) for r in rows if r["delivery_id"] == good] == [(1, 202)]
    failed = [r for r in rows if r["delivery_id"] == bad]
    assert sorted(r["attempt"] for r in failed) == [1, 2, 3]
    assert all(r["status"] is None and r["error"] for r in failed)
    assert rows[0]["delivery_id"] == bad  # newest first


def test_deliveries_when_nothing_was_sent() -> None:
    done = run_labkit("deliveries")
    assert done.returncode == 0 and "No deliveries" in done.stdout
    assert json.loads(run_labkit("deliveries", "--json").stdout) == []


def test_redeliver_is_recorded_as_a_duplicate(listener: Listener) -> None:
    delivery_id = str(uuid.uuid4())
    assert (
        run_labkit(
            "trigger",
            "github.push",
            "--to",
            listener.url,
            "--secret",
            SECRET,
            "--delivery-id",
            delivery_id,
            *FAST,
        ).returncode
        == 0
    )
    done = run_labkit("redeliver", delivery_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HTTP 200" in done.stdout
    statuses = [r["status"] for r in by_id(listener, delivery_id)]
    assert statuses == ["duplicate", "accepted"]


def test_redeliver_standard_webhooks_re_signs(listener: Listener) -> None:
    done = run_labkit(
        "trigger", "standard.message", "--to", listener.url, "--secret", SECRET, *FAST
    )
    assert done.returncode == 0, done.stdout + done.stderr
    msg_id = response_of(done.stdout)["id"]
    again = run_labkit("redeliver", msg_id, "--secret", SECRET)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [r["status"] for r in by_id(listener, msg_id)] == ["duplicate", "accepted"]


def test_redeliver_unknown_id_exits_2() -> None:
    done = run_labkit("redeliver", "no-such-id")
    assert done.returncode == 2 and "no-such-id" in done.stderr


# --- listen options ------------------------------------------------------------------------------------


def test_listen_secret_from_the_environment(tmp_path: Path) -> None:
    with Listener(tmp_path / "env.db", env={"LABKIT_WEBHOOK_SECRET": "from-env"}) as lis:
        assert (
            run_labkit(
                "trigger", "github.ping", "--to", lis.url, "--secret", "from-env", *FAST
            ).returncode
            == 0
        )
        assert (
            run_labkit(
                "trigger", "github.ping", "--to", lis.url, "--secret", SECRET, *FAST
            ).returncode
            == 1
        )
        assert [r["status"] for r in deliveries(lis.url)] == ["rejected", "accepted"]


def test_listen_max_body(tmp_path: Path) -> None:
    with Listener(tmp_path / "cap.db", secret=SECRET, extra=["--max-body", "300"]) as lis:
        done = run_labkit("trigger", "github.push", "--to", lis.url, "--secret", SECRET, *FAST)
        assert done.returncode == 1
        assert "413" in done.stdout
        row = deliveries(lis.url)[0]
        assert row["status"] == "rejected" and "cap" in row["reason"]
        small = b'{"zen":"x"}'
        ok = httpx.post(f"{lis.url}/hooks/standard", content=small)
        assert ok.status_code == 401  # small enough to reach the signature check


def test_listen_serves_the_read_api(listener: Listener) -> None:
    assert httpx.get(f"{listener.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{listener.url}/deliveries", params={"limit": 1}).status_code == 200
    assert httpx.get(f"{listener.url}/deliveries/nope").status_code == 404
    assert httpx.get(f"{listener.url}/openapi.json").status_code == 200


def test_listen_on_a_busy_port_exits_non_zero(listener: Listener, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            LABKIT,
            "listen",
            "--host",
            "127.0.0.1",
            "--port",
            str(listener.port),
            "--db",
            str(tmp_path / "busy.db"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert httpx.get(f"{listener.url}/healthz").status_code == 200


def test_listen_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    lis = Listener(tmp_path / "term.db", secret=SECRET).start()
    try:
        assert lis.proc is not None
        lis.proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal: 0 or -SIGTERM are both clean.
        assert lis.proc.wait(timeout=10) in (0, -signal.SIGTERM)
        poll(lambda: not _answers(lis.url), what="the port to close")
    finally:
        lis.stop()


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


def test_trigger_delivery_id_for_standard_webhooks(listener: Listener) -> None:
    """`--delivery-id` is the Standard Webhooks `webhook-id` (the builder calls it msg_id)."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    done = run_labkit(
        "trigger",
        "standard.message",
        "--to",
        listener.url,
        "--secret",
        SECRET,
        "--delivery-id",
        msg_id,
        *FAST,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert by_id(listener, msg_id)[0]["status"] == "accepted"


# --- listen ----------------------------------------------------------------------------------------


def test_listen_on_a_taken_port_says_so(listener: Listener, tmp_path: Path) -> None:
    done = run_labkit(
        "listen", "--port", str(listener.port), "--db", str(tmp_path / "d.db"), timeout=30
    )
    assert done.returncode != 0
    assert f"Cannot listen on port {listener.port}" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.docker  # asks the engine for its bridge network
def test_listen_for_containers_also_answers_on_the_bridge_gateway(tmp_path: Path) -> None:
    from labkit.webhooks.receiver import docker_gateway

    gateway = docker_gateway()
    require(
        gateway is not None, "no Docker bridge on this machine: nothing to listen on for containers"
    )
    assert gateway is not None
    with Listener(tmp_path / "d.db", secret=SECRET, extra=["--for-containers"]) as running:
        assert httpx.get(f"http://{gateway}:{running.port}/healthz", timeout=5).status_code == 200
        assert "host.docker.internal" in running.output()
