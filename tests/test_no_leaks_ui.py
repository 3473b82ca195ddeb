"""The terminal app over every sample contacts nothing: no socket, no name lookup.

It runs headless in a fresh interpreter with an audit hook on every contact event, opens
samples/, shows every message's findings and preview, and opens the senders and trackers screens.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("textual")

ROOT = Path(__file__).resolve().parent.parent

APP = r"""
import asyncio, os, sys
CONTACT = ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
           "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
           "socket.getnameinfo")
def hook(event, args):
    if event in CONTACT:
        os.write(2, f"NETWORK: {event} {args!r}\n".encode())
        raise RuntimeError("network access from the app")
sys.addaudithook(hook)

import argparse, contextlib
from textual.worker import WorkerCancelled
from guard.engine.rules_load import load_ruleset
from guard.tui.app import GuardApp
from guard.tui.launch import resolve
from guard.tui.widgets.detail import DetailPanel
from guard.tui.widgets.message_list import MessageList

async def main():
    ns = argparse.Namespace(path="samples/", account=None, folder=None, config=None)
    app = GuardApp(resolve(ns), rules=load_ruleset(include_user=False), jobs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        async def settle():  # until at rest (test_tui.at_rest); the run's timeout bounds it
            main = app.main
            while True:
                with contextlib.suppress(WorkerCancelled):
                    await app.workers.wait_for_complete()
                await pilot.pause()
                row = main.current_row()
                if (not main.scanning and not main.query_one(MessageList).pending
                        and main._detail_timer is None
                        and all(w.is_finished for w in app.workers)
                        and (row is None or main.query_one(DetailPanel).key == row.key)):
                    return
                await pilot.pause(0.02)
        await settle()
        msgs = app.main.query_one(MessageList)
        for row in range(msgs.row_count):  # every message: findings and the text preview
            msgs.move_cursor(row=row)
            await settle()
        for key in ("s", "escape", "t", "escape"):
            await pilot.press(key)
            await settle()
        print("shown", msgs.row_count)

asyncio.run(main())
"""


def test_the_app_contacts_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", APP], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert "NETWORK" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    described = len(tomllib.loads((ROOT / "samples" / "manifest.toml").read_text())["message"])
    assert f"shown {described}" in proc.stdout
