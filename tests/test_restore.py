"""`guard restore` against a real Dovecot: originals back (with the flags the user gave the cleaned
copy), cleaned copies removed by exact UID, restored originals left alone by later runs."""

from __future__ import annotations

from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot
from test_clean_imap import (
    BACKUP,
    CRASH,
    MIX,
    check_exactly_once,
    clean,
    folder_messages,
    guard_proc,
    modseqs,
    restore,
    seed,
    user_name,
    write_config,
)

from guard.mail.exitcodes import ExitCode


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    return user_name(request)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def _assert_restored(server: Dovecot, user: str, originals: dict[str, Any]) -> None:
    inbox = [m for m in folder_messages(server, user, "INBOX") if b"\\Deleted" not in m.flags]
    assert sorted(m.mid for m in inbox) == sorted(originals)  # each exactly once
    for m in inbox:
        assert m.raw == originals[m.mid].raw  # the original bytes, not the cleaned copy
        assert set(originals[m.mid].flags) <= m.flags and m.date == originals[m.mid].date
        assert b"$GuardCleaned" not in m.flags
    assert [m for m in folder_messages(server, user, BACKUP) if b"\\Deleted" not in m.flags] == []


def test_restore_all_then_clean_leaves_them_alone(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    assert clean()[0] == 0
    code, out, err = restore("--all")
    assert code == 0, err
    assert "restored 10 message(s)" in out
    _assert_restored(dovecot, user, originals)
    restored = [m for m in folder_messages(dovecot, user, "INBOX") if b"$GuardRestored" in m.flags]
    assert len(restored) == 10
    before = modseqs(dovecot, user)
    code, _out, err = clean()
    assert code == 0, err
    assert modseqs(dovecot, user) == before  # later runs leave restored originals alone
    code, out, _err = restore("--all")  # nothing left to restore
    assert code == 0 and "restored 0" in out


def test_restore_one_uid_and_flags_follow(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, [(1, "track"), (2, "track"), (3, "track")])
    write_config(dovecot, user)
    assert clean()[0] == 0
    copies = {m.mid: m for m in folder_messages(dovecot, user, "INBOX")}
    target = copies["<gen-2-track@shop.example.com>"]
    c: Any = dovecot.client(user, tls=False)
    try:  # the user read and flagged the cleaned copy
        c.select_folder("INBOX")
        c.add_flags([target.uid], [b"\\Seen", b"\\Flagged"])
    finally:
        c.logout()
    code, out, err = restore("--folder", "INBOX", "--uid", str(target.uid))
    assert code == 0, err
    assert "restored 1 message(s)" in out
    inbox = {m.mid: m for m in folder_messages(dovecot, user, "INBOX")}
    back = inbox[target.mid]
    assert back.raw == originals[target.mid].raw
    assert {b"\\Seen", b"\\Flagged", b"$GuardRestored"} <= back.flags
    assert target.uid not in {m.uid for m in inbox.values()}
    others = {k: v for k, v in originals.items() if k != target.mid}
    check_exactly_once(dovecot, user, others, strict=False)
    code, _out, err = restore("--folder", "INBOX", "--uid", "9999")
    assert code == ExitCode.PARTIAL and "not a cleaned copy" in err


def test_restore_dry_run_changes_nothing(dovecot: Dovecot, user: str) -> None:
    seed(dovecot, user, MIX)
    write_config(dovecot, user)
    assert clean()[0] == 0
    before = modseqs(dovecot, user)
    code, out, err = restore("--all", "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert sum(line.startswith("would restore ") for line in lines) == 10, out
    assert "nothing changed" in lines[-1]
    assert modseqs(dovecot, user) == before


def test_restore_needs_a_selection(dovecot: Dovecot, user: str) -> None:
    write_config(dovecot, user)
    code, _out, err = restore()
    assert code == ExitCode.USAGE and err.count("\n") == 1


def test_sigkill_during_restore_then_rerun(dovecot: Dovecot, user: str) -> None:
    originals = seed(dovecot, user, MIX)
    write_config(dovecot, user)
    assert clean()[0] == 0
    crashed = guard_proc("restore", "--account", "t", "--all", **{CRASH: "restore-after-move"})
    assert crashed.returncode == -9, crashed.stderr
    # a cron clean in between must not clean the restored originals again
    assert clean()[0] == 0
    rerun = guard_proc("restore", "--account", "t", "--all")
    assert rerun.returncode == 0, rerun.stderr
    _assert_restored(dovecot, user, originals)
