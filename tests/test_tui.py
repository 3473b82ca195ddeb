"""The terminal app, driven headless with Textual's pilot: open mail, read the evidence, who
tracks you, filter, cancel a scan, first run, errors, and cleaning against the real Dovecot.
Also: no CLI command loads Textual."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static
from textual.worker import WorkerCancelled

from guard.engine.ruleset import RuleSet
from guard.mail.store import default_path
from guard.tui import run_ui
from guard.tui.app import GuardApp
from guard.tui.data import Filter, ImapFolder
from guard.tui.engine import FirstRows, html_to_text, load_rules, preview_text
from guard.tui.launch import Launch, resolve
from guard.tui.screens.dialogs import ConfirmScreen
from guard.tui.screens.first_run import FirstRunScreen
from guard.tui.screens.reports import SendersScreen, TrackersScreen
from guard.tui.widgets.detail import DetailPanel
from guard.tui.widgets.message_list import MessageList

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
# Every message the manifest describes: the app must list each one.
SAMPLE_COUNT = len(tomllib.loads((SAMPLES / "manifest.toml").read_text())["message"])
SIZE = (120, 40)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # "samples/" as people type it


def ns(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"path": None, "account": None, "config": None, "folder": None}
    base.update(kw)
    return argparse.Namespace(**base)


def app_for(path: str, rules: RuleSet, jobs: int | None = 1) -> GuardApp:
    return GuardApp(resolve(ns(path=path)), rules=rules, jobs=jobs)


def at_rest(app: GuardApp) -> bool:
    """The app has nothing left to do on its own: the scan ended, every row it sent is in the
    table, no detail load is due (its timer) or running, and the detail panel shows the row under
    the cursor, loaded."""
    main = app.main
    if main.scanning or main.query_one(MessageList).pending or main._detail_timer is not None:
        return False
    if any(not w.is_finished for w in app.workers):
        return False
    row = main.current_row()
    if row is None:
        return True
    panel = main.query_one(DetailPanel)
    loading = "Loading the findings" in str(panel.query_one("#detail-findings", Static).render())
    return panel.key == row.key and not loading


async def settle(app: GuardApp, pilot: Pilot[Any], timeout: float = 60) -> None:
    """Until the app is at rest (the scan and the detail loader, its timer first, are done);
    fails after `timeout` seconds rather than hang."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(WorkerCancelled):  # a superseded detail load
            await app.workers.wait_for_complete()
        await pilot.pause()
        if at_rest(app):
            await pilot.wait_for_scheduled_animations()
            return
        assert time.monotonic() < deadline, f"the app is not at rest after {timeout} s"
        await pilot.pause(0.02)


