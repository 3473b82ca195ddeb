"""The IMAP side of cleaning on the command line: `guard clean --account`, `guard watch`,
`guard restore` (see docs/clean-imap.md).

guard/cli/main.py wires these in:
- `clean`: `add_clean_arguments(clean_parser)`; dispatch to `run_clean_imap(ns)` when
  `wants_clean_imap(ns)` (an --account, or no PATH while a config exists), else to the local
  `guard clean PATH`;
- `watch`: `add_watch_arguments(parser)` / `run_watch(ns)`;
- `restore`: `add_restore_arguments(parser)` / `run_restore(ns)`.
`python -m guard.cli.clean_imap clean|watch|restore ...` runs them without guard/cli/main.py.

Quiet unless something needs attention: problems go to stderr (one line each) with a documented
exit code; `-v` lists every action; `--log FILE` appends every action with a timestamp; a summary
line appears when stdout is a terminal.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import IO, Any

from guard.cli.args import add_clean_arguments, add_restore_arguments, add_watch_arguments
from guard.cli.imap import target_paths
from guard.mail.exitcodes import ExitCode

LOCK_WAIT_WATCH = 3600.0  # `guard watch` waits this long for a running `guard clean` to finish


class _Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- arguments ------------------------------------------------------------------------------------


def wants_clean_imap(ns: argparse.Namespace) -> bool:
    """`guard clean` cleans IMAP with --account, or with no PATH while a config file exists."""
    if getattr(ns, "account", None):
        return True
    if target_paths(ns):
        return False
    from guard.mail.config import config_path

    return config_path(getattr(ns, "config", None)).is_file()


# -- shared plumbing ------------------------------------------------------------------------------


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
                raise _Failure(
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


def _resolve(ns: argparse.Namespace, err: IO[str]) -> tuple[Any, list[str]]:
    from guard.mail.config import ConfigError, load_config

    try:
        config = load_config(getattr(ns, "config", None))
        for warning in config.warnings:
            err.write(f"guard: {warning}\n")
        account = config.account(getattr(ns, "account", None))
    except ConfigError as exc:
        raise _Failure(str(exc), ExitCode.CONFIG) from None
    folders = list(getattr(ns, "folder", None) or account.folders)
    return account, folders


class LazyTransform:
    """clean_message with the rules loaded on first use (a cron run with no new mail loads none)."""

    def __init__(self, ns: argparse.Namespace, account: Any = None) -> None:
        self.ns = ns
        self.account = account
        self._fn: Callable[[bytes], Any] | None = None

    def load(self) -> None:
        if self._fn is not None:
            return
        from guard.clean.message import clean_message
        from guard.cli.clean import policy_for
        from guard.engine.domains import warm_up
        from guard.engine.rules_load import RuleError, load_ruleset
        from guard.mail.config import ConfigError

        try:
            rules = load_ruleset()
        except RuleError as exc:
            raise _Failure(f"rules: {exc}", ExitCode.RULES) from None
        warm_up()
        try:
            policy = policy_for(self.ns, self.account)
        except ConfigError as exc:
            raise _Failure(str(exc), ExitCode.CONFIG) from None
        self._fn = lambda raw: clean_message(raw, rules, policy)

    def __call__(self, raw: bytes) -> Any:
        self.load()
        assert self._fn is not None
        return self._fn(raw)


def _transform(ns: argparse.Namespace, account: Any = None) -> LazyTransform:
    """The planner with the config's [clean] policy for `account`, --policy overriding it."""
    return LazyTransform(ns, account)


def _install_stop(stop: threading.Event) -> Callable[[], None]:
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


def _errors_to_code(fn: Callable[[], int], err: IO[str]) -> int:
    from guard.mail.imap.connection import ImapError
    from guard.mail.lock import LockError
    from guard.mail.secrets import SecretError
    from guard.mail.store import StoreError

    try:
        return fn()
    except _Failure as exc:
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


def _report_folder(report: Any, output: Output, dry_run: bool) -> None:
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


def _summary(reports: Sequence[Any], seconds: float, dry_run: bool) -> str:
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


# -- guard clean --account ------------------------------------------------------------------------


