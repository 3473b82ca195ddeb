"""guard against hostile or broken IMAP servers (tests/fakeimap.py in front of the real Dovecot).

For `guard scan --account`, `guard clean --account` and `guard watch`, each scripted fault must give
one clear `guard: ...` line with the documented exit code (docs/exit-codes.md), no traceback, no
hang (every run is bounded by a subprocess timeout far above guard's `timeout`), a state database
that still opens and passes SQLite's integrity check, and a rerun against the healthy server that
works. Cleaning must never lose mail (right after the fault every original is still somewhere)
nor double it (after the rerun every message exists exactly once).

`GUARD_HOSTILE_REPORT=FILE` appends one JSON line per case (the table in
docs/reliability-imap.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot
from fakeimap import Fault, HostileImap
from sync import Running, wait_until
from test_clean_imap import (
    BACKUP,
    MIX,
    ROOT,
    Original,
    check_exactly_once,
    folder_messages,
    guard_env,
    make_message,
    mid_of,
    seed,
    user_name,
    write_config,
)

from guard.mail.exitcodes import ExitCode

GUARD_TIMEOUT = 2.0  # the account's `timeout` where the fault is a server that stops answering
PATIENT_TIMEOUT = 30.0  # elsewhere: a slow answer on a loaded machine must not read as a stall
RUN_LIMIT = 60.0  # a guard run that takes longer than this counts as a hang


def via_hostile(server: Dovecot, user: str, hostile: HostileImap, **kw: Any) -> Path:
    """The account config pointing at the hostile server (plain IMAP on loopback)."""
    return write_config(server, user, port=hostile.port, tls="none", **kw)


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A fresh mailbox per test and parameter (user_name alone cuts long parameter ids off)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return f"{user_name(request)[:40]}-{digest}"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


@dataclass
class Case:
    id: str
    fault: str  # what the server does, for the report
    expected: ExitCode
    greeting: str = "normal"
    faults: list[Fault] = field(default_factory=list)
    uidvalidity: str | None = None

    @property
    def timeout(self) -> float:
        """The account's `timeout`: short only where it is what ends the run (a stall, where
        exit TIMEOUT is expected); elsewhere long, so the exit code shows the fault itself."""
        return GUARD_TIMEOUT if self.expected == ExitCode.TIMEOUT else PATIENT_TIMEOUT

    def server(self, target: int) -> HostileImap:
        faults = [Fault(f.verb, f.action, f.nth, f.times, f.contains) for f in self.faults]
        return HostileImap(
            target, greeting=self.greeting, faults=faults, uidvalidity=self.uidvalidity
        )


def record(command: str, case: Case, **outcome: Any) -> None:
    path = os.environ.get("GUARD_HOSTILE_REPORT")
    if path:
        row = {"command": command, "case": case.id, "fault": case.fault, **outcome}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


# -- running guard ---------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float


def guard(*argv: str, **env: str) -> Run:
    """`python -m guard ARGV` (the real command line); a run over RUN_LIMIT fails the test."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "guard", *argv],
            env=guard_env(**env),
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"guard {' '.join(argv)} hung (> {RUN_LIMIT:.0f} s)") from None
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def assert_clear_error(run: Run, expected: ExitCode) -> None:
    assert run.code == expected, (run.code, run.err)
    assert "Traceback" not in run.err and "Traceback" not in run.out, run.err
    assert PASSWORD not in run.err + run.out
    lines = run.err.splitlines()
    if expected != ExitCode.OK:
        assert lines, "no error message"
    for line in lines:
        assert line.startswith("guard: "), run.err
        assert len(line) < 600, line
    if expected not in (ExitCode.OK, ExitCode.PARTIAL):
        assert len(lines) == 1, run.err


def state_path() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "guard" / "state.sqlite3"


def assert_state_consistent() -> None:
    """The state database (when one was made) opens and passes SQLite's integrity check."""
    from guard.mail.imap.journal import Journal
    from guard.mail.store import Store

    path = state_path()
    if not path.exists():
        return
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    with Store() as store:
        Journal(store).pending("t", "INBOX")


