"""ImapActions: the base of cleaning and restoring - one connection, one account, the journal,
the server's capabilities - and the wrappers every step goes through (IMAP errors become guard's
errors; SELECT, SEARCH, FETCH; untagged responses read and dropped).

The steps build on it: guard.mail.imap.move (Mover, MoveStep), .append, .receipts, .recovery;
guard.mail.imap.cleaner and guard.mail.imap.restore put them together.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.imapclient import join_message_ids, seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

from guard.mail.config import Account
from guard.mail.imap.common import Caps
from guard.mail.imap.connection import FolderError, _one_line, _server_text, errors, list_folders
from guard.mail.imap.fetchparse import parse_fetch
from guard.mail.imap.journal import Journal

T = TypeVar("T")


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
        with errors(self.account, f"fetching from {folder!r}"):
            return self._fetch(uids, items)

    def _fetch(self, uids: Sequence[int], items: Sequence[bytes]) -> dict[int, Any]:
        """IMAPClient.fetch, its response parsed by guard.mail.imap.fetchparse where that can
        (~3x faster for these item lists), else by imapclient's parser; only `uids` returned."""
        client: Any = self.client
        imap = client._imap
        args = ["FETCH", join_message_ids(list(uids)), seq_to_parenstr_upper(list(items))]
        if client.use_uid:
            args.insert(0, "UID")
        tag = imap._command(*args)
        typ, data = imap._command_complete("FETCH", tag)
        client._checkok("fetch", typ, data)
        typ, data = imap._untagged_response(typ, data, "FETCH")
        parsed = parse_fetch(data, client.normalise_times, client.use_uid)
        if parsed is None:
            parsed = parse_fetch_response(data, client.normalise_times, client.use_uid)
        return {uid: parsed[uid] for uid in uids if uid in parsed}  # unsolicited ones dropped
