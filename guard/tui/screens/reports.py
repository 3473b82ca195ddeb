"""Who tracks you: the senders screen (by address and by domain) and the trackers screen.
Choosing a row filters the message list to it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, TabbedContent, TabPane

from guard.engine.report import SenderRow, TrackerRow
from guard.tui.data import Filter, ResultSet


def _day(iso: str) -> str:
    return iso[:10]


def _sender_table(rows: list[SenderRow], key: str, table: DataTable[str | Text]) -> None:
    table.add_column(key.capitalize(), width=30, key="name")
    table.add_column("Tracked", width=9, key="tracked")
    table.add_column("Pixels", width=6, key="pixels")
    table.add_column("Links", width=6, key="links")
    table.add_column("Rcpt", width=4, key="rcpt")
    table.add_column("First", width=10, key="first")
    table.add_column("Last", width=10, key="last")
    table.add_column("Trackers", key="trackers")
    for r in rows:
        name = r.sender if key == "sender" else r.domain
        table.add_row(
            Text(name or "(none)", no_wrap=True, overflow="ellipsis"),
            f"{r.tracking_messages}/{r.messages}",
            str(r.pixels),
            str(r.links),
            str(r.receipts),
            _day(r.first_seen),
            _day(r.last_seen),
            Text(", ".join(sorted(r.trackers)) or "-", no_wrap=True),
            key=f"{key}\x00{name}",
        )


class _Report(Screen[Filter | None]):
    """Dismisses with the filter chosen, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back"),
        Binding("enter", "choose", "Filter messages", show=True, priority=False),
    ]

    def action_back(self) -> None:
        self.dismiss(None)

    def _choose(self, table: DataTable[str | Text]) -> None:
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is None:
            return
        kind, _, value = str(key).partition("\x00")
        self.dismiss(Filter(kind, value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._choose(event.data_table)  # type: ignore[arg-type]


class SendersScreen(_Report):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "switch", "Senders/domains")]

    def __init__(self, results: ResultSet) -> None:
        super().__init__()
        self.results = results

    def compose(self) -> ComposeResult:
        by_sender, by_domain = self.results.senders()
        n, tracked, _errors = self.results.counts()
        trackers = sum(1 for r in by_sender if r.tracking_messages)
        yield Header()
        yield Label(
            f"Who tracks you: {trackers} of {len(by_sender)} senders track you, "
            f"in {tracked} of {n} messages. Enter shows their messages.",
            id="report-title",
        )
        with TabbedContent(id="tabs"):
            with TabPane("By sender", id="tab-sender"):
                table: DataTable[str | Text] = DataTable(cursor_type="row", id="senders")
                _sender_table(by_sender, "sender", table)
                yield table
            with TabPane("By domain", id="tab-domain"):
                dtable: DataTable[str | Text] = DataTable(cursor_type="row", id="domains")
                _sender_table(by_domain, "domain", dtable)
                yield dtable
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#senders", DataTable).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        table_id = "#senders" if event.pane.id == "tab-sender" else "#domains"
        self.query_one(table_id, DataTable).focus()

    def action_switch(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-domain" if tabs.active == "tab-sender" else "tab-sender"

    def action_choose(self) -> None:
        tabs = self.query_one(TabbedContent)
        self._choose(self.query_one("#senders" if tabs.active == "tab-sender" else "#domains",
                                    DataTable))  # fmt: skip


def _tracker_table(rows: list[TrackerRow], table: DataTable[str | Text]) -> None:
    table.add_column("Tracker", width=28, key="name")
    table.add_column("Category", width=18, key="category")
    table.add_column("Senders", width=7, key="senders")
    table.add_column("Messages", width=8, key="messages")
    table.add_column("Sender addresses", key="who")
    for r in rows:
        table.add_row(
            Text(r.tracker, no_wrap=True, overflow="ellipsis"),
            r.category,
            str(len(r.senders)),
            str(r.messages),
            Text(", ".join(sorted(r.senders)), no_wrap=True),
            key=f"tracker\x00{r.tracker}",
        )


class TrackersScreen(_Report):
    def __init__(self, results: ResultSet) -> None:
        super().__init__()
        self.results = results

    def compose(self) -> ComposeResult:
        rows = self.results.trackers()
        yield Header()
        yield Label(
            f"{len(rows)} tracking services in these messages. Enter shows their messages.",
            id="report-title",
        )
        table: DataTable[str | Text] = DataTable(cursor_type="row", id="trackers")
        _tracker_table(rows, table)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#trackers", DataTable).focus()

    def action_choose(self) -> None:
        self._choose(self.query_one("#trackers", DataTable))
