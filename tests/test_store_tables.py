"""The senders tables counted by SQLite over stored results equal the ones counted in Python."""

from __future__ import annotations

from pathlib import Path

from guard.output import text_summary, text_tables
from guard.report import senders
from guard.ruleset import load_ruleset
from guard.scan import scan_refs
from guard.sources.files import message_refs
from guard.store import Store, encode

ROOT = Path(__file__).resolve().parent.parent


def test_sql_tables_match_python_tables(tmp_path: Path) -> None:
    rules = load_ruleset(include_user=False)
    results = list(scan_refs(list(message_refs(str(ROOT / "samples"))), rules, jobs=1))
    results += list(scan_refs(list(message_refs(str(ROOT / "eval"))), rules, jobs=1))
    with Store(tmp_path / "state.sqlite3") as store:
        store.begin_folder("acct", "INBOX", 7, "v1")
        items = []
        for uid, result in enumerate(results, 1):
            blob, summary = encode(result)
            items.append((uid, result.tracking, blob, summary))
        store.put("acct", "INBOX", 7, "v1", items)
        by_sender, by_domain, totals = store.sender_tables("acct", ["INBOX"])
        assert store.sender_tables("other")[2] == (0, 0, 0)
    py_sender, py_domain = senders(results)
    fields = ("sender", "domain", "messages", "tracking_messages", "pixels", "links", "params",
              "receipts", "trackers", "leaks_to", "first_seen", "last_seen")  # fmt: skip
    assert [[getattr(r, f) for f in fields] for r in by_sender] == [
        [getattr(r, f) for f in fields] for r in py_sender
    ]
    assert [[getattr(r, f) for f in fields] for r in by_domain] == [
        [getattr(r, f) for f in fields] for r in py_domain
    ]
    assert text_tables(by_sender, by_domain, totals) == text_summary(results)
