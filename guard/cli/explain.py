"""`guard explain`: every finding of a message with the rule and evidence behind it, for local
files or one message on an IMAP account (`--account NAME --uid N`, read-only)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from guard.cli.common import CliError, load_rules, scan_paths
from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:
    from guard.engine.model import MessageResult


def run_explain(ns: argparse.Namespace) -> int:
    from guard.engine.explain import explain
    from guard.mail.scan import scan_raw

    rules = load_rules()
    if ns.uid is not None:
        if ns.paths:
            raise CliError(
                "explain: give PATHs or --uid N (with --account), not both", ExitCode.USAGE
            )
        raw = fetch_message(ns, ns.uid)
        results: Iterable[MessageResult] = [scan_raw(raw, f"UID {ns.uid}", str(ns.uid), rules)]
    elif ns.paths:
        results = scan_paths(ns.paths, rules)
    else:
        raise CliError("explain: give a PATH, or --account NAME --uid N", ExitCode.USAGE)
    for result in results:
        sys.stdout.write(explain(result, rules) + "\n\n")
    return ExitCode.OK


def fetch_message(ns: argparse.Namespace, uid: int, err: IO[str] | None = None) -> bytes:
    """One message's bytes, read-only (EXAMINE + BODY.PEEK[]), for `guard explain --uid`.

    Raises CliError with a one-line message and an exit code on any trouble."""
    from guard.cli.imap import resolve_target
    from guard.mail.imap import fetch
    from guard.mail.imap.connection import ImapError, close, connect
    from guard.mail.secrets import SecretError, get_credentials

    err = err or sys.stderr
    account, folders = resolve_target(ns, err)
    try:
        client = connect(account, get_credentials(account))
        try:
            return fetch.fetch_message(client, account, folders[0], uid)
        finally:
            close(client)
    except ImapError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    except SecretError as exc:
        raise CliError(str(exc), ExitCode.AUTH) from None
