"""Supervised worker processes: a message that crashes or hangs its process costs only itself.

guard's per-message time limit (guard/engine/timelimit.py) is a SIGALRM timer: it interrupts Python
code, but not C code such as the HTML parser (Lexbor), and nothing in-process survives a
segmentation fault. Work that is spread over processes therefore runs here:

- `map_supervised` (local `guard scan` and `guard clean PATH` on large inputs): forked workers
  take chunks of item indexes and send back one result per item, in the order they work. The
  parent notices a worker that died (exit or signal: its pipe ends, its sentinel fires) or is
  overdue (no result within `item_seconds` of the previous one), kills it, runs the item it was
  on again alone in a fresh worker, hands the rest of its chunks to others, and gives an item
  that brings down a worker a second time the caller's failure result. Results come out in
  index order; at most a window of items ahead of the next one to yield is handed out, so
  memory stays bounded while one item is retried.
- `Worker` is the process itself (fork, one duplex pipe, kill, the reason it died), also used
  by the IMAP scan's connections (guard/mail/imap/scan.py) and by the planner of
  `guard clean --account` (guard/mail/imap/planner.py), which schedule their own work.

Workers are never left behind: the generator kills and reaps them whenever it stops (end,
exception, KeyboardInterrupt, close()), they ignore SIGINT (Ctrl-C reaches the parent, which
then stops them), and on Linux the kernel kills them if the parent dies (PR_SET_PDEATHSIG).

What runs in-process is bounded differently. `guard strip` (one message, in the MDA's process),
small inputs (fewer than guard.mail.scan.PARALLEL_THRESHOLD local messages, or new messages in a
folder `guard clean --account` cleans; an IMAP scan on one connection or of fewer than
imapscan.PARALLEL_MIN new messages), the share of a parallel IMAP
scan the parent does itself, and `guard watch` rely on the SIGALRM limit between Python steps
and on `parse_is_bounded` (guard/engine/parse_bounds.py), which keeps documents Lexbor would spend
unbounded time on from reaching it. The app (TUI) scans and cleans those in thread workers,
where no timer runs: there only the size limits and the pre-check apply. (Its large local scans
come here like the CLI's; a forked worker's one thread is its main thread, so the timer works.)
A crash in-process ends that process: `strip` dies, the MDA sees the filter fail and keeps its
own copy.

Test hook: with GUARD_TEST_CRASH_MARKER=ACTION:BYTES in the environment, a worker that meets
BYTES in a message's raw bytes aborts (`abort`), dies of SIGSEGV (`segv`) or hangs where no
timer can reach it (`hang`). Read once when a worker starts; unset, it costs one global lookup
per message. Only worker processes read it: in-process scanning never crashes on purpose.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import pickle
import select
import signal
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from guard.mail.forking import multiprocessing

T = TypeVar("T")

CRASH_MARKER_ENV = "GUARD_TEST_CRASH_MARKER"
AHEAD = 2  # chunks queued per worker: the next one is there when the current one ends
WINDOW_CHUNKS = 16  # chunks per worker handed out beyond the next item to yield

crash_probe: Callable[[bytes], None] | None = None
"""Set in worker processes when CRASH_MARKER_ENV is; work functions call it with raw messages."""


# -- the test-only crash hook ---------------------------------------------------------------------


def _segv() -> None:
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)  # past faulthandler, if a test runner set it
    os.kill(os.getpid(), signal.SIGSEGV)


def _abort() -> None:
    signal.signal(signal.SIGABRT, signal.SIG_DFL)
    os.abort()


def _hang() -> None:
    # Like C code that never returns: the time limit's SIGALRM stays pending, only SIGKILL ends it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM})
    while True:
        time.sleep(3600)


_ACTIONS: dict[str, Callable[[], None]] = {"segv": _segv, "abort": _abort, "hang": _hang}


def probe_from(value: str) -> Callable[[bytes], None] | None:
    """The crash probe `ACTION:BYTES` describes (ACTION: abort, segv or hang), or None."""
    action, _, marker = value.partition(":")
    needle = os.fsencode(marker)
    act = _ACTIONS.get(action)
    if act is None or not needle:
        return None

    def probe(raw: bytes) -> None:
        if needle in raw:
            act()

    return probe


def probe_raw(read: Callable[[], bytes]) -> None:
    """Run the crash probe, if armed, on the bytes `read` returns (a read error is the work's to
    report, not the probe's)."""
    if crash_probe is not None:
        try:
            raw = read()
        except OSError:
            return
        crash_probe(raw)


# -- one worker process ---------------------------------------------------------------------------


@functools.cache
def _pdeathsig() -> Callable[[int], object] | None:
    """What sets this process's parent-death signal (prctl's PR_SET_PDEATHSIG), or None (not
    Linux). Looked up by the parent before its first fork, once, and inherited: guard's
    extension (guard/_process.c) where built, else libc's prctl through ctypes (~6 M
    instructions to import and look up, on the serial start before the workers exist)."""
    try:
        from guard import _process  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return _ctypes_pdeathsig()
    setter: Callable[[int], object] = _process.set_pdeathsig
    return setter


def _ctypes_pdeathsig() -> Callable[[int], object] | None:
    """`_pdeathsig` through ctypes: where the extension was not built (and its test reference)."""
    try:
        import ctypes  # here: only processes that start workers without the extension pay for it

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):  # no ctypes, no libc, no prctl: not Linux
        return None

    def setter(sig: int) -> object:
        if prctl(1, sig) != 0:  # PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl failed")
        return None

    return setter


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent goes, even by SIGKILL (elsewhere: the
    parent's cleanup is all there is)."""
    setter = _pdeathsig()
    if setter is None:
        return
    try:
        setter(signal.SIGKILL)
    except OSError:
        return
    if os.getppid() != parent:  # the parent was gone before the request took effect
        os._exit(0)


def _child_main(
    serve: Callable[[Connection], None], conn: Connection, close: Sequence[Connection], parent: int
) -> None:
    global crash_probe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent)
    for other in close:  # the parent's ends of other workers' pipes, inherited through fork
        other.close()
    marker = os.environ.get(CRASH_MARKER_ENV)
    crash_probe = probe_from(marker) if marker else None
    with contextlib.suppress(EOFError, BrokenPipeError):  # the parent went away: all done
        serve(conn)


