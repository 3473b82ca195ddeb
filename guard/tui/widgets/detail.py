"""The detail panel: the message's header lines, every finding with its evidence, and a safe
text preview (plain text, or the HTML's text; nothing is ever loaded)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from guard.engine.model import MessageResult
from guard.engine.report import MessageStats
from guard.tui.data import Row


def head_text(row: Row) -> Text:
    env = row.result.envelope
    text = Text()
    text.append(row.badges, style="bold")
    text.append(f"\nFrom:    {env.from_name + ' ' if env.from_name else ''}<{row.sender}>")
    text.append(f"\nSubject: {row.subject}")
    if env.date:
        text.append(f"\nDate:    {env.date}")
    esp = row.result.esp
    if esp is not None:
        shown = f" ({'; '.join(esp.evidence)})" if esp.evidence else ""
        text.append(f"\nSent through: {esp.name}{shown}")
    stats = MessageStats.of(row.result)
    if stats.trackers:
        text.append(f"\nTracked by: {', '.join(sorted(stats.trackers))}")
    if stats.leaks:
        text.append(f"\nGives your address to: {', '.join(sorted(stats.leaks))}", style="bold")
    if row.result.error:
        text.append(f"\nCould not be scanned: {row.result.error}", style="bold")
    return text


def findings_text(result: MessageResult, blocks: list[list[str]]) -> Text:
    if result.error:
        return Text("No findings: the message could not be scanned.")
    if not blocks:
        return Text("Nothing found: no tracking and no remote content.")
    tracking = sum(1 for f in result.findings if f.kind.value != "remote")
    text = Text(f"\nFindings ({tracking} tracking, {len(blocks) - tracking} other remote loads)\n",
                style="bold")  # fmt: skip
    for block in blocks:
        text.append(block[0].strip() + "\n", style="bold")
        for line in block[1:]:
            text.append(line + "\n")
    return text


class DetailPanel(VerticalScroll):
    """Shows one message; `key` says which, so a late answer for another one is ignored."""

    can_focus = True

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.key: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("Select a message to see who tracks it and how.", id="detail-head")
        yield Static("", id="detail-findings")
        yield Static("", id="detail-preview-title", classes="section")
        yield Static("", id="detail-preview")

    def clear(self) -> None:
        self.key = None
        self.query_one("#detail-head", Static).update("No message selected.")
        for name in ("findings", "preview-title", "preview"):
            self.query_one(f"#detail-{name}", Static).update("")

    def show_loading(self, row: Row) -> None:
        self.key = row.key
        self.query_one("#detail-head", Static).update(head_text(row))
        self.query_one("#detail-findings", Static).update(Text("Loading the findings…"))
        self.query_one("#detail-preview-title", Static).update("")
        self.query_one("#detail-preview", Static).update("")
        self.scroll_home(animate=False)

    def show(self, row: Row, blocks: list[list[str]], preview: str) -> None:
        self.key = row.key
        self.query_one("#detail-head", Static).update(head_text(row))
        self.query_one("#detail-findings", Static).update(findings_text(row.result, blocks))
        self.query_one("#detail-preview-title", Static).update(
            Text("Text preview (nothing loaded, links not followed)", style="bold")
        )
        self.query_one("#detail-preview", Static).update(Text(preview))
