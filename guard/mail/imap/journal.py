"""The write-ahead journal of IMAP cleaning and restoring, in the shared state database.

Two tables next to the scan's (guard.mail.store creates those; this module only adds its own):

- `clean_journal`: one row per original message guard is cleaning or has cleaned, keyed by
  (account, folder, UIDVALIDITY, original UID). Its `state` moves forward and is written *before*
  each server step, so a rerun after a crash knows exactly where it stopped:
    intent    - about to APPEND the cleaned copy (digest and the folder's UIDNEXT recorded, so the
                copy can be found even if the crash came before its UID was known)
    appended  - the cleaned copy is on the server with `new_uid`; the original is still in place
    copying   - (servers without MOVE) about to COPY the original to the backup folder
    copied    - (servers without MOVE) the original is in the backup folder, not yet expunged
    done      - the original is in the backup folder (`backup_uid` when the server said)
    restoring - `guard restore` is moving the original back
    restored  - the original is back in `folder` (`restored_uid`), its cleaned copy removed
    stale     - the folder's UIDVALIDITY changed: the UIDs mean nothing any more
- `clean_seen`: (account, folder, UIDVALIDITY, UID) -> outcome of messages looked at and left in
  place ("unchanged", "declined", "skipped", "copy", "restored", "kept"), so a cron run only
  fetches new mail.

Rows that a crash may lose are `defer`red: kept in memory and written by the next transaction,
before its own rows (or by `flush`, or before any read). They are the records of steps that
recovery finds again from the record before them: `appended` and `done` (an `intent` row holds
the digest and the folder's UIDNEXT, by which recovery finds the cleaned copy, and then sees
whether the original is still there) and the `clean_seen` rows (a message whose row is lost is
looked at again, and comes out the same). The `intent` row, which must be on disk before its
APPEND, is written by `write`: one commit (one fsync) per batch on the path between server
steps, instead of four (seen, intent, appended, done); the batch's `done` rides with the next
batch's `intent`.

No secret is ever stored: message ids, digests, UIDs and folder names only.
"""

from __future__ import annotations

import operator
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from guard.mail.store import Store, StoreError

ACTIVE_STATES = ("intent", "appended", "copying", "copied")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clean_journal (
    account TEXT NOT NULL, folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
    state TEXT NOT NULL,
    message_id TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL DEFAULT '',
    orig_size INTEGER NOT NULL DEFAULT 0,
    uidnext INTEGER NOT NULL DEFAULT 0,
    new_uid INTEGER,
    backup_folder TEXT NOT NULL DEFAULT '',
    backup_uidvalidity INTEGER,
    backup_uidnext INTEGER,
    backup_uid INTEGER,
    restored_uid INTEGER,
    updated REAL NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid));
CREATE INDEX IF NOT EXISTS clean_journal_state ON clean_journal (account, folder, state);
CREATE TABLE IF NOT EXISTS clean_seen (
    account TEXT NOT NULL, folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
    outcome TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)) WITHOUT ROWID;
