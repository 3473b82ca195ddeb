"""The engine against the hand-written manifest of the sample corpus (samples/manifest.toml).

The manifest was written from how each sample was built, before the engine ran on it; a mismatch is
either a detection bug or a rule gap, never a reason to regenerate the manifest from the output.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from guard.model import Finding, Kind, MessageResult
from guard.ruleset import load_ruleset
from guard.scan import scan_refs
from guard.sources.files import message_refs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MANIFEST = tomllib.loads((SAMPLES / "manifest.toml").read_text(encoding="utf-8"))["message"]


def _scan_all() -> dict[str, MessageResult]:
    rules = load_ruleset(include_user=False)
    refs = list(message_refs(str(SAMPLES)))
    prefix = str(SAMPLES) + "/"
    return {r.source.removeprefix(prefix): r for r in scan_refs(refs, rules, jobs=1)}


RESULTS = _scan_all()


def _key(kind: str, tracker: str | None, url: str | None, extra: Any = None) -> tuple[Any, ...]:
    return (kind, tracker or "", url or "", extra)


def expected_keys(entry: dict[str, Any]) -> set[tuple[Any, ...]]:
    keys = set()
    for f in entry.get("finding", []):
        kind = f["kind"]
        if kind == "receipt":
            keys.add(_key(kind, None, f["header"].lower()))
        elif kind == "remote":
            keys.add(
                _key(kind, f.get("tracker"), f["url"])
                if "tracker" in f
                else _key(kind, "*", f["url"])
            )
        elif kind == "link":
            keys.add(_key(kind, f["tracker"], f["url"], f.get("destination")))
        elif kind == "param":
            keys.add(_key(kind, f["tracker"], f["url"], tuple(sorted(f["params"]))))
        else:
            keys.add(_key(kind, f.get("tracker"), f["url"]))
    return keys


def actual_keys(findings: tuple[Finding, ...], wildcard_remote: set[str]) -> set[tuple[Any, ...]]:
    keys = set()
    for f in findings:
        if f.kind is Kind.RECEIPT:
            keys.add(_key("receipt", None, (f.header or "").lower()))
        elif f.kind is Kind.REMOTE:
            tracker = "*" if f.url in wildcard_remote else f.tracker
            keys.add(_key("remote", tracker, f.url))
        elif f.kind is Kind.LINK:
            keys.add(_key("link", f.tracker, f.url, f.destination))
        elif f.kind is Kind.PARAM:
            keys.add(_key("param", f.tracker, f.url, tuple(sorted(f.params))))
        else:
            keys.add(_key(f.kind.value, f.tracker, f.url))
    return keys


def test_manifest_covers_every_sample() -> None:
    assert {m["source"] for m in MANIFEST} == set(RESULTS)
    assert len(MANIFEST) >= 60


@pytest.mark.parametrize("entry", MANIFEST, ids=[m["source"] for m in MANIFEST])
def test_sample_matches_manifest(entry: dict[str, Any]) -> None:
    result = RESULTS[entry["source"]]
    if entry.get("degraded") and result.error:
        return  # a broken message may be refused with a per-message error instead of salvaged
    if entry.get("error"):
        assert result.error, "a deliberately broken message must be reported as an error"
        return
    assert result.error is None, result.error
    wildcard = {
        f["url"] for f in entry.get("finding", []) if f["kind"] == "remote" and "tracker" not in f
    }
    expected = expected_keys(entry)
    actual = actual_keys(result.findings, wildcard)
    missing = sorted(expected - actual, key=str)
    unexpected = sorted(actual - expected, key=str)
    assert not missing and not unexpected, (
        f"{entry['source']}\n  missing: {missing}\n  unexpected: {unexpected}"
    )
    assert result.tracking is bool(entry["tracking"])
