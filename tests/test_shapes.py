"""The literal gate in front of host-less rules never hides a URL a rule matches."""

from __future__ import annotations

import random
import re

import pytest

from guard.engine.rules_load import load_ruleset
from guard.engine.shapes import ALWAYS, Gate, ShapeIndex, best_gate, gate
from guard.engine.urls import parse_http


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^/wf/open$", Gate("path", "exact", ("/wf/open",))),
        (r"^/acton/ct/[0-9]+/", Gate("path", "prefix", ("/acton/ct/",))),
        (r"/ut\.php$", Gate("path", "suffix", ("/ut.php",))),
        (r"/email/[0-9a-f]{13,}\.gif$", Gate("path", "contains", ("/email/",))),
        (r"(/|/index\.php)$", ALWAYS),  # "/" alone would let every path through
        (r"(/index\.php|/i\.php)$", Gate("path", "suffix", ("/index.php", "/i.php"))),
        (r"(/extern/open\.php|/civicrm/mailing/open)$",
         Gate("path", "suffix", ("/extern/open.php", "/civicrm/mailing/open"))),
        (r"(?i)^/wf/open$", ALWAYS),  # case-insensitive: no literal test is sound
        (r"^(?!x)/", ALWAYS),
        (r"[a-z]+", ALWAYS),
    ],
)  # fmt: skip
def test_gate_reads_the_literal_text_a_pattern_demands(pattern: str, expected: Gate) -> None:
    found = gate(re.compile(pattern), "path")
    assert found == expected if expected.kind != "always" else found.kind == "always"


def test_the_more_selective_of_path_and_query_is_used() -> None:
    g = best_gate(re.compile(r"(/|/index\.php)$"), re.compile(r"^entryPoint=campaignUrl&"))
    assert g == Gate("query", "prefix", ("entryPoint=campaignUrl&",))


# Each pattern with the pieces random strings are made of: its own literals, near misses, junk.
PATTERNS = {
    r"^/(?:index\.php/)?(?:mailster|mymail)/[0-9]+/[0-9a-f]{2}/?$": [
        "/",
        "index.php/",
        "mailster/",
        "mymail/",
        "12",
        "/ab",
        "mail",
        "/mailster/1/ab",
    ],
    r"^/wf/open$": ["/", "wf", "open", "w", "f/", "x"],
    r"^/p/(cp/[0-9a-f]{2,4}/r|rp/[0-9a-f]{2,4}/url)$": [
        "/p/",
        "cp/",
        "rp/",
        "ab",
        "/r",
        "/url",
        "/p/cp/ab/r",
    ],
    r"(^|/)index\.php$": ["/", "index", ".php", "x", "index.php"],
    r"(/index\.php|/i\.php)$": ["/", "index", ".php", "i", "x", "i.php"],
    r"/campaigns/[a-z0-9]{2}/track-url/[a-z]+$": [
        "/",
        "campaigns",
        "ab",
        "/track-url/",
        "x",
        "/campaigns/ab/track-url/x",
    ],
    r"^(?!.*/[0-9a-f]{4,}/).*/(?:spacer|blank)\.gif$": [
        "/",
        "spacer",
        "blank",
        ".gif",
        "abcd",
        "x",
    ],
    r"^(/[a-z0-9-]+)?/r/[0-9a-f]{2}$": ["/", "r", "ab", "x-1", "/r/"],
    r"^/o/eJ[A-Za-z0-9_-]{2,}": ["/", "o", "eJ", "AZ", "-", "e"],
}


def test_no_string_a_pattern_finds_is_refused_by_its_gate() -> None:
    rng = random.Random(5)
    for source, pieces in PATTERNS.items():
        pattern = re.compile(source)
        g = gate(pattern, "path")
        assert g.kind != "always", source
        found = 0
        for _ in range(20_000):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
            if pattern.search(text):
                found += 1
                assert _passes(g, text), (source, g, text)
        assert found, f"the generator never produced a match for {source}"


def _passes(g: Gate, text: str) -> bool:
    return {
        "exact": lambda: text in g.texts,
        "prefix": lambda: text.startswith(g.texts),
        "suffix": lambda: text.endswith(g.texts),
        "contains": lambda: any(t in text for t in g.texts),
        "always": lambda: True,
    }[g.kind]()


def test_index_finds_every_rule_whose_literal_test_passes_in_given_order() -> None:
    entries = [
        ("open", re.compile(r"^/wf/open$"), None),
        ("gif", re.compile(r"/email/[0-9a-f]{13,}\.gif$"), None),
        ("any", re.compile(r"[a-z]"), None),
        ("php", re.compile(r"(/|/index\.php)$"), re.compile(r"^entryPoint=x&")),
    ]
    index = ShapeIndex(entries)
    assert len(index) == 4
    assert index.find("/wf/open", "") == ["open", "any"]
    assert index.find("/index.php", "entryPoint=x&a=1") == ["any", "php"]
    assert index.find("/email/abc.gif", "") == ["gif", "any"]


def test_every_host_less_rule_is_a_candidate_for_its_own_examples() -> None:
    rules = load_ruleset(include_user=False)
    checked = 0
    for rule in rules.rules:
        if rule.hosts or rule.kind not in ("pixel", "link", "spacer", "host"):
            continue
        for example in rule.match:
            url = parse_http(example.text)
            assert url is not None
            assert rule in rules.candidates(url), (rule.id, example.text)
            checked += 1
    assert checked >= 50


def test_an_empty_exact_value_is_no_gate() -> None:
    # `^$` on the query (a spacer without a query string) must not hide the rule from URLs
    # without a query: the path's literal test is used instead.
    assert gate(re.compile(r"^$"), "query").kind == "always"
    g = best_gate(re.compile(r"/spacer\.gif$"), re.compile(r"^$"))
    assert g == Gate("path", "suffix", ("/spacer.gif",))
