"""The property every hostile input must satisfy, checked in-process.

For one message:
- `scan_raw` returns a MessageResult (findings or a per-message error); no exception escapes, and
  the error is never an `internal error` (a bug caught by the last-resort handler) or a hit
  recursion limit (recursion must be bounded by the Limits, not by Python's stack);
- `clean_message` (strict policy) returns the input itself, or changed data that
  `guard.engine.mime.parse_message` reads; never an internal error;
- `run_strip` (default policy) exits 0 and writes the input unchanged or a message that
  `parse_message` reads, with no `internal error` warning;
- each of the three steps stays under a time cap and a memory cap (peak RSS growth, measured
  per step by resetting the kernel's high-water mark through /proc/self/clear_refs).

An mbox input is split by `guard.mail.files.mbox_refs` (only SourceError may escape) and each
message is checked as above.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from guard.clean.message import Policy, _clean, clean_message
from guard.cli import strip as cli_strip
from guard.cli.args import add_strip_arguments
from guard.cli.clean import run_strip
from guard.engine.detect import detect
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.engine.mime import MessageError, parse_message
from guard.engine.model import MessageResult
from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import RuleSet
from guard.mail.files import SourceError, mbox_refs
from guard.mail.scan import scan_raw

from .strategies import FuzzInput

CAP_SECONDS = 30.0
"""Per step. The Limits' own budget (max_seconds, 20 s by default) plus slack for C code (Lexbor)
that a timer cannot interrupt."""
CAP_MEMORY_MB = 3072.0
"""Peak RSS growth per step. A 20 MB HTML part is the worst legitimate case (Lexbor's tree of
it, for the scan and again for cleaning)."""

T = TypeVar("T")


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@dataclass
class Step:
    name: str
    seconds: float
    memory_mb: float | None  # peak RSS growth; None where /proc cannot tell


@dataclass
class Outcome:
    """What one input did."""

    input: FuzzInput
    failures: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # "scan: error: …", "clean: changed", …

    @property
    def seconds(self) -> float:
        return max((s.seconds for s in self.steps), default=0.0)

    @property
    def memory_mb(self) -> float | None:
        known = [s.memory_mb for s in self.steps if s.memory_mb is not None]
        return max(known) if known else None


def _measured(name: str, outcome: Outcome, fn: Callable[[], T]) -> T:
    rss = _status_kb("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    try:
        return fn()
    finally:
        seconds = time.perf_counter() - started
        peak = _status_kb("VmHWM") if reset else None
        memory = (peak - rss) / 1024 if peak is not None and rss is not None else None
        outcome.steps.append(Step(name, seconds, memory))
        if seconds > CAP_SECONDS:
            outcome.failures.append(f"{name}: took {seconds:.1f} s (cap {CAP_SECONDS:g} s)")
        if memory is not None and memory > CAP_MEMORY_MB:
            outcome.failures.append(f"{name}: RSS grew {memory:.0f} MB (cap {CAP_MEMORY_MB:g})")


def _strip_namespace() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_strip_arguments(parser)
    return parser.parse_args([])


@contextmanager
def _rules_for_strip(rules: RuleSet) -> Iterator[None]:
    """`run_strip` loads the rules per call (a filter runs once per message): reuse ours."""
    namespace = vars(cli_strip)
    original = namespace["load_ruleset"]
    namespace["load_ruleset"] = lambda *a, **k: rules
    try:
        yield
    finally:
        namespace["load_ruleset"] = original


def _parses(data: bytes, limits: Limits) -> str | None:
    """None when guard's parser reads `data`, else why not."""
    try:
        parse_message(data, limits)
        return None
    except MessageError as exc:
        return f"MessageError: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported as the failure it is
        return f"{type(exc).__name__}: {exc}"


def _trace(fn: Callable[[], object]) -> str:
    """The traceback a guarded call swallowed, by re-running its body unguarded."""
    try:
        fn()
    except Exception:  # noqa: BLE001 - we want exactly this traceback
        return traceback.format_exc(limit=-12)
    return "(did not fail again when re-run unguarded)"


