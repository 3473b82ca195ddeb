"""What every step of cleaning and restoring on an IMAP server shares: the test-only crash hooks,
guard's keywords, the FETCH items and batch sizes, reading a message's headers, UID sets, the
server's capabilities, the reports (Action, FolderReport), the planner's interface (CleanOutcome,
Transform) and what a pass over one folder knows (Msg, FolderPass).

`GUARD_TEST_CRASH_AT=<step>` (test-only; inert unless set) SIGKILLs the process at a step:
after-intent, after-append, before-move, after-move, restore-after-move; `<step>#N` the N-th time
it reaches the step (a later batch, earlier ones written).
`GUARD_TEST_SIGINT_AT=<step>` sends the process SIGINT (Ctrl-C) the first time it reaches the
step: a test of the interrupted run knows the signal came exactly there, not whenever a poll saw it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from typing import Any, Protocol

from imapclient import IMAPClient

from guard.mail.imap.connection import _one_line

_native: Any
try:  # the C line-ending fold (guard/engine/_mimecore.c), where it was built
    from guard.engine import _mimecore as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - not built: bytes.replace, the reference
    _native = None
_crlf_to_lf: Callable[[bytes], bytes] | None = None if _native is None else _native.crlf_to_lf

CRASH_ENV = "GUARD_TEST_CRASH_AT"
SIGINT_ENV = "GUARD_TEST_SIGINT_AT"
_interrupted_at: set[str] = set()
_reached: dict[str, int] = {}  # times each step named by $GUARD_TEST_CRASH_AT was reached
KW_CLEANED = b"$GuardCleaned"
KW_RESTORED = b"$GuardRestored"
KW_MDNSENT = b"$MDNSent"
DELETED = b"\\Deleted"

# Every body is requested with BODY.PEEK (never sets \Seen); the server answers under the key
# without ".PEEK" (RFC 3501, 7.4.2), so each request is named next to the key of its answer.
FETCH_BODY = b"BODY.PEEK[]"
BODY_KEY = FETCH_BODY.replace(b".PEEK", b"")
FETCH_MESSAGE_ID = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
MESSAGE_ID_KEY = FETCH_MESSAGE_ID.replace(b".PEEK", b"")

BATCH = 100  # messages per fetch/APPEND/MOVE round
BATCH_BYTES = 8 * 1024 * 1024  # message bytes per round
META_BATCH = 1000  # UIDs per FLAGS/size fetch


def crash_point(step: str) -> None:
    """Test-only hooks: SIGKILL this process at `step` when $GUARD_TEST_CRASH_AT names it (at its
    N-th time for `step#N`); send it SIGINT the first time it reaches `step` when
    $GUARD_TEST_SIGINT_AT names it."""
    crash = os.environ.get(CRASH_ENV)
    if crash is not None and crash.partition("#")[0] == step:
        _reached[step] = _reached.get(step, 0) + 1
        if _reached[step] >= int(crash.partition("#")[2] or 1):
            os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(SIGINT_ENV) == step and step not in _interrupted_at:
        _interrupted_at.add(step)
        os.kill(os.getpid(), signal.SIGINT)


class CleanOutcome(Protocol):
    """What the planner returns (guard.clean.message.CleanResult satisfies it)."""

    @property
    def data(self) -> bytes: ...
    @property
    def changed(self) -> bool: ...
    @property
    def removed(self) -> Mapping[str, int]: ...
    @property
    def receipt_requested(self) -> bool: ...
    @property
    def skipped(self) -> str | None: ...


Transform = Callable[[bytes], CleanOutcome]


def digest(data: bytes) -> str:
    """Digest of a message, insensitive to the server's line-ending normalisation. The fold is
    `_crlf_to_lf` where built (tests/test_mimecore.py: equal to bytes.replace): bytes.replace
    searches the whole message twice, ~0.12 ms of a 56 KB newsletter's ~0.17 ms digest, which
    the worker pays for every cleaned copy."""
    folded = data.replace(b"\r\n", b"\n") if _crlf_to_lf is None else _crlf_to_lf(data)
    return hashlib.sha256(folded).hexdigest()


_HEADER_LIMIT = 256 * 1024
_HEADER_END = re.compile(rb"\n\r?\n")
_SAFE_ID = re.compile(r"^<?[\x21-\x7e]{1,900}>?$")


def header_block(raw: bytes) -> bytes:
    """`raw` up to the empty line (LF or CRLF) that ends its header, at most 256 KB. The pattern
    starts with its LF, a literal the regex engine skips to: the same search starting with the
    optional CR (`\\r?\\n\\r?\\n`) stepped through every byte (~0.3 ms a message, on the path of
    every APPEND); the CR before the LF is added back by hand."""
    m = _HEADER_END.search(raw, 0, _HEADER_LIMIT)
    if not m:
        return raw[:_HEADER_LIMIT]
    start = m.start()
    return raw[: start - 1] if start > 0 and raw[start - 1] == 0x0D else raw[:start]


@functools.lru_cache(maxsize=16)
def _field(name: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """`name:` and its value at the start of the block, and after a newline (a pattern that
    starts with a literal LF, which the regex engine skips to; `^` with re.M does not)."""
    field = re.escape(name.encode()) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)"
    return re.compile(field, re.I), re.compile(rb"\n" + field, re.I)


def header_value(raw: bytes, name: str) -> str:
    """The first `name:` header of `raw`, unfolded (raw bytes decoded as UTF-8 with replacement)."""
    block = header_block(raw)
    at_start, after_newline = _field(name)
    m = at_start.match(block) or after_newline.search(block)
    if not m:
        return ""
    return " ".join(m.group(1).decode("utf-8", "replace").split())


def message_id(raw: bytes) -> str:
    """The Message-ID, when it is safe to use in an IMAP SEARCH (else "")."""
    value = header_value(raw, "Message-ID")
    if not value:
        return ""
    token = value.split()[0]
    return token if _SAFE_ID.match(token) and '"' not in token and "\\" not in token else ""


def subject_of(raw: bytes) -> str:
    value = header_value(raw, "Subject")
    if "=?" not in value:  # no encoded word: decode_header and make_header give it back as is
        return _one_line(value, 70)
    with contextlib.suppress(Exception):  # a display string only
        value = str(make_header(decode_header(value)))
    return _one_line(value, 70)


def expand_uid_set(text: str) -> list[int]:
    out: list[int] = []
    for piece in text.split(","):
        lo, _, hi = piece.partition(":")
        a, b = int(lo), int(hi or lo)
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


def uid_set(uids: Iterable[int]) -> str:
    """A compact UID set ("1:3,7") for a SEARCH criterion."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class Caps:
    uidplus: bool
    move: bool
    multiappend: bool
    gmail: bool

    @classmethod
    def of(cls, client: IMAPClient) -> Caps:
        caps = {bytes(c).upper() for c in client.capabilities()}
        return cls(
            uidplus=b"UIDPLUS" in caps,
            move=b"MOVE" in caps,
            multiappend=b"MULTIAPPEND" in caps,
            gmail=b"X-GM-EXT-1" in caps,
        )