def lost(server: Dovecot, user: str, originals: dict[str, Original]) -> list[str]:
    """Originals whose bytes are in neither the folder nor the backup folder."""
    here = {m.raw for m in folder_messages(server, user, "INBOX")}
    here |= {m.raw for m in folder_messages(server, user, BACKUP)}
    return [mid for mid, o in originals.items() if o.raw not in here]


# -- scan ------------------------------------------------------------------------------------------


def F(verb: bytes, action: str, **kw: Any) -> Fault:
    return Fault(verb, action, **kw)


SCAN_CASES = [
    Case("silent-greeting", "never answers after connect", ExitCode.TIMEOUT, greeting="silent"),
    Case("garbage-greeting", "binary garbage instead of a greeting", ExitCode.SERVER,
         greeting="garbage"),
    Case("stall-after-login", "never answers LOGIN", ExitCode.TIMEOUT,
         faults=[F(b"LOGIN", "stall-after")]),
    Case("bad-after-login", "BAD to every command after LOGIN", ExitCode.SERVER,
         faults=[F(b"LOGIN", "bad-from-next")]),
    Case("garbage-examine", "garbage answer to EXAMINE", ExitCode.SERVER,
         faults=[F(b"EXAMINE", "garbage")]),
    Case("garbage-fetch", "garbage answer to FETCH", ExitCode.SERVER,
         faults=[F(b"FETCH", "garbage")]),
    Case("huge-literal", "FETCH answer announcing a {2000000000} literal", ExitCode.SERVER,
         faults=[F(b"FETCH", "huge-literal")]),
    Case("cut-mid-fetch", "disconnect in the middle of a FETCH literal", ExitCode.SERVER,
         faults=[F(b"FETCH", "cut-mid")]),
    Case("stall-mid-fetch", "stops answering in the middle of a FETCH literal", ExitCode.TIMEOUT,
         faults=[F(b"FETCH", "stall-mid")]),
    Case("no-fetch", "NO to FETCH", ExitCode.SERVER, faults=[F(b"FETCH", "no")]),
    Case("wrong-uidvalidity", "wrong UIDVALIDITY (then the real one on the rerun)", ExitCode.OK,
         uidvalidity="wrong"),
]  # fmt: skip


@pytest.mark.parametrize("case", SCAN_CASES, ids=lambda c: c.id)
def test_scan_against_hostile_server(dovecot: Dovecot, user: str, case: Case) -> None:
    msgs = [make_message(i, kind) for i, kind in MIX]
    dovecot.append(user, "INBOX", msgs)
    with case.server(dovecot.plain_port) as server:
        via_hostile(dovecot, user, server, timeout=case.timeout)
        run = guard("scan", "--account", "t", "--format", "json")
        fired = server.fired
    assert case.greeting != "normal" or not case.faults or fired, "the fault never fired"
    assert_clear_error(run, case.expected)
    assert_state_consistent()
    write_config(dovecot, user)  # the healthy server, over TLS
    again = guard("scan", "--account", "t", "--format", "json")
    assert_clear_error(again, ExitCode.OK)
    assert len(json.loads(again.out)["messages"]) == len(msgs)
    assert_state_consistent()
    record("scan", case, code=run.code, seconds=round(run.seconds, 1), error=run.err.strip(),
           rerun=again.code)  # fmt: skip


def test_scan_uidvalidity_changing_between_connections(dovecot: Dovecot, user: str) -> None:
    """A cold scan on two connections, each seeing another UIDVALIDITY: refused (exit 25), the
    results stored so far stay consistent, and a rerun on the healthy server completes."""
    n = 420  # enough for the parallel path (imapscan.PARALLEL_MIN)
    dovecot.append(user, "INBOX", [make_message(i, "plain") for i in range(n)])
    case = Case("changing-uidvalidity", "UIDVALIDITY differs on every connection (2 connections)",
                ExitCode.SERVER, uidvalidity="changing")  # fmt: skip
    with case.server(dovecot.plain_port) as server:
        via_hostile(dovecot, user, server, timeout=case.timeout)
        run = guard("scan", "--account", "t", "--connections", "2", "--format", "csv")
        assert server.connections >= 2
    assert_clear_error(run, ExitCode.SERVER)
    assert "UIDVALIDITY" in run.err
    assert_state_consistent()
    write_config(dovecot, user)
    again = guard("scan", "--account", "t", "--format", "json", "--connections", "2")
    assert_clear_error(again, ExitCode.OK)
    assert len(json.loads(again.out)["messages"]) == n
    record("scan", case, code=run.code, seconds=round(run.seconds, 1), error=run.err.strip(),
           rerun=again.code)  # fmt: skip


