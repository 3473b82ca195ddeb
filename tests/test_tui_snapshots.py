"""Snapshots of every screen at 120×40 and 80×24 (pytest-textual-snapshot).

Fixed data only: the sample corpus scanned in one process, no clock in the header, no ETA on
the progress bar, notifications cleared. After a deliberate visual change, refresh the
baselines with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at them.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_textual_snapshot")

from test_tui import settle as settle_app
from test_tui import until
from textual.pilot import Pilot
from textual.widgets import Markdown

from guard.engine.ruleset import RuleSet
from guard.tui.app import GuardApp
from guard.tui.engine import load_rules
from guard.tui.launch import resolve
from guard.tui.screens.dialogs import ConfirmScreen
from guard.tui.widgets.message_list import MessageList

ROOT = Path(__file__).resolve().parent.parent
SIZES = [(120, 40), (80, 24)]

Snap = Callable[..., bool]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    # the first-run screen names the config file: the same path on every machine and run
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GUARD_CONFIG", str(tmp_path / ".config" / "guard" / "config.toml"))


def make_app(rules: RuleSet, path: str | None = "samples/") -> GuardApp:
    ns = argparse.Namespace(path=path, account=None, config=None, folder=None)
    return GuardApp(resolve(ns), rules=rules, jobs=1)


async def settle(pilot: Pilot[Any]) -> None:
    """Until the app is at rest (tests/test_tui.py's `settle`), then its animations done."""
    app = pilot.app
    assert isinstance(app, GuardApp)
    await settle_app(app, pilot)


def then(*steps: str, message: str | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """run_before: wait for the scan, optionally put the cursor on a message, press keys."""

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, GuardApp)
        await settle(pilot)
        if message is not None:
            rows = app.results.visible(None)
            index = next(i for i, r in enumerate(rows) if message in r.result.source)
            app.main.query_one(MessageList).move_cursor(row=index)
            await settle(pilot)
        for key in steps:
            await pilot.press(key)
            await settle(pilot)
        app.clear_notifications()
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    run = then(message="amazon-ses-order-shipped.eml")
    assert snap_compare(make_app(rules), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_senders_screen(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(rules), terminal_size=size, run_before=then("s"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_senders_by_domain(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(rules), terminal_size=size, run_before=then("s", "d"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filtered_by_sender(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    run = then("s", "down", "down", "enter")
    assert snap_compare(make_app(rules), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trackers_screen(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(rules), terminal_size=size, run_before=then("t"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_first_run_screen(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await then()(pilot)
        markdown = pilot.app.screen.query_one(Markdown)
        # it renders its blocks asynchronously
        await until(pilot, lambda: markdown.children, "the first-run text")
        await settle(pilot)

    assert snap_compare(make_app(rules, None), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_confirm_dialog(snap_compare: Snap, rules: RuleSet, size: tuple[int, int]) -> None:
    plan = [
        f"would clean           INBOX UID {uid}  Weekly deals {uid}  (param 1, pixel 1)"
        for uid in range(1, 4)
    ]

    async def run(pilot: Pilot[Any]) -> None:
        await then()(pilot)
        dialog = ConfirmScreen(
            "Clean these messages? Originals go to Guard/Originals",
            plan,
            "would: 3 cleaned",
            "Clean",
        )
        pilot.app.push_screen(dialog)
        await pilot.pause()

    assert snap_compare(make_app(rules), terminal_size=size, run_before=run)
