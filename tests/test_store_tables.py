"""The senders tables read from the state database equal the ones counted in Python."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guard.cli.output import text_summary, text_tables
from guard.engine.model import MessageResult
from guard.engine.report import senders
from guard.engine.rules_load import load_ruleset
from guard.mail.files import message_refs
from guard.mail.scan import scan_refs
from guard.mail.store import Store, encode

ROOT = Path(__file__).resolve().parent.parent


FIELDS = ("sender", "domain", "messages", "tracking_messages", "pixels", "links", "params",
          "receipts", "trackers", "leaks_to", "first_seen", "last_seen")  # fmt: skip


@pytest.fixture(scope="module")
def results() -> list[MessageResult]:
    rules = load_ruleset(include_user=False)
    found = list(scan_refs(list(message_refs(str(ROOT / "samples"))), rules, jobs=1))
    return found + list(scan_refs(list(message_refs(str(ROOT / "eval"))), rules, jobs=1))


def _items(results: list[MessageResult], uids: range) -> list[tuple[int, bool, bytes, str]]:
    items = []
    for uid in uids:
        result = results[uid - 1]
        blob, summary = encode(result)
        items.append((uid, result.tracking, blob, summary))
    return items


def _assert_tables_match(store: Store, results: list[MessageResult]) -> None:
    by_sender, by_domain, totals = store.sender_tables("acct", ["INBOX"])
    py_sender, py_domain = senders(results)
    assert [[getattr(r, f) for f in FIELDS] for r in by_sender] == [
        [getattr(r, f) for f in FIELDS] for r in py_sender
    ]
    assert [[getattr(r, f) for f in FIELDS] for r in by_domain] == [
        [getattr(r, f) for f in FIELDS] for r in py_domain
    ]
    assert text_tables(by_sender, by_domain, totals) == text_summary(results)


def test_sql_tables_match_python_tables(tmp_path: Path, results: list[MessageResult]) -> None:
    with Store(tmp_path / "state.sqlite3") as store:
        store.begin_folder("acct", "INBOX", 7, "v1")
        # in batches, as a scan writes them: sums of one sender grow across batches
        for start in range(1, len(results) + 1, 10):
            store.put(
                "acct",
                "INBOX",
                7,
                "v1",
                _items(results, range(start, min(start + 10, len(results) + 1))),
            )
        _assert_tables_match(store, results)
        assert store.sender_tables("other")[2] == (0, 0, 0)


def test_tables_stay_right_when_rows_are_replaced_or_dropped(
    tmp_path: Path, results: list[MessageResult]
) -> None:
    n = len(results)
    assert n > 20
    with Store(tmp_path / "state.sqlite3") as store:
        store.begin_folder("acct", "INBOX", 7, "v1")
        store.put("acct", "INBOX", 7, "v1", _items(results, range(1, n + 1)))
        # a rescan with --no-cache writes the same UIDs again: nothing counted twice
        store.put("acct", "INBOX", 7, "v1", _items(results, range(5, 15)))
        _assert_tables_match(store, results)
        # the mark of a complete scan holds for one UIDNEXT and count, until the next write
        assert not store.is_complete("acct", "INBOX", 7, n + 1, n)
        store.set_complete("acct", "INBOX", 7, n + 1, n)
        assert store.is_complete("acct", "INBOX", 7, n + 1, n)
        assert not store.is_complete("acct", "INBOX", 7, n + 2, n)
        assert not store.is_complete("acct", "INBOX", 7, n + 1, n - 1)
        assert not store.is_complete("acct", "INBOX", 8, n + 1, n)
        # expunged on the server: their senders' sums (dates, tracker names too) are recounted
        gone = set(range(1, n + 1, 3))
        store.forget("acct", "INBOX", 7, gone)
        _assert_tables_match(store, [r for uid, r in enumerate(results, 1) if uid not in gone])
        assert not store.is_complete("acct", "INBOX", 7, n + 1, n)
        store.set_complete("acct", "INBOX", 7, n + 1, n - len(gone))
        store.put("acct", "INBOX", 7, "v1", _items(results, range(1, 2)))
        assert not store.is_complete("acct", "INBOX", 7, n + 1, n - len(gone))
        store.forget("acct", "INBOX", 7, [1])
        # a new UIDVALIDITY (or detection version) starts the folder from nothing
        assert not store.begin_folder("acct", "INBOX", 8, "v1")
        assert store.sender_tables("acct", ["INBOX"])[2] == (0, 0, 0)
        store.put("acct", "INBOX", 8, "v1", _items(results, range(1, 4)))
        _assert_tables_match(store, results[:3])


@pytest.mark.parametrize("schema", [2, 3])
def test_state_of_an_older_schema_is_scanned_again(
    tmp_path: Path, results: list[MessageResult], schema: int
) -> None:
    """Rows of schema 2 and 3 lack the ESP a message was sent through (schema 4): dropped, so
    the next scan stores every message again with it."""
    path = tmp_path / "state.sqlite3"
    with Store(path) as store:
        store.begin_folder("acct", "INBOX", 7, "v1")
        store.put("acct", "INBOX", 7, "v1", _items(results, range(1, len(results) + 1)))
    db = sqlite3.connect(path)
    if schema == 2:  # as schema 2 left it: message rows, no per-sender sums
        db.execute("DROP TABLE senders")
        db.execute("ALTER TABLE folders DROP COLUMN uidnext")
        db.execute("ALTER TABLE folders DROP COLUMN complete_count")
    db.execute(f"PRAGMA user_version={schema}")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.known_uids("acct", "INBOX", 7) == set()
        assert not store.begin_folder("acct", "INBOX", 7, "v1")
        store.put("acct", "INBOX", 7, "v1", _items(results, range(1, len(results) + 1)))
        _assert_tables_match(store, results)
        store.set_complete("acct", "INBOX", 7, 100, len(results))
        assert store.is_complete("acct", "INBOX", 7, 100, len(results))
