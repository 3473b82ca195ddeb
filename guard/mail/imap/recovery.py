"""The cleaner's first step in a folder: finish or roll back what an earlier run left half-done.

Per journal entry of the folder (same UIDVALIDITY): `intent` - the cleaned copy is looked for
above the recorded UIDNEXT (by Message-ID and keyword; the digest confirms, or else keyword and
Message-ID suffice): found, it goes on as `appended`; not found, the APPEND never happened and
the original is cleaned again. `appended` - copy and original present: the original is moved
now; the copy gone: the original stays. `copying`/`copied` (servers without MOVE) - the
original's copy is looked for in the backup folder, then the original is expunged (exactly its
UID). See guard.mail.imap.journal.
"""

from __future__ import annotations

from guard.mail.imap.append import AppendStep
from guard.mail.imap.common import Action, FolderPass, uid_set
from guard.mail.imap.journal import Entry


class RecoveryStep(AppendStep):
    """Cleaning's recovery of half-done work (see the module docstring)."""

    def _recover(self, ctx: FolderPass) -> None:
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

    def _find_in_backup(self, ctx: FolderPass, e: Entry) -> int | None:
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
