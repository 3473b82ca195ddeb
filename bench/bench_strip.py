"""`guard strip` start-up next to the bare Python filter, side by side in one run.

A delivery filter starts once per message, so its wall time on one message is its cost. This
runs, alternately, `guard strip` and a bare Python program that reads the message with the
standard `email` package and writes it back, many times each, and prints the median wall time of
both and their ratio (issue 16: at most 3x, aim 2x).

    .venv/bin/python bench/bench_strip.py [MESSAGE] [--runs N] [--baseline PATH] [--callgrind]

The program timed is the `guard` console script next to the install's python, as a server would
run it: an absolute path, no PATH. `--baseline PATH` (another install's `guard`, its python or
its venv) times that install's `guard strip` in the same rounds too, and prints old/new.
`--callgrind` also counts the instructions of one run of each under valgrind: unlike wall and CPU
time, the count does not stretch with what else the machine is doing. Nothing here touches the
network.

Compile guard's .pyc files first, as an install does (`python -m compileall -q guard`): with
PYTHONDONTWRITEBYTECODE set and no .pyc files, every start compiles guard's source again.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

DEFAULT_MESSAGE = harness.ROOT / "samples" / "eml" / "activecampaign-course-reminder.eml"
BARE = (
    "import sys,email; m=email.message_from_binary_file(sys.stdin.buffer); "
    "sys.stdout.buffer.write(m.as_bytes())"
)


def console_script(inst: harness.Install) -> str:
    """The `guard` executable of `inst`'s venv (next to its python, not resolved: that would
    leave the venv)."""
    exe = Path(inst.python).parent / "guard"
    if not exe.exists():
        raise SystemExit(f"{inst.label}: no guard executable next to {inst.python}")
    return str(exe)


def instructions(cmd: list[str], env: dict[str, str], data: bytes) -> int:
    """Instructions one run of `cmd` executes, start-up and exit included (callgrind's Ir)."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        input=data,
        env={**os.environ, **env, "PYTHONHASHSEED": "0"},
        capture_output=True,
        check=False,
    )
    found = re.search(rb"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"callgrind of {cmd[0]} failed ({done.returncode})")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message", nargs="?", type=Path, default=DEFAULT_MESSAGE)
    parser.add_argument("--runs", type=int, default=40, help="runs of each (default 40)")
    parser.add_argument("--baseline", metavar="PATH", help="another install, timed alongside")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    ns = parser.parse_args()
    data = ns.message.read_bytes()
    who = harness.installs(ns)

    def timed(cmd: list[str], env: dict[str, str]) -> Callable[[], harness.Run]:
        return lambda: harness.measure(cmd, env, stdin=data)

    steps: list[harness.Step] = [("bare filter", timed([sys.executable, "-c", BARE], {}))]
    for inst in who:
        steps.append((f"strip-{inst.label}", timed([console_script(inst), "strip"], inst.env())))
    print(f"message      {ns.message.name} ({len(data):,} bytes), {ns.runs} runs each, alternated")
    # interleaved, so load on the machine hits both alike; each runs once first (page cache)
    runs = harness.alternate(ns.runs, steps, warmup=[name for name, _ in steps])
    print("                wall median    wall min     CPU median")
    for name, rs in runs.items():
        wall = [r.wall for r in rs]
        cpu = [r.cpu for r in rs]
        print(
            f"{name:14}  {statistics.median(wall) * 1000:8.1f} ms  {min(wall) * 1000:8.1f} ms"
            f"  {statistics.median(cpu) * 1000:8.1f} ms"
        )
    bare = runs["bare filter"]
    for inst in who:
        mine = runs[f"strip-{inst.label}"]
        print(
            f"RESULT {inst.label}: guard strip / bare filter = "
            f"{harness.ratio_text([r.wall for r in mine], [r.wall for r in bare])} wall, "
            f"{harness.ratio_text([r.cpu for r in mine], [r.cpu for r in bare])} CPU"
        )
    if len(who) == 2:
        new, old = runs["strip-new"], runs["strip-old"]
        print(
            "RESULT "
            + harness.side_by_side(
                "guard strip, median wall",
                {"new": [r.wall * 1000 for r in new], "old": [r.wall * 1000 for r in old]},
                ".1f",
                " ms",
            )
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times stretch with it)")
    if ns.callgrind:
        bare_count = instructions([sys.executable, "-c", BARE], {}, data)
        print(f"RESULT instructions, one run: bare filter {bare_count / 1e6:,.0f}M")
        for inst in who:
            count = instructions([console_script(inst), "strip"], inst.env(), data)
            print(
                f"RESULT instructions, one run: strip-{inst.label} {count / 1e6:,.0f}M"
                f" ({count / bare_count:.2f}x the bare filter)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
