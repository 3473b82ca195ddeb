"""guard's terminal app: see who tracks you, inspect the evidence, clean with one key.

The app is a shell over guard's functions (see guard.tui.engine and guard.tui.cleaning): it
holds the results on screen and the rules, and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from guard.tui import engine
from guard.tui.data import LocalSource, ResultSet
from guard.tui.launch import Launch
from guard.tui.screens.main import MainScreen

if TYPE_CHECKING:
    from guard.engine.ruleset import RuleSet  # loaded by a worker, after the first rows are drawn


class GuardApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "guard"
    SUB_TITLE = "who tracks you"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]
    # below 100 columns the sidebar hides (app.tcss) so the list keeps its badges in view
    # (Textual annotates this oddly: a ClassVar annotation here upsets mypy, none is needed)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012

    def __init__(
        self,
        launch: Launch,
        *,
        rules: RuleSet | None = None,
        jobs: int | None = None,
        first_rows: engine.FirstRows | None = None,
    ) -> None:
        super().__init__()
        self.launch = launch
        self.first_rows = first_rows
        """The initial folder's first stored rows, read before the app started (see run_ui)."""
        self.results = ResultSet()
        self.jobs = jobs
        """Worker processes for local scans (None: guard.mail.scan's default)."""
        self._rules = rules
        self._rules_lock = threading.Lock()

    def rules(self) -> RuleSet:
        """The compiled rules, loaded once by whichever worker first needs them (~1 s)."""
        with self._rules_lock:
            if self._rules is None:
                self._rules = engine.load_rules()
            return self._rules

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    def on_mount(self) -> None:
        if self.launch.first_run:
            from guard.tui.screens.first_run import FirstRunScreen

            screen = FirstRunScreen(self.launch.config_path, engine.default_local_path())
            self.push_screen(screen, self._first_run_done)

    def _first_run_done(self, path: str | None) -> None:
        if path is None:
            self.exit(0)
            return
        self.open_path(path)

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def open_path(self, path: str) -> None:
        from pathlib import Path

        if not Path(path).exists():
            self.notify(f"{path}: no such file or directory", severity="error")
            return
        source = LocalSource(path)
        if source not in self.launch.sources:
            self.launch.sources.insert(0, source)
            from guard.tui.widgets.sources import SourceTree

            self.main.query_one(SourceTree).set_sources(self.launch.sources)
        self.main.open_source(source)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self.main

        def act(name: str) -> Callable[[], None]:
            def run() -> None:
                if self.screen is not main:
                    self.pop_screen()  # commands act on the message list
                getattr(main, f"action_{name}")()

            return run

        for title, help_text, name in (
            ("Senders: who tracks you", "Senders and domains by how much they track", "senders"),
            ("Trackers", "Tracking services, with their senders and messages", "trackers"),
            ("Clean selected message(s)", "Remove trackers; originals go to the backup folder",
             "clean_selected"),
            ("Clean every tracked message in the folder", "Shows the plan first",
             "clean_folder"),
            ("Decline read receipt", "Mark the receipt request as handled ($MDNSent)", "decline"),
            ("Allowlist sender", "The app's cleaning leaves this sender's mail alone",
             "allowlist"),
            ("Restore original", "Put the original back, remove the cleaned copy", "restore"),
            ("Rescan", "Scan the folder again (only new messages on IMAP)", "rescan"),
            ("Stop scan", "Cancel the running scan", "cancel_scan"),
            ("Open local path", "An .eml file, a directory, a Maildir or an mbox", "open_path"),
            ("Clear filter", "Show every message again", "clear_filter"),
            ("Toggle sidebar", "Hide or show the accounts and folders", "toggle_sidebar"),
        ):  # fmt: skip
            yield SystemCommand(title, help_text, act(name))
