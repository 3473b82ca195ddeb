"""Transport security, end to end through the real command line: certificates verified (an
untrusted or wrongly named certificate fails closed, exit 22, before any password is sent),
STARTTLS stripping refused (exit 22, no LOGIN ever sent in the clear), `tls = "none"` refused for
non-loopback hosts (config error, exit 5, nothing contacted), TLS 1.2 the minimum.

(The in-process variants - untrusted certificate, STARTTLS not offered - are in test_imap_scan.py;
these run `scan`, `clean` and `watch` as subprocesses and check what reached the server.)
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot
from fakeimap import Fault, HostileImap
from sync import Running
from test_clean_imap import ROOT, guard_env, modseqs, seed, user_name, write_config

from guard.mail.config import parse_config
from guard.mail.exitcodes import ExitCode
from guard.mail.imap.connection import ssl_context

COMMANDS = (["scan", "--account", "t"], ["clean", "--account", "t"])


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A fresh mailbox per test and parameter (user_name alone cuts long parameter ids off)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return f"{user_name(request)[:40]}-{digest}"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def guard(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard", *argv],
        env=guard_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def assert_fails(proc: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("guard: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and PASSWORD not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def watch_fails_closed(expect: str) -> str:
    """`guard watch` against the broken transport: it retries (a certificate may be renewed) but
    never gets in; SIGTERM ends it with exit 0. Returns its stderr."""
    watch = Running(
        subprocess.Popen(
            [sys.executable, "-m", "guard", "watch", "--account", "t"],
            env=guard_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
    )
    try:
        watch.wait_for_err(expect)  # the refusal is reported; watch goes on retrying
        assert watch.proc.poll() is None, watch.err
    finally:
        code, _out, err = watch.stop(signal.SIGTERM, timeout=20)
    assert code == 0, err
    assert expect in err and "Traceback" not in err and PASSWORD not in err, err
    return err


# -- certificates ---------------------------------------------------------------------------------


def test_untrusted_certificate_fails_closed_everywhere(dovecot: Dovecot, user: str) -> None:
    seed(dovecot, user, [(1, "track")])
    before = modseqs(dovecot, user, ("INBOX",))
    write_config(dovecot, user, ca_file=None)  # Dovecot's self-signed certificate: not trusted
    for argv in COMMANDS:
        assert_fails(guard(*argv), ExitCode.TLS, "not trusted")
    watch_fails_closed("not trusted")
    assert modseqs(dovecot, user, ("INBOX",)) == before


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a certificate it signed for another name (mail.example.org)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "k.pem", "r.csr", "c.pem"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
             "-out", str(ca), "-days", "30", "-subj", "/CN=guard test CA")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=mail.example.org")  # fmt: skip
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=DNS:mail.example.org\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "30", "-extfile", str(ext))  # fmt: skip
    return {"ca": ca, "cert": cert, "key": key}


class TlsServer:
    """Implicit-TLS listener on 127.0.0.1 that greets like IMAP after the handshake (if any)."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.logins = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake\r\n")
                    data = tls.recv(1000)
                    if b"LOGIN" in data.upper():
                        self.logins += 1
            except (OSError, ssl.SSLError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    conn.close()

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def tls_server(ctx: ssl.SSLContext) -> Iterator[TlsServer]:
    server = TlsServer(ctx)
    try:
        yield server
    finally:
        server.close()


def test_certificate_for_another_host_fails_closed(
    dovecot: Dovecot, user: str, pki: dict[str, Path]
) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    with tls_server(ctx) as server:
        # the CA is trusted, but the certificate names mail.example.org, not 127.0.0.1
        write_config(dovecot, user, port=server.port, ca_file=str(pki["ca"]))
        for argv in COMMANDS:
            assert_fails(guard(*argv), ExitCode.TLS)
        assert server.logins == 0


def test_tls_below_1_2_is_refused(dovecot: Dovecot, user: str) -> None:
    """guard's context never goes below TLS 1.2, whatever the system's OpenSSL defaults; a server
    that speaks at most TLS 1.1 gets no connection (exit 22) and no password."""
    account = parse_config(
        {"accounts": {"t": {"host": "127.0.0.1", "username": "u", "password_env": "X"}}}
    ).account()
    ctx = ssl_context(account)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(dovecot.cert, dovecot.root / "tls" / "key.pem")
    with contextlib.suppress(ValueError, ssl.SSLError):
        server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        server_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with tls_server(server_ctx) as server:
        write_config(dovecot, user, port=server.port)
        assert_fails(guard("scan", "--account", "t"), ExitCode.TLS)
        assert server.logins == 0


# -- STARTTLS -------------------------------------------------------------------------------------


def _login_spy() -> Fault:
    # `echo` answers NO to a LOGIN: if guard ever sent one, `seen` counts it
    return Fault(b"LOGIN", "echo", times=0)


def test_starttls_stripping_is_refused(dovecot: Dovecot, user: str) -> None:
    """A man in the middle removes STARTTLS from the capabilities: guard stops (exit 22) and never
    sends the password in the clear."""
    seed(dovecot, user, [(1, "track")])
    before = modseqs(dovecot, user, ("INBOX",))
    spy = _login_spy()
    with HostileImap(dovecot.plain_port, faults=[spy], hide_caps=(b"STARTTLS",)) as mitm:
        write_config(dovecot, user, port=mitm.port, tls="starttls", ca_file=str(dovecot.cert))
        for argv in COMMANDS:
            assert_fails(guard(*argv), ExitCode.TLS, "STARTTLS")
        watch_fails_closed("STARTTLS")
    assert spy.seen == 0, "a LOGIN went over the unencrypted connection"
    assert modseqs(dovecot, user, ("INBOX",)) == before


def test_starttls_offered_then_refused_is_refused(dovecot: Dovecot, user: str) -> None:
    spy = _login_spy()
    faults = [Fault(b"STARTTLS", "no", times=0), spy]
    with HostileImap(dovecot.plain_port, faults=faults) as mitm:
        write_config(dovecot, user, port=mitm.port, tls="starttls", ca_file=str(dovecot.cert))
        for argv in COMMANDS:
            assert_fails(guard(*argv), ExitCode.TLS, "STARTTLS")
    assert spy.seen == 0


def test_starttls_through_an_honest_path_works(dovecot: Dovecot, user: str) -> None:
    seed(dovecot, user, [(1, "plain")])
    with HostileImap(dovecot.plain_port) as path:
        write_config(dovecot, user, port=path.port, tls="starttls", ca_file=str(dovecot.cert))
        proc = guard("scan", "--account", "t")
    assert proc.returncode == 0, proc.stderr


# -- tls = "none" ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["imap.example.org", "10.0.0.1", "192.0.2.7"])
def test_tls_none_refused_for_non_loopback_hosts(dovecot: Dovecot, user: str, host: str) -> None:
    write_config(dovecot, user, host=host, port=143, tls="none")
    for argv in [*COMMANDS, ["watch", "--account", "t"]]:
        assert_fails(guard(*argv), ExitCode.CONFIG, "loopback")


def test_tls_none_allowed_on_loopback(dovecot: Dovecot, user: str) -> None:
    write_config(dovecot, user, port=dovecot.plain_port, tls="none")
    proc = guard("scan", "--account", "t")
    assert proc.returncode == 0, proc.stderr


def _unused(_: Any) -> None:
    pass
