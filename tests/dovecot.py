"""A real Dovecot IMAP server for tests and benchmarks, in a fresh temp dir on 127.0.0.1.

- TLS with a self-signed certificate (IP SAN 127.0.0.1) on `tls_port`, plain IMAP on `plain_port`.
- Any username logs in with PASSWORD and gets its own Maildir, so tests isolate themselves by user.
- Writes a Dovecot 2.3 or 2.4 config depending on `dovecot --version` and checks it with
  `doveconf -n` before starting. As root the whole tree runs as nobody.
- Missing dovecot: tests skip with the reason, except under CI=true, where they fail.

Used by tests/conftest.py (fixture `dovecot`) and bench/bench_imap.py (`Dovecot.start()`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PASSWORD = "testpass"
T = TypeVar("T")
HOST = "127.0.0.1"


def wait_ready(
    proc: subprocess.Popen[bytes] | None,
    probes: Iterable[tuple[int, str | None]],
    log_tail: Any,
    timeout: float = 15.0,
) -> None:
    """Until every (port, greeting) answers on HOST: a connection, and the greeting when one is
    given; fails with the log's tail if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}: {log_tail()}")
        try:
            for port, greeting in probes:
                with socket.create_connection((HOST, port), timeout=1) as s:
                    if greeting is not None:
                        s.settimeout(2)
                        last = s.recv(200).decode("ascii", "replace")
                        if not last.startswith(greeting):
                            raise OSError(last)
            return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.03)
    raise RuntimeError(f"dovecot did not become ready ({last}): {log_tail()}")


class DovecotUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def on_free_ports(start: Callable[[], T], attempts: int = 3) -> T:
    """`start()` again (with new ports) when the server could not bind: a port that was free when
    `_free_port` asked can be taken before Dovecot binds it, by another process or by another
    pytest-xdist worker starting its own server at the same moment."""
    for attempt in range(attempts):
        try:
            return start()
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def find_binaries() -> tuple[str, str]:
    dovecot = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
    doveconf = shutil.which("doveconf") or (
        "/usr/bin/doveconf" if os.path.exists("/usr/bin/doveconf") else None
    )
    if not dovecot or not doveconf:
        raise DovecotUnavailable(
            "dovecot is not installed (apt-get install -y dovecot-imapd): IMAP tests need a real "
            "server"
        )
    return dovecot, doveconf


