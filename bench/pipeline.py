"""Push-to-serving latency: from `git push` returning to the new version answering, per runtime.

Run: .venv/bin/python bench/pipeline.py [--pushes 10] [--runtime local|docker ...] [--cold]
A request loop runs through every rollout and counts failed requests. Warm build cache: one
deploy happens before the measured pushes. ``--cold`` builds every image step again on Docker
(no build cache, as on a fresh machine); the local runtime has no build cache, so its cold and
warm runs do the same work. Prints a Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from labkit import Receiver  # noqa: E402
from labkit.gitsource import GitSource  # noqa: E402
from labkit.pipeline import Pipeline, Traffic  # noqa: E402
from labkit.runtime import Choice, get  # noqa: E402


def measure(runtime_name: str, pushes: int, cold: bool = False) -> dict[str, float]:
    rx = Receiver("bench-secret", name="bench", for_containers=True).start()
    runtime = get("bench", Choice(runtime_name, "benchmark"))
    if cold and hasattr(runtime, "build_cache"):
        runtime.build_cache = False
    src = GitSource.create(rx)
    pipeline = Pipeline(rx, runtime, src, name="bench", health_timeout=30).start()
    try:
        src.push()
        pipeline.wait(src.head, 120)  # the first deploy warms the build cache
        latencies, push_times = [], []
        with Traffic(pipeline.url, clients=2) as traffic:
            for i in range(pushes):
                src.replace("app.py", 'GREETING = "', f'GREETING = "{i} ')
                commit = src.commit(f"bench {i}")
                t0 = time.monotonic()
                src.push()
                t1 = time.monotonic()
                push_times.append(t1 - t0)
                with httpx.Client(trust_env=False) as client:
                    deadline = t1 + 120
                    while client.get(pipeline.url + "/version").json()["commit"] != commit:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{commit[:7]} never served")
                        time.sleep(0.005)
                latencies.append(time.monotonic() - t1)
                pipeline.wait(commit, 120)
        q = statistics.quantiles(latencies, n=20, method="inclusive")
        return {
            "p50": statistics.median(latencies),
            "p95": q[18],
            "max": max(latencies),
            "push": statistics.median(push_times),
            "requests": traffic.total,
            "failed": traffic.failed,
        }
    finally:
        pipeline.stop()
        runtime.stop()
        rx.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=10)
    ap.add_argument("--runtime", action="append", choices=("local", "docker"))
    ap.add_argument("--cold", action="store_true", help="no build cache on Docker")
    args = ap.parse_args()
    names = args.runtime or ["local", "docker"]
    cache = "cold build cache: every image step built again" if args.cold else "warm build cache"
    print(f"## Pipeline: push-to-serving latency ({cache})\n")
    print(
        f"Command: `.venv/bin/python bench/pipeline.py --pushes {args.pushes}"
        f"{' --cold' if args.cold else ''}`  "
    )
    print(
        "Time from `git push` returning to the new version answering `/version` through the "
        "stable front; a 2-client request loop runs through every rollout. Target: p50 < 3 s, "
        "0 failed requests.\n"
    )
    print("| runtime | pushes | p50 s | p95 s | max s | `git push` itself s | requests | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        r = measure(name, args.pushes, args.cold)
        print(
            f"| {name} | {args.pushes} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} | "
            f"{r['push']:.2f} | {r['requests']:.0f} | {r['failed']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
