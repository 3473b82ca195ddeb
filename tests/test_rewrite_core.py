"""guard/clean/_rewritecore.c against its Python reference (guard/clean/rewritecore.py): the
serialiser's bytes are what selectolax's `.html` decodes, on samples/ and eval/eml/, a sample of
the real corpus (skipped, with the reason, where it is absent), the fuzz regressions, generated
HTML5 documents and edge cases; and the rewrite writes the same output and bytes either way. The
loop over plain links and images (`plain`) cleans every message as the Python loop does, on the
bench newsletters, samples/ and eval/eml/, the corpus sample and edge cases."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from html5_grammar import documents
from html5_reads import CORPUS, MAIL_DIRS, corpus_html, corpus_messages, fuzz_html, mail_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborNode

from guard.clean import html as clean_html
from guard.clean import message as clean_message_module
from guard.clean import nodes, rewritecore
from guard.clean.html import LoadAction, RewriteUnsafe, rewrite_html_encoded
from guard.clean.message import (
    CleanResult,
    Policy,
    _LinkDecision,
    _Planner,
    clean_message,
    rewrite_text,
)
from guard.engine.html import parse_document
from guard.engine.parse_bounds import parse_is_bounded
from guard.engine.rules_load import load_ruleset
from guard.mail.files import message_refs

CORE = rewritecore.bound()
built = pytest.mark.skipif(CORE is None, reason="guard/clean/_rewritecore.c is not used here")
CORPUS_EVERY = 2


def _alike(html: str) -> bool:
    """Each top-level node's bytes from C decode (replacing what is not UTF-8) to `.html`."""
    tree = parse_document(html)
    if tree is None or tree.root is None or tree.root.parent is None:
        return True
    node = tree.root.parent.child
    while node is not None:
        if node.tag != "-doctype":
            data = rewritecore.serialized(node)
            if data is None or data.decode("utf-8", "replace") != (node.html or ""):
                return False
        node = node.next
    return True


def _differ(parts: Iterator[tuple[str, str]]) -> tuple[int, list[str]]:
    compared, bad = 0, []
    for source, html in parts:
        if not parse_is_bounded(html):
            continue
        compared += 1
        if not _alike(html):
            bad.append(source)  # names only: the corpus holds live phishing links
    return compared, bad


@built
def test_samples_and_eval_alike() -> None:
    compared, bad = _differ(mail_html())
    assert compared > 150
    assert bad == []


@built
def test_corpus_sample_alike() -> None:
    if not CORPUS.is_file():
        reason = f"the real corpus is not at {CORPUS}"
        print(reason)
        pytest.skip(reason)
    compared, bad = _differ(corpus_html(CORPUS, CORPUS_EVERY))
    assert compared > 300
    assert bad == []


@built
def test_fuzz_inputs_alike() -> None:
    compared, bad = _differ(fuzz_html())
    assert compared > 50
    assert bad == []


EDGE_CASES = [
    "",
    "x",
    "<!doctype html><p>a &amp; b &lt; c \u00e9\u2603 \U0001f600</p>",
    "<p title='\"&amp;&quot;\u00a0'>&nbsp;</p><br><img src='a?b=1&c=2'>",
    "<svg><style>&lt;img&gt;</style><foreignObject><p>x</p></foreignObject></svg>",
    "<template><p>in</p></template><pre>\n\nx</pre><textarea>\ny</textarea>",
    "<!--a--><html><body></body></html><!--b--><!--c-->",
    "<p>\x00</p><p>\ud800</p><plaintext><a href=q>",
    "<math><mi xlink:href='h'>b</mi></math><xmp><b></xmp><noscript><b>n</b></noscript>",
    "<table><tr><td>" + "x" * 10000 + "</td></tr></table>",
]


