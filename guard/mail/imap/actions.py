"""Cleaning and restoring mail on an IMAP server, so that nothing is ever lost or doubled.

Per new message of a folder (in batches):

1. `UID FETCH (FLAGS INTERNALDATE RFC822.SIZE)`, then `BODY.PEEK[]` (never sets \\Seen);
2. the planner (a `Transform`, normally guard.clean.message.clean_message) decides: unchanged,
   skipped, receipt-only (`decline_only`: just STORE `$MDNSent`, no rewrite) or rewritten;
3. journal `intent` (digest of the cleaned copy, the folder's UIDNEXT) -> APPEND the cleaned copies
   (MULTIAPPEND when several) with the original's flags, keywords and INTERNALDATE plus
   `$GuardCleaned` -> verify (UIDPLUS APPENDUID, else a search by Message-ID and X-Guard above the
   recorded UIDNEXT, confirmed by the digest) -> journal `appended` (new UID);
4. MOVE the originals to the account's backup folder (created if missing); without MOVE:
   COPY + \\Deleted + `UID EXPUNGE` of exactly those UIDs; without UIDPLUS too: COPY + \\Deleted and
   no expunge (reported). Never a plain EXPUNGE. -> journal `done`.

A rerun first finishes or rolls back whatever the journal shows half-done (see
guard.mail.imap.journal), and recognises guard's cleaned copies by the journal and the
`$GuardCleaned` keyword - never by the X-Guard header, which any sender can write. A refused
APPEND (quota, full disk) leaves the original untouched and is reported.

`GUARD_TEST_CRASH_AT=<step>` (test-only; inert unless set) SIGKILLs the process at a step:
after-intent, after-append, before-move, after-move, restore-after-move.
`GUARD_TEST_SIGINT_AT=<step>` sends the process SIGINT (Ctrl-C) the first time it reaches the
step: a test of the interrupted run knows the signal came exactly there, not whenever a poll saw it.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import os
import re
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from typing import Any, Protocol, TypeVar

from imapclient import IMAPClient
from imapclient.datetime_util import datetime_to_INTERNALDATE
from imapclient.imapclient import _literal

from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.mail.config import Account
from guard.mail.imap.connection import (
    FolderError,
    ImapError,
    _one_line,
    _server_text,
    errors,
    list_folders,
)
from guard.mail.imap.journal import Entry, Journal

T = TypeVar("T")

CRASH_ENV = "GUARD_TEST_CRASH_AT"
SIGINT_ENV = "GUARD_TEST_SIGINT_AT"
_interrupted_at: set[str] = set()
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
    """Test-only hooks: SIGKILL this process at `step` when $GUARD_TEST_CRASH_AT names it; send
    it SIGINT the first time it reaches `step` when $GUARD_TEST_SIGINT_AT names it."""
    if os.environ.get(CRASH_ENV) == step:
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


def receipt_only(result: CleanOutcome) -> bool:
    """Only a receipt request to handle: nothing but receipt headers would be removed."""
    if not result.receipt_requested:
        return False
    return all(n == 0 for kind, n in result.removed.items() if "receipt" not in kind.lower())


def digest(data: bytes) -> str:
    """Digest of a message, insensitive to the server's line-ending normalisation."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_SAFE_ID = re.compile(r"^<?[\x21-\x7e]{1,900}>?$")


def header_block(raw: bytes) -> bytes:
    m = _HEADER_END.search(raw, 0, 256 * 1024)
    return raw[: m.start()] if m else raw[: 256 * 1024]


def header_value(raw: bytes, name: str) -> str:
    """The first `name:` header of `raw`, unfolded (raw bytes decoded as UTF-8 with replacement)."""
    pattern = re.compile(
        rb"^" + re.escape(name.encode()) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M
    )
    m = pattern.search(header_block(raw))
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


class AppendRefused(Exception):
    """The server answered NO to an APPEND (quota, full disk, size limit...)."""


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
class _Msg:
    uid: int
    raw: bytes
    flags: tuple[bytes, ...]
    date: datetime | None
    size: int
    message_id: str


@dataclass
class _Folder:
    """What a pass over one selected folder knows."""

    name: str
    uidvalidity: int
    uidnext: int
    keywords_ok: bool
    report: FolderReport
    orphans: dict[str, int] = field(default_factory=dict)  # Message-ID -> unjournaled copy UID
    restored_ids: set[str] = field(default_factory=set)
    append_blocked: str | None = None


def _removed_text(result: CleanOutcome) -> str:
    parts = [f"{k} {v}" for k, v in sorted(result.removed.items()) if v]
    return ", ".join(parts)


