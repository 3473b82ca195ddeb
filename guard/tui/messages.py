"""Typed messages the workers post to the screens (workers never touch widgets themselves)."""

from __future__ import annotations

from textual.message import Message

from guard.engine.model import MessageResult
from guard.tui.data import Row


class RowsArrived(Message):
    """A batch of scanned (or stored) messages."""

    def __init__(self, rows: list[Row], done: int, total: int | None, generation: int) -> None:
        super().__init__()
        self.generation = generation
        """Which scan sent it: a stopped scan's last batch must not land in the next one."""
        self.rows = rows
        self.done = done
        self.total = total


class ScanFinished(Message):
    def __init__(
        self, generation: int, text: str, seen: set[str] | None = None, cancelled: bool = False
    ) -> None:
        super().__init__()
        self.generation = generation
        self.text = text
        self.seen = seen
        """Keys of every message the scan saw: rows not among them are gone from the folder."""
        self.cancelled = cancelled


class ScanFailed(Message):
    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class DetailReady(Message):
    def __init__(
        self, key: str, result: MessageResult, blocks: list[list[str]], preview: str
    ) -> None:
        super().__init__()
        self.key = key
        self.result = result
        self.blocks = blocks
        self.preview = preview
