"""`guard clean --account` loads its rules, and makes its TLS context, in threads while it waits
on the server (guard.cli.imap.LazyTransform.prefetch, guard.mail.imap.tls.TlsContext):
what a thread makes is what the caller would have made, its failure is raised where the caller
would have raised it, and nothing is left running by the time the worker pool forks (after
`load`)."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import pytest

from guard.cli.common import CliError
from guard.cli.imap import LazyTransform
from guard.mail.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "eml" / "activecampaign-course-reminder.eml"


def _ns(config: Path, policy: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(config=str(config), policy=policy, unwrap_security=False)


def _loading() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "guard-load"]


def test_a_prefetched_transform_cleans_as_a_lazy_one(tmp_path: Path) -> None:
    raw = SAMPLE.read_bytes()
    ahead = LazyTransform(_ns(tmp_path / "absent.toml", policy="strict"))
    ahead.prefetch("guard.mail.imap.pool", "guard.no.such.module")  # a missing one is skipped
    ahead.load()
    assert not _loading()  # joined: a fork now inherits no import in progress
    lazy = LazyTransform(_ns(tmp_path / "absent.toml", policy="strict"))
    first, second = ahead(raw), lazy(raw)
    assert first.changed and first == second


def test_a_failed_prefetch_is_raised_by_load_only(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[clean]\npolicy = 3\n")
    fn = LazyTransform(_ns(config))
    done: list[str] = []
    fn.prefetch(then=lambda: done.append(threading.current_thread().name))
    for thread in _loading():
        thread.join(timeout=60)
    assert not _loading()  # the failure ended the thread and was kept, not raised there
    assert done == ["guard-load"]  # `then` (the GC back on) ran in the thread all the same
    with pytest.raises(CliError) as caught:
        fn.load()
    assert caught.value.code == ExitCode.CONFIG
    with pytest.raises(CliError):  # the next use loads again, as a lazy transform would
        fn(SAMPLE.read_bytes())


def test_what_else_the_thread_meets_is_met_again_by_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that is not the run's own (an import another thread was making at that moment
    can fail only there) is not raised from the thread's attempt: `load` loads again here, and
    only what that meets is raised."""
    real = LazyTransform._load
    calls: list[str] = []

    def flaky(self: LazyTransform, *args: object) -> None:
        calls.append(threading.current_thread().name)
        if threading.current_thread().name == "guard-load":
            raise RuntimeError("deadlock detected by _ModuleLock('guard.x')")
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(LazyTransform, "_load", flaky)
    fn = LazyTransform(_ns(tmp_path / "absent.toml", policy="strict"))
    fn.prefetch()
    fn.load()
    assert calls == ["guard-load", threading.current_thread().name]
    assert fn(SAMPLE.read_bytes()).changed


def test_a_tls_context_made_ahead_is_the_one_made_at_connect(tmp_path: Path) -> None:
    """guard.mail.imap.tls.TlsContext: the same trust (system CAs plus ca_file) and
    settings as ssl_context, made in a thread; a ca_file that cannot be loaded is connect's
    TlsError, raised where the context is used."""
    from guard.mail.config import Account
    from guard.mail.imap.connection import TlsError, ssl_context
    from guard.mail.imap.tls import TlsContext

    account = Account(name="a", host="127.0.0.1", username="u")
    ahead, here = TlsContext(account).get(), ssl_context(account)
    assert ahead is not here
    assert ahead.cert_store_stats() == here.cert_store_stats()
    assert ahead.get_ca_certs() == here.get_ca_certs()
    assert (ahead.minimum_version, ahead.verify_mode, ahead.check_hostname) == (
        here.minimum_version,
        here.verify_mode,
        here.check_hostname,
    )
    broken = Account(name="a", host="127.0.0.1", username="u", ca_file=str(tmp_path / "none.pem"))
    with pytest.raises(TlsError, match="cannot load ca_file") as ahead_error:
        ssl_context(broken, TlsContext(broken))
    with pytest.raises(TlsError) as here_error:
        ssl_context(broken)
    assert str(ahead_error.value) == str(here_error.value)


def test_a_cancelled_prefetch_stops_and_a_later_use_still_loads(tmp_path: Path) -> None:
    fn = LazyTransform(_ns(tmp_path / "absent.toml"))
    done: list[bool] = []
    fn.prefetch("guard.mail.imap.pool", then=lambda: done.append(True))
    fn.cancel()  # the run needed nothing (a cron run with no new mail)
    for thread in _loading():
        thread.join(timeout=60)
    assert not _loading() and done == [True]
    lazy = LazyTransform(_ns(tmp_path / "absent.toml"))
    raw = SAMPLE.read_bytes()
    assert fn(raw) == lazy(raw)  # whatever the thread got to, the transform is whole