@built
@pytest.mark.parametrize("html", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_alike(html: str) -> None:
    assert _alike(html)


@built
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_alike(html: str) -> None:
    assert _alike(html)


class _RemoveSome:
    """Removes some loads and rewrites every link: the rewrite has output to write."""

    def load_action(self, url: str) -> LoadAction:
        return LoadAction.REMOVE_PIXEL if len(url) % 3 == 0 else LoadAction.KEEP

    def link_target(self, url: str) -> str | None:
        return url + "?clean"


def _rewrite(html: str) -> tuple[str, bytes | None] | str | None:
    try:
        return rewrite_html_encoded(html, _RemoveSome())
    except RewriteUnsafe as exc:
        return f"unsafe: {exc}"


@built
def test_the_rewrite_writes_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [html for _, html in mail_html()] + EDGE_CASES
    fast = [_rewrite(html) for html in texts]
    monkeypatch.setattr(clean_html, "serialized", lambda node: None)
    slow = [_rewrite(html) for html in texts]
    assert sum(isinstance(out, tuple) for out in slow) > 100
    assert fast == slow


def test_without_the_extension_nothing_is_serialised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rewritecore, "_core", None)
    tree = parse_document("<p>x</p>")
    assert tree is not None and tree.root is not None
    assert rewritecore.serialized(tree.root) is None


# -- plain links and images read in C (rewritecore.plain_records) ---------------------------------

ROOT = Path(__file__).resolve().parent.parent
RULES = load_ruleset(include_user=False)
POLICIES = (Policy(), Policy(name="strict"))


def _bench_messages(count: int) -> Iterator[tuple[str, bytes]]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from corpus import message
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rng = random.Random(1)
    for seq in range(count):
        yield f"bench#{seq}", message(rng, seq)


def _mail() -> Iterator[tuple[str, bytes]]:
    for folder in MAIL_DIRS:
        for ref in message_refs(str(folder)):
            yield ref.source, ref.read()


def _results(
    messages: list[tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[CleanResult], list[CleanResult], int]:
    """Every message cleaned under both policies with the C loop, then with the Python one; and
    how many records the C read."""
    read = 0
    original = clean_html.plain_records

    def counting(rewriter: object) -> rewritecore.PlainReader | None:
        fast = original(rewriter)
        if fast is None:
            return None

        def wrapped(*args: Any) -> tuple[int, list[tuple[LexborNode, str]]]:
            nonlocal read
            found = fast(*args)
            read += found[0] - args[1]
            return found

        return wrapped

    monkeypatch.setattr(clean_html, "plain_records", counting)
    fast = [clean_message(raw, RULES, p) for _, raw in messages for p in POLICIES]
    monkeypatch.setattr(clean_html, "plain_records", lambda rewriter: None)
    monkeypatch.setattr(clean_message_module, "text_links", lambda rewriter: None)
    slow = [clean_message(raw, RULES, p) for _, raw in messages for p in POLICIES]
    return fast, slow, read


@built
def test_plain_records_clean_the_same_on_bench_and_bundled_mail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    messages = list(_bench_messages(20)) + list(_mail())
    fast, slow, read = _results(messages, monkeypatch)
    assert sum(r.changed for r in slow) > 50
    assert read > 1000
    assert fast == slow


@built
def test_plain_records_clean_the_same_on_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    if not CORPUS.is_file():
        reason = f"the real corpus is not at {CORPUS}"
        print(reason)
        pytest.skip(reason)
    fast, slow, read = _results(list(corpus_messages(CORPUS, CORPUS_EVERY)), monkeypatch)
    assert sum(r.changed for r in slow) > 100
    assert read > 1000
    assert [r.skipped for r in fast] == [r.skipped for r in slow]
    assert fast == slow


PLAIN_CASES = [
    # Links with spaces, scheme-relative, repeated, non-ASCII; images kept and removed; a pixel
    # removed before links (the C then checks each node is still in the tree).
    "<img src='https://px.example/open?u=1' width=1 height=1>"
    "<a href=' https://s.example/p?utm_source=n&id=1 '>a</a>"
    "<a href='//s.example/p?utm_source=n&id=2'>b</a><a href='https://s.example/p?utm_source=n'>c</a>"
    "<a href='https://s.example/p?utm_source=n'>c</a><a href='https://\u00e9.example/?utm_medium=x'>"
    "d</a><img src=' https://cdn.example/a.png ' srcset='https://cdn.example/a2.png 2x'>"
    "<img srcset='https://cdn.example/b.png 1x, https://cdn.example/b2.png 2x'>"
    "<svg><script><a href='https://s.example/q?utm_source=z'>e</a></script></svg>"
    "<a href='\u3000https://s.example/r?utm_campaign=w\u3000'>f</a>",
    "<p>no loads</p><a href='https://s.example/?utm_source=a'>x</a>",
]


@built
@pytest.mark.parametrize("html", PLAIN_CASES, ids=range(len(PLAIN_CASES)))
def test_plain_records_clean_the_same_on_edge_cases(
    html: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = (
        "From: a@news.example\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{html}</body></html>\r\n"
    ).encode()
    fast, slow, read = _results([("case", raw)], monkeypatch)
    assert read > 0
    assert fast == slow
    assert all(r.changed for r in slow)


# -- plain-text links (rewritecore.text_links) -----------------------------------------------------

_PIECES = st.sampled_from(
    [
        "https://a.example/x?utm_source=1",
        " https://a.example/x?utm_source=1",
        "//b.example/y",
        "https://b.example/y",
        "https://c.example/\u00e9",
        "http://kept.example/",
        "see ",
        "\n",
        "(",
        ")",
        "\u3000",
        "https://a.example/x",
    ]
)
_DECISIONS = {
    "https://a.example/x?utm_source=1": _LinkDecision(
        "https://a.example/x", params=("utm_source",)
    ),
    "https://b.example/y": _LinkDecision("https://b.example/z", unwrapped=True),
    "https://c.example/\u00e9": _LinkDecision(None, opaque=True),
    "https://a.example/x": _LinkDecision("https://a.example/x"),
}


def _planner() -> _Planner:
    planner = _Planner([], RULES, Policy())
    planner.decisions = dict(_DECISIONS)
    return planner


@built
@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12), st.lists(_PIECES, max_size=8))
def test_text_links_as_rewrite_text(pieces: list[str], urls: list[str]) -> None:
    text = "".join(pieces)
    slow, fast = _planner(), _planner()
    fast_text = rewritecore.text_links(fast)
    assert fast_text is not None
    assert fast_text(text, urls) == rewrite_text(text, slow.link_target, urls)
    assert fast.rewritten_links == slow.rewritten_links


