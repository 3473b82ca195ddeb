"""Scanning an IMAP account: state lookup, read-only fetch on a few connections, detection.

`scan_account()` yields a MessageResult for every message of the folders: stored ones for messages
already scanned with the same UIDVALIDITY and detection version, fresh ones for the rest. Nothing
heavy is built until there is something new to scan (a warm rescan only logs in, EXAMINEs,
searches and reads the state; when UIDNEXT and the message count show that nothing was added or
expunged since the last complete scan, it does not even search: its cost does not grow with the
folder).

A cold scan runs on `connections` connections, one per process (this one included), each fetching
and analysing its share of the UIDs, so transfer overlaps with parsing on every core. A child
process that a message crashes or hangs costs only that message (`_parallel`).

Environment: `GUARD_NO_FORK=1` keeps a scan on its own connection, without worker processes,
whatever `--connections` says (for profiling or debugging a scan in one process).
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any
from urllib.parse import quote

from imapclient import IMAPClient

from guard import __version__
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.engine.model import MessageResult
from guard.mail.config import Account
from guard.mail.imap.connection import ImapError, ServerError, call, close, connect, errors, examine
from guard.mail.secrets import Credentials, get_credentials
from guard.mail.store import Store, decode_summary, encode
from guard.mail.supervise import Worker, item_seconds, overdue

# What a connection hands back per message: (uid, full result or None when slim, tracking,
# encoded result, encoded summary) - encoding happens where the scanning happens.
Item = tuple[int, MessageResult | None, bool, bytes, str]

CHUNK = 200  # UIDs per work item handed to a connection (at most)
MIN_CHUNK = 25  # the smallest work item, near the end of a parallel scan
PARALLEL_MIN = 400  # fewer new messages than this: one connection is faster than starting more
GC_GEN0_THRESHOLD = 20_000  # while scanning (CPython's default is 700)


def rules_fingerprint() -> str:
    """The rule files' digest, computed like RuleSet.version but without compiling anything."""
    from guard.engine.rules_load import bundled_rules_dir, rule_files, user_rules_dir

    dirs = [bundled_rules_dir()]
    user = user_rules_dir()
    if user.is_dir():
        dirs.append(user)
    digest = hashlib.sha256()
    for directory in dirs:
        for path in rule_files(directory):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def detection_version(limits: Limits = DEFAULT_LIMITS) -> str:
    """Stored results are valid only for the same guard, rules and size limits."""
    return (
        f"{__version__}/{rules_fingerprint()}/"
        f"{limits.max_message_bytes}:{limits.max_text_part_bytes}"
    )


def source_name(account: Account, folder: str) -> str:
    return f"imap://{quote(account.username, safe='')}@{account.host}/{quote(folder, safe='/')}"


@dataclass
class FolderStats:
    folder: str
    uidvalidity: int
    total: int = 0
    cached: int = 0
    scanned: int = 0
    errors: int = 0


@dataclass
class ScanStats:
    folders: list[FolderStats]

    @property
    def fetched(self) -> int:
        return sum(f.scanned for f in self.folders)


def _load_rules() -> Any:
    from guard.engine.domains import warm_up
    from guard.engine.rules_load import load_ruleset

    rules = load_ruleset(examples=False)  # a scan never reads them
    warm_up()
    return rules


@contextmanager
def _scanning_gc() -> Iterator[None]:
    """Less cyclic-GC work while scanning, which allocates a lot and frees it by refcount.

    Everything alive now (modules, compiled rules) is frozen out of the collector's scans (and,
    in forked workers, its pages stay shared instead of being touched by every collection), and
    young collections run less often. Both are undone afterwards: the caller may be a long-lived
    process (the TUI)."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


# -- worker processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What every child of one folder's parallel scan shares (inherited through fork)."""

    account: Account
    credentials: Credentials
    folder: str
    uidvalidity: int
    source: str
    limits: Limits
    rules: Any
    slim: bool
    chunks: Sequence[Sequence[int]]
    next_chunk: Any  # a shared counter: the index of the next unclaimed chunk

    def scan(self, client: IMAPClient, uids: Sequence[int]) -> list[Item]:
        from guard.mail.imap.fetch import scan_chunk

        with errors(self.account, f"fetching from {self.folder!r}"):
            out = scan_chunk(client, uids, self.source, self.rules, self.limits,
                             self.account.identities)  # fmt: skip
        return _encode(out, self.slim)

    def failed(self, uid: int, reason: str) -> list[Item]:
        result = MessageResult(source=self.source, id=str(uid), error=f"{reason}: skipped")
        return _encode([(uid, result)], self.slim)


