"""Terminal app benchmark: first rows with a warm state store, and key latency during a cold scan.

    .venv/bin/python bench/bench_ui.py                    # 5,000 messages
    .venv/bin/python bench/bench_ui.py --messages 2000 --no-imap
    .venv/bin/python bench/bench_ui.py --no-local             # only the IMAP figures
    .venv/bin/python bench/bench_ui.py --launch-only --runs 7 # only the real launch, 7 times

Generates N realistic newsletters (bench/corpus.py) and runs the app headless (Textual's
run_test, 120×40) in this process:
  local cold  - the app on a Maildir of the N messages: time to the first row, time to the last,
                and key round-trips while it scans (a ↓/↑ sent through the driver as a terminal
                would, timed until the list's cursor has moved);
  imap cold   - the app on the test Dovecot (tests/dovecot.py) with an empty state: the same
                figures over IMAP;
  imap warm   - the app started again on the same account: time from the app's creation (in
                this process: imports and interpreter start not counted) to the first rows (from
                the state store, before the server answers) and to the end of the warm rescan.
  launch      - what a user sees: the real `guard ui --account NAME` process started in a
                pseudo-terminal (120×40, TERM=xterm-256color) on the warm state store, timed
                from the spawn to the moment a sender of the folder is drawn in the terminal's
                output, and the CPU it used until then; then `q` quits it. Median and range over
                --runs launches (--compare DIR: another checkout's app too, interleaved), and
                where the interpreter spends its import time (-X importtime).
Prints the figures; never asserts. Key latency is measured inside the app's event loop, so it
includes handling and the list update but not a real terminal's output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import math
import os
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from corpus import corpus  # noqa: E402
from textual import events  # noqa: E402

from guard.tui.app import GuardApp  # noqa: E402
from guard.tui.data import ImapFolder  # noqa: E402
from guard.tui.engine import FirstRows  # noqa: E402
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
    launch = resolve(launch_ns(path))
    # as `guard ui` does (guard.tui.run_ui): the first stored rows are read before the app starts
    first = FirstRows(launch.initial) if isinstance(launch.initial, ImapFolder) else None
    app = GuardApp(launch, rules=rules, first_rows=first)  # type: ignore[arg-type]
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


# -- the real launch, in a pseudo-terminal ---------------------------------------------------------

# a sender of the corpus (bench/corpus.py): only the message list draws one before a row is chosen;
# its start only, as the first frame may draw the column narrower ("news10@shop10.ex…") until the
# list has its size
ROW_MARK = re.compile(rb"news\d+@shop\d")
ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[0-~])")


def _drain(fd: int, seconds: float) -> bytes:
    """What the terminal received within `seconds` (b"" once the process closed it)."""
    out = b""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process used so far; NaN where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch_once(
    argv: list[str], env: dict[str, str], cwd: Path = ROOT, limit: float = 60
) -> tuple[float, float, float]:
    """Start `argv` in a 120×40 pseudo-terminal; (seconds to the first output, seconds to the
    first message row drawn, CPU seconds the app used until then: on a busy machine the wall
    clock varies a lot more than that). Quits with `q` and waits for the exit; bounded."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
    )
    os.close(slave)
    screen = b""
    first_output = first_row = cpu = math.nan
    try:
        while time.perf_counter() - t0 < limit:
            chunk = _drain(master, 0.005)
            if chunk and math.isnan(first_output):
                first_output = time.perf_counter() - t0
            # a cell's text is written in one piece: search only what is new (and the seam),
            # so this process takes little of the CPU the app needs
            if ROW_MARK.search(screen[-64:] + chunk):
                first_row = time.perf_counter() - t0
                cpu = cpu_seconds(proc.pid)
                break
            screen += chunk
            if proc.poll() is not None:
                break
        with contextlib.suppress(OSError):  # the app may have ended already
            os.write(master, b"q")
        end = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < end:
            _drain(master, 0.1)
        if proc.poll() is None:
            print("  launch: the app did not quit on q within 20 s; killed")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(master)
    if math.isnan(first_row):
        tail = ANSI.sub(b"", screen)[-400:].decode(errors="replace")
        print(f"  launch: no message row within {limit:.0f} s; the terminal ended with: {tail!r}")
    return first_output, first_row, cpu


