"""Modal dialogs: confirming a destructive action (with its plan), and opening a path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Shows what an action will do, message by message; dismisses with True to go ahead."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes, do it"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, plan: Sequence[str], summary: str, verb: str) -> None:
        super().__init__()
        self.title_text = title
        self.plan = list(plan)
        self.summary = summary
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            with VerticalScroll(id="dialog-plan"):
                yield Static(Text("\n".join(self.plan) or "(nothing to do)"))
            yield Label(self.summary, id="dialog-summary")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.verb} (y)", variant="warning", id="yes")
                yield Button("Cancel (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class OpenPathScreen(ModalScreen[str | None]):
    """Asks for a local path (an .eml file, a directory, a Maildir or an mbox)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, suggestion: str = "") -> None:
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Open local mail: an .eml file, a directory, a Maildir or an mbox",
                        id="dialog-title")  # fmt: skip
            yield Input(value=self.suggestion, placeholder="path", id="path")
            with Horizontal(id="dialog-buttons"):
                yield Button("Open", variant="primary", id="open")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "open":
            self.dismiss(self.query_one(Input).value.strip() or None)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
