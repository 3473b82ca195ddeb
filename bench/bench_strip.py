"""`guard strip` start-up next to the bare Python filter, side by side in one run.

A delivery filter starts once per message, so its wall time on one message is its cost. This
runs, alternately, `guard strip` and a bare Python program that reads the message with the
standard `email` package and writes it back, many times each, and prints the median wall time of
both and their ratio (issue 16: at most 3x, aim 2x).

    .venv/bin/python bench/bench_strip.py [MESSAGE] [--runs N] [--guard PATH]

`--guard` is the program to time (default: the `guard` next to this Python, as a server would
run it: an absolute path, no PATH). Nothing here touches the network.

Compile guard's .pyc files first, as an install does (`python -m compileall -q guard`): with
PYTHONDONTWRITEBYTECODE set and no .pyc files, every start compiles guard's source again.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MESSAGE = ROOT / "samples" / "eml" / "activecampaign-course-reminder.eml"
BARE = (
    "import sys,email; m=email.message_from_binary_file(sys.stdin.buffer); "
    "sys.stdout.buffer.write(m.as_bytes())"
)


def _run(argv: list[str], data: bytes) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time shows the cost even when the machine
    is busy with other work, which stretches wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, input=data, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not done.stdout:
        sys.exit(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message", nargs="?", type=Path, default=DEFAULT_MESSAGE)
    parser.add_argument("--runs", type=int, default=40, help="runs of each (default 40)")
    parser.add_argument("--guard", default=str(Path(sys.executable).parent / "guard"))
    ns = parser.parse_args()
    data = ns.message.read_bytes()
    guard = [ns.guard, "strip"]
    bare = [sys.executable, "-c", BARE]
    for argv in (guard, bare):  # warm the page cache first
        _run(argv, data)
    runs: dict[str, list[tuple[float, float]]] = {"guard strip": [], "bare filter": []}
    for _ in range(ns.runs):  # interleaved, so load on the machine hits both alike
        runs["guard strip"].append(_run(guard, data))
        runs["bare filter"].append(_run(bare, data))
    print(f"message      {ns.message.name} ({len(data):,} bytes), {ns.runs} runs each")
    print("             wall median    wall min     CPU median")
    figures: dict[str, tuple[float, float, float]] = {}
    for name, samples in runs.items():
        wall = [w for w, _ in samples]
        cpu = [c for _, c in samples]
        figures[name] = (statistics.median(wall), min(wall), statistics.median(cpu))
        print(
            f"{name}  {figures[name][0] * 1000:8.1f} ms  {figures[name][1] * 1000:8.1f} ms"
            f"  {figures[name][2] * 1000:8.1f} ms"
        )
    g, b = figures["guard strip"], figures["bare filter"]
    print(f"ratio        {g[0] / b[0]:8.2f}x     {g[1] / b[1]:8.2f}x     {g[2] / b[2]:8.2f}x")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times stretch with it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