# -- holds_base's loop (rewritecore.holds_tag) ---------------------------------------------------

BASE_CASES = [
    "<base href='http://b.example/'><a href='x'>y</a>",
    "<svg><base href='http://s.example/'></svg><img src='a.gif'>",
    "<template><base href='http://t.example/'></template><a href='x'>y</a>",
    "<BASE target=_blank><p style='background:url(x)'>z</p>",
    "<a href='x'>y</a><img src='a.gif'><!--[if mso]>x<![endif]-->",
]


@built
def test_holds_tag_as_the_python_loop() -> None:
    texts = [html for _, html in mail_html()] + BASE_CASES
    compared = holding = 0
    for html in texts:
        tree = parse_document(html) if parse_is_bounded(html) else None
        if tree is None or tree.root is None or tree.root.parent is None:
            continue
        records = nodes.walked_records(tree.root.parent)
        python = any(not isinstance(r, tuple) and r.tag_id == nodes._BASE_TAG_ID for r in records)
        assert rewritecore.holds_tag(records, nodes._BASE_TAG_ID) is python
        compared += 1
        holding += python
    assert compared > 150 and holding >= 3


@built
def test_plain_leaves_to_python_what_it_does_not_know() -> None:
    tree = parse_document("<a href=' https://s.example/?utm_source=x '>a</a><img src='b.png'>")
    assert tree is not None and tree.root is not None and tree.root.parent is not None
    records = nodes.walked_records(tree.root.parent)
    assert [len(r) for r in records] == [2, 3]
    odd = [*records[:1], ("not a node", "https://s.example/"), *records[1:]]
    decision = _LinkDecision("https://s.example/", params=("utm_source",))
    targets: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    loads: set[str] = set()
    written: set[str] = set()
    kept: set[str] = set()
    rewritten: dict[str, _LinkDecision] = {}
    edits: list[tuple[LexborNode, str]] = []
    tables = ({"b.png"}, kept, {"https://s.example/?utm_source=x": decision}, rewritten, edits)
    args = (targets, seen, loads, written, *tables)
    # The odd record stops it; the link before it is read and handed back to edit.
    assert CORE.plain(odd, 0, False, *args) == 1
    assert [target for _, target in edits] == ["https://s.example/"]
    assert rewritten == {"https://s.example/?utm_source=x": decision}
    # An image with a load the planner may remove stops it too, its loads seen.
    assert CORE.plain(odd, 2, False, *args) == 2
    assert seen == {"b.png": "b.png"} and loads == written == {"b.png"} and kept == set()
    assert CORE.plain(odd, 3, False, *args) == 3