def launch_figures(account: str, runs: int, roots: list[Path]) -> None:
    """Launch the app from each checkout in `roots` in turn (interleaved, so a change in the
    machine's load hits them alike)."""
    argv = [sys.executable, "-m", "guard", "ui", "--account", account]
    envs = []
    for root in roots:
        # bytecode as `pip install` leaves it: without it (PYTHONDONTWRITEBYTECODE, a fresh
        # checkout) every launch would compile guard's modules again, ~0.1-0.3 s
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "guard")], check=True)
        env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(root))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for name in ("COLUMNS", "LINES"):  # the terminal's size must come from the terminal
            env.pop(name, None)
        envs.append(env)
        # in the checkout: `python -m` puts the working directory first on the path
        launch_once(argv, env, root)  # unmeasured: the page cache is warm after it
    figures: list[list[tuple[float, float, float]]] = [[] for _ in roots]
    loads: list[float] = []
    for _ in range(runs):
        for i, env in enumerate(envs):
            figures[i].append(launch_once(argv, env, roots[i]))
            loads.append(os.getloadavg()[0])
    for root, runs_of_root in zip(roots, figures, strict=True):
        ok = [f for f in runs_of_root if not math.isnan(f[1])]
        label = "launch" if root == ROOT else f"launch of {root}"
        if not ok:
            print(f"{label}: no run drew a row")
            continue
        rows = sorted(f[1] for f in ok)
        print(
            f"{label}: first rows {statistics.median(rows):.2f} s median "
            f"({rows[0]:.2f}–{rows[-1]:.2f} s, {len(ok)}/{runs} runs), "
            f"CPU until then {statistics.median(f[2] for f in ok):.2f} s, first output "
            f"{statistics.median(f[0] for f in ok):.2f} s   "
            f"(load average {min(loads):.1f}–{max(loads):.1f})",
            flush=True,
        )


def import_profile(top: int = 12) -> None:
    """Where `guard ui` spends its import time, before the app runs (python -X importtime)."""
    code = "import guard.cli.main; import guard.tui; import guard.tui.launch; import guard.tui.app"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "guard")], check=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    rows: list[tuple[int, int, str]] = []
    for line in out.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        rows.append((int(parts[0]), int(parts[1]), parts[2].rstrip()))
    total = sum(own for own, _cum, _name in rows)
    print(f"imports of `guard ui` before the app runs: {total / 1e6:.2f} s (-X importtime), "
          f"largest cumulative:")  # fmt: skip
    shown = 0
    for _own, cum, name in sorted(rows, key=lambda r: -r[1]):
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1 and shown < top:
            print(f"  {cum / 1e3:7.0f} ms  {name.strip()}")
            shown += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--no-imap", action="store_true", help="skip the Dovecot part")
    ap.add_argument("--no-local", action="store_true", help="skip the local Maildir part")
    ap.add_argument("--runs", type=int, default=5, help="measured launches in a terminal")
    ap.add_argument(
        "--compare", metavar="DIR", action="append", default=[], type=Path,
        help="also launch the app of this checkout (e.g. an older commit), interleaved",
    )  # fmt: skip
    ap.add_argument(
        "--launch-only", action="store_true",
        help="only the launch in a terminal (the store is warmed by `guard scan --account`)",
    )  # fmt: skip
    ns = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="guard-bench-ui-"))
    try:
        run(ns, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(ns: argparse.Namespace, work: Path) -> None:
    os.environ.update(
        XDG_CONFIG_HOME=str(work / "cfg"),
        XDG_DATA_HOME=str(work / "data"),
        GUARD_CONFIG=str(work / "config.toml"),
    )
    t0 = time.perf_counter()
    messages = list(corpus(ns.messages, seed=7))
    if ns.launch_only:
        ns.no_local = True
    maildir = work / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, raw in enumerate([] if ns.no_local else messages):
        (maildir / "cur" / f"{i:06}.bench:2,S").write_bytes(raw)
    size = sum(len(m) for m in messages)
    print(
        f"{ns.messages} messages, {size / 1e6:.0f} MB, written in {time.perf_counter() - t0:.1f} s"
    )

    from guard.tui.engine import load_rules

    t0 = time.perf_counter()
    rules = load_rules()
    print(f"rules compiled in {time.perf_counter() - t0:.2f} s (once per app run, in a worker)")

    import_profile()
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
        if ns.launch_only:
            t0 = time.perf_counter()
            scan = subprocess.run(
                [sys.executable, "-m", "guard", "scan", "--account", "bench", "--format", "json"],
                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, timeout=1800,
            )  # fmt: skip
            print(f"state store warmed by `guard scan --account bench` in "
                  f"{time.perf_counter() - t0:.1f} s (exit {scan.returncode})")  # fmt: skip
        else:
            report("imap cold", asyncio.run(run_app(None, "imap cold", True, rules)))
            report("imap warm", asyncio.run(run_app(None, "imap warm", False, rules)))
        launch_figures("bench", ns.runs, [ROOT, *ns.compare])
    finally:
        server.stop()


if __name__ == "__main__":
    main()