class ImapActions:
    """Server-side steps shared by cleaning and restoring (one connection, one account)."""

    def __init__(
        self,
        client: IMAPClient,
        account: Account,
        journal: Journal,
        *,
        dry_run: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.account = account
        self.journal = journal
        self.dry_run = dry_run
        self.log = log or (lambda _line: None)
        client.normalise_times = False  # INTERNALDATE with its own zone, preserved exactly
        with errors(account, "reading capabilities"):
            self.caps = Caps.of(client)
        self.backup = account.backup_folder
        self._backup_ready = False

    # -- small wrappers ------------------------------------------------------------------------

    def call(self, doing: str, fn: Callable[..., T], *args: Any) -> T:
        with errors(self.account, doing):
            return fn(*args)

    def attempt(self, doing: str, fn: Callable[..., T], *args: Any) -> tuple[T | None, str | None]:
        """Like call(), but a NO/BAD answer comes back as (None, server text) instead of raising;
        a broken connection still raises ImapError."""
        with errors(self.account, doing):
            try:
                return fn(*args), None
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                return None, _one_line(_server_text(exc))

    def _untagged(self) -> dict[str, list[Any]]:
        imap = self.client._imap
        responses: dict[str, list[Any]] = imap.untagged_responses
        return responses

    def _pop_code(self, name: str) -> list[bytes]:
        values = self._untagged().pop(name, [])
        return [v if isinstance(v, bytes) else str(v).encode() for v in values]

    def _drop_untagged(self) -> None:
        """imaplib keeps every untagged response; a long run (watch) must not accumulate them."""
        for key in ("EXISTS", "RECENT", "EXPUNGE", "FETCH", "VANISHED", "OK", "COPYUID"):
            self._untagged().pop(key, None)

    def select(self, folder: str, readonly: bool) -> dict[bytes, Any]:
        with errors(self.account, f"opening {folder!r}"):
            try:
                return dict(self.client.select_folder(folder, readonly=readonly))
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                text = _one_line(_server_text(exc))
                if "NONEXISTENT" in text.upper() or "exist" in text.lower():
                    existing = list_folders(self.client)
                    shown = ", ".join(existing[:30]) + (" …" if len(existing) > 30 else "")
                    raise FolderError(
                        f"no folder {folder!r} on {self.account.host}; existing: {shown or 'none'}"
                    ) from None
                raise

    def search(self, folder: str, criteria: Sequence[Any]) -> list[int]:
        return sorted(
            int(u) for u in self.call(f"searching {folder!r}", self.client.search, list(criteria))
        )

    def fetch(self, folder: str, uids: Sequence[int], items: Sequence[bytes]) -> dict[int, Any]:
        if not uids:
            return {}
        result: dict[int, Any] = self.call(
            f"fetching from {folder!r}", self.client.fetch, list(uids), list(items)
        )
        return result

    def ensure_backup(self) -> None:
        if self._backup_ready or self.dry_run:
            return
        exists = self.call("looking for the backup folder", self.client.folder_exists, self.backup)
        if not exists:
            _, refused = self.attempt(
                f"creating the backup folder {self.backup!r}",
                self.client.create_folder,
                self.backup,
            )
            if refused and not self.call("", self.client.folder_exists, self.backup):
                raise FolderError(f"cannot create the backup folder {self.backup!r}: {refused}")
            self.log(f"created the backup folder {self.backup}")
        self._backup_ready = True

    def copyuid_map(self) -> tuple[int | None, dict[int, int]]:
        """(destination UIDVALIDITY, source UID -> destination UID) from the last COPYUID."""
        codes = self._pop_code("COPYUID")
        if not codes or not self.caps.uidplus:
            return None, {}
        try:
            validity, src, dst = codes[-1].decode("ascii").split()[:3]
            pairs = zip(expand_uid_set(src), expand_uid_set(dst), strict=True)
            return int(validity), dict(pairs)
        except ValueError:
            return None, {}

    def transfer(
        self, source: str, uids: Sequence[int], dest: str
    ) -> tuple[str | None, int | None, dict[int, int], bool]:
        """Move `uids` of the selected `source` to `dest`: MOVE, else COPY + \\Deleted + UID
        EXPUNGE, else (no UIDPLUS) COPY + \\Deleted without expunge.

        Returns (refusal text or None, dest UIDVALIDITY, uid map, expunged)."""
        self._pop_code("COPYUID")
        doing = f"moving {len(uids)} message(s) from {source!r} to {dest!r}"
        if self.caps.move:
            _, refused = self.attempt(doing, self.client.move, list(uids), dest)
            if refused:
                return refused, None, {}, False
            validity, mapping = self.copyuid_map()
            return None, validity, mapping, True
        _, refused = self.attempt(doing, self.client.copy, list(uids), dest)
        if refused:
            return refused, None, {}, False
        validity, mapping = self.copyuid_map()
        return None, validity, mapping, False

    def delete_exactly(self, folder: str, uids: Sequence[int]) -> bool:
        """\\Deleted + UID EXPUNGE of exactly `uids` (UIDPLUS); without UIDPLUS only the flag.
        Returns True when expunged. Never a plain EXPUNGE."""
        if not uids:
            return True
        self.call(f"flagging in {folder!r}", self.client.add_flags, list(uids), [DELETED], True)
        if not self.caps.uidplus:
            return False
        self.call(f"expunging in {folder!r}", self.client.uid_expunge, list(uids))
        return True


class Cleaner(ImapActions):
    """Cleans folders of one account over one connection (see the module docstring)."""

    def __init__(
        self,
        client: IMAPClient,
        account: Account,
        journal: Journal,
        transform: Transform,
        *,
        dry_run: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        stop: Callable[[], bool] | None = None,
        log: Callable[[str], None] | None = None,
        batch: int = BATCH,
    ) -> None:
        super().__init__(client, account, journal, dry_run=dry_run, log=log)
        self.transform = transform
        self.limits = limits
        self.stop = stop or (lambda: False)
        self.batch = max(1, batch)

    # -- a folder ------------------------------------------------------------------------------

    def clean_folder(self, folder: str) -> FolderReport:
        report = FolderReport(folder)
        if folder == self.backup or folder.startswith(self.backup + "/"):
            report.notes.append(f"{folder}: is the backup folder: not cleaned")
            return report
        info = self.select(folder, readonly=self.dry_run)
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        report.uidvalidity = uidvalidity
        perm = {bytes(f) for f in info.get(b"PERMANENTFLAGS", ())}
        ctx = _Folder(
            name=folder,
            uidvalidity=uidvalidity,
            uidnext=int(info.get(b"UIDNEXT", 0) or 0),
            # EXAMINE (--dry-run) reports no PERMANENTFLAGS: plan as a server that keeps keywords
            keywords_ok=b"\\*" in perm or (self.dry_run and not perm),
            report=report,
        )
        acc = self.account.name
        if not self.dry_run:
            stale = self.journal.mark_stale(acc, folder, uidvalidity)
            if stale:
                report.failures.append(
                    f"{folder}: UIDVALIDITY changed: {stale} half-done step(s) of an earlier run "
                    f"cannot be finished; check {self.backup} and {folder} for doubles"
                )
            self._recover(ctx)
        pending = {e.uid for e in self.journal.pending(acc, folder)}
        seen = self.journal.seen(acc, folder, uidvalidity)
        known = (
            set(seen)
            | self.journal.copy_uids(acc, folder, uidvalidity)
            | self.journal.journal_uids(acc, folder, uidvalidity)
        )
        criteria: list[Any] = ["NOT", "DELETED"]
        if ctx.keywords_ok:
            criteria += ["NOT", "KEYWORD", KW_CLEANED, "NOT", "KEYWORD", KW_RESTORED]
            self._find_orphans(ctx, known)
        ctx.restored_ids = self.journal.restored_message_ids(acc, folder)
        new = [u for u in self.search(folder, criteria) if u not in known and u not in pending]
        report.looked_at = len(new)
        for start in range(0, len(new), META_BATCH):
            if self.stop():
                report.interrupted = True
                break
            self._process(ctx, new[start : start + META_BATCH])
        if not ctx.keywords_ok and any(
            a.what in ("cleaned", "declined") and "receipt" in a.detail for a in report.actions
        ):
            report.notes.append(
                f"{folder}: the server keeps no custom keywords here: receipt requests were "
                "declined by removing their headers only ($MDNSent could not be set)"
            )
        self._drop_untagged()
        return report

    def _find_orphans(self, ctx: _Folder, known: set[int]) -> None:
        """Cleaned copies (keyword) the journal does not know (state lost): remember their
        Message-IDs so their originals are only moved, not cleaned a second time."""
        acc = self.account.name
        copies = [u for u in self.search(ctx.name, ["KEYWORD", KW_CLEANED]) if u not in known]
        restored = [u for u in self.search(ctx.name, ["KEYWORD", KW_RESTORED]) if u not in known]
        if copies:
            data = self.fetch(ctx.name, copies, [FETCH_MESSAGE_ID])
            for uid, item in data.items():
                mid = message_id(item.get(MESSAGE_ID_KEY) or b"")
                if mid:
                    ctx.orphans.setdefault(mid, int(uid))
        if not self.dry_run:
            self.journal.mark_seen(
                acc,
                ctx.name,
                ctx.uidvalidity,
                [(u, "copy") for u in copies] + [(u, "restored") for u in restored],
            )

    def _process(self, ctx: _Folder, uids: Sequence[int]) -> None:
        meta = self.fetch(ctx.name, uids, [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"])
        batch: list[int] = []
        size = 0
        skipped: list[tuple[int, str]] = []
        for uid in uids:
            item = meta.get(uid)
            if item is None:  # expunged meanwhile
                continue
            msg_size = int(item.get(b"RFC822.SIZE") or 0)
            if msg_size > self.limits.max_message_bytes:
                reason = (
                    f"message of {msg_size // (1024 * 1024)} MiB exceeds the limit of "
                    f"{self.limits.max_message_bytes // (1024 * 1024)} MiB"
                )
                ctx.report.actions.append(Action(ctx.name, uid, "skipped", reason))
                skipped.append((uid, "skipped"))
                continue
            batch.append(uid)
            size += msg_size
            if len(batch) >= self.batch or size >= BATCH_BYTES:
                self._batch(ctx, batch, meta)
                batch, size = [], 0
                if self.stop():
                    ctx.report.interrupted = True
                    break
        else:
            if batch:
                self._batch(ctx, batch, meta)
        if skipped and not self.dry_run:
            self.journal.mark_seen(self.account.name, ctx.name, ctx.uidvalidity, skipped)

    def _batch(self, ctx: _Folder, uids: Sequence[int], meta: dict[int, Any]) -> None:
        bodies = self.fetch(ctx.name, uids, [FETCH_BODY])
        appends: list[tuple[_Msg, CleanOutcome]] = []
        declines: list[_Msg] = []
        adopts: list[tuple[_Msg, int]] = []
        seen: list[tuple[int, str]] = []
        rep = ctx.report
        for uid in uids:
            data = bodies.get(uid)
            if data is None:
                continue
            raw = data.get(BODY_KEY)
            if not isinstance(raw, bytes):
                continue
            m = meta[uid]
            msg = _Msg(
                uid=uid,
                raw=raw,
                flags=tuple(bytes(f) for f in m.get(b"FLAGS", ())),
                date=m.get(b"INTERNALDATE"),
                size=int(m.get(b"RFC822.SIZE") or len(raw)),
                message_id=message_id(raw),
            )
            if msg.message_id and msg.message_id in ctx.orphans:
                adopts.append((msg, ctx.orphans.pop(msg.message_id)))
                continue
            if msg.message_id and msg.message_id in ctx.restored_ids:
                seen.append((uid, "restored"))
                continue
            try:
                result = self.transform(raw)
            except Exception as exc:  # noqa: BLE001 - the planner should never raise; be safe
                rep.actions.append(
                    Action(ctx.name, uid, "skipped", f"internal error ({type(exc).__name__})")
                )
                seen.append((uid, "skipped"))
                continue
            if result.skipped:
                rep.actions.append(Action(ctx.name, uid, "skipped", result.skipped))
                seen.append((uid, "skipped"))
            elif ctx.keywords_ok and receipt_only(result):
                if KW_MDNSENT in msg.flags:
                    seen.append((uid, "declined"))
                else:
                    declines.append(msg)
                    rep.actions.append(
                        Action(
                            ctx.name, uid, "declined", "receipt: $MDNSent", None, subject_of(raw)
                        )
                    )
            elif result.changed:
                appends.append((msg, result))
            else:
                seen.append((uid, "unchanged"))
                rep.actions.append(Action(ctx.name, uid, "unchanged"))
        if self.dry_run:
            for msg, result in appends:
                rep.actions.append(
                    Action(ctx.name, msg.uid, "cleaned", _removed_text(result), None,
                           subject_of(msg.raw))
                )  # fmt: skip
            for msg, copy_uid in adopts:
                rep.actions.append(
                    Action(ctx.name, msg.uid, "adopted", f"cleaned copy UID {copy_uid} exists")
                )
            return
        acc = self.account.name
        if declines:
            self.call(
                f"setting $MDNSent in {ctx.name!r}",
                self.client.add_flags,
                [m.uid for m in declines],
                [KW_MDNSENT],
                True,
            )
            seen += [(m.uid, "declined") for m in declines]
        if seen:
            self.journal.mark_seen(acc, ctx.name, ctx.uidvalidity, seen)
        if appends:
            self._append_and_move(ctx, appends)
        if adopts:
            self._adopt(ctx, adopts)
        self._drop_untagged()

    # -- append, verify, move ------------------------------------------------------------------

    def _flags_for(self, ctx: _Folder, msg: _Msg, result: CleanOutcome) -> list[bytes]:
        flags = [f for f in msg.flags if f.lower() not in (b"\\recent", DELETED.lower())]
        if ctx.keywords_ok:
            flags.append(KW_CLEANED)
            if result.receipt_requested and KW_MDNSENT not in flags:
                flags.append(KW_MDNSENT)
        return flags

    def _append_and_move(self, ctx: _Folder, items: list[tuple[_Msg, CleanOutcome]]) -> None:
        rep = ctx.report
        if ctx.append_blocked:
            for msg, _ in items:
                rep.actions.append(Action(ctx.name, msg.uid, "failed", ctx.append_blocked))
            return
        self.ensure_backup()
        acc = self.account.name
        entries = [
            Entry(
                account=acc,
                folder=ctx.name,
                uidvalidity=ctx.uidvalidity,
                uid=msg.uid,
                state="intent",
                message_id=msg.message_id,
                digest=digest(result.data),
                orig_size=msg.size,
                uidnext=ctx.uidnext,
                backup_folder=self.backup,
            )
            for msg, result in items
        ]
        self.journal.write(entries)
        crash_point("after-intent")
        pairs = list(zip(entries, items, strict=True))
        groups = [pairs] if self.caps.multiappend and len(pairs) > 1 else [[p] for p in pairs]
        ready: list[Entry] = []
        for group in groups:
            ready += self._append_group(ctx, group)
        if ready:
            crash_point("before-move")
            self._move(ctx, ready)

    def _append_group(
        self, ctx: _Folder, group: list[tuple[Entry, tuple[_Msg, CleanOutcome]]]
    ) -> list[Entry]:
        rep = ctx.report
        if ctx.append_blocked:
            self.journal.delete([e for e, _ in group])
            for e, _ in group:
                rep.actions.append(Action(ctx.name, e.uid, "failed", ctx.append_blocked))
            return []
        try:
            new_uids = self._append_cmd(
                ctx, [(self._flags_for(ctx, m, r), m.date, r.data) for _, (m, r) in group]
            )
        except AppendRefused as exc:
            if len(group) > 1:  # MULTIAPPEND is all-or-nothing: try one by one
                out: list[Entry] = []
                for one in group:
                    out += self._append_group(ctx, [one])
                return out
            entry, (msg, _) = group[0]
            self.journal.delete([entry])
            reason = f"the server refused the APPEND: {exc}; the original is untouched"
            text = str(exc).upper()
            if "QUOTA" in text or "LIMIT" in text or "SPACE" in text:
                ctx.append_blocked = f"not cleaned: {exc} (quota/space); the original is untouched"
            rep.actions.append(
                Action(ctx.name, msg.uid, "failed", reason, None, subject_of(msg.raw))
            )
            rep.failures.append(f"{ctx.name} UID {msg.uid}: {reason}")
            return []
        crash_point("after-append")
        entries = [e for e, _ in group]
        if new_uids is None or len(new_uids) != len(entries):
            found: list[int | None] = []
            claimed = self.journal.copy_uids(self.account.name, ctx.name, ctx.uidvalidity)
            for e in entries:
                uid = self._find_copy(ctx, e, claimed, strict=True)
                if uid is not None:
                    claimed.add(uid)
                found.append(uid)
        else:
            found = list(new_uids)
        ready: list[Entry] = []
        for e, (_, (msg, result)), uid in zip(entries, group, found, strict=True):
            if uid is None:
                reason = (
                    "the server accepted the cleaned copy but it cannot be found: the original "
                    "stays in place; the next run checks again"
                )
                rep.actions.append(Action(ctx.name, e.uid, "failed", reason))
                rep.failures.append(f"{ctx.name} UID {e.uid}: {reason}")
                continue
            e.state, e.new_uid = "appended", uid
            ctx.uidnext = max(ctx.uidnext, uid + 1)
            ready.append(e)
            rep.actions.append(
                Action(ctx.name, e.uid, "cleaned", _removed_text(result), uid, subject_of(msg.raw))
            )
        if ready:
            self.journal.write(ready, seen=[(e, int(e.new_uid or 0), "copy") for e in ready])
        return ready

    def _append_cmd(
        self, ctx: _Folder, items: Sequence[tuple[list[bytes], datetime | None, bytes]]
    ) -> list[int] | None:
        """One APPEND command (MULTIAPPEND when several). New UIDs from APPENDUID when the server
        has UIDPLUS, else None. Raises AppendRefused on NO."""
        client: Any = self.client
        self._pop_code("APPENDUID")
        args: list[bytes] = [client._normalise_folder(ctx.name)]
        for flags, date, data in items:
            args.append(b"(" + b" ".join(flags) + b")")
            if date is not None:
                args.append(b'"' + datetime_to_INTERNALDATE(date).encode("ascii") + b'"')
            args.append(_literal(data))
        with errors(self.account, f"appending to {ctx.name!r}"):
            try:
                typ, data = client._raw_command(b"APPEND", args, uid=False)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:  # BAD
                raise AppendRefused(_one_line(_server_text(exc))) from None
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes))
            raise AppendRefused(_one_line(text) or typ)
        codes = self._pop_code("APPENDUID")
        if not self.caps.uidplus or not codes:
            return None
        try:
            validity, uids = codes[-1].decode("ascii").split()[:2]
            if int(validity) != ctx.uidvalidity:
                return None
            return expand_uid_set(uids)
        except ValueError:
            return None

    def _find_copy(self, ctx: _Folder, e: Entry, claimed: set[int], strict: bool) -> int | None:
        """Find entry `e`'s cleaned copy above the UIDNEXT recorded before its APPEND: by
        Message-ID and X-Guard (or the keyword), confirmed by the digest. `strict=False` (crash
        recovery) also accepts keyword + Message-ID when the bytes differ."""
        criteria: list[Any] = ["UID", f"{max(1, e.uidnext)}:*"]
        if e.message_id:
            criteria += ["HEADER", "Message-ID", e.message_id]
        if ctx.keywords_ok:
            criteria += ["KEYWORD", KW_CLEANED]
        else:
            criteria += ["HEADER", "X-Guard", ""]
        candidates = [
            u
            for u in self.search(ctx.name, criteria)
            if u >= e.uidnext and u != e.uid and u not in claimed
        ]
        if not candidates:
            return None
        bodies = self.fetch(ctx.name, candidates, [FETCH_BODY])
        for uid in candidates:
            raw = (bodies.get(uid) or {}).get(BODY_KEY)
            if isinstance(raw, bytes) and digest(raw) == e.digest:
                return uid
        if not strict and ctx.keywords_ok and e.message_id:
            return candidates[0]
        return None

    def _move(self, ctx: _Folder, entries: list[Entry]) -> None:
        """Originals of `entries` (cleaned copies in place) -> the backup folder."""
        if not entries:
            return
        self.ensure_backup()
        uids = [e.uid for e in entries]
        if not self.caps.move:
            status = self.call(
                "reading the backup folder's status",
                self.client.folder_status,
                self.backup,
                [b"UIDNEXT", b"UIDVALIDITY"],
            )
            for e in entries:
                e.state = "copying"
                e.backup_uidnext = int(status.get(b"UIDNEXT", 0) or 0)
                e.backup_uidvalidity = int(status.get(b"UIDVALIDITY", 0) or 0)
            self.journal.write(entries)
        refused, validity, mapping, moved = self.transfer(ctx.name, uids, self.backup)
        if refused:
            self._rollback(ctx, entries, refused)
            return
        for e in entries:
            e.backup_uid = mapping.get(e.uid)
            if validity is not None:
                e.backup_uidvalidity = validity
        if moved:
            crash_point("after-move")
            for e in entries:
                e.state = "done"
            self.journal.write(entries)
            return
        for e in entries:
            e.state = "copied"
        self.journal.write(entries)
        self._expunge_originals(ctx, entries)

    def _expunge_originals(self, ctx: _Folder, entries: list[Entry]) -> None:
        if not entries:
            return
        expunged = self.delete_exactly(ctx.name, [e.uid for e in entries])
        crash_point("after-move")
        if not expunged:
            ctx.report.notes.append(
                f"{ctx.name}: the server has neither MOVE nor UIDPLUS: {len(entries)} original(s) "
                f"were copied to {self.backup} and flagged \\Deleted but not expunged (guard never "
                "expunges a whole folder); your mail client's expunge/compact removes them"
            )
        for e in entries:
            e.state = "done"
        self.journal.write(entries)

    def _rollback(self, ctx: _Folder, entries: list[Entry], refused: str) -> None:
        """Moving the originals was refused: remove the cleaned copies again (exactly those UIDs),
        so the folder is as it was; without UIDPLUS leave both and retry next run."""
        ours = [e for e in entries if e.new_uid is not None and e.digest]
        where = f"{ctx.name} UID {', '.join(str(e.uid) for e in entries)}"
        if ours and self.caps.uidplus:
            self.delete_exactly(ctx.name, [int(e.new_uid or 0) for e in ours])
            self.journal.forget_seen(
                self.account.name, ctx.name, ctx.uidvalidity, [int(e.new_uid or 0) for e in ours]
            )
            self.journal.delete(entries)
            reason = (
                f"the server refused to move the original(s) to {self.backup} ({refused}); "
                "the cleaned copies were removed again, the originals are untouched"
            )
        else:
            for e in entries:
                e.state = "appended"
            self.journal.write(entries)
            reason = (
                f"the server refused to move the original(s) to {self.backup} ({refused}); "
                "original and cleaned copy are both in the folder until the next run"
            )
        failed = {e.uid for e in entries}
        ctx.report.actions[:] = [
            a for a in ctx.report.actions if not (a.what == "cleaned" and a.uid in failed)
        ] + [Action(ctx.name, e.uid, "failed", reason) for e in entries]
        ctx.report.failures.append(f"{where}: {reason}")

    def _adopt(self, ctx: _Folder, adopts: list[tuple[_Msg, int]]) -> None:
        """Originals whose cleaned copy (keyword, same Message-ID) exists without a journal entry:
        just move them to the backup folder."""
        entries = [
            Entry(
                account=self.account.name,
                folder=ctx.name,
                uidvalidity=ctx.uidvalidity,
                uid=msg.uid,
                state="appended",
                message_id=msg.message_id,
                orig_size=msg.size,
                uidnext=ctx.uidnext,
                new_uid=copy_uid,
                backup_folder=self.backup,
            )
            for msg, copy_uid in adopts
        ]
        self.journal.write(entries)
        for e in entries:
            ctx.report.actions.append(
                Action(ctx.name, e.uid, "adopted", "its cleaned copy was already there", e.new_uid)
            )
        self._move(ctx, entries)

    # -- crash recovery ------------------------------------------------------------------------

    def _recover(self, ctx: _Folder) -> None:
        acc = self.account.name
        pending = [
            e for e in self.journal.pending(acc, ctx.name) if e.uidvalidity == ctx.uidvalidity
        ]
        if not pending:
            return
        rep = ctx.report
        wanted = {e.uid for e in pending} | {e.new_uid for e in pending if e.new_uid}
        present = set(self.search(ctx.name, ["UID", uid_set(wanted)]))
        claimed = self.journal.copy_uids(acc, ctx.name, ctx.uidvalidity)
        to_move: list[Entry] = []
        to_expunge: list[Entry] = []
        finished: list[Entry] = []

        def note(e: Entry, text: str) -> None:
            rep.actions.append(Action(ctx.name, e.uid, "recovered", text, e.new_uid))
            self.log(f"recovered {ctx.name} UID {e.uid}: {text}")

        for e in pending:
            if e.state == "intent":
                found = self._find_copy(ctx, e, claimed, strict=False)
                if found is None:
                    self.journal.delete([e])  # the APPEND never happened: untouched
                    note(e, "interrupted before its APPEND: left untouched, cleaned again now")
                    continue
                claimed.add(found)
                e.state, e.new_uid = "appended", found
                present.add(found)
                self.journal.write([e], seen=[(e, found, "copy")])
            if e.state == "appended":
                if e.new_uid not in present:
                    if e.uid in present:
                        self.journal.delete([e])
                        self.journal.mark_seen(acc, ctx.name, ctx.uidvalidity, [(e.uid, "kept")])
                        rep.failures.append(
                            f"{ctx.name} UID {e.uid}: its cleaned copy UID {e.new_uid} is gone; "
                            "the original stays in place"
                        )
                    else:
                        finished.append(e)
                elif e.uid in present:
                    to_move.append(e)
                    note(e, "cleaned copy in place: moving the original now")
                else:
                    finished.append(e)
                    note(e, "was complete")
            elif e.state == "copying":
                backup_uid = self._find_in_backup(ctx, e)
                if backup_uid is not None:
                    e.state, e.backup_uid = "copied", backup_uid
                    self.journal.write([e])
                    (to_expunge if e.uid in present else finished).append(e)
                elif e.uid in present:
                    e.state = "appended"
                    to_move.append(e)
                else:
                    finished.append(e)
            elif e.state == "copied":
                (to_expunge if e.uid in present else finished).append(e)
        for e in finished:
            e.state = "done"
        if finished:
            self.journal.write(finished)
        self._move(ctx, to_move)
        self._expunge_originals(ctx, to_expunge)

    def _find_in_backup(self, ctx: _Folder, e: Entry) -> int | None:
        """The copy of `e`'s original a COPY may have made before a crash (servers without MOVE)."""
        if not e.message_id or not e.backup_uidnext:
            return None
        try:
            info = self.select(self.backup, readonly=True)
            if e.backup_uidvalidity and int(info.get(b"UIDVALIDITY", 0)) != e.backup_uidvalidity:
                return None
            uids = [
                u
                for u in self.search(
                    self.backup,
                    ["UID", f"{e.backup_uidnext}:*", "HEADER", "Message-ID", e.message_id],
                )
                if u >= e.backup_uidnext
            ]
            sizes = self.fetch(self.backup, uids, [b"RFC822.SIZE"])
            for uid in uids:
                if int((sizes.get(uid) or {}).get(b"RFC822.SIZE", -1)) == e.orig_size:
                    return uid
            return None
        finally:
            self.select(ctx.name, readonly=False)


# -- restore ---------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Restorer(ImapActions):
    """Moves originals back from the backup folder and removes their cleaned copies."""

    def restore(
        self, folder: str | None = None, copy_uids: Sequence[int] | None = None
    ) -> RestoreReport:
        """Restore every cleaned message of `folder` (all folders when None), or only those whose
        cleaned copies have `copy_uids` (in `folder`)."""
        rep = RestoreReport()
        entries = self.journal.entries(self.account.name, folder, ("done", "restoring", "restored"))
        if copy_uids is not None:
            wanted = set(copy_uids)
            entries = [e for e in entries if e.new_uid in wanted]
            unknown = wanted - {e.new_uid for e in entries}
            for uid in sorted(unknown):
                rep.failures.append(
                    f"{folder} UID {uid}: not a cleaned copy guard knows (see `guard clean -v`)"
                )
        groups: dict[tuple[str, int], list[Entry]] = {}
        for e in entries:
            groups.setdefault((e.folder, e.uidvalidity), []).append(e)
        for (name, validity), group in sorted(groups.items()):
            self._restore_folder(name, validity, group, rep)
        return rep

    def _restore_folder(
        self, folder: str, uidvalidity: int, entries: list[Entry], rep: RestoreReport
    ) -> None:
        acc = self.account.name
        info = self.select(folder, readonly=self.dry_run)
        if int(info.get(b"UIDVALIDITY", 0)) != uidvalidity:
            rep.failures.append(
                f"{folder}: UIDVALIDITY changed since cleaning: {len(entries)} message(s) cannot "
                f"be restored automatically; the originals are in {self.backup}"
            )
            return
        folder_keywords = b"\\*" in {bytes(f) for f in info.get(b"PERMANENTFLAGS", ())}
        copies = [int(e.new_uid) for e in entries if e.new_uid]
        copy_flags: dict[int, tuple[bytes, ...]] = {}
        if copies:
            present = set(self.search(folder, ["UID", uid_set(copies)]))
            flags = self.fetch(folder, sorted(present), [b"FLAGS"])
            copy_flags = {
                int(u): tuple(bytes(f) for f in d.get(b"FLAGS", ())) for u, d in flags.items()
            }
        todo = [e for e in entries if e.state in ("done", "restoring")]
        cleanup = [e for e in entries if e.state == "restored"]
        if self.dry_run:
            for e in todo:
                rep.actions.append(
                    Action(
                        folder, int(e.new_uid or 0), "restored", f"original from {e.backup_folder}"
                    )
                )
            return
        # 1. originals back from the backup folder (with the copy's current flags + keyword)
        by_backup: dict[str, list[Entry]] = {}
        for e in todo:
            by_backup.setdefault(e.backup_folder or self.backup, []).append(e)
        restored: list[Entry] = []
        for backup, group in by_backup.items():
            restored += self._bring_back(folder, backup, group, copy_flags, rep)
        self.select(folder, readonly=False)
        # restoring entries whose original had already moved back before a crash
        for e in restored:
            if e.restored_uid is None:
                e.restored_uid = self._find_restored(folder, e)
        self.journal.write(
            restored, seen=[(e, e.restored_uid, "restored") for e in restored if e.restored_uid]
        )
        crash_point("restore-after-move")
        if not folder_keywords:
            rep.notes.append(
                f"{folder}: the server keeps no custom keywords: restored originals are "
                "remembered by guard's state only"
            )
        # 2. remove the cleaned copies (exactly those UIDs)
        cleanup += restored
        gone = [int(e.new_uid) for e in cleanup if e.new_uid and int(e.new_uid) in copy_flags]
        if gone:
            expunged = self.delete_exactly(folder, gone)
            if not expunged:
                rep.notes.append(
                    f"{folder}: no UIDPLUS: {len(gone)} cleaned cop(ies) flagged \\Deleted but "
                    "not expunged; your mail client's expunge/compact removes them"
                )
            self.journal.forget_seen(acc, folder, uidvalidity, gone)
        for e in restored:
            rep.actions.append(
                Action(folder, int(e.new_uid or 0), "restored", "the original", e.restored_uid)
            )
        self._drop_untagged()

    def _bring_back(
        self,
        folder: str,
        backup: str,
        entries: list[Entry],
        copy_flags: dict[int, tuple[bytes, ...]],
        rep: RestoreReport,
    ) -> list[Entry]:
        exists = self.call("looking for the backup folder", self.client.folder_exists, backup)
        if not exists:
            rep.failures.append(f"the backup folder {backup!r} does not exist: nothing restored")
            return []
        info = self.select(backup, readonly=False)
        validity = int(info.get(b"UIDVALIDITY", 0))
        keywords_ok = b"\\*" in {bytes(f) for f in info.get(b"PERMANENTFLAGS", ())}
        located: dict[int, Entry] = {}  # backup uid -> entry
        already: list[Entry] = []  # 'restoring' entries whose original is no longer in backup
        for e in entries:
            uid = self._locate_original(backup, validity, e)
            if uid is None:
                if e.state == "restoring":
                    already.append(e)
                else:
                    rep.failures.append(
                        f"{folder} UID {e.new_uid}: its original is not in {backup}: "
                        "the cleaned copy is kept"
                    )
                continue
            located[uid] = e
        if not located:
            return already
        for e in located.values():
            e.state = "restoring"
        self.journal.write(list(located.values()))
        # the copy's current flags (read, flagged, answered...) go with the original
        for uid, e in located.items():
            flags = [
                f
                for f in copy_flags.get(int(e.new_uid or 0), ())
                if f not in (KW_CLEANED, b"\\Recent")
            ]
            if keywords_ok:
                flags.append(KW_RESTORED)
            if e.new_uid in copy_flags:
                self.call(f"setting flags in {backup!r}", self.client.set_flags, [uid], flags, True)
            elif keywords_ok:
                self.call(
                    f"setting flags in {backup!r}",
                    self.client.add_flags,
                    [uid],
                    [KW_RESTORED],
                    True,
                )
        refused, _validity, mapping, moved = self.transfer(backup, sorted(located), folder)
        if refused:
            rep.failures.append(f"moving originals back from {backup} was refused: {refused}")
            for e in located.values():
                e.state = "done"
            self.journal.write(list(located.values()))
            return already
        if not moved:
            expunged = self.delete_exactly(backup, sorted(located))
            if not expunged:
                rep.notes.append(
                    f"{backup}: no UIDPLUS: restored originals are flagged \\Deleted there but not "
                    "expunged"
                )
        for uid, e in located.items():
            e.state = "restored"
            e.restored_uid = mapping.get(uid)
        return list(located.values()) + already

    def _locate_original(self, backup: str, validity: int, e: Entry) -> int | None:
        if (
            e.backup_uid
            and e.backup_uidvalidity == validity
            and self.search(backup, ["UID", str(e.backup_uid)]) == [e.backup_uid]
        ):
            return e.backup_uid
        if not e.message_id:
            return None
        uids = self.search(backup, ["HEADER", "Message-ID", e.message_id])
        if not uids:
            return None
        sizes = self.fetch(backup, uids, [b"RFC822.SIZE"])
        for uid in uids:
            if (
                not e.orig_size
                or int((sizes.get(uid) or {}).get(b"RFC822.SIZE", -1)) == e.orig_size
            ):
                return uid
        return None

    def _find_restored(self, folder: str, e: Entry) -> int | None:
        if not e.message_id:
            return None
        criteria: list[Any] = ["HEADER", "Message-ID", e.message_id, "NOT", "KEYWORD", KW_CLEANED]
        uids = [u for u in self.search(folder, criteria) if u != e.new_uid]
        return uids[-1] if uids else None


def restore_targets(journal: Journal, account: str, folder: str | None) -> list[Entry]:
    """Cleaned messages `guard restore` could put back (for listing)."""
    return journal.entries(account, folder, ("done",))


__all__ = [
    "CRASH_ENV",
    "KW_CLEANED",
    "KW_MDNSENT",
    "KW_RESTORED",
    "Action",
    "CleanOutcome",
    "Cleaner",
    "FolderReport",
    "ImapError",
    "RestoreReport",
    "Restorer",
    "Transform",
    "crash_point",
    "digest",
    "receipt_only",
]
