"""guard/clean/_rewritecore.c against its Python reference (guard/clean/rewritecore.py): the
serialiser's bytes are what selectolax's `.html` decodes, on samples/ and eval/eml/, a sample of
the real corpus (skipped, with the reason, where it is absent), the fuzz regressions, generated
HTML5 documents and edge cases; and the rewrite writes the same output and bytes either way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from html5_grammar import documents
from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html
from hypothesis import HealthCheck, given, settings

from guard.clean import html as clean_html
from guard.clean import rewritecore
from guard.clean.html import LoadAction, RewriteUnsafe, rewrite_html_encoded
from guard.engine.html import parse_document
from guard.engine.parse_bounds import parse_is_bounded

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
