"""How long building one event of each kind takes, against serialising the same body with
json.dumps (the floor: a builder must at least write its JSON). Prints one line per kind and
a summary: `.venv/bin/python bench/events.py [--rounds N]`."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from labkit.webhooks.events import CATALOG, build


def per_call(call: Callable[[], object], rounds: int) -> float:
    call()  # warm up
    start = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    ratios = []
    for kind in sorted(CATALOG):
        event = build(kind)
        payload = event.payload
        built = per_call(lambda kind=kind: build(kind), rounds)
        floor = per_call(lambda payload=payload: json.dumps(payload).encode(), rounds)
        ratios.append(built / floor)
        print(
            f"{kind:32} {built * 1e6:8.1f} us  (json.dumps {floor * 1e6:6.1f} us, "
            f"x{built / floor:.1f})"
        )
    print(
        f"event builders: {len(ratios)} kinds, median x{statistics.median(ratios):.1f} "
        f"json.dumps, worst x{max(ratios):.1f}"
    )


if __name__ == "__main__":
    main()
