"""Promise: guard talks to no one but the configured IMAP server, and its secrets show up nowhere.

Sockets: every command runs in a fresh interpreter with an audit hook (`sys.addaudithook`,
inherited by forked workers) that records every socket.connect / sendto / sendmsg and every name
lookup (getaddrinfo, gethostbyname, gethostbyaddr, getnameinfo) in a file, from whichever process
makes it, and refuses anything but the configured server (127.0.0.1:<port>). Covered: `scan` of
files (workers too) and of IMAP (two connections, forked), `strip` of every sample, `clean` of a
Maildir and an mbox, `clean --account`, `watch` (stopped by SIGTERM), `rules suggest` (paths and
history), `explain` (paths and --uid), all over every sample message.

Secrets: after failures of every kind (wrong password, refused OAuth token, a server echoing the
login back, untrusted certificate, disconnect, timeout, SIGKILL mid-clean, config errors), the
password and the token appear in none of stdout, stderr, the `--log` file, the state database's
bytes (with its -wal/-shm), nor in a traceback formatted with every frame's locals.

`GUARD_LEAKS_REPORT=FILE` writes the figures as JSON (docs/reliability-imap.md).
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot
from fakeimap import Fault, HostileImap
from sync import Running, wait_until
from test_clean_imap import BACKUP, ROOT, guard_env, seed, user_name, write_config

from guard.mail.exitcodes import ExitCode

SAMPLES = ROOT / "samples"
TOKEN = "ya29.FAKE-oauth-TOKEN-guard-leak-check-4711"
FAKE_PASSWORD = "Wr0ng-Pa55word-guard-leak-check-0815"

# Records every contact from any process (workers are forked and inherit the hook); refuses
# anything but the allowed address. GUARD_AUDIT_EACH: run `strip` once per file given, in-process.
AUDIT = r"""
import io, json, os, sys
LOG = os.environ["GUARD_AUDIT_LOG"]
ALLOW = os.environ.get("GUARD_AUDIT_ALLOW", "")
CONTACT = ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
           "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
           "socket.getnameinfo")
def where(event, args):
    if event == "socket.getaddrinfo":
        return f"{args[0]}:{args[1]}"
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        addr = args[1] if len(args) > 1 else None
        if isinstance(addr, tuple) and len(addr) >= 2:
            return f"{addr[0]}:{addr[1]}"
        return repr(addr)
    return repr(args[0]) if args else ""
def hook(event, args):
    if event not in CONTACT:
        return
    dest = where(event, args)
    ok = bool(ALLOW) and dest == ALLOW and event in ("socket.connect", "socket.getaddrinfo")
    line = json.dumps({"pid": os.getpid(), "event": event, "dest": dest, "allowed": ok})
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (line + "\n").encode())
    os.close(fd)
    if not ok:
        raise RuntimeError(f"network access refused by the audit hook: {event} {dest}")
sys.addaudithook(hook)
if os.environ.get("GUARD_AUDIT_EACH") == "probe":  # the hook's self-test
    import socket
    try:
        socket.getaddrinfo("open.sendgrid.net", 443)
    except RuntimeError:
        sys.exit(0)
    sys.exit(1)
from guard.cli.main import main
if os.environ.get("GUARD_AUDIT_EACH") == "strip":
    codes = []
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            sys.stdin = io.TextIOWrapper(io.BytesIO(f.read()))
        sys.stdout = io.TextIOWrapper(io.BytesIO())
        codes.append(main(["strip"]))
    sys.stdout = sys.__stdout__
    sys.exit(max(codes))
