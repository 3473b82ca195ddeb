"""What the IMAP commands share: which account and folders a command names, where its lines go
(stdout, stderr, --log), signals that stop it after the work in flight, and failures as exit codes.

Used by guard/cli/scan.py, explain.py, clean.py, watch.py and restore.py. Light to import: the
IMAP client, the store and the cleaning code are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from guard.cli.common import CliError
from guard.cli.common import target_paths as target_paths  # its place before guard.cli.common
from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:
    import argparse

IMAP_SCHEMES = ("imap://", "imaps://")


def is_imap_target(value: str) -> bool:
    return value.lower().startswith(IMAP_SCHEMES)


def fail(message: str, code: int, err: IO[str]) -> int:
    err.write(f"guard: {message}\n")
    return int(code)


def resolve_target(ns: argparse.Namespace, err: IO[str]) -> tuple[Any, list[str]]:
    """The account and folders `guard scan` / `guard explain` name: --account, or an imap:// URL."""
    from guard.mail.config import ConfigError, account_for_url, load_config, parse_imap_url

    paths = target_paths(ns)
    urls = [p for p in paths if is_imap_target(p)]
    if len(urls) != len(paths):
        raise CliError(
            "scan either IMAP (--account / imap://) or local paths, not both", ExitCode.USAGE
        )
    if len(urls) > 1:
        raise CliError(
            "give one imap:// URL at a time (use --folder for several folders)", ExitCode.USAGE
        )
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
        raise CliError(str(exc), ExitCode.CONFIG) from None
    folders = list(getattr(ns, "folder", None) or account.folders)
    return account, folders


def resolve_account(ns: argparse.Namespace, err: IO[str]) -> tuple[Any, list[str]]:
    """The account (--account, else the config's default) and folders of clean, watch, restore."""
    from guard.mail.config import ConfigError, load_config

    try:
        config = load_config(getattr(ns, "config", None))
        for warning in config.warnings:
            err.write(f"guard: {warning}\n")
        account = config.account(getattr(ns, "account", None))
    except ConfigError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from None
    folders = list(getattr(ns, "folder", None) or account.folders)
    return account, folders