def run_clean_imap(
    ns: argparse.Namespace,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    *,
    transform: Any = None,
) -> int:
    """`guard clean --account NAME [--folder F] [--dry-run] [--policy P]`; an exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    return _errors_to_code(lambda: _clean(ns, out, err, transform), err)


def _clean(ns: argparse.Namespace, out: IO[str], err: IO[str], transform: Any) -> int:
    from guard.mail.imap.actions import Cleaner
    from guard.mail.imap.connection import close, connect
    from guard.mail.imap.journal import Journal
    from guard.mail.lock import AccountLock, LockHeld
    from guard.mail.secrets import get_credentials
    from guard.mail.store import Store

    started = time.monotonic()
    account, folders = _resolve(ns, err)
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
    undo = _install_stop(stop)
    client = None
    reports: list[Any] = []
    try:
        credentials = get_credentials(account)
        with Store() as store:
            journal = Journal(store)
            client = connect(account, credentials)
            cleaner = Cleaner(
                client,
                account,
                journal,
                transform or _transform(ns, account),
                dry_run=dry_run,
                stop=stop.is_set,
                log=output.action,
            )
            for folder in folders:
                if stop.is_set():
                    break
                report = cleaner.clean_folder(folder)
                reports.append(report)
                _report_folder(report, output, dry_run)
    finally:
        if client is not None:
            close(client)
        undo()
        lock.release()
    summary = _summary(reports, time.monotonic() - started, dry_run)
    if dry_run:
        output.plan(summary)
    else:
        output.info(summary)
    failures = [f for r in reports for f in r.failures]
    output.close()
    if stop.is_set():
        err.write("guard: stopped by a signal after the message(s) in flight\n")
    return int(ExitCode.PARTIAL if failures else ExitCode.OK)


# -- guard watch ----------------------------------------------------------------------------------


def run_watch(
    ns: argparse.Namespace,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    *,
    transform: Any = None,
    stop: threading.Event | None = None,
) -> int:
    """`guard watch --account NAME [--folder F]`: clean new mail as it arrives, until a signal."""
    out = out or sys.stdout
    err = err or sys.stderr
    return _errors_to_code(lambda: _watch(ns, out, err, transform, stop), err)


def _watch(
    ns: argparse.Namespace,
    out: IO[str],
    err: IO[str],
    transform: Any,
    stop: threading.Event | None,
) -> int:
    from guard.mail.imap.watch import Watcher
    from guard.mail.lock import AccountLock, LockHeld
    from guard.mail.secrets import get_credentials

    account, folders = _resolve(ns, err)
    output = Output(ns, out, err, account.name)
    stop = stop or threading.Event()
    undo = _install_stop(stop)
    lock = AccountLock(account.name, "watch")
    try:
        try:
            lock.acquire()
        except LockHeld as exc:
            if exc.holder == "watch":
                raise _Failure(f"{exc}: not starting a second watch", ExitCode.LOCKED) from None
            output.problem(f"{exc}: waiting for it to finish")
            deadline = time.monotonic() + LOCK_WAIT_WATCH
            while True:
                if stop.wait(1.0):
                    return int(ExitCode.OK)
                try:
                    lock.acquire()
                    break
                except LockHeld:
                    if time.monotonic() > deadline:
                        raise _Failure(f"{exc}: gave up waiting", ExitCode.LOCKED) from None
        credentials = get_credentials(account)
        fn = transform or _transform(ns, account)
        if isinstance(fn, LazyTransform):
            fn.load()  # before the first message arrives: latency matters here
        output.action(f"watching {', '.join(folders)} of account {account.name}")

        def on_report(report: Any) -> None:
            _report_folder(report, output, False)

        watcher = Watcher(
            account,
            credentials,
            folders,
            fn,
            stop,
            on_report=on_report,
            on_problem=output.problem,
            log=output.action,
        )
        code = watcher.run()
        output.action(
            f"watch ended: {watcher.stats.cleaned} cleaned in {watcher.stats.passes} pass(es), "
            f"{watcher.stats.reconnects} reconnect(s)"
        )
        return code
    finally:
        undo()
        lock.release()
        output.close()


# -- guard restore --------------------------------------------------------------------------------


def run_restore(
    ns: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None
) -> int:
    """`guard restore --account NAME [--folder F] (--uid N | --all) [--dry-run]`."""
    out = out or sys.stdout
    err = err or sys.stderr
    return _errors_to_code(lambda: _restore(ns, out, err), err)


def _restore(ns: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from guard.mail.imap.actions import Restorer
    from guard.mail.imap.connection import close, connect
    from guard.mail.imap.journal import Journal
    from guard.mail.lock import AccountLock, LockHeld
    from guard.mail.secrets import get_credentials
    from guard.mail.store import Store

    uids: list[int] | None = getattr(ns, "uid", None)
    if not uids and not getattr(ns, "all", False):
        raise _Failure("restore: give --uid N (a cleaned copy's UID) or --all", ExitCode.USAGE)
    account, folders = _resolve(ns, err)
    explicit_folders: list[str] | None = getattr(ns, "folder", None)
    if uids and (not explicit_folders or len(explicit_folders) != 1):
        if explicit_folders:
            raise _Failure("restore: --uid needs exactly one --folder", ExitCode.USAGE)
        explicit_folders = folders[:1]
    dry_run = bool(getattr(ns, "dry_run", False))
    output = Output(ns, out, err, account.name)
    lock = AccountLock(account.name, "restore")
    if not dry_run:
        try:
            lock.acquire()
        except LockHeld as exc:
            output.close()
            raise _Failure(
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


# -- stand-alone entry point ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guard", description="IMAP cleaning, watch and restore")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_clean_arguments(sub.add_parser("clean", help="clean an IMAP account's folders"))
    add_watch_arguments(sub.add_parser("watch", help="clean new mail as it arrives (IDLE)"))
    add_restore_arguments(sub.add_parser("restore", help="put originals back"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    runner = {"clean": run_clean_imap, "watch": run_watch, "restore": run_restore}[ns.command]
    try:
        return runner(ns)
    except KeyboardInterrupt:
        sys.stderr.write("guard: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
