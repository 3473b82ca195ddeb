"""Supervised workers (guard/mail/supervise.py): a message that crashes or hangs its worker process
costs only itself, in the local scan, in `guard clean PATH` and in the IMAP scan's children.

The crashes are real (SIGSEGV, abort, a hang no timer reaches), made by the test hook
GUARD_TEST_CRASH_MARKER in worker processes only.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from dovecot import PASSWORD, Dovecot

from guard.mail import supervise
from guard.mail.config import parse_config
from guard.mail.imap import scan as imapscan
from guard.mail.imap.scan import scan_account
from guard.mail.scan import PARALLEL_THRESHOLD

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "eml"
TOKEN = "GUARD-CRASH-MARKER-d41f"
MARKER_NAME = "m-crash.eml"  # sorts into the middle of the samples


def marker_message() -> bytes:
    m = EmailMessage()
    m["From"] = "someone@example.org"
    m["To"] = "me@example.org"
    m["Subject"] = "hello"
    m["Message-ID"] = "<crash-marker@example.org>"
    m.set_content(f"Nothing to see here: {TOKEN}\n")
    return m.as_bytes()


def forked_children() -> list[int]:
    """Processes forked from this one that still exist (a zombie's command line is empty)."""
    me = os.getpid()
    mine = Path(f"/proc/{me}/cmdline").read_bytes()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == mine:
                stat = (entry / "stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == me:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_with(text: str) -> list[int]:
    """Processes whose environment holds `text` (one run's id: its left-behind workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def guard(*args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; afterwards, none of its processes may be left."""
    run_id = uuid.uuid4().hex
    env = {**os.environ, "GUARD_TEST_RUN": run_id}
    env.pop(supervise.CRASH_MARKER_ENV, None)
    if crash is not None:
        env[supervise.CRASH_MARKER_ENV] = f"{crash}:{TOKEN}"
    proc = subprocess.run(
        [sys.executable, "-m", "guard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert processes_with(f"GUARD_TEST_RUN={run_id}") == [], "worker processes were left behind"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# -- the supervisor itself ------------------------------------------------------------------------


CRASHES = {5: "segv", 40: "abort", 70: "segv", 90: "hang"}


def _toy(i: int) -> int:
    if i in CRASHES:
        probe = supervise.probe_from(f"{CRASHES[i]}:{TOKEN}")
        assert probe is not None
        probe(TOKEN.encode())
    return i * i


def test_map_supervised_gives_each_crash_its_own_failure_in_order() -> None:
    out = list(
        supervise.map_supervised(_toy, 120, lambda i, why: (i, why), jobs=2, chunk=16, seconds=1.0)
    )
    assert len(out) == 120
    failures = {o[0]: o[1] for o in out if isinstance(o, tuple)}
    assert failures == {
        5: "crashed its worker process (SIGSEGV)",
        40: "crashed its worker process (SIGABRT)",
        70: "crashed its worker process (SIGSEGV)",
        90: supervise.overdue(1.0),
    }
    assert all(o == i * i for i, o in enumerate(out) if i not in failures)
    assert multiprocessing.active_children() == [] and forked_children() == []


def test_map_supervised_stops_its_workers_when_closed() -> None:
    items = supervise.map_supervised(_toy, 120, lambda i, why: -1, jobs=2, chunk=4, seconds=60)
    assert next(items) == 0
    items.close()  # e.g. the reader of `guard scan | head` left
    assert multiprocessing.active_children() == [] and forked_children() == []


def _big(i: int) -> bytes:
    return bytes([i % 256]) * 300_000  # more than a pipe holds (~200 KB on Linux)


def test_map_supervised_carries_results_bigger_than_a_pipe() -> None:
    out = list(supervise.map_supervised(_big, 70, lambda i, why: b"", jobs=2, chunk=4, seconds=60))
    assert out == [_big(i) for i in range(70)]


def _split(value: bytes) -> tuple[Any, bytes]:
    return (len(value), value[:1]), value


def _join(meta: Any, blob: bytes) -> bytes:
    return b"%d:%s:%s" % (meta[0], meta[1], blob)


def test_map_supervised_sends_split_results_whole() -> None:
    # The part sent as bytes is bigger than a pipe, and some are empty.
    def work(i: int) -> bytes:
        return b"" if i % 5 == 0 else _big(i)

    out = list(
        supervise.map_supervised(
            work, 70, lambda i, why: b"", jobs=2, chunk=4, seconds=60,
            split=_split, join=_join,
        )
    )  # fmt: skip
    assert out == [_join(*_split(work(i))) for i in range(70)]


def test_read_exact_reads_a_frame_larger_than_its_reads() -> None:
    import threading

    blob = os.urandom(3 * supervise._READ_MAX + 12345)
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=supervise._write_all, args=(write_end, [b"ab", blob]))
    writer.start()
    try:
        assert supervise._read_exact(read_end, 2) == b"ab"
        assert supervise._read_exact(read_end, len(blob)) == blob
        writer.join()
        os.close(write_end)
        with pytest.raises(EOFError):
            supervise._read_exact(read_end, 1)
    finally:
        os.close(read_end)


def test_map_supervised_wants_split_and_join_together() -> None:
    def failed(_i: int, _why: str) -> bytes:
        return b""

    with pytest.raises(ValueError):
        next(supervise.map_supervised(_big, 3, failed, jobs=2, chunk=4, seconds=60, split=_split))


_PDEATHSIG_PROBE = """
import ctypes, signal, sys
from guard.mail import supervise
setter = supervise.{which}()
setter(signal.SIGTERM)
value = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
print(value.value)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("which", ["_pdeathsig", "_ctypes_pdeathsig"])
def test_parent_death_signal_is_set_by_the_extension_and_by_ctypes(which: str) -> None:
    """A worker asks to be killed with its parent: through guard's extension (guard/_process.c,
    where built) or ctypes, the same signal."""
    done = subprocess.run(
        [sys.executable, "-c", _PDEATHSIG_PROBE.format(which=which)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.split()[0] == "15"


def test_the_parent_death_signal_needs_no_ctypes_where_the_extension_is_built() -> None:
    try:
        from guard import _process  # type: ignore[attr-defined,unused-ignore]  # noqa: F401
    except ImportError:
        pytest.skip("guard/_process.c was not built here (no C compiler)")
    code = "import sys; from guard.mail import supervise; supervise._pdeathsig(); "
    code += "print('ctypes' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "False"


def test_probe_actions() -> None:
    assert supervise.probe_from("segv:") is None
    assert supervise.probe_from("explode:x") is None
    probe = supervise.probe_from("abort:x")
    assert probe is not None
    probe(b"nothing here")  # no marker: nothing happens


# -- guard scan PATH ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mail")
    for path in sorted(SAMPLES.glob("*.eml")):
        shutil.copyfile(path, root / path.name)
    (root / MARKER_NAME).write_bytes(marker_message())
    assert len(list(root.iterdir())) >= PARALLEL_THRESHOLD + 8  # the parallel path
    return root


def scan_json(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(proc.stdout)["messages"]
    return messages


@pytest.fixture(scope="module")
def baseline(mail_dir: Path) -> list[dict[str, Any]]:
    proc = guard("scan", "--format", "json", "--jobs", "2", str(mail_dir))
    assert proc.returncode == 0, proc.stderr
    return scan_json(proc)


@pytest.mark.parametrize(
    ("crash", "extra", "error"),
    [
        ("segv", (), "crashed its worker process (SIGSEGV): skipped"),
        ("abort", (), "crashed its worker process (SIGABRT): skipped"),
        # a hang no timer interrupts: stopped after 2 x 1 s + 2 s without a result, twice
        ("hang", ("--time-limit", "1"), f"{supervise.overdue(4.0)}: skipped"),
    ],
    ids=["segv", "abort", "hang"],
)
def test_scan_survives_a_message_that_kills_its_worker(
    mail_dir: Path, baseline: list[dict[str, Any]], crash: str, extra: tuple[str, ...], error: str
) -> None:
    proc = guard("scan", "--format", "json", "--jobs", "2", *extra, str(mail_dir), crash=crash)
    assert proc.returncode == 0, proc.stderr  # per-message errors are results, not failures
    got = scan_json(proc)
    assert [m["source"] for m in got] == [m["source"] for m in baseline]  # input order
    for mine, theirs in zip(got, baseline, strict=True):
        if mine["source"].endswith(MARKER_NAME):
            assert mine["error"] == error and mine["findings"] == []
            assert theirs["error"] is None
        else:
            assert mine == theirs


def test_scan_text_output_reports_the_crash(mail_dir: Path) -> None:
    proc = guard("scan", "--jobs", "2", str(mail_dir), crash="segv")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.endswith(MARKER_NAME))
    assert line.startswith("[error]")
    assert "error: crashed its worker process (SIGSEGV): skipped" in proc.stdout


# -- guard clean PATH -----------------------------------------------------------------------------


def make_maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for n, path in enumerate(sorted(SAMPLES.glob("*.eml"))):
        shutil.copyfile(path, root / "cur" / f"17100000{n:02d}.M1P1.host:2,S")
    (root / "cur" / "1710000050.M2P1.host:2,S").write_bytes(marker_message())
    return root


def contents(root: Path) -> Counter[bytes]:
    return Counter(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_clean_path_in_workers_equals_one_process_and_survives_a_crash(tmp_path: Path) -> None:
    one = make_maildir(tmp_path / "one")
    many = make_maildir(tmp_path / "many")
    assert len(list((one / "cur").iterdir())) >= PARALLEL_THRESHOLD
    seq = guard("clean", "--jobs", "1", str(one))
    par = guard("clean", "--jobs", "2", str(many), crash="segv")
    assert seq.returncode == 0 and par.returncode == 0, seq.stderr + par.stderr
    seq_plan = [ln.replace(str(one), "") for ln in seq.stdout.splitlines()]
    par_plan = [ln.replace(str(many), "") for ln in par.stdout.splitlines()]
    marker = [i for i, ln in enumerate(par_plan) if "M2P1" in ln]
    assert len(marker) == 1 and len(seq_plan) == len(par_plan)
    assert par_plan[marker[0]].startswith("[skipped: crashed its worker process (SIGSEGV)]")
    assert seq_plan[marker[0]].startswith("[clean]")
    for i, (a, b) in enumerate(zip(seq_plan[:-1], par_plan[:-1], strict=True)):
        assert i in marker or a == b
    cleaned = sum(ln.startswith("[pixel") or ln.startswith("[link") for ln in seq_plan)
    assert cleaned > 10  # the samples really get cleaned
    assert seq_plan[-1].endswith(", 0 skipped") and par_plan[-1].endswith(", 1 skipped")
    # the same cleaned messages and the same originals kept, and the marker message untouched
    assert contents(one) == contents(many)
    assert marker_message() in contents(many)


# -- the IMAP scan's children ---------------------------------------------------------------------


def _imap_message(n: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"News <news{n % 3}@shop.example.com>"
    m["To"] = "me@example.org"
    m["Subject"] = f"Issue {n}"
    m["Message-ID"] = f"<issue-{n}@shop.example.com>"
    m.set_content(
        f'<p>Hello {n}</p><img src="https://open.sendgrid.net/wf/open?upn=a{n}" width="1" '
        f'height="1"><a href="https://shop.example.com/?utm_source=news&n={n}">shop</a>',
        subtype="html",
    )
    return m.as_bytes()


@pytest.fixture
def account(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)
    user = f"t-supervise-{uuid.uuid4().hex[:8]}"
    msgs = [_imap_message(n) for n in range(40)]
    msgs.insert(21, marker_message())
    dovecot.append(user, "INBOX", msgs)
    table = {
        "host": "127.0.0.1",
        "port": dovecot.tls_port,
        "username": user,
        "ca_file": str(dovecot.cert),
        "password_env": "GUARD_TEST_PASSWORD",
        "timeout": 10,
    }
    yield parse_config({"accounts": {"t": table}}).account()


def test_imap_child_that_crashes_loses_no_other_message(
    account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = {r.id: (r.envelope, sorted(r.findings, key=repr), r.error) for r in
           scan_account(account, connections=1)}  # fmt: skip
    assert len(key) == 41
    monkeypatch.setattr(imapscan, "PARALLEL_MIN", 1)
    monkeypatch.setattr(imapscan, "CHUNK", 4)
    # Every chunk goes to the children (the parent scans in-process, where nothing crashes on
    # purpose), so a child certainly meets the marker.
    parent, take = os.getpid(), imapscan._take
    monkeypatch.setattr(
        imapscan, "_take", lambda n, c: None if os.getpid() == parent else take(n, c)
    )
    monkeypatch.setenv(supervise.CRASH_MARKER_ENV, f"segv:{TOKEN}")
    got = list(scan_account(account, connections=3))
    assert sorted(r.id for r in got) == sorted(key)  # each message exactly once
    errors = {r.id: r.error for r in got if r.error}
    assert list(errors.values()) == ["crashed its worker process (SIGSEGV): skipped"]
    (marker_uid,) = errors
    assert marker_uid == "22"
    for r in got:
        if r.id != marker_uid:
            assert (r.envelope, sorted(r.findings, key=repr), r.error) == key[r.id]
    assert multiprocessing.active_children() == [] and forked_children() == []


def test_crash_hook_is_off_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from guard.engine.rules_load import load_ruleset
    from guard.mail.scan import scan_raw

    monkeypatch.setenv(supervise.CRASH_MARKER_ENV, f"segv:{TOKEN}")
    result = scan_raw(marker_message(), "m", "1", load_ruleset(include_user=False))
    assert result.error is None  # and this process is still here