class Output:
    """Where lines go: actions to stdout with -v, problems to stderr, everything to --log."""

    def __init__(self, ns: argparse.Namespace, out: IO[str], err: IO[str], account: str) -> None:
        self.out, self.err = out, err
        self.verbose = bool(getattr(ns, "verbose", False))
        self.account = account
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        path = getattr(ns, "log", None)
        if path:
            try:
                self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            except OSError as exc:
                raise CliError(
                    f"cannot open log file {path}: {exc.strerror}", ExitCode.USAGE
                ) from None

    def _file_line(self, text: str) -> None:
        if self._file is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self._file.write(f"{stamp} {self.account}: {text}\n")

    def action(self, text: str) -> None:
        with self._lock:
            self._file_line(text)
            if self.verbose:
                self.out.write(text + "\n")
                self.out.flush()

    def plan(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")

    def info(self, text: str) -> None:
        """Worth a line on a terminal, silent under cron."""
        with self._lock:
            self._file_line(text)
            if self.verbose or self.out.isatty():
                self.out.write(text + "\n")

    def problem(self, text: str) -> None:
        with self._lock:
            self._file_line(text)
            self.err.write(f"guard: {text}\n")
            self.err.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class LazyTransform:
    """clean_message with the rules loaded on first use (a cron run with no new mail needs none),
    or ahead of it in a thread (`prefetch`)."""

    def __init__(self, ns: argparse.Namespace, account: Any = None) -> None:
        self.ns = ns
        self.account = account
        self._fn: Callable[[bytes], Any] | None = None
        self._loading: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._cancelled = threading.Event()

    def prefetch(self, *modules: str, then: Callable[[], None] | None = None) -> None:
        """Import `modules`, then load, in a thread while the caller waits on the server
        (connect, TLS, LOGIN, SELECT, SEARCH: ~70 ms that were idle before the ~50 ms of imports,
        rules and policy the first new message needs). `load` (the first message, or the worker
        pool before it forks) joins the thread first, so no worker is forked while it imports,
        and raises what it raised; a run that needs no cleaning leaves that unraised, as a run
        that never loaded would, and calls `cancel` when done. `then` runs in the thread when it
        is done, whatever happened."""
        if self._fn is not None or self._loading is not None:
            return
        switch = sys.getswitchinterval()

        def run() -> None:
            try:
                for name in modules:
                    if self._cancelled.is_set():
                        return
                    with contextlib.suppress(ImportError):  # whoever needs it meets the error
                        importlib.import_module(name)
                self._load(self._cancelled.is_set)
            except BaseException as exc:  # noqa: BLE001 - raised again by load(), if needed
                self._failed = exc
            finally:
                sys.setswitchinterval(switch)
                if then is not None:
                    then()

        # Not a daemon (an interpreter exiting under a thread that holds an import's lock can
        # hang): a run that needed nothing cancels it, and its exit waits for one step at most.
        self._loading = threading.Thread(target=run, name="guard-load")
        # While it runs, the caller's thread gets the interpreter back within 1 ms (not 5) of
        # each server reply it waits for.
        sys.setswitchinterval(min(switch, 0.001))
        try:
            self._loading.start()
        except BaseException:
            sys.setswitchinterval(switch)
            raise

    def cancel(self) -> None:
        """The run is over: a prefetch still loading stops after the step it is on (an import,
        the rules, the suffix list, the policy); nothing is waited for here."""
        self._cancelled.set()

    def load(self) -> None:
        if self._loading is not None:
            self._loading.join()
            self._loading = None
            failed, self._failed = self._failed, None
            if isinstance(failed, CliError):
                raise failed
            # Anything else the thread met (an import another thread was making at the same
            # moment, say) is met again here, in this thread, as it would have been without it.
        if self._fn is None:
            self._load()

    def _load(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Sets `_fn`, unless `cancelled()` says to stop first (between steps)."""
        if cancelled():
            return
        from guard.clean.message import clean_message
        from guard.cli.clean import policy_for
        from guard.engine.domains import warm_up
        from guard.engine.rules_load import RuleError, load_ruleset
        from guard.mail.config import ConfigError

        if cancelled():
            return
        try:
            rules = load_ruleset(examples=False)  # cleaning never reads them
        except RuleError as exc:
            raise CliError(f"rules: {exc}", ExitCode.RULES) from None
        if cancelled():
            return
        warm_up()
        try:
            policy = policy_for(self.ns, self.account)
        except ConfigError as exc:
            raise CliError(str(exc), ExitCode.CONFIG) from None
        self._fn = lambda raw: clean_message(raw, rules, policy)

    def __call__(self, raw: bytes) -> Any:
        if self._fn is None:
            self.load()
        assert self._fn is not None
        return self._fn(raw)


def transform(ns: argparse.Namespace, account: Any = None) -> LazyTransform:
    """The planner with the config's [clean] policy for `account`, --policy overriding it."""
    return LazyTransform(ns, account)


def install_stop(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set `stop` (the work in flight finishes); returns a function undoing it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def undo() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return undo


def errors_to_code(fn: Callable[[], int], err: IO[str]) -> int:
    from guard.mail.imap.connection import ImapError
    from guard.mail.lock import LockError
    from guard.mail.secrets import SecretError
    from guard.mail.store import StoreError

    try:
        return fn()
    except CliError as exc:
        err.write(f"guard: {exc}\n")
        return int(exc.code)
    except ImapError as exc:
        err.write(f"guard: {exc}\n")
        return int(exc.exit_code)
    except SecretError as exc:
        err.write(f"guard: {exc}\n")
        return int(ExitCode.AUTH)
    except (StoreError, LockError) as exc:
        err.write(f"guard: {exc}\n")
        return int(ExitCode.STATE)


def report_folder(report: Any, output: Output, dry_run: bool) -> None:
    for action in report.actions:
        if dry_run:
            if action.what != "unchanged" or output.verbose:
                output.plan(action.line(dry_run=True))
        elif action.what != "unchanged" or output.verbose:
            output.action(action.line())
    for note in report.notes:
        output.problem(note)
    for failure in report.failures:
        output.problem(failure)
