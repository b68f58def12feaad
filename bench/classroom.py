"""Classroom capacity: memory and CPU per learner while running lessons 01-04 in a real hub.

Run: .venv/bin/python bench/classroom.py [--learners 4] [--lessons 01 02 03 04]
Starts `labkit classroom up` (DockerSpawner, the offline learner image) in a throwaway
LABKIT_HOME, starts every learner's server, and has every learner run the solution editions of
the lessons in a kernel of their own, all at the same time. Meanwhile it samples each learner's
container (memory without page cache, CPU time) once a second, and the hub's own processes (hub,
proxy, class view). Prints a Markdown section with the measured figures and the learners per
machine they imply; `down --forget-work` at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from labkit import engine  # noqa: E402
from labkit.classroom import hub  # noqa: E402
from labkit.paths import lessons_dir  # noqa: E402
from labkit.serving import free_port  # noqa: E402

from hubclient import Kernel, start_server  # noqa: E402

MiB = 1024 * 1024


def cells(number: str) -> list[str]:
    import nbformat

    path = next(lessons_dir().glob(f"{number}-*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def container_sample(container: Any) -> tuple[float, float]:
    """(memory MiB without page cache, CPU seconds so far) of one container."""
    stats = container.stats(stream=False)
    mem = stats["memory_stats"]
    used = mem.get("usage", 0) - mem.get("stats", {}).get("inactive_file", 0)
    cpu = stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    return used / MiB, cpu


def group_rss(pgid: int) -> float:
    """Resident memory (MiB) of every process in the hub's process group."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total / MiB


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=4)
    ap.add_argument("--lessons", nargs="+", default=["01", "02", "03", "04"])
    args = ap.parse_args()
    os.environ["LABKIT_HOME"] = tempfile.mkdtemp(prefix="labkit-classroom-bench-")
    names = hub.learner_names(args.learners)
    room = hub.up(names, port=free_port(), say=lambda _: None)
    pgid = int((room.folder / "hub.pid").read_text())
    client = engine.client()
    peaks: dict[str, float] = {}
    idle: dict[str, float] = {}
    cpu_start: dict[str, float] = {}
    cpu_end: dict[str, float] = {}
    hub_peak = 0.0
    failures: list[str] = []
    try:
        t0 = time.perf_counter()
        for name in names:
            room.request("POST", f"/users/{name}/server")
        for name in names:
            start_server(room, name)
        started = time.perf_counter() - t0
        containers = {n: client.containers.get(f"{hub.CONTAINER_PREFIX}{n}") for n in names}
        for name, container in containers.items():
            idle[name], cpu_start[name] = container_sample(container)
        done = threading.Event()

        def sample() -> None:
            nonlocal hub_peak
            while not done.is_set():
                for name, container in containers.items():
                    try:
                        mem, _ = container_sample(container)
                    except Exception:  # noqa: BLE001 - a sample lost is a sample lost
                        continue
                    peaks[name] = max(peaks.get(name, 0.0), mem)
                hub_peak = max(hub_peak, group_rss(pgid))
                done.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        walls: dict[str, float] = {}

        def learner(name: str) -> None:
            kernel = Kernel(room, name).start()
            begin = time.perf_counter()
            try:
                for number in args.lessons:
                    for source in cells(number):
                        status, out = kernel.run(source)
                        if status != "ok":
                            failures.append(f"{name} lesson {number}: {out[-300:]}")
                            return
            finally:
                walls[name] = time.perf_counter() - begin
                kernel.stop()

        threads = [threading.Thread(target=learner, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        sampler.join()
        for name, container in containers.items():
            _, cpu_end[name] = container_sample(container)
    finally:
        hub.down(forget_work=True, say=lambda _: None)

    cpu = {n: cpu_end[n] - cpu_start[n] for n in names}
    peak = max(peaks.values())
    cpu_per = statistics.median(cpu.values())
    wall = statistics.median(walls.values())
    total_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lessons = " ".join(args.lessons)
    print("## Classroom: memory and CPU per learner (lessons " + lessons + ")\n")
    print(
        f"Command: `.venv/bin/python bench/classroom.py --learners {args.learners} "
        f"--lessons {lessons}`\n"
    )
    print(
        f"{args.learners} learners, each in their own container (1 GiB, 1 CPU limits), running "
        "the solution editions of the lessons in their own kernel, all at the same time; "
        f"samples once a second. Servers started in {started:.0f} s. "
        f"Failed cells: {len(failures)}.\n"
    )
    print("| learner | idle server MiB | peak MiB | CPU s for the lessons | wall s |")
    print("|---|---|---|---|---|")
    for n in names:
        print(f"| {n} | {idle[n]:.0f} | {peaks.get(n, 0):.0f} | {cpu[n]:.1f} | {walls[n]:.0f} |")
    print(f"\nThe hub, its proxy and the class view together: peak {hub_peak:.0f} MiB.\n")
    # Learners per machine: memory is the hard limit (every learner's peak at once, the hub,
    # and 2 GiB for the system); CPU is the soft one: a learner spends about 3 h 15 min on
    # lessons 01-04 and the machine's CPU time for them is measured above, so the average
    # load per learner is cpu_per / (195 * 60) cores; a room runs the same cell at nearly the
    # same moment, so leave room for a quarter of the class running at once at full speed.
    print(
        "Learners per machine, from these figures: memory allows (RAM - 2 GiB - hub) / peak; "
        "CPU allows cores / (the lessons' CPU seconds / the lessons' wall time alone) x 4, "
        "assuming at most a quarter of the class runs a cell at the same moment "
        f"(measured here: {cpu_per:.0f} CPU s over {wall:.0f} s per learner).\n"
    )
    busy = cpu_per / wall if wall else 1.0
    print("| cores | RAM GiB | by memory | by CPU | learners |")
    print("|---|---|---|---|---|")
    for cores, ram in ((2, total_gib), (4, 16), (8, 32), (16, 64)):
        by_mem = int((ram - 2 - hub_peak / 1024) * 1024 // peak)
        by_cpu = int(cores / busy * 4) if busy else by_mem
        print(f"| {cores} | {ram:.0f} | {by_mem} | {by_cpu} | {min(by_mem, by_cpu)} |")
    if failures:
        print("\nFailures:\n" + "\n".join(f"- {f}" for f in failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
