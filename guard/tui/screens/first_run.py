"""First run: no config yet. Says how to add an account and offers local mail instead."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Markdown

CONFIG_EXAMPLE = """\
default_account = "work"

[accounts.work]
host = "imap.example.org"
username = "me@example.org"
password_command = "pass show mail/work"
folders = ["INBOX"]
"""


def tilde(path: str) -> str:
    """`~/.config/guard/config.toml` rather than the home directory spelled out."""
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + "/") else path


def intro(config_path: str) -> str:
    return f"""\
# Welcome to guard

guard shows who tracks you in your mail — pixels, wrapped links, tracking parameters,
read-receipt requests — and can clean them out. It never loads remote content and never
follows a link.

**No account is configured yet.** To scan a mailbox, create `{tilde(config_path)}`
(or point `$GUARD_CONFIG` at a file) like this, then start `guard` again:

```toml
{CONFIG_EXAMPLE}```

Instead of `password_command` you can use `password_env = "VAR"` or `keyring = true`;
the README lists every setting. Scanning is read-only.

**Or look at local mail now:** an `.eml` file, a directory, a Maildir or an mbox.
"""


class FirstRunScreen(Screen[str | None]):
    """Dismisses with the path to open, or None to quit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_path", "Open path"),
        Binding("q", "quit_app", "Quit"),
    ]

    def __init__(self, config_path: str, suggestion: str | None) -> None:
        super().__init__()
        self.config_path = config_path
        self.suggestion = suggestion or ""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="first-run"):
            yield Markdown(intro(self.config_path))
            yield Input(value=self.suggestion, placeholder="path to local mail", id="path")
            with Horizontal(id="first-run-buttons"):
                label = f"Open {self.suggestion}" if self.suggestion else "Open"
                yield Button(label, variant="primary", id="open")
                yield Button("Quit", id="quit")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#open", Button).focus()

    def _open(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if path:
            self.dismiss(path)
        else:
            self.notify("Type a path first", severity="warning")

    def on_input_submitted(self) -> None:
        self._open()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "open":
            self._open()
        else:
            self.dismiss(None)

    def action_open_path(self) -> None:
        self._open()

    def action_quit_app(self) -> None:
        self.dismiss(None)
