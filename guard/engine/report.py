"""Findings -> "who tracks you": per sender address and per sender domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from guard.engine.deferred import parsedate_to_datetime
from guard.engine.domains import registrable_domain
from guard.engine.model import Kind, MessageResult


@dataclass
class SenderRow:
    sender: str
    domain: str
    messages: int = 0
    tracking_messages: int = 0
    pixels: int = 0
    links: int = 0
    params: int = 0
    receipts: int = 0
    trackers: set[str] = field(default_factory=set)
    leaks_to: set[str] = field(default_factory=set)
    first_seen: str = ""
    last_seen: str = ""

    def as_dict(self, key: str) -> dict[str, object]:
        return {
            key: self.sender if key == "sender" else self.domain,
            **({"domain": self.domain} if key == "sender" else {}),
            "messages": self.messages,
            "tracking_messages": self.tracking_messages,
            "trackers": sorted(self.trackers),
            "pixels": self.pixels,
            "links": self.links,
            "params": self.params,
            "receipts": self.receipts,
            "leaks_to": sorted(self.leaks_to),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


def _domain_of(address: str) -> str:
    return registrable_domain(address.rpartition("@")[2]) if "@" in address else ""


def iso_date(value: str) -> str:
    try:
        return parsedate_to_datetime(value).isoformat() if value else ""
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


UNKNOWN_TRACKER = "unknown (heuristic)"


@dataclass(frozen=True, slots=True)
class MessageStats:
    """What the tables need from one message, counted in a single pass over its findings."""

    counts: dict[Kind, int]
    trackers: frozenset[str]
    leaks: frozenset[str]  # who receives the reader's address, e.g. "LiveIntent (md5)"

    @classmethod
    def of(cls, result: MessageResult) -> MessageStats:
        counts = dict.fromkeys(Kind, 0)
        names: set[str] = set()
        leaks: set[str] = set()
        for f in result.findings:
            counts[f.kind] += 1
            if f.leak:
                leaks.add(f"{f.tracker or f.host} ({f.leak})")
            if f.kind is Kind.REMOTE:
                continue
            if f.tracker:
                names.add(f.tracker)
            elif f.kind is Kind.PIXEL:  # a heuristic pixel nobody names: an unknown tracker
                names.add(UNKNOWN_TRACKER)
        return cls(counts, frozenset(names), frozenset(leaks))

    @property
    def tracking(self) -> bool:
        return any(n for kind, n in self.counts.items() if kind is not Kind.REMOTE)


class MessageTally(NamedTuple):
    """What the tables need from one message, in plain values: built where the message is
    scanned, it crosses process boundaries for a fraction of the cost of its findings."""

    failed: bool
    tracking: bool
    from_addr: str
    domain: str
    seen: str
    """The Date header as ISO 8601, "" when unreadable."""
    pixels: int
    links: int
    params: int
    receipts: int
    trackers: frozenset[str]
    leaks: frozenset[str]
    services: tuple[tuple[str, str], ...]
    """(tracker, category) of every named, non-remote finding, once each: the trackers table."""


def tally(result: MessageResult, stats: MessageStats | None = None) -> MessageTally:
    """`stats`: the message's, when already counted."""
    env = result.envelope
    stats = stats or MessageStats.of(result)
    address = env.from_addr or "(no sender)"
    return MessageTally(
        failed=bool(result.error),
        tracking=stats.tracking,
        from_addr=env.from_addr,
        domain=env.domain or _domain_of(address),
        seen=iso_date(env.date),
        pixels=stats.counts[Kind.PIXEL],
        links=stats.counts[Kind.LINK],
        params=stats.counts[Kind.PARAM],
        receipts=stats.counts[Kind.RECEIPT],
        trackers=stats.trackers,
        leaks=stats.leaks,
        services=_services(result),
    )


def _add(row: SenderRow, message: MessageTally) -> None:
    row.messages += 1
    if message.tracking:
        row.tracking_messages += 1
    row.pixels += message.pixels
    row.links += message.links
    row.params += message.params
    row.receipts += message.receipts
    row.trackers.update(message.trackers)
    row.leaks_to.update(message.leaks)
    if date := message.seen:
        row.first_seen = min(row.first_seen or date, date)
        row.last_seen = max(row.last_seen, date)


def sort_rows(rows: Iterable[SenderRow]) -> list[SenderRow]:
    return sorted(
        rows,
        key=lambda r: (-r.tracking_messages, -(r.pixels + r.links + r.receipts), r.sender),
    )


def senders(results: Iterable[MessageResult]) -> tuple[list[SenderRow], list[SenderRow]]:
    """(per sender address, per sender registrable domain), most tracking first."""
    return sender_tables(tally(r) for r in results)


def sender_tables(tallies: Iterable[MessageTally]) -> tuple[list[SenderRow], list[SenderRow]]:
    """`senders` from the messages' tallies."""
    by_sender: dict[str, SenderRow] = {}
    by_domain: dict[str, SenderRow] = {}
    for t in tallies:
        if t.failed:
            continue
        address = t.from_addr or "(no sender)"
        _add(by_sender.setdefault(address, SenderRow(address, t.domain)), t)
        _add(by_domain.setdefault(t.domain, SenderRow(t.domain, t.domain)), t)
    return sort_rows(by_sender.values()), sort_rows(by_domain.values())


@dataclass
class TrackerRow:
    tracker: str
    category: str
    messages: int = 0
    senders: set[str] = field(default_factory=set)


def _services(result: MessageResult) -> tuple[tuple[str, str], ...]:
    return tuple(
        {
            (f.tracker, f.category or "")
            for f in result.findings
            if f.tracker and f.kind is not Kind.REMOTE
        }
    )


def trackers(results: Iterable[MessageResult]) -> list[TrackerRow]:
    """Per tracker service: how many messages and senders use it."""
    return tracker_table((r.envelope.from_addr, _services(r)) for r in results)


def tracker_table(
    messages: Iterable[tuple[str, tuple[tuple[str, str], ...]]],
) -> list[TrackerRow]:
    """`trackers` from each message's (sender address, services)."""
    rows: dict[str, TrackerRow] = {}
    for from_addr, services in messages:
        for name, category in services:
            row = rows.setdefault(name, TrackerRow(name, category))
            row.messages += 1
            row.senders.add(from_addr)
    return sorted(rows.values(), key=lambda r: (-len(r.senders), -r.messages, r.tracker))


# ---- one message at a glance ---------------------------------------------------------------

_BADGE_KINDS = (
    (Kind.PIXEL, "pixel"),
    (Kind.LINK, "link"),
    (Kind.PARAM, "param"),
    (Kind.RECEIPT, "receipt"),
)


def badges(result: MessageResult, stats: MessageStats | None = None) -> str:
    """`[pixel 2] [link 5] [receipt]`: readable without colour or emoji. `stats`: the
    message's, when already counted."""
    if result.error:
        return "[error]"
    parts = []
    for kind, label in _BADGE_KINDS:
        n = stats.counts[kind] if stats else result.count(kind)
        if n:
            parts.append(f"[{label}]" if kind is Kind.RECEIPT else f"[{label} {n}]")
    return " ".join(parts) if parts else "[clean]"
