"""The planner of `guard clean --account` (guard/mail/imap/planner.py), without a server: the pool
of workers gives the in-process planner's outcomes, in order, across overlapping rounds; a
message that crashes or hangs its worker gets a skipped outcome saying so, the others are
planned; a round dropped when a run stops is never waited for.

The crashes are real (SIGSEGV, abort, a hang no timer reaches), made by the test hook
GUARD_TEST_CRASH_MARKER in worker processes only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from guard.mail import supervise
from guard.mail.imap import planner
from guard.mail.imap.common import BATCH, CleanOutcome, digest
from guard.mail.imap.planner import InlinePlanner, Planned
from guard.mail.imap.pool import PoolPlanner
from guard.mail.scan import PARALLEL_THRESHOLD

TOKEN = b"GUARD-CRASH-MARKER-5b19"


@dataclass(frozen=True)
class Outcome:
    data: bytes
    changed: bool
    removed: dict[str, int] = field(default_factory=dict)
    receipt_requested: bool = False
    skipped: str | None = None


def transform(raw: bytes) -> Outcome:
    """A stand-in planner: rewrites every third message, fails on b"boom", skips b"skip"."""
    if b"boom" in raw:
        raise ValueError("boom")
    if b"skip" in raw:
        return Outcome(raw, False, skipped="allowlisted")
    n = int(raw.split(b":")[1])
    if n % 3 == 0:
        return Outcome(raw.upper() * 3, True, {"pixel": n}, receipt_requested=n % 2 == 0)
    return Outcome(raw, False)


def view(result: CleanOutcome) -> tuple[bytes, bool, dict[str, int], bool, str | None]:
    data = result.data if result.changed else b""
    return data, result.changed, dict(result.removed), result.receipt_requested, result.skipped


def raws(start: int, count: int, size: int = 3000) -> list[bytes]:
    return [b"msg:%d:" % n + b"x" * (n % 7 * size) for n in range(start, start + count)]


def test_pool_equals_inline_across_overlapping_rounds() -> None:
    rounds = [raws(0, 37), raws(37, 100, size=20000), [b"msg:500:boom", b"msg:501:skip"], []]
    inline = InlinePlanner(transform)
    want = [[view(r) for r in inline.take(inline.submit(one))] for one in rounds]
    pool = PoolPlanner(transform, 2, seconds=30)
    try:
        # as the cleaner does: round k+1 submitted before round k is taken
        keys = [pool.submit(rounds[0])]
        got = []
        for one in rounds[1:]:
            keys.append(pool.submit(one))
            got.append([view(r) for r in pool.take(keys.pop(0))])
        got.append([view(r) for r in pool.take(keys.pop(0))])
    finally:
        pool.close()
    assert got == want
    assert want[2][0][4] == "internal error (ValueError)"


def test_pool_taken_in_pieces_as_they_are_ready() -> None:
    """The cleaner takes a round in pieces (those `ready`, from the first on): the same outcomes
    as the whole round taken at once; each changed one carries its digest, made by the worker."""
    one = raws(0, 90, size=20000)
    inline = InlinePlanner(transform)
    keys = inline.submit(one)
    assert inline.ready(keys) == len(keys)  # computed when taken: never waits for anyone
    want = [view(r) for r in inline.take(keys)]
    pool = PoolPlanner(transform, 2, seconds=30)
    try:
        keys = pool.submit(one)
        got: list[CleanOutcome] = []
        while keys:
            ready = pool.ready(keys)
            assert ready <= len(keys)
            count = max(ready, 1)
            got += pool.take(keys[:count])
            keys = keys[count:]
    finally:
        pool.close()
    assert [view(r) for r in got] == want
    changed = [r for r in got if r.changed]
    assert changed and all(isinstance(r, Planned) for r in got)
    assert all(r.digest == digest(r.data) for r in changed if isinstance(r, Planned))
    assert planner.digest_of(transform(b"msg:3:")) == digest(b"MSG:3:" * 3)


@pytest.mark.parametrize(
    ("crash", "reason"),
    [
        ("segv", "crashed its worker process (SIGSEGV)"),
        ("abort", "crashed its worker process (SIGABRT)"),
        ("hang", supervise.overdue(1.0)),
    ],
)
def test_a_message_that_kills_its_worker_costs_only_itself(
    monkeypatch: pytest.MonkeyPatch, crash: str, reason: str
) -> None:
    monkeypatch.setenv(supervise.CRASH_MARKER_ENV, f"{crash}:{TOKEN.decode()}")
    batch = raws(0, 60)
    batch[23] = b"msg:23:" + TOKEN
    batch[41] = b"msg:41:" + TOKEN
    inline = InlinePlanner(transform)
    want = [view(r) for r in inline.take(inline.submit(batch))]
    pool = PoolPlanner(transform, 2, seconds=1.0)
    try:
        got = pool.take(pool.submit(batch))
        after = pool.take(pool.submit(raws(60, 10)))  # the pool goes on
    finally:
        pool.close()
    for i, result in enumerate(got):
        if i in (23, 41):
            assert isinstance(result, Planned) and result.crashed, i
            assert result.skipped == reason and not result.changed
        else:
            assert view(result) == want[i], i
    assert [view(r) for r in after] == [view(transform(r)) for r in raws(60, 10)]


def test_workers_get_their_work_while_this_process_is_elsewhere(tmp_path: Path) -> None:
    """Two rounds of 100 KB messages (20 MB, a hundred times what a socket holds) submitted, then
    no planner call at all - as while the cleaner is at the server: the writer threads still
    deliver every message, and the workers plan them all (each leaves a mark when it has)."""
    marks = tmp_path / "planned"

    def marking(raw: bytes) -> Outcome:
        with marks.open("ab") as f:  # O_APPEND: one short write per message, never interleaved
            f.write(raw.split(b":")[1] + b"\n")
        return transform(raw)

    pool = PoolPlanner(marking, 2, seconds=30)
    try:
        keys = pool.submit([b"msg:%d:" % n + b"y" * 100_000 for n in range(2 * BATCH)])
        deadline = time.monotonic() + 60  # a bound on a hung test, not a speed requirement
        while time.monotonic() < deadline:
            if marks.exists() and len(marks.read_bytes().split()) == len(keys):
                break
            time.sleep(0.05)
        assert sorted(int(n) for n in marks.read_bytes().split()) == list(range(len(keys)))
        while pool.ready(keys) < len(keys) and time.monotonic() < deadline:
            time.sleep(0.05)  # the last results on their way (read by the reader threads)
        assert [view(r) for r in pool.take(keys)] == [
            view(transform(b"msg:%d:" % n + b"y" * 100_000)) for n in range(len(keys))
        ]
    finally:
        pool.close()


def test_dropped_round_is_not_waited_for_and_no_worker_outlives_close() -> None:
    pool = PoolPlanner(transform, 2, seconds=30)
    first = pool.submit(raws(0, 40))
    second = pool.submit(raws(40, 40))
    assert [view(r) for r in pool.take(first)] == [view(transform(r)) for r in raws(0, 40)]
    pool.drop(second)
    pids = [s.worker.process.pid for s in pool._slots]
    assert pids
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("start_first", [False, True], ids=["on-demand", "started-early"])
def test_without_a_worker_process_the_plan_is_made_here(
    monkeypatch: pytest.MonkeyPatch, start_first: bool
) -> None:
    """No worker process can be forked, whether on demand or by `start` before any work: nothing
    is raised and this process plans every message."""
    from guard.mail.imap import pool as pool_module

    def refuse(*_args: object, **_kw: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(pool_module, "Worker", refuse)
    pool = PoolPlanner(transform, 2, seconds=30)
    batch = raws(0, 20)
    try:
        if start_first:
            pool.start()  # refused: nothing raised, nothing started
            assert pool._slots == []
        got = [view(r) for r in pool.take(pool.submit(batch))]
    finally:
        pool.close()
    assert got == [view(transform(r)) for r in batch]


def test_the_threshold_is_the_local_scans() -> None:
    assert planner.PARALLEL_THRESHOLD == PARALLEL_THRESHOLD


def test_workers_started_before_work_warm_up_and_plan_as_inline() -> None:
    """`start` forks the workers before any work (the cleaner calls it before fetching the first
    round); each cleans pool.WARM_MESSAGE first, and the stand-in transform failing on it
    changes nothing: the outcomes are the inline planner's, no more and no fewer."""
    from guard.mail.imap import pool as pool_module

    with pytest.raises(ValueError):
        transform(pool_module.WARM_MESSAGE)  # the warm-up's failure is dropped in the worker
    batch = raws(0, 30)
    pool = PoolPlanner(transform, 2, seconds=30)
    try:
        pool.start()
        assert len(pool._slots) == 2
        assert all(s.worker.process.exitcode is None for s in pool._slots)
        pids = {s.worker.process.pid for s in pool._slots}
        got = [view(r) for r in pool.take(pool.submit(batch))]
        assert {s.worker.process.pid for s in pool._slots} == pids  # no worker started twice
    finally:
        pool.close()
    assert got == [view(transform(r)) for r in batch]