# -- clean -----------------------------------------------------------------------------------------

BODY = b"BODY.PEEK[]"

CLEAN_CASES = [
    Case("silent-greeting", "never answers after connect", ExitCode.TIMEOUT, greeting="silent"),
    Case("garbage-greeting", "binary garbage instead of a greeting", ExitCode.SERVER,
         greeting="garbage"),
    Case("stall-after-login", "never answers LOGIN", ExitCode.TIMEOUT,
         faults=[F(b"LOGIN", "stall-after")]),
    Case("bad-after-login", "BAD to every command after LOGIN", ExitCode.SERVER,
         faults=[F(b"LOGIN", "bad-from-next")]),
    Case("garbage-select", "garbage answer to SELECT", ExitCode.SERVER,
         faults=[F(b"SELECT", "garbage")]),
    Case("garbage-fetch", "garbage answer to the message FETCH", ExitCode.SERVER,
         faults=[F(b"FETCH", "garbage", contains=BODY)]),
    Case("huge-literal", "message FETCH announcing a {2000000000} literal", ExitCode.SERVER,
         faults=[F(b"FETCH", "huge-literal", contains=BODY)]),
    Case("cut-mid-fetch", "disconnect in the middle of the message FETCH", ExitCode.SERVER,
         faults=[F(b"FETCH", "cut-mid", contains=BODY)]),
    Case("stall-mid-fetch", "stops answering in the middle of the message FETCH",
         ExitCode.TIMEOUT, faults=[F(b"FETCH", "stall-mid", contains=BODY)]),
    Case("garbage-append", "garbage answer to APPEND", ExitCode.SERVER,
         faults=[F(b"APPEND", "garbage")]),
    Case("cut-mid-append", "disconnect after half of the APPEND upload", ExitCode.SERVER,
         faults=[F(b"APPEND", "cut-mid-upload")]),
    Case("cut-after-append", "APPEND executed, then disconnect before the answer",
         ExitCode.SERVER, faults=[F(b"APPEND", "cut-after")]),
    Case("stall-after-append", "APPEND executed, then never answers", ExitCode.TIMEOUT,
         faults=[F(b"APPEND", "stall-after")]),
    Case("bad-after-append", "APPEND executed, then BAD to everything (MOVE, rollback)",
         ExitCode.SERVER, faults=[F(b"APPEND", "bad-from-next")]),
    Case("no-move", "NO to MOVE", ExitCode.PARTIAL, faults=[F(b"MOVE", "no", times=0)]),
    Case("garbage-move", "garbage answer to MOVE", ExitCode.SERVER,
         faults=[F(b"MOVE", "garbage")]),
    Case("stall-after-move", "MOVE executed, then never answers", ExitCode.TIMEOUT,
         faults=[F(b"MOVE", "stall-after")]),
    Case("wrong-uidvalidity", "wrong UIDVALIDITY (then the real one on the rerun)", ExitCode.OK,
         uidvalidity="wrong"),
]  # fmt: skip


@pytest.mark.parametrize("case", CLEAN_CASES, ids=lambda c: c.id)
def test_clean_against_hostile_server(dovecot: Dovecot, user: str, case: Case) -> None:
    originals = seed(dovecot, user, MIX)
    with case.server(dovecot.plain_port) as server:
        via_hostile(dovecot, user, server, timeout=case.timeout)
        run = guard("clean", "--account", "t")
        fired = server.fired
    assert case.greeting != "normal" or not case.faults or fired, "the fault never fired"
    assert_clear_error(run, case.expected)
    missing = lost(dovecot, user, originals)
    assert not missing, f"lost after the fault: {missing}"
    assert_state_consistent()
    write_config(dovecot, user)  # the healthy server
    again = guard("clean", "--account", "t")
    assert_clear_error(again, ExitCode.OK)
    counts = check_exactly_once(dovecot, user, originals)
    assert counts == {"cleaned": 10, "untouched": 4}
    assert_state_consistent()
    record("clean", case, code=run.code, seconds=round(run.seconds, 1), error=run.err.strip(),
           rerun=again.code, lost=0, duplicated=0)  # fmt: skip


