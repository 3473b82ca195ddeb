"""`guard watch`: stay connected with IMAP IDLE and clean each new message as it arrives.

One connection (and thread) per watched folder. Each session: connect, run a cleaning pass (which
finishes half-done work and picks up whatever arrived while guard was away), then IDLE; on new
mail (EXISTS), leave IDLE, run a pass, IDLE again. IDLE is renewed every `idle_renew` seconds
(RFC 2177 asks for < 29 min), which also catches anything a lost notice missed.

A lost connection or a server restart: reconnect with exponential backoff (1 s doubling up to
`backoff_max`), reset after a successful session. A login refused, a missing folder or a broken
state database end the watch (retrying would not help) with their exit code.

`stop` (set by SIGTERM/SIGINT in the command line) ends it cleanly: a pass in progress finishes the
message batch in flight (the cleaner checks `stop` between batches), IDLE is ended politely.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient

from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.mail.config import Account
from guard.mail.exitcodes import ExitCode
from guard.mail.imap.cleaner import Cleaner
from guard.mail.imap.common import FolderReport, Transform
from guard.mail.imap.connection import (
    AuthError,
    FolderError,
    ImapError,
    ServerError,
    close,
    connect,
    errors,
)
from guard.mail.imap.journal import Journal
from guard.mail.secrets import Credentials
from guard.mail.store import Store, StoreError

IDLE_RENEW = 600.0  # seconds in one IDLE before it is renewed (and the folder re-checked)
POLL = 0.5  # seconds between checks of `stop` while idling
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0


@dataclass
class WatchStats:
    passes: int = 0
    cleaned: int = 0
    reconnects: int = 0
    fatal: tuple[int, str] | None = None
    reports: list[FolderReport] = field(default_factory=list)


class Watcher:
    def __init__(
        self,
        account: Account,
        credentials: Credentials,
        folders: Sequence[str],
        transform: Transform,
        stop: threading.Event,
        *,
        on_report: Callable[[FolderReport], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
        log: Callable[[str], None] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        idle_renew: float = IDLE_RENEW,
        backoff_max: float = BACKOFF_MAX,
        store_path: Any = None,
    ) -> None:
        self.account = account
        self.credentials = credentials
        self.folders = list(folders)
        self.transform = transform
        self.stop = stop
        self.on_report = on_report or (lambda _r: None)
        self.on_problem = on_problem or (lambda _m: None)
        self.log = log or (lambda _m: None)
        self.limits = limits
        self.idle_renew = idle_renew
        self.backoff_max = backoff_max
        self.store_path = store_path
        self.stats = WatchStats()
        self._lock = threading.Lock()

    def run(self) -> int:
        """Watch every folder until `stop` is set or something fatal happens; an exit code."""
        threads = [
            threading.Thread(target=self._folder_main, args=(f,), name=f"watch {f}", daemon=True)
            for f in self.folders
        ]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.2)
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=self.account.timeout + 5)
        if self.stats.fatal is not None:
            return self.stats.fatal[0]
        return int(ExitCode.OK)

    def _fatal(self, code: int, message: str) -> None:
        with self._lock:
            if self.stats.fatal is None:
                self.stats.fatal = (code, message)
                self.on_problem(message)
        self.stop.set()

    def _folder_main(self, folder: str) -> None:
        try:
            store = Store(self.store_path)
        except StoreError as exc:
            self._fatal(ExitCode.STATE, str(exc))
            return
        try:
            journal = Journal(store)
            self._folder_loop(folder, journal)
        except StoreError as exc:
            self._fatal(ExitCode.STATE, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: report it, end the watch
            self._fatal(ExitCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            store.close()

    def _folder_loop(self, folder: str, journal: Journal) -> None:
        delay = BACKOFF_START
        down_since: float | None = None
        while not self.stop.is_set():
            client: IMAPClient | None = None
            try:
                client = connect(self.account, self.credentials)
                if down_since is not None:
                    self.on_problem(
                        f"{folder}: reconnected after {time.monotonic() - down_since:.0f} s"
                    )
                    down_since = None
                    with self._lock:
                        self.stats.reconnects += 1
                cleaner = Cleaner(
                    client,
                    self.account,
                    journal,
                    self.transform,
                    limits=self.limits,
                    stop=self.stop.is_set,
                    log=self.log,
                )
                self._pass(cleaner, folder)
                delay = BACKOFF_START
                self._idle_loop(client, cleaner, folder)
            except (AuthError, FolderError) as exc:
                self._fatal(exc.exit_code, str(exc))
                return
            except ImapError as exc:
                if self.stop.is_set():
                    return
                if down_since is None:
                    down_since = time.monotonic()
                    self.on_problem(f"{folder}: {exc}; reconnecting (backoff up to "
                                    f"{self.backoff_max:.0f} s)")  # fmt: skip
                self.log(f"{folder}: {exc}; next attempt in {delay:.0f} s")
                self.stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                if client is not None:
                    close(client)

    def _pass(self, cleaner: Cleaner, folder: str) -> None:
        report = cleaner.clean_folder(folder)
        with self._lock:
            self.stats.passes += 1
            self.stats.cleaned += report.count("cleaned")
            self.stats.reports.append(report)
            del self.stats.reports[:-20]
        self.on_report(report)

    def _idle_loop(self, client: IMAPClient, cleaner: Cleaner, folder: str) -> None:
        while not self.stop.is_set():
            with errors(self.account, f"starting IDLE on {folder!r}"):
                client.idle()
            started = time.monotonic()
            new_mail = False
            try:
                while not self.stop.is_set() and time.monotonic() - started < self.idle_renew:
                    if self._idle_wait(client, POLL):
                        new_mail = True
                        break
            finally:
                with errors(self.account, f"ending IDLE on {folder!r}"):
                    client.idle_done()
            if self.stop.is_set():
                return
            del new_mail  # a renewal re-checks the folder too
            self._pass(cleaner, folder)

    def _idle_wait(self, client: IMAPClient, timeout: float) -> bool:
        """Wait up to `timeout` for IDLE news; True on new mail. Raises ServerError when the server
        closed the connection (imapclient's idle_check hides an EOF as 'no news')."""
        sock = client.socket()
        with errors(self.account, "waiting in IDLE"):
            readable = bool(select.select([sock], [], [], timeout)[0])
            responses: list[Any] = client.idle_check(timeout=0)
        if readable and not responses:
            # readable but nothing parsed twice in a row: the peer has gone
            with errors(self.account, "waiting in IDLE"):
                if select.select([sock], [], [], 0)[0] and not client.idle_check(timeout=0):
                    raise ServerError(
                        f"{self.account.host}:{self.account.port} closed the connection"
                    )
        for resp in responses:
            if not isinstance(resp, tuple) or len(resp) < 2:
                continue
            if resp[0] == b"BYE":
                raise ServerError(f"{self.account.host}:{self.account.port} is shutting down")
            if resp[1] in (b"EXISTS", b"RECENT"):
                return True
        return False
