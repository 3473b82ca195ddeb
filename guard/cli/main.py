"""Command line: the `guard` parser and the dispatch to one module per command.

Each command lives in its own module (guard/cli/scan.py, report.py, explain.py, rules.py,
clean.py, watch.py, restore.py, ui.py; `guard strip` in strip.py), imported only when that
command runs: the options come from light modules (guard/cli/args.py, guard/cli/ui.py), so
`guard scan` on local files loads neither Textual nor imapclient, and a warm
`guard scan --account` nothing it does not run. What the commands share: guard/cli/common.py
(errors, rules, local messages), guard/cli/imap.py (accounts, output lines, signals) and
guard/cli/output.py (the output formats).

Environment: with `GUARD_DEBUG` set (to anything), an internal error of a command raises with its
traceback instead of the one-line `guard: internal error: …` (exit 1); for debugging only, as a
traceback can show a message's content.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from guard import __version__
from guard.cli.args import (
    Formatter,
    add_clean_arguments,
    add_clean_path_arguments,
    add_explain_arguments,
    add_report_arguments,
    add_restore_arguments,
    add_rules_arguments,
    add_scan_arguments,
    add_scan_path_arguments,
    add_strip_arguments,
    add_watch_arguments,
)
from guard.cli.common import run_command
from guard.cli.ui import add_ui_arguments
from guard.mail.exitcodes import ExitCode


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, every subcommand (the docs' command reference is built from it).

    `only`: the command about to run, the one subcommand made: `guard COMMAND …` never reads
    another command's parser (its options, nor the list of commands, which only `guard --help`
    and a wrong COMMAND show: the usage names COMMAND), and each costs a parser (~1 M
    instructions)."""
    parser = argparse.ArgumentParser(
        prog="guard",
        description="Find and remove e-mail tracking: pixels, wrapped links, tracking "
        "parameters and read-receipt requests.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"guard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, *adders: Callable[[argparse.ArgumentParser], None]) -> None:
        if only is None or only == name:
            made = sub.add_parser(name, help=help, formatter_class=Formatter)
            for add in adders:
                add(made)

    command(
        "scan",
        "scan mail and report who tracks you (changes nothing)",
        add_scan_path_arguments,
        add_scan_arguments,
    )
    command(
        "report",
        "who tracks you, from stored IMAP scan results (no server contact)",
        add_report_arguments,
    )
    command("strip", "clean one message, stdin to stdout (an MDA filter)", add_strip_arguments)
    command(
        "clean",
        "clean tracking from a Maildir or mbox PATH, or an IMAP --account",
        add_clean_path_arguments,
        add_clean_arguments,
    )
    command("watch", "clean new IMAP mail as it arrives (IMAP IDLE)", add_watch_arguments)
    command("restore", "put cleaned messages' originals back (IMAP)", add_restore_arguments)
    command("ui", "the terminal app: who tracks you, the evidence, cleaning", add_ui_arguments)
    command(
        "explain",
        "every finding of a message with the rule and evidence behind it",
        add_explain_arguments,
    )
    command("rules", "list, test or suggest tracker rules", add_rules_arguments)
    return parser


# Each command's module is imported when the command runs, not before.


def cmd_scan(ns: argparse.Namespace) -> int:
    from guard.cli.scan import run_scan

    return run_scan(ns)


def cmd_strip(ns: argparse.Namespace) -> int:
    from guard.cli.clean import run_strip

    return run_strip(ns)


def cmd_clean(ns: argparse.Namespace) -> int:
    from guard.cli.clean import run_clean

    return run_clean(ns)


def cmd_watch(ns: argparse.Namespace) -> int:
    from guard.cli.watch import run_watch

    return run_watch(ns)


def cmd_restore(ns: argparse.Namespace) -> int:
    from guard.cli.restore import run_restore

    return run_restore(ns)


def cmd_ui(ns: argparse.Namespace) -> int:
    from guard.cli.ui import run_ui  # Textual is imported only here

    return run_ui(ns)


def cmd_report(ns: argparse.Namespace) -> int:
    from guard.cli.report import run_report

    return run_report(ns)


def cmd_explain(ns: argparse.Namespace) -> int:
    from guard.cli.explain import run_explain

    return run_explain(ns)


def cmd_rules(ns: argparse.Namespace) -> int:
    from guard.cli.rules import run_rules

    return run_rules(ns)


COMMANDS = {
    "scan": cmd_scan,
    "strip": cmd_strip,
    "clean": cmd_clean,
    "watch": cmd_watch,
    "restore": cmd_restore,
    "ui": cmd_ui,
    "report": cmd_report,
    "explain": cmd_explain,
    "rules": cmd_rules,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)  # as argparse reads argv=None
    # `guard COMMAND …`: only that command's options are made (a fifth of a start's argparse
    # work); anything else (`guard`, `guard --help`, a mistyped command) gets the whole parser.
    parser = build_parser(only=args[0] if args and args[0] in COMMANDS else None)
    ns = parser.parse_args(args)
    if ns.command is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            # Bare `guard` on a terminal: the app, on the default account (or the first-run
            # screen when there is no config).
            ns = parser.parse_args(["ui"])
            return cmd_ui(ns)
        parser.print_help()
        return ExitCode.USAGE
    return run_command(COMMANDS[ns.command], ns)
