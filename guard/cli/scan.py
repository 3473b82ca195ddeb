"""`guard scan`: local files (an .eml file, a directory, a Maildir, an mbox) or an IMAP account
(`--account NAME`, `imap://user@host/FOLDER`, or no PATH while a config exists).

Changes nothing, on disk or on the server. The IMAP modules are imported only for an IMAP scan:
a scan of local files loads no imapclient. Every IMAP failure is one line on stderr and a
documented exit code (guard.mail.exitcodes).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any

from guard.cli.common import CliError, load_rules, local_refs, quick_args, start_done
from guard.cli.imap import fail, is_imap_target, resolve_target, target_paths
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:
    import argparse

    from guard.cli.output import Presented
    from guard.engine.model import MessageResult


# `guard scan PATH…` as it is usually typed, read without argparse (guard.cli.launch,
# guard.cli.common.quick_args): these flags and PATHs; anything else goes to argparse.
_QUICK_FLAGS = {"-v": "verbose", "--verbose": "verbose", "--summary": "summary"}
_QUICK_DEFAULTS: dict[str, Any] = {
    "command": "scan",
    "paths": [],
    "format": "text",
    "verbose": False,
    "summary": False,
    "jobs": None,
    "max_message_size": DEFAULT_LIMITS.max_message_bytes,
    "max_part_size": DEFAULT_LIMITS.max_text_part_bytes,
    "time_limit": DEFAULT_LIMITS.max_seconds,
    "account": None,
    "folder": None,
    "config": None,
    "no_cache": False,
    "connections": None,
}


def quick_scan_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """`guard scan ARGV`'s options as argparse reads them, or None (guard.cli.common.quick_args)."""
    return quick_args(argv, _QUICK_FLAGS, _QUICK_DEFAULTS)


class Progress:
    """A one-line progress counter on stderr, only on a terminal, redrawn at most 10 times/s."""

    def __init__(self, total: int, stream: IO[str], enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled and total >= 50
        self.done = 0
        self._last = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} messages")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_scan(ns: argparse.Namespace) -> int:
    if wants_imap(ns):
        return run_imap_scan(ns)
    if not ns.paths:
        raise CliError(
            "scan: give a PATH (an .eml file, a directory, a Maildir or an mbox), "
            "or --account NAME / imap://user@host/FOLDER",
            ExitCode.USAGE,
        )
    from guard.cli.output import present, write_presented
    from guard.mail.scan import scan_refs_as

    rules = load_rules()
    refs = local_refs(ns.paths)
    limits = Limits(
        max_message_bytes=ns.max_message_size,
        max_text_part_bytes=ns.max_part_size,
        max_seconds=ns.time_limit,
    )
    # Each message's output is made where it is scanned (in the workers, on a large input):
    # this process only writes text and counts tallies.
    presenter = functools.partial(present, fmt=ns.format, verbose=ns.verbose, summary=ns.summary)
    stream = scan_refs_as(presenter, refs, rules, limits, ns.jobs)
    out = sys.stdout
    if ns.format != "text":
        write_presented(stream, ns.format, out)
        return ExitCode.OK
    progress = Progress(len(refs), sys.stderr, sys.stderr.isatty() and out.isatty())

    def stepped() -> Iterator[Presented]:
        for message in stream:
            progress.step()
            yield message

    write_presented(stepped(), "text", out, before_text=progress.clear)
    return ExitCode.OK


# ---- IMAP ---------------------------------------------------------------------------------------


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


def _limits(ns: argparse.Namespace) -> Any:
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
    start_done()  # the rules load later, if at all: the GC back on for the connection's work
    from guard.cli.output import text_tables
    from guard.mail.imap.connection import ImapError
    from guard.mail.imap.scan import FolderStats, scan_account
    from guard.mail.secrets import SecretError
    from guard.mail.store import Store, StoreError

    out = out or sys.stdout
    err = err or sys.stderr
    started = time.monotonic()
    try:
        account, folders = resolve_target(ns, err)
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
    except CliError as exc:
        return fail(str(exc), exc.code, err)
    except ImapError as exc:
        return fail(str(exc), exc.exit_code, err)
    except SecretError as exc:
        return fail(str(exc), ExitCode.AUTH, err)
    except StoreError as exc:
        return fail(str(exc), ExitCode.STATE, err)
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
