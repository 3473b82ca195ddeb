"""No service rests on another project's tracker list alone (rules/README.md, "Sources")."""

from __future__ import annotations

import re

from guard.engine.rules_load import load_ruleset

# Tracker lists, blocklists and filter lists: fine to mention, never a source on their own.
LISTS = re.compile(
    r"MailTrackerBlocker|MTBBlockedMessage|trocker|ugly-email|pixelblock|easylist|ublock|"
    r"adguard|ghostery|tracker-radar|disconnect\.me|debounce",
    re.I,
)
_URL = re.compile(r"https?://[^\s\"')]+")


def independent(source: str) -> bool:
    """Does the text cite something other than a tracker list?"""
    if "observed" in source.lower():
        return True
    return any(not LISTS.search(url) for url in _URL.findall(source))


def test_every_service_has_an_independent_source() -> None:
    rules = load_ruleset(include_user=False)
    sources: dict[str, list[str]] = {}
    for rule in rules.rules:
        sources.setdefault(rule.service.id, [rule.service.source]).append(rule.source)
    list_only = sorted(sid for sid, texts in sources.items() if not any(map(independent, texts)))
    assert not list_only, f"services sourced only from another project's list: {list_only}"


def test_the_check_tells_lists_from_evidence() -> None:
    assert not independent("https://github.com/apparition47/MailTrackerBlocker/blob/x.m")
    assert independent("https://docs.sendgrid.com/ui/analytics-and-reporting/click-tracking")
    assert independent("observed: a real newsletter quoted in a GitHub issue")
    assert independent("https://example.org/doc; also MailTrackerBlocker")
