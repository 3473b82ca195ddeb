"""guard's terminal app (Textual). Only this package imports Textual, and only when the app runs:
`guard scan` and the other commands never load it (tests/test_tui.py checks). The command line
(guard.cli.ui) defines `guard ui`'s options and calls `run_ui`; nothing here imports guard.cli."""

from __future__ import annotations

import argparse
import sys

__all__ = ["run_ui"]


def run_ui(ns: argparse.Namespace) -> int:
    """Run the app; an exit code. Bad arguments or config end with one line on stderr."""
    from guard.tui.data import ImapFolder
    from guard.tui.engine import FirstRows
    from guard.tui.launch import LaunchError, resolve

    try:
        launch = resolve(ns)
    except LaunchError as exc:
        sys.stderr.write(f"guard: {exc}\n")
        return int(exc.code)
    # the first stored rows are read before Textual loads, so its first frame shows them
    initial = launch.initial
    first = FirstRows(initial) if isinstance(initial, ImapFolder) else None
    from guard.tui.app import GuardApp  # Textual loads here, not before

    app = GuardApp(launch, first_rows=first)
    app.run()
    return int(app.return_code or 0)
