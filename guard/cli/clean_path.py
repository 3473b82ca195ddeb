"""`guard clean PATH`: a Maildir or an mbox, cleaned in place.

Calls `guard.clean.message.clean_message` for every message and prints its plan line as it
comes; with `--dry-run` it writes nothing at all; otherwise it keeps every original (see
docs/clean.md). A Maildir's cleaned copies are written while the rest is still being cleaned
(guard/mail/maildir_pipe.py), each after its plan line is printed; an mbox is written after its
whole plan. Imported only when `guard clean` does not clean an IMAP account.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from guard.cli.clean import policy_for
from guard.cli.common import MAILDIR_BACKUP, MBOX_BACKUP_SUFFIX, start_done
from guard.engine.limits import DEFAULT_LIMITS
from guard.mail.exitcodes import ExitCode
from guard.mail.files import (
    MessageRef,
    SourceError,
    is_maildir,
    is_mbox,
    maildir_refs,
    mbox_refs,
    read_file,
)
from guard.mail.maildir_clean import (
    BATCH,
    MaildirLock,
    MaildirLocked,
    Replacement,
    finish_interrupted,
    fsync_all,
    pending,
    write_new,
)
from guard.mail.maildir_pipe import MaildirWriter

if TYPE_CHECKING:  # importing guard.clean.message costs ~0.1 s: only commands that clean pay for it
    import argparse

    from guard.clean.message import CleanResult, Policy
    from guard.engine.ruleset import (
        RuleSet,  # and the rules only those that use them (not `guard ui`)
    )


def load_ruleset() -> RuleSet:
    """guard.engine.rules_load.load_ruleset, imported when first called: `guard ui` starts without
    the rules. Less their examples, which cleaning never reads."""
    from guard.engine.rules_load import load_ruleset as load

    return load(examples=False)


class CleanPathError(Exception):
    """A path cannot be cleaned; str(exc) is one line."""


@dataclass
class _Item:
    ref: MessageRef
    result: CleanResult
    """An unchanged message's `data` is not kept (b""): nothing writes it, and a large Maildir's
    plan would otherwise hold every message in memory."""


@dataclass
class _Target:
    path: Path
    kind: str  # "maildir" | "mbox"
    refs: list[MessageRef] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)  # an mbox's plan (a Maildir keeps none)
    snapshot: bytes = b""  # an mbox as read for the plan: it must not change before the rewrite


@dataclass
class _Counts:
    """What the summary line counts."""

    messages: int = 0
    changed: int = 0
    skipped: int = 0

    def add(self, result: CleanResult) -> None:
        self.messages += 1
        self.changed += result.changed
        self.skipped += bool(result.skipped)


def _read_ref(ref: MessageRef) -> bytes | str:
    """The message bytes, or why they cannot be had."""
    try:
        if ref.length < 0:
            raw = read_file(ref.path, DEFAULT_LIMITS.max_message_bytes)
            return "larger than the message size limit" if raw is None else raw
        return ref.read()
    except OSError as exc:
        return f"cannot read: {exc.strerror}"


def _clean_one(ref: MessageRef, rules: RuleSet, policy: Policy) -> CleanResult:
    from guard.clean.message import CleanResult, clean_message

    raw = _read_ref(ref)
    if isinstance(raw, str):
        return CleanResult(b"", False, skipped=raw)
    return clean_message(raw, rules, policy)


def _clean_ref(ref: MessageRef, rules: RuleSet, policy: Policy) -> CleanResult:
    from dataclasses import replace

    result = _clean_one(ref, rules, policy)
    return result if result.changed else replace(result, data=b"")


def _result_parts(
    result_class: type[CleanResult],
) -> tuple[Callable[[CleanResult], tuple[Any, bytes]], Callable[[Any, bytes], CleanResult]]:
    """How a worker's CleanResult crosses the pipe: its fields but `data` as a tuple, `data` (of
    a changed message only: nothing writes the others) as the bytes sent as they are."""
    names = [f.name for f in fields(result_class)]
    assert names[0] == "data"  # join passes it first, the rest in their order
    others = attrgetter(*names[1:])

    def split(result: CleanResult) -> tuple[Any, bytes]:
        return others(result), result.data if result.changed else b""

    def join(meta: Any, data: bytes) -> CleanResult:
        return result_class(data, *meta)

    return split, join


def _clean_refs(
    refs: Sequence[MessageRef], rules: RuleSet, policy: Policy, jobs: int | None
) -> Iterator[CleanResult]:
    """Each message's cleaning (pure: read, parse, detect, rewrite), in input order. A large
    input is cleaned on every core, in supervised worker processes (guard/mail/supervise.py): a
    message that crashes or hangs one is left as it was, with the reason; this process does
    all the writing, after the plan, as before."""
    from guard.clean.message import CleanResult
    from guard.engine.domains import warm_up
    from guard.engine.timelimit import hold_handler
    from guard.mail.scan import CHUNK, PARALLEL_THRESHOLD, can_fork, default_jobs, tune_gc

    jobs = default_jobs() if jobs is None else max(1, jobs)
    if refs:  # as for the scan: the suffix list built once, before any worker is forked
        warm_up()
        tune_gc()
    if jobs == 1 or len(refs) < PARALLEL_THRESHOLD or not can_fork():
        for ref in refs:
            yield _clean_ref(ref, rules, policy)
        return
    from guard.mail import supervise  # here: a small input is cleaned here, no worker started

    def work(i: int) -> CleanResult:
        hold_handler()  # a worker only cleans: its time limits keep the handler (two calls fewer)
        supervise.probe_raw(refs[i].read)
        return _clean_one(refs[i], rules, policy)

    def failed(_i: int, reason: str) -> CleanResult:
        return CleanResult(b"", False, skipped=reason)

    split, join = _result_parts(CleanResult)
    yield from supervise.map_supervised(
        work,
        len(refs),
        failed,
        jobs=jobs,
        chunk=CHUNK,
        seconds=supervise.item_seconds(DEFAULT_LIMITS.max_seconds),
        split=split,
        join=join,
    )


def _resolve(path: str) -> _Target:
    """What `path` is and which messages it holds; every PATH is resolved before any is cleaned,
    so a wrong one stops the run before anything is written."""
    target_path = Path(path)
    if not target_path.exists():
        raise CleanPathError(f"{path}: no such file or directory")
    if target_path.is_dir() and is_maildir(target_path):
        return _Target(target_path, "maildir", list(maildir_refs(target_path, path)))
    if target_path.is_file() and is_mbox(target_path):
        snapshot = target_path.read_bytes()
        return _Target(target_path, "mbox", list(mbox_refs(target_path, path)), snapshot=snapshot)
    raise CleanPathError(f"{path}: not a Maildir (cur/, new/) or an mbox file")


def _badges(result: CleanResult) -> str:
    from guard.clean.message import REMOVED_KINDS

    if result.skipped:
        return f"[skipped: {result.skipped}]"
    if not result.changed:
        return "[clean]"
    return " ".join(f"[{kind} {result.removed[kind]}]" for kind in REMOVED_KINDS
                    if result.removed.get(kind))  # fmt: skip


def _print_item(ref: MessageRef, result: CleanResult, ns: argparse.Namespace, out: IO[str]) -> None:
    if getattr(ns, "quiet", False):
        return
    out.write(f"{_badges(result):<40} {ref.source}\n")
    if getattr(ns, "verbose", False) and result.rules:
        out.write(f"    rules: {' '.join(result.rules)}\n")
    if getattr(ns, "verbose", False):
        for link in result.opaque_links:
            out.write(f"    opaque link kept: {link}\n")
        for link in result.security_links_kept:
            out.write(f"    security-wrapped link kept: {link}\n")


# -- Maildir --------------------------------------------------------------------------------------

PIECE_MAX = 64
"""At most this many cleaned copies are handed to the writer at a time (fewer in a small
Maildir, so that it too is written in several batches while it is cleaned): the first batch
starts early, and the last, written after the plan has ended, is small."""


def _piece(refs: int) -> int:
    return max(4, min(PIECE_MAX, refs // 16))


def _clean_maildir(
    target: _Target, results: Iterator[CleanResult], ns: argparse.Namespace, out: IO[str],
    err: IO[str], counts: _Counts,
) -> int:  # fmt: skip
    """Print each message's plan line and hand its cleaned copy to the writer, which replaces
    messages in crash-safe batches (guard/mail/maildir_pipe.py, maildir_clean.py) while the
    rest is cleaned. Returns how many could not be written."""
    backup = Path(ns.backup) if getattr(ns, "backup", None) else target.path / MAILDIR_BACKUP
    writer = MaildirWriter(target.path, backup, BATCH)
    piece = _piece(len(target.refs))
    held: list[Replacement] = []
    failures = 0

    def report(failed: list[tuple[Replacement, str]]) -> int:
        for item, reason in failed:
            err.write(f"guard: {item.source}: not cleaned: {reason}\n")
        return len(failed)

    try:
        for ref, result in zip(target.refs, results, strict=True):
            counts.add(result)
            _print_item(ref, result, ns, out)
            if result.changed:
                held.append(Replacement(ref.path, result.data, ref.source))
                if len(held) >= piece:
                    out.flush()  # the plan lines are out before their messages are written
                    writer.add(held)
                    held = []
            failures += report(writer.failures())
        out.flush()
        writer.add(held)
        failures += report(writer.finish())
    except BaseException:
        writer.abandon()
        raise
    return failures


# -- mbox -----------------------------------------------------------------------------------------

_UNQUOTED_FROM = re.compile(rb"^(>*From )", re.M)


def _mbox_chunk(snapshot: bytes, item: _Item, last: bool) -> bytes:
    start, end = item.ref.offset, item.ref.offset + item.ref.length
    if not item.result.changed:
        return snapshot[start:end]
    from_line_end = snapshot.find(b"\n", start, end) + 1
    body = _UNQUOTED_FROM.sub(rb">\1", item.result.data)  # mboxrd, as the reader unquoted it
    chunk = snapshot[start:from_line_end] + body
    if not chunk.endswith(b"\n"):
        chunk += b"\n"
    if not last and not chunk.endswith(b"\n\n"):
        chunk += b"\n"  # the empty line that ends a message before the next `From `
    return chunk


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    n = 1
    while Path(f"{path}.{n}").exists():
        n += 1
    return Path(f"{path}.{n}")


class _MboxLock:
    """A dot-lock and an fcntl lock, the two conventions MDAs and mail readers use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dotlock = Path(f"{path}.lock")
        self.fd = -1

    def __enter__(self) -> _MboxLock:
        try:
            os.close(os.open(self.dotlock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise CleanPathError(
                f"{self.path}: locked by another program ({self.dotlock})"
            ) from None
        self.fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self.__exit__()
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise CleanPathError(f"{self.path}: locked by another program") from None
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.dotlock.unlink(missing_ok=True)


def _apply_mbox(target: _Target, ns: argparse.Namespace, err: IO[str]) -> int:
    if not any(item.result.changed for item in target.items):
        return 0
    path = target.path
    try:
        with _MboxLock(path):
            if path.read_bytes() != target.snapshot:
                raise CleanPathError(f"{path}: changed while being cleaned; run again")
            count = len(target.items)
            new = b"".join(
                _mbox_chunk(target.snapshot, item, i == count - 1)
                for i, item in enumerate(target.items)
            )
            staged = path.with_name(f".{path.name}.guard-{os.getpid()}")
            write_new(staged, new, path.stat().st_mode & 0o777)
            backup = _free_name(
                Path(ns.backup)
                if getattr(ns, "backup", None)
                else Path(f"{path}{MBOX_BACKUP_SUFFIX}")
            )
            try:
                os.link(path, backup)  # the original inode itself becomes the backup
                os.replace(staged, path)
            except OSError:
                staged.unlink(missing_ok=True)
                raise
            fsync_all([path.parent])
    except CleanPathError as exc:
        err.write(f"guard: {exc}\n")
        return 1
    except OSError as exc:
        err.write(f"guard: {path}: not cleaned: {exc.strerror or exc}\n")
        return 1
    return 0


def _summary(counts: _Counts, dry_run: bool) -> str:
    clean = counts.messages - counts.changed - counts.skipped
    verb = "to clean" if dry_run else "cleaned"
    line = f"{counts.messages} messages: {counts.changed} {verb}, {clean} clean, "
    line += f"{counts.skipped} skipped"
    return line + (" (dry run: nothing changed)" if dry_run else "")


def run_clean_path(
    ns: argparse.Namespace, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if not ns.paths:
        err.write("guard: clean: give a PATH (a Maildir or an mbox file), or --account NAME\n")
        return ExitCode.USAGE
    from guard.engine.rules_load import RuleError

    try:
        rules = load_ruleset()
    except RuleError as exc:
        err.write(f"guard: rules: {exc}\n")
        return ExitCode.RULES
    from guard.mail.config import ConfigError

    try:
        policy = policy_for(ns)
    except ConfigError as exc:
        err.write(f"guard: {exc}\n")
        return ExitCode.CONFIG
    finally:
        start_done()  # the cleaning code is imported (policy_for), the rules are loaded
    with contextlib.ExitStack() as locks:
        try:
            for path in ns.paths:
                _prepare_maildir(Path(path), ns, locks, err)
            targets = [_resolve(path) for path in ns.paths]
            return _clean_and_apply(targets, rules, policy, ns, out, err)
        except MaildirLocked as exc:
            err.write(f"guard: {exc}\n")
            return ExitCode.LOCKED
        except (CleanPathError, SourceError) as exc:
            err.write(f"guard: {exc}\n")
            return ExitCode.NO_INPUT
        except BrokenPipeError:
            raise  # the plan's reader left (`| head`): guard.cli.main's to handle
        except OSError as exc:
            if exc.filename is None:  # no file to blame (a worker that cannot be started…)
                err.write(f"guard: cannot clean: {exc.strerror or exc}\n")
            else:
                err.write(f"guard: {exc.filename}: cannot read: {exc.strerror}\n")
            return ExitCode.NO_INPUT


def _prepare_maildir(
    path: Path, ns: argparse.Namespace, locks: contextlib.ExitStack, err: IO[str]
) -> None:
    """A Maildir to clean is locked for the run, and what an interrupted run left is finished
    first (a dry run only says so)."""
    if not (path.is_dir() and is_maildir(path)):
        return
    if getattr(ns, "dry_run", False):
        left = pending(path)
        if left:
            err.write(
                f"guard: {path}: an interrupted clean left {left} messages half-done: "
                "the next run finishes them first\n"
            )
        return
    locks.enter_context(MaildirLock(path))
    finish_interrupted(path)


def _clean_and_apply(
    targets: Sequence[_Target], rules: RuleSet, policy: Policy, ns: argparse.Namespace,
    out: IO[str], err: IO[str],
) -> int:  # fmt: skip
    """Each target in turn: its plan lines as its messages are cleaned, and (unless a dry run)
    its writing: a Maildir's while it is cleaned, an mbox's after its plan."""
    dry_run = getattr(ns, "dry_run", False)
    jobs = getattr(ns, "jobs", None)
    counts = _Counts()
    failures = 0
    for target in targets:
        results = _clean_refs(target.refs, rules, policy, jobs)
        if target.kind == "maildir" and not dry_run:
            failures += _clean_maildir(target, results, ns, out, err, counts)
            continue
        for ref, result in zip(target.refs, results, strict=True):
            counts.add(result)
            _print_item(ref, result, ns, out)
            if target.kind == "mbox":
                target.items.append(_Item(ref, result))
        if not dry_run:
            failures += _apply_mbox(target, ns, err)
            target.items = []
    if not getattr(ns, "quiet", False):
        out.write(_summary(counts, dry_run) + "\n")
    return ExitCode.OK if failures == 0 else ExitCode.PARTIAL