class Worker:
    """A forked child running `serve(conn)` on its end of a duplex pipe. Everything the parent
    holds (compiled rules, the warmed-up suffix list, closures) is inherited, never pickled."""

    def __init__(self, serve: Callable[[Connection], None], close: Sequence[Connection] = ()):
        ctx = multiprocessing.get_context("fork")
        _pdeathsig()  # looked up here, inherited by every worker
        self.conn, child = ctx.Pipe(duplex=True)
        self.process: Any = ctx.Process(
            target=_child_main,
            args=(serve, child, [self.conn, *close], os.getpid()),
            daemon=True,  # multiprocessing's exit handler stops it if everything else fails
        )
        self.process.start()
        child.close()  # the child's end lives only in the child: its exit is our EOF

    @property
    def sentinel(self) -> int:
        return int(self.process.sentinel)

    def stop(self) -> None:
        """Kill (if still running) and reap."""
        if self.process.exitcode is None:
            self.process.kill()
        self.process.join()
        self.conn.close()

    def death(self) -> str:
        """How it ended, as a clause: `crashed its worker process (SIGSEGV)`."""
        self.process.join(timeout=5)  # its pipe has ended: it is exiting, or about to
        code = self.process.exitcode
        if code is None:
            return "left its worker process unresponsive"
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"crashed its worker process ({name})"
        return f"ended its worker process (exit status {code})"


def overdue(seconds: float) -> str:
    return f"still running after {seconds:g} s, where the time limit cannot stop it"


def item_seconds(max_seconds: float) -> float | None:
    """How long a worker may go without a result when each item has `max_seconds` (the
    per-message limit): the item's whole budget, as much again for C code the timer cannot
    interrupt, and 2 s to read the message and send the result. None: no limit."""
    return 2 * max_seconds + 2 if max_seconds > 0 else None


# -- a supervised, ordered map --------------------------------------------------------------------


