"""IMAP scanning against a real Dovecot (tests/dovecot.py): findings, read-only, state, errors."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot, write_config

from guard.cli.args import add_report_arguments, add_scan_arguments
from guard.cli.report import run_report
from guard.cli.scan import run_imap_scan
from guard.engine.model import MessageResult
from guard.engine.rules_load import load_ruleset
from guard.mail.config import parse_config
from guard.mail.exitcodes import ExitCode
from guard.mail.imap import scan as imapscan
from guard.mail.imap.scan import FolderStats, scan_account
from guard.mail.scan import scan_raw
from guard.mail.store import Store

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "eml"

PIXEL_HTML = (
    "<html><body><p>Hello {n}</p>"
    '<img src="https://open.sendgrid.net/wf/open?upn=abc{n}" width="1" height="1" alt="">'
    '<a href="https://click.example-esp.com/c?u=https%3A%2F%2Fshop.example.com%2F{n}">shop</a>'
    '<a href="https://shop.example.com/sale?utm_source=news&utm_campaign=c{n}">sale</a>'
    '<img src="https://cdn.shop.example.com/logo.png" width="200" height="50">'
    "</body></html>"
)


def _msg(n: int, kind: str) -> bytes:
    m = EmailMessage()
    m["From"] = f"News {n} <news{n % 3}@shop.example.com>"
    m["To"] = "me@example.org"
    m["Subject"] = f"Issue {n} ({kind}) – grüße"
    m["Date"] = "Mon, 06 Jan 2025 10:00:00 +0000"
    m["Message-ID"] = f"<gen-{n}-{kind}@shop.example.com>"
    html = PIXEL_HTML.format(n=n)
    if kind == "alt":
        m.set_content(f"Hello {n} https://shop.example.com/?utm_source=x&utm_medium=email")
        m.add_alternative(html, subtype="html")
    elif kind == "html-qp":
        m.set_content(
            html + "\n" + "é" * 50, subtype="html", charset="iso-8859-1", cte="quoted-printable"
        )
    elif kind == "html-b64":
        m.set_content(html, subtype="html", cte="base64")
    elif kind == "plain":
        m.set_content(f"Just text https://example.org/x?fbclid=abc{n}")
    elif kind == "receipt":
        m["Disposition-Notification-To"] = "news0@shop.example.com"
        m.set_content("please confirm")
    elif kind == "attach":
        m.set_content("see attachment")
        m.add_alternative(html, subtype="html")
        m.add_attachment(os.urandom(30000), maintype="application", subtype="pdf", filename="a.pdf")
        # a text attachment with a tracking-looking URL: neither local nor IMAP scans it
        m.add_attachment(
            b"<img src='https://open.sendgrid.net/wf/open?upn=attached'>",
            maintype="text",
            subtype="html",
            filename="attached.html",
        )
    elif kind == "forward":
        inner = EmailMessage()
        inner["From"] = "other@example.net"
        inner["Subject"] = "inner"
        inner.set_content(PIXEL_HTML.format(n=1000 + n), subtype="html")
        m.set_content("forwarded")
        m.add_attachment(inner)
        m.replace_header("Subject", f"Fwd {n}")
    return m.as_bytes()


KINDS = ("alt", "html-qp", "html-b64", "plain", "receipt", "attach", "forward")


def corpus(n: int = 21) -> list[bytes]:
    msgs = [_msg(i, KINDS[i % len(KINDS)]) for i in range(n)]
    if SAMPLES.is_dir():
        msgs += [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    return msgs


@pytest.fixture(scope="module")
def rules() -> Any:
    return load_ruleset()


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A fresh mailbox owner per test (Dovecot gives every username its own Maildir)."""
    return "t-" + request.node.name.replace("[", "-").replace("]", "")[:40]


