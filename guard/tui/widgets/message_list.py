"""The message list: date, sender, subject and text badges, one row per message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Self

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from guard.tui.data import Row

MARK = "*"


def _cells(row: Row, marked: bool) -> tuple[str | Text, ...]:
    # Text, not markup strings: subjects and badges contain "[" that markup would eat.
    return (
        (MARK if marked else " ") + row.date,
        Text(row.sender, no_wrap=True, overflow="ellipsis"),
        Text(row.subject, no_wrap=True, overflow="ellipsis"),
        Text(row.badges, no_wrap=True, overflow="ellipsis"),
    )


def column_widths(width: int) -> tuple[int, int, int, int]:
    """(date, sender, subject, badges) for a list `width` cells wide: the badges and the sender
    keep a useful width, the subject takes the rest."""
    usable = width - 2 - 4 * 2  # vertical scrollbar, cell padding
    if usable >= 100:
        sender, badges = 28, 32
    elif usable >= 80:
        sender, badges = 24, 29
    else:
        sender, badges = 17, 22
    return 11, sender, max(10, usable - 11 - sender - badges), badges


COLUMNS = ("date", "from", "subject", "badges")
FIRST_SLICE = 80  # rows added at once: more than a tall terminal shows
SLICE = 250  # then this many per tick
SLICE_DELAY = 0.01


class MessageList(DataTable[str | Text]):
    """Rows keyed by `Row.key`; `marked` is the selection the actions work on."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_mark", "Mark", tooltip="Mark or unmark the message"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.marked: set[str] = set()
        self._pending: list[Row] = []
        self._draining = False

    def on_mount(self) -> None:
        widths = column_widths(self.size.width or 80)
        for key, label, width in zip(COLUMNS, (" Date", "From", "Subject", "Badges"), widths,
                                     strict=True):  # fmt: skip
            self.add_column(label, width=width, key=key)

    def on_resize(self) -> None:
        changed = False
        for key, width in zip(COLUMNS, column_widths(self.size.width), strict=True):
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is not None and column.width != width:
                column.width = width
                changed = True
        if changed:
            self._require_update_dimensions = True
            self.refresh()

    def clear(self, columns: bool = False) -> Self:
        self._pending.clear()  # rows of the previous source must not trickle in after
        return super().clear(columns)

    def show(self, rows: Iterable[Row]) -> None:
        self.clear()
        self.add_message_rows(rows)

    def add_message_rows(self, rows: Iterable[Row]) -> None:
        """Queue rows; the first screenful is added now, the rest a slice per refresh.

        A DataTable row costs ~0.2 ms to add and measure; 5,000 at once would freeze the screen
        for a second. In slices, the first rows show at once and keys keep working."""
        self._pending.extend(rows)
        if self.row_count < FIRST_SLICE:
            self._add_slice(FIRST_SLICE - self.row_count)
        if self._pending and not self._draining:
            self._draining = True
            self.set_timer(SLICE_DELAY, self._drain)

    def _add_slice(self, n: int) -> None:
        take, self._pending[:] = self._pending[:n], self._pending[n:]
        for r in take:
            self.add_row(*_cells(r, r.key in self.marked), key=r.key)

    def _drain(self) -> None:
        self._add_slice(SLICE)
        if self._pending:
            self.set_timer(SLICE_DELAY, self._drain)
        else:
            self._draining = False

    @property
    def pending(self) -> int:
        """Rows received but not in the table yet."""
        return len(self._pending)

    def update_message(self, row: Row) -> None:
        if row.key not in self.rows:  # type: ignore[operator]
            self._pending[:] = [row if r.key == row.key else r for r in self._pending]
            return
        for column, value in zip(COLUMNS, _cells(row, row.key in self.marked), strict=True):
            self.update_cell(row.key, column, value)

    def current_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no rows / cursor outside: nothing current
            return None
        return None if key.value is None else str(key.value)

    def action_toggle_mark(self) -> None:
        key = self.current_key()
        if key is None:
            return
        if key in self.marked:
            self.marked.discard(key)
        else:
            self.marked.add(key)
        date = str(self.get_cell(key, "date"))
        self.update_cell(key, "date", (MARK if key in self.marked else " ") + date[1:])
        self.move_cursor(row=self.cursor_row + 1)
