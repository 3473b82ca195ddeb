"""A scripted, deliberately misbehaving IMAP server on 127.0.0.1 for the hardening tests.

`HostileImap` speaks IMAP to guard on a loopback port. Behind it sits a real mailbox (Dovecot's
plain port, tests/dovecot.py) so that what the client *did* to the mail can be counted afterwards;
the fault script decides what guard hears. It parses just enough IMAP (lines and literals, both
ways) to misbehave at a precise moment:

- `greeting="silent"` never greets; `greeting="garbage"` greets with binary garbage;
- a `Fault` fires on the n-th client command whose verb (UID-aware: `UID FETCH` is FETCH) is
  `verb` (and whose line contains `contains`), `times` times (0: every time), with an `action`:

  ========================  =====================================================================
  `garbage`                 the server never sees the command; guard gets binary garbage lines
  `huge-literal`            guard gets a FETCH response announcing a {2000000000} literal, a few
                            bytes of it, then the connection closes
  `cut`                     the connection closes before the server sees the command
  `cut-mid-upload`          (APPEND) the server gets the command line and half of the message,
                            then both connections close: the server discards the APPEND
  `cut-after`               the server executes the command, guard never hears the answer and the
                            connection closes
  `stall-after`             the server executes the command, guard never hears anything again
  `cut-mid` / `stall-mid`   the server executes the command; its answer reaches guard up to the
                            middle of the first literal (or the first untagged line), then the
                            connection closes / goes silent
  `no`                      guard gets `tag NO [CANNOT] ...` (the server never sees the command)
  `bad-from-next`           the command goes through; every later command of that connection gets
                            `tag BAD` without reaching the server
  `echo`                    (LOGIN, AUTHENTICATE) `tag NO` that repeats what guard sent - the
                            password, or the decoded XOAUTH2 string with its token
  ========================  =====================================================================

- `hide_caps` drops capabilities (e.g. STARTTLS: a downgrade attack) from every CAPABILITY list;
- `uidvalidity="wrong"` rewrites every UIDVALIDITY (also in APPENDUID/COPYUID/STATUS) to another
  constant; `"changing"` to a different value on every connection.

Everything stops by itself: sockets have timeouts where they wait for the test's peer, and
`close()` (also the context manager's exit) releases every stalled thread.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType

HOST = "127.0.0.1"
HUGE = 2_000_000_000
GARBAGE = b"\x00\xff\xfe\x01 )))((( {{\x7f}} \xc3\x28 not IMAP at all \x1b[2J\r\n"

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r?\n$")
_UIDVALIDITY = re.compile(rb"(UIDVALIDITY|APPENDUID|COPYUID)( )(\d+)", re.I)

ACTIONS = (
    "garbage",
    "huge-literal",
    "cut",
    "cut-mid-upload",
    "cut-after",
    "stall-after",
    "cut-mid",
    "stall-mid",
    "no",
    "bad-from-next",
    "echo",
)


@dataclass
class Fault:
    verb: bytes
    action: str
    nth: int = 1  # fire from the n-th matching command on (counted over all connections)
    times: int = 1  # how many times it fires; 0 = every time from the n-th on
    contains: bytes = b""  # and only for commands whose line contains this (case-insensitive)
    fired: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        self.verb = self.verb.upper()

    def matches(self, verb: bytes, line: bytes) -> bool:
        if verb != self.verb or self.contains.upper() not in line.upper():
            return False
        self.seen += 1
        if self.seen < self.nth or (self.times and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class _Stream:
    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.buf = b""

    def _fill(self) -> bool:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            self.buf += data
            return bool(data)
        return False

    def line(self) -> bytes | None:
        while b"\n" not in self.buf:
            if not self._fill():
                return None
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _verb(line: bytes) -> bytes:
    words = line.split()
    if len(words) >= 3 and words[1].upper() == b"UID":
        return words[2].upper()
    return words[1].upper() if len(words) >= 2 else b""


@dataclass
class _Conn:
    index: int
    client: socket.socket
    upstream: socket.socket | None
    stop: threading.Event = field(default_factory=threading.Event)
    mute: threading.Event = field(default_factory=threading.Event)  # guard hears nothing more
    mid: str | None = None  # "cut" / "stall": what to do inside the next response
    bad: bool = False
    raw: threading.Event = field(default_factory=threading.Event)  # after STARTTLS: bytes only
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, data: bytes) -> None:
        with self.lock:
            if not self.mute.is_set():
                self.client.sendall(data)


class HostileImap:
    """See the module docstring. `port` is where guard connects (plain IMAP: tls = "none")."""

    def __init__(
        self,
        target_port: int | None,
        *,
        greeting: str = "normal",
        faults: list[Fault] | None = None,
        uidvalidity: str | None = None,
        hide_caps: tuple[bytes, ...] = (),
    ) -> None:
        if greeting not in ("normal", "silent", "garbage"):
            raise ValueError(greeting)
        if uidvalidity not in (None, "wrong", "changing"):
            raise ValueError(uidvalidity)
        self.target = target_port
        self.greeting = greeting
        self.faults = faults or []
        self.uidvalidity = uidvalidity
        self.hide_caps = [c.upper() for c in hide_caps]
        self.connections = 0
        self.events: list[str] = []  # what fired, for the test's report
        self._fault_lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[_Conn] = []
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(50)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> HostileImap:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        for conn in list(self._conns):
            self._kill(conn)
        self._thread.join(timeout=5)

    @property
    def fired(self) -> int:
        return sum(f.fired for f in self.faults)

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _kill(conn: _Conn) -> None:
        conn.stop.set()
        for s in (conn.client, conn.upstream):
            if s is None:
                continue
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(0.5)
            self.connections += 1
            upstream: socket.socket | None = None
            if self.greeting == "normal" and self.target is not None:
                try:
                    upstream = socket.create_connection((HOST, self.target), timeout=10)
                    upstream.settimeout(0.5)
                except OSError:
                    client.close()
                    continue
            conn = _Conn(self.connections, client, upstream)
            self._conns.append(conn)
            if self.greeting == "silent":
                continue  # the socket stays open and quiet until close()
            if self.greeting == "garbage":
                with contextlib.suppress(OSError):
                    client.sendall(GARBAGE * 3)
                continue
            threading.Thread(target=self._down, args=(conn,), daemon=True).start()
            threading.Thread(target=self._up, args=(conn,), daemon=True).start()

    def _fault_for(self, verb: bytes, line: bytes) -> Fault | None:
        with self._fault_lock:
            for fault in self.faults:
                if fault.matches(verb, line):
                    self.events.append(f"{fault.action} on {verb.decode()}")
                    return fault
        return None

    def _rewrite(self, conn: _Conn, line: bytes) -> bytes:
        if self.hide_caps and b"CAPABILITY" in line.upper():
            for cap in self.hide_caps:
                line = re.sub(rb"(?i) " + re.escape(cap) + rb"(?=[ \]\r\n])", b"", line)
        if self.uidvalidity is None:
            return line
        offset = 1000 if self.uidvalidity == "wrong" else 1000 * conn.index

        def sub(m: re.Match[bytes]) -> bytes:
            return m.group(1) + m.group(2) + str(int(m.group(3)) + offset).encode()

        return _UIDVALIDITY.sub(sub, line)

    # -- guard -> server -----------------------------------------------------------------------

    def _up(self, conn: _Conn) -> None:
        assert conn.upstream is not None
        stream = _Stream(conn.client, conn.stop)
        try:
            while not conn.stop.is_set():
                line = stream.line()
                if line is None:
                    break
                verb, tag = _verb(line), line.split(b" ", 1)[0]
                if conn.bad:
                    self._swallow(stream, line)
                    conn.send(tag + b" BAD [CLIENTBUG] no command is accepted here\r\n")
                    continue
                fault = self._fault_for(verb, line)
                action = fault.action if fault else None
                if action == "garbage":
                    conn.send(GARBAGE + b"* " + GARBAGE + tag + b" " + GARBAGE)
                    continue
                if action == "huge-literal":
                    conn.send(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % HUGE + b"x" * 4096)
                    conn.stop.wait(0.3)
                    break
                if action == "cut":
                    break
                if action == "echo":
                    said = line.strip()
                    if verb == b"AUTHENTICATE":
                        conn.send(b"+ \r\n")
                        answer = stream.line() or b""
                        with contextlib.suppress(ValueError):
                            said = base64.b64decode(answer.strip()).replace(b"\x01", b" ")
                    conn.send(tag + b" NO [AUTHENTICATIONFAILED] you said: " + said + b"\r\n")
                    continue
                if action == "no":
                    conn.send(tag + b" NO [CANNOT] refused by the hostile test server\r\n")
                    self._swallow(stream, line)
                    continue
                # forwarded, piece by piece (the server sends its own continuations)
                while True:
                    m = _LITERAL.search(line)
                    if m is None:  # the command's last piece
                        if action in ("cut-after", "stall-after"):
                            conn.mute.set()
                        if action in ("cut-mid", "stall-mid"):
                            conn.mid = action.split("-")[0]
                    conn.upstream.sendall(line)
                    if m is None:
                        break
                    data = stream.exact(int(m.group(1)))
                    if data is None:
                        return
                    if action == "cut-mid-upload":
                        conn.upstream.sendall(data[: len(data) // 2])
                        conn.stop.wait(0.3)
                        self._kill(conn)
                        return
                    conn.upstream.sendall(data)
                    nxt = stream.line()
                    if nxt is None:
                        return
                    line = nxt
                if verb == b"STARTTLS" and action is None:
                    conn.raw.set()
                    self._relay(conn, stream, conn.upstream)
                    return
                if action == "bad-from-next":
                    conn.bad = True
                if action == "cut-after":
                    conn.stop.wait(0.5)  # let the server execute it
                    break
                if action == "stall-after":
                    conn.stop.wait()  # until close()
                    return
        except OSError:
            pass
        self._kill(conn)

    def _relay(self, conn: _Conn, stream: _Stream, dst: socket.socket) -> None:
        """Bytes as they come (a TLS session after STARTTLS: nothing to parse any more)."""
        try:
            if stream.buf:
                dst.sendall(stream.buf)
                stream.buf = b""
            while stream._fill():
                dst.sendall(stream.buf)
                stream.buf = b""
        except OSError:
            pass
        self._kill(conn)

    def _swallow(self, stream: _Stream, line: bytes) -> None:
        """Read (and drop) a command's LITERAL+ data; a synchronising literal was never invited
        (the answer already went out, or goes out now), so the client sends no data for it."""
        m = _LITERAL.search(line)
        while m and m.group(2):
            if stream.exact(int(m.group(1))) is None:
                return
            nxt = stream.line()
            if nxt is None:
                return
            m = _LITERAL.search(nxt)

    # -- server -> guard -----------------------------------------------------------------------

    def _down(self, conn: _Conn) -> None:
        assert conn.upstream is not None
        stream = _Stream(conn.upstream, conn.stop)
        try:
            while not conn.stop.is_set():
                line = stream.line()
                if line is None:
                    break
                line = self._rewrite(conn, line)
                m = _LITERAL.search(line)
                if conn.mid is not None and not line.startswith(b"+"):
                    mode, conn.mid = conn.mid, None
                    if m:
                        data = stream.exact(int(m.group(1))) or b""
                        conn.send(line + data[: len(data) // 2])
                    else:
                        conn.send(line[: max(1, len(line) // 2)])
                    if mode == "stall":
                        conn.mute.set()
                        conn.stop.wait()
                        return
                    break
                conn.send(line)
                if conn.raw.is_set() and not line.startswith(b"*"):
                    self._relay(conn, stream, conn.client)
                    return
                if m:
                    body = stream.exact(int(m.group(1)))
                    if body is None:
                        break
                    conn.send(body)
        except OSError:
            pass
        self._kill(conn)


__all__ = ["ACTIONS", "GARBAGE", "HUGE", "Fault", "HostileImap"]
