"""The full malformed-mail fuzz run (issue 6, item 1). See docs/reliability-fuzz.md.

    .venv/bin/python bench/fuzz.py                      # 10,000 inputs, seed 1, one worker a core
    .venv/bin/python bench/fuzz.py --inputs 50000 --seed 7 --jobs 4 --json figures.json

Input n of a run is `tests/fuzz/strategies.generate(n, seed)`: each worker process regenerates
it from (n, seed), checks the property of tests/fuzz/harness.py, and reports failures, time and
peak memory. Workers run under an address-space cap (RLIMIT_AS) and a per-input wall-clock cap
(a worker past it is killed: a failure); a worker whose resident memory has grown is replaced.
Every failing input goes to tests/fuzz/regressions/ (its bytes, or a recipe for inputs over
1 MB), which tests/test_fuzz.py replays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzz.strategies import FULL, SMALL, Size, generate  # noqa: E402

REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"
MAX_STORED = 1_000_000  # larger failing inputs are stored as a recipe (seed, index, size)
RECYCLE_MB = 400  # replace a worker whose RSS grew this much over its start


@dataclass
class Result:
    index: int
    kind: str
    size: int
    failures: list[str]
    seconds: float
    memory_mb: float | None
    outcomes: list[str] = field(default_factory=list)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _worker(conn: Any, seed: int, size: Size, memory_cap_mb: int, home: str) -> None:
    from fuzz.harness import Checker, isolate_user_dirs

    if memory_cap_mb > 0:
        cap = memory_cap_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    isolate_user_dirs(home)
    checker = Checker()
    start_rss = _rss_mb()
    while True:
        index = conn.recv()
        if index is None:
            return
        try:
            inp = generate(index, seed, size)
            outcome = checker.check(inp)
            result = Result(index, inp.kind, len(inp.data), outcome.failures, outcome.seconds,
                            outcome.memory_mb, outcome.outcomes)  # fmt: skip
        except MemoryError:
            result = Result(index, "?", 0, ["MemoryError in the harness (RLIMIT_AS)"], 0.0, None)
        conn.send(result)
        if _rss_mb() - start_rss > RECYCLE_MB:
            return  # freed memory is not handed back: a fresh worker measures the next input


class Pool:
    """Workers that can be killed and replaced one by one (a hung input must not stop the run)."""

    def __init__(self, jobs: int, seed: int, size: Size, memory_cap_mb: int, home: str) -> None:
        self.args = (seed, size, memory_cap_mb, home)
        self.ctx = multiprocessing.get_context("fork")
        self.slots: list[dict[str, Any]] = [self._start() for _ in range(jobs)]

    def _start(self) -> dict[str, Any]:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "index": None, "since": 0.0}

    def replace(self, slot: dict[str, Any]) -> None:
        if slot["proc"].is_alive():
            slot["proc"].kill()
        slot["proc"].join(5)
        slot["conn"].close()
        slot.update(self._start())

    def close(self) -> None:
        for slot in self.slots:
            with contextlib.suppress(OSError):
                slot["conn"].send(None)
            slot["proc"].join(5)
            if slot["proc"].is_alive():
                slot["proc"].kill()


def _store(index: int, seed: int, size: Size, kind: str) -> Path:
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    inp = generate(index, seed, size)
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{kind}-s{seed}-n{index}")[:120]
    if len(inp.data) <= MAX_STORED:
        path = REGRESSIONS / f"{stem}{'.mbox' if inp.mbox else '.eml'}"
        path.write_bytes(inp.data)
    else:
        path = REGRESSIONS / f"{stem}.json"
        label = "full" if size == FULL else "small"
        recipe = {"seed": seed, "index": index, "size": label, "kind": kind}
        path.write_text(json.dumps(recipe) + "\n")
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    size = FULL if args.size == "full" else SMALL
    home = tempfile.mkdtemp(prefix="guard-fuzz-home-")
    pool = Pool(args.jobs, args.seed, size, args.memory_cap, home)
    pending = iter(range(args.start, args.start + args.inputs))
    results: list[Result] = []
    started = time.monotonic()
    done = 0

    def feed(slot: dict[str, Any]) -> None:
        index = next(pending, None)
        slot["index"] = index
        if index is not None:
            slot["since"] = time.monotonic()
            slot["conn"].send(index)

    for slot in pool.slots:
        feed(slot)
    try:
        while any(slot["index"] is not None for slot in pool.slots):
            busy = [s for s in pool.slots if s["index"] is not None]
            ready = multiprocessing.connection.wait([s["conn"] for s in busy], timeout=1.0)
            now = time.monotonic()
            for slot in busy:
                result: Result | None = None
                if slot["conn"] in ready:
                    try:
                        result = slot["conn"].recv()
                    except (EOFError, OSError):
                        code = slot["proc"].exitcode
                        result = Result(slot["index"], "?", 0,
                                        [f"worker died (exit code {code})"], now - slot["since"],
                                        None)  # fmt: skip
                        pool.replace(slot)
                elif now - slot["since"] > args.timeout:
                    result = Result(slot["index"], "?", 0,
                                    [f"no answer after {args.timeout:g} s: worker killed"],
                                    now - slot["since"], None)  # fmt: skip
                    pool.replace(slot)
                if result is None:
                    continue
                if not slot["proc"].is_alive():
                    pool.replace(slot)  # it retired itself (memory) or died after answering
                results.append(result)
                done += 1
                if result.failures:
                    path = _store(result.index, args.seed, size, result.kind)
                    print(f"FAIL #{result.index} {result.kind} -> {path.relative_to(ROOT)}")
                    for failure in result.failures:
                        print("   ", failure.replace("\n", "\n    "))
                if args.progress and done % args.progress == 0:
                    print(f"... {done} inputs, {time.monotonic() - started:.0f} s", flush=True)
                feed(slot)
    finally:
        pool.close()
    return summarise(results, args, time.monotonic() - started)


def summarise(results: list[Result], args: argparse.Namespace, elapsed: float) -> dict[str, Any]:
    failed = [r for r in results if r.failures]
    slowest = max(results, key=lambda r: r.seconds)
    by_memory = [r for r in results if r.memory_mb is not None]
    hungriest = max(by_memory, key=lambda r: r.memory_mb or 0.0) if by_memory else None
    kinds = Counter(r.kind.split(":")[0] for r in results)
    outcomes = Counter(o for r in results for o in r.outcomes)
    return {
        "inputs": len(results),
        "seed": args.seed,
        "size": args.size,
        "failures": len(failed),
        "failed_inputs": [r.index for r in failed],
        "worst_seconds": round(slowest.seconds, 2),
        "worst_seconds_input": f"#{slowest.index} {slowest.kind} ({slowest.size} bytes)",
        "worst_memory_mb": round(hungriest.memory_mb or 0.0, 1) if hungriest else None,
        "worst_memory_input": (
            f"#{hungriest.index} {hungriest.kind} ({hungriest.size} bytes)" if hungriest else None
        ),
        "largest_input_bytes": max(r.size for r in results),
        "time_limit_hits": [
            f"#{r.index} {r.kind} ({r.size} bytes)"
            for r in results
            if any("took longer than" in o for o in r.outcomes)
        ],
        "elapsed_seconds": round(elapsed, 1),
        "kinds": dict(sorted(kinds.items())),
        "outcomes": dict(outcomes.most_common(25)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="how many (default 10000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first input index (default 0)")
    parser.add_argument("--size", choices=("full", "small"), default="full",
                        help="full: 20 MB parts etc. (default); small: the CI sizes")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds before a stuck worker is killed (180)")  # fmt: skip
    parser.add_argument("--memory-cap", type=int, default=8192,
                        help="RLIMIT_AS per worker in MiB, 0 for none (default 8192)")  # fmt: skip
    parser.add_argument("--progress", type=int, default=1000, help="print every N inputs")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    figures = run(args)
    print()
    print(f"inputs fuzzed:   {figures['inputs']} (seed {args.seed}, size {args.size})")
    print(f"failures:        {figures['failures']}")
    print(
        f"worst time:      {figures['worst_seconds']} s per step, {figures['worst_seconds_input']}"
    )
    print(f"worst memory:    {figures['worst_memory_mb']} MB peak RSS growth per step, "
          f"{figures['worst_memory_input']}")  # fmt: skip
    print(f"largest input:   {figures['largest_input_bytes']} bytes")
    hits = figures["time_limit_hits"]
    print(f"time limit hit:  {len(hits)} input(s) {' '.join(hits[:20])}")
    print(f"elapsed:         {figures['elapsed_seconds']} s with {args.jobs} worker(s)")
    print(f"by generator:    {figures['kinds']}")
    print("outcomes:")
    for outcome, count in figures["outcomes"].items():
        print(f"  {count:7d}  {outcome}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if figures["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
