"""Waiting on events, not on time (issue 15 item 5).

A test that sleeps a fixed time before it looks (or signals) passes on an idle machine and fails on
a loaded one. These helpers wait for the event itself (a line on a process's stderr, a message
cleaned, a count reached) with a generous deadline that fails the test, never hangs it.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

DEADLINE = 60.0
"""Seconds a test waits for an event by default: far above what it takes on a loaded 2-core
machine, only a bound so that a broken test ends."""


def wait_until(predicate: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Until `predicate()` is true (an AssertionError from it counts as not yet); fails the test
    with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except AssertionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


class Running:
    """A started process whose stdout and stderr are read as they come (threads), so a test can
    wait for a line without stopping it; `stop` signals it and returns (code, out, err)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._out: list[str] = []
        self._err: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read, args=(s, buf), daemon=True)
            for s, buf in ((proc.stdout, self._out), (proc.stderr, self._err))
            if s is not None
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: IO[str], buf: list[str]) -> None:
        for line in stream:
            with self._lock:
                buf.append(line)

    @property
    def err(self) -> str:
        with self._lock:
            return "".join(self._err)

    @property
    def out(self) -> str:
        with self._lock:
            return "".join(self._out)

    def wait_for_err(self, text: str, timeout: float = DEADLINE) -> None:
        """Until `text` is on stderr; fails (with the stderr so far) if the process ends first
        or the time runs out."""

        def seen() -> bool:
            if text in self.err:
                return True
            if self.proc.poll() is not None:
                for t in self._threads:
                    t.join(5)
                if text in self.err:
                    return True
                raise RuntimeError(f"exited with {self.proc.returncode} before {text!r}")
            return False

        try:
            wait_until(seen, f"{text!r} on stderr", timeout)
        except (AssertionError, RuntimeError) as exc:
            raise AssertionError(f"{exc}; stderr so far: {self.err[-2000:]}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = DEADLINE) -> tuple[int, str, str]:
        """Send `sig` (if still running), wait for the exit; kills and fails after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"did not stop on signal {sig}: {self.err[-2000:]}") from None
        for t in self._threads:
            t.join(10)
        return self.proc.returncode, self.out, self.err
