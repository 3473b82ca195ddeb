"""Replacing messages of a Maildir by their cleaned copies: in batches, crash-safe, each original
kept in a backup Maildir.

A batch goes through these steps:

1. **intent**: the journal `guard-clean.journal` in the Maildir's root lists the batch: for
   each message its file, the staged copy's name in `tmp/`, the cleaned copy's new name and
   where the original is kept (the journal and the root fsynced, together);
2. **keep** and **stage**: every original is hard-linked into the backup Maildir; then every
   cleaned copy is written to `tmp/` (one after the other) and fsynced on several threads
   (handed over in groups of a few, about one group a thread) as soon as its group is written,
   while the backup's directories are fsynced;
3. **commit**: a line `commit` is appended to the journal (fsynced);
4. **swap**: the cleaned copies are renamed into `cur/` or `new/` under their new names
   (directories fsynced);
5. **drop**: the originals are unlinked (directories fsynced); then the journal goes.

A batch's fsyncs are issued together from threads, so the file system commits many of them at
once: one at a time they cost ~1 ms each here (ext4 on a virtual disk), 400 together ~40 ms.
Files are created by one thread only: creating them in one directory from many threads makes
the kernel spin on the directory's lock.
A staged copy is fsynced through the descriptor that wrote it (not opened again by name), and
its times set through it too. `guard clean PATH` hands batches to `MaildirWriter` from a thread
while the plan goes on (guard/mail/maildir_pipe.py): a batch is the same unit of crash safety
whatever its size.

A crash leaves the journal behind, and the next run finishes it before anything else
(`finish_interrupted`): without the commit line it rolls the batch back (staged copies and
backup links removed: every original is where it was), with it, it rolls forward (steps 4
and 5). Either way every message is in the Maildir exactly once, and its original in the backup
when it was cleaned. A mail client may rename a file meanwhile (its flags after `:`, or `new/`
to `cur/`), so recovery finds each message by its unique name, the part before `:`. A batch
whose step of the whole batch fails (a directory's fsync, the commit) leaves its journal as a
crash would, and the run's next batch finishes it the same way before writing its own: a journal
is never replaced while it lists work to undo or redo.

While it works on a Maildir, guard holds an exclusive `flock` on its `tmp/` directory: a second
`guard clean` of the same Maildir is refused (`MaildirLocked`) instead of racing the first.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a batch is written: `guard strip` needs none
    from concurrent.futures import Executor, Future

JOURNAL = "guard-clean.journal"
COMMIT = "commit"
BATCH = 500  # messages per batch: a crash redoes at most this much work
_FSYNC_THREADS = 16  # fsyncs in flight together; the file system commits them as a group
_OPEN_STAGED = 64  # staged copies written and not yet fsynced and closed, at most

_counter = 0


class MaildirLocked(Exception):
    """Another guard process is cleaning this Maildir; str(exc) is one line."""


@dataclass(frozen=True)
class Replacement:
    """One message to replace: its file, and the cleaned bytes."""

    original: str | Path
    """The message's file (a plain string from `guard clean PATH`: no Path per message)."""
    data: bytes
    source: str  # how reports name the message


@dataclass(frozen=True)
class _Entry:
    """One message's line in the journal; paths relative to the Maildir, except `backup`."""

    sub: str  # cur | new
    original: str  # file name in `sub`
    staged: str  # file name in tmp/
    final: str  # the cleaned copy's file name in `sub`
    backup: str  # where the original is kept (absolute)

    def line(self) -> str:
        """`json.dumps(self.__dict__, separators=(",", ":"))` and a newline, written out: dumps
        builds a JSONEncoder and a C encoder for every line (~5 times the work)."""
        q = _quote()
        return (
            f'{{"sub":{q(self.sub)},"original":{q(self.original)},"staged":{q(self.staged)},'
            f'"final":{q(self.final)},"backup":{q(self.backup)}}}\n'
        )


@cache
def _quote() -> Callable[[str], str]:
    """json's quoting of a string (C; ASCII out, as json.dumps's default). Imported when first
    asked: a dry run's or strip's start needs none."""
    from json.encoder import encode_basestring_ascii

    quote: Callable[[str], str] = encode_basestring_ascii
    return quote


