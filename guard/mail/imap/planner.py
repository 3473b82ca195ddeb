"""The planner of cleaning on a server: each fetched message's cleaned copy, in this process or on
every core, while this process goes on with the IMAP work.

The cleaner (guard.mail.imap.cleaner) hands a fetched round to a planner (`submit`) and takes the
outcomes back, in order, when it is ready to APPEND them (`take`): as many as are planned
(`ready`), when the workers have not finished the round. It fetches round k+1 and
submits it before it takes round k, so workers clean k+1 while this process appends, verifies
and moves k. Nothing a planner does touches the server or the journal: what is written, and
when, is the cleaner's alone.

- `InlinePlanner` (here): the transform in this process, when `take` asks (small folders,
  `--jobs 1`, `guard watch`, the app). Bounded like everything in-process: the per-message
  SIGALRM limit and the HTML pre-check (guard/mail/supervise.py).
- `PoolPlanner` (guard.mail.imap.pool, imported only when a folder is large enough): supervised
  worker processes on every core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from guard.mail.imap.common import CleanOutcome, Transform, digest

PARALLEL_THRESHOLD = 64
"""New messages in a folder from which workers plan them: guard.mail.scan's figure for a local
scan (not imported from there: that module is heavy, and a cron run with nothing new needs none
of it); tests/test_clean_planner.py holds the two equal."""


@dataclass(frozen=True, slots=True)
class Planned:
    """What the cleaner needs of a planned message (a CleanOutcome): what crosses the process
    boundary, not the planner's whole result. `data` is empty unless the message changed."""

    data: bytes
    changed: bool
    removed: Mapping[str, int] = field(default_factory=dict)
    receipt_requested: bool = False
    skipped: str | None = None
    crashed: bool = False
    """Skipped because planning it brought down a worker process (twice)."""
    digest: str = ""
    """guard.mail.imap.common.digest of `data` when it changed: computed by the worker, so the
    cleaner's process (the one that talks to the server) need not (~0.1 ms a newsletter)."""


def planned(result: CleanOutcome) -> Planned:
    return Planned(
        data=result.data if result.changed else b"",
        changed=result.changed,
        removed=dict(result.removed),
        receipt_requested=result.receipt_requested,
        skipped=result.skipped,
        digest=digest(result.data) if result.changed else "",
    )


def digest_of(result: CleanOutcome) -> str:
    """The digest of a changed outcome's cleaned copy: the worker's, or computed here."""
    if isinstance(result, Planned) and result.digest:
        return result.digest
    return digest(result.data)


def internal_error(exc: BaseException) -> Planned:
    return Planned(b"", False, skipped=f"internal error ({type(exc).__name__})")


class Planner(Protocol):
    def submit(self, raws: Sequence[bytes]) -> list[int]:
        """Plan these messages; the keys to `take` their outcomes with."""

    def ready(self, keys: Sequence[int]) -> int:
        """How many of `keys`, from the first on, `take` would return without waiting for a
        worker (it may still compute them itself). Never waits."""

    def take(self, keys: Sequence[int]) -> list[CleanOutcome]:
        """The outcomes of `keys` (submitted earlier), in that order; waits for them."""

    def drop(self, keys: Sequence[int]) -> None:
        """Outcomes that will not be taken (the run stops)."""

    def close(self) -> None: ...


class InlinePlanner:
    """The transform in this process, run when the outcome is taken."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform
        self._raws: dict[int, bytes] = {}
        self._next = 0

    def submit(self, raws: Sequence[bytes]) -> list[int]:
        keys = list(range(self._next, self._next + len(raws)))
        self._next += len(raws)
        self._raws.update(zip(keys, raws, strict=True))
        return keys

    def ready(self, keys: Sequence[int]) -> int:
        return len(keys)  # computed when taken: nothing to wait for, a round stays one batch

    def take(self, keys: Sequence[int]) -> list[CleanOutcome]:
        out: list[CleanOutcome] = []
        for key in keys:
            raw = self._raws.pop(key)
            try:
                out.append(self.transform(raw))
            except Exception as exc:  # noqa: BLE001 - the planner should never raise; be safe
                out.append(internal_error(exc))
        return out

    def drop(self, keys: Sequence[int]) -> None:
        for key in keys:
            self._raws.pop(key, None)

    def close(self) -> None:
        self._raws.clear()