def account_for(server: Dovecot, user: str, **kw: Any) -> Any:
    table: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.tls_port,
        "username": user,
        "ca_file": str(server.cert),
        "password_env": "GUARD_TEST_PASSWORD",
        "timeout": 10,
        **kw,
    }
    return parse_config({"accounts": {"t": table}}).account()


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def cli(*argv: str, report: bool = False) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    if report:
        add_report_arguments(parser)
    else:
        parser.add_argument("paths", nargs="*")
        parser.add_argument("--format", choices=("text", "json", "csv"), default="text")
        parser.add_argument("--summary", action="store_true")
        parser.add_argument("-v", "--verbose", action="store_true")
        add_scan_arguments(parser)
    ns = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = (run_report if report else run_imap_scan)(ns, out, err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, expected: ExitCode) -> None:
    assert code == expected, err
    assert err.startswith("guard: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and PASSWORD not in err


def findings_key(r: MessageResult) -> tuple[Any, ...]:
    return (r.envelope, tuple(sorted(r.findings, key=repr)), r.error)


def server_state(server: Dovecot, user: str, folder: str = "INBOX") -> tuple[Any, Any]:
    c: Any = server.client(user)
    try:
        c.enable("CONDSTORE")
        info = c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        flags = c.get_flags(uids) if uids else {}
        return info.get(b"HIGHESTMODSEQ"), {u: sorted(f) for u, f in flags.items()}
    finally:
        c.logout()


# -- findings ----------------------------------------------------------------------------------


def test_imap_findings_equal_local_findings(dovecot: Dovecot, user: str, rules: Any) -> None:
    msgs = corpus()
    dovecot.append(user, "INBOX", msgs)
    results = list(scan_account(account_for(dovecot, user), ["INBOX"], connections=1))
    assert len(results) == len(msgs)
    tracked = 0
    for uid_index, (raw, got) in enumerate(
        zip(msgs, sorted(results, key=lambda r: int(r.id)), strict=True)
    ):
        local = scan_raw(raw, "local", str(uid_index + 1), rules)
        assert findings_key(got) == findings_key(local), (uid_index, got, local)
        tracked += bool(got.findings)
    assert tracked >= len(msgs) // 2  # the corpus really exercises detection
    # the attached HTML file (an attachment) was not scanned
    assert not any("attached" in (f.url or "") for r in results for f in r.findings)


CID_MESSAGE = (
    b"From: Shop <news@shop.example.com>\r\nTo: reader@example.org\r\nSubject: cid parts\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n"
    b"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><head><link rel="stylesheet" href="cid:style@shop"></head><body><p>Hi</p>'
    b'<object data="cid:pic@shop" type="image/svg+xml"></object></body></html>\r\n'
    b"--rel\r\nContent-Type: text/css\r\nContent-ID: <style@shop>\r\n\r\n"
    b"@import url(https://t.tracker.example/o.css?u=42);\r\n"
    b"--rel\r\nContent-Type: image/svg+xml\r\nContent-ID: <pic@shop>\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(
        b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://u1.ct.sendgrid.net/wf/'
        b'open?upn=abc" width="1" height="1"/></svg>'
    ).replace(b"\n", b"\r\n")
    + b"--rel--\r\n"
)


def test_imap_scan_reads_the_cid_stylesheets_and_svgs_a_part_loads(
    dovecot: Dovecot, user: str, rules: Any
) -> None:
    # Over IMAP only the parts detection needs are fetched: a `cid:` stylesheet or SVG is one.
    dovecot.append(user, "INBOX", [CID_MESSAGE])
    (got,) = scan_account(account_for(dovecot, user), ["INBOX"], connections=1)
    local = scan_raw(CID_MESSAGE, "local", "1", rules)
    assert findings_key(got) == findings_key(local)
    assert {f.url for f in got.findings} >= {
        "https://t.tracker.example/o.css?u=42",
        "https://u1.ct.sendgrid.net/wf/open?upn=abc",
    }


def test_parallel_connections_give_the_same_results(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imapscan, "PARALLEL_MIN", 1)
    monkeypatch.setattr(imapscan, "CHUNK", 4)
    dovecot.append(user, "INBOX", corpus(40))
    acc = account_for(dovecot, user)
    one = {r.id: findings_key(r) for r in scan_account(acc, connections=1)}
    three = {r.id: findings_key(r) for r in scan_account(acc, connections=3)}
    assert one == three and len(one) >= 40


# -- read-only -----------------------------------------------------------------------------------