@cache
def _host() -> str:
    """The host part of new names: asked once a process, not once a message. os.uname's node
    name is what gethostname(2) answers (glibc reads it from uname), without importing socket
    (~14 M instructions of a start that writes no batch or forks no worker)."""
    return os.uname().nodename.replace("/", r"\057").replace(":", r"\072") or "localhost"


def unique_name() -> str:
    """A Maildir file name nobody else will pick (time, microseconds, pid, counter, host)."""
    global _counter
    _counter += 1
    now = time.time()
    return f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{_counter}.{_host()}"


def _unique_part(name: str) -> str:
    return name.partition(":")[0]


# -- durability -----------------------------------------------------------------------------------


def _fsync_path(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_all(paths: Iterable[Path], pool: Executor | None = None) -> None:
    """fsync every file or directory, many at a time (on `pool`'s threads if given); raises the
    first error."""
    unique = list(dict.fromkeys(paths))
    if len(unique) <= 1:
        for path in unique:
            _fsync_path(path)
        return
    if pool is not None:
        for _ in pool.map(_fsync_path, unique):
            pass
        return
    from guard.mail.threads import ThreadPoolExecutor  # here: `guard strip` needs none

    with ThreadPoolExecutor(min(_FSYNC_THREADS, len(unique))) as own:
        for _ in own.map(_fsync_path, unique):
            pass


def thread_pool() -> Executor:
    """The threads a run's batches stage, keep and fsync with (`replace_batch(pool=...)`)."""
    from guard.mail.threads import ThreadPoolExecutor

    _quote()  # imported here, before any batch: the writer's thread imports nothing
    return ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="guard-maildir")


