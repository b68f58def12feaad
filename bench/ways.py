"""Ways down for Docker push-to-serving, each measured on the engine in one run (issue #17 item 2).

Run: .venv/bin/python bench/ways.py [--rounds 8]   (Docker; about 2 min)

Every round makes the same one-file change to the pipeline app (compose/pipeline/app) and times:

- the build as the app's Dockerfile has it (``COPY`` then ``RUN python3 -m compileall``: the build
  step that stops a broken commit), against the same Dockerfile without the ``RUN`` step (one
  changing layer, compilation checked elsewhere); which of the two builds first alternates;
- for a container of the first image: start to the first 2xx from ``/healthz`` (what a readiness
  probe of the deployer's own, asking every 5 ms, would see), and start to Docker's ``healthy``
  (the HEALTHCHECK, every 1 s, that the deploy waits for today).

It also reports the build context the pipeline sends (``git archive`` of the commit). Prints a
Markdown section (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
APP = HERE.parent / "compose" / "pipeline" / "app"
TAG = "labkit-bench-ways"


def build(client: Any, context: Path, tag: str) -> tuple[str, float]:
    t0 = time.monotonic()
    image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    return image.id, time.monotonic() - t0


def start_to_ready(client: Any, image: str) -> tuple[float, float]:
    """Seconds from the container's start to its first 2xx on /healthz, and to Docker's healthy."""
    container = client.containers.run(image, detach=True, ports={"8000/tcp": ("127.0.0.1", None)})
    t0 = time.monotonic()
    try:
        container.reload()
        port = container.ports["8000/tcp"][0]["HostPort"]
        first_2xx = healthy = 0.0
        with httpx.Client(trust_env=False, timeout=1) as http:
            while not (first_2xx and healthy):
                now = time.monotonic() - t0
                if now > 60:
                    raise TimeoutError("the container never got healthy")
                if not first_2xx:
                    try:
                        if http.get(f"http://127.0.0.1:{port}/healthz").is_success:
                            first_2xx = time.monotonic() - t0
                    except httpx.HTTPError:
                        pass
                if not healthy:
                    container.reload()
                    if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                        healthy = time.monotonic() - t0
                time.sleep(0.005)
        return first_2xx, healthy
    finally:
        container.remove(force=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from labkit import engine

    client = engine.client()
    times: dict[str, list[float]] = {
        "as is": [],
        "one layer": [],
        "first 2xx": [],
        "healthy": [],
    }
    with tempfile.TemporaryDirectory(prefix="labkit-ways-") as folder:
        as_is, one_layer = Path(folder) / "as-is", Path(folder) / "one-layer"
        shutil.copytree(APP, as_is)
        shutil.copytree(APP, one_layer)
        dockerfile = (APP / "Dockerfile").read_text()
        step = "RUN python3 -m compileall -q /app"
        if step not in dockerfile:
            sys.exit(f"{APP / 'Dockerfile'} no longer has {step!r}: update this benchmark")
        (one_layer / "Dockerfile").write_text(dockerfile.replace(step, ""))
        context = sum(p.stat().st_size for p in as_is.rglob("*") if p.is_file())
        source = (APP / "app.py").read_text()
        run = f"{time.time_ns():x}"  # a change no earlier run made: never in the build cache
        images = []
        for i in range(args.rounds):
            for folder_ in (as_is, one_layer):
                (folder_ / "app.py").write_text(
                    source.replace('GREETING = "', f'GREETING = "ways {run} {i} ', 1)
                )
            order = [("as is", as_is), ("one layer", one_layer)]
            for name, path in order if i % 2 == 0 else order[::-1]:
                image, seconds = build(client, path, f"{TAG}:{name.replace(' ', '-')}-{i}")
                times[name].append(seconds)
                images.append(image)
                if name == "as is":
                    first = image
            first_2xx, healthy = start_to_ready(client, first)
            times["first 2xx"].append(first_2xx)
            times["healthy"].append(healthy)
            print(
                f"round {i + 1}: build {times['as is'][-1]:.2f} / {times['one layer'][-1]:.2f} s, "
                f"first 2xx {first_2xx:.2f} s, healthy {healthy:.2f} s",
                file=sys.stderr,
                flush=True,
            )
        for image in images:
            client.images.remove(image, force=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    print("## Pipeline: ways down for Docker push-to-serving, each measured\n")
    print(f"Command: `.venv/bin/python bench/ways.py --rounds {args.rounds}`  ")
    print(
        f"Medians of {args.rounds} rounds, the same one-file change to the pipeline app each "
        "round, warm build cache.\n"
    )
    print("| way | as it is s | the other way s | saved s |")
    print("|---|---|---|---|")
    print(
        f"| build: `COPY` + `RUN compileall` against one `COPY` layer | {med['as is']:.2f} | "
        f"{med['one layer']:.2f} | {med['as is'] - med['one layer']:.2f} |"
    )
    print(
        f"| deploy: Docker's HEALTHCHECK (1 s interval) against a first-2xx probe | "
        f"{med['healthy']:.2f} | {med['first 2xx']:.2f} | {med['healthy'] - med['first 2xx']:.2f} |"
    )
    print(
        f"\nBuild context the pipeline sends (`git archive` of the commit): {context} bytes, "
        "the app's three files; nothing to trim.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
