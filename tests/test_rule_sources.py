"""No service rests on another project's tracker list alone (rules/README.md, "Sources"), and a
source shows its evidence: the word "observed" is not evidence, what was observed is.

Evidence is a URL that is not a tracker list (documentation, an issue quoting a real message, an
archive), a URL shape (`host.example/path…`, with or without its scheme), a quoted example (a
quoted string naming a host, a parameter or a header) or a header line (`X-Mailer: …`,
`d=domain`). What a source quotes from a tracker list right after citing it (`….m
("t.example.com")`) is the list speaking, not evidence.
"""

from __future__ import annotations

import re

from guard.engine.rules_load import load_ruleset

# Tracker lists, blocklists and filter lists: fine to mention, never a source on their own.
LISTS = re.compile(
    r"MailTrackerBlocker|MTBBlockedMessage|trocker|ugly-email|pixelblock|easylist|ublock|"
    r"adguard|ghostery|tracker-radar|disconnect\.me|debounce",
    re.I,
)
_URL = re.compile(r"\bhttps?://[^\s\"')]+", re.I)
_LIST_QUOTE = re.compile(r"""\s*\(\s*["'][^)]*\)""")
"""A parenthesised quote right after a list's URL: the list's own pattern."""
_SHAPE = re.compile(
    r"(?<![\w.@/-])(?:https?(?:\(s\))?://)?(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?/[^\s\"')]*", re.I
)
_QUOTED = re.compile(r"""(["'`])([^"'`]+?)\1""")
_QUOTED_THING = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,}\b|\w=|^[A-Z][\w-]+: \S", re.I)
_HEADER = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*-)+[A-Za-z0-9]+: \S|\bd=(?:[\w-]+\.)+\w+")
_POINTS_ELSEWHERE = re.compile(
    r"this service's sources?|the same messages|\bsee (?:the|sent-via)\b|\(see |above|below", re.I
)
"""A rule's source that says where its evidence is: the service's source, or another rule's."""

LIST_ONLY = {
    "circleci": "only MailTrackerBlocker's pattern https://email.circleci.com/o/; no real CircleCI"
    " message with its open image was found in public sources (searched 2026-12)",
}
"""Services that rest on a list alone, each with why it is kept: a known gap, not evidence."""


def _without_lists(text: str) -> str:
    """`text` without the tracker lists it cites and the patterns it quotes from them."""
    out, pos = [], 0
    for url in _URL.finditer(text):
        if LISTS.search(url.group(0)):
            quote = _LIST_QUOTE.match(text, url.end())
            out.append(text[pos : url.start()])
            pos = quote.end() if quote else url.end()
    out.append(text[pos:])
    return " ".join(out)


def evidence(source: str) -> list[str]:
    """What in a source text shows what was seen: URLs, URL shapes, quoted examples, headers."""
    text = _without_lists(source)
    found = _URL.findall(text) + _SHAPE.findall(text) + _HEADER.findall(text)
    found += [quoted for _, quoted in _QUOTED.findall(text) if _QUOTED_THING.search(quoted)]
    return found


def test_every_service_has_evidence_beyond_a_tracker_list() -> None:
    rules = load_ruleset(include_user=False)
    sources: dict[str, list[str]] = {}
    for rule in rules.rules:
        sources.setdefault(rule.service.id, [rule.service.source]).append(rule.source)
    list_only = sorted(sid for sid, texts in sources.items() if not any(map(evidence, texts)))
    assert list_only == sorted(LIST_ONLY), (
        f"services without evidence beyond a tracker list: {list_only}; known: {sorted(LIST_ONLY)}"
    )


def test_every_observation_shows_what_was_observed() -> None:
    """A source (a rule's own, or its service's) that says "observed" quotes what was seen (a
    URL, a URL shape, an example) or says which source does."""
    rules = load_ruleset(include_user=False)
    bare = [
        f"{rule.id}: {rule.source[:120]}"
        for rule in rules.rules
        if "observed" in rule.source.lower()
        and not evidence(rule.source)
        and not _POINTS_ELSEWHERE.search(rule.source)
    ]
    assert not bare, "sources that say only 'observed':\n" + "\n".join(bare)


def test_the_check_tells_lists_from_evidence() -> None:
    assert not evidence("https://github.com/apparition47/MailTrackerBlocker/blob/x.m")
    assert not evidence(
        'https://github.com/apparition47/MailTrackerBlocker/blob/x.m ("t.ex.com/o/")'
    )
    assert not evidence("observed: a real newsletter quoted in a GitHub issue")
    assert evidence("https://docs.sendgrid.com/ui/analytics-and-reporting/click-tracking")
    assert evidence("https://example.org/doc; also MailTrackerBlocker")
    assert evidence("observed: links l.messenger.com/l.php?u=<target> in public code")
    assert evidence('observed: <img src="//counter.example.ru/hit?t52"> in saved pages')
    assert evidence("observed: real mail carries X-Mailer: Zendesk Mailer")
    assert evidence('observed: the API answer "cname_value": "track.smtp2go.net"')
    assert evidence("https://github.com/x/MailTrackerBlocker/issues/60 (a real message: <img"
                    " src=https://t.example.com/o/1>)")  # fmt: skip