def _child(job: _Job, first: Sequence[int]) -> Callable[[Connection], None]:
    """A child's work: its own connection; first the UIDs in `first` (left by a child that died)
    one at a time, then chunks from the shared counter. Every message it sends is complete
    before it scans on, so a crash loses only the work in hand."""

    def serve(conn: Connection) -> None:
        client: IMAPClient | None = None
        try:
            client = connect(job.account, job.credentials)
            info = examine(client, job.account, job.folder)
            if int(info.get(b"UIDVALIDITY", 0)) != job.uidvalidity:
                raise ServerError(
                    f"UIDVALIDITY of {job.folder!r} changed during the scan: run it again"
                )
            conn.send(("ready",))
            for uid in first:
                conn.send(("one", uid, job.scan(client, [uid])))
            while (i := _take(len(job.chunks), job.next_chunk)) is not None:
                conn.send(("took", i))
                conn.send(("ok", i, job.scan(client, job.chunks[i])))
        except ImapError as exc:
            conn.send(("error", type(exc).__name__, str(exc)))
        except Exception as exc:  # noqa: BLE001 - never a traceback
            conn.send(("error", "ServerError", f"worker failed: {type(exc).__name__}"))
        finally:
            if client is not None:
                close(client)
            conn.send(("done",))

    return serve


def _encode(items: Iterable[tuple[int, MessageResult]], slim: bool) -> list[Item]:
    out: list[Item] = []
    for uid, result in items:
        blob, summary = encode(result)
        out.append((uid, None if slim else result, result.tracking, blob, summary))
    return out