_HEADER = struct.Struct("!II")
"""A result's frame on a worker's pipe: the pickled (i, ok, value)'s length and the blob's, then
both. The blob (a cleaned message's bytes) goes as it is: never copied into a pickle, nor out of
one, nor through Connection's buffer (~12 MB for a Maildir's 438 messages: three copies)."""


def _write_all(fd: int, parts: list[bytes]) -> None:
    written = os.writev(fd, parts)
    total = sum(map(len, parts))
    if written < total:  # a pipe's write cut short (a signal): the rest, in order
        rest = memoryview(b"".join(parts))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


_READ_MAX = 1 << 20


def _read_exact(fd: int, size: int) -> bytes:
    """`size` bytes from the pipe; EOFError if it ends first (the worker died)."""
    if size == 0:
        return b""
    data = os.read(fd, size)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while data and got < size:
        # A pipe gives at most its capacity a read: no buffer of the whole rest each time.
        data = os.read(fd, min(size - got, _READ_MAX))
        parts.append(data)
        got += len(data)
    if got < size:
        raise EOFError
    return b"".join(parts)


def _serve_items(
    work: Callable[[int], Any], split: Callable[[Any], tuple[Any, bytes]] | None
) -> Callable[[Connection], None]:
    def serve(conn: Connection) -> None:
        fd = conn.fileno()
        pack = _HEADER.pack
        dumps = pickle.dumps
        while (task := conn.recv()) is not None:
            for i in task:
                blob = b""
                try:
                    value = work(i)
                    if split is not None:
                        value, blob = split(value)
                    reply = (i, True, value)
                except Exception as exc:  # noqa: BLE001 - one item's bug is that item's result
                    reply = (i, False, f"internal error ({type(exc).__name__})")
                    blob = b""
                meta = dumps(reply, pickle.HIGHEST_PROTOCOL)
                _write_all(fd, [pack(len(meta), len(blob)), meta, blob])

    return serve


@dataclass
class _Slot:
    worker: Worker
    queue: deque[list[int]] = field(default_factory=deque)
    """Assigned chunks, in the order the worker works them; the head's first item is current."""
    deadline: float | None = None
    fresh: bool = True
    fd: int = field(init=False)
    sentinel: int = field(init=False)
    waiting: Any = field(init=False, repr=False)
    """A poll object on the worker's pipe alone: is a result waiting? (Connection.poll builds a
    selector and registers the pipe for every question.)"""

    def __post_init__(self) -> None:
        self.fd = self.worker.conn.fileno()
        self.sentinel = self.worker.sentinel
        self.waiting = select.poll()
        self.waiting.register(self.fd, select.POLLIN)


