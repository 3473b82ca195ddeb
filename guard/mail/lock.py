"""A per-account lock file, so two guard processes never change one mailbox at the same time.

`$XDG_DATA_HOME/guard/locks/<account>.lock`, held with `fcntl.flock` (released by the kernel when
the process ends, even on SIGKILL: a stale lock file is harmless). The holder writes
"<command> <pid>" into the file, so a refused run can say who holds the account.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from pathlib import Path
from types import TracebackType

from guard.mail.config import data_dir


class LockHeld(Exception):
    """Another guard process holds the account. `holder` is its command ("watch", "clean", ...)."""

    def __init__(self, account: str, holder: str, pid: int | None) -> None:
        who = f"guard {holder}" + (f" (pid {pid})" if pid else "")
        super().__init__(f"{who} is working on account {account!r}")
        self.account = account
        self.holder = holder
        self.pid = pid


class LockError(Exception):
    """The lock file cannot be created; str(exc) is one line."""


def lock_dir() -> Path:
    return data_dir() / "locks"


def _file_name(account: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", account)
    return f"{safe}.lock"


class AccountLock:
    """`with AccountLock("work", "clean"):` - raises LockHeld when another process holds it."""

    def __init__(self, account: str, command: str, directory: Path | None = None) -> None:
        self.account = account
        self.command = command
        self.path = (directory or lock_dir()) / _file_name(account)
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0, poll: float = 0.5) -> None:
        """Take the lock, waiting up to `wait` seconds (0: fail at once) before LockHeld."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder, pid = self._holder(fd)
                    os.close(fd)
                    raise LockHeld(self.account, holder, pid) from None
                time.sleep(min(poll, max(0.01, deadline - time.monotonic())))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.command} {os.getpid()}\n".encode(), 0)
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> tuple[str, int | None]:
        try:
            text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        except OSError:
            text = []
        command = text[0] if text else "(another process)"
        pid = int(text[1]) if len(text) > 1 and text[1].isdigit() else None
        return command, pid

    def holder(self) -> tuple[str, int | None] | None:
        """Who holds the lock now (None when free); does not take it."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._holder(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> AccountLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
