"""`guard report`: who tracks you, from stored IMAP scan results; contacts no server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO

from guard.cli.imap import fail
from guard.mail.exitcodes import ExitCode


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
        return fail(
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
        return fail(str(exc), ExitCode.STATE, err)
    write_presented((present(r, fmt) for r in results), fmt, out)
    return int(ExitCode.OK)
