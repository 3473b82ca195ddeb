"""The app's actions on a server, as plain functions over guard's cleaning API (no Textual).

Cleaning, declining a receipt and restoring are guard.clean.message / guard.mail.imap.cleaner's
and guard.mail.imap.restore's work: this module only chooses which messages they see, runs them
under the account lock as `guard clean` does, and turns their reports into lines for the
confirmation dialog and the notifications. Every function here blocks: the app calls them from
thread workers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.tui.data import ImapFolder


def unavailable() -> str | None:
    """Why the actions cannot run in this build, or None when they can."""
    try:
        import guard.clean.message
        import guard.mail.imap.cleaner
        import guard.mail.imap.journal
        import guard.mail.imap.restore  # noqa: F401
    except ImportError as exc:
        return f"cleaning is not part of this build ({exc.name} is missing)"
    return None


# -- the allowlist -----------------------------------------------------------------------------
# The app adds senders to the allowlist file guard maintains (guard.mail.allowlist); every cleaning
# entry point reads it together with the config's [clean] settings.


def allowlist_path() -> Path:
    from guard.mail.allowlist import allowlist_path as path

    return path()


def add_to_allowlist(sender: str) -> bool:
    """Add a sender; False when it was there already. Raises OSError or ConfigError (a broken
    allowlist file) when it cannot be saved."""
    from guard.mail.allowlist import add_to_allowlist as add
    from guard.mail.allowlist import load_allowlist

    senders, _domains = load_allowlist()
    if sender.strip().lower() in senders:
        return False
    add(sender=sender)
    return True


def policy(account: Any = None) -> Any:
    """The cleaning policy: the config's [clean] settings for the account, with the allowlist."""
    from guard.clean.message import Policy
    from guard.mail.config import cleaning_settings, config_path, load_config

    config = load_config(None) if config_path(None).is_file() else None
    return Policy.from_config(cleaning_settings(config, account))


# -- outcomes ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a run did (or, dry, would do): lines for people, counts for the summary."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self, dry_run: bool) -> str:
        parts = [f"{n} {what}" for what, n in sorted(self.counts.items()) if n]
        text = ", ".join(parts) if parts else "nothing to do"
        return f"would: {text}" if dry_run else text


def _absorb(out: Outcome, actions: Sequence[Any], dry_run: bool) -> None:
    for action in actions:
        if action.what == "unchanged":
            continue
        out.counts[action.what] = out.counts.get(action.what, 0) + 1
        out.lines.append(action.line(dry_run=dry_run))


# -- transforms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Declined:
    """A planner answer meaning "only the receipt request": the cleaner then sets $MDNSent and
    rewrites nothing (guard.mail.imap.receipts.receipt_only)."""

    data: bytes
    changed: bool
    removed: Mapping[str, int]
    receipt_requested: bool
    skipped: str | None


def _transform(mode: str, rules: Any = None, account: Any = None) -> Callable[[bytes], Any]:
    from guard.clean.message import clean_message
    from guard.tui.engine import load_rules

    rules = rules if rules is not None else load_rules()
    pol = policy(account)

    def clean(raw: bytes) -> Any:
        return clean_message(raw, rules, pol)

    if mode == "clean":
        return clean

    def decline(raw: bytes) -> Any:
        result = clean(raw)
        if not result.receipt_requested:
            return _Declined(raw, False, {}, False, "no read-receipt request")
        return _Declined(raw, True, {"receipt-header": 1}, True, None)

    return decline


def _only(cleaner_cls: Any, uids: set[int]) -> Any:
    """A Cleaner that looks only at `uids` among the folder's new messages.

    guard.mail.imap.cleaner.Cleaner cleans whole folders; narrowing the search for new messages is
    how one message or a selection is cleaned with everything else it does unchanged (journal,
    recovery, cleaned-copy detection)."""

    class Only(cleaner_cls):  # type: ignore[misc, valid-type]
        def search(self, folder: str, criteria: Sequence[Any]) -> list[int]:
            found: list[int] = super().search(folder, criteria)
            if criteria and criteria[0] == "KEYWORD":  # finding guard's own cleaned copies
                return found
            # every other search (the one for new messages among them) sees only the selection:
            # should the cleaner's searches change, this errs on doing less, never more
            return [u for u in found if u in uids]

    return Only


# -- running -------------------------------------------------------------------------------------


def _connected(
    source: ImapFolder, what: str, dry_run: bool, body: Callable[[Any, Any], None]
) -> None:
    """Credentials, the account lock (unless dry), the state database and one connection."""
    from guard.mail.imap.connection import close, connect
    from guard.mail.imap.journal import Journal
    from guard.mail.lock import AccountLock
    from guard.mail.secrets import get_credentials
    from guard.mail.store import Store

    account = source.account
    lock = AccountLock(account.name, what)
    if not dry_run:
        lock.acquire()  # LockHeld: `guard clean`/`watch` runs; the caller says so
    try:
        credentials = get_credentials(account)
        with Store() as store:
            journal = Journal(store)
            client = connect(account, credentials)
            try:
                body(client, journal)
            finally:
                close(client)
    finally:
        if not dry_run:
            lock.release()


def clean(
    source: ImapFolder,
    uids: set[int] | None,
    *,
    dry_run: bool,
    mode: str = "clean",
    stop: Callable[[], bool] | None = None,
    rules: Any = None,
) -> Outcome:
    """Clean (mode "clean") or decline receipts of (mode "decline") `uids` of the folder, or of
    every new message when `uids` is None. Originals go to the account's backup folder.
    `rules`: the compiled RuleSet when the caller has it (else compiled here)."""
    from guard.mail.imap.cleaner import Cleaner

    out = Outcome()
    transform = _transform(mode, rules, source.account)

    def body(client: Any, journal: Any) -> None:
        params = inspect.signature(Cleaner.clean_folder).parameters
        if uids is not None and "uids" in params:  # the cleaner learnt to take a selection
            cleaner = Cleaner(client, source.account, journal, transform, dry_run=dry_run,
                              stop=stop)  # fmt: skip
            report = cleaner.clean_folder(source.folder, uids=sorted(uids))  # type: ignore[call-arg]
        else:
            cls = Cleaner if uids is None else _only(Cleaner, uids)
            cleaner = cls(client, source.account, journal, transform, dry_run=dry_run, stop=stop)
            report = cleaner.clean_folder(source.folder)
        _absorb(out, report.actions, dry_run)
        out.problems += list(report.notes) + list(report.failures)

    _connected(source, "clean", dry_run, body)
    return out


def restore(source: ImapFolder, copy_uids: set[int], *, dry_run: bool) -> Outcome:
    """Put the originals of these cleaned copies back, and remove the copies."""
    from guard.mail.imap.restore import Restorer

    out = Outcome()

    def body(client: Any, journal: Any) -> None:
        restorer = Restorer(client, source.account, journal, dry_run=dry_run)
        report = restorer.restore(source.folder, sorted(copy_uids))
        _absorb(out, report.actions, dry_run)
        out.problems += list(report.notes) + list(report.failures)

    _connected(source, "restore", dry_run, body)
    return out


def describe_error(exc: BaseException) -> str:
    """One line for a notification, from whatever the cleaning stack raised."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
