"""Benchmark: `guard watch` latency - another client's APPEND to the cleaned copy in place.

    .venv/bin/python bench/bench_watch.py              # 20 messages
    .venv/bin/python bench/bench_watch.py --messages 50

Starts the test Dovecot (tests/dovecot.py) and `guard watch` in a separate process, then appends
tracking newsletters one at a time from another connection and polls (every 5 ms, a third
connection) until the message's cleaned copy has `$GuardCleaned` and its original has left INBOX.
Prints median / p90 / max. Target: <= 2 s (Dovecot itself delays IDLE notices by ~0.5 s).
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_clean import USER, write_config  # noqa: E402
from corpus import message  # noqa: E402
from dovecot import Dovecot  # noqa: E402


def message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise ValueError("no Message-ID")


def wait_cleaned(c: Any, mid: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.noop()
        if c.search(["HEADER", "Message-ID", mid, "KEYWORD", "$GuardCleaned"]) and not c.search(
            ["HEADER", "Message-ID", mid, "NOT", "KEYWORD", "$GuardCleaned"]
        ):
            return
        time.sleep(0.005)
    raise SystemExit(f"{mid} was not cleaned within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    server = Dovecot.start()
    home = Path(tempfile.mkdtemp(prefix="guard-bench-watch-"))
    rng = random.Random(7)
    proc: subprocess.Popen[str] | None = None
    try:
        env = write_config(home, server)
        server.append(USER, "INBOX", [message(rng, 0)])
        proc = subprocess.Popen(
            [sys.executable, "-m", "guard", "watch", "--account", "b"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        poll: Any = server.client(USER, tls=False)
        poll.select_folder("INBOX", readonly=True)
        writer: Any = server.client(USER, tls=False)
        wait_cleaned(poll, message_id(message(random.Random(7), 0)))  # watch is up
        latencies: list[float] = []
        for seq in range(1, args.messages + 1):
            raw = message(rng, seq)
            start = time.perf_counter()
            writer.append("INBOX", raw)
            wait_cleaned(poll, message_id(raw))
            latencies.append(time.perf_counter() - start)
            time.sleep(0.2)
        poll.logout()
        writer.logout()
        latencies.sort()
        p90 = latencies[max(0, int(len(latencies) * 0.9) - 1)]
        print(f"messages   {len(latencies)}")
        print(
            f"latency    median {statistics.median(latencies):.2f} s, p90 {p90:.2f} s, "
            f"max {latencies[-1]:.2f} s, min {latencies[0]:.2f} s (target <= 2 s)"
        )
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
