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


SECURITY_WRAPPERS = frozenset({"Microsoft Safe Links", "Proofpoint URL Defense", "Mimecast"})
"""The manifests' security link wrappers: cleaning keeps them, and what they wrap, unless asked
(README, "What cleaning does to a message": Safe Links, Proofpoint URL Defense, Mimecast)."""


def removed_by(entry: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    """The manifest findings of one message that cleaning with `policy` must remove, from the
    policy's definition (README, "Policies"), not from what guard detects: every pixel and read
    receipt; every wrapped link whose target can be decoded offline (the manifest gives its
    `destination`) unless it is a security wrapper; every tracking parameter except on a target
    a security wrapper carries; and under `strict`, every remote load too."""
    findings = entry.get("finding", [])
    kept_targets = {
        f.get("destination")
        for f in findings
        if f["kind"] == "link" and f["tracker"] in SECURITY_WRAPPERS
    }
    out = []
    for f in findings:
        kind = f["kind"]
        if (
            kind in ("pixel", "receipt")
            or (kind == "link" and "destination" in f and f["tracker"] not in SECURITY_WRAPPERS)
            or (kind == "param" and f["url"] not in kept_targets)
            or (kind == "remote" and policy == "strict")
        ):
            out.append(f)
    return out


def without_params(url: str, params: Any) -> str:
    """`url` with the named query parameters removed, every other character as written."""
    rest, hash_, fragment = url.partition("#")
    base, sep, query = rest.partition("?")
    if not sep:
        return url
    kept = [p for p in query.split("&") if p.split("=", 1)[0] not in set(params)]
    return base + ("?" + "&".join(kept) if kept else "") + hash_ + fragment
