"""Benchmark: `guard clean --account` of N tracking newsletters on the local Dovecot -> messages/s.

    .venv/bin/python bench/bench_clean.py                  # 1,000 messages
    .venv/bin/python bench/bench_clean.py --messages 3000

Starts the test Dovecot (tests/dovecot.py), loads N realistic newsletters (bench/corpus.py: pixels,
wrapped links, UTM parameters; 30-80 KB of HTML each) with MULTIAPPEND, then runs guard clean in a
separate process end to end (interpreter start, imports, TLS login, fetch, clean, MULTIAPPEND,
MOVE) and prints messages/s. Also a warm rerun (nothing new: what a cron run costs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import corpus  # noqa: E402
from dovecot import PASSWORD, Dovecot  # noqa: E402

USER = "bench-clean"


def write_config(home: Path, server: Dovecot) -> dict[str, str]:
    config = home / "config.toml"
    config.write_text(
        "[accounts.b]\n"
        f'host = "127.0.0.1"\nport = {server.tls_port}\nusername = "{USER}"\n'
        f'ca_file = "{server.cert}"\npassword_env = "GUARD_BENCH_PASSWORD"\n'
        'backup_folder = "Guard/Originals"\ntimeout = 60\n'
    )
    os.chmod(config, 0o600)
    env = dict(os.environ)
    env.update(
        GUARD_CONFIG=str(config),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "cfg"),
        GUARD_BENCH_PASSWORD=PASSWORD,
        PYTHONPATH=str(ROOT),
    )
    return env


def run(env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "guard.cli_clean_imap", "clean", "--account", "b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    server = Dovecot.start()
    home = Path(tempfile.mkdtemp(prefix="guard-bench-clean-"))
    try:
        server.append(USER, "INBOX", corpus(args.messages))
        env = write_config(home, server)
        seconds, proc = run(env)
        if proc.returncode != 0:
            sys.exit(f"guard clean failed ({proc.returncode}): {proc.stderr}")
        c = server.client(USER, tls=False)
        inbox = c.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"]  # type: ignore[attr-defined]
        backup = c.folder_status("Guard/Originals", [b"MESSAGES"])[b"MESSAGES"]  # type: ignore[attr-defined]
        c.logout()  # type: ignore[attr-defined]
        warm, proc2 = run(env)
        if proc2.returncode != 0:
            sys.exit(f"rerun failed: {proc2.stderr}")
        print(f"messages          {args.messages}")
        print(f"cleaned           {backup} (originals in backup), {inbox} in INBOX")
        print(f"guard clean       {seconds:.2f} s end to end = {args.messages / seconds:.0f} msg/s")
        print(f"rerun (warm)      {warm:.2f} s (nothing new)")
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
