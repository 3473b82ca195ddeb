"""A Maildir's cleaned copies written while the rest of it is still being cleaned.

`guard clean PATH` hands the cleaned copies over as it plans them (`add`, in pieces); a thread
writes what has been handed over so far as one batch of `replace_batch` (journal, stage, keep,
commit, swap, drop: guard/mail/maildir_clean.py), then takes what came meanwhile. So batches
adapt to the two speeds: the first starts after one piece, the ones after hold what was planned
while the one before was written, and the last, after the plan has ended, only what was
planned during the batch before it. Each batch is crash-safe on its own, whatever its size.

The thread is started with the first piece, after the worker processes are forked, and it
imports nothing once running: a worker forked again later (one that crashed) must not inherit
a lock the thread held.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from guard.mail.maildir_clean import Replacement, fsync_all, replace_batch, thread_pool

if TYPE_CHECKING:
    from concurrent.futures import Executor

Failure = tuple[Replacement, str]


class MaildirWriter:
    """Writes handed-over replacements in batches of at most `batch`, in a thread."""

    def __init__(self, maildir: Path, backup: Path, batch: int) -> None:
        self.maildir = maildir
        self.backup = backup
        self.batch = batch
        self.batches: list[int] = []  # each batch's size, in order (for tests and measuring)
        self._cond = threading.Condition()
        self._ready: list[Replacement] = []
        self._failed: list[Failure] = []
        self._closed = False  # nothing more will be handed over
        self._abandoned = False  # write no further batch
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        # Set by the thread when it is done. Waited for instead of join(): in Python 3.11 a
        # join() that Ctrl-C interrupted leaves the thread marked stopped, and the next join()
        # returns at once, while it still writes.
        self._ended = threading.Event()
        self._pool: Executor | None = None

    def add(self, items: Sequence[Replacement]) -> None:
        """Hand cleaned copies over; the caller has printed their plan lines already."""
        if not items:
            return
        with self._cond:
            self._ready.extend(items)
            self._cond.notify()
        if self._thread is None:
            self._pool = thread_pool()
            self._thread = threading.Thread(target=self._run, name="guard-maildir-writer")
            self._thread.daemon = True  # an interrupted run's last batch is finished next run
            self._thread.start()

    def failures(self) -> list[Failure]:
        """The messages written so far that could not be replaced, each once, with the reason."""
        if not self._failed:  # asked after every message: no lock (the writer holds it often)
            return []
        with self._cond:
            taken, self._failed = self._failed, []
        return taken

    def finish(self) -> list[Failure]:
        """Write everything handed over; the failures not yet taken."""
        self._stop(abandon=False)
        if self._error is not None:
            raise self._error
        return self.failures()

    def abandon(self) -> None:
        """Write no further batch (the one being written is finished); what was handed over and
        not written stays as it was."""
        self._stop(abandon=True)

    def _stop(self, abandon: bool) -> None:
        with self._cond:
            self._closed = True
            self._abandoned = self._abandoned or abandon
            self._cond.notify()
        if self._thread is not None:
            self._ended.wait()
        if self._pool is not None:
            self._pool.shutdown()

    def _take(self) -> list[Replacement]:
        with self._cond:
            while not self._ready and not self._closed:
                self._cond.wait()
            if self._abandoned:
                return []
            taken = self._ready[: self.batch]
            del self._ready[: self.batch]
            return taken

    def _run(self) -> None:
        assert self._pool is not None
        try:
            while items := self._take():
                self.batches.append(len(items))
                try:
                    failed = replace_batch(self.maildir, self.backup, items, self._pool, False)
                except OSError as exc:  # a step of the whole batch (its journal, an fsync)
                    reason = f"{exc.strerror or exc} (the next run completes or undoes its batch)"
                    failed = [(item, reason) for item in items]
                if failed:
                    with self._cond:
                        self._failed.extend(failed)
            with contextlib.suppress(OSError):  # unsynced, it only costs a no-op next run
                fsync_all([self.maildir])  # the last journal's removal (`sync_end`)
        except Exception as exc:  # noqa: BLE001 (raised again in the main thread by finish())
            self._error = exc
        finally:
            self._ended.set()