sys.exit(main(sys.argv[1:]))
"""


def via_hostile(server: Dovecot, user: str, hostile: HostileImap, **kw: Any) -> Path:
    """The account config pointing at the hostile server (plain IMAP on loopback)."""
    return write_config(server, user, port=hostile.port, tls="none", **kw)


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A fresh mailbox per test and parameter (user_name alone cuts long parameter ids off)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return f"{user_name(request)[:40]}-{digest}"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def sample_messages() -> list[bytes]:
    """Every sample message: the .eml files, the mbox's messages and the Maildir's."""
    msgs = [p.read_bytes() for p in sorted((SAMPLES / "eml").glob("*.eml"))]
    for mbox in sorted((SAMPLES / "mbox").glob("*")):
        chunks = mbox.read_bytes().split(b"\nFrom ")
        for i, chunk in enumerate(chunks):
            body = chunk if i == 0 else b"From " + chunk
            msgs.append(body.split(b"\n", 1)[1])  # without the "From " line
    for sub in ("cur", "new"):
        msgs += [p.read_bytes() for p in sorted((SAMPLES / "maildir").glob(f"*/{sub}/*"))]
        msgs += [p.read_bytes() for p in sorted((SAMPLES / "maildir").glob(f"{sub}/*"))]
    return [m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for m in msgs]


class Audit:
    def __init__(self, tmp: Path, allow: str = "") -> None:
        self.log = tmp / "audit.jsonl"
        self.allow = allow
        self.runs = 0

    def env(self, **extra: str) -> dict[str, str]:
        return guard_env(GUARD_AUDIT_LOG=str(self.log), GUARD_AUDIT_ALLOW=self.allow, **extra)

    def run(
        self, *argv: str, timeout: float = 180, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        return subprocess.run(
            [sys.executable, "-c", AUDIT, *argv],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        self.runs += 1
        return subprocess.Popen(
            [sys.executable, "-c", AUDIT, *argv],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def report(name: str, data: dict[str, Any]) -> None:
    path = os.environ.get("GUARD_LEAKS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": name, **data}) + "\n")


def assert_ok(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert "network access refused" not in proc.stderr, (what, proc.stderr[-2000:])
    assert proc.returncode == 0, (what, proc.returncode, proc.stderr[-2000:])


# -- sockets ---------------------------------------------------------------------------------------


def test_the_audit_hook_sees_and_refuses_a_lookup(tmp_path: Path) -> None:
    audit = Audit(tmp_path, "127.0.0.1:1")
    proc = audit.run(GUARD_AUDIT_EACH="probe")
    assert proc.returncode == 0, proc.stderr
    assert audit.events() == [
        {"pid": audit.events()[0]["pid"], "event": "socket.getaddrinfo",
         "dest": "open.sendgrid.net:443", "allowed": False}
    ]  # fmt: skip


def test_offline_commands_contact_nothing(tmp_path: Path) -> None:
    audit = Audit(tmp_path)  # nothing is allowed
    eml = sorted(str(p) for p in (SAMPLES / "eml").glob("*.eml"))
    assert_ok(audit.run("scan", "--format", "json", "--jobs", "2", str(SAMPLES)), "scan")
    proc = audit.run(*eml, GUARD_AUDIT_EACH="strip")
    assert_ok(proc, "strip")
    assert_ok(audit.run("explain", str(SAMPLES)), "explain")
    assert_ok(audit.run("rules", "suggest", str(SAMPLES)), "rules suggest")
    # clean: a Maildir of every .eml, and a copy of the mbox
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, path in enumerate(eml):
        shutil.copy(path, maildir / "new" / f"{i}.guardtest:2,")
    assert_ok(audit.run("clean", str(maildir)), "clean Maildir")
    for mbox in (SAMPLES / "mbox").glob("*"):
        copy = tmp_path / mbox.name
        shutil.copy(mbox, copy)
        assert_ok(audit.run("clean", str(copy)), "clean mbox")
    events = audit.events()
    report("offline", {"runs": audit.runs, "messages": len(eml), "contacts": len(events)})
    assert events == [], events[:20]


def test_imap_commands_contact_only_the_server(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    msgs = sample_messages()
    assert len(msgs) >= 75
    # six copies: enough for the parallel scan path (forked workers, one connection each)
    dovecot.append(user, "INBOX", msgs * 6)
    write_config(dovecot, user, connections=2)
    allow = f"127.0.0.1:{dovecot.tls_port}"
    audit = Audit(tmp_path, allow)
    assert_ok(audit.run("scan", "--account", "t", "--format", "json"), "scan --account")
    assert_ok(audit.run("rules", "suggest"), "rules suggest (history)")
    assert_ok(audit.run("explain", "--account", "t", "--uid", "1"), "explain --uid")
    assert_ok(audit.run("clean", "--account", "t", "--dry-run"), "clean --dry-run")
    assert_ok(audit.run("clean", "--account", "t"), "clean --account")
    watch = Running(audit.popen("watch", "--account", "t"))
    try:
        # watch has connected (its own connection in the audit), then new mail arrives and watch
        # cleans it: the wait is for that cleaned copy, not for a time
        wait_until(
            lambda: any(
                e["pid"] == watch.proc.pid and e["event"] == "socket.connect"
                for e in audit.events()
            ),
            "guard watch connected",
        )
        c: Any = dovecot.client(user, tls=False)
        try:
            c.append("INBOX", msgs[0])
        finally:
            c.logout()
        wait_until(lambda: _all_cleaned(dovecot, user, msgs[0]), "watch cleaned the new mail")
    finally:
        code, _out, err = watch.stop(signal.SIGTERM, timeout=30)
    assert code == 0 and "network access refused" not in err, err[-2000:]
    events = audit.events()
    outside = [e for e in events if not e["allowed"]]
    connects = [e for e in events if e["event"] == "socket.connect"]
    report(
        "imap",
        {
            "runs": audit.runs,
            "messages": len(msgs) * 6,
            "contacts": len(events),
            "connects": len(connects),
            "outside": len(outside),
            "processes": len({e["pid"] for e in events}),
        },
    )
    assert outside == [], outside[:20]
    assert connects, "the audit saw no connection at all: the hook is not working"
    assert len({e["pid"] for e in connects}) >= 2, "the forked scan workers were not audited"


def _all_cleaned(server: Dovecot, user: str, raw: bytes) -> bool:
    """No copy of `raw` (by Message-ID) in INBOX is left without guard's cleaned keyword."""
    mid = email.message_from_bytes(raw)["Message-ID"]
    c: Any = server.client(user, tls=False)
    try:
        c.select_folder("INBOX", readonly=True)
        return not c.search(["HEADER", "Message-ID", mid, "NOT", "KEYWORD", "$GuardCleaned"])
    finally:
        c.logout()


