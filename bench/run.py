"""Regenerate bench/RESULTS.md: machine facts, then each benchmark's section with its command.

Run: .venv/bin/python bench/run.py   (the receiver part alone takes about 5 minutes; run it on an
otherwise idle machine)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [["receiver.py"], ["footprint.py"], ["lessons.py"]]
OPTIONAL = [
    ["pipeline.py"],
    ["pipeline.py", "--pushes", "5", "--cold"],
    ["ways.py"],
    ["stack.py"],
    ["lab_setup.py", "--rounds", "2"],
]


def machine() -> str:
    cpu = next(
        (
            row.split(":", 1)[1].strip()
            for row in Path("/proc/cpuinfo").read_text().splitlines()
            if row.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(row.split()[1]) // 1024 // 1024
            for row in Path("/proc/meminfo").read_text().splitlines()
            if row.startswith("MemTotal")
        ),
        0,
    )

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"

    return "\n".join(
        [
            f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- CPU: {os.cpu_count()} x {cpu}; memory {mem} GiB; {platform.platform()}",
            f"- Python {platform.python_version()}; wrk: {version(['wrk', '-v'])}; "
            f"webhook: {version(['webhook', '-version'])}",
            f"- Docker: {version(['docker', 'version', '--format', '{{.Server.Version}}'])}",
        ]
    )


def main() -> int:
    parts = [
        "# Benchmark results\n",
        "Regenerate with `.venv/bin/python bench/run.py`. "
        "Every section names the command that made it.\n",
        machine(),
        "",
    ]
    for bench in BENCHES + [b for b in OPTIONAL if (HERE / b[0]).exists()]:
        print(f"running {bench[0]} ...", flush=True)
        done = subprocess.run(
            [sys.executable, str(HERE / bench[0]), *bench[1:]], capture_output=True, text=True
        )
        if done.returncode != 0:
            parts.append(f"## {bench[0]} FAILED\n\n```\n{done.stderr[-2000:]}\n```\n")
        else:
            parts.append(done.stdout)
    (HERE / "RESULTS.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
