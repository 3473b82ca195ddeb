"""Counts stated in prose are the counts of the things themselves.

Every page of the documentation (README.md, docs/**/*.md and the READMEs of rules/, samples/ and
eval/) is searched, wherever the sentence has moved, for the statements below; each number found
must be the one counted here from the rule files, the manifests and the test tables. A sentence
that says it differently is not seen: when a statement is reworded, its pattern here follows (a
pattern that no page matches any more fails, so it cannot silently stop checking).

Figures measured by a script (messages per second, recall, sizes of a run) are not counts of the
repository and are not checked here; neither are counts that describe the past ("… 682 rules:"
in a measurement's heading, the first session's 391 rules).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from test_httpleaks import LEAKS
from test_vectors import VECTORS

from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import RuleSet

ROOT = Path(__file__).resolve().parent.parent


def _pages() -> dict[str, str]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    paths += [ROOT / d / "README.md" for d in ("rules", "samples", "eval")]
    # One line per page: a sentence wrapped over lines still reads as one.
    return {
        str(p.relative_to(ROOT)): re.sub(r"\s+", " ", p.read_text(encoding="utf-8"))
        for p in paths
        if p.is_file()
    }


@cache
def _rules() -> RuleSet:
    return load_ruleset(include_user=False)


def _manifest(corpus: str) -> list[dict[str, Any]]:
    text = (ROOT / corpus / "manifest.toml").read_text(encoding="utf-8")
    return list(tomllib.loads(text)["message"])


def _samples_under(prefix: str) -> int:
    return sum(m["source"].startswith(prefix) for m in _manifest("samples"))


def _sample_services() -> int:
    """Services the sample manifest names as trackers. Not the `standard` category: the UTM
    parameters and the receipt headers are conventions, not services."""
    by_name = {s.name: s for s in _rules().services.values()}
    named = {f.get("tracker") for m in _manifest("samples") for f in m.get("finding", [])}
    return sum(1 for n in named if n and by_name[n].category != "standard")


def _hard_negatives() -> int:
    """samples/README.md: the hard negatives are the `negative-*` messages."""
    return sum(m["source"].startswith("eml/negative-") for m in _manifest("samples"))


def _eval_tracking(tracking: bool) -> int:
    return sum(bool(m["tracking"]) is tracking for m in _manifest("eval"))


STATEMENTS: list[tuple[str, str, Callable[[], tuple[int, ...]]]] = [
    (
        "services and rules",
        r"(\d+) services and (\d+) rules today",
        lambda: (len(_rules().services), len(_rules().rules)),
    ),
    (
        "rules that decode a wrapped link",
        r"(\d+) of them decode a wrapped link's target",
        lambda: (sum(r.decode is not None for r in _rules().rules),),
    ),
    (
        "samples and their kinds",
        r"`samples/` holds (\d+) realistic messages \((\d+) `\.eml`, an mbox of (\d+), "
        r"a Maildir of (\d+)\)",
        lambda: (
            len(_manifest("samples")),
            _samples_under("eml/"),
            _samples_under("mbox/"),
            _samples_under("maildir/"),
        ),
    ),
    (
        "tracker services of the samples",
        r"covering (\d+) tracker services",
        lambda: (_sample_services(),),
    ),
    (
        "services of the samples (samples/README.md)",
        r"parameters from (\d+) services in the canonical list",
        lambda: (_sample_services(),),
    ),
    ("hard negatives", r"(\d+) tracking-free hard negatives", lambda: (_hard_negatives(),)),
    ("samples in a table", r"`samples/` \((\d+) messages\)", lambda: (len(_manifest("samples")),)),
    ("the .eml samples", r"(\d+) `\.eml` samples", lambda: (_samples_under("eml/"),)),
    (
        "samples/README.md's listing",
        r"eml/ (\d+) single messages .* mbox/archive\.mbox (\d+) messages .* maildir/ cur/ "
        r"\((\d+) messages, .* new/ \((\d+) message\), .* \((\d+) entries\)",
        lambda: (
            _samples_under("eml/"),
            _samples_under("mbox/"),
            _samples_under("maildir/cur/"),
            _samples_under("maildir/new/"),
            len(_manifest("samples")),
        ),
    ),
    ("eval in a table", r"`eval/` \((\d+) messages", lambda: (len(_manifest("eval")),)),
    (
        "eval/README.md's listing",
        r"eml/ (\d+) messages: (\d+) with tracking, (\d+) tracking-free",
        lambda: (len(_manifest("eval")), _eval_tracking(True), _eval_tracking(False)),
    ),
    ("vectors", r"`tests/test_vectors\.py` holds (\d+) vectors", lambda: (len(VECTORS),)),
    ("HTTPLeaks cases", r"`tests/test_httpleaks\.py` writes (\d+) cases", lambda: (len(LEAKS),)),
]


@pytest.mark.parametrize(
    ("pattern", "counted"), [s[1:] for s in STATEMENTS], ids=[s[0] for s in STATEMENTS]
)
def test_counts_in_prose_are_the_counts(
    pattern: str, counted: Callable[[], tuple[int, ...]]
) -> None:
    expected = counted()
    stated = [
        (page, tuple(int(n) for n in found.groups()))
        for page, text in _pages().items()
        for found in re.finditer(pattern, text)
    ]
    assert stated, f"no page states this any more: reword the pattern or drop it ({pattern})"
    wrong = [f"{page}: {numbers}" for page, numbers in stated if numbers != expected]
    assert not wrong, f"counted {expected}, stated otherwise:\n" + "\n".join(wrong)
