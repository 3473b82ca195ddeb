"""The IMAP cleaning journal's deferred rows (guard/mail/imap/journal.py): what `defer` gives is
on disk only with the next transaction, written before that transaction's own rows; a read sees
it; a delete after it is not undone by it; a failed transaction keeps it. What another process
(or a rerun after a crash) sees is read through a second connection to the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.mail.imap.journal import Entry, Journal
from guard.mail.store import Store


def _entry(uid: int, state: str = "intent", **kw: object) -> Entry:
    return Entry("a", "INBOX", 7, uid, state, message_id=f"<{uid}@x>", digest="d", **kw)  # type: ignore[arg-type]


def _on_disk(path: Path) -> tuple[dict[int, str], dict[int, str]]:
    """(uid -> state, uid -> seen outcome) as another process reads them now."""
    with Store(path) as other:
        rows = other.db.execute("SELECT uid, state FROM clean_journal").fetchall()
        seen_rows = other.db.execute("SELECT uid, outcome FROM clean_seen").fetchall()
    states = {int(u): str(s) for u, s in rows}
    seen = {int(u): str(o) for u, o in seen_rows}
    return states, seen


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    store = Store(tmp_path / "state.sqlite")
    return Journal(store)


def test_deferred_rows_wait_for_the_next_transaction(journal: Journal) -> None:
    path = journal.store.path
    journal.write([_entry(1)])
    done = _entry(1, "done", new_uid=11)
    journal.defer([done], seen=[(done, 11, "copy")])
    journal.defer_seen("a", "INBOX", 7, [(2, "unchanged")])
    assert _on_disk(path) == ({1: "intent"}, {})  # a crash now loses them: recovery's case
    journal.write([_entry(3)])  # the next batch's intent carries them
    assert _on_disk(path) == ({1: "done", 3: "intent"}, {11: "copy", 2: "unchanged"})


def test_deferred_rows_come_before_the_transactions_own(journal: Journal) -> None:
    path = journal.store.path
    e = _entry(1, "appended", new_uid=11)
    journal.defer([e])
    e.state = "copying"  # the row deferred is the one given then, not the object later
    journal.write([e])
    assert _on_disk(path)[0] == {1: "copying"}
    journal.defer([_entry(2, "done")])
    journal.delete([_entry(2)])  # deleted after: the deferred row does not bring it back
    journal.defer_seen("a", "INBOX", 7, [(5, "copy")])
    journal.forget_seen("a", "INBOX", 7, [5])
    journal.flush()
    assert _on_disk(path) == ({1: "copying"}, {})


def test_a_read_sees_the_deferred_rows(journal: Journal) -> None:
    journal.defer([_entry(1, "appended", new_uid=11)])
    journal.defer_seen("a", "INBOX", 7, [(4, "skipped")])
    assert [e.uid for e in journal.pending("a", "INBOX")] == [1]
    assert journal.copy_uids("a", "INBOX", 7) == {11}
    assert journal.seen("a", "INBOX", 7) == {4: "skipped"}
    assert _on_disk(journal.store.path)[0] == {1: "appended"}  # the read wrote them first


def test_flush_writes_them_once_and_commits_nothing_else(journal: Journal) -> None:
    path = journal.store.path
    journal.flush()  # nothing deferred: no transaction
    assert journal.db.total_changes == 0
    journal.defer([_entry(1, "done")])
    journal.flush()
    changes = journal.db.total_changes
    journal.flush()
    assert journal.db.total_changes == changes
    assert _on_disk(path)[0] == {1: "done"}


def test_a_failed_transaction_keeps_the_deferred_rows(journal: Journal) -> None:
    path = journal.store.path
    journal.defer([_entry(1, "done")])
    with pytest.raises(RuntimeError), journal._tx():
        raise RuntimeError("the transaction's own work failed")
    assert _on_disk(path)[0] == {}  # rolled back, deferred rows included
    journal.flush()
    assert _on_disk(path)[0] == {1: "done"}
