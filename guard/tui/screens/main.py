"""The main screen: sources on the left, the message list, the detail panel, the scan status.

Scanning, loading details and the actions run in thread workers that drive guard's own
functions (guard.tui.engine, guard.tui.cleaning) and post typed messages back; handlers here
only update widgets, so the screen answers keys however long the work takes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Tree
from textual.worker import Worker, get_current_worker

from guard.mail.config import ConfigError
from guard.tui import cleaning, engine
from guard.tui.data import Filter, ImapFolder, LocalSource, Row, Source
from guard.tui.messages import DetailReady, RowsArrived, ScanFailed, ScanFinished
from guard.tui.widgets.detail import DetailPanel
from guard.tui.widgets.message_list import MessageList
from guard.tui.widgets.scan_status import ScanStatus
from guard.tui.widgets.sources import SourceTree

if TYPE_CHECKING:
    from textual.timer import Timer

    from guard.tui.app import GuardApp

BATCH_ROWS = 200  # rows per message to the UI: fewer, larger updates keep the list smooth
BATCH_SECONDS = 0.1
DETAIL_DELAY = 0.15  # let the cursor settle before reading a message (holding ↓ reads nothing)
FIRST_DRAW_WAIT = 1.0  # at most this long the warm read waits for its first rows to be drawn


def background_priority() -> None:
    """Run this worker thread, and the scan processes it forks (they inherit it), at a lower
    CPU priority than the UI thread: on a busy machine keys still get answered at once.
    Linux schedules threads separately; elsewhere, or when not allowed, nothing changes."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), 10))


