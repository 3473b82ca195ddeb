"""`guard restore --account NAME [--folder F] (--uid N | --all) [--dry-run]`: put cleaned
messages' originals back (see docs/clean-imap.md)."""

from __future__ import annotations

import argparse
import sys
from typing import IO

from guard.cli.common import CliError
from guard.cli.imap import Output, errors_to_code, resolve_account
from guard.mail.exitcodes import ExitCode


def run_restore(
    ns: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None
) -> int:
    """`guard restore --account NAME [--folder F] (--uid N | --all) [--dry-run]`."""
    out = out or sys.stdout
    err = err or sys.stderr
    return errors_to_code(lambda: _restore(ns, out, err), err)


def _restore(ns: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from guard.mail.imap.connection import close, connect
    from guard.mail.imap.journal import Journal
    from guard.mail.imap.restore import Restorer
    from guard.mail.lock import AccountLock, LockHeld
    from guard.mail.secrets import get_credentials
    from guard.mail.store import Store

    uids: list[int] | None = getattr(ns, "uid", None)
    if not uids and not getattr(ns, "all", False):
        raise CliError("restore: give --uid N (a cleaned copy's UID) or --all", ExitCode.USAGE)
    account, folders = resolve_account(ns, err)
    explicit_folders: list[str] | None = getattr(ns, "folder", None)
    if uids and (not explicit_folders or len(explicit_folders) != 1):
        if explicit_folders:
            raise CliError("restore: --uid needs exactly one --folder", ExitCode.USAGE)
        explicit_folders = folders[:1]
    dry_run = bool(getattr(ns, "dry_run", False))
    output = Output(ns, out, err, account.name)
    lock = AccountLock(account.name, "restore")
    if not dry_run:
        try:
            lock.acquire()
        except LockHeld as exc:
            output.close()
            raise CliError(
                f"{exc}: stop it first (restore must not race it)", ExitCode.LOCKED
            ) from None
    client = None
    try:
        credentials = get_credentials(account)
        with Store() as store:
            journal = Journal(store)
            client = connect(account, credentials)
            restorer = Restorer(client, account, journal, dry_run=dry_run, log=output.action)
            reports = []
            targets: list[str | None] = [*explicit_folders] if explicit_folders else [None]
            for folder in targets:
                reports.append(restorer.restore(folder, uids))
    finally:
        if client is not None:
            close(client)
        lock.release()
    restored = 0
    failures: list[str] = []
    for rep in reports:
        for action in rep.actions:
            restored += 1
            (output.plan if dry_run else output.action)(action.line(dry_run=dry_run))
        for note in rep.notes:
            output.problem(note)
        failures += rep.failures
    for failure in failures:
        output.problem(failure)
    if dry_run:
        output.plan(f"dry run (nothing changed): would restore {restored} message(s)")
    else:
        output.plan(f"restored {restored} message(s)")
    output.close()
    return int(ExitCode.PARTIAL if failures else ExitCode.OK)