# -- secrets ---------------------------------------------------------------------------------------


def _db_bytes() -> bytes:
    state = Path(os.environ["XDG_DATA_HOME"]) / "guard" / "state.sqlite3"
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(state) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def _leaks(texts: list[str | bytes], secrets: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        for text in texts:
            blob = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
            if secret.encode() in blob:
                found.append(secret)
    return found


FAILURES = [
    # (id, config changes, proxy, extra env, expected exit code)
    ("wrong-password", {"password_env": "GUARD_LEAK_PW"}, None, {}, ExitCode.AUTH),
    ("oauth-refused", {"password_env": None, "oauth2_token_command": f"echo {TOKEN}"}, None, {},
     ExitCode.AUTH),
    ("password-echoed-by-server", {}, [Fault(b"LOGIN", "echo")], {}, ExitCode.AUTH),
    ("token-echoed-by-server", {"password_env": None, "oauth2_token_command": f"echo {TOKEN}"},
     [Fault(b"AUTHENTICATE", "echo")], {}, ExitCode.AUTH),
    ("untrusted-certificate", {"ca_file": None}, None, {}, ExitCode.TLS),
    ("disconnect", {}, [Fault(b"FETCH", "cut-mid", contains=b"BODY.PEEK[]")], {},
     ExitCode.SERVER),
    ("timeout", {}, [Fault(b"FETCH", "stall-mid", contains=b"BODY.PEEK[]")], {},
     ExitCode.TIMEOUT),
    ("crash-after-append", {}, None, {"GUARD_TEST_CRASH_AT": "after-append"}, -signal.SIGKILL),
    ("config-error", {"tls": "bogus", "password": FAKE_PASSWORD, "password_env": None}, None, {},
     ExitCode.CONFIG),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "changes", "faults", "env", "expected"), FAILURES, ids=[f[0] for f in FAILURES]
)
def test_no_secret_in_any_output(
    dovecot: Dovecot,
    user: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    changes: dict[str, Any],
    faults: list[Fault] | None,
    env: dict[str, str],
    expected: int,
) -> None:
    secrets = [PASSWORD, FAKE_PASSWORD, TOKEN]
    monkeypatch.setenv("GUARD_LEAK_PW", FAKE_PASSWORD)
    seed(dovecot, user, [(i, "track") for i in range(3)])
    log = tmp_path / "guard.log"
    server = HostileImap(dovecot.plain_port, faults=faults) if faults else None
    # a short timeout only where a stall is the fault; elsewhere (a refused login takes Dovecot's
    # 1 s auth-failure delay) a loaded machine must not turn the expected error into a timeout
    timeout = 2 if expected == ExitCode.TIMEOUT else 30
    try:
        if server is not None:
            via_hostile(dovecot, user, server, timeout=timeout, **changes)
        else:
            write_config(dovecot, user, timeout=timeout, **changes)
        outputs: list[str | bytes] = []
        codes = []
        for argv in (
            ["clean", "--account", "t", "-v", "--log", str(log)],
            ["scan", "--account", "t", "--format", "json"],
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "guard", *argv],
                env=guard_env(**env),
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            codes.append(proc.returncode)
            outputs += [proc.stdout, proc.stderr]
            assert "Traceback" not in proc.stderr, proc.stderr
    finally:
        if server is not None:
            server.close()
    assert codes[0] == expected, (codes, outputs)
    if log.exists():
        outputs.append(log.read_bytes())
    outputs.append(_db_bytes())
    found = _leaks(outputs, secrets)
    report("secrets", {"case": name, "codes": codes, "found": len(found)})
    assert found == [], (name, found)


