"""What several commands share: the error that ends a command, the rules, local messages, the
positional targets.

Light to import (guard/cli/main.py catches CliError for every command): everything else is
imported inside the functions that need it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:
    import argparse

    from guard.engine.model import MessageResult
    from guard.engine.ruleset import RuleSet
    from guard.mail.files import MessageRef


MAILDIR_BACKUP = ".Guard.Originals"
"""The Maildir++ sub-folder of a cleaned Maildir that keeps the originals (shown as
`Guard.Originals` / `Guard/Originals` by IMAP servers serving the Maildir)."""
MBOX_BACKUP_SUFFIX = ".orig"


def target_paths(ns: argparse.Namespace) -> list[str]:
    """The command's positional targets, whatever the subcommand named them."""
    for name in ("paths", "path", "targets", "target"):
        value = getattr(ns, name, None)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(v) for v in value]
    return []


class CliError(Exception):
    """Ends the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def quick_args(
    argv: Sequence[str], flags: Mapping[str, str], defaults: Mapping[str, Any]
) -> SimpleNamespace | None:
    """A command's options as argparse reads them (`defaults`: every option's default), for a
    command line of the exact `flags` (option -> dest, each a store_true) and PATHs in one run
    before or after them; None for anything else (--help, any other option, an abbreviation, a
    PATH starting with "-", PATHs on both sides of a flag), which argparse then reads. Reading
    `guard clean PATH` / `guard scan PATH` so skips importing argparse and building the parser
    (~10 M instructions, 3 % of a start); tests/test_startup.py checks the two agree."""
    values = dict(defaults)
    paths: list[str] = []
    after_paths = False
    for arg in argv:
        flag = flags.get(arg)
        if flag is not None:
            values[flag] = True
            after_paths = bool(paths)
        elif arg.startswith("-") or not arg or after_paths:
            return None
        else:
            paths.append(arg)
    values["paths"] = paths
    return SimpleNamespace(**values)


def run_command(run: Callable[[Any], int], ns: Any) -> int:
    """A command's run on its options, its errors turned into guard's messages and exit codes
    (guard.cli.main's dispatch, and `guard clean`'s quick start in guard.cli.launch)."""
    try:
        return int(run(ns))
    except CliError as exc:
        sys.stderr.write(f"guard: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("guard: interrupted\n")
        return 130
    except BrokenPipeError:
        # `guard scan … | head`: the reader left; that is not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        if os.environ.get("GUARD_DEBUG"):
            raise
        sys.stderr.write(f"guard: internal error: {type(exc).__name__}: {exc} (please report)\n")
        return ExitCode.INTERNAL


def start_done() -> None:
    """The start's imports and rules are in: the cyclic GC back on. guard.cli.launch turns it off
    for the start of `guard scan` and `guard clean`, whose imports and rules make long-lived
    objects only: each collection during them walks them for nothing. They are then moved out
    of the collector's sight for the rest of the process (gc.freeze: the collections of the run
    and the one at exit do not walk them again, and forked workers do not touch their pages), as
    guard.mail.scan does before a scan's fork; a caller that left the GC on (a test, the app)
    keeps its own settings."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def load_rules(*, examples: bool = False) -> RuleSet:
    """The rules; their match / no_match examples only with `examples` (`guard rules test`
    reads them, a scan never does, and leaving them out is a third less to load)."""
    # imported here, not at the top: `guard ui` draws its first rows without the rules
    from guard.engine.rules_load import RuleError, load_ruleset

    try:
        return load_ruleset(examples=examples)
    except RuleError as exc:
        raise CliError(f"rules: {exc}", ExitCode.RULES) from None
    finally:
        start_done()


def local_refs(paths: Sequence[str]) -> list[MessageRef]:
    from guard.mail.files import SourceError, message_refs

    refs: list[MessageRef] = []
    for path in paths:
        try:
            refs.extend(message_refs(path))
        except SourceError as exc:
            raise CliError(str(exc), ExitCode.NO_INPUT) from None
    return refs


def scan_paths(paths: Sequence[str], rules: RuleSet) -> Iterator[MessageResult]:
    from guard.mail.scan import scan_refs

    return scan_refs(local_refs(paths), rules)
