"""`guard clean`: a Maildir or an mbox PATH in place (guard/cli/clean_path.py), or an IMAP account
(`--account NAME`, or no PATH while a config exists; see docs/clean-imap.md).

`clean --account` is quiet unless something needs attention: problems go to stderr (one line
each) with a documented exit code; `-v` lists every action; `--log FILE` appends every action
with a timestamp; a summary line appears when stdout is a terminal.

`policy_for` (the cleaning policy from the config and the command line) serves `guard clean`,
`guard watch` and `guard strip` (which lives in guard/cli/strip.py and imports this module only
when a config exists): this module is light to import, everything else is imported inside the
functions that use it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any

from guard.cli.strip import run_strip as run_strip  # `guard strip` lives in guard.cli.strip
from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:  # importing guard.clean.message costs ~0.1 s: only commands that clean pay for it
    import argparse

    from guard.clean.message import Policy


# `guard clean PATH…` as it is usually typed, read without argparse (guard.cli.launch,
# guard.cli.common.quick_args): these flags and PATHs; anything else goes to argparse.
_QUICK_FLAGS = {
    "--dry-run": "dry_run",
    "-q": "quiet",
    "--quiet": "quiet",
    "-v": "verbose",
    "--verbose": "verbose",
}
_QUICK_DEFAULTS: dict[str, Any] = {
    "command": "clean",
    "paths": [],
    "dry_run": False,
    "policy": None,
    "unwrap_security": False,
    "backup": None,
    "quiet": False,
    "verbose": False,
    "jobs": None,
    "account": None,
    "folder": None,
    "config": None,
    "log": None,
}


def quick_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """`guard clean ARGV`'s options as argparse reads them, or None (common.quick_args)."""
    from guard.cli.common import quick_args as read

    return read(argv, _QUICK_FLAGS, _QUICK_DEFAULTS)


def policy_for(ns: argparse.Namespace, account: Any = None) -> Policy:
    """The cleaning policy: the config's [clean] settings (top level, then the account's), the
    allowlist file guard maintains, then --policy / --unwrap-security on the command line.

    Raises ConfigError for a broken config or allowlist file."""
    from guard.clean.message import Policy
    from guard.mail.config import ConfigError, cleaning_settings, config_path, load_config

    path = config_path(getattr(ns, "config", None))
    config = load_config(getattr(ns, "config", None)) if path.is_file() else None
    table = cleaning_settings(config, account)
    # getattr: `guard clean` shares its parser with the IMAP options, added in either order.
    if getattr(ns, "policy", None):
        table["policy"] = ns.policy
    if getattr(ns, "unwrap_security", False):
        table["unwrap_security"] = True
    try:
        return Policy.from_config(table)
    except ValueError as exc:
        raise ConfigError(f"{path}: [clean]: {exc}") from None


def run_clean(ns: argparse.Namespace) -> int:
    """`guard clean`: an IMAP account (--account, or no PATH while a config exists), else PATHs."""
    from guard.cli.common import CliError

    if getattr(ns, "account", None) and getattr(ns, "paths", None):
        raise CliError("clean: give a PATH or --account NAME, not both", ExitCode.USAGE)
    if wants_clean_imap(ns):
        return run_clean_imap(ns)
    from guard.cli.clean_path import run_clean_path

    return run_clean_path(ns)


# ---- guard clean --account --------------------------------------------------------------------


def wants_clean_imap(ns: argparse.Namespace) -> bool:
    """`guard clean` cleans IMAP with --account, or with no PATH while a config file exists."""
    if getattr(ns, "account", None):
        return True
    from guard.cli.common import target_paths  # not guard.cli.imap: a PATH needs none of it

    if target_paths(ns):
        return False
    from guard.mail.config import config_path

    return config_path(getattr(ns, "config", None)).is_file()


def run_clean_imap(
    ns: argparse.Namespace,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    *,
    transform: Any = None,
) -> int:
    """`guard clean --account NAME [--folder F] [--dry-run] [--policy P]`; an exit code."""
    from guard.cli.imap import errors_to_code

    out = out or sys.stdout
    err = err or sys.stderr
    return errors_to_code(lambda: _clean(ns, out, err, transform), err)


