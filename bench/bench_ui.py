"""Terminal app benchmark: first rows with a warm state store, and key latency during a cold scan.

    .venv/bin/python bench/bench_ui.py                    # 5,000 messages
    .venv/bin/python bench/bench_ui.py --messages 2000 --no-imap
    .venv/bin/python bench/bench_ui.py --no-local             # only the IMAP figures

Generates N realistic newsletters (bench/corpus.py) and runs the app headless (Textual's
run_test, 120×40) in this process:
  local cold  - the app on a Maildir of the N messages: time to the first row, time to the last,
                and key round-trips while it scans (a ↓/↑ sent through the driver as a terminal
                would, timed until the list's cursor has moved);
  imap cold   - the app on the test Dovecot (tests/dovecot.py) with an empty state: the same
                figures over IMAP;
  imap warm   - the app started again on the same account: time from launch to the first rows on
                screen (from the state store, before the server answers) and to the end of the
                warm rescan.
Prints the figures; never asserts. Key latency is measured inside the app's event loop, so it
includes handling and the list update but not a real terminal's output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from corpus import corpus  # noqa: E402
from textual import events  # noqa: E402

from guard.tui.app import GuardApp  # noqa: E402
from guard.tui.launch import resolve  # noqa: E402
from guard.tui.widgets.message_list import MessageList  # noqa: E402

SIZE = (120, 40)


def launch_ns(path: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(path=path, account=None, config=None, folder=None)


async def key_round_trip(app: GuardApp) -> float:
    """Send ↓ (↑ at the bottom) as a terminal would; seconds until the list's cursor moved."""
    msgs = app.main.query_one(MessageList)
    before = msgs.cursor_row
    key = "down" if before < msgs.row_count - 1 else "up"
    driver = app._driver
    assert driver is not None
    t0 = time.perf_counter()
    event = events.Key(key, None)
    event.set_sender(app)
    driver.send_message(event)
    while msgs.cursor_row == before and time.perf_counter() - t0 < 30:
        await asyncio.sleep(0.0005)
    return time.perf_counter() - t0


async def run_app(
    path: str | None, label: str, probe_keys: bool, rules: object
) -> dict[str, float | list[float]]:
    started = time.perf_counter()
    app = GuardApp(resolve(launch_ns(path)), rules=rules)  # type: ignore[arg-type]
    figures: dict[str, float | list[float]] = {}
    latencies: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        msgs = app.main.query_one(MessageList)
        while msgs.row_count == 0:
            await asyncio.sleep(0.002)
            if time.perf_counter() - started > 600:
                raise SystemExit(f"{label}: no rows after 600 s")
        figures["first_rows"] = time.perf_counter() - started
        await pilot.pause()
        while app.main.scanning or not figures.get("scan_started"):
            figures["scan_started"] = 1.0
            if probe_keys and app.main.scanning and msgs.row_count >= 2:
                latencies.append(await key_round_trip(app))
                await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(0.01)
        while any(w.is_running for w in app.workers):  # the detail loader may still read
            await asyncio.sleep(0.01)
        figures["done"] = time.perf_counter() - started
        figures["rows"] = float(len(app.results.rows))
        figures["latencies"] = latencies
        errors = [n.message for n in app._notifications if n.severity == "error"]
        if errors:
            print(f"  {label}: errors: {errors}")
    return figures


def report(label: str, fig: dict[str, float | list[float]]) -> None:
    lat = fig.get("latencies") or []
    assert isinstance(lat, list)
    line = (
        f"{label:<11} first rows {fig['first_rows']:6.2f} s   all {int(fig['rows'])} rows "  # type: ignore[arg-type]
        f"{fig['done']:6.2f} s"
    )
    if lat:
        ms = sorted(x * 1000 for x in lat)
        p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
        line += (
            f"   keys during scan: {len(ms)}, median {statistics.median(ms):.0f} ms, "
            f"p95 {p95:.0f} ms, max {ms[-1]:.0f} ms"
        )
    print(line + f"   (load average {os.getloadavg()[0]:.1f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--no-imap", action="store_true", help="skip the Dovecot part")
    ap.add_argument("--no-local", action="store_true", help="skip the local Maildir part")
    ns = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="guard-bench-ui-"))
    os.environ.update(
        XDG_CONFIG_HOME=str(work / "cfg"),
        XDG_DATA_HOME=str(work / "data"),
        GUARD_CONFIG=str(work / "config.toml"),
    )
    t0 = time.perf_counter()
    messages = list(corpus(ns.messages, seed=7))
    maildir = work / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, raw in enumerate(messages):
        (maildir / "cur" / f"{i:06}.bench:2,S").write_bytes(raw)
    size = sum(len(m) for m in messages)
    print(
        f"{ns.messages} messages, {size / 1e6:.0f} MB, written in {time.perf_counter() - t0:.1f} s"
    )

    import subprocess

    code = (
        "import time; t = time.perf_counter(); import guard.tui.app; print(time.perf_counter() - t)"
    )
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        starts.append((time.perf_counter() - t0, float(out.stdout.strip() or "nan")))
    total, imports = min(starts)
    print(
        f"process start: interpreter + imports of the app {total:.2f} s (imports {imports:.2f} s); "
        "the figures below count from the app's creation, after that"
    )

    from guard.tui.engine import load_rules

    t0 = time.perf_counter()
    rules = load_rules()
    print(f"rules compiled in {time.perf_counter() - t0:.2f} s (once per app run, in a worker)")

    if not ns.no_local:
        report("local cold", asyncio.run(run_app(str(maildir), "local cold", True, rules)))
    if ns.no_imap:
        return
    from dovecot import Dovecot, DovecotUnavailable

    try:
        server = Dovecot.start()
    except DovecotUnavailable as exc:
        print(f"imap: skipped ({exc})")
        return
    try:
        t0 = time.perf_counter()
        server.append("bench", "INBOX", messages, batch=200)
        print(f"loaded into Dovecot in {time.perf_counter() - t0:.1f} s")
        config = work / "config.toml"
        config.write_text(
            "[accounts.bench]\n"
            f'host = "127.0.0.1"\nport = {server.tls_port}\nusername = "bench"\n'
            f'ca_file = "{server.cert}"\npassword_env = "BENCH_PW"\ntimeout = 120\n'
        )
        config.chmod(0o600)
        os.environ["BENCH_PW"] = server.password
        report("imap cold", asyncio.run(run_app(None, "imap cold", True, rules)))
        report("imap warm", asyncio.run(run_app(None, "imap warm", False, rules)))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
