"""The pipeline stack: time to healthy, time to stop, and resident memory of every container.

Run: .venv/bin/python bench/stack.py [--rounds 3]
Brings `compose/pipeline` up with `labkit.Stack("pipeline").up(wait=True)` (images already built),
reads each container's memory from the engine's stats, and takes it down again, ``rounds`` times.
Prints a Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.runtime.compose import PROJECT, SERVICE, Stack  # noqa: E402

MIB = 1024 * 1024


def resident(stats: dict[str, Any]) -> float:
    """Memory the container's processes hold, without the page cache (what `docker stats` shows)."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    return (int(memory.get("usage", 0)) - int(cache)) / MIB


def one_round(stack: Stack) -> tuple[float, float, dict[str, float]]:
    import docker

    stack.down()
    t0 = time.monotonic()
    stack.up(wait=True, timeout=300, progress=None)
    up = time.monotonic() - t0
    time.sleep(5)  # let every service finish starting up before reading its memory
    client = docker.from_env()
    try:
        memory = {}
        for container in client.containers.list(filters={"label": f"{PROJECT}={stack.project}"}):
            memory[container.labels[SERVICE]] = resident(container.stats(stream=False))
    finally:
        client.close()
    t0 = time.monotonic()
    stack.down()
    return up, time.monotonic() - t0, memory


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    stack = Stack("pipeline")
    rounds = [one_round(stack) for _ in range(args.rounds)]
    ups, downs = [r[0] for r in rounds], [r[1] for r in rounds]
    services = sorted(rounds[0][2])
    print("## The pipeline stack: start-up, stop and memory\n")
    print(f"Command: `.venv/bin/python bench/stack.py --rounds {args.rounds}`  ")
    print(
        '`Stack("pipeline").up(wait=True)` from nothing running (images built) until every '
        "service is healthy, then `down()`; memory is each container's usage minus its page "
        "cache (as `docker stats` shows it), 5 s after healthy, median of the rounds.\n"
    )
    print(
        f"- up to healthy: median {statistics.median(ups):.1f} s "
        f"(rounds: {', '.join(f'{u:.1f}' for u in ups)})"
    )
    print(f"- down: median {statistics.median(downs):.1f} s\n")
    print("| service | resident MiB |")
    print("|---|---|")
    total = 0.0
    for name in services:
        value = statistics.median(r[2].get(name, 0.0) for r in rounds)
        total += value
        print(f"| {name} | {value:.1f} |")
    print(f"| **all {len(services)} containers** | **{total:.1f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