async def until(pilot: Pilot[Any], predicate: Any, what: str, timeout: float = 60) -> None:
    """Until `predicate()` holds (checked between the app's turns); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await pilot.pause(0.05)


def text_of(app: GuardApp, selector: str) -> str:
    content = app.main.query_one(selector, Static).render()
    return content.plain if isinstance(content, Text) else str(content)


def goto(app: GuardApp, needle: str) -> int:
    msgs = app.main.query_one(MessageList)
    for i, row in enumerate(app.results.visible(app.main.filter)):
        if needle in row.result.source:
            msgs.move_cursor(row=i)
            return i
    raise AssertionError(f"{needle} not in the list")


# -- local mail ----------------------------------------------------------------------------------


async def test_open_path_lists_every_message(rules: RuleSet) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        msgs = app.main.query_one(MessageList)
        assert len(app.results.rows) == SAMPLE_COUNT
        assert msgs.row_count == SAMPLE_COUNT
        badges = {str(msgs.get_row_at(i)[3]) for i in range(msgs.row_count)}
        assert "[clean]" in badges
        assert any(b.startswith("[pixel") for b in badges)
        assert not app.main.query_one("#status").display  # the progress bar is gone when done


async def test_select_message_shows_its_findings(rules: RuleSet) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        goto(app, "amazon-ses-order-shipped.eml")
        await settle(app, pilot)
        head = text_of(app, "#detail-head")
        findings = text_of(app, "#detail-findings")
        preview = text_of(app, "#detail-preview")
        assert "orders@northwind.example" in head and "[pixel 1] [link 3] [param 2]" in head
        assert "Amazon SES" in findings
        assert "rule:" in findings and "url:" in findings and "destination:" in findings
        assert "rules/" in findings and str(ROOT) not in findings  # short, stable rule paths
        assert "NW-48213" in preview  # the message's own text, nothing loaded


async def test_senders_screen_filters_the_list(rules: RuleSet) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SendersScreen)
        by_sender, _ = app.results.senders()
        assert by_sender[0].tracking_messages >= by_sender[-1].tracking_messages
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is app.main
        flt = app.main.filter
        assert flt == Filter("sender", by_sender[1].sender)
        msgs = app.main.query_one(MessageList)
        assert msgs.row_count == by_sender[1].messages
        assert "Only sender: " in str(app.main.query_one("#filter-bar").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.main.filter is None and msgs.row_count == SAMPLE_COUNT


async def test_senders_by_domain_and_trackers_screen(rules: RuleSet) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s", "d")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.filter is not None and app.main.filter.kind == "domain"
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TrackersScreen)
        top = app.results.trackers()[0]
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.filter == Filter("tracker", top.tracker)
        assert app.main.query_one(MessageList).row_count == top.messages


async def test_mark_and_local_actions_say_why_not(rules: RuleSet) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("space", "space")
        assert len(app.main.query_one(MessageList).marked) == 2
        await pilot.press("c")
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("local files are only read" in n for n in notes)


async def test_cancel_a_running_scan(rules: RuleSet, tmp_path: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    eml = SAMPLES / "eml" / "beehiiv-ai-weekly.eml"
    for i in range(3000):
        os.link(eml, many / f"{i:05}.eml") if i else shutil.copy(eml, many / "00000.eml")
    app = app_for(str(many), rules, jobs=1)
    async with app.run_test(size=SIZE) as pilot:
        # the first rows are on screen while the scan goes on
        await until(pilot, lambda: app.results.rows, "the first rows")
        assert app.main.scanning
        assert app.main.query_one("#status").display
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.main.scanning
        assert 0 < len(app.results.rows) < 3000
        assert any("stopped after" in n.message for n in app._notifications)


async def test_errors_are_notifications(rules: RuleSet, tmp_path: Path) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.open_path(str(tmp_path / "nope"))
        locked = tmp_path / "locked"
        locked.mkdir()
        (locked / "a.eml").write_bytes(b"From: a@b.example\r\n\r\nhi\r\n")
        locked.chmod(0)
        try:
            app.open_path(str(locked))
            await settle(app, pilot)
        finally:
            locked.chmod(0o700)
        notes = [n.message for n in app._notifications]
        assert any("no such file" in n for n in notes)
        if os.geteuid() != 0:  # root reads anything
            assert any("permission denied" in n for n in notes)
        assert app.is_running


# -- first run and launching -----------------------------------------------------------------------


async def test_first_run_explains_and_opens_samples(rules: RuleSet) -> None:
    launch = resolve(ns())
    assert launch.first_run
    app = GuardApp(launch, rules=rules, jobs=1)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FirstRunScreen)
        text = app.screen.query_one("Markdown").source  # type: ignore[attr-defined]
        assert "[accounts.work]" in text and "password_command" in text
        assert "samples" in str(app.screen.query_one("#open").render())
        await pilot.press("enter")  # the Open button has the focus
        await settle(app, pilot)
        assert app.screen is app.main
        assert len(app.results.rows) == SAMPLE_COUNT


def test_launch_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ui(ns(account="nobody")) == 5
    assert run_ui(ns(path="no/such/dir")) == 3
    assert run_ui(ns(path="samples/", account="x")) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("guard: ") for line in err)


def test_preview_never_loads_anything() -> None:
    html = (
        "<html><head><style>@import url(https://t.example/x.css)</style>"
        '<link rel=stylesheet href="https://t.example/a.css"></head><body>'
        '<p>Hello <b>there</b></p><img src="https://t.example/p.gif">'
        '<script>fetch("https://t.example")</script><p>Bye</p></body></html>'
    )
    text = html_to_text(html)
    assert "Hello there" in text and "Bye" in text
    assert "t.example" not in text and "fetch" not in text
    raw = b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n" + html.encode()
    assert "Hello there" in preview_text(raw)
    assert preview_text(b"").startswith("(no preview")


def test_cli_commands_do_not_import_textual() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from guard.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['scan', 'samples/'])\n"
        "print(rc, sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')"
        " or m.startswith('guard.tui')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0 []"


# -- cleaning on a real server ---------------------------------------------------------------------


def tracked_message(n: int) -> bytes:
    m = EmailMessage()
    m["From"] = "News <news@shop.example.com>"
    m["To"] = "me@example.org"
    m["Subject"] = f"Weekly deals {n}"
    m["Date"] = "Mon, 06 Jan 2025 10:00:00 +0000"
    m["Message-ID"] = f"<tui-{n}@shop.example.com>"
    m.set_content(f"Deals {n}")
    m.add_alternative(
        f'<html><body><p>Deals {n}</p><img src="https://open.sendgrid.net/wf/open?upn=u{n}" '
        'width="1" height="1"><a href="https://shop.example.com/?utm_source=news">shop</a>'
        "</body></html>",
        subtype="html",
    )
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def imap_account(dovecot: object, request: pytest.FixtureRequest) -> Iterator[Launch]:
    user = "tui-" + request.node.name[-30:].replace("_", "-")
    server = dovecot
    path = Path(os.environ["GUARD_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {
        "host": "127.0.0.1",
        "port": server.tls_port,  # type: ignore[attr-defined]
        "username": user,
        "ca_file": str(server.cert),  # type: ignore[attr-defined]
        "password_env": "GUARD_TEST_PASSWORD",
        "backup_folder": "Guard/Originals",
        "timeout": 10,
    }
    lines = ["[accounts.t]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    from dovecot import PASSWORD

    os.environ["GUARD_TEST_PASSWORD"] = PASSWORD
    server.append(user, "INBOX", [tracked_message(1), tracked_message(2)])  # type: ignore[attr-defined]
    launch = resolve(ns())  # bare `guard`: the default (only) account
    assert isinstance(launch.initial, ImapFolder)
    yield launch
    os.environ.pop("GUARD_TEST_PASSWORD", None)


async def test_clean_a_message_on_the_server(imap_account: Launch, rules: RuleSet) -> None:
    app = GuardApp(imap_account, rules=rules, jobs=1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        msgs = app.main.query_one(MessageList)
        assert msgs.row_count == 2
        goto(app, "INBOX")  # the first message
        first = app.results.rows[0]
        assert first.badges.startswith("[pixel 1]")
        await pilot.press("c")
        # the plan comes from a dry run on the server
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the cleaning plan")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert any("would clean" in line for line in screen.plan)
        assert "Guard/Originals" in screen.title_text
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(r.cleaned for r in app.results.rows) and not app.main.scanning,
            "the cleaned row",
        )
        await settle(app, pilot)
        rows = app.results.rows
        assert len(rows) == 2
        cleaned = [r for r in rows if r.cleaned]
        assert len(cleaned) == 1 and cleaned[0].subject == first.subject
        assert cleaned[0].badges.startswith("[cleaned]")
        assert "[pixel" not in cleaned[0].badges
        shown = {str(msgs.get_row_at(i)[3]) for i in range(msgs.row_count)}
        assert any(b.startswith("[cleaned]") for b in shown)

        # and back: restore the original
        goto(app, "INBOX")
        index = app.results.visible(None).index(cleaned[0])
        msgs.move_cursor(row=index)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the restore plan")
        await pilot.press("y")
        await until(
            pilot,
            lambda: not any(r.cleaned for r in app.results.rows) and not app.main.scanning,
            "the restored row",
        )
        await settle(app, pilot)
        assert not any(r.cleaned for r in app.results.rows)
        assert sum(1 for r in app.results.rows if r.badges.startswith("[pixel 1]")) == 2


async def test_stored_rows_show_on_launch_and_the_rescan_updates_them(
    imap_account: Launch, rules: RuleSet
) -> None:
    folder = imap_account.initial
    assert isinstance(folder, ImapFolder)
    assert FirstRows(folder).rows == []  # nothing stored yet: nothing to show early
    app = GuardApp(imap_account, rules=rules, jobs=1)
    async with app.run_test(size=SIZE) as pilot:  # the first visit stores what it scans
        await settle(app, pilot)
        scanned = [(r.key, r.subject, r.badges) for r in app.results.rows]
    assert len(scanned) == 2

    # another guard process writing: opening the state writes nothing (the schema is current),
    # so the stored rows are read as committed, without waiting (WAL) and without an error
    writer = sqlite3.connect(default_path(), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert [(r.key, r.subject, r.badges) for r in FirstRows(folder).rows] == scanned
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    first = FirstRows(folder)  # what `guard ui` reads before Textual loads
    stored = first.rows
    assert [(r.key, r.subject, r.badges) for r in stored] == scanned
    app = GuardApp(imap_account, rules=rules, jobs=1, first_rows=first)
    async with app.run_test(size=SIZE) as pilot:
        msgs = app.main.query_one(MessageList)
        assert msgs.row_count == 2  # on screen from the first frame, before the server is asked
        assert app.first_rows is None
        await settle(app, pilot)
        assert not app.main.scanning
        # the rescan's rows took the stored rows' places: no row twice
        assert [(r.key, r.subject, r.badges) for r in app.results.rows] == scanned
        assert msgs.row_count == 2


async def test_mouse_and_command_palette(rules: RuleSet) -> None:
    app = app_for("samples/", rules)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.click(MessageList, offset=(20, 4))  # the header, then rows 0, 1, 2
        await settle(app, pilot)
        assert app.main.query_one(MessageList).cursor_row == 3
        assert app.results.rows[3].sender in text_of(app, "#detail-head")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for wanted in ("Clean selected message(s)", "Decline read receipt", "Allowlist sender",
                       "Restore original", "Senders: who tracks you", "Stop scan"):  # fmt: skip
            assert wanted in titles
