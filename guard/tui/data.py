"""What the app shows, without Textual: where mail comes from, one row per message, the filter.

Everything here is plain Python so the tests and bench/bench_ui.py can build it without a
terminal, and so no core module ever needs to know the UI exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from guard.engine.model import Kind, MessageResult
from guard.engine.report import UNKNOWN_TRACKER, SenderRow, TrackerRow, badges, senders, trackers
from guard.mail.config import Account
from guard.mail.files import MessageRef


@dataclass(frozen=True)
class LocalSource:
    """A path given on the command line: an .eml file, a directory, a Maildir or an mbox."""

    path: str

    @property
    def label(self) -> str:
        return self.path

    @property
    def writable(self) -> bool:
        return False  # cleaning local files is `guard clean PATH`; the app only reads them


@dataclass(frozen=True)
class ImapFolder:
    """One folder of a configured account."""

    account: Account
    folder: str
    config: str | None = None
    """The --config file the account came from (None: the default place)."""

    @property
    def label(self) -> str:
        return f"{self.account.name}/{self.folder}"

    @property
    def writable(self) -> bool:
        return True


Source = LocalSource | ImapFolder


@dataclass(frozen=True)
class Row:
    """One message as the list shows it; `result` may be slim (counts only, see
    guard.mail.store)."""

    key: str
    result: MessageResult
    ref: MessageRef | None = None
    uid: int | None = None
    cleaned: bool = False
    """A cleaned copy guard made (known from the cleaning journal, never from a header)."""

    @property
    def sender(self) -> str:
        return self.result.envelope.from_addr or "(no sender)"

    @property
    def domain(self) -> str:
        return self.result.envelope.domain

    @property
    def subject(self) -> str:
        return self.result.envelope.subject or "(no subject)"

    @property
    def date(self) -> str:
        return short_date(self.result.envelope.date)

    @property
    def badges(self) -> str:
        text = badges(self.result)
        return f"[cleaned] {text}" if self.cleaned else text

    @property
    def tracking(self) -> bool:
        return self.result.tracking

    @property
    def trackers(self) -> frozenset[str]:
        names = {f.tracker for f in self.result.findings if f.tracker and f.kind is not Kind.REMOTE}
        if any(f.kind is Kind.PIXEL and not f.tracker for f in self.result.findings):
            names.add(UNKNOWN_TRACKER)
        return frozenset(names)


def short_date(value: str) -> str:
    """`2026-11-02` from an RFC 5322 date; what cannot be read stays blank (never a crash)."""
    try:
        return parsedate_to_datetime(value).strftime("%Y-%m-%d") if value else ""
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


def row_key(result: MessageResult) -> str:
    # source alone is unique for files; IMAP results share the folder URL and differ by UID
    return f"{result.source}\x00{result.id}"


@dataclass(frozen=True)
class Filter:
    """What the message list is narrowed to: a sender address, a sender domain or a tracker."""

    kind: str  # "sender" | "domain" | "tracker"
    value: str

    def matches(self, row: Row) -> bool:
        if self.kind == "sender":
            return row.sender == self.value
        if self.kind == "domain":
            return row.domain == self.value
        return self.value in row.trackers

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.value}"


@dataclass
class ResultSet:
    """The rows of the current source, in arrival order, with the aggregates the screens show.

    Counts are kept as rows come and go: the status line reads them after every batch, and
    recounting 5,000 messages' findings each time would cost the UI thread more than the scan."""

    rows: list[Row] = field(default_factory=list)
    by_key: dict[str, Row] = field(default_factory=dict)
    _pos: dict[str, int] = field(default_factory=dict)
    _tracked: int = 0
    _errors: int = 0

    def clear(self) -> None:
        self.rows.clear()
        self.by_key.clear()
        self._pos.clear()
        self._tracked = self._errors = 0

    def _count(self, row: Row, sign: int) -> None:
        self._tracked += sign * row.tracking
        self._errors += sign * bool(row.result.error)

    def add(self, rows: Iterable[Row]) -> tuple[list[Row], list[Row]]:
        """Add rows; a row whose key is known replaces the old one.

        Returns (new rows, rows that replaced a different one)."""
        added: list[Row] = []
        changed: list[Row] = []
        for row in rows:
            old = self.by_key.get(row.key)
            if old is None:
                self._pos[row.key] = len(self.rows)
                self.by_key[row.key] = row
                self.rows.append(row)
                self._count(row, 1)
                added.append(row)
            elif differs(old, row):
                self.replace(row)
                changed.append(row)
        return added, changed

    def replace(self, row: Row) -> None:
        pos = self._pos.get(row.key)
        if pos is None:
            self.add([row])
            return
        self._count(self.rows[pos], -1)
        self.rows[pos] = row
        self.by_key[row.key] = row
        self._count(row, 1)

    def remove(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        self.rows[:] = [r for r in self.rows if r.key not in gone]
        for key in gone:
            old = self.by_key.pop(key, None)
            if old is not None:
                self._count(old, -1)
        self._pos = {r.key: i for i, r in enumerate(self.rows)}

    def visible(self, flt: Filter | None) -> list[Row]:
        return list(self.rows) if flt is None else [r for r in self.rows if flt.matches(r)]

    def results(self) -> list[MessageResult]:
        return [r.result for r in self.rows]

    def senders(self) -> tuple[list[SenderRow], list[SenderRow]]:
        return senders(self.results())

    def trackers(self) -> list[TrackerRow]:
        return trackers(self.results())

    def counts(self) -> tuple[int, int, int]:
        """(messages, tracking, errors)."""
        return len(self.rows), self._tracked, self._errors


def differs(old: Row, new: Row) -> bool:
    """Whether a rescanned row shows anything new (a warm rescan yields every message again)."""
    return (
        old.cleaned != new.cleaned
        or old.result.error != new.result.error
        or old.result.envelope != new.result.envelope
        or badges(old.result) != badges(new.result)
    )


def tracked_keys(rows: Sequence[Row]) -> list[str]:
    return [r.key for r in rows if r.tracking and not r.cleaned]
