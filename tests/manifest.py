"""Comparing guard's findings with a hand-written manifest (samples/, eval/): one key per finding.

Shared by tests/test_samples_manifest.py and bench/accuracy.py.
"""

from __future__ import annotations

from typing import Any

from guard.engine.model import Finding, Kind


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


def wildcard_remote(entry: dict[str, Any]) -> set[str]:
    """Remote loads the manifest lists without a tracker: their tracker is not compared."""
    return {
        f["url"] for f in entry.get("finding", []) if f["kind"] == "remote" and "tracker" not in f
    }
