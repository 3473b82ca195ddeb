"""`PoolPlanner`: the planner of guard.mail.imap.planner on every core, for a folder with many new
messages.

Forked worker processes (guard.mail.supervise.Worker: they inherit the loaded rules and die with
this process), supervised as `map_supervised` does: a worker that dies, or sends no result for
`seconds` while this process waits for one, is killed; the message it was on is tried again
alone in a fresh worker, and a message that brings down that worker too gets a skipped outcome
whose reason says so (`crashed its worker process (SIGSEGV)`); every other message is planned as
if nothing had happened. If no worker process can be started at all, what is left is planned in
this process (the suspects excepted).

This process never blocks on a worker: its end of each socket is non-blocking and moved by two
threads per worker, one writing its tasks (`_Writer`), one reading its results (`_Reader`, which
wakes this process through a pipe); the results are framed here. A worker stuck in C code that
holds the interpreter lock therefore cannot stall this process past the deadline. The threads
also keep the worker going while this process talks to the server and calls no planner method:
before them, tasks waited in an outbox and results in the socket until this process called one,
and a socket holds ~200 KB (three or four newsletters), so the workers ran out of work during
every APPEND (0.6 s idle each of a 1.3 s run on the corpus) and `ready` saw only the few results
the socket held. A worker itself is one thread (see `_serve`): these threads keep its socket
drained and filled.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue
import select
import selectors
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from guard.mail import supervise
from guard.mail.imap.common import BATCH, CleanOutcome, Transform
from guard.mail.imap.planner import InlinePlanner, Planned, internal_error, planned
from guard.mail.supervise import Worker, overdue

# Messages handed out beyond their results, shared by the workers: the round being written and
# the next one, all of it queued in the workers while this process is at the server.
AHEAD = 2 * BATCH
CHUNK = 4  # messages per task sent to a worker
_READ = 1 << 20


# -- a worker process ------------------------------------------------------------------------------


# A small newsletter (an HTML part with a table, a tracking pixel, a link with UTM parameters)
# each worker `start` forks cleans once, while this process still fetches the first round: the
# first message a worker cleans costs 2-3 times the next ones (first-use state of the HTML walk,
# the URL core and the rewrite, pages copied from this process), 6-12 ms instead of 2-4.
WARM_MESSAGE = (
    b"From: News <news@warm.example>\r\nTo: reader@warm.example\r\nSubject: warm-up\r\n"
    b"Date: Mon, 7 Dec 2026 08:00:00 +0000\r\nMessage-ID: <warm@warm.example>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Read https://warm.example/a?utm_source=news&id=1\r\n"
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b'<html><body><table><tr><td><a href=3D"https://warm.example/a?utm_source=3Dnews&amp;id=3D1">'
    b'Read</a></td></tr></table><img src=3D"https://t.warm.example/o.gif" width=3D"1" '
    b'height=3D"1"></body></html>\r\n--b1--\r\n'
)


def _warm(transform: Transform) -> None:
    """Clean WARM_MESSAGE once, for nothing but the caches it fills (its outcome is dropped)."""
    with contextlib.suppress(Exception):
        transform(WARM_MESSAGE)


def _serve(transform: Transform, warm: bool = False) -> Callable[[Connection], None]:
    """A worker's life: a task (CHUNK messages) in, each message cleaned and its result sent, the
    next task. `warm` (a worker started before there is work): `_warm` first; tasks sent
    meanwhile wait in the socket.

    One thread: this process's reader thread takes each result off the socket as it comes (the
    socket holds three or four results), and its writer thread keeps the next tasks queued in it,
    so neither a send nor a receive here waits for this process. Threads here (one receiving,
    one sending) cost ~0.1 ms of CPU a message in lock hand-offs with the cleaning thread, ~15 %
    of what the workers spend besides cleaning."""

    def serve(conn: Connection) -> None:
        if warm:
            _warm(transform)
        with contextlib.suppress(EOFError, OSError):
            while True:
                for key, raw in conn.recv():
                    if supervise.crash_probe is not None:
                        supervise.crash_probe(raw)
                    try:
                        outcome = planned(transform(raw))
                    except Exception as exc:  # noqa: BLE001 - one message's bug is its outcome
                        outcome = internal_error(exc)
                    conn.send((key, outcome))

    return serve


def _frame(obj: Any) -> bytes:
    """`obj` as multiprocessing.connection.Connection.recv expects it on the other end."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > 0x7FFFFFFF:
        return struct.pack("!iQ", -1, len(payload)) + payload
    return struct.pack("!i", len(payload)) + payload