"""


@dataclass
class Entry:
    account: str
    folder: str
    uidvalidity: int
    uid: int
    state: str
    message_id: str = ""
    digest: str = ""
    orig_size: int = 0
    uidnext: int = 0
    new_uid: int | None = None
    backup_folder: str = ""
    backup_uidvalidity: int | None = None
    backup_uidnext: int | None = None
    backup_uid: int | None = None
    restored_uid: int | None = None
    updated: float = 0.0


_COLUMNS = [f.name for f in fields(Entry)]
_ROW = operator.attrgetter(*_COLUMNS)  # an entry's columns in one C call (a tuple: > 1 column)


class Journal:
    """Journal and processed-message memory on top of a Store's SQLite connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        # Deferred rows in the order they were given (see the module docstring): ("entry", row)
        # and ("seen", row), each a full row as it was when deferred.
        self._later: list[tuple[str, tuple[Any, ...]]] = []
        try:
            # every journal step must survive a crash of the process; FULL also survives power loss
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {store.path}: {_msg(exc)}") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction that first writes the deferred rows (they were given before whatever
        it writes); if it fails, they stay deferred."""
        later, self._later = self._later, []
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for kind, row in later:
                    self.db.execute(_INSERT[kind], row)
                yield self.db
        except BaseException as exc:
            self._later[:0] = later
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"state database {self.store.path}: {_msg(exc)}") from None
            raise

    def _query(self, sql: str, args: Sequence[Any]) -> list[Any]:
        self.flush()  # a read sees every row given before it
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.store.path}: {_msg(exc)}") from None

    # -- journal -------------------------------------------------------------------------------

    def write(self, entries: Iterable[Entry], seen: Iterable[tuple[Entry, int, str]] = ()) -> None:
        """Insert or replace `entries` and `seen` rows (folder, uid, outcome) atomically, and
        durably before it returns (with the deferred rows, written first)."""
        with self._tx() as db:
            for kind, row in _rows(entries, seen):
                db.execute(_INSERT[kind], row)

    def defer(self, entries: Iterable[Entry], seen: Iterable[tuple[Entry, int, str]] = ()) -> None:
        """Like `write`, for rows a crash may lose (see the module docstring): they are written
        by the next transaction, `flush`, or read. The rows are taken as they are now."""
        self._later += _rows(entries, seen)

    def defer_seen(
        self, account: str, folder: str, uidvalidity: int, items: Iterable[tuple[int, str]]
    ) -> None:
        """`mark_seen`, deferred."""
        now = time.time()
        self._later += [("seen", (account, folder, uidvalidity, u, o, now)) for u, o in items]

    def flush(self) -> None:
        """Write the deferred rows now (one commit; nothing when there are none)."""
        if self._later:
            with self._tx():
                pass

    def delete(self, entries: Iterable[Entry]) -> None:
        with self._tx() as db:
            db.executemany(
                "DELETE FROM clean_journal "
                "WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
                [(e.account, e.folder, e.uidvalidity, e.uid) for e in entries],
            )

    def entries(
        self,
        account: str,
        folder: str | None = None,
        states: Sequence[str] | None = None,
    ) -> list[Entry]:
        sql = f"SELECT {','.join(_COLUMNS)} FROM clean_journal WHERE account=?"
        args: list[Any] = [account]
        if folder is not None:
            sql += " AND folder=?"
            args.append(folder)
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        sql += " ORDER BY folder, uidvalidity, uid"
        return [Entry(*row) for row in self._query(sql, args)]

    def pending(self, account: str, folder: str) -> list[Entry]:
        """Entries of `folder` a crash left half-way (intent / appended / copying / copied)."""
        return self.entries(account, folder, ACTIVE_STATES)

    def copy_uids(self, account: str, folder: str, uidvalidity: int) -> set[int]:
        """UIDs of guard's cleaned copies in the folder, per the journal."""
        rows = self._query(
            "SELECT new_uid FROM clean_journal WHERE account=? AND folder=? AND uidvalidity=? "
            "AND new_uid IS NOT NULL",
            (account, folder, uidvalidity),
        )
        return {int(r[0]) for r in rows}

    def journal_uids(self, account: str, folder: str, uidvalidity: int) -> set[int]:
        """Original UIDs the journal knows in the folder (any state)."""
        rows = self._query(
            "SELECT uid FROM clean_journal WHERE account=? AND folder=? AND uidvalidity=?",
            (account, folder, uidvalidity),
        )
        return {int(r[0]) for r in rows}

    def restored_message_ids(self, account: str, folder: str) -> set[str]:
        rows = self._query(
            "SELECT message_id FROM clean_journal WHERE account=? AND folder=? "
            "AND state IN ('restoring', 'restored') AND message_id != ''",
            (account, folder),
        )
        return {str(r[0]) for r in rows}

    def mark_stale(self, account: str, folder: str, uidvalidity: int) -> int:
        """The folder's UIDVALIDITY is now `uidvalidity`: older active rows cannot be finished."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE clean_journal SET state='stale', updated=? WHERE account=? AND folder=? "
                "AND uidvalidity!=? AND state IN ('intent','appended','copying','copied')",
                (time.time(), account, folder, uidvalidity),
            )
            db.execute(
                "DELETE FROM clean_seen WHERE account=? AND folder=? AND uidvalidity!=?",
                (account, folder, uidvalidity),
            )
            return int(cur.rowcount)

    # -- processed messages --------------------------------------------------------------------

    def seen(self, account: str, folder: str, uidvalidity: int) -> dict[int, str]:
        rows = self._query(
            "SELECT uid, outcome FROM clean_seen WHERE account=? AND folder=? AND uidvalidity=?",
            (account, folder, uidvalidity),
        )
        return {int(uid): str(outcome) for uid, outcome in rows}

    def mark_seen(
        self, account: str, folder: str, uidvalidity: int, items: Iterable[tuple[int, str]]
    ) -> None:
        now = time.time()
        rows = [(account, folder, uidvalidity, uid, outcome, now) for uid, outcome in items]
        if not rows:
            return
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO clean_seen VALUES (?,?,?,?,?,?)", rows)

    def forget_seen(self, account: str, folder: str, uidvalidity: int, uids: Iterable[int]) -> None:
        rows = [(account, folder, uidvalidity, uid) for uid in uids]
        if not rows:
            return
        with self._tx() as db:
            db.executemany(
                "DELETE FROM clean_seen WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
                rows,
            )


_INSERT = {
    "entry": f"INSERT OR REPLACE INTO clean_journal ({','.join(_COLUMNS)}) "
    f"VALUES ({','.join('?' * len(_COLUMNS))})",
    "seen": "INSERT OR REPLACE INTO clean_seen VALUES (?,?,?,?,?,?)",
}


def _rows(
    entries: Iterable[Entry], seen: Iterable[tuple[Entry, int, str]]
) -> list[tuple[str, tuple[Any, ...]]]:
    """The rows of `entries` (their `updated` set to now) and of `seen`, to insert or replace."""
    now = time.time()
    rows: list[tuple[str, tuple[Any, ...]]] = []
    for e in entries:
        e.updated = now
        rows.append(("entry", _ROW(e)))
    for e, uid, outcome in seen:
        rows.append(("seen", (e.account, e.folder, e.uidvalidity, uid, outcome, now)))
    return rows


def _msg(exc: BaseException) -> str:
    return " ".join(str(exc).split())
