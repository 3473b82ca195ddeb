"""The nodes cleaning's rewrite visits (guard/clean/nodes.py): the candidates of
guard/engine/_lexwalk.c's `candidates` must hold exactly the nodes the rewrite edits among all of
a document's nodes, in the same order, on samples/ and eval/eml/, a sample of the real corpus
(skipped, with the reason, where it is absent), the fuzz regressions and generated inputs, HTML5
error-recovery documents and hand-made edge cases; and the rewrite's output is the same either
way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fresh_python import python_output
from html5_grammar import documents
from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html
from hypothesis import HealthCheck, given, settings
from selectolax.lexbor import LexborHTMLParser, LexborNode

from guard.clean import nodes
from guard.clean.html import LoadAction, RewriteUnsafe, rewrite_html
from guard.engine.html import document_base, parse_document
from guard.engine.lexwalk import has_start_tag
from guard.engine.loads import element_refs
from guard.engine.parse_bounds import parse_is_bounded

EXT = nodes._ext
built = pytest.mark.skipif(
    EXT is None, reason="guard/engine/_lexwalk.c is not used here: every node is visited"
)
CORPUS_EVERY = 2  # 400 of the 800 messages


def _alike(html: str) -> bool:
    tree = parse_document(html)
    if tree is None or tree.root is None or tree.root.parent is None:
        return True
    document = tree.root.parent
    found = nodes.candidate_nodes(document)
    assert found is not None
    every = [n.mem_id for n in nodes.edited(nodes.every_node(document))]
    return (
        [n.mem_id for n in nodes.edited(found)] == every
        and _plain_alike(document, found)
        and _base_alike(html, tree)
    )


def _base_alike(html: str, tree: LexborHTMLParser) -> bool:
    """The records say whether to look for a `<base href>` as the text's `<base` tag did."""
    document = tree.root.parent if tree.root is not None else None
    assert document is not None
    by_records = document_base(tree) if nodes.holds_base(nodes.walked_records(document)) else None
    return by_records == (document_base(tree) if has_start_tag(html, "base") else None)


def _plain_alike(document: LexborNode, found: list[LexborNode]) -> bool:
    """The records hand back the candidates, a plain link's or image's with the references
    `element_refs` reads from its node."""
    records = nodes.walked_records(document)
    if [nodes.record_node(r).mem_id for r in records] != [n.mem_id for n in found]:
        return False
    for record in records:
        if isinstance(record, tuple):
            node = record[0]
            tag = (node.tag or "").lower()
            if nodes.record_refs(record) != element_refs(tag, node.attributes.get):
                return False
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
def test_the_rewrite_visits_the_candidates() -> None:
    tree = parse_document("<p>a</p><img src='http://t.example/o.gif'><p style='color:red'>b</p>")
    assert tree is not None and tree.root is not None and tree.root.parent is not None
    assert [n.tag for n in nodes.walked_nodes(tree.root.parent)] == ["img"]


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
    "<a href='h' style='color:red' target=_blank>x</a><area href=''><a href>y</a><a href=' '>z</a>",
    "<a href='h' background='b'>x</a><a href='h' xlink:href='x'>y</a>"
    "<a href='h' style='\\75rl(x)'>",
    "<img src='a.gif' srcset='b.png 1x, c,d.png 2x' width=1 style='border:0'><img src=''>",
    "<img src=' data:image/svg+xml,<svg/>'><img src='CID:x'><img srcset='\u00e9.png 1x'>",
    "<img src='a' lowsrc='b'><img src='a' style='background:url(x)'><img style='b:\u00e9'>",
    "<svg><a href='s'>x</a><image href='i'/></svg><math><a href='m'>y</a></math><img>",
    "x",
    "<!-- only a comment --><!--[if mso]>x<![endif]-->",
    "<!--  \t[IF gte mso 9]><v:fill src='http://m.example/bg.png'/><![endif]--><p>x</p>",
    "<!--x [if mso]-->",
    "<html manifest='m'><body></body></html><img src='a.gif'><!--[if mso]>y<![endif]-->",
    "<svg><feImage xlink:href='x'/><a xlink:href='y' href=''>z</a><STYLE>q</STYLE></svg>",
    "<math><style>a</style><mi xlink:href='h'>b</mi></math><xmp>&lt;b&gt;</xmp>",
    "<template><img src='t.gif'></template><img src='u.gif' hidden>",
    "<div o:href='o' XLINK:HREF='x' Data='d' SRC='s'></div><plaintext><a href=q>",
    "<p style='background:URL(q.png)'>a</p><p style='BACKGROUND-IMAGE:Image-Set(x)'>b</p>",
    "<p style='\\75rl(e)'>a</p><p style='@IMPORT x'>b</p><p style='b:u\u017frl(x)'>c</p>",
    "<p style='color:red' class='url'>a</p><p data-src='x' style=''>b</p>",
    "<table><tr><td background='bg.png'>y</td></tr><img src='f.gif'></table>",
    # A style before the reference: the walk reads it once, when it asks whether the element
    # may be edited (an empty, a loading, a non-ASCII, a second style: the element is not plain).
    "<a style='color:red' href='h'>x</a><img style='border:0' src='a.gif' srcset='b 1x'>",
    "<a style='' href='h'>x</a><a style='background:url(q)' href='h'>y</a><a style href='h'>z</a>",
    "<a style='b:\u00e9' href='h'>x</a><img style='color:red' style='b:url(x)' src='a.gif'>",
    "<area style='color:red' href='h'><img style='width:1px' src='cid:x'><img style='x' src=''>",
    "<noembed><img src=a></noembed><noframes>x</noframes><iframe srcdoc='<img src=b>'></iframe>",
    "<base href='http://b.example/'><a href='x'>y</a>",
    "<BASE HREF=' https://b.example/d/ '><base href='http://c.example/'><img src='i.gif'>",
    "<base target=_blank><base href='/rel/'><base href='https://b.example/'><p>x</p>",
    "<template><base href='http://t.example/'></template><svg><base href='http://s.example/'>",
    "<!-- <base href='http://c.example/'> --><script>'<base href=\"http://s.example/\">'</script>",
    "<math><base href='https://m.example/'></math><p>x</p><base href='ftp://f.example/'>",
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


