"""The `guard` command's entry point: `guard strip` goes straight to guard.cli.strip.

`guard strip` runs once per delivered message when it filters mail at delivery (Sieve, procmail,
maildrop), so it must not pay for what the other commands need (their options import the IMAP
and terminal-app modules). Every other command goes to guard.cli.main, its dataclasses made with
the code compiled at build time (guard.cli.dataclass_code).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["scan"], ["clean"], ["strip"]):
        # Their start (imports, rules) makes long-lived objects only: no cyclic GC until it is
        # done (guard.cli.common.start_done, guard.cli.strip's), or at the latest when the
        # command returns (a strip start's collections were ~6 % of its instructions).
        gc.disable()
    if args[:1] == ["strip"]:
        from guard.cli.strip import main as strip

        try:
            return strip(args[1:])
        finally:
            gc.enable()
    from guard.cli.dataclass_code import installed

    try:
        with installed():  # the commands import their modules as they run: installed for the run
            if args[:1] in (["scan"], ["clean"]):
                import_urllib_parse()
            if args[:1] == ["clean"]:
                from guard.cli.clean import quick_args, run_clean

                ns = quick_args(args[1:])
                if ns is not None:  # `guard clean [flags] PATH…`: no argparse (quick_args)
                    from guard.cli.common import run_command

                    return run_command(run_clean, ns)
            elif args[:1] == ["scan"]:
                from guard.cli.scan import quick_scan_args, run_scan

                ns = quick_scan_args(args[1:])
                if ns is not None:  # `guard scan [flags] PATH…`: no argparse
                    from guard.cli.common import run_command

                    return run_command(run_scan, ns)
            from guard.cli.main import main as cli

            return cli(argv)
    finally:
        gc.enable()


def import_urllib_parse() -> None:
    """urllib.parse (pathlib imports it) without ipaddress, which it imports for URLs with a
    bracketed host only (guard reads URLs with guard.engine.urls): imported when first read.
    Called where the build's table is installed (re's patterns come from it)."""
    from guard.engine.standins import WhenUsed, standing_in

    with standing_in(WhenUsed("ipaddress")):
        import urllib.parse  # noqa: F401


if __name__ == "__main__":
    raise SystemExit(main())
