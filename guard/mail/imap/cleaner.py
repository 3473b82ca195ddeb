"""Cleaning mail on an IMAP server, so that nothing is ever lost or doubled.

Per new message of a folder (in batches):

1. `UID FETCH (FLAGS INTERNALDATE RFC822.SIZE)`, then `BODY.PEEK[]` (never sets \\Seen);
2. the planner (a `Transform`, normally guard.clean.message.clean_message) decides: unchanged,
   skipped, receipt-only (`decline_only`: just STORE `$MDNSent`, no rewrite) or rewritten;
3. journal `intent` (digest of the cleaned copy, the folder's UIDNEXT) -> APPEND the cleaned copies
   (MULTIAPPEND when several) with the original's flags, keywords and INTERNALDATE plus
   `$GuardCleaned` -> verify (UIDPLUS APPENDUID, else a search by Message-ID and X-Guard above the
   recorded UIDNEXT, confirmed by the digest) -> journal `appended` (new UID, deferred);
4. MOVE the originals to the account's backup folder (created if missing); without MOVE:
   COPY + \\Deleted + `UID EXPUNGE` of exactly those UIDs; without UIDPLUS too: COPY + \\Deleted and
   no expunge (reported). Never a plain EXPUNGE. -> journal `done` (deferred).

The deferred rows (and the seen rows of messages left in place) are committed with the next
batch's `intent`, or at the folder's end: one commit per batch between the server's steps. A crash
loses only rows that recovery finds again from the `intent` row (guard.mail.imap.journal).

A rerun first finishes or rolls back whatever the journal shows half-done (see
guard.mail.imap.journal), and recognises guard's cleaned copies by the journal and the
`$GuardCleaned` keyword - never by the X-Guard header, which any sender can write. A refused
APPEND (quota, full disk) leaves the original untouched and is reported.

The rounds are pipelined: round k+1 is fetched and handed to the planner (guard.mail.imap.planner:
in this process, or, with `jobs` > 1 and PARALLEL_THRESHOLD new messages or more in a folder, in
supervised worker processes) before round k's outcomes are taken and written, so the workers
clean the next round while this process appends, verifies and moves this one. A first or last
round the workers have not finished when its turn comes is written in batches of the messages
they have (MIN_PIECE at least), so the server works while they finish it. Fetching changes
nothing on the server, and everything written is written in order, batch by batch, as above.

The steps are guard.mail.imap.recovery, .append (with the verify), .move (with its fallbacks) and
.receipts (decline-only); this module plans each batch and hands its messages to them. Restoring
is guard.mail.imap.restore. The test-only hooks `GUARD_TEST_CRASH_AT` / `GUARD_TEST_SIGINT_AT`
stop a run at a named step (guard.mail.imap.common.crash_point).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient

from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.mail.config import Account
from guard.mail.imap.append import AppendStep
from guard.mail.imap.common import (
    BATCH,
    BATCH_BYTES,
    BODY_KEY,
    FETCH_BODY,
    FETCH_MESSAGE_ID,
    KW_CLEANED,
    KW_MDNSENT,
    KW_RESTORED,
    MESSAGE_ID_KEY,
    META_BATCH,
    Action,
    CleanOutcome,
    FolderPass,
    FolderReport,
    Msg,
    Transform,
    message_id,
    removed_text,
    subject_of,
)
from guard.mail.imap.journal import Journal
from guard.mail.imap.move import MoveStep
from guard.mail.imap.planner import PARALLEL_THRESHOLD, InlinePlanner, Planned, Planner
from guard.mail.imap.receipts import ReceiptStep, receipt_only
from guard.mail.imap.recovery import RecoveryStep
from guard.mail.store import StoreError

if TYPE_CHECKING:  # the pool (multiprocessing, pickle, selectors) is imported for large folders
    from guard.mail.imap.pool import PoolPlanner


@dataclass
class _Round:
    """UIDs fetched and written together, their FLAGS/INTERNALDATE/size, and the messages over
    the size limit met before them."""

    uids: list[int]
    meta: dict[int, Any]
    skipped: list[Action]


@dataclass
class _Staged:
    """A round fetched and handed to the planner."""

    skipped: list[Action]
    msgs: list[Msg] = field(default_factory=list)  # to plan, in UID order
    keys: list[int] = field(default_factory=list)  # their planner keys
    adopts: list[tuple[Msg, int]] = field(default_factory=list)
    seen: list[tuple[int, str]] = field(default_factory=list)


_META = [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]
FIRST_PIECE = 16  # messages per FETCH of a folder's first round, when workers plan them
MIN_PIECE = 25  # fewest messages of a round written as a batch of their own (see _apply)
_LISTED_WITH = {"cleaned": 1, "failed": 1, "adopted": 2}


def _listed_with(action: Action) -> int:
    """Where a round written in one batch lists an action: first what the planner decided
    (skipped, unchanged, declined), then the APPENDs' outcomes (cleaned, failed), then adoptions."""
    return _LISTED_WITH.get(action.what, 0)


