"""The options of every command but `guard ui` (guard/cli/ui.py holds its own).

Kept apart from the commands (guard/cli/scan.py, clean.py, …) so that building the command line,
which every guard command does, imports none of them: a `guard scan` pays only for argparse.
`clean` gets both sets of options (PATH and IMAP); the ones they share are added once.
"""

from __future__ import annotations

import argparse
from typing import Any

from guard.cli.common import MAILDIR_BACKUP as MAILDIR_BACKUP
from guard.cli.common import MBOX_BACKUP_SUFFIX as MBOX_BACKUP_SUFFIX
from guard.engine.limits import DEFAULT_LIMITS

POLICIES = ("default", "strict")  # guard.clean.message.POLICIES, without importing it for `--help`
MIB = 1024 * 1024


class Formatter(argparse.HelpFormatter):
    """argparse's help formatter, asking the terminal's width when it first lays text out (help,
    usage, an error) rather than when it is made: argparse makes one for every option it adds,
    and the width imports shutil (with bz2, lzma…: ~6 M instructions of a start) for a command
    line that parses without a word printed. The width and the help position are argparse's
    own (its HelpFormatter.__init__)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position, (1 << 30) if width is None else width
        )
        if width is None:  # argparse's, asked when first read (__getattr__)
            self._wanted = max_help_position
            del self._width, self._max_help_position

    def __getattr__(self, name: str) -> Any:
        if name not in ("_width", "_max_help_position") or "_wanted" not in self.__dict__:
            raise AttributeError(name)
        import shutil  # here: see the class's docstring

        width = shutil.get_terminal_size().columns - 2
        self._width = width
        self._max_help_position = min(self._wanted, max(width - 20, self._indent_increment * 2))
        return getattr(self, name)


# -- guard scan -----------------------------------------------------------------------------------


def _positive_mib(value: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return int(number * MIB)


def add_scan_path_arguments(scan: argparse.ArgumentParser) -> None:
    """Options of `guard scan` on local files (and its output options, IMAP too)."""
    scan.add_argument(
        "paths", nargs="*", metavar="PATH", help=".eml file, directory, Maildir or mbox"
    )
    scan.add_argument("--format", choices=("text", "json", "csv"), default="text")
    scan.add_argument("-v", "--verbose", action="store_true", help="list every finding")
    scan.add_argument("--summary", action="store_true", help="only the senders tables (text)")
    scan.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    scan.add_argument(
        "--max-message-size",
        type=_positive_mib,
        default=DEFAULT_LIMITS.max_message_bytes,
        metavar="MIB",
        help="skip larger messages with an error "
        f"(default {DEFAULT_LIMITS.max_message_bytes // MIB})",
    )
    scan.add_argument(
        "--max-part-size",
        type=_positive_mib,
        default=DEFAULT_LIMITS.max_text_part_bytes,
        metavar="MIB",
        help="largest HTML/text part scanned "
        f"(default {DEFAULT_LIMITS.max_text_part_bytes // MIB})",
    )

    scan.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_LIMITS.max_seconds,
        metavar="SECONDS",
        help=f"give up on one message after this long (default {DEFAULT_LIMITS.max_seconds:g})",
    )


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


# -- guard report, explain, rules -----------------------------------------------------------------


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `guard report` (stored history only: never contacts a server)."""
    parser.add_argument("--account", metavar="NAME", default=None, help="only this account")
    parser.add_argument("--folder", metavar="FOLDER", action="append", default=None)
    parser.add_argument("--format", choices=("text", "json", "csv"), default="text")


def add_explain_arguments(explain: argparse.ArgumentParser) -> None:
    explain.add_argument("paths", nargs="*", metavar="PATH", help="message file, Maildir, mbox…")
    explain.add_argument("--account", metavar="NAME", help="explain a message on this account")
    explain.add_argument("--folder", metavar="FOLDER", action="append", help="default: INBOX")
    explain.add_argument("--uid", type=int, metavar="N", help="the message's IMAP UID")
    explain.add_argument("--config", metavar="FILE", help="accounts config")


