"""The learner's side: every check also reaches the classroom, as a signed webhook.

Inside a workshop hub, each learner's server has ``LABKIT_CLASSROOM_URL`` (the class view's
receiver) and ``LABKIT_CLASSROOM_SECRET`` (this learner's own Standard Webhooks secret). After a
check is kept in the learner's local record, :func:`report_soon` sends every check the class view
has not acknowledged yet, in one batch, from a background thread: a check never waits for the
network. A learner offline keeps their record; the next check sends what was missed, and the
class view ignores a check it already has (ids are per learner).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from labkit.paths import learner, setting
from labkit.teaching import record
from labkit.waiting import Deadline
from labkit.webhooks.signing import standard_headers

#: The Standard Webhooks event type of a batch of checks.
EVENT_TYPE = "progress.checked"


def learner_secret(key: bytes, learner: str) -> str:
    """The ``whsec_`` secret with which ``learner`` signs their progress.

    Derived from the one classroom key: the class view holds the key and derives any learner's
    secret; each learner's server is given only its own, so a learner can sign their own progress
    but never another learner's.
    """
    digest = hmac.new(key, b"labkit-classroom-progress\0" + learner.encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(digest.digest()).decode()


#: At most this many checks in one webhook; more are sent in following batches.
BATCH = 200
TIMEOUT = 5.0

_lock = threading.Lock()
_wanted = threading.Event()
_worker: threading.Thread | None = None
#: The last outcome, for ``labkit doctor`` and tests: "" before any attempt.
last_outcome = ""


def configured() -> bool:
    """Whether this learner's server belongs to a classroom."""
    return bool(setting("LABKIT_CLASSROOM_URL") and setting("LABKIT_CLASSROOM_SECRET"))


def report_now(file: Path | None = None) -> str:
    """Send every unacknowledged check; returns what happened, in words (never raises)."""
    global last_outcome
    url = setting("LABKIT_CLASSROOM_URL")
    secret = setting("LABKIT_CLASSROOM_SECRET")
    who = learner()
    if not (url and secret and who):
        last_outcome = "not in a classroom (LABKIT_CLASSROOM_URL, _SECRET, LABKIT_LEARNER)"
        return last_outcome
    sent = 0
    try:
        while True:
            pending = record.unreported(file)[:BATCH]
            if not pending:
                break
            body = json.dumps(
                {
                    "type": EVENT_TYPE,
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "data": {
                        "learner": who,
                        "checks": [{"id": i, **asdict(a)} for i, a in pending],
                    },
                },
                separators=(",", ":"),
            ).encode()
            msg_id = "msg_" + secrets.token_hex(12)
            headers = standard_headers(secret, msg_id, int(time.time()), body)
            headers["content-type"] = "application/json"
            answer = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT)
            if answer.status_code // 100 != 2:
                last_outcome = f"the class view answered {answer.status_code}; kept locally"
                return last_outcome
            record.mark_reported(pending[-1][0], file)
            sent += len(pending)
    except (httpx.HTTPError, OSError) as exc:
        last_outcome = f"the class view is not reachable ({type(exc).__name__}); kept locally"
        return last_outcome
    last_outcome = f"{sent} check(s) sent" if sent else "nothing to send"
    return last_outcome


def _loop() -> None:
    while True:
        _wanted.wait()
        _wanted.clear()
        with _lock:
            report_now()


def report_soon() -> None:
    """Ask the background sender to send what is pending (returns at once)."""
    global _worker
    if not configured():
        return
    _wanted.set()
    if _worker is None or not _worker.is_alive():
        _worker = threading.Thread(target=_loop, name="labkit-classroom-report", daemon=True)
        _worker.start()


def wait_sent(timeout: float = 10.0) -> str:
    """Send what is pending in this thread (after any send under way); for tests and the CLI."""
    deadline = Deadline(timeout)
    while not _lock.acquire(timeout=0.1):
        if deadline.passed():
            return "a send is still under way"
    try:
        return report_now()
    finally:
        _lock.release()