class _RemoveAll:
    """Removes every load and rewrites every link: the rewrite then edits all it can."""

    def load_action(self, url: str) -> LoadAction:
        return LoadAction.REMOVE_PIXEL if "o.gif" in url else LoadAction.REMOVE

    def link_target(self, url: str) -> str | None:
        return url + "?clean"


def _rewrite(html: str) -> str | None:
    try:
        return rewrite_html(html, _RemoveAll())
    except RewriteUnsafe as exc:
        return f"unsafe: {exc}"


@built
def test_the_rewrite_writes_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    documents = [html for _, html in mail_html()] + EDGE_CASES
    fast = [_rewrite(html) for html in documents]
    monkeypatch.setattr(nodes, "_ext", None)
    slow = [_rewrite(html) for html in documents]
    assert sum(out is not None for out in slow) > 100
    assert fast == slow


@built
def test_plain_links_and_images_come_as_their_references() -> None:
    tree = parse_document(
        "<a href='l' style='color:red'>x</a><img src='a.gif' srcset='b 1x, c 2x' alt=''>"
        "<a href='m' background='b'>y</a><img src='data:x'>"
    )
    assert tree is not None and tree.root is not None and tree.root.parent is not None
    records = nodes.walked_records(tree.root.parent)
    assert [r[1:] if isinstance(r, tuple) else r.tag for r in records] == [
        ("l",),
        ("a.gif", ["b", "c"]),
        "a",
        "img",
    ]


@built
def test_a_foreign_object_is_refused() -> None:
    tree = LexborHTMLParser("<img src=x>")
    other = LexborHTMLParser("<img src=y>")
    assert tree.root is not None and other.root is not None
    args = (nodes._RAW_NAMES, nodes._URL_NAMES, nodes.LOAD_NEEDLES)
    with pytest.raises(TypeError):
        EXT.candidates(object(), tree.root, tree.root.mem_id, *args)
    with pytest.raises(TypeError):  # a node of another document
        EXT.candidates(tree, other.root, other.root.mem_id, *args)
    with pytest.raises(TypeError):  # a node whose id is not the one read from it
        EXT.candidates(tree, tree.root, tree.root.mem_id + 8, *args)
    with pytest.raises(TypeError):
        EXT.candidates(tree, tree.root, tree.root.mem_id, (b"",), (), ())
    fragment = LexborHTMLParser("<img src=x>", is_fragment=True)
    assert fragment.root is not None
    with pytest.raises(ValueError):
        EXT.candidates(fragment, fragment.root, fragment.root.mem_id, *args)


@built
def test_the_probe_refuses_candidates_that_miss_an_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Needles that miss a case (here an escaped `url(`) answer the probe otherwise: then every
    node is visited."""
    assert nodes._probe_agrees()
    monkeypatch.setattr(nodes, "LOAD_NEEDLES", (b"url", b"image-set", b"@import"))
    assert not nodes._probe_agrees()


WHICH = (
    "from guard.clean import nodes\n"
    "from guard.engine.html import parse_document\n"
    "doc = parse_document('<p>x</p><a href=y>z</a>').root.parent\n"
    "print(len(nodes.walked_nodes(doc)), nodes._ext is not None)\n"
)


def test_guard_python_walk_visits_every_node() -> None:
    assert python_output(WHICH, GUARD_PYTHON_WALK="1") == "6 False"
    if EXT is not None:
        assert python_output(WHICH) == "1 True"


def test_another_selectolax_layout_falls_back() -> None:
    code = "import selectolax\nselectolax.__version__ = '2.0.0'\n" + WHICH
    assert python_output(code) == "6 False"
