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
from labkit.pipeline.gitsource import GitSource  # noqa: E402
from labkit.pipeline.pipeline import Pipeline, Traffic  # noqa: E402
from labkit.runtime import Choice, get  # noqa: E402

#: Marks this run's changes: a change made by an earlier run would find its image layers in the
#: build cache and skip the build, which a real new commit never does.
RUN = f"{time.time_ns():x}"

#: The stages whose medians the table breaks push-to-serving into (the monitor's settle comes
#: after the new version serves, so it is left out).
STAGES = ("build", "ship", "deploy")

FLOOR_DOCKERFILE = """\
FROM labkit/python-app:bookworm
COPY app.py /app/
CMD ["python3", "-m", "uvicorn", "--host", "0.0.0.0", "--port", "8000", "--app-dir", "/app", "app:app"]
"""


def engine_floor(app_file: Path, rounds: int) -> list[float]:
    """The engine's floor for the same work: the same one-file change built with the SDK into
    one COPY layer, a container started from it, and the first 2xx from its ``/healthz``."""
    import tempfile

    from labkit import engine

    client = engine.client()
    times = []
    with tempfile.TemporaryDirectory(prefix="labkit-floor-") as folder:
        context = Path(folder)
        (context / "Dockerfile").write_text(FLOOR_DOCKERFILE)
        source = app_file.read_text()
        with httpx.Client(trust_env=False, timeout=2) as http:
            for i in range(rounds):
                (context / "app.py").write_text(
                    source.replace('GREETING = "', f'GREETING = "floor {RUN} {i} ', 1)
                )
                t0 = time.monotonic()
                image, _ = client.images.build(
                    path=str(context), tag=f"labkit-bench-floor:{i}", rm=True, forcerm=True
                )
                container = client.containers.run(
                    image.id, detach=True, ports={"8000/tcp": ("127.0.0.1", None)}
                )
                try:
                    container.reload()
                    port = container.ports["8000/tcp"][0]["HostPort"]
                    deadline = t0 + 60
                    while True:
                        try:
                            if http.get(f"http://127.0.0.1:{port}/healthz").status_code < 300:
                                break
                        except httpx.HTTPError:
                            pass
                        if time.monotonic() > deadline:
                            raise TimeoutError("the floor's container never answered")
                        time.sleep(0.005)
                    times.append(time.monotonic() - t0)
                finally:
                    container.remove(force=True)
                    client.images.remove(image.id, force=True)
    return times


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
        stages: dict[str, list[float]] = {name: [] for name in STAGES}
        with Traffic(pipeline.url, clients=2) as traffic:
            for i in range(pushes):
                src.replace("app.py", 'GREETING = "', f'GREETING = "{RUN} {i} ')
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
                run = pipeline.wait(commit, 120)
                for name in STAGES:
                    stages[name].append(run.stage(name).seconds or 0.0)
        floor = engine_floor(src.workdir / "app.py", pushes) if runtime_name == "docker" else []
        q = statistics.quantiles(latencies, n=20, method="inclusive")
        return {
            "floor": statistics.median(floor) if floor else 0.0,
            "p50": statistics.median(latencies),
            "p95": q[18],
            "max": max(latencies),
            "push": statistics.median(push_times),
            "requests": traffic.total,
            "failed": traffic.failed,
            **{name: statistics.median(values) for name, values in stages.items()},
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
        f"{''.join(f' --runtime {n}' for n in args.runtime or [])}"
        f"{' --cold' if args.cold else ''}`  "
    )
    print(
        "Time from `git push` returning to the new version answering `/version` through the "
        "stable front; a 2-client request loop runs through every rollout. Target: p50 < 3 s, "
        "0 failed requests.\n"
    )
    print(
        "On Docker, the same run also measures the engine's floor for this work: the same "
        "one-file change built with the SDK into one COPY layer on labkit/python-app, a "
        "container started from it, and the first 2xx from its /healthz (median of as many "
        "rounds as pushes). Goal: ratio p50 / floor <= 1.5. The last three columns are the "
        "median seconds of the pipeline's own stages: build (export the commit and build the "
        "image), ship (push it to the registry, then its webhook), deploy (start the new "
        "version, wait for its health check, switch traffic, then drain and stop the old one: "
        "that last part comes after the new version serves).\n"
    )
    print(
        "| runtime | pushes | p50 s | p95 s | max s | `git push` itself s | requests | failed "
        "| floor s | ratio | build s | ship s | deploy s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = []
    for name in names:
        r = measure(name, args.pushes, args.cold)
        floor = f"{r['floor']:.2f}" if r["floor"] else "-"
        ratio = f"{r['p50'] / r['floor']:.2f}" if r["floor"] else "-"
        print(
            f"| {name} | {args.pushes} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} | "
            f"{r['push']:.2f} | {r['requests']:.0f} | {r['failed']:.0f} | {floor} | {ratio} | "
            + " | ".join(f"{r[name]:.2f}" for name in STAGES)
            + " |"
        )
        if r["floor"]:
            lines.append(
                f"push-to-serving {name}: p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, "
                f"floor {r['floor']:.2f} s, ratio {ratio}, {r['failed']:.0f} failed"
            )
    if lines:
        print("\n```\n" + "\n".join(lines) + "\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
