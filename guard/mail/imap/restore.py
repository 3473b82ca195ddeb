"""Restoring: the originals back from the backup folder, their cleaned copies removed.

Per folder (same UIDVALIDITY as when cleaned): the originals are located in the backup folder
(by the recorded UID, else by Message-ID and size), journaled `restoring`, given the cleaned
copy's current flags (read, flagged, answered...) plus `$GuardRestored` where the server keeps
keywords, moved back (guard.mail.imap.move.Mover: MOVE, else COPY + \\Deleted + UID EXPUNGE of
exactly those UIDs) and journaled `restored`; then the cleaned copies are removed (exactly those
UIDs). A rerun finishes a `restoring` entry whose original had already moved back before a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from guard.mail.imap.common import KW_CLEANED, KW_RESTORED, Action, crash_point, uid_set
from guard.mail.imap.journal import Entry, Journal
from guard.mail.imap.move import Mover


@dataclass
class RestoreReport:
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Restorer(Mover):
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
