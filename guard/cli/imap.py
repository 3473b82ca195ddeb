"""The IMAP side of the command line: `guard scan --account NAME | imap://…` and `guard report`.

guard/cli/main.py wires these in: `add_scan_arguments(scan_parser)`,
`add_report_arguments(report_parser)`, and dispatches to `run_imap_scan(ns)` when
`wants_imap(ns)`, and to `run_report(ns)`.
Every failure is one line on stderr and a documented exit code (guard.mail.exitcodes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from typing import IO, Any

from guard.engine.model import MessageResult
from guard.mail.exitcodes import ExitCode

IMAP_SCHEMES = ("imap://", "imaps://")


def is_imap_target(value: str) -> bool:
    return value.lower().startswith(IMAP_SCHEMES)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= number <= 16:
        raise argparse.ArgumentTypeError("must be 1-16")
    return number


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="accounts config (default: $GUARD_CONFIG, else ~/.config/guard/config.toml)",
    )


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """IMAP options of `guard scan`; a positional `imap://user@host[:port]/FOLDER` also works."""
    group = parser.add_argument_group("IMAP (read-only; see docs/imap.md)")
    group.add_argument(
        "--account", metavar="NAME", default=None, help="scan this account from the config"
    )
    group.add_argument(
        "--folder",
        metavar="FOLDER",
        action="append",
        default=None,
        help="folder to scan (repeatable; default: the account's folders)",
    )
    add_config_argument(group)  # type: ignore[arg-type]
    group.add_argument(
        "--no-cache", action="store_true", help="rescan every message, ignoring stored results"
    )
    group.add_argument(
        "--connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="parallel IMAP connections for new messages (default: the account's, else 2)",
    )


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `guard report` (stored history only: never contacts a server)."""
    parser.add_argument("--account", metavar="NAME", default=None, help="only this account")
    parser.add_argument("--folder", metavar="FOLDER", action="append", default=None)
    parser.add_argument("--format", choices=("text", "json", "csv"), default="text")


def target_paths(ns: argparse.Namespace) -> list[str]:
    """The command's positional targets, whatever the subcommand named them."""
    for name in ("paths", "path", "targets", "target"):
        value = getattr(ns, name, None)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(v) for v in value]
    return []


def wants_imap(ns: argparse.Namespace) -> bool:
    """True when `guard scan` should scan IMAP: --account, an imap:// target, or no target at all
    while a config file exists."""
    paths = target_paths(ns)
    if getattr(ns, "account", None) or any(is_imap_target(p) for p in paths):
        return True
    if not paths:
        from guard.mail.config import config_path

        return config_path(getattr(ns, "config", None)).is_file()
    return False


class _Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _fail(message: str, code: int, err: IO[str]) -> int:
    err.write(f"guard: {message}\n")
    return int(code)


def _resolve(ns: argparse.Namespace, err: IO[str]) -> tuple[Any, list[str]]:
    from guard.mail.config import ConfigError, account_for_url, load_config, parse_imap_url

    paths = target_paths(ns)
    urls = [p for p in paths if is_imap_target(p)]
    if len(urls) != len(paths):
        raise _Failure("scan either IMAP (--account / imap://) or local paths, not both", 2)
    if len(urls) > 1:
        raise _Failure("give one imap:// URL at a time (use --folder for several folders)", 2)
    try:
        config = load_config(getattr(ns, "config", None))
        for warning in config.warnings:
            err.write(f"guard: {warning}\n")
        if urls:
            url = parse_imap_url(urls[0])
            account = account_for_url(config, url)
            if ns.account and ns.account != account.name:
                raise ConfigError(
                    f"{urls[0]} belongs to account {account.name!r}, not {ns.account!r}"
                )
        else:
            account = config.account(getattr(ns, "account", None))
    except ConfigError as exc:
        raise _Failure(str(exc), ExitCode.CONFIG) from None
    folders = list(getattr(ns, "folder", None) or account.folders)
    return account, folders


def _limits(ns: argparse.Namespace) -> Any:
    from guard.engine.limits import DEFAULT_LIMITS, Limits

    return Limits(
        max_message_bytes=getattr(ns, "max_message_size", None) or DEFAULT_LIMITS.max_message_bytes,
        max_text_part_bytes=getattr(ns, "max_part_size", None)
        or DEFAULT_LIMITS.max_text_part_bytes,
        max_seconds=getattr(ns, "time_limit", None) or DEFAULT_LIMITS.max_seconds,
    )