class Cleaner(RecoveryStep, AppendStep, MoveStep, ReceiptStep):
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
        jobs: int | None = 1,
    ) -> None:
        super().__init__(client, account, journal, dry_run=dry_run, log=log)
        self.transform = transform
        self.limits = limits
        self.stop = stop or (lambda: False)
        self.batch = max(1, batch)
        self.jobs = jobs  # worker processes for large folders; None: one per core
        self._inline = InlinePlanner(transform)
        self._pool: PoolPlanner | None = None

    # -- a folder ------------------------------------------------------------------------------

    def clean_folder(self, folder: str) -> FolderReport:
        try:
            report = self._clean_folder(folder)
        except BaseException:  # e.g. the connection lost: what was deferred is still true
            with contextlib.suppress(StoreError):
                self.journal.flush()
            raise
        self.journal.flush()  # the last batch's deferred rows (see guard.mail.imap.journal)
        return report

    def _clean_folder(self, folder: str) -> FolderReport:
        report = FolderReport(folder)
        if folder == self.backup or folder.startswith(self.backup + "/"):
            report.notes.append(f"{folder}: is the backup folder: not cleaned")
            return report
        info = self.select(folder, readonly=self.dry_run)
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        report.uidvalidity = uidvalidity
        perm = {bytes(f) for f in info.get(b"PERMANENTFLAGS", ())}
        ctx = FolderPass(
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
        self._pipeline(ctx, self._planner_for(len(new)), self._batches(ctx, new))
        if not ctx.keywords_ok and any(
            a.what in ("cleaned", "declined") and "receipt" in a.detail for a in report.actions
        ):
            report.notes.append(
                f"{folder}: the server keeps no custom keywords here: receipt requests were "
                "declined by removing their headers only ($MDNSent could not be set)"
            )
        self._drop_untagged()
        return report

    def _find_orphans(self, ctx: FolderPass, known: set[int]) -> None:
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

    def _batches(self, ctx: FolderPass, new: Sequence[int]) -> Iterator[_Round]:
        """The UIDs to clean in rounds (BATCH messages or BATCH_BYTES), with their FLAGS,
        INTERNALDATE and size. A message over the size limit is skipped; its action comes with
        the round after it, where it would have come when each round was written as it filled."""
        for start in range(0, len(new), META_BATCH):
            if self.stop():
                ctx.report.interrupted = True
                return
            uids = new[start : start + META_BATCH]
            # A folder's first round needs only its first `batch` UIDs' metadata: the rest is
            # fetched once that round is staged, so the workers start ~10 ms (parsing up to
            # 900 more FETCH items) sooner. The rounds are the same.
            head = len(uids) if start else min(len(uids), self.batch)
            meta = self.fetch(ctx.name, uids[:head], _META)
            batch: list[int] = []
            size = 0
            skipped: list[Action] = []
            for i, uid in enumerate(uids):
                if i == head:
                    meta.update(self.fetch(ctx.name, uids[head:], _META))
                item = meta.get(uid)
                if item is None:  # expunged meanwhile
                    continue
                msg_size = int(item.get(b"RFC822.SIZE") or 0)
                if msg_size > self.limits.max_message_bytes:
                    reason = (
                        f"message of {msg_size // (1024 * 1024)} MiB exceeds the limit of "
                        f"{self.limits.max_message_bytes // (1024 * 1024)} MiB"
                    )
                    skipped.append(Action(ctx.name, uid, "skipped", reason))
                    continue
                batch.append(uid)
                size += msg_size
                if len(batch) >= self.batch or size >= BATCH_BYTES:
                    yield _Round(batch, meta, skipped)
                    batch, size, skipped = [], 0, []
            if batch or skipped:
                yield _Round(batch, meta, skipped)

    def _pipeline(
        self,
        ctx: FolderPass,
        planner: Planner,
        rounds: Iterator[_Round],
    ) -> None:
        """Fetch round k+1 and hand it to the planner before taking round k's outcomes and
        writing them: workers clean the next round while this process talks to the server.
        Only fetched (BODY.PEEK) when a stop ends the run: nothing of it is written."""
        pending: _Staged | None = None
        first = True
        for one in rounds:
            # The first round in pieces: workers start on its first messages while the rest
            # arrives. Later ones in one FETCH: the workers have the round before to clean.
            piece = FIRST_PIECE if pending is None and planner is self._pool else self.batch
            staged = self._stage(ctx, planner, one, max(1, piece))
            if pending is not None:
                self._apply(ctx, planner, pending, split=first)
                first = False
                if self.stop():
                    ctx.report.interrupted = True
                    planner.drop(staged.keys)
                    return
            pending = staged
        if pending is not None:
            self._apply(ctx, planner, pending, split=True)

    def _planner_for(self, count: int) -> Planner:
        """Workers on every core for a large folder (and, once started, for the rest of the
        run); this process for small ones, as the scan does below PARALLEL_THRESHOLD."""
        if self._pool is None and self.jobs != 1 and count >= PARALLEL_THRESHOLD:
            import multiprocessing

            from guard.mail.scan import default_jobs  # here: a run with nothing new needs none

            jobs = default_jobs() if self.jobs is None else max(1, self.jobs)
            if jobs == 1 or "fork" not in multiprocessing.get_all_start_methods():
                return self._inline
            from guard.mail.imap.pool import PoolPlanner
            from guard.mail.supervise import item_seconds

            seconds = item_seconds(self.limits.max_seconds)
            self._pool = PoolPlanner(self.transform, jobs, seconds)
            self._pool.start()  # they warm up while the first round is fetched
        return self._pool or self._inline

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _stage(self, ctx: FolderPass, planner: Planner, one: _Round, piece: int) -> _Staged:
        """Fetch a round's messages (`piece` at a time) and hand each piece's messages to plan to
        the planner as it arrives."""
        staged = _Staged(skipped=one.skipped)
        for start in range(0, len(one.uids), piece):
            uids = one.uids[start : start + piece]
            bodies = self.fetch(ctx.name, uids, [FETCH_BODY])
            msgs: list[Msg] = []
            for uid in uids:
                data = bodies.get(uid)
                if data is None:
                    continue
                raw = data.get(BODY_KEY)
                if not isinstance(raw, bytes):
                    continue
                m = one.meta[uid]
                msg = Msg(
                    uid=uid,
                    raw=raw,
                    flags=tuple(bytes(f) for f in m.get(b"FLAGS", ())),
                    date=m.get(b"INTERNALDATE"),
                    size=int(m.get(b"RFC822.SIZE") or len(raw)),
                    message_id=message_id(raw),
                )
                if msg.message_id and msg.message_id in ctx.orphans:
                    staged.adopts.append((msg, ctx.orphans.pop(msg.message_id)))
                elif msg.message_id and msg.message_id in ctx.restored_ids:
                    staged.seen.append((uid, "restored"))
                else:
                    msgs.append(msg)
            staged.msgs += msgs
            staged.keys += planner.submit([m.raw for m in msgs])
        return staged

    def _apply(self, ctx: FolderPass, planner: Planner, staged: _Staged, split: bool) -> None:
        """A round's outcomes. `split` (a folder's first round and its last): when the workers
        are still cleaning it, the messages they have finished (MIN_PIECE at least) are written
        as a batch while they clean the rest, instead of this process waiting for the whole
        round (the first: the server idle) and the workers then waiting for the server (the
        last: nothing else left to clean). Between them the workers always have the next round
        to clean while the server works, and more batches would only cost more commands and
        journal commits. Each piece is a batch like any other (journal, APPEND, verify, MOVE), in
        UID order; the round's actions are listed in the order one batch would list them."""
        rep = ctx.report
        first = len(rep.actions)
        msgs, keys = staged.msgs, staged.keys
        done = pieces = 0
        while True:
            rest = keys[done:]
            count = max(planner.ready(rest), min(MIN_PIECE, len(rest))) if split else len(rest)
            end = done + count
            last = end >= len(keys)
            piece = _Staged(
                skipped=staged.skipped if done == 0 else [],
                msgs=msgs[done:end],
                keys=rest[:count],
                adopts=staged.adopts if last else [],  # after the round's appends, as always
                seen=staged.seen if done == 0 else [],
            )
            self._apply_batch(ctx, piece, planner.take(piece.keys))
            done, pieces = end, pieces + 1
            if last:
                break
        if pieces > 1:
            rep.actions[first:] = sorted(rep.actions[first:], key=_listed_with)

    def _apply_batch(
        self, ctx: FolderPass, staged: _Staged, outcomes: Sequence[CleanOutcome]
    ) -> None:
        """A batch's outcomes: report (--dry-run), or decline, remember, append, move, adopt."""
        appends: list[tuple[Msg, CleanOutcome]] = []
        declines: list[Msg] = []
        adopts = staged.adopts
        seen = staged.seen
        rep = ctx.report
        rep.actions += staged.skipped
        seen += [(a.uid, "skipped") for a in staged.skipped]
        for msg, result in zip(staged.msgs, outcomes, strict=True):
            uid, raw = msg.uid, msg.raw
            if result.skipped:
                rep.actions.append(Action(ctx.name, uid, "skipped", result.skipped))
                seen.append((uid, "skipped"))
                if isinstance(result, Planned) and result.crashed:
                    rep.notes.append(f"{ctx.name} UID {uid}: {result.skipped}: left as it was")
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
                    Action(ctx.name, msg.uid, "cleaned", removed_text(result), None,
                           subject_of(msg.raw))
                )  # fmt: skip
            for msg, copy_uid in adopts:
                rep.actions.append(
                    Action(ctx.name, msg.uid, "adopted", f"cleaned copy UID {copy_uid} exists")
                )
            return
        acc = self.account.name
        if declines:
            self._decline(ctx, declines)
            seen += [(m.uid, "declined") for m in declines]
        if seen:  # written with the batch's intent (or the next commit): a crash may lose them
            self.journal.defer_seen(acc, ctx.name, ctx.uidvalidity, seen)
        if appends:
            self._append_and_move(ctx, appends)
        if adopts:
            self._adopt(ctx, adopts)
        self._drop_untagged()