def _unframe(buf: bytearray) -> Iterator[Any]:
    """The complete objects at the start of `buf` (Connection.send's framing), removed from it.
    Unpickled from a view of `buf`: a slice and bytes() of it would copy each result twice."""
    while len(buf) >= 4:
        (size,) = struct.unpack_from("!i", buf)
        head = 4
        if size == -1:
            if len(buf) < 12:
                return
            (size,) = struct.unpack_from("!Q", buf, 4)
            head = 12
        if len(buf) < head + size:
            return
        with memoryview(buf) as view, view[head : head + size] as payload:
            obj = pickle.loads(payload)
        del buf[: head + size]  # the views released: `buf` can shrink
        yield obj


def _poll(fd: int, events: int) -> None:
    """Wait (up to a second) until the non-blocking `fd` can be read or written."""
    poller = select.poll()
    poller.register(fd, events)
    poller.poll(1000)


class _Writer:
    """A thread writing a worker's tasks to its socket as the worker takes them. It ends when
    told to or when the worker has died (the socket refuses writes); _stop joins it before the
    socket's fd is closed, so it never writes to a number reused meanwhile."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (frame := self.frames.get()) is not None:
            view = memoryview(frame)
            while view:
                try:
                    sent = os.write(self.fd, view[:_READ])
                except (BlockingIOError, InterruptedError):
                    _poll(self.fd, select.POLLOUT)
                    continue
                except OSError:  # the worker has died: take() notices and hands its work out
                    return
                view = view[sent:]


class _Reader:
    """A thread reading a worker's results off its socket as they come, into `chunks`; each
    chunk and the end (`ended`, set after the last chunk) write a byte to `wake`, the pipe
    PoolPlanner._wait waits on. It ends at the socket's end (the worker exited or was killed)."""

    def __init__(self, fd: int, wake: int) -> None:
        self.fd = fd
        self.wake = wake
        self.chunks: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.ended = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self.fd, _READ)
                except (BlockingIOError, InterruptedError):
                    _poll(self.fd, select.POLLIN)
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                self.chunks.put(chunk)
                self._poke()
        finally:
            self.ended = True
            self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe: this process is woken already
            os.write(self.wake, b"\0")


@dataclass(eq=False)
class _Slot:
    worker: Worker
    fd: int
    writer: _Writer
    reader: _Reader
    inflight: deque[int] = field(default_factory=deque)
    """Keys handed to it, in the order it works them; the first is the one it is on."""
    clock: float = 0.0  # when it last gave a result, or got work while idle
    inbox: bytearray = field(default_factory=bytearray)
    fresh: bool = True  # has never been given anything
    alone: bool = False  # on a suspect: nothing else until its result


