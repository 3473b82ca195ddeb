"""Command line: argument parsing, commands, exit codes and output formats.

The terminal app, the IMAP modules and the cleaning commands are imported lazily, inside the
commands that use them, so `guard scan` on local files loads neither Textual nor imapclient, and
a warm `guard scan --account` nothing it does not run (the options come from light modules).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from guard import __version__
from guard.cli.args import (
    add_clean_arguments,
    add_clean_path_arguments,
    add_restore_arguments,
    add_strip_arguments,
    add_watch_arguments,
)
from guard.cli.imap import add_report_arguments, add_scan_arguments
from guard.cli.ui import add_ui_arguments
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:
    from guard.cli.output import Presented
    from guard.engine.model import MessageResult
    from guard.engine.ruleset import RuleSet
    from guard.mail.files import MessageRef

MIB = 1024 * 1024


class CliError(Exception):
    """Ends the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def _positive_mib(value: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return int(number * MIB)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guard",
        description="Find and remove e-mail tracking: pixels, wrapped links, tracking "
        "parameters and read-receipt requests.",
    )
    parser.add_argument("--version", action="version", version=f"guard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser("scan", help="scan mail and report who tracks you (changes nothing)")
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
    add_scan_arguments(scan)

    report = sub.add_parser(
        "report", help="who tracks you, from stored IMAP scan results (no server contact)"
    )
    add_report_arguments(report)

    strip = sub.add_parser("strip", help="clean one message, stdin to stdout (an MDA filter)")
    add_strip_arguments(strip)

    clean = sub.add_parser(
        "clean", help="clean tracking from a Maildir or mbox PATH, or an IMAP --account"
    )
    add_clean_path_arguments(clean)
    add_clean_arguments(clean)
    add_watch_arguments(
        sub.add_parser("watch", help="clean new IMAP mail as it arrives (IMAP IDLE)")
    )
    add_restore_arguments(
        sub.add_parser("restore", help="put cleaned messages' originals back (IMAP)")
    )

    ui = sub.add_parser("ui", help="the terminal app: who tracks you, the evidence, cleaning")
    add_ui_arguments(ui)

    explain = sub.add_parser(
        "explain", help="every finding of a message with the rule and evidence behind it"
    )
    explain.add_argument("paths", nargs="*", metavar="PATH", help="message file, Maildir, mbox…")
    explain.add_argument("--account", metavar="NAME", help="explain a message on this account")
    explain.add_argument("--folder", metavar="FOLDER", action="append", help="default: INBOX")
    explain.add_argument("--uid", type=int, metavar="N", help="the message's IMAP UID")
    explain.add_argument("--config", metavar="FILE", help="accounts config")

    rules = sub.add_parser("rules", help="list, test or suggest tracker rules")
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
    return parser


# ---- scan ---------------------------------------------------------------------------------------


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


def _load_rules() -> RuleSet:
    # imported here, not at the top: `guard ui` draws its first rows without the rules
    from guard.engine.rules_load import RuleError, load_ruleset

    try:
        return load_ruleset()
    except RuleError as exc:
        raise CliError(f"rules: {exc}", ExitCode.RULES) from None


def _local_refs(paths: Sequence[str]) -> list[MessageRef]:
    from guard.mail.files import SourceError, message_refs

    refs: list[MessageRef] = []
    for path in paths:
        try:
            refs.extend(message_refs(path))
        except SourceError as exc:
            raise CliError(str(exc), ExitCode.NO_INPUT) from None
    return refs


def cmd_scan(ns: argparse.Namespace) -> int:
    from guard.cli.imap import run_imap_scan, wants_imap  # no imapclient until needed

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

    rules = _load_rules()
    refs = _local_refs(ns.paths)
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


# ---- rules --------------------------------------------------------------------------------------


def _scan_paths(paths: Sequence[str], rules: RuleSet) -> Iterator[MessageResult]:
    from guard.mail.scan import scan_refs

    return scan_refs(_local_refs(paths), rules)


def cmd_explain(ns: argparse.Namespace) -> int:
    from guard.cli.imap import _Failure, fetch_message
    from guard.engine.explain import explain
    from guard.mail.scan import scan_raw

    rules = _load_rules()
    if ns.uid is not None:
        if ns.paths:
            raise CliError(
                "explain: give PATHs or --uid N (with --account), not both", ExitCode.USAGE
            )
        try:
            raw = fetch_message(ns, ns.uid)
        except _Failure as exc:
            raise CliError(str(exc), ExitCode(exc.code)) from None
        results: Iterable[MessageResult] = [scan_raw(raw, f"UID {ns.uid}", str(ns.uid), rules)]
    elif ns.paths:
        results = _scan_paths(ns.paths, rules)
    else:
        raise CliError("explain: give a PATH, or --account NAME --uid N", ExitCode.USAGE)
    for result in results:
        sys.stdout.write(explain(result, rules) + "\n\n")
    return ExitCode.OK


def cmd_rules_suggest(ns: argparse.Namespace, rules: RuleSet) -> int:
    from guard.cli.imap import _Failure, stored_results
    from guard.engine.suggest import suggest

    try:
        results = list(_scan_paths(ns.paths, rules) if ns.paths else stored_results(ns.account))
    except _Failure as exc:
        raise CliError(str(exc), ExitCode(exc.code)) from None
    found = suggest(results, ns.limit)
    if not found:
        sys.stdout.write(f"no unnamed tracker hosts in {len(results)} messages\n")
        return ExitCode.OK
    for s in found:
        notes = [f"{s.messages} message(s)", f"{len(s.senders)} sender(s)"]
        if s.with_token:
            notes.append(f"{s.with_token} URL(s) with per-recipient tokens")
        notes.append(f"{s.content_images} ordinary image(s) from it")
        if s.first_party_only:
            notes.append("only on the senders' own domain: a branded alias, look for the ESP")
        sys.stdout.write(f"# {s.domain}: {'; '.join(notes)}\n{s.rule_snippet()}\n")
    return ExitCode.OK


def cmd_rules(ns: argparse.Namespace) -> int:
    rules = _load_rules()
    if ns.rules_command == "suggest":
        return cmd_rules_suggest(ns, rules)
    if ns.rules_command == "list":
        rows = [
            {
                "id": r.id,
                "tracker": r.tracker,
                "service": r.service.id,
                "kind": r.kind,
                "category": r.category,
                "hosts": list(r.hosts),
                "path": r.path.pattern if r.path else None,
                "decodes": r.decode is not None,
                "tracking_only": r.tracking_only,
                "source": r.source,
                "file": r.file,
            }
            for r in sorted(rules.rules, key=lambda r: r.id)
        ]
        if ns.format == "json":
            json.dump(rows, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            for row in rows:
                sys.stdout.write(
                    f"{row['id']:<44} {row['kind']:<8} {row['category']:<17} {row['tracker']}\n"
                )
            sys.stdout.write(
                f"{len(rows)} rules, {len(rules.services)} services "
                f"(rules version {rules.version})\n"
            )
        return ExitCode.OK
    failures = 0
    total = 0
    for rule in rules.rules:
        for expected, examples in ((True, rule.match), (False, rule.no_match)):
            for example in examples:
                total += 1
                matched, destination = rule.check_example(example)
                ok = matched is expected and (
                    not expected
                    or example.destination is None
                    or destination == example.destination
                )
                if not ok:
                    failures += 1
                    what = "does not match" if expected else "matches"
                    sys.stdout.write(f"FAIL {rule.id} ({rule.file}): {what} {example.text}\n")
    sys.stdout.write(f"{total - failures} passed, {failures} failed\n")
    return ExitCode.OK if failures == 0 else ExitCode.RULES


def cmd_strip(ns: argparse.Namespace) -> int:
    from guard.cli.clean import run_strip

    return run_strip(ns)


def cmd_clean(ns: argparse.Namespace) -> int:
    from guard.cli.clean_imap import run_clean_imap, wants_clean_imap

    if getattr(ns, "account", None) and getattr(ns, "paths", None):
        raise CliError("clean: give a PATH or --account NAME, not both", ExitCode.USAGE)
    if wants_clean_imap(ns):
        return run_clean_imap(ns)
    from guard.cli.clean import run_clean_path

    return run_clean_path(ns)


def cmd_watch(ns: argparse.Namespace) -> int:
    from guard.cli.clean_imap import run_watch

    return run_watch(ns)


def cmd_restore(ns: argparse.Namespace) -> int:
    from guard.cli.clean_imap import run_restore

    return run_restore(ns)


def cmd_ui(ns: argparse.Namespace) -> int:
    from guard.cli.ui import run_ui  # Textual is imported only here

    return run_ui(ns)


def cmd_report(ns: argparse.Namespace) -> int:
    from guard.cli.imap import run_report

    return run_report(ns)


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
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            # Bare `guard` on a terminal: the app, on the default account (or the first-run
            # screen when there is no config).
            ns = parser.parse_args(["ui"])
            return cmd_ui(ns)
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(COMMANDS[ns.command](ns))
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
