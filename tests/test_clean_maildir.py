"""`guard clean PATH` on a Maildir: batches that survive a crash at any step
(guard/mail/maildir_clean.py), written while the rest is still being cleaned
(guard/mail/maildir_pipe.py). A real `python -m guard clean` is SIGKILLed at each step by the
test-only hook (of the first batch, or of a later one while the plan goes on), then run again;
every message must be in the Maildir exactly once, cleaned exactly as an uninterrupted run cleans
it, and its original in the backup."""

from __future__ import annotations

import argparse
import email.parser
import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.cli import clean_path
from guard.cli.args import MAILDIR_BACKUP, add_clean_path_arguments
from guard.mail.maildir_clean import JOURNAL, MaildirLock

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
STEPS = ("after-intent", "before-commit", "after-commit", "after-swap")
COUNT = 24


def build_maildir(root: Path) -> dict[str, bytes]:
    """COUNT sample messages, alternately in new/ and in cur/ with flags; by Message-ID."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    originals: dict[str, bytes] = {}
    for i, eml in enumerate(sorted((SAMPLES / "eml").glob("*.eml"))[:COUNT]):
        raw = eml.read_bytes()
        name = f"17000000{i:02d}.M{i}P7.test"
        path = root / "new" / name if i % 2 else root / "cur" / f"{name}:2,S"
        path.write_bytes(raw)
        originals[message_id(raw)] = raw
    assert len(originals) == COUNT  # each sample has its own Message-ID
    return originals


def message_id(raw: bytes) -> str:
    headers = email.parser.BytesHeaderParser().parsebytes(raw)
    return str(headers["Message-ID"]).strip()


def contents(folder: Path) -> dict[str, list[bytes]]:
    """Every message in cur/ and new/ by Message-ID (a list: a duplicate shows as two)."""
    found: dict[str, list[bytes]] = {}
    for path in sorted(folder.glob("[cn]*/*")):
        raw = path.read_bytes()
        found.setdefault(message_id(raw), []).append(raw)
    return found


# `python -m guard` with batches of at most BATCH messages: several batches out of COUNT.
SMALL_BATCHES = (
    "import runpy, sys; import guard.cli.clean_path as c; c.BATCH = int(sys.argv.pop(1)); "
    "sys.argv[0] = 'guard'; runpy.run_module('guard', run_name='__main__')"
)


def guard_clean(
    maildir: Path, home: Path, *args: str, crash_at: str | None = None, batch: int | None = None,
    quiet: bool = True, sigint_at: str | None = None,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = dict(os.environ)
    env.update(XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    env.pop("GUARD_CONFIG", None)
    env.pop("GUARD_TEST_CRASH_AT", None)
    env.pop("GUARD_TEST_SIGINT_AT", None)
    if crash_at is not None:
        env["GUARD_TEST_CRASH_AT"] = f"maildir-{crash_at}"
    if sigint_at is not None:
        env["GUARD_TEST_SIGINT_AT"] = f"maildir-{sigint_at}"
    start = ["-m", "guard"] if batch is None else ["-c", SMALL_BATCHES, str(batch)]
    return subprocess.run(
        [sys.executable, *start, "clean", *(["-q"] if quiet else []), *args, str(maildir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """What an uninterrupted run leaves, by Message-ID."""
    root = tmp_path_factory.mktemp("reference")
    build_maildir(root / "Maildir")
    done = guard_clean(root / "Maildir", root)
    assert done.returncode == 0, done.stderr
    return contents(root / "Maildir")


def assert_exactly_once(
    maildir: Path, originals: dict[str, bytes], reference: dict[str, list[bytes]]
) -> None:
    assert contents(maildir) == reference  # each message once, cleaned as without the crash
    cleaned = {mid for mid, raws in reference.items() if raws != [originals[mid]]}
    assert cleaned, "the sample set must hold messages that get cleaned"
    kept = contents(maildir / MAILDIR_BACKUP)
    assert kept == {mid: [originals[mid]] for mid in cleaned}  # each original kept, once
    assert not (maildir / JOURNAL).exists()
    assert list((maildir / "tmp").iterdir()) == []  # nothing staged left behind


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_each_step_then_a_rerun_leaves_every_message_once(
    tmp_path: Path, step: str, reference: dict[str, list[bytes]]
) -> None:
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    crashed = guard_clean(maildir, tmp_path, crash_at=step)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert (maildir / JOURNAL).exists()
    # Nothing is lost at the moment of the crash either: every message is in the Maildir or
    # (from the commit on) its original is in the backup.
    present = set(contents(maildir)) | set(contents(maildir / MAILDIR_BACKUP))
    assert present == set(originals)
    rerun = guard_clean(maildir, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(maildir, originals, reference)


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_in_a_later_batch_while_the_plan_goes_on(
    tmp_path: Path, step: str, reference: dict[str, list[bytes]]
) -> None:
    """Batches of at most 3: the second is written while later messages are still being
    cleaned. A crash there leaves the first batch done, the second to finish or undo, the rest
    untouched; and every message written had its plan line printed before (stdout is a pipe
    here: only what guard flushed before the SIGKILL is in it)."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    crashed = guard_clean(maildir, tmp_path, crash_at=f"{step}#2", batch=3, quiet=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert (maildir / JOURNAL).exists()
    present = set(contents(maildir)) | set(contents(maildir / MAILDIR_BACKUP))
    assert present == set(originals)
    kept = sorted(p.name for p in (maildir / MAILDIR_BACKUP).glob("*/*"))
    assert len(kept) >= 3  # the first batch, done
    planned = {line.rpartition("/")[2] for line in crashed.stdout.splitlines()}
    assert set(kept) <= planned
    rerun = guard_clean(maildir, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(maildir, originals, reference)


def test_ctrl_c_while_a_batch_is_written_finishes_it_and_writes_no_more(
    tmp_path: Path, reference: dict[str, list[bytes]]
) -> None:
    """SIGINT reaches the main thread (cleaning); the writer finishes the batch it is in and
    takes no other: nothing is left half-done, the rest stays as it was."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    stopped = guard_clean(maildir, tmp_path, sigint_at="after-commit", batch=3)
    assert stopped.returncode == 130, stopped.stderr
    assert not (maildir / JOURNAL).exists() and list((maildir / "tmp").iterdir()) == []
    now = contents(maildir)
    kept = contents(maildir / MAILDIR_BACKUP)
    assert set(now) == set(originals) and all(len(raws) == 1 for raws in now.values())
    assert len(kept) >= 3  # the batch being written when Ctrl-C came, done
    for mid, raws in now.items():  # each message once: cleaned (original kept) or as it was
        assert (raws == [originals[mid]]) != (kept.get(mid) == [originals[mid]])
    rerun = guard_clean(maildir, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(maildir, originals, reference)


@pytest.mark.parametrize("step", ("after-commit", "after-swap"))
def test_recovery_finds_originals_a_client_renamed(
    tmp_path: Path, step: str, reference: dict[str, list[bytes]]
) -> None:
    """Between the crash and the rerun a mail client marks every message read: files in new/
    move to cur/, flags after `:` change. Recovery finds them by their unique names."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    assert guard_clean(maildir, tmp_path, crash_at=step).returncode == -signal.SIGKILL
    for path in list(maildir.glob("[cn]*/*")):
        unique, _, info = path.name.partition(":")
        flags = info.partition(",")[2]
        path.rename(maildir / "cur" / f"{unique}:2,{''.join(sorted(set(flags + 'S')))}")
    rerun = guard_clean(maildir, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(maildir, originals, reference)


def test_a_dry_run_after_a_crash_says_so_and_changes_nothing(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    build_maildir(maildir)
    assert guard_clean(maildir, tmp_path, crash_at="after-commit").returncode == -signal.SIGKILL
    before = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    dry = guard_clean(maildir, tmp_path, "--dry-run")
    assert dry.returncode == 0
    assert "interrupted clean left" in dry.stderr and "half-done" in dry.stderr
    assert {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_second_clean_of_the_same_maildir_is_refused(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    build_maildir(maildir)
    before = contents(maildir)
    with MaildirLock(maildir):
        second = guard_clean(maildir, tmp_path)
    assert second.returncode == 27  # ExitCode.LOCKED
    assert second.stderr.strip().endswith("another guard clean is working on it")
    assert second.stderr.count("\n") == 1
    assert contents(maildir) == before


def test_many_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, list[bytes]]
) -> None:
    """In process, with batches of 5: the result is the reference's."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    ns = in_process_args(maildir, tmp_path, monkeypatch, 5)
    out, err = io.StringIO(), io.StringIO()
    assert clean_path.run_clean_path(ns, out, err) == 0, err.getvalue()
    assert_exactly_once(maildir, originals, reference)


def test_a_backup_that_cannot_be_made_leaves_every_original_in_place(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    build_maildir(maildir)
    before = contents(maildir)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the backup Maildir should go\n")
    failed = guard_clean(maildir, tmp_path, "--backup", str(blocker))
    assert failed.returncode == 28  # ExitCode.PARTIAL: each message reported
    lines = failed.stderr.splitlines()
    assert lines and all(line.startswith("guard: ") and "not cleaned" in line for line in lines)
    assert contents(maildir) == before
    assert not (maildir / JOURNAL).exists() and list((maildir / "tmp").iterdir()) == []


def test_a_backup_name_taken_by_another_message_gets_a_new_name(
    tmp_path: Path, reference: dict[str, list[bytes]]
) -> None:
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    cleaned = {mid for mid, raws in reference.items() if raws != [originals[mid]]}
    victim = next(p for p in sorted(maildir.glob("cur/*")) if message_id(p.read_bytes()) in cleaned)
    other = maildir / MAILDIR_BACKUP / "cur" / victim.name
    other.parent.mkdir(parents=True)
    other.write_bytes(b"Message-ID: <another@example>\r\n\r\nanother message\r\n")
    done = guard_clean(maildir, tmp_path)
    assert done.returncode == 0, done.stderr
    assert other.read_bytes().startswith(b"Message-ID: <another@example>")
    kept = contents(maildir / MAILDIR_BACKUP)
    assert kept.pop("<another@example>") == [other.read_bytes()]
    assert kept == {mid: [originals[mid]] for mid in cleaned}
    assert not [p for p in (maildir / MAILDIR_BACKUP).glob("*/*") if p.name.endswith(":")]


def in_process_args(
    maildir: Path, home: Path, monkeypatch: pytest.MonkeyPatch, batch: int, *args: str
) -> argparse.Namespace:
    """`guard clean MAILDIR --jobs 1 ARGS…` in this process, with batches of `batch` and no
    config or state of the user's."""
    monkeypatch.setattr(clean_path, "BATCH", batch)
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("GUARD_CONFIG", raising=False)
    parser = argparse.ArgumentParser()
    add_clean_path_arguments(parser)
    return parser.parse_args([str(maildir), "--jobs", "1", *args])


def run_in_process(
    maildir: Path, home: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> tuple[int, str]:
    ns = in_process_args(maildir, home, monkeypatch, batch, "-q")
    out, err = io.StringIO(), io.StringIO()
    return clean_path.run_clean_path(ns, out, err), err.getvalue()


def test_batches_are_written_while_the_rest_is_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, list[bytes]]
) -> None:
    """Before the last message is cleaned, messages are already replaced on disk."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    clean_refs = clean_path._clean_refs
    kept_before_the_last: list[int] = []

    def slow_at_the_end(*args: object, **kwargs: object) -> Iterator[object]:
        results = list(clean_refs(*args, **kwargs))  # type: ignore[arg-type]
        yield from results[:-1]
        deadline = time.monotonic() + 30  # the writer's first batches, given time
        while time.monotonic() < deadline:
            kept = list((maildir / MAILDIR_BACKUP).glob("*/*"))
            if len(kept) >= 4 and not (maildir / JOURNAL).exists():
                break
            time.sleep(0.01)
        kept_before_the_last.append(len(list((maildir / MAILDIR_BACKUP).glob("*/*"))))
        yield results[-1]

    monkeypatch.setattr(clean_path, "_clean_refs", slow_at_the_end)
    code, err = run_in_process(maildir, tmp_path, monkeypatch, batch=2)
    assert code == 0, err
    assert kept_before_the_last[0] >= 4
    assert_exactly_once(maildir, originals, reference)


def test_a_plan_that_fails_halfway_leaves_written_batches_whole_and_the_rest_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    in_order = sorted(maildir.glob("cur/*")) + sorted(maildir.glob("new/*"))  # as planned
    clean_refs = clean_path._clean_refs

    def fails_halfway(*args: object, **kwargs: object) -> Iterator[object]:
        for n, result in enumerate(clean_refs(*args, **kwargs)):  # type: ignore[arg-type]
            if n == COUNT // 2:
                raise OSError(errno.EAGAIN, "cannot start a worker")
            yield result

    monkeypatch.setattr(clean_path, "_clean_refs", fails_halfway)
    code, err = run_in_process(maildir, tmp_path, monkeypatch, batch=2)
    assert code == 3 and "guard: cannot clean: cannot start a worker" in err  # NO_INPUT
    assert not (maildir / JOURNAL).exists() and list((maildir / "tmp").iterdir()) == []
    now = contents(maildir)
    kept = contents(maildir / MAILDIR_BACKUP)
    assert set(now) == set(originals) and all(len(raws) == 1 for raws in now.values())
    for mid, raws in now.items():  # each message once: cleaned (original kept) or as it was
        assert (raws == [originals[mid]]) != (kept.get(mid) == [originals[mid]])
    assert all(path.exists() for path in in_order[COUNT // 2 :])  # never planned: untouched


def test_a_wrong_path_after_a_maildir_stops_the_run_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """The Maildir would be written while it is cleaned: every PATH is checked first."""
    maildir = tmp_path / "Maildir"
    build_maildir(maildir)
    before = contents(maildir)
    done = guard_clean(tmp_path / "missing", tmp_path, str(maildir))  # the Maildir first
    assert done.returncode == 3, done.stderr  # ExitCode.NO_INPUT
    assert "missing: no such file or directory" in done.stderr
    assert contents(maildir) == before
    assert not (maildir / MAILDIR_BACKUP).exists()


def test_a_reader_that_leaves_mid_plan_is_not_an_unreadable_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`guard clean PATH | head`: the plan is printed while the Maildir is written, so the broken
    pipe reaches the command, which leaves it to guard.cli.main (exit 0, no message); what was
    written stays whole."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)

    class LeavesAfterTwo(io.StringIO):
        def write(self, text: str) -> int:
            if self.getvalue().count("\n") >= 2:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")
            return super().write(text)

    ns = in_process_args(maildir, tmp_path, monkeypatch, 2)
    err = io.StringIO()
    with pytest.raises(BrokenPipeError):
        clean_path.run_clean_path(ns, LeavesAfterTwo(), err)
    assert err.getvalue() == ""
    assert not (maildir / JOURNAL).exists()
    now = contents(maildir)
    kept = contents(maildir / MAILDIR_BACKUP) if (maildir / MAILDIR_BACKUP).exists() else {}
    assert set(now) == set(originals) and all(len(raws) == 1 for raws in now.values())
    for mid, raws in now.items():
        assert (raws == [originals[mid]]) != (kept.get(mid) == [originals[mid]])


def test_a_finished_batchs_journal_brought_back_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, list[bytes]]
) -> None:
    """A batch's journal goes without an fsync of its own (maildir_pipe): a power cut may bring
    it back, commit line and all, after the batch has finished. The next run finishes that
    batch again, which must change nothing."""
    from guard.mail import maildir_clean

    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    journals: list[bytes] = []
    forget = maildir_clean._forget

    def remembering(journal: Path, sync: bool = True) -> None:
        journals.append(journal.read_bytes())
        forget(journal, sync)

    monkeypatch.setattr(maildir_clean, "_forget", remembering)
    code, err = run_in_process(maildir, tmp_path, monkeypatch, batch=100)
    assert code == 0, err
    assert journals and all(maildir_clean.COMMIT.encode() in j for j in journals)
    monkeypatch.setattr(maildir_clean, "_forget", forget)
    (maildir / JOURNAL).write_bytes(journals[0])  # the first batch's, batches later
    rerun = guard_clean(maildir, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(maildir, originals, reference)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds files by /proc/self/fd")
@pytest.mark.parametrize("fails", ["write", "fsync"])
def test_a_copy_that_cannot_be_staged_leaves_its_original_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, list[bytes]], fails: str
) -> None:
    """The disk fills while one cleaned copy is written, or its fsync reports an I/O error:
    that message is reported and stays as it was (no backup link, nothing staged left); the
    rest of its batch is cleaned."""
    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    cleaned = {mid for mid, raws in reference.items() if raws != [originals[mid]]}
    victim = next(mid for mid in sorted(cleaned))
    victim_text = victim.encode()
    real = {"write": os.write, "fsync": os.fsync}
    staged: set[int] = set()
    seen: list[int] = []

    def staged_victim(fd: int) -> bool:
        return Path(os.readlink(f"/proc/self/fd/{fd}")).parent == maildir / "tmp"

    def write(fd: int, data: bytes | memoryview) -> int:
        if victim_text in bytes(data) and staged_victim(fd):
            staged.add(fd)
            seen.append(fd)
            if fails == "write":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real["write"](fd, data)

    def fsync(fd: int) -> None:
        if fails == "fsync" and fd in staged:
            staged.discard(fd)  # the number is free for another file once this one is closed
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real["fsync"](fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    ns = in_process_args(maildir, tmp_path, monkeypatch, 500, "-q")
    out, err = io.StringIO(), io.StringIO()
    code = clean_path.run_clean_path(ns, out, err)
    monkeypatch.undo()
    assert seen, "the victim's copy was staged"
    assert code == 28, err.getvalue()  # ExitCode.PARTIAL
    reason = os.strerror(errno.ENOSPC if fails == "write" else errno.EIO)
    assert err.getvalue().count("not cleaned") == 1 and reason in err.getvalue()
    expected = dict(reference, **{victim: [originals[victim]]})
    assert contents(maildir) == expected
    kept = contents(maildir / MAILDIR_BACKUP)
    assert kept == {mid: [originals[mid]] for mid in cleaned - {victim}}
    assert not (maildir / JOURNAL).exists()
    assert list((maildir / "tmp").iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds files by /proc/self/fd")
@pytest.mark.parametrize("which", ["journal", "copy", "folder"])
def test_a_write_step_that_fails_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, list[bytes]],
    which: str,
) -> None:  # fmt: skip
    """With one staged copy open at a time, in batches of 4: the close of the journal being
    written fails (the batch fails as a whole, its draft goes), the close of a staged copy
    fails (NFS reports a failed write there: that message fails), or the backup folder's fsync
    fails after the batch's intent (the batch fails; the next batch finishes its journal before
    writing its own). The writer never waits for ever for a free slot, nothing is left in
    tmp/ or half-done, and the next run cleans every message exactly once."""
    from guard.mail import maildir_clean

    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    monkeypatch.setattr(maildir_clean, "_OPEN_STAGED", 1)
    monkeypatch.setattr(clean_path, "PIECE_MAX", 4)
    real_close, real_fsync_path = os.close, maildir_clean._fsync_path
    failed: list[object] = []

    def close(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        journal = path.name.startswith(JOURNAL)
        fails = path.parent == maildir / "tmp" and journal == (which == "journal")
        real_close(fd)
        if fails and which != "folder" and not failed:
            failed.append(fd)
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    def fsync_path(path: Path) -> None:
        if which == "folder" and path == maildir / MAILDIR_BACKUP / "cur" and not failed:
            failed.append(path)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync_path(path)

    monkeypatch.setattr(os, "close", close)
    monkeypatch.setattr(maildir_clean, "_fsync_path", fsync_path)
    ns = in_process_args(maildir, tmp_path, monkeypatch, 4, "-q")
    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(clean_path.run_clean_path(ns, out, err)))
    run.daemon = True
    run.start()
    run.join(60)
    monkeypatch.undo()
    assert not run.is_alive(), "the writer hangs"
    assert failed and codes == [28], err.getvalue()  # ExitCode.PARTIAL
    lines = err.getvalue().splitlines()
    assert lines and all("not cleaned" in line and os.strerror(errno.EIO) in line for line in lines)
    assert len(lines) == (1 if which == "copy" else 4)  # the message, or its batch of 4
    assert not (maildir / JOURNAL).exists()
    assert list((maildir / "tmp").iterdir()) == []
    kept = contents(maildir / MAILDIR_BACKUP)
    assert all(kept[mid] == [originals[mid]] for mid in kept)
    done = guard_clean(maildir, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(maildir, originals, reference)


def test_a_journal_line_is_what_json_writes() -> None:
    from guard.mail.maildir_clean import _Entry

    for text in ["a", 'quote " and \\ back', "é\t\n\u2028", "1.M2P3Q4.host\\057:2,S", "\x00\udcff"]:
        entry = _Entry(text, f"{text}o", f"s{text}", "f", f"/b/{text}")
        assert entry.line() == json.dumps(entry.__dict__, separators=(",", ":")) + "\n"


def test_a_worker_result_crosses_the_pipe_whole() -> None:
    from guard.clean.message import CleanResult

    split, join = clean_path._result_parts(CleanResult)
    changed = CleanResult(b"data", True, {"pixel": 2}, ("r.a", "r.b"), ("o",), ("s",), True, None)
    assert join(*split(changed)) == changed
    unchanged = CleanResult(b"data", False, skipped="allowlisted sender")
    assert join(*split(unchanged)) == CleanResult(b"", False, skipped="allowlisted sender")


def test_copies_staged_but_not_yet_handed_over_are_closed_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies go to the fsync threads in groups: Ctrl-C while a group fills closes the copies
    already in it, and the next run undoes the batch as after any interruption."""
    from guard.mail import maildir_clean

    maildir = tmp_path / "Maildir"
    originals = build_maildir(maildir)
    items = [
        maildir_clean.Replacement(str(path), b"Subject: cleaned\n\nbody\n", path.name)
        for sub in ("cur", "new")
        for path in sorted((maildir / sub).iterdir())
    ]
    assert -(-len(items) // maildir_clean._FSYNC_THREADS) >= 2  # groups of two or more
    real = maildir_clean._stage
    opened: list[int] = []

    def stage(*args: object) -> int:
        if len(opened) == 1:
            raise KeyboardInterrupt
        opened.append(real(*args))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(maildir_clean, "_stage", stage)
    with pytest.raises(KeyboardInterrupt):
        maildir_clean.replace_batch(maildir, maildir / MAILDIR_BACKUP, items)
    with pytest.raises(OSError) as closed:
        os.fstat(opened[0])
    assert closed.value.errno == errno.EBADF
    assert (maildir / JOURNAL).exists()
    maildir_clean.finish_interrupted(maildir)
    assert contents(maildir) == {mid: [raw] for mid, raw in originals.items()}
    assert list((maildir / "tmp").iterdir()) == []