class Checker:
    def __init__(self, rules: RuleSet | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.rules = rules or load_ruleset(include_user=False)
        self.limits = limits
        self.strict = Policy(name="strict")
        self.strip_ns = _strip_namespace()

    def check(self, inp: FuzzInput) -> Outcome:
        outcome = Outcome(inp)
        if not inp.mbox:
            self.check_message(inp.data, outcome)
            return outcome
        with tempfile.TemporaryDirectory(prefix="guard-fuzz-") as tmp:
            path = Path(tmp) / "fuzz.mbox"
            path.write_bytes(inp.data)
            try:
                refs = list(mbox_refs(path, "fuzz.mbox"))
            except SourceError as exc:
                outcome.outcomes.append(f"mbox: {exc}")
                return outcome
            except Exception as exc:  # noqa: BLE001
                outcome.failures.append(f"mbox_refs raised {type(exc).__name__}: {exc}")
                return outcome
            for ref in refs:
                try:
                    raw = ref.read()
                except Exception as exc:  # noqa: BLE001
                    outcome.failures.append(f"MessageRef.read raised {type(exc).__name__}: {exc}")
                    continue
                self.check_message(raw, outcome)
        return outcome

    def check_message(self, raw: bytes, outcome: Outcome) -> None:
        self._scan(raw, outcome)
        self._clean(raw, outcome)
        self._strip(raw, outcome)

    def _scan(self, raw: bytes, outcome: Outcome) -> None:
        try:
            result = _measured("scan", outcome, lambda: scan_raw(raw, "fuzz", "1", self.rules,
                                                                 self.limits))  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - the property: nothing escapes
            outcome.failures.append(f"scan_raw raised {type(exc).__name__}: {exc}\n"
                                    + traceback.format_exc(limit=-12))  # fmt: skip
            return
        if not isinstance(result, MessageResult):
            outcome.failures.append(f"scan_raw returned {type(result).__name__}")
            return
        error = result.error or ""
        if error.startswith("internal error") or error == "structure nested too deeply":
            trace = _trace(lambda: self._scan_unguarded(raw))
            outcome.failures.append(f"scan_raw: {error}\n{trace}")
        outcome.outcomes.append(f"scan: error: {error[:60]}" if error else "scan: ok")

    def _scan_unguarded(self, raw: bytes) -> None:
        parsed, envelope = parse_message(raw, self.limits)
        detect(parsed, self.rules, sender=envelope.from_addr)

    def _clean(self, raw: bytes, outcome: Outcome) -> None:
        try:
            result = _measured(
                "clean", outcome, lambda: clean_message(raw, self.rules, self.strict, self.limits)
            )
        except BaseException as exc:  # noqa: BLE001
            outcome.failures.append(f"clean_message raised {type(exc).__name__}: {exc}\n"
                                    + traceback.format_exc(limit=-12))  # fmt: skip
            return
        skipped = result.skipped or ""
        if skipped.startswith("internal error") or skipped == "structure nested too deeply":
            trace = _trace(lambda: _clean(raw, self.rules, self.strict, self.limits))
            outcome.failures.append(f"clean_message: {skipped}\n{trace}")
        if result.changed:
            why = _parses(result.data, self.limits)
            if why is not None:
                outcome.failures.append(f"clean_message: the cleaned copy does not parse: {why}")
            outcome.outcomes.append("clean: changed")
        elif result.data != raw:
            outcome.failures.append("clean_message: unchanged, but data differs from the input")
        else:
            outcome.outcomes.append(f"clean: skipped: {skipped[:60]}" if skipped else "clean: ok")

    def _strip(self, raw: bytes, outcome: Outcome) -> None:
        out, err = io.BytesIO(), io.StringIO()
        try:
            with _rules_for_strip(self.rules):
                code = _measured(
                    "strip", outcome, lambda: run_strip(self.strip_ns, io.BytesIO(raw), out, err)
                )
        except BaseException as exc:  # noqa: BLE001
            outcome.failures.append(f"run_strip raised {type(exc).__name__}: {exc}\n"
                                    + traceback.format_exc(limit=-12))  # fmt: skip
            return
        if code != 0:
            outcome.failures.append(f"run_strip exited {code}: {err.getvalue().strip()}")
        if "internal error" in err.getvalue():
            outcome.failures.append(f"run_strip: {err.getvalue().strip()}")
        written = out.getvalue()
        if written != raw:
            why = _parses(written, DEFAULT_LIMITS)
            if why is not None:
                outcome.failures.append(f"run_strip wrote a changed message that does not parse: "
                                        f"{why}")  # fmt: skip


def isolate_user_dirs(tmp: str | os.PathLike[str]) -> None:
    """Keep the developer's config, rules and allowlist out of the run (the tests' fixture does
    the same)."""
    base = Path(tmp)
    os.environ["XDG_CONFIG_HOME"] = str(base / "config")
    os.environ["XDG_DATA_HOME"] = str(base / "data")
    os.environ["GUARD_CONFIG"] = str(base / "config" / "guard" / "config.toml")