def test_the_first_rounds_metadata_comes_first_and_the_rounds_are_unchanged() -> None:
    """The cleaner fetches FLAGS/INTERNALDATE/size of a folder's first `batch` new UIDs, then,
    once the first round is out, the rest of the first META_BATCH: the rounds (sizes, the
    BATCH_BYTES cut, a message over the size limit reported with the round after it, a UID
    expunged meanwhile) are those of one fetch of the whole META_BATCH."""
    from guard.engine.limits import DEFAULT_LIMITS
    from guard.mail.imap import cleaner as cleaner_module
    from guard.mail.imap.common import BATCH_BYTES, META_BATCH, FolderPass, FolderReport

    big = DEFAULT_LIMITS.max_message_bytes + 1
    sizes = {u: 1000 for u in range(1, 2 * META_BATCH + 50)}
    sizes[3] = big  # over the limit, in the first round's span
    sizes.update({u: BATCH_BYTES // 4 for u in range(150, 156)})  # a cut by bytes
    del sizes[160]  # expunged between the SEARCH and the FETCH
    new = list(range(1, 2 * META_BATCH + 50))

    def rounds() -> tuple[list[tuple[list[int], list[int]]], list[int]]:
        calls: list[int] = []

        def fetch(_folder: str, uids: list[int], _items: list[bytes]) -> dict[int, object]:
            calls.append(len(uids))
            return {u: {b"RFC822.SIZE": sizes[u]} for u in uids if u in sizes}

        c = object.__new__(cleaner_module.Cleaner)
        c.batch, c.limits, c.stop = BATCH, DEFAULT_LIMITS, lambda: False
        c.fetch = fetch  # type: ignore[method-assign]
        ctx = FolderPass(name="INBOX", uidvalidity=1, uidnext=1, keywords_ok=True,
                         report=FolderReport("INBOX"))  # fmt: skip
        out = [
            (r.uids, [a.uid for a in r.skipped])
            for r in cleaner_module.Cleaner._batches(c, ctx, new)
        ]
        return out, calls

    got, calls = rounds()
    assert calls == [BATCH, META_BATCH - BATCH, META_BATCH, 49]
    assert got[0][0][:3] == [1, 2, 4] and got[0][1] == [3]
    assert 160 not in {u for uids, _ in got for u in uids}
    want = _rounds_of(new, sizes, BATCH, DEFAULT_LIMITS.max_message_bytes)
    assert got == want


def _rounds_of(
    new: list[int], sizes: dict[int, int], batch: int, limit: int
) -> list[tuple[list[int], list[int]]]:
    """The rounds as written before the first round's metadata came first (one FETCH per
    META_BATCH): what the cleaner's batching is, restated."""
    from guard.mail.imap.common import BATCH_BYTES, META_BATCH

    out: list[tuple[list[int], list[int]]] = []
    for start in range(0, len(new), META_BATCH):
        uids, size, skipped = [], 0, []
        for uid in new[start : start + META_BATCH]:
            if uid not in sizes:
                continue
            if sizes[uid] > limit:
                skipped.append(uid)
                continue
            uids.append(uid)
            size += sizes[uid]
            if len(uids) >= batch or size >= BATCH_BYTES:
                out.append((uids, skipped))
                uids, size, skipped = [], 0, []
        if uids or skipped:
            out.append((uids, skipped))
    return out
