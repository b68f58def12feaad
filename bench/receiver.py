"""Receiver throughput and latency: `labkit listen` versus adnanh/webhook 2.8, same payload, same
load, same run, in two load shapes.

Run: .venv/bin/python bench/receiver.py [--seconds 4] [--rounds 9] [--connections 16]  (about 4 min)
Needs the Debian packages `wrk` and `webhook` (2.8.0 in bookworm). Prints a Markdown section
(bench/run.py collects it) that starts with one line per load shape.

The shapes: wrk with 1 thread (the server has the other core to itself), and wrk with 2 threads
(wrk and the server share both cores). Every round runs each server once in each shape, labkit
and webhook back to back, which of them first alternating from round to round, so drift in the
machine's load hits both alike; the figures are medians over the rounds, the ratio the median
of each round's ratio (many short rounds: on a shared machine they pair up better than few long
ones).

Work per request. labkit: verify the HMAC-SHA256 signature over the raw body, parse the JSON,
dedupe on X-GitHub-Delivery and commit the delivery (headers and body) to its SQLite log before
the 202 (WAL, synchronous=NORMAL: it survives a killed receiver; `--sync full` fsyncs too).
webhook: verify the same signature (payload-hmac-sha256; a mismatch gets 401, so a wrong
signature would show as errors), parse the JSON, answer 200 and run the hook's command
(/bin/true) after answering; it stores nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
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
SHAPES = {"1 thread": 1, "2 threads": 2}
TICK = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its children it waited for (webhook's /bin/true)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def has_children(pid: int) -> bool:
    """Whether any thread of a process has a child process running."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                return True
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while it was read
    return False


def settle(pid: int, timeout: float = 30.0) -> None:
    """Wait until a server has finished the work a run gave it: no child left and its CPU time
    unchanged over 3 samples 50 ms apart. webhook answers before it runs the hook's command, so
    after a run it goes on running a backlog of commands for a second or two, at nearly both
    cores; a run that started then would share the machine with that tail, and its CPU would
    be left out of webhook's figure."""
    deadline = time.monotonic() + timeout
    last, still = -1.0, 0
    while still < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(f"server {pid} still busy {timeout:.0f} s after its run")
        now = cpu_seconds(pid)
        busy = now != last or has_children(pid)
        still = 0 if busy else still + 1
        last = now
        time.sleep(0.05)


