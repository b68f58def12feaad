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
from labkit.webhooks.serving import free_port  # noqa: E402

from hubclient import Kernel, process_group, start_server  # noqa: E402

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
    for pid in process_group(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total / MiB


def run_lessons(room: hub.Classroom, name: str, lessons: list[str], failures: list[str]) -> float:
    """One learner runs the lessons' solution cells in a kernel of their own; returns seconds."""
    kernel = Kernel(room, name).start()
    begin = time.perf_counter()
    try:
        for number in lessons:
            for source in cells(number):
                status, out = kernel.run(source)
                if status != "ok":
                    failures.append(f"{name} lesson {number}: {out[-300:]}")
                    return time.perf_counter() - begin
    finally:
        kernel.stop()
    return time.perf_counter() - begin


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=4)
    ap.add_argument("--lessons", nargs="+", default=["01", "02", "03", "04"])
    args = ap.parse_args()
    os.environ["LABKIT_HOME"] = tempfile.mkdtemp(prefix="labkit-classroom-bench-")
    # One more learner than asked: the first runs the lessons alone first (the solo time).
    names = hub.learner_names(args.learners + 1)
    solo, group = names[0], names[1:]
    room = hub.up(names, port=free_port(), say=lambda _: None)
    pgid = int((room.folder / "hub.pid").read_text())
    client = engine.client()
    peaks: dict[str, float] = {}
    idle: dict[str, float] = {}
    cpu: dict[str, float] = {}
    walls: dict[str, float] = {}
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
            idle[name], cpu[name] = container_sample(container)
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
        walls[solo] = run_lessons(room, solo, args.lessons, failures)

        def learner(name: str) -> None:
            walls[name] = run_lessons(room, name, args.lessons, failures)

        threads = [threading.Thread(target=learner, args=(n,)) for n in group]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        sampler.join()
        for name, container in containers.items():
            cpu[name] = container_sample(container)[1] - cpu[name]
    finally:
        hub.down(forget_work=True, say=lambda _: None)

    peak = max(peaks.values())
    cpu_per = statistics.median(cpu[n] for n in group)
    alone = walls[solo]
    together = statistics.median(walls[n] for n in group)
    total_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores_here = os.cpu_count() or 1
    lessons = " ".join(args.lessons)
    print("## Classroom: memory and CPU per learner (lessons " + lessons + ")\n")
    print(
        f"Command: `.venv/bin/python bench/classroom.py --learners {args.learners} "
        f"--lessons {lessons}`\n"
    )
    print(
        "A real hub (`labkit classroom up`, DockerSpawner, the offline learner image; 1 GiB and "
        "1 CPU limits per learner). One learner runs the solution editions of the lessons alone "
        f"({solo}), then {args.learners} learners run them at the same time, each in their own "
        "kernel; every container is sampled once a second (memory without page cache). Servers "
        f"started in {started:.0f} s. Failed cells: {len(failures)}.\n"
    )
    print("| learner | idle server MiB | peak MiB | CPU s for the lessons | wall s |")
    print("|---|---|---|---|---|")
    for n in names:
        note = " (alone)" if n == solo else ""
        print(
            f"| {n}{note} | {idle[n]:.0f} | {peaks.get(n, 0):.0f} | {cpu[n]:.1f} | {walls[n]:.0f} |"
        )
    print(f"\nThe hub, its proxy and the class view together: peak {hub_peak:.0f} MiB.\n")
    print(
        f"Alone, the lessons' cells take {alone:.0f} s and {cpu[solo]:.0f} CPU s; with "
        f"{args.learners} at once on {cores_here} cores, {together:.0f} s each "
        f"({together / alone:.1f}x).\n"
    )
    # Memory is the hard limit: every learner at their peak at once, the hub, and 2 GiB for the
    # system. CPU is the soft one: a learner spends about 3 h 15 min on lessons 01-04 and uses the
    # CPU seconds above in bursts (a cell at a time). Planning rule: when a quarter of the class
    # runs the same cells at the same moment, each still finishes within twice their solo time.
    print(
        "Learners per machine: memory allows (RAM - 2 GiB - hub) / peak; CPU allows, if a "
        "quarter of the class runs the same cells at the same moment and each may take twice "
        "their time alone, 4 x cores x 2 x (solo wall s) / (CPU s per learner).\n"
    )
    print("| cores | RAM GiB | by memory | by CPU | learners |")
    print("|---|---|---|---|---|")
    for cores, ram in ((cores_here, total_gib), (4, 16), (8, 32), (16, 64)):
        by_mem = int((ram - 2 - hub_peak / 1024) * 1024 // peak)
        by_cpu = int(4 * cores * 2 * alone / cpu_per)
        print(f"| {cores} | {ram:.0f} | {by_mem} | {by_cpu} | {min(by_mem, by_cpu)} |")
    if failures:
        print("\nFailures:\n" + "\n".join(f"- {f}" for f in failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
