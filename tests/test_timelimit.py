"""A message that takes too long becomes a per-message error; the scan goes on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from guard.cli.main import main
from guard.engine.limits import Limits
from guard.engine.rules_load import load_ruleset
from guard.engine.timelimit import TimeLimitExceeded, time_limit
from guard.mail import scan

RULES = load_ruleset(include_user=False)
MESSAGE = b"From: a@b.example\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n<img src=x>\r\n"


def test_time_limit_interrupts_python_code() -> None:
    # a loop that would run a minute: the limit, not the loop's end, must stop it (a broken
    # limit fails here after that minute instead of hanging the suite)
    end = time.monotonic() + 60
    with pytest.raises(TimeLimitExceeded), time_limit(0.05):
        while time.monotonic() < end:
            pass


def test_time_limit_is_inert_off_the_main_thread() -> None:
    done: list[bool] = []

    def work() -> None:
        with time_limit(0.01):
            time.sleep(0.05)
        done.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(5)
    assert done == [True]


def test_a_slow_message_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    finished: list[bool] = []

    def slow_detect(*args: object, **kwargs: object) -> tuple[()]:
        time.sleep(60)
        finished.append(True)
        return ()

    monkeypatch.setattr(scan, "detect_message", slow_detect)
    result = scan.scan_raw(MESSAGE, "m", "1", RULES, Limits(max_seconds=0.2))
    assert finished == []  # cut off by the limit, not waited for
    assert result.error == "took longer than 0.2 s: skipped"


def test_the_cli_reports_it_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []
    real = scan.detect_message

    def slow_first(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(5)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan, "detect_message", slow_first)
    for n in range(2):
        (tmp_path / f"{n}.eml").write_bytes(MESSAGE)
    assert main(["scan", "--jobs", "1", "--time-limit", "0.2", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("took longer than 0.2 s") == 1
    assert "2 messages scanned" in out


def test_a_held_handler_stays_and_limits_still_interrupt() -> None:
    import _signal  # type: ignore[import-not-found]
    import signal

    from guard.engine import timelimit

    before = _signal.getsignal(signal.SIGALRM)
    try:
        # Not held: each limit installs its handler and restores the one before it.
        with time_limit(5):
            assert _signal.getsignal(signal.SIGALRM) is timelimit._expired
        assert _signal.getsignal(signal.SIGALRM) is before
        timelimit.hold_handler()
        assert _signal.getsignal(signal.SIGALRM) is timelimit._expired
        end = time.monotonic() + 60
        with pytest.raises(TimeLimitExceeded), time_limit(0.05):
            while time.monotonic() < end:
                pass
        with time_limit(5):
            pass
        assert _signal.getsignal(signal.SIGALRM) is timelimit._expired  # held: not restored
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # and the timer disarmed
    finally:
        _signal.signal(signal.SIGALRM, before)