@dataclass
class Action:
    """One thing done (or, with --dry-run, planned) to one message."""

    folder: str
    uid: int
    what: str  # cleaned | declined | unchanged | skipped | adopted | recovered | failed | restored
    detail: str = ""
    new_uid: int | None = None
    subject: str = ""

    def line(self, dry_run: bool = False) -> str:
        verb = {
            "cleaned": "would clean" if dry_run else "cleaned",
            "declined": "would decline receipt" if dry_run else "declined receipt",
            "restored": "would restore" if dry_run else "restored",
        }.get(self.what, self.what)
        arrow = f" -> UID {self.new_uid}" if self.new_uid else ""
        text = f"{verb:<22} {self.folder} UID {self.uid}{arrow}"
        if self.subject:
            text += f"  {self.subject}"
        if self.detail:
            text += f"  ({self.detail})"
        return text


@dataclass
class FolderReport:
    folder: str
    uidvalidity: int = 0
    looked_at: int = 0
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth telling, not a failure
    failures: list[str] = field(default_factory=list)  # needs attention
    interrupted: bool = False

    def count(self, what: str) -> int:
        return sum(1 for a in self.actions if a.what == what)


@dataclass
class Msg:
    uid: int
    raw: bytes
    flags: tuple[bytes, ...]
    date: datetime | None
    size: int
    message_id: str


@dataclass
class FolderPass:
    """What a pass over one selected folder knows."""

    name: str
    uidvalidity: int
    uidnext: int
    keywords_ok: bool
    report: FolderReport
    orphans: dict[str, int] = field(default_factory=dict)  # Message-ID -> unjournaled copy UID
    restored_ids: set[str] = field(default_factory=set)
    append_blocked: str | None = None


def removed_text(result: CleanOutcome) -> str:
    parts = [f"{k} {v}" for k, v in sorted(result.removed.items()) if v]
    return ", ".join(parts)
