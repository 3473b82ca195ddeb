"""The engine against the hand-written manifest of the sample corpus (samples/manifest.toml).

The manifest was written from how each sample was built, before the engine ran on it; a mismatch is
either a detection bug or a rule gap, never a reason to regenerate the manifest from the output.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from manifest import actual_keys, expected_keys, wildcard_remote

from guard.engine.model import MessageResult
from guard.engine.rules_load import load_ruleset
from guard.mail.files import message_refs
from guard.mail.scan import scan_refs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MANIFEST = tomllib.loads((SAMPLES / "manifest.toml").read_text(encoding="utf-8"))["message"]


def _scan_all() -> dict[str, MessageResult]:
    rules = load_ruleset(include_user=False)
    refs = list(message_refs(str(SAMPLES)))
    prefix = str(SAMPLES) + "/"
    return {r.source.removeprefix(prefix): r for r in scan_refs(refs, rules, jobs=1)}


RESULTS = _scan_all()


def test_manifest_covers_every_sample() -> None:
    assert {m["source"] for m in MANIFEST} == set(RESULTS)
    assert len(MANIFEST) >= 60


@pytest.mark.parametrize("entry", MANIFEST, ids=[m["source"] for m in MANIFEST])
def test_sample_matches_manifest(entry: dict[str, Any]) -> None:
    result = RESULTS[entry["source"]]
    # No sample is refused: even the deliberately broken one is salvaged as a mail client would
    # (its manifest entry lists what a client shows).
    assert not entry["error"]
    assert result.error is None, result.error
    expected = expected_keys(entry)
    actual = actual_keys(result.findings, wildcard_remote(entry))
    missing = sorted(expected - actual, key=str)
    unexpected = sorted(actual - expected, key=str)
    assert not missing and not unexpected, (
        f"{entry['source']}\n  missing: {missing}\n  unexpected: {unexpected}"
    )
    assert result.tracking is bool(entry["tracking"])
