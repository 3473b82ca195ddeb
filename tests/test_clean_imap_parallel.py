"""`guard clean --account` on every core (guard/mail/imap/planner.py), against the real Dovecot:
the cleaned copies, the actions and the server's end state are those of a run in one process,
and a message that crashes its worker process costs only itself — it is left as it was, with a
line on stderr — while every other message is cleaned, nothing is lost or doubled, and a rerun
changes nothing.

A folder with PARALLEL_THRESHOLD new messages or more goes to the workers; the crashes are real
(SIGSEGV, abort), made by the test hook GUARD_TEST_CRASH_MARKER in worker processes only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot
from test_clean_imap import (
    BACKUP,
    CRASH,
    STEPS,
    Original,
    check_exactly_once,
    folder_messages,
    guard_proc,
    make_message,
    mid_of,
    modseqs,
    seed,
    write_config,
)

from guard.mail import supervise
from guard.mail.imap.common import BATCH
from guard.mail.imap.journal import Journal
from guard.mail.imap.planner import PARALLEL_THRESHOLD
from guard.mail.store import Store

TOKEN = "GUARD-CRASH-MARKER-7c2e"
KINDS = ["track", "track", "track", "receipt", "plain", "attach", "track", "forged"]
COUNT = PARALLEL_THRESHOLD + 16  # enough for the workers, in two rounds (--batch is 100)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def _items() -> list[tuple[int, str]]:
    return [(i, KINDS[i % len(KINDS)]) for i in range(COUNT)]


def _append(server: Dovecot, user: str, messages: list[Original]) -> None:
    c: Any = server.client(user, tls=False)
    try:
        for m in messages:
            c.append("INBOX", m.raw, flags=m.flags, msg_time=m.date)
    finally:
        c.logout()


def _timeless(text: str) -> str:
    """-v output without the run's duration (the summary's last parenthesis)."""
    return re.sub(r"\(\d+\.\d s\)\n\Z", "", text)


def _run(user: str, dovecot: Dovecot, tmp_path: Path, jobs: int, **env: str) -> Any:
    write_config(dovecot, user)
    return guard_proc(
        "clean", "--account", "t", "-v", "--jobs", str(jobs),
        XDG_DATA_HOME=str(tmp_path / f"data-{user}"), **env,
    )  # fmt: skip


def test_parallel_clean_equals_one_process(dovecot: Dovecot, tmp_path: Path) -> None:
    one, many = "c-par-one", "c-par-many"
    originals = seed(dovecot, one, _items())
    _append(dovecot, many, list(originals.values()))  # the same bytes, flags, dates, order
    seq = _run(one, dovecot, tmp_path, 1)
    par = _run(many, dovecot, tmp_path, 2)
    assert seq.returncode == 0 and par.returncode == 0, (seq.stderr, par.stderr)
    assert par.stderr == seq.stderr == ""
    # the same actions, in the same order, on the same UIDs (both mailboxes were seeded alike)
    assert _timeless(par.stdout) == _timeless(seq.stdout) and "cleaned" in par.stdout
    counts = check_exactly_once(dovecot, many, originals)
    assert counts == check_exactly_once(dovecot, one, originals)
    assert counts["cleaned"] > COUNT // 2
    a = {m.mid: (m.raw, m.flags, m.date) for m in folder_messages(dovecot, one, "INBOX")}
    b = {m.mid: (m.raw, m.flags, m.date) for m in folder_messages(dovecot, many, "INBOX")}
    assert a == b  # byte for byte


@pytest.mark.parametrize(("crash", "signal"), [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_worker_crash_costs_only_its_message(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: str, signal: str
) -> None:
    user = f"c-par-crash-{crash}"
    items = _items()
    originals = seed(dovecot, user, items[: COUNT // 2])
    # the marker message, among the others: a tracking newsletter like them
    raw = make_message(999).replace(b"Hello 999", f"Hello 999 {TOKEN}".encode())
    date = datetime(2024, 3, 9, 8, 0, 7, tzinfo=UTC)
    originals[mid_of(raw)] = Original(raw, (b"\\Seen",), date)
    _append(dovecot, user, [originals[mid_of(raw)]])
    originals.update(seed(dovecot, user, items[COUNT // 2 :]))
    marker = {supervise.CRASH_MARKER_ENV: f"{crash}:{TOKEN}"}

    proc = _run(user, dovecot, tmp_path, 2, **marker)
    assert proc.returncode == 0, proc.stderr
    # one line on stderr, for that message; its action says why it was left
    assert re.fullmatch(
        rf"guard: INBOX UID \d+: crashed its worker process \({signal}\): left as it was\n",
        proc.stderr,
    ), proc.stderr
    assert re.search(
        rf"^skipped +INBOX UID \d+  \(crashed its worker process \({signal}\)\)$",
        proc.stdout,
        re.M,
    ), proc.stdout
    counts = check_exactly_once(dovecot, user, originals)
    cleaned = sum(1 for _, kind in items if kind in ("track", "attach", "forged"))
    assert counts == {"cleaned": cleaned, "untouched": len(originals) - cleaned}, counts
    marked = [m for m in folder_messages(dovecot, user, "INBOX") if m.mid == mid_of(raw)]
    assert marked[0].raw == raw and b"$GuardCleaned" not in marked[0].flags
    assert not [m for m in folder_messages(dovecot, user, BACKUP) if m.mid == mid_of(raw)]
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / f"data-{user}"))
    with Store() as store:
        assert Journal(store).pending("t", "INBOX") == []

    # a rerun, marker or not, changes nothing and has nothing to say
    before = modseqs(dovecot, user)
    for env in (marker, {}):
        again = _run(user, dovecot, tmp_path, 2, **env)
        assert again.returncode == 0 and again.stderr == "", again.stderr
    assert modseqs(dovecot, user) == before


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_of_a_parallel_clean_then_rerun(
    dovecot: Dovecot, tmp_path: Path, step: str
) -> None:
    """Promise 3 with the workers busy: guard SIGKILLed at a step of its first round (the workers
    die with it, the next round only fetched), then a rerun: every message exactly once."""
    user = f"c-par-kill-{step}"
    items = _items()
    originals = seed(dovecot, user, items)
    crashed = _run(user, dovecot, tmp_path, 2, **{CRASH: step})
    assert crashed.returncode == -9, (crashed.returncode, crashed.stderr)
    rerun = _run(user, dovecot, tmp_path, 2)
    assert rerun.returncode == 0, rerun.stderr
    cleaned = sum(1 for _, kind in items if kind in ("track", "attach", "forged"))
    counts = check_exactly_once(dovecot, user, originals)
    assert counts == {"cleaned": cleaned, "untouched": len(items) - cleaned}, counts
    before = modseqs(dovecot, user)
    assert _run(user, dovecot, tmp_path, 2).returncode == 0
    assert modseqs(dovecot, user) == before


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_of_a_later_batch_then_rerun(
    dovecot: Dovecot, tmp_path: Path, step: str
) -> None:
    """The same, SIGKILLed at a step of the second batch: the first one written (a round of its
    own, or the first piece of a round the workers had not finished), the rest of the round
    fetched and planned but not in the journal. Two rounds, so there always is a second batch."""
    user = f"c-par-kill2-{step}"
    items = [(i, KINDS[i % len(KINDS)]) for i in range(BATCH + 16)]
    originals = seed(dovecot, user, items)
    crashed = _run(user, dovecot, tmp_path, 2, **{CRASH: f"{step}#2"})
    assert crashed.returncode == -9, (crashed.returncode, crashed.stderr)
    cleaned = sum(1 for _, kind in items if kind in ("track", "attach", "forged"))
    assert folder_messages(dovecot, user, BACKUP), "the first batch was written before"
    rerun = _run(user, dovecot, tmp_path, 2)
    assert rerun.returncode == 0, rerun.stderr
    counts = check_exactly_once(dovecot, user, originals)
    assert counts == {"cleaned": cleaned, "untouched": len(items) - cleaned}, counts
    before = modseqs(dovecot, user)
    assert _run(user, dovecot, tmp_path, 2).returncode == 0
    assert modseqs(dovecot, user) == before


def test_parallel_dry_run_changes_nothing_and_plans_as_one_process(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    user = "c-par-dry"
    originals = seed(dovecot, user, _items())
    write_config(dovecot, user)
    before = modseqs(dovecot, user)
    runs = [
        guard_proc(
            "clean", "--account", "t", "--dry-run", "--jobs", str(jobs),
            XDG_DATA_HOME=str(tmp_path / f"dry-{jobs}"),
        )
        for jobs in (1, 2)
    ]  # fmt: skip
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert _timeless(runs[1].stdout) == _timeless(runs[0].stdout)
    assert runs[1].stdout.count("would clean") == sum(
        1 for _, kind in _items() if kind in ("track", "attach", "forged")
    )
    assert modseqs(dovecot, user) == before
    assert check_exactly_once(dovecot, user, originals) == {"cleaned": 0, "untouched": COUNT}