def add_rules_arguments(rules: argparse.ArgumentParser) -> None:
    """`guard rules ACTION`: list, test, suggest."""
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    listing = rules_sub.add_parser("list", help="list every rule")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    rules_sub.add_parser("test", help="run every rule's match / no-match examples")
    suggest = rules_sub.add_parser(
        "suggest", help="hosts that behave like trackers in your mail but no rule names"
    )
    suggest.add_argument("paths", nargs="*", metavar="PATH", help="scan these (default: history)")
    suggest.add_argument("--account", metavar="NAME", help="only this account's stored results")
    suggest.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")


# -- guard strip / guard clean PATH -------------------------------------------------------------


def _add_once(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """Add an option unless the IMAP side of `guard clean` added the same one already."""
    if not any(flag in parser._option_string_actions for flag in flags):
        parser.add_argument(*flags, **kwargs)


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    _add_once(
        parser,
        "--policy",
        choices=POLICIES,
        default=None,  # None: not given, so a config's policy (IMAP side) can apply
        help="default: trackers only; strict: also every other remote load (default: default)",
    )
    _add_once(
        parser,
        "--unwrap-security",
        action="store_true",
        help="also unwrap security link wrappers (Safe Links, Proofpoint, …): bypasses them",
    )


def add_strip_arguments(parser: argparse.ArgumentParser) -> None:
    _add_policy_arguments(parser)
    parser.add_argument(
        "--policy-dir",
        metavar="DIR",
        help="per-recipient settings: DIR/<recipient>.toml (data only; see docs/delivery.md)",
    )
    parser.add_argument(
        "--recipient", metavar="ADDRESS", help="whose settings --policy-dir looks up"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="pass the message through unchanged after this long (default 20; keep it below "
        "an MDA's own time-out for the filter)",
    )


def add_clean_path_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="a Maildir or an mbox file to clean in place"
    )
    _add_once(parser, "--dry-run", action="store_true", help="print the plan, change nothing")
    _add_policy_arguments(parser)
    _add_once(
        parser,
        "--backup",
        metavar="PATH",
        help=f"where originals go: a Maildir (default: PATH/{MAILDIR_BACKUP}) or, for an mbox, "
        f"a file (default: PATH{MBOX_BACKUP_SUFFIX})",
    )
    _add_once(parser, "-q", "--quiet", action="store_true", help="print only problems")
    _add_once(parser, "-v", "--verbose", action="store_true", help="rules and links kept")
    _add_once(parser, "--jobs", type=int, default=None, help="worker processes (default: cores)")


# -- guard clean --account / watch / restore (IMAP) -----------------------------------------------


def _has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return option in parser._option_string_actions


def _common(parser: argparse.ArgumentParser, group: Any, *, policy: bool, dry_run: bool) -> None:
    if not _has_option(parser, "--account"):
        group.add_argument(
            "--account", metavar="NAME", default=None, help="account from the config"
        )
    if not _has_option(parser, "--folder"):
        group.add_argument(
            "--folder",
            metavar="FOLDER",
            action="append",
            default=None,
            help="folder (repeatable; default: the account's folders)",
        )
    if not _has_option(parser, "--config"):
        group.add_argument(
            "--config",
            metavar="FILE",
            default=None,
            help="accounts config (default: $GUARD_CONFIG, else ~/.config/guard/config.toml)",
        )
    if dry_run and not _has_option(parser, "--dry-run"):
        group.add_argument(
            "--dry-run", action="store_true", help="print the plan, change nothing on the server"
        )
    if policy and not _has_option(parser, "--policy"):
        group.add_argument(
            "--policy",
            choices=POLICIES,
            default=None,
            help="default: trackers only; strict: every remote resource too",
        )
    if not _has_option(parser, "--verbose"):
        group.add_argument("-v", "--verbose", action="store_true", help="list every action")
    if not _has_option(parser, "--log"):
        group.add_argument(
            "--log", metavar="FILE", default=None, help="append every action to FILE (timestamped)"
        )


def add_clean_arguments(parser: argparse.ArgumentParser) -> None:
    """IMAP options of `guard clean` (options the local `guard clean PATH` already added, such as
    --dry-run / --policy / -v, are shared, not added twice)."""
    group = parser.add_argument_group("IMAP (guard clean --account NAME; see docs/clean-imap.md)")
    _common(parser, group, policy=True, dry_run=True)


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, parser, policy=True, dry_run=False)


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, parser, policy=False, dry_run=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--uid",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="restore the message whose cleaned copy has UID N in --folder (repeatable)",
    )
    which.add_argument("--all", action="store_true", help="restore every cleaned message")