def wait_drawn(drawn: threading.Event, worker: Worker[None]) -> None:
    """Wait until `drawn` is set, the worker is cancelled (the app quits) or FIRST_DRAW_WAIT."""
    end = time.monotonic() + FIRST_DRAW_WAIT
    while not drawn.wait(0.02) and not worker.is_cancelled and time.monotonic() < end:
        pass


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "senders", "Senders"),
        Binding("t", "trackers", "Trackers"),
        Binding("c", "clean_selected", "Clean"),
        Binding("C", "clean_folder", "Clean folder", show=False),
        Binding("d", "decline", "Decline receipt", show=False),
        Binding("a", "allowlist", "Allowlist sender", show=False),
        Binding("u", "restore", "Restore original", show=False),
        Binding("r", "rescan", "Rescan", show=False),
        Binding("x", "cancel_scan", "Stop scan"),
        Binding("o", "open_path", "Open path", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("b", "toggle_sidebar", "Sidebar", show=False),
    ]

    app: GuardApp

    def __init__(self) -> None:
        super().__init__()
        self.source: Source | None = None
        self.filter: Filter | None = None
        self.scanning = False
        self.busy: str | None = None  # an action running on the server
        self.generation = 0  # of the latest scan; see RowsArrived.generation
        self._drawn = threading.Event()
        """Set once the scan's first rows are on screen (see _scan_imap)."""
        self._rows_were_drawn = False
        self._detail_timer: Timer | None = None
        """The first rows since launch are on screen: until then no detail is loaded (its
        worker loads the rules, ~0.5 s of the interpreter the first frame needs)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            yield SourceTree(self.app.launch.sources, id="sidebar")
            with Vertical(id="center"):
                yield Label("", id="filter-bar")
                yield MessageList(id="messages")
                yield DetailPanel(id="detail")
        yield ScanStatus(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ScanStatus).finish()
        self.query_one("#filter-bar", Label).display = False
        self.query_one(MessageList).focus()
        for warning in self.app.launch.warnings:
            self.notify(warning, severity="warning", timeout=8)
        if self.app.launch.initial is not None:
            self.open_source(self.app.launch.initial)

    # -- sources and scanning ------------------------------------------------------------------

    def open_source(self, source: Source) -> None:
        """Show `source`: stored results at once (IMAP), then scan what is new."""
        self.workers.cancel_group(self, "scan")
        self.source = source
        self.filter = None
        self.app.results.clear()
        msgs = self.query_one(MessageList)
        msgs.marked.clear()
        msgs.clear()
        self.query_one(DetailPanel).clear()
        self._update_filter_bar()
        self.query_one(SourceTree).select_source(source)
        self.sub_title = source.label
        rows: list[Row] = []
        first = self.app.first_rows
        if first is not None and first.source == source:
            self.app.first_rows = None
            rows = first.rows
        # the scan waits for stored rows shown now to be drawn (in the first frame)
        self.start_scan(source, after_draw=bool(rows))
        if rows:
            self.show_rows(rows, len(rows), None, self.generation)

    def start_scan(self, source: Source, use_cache: bool = True, after_draw: bool = False) -> None:
        """Scan `source` in a worker, stopping a scan that runs. `after_draw`: the worker starts
        once rows shown meanwhile are on screen."""
        self.generation += 1
        self.scanning = True
        self._drawn = threading.Event()
        self.scan(source, self.generation, use_cache, self._drawn, after_draw)

    def _flush(self, batch: list[Row], done: int, total: int | None, gen: int) -> None:
        self.post_message(RowsArrived(list(batch), done, total, gen))
        batch.clear()

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan(
        self, source: Source, gen: int, use_cache: bool, drawn: threading.Event, after_draw: bool
    ) -> None:
        worker = get_current_worker()
        if after_draw:
            wait_drawn(drawn, worker)
        try:
            if isinstance(source, LocalSource) or after_draw:
                background_priority()  # nothing is on screen sooner for running first
            if isinstance(source, LocalSource):
                self._scan_local(source, worker, gen)
            else:
                self._scan_imap(source, worker, gen, use_cache, None if after_draw else drawn)
        except Exception as exc:  # noqa: BLE001 - any failure is a notification, never a crash
            if not worker.is_cancelled:
                self.post_message(ScanFailed(gen, cleaning.describe_error(exc)))
        finally:
            if worker.is_cancelled:
                self.post_message(ScanFinished(gen, "stopped", cancelled=True))

    def _scan_local(self, source: LocalSource, worker: Worker[None], gen: int) -> None:
        refs = engine.local_refs(source)
        total = len(refs)
        self.post_message(RowsArrived([], 0, total, gen))
        rules = self.app.rules()
        batch: list[Row] = []
        last = time.monotonic()
        done = 0
        for row in engine.scan_local(refs, rules, jobs=self.app.jobs):
            if worker.is_cancelled:
                self._flush(batch, done, total, gen)
                return
            batch.append(row)
            done += 1
            now = time.monotonic()
            # the first row goes out at once: something to look at while the rest is scanned
            if done == 1 or len(batch) >= BATCH_ROWS or now - last >= BATCH_SECONDS:
                self._flush(batch, done, total, gen)
                last = now
        self._flush(batch, done, total, gen)
        self.post_message(ScanFinished(gen, f"{done} messages scanned"))

    def _scan_imap(
        self,
        source: ImapFolder,
        worker: Worker[None],
        gen: int,
        use_cache: bool,
        drawn: threading.Event | None,
    ) -> None:
        """`drawn`: the rows are not on screen yet; read the first screenful at normal priority,
        and the rest once it is drawn (decoding more rows meanwhile would take the interpreter,
        one thread at a time, from the UI thread that draws them)."""
        known = 0
        for warm in engine.warm_rows(source):
            known += len(warm)
            self.post_message(RowsArrived(warm, known, None, gen))
            if drawn is not None:
                wait_drawn(drawn, worker)
                background_priority()
                drawn = None
            if worker.is_cancelled:
                return
        background_priority()
        totals: list[int] = []
        seen: set[str] = set()
        batch: list[Row] = []
        last = time.monotonic()
        for row in engine.scan_imap(source, totals.append, use_cache=use_cache):
            if worker.is_cancelled:
                self._flush(batch, len(seen), totals[-1] if totals else None, gen)
                return
            seen.add(row.key)
            batch.append(row)
            now = time.monotonic()
            if len(batch) >= BATCH_ROWS or now - last >= BATCH_SECONDS:
                self._flush(batch, len(seen), totals[-1] if totals else None, gen)
                last = now
        self._flush(batch, len(seen), totals[-1] if totals else None, gen)
        self.post_message(ScanFinished(gen, f"{len(seen)} messages in {source.label}", seen=seen))

    def on_rows_arrived(self, message: RowsArrived) -> None:
        self.show_rows(message.rows, message.done, message.total, message.generation)

    def show_rows(self, rows: list[Row], done: int, total: int | None, generation: int) -> None:
        """Add (or update) rows of scan `generation` and its progress."""
        if generation != self.generation:
            return
        msgs = self.query_one(MessageList)
        new, changed = self.app.results.add(rows)
        msgs.add_message_rows(r for r in new if self.filter is None or self.filter.matches(r))
        if rows and not self._drawn.is_set():
            self.call_after_refresh(self._rows_drawn, self._drawn)
        for row in changed:
            msgs.update_message(row)
        status = self.query_one(ScanStatus)
        _n, tracked, errors = self.app.results.counts()
        if total is None and not self.scanning:
            return
        status.display = True
        shown_total = f"/{total}" if total is not None else ""
        status.advance(
            done,
            total,
            f"{done}{shown_total} scanned · {tracked} track you · {errors} unreadable · x stops",
        )
        if self.query_one(DetailPanel).key is None and msgs.row_count:
            self._show_detail_later(restart=False)

    def _rows_drawn(self, drawn: threading.Event) -> None:
        drawn.set()
        if not self._rows_were_drawn:
            self._rows_were_drawn = True
            self._show_detail_later(restart=False)

    def on_scan_finished(self, message: ScanFinished) -> None:
        if message.generation != self.generation or not self.scanning:
            return
        self.scanning = False
        self.query_one(ScanStatus).finish()
        if message.seen is not None:  # messages gone from the server (moved, expunged)
            gone = [k for k in self.app.results.by_key if k not in message.seen]
            if gone:
                self.app.results.remove(gone)
                self._refill()
        n, tracked, errors = self.app.results.counts()
        text = f"{message.text}: {tracked} of {n} track you"
        if message.cancelled:
            text = f"stopped after {n} messages: {tracked} track you"
        if errors:
            text += f", {errors} could not be read"
        self.notify(text, title="Scan stopped" if message.cancelled else "Scan done",
                    severity="warning" if message.cancelled else "information")  # fmt: skip
        if self.query_one(DetailPanel).key is None:
            self._show_detail_later(restart=False)

    def on_scan_failed(self, message: ScanFailed) -> None:
        if message.generation != self.generation:
            return
        self.scanning = False
        self.query_one(ScanStatus).finish()
        self.notify(message.error, title="Scan failed", severity="error", timeout=10)

    def action_cancel_scan(self) -> None:
        if not self.scanning:
            self.notify("No scan is running")
            return
        self.workers.cancel_group(self, "scan")
        self.query_one("#scan-label", Label).update("stopping…")
        # the worker ends at its next message; the list keeps what arrived until then

    def action_rescan(self) -> None:
        if self.source is None:
            self.notify("Open a folder or a path first", severity="warning")
            return
        self.start_scan(self.source)

    def action_open_path(self) -> None:
        from guard.tui.screens.dialogs import OpenPathScreen  # not needed to show the first rows

        def opened(path: str | None) -> None:
            if path:
                self.app.open_path(path)

        self.app.push_screen(OpenPathScreen(engine.default_local_path() or ""), opened)

    @on(Tree.NodeSelected, "#sidebar")
    def _source_chosen(self, event: Tree.NodeSelected[Source | None]) -> None:
        data = event.node.data
        if data is not None and data != self.source:
            self.open_source(data)

    # -- the list and the filter ---------------------------------------------------------------

    def set_filter(self, flt: Filter | None) -> None:
        self.filter = flt
        self._refill()
        self._update_filter_bar()
        self.query_one(MessageList).focus()

    def _refill(self) -> None:
        msgs = self.query_one(MessageList)
        msgs.show(self.app.results.visible(self.filter))
        self.query_one(DetailPanel).clear()
        self._show_detail_later()

    def _update_filter_bar(self) -> None:
        bar = self.query_one("#filter-bar", Label)
        if self.filter is None:
            bar.display = False
            return
        count = self.query_one(MessageList).row_count
        noun = "message" if count == 1 else "messages"
        bar.update(f"Only {self.filter.label} ({count} {noun}) · Esc shows all")
        bar.display = True

    def action_clear_filter(self) -> None:
        if self.filter is not None:
            self.set_filter(None)

    def action_senders(self) -> None:
        from guard.tui.screens.reports import SendersScreen

        self.app.push_screen(SendersScreen(self.app.results), self._filter_chosen)

    def action_trackers(self) -> None:
        from guard.tui.screens.reports import TrackersScreen

        self.app.push_screen(TrackersScreen(self.app.results), self._filter_chosen)

    def _filter_chosen(self, flt: Filter | None) -> None:
        if flt is not None:
            self.set_filter(flt)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(SourceTree)
        sidebar.display = not sidebar.display

    # -- the detail panel ----------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#messages")
    def _highlighted(self) -> None:
        self._show_detail_later()

    def _show_detail_later(self, restart: bool = True) -> None:
        """Load the current message's detail in DETAIL_DELAY; `restart`: count again from now
        (the cursor moved), else a load already due stays due (rows arriving every 0.1 s must
        not put it off until the scan ends)."""
        if not self._rows_were_drawn:
            return  # _rows_drawn calls again
        if self._detail_timer is not None:
            if not restart:
                return
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY, self._show_detail)

    def current_row(self) -> Row | None:
        key = self.query_one(MessageList).current_key()
        return None if key is None else self.app.results.by_key.get(key)

    def _show_detail(self) -> None:
        self._detail_timer = None
        row = self.current_row()
        panel = self.query_one(DetailPanel)
        if row is None:
            return
        if panel.key == row.key:
            return
        panel.show_loading(row)
        self.load_detail(row)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def load_detail(self, row: Row) -> None:
        worker = get_current_worker()
        source = self.source
        result = row.result
        try:
            if isinstance(source, ImapFolder) and row.uid is not None:
                # the list holds slim results; the evidence (URLs, rules) is in the state
                result = engine.full_result(source, row.uid) or result
            blocks = engine.finding_blocks(result, self.app.rules())
        except Exception as exc:  # noqa: BLE001
            blocks = [[f"  (findings unavailable: {cleaning.describe_error(exc)})"]]
        if worker.is_cancelled:
            return
        try:
            assert source is not None
            preview = engine.preview_text(engine.raw_of(source, row))
        except Exception as exc:  # noqa: BLE001 - a preview is a nicety: say why it is missing
            preview = f"(no preview: {cleaning.describe_error(exc)})"
        if not worker.is_cancelled:
            self.post_message(DetailReady(row.key, result, blocks, preview))

    def on_detail_ready(self, message: DetailReady) -> None:
        panel = self.query_one(DetailPanel)
        row = self.app.results.by_key.get(message.key)
        if row is None or panel.key != message.key:
            return  # the cursor moved on
        full = Row(row.key, message.result, row.ref, row.uid, row.cleaned)
        panel.show(full, message.blocks, message.preview)

    # -- actions -------------------------------------------------------------------------------

    def why_no_action(self) -> str | None:
        """Why the actions cannot run here, or None."""
        if self.source is None:
            return "Open an account's folder first"
        if isinstance(self.source, LocalSource):
            return (
                "The app cleans IMAP folders; local files are only read here "
                "(clean them with `guard clean PATH`)"
            )
        if self.busy:
            return f"Wait: {self.busy} is running"
        return cleaning.unavailable()

    def _targets(self) -> list[Row]:
        msgs = self.query_one(MessageList)
        if msgs.marked:
            return [self.app.results.by_key[k] for k in msgs.marked if k in self.app.results.by_key]
        row = self.current_row()
        return [row] if row is not None else []

    def server_action(self, kind: str) -> None:
        """Entry point of every server action (keys and command palette alike)."""
        reason = self.why_no_action()
        if reason:
            self.notify(reason, title="Not available", severity="warning")
            return
        assert isinstance(self.source, ImapFolder)
        if kind == "clean_folder":
            uids: set[int] | None = None
        else:
            rows = self._targets()
            if kind == "restore":
                rows = [r for r in rows if r.cleaned]
                if not rows:
                    self.notify("Select a cleaned message ([cleaned]) to restore its original")
                    return
            uids = {r.uid for r in rows if r.uid is not None}
            if not uids:
                self.notify("Select a message first")
                return
        self.busy = "planning"
        self.notify("Working out the plan on the server (nothing changes yet)…", timeout=3)
        self.plan_action(self.source, kind, uids)

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def plan_action(self, source: ImapFolder, kind: str, uids: set[int] | None) -> None:
        try:
            if kind == "restore":
                assert uids is not None
                plan = cleaning.restore(source, uids, dry_run=True)
            else:
                mode = "decline" if kind == "decline" else "clean"
                plan = cleaning.clean(source, uids, dry_run=True, mode=mode, rules=self.app.rules())
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._action_failed, exc)
            return
        self.app.call_from_thread(self._confirm, source, kind, uids, plan)

    def _confirm(
        self, source: ImapFolder, kind: str, uids: set[int] | None, plan: cleaning.Outcome
    ) -> None:
        from guard.tui.screens.dialogs import ConfirmScreen

        self.busy = None
        if not plan.lines:
            text = "; ".join(plan.problems) or "nothing to do"
            self.notify(f"Nothing to change: {text}", title="Plan")
            return
        backup = source.account.backup_folder
        titles = {
            "clean_selected": f"Clean these messages? Originals go to {backup}",
            "clean_folder": f"Clean every tracked message in {source.folder}? "
            f"Originals go to {backup}",
            "decline": "Decline these read receipts? ($MDNSent is set: no receipt will be sent)",
            "restore": "Put these originals back and remove the cleaned copies?",
        }
        verbs = {"restore": "Restore", "decline": "Decline"}

        def answered(yes: bool | None) -> None:
            if yes:
                self.busy = "the action"
                self.execute_action(source, kind, uids)

        lines = plan.lines + [f"note: {p}" for p in plan.problems]
        self.app.push_screen(
            ConfirmScreen(
                titles.get(kind, kind), lines, plan.summary(True), verbs.get(kind, "Clean")
            ),
            answered,
        )

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def execute_action(self, source: ImapFolder, kind: str, uids: set[int] | None) -> None:
        try:
            if kind == "restore":
                assert uids is not None
                done = cleaning.restore(source, uids, dry_run=False)
            else:
                mode = "decline" if kind == "decline" else "clean"
                done = cleaning.clean(
                    source, uids, dry_run=False, mode=mode, rules=self.app.rules()
                )
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._action_failed, exc)
            return
        self.app.call_from_thread(self._action_done, source, done)

    def _action_done(self, source: ImapFolder, done: cleaning.Outcome) -> None:
        self.busy = None
        self.query_one(MessageList).marked.clear()
        self.notify(done.summary(False), title="Done")
        for problem in done.problems:
            self.notify(problem, severity="warning", timeout=10)
        if source == self.source:
            self.start_scan(source)  # the cleaned copies have new UIDs: show them

    def _action_failed(self, exc: BaseException) -> None:
        self.busy = None
        self.notify(cleaning.describe_error(exc), title="Action failed", severity="error",
                    timeout=10)  # fmt: skip

    def action_clean_selected(self) -> None:
        self.server_action("clean_selected")

    def action_clean_folder(self) -> None:
        self.server_action("clean_folder")

    def action_decline(self) -> None:
        self.server_action("decline")

    def action_restore(self) -> None:
        self.server_action("restore")

    def action_allowlist(self) -> None:
        row = self.current_row()
        if row is None or not row.result.envelope.from_addr:
            self.notify("Select a message with a sender first")
            return
        sender = row.result.envelope.from_addr
        try:
            added = cleaning.add_to_allowlist(sender)
        except OSError as exc:
            self.notify(f"Cannot save the allowlist: {exc.strerror}", severity="error")
            return
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        where = cleaning.allowlist_path()
        if added:
            self.notify(f"{sender} is allowlisted: cleaning leaves its mail alone "
                        f"({where})", title="Allowlisted")  # fmt: skip
        else:
            self.notify(f"{sender} was already allowlisted ({where})")