def map_supervised(
    work: Callable[[int], T],
    count: int,
    failed: Callable[[int, str], T],
    *,
    jobs: int,
    chunk: int,
    seconds: float | None,
    split: Callable[[T], tuple[Any, bytes]] | None = None,
    join: Callable[[Any, bytes], T] | None = None,
) -> Iterator[T]:
    """`work(i)` for i in range(count), in `jobs` forked workers, yielded in order.

    `split` (in the worker) and `join` (here), given together, carry a result as a small
    picklable part and bytes sent as they are: `join(*split(r))` must equal `r`.

    `failed(i, reason)` (in this process) stands in for an item that crashed a worker, or kept
    it busy longer than `seconds` without a result, twice: once in a chunk, once alone in a
    fresh worker. `reason` is a clause such as `crashed its worker process (SIGSEGV)`. A worker
    that cannot be started raises OSError."""
    if (split is None) != (join is None):
        raise ValueError("supervised map: split and join go together")
    todo: deque[list[int]] = deque(
        list(range(start, min(start + chunk, count))) for start in range(0, count, chunk)
    )
    suspects: deque[int] = deque()  # items to run again alone, each in a fresh worker
    suspected: set[int] = set()
    done: dict[int, T] = {}
    slots: list[_Slot] = []
    window = chunk * WINDOW_CHUNKS * max(1, jobs)
    next_out = 0
    # Every worker's pipe and sentinel, registered once for all the waits (the wait of
    # multiprocessing.connection builds a selector and registers each of them at every call:
    # most of this process's work per item).
    ready = select.poll()
    unpack = _HEADER.unpack
    loads = pickle.loads

    def assign(slot: _Slot, now: float) -> None:
        while len(slot.queue) < AHEAD:
            alone = slot.fresh and bool(suspects) and not slot.queue
            if alone:
                task = [suspects.popleft()]
            elif slot.queue and len(todo) <= len(slots):
                return  # near the end a chunk queued here could keep an idle worker waiting
            elif todo and todo[0][0] < next_out + window:
                task = todo.popleft()
            else:
                return
            try:
                slot.worker.conn.send(task)
            except OSError:  # it has died: waiting on it says so
                if alone:
                    suspects.appendleft(task[0])
                else:
                    todo.appendleft(task)
                return
            slot.fresh = False
            slot.queue.append(task)
            if slot.deadline is None and seconds is not None:
                slot.deadline = now + seconds

    def collect(slot: _Slot, now: float) -> bool:
        """Take every result waiting on the slot's pipe; False once the pipe has ended."""
        try:
            while slot.waiting.poll(0):  # data, or the end of the pipe (EOFError)
                meta_size, blob_size = unpack(_read_exact(slot.fd, _HEADER.size))
                i, ok, value = loads(_read_exact(slot.fd, meta_size))
                blob = _read_exact(slot.fd, blob_size)
                head = slot.queue[0]
                if head.pop(0) != i:
                    raise RuntimeError(f"supervised map: worker answered item {i} out of turn")
                if not head:
                    slot.queue.popleft()
                if not ok:
                    done[i] = failed(i, value)
                elif join is not None:
                    done[i] = join(value, blob)
                else:
                    done[i] = value
                slot.deadline = now + seconds if slot.queue and seconds is not None else None
        except (EOFError, OSError):
            return False
        return True

    def lose(slot: _Slot, reason: str) -> None:
        """The worker is gone (or going): its current item is suspect, the rest goes back."""
        ready.unregister(slot.fd)  # before stop() closes the pipe
        ready.unregister(slot.sentinel)
        slot.worker.stop()
        slots.remove(slot)
        if not slot.queue:
            return
        head = slot.queue.popleft()
        current = head.pop(0)
        if current in suspected:  # the second worker it brought down
            done[current] = failed(current, reason)
        else:
            suspected.add(current)
            suspects.append(current)
        for task in reversed([head, *slot.queue]):
            if task:
                todo.appendleft(task)

    try:
        while True:
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if next_out >= count:
                return
            now = time.monotonic()
            while len(slots) < jobs and (todo or suspects):
                serve = _serve_items(work, split)
                slots.append(_Slot(Worker(serve, [s.worker.conn for s in slots])))
                ready.register(slots[-1].fd, select.POLLIN)
                ready.register(slots[-1].sentinel, select.POLLIN)
                assign(slots[-1], now)
            for slot in slots:
                assign(slot, now)
            if not any(slot.queue for slot in slots):
                raise RuntimeError("supervised map: items left but none handed out")
            deadlines = [s.deadline for s in slots if s.deadline is not None]
            timeout = math.ceil(max(0.0, min(deadlines) - now) * 1000) if deadlines else None
            woken = {fd for fd, _event in ready.poll(timeout)}  # any event: data, EOF, hang-up
            now = time.monotonic()
            for slot in list(slots):
                # its sentinel fires once it has exited (asking for the exit code is a syscall)
                ended = slot.sentinel in woken
                if (ended or slot.fd in woken) and (not collect(slot, now) or ended):
                    collect(slot, now)  # results sent before it ended are still good
                    lose(slot, slot.worker.death())
            for slot in list(slots):
                if slot.deadline is None or now < slot.deadline:
                    continue
                if not collect(slot, now):  # a result that just arrived resets the deadline
                    lose(slot, slot.worker.death())
                elif slot.deadline is not None and now >= slot.deadline:
                    assert seconds is not None
                    lose(slot, overdue(seconds))
    finally:
        for slot in slots:
            slot.worker.stop()
