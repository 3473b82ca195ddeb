"""The cleaner's append step: APPEND the cleaned copies and verify them.

Journal `intent` (digest of the cleaned copy, the folder's UIDNEXT) -> APPEND the cleaned copies
(MULTIAPPEND when several; one by one when a MULTIAPPEND is refused) with the original's flags,
keywords and INTERNALDATE plus `$GuardCleaned` -> verify (UIDPLUS APPENDUID, else a search by
Message-ID and X-Guard above the recorded UIDNEXT, confirmed by the digest) -> journal `appended`
(new UID; deferred, see guard.mail.imap.journal) -> the move step (guard.mail.imap.move). A
refused APPEND (quota, full disk) leaves the original untouched and is reported; a quota refusal
stops further APPENDs to the folder.
"""

from __future__ import annotations

import imaplib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imapclient.datetime_util import datetime_to_INTERNALDATE
from imapclient.imapclient import _literal

from guard.mail.imap.common import (
    BODY_KEY,
    DELETED,
    FETCH_BODY,
    KW_CLEANED,
    KW_MDNSENT,
    Action,
    CleanOutcome,
    FolderPass,
    Msg,
    crash_point,
    digest,
    expand_uid_set,
    removed_text,
    subject_of,
)
from guard.mail.imap.connection import _one_line, _server_text, errors
from guard.mail.imap.journal import Entry
from guard.mail.imap.move import MoveStep
from guard.mail.imap.planner import digest_of


class AppendRefused(Exception):
    """The server answered NO to an APPEND (quota, full disk, size limit...)."""


class AppendStep(MoveStep):
    """Cleaning's step: the cleaned copies onto the server, verified (see the module docstring)."""

    def _flags_for(self, ctx: FolderPass, msg: Msg, result: CleanOutcome) -> list[bytes]:
        flags = [f for f in msg.flags if f.lower() not in (b"\\recent", DELETED.lower())]
        if ctx.keywords_ok:
            flags.append(KW_CLEANED)
            if result.receipt_requested and KW_MDNSENT not in flags:
                flags.append(KW_MDNSENT)
        return flags

    def _append_and_move(self, ctx: FolderPass, items: list[tuple[Msg, CleanOutcome]]) -> None:
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
                digest=digest_of(result),
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
        self, ctx: FolderPass, group: list[tuple[Entry, tuple[Msg, CleanOutcome]]]
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
                Action(ctx.name, e.uid, "cleaned", removed_text(result), uid, subject_of(msg.raw))
            )
        if ready:
            # Deferred: the move's `done` or the next commit writes it. After a crash before that
            # commit, recovery finds the copy from the `intent` row (the digest above the
            # recorded UIDNEXT) as it would from this one (guard.mail.imap.journal).
            self.journal.defer(ready, seen=[(e, int(e.new_uid or 0), "copy") for e in ready])
        return ready

    def _append_cmd(
        self, ctx: FolderPass, items: Sequence[tuple[list[bytes], datetime | None, bytes]]
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

    def _find_copy(self, ctx: FolderPass, e: Entry, claimed: set[int], strict: bool) -> int | None:
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