def wrk(
    url: str,
    path: str,
    body_file: Path,
    signature: str,
    seconds: int,
    connections: int,
    threads: int,
    pid: int,
) -> dict[str, float]:
    env = {**os.environ, "BODY_FILE": str(body_file), "SIGNATURE": signature, "TARGET_PATH": path}
    cpu = cpu_seconds(pid)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(HERE / "receiver.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    ended = time.monotonic()
    settle(pid)  # webhook's commands still queued, requests in flight at the end
    line = next((text for text in out.splitlines() if text.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk against {url} printed no result:\n{out}")
    result: dict[str, float] = json.loads(line[5:])
    result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(result["requests"], 1)
    result["tail_s"] = time.monotonic() - ended
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--no-full", action="store_true", help="leave out `labkit listen --sync full`")
    ap.add_argument(
        "--labkit-args", default="", help="extra `labkit listen` options, e.g. '--http h11'"
    )
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
                    "trigger-rule-mismatch-http-response-code": 401,
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
    exe = str(Path(sys.executable).parent / "labkit")
    extra = shlex.split(args.labkit_args)
    ports = {"labkit": free_port(), "full": free_port(), "webhook": free_port()}
    cmds = {
        "labkit": [exe, "listen", "--port", str(ports["labkit"]), "--secret", SECRET, "--db"]
        + [str(db), *extra],
        # The same receiver, with an fsync per commit: acknowledged deliveries survive power loss.
        "full": [exe, "listen", "--port", str(ports["full"]), "--secret", SECRET, "--sync"]
        + ["full", "--db", str(work / "deliveries-full.db"), *extra],
        "webhook": ["webhook", "-hooks", str(hooks), "-ip", "127.0.0.1"]
        + ["-port", str(ports["webhook"])],
    }
    if args.no_full:
        del cmds["full"]
    paths = {"labkit": "/hooks/github", "full": "/hooks/github", "webhook": "/hooks/push"}
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, cmd in cmds.items()
    }
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        shape: {name: [] for name in cmds} for shape in SHAPES
    }
    try:
        for name in cmds:
            health = "/healthz" if name != "webhook" else paths[name]
            wait_http(f"http://127.0.0.1:{ports[name]}{health}")

        def one(name: str, threads: int, seconds: int) -> dict[str, float]:
            return wrk(
                f"http://127.0.0.1:{ports[name]}",
                paths[name],
                body_file,
                signature,
                seconds,
                args.connections,
                threads,
                procs[name].pid,
            )

        warm = {name: one(name, 1, 2) for name in cmds}
        # Interleaved, so drift in the machine's load hits both alike: in each round and shape,
        # labkit and webhook run back to back (which one first alternates), then --sync full.
        pair = ["labkit", "webhook"]
        for round_no in range(args.rounds):
            for shape, threads in SHAPES.items():
                order = pair if round_no % 2 == 0 else pair[::-1]
                for name in order + [n for n in cmds if n not in pair]:
                    runs[shape][name].append(one(name, threads, args.seconds))
                    r = runs[shape][name][-1]
                    print(
                        f"round {round_no + 1} {shape} {name}: {r['rps']:.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
        with sqlite3.connect(db) as con:
            accepted = con.execute(
                "SELECT COUNT(*) FROM deliveries WHERE status IN ('accepted', 'duplicate')"
            ).fetchone()[0]
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)  # the logs grow to a GB or two
    sent_2xx = sum(
        r["requests"] - r["non2xx"] - r["errors"]
        for r in [warm["labkit"], *(r for shape in SHAPES for r in runs[shape]["labkit"])]
    )
    cmd = (
        f".venv/bin/python bench/receiver.py --seconds {args.seconds} --rounds {args.rounds}"
        f" --connections {args.connections}"
        + (" --no-full" if args.no_full else "")
        + (f" --labkit-args {shlex.quote(args.labkit_args)}" if args.labkit_args else "")
    )
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms", "tail_s")
    lines, tables = [], []
    for shape, threads in SHAPES.items():
        med = {
            n: {k: statistics.median(r[k] for r in rs) for k in keys}
            for n, rs in runs[shape].items()
        }
        errors = {n: sum(r["errors"] + r["non2xx"] for r in rs) for n, rs in runs[shape].items()}

        def ratios(name: str, shape: str = shape) -> list[float]:
            return [
                a["rps"] / b["rps"]
                for a, b in zip(runs[shape][name], runs[shape]["webhook"], strict=True)
            ]

        each = ratios("labkit")
        lines.append(
            f"receiver {shape} (wrk -t{threads} -c{args.connections}): labkit "
            f"{med['labkit']['rps']:.0f} req/s, webhook {med['webhook']['rps']:.0f} req/s, "
            f"ratio {statistics.median(each):.2f} (median of {args.rounds}; rounds "
            f"{' '.join(f'{x:.2f}' for x in each)})"
            + (
                f"; --sync full {med['full']['rps']:.0f} req/s, ratio "
                f"{statistics.median(ratios('full')):.2f}"
                if "full" in med
                else ""
            )
        )
        rows = [
            f"### wrk {threads} thread{'s' if threads > 1 else ''}, {args.connections} "
            "connections\n",
            "| receiver | req/s | p50 ms | p99 ms | server CPU ms per request | busy after the "
            "run s | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        label = {
            "labkit": "labkit listen",
            "full": "labkit listen --sync full",
            "webhook": "webhook 2.8",
        }
        for name in cmds:
            m = med[name]
            rows.append(
                f"| {label[name]} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
                f"{m['cpu_ms']:.3f} | {m['tail_s']:.2f} | {errors[name]} |"
            )
        tables.append("\n".join(rows) + "\n")
    print("## Receiver: signed GitHub push deliveries on loopback\n")
    print("```")
    print("\n".join(lines))
    print("```\n")
    print(f"Command: `{cmd}`  ")
    print(
        f"Load: wrk with 1 thread, and with 2 threads sharing the 2 cores with the server; "
        f"{args.connections} connections, {args.seconds} s per run, {args.rounds} rounds, "
        "each round running every server in both shapes, labkit and webhook back to back, "
        "which first alternating (medians shown; the ratio is the median of the rounds' "
        f"ratios); body {len(event.body)} bytes, a fresh X-GitHub-Delivery per request. "
        "Goal: ratio labkit / webhook at least 1.0 in both shapes.\n"
    )
    print(
        "Per request, labkit listen (default `--sync normal`) verifies the HMAC-SHA256 "
        "signature over the raw body, parses the JSON, dedupes on the delivery id and commits "
        "the delivery to its SQLite log (WAL) before answering 202; `--sync full` also fsyncs "
        "before answering. webhook 2.8 verifies the same signature (a mismatch would answer "
        "401 and count as an error), parses the JSON, answers 200 and then runs the hook's "
        "command (/bin/true); it stores nothing. Server CPU is the server process's user + "
        "system time over the run and until it is idle again (webhook's includes its /bin/true "
        "children) per request. After each run the next waits until the server is idle: no "
        'child process and no CPU time over 150 ms ("busy after the run"); webhook goes on '
        "running its queued commands for a while after wrk stops, and a run started then "
        "would share the cores with them.\n"
    )
    print("\n".join(tables))
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
