"""Supervised workers (guard/supervise.py): a message that crashes or hangs its worker process
costs only itself in the local scan.

The crashes are real (SIGSEGV, abort, a hang no timer reaches), made by the test hook
GUARD_TEST_CRASH_MARKER in worker processes only.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from guard import supervise
from guard.scan import PARALLEL_THRESHOLD

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "eml"
TOKEN = "GUARD-CRASH-MARKER-d41f"
MARKER_NAME = "m-crash.eml"  # sorts into the middle of the samples


def marker_message() -> bytes:
    m = EmailMessage()
    m["From"] = "someone@example.org"
    m["To"] = "me@example.org"
    m["Subject"] = "hello"
    m["Message-ID"] = "<crash-marker@example.org>"
    m.set_content(f"Nothing to see here: {TOKEN}\n")
    return m.as_bytes()


def forked_children() -> list[int]:
    """Processes forked from this one that still exist (a zombie's command line is empty)."""
    me = os.getpid()
    mine = Path(f"/proc/{me}/cmdline").read_bytes()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == mine:
                stat = (entry / "stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == me:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_with(text: str) -> list[int]:
    """Processes whose environment holds `text` (one run's id: its left-behind workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def guard(*args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; afterwards, none of its processes may be left."""
    run_id = uuid.uuid4().hex
    env = {**os.environ, "GUARD_TEST_RUN": run_id}
    env.pop(supervise.CRASH_MARKER_ENV, None)
    if crash is not None:
        env[supervise.CRASH_MARKER_ENV] = f"{crash}:{TOKEN}"
    proc = subprocess.run(
        [sys.executable, "-m", "guard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert processes_with(f"GUARD_TEST_RUN={run_id}") == [], "worker processes were left behind"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# -- the supervisor itself ------------------------------------------------------------------------


CRASHES = {5: "segv", 40: "abort", 70: "segv", 90: "hang"}


def _toy(i: int) -> int:
    if i in CRASHES:
        probe = supervise.probe_from(f"{CRASHES[i]}:{TOKEN}")
        assert probe is not None
        probe(TOKEN.encode())
    return i * i


def test_map_supervised_gives_each_crash_its_own_failure_in_order() -> None:
    out = list(
        supervise.map_supervised(_toy, 120, lambda i, why: (i, why), jobs=2, chunk=16, seconds=1.0)
    )
    assert len(out) == 120
    failures = {o[0]: o[1] for o in out if isinstance(o, tuple)}
    assert failures == {
        5: "crashed its worker process (SIGSEGV)",
        40: "crashed its worker process (SIGABRT)",
        70: "crashed its worker process (SIGSEGV)",
        90: supervise.overdue(1.0),
    }
    assert all(o == i * i for i, o in enumerate(out) if i not in failures)
    assert multiprocessing.active_children() == [] and forked_children() == []


def test_map_supervised_stops_its_workers_when_closed() -> None:
    items = supervise.map_supervised(_toy, 120, lambda i, why: -1, jobs=2, chunk=4, seconds=60)
    assert next(items) == 0
    items.close()  # e.g. the reader of `guard scan | head` left
    assert multiprocessing.active_children() == [] and forked_children() == []


def test_probe_actions() -> None:
    assert supervise.probe_from("segv:") is None
    assert supervise.probe_from("explode:x") is None
    probe = supervise.probe_from("abort:x")
    assert probe is not None
    probe(b"nothing here")  # no marker: nothing happens


# -- guard scan PATH ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mail")
    for path in sorted(SAMPLES.glob("*.eml")):
        shutil.copyfile(path, root / path.name)
    (root / MARKER_NAME).write_bytes(marker_message())
    assert len(list(root.iterdir())) >= PARALLEL_THRESHOLD + 8  # the parallel path
    return root


def scan_json(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(proc.stdout)["messages"]
    return messages


@pytest.fixture(scope="module")
def baseline(mail_dir: Path) -> list[dict[str, Any]]:
    proc = guard("scan", "--format", "json", "--jobs", "2", str(mail_dir))
    assert proc.returncode == 0, proc.stderr
    return scan_json(proc)


@pytest.mark.parametrize(
    ("crash", "extra", "error"),
    [
        ("segv", (), "crashed its worker process (SIGSEGV): skipped"),
        ("abort", (), "crashed its worker process (SIGABRT): skipped"),
        # a hang no timer interrupts: stopped after 2 x 1 s + 2 s without a result, twice
        ("hang", ("--time-limit", "1"), f"{supervise.overdue(4.0)}: skipped"),
    ],
    ids=["segv", "abort", "hang"],
)
def test_scan_survives_a_message_that_kills_its_worker(
    mail_dir: Path, baseline: list[dict[str, Any]], crash: str, extra: tuple[str, ...], error: str
) -> None:
    proc = guard("scan", "--format", "json", "--jobs", "2", *extra, str(mail_dir), crash=crash)
    assert proc.returncode == 0, proc.stderr  # per-message errors are results, not failures
    got = scan_json(proc)
    assert [m["source"] for m in got] == [m["source"] for m in baseline]  # input order
    for mine, theirs in zip(got, baseline, strict=True):
        if mine["source"].endswith(MARKER_NAME):
            assert mine["error"] == error and mine["findings"] == []
            assert theirs["error"] is None
        else:
            assert mine == theirs


def test_scan_text_output_reports_the_crash(mail_dir: Path) -> None:
    proc = guard("scan", "--jobs", "2", str(mail_dir), crash="segv")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.endswith(MARKER_NAME))
    assert line.startswith("[error]")
    assert "error: crashed its worker process (SIGSEGV): skipped" in proc.stdout


def test_crash_hook_is_off_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from guard.ruleset import load_ruleset
    from guard.scan import scan_raw

    monkeypatch.setenv(supervise.CRASH_MARKER_ENV, f"segv:{TOKEN}")
    result = scan_raw(marker_message(), "m", "1", load_ruleset(include_user=False))
    assert result.error is None  # and this process is still here