def test_clean_crash_then_uidvalidity_changes(dovecot: Dovecot, user: str) -> None:
    """SIGKILL after the APPEND; the rerun sees another UIDVALIDITY (the journal's half-done step
    cannot be finished: reported, exit 28) - still no message lost or doubled, and the next run
    on the healthy server leaves everything exactly once."""
    case = Case("crash-then-new-uidvalidity",
                "SIGKILL after APPEND, then the rerun sees another UIDVALIDITY",
                ExitCode.PARTIAL, uidvalidity="changing")  # fmt: skip
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    crashed = guard("clean", "--account", "t", GUARD_TEST_CRASH_AT="after-append")
    assert crashed.code == -signal.SIGKILL, crashed.err
    with case.server(dovecot.plain_port) as server:
        via_hostile(dovecot, user, server, timeout=case.timeout)
        run = guard("clean", "--account", "t")
    assert_clear_error(run, ExitCode.PARTIAL)
    assert "UIDVALIDITY changed" in run.err
    assert not lost(dovecot, user, originals)
    assert_state_consistent()
    write_config(dovecot, user)
    again = guard("clean", "--account", "t")
    # The second run reported the step it could not finish; on a healthy server nothing is left
    # half-done, so the third run is an ordinary clean run.
    assert again.code == ExitCode.OK and again.err == "", again.err
    assert check_exactly_once(dovecot, user, originals) == {"cleaned": 10, "untouched": 4}
    assert_state_consistent()
    record("clean", case, code=run.code, seconds=round(run.seconds, 1), error=run.err.strip(),
           rerun=again.code, lost=0, duplicated=0)  # fmt: skip


# -- watch -----------------------------------------------------------------------------------------


WATCH_CASES = [
    # one-shot faults: watch reconnects (backoff) and cleans everything, also mail arriving later
    Case("cut-mid-append", "disconnect after half of an APPEND upload (once)", ExitCode.OK,
         faults=[F(b"APPEND", "cut-mid-upload")]),
    Case("stall-after-login", "never answers LOGIN (once)", ExitCode.OK,
         faults=[F(b"LOGIN", "stall-after")]),
    Case("huge-literal", "message FETCH announcing a {2000000000} literal (once)", ExitCode.OK,
         faults=[F(b"FETCH", "huge-literal", contains=BODY)]),
    Case("garbage-idle", "garbage answer to IDLE (once)", ExitCode.OK,
         faults=[F(b"IDLE", "garbage")]),
    # permanent faults: watch keeps retrying quietly; SIGTERM still ends it at once with exit 0
    Case("silent-greeting", "never answers after connect (always)", ExitCode.OK,
         greeting="silent"),
    Case("bad-after-login", "BAD to every command after LOGIN (always)", ExitCode.OK,
         faults=[F(b"LOGIN", "bad-from-next", times=0)]),
    Case("no-move", "NO to every MOVE (always)", ExitCode.OK,
         faults=[F(b"MOVE", "no", times=0)]),
]  # fmt: skip


