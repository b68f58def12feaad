"""Footprint: resident memory of a Python process (like a kernel) running a receiver, idle and after load.

Run: .venv/bin/python bench/footprint.py [--deliveries 2000]
Prints a Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deliveries", type=int, default=2000)
    args = ap.parse_args()
    before = rss_mib()
    import httpx

    import labkit

    imported = rss_mib()
    rx = labkit.Receiver(secret="s3cret", name="footprint").start()
    started = rss_mib()
    labkit.events.deterministic(3)
    event = labkit.events.github.push(secret="s3cret")
    t0 = time.perf_counter()
    with httpx.Client() as client:
        for i in range(args.deliveries):
            client.post(
                rx.hook_url("github"),
                content=event.body,
                headers={**event.headers, "X-GitHub-Delivery": f"fp-{i}"},
            )
    elapsed = time.perf_counter() - t0
    loaded = rss_mib()
    accepted = rx.log.count("accepted")
    rx.stop()
    print("## Footprint: a kernel-like process running a receiver\n")
    print(f"Command: `.venv/bin/python bench/footprint.py --deliveries {args.deliveries}`\n")
    print("| moment | resident MiB |")
    print("|---|---|")
    print(f"| bare interpreter | {before:.1f} |")
    print(f"| after `import labkit` | {imported:.1f} |")
    print(f"| receiver started | {started:.1f} |")
    print(
        f"| after {args.deliveries} deliveries kept in the in-memory log "
        f"({len(event.body)} bytes each) | {loaded:.1f} |"
    )
    print(
        f"\n{accepted} accepted; sequential client in the same process: "
        f"{args.deliveries / elapsed:.0f} deliveries/s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
