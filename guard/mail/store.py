"""Local SQLite state: what was scanned where, so a rescan fetches only new messages.

One file, `$XDG_DATA_HOME/guard/state.sqlite3` (mode 0600). Per (account, folder) the UIDVALIDITY
and the detection version last scanned with; per message the result, keyed by account, folder,
UIDVALIDITY and UID. When a folder's UIDVALIDITY or the version (guard + rules) changes, the
folder's old rows are dropped and everything is scanned again. No secret is ever stored.

Next to the message rows, per (folder state, sender address, sender domain) the sums the senders
tables need (table `senders`), kept up to date by every write: the report of a large mailbox
reads a row per sender, not one per message. And per folder the UIDNEXT and message count of the
last scan that stored every message (see `is_complete`): a rescan that finds both unchanged knows
that nothing was added or expunged without listing the folder's UIDs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.engine.model import Confidence, Envelope, Esp, Finding, Kind, MessageResult, Party
from guard.engine.report import UNKNOWN_TRACKER, SenderRow, iso_date, sort_rows
from guard.mail.config import data_dir

SCHEMA = 4
# Schemas whose rows are kept: none. 3 added `senders` and two `folders` columns; 4 adds the ESP a
# message was sent through to its result and summary, which rows of 3 lack: they are scanned again.
UPGRADABLE: tuple[int, ...] = ()


class StoreError(Exception):
    """The state database cannot be opened or written; str(exc) is one line."""


def default_path() -> Path:
    return data_dir() / "state.sqlite3"


# -- (de)serialising results ---------------------------------------------------------------------
#
# `result` is the full MessageResult as zlib-compressed JSON lists (fast to write and read back);
# `summary` is what the text report needs (envelope, error, kind/tracker counts): reading it back
# builds a "slim" MessageResult whose findings are shared objects, so a warm rescan of a large
# mailbox decodes little and holds little.

_FIELDS = Finding._fields
_KINDS = {k.value: k for k in Kind}
_CONFIDENCES = {c.value: c for c in Confidence}
_PARTIES = {p.value: p for p in Party}


def encode_result(result: MessageResult) -> bytes:
    env = result.envelope
    # A Finding is a NamedTuple of str / StrEnum / None / tuple[str]: json writes it as the
    # list of its fields (enums as their values) in C, with no per-field Python work.
    doc = [
        result.source,
        result.id,
        [env.from_addr, env.from_name, env.subject, env.date, env.message_id, env.domain],
        result.error,
        result.findings,
        _esp_row(result.esp),
    ]
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 1)


def _finding(row: list[Any]) -> Finding:
    kw = dict(zip(_FIELDS, row, strict=False))  # rows stored before a field was added are shorter
    kw["kind"] = _KINDS[kw["kind"]]
    kw["confidence"] = _CONFIDENCES[kw["confidence"]]
    if kw.get("party") is not None:
        kw["party"] = _PARTIES[kw["party"]]
    if isinstance(kw.get("params"), list):
        kw["params"] = tuple(kw["params"])
    return Finding(**kw)


def _esp_row(esp: Esp | None) -> list[Any] | None:
    return None if esp is None else [esp.service, esp.name, list(esp.evidence)]


def _esp(row: list[Any] | None) -> Esp | None:
    return None if not row else Esp(row[0], row[1], tuple(row[2]))


def decode_result(blob: bytes) -> MessageResult:
    source, id_, env, error, findings, *rest = json.loads(zlib.decompress(blob))
    return MessageResult(
        source=source,
        id=id_,
        envelope=Envelope(*env),
        findings=tuple(_finding(r) for r in findings),
        error=error,
        esp=_esp(rest[0]) if rest else None,
    )


def encode_summary(result: MessageResult) -> str:
    # One pass, keyed by the StrEnum members themselves (equal to and written as their values):
    # `.value` goes through a Python-level descriptor, which a newsletter's hundred findings feel.
    counts: dict[tuple[str, str | None, str], int] = {}
    leaks: set[str] = set()
    for f in result.findings:
        key = (f.kind, f.tracker, f.confidence)
        counts[key] = counts.get(key, 0) + 1
        if f.leak:
            leaks.add(f"{f.tracker or f.host} ({f.leak})")  # as MessageStats.of labels it
    env = result.envelope
    doc = [
        [env.from_addr, env.from_name, env.subject, env.date, env.message_id, env.domain],
        result.error,
        [[k, t, c, n] for (k, t, c), n in counts.items()],
        sorted(leaks),
        _esp_row(result.esp),
    ]
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


_REPORT_COLUMNS = (
    "failed", "sender", "domain", "seen", "pixels", "links", "params", "receipts", "trackers",
    "leaks",
)  # fmt: skip
_SEP = "\x1f"


def report_columns(summary: str) -> tuple[Any, ...]:
    """What the senders tables need from one message, as plain columns (see MessageStats)."""
    env, error, counts, *rest = json.loads(summary)
    totals = dict.fromkeys(("pixel", "link", "param", "receipt"), 0)
    trackers: set[str] = set()
    for kind, tracker, _confidence, n in counts:
        if kind == "remote":
            continue
        totals[kind] = totals.get(kind, 0) + n
        if tracker:
            trackers.add(tracker)
        elif kind == "pixel":
            trackers.add(UNKNOWN_TRACKER)
    leaks = rest[0] if rest else []
    return (
        int(error is not None),
        env[0] or "(no sender)",
        env[5] if len(env) > 5 else "",
        iso_date(env[3]),
        totals["pixel"],
        totals["link"],
        totals["param"],
        totals["receipt"],
        _SEP.join(sorted(trackers)),
        _SEP.join(leaks),
    )


_SHARED: dict[tuple[str, str | None, str], Finding] = {}


def decode_summary(text: str, source: str, id_: str) -> MessageResult:
    """A slim MessageResult: right envelope, error, counts per kind and tracker names (enough for
    the text report and one-line-per-message output), but no URLs or rule ids."""
    env, error, counts, *rest = json.loads(text)
    findings: list[Finding] = []
    for kind, tracker, confidence, n in counts:
        key = (kind, tracker, confidence)
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = Finding(
                _KINDS[kind], _CONFIDENCES[confidence], rule="", tracker=tracker
            )
        findings.extend([shared] * n)
    return MessageResult(
        source=source,
        id=id_,
        envelope=Envelope(sys.intern(env[0]), *env[1:]),
        findings=tuple(findings),
        error=error,
        esp=_esp(rest[1]) if len(rest) > 1 else None,
    )


def encode(result: MessageResult) -> tuple[bytes, str]:
    return encode_result(result), encode_summary(result)


# -- the store -----------------------------------------------------------------------------------


class Store:
    def __init__(self, path: Path | None = None, busy_timeout: float = 10) -> None:
        """`busy_timeout`: how long to wait for another process's write to end (opening writes
        the schema version)."""
        self.path = path or default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            new = not self.path.exists()
            self.db = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None)
            if new:
                os.chmod(self.path, 0o600)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._init()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open state database {self.path}: {_msg(exc)}") from None

    def _init(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA:
            return
        if version not in (0, *UPGRADABLE):
            self.db.executescript(
                "DROP TABLE IF EXISTS messages; DROP TABLE IF EXISTS folders;"
                " DROP TABLE IF EXISTS senders;"
            )
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS folders (
                account TEXT NOT NULL, folder TEXT NOT NULL,
                uidvalidity INTEGER NOT NULL, version TEXT NOT NULL,
                scanned_at REAL NOT NULL,
                uidnext INTEGER NOT NULL DEFAULT 0, complete_count INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (account, folder));
            CREATE TABLE IF NOT EXISTS messages (
                account TEXT NOT NULL, folder TEXT NOT NULL,
                uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
                version TEXT NOT NULL, scanned_at REAL NOT NULL,
                tracking INTEGER NOT NULL, summary TEXT NOT NULL, result BLOB NOT NULL,
                failed INTEGER NOT NULL, sender TEXT NOT NULL, domain TEXT NOT NULL,
                seen TEXT NOT NULL, pixels INTEGER NOT NULL, links INTEGER NOT NULL,
                params INTEGER NOT NULL, receipts INTEGER NOT NULL, trackers TEXT NOT NULL,
                leaks TEXT NOT NULL,
                PRIMARY KEY (account, folder, uidvalidity, uid)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS messages_by_sender
                ON messages (account, folder, uidvalidity, sender, domain);
            CREATE TABLE IF NOT EXISTS senders (
                account TEXT NOT NULL, folder TEXT NOT NULL,
                uidvalidity INTEGER NOT NULL, version TEXT NOT NULL,
                failed INTEGER NOT NULL, sender TEXT NOT NULL, domain TEXT NOT NULL,
                messages INTEGER NOT NULL, tracking INTEGER NOT NULL, pixels INTEGER NOT NULL,
                links INTEGER NOT NULL, params INTEGER NOT NULL, receipts INTEGER NOT NULL,
                first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
                trackers TEXT NOT NULL, leaks TEXT NOT NULL,
                PRIMARY KEY (account, folder, uidvalidity, version, failed, sender, domain))
                WITHOUT ROWID;
            """
        )
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(folders)")}
            for column in ("uidnext", "complete_count"):
                if column not in columns:  # a folders table of schema 2
                    self.db.execute(
                        f"ALTER TABLE folders ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                    )
            # rows kept from an older schema get their aggregates (once, in one pass)
            self.db.execute("DELETE FROM senders")
            self._recount(None)
            self.db.execute(f"PRAGMA user_version={SCHEMA}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin_folder(self, account: str, folder: str, uidvalidity: int, version: str) -> bool:
        """Record the folder's state; drop its rows if UIDVALIDITY or version changed.

        Returns True when earlier results are still valid."""
        try:
            row = self.db.execute(
                "SELECT uidvalidity, version FROM folders WHERE account=? AND folder=?",
                (account, folder),
            ).fetchone()
            valid = row is not None and row[0] == uidvalidity and row[1] == version
            if not valid:
                with self.db:
                    self.db.execute("BEGIN")
                    for table in ("messages", "senders"):
                        self.db.execute(
                            f"DELETE FROM {table} WHERE account=? AND folder=?", (account, folder)
                        )
                    self.db.execute(
                        "INSERT OR REPLACE INTO folders"
                        " (account, folder, uidvalidity, version, scanned_at) VALUES (?,?,?,?,?)",
                        (account, folder, uidvalidity, version, time.time()),
                    )
            return valid
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

    def is_complete(
        self, account: str, folder: str, uidvalidity: int, uidnext: int, count: int
    ) -> bool:
        """True when the folder's rows are exactly its messages on the server, known from the
        server's UIDNEXT and message count alone: UIDs only grow and are never reused, so an
        unchanged UIDNEXT means nothing was added since the last complete scan (`set_complete`),
        whose rows were all the messages below it; then an unchanged count means nothing was
        expunged either. Any write in between (`put`, `forget`) clears the mark."""
        if uidnext <= 0:  # the server did not say
            return False
        try:
            row = self.db.execute(
                "SELECT uidnext, complete_count FROM folders"
                " WHERE account=? AND folder=? AND uidvalidity=?",
                (account, folder, uidvalidity),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None
        return row is not None and row[0] == uidnext and row[1] == count

    def set_complete(
        self, account: str, folder: str, uidvalidity: int, uidnext: int, count: int
    ) -> None:
        """Record that the folder's rows are all its `count` messages, as of the UIDNEXT the
        server reported before they were listed."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "UPDATE folders SET uidnext=?, complete_count=?"
                    " WHERE account=? AND folder=? AND uidvalidity=?",
                    (uidnext, count, account, folder, uidvalidity),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

    def _clear_complete(self, account: str, folder: str) -> None:
        self.db.execute(
            "UPDATE folders SET uidnext=0, complete_count=0 WHERE account=? AND folder=?",
            (account, folder),
        )

    def known_uids(self, account: str, folder: str, uidvalidity: int) -> set[int]:
        try:
            rows = self.db.execute(
                "SELECT uid FROM messages WHERE account=? AND folder=? AND uidvalidity=?",
                (account, folder, uidvalidity),
            )
            return {r[0] for r in rows}
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

    def forget(self, account: str, folder: str, uidvalidity: int, uids: Iterable[int]) -> None:
        """Drop rows of messages that are gone from the server (expunged)."""
        uids = list(uids)
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                touched = self._keys_of(account, folder, uidvalidity, uids)
                self.db.executemany(
                    "DELETE FROM messages WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
                    [(account, folder, uidvalidity, u) for u in uids],
                )
                self._recount(touched)
                self._clear_complete(account, folder)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

    def put(
        self,
        account: str,
        folder: str,
        uidvalidity: int,
        version: str,
        items: Iterable[tuple[int, bool, bytes, str]],
    ) -> None:
        """Store (uid, tracking, encoded result, encoded summary) rows (see `encode`)."""
        now = time.time()
        rows = [
            (
                *(account, folder, uidvalidity, uid, version, now, int(tracking), summary, blob),
                *report_columns(summary),
            )
            for uid, tracking, blob, summary in items
        ]
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                # a row replaced (a rescan with --no-cache) is in its sender's sums already:
                # those senders are counted again from their rows, the others only add the new
                replaced = self._keys_of(account, folder, uidvalidity, [r[3] for r in rows])
                self.db.executemany(
                    f"INSERT OR REPLACE INTO messages VALUES ({','.join('?' * 19)})", rows
                )
                self._add_to_senders([r for r in rows if _key_of_row(r) not in replaced])
                self._recount(replaced)
                self._clear_complete(account, folder)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

    # -- the per-sender sums (table `senders`) ------------------------------------------------
    #
    # Counts add up; first/last seen and the tracker / leak sets do not subtract, so a sender
    # whose rows are replaced or dropped is counted again from its rows (an index away).

    def _keys_of(self, account: str, folder: str, uidvalidity: int, uids: list[int]) -> set[Key]:
        """The `senders` keys of the stored rows among `uids`."""
        keys: set[Key] = set()
        for start in range(0, len(uids), 500):
            part = uids[start : start + 500]
            keys.update(
                self.db.execute(
                    "SELECT account, folder, uidvalidity, version, failed, sender, domain"
                    " FROM messages WHERE account=? AND folder=? AND uidvalidity=?"
                    f" AND uid IN ({','.join('?' * len(part))})",
                    (account, folder, uidvalidity, *part),
                )
            )
        return keys

    def _add_to_senders(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Add new message rows (as `put` writes them, all of one folder state) to their
        senders' sums: one read of the senders' stored sums and one write per batch."""
        if not rows:
            return
        sums: dict[Key, _Sums] = {}
        for r in rows:
            key = _key_of_row(r)
            if (total := sums.get(key)) is None:
                total = sums[key] = _Sums()
            total.add(1, r[6], r[13], r[14], r[15], r[16], r[12], r[12], r[17], r[18])
        state = (rows[0][0], rows[0][1], rows[0][2], rows[0][4])  # account, folder, ..., version
        names = sorted({key[5] for key in sums})
        for start in range(0, len(names), 500):
            part = names[start : start + 500]
            stored = self.db.execute(
                f"SELECT failed, sender, domain, {_SUM_COLUMNS} FROM senders"
                " WHERE account=? AND folder=? AND uidvalidity=? AND version=?"
                f" AND sender IN ({','.join('?' * len(part))})",
                (*state, *part),
            )
            for failed, sender, domain, *columns in stored:
                if (total := sums.get((*state, failed, sender, domain))) is not None:
                    total.add(*columns)
        self._write_sums(sums.items())

    def _recount(self, keys: Iterable[Key] | None) -> None:
        """Count these senders' sums again from their message rows (None: every sender's)."""
        select = (
            "SELECT account, folder, uidvalidity, version, failed, sender, domain, COUNT(*),"
            " SUM(tracking), SUM(pixels), SUM(links), SUM(params), SUM(receipts),"
            " MIN(NULLIF(seen, '')), MAX(seen), GROUP_CONCAT(NULLIF(trackers, ''), char(31)),"
            " GROUP_CONCAT(NULLIF(leaks, ''), char(31)) FROM messages"
        )
        group = " GROUP BY account, folder, uidvalidity, version, failed, sender, domain"
        if keys is None:
            self._write_sums(
                (tuple(row[:7]), _Sums().add(*row[7:]))
                for row in self.db.execute(select + group).fetchall()
            )
            return
        for key in keys:
            # the index (account, folder, uidvalidity, sender, domain) finds the sender's rows
            row = self.db.execute(select + f" WHERE {_KEY_WHERE}" + group, key).fetchone()
            if row is None:
                self.db.execute(f"DELETE FROM senders WHERE {_KEY_WHERE}", key)
            else:
                self._write_sums([(key, _Sums().add(*row[7:]))])

    def _write_sums(self, sums: Iterable[tuple[Key, _Sums]]) -> None:
        self.db.executemany(
            f"INSERT OR REPLACE INTO senders VALUES ({','.join('?' * 17)})",
            ((*key, *total.columns()) for key, total in sums),
        )

    def results(
        self,
        account: str | None = None,
        folder: str | None = None,
        uidvalidity: int | None = None,
        uids: set[int] | None = None,
        *,
        slim: bool = False,
        source: str = "",
    ) -> Iterator[tuple[int, MessageResult]]:
        """Stored results of the folders' current state (or of one UIDVALIDITY).

        `slim`: decode only the summary (see decode_summary), with `source`. Undecodable rows
        (from another guard version) are skipped."""
        column = "m.summary" if slim else "m.result"
        sql = f"SELECT m.uid, {column}, m.folder FROM messages m"
        where: list[str] = []
        args: list[Any] = []
        if uidvalidity is None:  # only rows of the folders' current state
            sql += (
                " JOIN folders f ON f.account=m.account AND f.folder=m.folder"
                " AND f.uidvalidity=m.uidvalidity AND f.version=m.version"
            )
        for col, value in (("m.account", account), ("m.folder", folder)):
            if value is not None:
                where.append(f"{col}=?")
                args.append(value)
        if uidvalidity is not None:
            where.append("m.uidvalidity=?")
            args.append(uidvalidity)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY m.account, m.folder, m.uid"
        try:
            cursor = self.db.execute(sql, args)
            while rows := cursor.fetchmany(2000):
                for uid, data, _folder in rows:
                    if uids is not None and uid not in uids:
                        continue
                    try:
                        if slim:
                            yield uid, decode_summary(data, source or _folder, str(uid))
                        else:
                            yield uid, decode_result(data)
                    except (ValueError, TypeError, KeyError, zlib.error):
                        continue
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

    def sender_tables(
        self, account: str | None = None, folders: Sequence[str] | None = None
    ) -> tuple[list[SenderRow], list[SenderRow], tuple[int, int, int]]:
        """The senders tables (by address, by domain) and (messages, tracking, errors) over the
        folders' current state, from the per-sender sums: a row per sender is read, none per
        message, and no stored result is decoded."""
        where = ["1=1"]
        args: list[Any] = []
        if account is not None:
            where.append("s.account=?")
            args.append(account)
        if folders:
            where.append(f"s.folder IN ({','.join('?' * len(folders))})")
            args.extend(folders)
        base = (
            " FROM senders s JOIN folders f ON f.account=s.account AND f.folder=s.folder"
            " AND f.uidvalidity=s.uidvalidity AND f.version=s.version WHERE " + " AND ".join(where)
        )
        aggregate = (
            "SELECT {key}, MIN(s.domain), SUM(s.messages), SUM(s.tracking), SUM(s.pixels),"
            " SUM(s.links), SUM(s.params), SUM(s.receipts), MIN(NULLIF(s.first_seen, '')),"
            " MAX(s.last_seen), GROUP_CONCAT(NULLIF(s.trackers, ''), char(31)),"
            " GROUP_CONCAT(NULLIF(s.leaks, ''), char(31))" + base + " AND s.failed=0 GROUP BY {key}"
        )
        try:
            tables = [
                [
                    _sender_row(row, by_domain=key == "s.domain")
                    for row in self.db.execute(aggregate.format(key=key), args)
                ]
                for key in ("s.sender", "s.domain")
            ]
            total, tracking, failed = self.db.execute(
                "SELECT COALESCE(SUM(s.messages), 0), COALESCE(SUM(s.tracking), 0),"
                " COALESCE(SUM(s.messages * s.failed), 0)" + base,
                args,
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None
        return sort_rows(tables[0]), sort_rows(tables[1]), (total, tracking, failed)

    def accounts(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT account FROM folders ORDER BY 1")]


Key = tuple[Any, ...]
"""A `senders` row's key: (account, folder, uidvalidity, version, failed, sender, domain)."""

_KEY_WHERE = (
    "account=? AND folder=? AND uidvalidity=? AND version=? AND failed=? AND sender=? AND domain=?"
)
_SUM_COLUMNS = (
    "messages, tracking, pixels, links, params, receipts, first_seen, last_seen, trackers, leaks"
)


def _key_of_row(row: tuple[Any, ...]) -> Key:
    """The `senders` key of a message row as `put` writes it (the `messages` column order)."""
    return (row[0], row[1], row[2], row[4], row[9], row[10], row[11])


@dataclass(slots=True)
class _Sums:
    """One sender's sums over its messages (of one folder state), as `senders` stores them."""

    messages: int = 0
    tracking: int = 0
    pixels: int = 0
    links: int = 0
    params: int = 0
    receipts: int = 0
    first_seen: str = ""  # the earliest non-empty date, "" when none
    last_seen: str = ""
    trackers: set[str] = field(default_factory=set)
    leaks: set[str] = field(default_factory=set)

    def add(
        self,
        messages: int,
        tracking: int,
        pixels: int,
        links: int,
        params: int,
        receipts: int,
        first: str | None,
        last: str | None,
        trackers: str | None,
        leaks: str | None,
    ) -> _Sums:
        """Add one message's columns or another sum's (`_SUM_COLUMNS`; names joined by _SEP,
        repeats allowed)."""
        self.messages += messages
        self.tracking += tracking
        self.pixels += pixels
        self.links += links
        self.params += params
        self.receipts += receipts
        if first and (not self.first_seen or first < self.first_seen):
            self.first_seen = first
        if last and last > self.last_seen:
            self.last_seen = last
        if trackers:
            self.trackers.update(trackers.split(_SEP))
        if leaks:
            self.leaks.update(leaks.split(_SEP))
        return self

    def columns(self) -> tuple[Any, ...]:
        return (
            self.messages, self.tracking, self.pixels, self.links, self.params, self.receipts,
            self.first_seen, self.last_seen, _SEP.join(sorted(self.trackers)),
            _SEP.join(sorted(self.leaks)),
        )  # fmt: skip


def _sender_row(row: tuple[Any, ...], *, by_domain: bool) -> SenderRow:
    key, domain, messages, tracking, pixels, links, params, receipts, first, last, names, leaks = (
        row
    )
    return SenderRow(
        sender=key,
        domain=key if by_domain else domain,
        messages=messages,
        tracking_messages=tracking,
        pixels=pixels,
        links=links,
        params=params,
        receipts=receipts,
        trackers=set(names.split(_SEP)) if names else set(),
        leaks_to=set(leaks.split(_SEP)) if leaks else set(),
        first_seen=first or "",
        last_seen=last or "",
    )


def _msg(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())
