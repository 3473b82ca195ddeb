"""Moving messages between folders on the server, and the cleaner's move step.

Mover (shared with restoring): the backup folder (created if missing); `transfer` - UID MOVE,
else COPY (the caller then flags \\Deleted and UID EXPUNGEs exactly those UIDs, `delete_exactly`),
without UIDPLUS COPY + \\Deleted and no expunge; the COPYUID answer read into a UID map. Never a
plain EXPUNGE.

MoveStep (cleaning): the originals whose cleaned copies are in place go to the backup folder,
journaled `copying` -> `copied` -> `done` on a server without MOVE; a refused move rolls the
cleaned copies back; originals whose cleaned copy exists without a journal entry are adopted.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.mail.imap.common import DELETED, Action, FolderPass, Msg, crash_point, expand_uid_set
from guard.mail.imap.connection import FolderError
from guard.mail.imap.journal import Entry
from guard.mail.imap.steps import ImapActions


class Mover(ImapActions):
    """The backup folder, and moving messages between folders with the fallbacks."""

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


class MoveStep(Mover):
    """Cleaning's step: the originals -> the backup folder (see the module docstring)."""

    def _move(self, ctx: FolderPass, entries: list[Entry]) -> None:
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
            # Deferred to the next batch's intent (or the folder's end): after a crash before it,
            # recovery sees the copy in place and the original gone, and records `done` itself.
            self.journal.defer(entries)
            return
        for e in entries:
            e.state = "copied"
        self.journal.write(entries)
        self._expunge_originals(ctx, entries)

    def _expunge_originals(self, ctx: FolderPass, entries: list[Entry]) -> None:
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
        self.journal.defer(entries)  # as after a MOVE: recovery finds `copied` and the end

    def _rollback(self, ctx: FolderPass, entries: list[Entry], refused: str) -> None:
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

    def _adopt(self, ctx: FolderPass, adopts: list[tuple[Msg, int]]) -> None:
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