def dovecot_version(dovecot: str) -> tuple[int, int]:
    out = subprocess.run(
        [dovecot, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()
    major, minor = out.split()[0].split(".")[:2]
    return int(major), int(minor)


def _config_23(d: Path, user: str, group: str, plain: int, tls: int) -> str:
    return f"""
protocols = imap
listen = {HOST}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log/dovecot.log
info_log_path = {d}/log/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
disable_plaintext_auth = no
auth_failure_delay = 1 secs
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = home={d}/mail/%u
}}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_max_userip_connections = 500
mail_plugins =
ssl = yes
ssl_cert = <{d}/tls/cert.pem
ssl_key = <{d}/tls/key.pem
protocol imap {{
  mail_max_userip_connections = 500
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {plain}
  }}
  inet_listener imaps {{
    port = {tls}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    user = {user}
  }}
  unix_listener stats-writer {{
    user = {user}
  }}
}}
"""


def _config_24(d: Path, user: str, group: str, plain: int, tls: int) -> str:
    # From Dovecot's 2.3 -> 2.4 upgrade guide; checked with doveconf -n before starting.
    return f"""dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
protocols = imap
listen = {HOST}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
auth_allow_cleartext = yes
passdb static {{
  password = {PASSWORD}
}}
userdb static {{
  fields {{
    home = {d}/mail/%{{user}}
  }}
}}
mail_driver = maildir
mail_path = ~/Maildir
mailbox_list_layout = fs
mail_max_userip_connections = 500
ssl = yes
ssl_server_cert_file = {d}/tls/cert.pem
ssl_server_key_file = {d}/tls/key.pem
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {plain}
  }}
  inet_listener imaps {{
    port = {tls}
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    root: Path
    plain_port: int
    tls_port: int
    cert: Path
    proc: subprocess.Popen[bytes] | None = None
    version: tuple[int, int] = (0, 0)
    _users: set[str] = field(default_factory=set)
    _argv: list[str] = field(default_factory=list)
    _popen_kwargs: dict[str, object] = field(default_factory=dict)

    host = HOST
    password = PASSWORD

    @classmethod
    def start(cls) -> Dovecot:
        return on_free_ports(cls._start_once)

    @classmethod
    def _start_once(cls) -> Dovecot:
        dovecot, doveconf = find_binaries()
        version = dovecot_version(dovecot)
        root = Path(tempfile.mkdtemp(prefix="guard-dovecot-"))
        for sub in ("run", "state", "log", "mail", "tls"):
            (root / sub).mkdir()
        cert, key = root / "tls" / "cert.pem", root / "tls" / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-keyout", str(key), "-out", str(cert), "-days", "3650",
                "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        as_root = os.geteuid() == 0
        if as_root:
            user, group = "nobody", "nogroup"
            import grp
            import pwd

            try:
                grp.getgrnam(group)
            except KeyError:
                group = "nobody"
            uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
        else:
            import grp
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
        plain, tls = _free_port(), _free_port()
        while tls == plain:
            tls = _free_port()
        make = _config_24 if version >= (2, 4) else _config_23
        conf = root / "dovecot.conf"
        conf.write_text(make(root, user, group, plain, tls))
        os.chmod(root, 0o755)
        if as_root:
            for dirpath, _dirs, files in os.walk(root):
                os.chown(dirpath, uid, gid)
                for f in files:
                    os.chown(os.path.join(dirpath, f), uid, gid)
        check = subprocess.run(
            [doveconf, "-c", str(conf), "-n"], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(
                f"dovecot {version[0]}.{version[1]} rejects the test config: "
                f"{' '.join(check.stderr.split())[:500]}"
            )
        kwargs: dict[str, object] = {}
        if as_root:
            kwargs = {"user": user, "group": group}
        proc = subprocess.Popen(  # stdio away from pipes: the master keeps them open
            [dovecot, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,  # type: ignore[call-overload]
        )
        server = cls(
            root=root,
            plain_port=plain,
            tls_port=tls,
            cert=cert,
            proc=proc,
            version=version,
            _argv=[dovecot, "-F", "-c", str(conf)],
            _popen_kwargs=kwargs,
        )
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float = 15.0) -> None:
        probes = [(self.plain_port, "* OK"), (self.tls_port, None)]
        wait_ready(self.proc, probes, self.log_tail, timeout)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the master (clients see their connections closed), stay down `down_for` seconds,
        start it again on the same ports with the same mail. Client connections are dropped (imap
        processes that outlive their master are killed, as a reboot would)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session's leftover imap processes
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        time.sleep(down_for)
        self.proc = subprocess.Popen(  # stdio away from pipes: the master keeps them open
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **self._popen_kwargs,  # type: ignore[call-overload]
        )
        self._wait_ready()

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = (self.root / "log" / "dovecot.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    # -- client helpers (tests and the benchmark) --------------------------------------------

    def ssl_context(self) -> object:
        import ssl

        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cafile=str(self.cert))
        return ctx

    def client(self, user: str, *, tls: bool = True) -> object:
        from imapclient import IMAPClient

        if tls:
            c = IMAPClient(
                HOST, port=self.tls_port, ssl=True, ssl_context=self.ssl_context(), timeout=30
            )
        else:
            c = IMAPClient(HOST, port=self.plain_port, ssl=False, timeout=30)
        c.login(user, PASSWORD)
        return c

    def append(
        self,
        user: str,
        folder: str,
        messages: Iterable[bytes],
        *,
        batch: int = 100,
        flags: tuple[bytes, ...] = (),
    ) -> list[int]:
        """MULTIAPPEND `messages` to `folder` (created when missing); returns the new UIDs."""
        c = self.client(user, tls=False)
        try:
            if not c.folder_exists(folder):  # type: ignore[attr-defined]
                c.create_folder(folder)  # type: ignore[attr-defined]
            uids: list[int] = []
            chunk: list[bytes] = []

            def flush() -> None:
                if not chunk:
                    return
                msgs = [{"msg": m, "flags": flags} for m in chunk] if flags else list(chunk)
                _typ, data = c.multiappend(folder, msgs)  # type: ignore[attr-defined]
                text = data[0].decode() if data and isinstance(data[0], bytes) else str(data)
                if "APPENDUID" in text:
                    uidset = text.split("APPENDUID", 1)[1].split("]")[0].split()[1]
                    for piece in uidset.split(","):
                        lo, _, hi = piece.partition(":")
                        uids.extend(range(int(lo), int(hi or lo) + 1))
                chunk.clear()

            for m in messages:
                chunk.append(m)
                if len(chunk) >= batch:
                    flush()
            flush()
            return uids
        finally:
            c.logout()  # type: ignore[attr-defined]


_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r?\n$")


class _Stream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self.buf += data
        return bool(data)

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


class ImapProxy:
    """A TCP proxy on 127.0.0.1 in front of Dovecot's plain port that understands just enough
    IMAP (lines and literals) to misbehave on purpose:

    - `hide_caps`: drop these capabilities (e.g. b"MOVE", b"UIDPLUS") from every CAPABILITY list;
    - `no_keywords`: drop `\\*` from PERMANENTFLAGS (a server that keeps no custom keywords);
    - `refuse_append`: answer APPEND with this tagged NO text (the server never sees it);
    - `cut`: a command verb (b"APPEND", b"MOVE", ...): the first time a client sends it, close the
      connection - before the server sees it, or with `cut_after` right after the server got the
      whole command (it executes; the client never hears the answer).
    """

    def __init__(
        self,
        target_port: int,
        *,
        hide_caps: Iterable[bytes] = (),
        no_keywords: bool = False,
        refuse_append: bytes | None = None,
        cut: bytes | None = None,
        cut_after: bool = False,
    ) -> None:
        self.target = target_port
        self.hide_caps = [c.upper() for c in hide_caps]
        self.no_keywords = no_keywords
        self.refuse_append = refuse_append
        self.cut = cut.upper() if cut else None
        self.cut_after = cut_after
        self.cuts = 0
        self.refused = 0
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(20)
        self.port = int(self.sock.getsockname()[1])
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.target), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._socks += [client, upstream]
            mute = threading.Event()
            threading.Thread(target=self._down, args=(upstream, client, mute), daemon=True).start()
            threading.Thread(target=self._up, args=(client, upstream, mute), daemon=True).start()

    @staticmethod
    def _kill(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _up(self, client: socket.socket, upstream: socket.socket, mute: threading.Event) -> None:
        """client -> server, command by command."""
        stream = _Stream(client)
        start = True
        verb, tag = b"", b""
        try:
            while True:
                line = stream.line()
                if line is None:
                    break
                m = _LITERAL.search(line)
                if start:
                    verb, tag = _verb(line), line.split(b" ", 1)[0]
                    if self.cut is not None and verb == self.cut and not self.cut_after:
                        self.cut = None
                        self.cuts += 1
                        self._kill(client, upstream)
                        return
                    if self.refuse_append is not None and verb == b"APPEND":
                        while m and m.group(2):  # LITERAL+: the data follows at once
                            if stream.exact(int(m.group(1))) is None:
                                return
                            line = stream.line()
                            if line is None:
                                return
                            m = _LITERAL.search(line)
                        self.refused += 1
                        client.sendall(tag + b" NO " + self.refuse_append + b"\r\n")
                        continue
                upstream.sendall(line)
                if m:
                    data = stream.exact(int(m.group(1)))
                    if data is None:
                        break
                    upstream.sendall(data)
                    start = False
                    continue
                if self.cut is not None and verb == self.cut and self.cut_after:
                    mute.set()  # the client never hears the answer
                start = True
                if self.cut is not None and verb == self.cut and self.cut_after:
                    self.cut = None
                    self.cuts += 1
                    time.sleep(0.5)  # let the server execute it
                    self._kill(client, upstream)
                    return
        except OSError:
            pass
        self._kill(client, upstream)

    def _down(self, upstream: socket.socket, client: socket.socket, mute: threading.Event) -> None:
        """server -> client, rewriting capability and PERMANENTFLAGS lines."""
        stream = _Stream(upstream)
        try:
            while True:
                line = stream.line()
                if line is None:
                    break
                if self.hide_caps and b"CAPABILITY" in line.upper():
                    for cap in self.hide_caps:
                        line = re.sub(rb"(?i) " + re.escape(cap) + rb"(?=[ \]\r\n])", b"", line)
                if self.no_keywords and b"PERMANENTFLAGS" in line:
                    line = line.replace(b" \\*", b"").replace(b"\\*", b"")
                if not mute.is_set():
                    client.sendall(line)
                m = _LITERAL.search(line)
                if m:
                    data = stream.exact(int(m.group(1)))
                    if data is None:
                        break
                    if not mute.is_set():
                        client.sendall(data)
        except OSError:
            pass
        self._kill(client, upstream)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self._kill(*self._socks)


def start_or_skip() -> Dovecot:
    """Start a server, or skip the test (fail under CI=true) when dovecot is missing."""
    import pytest

    try:
        return Dovecot.start()
    except DovecotUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))


def dovecot_fixture() -> Iterator[Dovecot]:
    server = start_or_skip()
    try:
        yield server
    finally:
        server.stop()


try:  # the fixture, when imported by a conftest
    import pytest as _pytest

    dovecot = _pytest.fixture(scope="session", name="dovecot")(dovecot_fixture)
except ImportError:  # the benchmark runs without pytest
    pass


def write_config(server: Dovecot, user: str, **kw: Any) -> Path:
    """The tests' accounts config ([accounts.t] on this server, password from
    $GUARD_TEST_PASSWORD) at $GUARD_CONFIG; keyword arguments add or override settings (None
    drops one)."""
    path = Path(os.environ["GUARD_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    table: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.tls_port,
        "username": user,
        "ca_file": str(server.cert),
        "password_env": "GUARD_TEST_PASSWORD",
        "timeout": 5,
        **kw,
    }
    lines = ["[accounts.t]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items() if v is not None]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path
