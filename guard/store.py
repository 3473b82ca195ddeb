"""Local SQLite state: what was scanned where, so a rescan fetches only new messages.

One file, `$XDG_DATA_HOME/guard/state.sqlite3` (mode 0600). Per (account, folder) the UIDVALIDITY
and the detection version last scanned with; per message the result, keyed by account, folder,
UIDVALIDITY and UID. When a folder's UIDVALIDITY or the version (guard + rules) changes, the
folder's old rows are dropped and everything is scanned again. No secret is ever stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from guard.config import data_dir
from guard.model import Confidence, Envelope, Finding, Kind, MessageResult, Party
from guard.report import UNKNOWN_TRACKER, SenderRow, iso_date, sort_rows

SCHEMA = 2


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


def decode_result(blob: bytes) -> MessageResult:
    source, id_, env, error, findings = json.loads(zlib.decompress(blob))
    return MessageResult(
        source=source,
        id=id_,
        envelope=Envelope(*env),
        findings=tuple(_finding(r) for r in findings),
        error=error,
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
    env, error, counts, *_leaks = json.loads(text)
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
        if version not in (0, SCHEMA):
            self.db.executescript("DROP TABLE IF EXISTS messages; DROP TABLE IF EXISTS folders;")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS folders (
                account TEXT NOT NULL, folder TEXT NOT NULL,
                uidvalidity INTEGER NOT NULL, version TEXT NOT NULL,
                scanned_at REAL NOT NULL,
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
            """
        )
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
                    self.db.execute(
                        "DELETE FROM messages WHERE account=? AND folder=?", (account, folder)
                    )
                    self.db.execute(
                        "INSERT OR REPLACE INTO folders VALUES (?,?,?,?,?)",
                        (account, folder, uidvalidity, version, time.time()),
                    )
            return valid
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

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
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "DELETE FROM messages WHERE account=? AND folder=? AND uidvalidity=? AND uid=?",
                    [(account, folder, uidvalidity, u) for u in uids],
                )
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
                self.db.execute("BEGIN")
                self.db.executemany(
                    f"INSERT OR REPLACE INTO messages VALUES ({','.join('?' * 19)})", rows
                )
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None

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
        """The senders tables (by address, by domain) and (messages, tracking, errors), counted
        by SQLite over the folders' current state: a warm rescan decodes no stored result."""
        where = ["1=1"]
        args: list[Any] = []
        if account is not None:
            where.append("m.account=?")
            args.append(account)
        if folders:
            where.append(f"m.folder IN ({','.join('?' * len(folders))})")
            args.extend(folders)
        base = (
            " FROM messages m JOIN folders f ON f.account=m.account AND f.folder=m.folder"
            " AND f.uidvalidity=m.uidvalidity AND f.version=m.version WHERE " + " AND ".join(where)
        )
        aggregate = (
            "SELECT {key}, MIN(m.domain), COUNT(*), SUM(m.tracking), SUM(m.pixels),"
            " SUM(m.links), SUM(m.params), SUM(m.receipts), MIN(NULLIF(m.seen, '')),"
            " MAX(m.seen), GROUP_CONCAT(NULLIF(m.trackers, ''), char(31)),"
            " GROUP_CONCAT(NULLIF(m.leaks, ''), char(31))" + base + " AND m.failed=0 GROUP BY {key}"
        )
        try:
            tables = [
                [
                    _sender_row(row, by_domain=key == "m.domain")
                    for row in self.db.execute(aggregate.format(key=key), args)
                ]
                for key in ("m.sender", "m.domain")
            ]
            total, tracking, failed = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(m.tracking), 0), COALESCE(SUM(m.failed), 0)" + base,
                args,
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {_msg(exc)}") from None
        return sort_rows(tables[0]), sort_rows(tables[1]), (total, tracking, failed)

    def accounts(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT account FROM folders ORDER BY 1")]


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