def _start_watch() -> Running:
    return Running(
        subprocess.Popen(
            [sys.executable, "-m", "guard", "watch", "--account", "t"],
            env=guard_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
    )


def _stop_watch(watch: Running) -> Run:
    started = time.monotonic()
    code, out, err = watch.stop(signal.SIGTERM, timeout=GUARD_TIMEOUT + 15)
    return Run(code, out, err, time.monotonic() - started)


@pytest.mark.parametrize("case", WATCH_CASES, ids=lambda c: c.id)
def test_watch_against_hostile_server(dovecot: Dovecot, user: str, case: Case) -> None:
    originals = seed(dovecot, user, MIX)
    permanent = case.greeting != "normal" or any(f.times == 0 for f in case.faults)
    with case.server(dovecot.plain_port) as server:
        via_hostile(dovecot, user, server, timeout=GUARD_TIMEOUT)
        watch = _start_watch()
        try:
            if permanent:
                # several attempts, several failures (each costs a connection), or the refused
                # MOVE reported (watch stays connected and goes on)
                wait_until(
                    lambda: server.connections >= 3 or "refused to move" in watch.err,
                    f"watch's attempts against the fault ({server.connections} connections)",
                )
                assert watch.proc.poll() is None, "watch gave up on a transient-looking fault"
            else:
                wait_until(lambda: server.fired, "the fault fired")
                late = make_message(90, "track")
                when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
                c: Any = dovecot.client(user, tls=False)
                try:
                    c.append("INBOX", late, msg_time=when)
                finally:
                    c.logout()
                originals[mid_of(late)] = Original(late, (), when)

                def done() -> bool:
                    counts = check_exactly_once(dovecot, user, originals, strict=False)
                    return counts["cleaned"] == 11

                wait_until(done, "watch cleaned everything after the fault")
        finally:
            run = _stop_watch(watch)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err and PASSWORD not in run.err
    assert all(line.startswith("guard: ") for line in run.err.splitlines()), run.err
    assert run.seconds < GUARD_TIMEOUT + 10
    assert not lost(dovecot, user, originals)
    assert_state_consistent()
    if permanent:
        assert "reconnecting" in run.err or "refused to move" in run.err, run.err
        write_config(dovecot, user)
        again = guard("clean", "--account", "t")
        assert_clear_error(again, ExitCode.OK)
    counts = check_exactly_once(dovecot, user, originals, strict=False)
    assert counts["untouched"] == 4
    record("watch", case, code=run.code, stop_seconds=round(run.seconds, 1), lost=0,
           duplicated=0, stderr=run.err.strip().splitlines()[:2])  # fmt: skip


def _unused(_: Iterator[None]) -> None:
    pass


# -- least surprise: Ctrl-C in the middle of a run -------------------------------------------------


@pytest.mark.parametrize("when", ["after-first-move", "early"])
def test_sigint_mid_clean_finishes_the_batch_in_flight(
    dovecot: Dovecot, user: str, when: str
) -> None:
    """SIGINT (Ctrl-C) while `guard clean` works through 300 messages: the messages in flight are
    finished, the rest untouched; no message is lost, doubled or half-done (no journal entry left
    pending), and the next run cleans the rest."""
    from guard.mail.imap.journal import Journal
    from guard.mail.store import Store

    n = 300
    originals = seed(dovecot, user, [(i, "track") for i in range(n)])
    write_config(dovecot, user)
    # The signal comes at a known step (guard sends it to itself there, once): early, when the
    # first batch's intent is journaled and nothing is appended yet; or after the first batch's
    # originals moved. An outside timer or poll could land anywhere: before guard set up its
    # handler, or after the whole run (cleaning 300 messages takes about a second).
    env = guard_env()
    env["GUARD_TEST_SIGINT_AT"] = "after-intent" if when == "early" else "after-move"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "clean", "--account", "t"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        out, err = proc.communicate(timeout=RUN_LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == ExitCode.OK, (proc.returncode, err)
    assert "Traceback" not in err and all(line.startswith("guard: ") for line in err.splitlines())
    counts = check_exactly_once(dovecot, user, originals)
    # The batch in flight (the first: 100 messages) is finished, nothing after it is started.
    assert counts == {"cleaned": 100, "untouched": n - 100}, counts
    assert "stopped by a signal" in err, err
    with Store() as store:
        assert Journal(store).pending("t", "INBOX") == []  # no half state
    assert_state_consistent()
    again = guard("clean", "--account", "t")
    assert_clear_error(again, ExitCode.OK)
    assert check_exactly_once(dovecot, user, originals) == {"cleaned": n, "untouched": 0}
    record("clean", Case(f"sigint-{when}", f"SIGINT to guard clean ({when}, {n} messages)",
                         ExitCode.OK), code=proc.returncode, interrupted_after=counts["cleaned"],
           lost=0, duplicated=0)  # fmt: skip
    del out
