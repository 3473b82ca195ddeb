"""A wall-clock budget for one piece of work, so a hostile input cannot hang a scan."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stub: signal.signal without the enum wrapper)
import signal
import threading
from types import FrameType

_SIGALRM = int(signal.SIGALRM)
_ITIMER_REAL = int(signal.ITIMER_REAL)


class TimeLimitExceeded(Exception):
    pass


def _expired(signum: int, frame: FrameType | None) -> None:
    raise TimeLimitExceeded


class _TimeLimit:
    """`time_limit`'s context manager: a class, not a @contextmanager generator (which makes a
    generator and a wrapper object per message, and runs it twice: a few microseconds a message
    on mail that takes a millisecond to clean)."""

    __slots__ = ("_previous", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._previous: object = None

    def __enter__(self) -> None:
        seconds = self._seconds
        if seconds <= 0 or threading.current_thread() is not threading.main_thread():
            self._seconds = 0.0  # nothing armed: nothing to restore
            return
        # _signal's own signal(), not the module's wrapper: the wrapper turns the previous
        # handler into an enum member by trying and failing (an exception a call, twice a
        # message), and the raw handler it gives back is what restores it.
        self._previous = _signal.signal(_SIGALRM, _expired)
        _signal.setitimer(_ITIMER_REAL, seconds)

    def __exit__(self, *exc: object) -> None:
        if self._seconds > 0:
            _signal.setitimer(_ITIMER_REAL, 0)
            _signal.signal(_SIGALRM, self._previous)


def time_limit(seconds: float) -> _TimeLimit:
    """Raise TimeLimitExceeded in the block after `seconds`.

    A real-time interval timer interrupts Python code anywhere between bytecodes; it works in a
    process's main thread only, so elsewhere (a UI worker thread) the block simply runs
    unbounded — the size limits still apply there.
    """
    return _TimeLimit(seconds)