def _clean(ns: argparse.Namespace, out: IO[str], err: IO[str], transform: Any) -> int:
    import threading  # here: `guard strip` imports this module for policy_for, and needs none

    from guard.cli.common import start_done
    from guard.cli.imap import Output, install_stop, report_folder, resolve_account
    from guard.cli.imap import transform as account_transform
    from guard.mail.imap.tls import TlsContext

    started = time.monotonic()
    account, folders = resolve_account(ns, err)
    # The CA certificates load on another core (OpenSSL, without the interpreter lock) while this
    # process imports the IMAP client and the rest, takes its lock, reads its state and starts
    # loading the rules.
    tls = TlsContext(account) if account.tls != "none" else None
    from guard.mail.imap.cleaner import Cleaner
    from guard.mail.imap.connection import close, connect
    from guard.mail.imap.journal import Journal
    from guard.mail.lock import AccountLock, LockHeld
    from guard.mail.secrets import get_credentials
    from guard.mail.store import Store

    dry_run = bool(getattr(ns, "dry_run", False))
    output = Output(ns, out, err, account.name)
    lock = AccountLock(account.name, "clean")
    if not dry_run:
        try:
            lock.acquire()
        except LockHeld as exc:
            output.close()
            if exc.holder == "watch":
                err.write(f"guard: {exc}: it cleans new mail as it arrives; nothing to do\n")
                return int(ExitCode.OK)
            err.write(f"guard: {exc}: not starting a second run\n")
            return int(ExitCode.LOCKED)
    stop = threading.Event()
    undo = install_stop(stop)
    client = None
    cleaner = None
    reports: list[Any] = []
    try:
        if transform is None:
            transform = account_transform(ns, account)
            # The rules load while this thread waits on the server, with what a large folder's
            # worker pool imports (guard.mail.imap.cleaner._planner_for) and ctypes, which each
            # forked worker imports (guard.mail.supervise._die_with_parent): inherited, once.
            # The cyclic GC stays off until they are in (start_done): ~30 collections walked
            # the objects the load makes (~15 % of its instructions); the connection's few meanwhile
            # are long-lived too.
            modules = ("guard.mail.imap.pool", "guard.mail.scan", "ctypes")
            transform.prefetch(*modules, then=start_done)
        else:
            start_done()
        credentials = get_credentials(account)
        with Store() as store:
            journal = Journal(store)
            client = connect(account, credentials, tls)
            cleaner = Cleaner(
                client,
                account,
                journal,
                transform,
                dry_run=dry_run,
                stop=stop.is_set,
                log=output.action,
                jobs=getattr(ns, "jobs", None),  # as for a scan; default (None): cores
            )
            for folder in folders:
                if stop.is_set():
                    break
                report = cleaner.clean_folder(folder)
                reports.append(report)
                report_folder(report, output, dry_run)
    finally:
        cancel = getattr(transform, "cancel", None)
        if callable(cancel):
            cancel()  # a prefetch still loading (nothing new to clean) stops
        if cleaner is not None:
            cleaner.close()
        if client is not None:
            close(client)
        undo()
        lock.release()
    summary = _account_summary(reports, time.monotonic() - started, dry_run)
    if dry_run:
        output.plan(summary)
    else:
        output.info(summary)
    failures = [f for r in reports for f in r.failures]
    output.close()
    if stop.is_set():
        err.write("guard: stopped by a signal after the message(s) in flight\n")
    return int(ExitCode.PARTIAL if failures else ExitCode.OK)


def _account_summary(reports: Sequence[Any], seconds: float, dry_run: bool) -> str:
    parts: list[str] = []
    for what, label in (
        ("cleaned", "cleaned"),
        ("declined", "receipt(s) declined"),
        ("adopted", "finished"),
        ("recovered", "recovered"),
        ("skipped", "skipped"),
        ("failed", "failed"),
    ):
        n = sum(r.count(what) for r in reports)
        if n:
            parts.append(f"{n} {label}")
    looked = sum(r.looked_at for r in reports)
    head = "dry run (nothing changed): would have " if dry_run else ""
    text = ", ".join(parts) if parts else "nothing to clean"
    return f"{head}{text}; {looked} new message(s) in {len(reports)} folder(s) ({seconds:.1f} s)"


# ---- stand-alone entry: `python -m guard.cli.clean strip|clean` (tests/test_strip.py) -----------


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from guard.cli.args import add_clean_path_arguments, add_strip_arguments

    parser = argparse.ArgumentParser(prog="guard")
    sub = parser.add_subparsers(dest="command", required=True)
    add_strip_arguments(sub.add_parser("strip"))
    add_clean_path_arguments(sub.add_parser("clean"))
    ns = parser.parse_args(argv)
    if ns.command == "strip":
        return run_strip(ns)
    from guard.cli.clean_path import run_clean_path

    return run_clean_path(ns)


if __name__ == "__main__":
    sys.exit(main())
