"""The scan's progress bar and counts; hidden when nothing runs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class ScanStatus(Horizontal):
    def compose(self) -> ComposeResult:
        # no ETA: it would make every screenshot and snapshot differ
        yield ProgressBar(total=None, show_eta=False, id="scan-bar")
        yield Label("", id="scan-label")

    def start(self, text: str) -> None:
        self.display = True
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#scan-label", Label).update(text)

    def advance(self, done: int, total: int | None, text: str) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)
        self.query_one("#scan-label", Label).update(text)

    def finish(self) -> None:
        self.display = False
