"""Scanning an IMAP account: state lookup, read-only fetch on a few connections, detection.

`scan_account()` yields a MessageResult for every message of the folders: stored ones for messages
already scanned with the same UIDVALIDITY and detection version, fresh ones for the rest. Nothing
heavy is built until there is something new to scan (a warm rescan only logs in, EXAMINEs,
searches and reads the state; when UIDNEXT and the message count show that nothing was added or
expunged since the last complete scan, it does not even search: its cost does not grow with the
folder).

A cold scan runs on `connections` connections, one per process (this one included), each fetching
and analysing its share of the UIDs, so transfer overlaps with parsing on every core.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import queue
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imapclient import IMAPClient

from guard import __version__
from guard.config import Account
from guard.imapconn import ImapError, ServerError, call, close, connect, errors, examine
from guard.limits import DEFAULT_LIMITS, Limits
from guard.model import MessageResult
from guard.secrets import Credentials, get_credentials
from guard.store import Store, decode_summary, encode

# What a connection hands back per message: (uid, full result or None when slim, tracking,
# encoded result, encoded summary) - encoding happens where the scanning happens.
Item = tuple[int, MessageResult | None, bool, bytes, str]

CHUNK = 200  # UIDs per work item handed to a connection (at most)
MIN_CHUNK = 25  # the smallest work item, near the end of a parallel scan
PARALLEL_MIN = 400  # fewer new messages than this: one connection is faster than starting more
GC_GEN0_THRESHOLD = 20_000  # while scanning (CPython's default is 700)


def rules_fingerprint() -> str:
    """The rule files' digest, computed like RuleSet.version but without compiling anything."""
    from guard.ruleset import bundled_rules_dir, rule_files, user_rules_dir

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
    from guard.domains import warm_up
    from guard.ruleset import load_ruleset

    rules = load_ruleset()
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


def _worker(
    account: Account,
    credentials: Credentials,
    folder: str,
    uidvalidity: int,
    source: str,
    limits: Limits,
    rules: Any,
    slim: bool,
    chunks: Sequence[Sequence[int]],
    next_chunk: Any,
    results: Any,
) -> None:
    """A child process: own connection, take chunks of UIDs, send back results."""
    from guard.sources.imap import scan_chunk

    client: IMAPClient | None = None
    try:
        if rules is None:  # started by spawn: nothing inherited
            rules = _load_rules()
            gc.freeze()
            gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        client = connect(account, credentials)
        info = examine(client, account, folder)
        if int(info.get(b"UIDVALIDITY", 0)) != uidvalidity:
            raise ServerError(f"UIDVALIDITY of {folder!r} changed during the scan: run it again")
        while (chunk := _take(chunks, next_chunk)) is not None:
            with errors(account, f"fetching from {folder!r}"):
                out = scan_chunk(client, chunk, source, rules, limits, account.identities)
            results.put(("ok", _encode(out, slim)))
    except ImapError as exc:
        results.put(("error", type(exc).__name__, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - never a traceback
        results.put(("error", "ServerError", f"worker failed: {type(exc).__name__}"))
    finally:
        if client is not None:
            close(client)
        results.put(("done",))


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


def _take(chunks: Sequence[Sequence[int]], next_chunk: Any) -> Sequence[int] | None:
    """The next unclaimed chunk (shared counter across processes), or None when all are taken."""
    with next_chunk.get_lock():
        i = int(next_chunk.value)
        if i >= len(chunks):
            return None
        next_chunk.value = i + 1
    return chunks[i]


def _error_from(name: str, message: str) -> ImapError:
    from guard import imapconn

    cls = getattr(imapconn, name, None)
    if isinstance(cls, type) and issubclass(cls, ImapError):
        return cls(message)
    return ServerError(message)


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
    """Spread `uids` over `connections` connections: this process + connections-1 children."""
    from guard.sources.imap import scan_chunk

    methods = multiprocessing.get_all_start_methods()
    ctx: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    results: Any = ctx.Queue()
    next_chunk: Any = ctx.Value("i", 0)
    chunks = _chunks(uids, connections)
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                account,
                credentials,
                folder,
                uidvalidity,
                source,
                limits,
                rules if ctx.get_start_method() == "fork" else None,
                slim,
                chunks,
                next_chunk,
                results,
            ),
            daemon=True,
        )
        for _ in range(connections - 1)
    ]
    for p in procs:
        p.start()
    running = len(procs)
    failure: ImapError | None = None

    def drain(block: bool) -> Iterator[list[Item]]:
        nonlocal running, failure
        while running:
            try:
                msg = results.get(timeout=1.0) if block else results.get_nowait()
            except queue.Empty:
                if not block:
                    return
                if not any(p.is_alive() for p in procs):
                    # a child died without a word (killed): its chunks are lost
                    failure = failure or ServerError("a scanning process died unexpectedly")
                    running = 0
                    return
                continue
            if msg[0] == "ok":
                yield msg[1]
            elif msg[0] == "error":
                failure = failure or _error_from(msg[1], msg[2])
            else:
                running -= 1

    try:
        # This process works too, interleaving its own chunks with collecting the children's.
        while failure is None and (chunk := _take(chunks, next_chunk)) is not None:
            with errors(account, f"fetching from {folder!r}"):
                items = scan_chunk(client, chunk, source, rules, limits, account.identities)
            yield _encode(items, slim)
            yield from drain(block=False)
        yield from drain(block=True)
    finally:
        for p in procs:
            if p.is_alive() and failure is not None:
                p.terminate()
        for p in procs:
            p.join(timeout=account.timeout + 5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        results.close()
    if failure is not None:
        raise failure


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
    from guard.sources.imap import scan_chunk

    if connections > 1 and len(uids) >= PARALLEL_MIN and os.environ.get("GUARD_NO_FORK") != "1":
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
