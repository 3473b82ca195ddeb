"""The cleaning planner's link decisions through the C core (guard/engine/_urlcore.c `decide`,
`strip_params`, `unwrap`, `parse`) against the Python reference (guard/clean/message.py
`decide_link`, `tracking_params`, RuleSet.unwrap, urls.parse_http).

`strip_params` must give `tracking_params`'s answer for hypothesis-generated URLs and texts (the
hostile references of tests/test_urlcore.py, with the text as written varied around the URL),
`decide` decide_link's wherever it answers (None: decide_link decides), and every link decision
of the bundled mail, bench newsletters and a fixed sample of the real corpus (skipped with the
reason where ../shared is absent) must be the same both ways.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from html5_reads import corpus_messages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_urlcore import REFS, _clear

from guard.clean.message import (
    SECURITY_CATEGORY,
    Policy,
    _LinkDecision,
    _Planner,
    decide_link,
    tracking_params,
)
from guard.engine import urlcore
from guard.engine.detect import BUILTIN_REMOTE, detect
from guard.engine.mime import MessageError, parse_message
from guard.engine.rules_load import load_ruleset
from guard.engine.urls import parse_http
from guard.mail.files import message_refs

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "phishing-pot-dev.tar.xz"
CORPUS_EVERY = 8

pytestmark = pytest.mark.skipif(
    not urlcore.AVAILABLE, reason="guard/engine/_urlcore.c is not built (no C compiler?)"
)

RULES = load_ruleset(include_user=False)
_QUERY = st.lists(
    st.one_of(
        st.sampled_from(
            ["utm_source=x", "utm_medium", "UTM_source=1", "mc_eid=1", "mc_cid", "fbclid=z",
             "gclid=", "id=3", "=", "", "utm_%73ource=n", "utm+source", "ut%6d_x", "%", "%zz",
             "é=1", "utm_€", "a=b=c", "#", "?", "#top", "?x=1"]
        ),
        st.text(max_size=6),
    ),
    max_size=8,
).map("&".join)  # fmt: skip


@st.composite
def texts(draw: st.DrawFn) -> str:
    """A URL as written: a reference, or one with a generated query (and fragment)."""
    if draw(st.booleans()):
        return draw(REFS)
    head = draw(st.sampled_from(["https://shop.example/p", "http://a.example", "//x.example/"]))
    tail = draw(st.sampled_from(["", "#f", "#a?utm_source=1", "#", " "]))
    return head + draw(st.sampled_from(["?", "", "?&"])) + draw(_QUERY) + tail


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts(), st.one_of(st.none(), texts()))
def test_strip_params_is_tracking_params(text: str, other: str | None) -> None:
    url = parse_http(text)
    if url is None:
        return
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    written = text if other is None else other  # decide_link passes the target as written
    assert core.strip_params(url, written) == tracking_params(url, written, RULES)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts(), st.booleans())
def test_decide_is_decide_links(text: str, unwrap_security: bool) -> None:
    url = parse_http(text)
    if url is None:
        return
    policy = Policy(unwrap_security=unwrap_security)
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    _clear(RULES)
    fields = core.decide(url, None if unwrap_security else SECURITY_CATEGORY)
    _clear(RULES)
    if fields is not None:  # None: Python decides (decide_link itself)
        assert _LinkDecision._make(fields) == decide_link(url, RULES, policy)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(texts(), max_size=6), st.booleans())
def test_decide_links_is_decide(written: list[str], unwrap_security: bool) -> None:
    """The batch (`decide_links`, the planner's) gives `decide`'s answers for the raws of a
    message's links (what link findings hold): a raw splits to the same Url again, which the
    batch reads as its unwrapped target without a second split; what `decide` leaves, it leaves."""
    raws = {url.raw for url in map(parse_http, written) if url is not None}
    for raw in raws:
        assert parse_http(raw) == parse_http(raw.strip())
        again = parse_http(raw)
        assert again is not None and again.raw == raw
    security = None if unwrap_security else SECURITY_CATEGORY
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    _clear(RULES)
    decided, left = core.decide_links([*raws, "cid:x", " "], security, _LinkDecision)
    _clear(RULES)
    assert set(decided) | set(left) == raws and not set(decided) & set(left)
    for raw in raws:
        url = parse_http(raw)
        assert url is not None
        fields = core.decide(url, security)
        if fields is None:
            assert raw in left
        else:
            assert type(decided[raw]) is _LinkDecision
            assert decided[raw] == _LinkDecision._make(fields)


def test_decide_leaves_to_python_what_it_does_not_decide() -> None:
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    wrapped = [e.text for r in RULES.rules if r.kind == "link" for e in r.match]
    security = [e.text for r in RULES.rules if r.category == SECURITY_CATEGORY for e in r.match]
    assert security
    for text in security:
        url = parse_http(text)
        assert url is not None
        assert core.decide(url, SECURITY_CATEGORY) is None
    decided = 0
    for text in wrapped:
        url = parse_http(text)
        assert url is not None
        fields = core.decide(url, None)
        if fields is not None:
            assert _LinkDecision._make(fields) == decide_link(
                url, RULES, Policy(unwrap_security=True)
            )
            decided += 1
    assert decided >= len(wrapped) // 2
    unsafe = parse_http("https://shop.example/p?utm_source=x&q=a<b")
    assert unsafe is not None
    assert core.decide(unsafe, None) is None  # _safe_url percent-encodes it


def _decisions_agree(raw: bytes, policy: Policy) -> int:
    """How many link decisions the message has, after checking each is the same both ways."""
    try:
        msg = parse_message(raw)[0]
    except (MessageError, RecursionError):
        return 0
    planner = _Planner(detect(msg, RULES), RULES, policy)
    compared = 0
    for text in sorted(planner.link_urls):
        url = parse_http(text)
        if url is None:
            continue
        native = planner.decision(url)
        _clear(RULES)
        assert decide_link(url, RULES, policy) == native, text
        compared += 1
    return compared


def _mail(folder: str) -> list[tuple[str, bytes]]:
    return [(ref.source, ref.read()) for ref in message_refs(str(ROOT / folder))]


@pytest.mark.parametrize("folder", ["samples", "eval/eml"])
@pytest.mark.parametrize("policy", [Policy(), Policy(unwrap_security=True)])
def test_same_decisions_on_the_bundled_mail(folder: str, policy: Policy) -> None:
    compared = sum(_decisions_agree(raw, policy) for _, raw in _mail(folder))
    assert compared >= 10


def test_same_decisions_on_bench_newsletters() -> None:
    # bench/corpus.py's newsletters (the ones whose cleaning is timed): utm_, mc_ and ESP
    # wrappers on every link.
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from corpus import message
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rng = random.Random(1)
    compared = sum(_decisions_agree(message(rng, seq), Policy()) for seq in range(12))
    assert compared >= 100
    # ... most of them decided in C (`decide`), not handed back to decide_link.
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    urls = [parse_http(text) for seq in range(12) for text in _link_urls(message(rng, seq))]
    fields = [core.decide(url, SECURITY_CATEGORY) for url in urls if url is not None]
    assert sum(f is not None for f in fields) >= 0.9 * len(fields) > 0


def _link_urls(raw: bytes) -> set[str]:
    return _Planner(detect(parse_message(raw)[0], RULES), RULES, Policy()).link_urls


def test_same_decisions_on_the_real_corpus() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the real corpus is not here ({CORPUS}): nothing to compare on")
    compared = sum(
        _decisions_agree(raw, Policy()) for _, raw in corpus_messages(CORPUS, CORPUS_EVERY)
    )
    assert compared >= 20


@pytest.mark.parametrize("count", [1, 15, 16, 17, 40])
def test_strip_params_with_many_tracking_names(count: int) -> None:
    # strip_params keeps up to 16 names and rules in arrays and hands more to its general path:
    # both give tracking_params's answer, repeated and reordered names included.
    pairs = [f"utm_{chr(ord('a') + i % 26)}{i // 26}=v{i}" for i in range(count)]
    pairs += ["id=3", "mc_eid=1", "fbclid=z", "utm_a0=again", "gclid="]
    for text in (
        "https://shop.example/p?" + "&".join(pairs) + "#top",
        "https://shop.example/p?" + "&".join(reversed(pairs)),
    ):
        url = parse_http(text)
        assert url is not None
        core = urlcore.build(RULES, BUILTIN_REMOTE)
        expected = tracking_params(url, text, RULES)
        assert expected is not None and len(expected[0]) >= min(count, 17)
        assert core.strip_params(url, text) == expected