def test_scanning_changes_nothing_on_the_server(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imapscan, "PARALLEL_MIN", 1)
    monkeypatch.setattr(imapscan, "CHUNK", 5)
    msgs = corpus(28)
    dovecot.append(user, "INBOX", msgs[:10])
    dovecot.append(user, "INBOX", msgs[10:20], flags=(b"\\Seen",))
    dovecot.append(user, "INBOX", msgs[20:], flags=(b"$Label1", b"\\Flagged"))
    before = server_state(dovecot, user)
    assert before[0] is not None  # CONDSTORE is on: HIGHESTMODSEQ is reported
    write_config(dovecot, user)
    code, _out, err = cli("--account", "t", "--connections", "3", "--no-cache")
    assert code == 0, err
    assert server_state(dovecot, user) == before
    unseen = [f for f in before[1].values() if b"\\Seen" not in f]
    assert len(unseen) >= 10


# -- state ---------------------------------------------------------------------------------------


def test_incremental_rescan_fetches_nothing_then_picks_up_new(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # other people may be editing rules/ while this runs: pin the rules version
    monkeypatch.setattr(imapscan, "rules_fingerprint", lambda: "pinned")
    msgs = corpus(14)
    n = len(msgs)
    dovecot.append(user, "INBOX", msgs)
    acc = account_for(dovecot, user)
    with Store() as store:
        stats: list[FolderStats] = []
        first = {r.id: findings_key(r) for r in scan_account(acc, store=store, stats=stats)}
        assert stats[0].scanned == n and stats[0].cached == 0

        import guard.mail.imap.fetch as imap_source

        def no_fetch(*_a: Any, **_k: Any) -> Any:
            raise AssertionError("a warm rescan must not fetch")

        with monkeypatch.context() as m:
            m.setattr(imap_source, "scan_chunk", no_fetch)
            m.setattr(imapscan, "_load_rules", no_fetch)  # and builds nothing heavy
            stats = []
            second = {r.id: findings_key(r) for r in scan_account(acc, store=store, stats=stats)}
        assert second == first and stats[0].scanned == 0 and stats[0].cached == n

        dovecot.append(user, "INBOX", [_msg(100, "alt"), _msg(101, "receipt")])
        stats = []
        third = list(scan_account(acc, store=store, stats=stats))
        assert stats[0].scanned == 2 and stats[0].cached == n and len(third) == n + 2

        stats = []
        list(scan_account(acc, store=store, stats=stats, use_cache=False))  # --no-cache
        assert stats[0].scanned == n + 2


def _expunge(server: Dovecot, user: str, uids: list[int]) -> None:
    c: Any = server.client(user)
    try:
        c.select_folder("INBOX")
        c.delete_messages(uids)
        c.expunge()
    finally:
        c.logout()


def test_unchanged_folder_is_not_searched_and_expunges_are_noticed(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imapclient import IMAPClient

    monkeypatch.setattr(imapscan, "rules_fingerprint", lambda: "pinned")
    msgs = [_msg(i, "alt") for i in range(8)]
    uids = dovecot.append(user, "INBOX", msgs)
    assert len(uids) == 8
    acc = account_for(dovecot, user)

    def rescan(store: Store, *, search: bool) -> tuple[FolderStats, list[MessageResult]]:
        stats: list[FolderStats] = []
        with monkeypatch.context() as m:
            if not search:
                m.setattr(IMAPClient, "search", lambda *_a, **_k: pytest.fail("searched"))
            results = list(scan_account(acc, store=store, stats=stats))
        return stats[0], results

    def totals(store: Store) -> tuple[int, int, int]:
        return store.sender_tables(acc.name, ["INBOX"])[2]

    with Store() as store:
        first, _ = rescan(store, search=True)
        assert first.scanned == 8
        # nothing added or expunged: UIDNEXT and the count say so, no SEARCH needed
        warm, results = rescan(store, search=False)
        assert (warm.total, warm.cached, warm.scanned, len(results)) == (8, 8, 0, 8)
        assert totals(store) == (8, 8, 0)

        _expunge(dovecot, user, uids[:2])  # fewer messages: listed again, rows dropped
        after, results = rescan(store, search=True)
        assert (after.total, after.cached, after.scanned, len(results)) == (6, 6, 0, 6)
        assert totals(store) == (6, 6, 0)
        assert store.known_uids(acc.name, "INBOX", after.uidvalidity) == set(uids[2:])
        assert rescan(store, search=False)[0].cached == 6

        # one expunged and one added: the same count, but UIDNEXT moved
        _expunge(dovecot, user, uids[2:3])
        (new_uid,) = dovecot.append(user, "INBOX", [_msg(50, "receipt")])
        after, results = rescan(store, search=True)
        assert (after.total, after.cached, after.scanned) == (6, 5, 1)
        assert store.known_uids(acc.name, "INBOX", after.uidvalidity) == {*uids[3:], new_uid}
        assert totals(store) == (6, 6, 0)
        assert rescan(store, search=False)[0].cached == 6


def test_uidvalidity_change_triggers_rescan(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imapscan, "rules_fingerprint", lambda: "pinned")
    msgs = corpus(7)
    dovecot.append(user, "Lists", msgs)
    acc = account_for(dovecot, user)
    with Store() as store:
        stats: list[FolderStats] = []
        list(scan_account(acc, ["Lists"], store=store, stats=stats))
        old_validity = stats[0].uidvalidity
        c: Any = dovecot.client(user)
        c.delete_folder("Lists")
        c.logout()
        dovecot.append(user, "Lists", msgs)
        stats = []
        list(scan_account(acc, ["Lists"], store=store, stats=stats))
        assert stats[0].uidvalidity != old_validity
        assert stats[0].scanned == len(msgs) and stats[0].cached == 0


def test_rules_change_triggers_rescan(
    dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imapscan, "rules_fingerprint", lambda: "pinned")
    msgs = corpus(5)
    dovecot.append(user, "INBOX", msgs)
    acc = account_for(dovecot, user)
    with Store() as store:
        list(scan_account(acc, store=store))
        monkeypatch.setattr(imapscan, "rules_fingerprint", lambda: "different-rules")
        stats: list[FolderStats] = []
        list(scan_account(acc, store=store, stats=stats))
        assert stats[0].scanned == len(msgs)


def test_report_from_history_and_no_secret_in_state(dovecot: Dovecot, user: str) -> None:
    dovecot.append(user, "INBOX", corpus(7))
    write_config(dovecot, user)
    code, out, err = cli("--account", "t", "--summary")
    assert code == 0, err
    assert "shop.example.com" in out
    # report needs no config and no server
    Path(os.environ["GUARD_CONFIG"]).unlink()
    for fmt in ("text", "json", "csv"):
        code, out, err = cli("--format", fmt, report=True)
        assert code == 0, err
        assert "shop.example.com" in out
    code, out, _ = cli("--format", "json", report=True)
    json.loads(out)
    state = Path(os.environ["XDG_DATA_HOME"]) / "guard" / "state.sqlite3"
    db = sqlite3.connect(state)
    dump = "\n".join(db.iterdump())
    db.close()
    assert PASSWORD not in dump
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def test_report_without_history() -> None:
    code, _out, err = cli(report=True)
    assert_one_line_error(code, err, ExitCode.NO_INPUT)


def test_imap_url_target(dovecot: Dovecot, user: str) -> None:
    dovecot.append(user, "Archive", corpus(3))
    write_config(dovecot, user, folders=["INBOX"])
    code, out, err = cli(f"imap://{user}@127.0.0.1:{dovecot.tls_port}/Archive", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert "Archive" in json.dumps(doc)


def test_plain_imap_on_loopback_and_starttls(dovecot: Dovecot, user: str) -> None:
    dovecot.append(user, "INBOX", corpus(3))
    for tls in ("none", "starttls"):
        write_config(dovecot, user, port=dovecot.plain_port, tls=tls)
        code, _out, err = cli("--account", "t", "--no-cache")
        assert code == 0, (tls, err)


# -- errors --------------------------------------------------------------------------------------


def test_wrong_password(dovecot: Dovecot, user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", "wrong-password-xyz")
    write_config(dovecot, user)
    code, _out, err = cli("--account", "t")
    assert_one_line_error(code, err, ExitCode.AUTH)
    assert "wrong-password-xyz" not in err and "refused" in err


def test_password_command_failure(dovecot: Dovecot, user: str) -> None:
    write_config(dovecot, user, password_env=None, password_command="echo nope-secret; exit 1")
    code, _out, err = cli("--account", "t")
    assert_one_line_error(code, err, ExitCode.AUTH)
    assert "nope-secret" not in err


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_unreachable_host(dovecot: Dovecot, user: str) -> None:
    write_config(dovecot, user, port=closed_port())
    code, _out, err = cli("--account", "t")
    assert_one_line_error(code, err, ExitCode.CONNECT)


def test_untrusted_certificate_fails_closed(dovecot: Dovecot, user: str) -> None:
    write_config(dovecot, user, ca_file=None)
    code, _out, err = cli("--account", "t")
    assert_one_line_error(code, err, ExitCode.TLS)
    assert "not trusted" in err


def test_unknown_folder_lists_existing(dovecot: Dovecot, user: str) -> None:
    dovecot.append(user, "Receipts", corpus(1))
    write_config(dovecot, user)
    code, _out, err = cli("--account", "t", "--folder", "Nope")
    assert_one_line_error(code, err, ExitCode.FOLDER)
    assert "INBOX" in err and "Receipts" in err


def test_config_errors_are_one_line(dovecot: Dovecot, user: str) -> None:
    code, _out, err = cli("--account", "t")  # no config file at all
    assert_one_line_error(code, err, ExitCode.CONFIG)
    write_config(dovecot, user)
    code, _out, err = cli("--account", "other")
    assert_one_line_error(code, err, ExitCode.CONFIG)


class FakeServer:
    """A loopback TCP server: `silent` never greets; `nostarttls` greets without STARTTLS."""

    def __init__(self, mode: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = int(self.sock.getsockname()[1])
        self.mode = mode
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.mode == "nostarttls":
                conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake\r\n")
                data = conn.recv(1000)
                tag = data.split(b" ", 1)[0]
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_silent_server_times_out(dovecot: Dovecot, user: str) -> None:
    fake = FakeServer("silent")
    try:
        write_config(dovecot, user, port=fake.port, timeout=0.5)
        code, _out, err = cli("--account", "t")
        assert_one_line_error(code, err, ExitCode.TIMEOUT)
    finally:
        fake.close()


def test_starttls_not_offered_is_an_error(dovecot: Dovecot, user: str) -> None:
    fake = FakeServer("nostarttls")
    try:
        write_config(dovecot, user, port=fake.port, tls="starttls", timeout=2)
        code, _out, err = cli("--account", "t")
        assert_one_line_error(code, err, ExitCode.TLS)
        assert "STARTTLS" in err
    finally:
        fake.close()


class CuttingProxy:
    """Forwards to Dovecot's plain port; after `limit` bytes from the server it closes or stalls."""

    def __init__(self, target: int, limit: int, mode: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = int(self.sock.getsockname()[1])
        self.target, self.limit, self.mode = target, limit, mode
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(upstream, client, self.limit), daemon=True
            ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    if self.mode == "close":
                        for sock in (dst, src):
                            sock.shutdown(socket.SHUT_RDWR)
                            sock.close()
                    else:
                        self.stop.wait()
                    return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()


@pytest.mark.parametrize(
    ("mode", "expected"), [("close", ExitCode.SERVER), ("stall", ExitCode.TIMEOUT)]
)
def test_server_trouble_mid_scan(
    dovecot: Dovecot, user: str, mode: str, expected: ExitCode
) -> None:
    dovecot.append(user, "INBOX", corpus(42))
    proxy = CuttingProxy(dovecot.plain_port, 60_000, mode)
    try:
        write_config(dovecot, user, port=proxy.port, tls="none", timeout=1)
        code, _out, err = cli("--account", "t", "--connections", "1")
        assert_one_line_error(code, err, expected)
    finally:
        proxy.close()


def _unused(_: Iterator[None]) -> None:  # keep Iterator imported for type hints above
    pass