def write_new(path: Path, data: bytes, mode: int = 0o600, sync: bool = True) -> None:
    """Create `path` (it must not exist) holding `data`; fsynced unless the caller batches."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def ensure_maildir(path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    marker = path / "maildirfolder"  # Maildir++: this directory is a sub-folder
    if path.name.startswith(".") and not marker.exists():
        marker.touch(mode=0o600)


# -- the lock -------------------------------------------------------------------------------------


class MaildirLock:
    """An exclusive flock on the Maildir's tmp/ (released by the kernel, even on SIGKILL)."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.fd = -1

    def __enter__(self) -> MaildirLock:
        (self.maildir / "tmp").mkdir(exist_ok=True, mode=0o700)
        self.fd = os.open(self.maildir / "tmp", os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = -1
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise MaildirLocked(
                    f"{self.maildir}: another guard clean is working on it"
                ) from None
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- one batch ------------------------------------------------------------------------------------


def _crash_point(step: str) -> None:
    """The test-only crash hook of guard.mail.imap.common (inert unless its variable is set)."""
    if "GUARD_TEST_CRASH_AT" in os.environ or "GUARD_TEST_SIGINT_AT" in os.environ:
        from guard.mail.imap.common import crash_point

        crash_point(f"maildir-{step}")


def _prefix(root: str | Path) -> str:
    """`root` as os.path.join joins a name onto it: `_prefix(root) + name`. Paths are joined
    as strings in the steps of a batch: os.path.join costs ~3 times as much (and a pathlib join
    ~30 times), and a batch makes half a dozen per message."""
    text = os.fspath(root)
    return text if not text or text.endswith("/") else f"{text}/"


def _entry(backup: str, item: Replacement) -> _Entry:
    """Where each file of the message's replacement goes (nothing written yet); `backup` is the
    backup Maildir's `_prefix`."""
    folder, name = os.path.split(item.original)
    sub = os.path.basename(folder)  # cur | new
    info = name.partition(":")[2]
    stem = unique_name()
    # A new name, not the old one: servers (Dovecot) key a message's identity and cached size
    # on the file name, so changed content under the old name would look like corruption.
    flags = f":{info}" if info else ""
    final = f"{stem},S={len(item.data)}{flags}"
    dest = f"{backup}{sub}/{name}" if sub else os.path.join(backup, sub, name)
    # os.access: os.path.exists without building a stat result
    if os.access(dest, os.F_OK) and not _same_message(dest, item.original):
        dest = os.path.join(backup, sub, f"{unique_name()}{flags}")  # another message, same name
    return _Entry(sub, name, stem, final, dest)


def _same_message(a: str | Path, b: str | Path) -> bool:
    return os.path.samefile(a, b) or Path(a).read_bytes() == Path(b).read_bytes()


def _stage(maildir: str, item: Replacement, entry: _Entry) -> int:
    """The cleaned copy, in tmp/ (`maildir` is the Maildir's `_prefix`), with the original's
    mode and times; its descriptor, open for the fsync (`_settle`). Copies are created one after
    another: threads creating files in one directory all wait for its lock, and the kernel spins
    while they wait (measured: ~0.3 s of CPU for 358 copies with 16 threads)."""
    stat = os.stat(item.original)
    fd = os.open(f"{maildir}tmp/{entry.staged}", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 stat.st_mode & 0o777)  # fmt: skip
    try:
        view = memoryview(item.data)
        while view:
            view = view[os.write(fd, view) :]
        os.utime(fd, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # clients show it as received
    except BaseException:
        os.close(fd)
        raise
    return fd


def _settle(fd: int, gate: threading.BoundedSemaphore) -> str | None:
    """fsync a staged copy through the descriptor that wrote it, then close it; why either
    failed, or None. Run on the batch's threads, so that the file system commits many at once."""
    reason = None
    try:
        try:
            os.fsync(fd)
        except OSError as exc:
            reason = exc.strerror or str(exc)
        try:
            os.close(fd)  # NFS may report a failed write only here
        except OSError as exc:
            reason = reason or exc.strerror or str(exc)
    finally:
        gate.release()  # the writer waits on this gate for a free slot
    return reason


def _settle_all(fds: Sequence[int], gate: threading.BoundedSemaphore) -> list[str | None]:
    """`_settle` each, in order."""
    return [_settle(fd, gate) for fd in fds]


def _keep_original(original: str | Path, dest: str) -> bool:
    """Put the original into the backup Maildir (hard link when possible); False if it was
    there already."""
    try:
        os.link(original, dest)
    except FileExistsError:
        return False  # the same message, kept already by an earlier run (see _entry)
    except OSError:
        staged = Path(dest).parent.parent / "tmp" / unique_name()
        write_new(staged, Path(original).read_bytes())
        os.rename(staged, dest)
    return True


def _write_journal(maildir: Path, entries: Sequence[_Entry], pool: Executor) -> Path:
    """The intent, on disk before anything of the batch is written: the journal and the
    Maildir's directory fsynced together (until both are, nothing is staged or linked, so a
    journal torn by a power cut lists nothing that has to be undone)."""
    journal = maildir / JOURNAL
    staged = maildir / "tmp" / f"{JOURNAL}.{os.getpid()}"
    try:
        write_new(staged, "".join(e.line() for e in entries).encode(), sync=False)
        os.replace(staged, journal)
    except BaseException:
        staged.unlink(missing_ok=True)  # no journal, so nothing of the batch is written
        raise
    fsync_all([journal, maildir], pool)
    return journal


def _commit(journal: Path) -> None:
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, f"{COMMIT}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _forget(journal: Path, sync: bool = True) -> None:
    """The journal goes. Unsynced, a power cut can bring it back: the next run then finishes a
    batch that is done, which changes nothing (every cleaned copy is in, every original out)."""
    journal.unlink(missing_ok=True)
    if sync:
        _fsync_path(journal.parent)


def _drop_original(maildir: Path, entry: _Entry, prefix: str) -> None:
    """Unlink the original, found by its unique name if a client renamed it (new flags);
    `prefix` is the Maildir's `_prefix`."""
    try:
        os.unlink(f"{prefix}{entry.sub}/{entry.original}")
        return
    except FileNotFoundError:
        pass
    found = _messages_by_unique_part(maildir).get(_unique_part(entry.original))
    if found is None or not _same_message(found, Path(entry.backup)):
        return  # removed by a client meanwhile; it is in the backup
    found.unlink()


def _undo_stage(maildir: Path, entry: _Entry, linked: bool) -> None:
    """Nothing of a message whose copy could not be staged is left behind: its backup link goes
    too."""
    (maildir / "tmp" / entry.staged).unlink(missing_ok=True)
    if linked:
        Path(entry.backup).unlink(missing_ok=True)


def _keep_and_stage(
    maildir: Path, planned: Sequence[tuple[Replacement, _Entry]],
    failed: list[tuple[Replacement, str]], pool: Executor,
) -> list[tuple[Replacement, _Entry]]:  # fmt: skip
    """Steps 2 and 3: every original linked into the backup (one after the other: a link is
    quick), then every cleaned copy staged, here, and fsynced on `pool` as soon as its group
    is written, together with the backup's directories (one round of fsyncs the file system
    commits as a group). At most _OPEN_STAGED copies are open at a time. Returns the messages
    done; adds the others to `failed`. A directory's fsync that fails raises."""
    root = _prefix(maildir)
    kept: list[tuple[Replacement, _Entry, bool]] = []
    for item, entry in planned:
        try:
            kept.append((item, entry, _keep_original(item.original, entry.backup)))
        except OSError as exc:
            failed.append((item, exc.strerror or str(exc)))
    folders = map(Path, dict.fromkeys(os.path.dirname(entry.backup) for _, entry, _ in kept))
    syncs = [pool.submit(_fsync_path, folder) for folder in folders]
    gate = threading.BoundedSemaphore(_OPEN_STAGED)
    # The copies go to the pool in groups, one future per group and at most about one group per
    # thread: a future per copy cost more in hand-offs between the threads (a Future, a queue
    # wake-up, a result's notify) than its fsync's own work. Fewer than _OPEN_STAGED copies
    # wait in a group not yet handed over, so the gate always has some coming back.
    size = max(1, min(-(-len(kept) // _FSYNC_THREADS), _OPEN_STAGED // 2))
    settling: list[tuple[list[tuple[Replacement, _Entry, bool]], Future[list[str | None]]]] = []
    group: list[tuple[Replacement, _Entry, bool]] = []
    fds: list[int] = []
    try:
        for item, entry, linked in kept:
            gate.acquire()
            try:
                fd = _stage(root, item, entry)
            except OSError as exc:
                gate.release()
                _undo_stage(maildir, entry, linked)
                failed.append((item, exc.strerror or str(exc)))
                continue
            except BaseException:
                gate.release()
                raise
            group.append((item, entry, linked))
            fds.append(fd)
            if len(fds) >= size:
                settling.append((group, pool.submit(_settle_all, fds, gate)))
                group, fds = [], []
        if fds:
            settling.append((group, pool.submit(_settle_all, fds, gate)))
            fds = []
    finally:
        for fd in fds:  # staged, not handed over: interrupted (the journal undoes the batch)
            os.close(fd)
            gate.release()
    done: list[tuple[Replacement, _Entry]] = []
    for group, settled in settling:
        for (item, entry, linked), reason in zip(group, settled.result(), strict=True):
            if reason is None:
                done.append((item, entry))
            else:
                _undo_stage(maildir, entry, linked)
                failed.append((item, reason))
    for sync in syncs:
        sync.result()
    return done


def replace_batch(
    maildir: Path, backup: Path, items: Sequence[Replacement], pool: Executor | None = None,
    sync_end: bool = True,
) -> list[tuple[Replacement, str]]:  # fmt: skip
    """Replace each message by its cleaned copy (the steps in this module's docstring); returns
    the messages that could not be, each with the reason: their originals stay in place.
    `pool` (`thread_pool()`) is the threads to stage and fsync with; without it, the batch makes
    its own. `sync_end=False` leaves the journal's removal to the caller's fsync of the Maildir
    (once after many batches: the next batch's journal replaces it anyway)."""
    if pool is None:
        with thread_pool() as own:
            return replace_batch(maildir, backup, items, own, sync_end)
    try:
        ensure_maildir(backup)
    except OSError as exc:
        return [(item, exc.strerror or str(exc)) for item in items]
    failed: list[tuple[Replacement, str]] = []
    planned: list[tuple[Replacement, _Entry]] = []
    backup_root = _prefix(backup)
    for item in items:
        try:
            planned.append((item, _entry(backup_root, item)))
        except OSError as exc:
            failed.append((item, exc.strerror or str(exc)))
    if not planned:
        return failed
    if (maildir / JOURNAL).exists():
        # A batch before this one failed after its intent (a step of the whole batch raised):
        # its journal is finished first, never replaced while it lists work to undo or redo.
        finish_interrupted(maildir)
    journal = _write_journal(maildir, [entry for _, entry in planned], pool)
    _crash_point("after-intent")
    ready = _keep_and_stage(maildir, planned, failed, pool)
    _crash_point("before-commit")
    _commit(journal)
    _crash_point("after-commit")
    swapped: list[tuple[Replacement, _Entry]] = []
    root = _prefix(maildir)
    for item, entry in ready:
        try:
            os.rename(f"{root}tmp/{entry.staged}", f"{root}{entry.sub}/{entry.final}")
        except OSError as exc:
            (maildir / "tmp" / entry.staged).unlink(missing_ok=True)
            failed.append((item, exc.strerror or str(exc)))
            continue
        swapped.append((item, entry))
    folders = [maildir / sub for sub in dict.fromkeys(entry.sub for _, entry in swapped)]
    fsync_all(folders, pool)
    _crash_point("after-swap")
    for item, entry in swapped:
        try:
            _drop_original(maildir, entry, root)
        except OSError as exc:
            failed.append((item, f"cleaned, but the original stays too: {exc.strerror}"))
    fsync_all(folders, pool)
    _forget(journal, sync=sync_end)
    return failed


# -- recovery -------------------------------------------------------------------------------------


def pending(maildir: Path) -> int:
    """How many messages an interrupted run left for `finish_interrupted` (0: none)."""
    journal = maildir / JOURNAL
    return len(_read_journal(journal)[0]) if journal.exists() else 0


def _read_journal(journal: Path) -> tuple[list[_Entry], bool]:
    import json  # here: only an interrupted run's journal is read

    entries: list[_Entry] = []
    committed = False
    for line in journal.read_text().splitlines():
        if line == COMMIT:
            committed = True
        elif line.startswith("{"):
            try:
                entries.append(_Entry(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line torn by the crash: written before the commit, never after
    return entries, committed


def _messages_by_unique_part(maildir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for sub in ("cur", "new"):
        try:
            names = os.listdir(maildir / sub)
        except FileNotFoundError:
            continue
        for name in names:
            found[_unique_part(name)] = maildir / sub / name
    return found


def finish_interrupted(maildir: Path) -> int:
    """Finish the batch an interrupted run left (see the module's docstring); returns how many
    messages it listed. Call with the Maildir's lock held."""
    journal = maildir / JOURNAL
    if not journal.exists():
        return 0
    entries, committed = _read_journal(journal)
    present = _messages_by_unique_part(maildir)
    touched: list[Path] = []
    for entry in entries:
        staged = maildir / "tmp" / entry.staged
        original = present.get(_unique_part(entry.original))
        backup = Path(entry.backup)
        if not committed:
            staged.unlink(missing_ok=True)
            if original is not None and backup.exists() and os.path.samefile(backup, original):
                backup.unlink()
                touched.append(backup.parent)
            continue
        final = present.get(_unique_part(entry.final))
        if final is None and staged.exists():
            if original is None:
                staged.unlink()  # the message was deleted meanwhile: do not bring it back
                continue
            final = original.parent / entry.final
            os.rename(staged, final)
            touched.append(final.parent)
        if (
            final is not None
            and original is not None
            and backup.exists()
            and _same_message(backup, original)
        ):
            original.unlink()
            touched.append(original.parent)
    fsync_all(touched)
    _forget(journal)
    return len(entries)
