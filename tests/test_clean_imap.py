"""`guard clean --account` against a real Dovecot (tests/dovecot.py): cleaned copies in place with
flags/keywords/INTERNALDATE, originals in the backup folder, exactly once - also after SIGKILL at
every step, a cut connection, a refused APPEND, and on servers without MOVE / UIDPLUS / keywords.

The planner is the real guard.clean.message.clean_message. Helpers here are shared by test_watch.py
and test_restore.py.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dovecot
import pytest
from dovecot import PASSWORD, Dovecot, ImapProxy

from guard.cli.args import add_clean_arguments, add_restore_arguments
from guard.cli.clean import run_clean_imap
from guard.cli.restore import run_restore
from guard.mail.exitcodes import ExitCode
from guard.mail.lock import AccountLock

ROOT = Path(__file__).resolve().parent.parent
BACKUP = "Guard/Originals"
TIMEOUT = 90  # seconds for one guard subprocess


# -- messages ----------------------------------------------------------------------------------


def make_message(n: int, kind: str = "track") -> bytes:
    m = EmailMessage()
    m["From"] = f"News <news{n % 3}@shop.example.com>"
    m["To"] = "me@example.org"
    m["Subject"] = f"Issue {n} ({kind})"
    m["Date"] = "Mon, 06 Jan 2025 10:00:00 +0000"
    m["Message-ID"] = f"<gen-{n}-{kind}@shop.example.com>"
    pixel = f'<img src="https://open.sendgrid.net/wf/open?upn=abc{n}" width="1" height="1" alt="">'
    html = (
        f"<html><body><p>Hello {n}</p>{pixel}"
        f'<a href="https://shop.example.com/sale?utm_source=news&utm_campaign=c{n}">sale</a>'
        "</body></html>"
    )
    if kind == "track":
        m.set_content(f"Hello {n} https://shop.example.com/?utm_source=x&utm_medium=email")
        m.add_alternative(html, subtype="html")
    elif kind == "receipt":
        m["Disposition-Notification-To"] = f"news{n % 3}@shop.example.com"
        m.set_content("please confirm")
    elif kind == "plain":
        m.set_content(f"Nothing to see in message {n}.")
    elif kind == "forged":
        m["X-Guard"] = "cleaned; policy=default; removed nothing"
        m.set_content(f"Hello {n}")
        m.add_alternative(html, subtype="html")
    elif kind == "attach":
        m.set_content("see attachment")
        m.add_alternative(html, subtype="html")
        m.add_attachment(os.urandom(20000), maintype="application", subtype="pdf", filename="a.pdf")
    else:
        raise ValueError(kind)
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Original:
    raw: bytes
    flags: tuple[bytes, ...]
    date: datetime


def mid_of(raw: bytes) -> str:
    m = re.search(rb"^Message-ID:\s*(\S+)", raw, re.I | re.M)
    return m.group(1).decode() if m else ""


def seed(
    server: Dovecot, user: str, items: Sequence[tuple[int, str]], folder: str = "INBOX"
) -> dict[str, Original]:
    """APPEND messages one by one with varied flags, keywords and INTERNALDATEs (zones too)."""
    flag_sets: list[tuple[bytes, ...]] = [
        (),
        (b"\\Seen",),
        (b"\\Flagged", b"$Label1"),
        (b"\\Answered", b"\\Seen", b"Work"),
    ]
    out: dict[str, Original] = {}
    c: Any = server.client(user, tls=False)
    try:
        if not c.folder_exists(folder):
            c.create_folder(folder)
        for i, (n, kind) in enumerate(items):
            raw = make_message(n, kind)
            flags = flag_sets[i % len(flag_sets)]
            zone = timezone(timedelta(hours=(i % 5) - 2, minutes=30 * (i % 2)))
            date = datetime(2024, 3, 1 + i % 27, 8, i % 60, 7, tzinfo=zone)
            c.append(folder, raw, flags=flags, msg_time=date)
            out[mid_of(raw)] = Original(raw, flags, date)
    finally:
        c.logout()
    return out


# -- mailbox state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    uid: int
    flags: frozenset[bytes]
    date: datetime
    raw: bytes

    @property
    def mid(self) -> str:
        return mid_of(self.raw)


def folder_messages(server: Dovecot, user: str, folder: str) -> list[Stored]:
    c: Any = server.client(user, tls=False)
    try:
        c.normalise_times = False
        if not c.folder_exists(folder):
            return []
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        if not uids:
            return []
        data = c.fetch(uids, [b"FLAGS", b"INTERNALDATE", b"BODY.PEEK[]"])
        return [
            Stored(
                u,
                frozenset(bytes(f) for f in d[b"FLAGS"]) - {b"\\Recent"},
                d[b"INTERNALDATE"],
                d[b"BODY[]"],
            )
            for u, d in sorted(data.items())
            # A message another session (a running `guard watch`) expunged between the SEARCH and
            # the FETCH comes back with NIL data: it is no longer there.
            if d.get(b"BODY[]") is not None
        ]
    finally:
        c.logout()


def modseqs(
    server: Dovecot, user: str, folders: Sequence[str] = ("INBOX", BACKUP)
) -> dict[str, Any]:
    c: Any = server.client(user, tls=False)
    try:
        c.enable("CONDSTORE")
        out: dict[str, Any] = {}
        for folder in folders:
            if c.folder_exists(folder):
                status = c.folder_status(folder, [b"HIGHESTMODSEQ", b"MESSAGES", b"UIDNEXT"])
                out[folder] = (
                    status[b"HIGHESTMODSEQ"],
                    status[b"MESSAGES"],
                    status[b"UIDNEXT"],
                )
        return out
    finally:
        c.logout()


def check_exactly_once(
    server: Dovecot,
    user: str,
    originals: dict[str, Original],
    folder: str = "INBOX",
    backup: str = BACKUP,
    strict: bool = True,
) -> dict[str, int]:
    """Every original exists exactly once: cleaned copy in `folder` + original in `backup`, or
    untouched in `folder`. Flags, keywords and INTERNALDATE preserved. Returns counts."""
    inbox = folder_messages(server, user, folder)
    saved = folder_messages(server, user, backup)
    counts = {"cleaned": 0, "untouched": 0}
    for mid, orig in originals.items():
        here = [m for m in inbox if m.mid == mid and b"\\Deleted" not in m.flags]
        there = [m for m in saved if m.mid == mid and b"\\Deleted" not in m.flags]
        assert len(here) == 1, (mid, "in folder", len(here))
        copy = here[0]
        assert copy.date == orig.date, (mid, copy.date, orig.date)
        assert set(orig.flags) <= copy.flags, (mid, orig.flags, copy.flags)
        if b"$GuardCleaned" in copy.flags:
            counts["cleaned"] += 1
            assert re.search(rb"^X-Guard: cleaned", copy.raw, re.M), mid
            assert b"open.sendgrid.net" not in copy.raw, mid
            assert len(there) == 1, (mid, "in backup", len(there))
            assert there[0].raw == orig.raw, mid
            assert set(orig.flags) <= there[0].flags and there[0].date == orig.date, mid
        else:
            counts["untouched"] += 1
            assert copy.raw == orig.raw, mid
            assert not there, (mid, "untouched but also in backup")
    known = set(originals)
    assert not strict or all(m.mid in known for m in inbox if b"\\Deleted" not in m.flags), (
        "strangers in folder"
    )
    return counts


# -- running guard ----------------------------------------------------------------------------


def user_name(request: pytest.FixtureRequest) -> str:
    """A fresh mailbox owner per test (Dovecot gives every username its own Maildir)."""
    return "c-" + re.sub(r"[^A-Za-z0-9-]", "-", request.node.name)[:50]


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    return user_name(request)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def write_config(server: Dovecot, user: str, **kw: Any) -> Path:
    """The shared test config, with this module's backup folder."""
    return dovecot.write_config(server, user, **{"backup_folder": BACKUP, **kw})