def _chunks(uids: Sequence[int], workers: int) -> list[list[int]]:
    """Work items that shrink towards the end (guided scheduling): with equal items the last one
    can keep one process busy for a second while the others are done."""
    out: list[list[int]] = []
    smallest = min(MIN_CHUNK, CHUNK)
    start = 0
    while start < len(uids):
        size = max(smallest, min(CHUNK, (len(uids) - start) // (2 * workers)))
        out.append(list(uids[start : start + size]))
        start += size
    return out


def _take(count: int, next_chunk: Any) -> int | None:
    """The index of the next unclaimed chunk (a counter shared across processes), or None."""
    with next_chunk.get_lock():
        i = int(next_chunk.value)
        if i >= count:
            return None
        next_chunk.value = i + 1
    return i


def _error_from(name: str, message: str) -> ImapError:
    from guard.mail.imap import connection as imapconn

    cls = getattr(imapconn, name, None)
    if isinstance(cls, type) and issubclass(cls, ImapError):
        return cls(message)
    return ServerError(message)


@dataclass
class _Running:
    """The parent's view of one child."""

    worker: Worker
    first: list[int]  # UIDs to do one at a time, not yet reported
    chunk: int | None = None  # the chunk it took and has not reported
    ready: bool = False  # logged in and examined the folder
    done: bool = False  # said it is finished (its exit loses nothing)
    deadline: float | None = None


def _parallel(
    client: IMAPClient,
    account: Account,
    credentials: Credentials,
    folder: str,
    uidvalidity: int,
    uids: Sequence[int],
    source: str,
    limits: Limits,
    rules: Any,
    connections: int,
    slim: bool,
) -> Iterator[list[Item]]:
    """Spread `uids` over `connections` connections: this process + connections-1 children.

    A child that dies (a message crashed the parser: C code, no exception to catch) or stops
    answering (C code the time limit cannot interrupt) is noticed whenever this process looks
    between its own chunks, and at once while it only waits. The chunk the child had taken is
    then scanned again by a fresh child, one message at a time with a result sent for each, so
    a message that brings that child down too is the one: it gets an error result and the next
    fresh child carries on after it. No message is lost and none is scanned twice. (This
    process's own chunks run in-process: bounded by the time limit and
    guard/engine/parse_bounds.py's pre-check, not by supervision; see guard/mail/supervise.py.)
    """
    ctx: Any = multiprocessing.get_context("fork")
    chunks = _chunks(uids, connections)
    job = _Job(account, credentials, folder, uidvalidity, source, limits, rules, slim, chunks,
               ctx.Value("i", 0))  # fmt: skip
    per_message = item_seconds(limits.max_seconds)
    network = 2 * account.timeout + 10  # a login or a fetch: the server's part of the wait
    children: list[_Running] = []
    failure: ImapError | None = None
    starts_lost = 0  # children that died before they could log in: not a message's doing

    def budget(messages: int) -> float | None:
        return None if per_message is None else messages * per_message + network

    def start(first: list[int]) -> None:
        child = _Running(Worker(_child(job, first), [c.worker.conn for c in children]), first)
        child.deadline = _after(budget(1))
        children.append(child)

    def receive(child: _Running) -> Generator[list[Item], None, bool]:
        """Yield what the child has sent; return False once its pipe has ended."""
        nonlocal failure
        conn = child.worker.conn
        try:
            while conn.poll():
                msg = conn.recv()
                child.deadline = _after(budget(1))
                if msg[0] == "ready":
                    child.ready = True
                elif msg[0] == "one":
                    child.first.remove(msg[1])
                    yield msg[2]
                elif msg[0] == "took":
                    child.chunk = msg[1]
                    child.deadline = _after(budget(len(chunks[msg[1]])))
                elif msg[0] == "ok":
                    child.chunk = None
                    yield msg[2]
                elif msg[0] == "error":
                    failure = failure or _error_from(msg[1], msg[2])
                else:
                    child.done = True
        except (EOFError, OSError):
            return False
        return True

    def end(child: _Running, reason: str) -> Iterator[list[Item]]:
        """The child is gone (or overdue): redo what it held in a fresh child."""
        nonlocal failure, starts_lost
        child.worker.stop()
        children.remove(child)
        if child.done or failure is not None:
            return
        left = list(child.first)
        if not child.ready:
            starts_lost += 1
            if starts_lost > connections + 2:
                failure = ServerError(f"scanning processes keep failing to start ({reason})")
                return
        elif left:  # it died on left[0], alone, after one crash already: that message's end
            yield job.failed(left.pop(0), reason)
        if child.chunk is not None:
            left.extend(chunks[child.chunk])
        if left or int(job.next_chunk.value) < len(chunks):
            start(left)

    def pump(block: bool) -> Iterator[list[Item]]:
        """Collect from the children; with `block`, until none is left (or one failed)."""
        while children and failure is None:
            deadlines = [c.deadline for c in children if c.deadline is not None]
            now = time.monotonic()
            timeout = 0.0 if not block else max(0.0, min(deadlines) - now) if deadlines else None
            waited = [c.worker.conn for c in children] + [c.worker.sentinel for c in children]
            ready = set(wait(waited, timeout))
            now = time.monotonic()
            for child in list(children):
                woke = child.worker.conn in ready or child.worker.sentinel in ready
                late = child.deadline is not None and now >= child.deadline
                # a late child's answer may just have come: it resets the deadline
                open_ = (yield from receive(child)) if woke or late else True
                if not open_ or child.worker.process.exitcode is not None:
                    yield from receive(child)  # what it sent before it ended is still good
                    yield from end(child, child.worker.death())
                elif child.deadline is not None and now >= child.deadline:
                    yield from end(child, overdue(budget(1) or 0.0))
            if not block:
                return

    try:
        for _ in range(connections - 1):
            start([])
        # This process works too, interleaving its own chunks with collecting the children's.
        while failure is None and (i := _take(len(chunks), job.next_chunk)) is not None:
            yield job.scan(client, chunks[i])
            yield from pump(block=False)
        yield from pump(block=True)
    finally:
        for child in children:
            child.worker.stop()
    if failure is not None:
        raise failure


def _after(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


# -- the scan --------------------------------------------------------------------------------------


def scan_account(
    account: Account,
    folders: Sequence[str] | None = None,
    *,
    store: Store | None = None,
    use_cache: bool = True,
    connections: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    credentials: Credentials | None = None,
    stats: list[FolderStats] | None = None,
    on_total: Callable[[int], None] | None = None,
    slim: bool = False,
    yield_cached: bool = True,
) -> Iterator[MessageResult]:
    """Every message of `folders` (default: the account's), from the state or freshly scanned.

    `slim`: yield results that carry only what the text report needs (see store.decode_summary);
    cheaper to read back and to hold for a large mailbox. `yield_cached=False`: yield only the
    messages scanned now (the caller reads the rest from the store, e.g. Store.sender_tables).

    Raises ImapError subclasses (one-line messages, `.exit_code`), SecretError, StoreError.
    """
    folders = list(folders or account.folders)
    connections = max(1, connections or account.connections)
    creds = credentials or get_credentials(account)
    version = detection_version(limits)
    rules: Any = None
    client = connect(account, creds)
    try:
        for folder in folders:
            info = examine(client, account, folder)
            uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            uidnext = int(info.get(b"UIDNEXT", 0))
            exists = int(info.get(b"EXISTS", 0))
            source = source_name(account, folder)
            valid = store is not None and use_cache
            if store is not None:
                valid = store.begin_folder(account.name, folder, uidvalidity, version) and valid
            if (
                valid
                and store is not None
                and store.is_complete(account.name, folder, uidvalidity, uidnext, exists)
            ):
                # nothing added or expunged since a complete scan: no need to list the UIDs
                yield from _unchanged_folder(
                    store, account, folder, uidvalidity, exists, source, stats, on_total,
                    slim=slim, yield_cached=yield_cached,
                )  # fmt: skip
                continue
            if exists:
                uids = sorted(call(account, f"searching {folder!r}", client.search, ["ALL"]))
            else:
                uids = []
            fstats = FolderStats(folder, uidvalidity, total=len(uids))
            if stats is not None:
                stats.append(fstats)
            if on_total is not None:
                on_total(len(uids))
            known: set[int] = set()
            if valid and store is not None:
                known = store.known_uids(account.name, folder, uidvalidity)
            present = set(uids)
            gone = known - present
            if store is not None and gone:
                store.forget(account.name, folder, uidvalidity, gone)
            cached = known & present
            if not yield_cached:
                fstats.cached += len(cached)
            elif cached and store is not None:
                for _uid, result in store.results(
                    account.name, folder, uidvalidity, cached, slim=slim, source=source
                ):
                    fstats.cached += 1
                    yield result
            new = [u for u in uids if u not in cached]
            if new:
                if rules is None:
                    rules = _load_rules()
                with _scanning_gc():
                    yield from _store_and_yield(
                        store, account, folder, uidvalidity, version, source, fstats, slim,
                        _scan_uids(
                            client, account, creds, folder, uidvalidity, new, source, limits,
                            rules, connections, slim,
                        ),
                    )  # fmt: skip
            if store is not None and fstats.cached + fstats.scanned == fstats.total:
                # every message below `uidnext` has its row: the next rescan may skip the SEARCH
                store.set_complete(account.name, folder, uidvalidity, uidnext, fstats.total)
    finally:
        close(client)


def _unchanged_folder(
    store: Store,
    account: Account,
    folder: str,
    uidvalidity: int,
    exists: int,
    source: str,
    stats: list[FolderStats] | None,
    on_total: Callable[[int], None] | None,
    *,
    slim: bool,
    yield_cached: bool,
) -> Iterator[MessageResult]:
    """A folder whose stored rows are all its messages (Store.is_complete): stored results only."""
    fstats = FolderStats(folder, uidvalidity, total=exists)
    if stats is not None:
        stats.append(fstats)
    if on_total is not None:
        on_total(exists)
    if not yield_cached:
        fstats.cached = exists
        return
    for _uid, result in store.results(account.name, folder, uidvalidity, slim=slim, source=source):
        fstats.cached += 1
        yield result


def _store_and_yield(
    store: Store | None,
    account: Account,
    folder: str,
    uidvalidity: int,
    version: str,
    source: str,
    fstats: FolderStats,
    slim: bool,
    batches: Iterable[list[Item]],
) -> Iterator[MessageResult]:
    """Write each batch of fresh results to the store, then yield them."""
    for items in batches:
        if store is not None:
            store.put(
                account.name,
                folder,
                uidvalidity,
                version,
                [(uid, tracking, blob, summary) for uid, _r, tracking, blob, summary in items],
            )
        for uid, full, _tracking, _blob, summary in items:
            result = full if full is not None else decode_summary(summary, source, str(uid))
            fstats.scanned += 1
            if result.error:
                fstats.errors += 1
            yield result


def _scan_uids(
    client: IMAPClient,
    account: Account,
    creds: Credentials,
    folder: str,
    uidvalidity: int,
    uids: Sequence[int],
    source: str,
    limits: Limits,
    rules: Any,
    connections: int,
    slim: bool,
) -> Iterable[list[Item]]:
    from guard.mail.imap.fetch import scan_chunk

    if (
        connections > 1
        and len(uids) >= PARALLEL_MIN
        and os.environ.get("GUARD_NO_FORK") != "1"
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        n = min(connections, (len(uids) + CHUNK - 1) // CHUNK)
        yield from _parallel(
            client, account, creds, folder, uidvalidity, uids, source, limits, rules, n, slim
        )
        return
    for start in range(0, len(uids), CHUNK):
        with errors(account, f"fetching from {folder!r}"):
            items = scan_chunk(
                client, uids[start : start + CHUNK], source, rules, limits, account.identities
            )
        yield _encode(items, slim)
