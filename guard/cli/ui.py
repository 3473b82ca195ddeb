"""`guard ui` for guard/cli/main.py: the app's options, and its entry point, which imports the app
(and Textual) only when it runs: registering the subcommand loads neither."""

from __future__ import annotations

import argparse

__all__ = ["add_ui_arguments", "run_ui"]


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `guard ui`."""
    parser.add_argument(
        "path", nargs="?", default=None, metavar="PATH",
        help="open local mail: an .eml file, a directory, a Maildir or an mbox",
    )  # fmt: skip
    parser.add_argument("--account", metavar="NAME", default=None, help="open this account")
    parser.add_argument(
        "--folder", metavar="FOLDER", action="append", default=None,
        help="open this folder of the account (default: its first folder)",
    )  # fmt: skip
    parser.add_argument(
        "--config", metavar="FILE", default=None,
        help="accounts config (default: $GUARD_CONFIG, else ~/.config/guard/config.toml)",
    )  # fmt: skip


def run_ui(ns: argparse.Namespace) -> int:
    from guard.tui import run_ui as run

    return run(ns)
