"""`guard watch --account NAME [--folder F]`: clean new IMAP mail as it arrives (IMAP IDLE), until
a signal (see docs/clean-imap.md). Waits for a running `guard clean` of the account to finish.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import IO, Any

from guard.cli.common import CliError
from guard.cli.imap import (
    LazyTransform,
    Output,
    errors_to_code,
    install_stop,
    report_folder,
    resolve_account,
)
from guard.cli.imap import transform as account_transform
from guard.mail.exitcodes import ExitCode

LOCK_WAIT_WATCH = 3600.0  # `guard watch` waits this long for a running `guard clean` to finish


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
    return errors_to_code(lambda: _watch(ns, out, err, transform, stop), err)


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

    account, folders = resolve_account(ns, err)
    output = Output(ns, out, err, account.name)
    stop = stop or threading.Event()
    undo = install_stop(stop)
    lock = AccountLock(account.name, "watch")
    try:
        try:
            lock.acquire()
        except LockHeld as exc:
            if exc.holder == "watch":
                raise CliError(f"{exc}: not starting a second watch", ExitCode.LOCKED) from None
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
                        raise CliError(f"{exc}: gave up waiting", ExitCode.LOCKED) from None
        credentials = get_credentials(account)
        fn = transform or account_transform(ns, account)
        if isinstance(fn, LazyTransform):
            fn.load()  # before the first message arrives: latency matters here
        output.action(f"watching {', '.join(folders)} of account {account.name}")

        def on_report(report: Any) -> None:
            report_folder(report, output, False)

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
