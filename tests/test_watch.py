"""`guard watch` against a real Dovecot: new mail cleaned within the bound after another client's
APPEND, mail that arrived while away cleaned at start, a server restart survived, SIGTERM/SIGINT
end it cleanly, and a cron `guard clean` meanwhile exits 0 with a note."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot
from test_clean_imap import (
    ROOT,
    check_exactly_once,
    guard_env,
    guard_proc,
    make_message,
    mid_of,
    seed,
    user_name,
    write_config,
)

from guard.mail.exitcodes import ExitCode


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    return user_name(request)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)


def start_watch(*extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "guard", "watch", "--account", "t", *extra],
        env=guard_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def stop_watch(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"guard watch did not stop on signal {sig}: {err}") from None
    return proc.returncode, out, err


class Poller:
    """Another client, watching for a message's cleaned copy to be in place."""

    def __init__(self, server: Dovecot, user: str) -> None:
        self.server, self.user = server, user
        self.c: Any = None

    def _client(self) -> Any:
        if self.c is None:
            self.c = self.server.client(self.user, tls=False)
            self.c.select_folder("INBOX", readonly=True)
        return self.c

    def cleaned(self, mid: str) -> bool:
        try:
            c = self._client()
            c.noop()
            copy = c.search(["HEADER", "Message-ID", mid, "KEYWORD", "$GuardCleaned"])
            orig = c.search(["HEADER", "Message-ID", mid, "NOT", "KEYWORD", "$GuardCleaned"])
            return bool(copy) and not orig
        except Exception:  # noqa: BLE001 - the server may be restarting
            self.close()
            return False

    def wait(self, mid: str, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.cleaned(mid):
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"{mid} not cleaned within {timeout} s")

    def close(self) -> None:
        if self.c is not None:
            with contextlib.suppress(Exception):
                self.c.logout()
            self.c = None


def append_from_other_client(server: Dovecot, user: str, raw: bytes) -> None:
    c: Any = server.client(user, tls=False)
    try:
        c.append("INBOX", raw)
    finally:
        c.logout()


@pytest.fixture
def poller(dovecot: Dovecot, user: str) -> Iterator[Poller]:
    p = Poller(dovecot, user)
    yield p
    p.close()


def test_watch_cleans_new_mail_within_bound(dovecot: Dovecot, user: str, poller: Poller) -> None:
    originals = seed(dovecot, user, [(1, "track"), (2, "plain")])  # arrived while away
    write_config(dovecot, user)
    proc = start_watch()
    try:
        poller.wait("<gen-1-track@shop.example.com>", 30)
        # Liveness, not speed: each new message is cleaned while watch runs (the latency
        # figure is bench/bench_watch.py's job, not a test's).
        for n in (101, 102, 103):
            raw = make_message(n, "track")
            append_from_other_client(dovecot, user, raw)
            poller.wait(mid_of(raw), 15)
        # a cron run meanwhile: the account is held by watch -> exit 0, one line
        cron = guard_proc("clean", "--account", "t")
        assert cron.returncode == 0, cron.stderr
        assert "guard watch" in cron.stderr and cron.stderr.count("\n") == 1
    finally:
        code, out, err = stop_watch(proc)
    assert code == 0, err
    assert err == "" and out == "", (out, err)  # quiet
    assert check_exactly_once(dovecot, user, originals, strict=False)["cleaned"] == 1


@pytest.mark.dovecot  # its own server (restarted mid-test), not the shared fixture
def test_watch_survives_server_restart(user: str) -> None:
    from dovecot import start_or_skip

    server = start_or_skip()
    poller = Poller(server, user)
    try:
        seed(server, user, [(1, "track")])
        write_config(server, user, timeout=3)
        proc = start_watch()
        try:
            poller.wait("<gen-1-track@shop.example.com>", 30)
            poller.close()
            server.restart(down_for=1.5)
            raw = make_message(7, "track")
            append_from_other_client(server, user, raw)  # arrived while guard was away
            poller.wait(mid_of(raw), 30)
            raw = make_message(8, "track")
            append_from_other_client(server, user, raw)  # and IDLE works again
            poller.wait(mid_of(raw), 10)
        finally:
            code, _out, err = stop_watch(proc, signal.SIGINT)
        assert code == 0, err
        assert "reconnected" in err and "Traceback" not in err
    finally:
        poller.close()
        server.stop()


def test_watch_fatal_errors_end_it(dovecot: Dovecot, user: str) -> None:
    write_config(dovecot, user, folders=["Nope"])
    proc = start_watch()
    code, _out, err = stop_watch_after(proc, 30)
    assert code == ExitCode.FOLDER, err
    assert "Nope" in err


def stop_watch_after(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return stop_watch(proc)
    return proc.returncode, out, err
