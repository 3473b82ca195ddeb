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
        # message), and the raw handler it gives back is what restores it. A handler already in
        # place (`hold_handler`, or a limit around this one) stays: the same end, without the
        # two system calls of installing and restoring it.
        if _signal.getsignal(_SIGALRM) is _expired:
            self._previous = _HELD
        else:
            self._previous = _signal.signal(_SIGALRM, _expired)
        _signal.setitimer(_ITIMER_REAL, seconds)

    def __exit__(self, *exc: object) -> None:
        if self._seconds > 0:
            _signal.setitimer(_ITIMER_REAL, 0)
            if self._previous is not _HELD:
                _signal.signal(_SIGALRM, self._previous)


_HELD = object()  # `_TimeLimit._previous` when the handler was in place already: nothing to restore


def hold_handler() -> None:
    """Leave the limit's SIGALRM handler installed in this process from now on, for a process
    that does nothing but limited work (a scan's forked worker): each `time_limit` then arms
    and disarms the timer alone, two system calls a message instead of four. Only where limits
    work (the main thread); the timer stays disarmed between limits, so the handler never runs
    outside one."""
    main = threading.current_thread() is threading.main_thread()
    if main and _signal.getsignal(_SIGALRM) is not _expired:
        _signal.signal(_SIGALRM, _expired)


def time_limit(seconds: float) -> _TimeLimit:
    """Raise TimeLimitExceeded in the block after `seconds`.

    A real-time interval timer interrupts Python code anywhere between bytecodes; it works in a
    process's main thread only, so elsewhere (a UI worker thread) the block simply runs
    unbounded — the size limits still apply there.
    """
    return _TimeLimit(seconds)
