"""A wall-clock budget for one piece of work, so a hostile input cannot hang a scan."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stub: signal.signal without the enum wrapper)
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_SIGALRM = int(signal.SIGALRM)
_ITIMER_REAL = int(signal.ITIMER_REAL)


class TimeLimitExceeded(Exception):
    pass


def _expired(signum: int, frame: FrameType | None) -> None:
    raise TimeLimitExceeded


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeLimitExceeded in the block after `seconds`.

    A real-time interval timer interrupts Python code anywhere between bytecodes; it works in a
    process's main thread only, so elsewhere (a UI worker thread) the block simply runs
    unbounded — the size limits still apply there.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    # _signal's own signal(), not the module's wrapper: the wrapper turns the previous handler
    # into an enum member by trying and failing (an exception a call, twice a message), and the
    # raw handler it gives back is what restores it.
    previous = _signal.signal(_SIGALRM, _expired)
    _signal.setitimer(_ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _signal.setitimer(_ITIMER_REAL, 0)
        _signal.signal(_SIGALRM, previous)