def run_imap_scan(
    ns: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None
) -> int:
    """`guard scan` against IMAP. Returns an exit code; never raises for server/config trouble."""
    from guard.cli.output import text_tables
    from guard.mail.imap.connection import ImapError
    from guard.mail.imap.scan import FolderStats, scan_account
    from guard.mail.secrets import SecretError
    from guard.mail.store import Store, StoreError

    out = out or sys.stdout
    err = err or sys.stderr
    started = time.monotonic()
    try:
        account, folders = _resolve(ns, err)
        store = None if getattr(ns, "no_store", False) else Store()
        stats: list[FolderStats] = []
        # Text output from a store: lines for the messages scanned now, tables counted by the
        # store over everything, so a rescan of an unchanged mailbox decodes nothing.
        tables_from_store = store is not None and getattr(ns, "format", "text") == "text"
        try:
            results = scan_account(
                account,
                folders,
                store=store,
                use_cache=not getattr(ns, "no_cache", False),
                connections=getattr(ns, "connections", None),
                limits=_limits(ns),
                stats=stats,
                slim=getattr(ns, "format", "text") == "text" and not getattr(ns, "verbose", False),
                yield_cached=not tables_from_store,
            )
            if tables_from_store:
                assert store is not None
                _emit_new_lines(results, ns, out)
                out.write(text_tables(*store.sender_tables(account.name, folders)) + "\n")
            else:
                _emit(results, ns, out, err)
        finally:
            if store is not None:
                store.close()
    except _Failure as exc:
        return _fail(str(exc), exc.code, err)
    except ImapError as exc:
        return _fail(str(exc), exc.exit_code, err)
    except SecretError as exc:
        return _fail(str(exc), ExitCode.AUTH, err)
    except StoreError as exc:
        return _fail(str(exc), ExitCode.STATE, err)
    if getattr(ns, "format", "text") == "text" and err.isatty():
        total = sum(s.total for s in stats)
        fetched = sum(s.scanned for s in stats)
        err.write(
            f"guard: {total} messages in {len(stats)} folder(s), {fetched} fetched, "
            f"{total - fetched} from the state ({time.monotonic() - started:.1f} s)\n"
        )
    return int(ExitCode.OK)


def _emit_new_lines(results: Iterable[MessageResult], ns: argparse.Namespace, out: IO[str]) -> None:
    from guard.cli.output import text_message

    summary = getattr(ns, "summary", False)
    verbose = getattr(ns, "verbose", False)
    for result in results:
        if not summary:
            out.write(text_message(result, verbose) + "\n")


def _emit(
    results: Iterable[MessageResult], ns: argparse.Namespace, out: IO[str], err: IO[str]
) -> None:
    from guard.cli.output import present, write_presented

    fmt = getattr(ns, "format", "text")
    summary = getattr(ns, "summary", False)
    verbose = getattr(ns, "verbose", False)
    write_presented((present(r, fmt, verbose, summary) for r in results), fmt, out)


def run_report(
    ns: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None
) -> int:
    """`guard report`: the senders table from stored scan results; contacts no server."""
    from guard.cli.output import present, text_tables, write_presented
    from guard.mail.store import Store, StoreError, default_path

    out = out or sys.stdout
    err = err or sys.stderr
    path = default_path()
    if not path.exists():
        return _fail(
            f"no scan history yet ({path}): run `guard scan --account NAME` first",
            ExitCode.NO_INPUT,
            err,
        )
    fmt = getattr(ns, "format", "text")
    account = getattr(ns, "account", None)
    try:
        with Store(path) as store:
            if fmt == "text":
                by_sender, by_domain, totals = store.sender_tables(account, ns.folder)
                if not totals[0]:
                    err.write("guard: no stored results match\n")
                out.write(text_tables(by_sender, by_domain, totals) + "\n")
                return int(ExitCode.OK)
            folders: Sequence[str | None] = getattr(ns, "folder", None) or [None]
            results = [r for folder in folders for _uid, r in store.results(account, folder)]
    except StoreError as exc:
        return _fail(str(exc), ExitCode.STATE, err)
    write_presented((present(r, fmt) for r in results), fmt, out)
    return int(ExitCode.OK)


def fetch_message(ns: argparse.Namespace, uid: int, err: IO[str] | None = None) -> bytes:
    """One message's bytes, read-only (EXAMINE + BODY.PEEK[]), for `guard explain --uid`.

    Raises _Failure with a one-line message and an exit code on any trouble."""
    from guard.mail.imap import fetch
    from guard.mail.imap.connection import ImapError, close, connect
    from guard.mail.secrets import SecretError, get_credentials

    err = err or sys.stderr
    account, folders = _resolve(ns, err)
    try:
        client = connect(account, get_credentials(account))
        try:
            return fetch.fetch_message(client, account, folders[0], uid)
        finally:
            close(client)
    except ImapError as exc:
        raise _Failure(str(exc), exc.exit_code) from None
    except SecretError as exc:
        raise _Failure(str(exc), ExitCode.AUTH) from None


def stored_results(account: str | None) -> Iterable[MessageResult]:
    """Every stored scan result (of one account), for commands that work from history."""
    from guard.mail.store import Store, StoreError, default_path

    path = default_path()
    if not path.exists():
        raise _Failure(f"no scan history yet ({path}): run `guard scan --account NAME` first", 3)
    try:
        with Store(path) as store:
            yield from (r for _uid, r in store.results(account))
    except StoreError as exc:
        raise _Failure(str(exc), ExitCode.STATE) from None