def test_no_secret_in_tracebacks_with_locals(dovecot: Dovecot, user: str) -> None:
    """The exceptions guard raises for refused logins carry no secret, even when a traceback is
    printed with every frame's local variables (as some crash reporters do)."""
    from guard.mail.config import load_config
    from guard.mail.imap.connection import ImapError, connect
    from guard.mail.secrets import get_credentials

    cases: list[tuple[dict[str, Any], list[Fault] | None]] = [
        ({"password_env": "GUARD_LEAK_PW"}, None),
        ({"password_env": None, "oauth2_token_command": f"echo {TOKEN}"}, None),
        ({}, [Fault(b"LOGIN", "echo")]),
        ({"password_env": None, "oauth2_token_command": f"echo {TOKEN}"},
         [Fault(b"AUTHENTICATE", "echo")]),
    ]  # fmt: skip
    os.environ["GUARD_LEAK_PW"] = FAKE_PASSWORD
    try:
        for changes, faults in cases:
            server = HostileImap(dovecot.plain_port, faults=faults) if faults else None
            try:
                if server is not None:  # refused logins, no stall: a patient timeout
                    via_hostile(dovecot, user, server, timeout=30, **changes)
                else:
                    write_config(dovecot, user, timeout=30, **changes)
                account = load_config().account("t")
                with pytest.raises(ImapError) as info:
                    connect(account, get_credentials(account))
            finally:
                if server is not None:
                    server.close()
            te = traceback.TracebackException.from_exception(info.value, capture_locals=True)
            # guard's frames only (this test's own locals hold the token, of course)
            te.stack = traceback.StackSummary.from_list(
                [f for f in te.stack if f"{os.sep}guard{os.sep}" in f.filename]
            )
            assert te.stack, "no guard frame in the traceback"
            text = "".join(te.format())
            assert _leaks([text], [PASSWORD, FAKE_PASSWORD, TOKEN]) == [], text
    finally:
        os.environ.pop("GUARD_LEAK_PW", None)


def _unused(_: Iterator[None]) -> None:
    pass


__all__ = ["BACKUP"]