class PoolPlanner:
    """`jobs` supervised worker processes planning messages (see the module docstring).

    `seconds`: how long a worker may go without a result while this process waits for one
    (None: no limit). Workers start with `start` (the cleaner calls it as soon as it knows a
    folder is large enough, so they warm up while the first round is fetched) or else with the
    first submit; the transform's `load()` (rules, policy), when it has one, runs here first, so
    that they inherit what it loads."""

    def __init__(self, transform: Transform, jobs: int, seconds: float | None) -> None:
        load = getattr(transform, "load", None)
        if callable(load):
            load()
        # What is loaded now lives as long as the run: out of the collector's sight, workers
        # neither walk it nor copy the pages a collection would touch (fewer copy-on-write faults).
        gc.freeze()
        self.transform = transform
        self.jobs = max(1, jobs)
        self.seconds = seconds
        self._raws: dict[int, bytes] = {}
        self._done: dict[int, CleanOutcome] = {}
        self._todo: deque[int] = deque()
        self._suspects: deque[int] = deque()
        self._suspected: set[int] = set()
        self._dropped: set[int] = set()
        self._slots: list[_Slot] = []
        self._next = 0
        self._wake: tuple[int, int] | None = None  # the readers' pipe: (read end, write end)

    # -- the interface -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers now, before there is work: they warm up (`_warm`) while this
        process fetches the first round. A worker that cannot be started is left to `_assign`,
        which starts workers as work comes and copes with none."""
        with contextlib.suppress(OSError):
            while len(self._slots) < self.jobs:
                self._start(warm=True)

    def submit(self, raws: Sequence[bytes]) -> list[int]:
        keys = list(range(self._next, self._next + len(raws)))
        self._next += len(raws)
        self._raws.update(zip(keys, raws, strict=True))
        self._todo.extend(keys)
        now = time.monotonic()
        for slot in list(self._slots):
            self._read(slot, now)  # results that arrived meanwhile free room for more work
        self._assign(now)
        return keys

    def ready(self, keys: Sequence[int]) -> int:
        now = time.monotonic()
        for slot in list(self._slots):
            self._read(slot, now)  # a worker that died is noticed by take(), as always
        self._assign(now)  # the room the results made: more work, before the server's turn
        count = 0
        for key in keys:
            if key not in self._done:
                break
            count += 1
        return count

    def take(self, keys: Sequence[int]) -> list[CleanOutcome]:
        started = time.monotonic()
        while not all(k in self._done for k in keys):
            now = time.monotonic()
            self._assign(now)
            busy = [s for s in self._slots if s.inflight]
            if not busy:
                if all(k in self._done for k in keys):  # planned here, without workers
                    break
                raise RuntimeError("clean planner: messages left but none handed out")
            deadlines = [max(s.clock, started) + self.seconds for s in busy] if self.seconds else []
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            self._wait(timeout, started)
        return [self._done.pop(k) for k in keys]

    def drop(self, keys: Sequence[int]) -> None:
        gone = set(keys)
        for key in gone:
            self._raws.pop(key, None)
            self._done.pop(key, None)
        self._todo = deque(k for k in self._todo if k not in gone)
        self._suspects = deque(k for k in self._suspects if k not in gone)
        in_flight = {k for s in self._slots for k in s.inflight}
        self._dropped |= gone & in_flight  # their results are thrown away when they come

    def close(self) -> None:
        for slot in self._slots:
            _stop(slot)
        self._slots.clear()
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        self._raws.clear()
        self._done.clear()

    # -- supervision ---------------------------------------------------------------------------

    def _start(self, warm: bool = False) -> _Slot:
        if self._wake is None:
            self._wake = os.pipe()
            for end in self._wake:
                os.set_blocking(end, False)
        worker = Worker(_serve(self.transform, warm), [s.worker.conn for s in self._slots])
        fd = worker.conn.fileno()
        os.set_blocking(fd, False)
        slot = _Slot(worker, fd, _Writer(fd), _Reader(fd, self._wake[1]))
        self._slots.append(slot)
        return slot

    def _assign(self, now: float) -> None:
        while len(self._slots) < self.jobs and (self._todo or self._suspects):
            try:
                self._start()
            except OSError as exc:  # no process to be had (EAGAIN, ENOMEM): do with fewer
                if not self._slots:
                    self._without_workers(exc)
                break
        for slot in self._slots:
            if self._suspects and slot.fresh and not slot.inflight:
                slot.alone = True
                self._hand(slot, [self._suspects.popleft()], now)
        ahead = max(CHUNK, AHEAD // max(1, len(self._slots)))
        while self._todo:
            free = [s for s in self._slots if not s.alone and len(s.inflight) < ahead]
            if not free:
                return
            slot = min(free, key=lambda s: len(s.inflight))
            count = min(CHUNK, ahead - len(slot.inflight), len(self._todo))
            self._hand(slot, [self._todo.popleft() for _ in range(count)], now)

    def _without_workers(self, exc: OSError) -> None:
        """No worker could be started: plan what is left here, except the messages suspected of
        bringing a worker down (a second try could bring down this process)."""
        reason = f"could not start a worker process ({exc.strerror or type(exc).__name__})"
        for key in self._suspects:
            self._done[key] = Planned(b"", False, skipped=reason, crashed=True)
            self._raws.pop(key, None)
        self._suspects.clear()
        inline = InlinePlanner(self.transform)
        keys = list(self._todo)
        self._todo.clear()
        outcomes = inline.take(inline.submit([self._raws.pop(k) for k in keys]))
        self._done.update(zip(keys, outcomes, strict=True))

    def _hand(self, slot: _Slot, keys: list[int], now: float) -> None:
        if not slot.inflight:
            slot.clock = now
        slot.fresh = False
        slot.inflight.extend(keys)
        slot.writer.frames.put(_frame([(k, self._raws[k]) for k in keys]))

    def _read(self, slot: _Slot, now: float) -> bool:
        """Take every result the slot's reader has; False once its socket has ended."""
        alive = not slot.reader.ended  # read first: once ended, every chunk is in the queue
        with contextlib.suppress(queue.Empty):
            while True:
                slot.inbox += slot.reader.chunks.get_nowait()
        for key, outcome in _unframe(slot.inbox):
            if not slot.inflight or slot.inflight.popleft() != key:
                raise RuntimeError(f"clean planner: a worker answered message {key} out of turn")
            self._raws.pop(key, None)
            if key in self._dropped:
                self._dropped.discard(key)
            else:
                self._done[key] = outcome
            slot.clock = now
            slot.alone = False
        return alive

    def _wait(self, timeout: float | None, started: float) -> None:
        assert self._wake is not None  # there are workers: _start made it
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake[0], selectors.EVENT_READ)
            for slot in self._slots:
                sel.register(slot.worker.sentinel, selectors.EVENT_READ)
            sel.select(timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake[0], 4096):
                pass
        now = time.monotonic()
        for slot in list(self._slots):
            alive = self._read(slot, now)
            if not alive or slot.worker.process.exitcode is not None:
                slot.reader.thread.join()  # it is ending: what it read before is still good
                self._read(slot, now)
                self._lose(slot, slot.worker.death())
        for slot in list(self._slots):
            if not slot.inflight or self.seconds is None:
                continue
            if now >= max(slot.clock, started) + self.seconds:
                alive = self._read(slot, now)  # a result that just arrived resets the clock
                if not alive:
                    self._lose(slot, slot.worker.death())
                elif slot.inflight and now >= max(slot.clock, started) + self.seconds:
                    self._lose(slot, overdue(self.seconds))

    def _lose(self, slot: _Slot, reason: str) -> None:
        """The worker is gone (or going): the message it was on is suspect, the rest goes back."""
        _stop(slot)
        self._slots.remove(slot)
        if not slot.inflight:
            return
        keys = list(slot.inflight)
        for k in keys:
            if k in self._dropped:
                self._dropped.discard(k)
                self._raws.pop(k, None)
        current, rest = keys[0], [k for k in keys[1:] if k in self._raws]
        if current not in self._raws:
            pass  # dropped: nobody waits for it
        elif current in self._suspected:  # the second worker it brought down
            self._raws.pop(current)
            self._done[current] = Planned(b"", False, skipped=reason, crashed=True)
        else:
            self._suspected.add(current)
            self._suspects.append(current)
        self._todo.extendleft(reversed(rest))


def _stop(slot: _Slot) -> None:
    """End the worker, then its threads (its socket has ended: the reader sees the end, the
    writer a refused write or its stop), then close the socket."""
    process = slot.worker.process
    if process.exitcode is None:
        process.kill()
    process.join()
    slot.writer.frames.put(None)
    slot.writer.thread.join()
    slot.reader.thread.join()
    slot.worker.stop()