def via_proxy(server: Dovecot, user: str, proxy: ImapProxy, **kw: Any) -> Path:
    return write_config(server, user, port=proxy.port, tls="none", **kw)


def clean(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_clean_arguments(parser)
    ns = parser.parse_args(["--account", "t", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_clean_imap(ns, out, err)
    return code, out.getvalue(), err.getvalue()


def restore(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_restore_arguments(parser)
    ns = parser.parse_args(["--account", "t", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_restore(ns, out, err)
    return code, out.getvalue(), err.getvalue()


def guard_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(CRASH, None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


CRASH = "GUARD_TEST_CRASH_AT"


def guard_proc(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard", *argv],
        env=guard_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
    )


MIX = [(i, "track") for i in range(8)] + [
    (20, "receipt"),
    (21, "receipt"),
    (30, "plain"),
    (31, "plain"),
    (40, "forged"),
    (50, "attach"),
]


# -- end to end --------------------------------------------------------------------------------


def test_clean_end_to_end(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    code, out, err = clean()
    assert code == 0, err
    assert out == "" and err == "", (out, err)  # quiet: nothing needs attention
    counts = check_exactly_once(dovecot, user, originals)
    assert counts == {"cleaned": 10, "untouched": 4}  # 8 track + forged + attach
    inbox = {m.mid: m for m in folder_messages(dovecot, user, "INBOX")}
    for n in (20, 21):  # receipt-only: declined with $MDNSent, no rewrite
        m = inbox[f"<gen-{n}-receipt@shop.example.com>"]
        assert b"$MDNSent" in m.flags and b"$GuardCleaned" not in m.flags
    for n in (30, 31):
        assert b"$MDNSent" not in inbox[f"<gen-{n}-plain@shop.example.com>"].flags
    # BODY.PEEK only: nothing became \Seen that was not
    for mid, orig in originals.items():
        assert (b"\\Seen" in inbox[mid].flags) == (b"\\Seen" in orig.flags), mid
    # the attachment survived byte for byte
    attach = inbox["<gen-50-attach@shop.example.com>"]
    assert originals[attach.mid].raw.split(b"a.pdf")[1][:2000] in attach.raw


def test_a_round_written_in_pieces_lists_and_leaves_what_one_batch_does(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When the workers have planned only part of a round, the part is written as a batch of its
    own (guard.mail.imap.cleaner.MIN_PIECE at least): forced here on every round, in pieces of
    3, the -v listing and the server's end state are those of the round in one batch."""
    from guard.mail.imap import cleaner
    from guard.mail.imap.planner import InlinePlanner

    twin = user + "-twin"
    originals = seed(dovecot, user, MIX)
    twins = seed(dovecot, twin, MIX)
    write_config(dovecot, twin)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "twin"))  # a state database each
    code, whole, err = clean("-v")
    assert code == 0, err
    monkeypatch.setattr(cleaner, "MIN_PIECE", 3)
    monkeypatch.setattr(InlinePlanner, "ready", lambda self, keys: 0)
    write_config(dovecot, user)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "pieces"))
    code, pieces, err = clean("-v")
    assert code == 0, err
    assert re.sub(r"\(\d+\.\d s\)", "", pieces) == re.sub(r"\(\d+\.\d s\)", "", whole)
    assert "cleaned" in pieces and "declined" in pieces and "unchanged" in pieces
    counts = check_exactly_once(dovecot, user, originals)
    assert counts == check_exactly_once(dovecot, twin, twins) == {"cleaned": 10, "untouched": 4}


def test_verbose_and_log(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    seed(dovecot, user, [(1, "track"), (2, "receipt")])
    write_config(dovecot, user)
    log = tmp_path / "guard.log"
    code, out, err = clean("-v", "--log", str(log))
    assert code == 0, err
    assert "cleaned" in out and "declined receipt" in out
    text = log.read_text()
    assert "INBOX UID 1 -> UID" in text and PASSWORD not in text


def test_rerun_changes_nothing(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    assert clean()[0] == 0
    before = modseqs(dovecot, user)
    code, out, err = clean()
    assert code == 0 and out == "" and err == "", (out, err)
    assert modseqs(dovecot, user) == before
    # without guard's state (lost, deleted): the keyword still tells guard's copies apart
    state = Path(os.environ["XDG_DATA_HOME"]) / "guard" / "state.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(state) + suffix).unlink(missing_ok=True)
    code, out, err = clean()
    assert code == 0, err
    assert modseqs(dovecot, user) == before
    check_exactly_once(dovecot, user, originals)


def test_only_new_mail_is_fetched(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(dovecot, user, MIX[:6])
    write_config(dovecot, user)
    assert clean()[0] == 0
    from guard.mail.imap.steps import ImapActions

    fetched: list[int] = []
    real = ImapActions.fetch

    def spy(self: Any, folder: str, uids: Sequence[int], items: Sequence[bytes]) -> Any:
        if b"BODY.PEEK[]" in items:
            fetched.extend(uids)
        return real(self, folder, uids, items)

    monkeypatch.setattr(ImapActions, "fetch", spy)
    assert clean()[0] == 0
    assert fetched == []
    more = seed(dovecot, user, [(60, "track"), (61, "plain")])
    assert clean()[0] == 0
    assert len(fetched) == 2
    assert check_exactly_once(dovecot, user, more, strict=False)["cleaned"] == 1


def test_dry_run_changes_nothing(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    before = modseqs(dovecot, user)
    code, out, err = clean("--dry-run")
    assert code == 0, err
    assert modseqs(dovecot, user) == before
    assert out.count("would clean") == 10 and out.count("would decline receipt") == 2, out
    assert "nothing changed" in out
    # and it remembered nothing: the real run still does everything
    assert clean()[0] == 0
    assert check_exactly_once(dovecot, user, originals)["cleaned"] == 10


# -- crash safety ------------------------------------------------------------------------------


STEPS = ["after-intent", "after-append", "before-move", "after-move"]


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_then_rerun(dovecot: Dovecot, user: str, step: str) -> None:
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    crashed = guard_proc("clean", "--account", "t", **{CRASH: step})
    assert crashed.returncode == -9, (crashed.returncode, crashed.stderr)
    rerun = guard_proc("clean", "--account", "t")
    assert rerun.returncode == 0, rerun.stderr
    counts = check_exactly_once(dovecot, user, originals)
    assert counts == {"cleaned": 10, "untouched": 4}
    before = modseqs(dovecot, user)
    assert guard_proc("clean", "--account", "t").returncode == 0
    assert modseqs(dovecot, user) == before


@pytest.mark.parametrize(
    ("hide", "step"),
    [
        ((b"MOVE",), "after-append"),
        ((b"MOVE",), "before-move"),
        ((b"MOVE",), "after-move"),
        ((b"MOVE", b"UIDPLUS"), "after-append"),
        ((b"MOVE", b"UIDPLUS"), "after-move"),
    ],
)
def test_sigkill_without_move_or_uidplus(
    dovecot: Dovecot, user: str, hide: tuple[bytes, ...], step: str
) -> None:
    originals = seed(dovecot, user, [(i, "track") for i in range(5)] + [(30, "plain")])
    proxy = ImapProxy(dovecot.plain_port, hide_caps=hide)
    try:
        via_proxy(dovecot, user, proxy)
        crashed = guard_proc("clean", "--account", "t", **{CRASH: step})
        assert crashed.returncode == -9, crashed.stderr
        rerun = guard_proc("clean", "--account", "t")
        assert rerun.returncode == 0, rerun.stderr
    finally:
        proxy.close()
    assert check_exactly_once(dovecot, user, originals)["cleaned"] == 5


@pytest.mark.parametrize("keywords", [True, False])
def test_sigkill_after_the_move_loses_only_what_recovery_finds_again(
    dovecot: Dovecot, keywords: bool
) -> None:
    """A batch's `appended` and `done` rows are deferred to the next commit
    (guard/mail/imap/journal.py). SIGKILLed right after the MOVE, the journal still says `intent`
    for the whole batch; the rerun finds each cleaned copy from that row (digest above the
    recorded UIDNEXT: by keyword, or by the X-Guard header on a server without keywords), sees
    the original gone and records `done` with the copy's UID: every message exactly once, and
    every cleaned one restorable."""
    from guard.mail.imap.journal import Journal
    from guard.mail.store import Store

    user = f"c-kill-after-move-{'kw' if keywords else 'nokw'}"  # the node names differ past 50
    originals = seed(dovecot, user, MIX)
    proxy = ImapProxy(dovecot.plain_port, no_keywords=not keywords)
    try:
        via_proxy(dovecot, user, proxy)
        crashed = guard_proc("clean", "--account", "t", **{CRASH: "after-move"})
        assert crashed.returncode == -9, (crashed.returncode, crashed.stderr)
        with Store() as store:
            states = {e.state for e in Journal(store).entries("t")}
        assert states == {"intent"}, states
        assert folder_messages(dovecot, user, BACKUP), "the MOVE happened before the kill"
        rerun = guard_proc("clean", "--account", "t", "-v")
        assert rerun.returncode == 0, rerun.stderr
        assert "was complete" in rerun.stdout, rerun.stdout
        with Store() as store:
            entries = Journal(store).entries("t")
        assert entries and {e.state for e in entries} == {"done"}
        assert all(e.new_uid for e in entries)
        before = modseqs(dovecot, user)
        assert guard_proc("clean", "--account", "t").returncode == 0
        assert modseqs(dovecot, user) == before
    finally:
        proxy.close()
    inbox = folder_messages(dovecot, user, "INBOX")
    saved = folder_messages(dovecot, user, BACKUP)
    assert sorted(m.mid for m in inbox) == sorted(originals)  # each once in the folder
    assert sorted(m.mid for m in saved) == sorted(m.mid for m in inbox if b"X-Guard" in m.raw)
    assert all(m.raw == originals[m.mid].raw for m in saved)
    assert len(saved) == len(entries) == (10 if keywords else 12)  # receipts: rewritten


def test_one_journal_commit_per_batch(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the server's steps the journal commits once per batch (its `intent`, with the
    seen rows and the previous batch's `done`), not four times (seen, intent, appended, done):
    each commit is an fsync on the path between two IMAP commands."""
    from guard.mail.imap.journal import Journal

    seed(dovecot, user, MIX)
    write_config(dovecot, user)
    commits: list[str] = []
    real = Journal._tx

    def counted(self: Journal) -> Any:
        commits.append("tx")
        return real(self)

    appends: list[int] = []
    from guard.mail.imap.append import AppendStep

    real_cmd = AppendStep._append_cmd

    def append_cmd(self: Any, ctx: Any, items: Any) -> Any:
        appends.append(len(commits))
        return real_cmd(self, ctx, items)

    monkeypatch.setattr(Journal, "_tx", counted)
    monkeypatch.setattr(AppendStep, "_append_cmd", append_cmd)
    code, _out, err = clean()
    assert code == 0, err
    assert len(appends) == 1  # one batch: 10 copies in one MULTIAPPEND
    # the folder's start (stale rows), the batch's intent; then the end's flush
    assert appends == [2] and len(commits) == 3, (appends, commits)


@pytest.mark.parametrize(
    ("verb", "after"),
    [(b"APPEND", False), (b"APPEND", True), (b"MOVE", False), (b"MOVE", True)],
)
def test_connection_cut_midway_then_rerun(
    dovecot: Dovecot, user: str, verb: bytes, after: bool
) -> None:
    originals = seed(dovecot, user, MIX)
    proxy = ImapProxy(dovecot.plain_port, cut=verb, cut_after=after)
    try:
        via_proxy(dovecot, user, proxy)
        code, _out, err = clean()
        assert proxy.cuts == 1
        assert code == ExitCode.SERVER, err
        assert err.startswith("guard: ") and "Traceback" not in err
        if verb == b"MOVE":  # the `appended` rows, deferred, were written as the run ended
            from guard.mail.imap.journal import Journal
            from guard.mail.store import Store

            with Store() as store:
                assert {e.state for e in Journal(store).entries("t")} == {"appended"}
        code, _out, err = clean()  # the cut is one-shot: the rerun gets through
        assert code == 0, err
    finally:
        proxy.close()
    assert check_exactly_once(dovecot, user, originals) == {"cleaned": 10, "untouched": 4}


# -- refusals, missing capabilities ------------------------------------------------------------


def test_append_refused_leaves_originals_untouched(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, [(i, "track") for i in range(4)])
    before = folder_messages(dovecot, user, "INBOX")
    proxy = ImapProxy(
        dovecot.plain_port, refuse_append=b"[OVERQUOTA] Quota exceeded (mailbox for user is full)"
    )
    try:
        via_proxy(dovecot, user, proxy)
        code, _out, err = clean()
    finally:
        proxy.close()
    assert proxy.refused >= 1
    assert code == ExitCode.PARTIAL, err
    assert "Quota exceeded" in err and "untouched" in err and "Traceback" not in err
    assert folder_messages(dovecot, user, "INBOX") == before
    assert folder_messages(dovecot, user, BACKUP) == []
    # with room again, the next run cleans them (they were not marked as done)
    write_config(dovecot, user)
    assert clean()[0] == 0
    assert check_exactly_once(dovecot, user, originals)["cleaned"] == 4


def _user_deleted(server: Dovecot, user: str) -> bytes:
    """A message the user flagged \\Deleted but has not expunged: guard must never expunge it."""
    raw = make_message(99, "plain")
    c: Any = server.client(user, tls=False)
    try:
        c.append("INBOX", raw, flags=(b"\\Deleted",))
    finally:
        c.logout()
    return raw


def test_without_move_copy_delete_uid_expunge(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, [(i, "track") for i in range(4)] + [(30, "plain")])
    keep = _user_deleted(dovecot, user)
    proxy = ImapProxy(dovecot.plain_port, hide_caps=[b"MOVE"])
    try:
        via_proxy(dovecot, user, proxy)
        code, _out, err = clean()
    finally:
        proxy.close()
    assert code == 0, err
    check_exactly_once(dovecot, user, originals)
    inbox = folder_messages(dovecot, user, "INBOX")
    assert [m for m in inbox if m.raw == keep], "the user's \\Deleted message was expunged"
    assert not [m for m in inbox if b"\\Deleted" in m.flags and m.raw != keep]


def test_without_uidplus_no_expunge_at_all(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, [(i, "track") for i in range(4)])
    keep = _user_deleted(dovecot, user)
    proxy = ImapProxy(dovecot.plain_port, hide_caps=[b"MOVE", b"UIDPLUS"])
    try:
        via_proxy(dovecot, user, proxy)
        code, _out, err = clean()
        assert code == 0, err
        assert "UIDPLUS" in err and "not expunged" in err  # reported
        before = modseqs(dovecot, user)
        code, _out, err2 = clean()
        assert code == 0 and modseqs(dovecot, user) == before, err2
    finally:
        proxy.close()
    check_exactly_once(dovecot, user, originals)
    inbox = folder_messages(dovecot, user, "INBOX")
    assert [m for m in inbox if m.raw == keep]
    deleted = [m for m in inbox if b"\\Deleted" in m.flags and m.raw != keep]
    assert len(deleted) == 4  # the originals, flagged, not expunged; copies in the backup


def test_server_without_keywords(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, [(1, "track"), (20, "receipt"), (30, "plain")])
    proxy = ImapProxy(dovecot.plain_port, no_keywords=True)
    try:
        via_proxy(dovecot, user, proxy)
        code, _out, err = clean()
        assert code == 0, err
        assert "no custom keywords" in err
        before = modseqs(dovecot, user)
        code, _out, err = clean()  # recognised by guard's state, not by a header
        assert code == 0 and modseqs(dovecot, user) == before
    finally:
        proxy.close()
    inbox = {m.mid: m for m in folder_messages(dovecot, user, "INBOX")}
    receipt = inbox["<gen-20-receipt@shop.example.com>"]
    assert b"Disposition-Notification-To" not in receipt.raw  # declined by rewriting
    assert b"$MDNSent" not in receipt.flags and b"$GuardCleaned" not in receipt.flags
    saved = folder_messages(dovecot, user, BACKUP)
    assert sorted(m.mid for m in saved) == sorted(
        ["<gen-1-track@shop.example.com>", "<gen-20-receipt@shop.example.com>"]
    )
    assert {m.raw for m in saved} == {originals[m.mid].raw for m in saved}


# -- unattended ------------------------------------------------------------------------------


def test_lock_refuses_concurrent_runs(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, [(1, "track")])
    write_config(dovecot, user)
    before = modseqs(dovecot, user)
    with AccountLock("t", "clean"):
        code, _out, err = clean()
        assert code == ExitCode.LOCKED and "guard clean" in err and err.count("\n") == 1
        proc = guard_proc("clean", "--account", "t")  # another process: flock is per process
        assert proc.returncode == ExitCode.LOCKED, proc.stderr
    with AccountLock("t", "watch"):
        proc = guard_proc("clean", "--account", "t")
        assert proc.returncode == 0, proc.stderr
        assert "guard watch" in proc.stderr and proc.stderr.count("\n") == 1
        assert proc.stdout == ""
    assert modseqs(dovecot, user) == before
    assert clean()[0] == 0
    assert check_exactly_once(dovecot, user, originals)["cleaned"] == 1


def test_errors_are_one_line_with_exit_codes(dovecot: Dovecot, user: str) -> None:
    code, _out, err = clean()
    assert code == ExitCode.CONFIG and err.count("\n") == 1
    write_config(dovecot, user)
    code, _out, err = clean("--folder", "Nope")
    assert code == ExitCode.FOLDER and "Nope" in err and err.count("\n") == 1
    os.environ["GUARD_TEST_PASSWORD"] = "wrong-password-xyz"
    try:
        code, _out, err = clean()
    finally:
        os.environ["GUARD_TEST_PASSWORD"] = PASSWORD
    assert code == ExitCode.AUTH and "wrong-password-xyz" not in err


def test_crash_hook_is_inert_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from guard.mail.imap.common import crash_point

    monkeypatch.delenv(CRASH, raising=False)
    for step in STEPS:
        crash_point(step)  # still alive
    monkeypatch.setenv(CRASH, "something-else")
    crash_point("after-append")
    monkeypatch.setenv(CRASH, "after-move#3")  # the third time: twice still alive
    for _ in range(2):
        crash_point("after-move")
    crash_point("after-append")  # another step does not count


def test_crash_hook_counts_the_times_a_step_is_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    """`step#N` kills at the N-th time, in a child process (it is a real SIGKILL)."""
    code = (
        "from guard.mail.imap.common import crash_point\n"
        "for n in range(1, 5):\n"
        "    print(n, flush=True)\n"
        "    crash_point('after-intent')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, CRASH: "after-intent#3"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == -9 and proc.stdout.split() == ["1", "2", "3"], proc


def _unused(_: Iterator[None]) -> None:
    pass
