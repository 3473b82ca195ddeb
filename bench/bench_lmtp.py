"""Delivery throughput with and without guard: the corpus over LMTP into a real Dovecot.

Starts two throw-away Dovecot servers on 127.0.0.1 (tests/delivery.py): one with the delivery
recipe (contrib/dovecot: Sieve pipes every message through `guard strip`), one with the same
LMTP and Sieve set-up but without the recipe. Delivers the 800 corpus messages to each, in
alternating slices so both see the same load on the machine, over `--connections` parallel LMTP
sessions (an MTA delivers in parallel too), and prints both rates and their ratio. Then checks
that every message arrived (read back over IMAP).

    .venv/bin/python bench/bench_lmtp.py [--corpus TAR] [--limit N] [--connections 2]

Run as root (the servers run as nobody) or as a user; needs dovecot-lmtpd and dovecot-sieve.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from delivery import DeliveryServer, _guard_venv  # noqa: E402
from harness import CORPUS, real_corpus  # noqa: E402

SLICE = 50


def _deliver_all(server: DeliveryServer, user: str, raws: list[bytes], connections: int) -> float:
    """Seconds to deliver `raws`, over `connections` LMTP sessions."""
    shares = [raws[i::connections] for i in range(connections)]

    def one_session(share: list[bytes]) -> None:
        with server.lmtp() as lmtp:
            for raw in share:
                refused = lmtp.sendmail("sender@example.net", [user], raw)
                if refused:
                    raise SystemExit(f"refused: {refused}")

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(one_session, shares))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(CORPUS))
    parser.add_argument("--limit", type=int, default=None, help="first N messages only")
    parser.add_argument("--connections", type=int, default=2, help="parallel LMTP sessions")
    ns = parser.parse_args()
    mail = real_corpus(ns.corpus)
    raws = mail.raws[: ns.limit] if ns.limit else mail.raws
    where = Path(tempfile.mkdtemp(prefix="guard-bench-venv-"))
    where.chmod(0o755)
    servers: dict[str, DeliveryServer] = {}
    try:
        _guard_venv(where / "venv")
        servers["without guard"] = DeliveryServer.start(venv=where / "venv", guard=False)
        servers["with guard"] = DeliveryServer.start(venv=where / "venv")
        seconds = dict.fromkeys(servers, 0.0)
        for first in range(0, len(raws), SLICE):  # alternating slices: the same load for both
            chunk = raws[first : first + SLICE]
            for name, server in servers.items():
                seconds[name] += _deliver_all(server, "bench@example.org", chunk, ns.connections)
        stored = {name: len(s.messages("bench@example.org")) for name, s in servers.items()}
        for server in servers.values():
            server.stop()  # the servers' CPU time is known once they have exited
        print(f"{mail.what}; {len(raws)} delivered to each, {ns.connections} LMTP sessions")
        print("               rate          wall      server CPU (all its processes)")
        for name, server in servers.items():
            rate = len(raws) / seconds[name]
            cpu = f"{server.cpu_seconds:7.1f} s" if server.cpu_seconds is not None else "   ?"
            print(f"{name:14s} {rate:7.1f} msg/s {seconds[name]:7.1f} s  {cpu}")
            if stored[name] != len(raws):
                print(f"  MISSING: {len(raws) - stored[name]} not stored", file=sys.stderr)
        a, b = seconds["without guard"], seconds["with guard"]
        print(f"ratio          {a / b:7.2f}x the rate ({b / a:.2f}x the wall time) with guard")
        ca, cb = servers["without guard"].cpu_seconds, servers["with guard"].cpu_seconds
        if ca and cb:
            per = (cb - ca) / len(raws) * 1000
            print(f"{'':15s}{cb / ca:7.2f}x the CPU time; guard adds {per:.0f} ms CPU/message")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times stretch with it)")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
