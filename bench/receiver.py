"""Receiver throughput and latency: `labkit listen` versus adnanh/webhook, same payload, same load, same run.

Run: .venv/bin/python bench/receiver.py [--seconds 10] [--rounds 3] [--connections 16]
Needs the Debian packages `wrk` and `webhook`. Prints a Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status: the server is up
                return
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wrk(
    url: str, path: str, body_file: Path, signature: str, seconds: int, connections: int
) -> dict[str, float]:
    env = {**os.environ, "BODY_FILE": str(body_file), "SIGNATURE": signature, "TARGET_PATH": path}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "receiver.lua"), url],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    line = next((text for text in out.splitlines() if text.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk against {url} printed no result:\n{out}")
    return json.loads(line[5:])  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    for tool in ("wrk", "webhook"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install {tool}")
    sys.path.insert(0, str(HERE.parent))
    import labkit

    labkit.events.deterministic(1)
    event = labkit.events.github.push(secret=SECRET)
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    body_file = work / "body.json"
    body_file.write_bytes(event.body)
    signature = event.headers["X-Hub-Signature-256"]
    hooks = work / "hooks.json"
    hooks.write_text(
        json.dumps(
            [
                {
                    "id": "push",
                    "execute-command": "/bin/true",
                    "trigger-rule": {
                        "match": {
                            "type": "payload-hmac-sha256",
                            "secret": SECRET,
                            "parameter": {"source": "header", "name": "X-Hub-Signature-256"},
                        }
                    },
                }
            ]
        )
    )
    db = work / "deliveries.db"
    lp, fp, wp = free_port(), free_port(), free_port()
    labkit = str(Path(sys.executable).parent / "labkit")
    labkit_cmd = [labkit, "listen", "--port", str(lp), "--secret", SECRET, "--db", str(db)]
    # The same receiver, with an fsync per commit: acknowledged deliveries survive power loss.
    full_cmd = [
        labkit,
        "listen",
        "--port",
        str(fp),
        "--secret",
        SECRET,
        "--sync",
        "full",
        "--db",
        str(work / "deliveries-full.db"),
    ]
    webhook_cmd = ["webhook", "-hooks", str(hooks), "-ip", "127.0.0.1", "-port", str(wp)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for cmd in (labkit_cmd, full_cmd, webhook_cmd)
    ]
    try:
        wait_http(f"http://127.0.0.1:{lp}/healthz")
        wait_http(f"http://127.0.0.1:{fp}/healthz")
        wait_http(f"http://127.0.0.1:{wp}/hooks/push")
        runs: dict[str, list[dict[str, float]]] = {"labkit": [], "full": [], "webhook": []}
        targets = {
            "labkit": (f"http://127.0.0.1:{lp}", "/hooks/github"),
            "full": (f"http://127.0.0.1:{fp}", "/hooks/github"),
            "webhook": (f"http://127.0.0.1:{wp}", "/hooks/push"),
        }
        warm = {
            name: wrk(url, path, body_file, signature, 2, args.connections)
            for name, (url, path) in targets.items()
        }
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            for name, (url, path) in targets.items():
                runs[name].append(
                    wrk(url, path, body_file, signature, args.seconds, args.connections)
                )
        with sqlite3.connect(db) as con:
            accepted = con.execute(
                "SELECT COUNT(*) FROM deliveries WHERE status IN ('accepted', 'duplicate')"
            ).fetchone()[0]
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    sent_2xx = sum(
        r["requests"] - r["non2xx"] - r["errors"] for r in [warm["labkit"], *runs["labkit"]]
    )
    med = {
        n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
        for n, rs in runs.items()
    }
    ratio = med["labkit"]["rps"] / med["webhook"]["rps"]
    errors = {n: sum(r["errors"] + r["non2xx"] for r in rs) for n, rs in runs.items()}
    cmd = (
        f".venv/bin/python bench/receiver.py --seconds {args.seconds} --rounds {args.rounds}"
        f" --connections {args.connections}"
    )
    print("## Receiver: signed GitHub push deliveries on loopback\n")
    print(f"Command: `{cmd}`  ")
    print(
        f"Load: wrk, 1 thread, {args.connections} connections, {args.seconds} s per run, "
        f"{args.rounds} interleaved runs each (median shown); body {len(event.body)} bytes, "
        "a fresh X-GitHub-Delivery per request.\n"
    )
    print("| receiver | what it does per request | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    print(
        f"| labkit listen | verify HMAC, parse, dedupe, commit to SQLite (WAL), 202 | "
        f"{med['labkit']['rps']:.0f} | {med['labkit']['p50_ms']:.2f} | "
        f"{med['labkit']['p99_ms']:.2f} | {errors['labkit']} |"
    )
    print(
        f"| labkit listen --sync full | the same, and fsync before the 202 | "
        f"{med['full']['rps']:.0f} | {med['full']['p50_ms']:.2f} | "
        f"{med['full']['p99_ms']:.2f} | {errors['full']} |"
    )
    print(
        f"| webhook 2.8 | verify HMAC, run /bin/true, 200; nothing stored | "
        f"{med['webhook']['rps']:.0f} | {med['webhook']['p50_ms']:.2f} | "
        f"{med['webhook']['p99_ms']:.2f} | {errors['webhook']} |"
    )
    print(
        f"\n**Throughput ratio labkit / webhook: {ratio:.2f}x** (goal: at least 1.0x); "
        f"with `--sync full`: {med['full']['rps'] / med['webhook']['rps']:.2f}x.  "
    )
    print(
        "The default (`--sync normal`) keeps every acknowledged delivery when the receiver is "
        "killed (tests/test_durability.py); `--sync full` also when the machine loses power "
        "or the disk fails (tests/test_faults.py).  "
    )
    print(
        f"Durability check: {sent_2xx} deliveries acknowledged with 2xx by labkit (warm-up "
        f"included), {accepted} accepted or duplicate rows in its log after the run (wrk may "
        "count fewer: requests still in flight when a run ends are answered but not counted)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
