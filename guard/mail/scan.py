"""Scanning: raw messages -> MessageResults, in parallel across cores for large inputs (in
supervised worker processes: guard/mail/supervise.py)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

from guard.engine.detect import detect_message, sender_domain
from guard.engine.domains import warm_up
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.engine.mime import MessageError, parse_message
from guard.engine.model import Envelope, MessageResult, ParsedMessage
from guard.engine.ruleset import RuleSet
from guard.engine.timelimit import TimeLimitExceeded, hold_handler, time_limit
from guard.mail.files import MessageRef, read_file

# Below this many messages, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 64
GC_THRESHOLD = 20_000  # allocations between collections of the youngest generation (default 700)
CHUNK = 16

T = TypeVar("T")


def result_for(
    parsed: ParsedMessage,
    envelope: Envelope,
    source: str,
    id: str,
    rules: RuleSet,
    identities: Sequence[str] = (),
) -> MessageResult:
    """Detection + attribution for one parsed message (pure). `identities`: the account's own
    addresses, looked for in URLs besides the message's recipients."""
    found = detect_message(parsed, rules, sender=envelope.from_addr, identities=identities)
    # Stored with the result, so reports from history need no public-suffix look-ups.
    envelope = replace(envelope, domain=sender_domain(envelope.from_addr))
    return MessageResult(
        source=source, id=id, envelope=envelope, findings=found.findings, esp=found.esp
    )


def scan_raw(
    raw: bytes, source: str, id: str, rules: RuleSet, limits: Limits = DEFAULT_LIMITS
) -> MessageResult:
    """Scan one whole message. Never raises: what goes wrong becomes the result's `error`."""
    try:
        with time_limit(limits.max_seconds):
            parsed, envelope = parse_message(raw, limits)
            return result_for(parsed, envelope, source, id, rules)
    except TimeLimitExceeded:
        return MessageResult(
            source=source, id=id, error=f"took longer than {limits.max_seconds:g} s: skipped"
        )
    except MessageError as exc:
        return MessageResult(source=source, id=id, error=str(exc))
    except RecursionError:
        return MessageResult(source=source, id=id, error="structure nested too deeply")
    except Exception as exc:  # noqa: BLE001 - one bad message must not end the scan
        return MessageResult(source=source, id=id, error=f"internal error ({type(exc).__name__})")


def scan_ref(ref: MessageRef, rules: RuleSet, limits: Limits = DEFAULT_LIMITS) -> MessageResult:
    try:
        raw = read_file(ref.path, limits.max_message_bytes) if ref.length < 0 else ref.read()
        if raw is None:
            size = os.path.getsize(ref.path) // (1024 * 1024)
            return MessageResult(
                source=ref.source,
                id=ref.id,
                error=f"message of {size} MiB exceeds the limit of "
                f"{limits.max_message_bytes // (1024 * 1024)} MiB",
            )
    except OSError as exc:
        return MessageResult(source=ref.source, id=ref.id, error=f"cannot read: {exc.strerror}")
    return scan_raw(raw, ref.source, ref.id, rules, limits)


def tune_gc() -> None:
    """A scan allocates thousands of short-lived objects per message and frees them by reference
    counting: collections of the youngest generation find almost nothing, and full ones walk
    the compiled rules and the suffix list again and again. Those long-lived objects move to
    the permanent generation, and collections start less often (a few per cent of scan time,
    measured in-process on 1,500 newsletters; results are kept, so memory grows as before)."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def can_fork() -> bool:
    """Can worker processes be forked here? Asked only of an input large enough for workers:
    multiprocessing (with socket, tempfile, shutil…: ~25 M instructions) is imported then."""
    from guard.mail.forking import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _same(result: MessageResult) -> MessageResult:
    return result


def scan_refs(
    refs: Iterable[MessageRef],
    rules: RuleSet,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int | None = None,
) -> Iterator[MessageResult]:
    """Scan messages in order; large inputs are spread over `jobs` processes."""
    return scan_refs_as(_same, refs, rules, limits, jobs)


def scan_refs_as(
    present: Callable[[MessageResult], T],
    refs: Iterable[MessageRef],
    rules: RuleSet,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int | None = None,
) -> Iterator[T]:
    """`scan_refs`, each result turned into `present(result)` in the process that scanned it:
    what the caller needs of a message (its output text, a tally) is cheaper to send back from
    a worker than its findings."""
    items = list(refs)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    if items:
        warm_up()  # build the suffix list once, outside any message's time budget
        tune_gc()
    if jobs == 1 or len(items) < PARALLEL_THRESHOLD or not can_fork():
        for ref in items:
            yield present(scan_ref(ref, rules, limits))
        return
    from guard.mail import supervise  # here: a small input is scanned here, no worker started

    # Workers are forked: they share the warmed-up suffix list and the compiled rules, and make
    # each message's output themselves. A message that crashes or hangs a worker (C code the
    # time limit cannot stop) becomes that message's error (guard/mail/supervise.py).
    def work(i: int) -> T:
        hold_handler()  # a worker only scans: its time limits keep the handler (two calls fewer)
        ref = items[i]
        supervise.probe_raw(ref.read)
        return present(scan_ref(ref, rules, limits))

    def failed(i: int, reason: str) -> T:
        ref = items[i]
        return present(MessageResult(source=ref.source, id=ref.id, error=f"{reason}: skipped"))

    yield from supervise.map_supervised(
        work,
        len(items),
        failed,
        jobs=jobs,
        chunk=CHUNK,
        seconds=supervise.item_seconds(limits.max_seconds),
    )
