"""`guard.engine.load_walk.document_loads`, the reading cleaning checks its own output with, reads
exactly the loads of `scan_html`: the same distinct URLs, each with the element of its first
occurrence, in that order (so a refused rewrite names the same element either way). Where the C
walk (guard/engine/lexwalk.py `loads_tree`) answers, it answers exactly as the Python walk
(`python_walk=True`, the reference): on the same documents, on samples/ and eval/, and on a
fixed sample of the real corpus where ../shared holds it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from html5_grammar import documents
from html5_reads import CORPUS, corpus_html, mail_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from guard.clean.message import Policy, clean_message
from guard.engine import lexwalk, load_walk
from guard.engine.html import Nest, scan_html
from guard.engine.load_walk import document_loads
from guard.engine.mime import MessageError, parse_message
from guard.engine.rules_load import load_ruleset

ROOT = Path(__file__).resolve().parent.parent
RULES = load_ruleset(include_user=False)
T = "http://t.example/p"


def _nested(html: str, levels: int) -> str:
    for _ in range(levels):
        html = f'<iframe src="data:text/html,{quote(html)}"></iframe>'
    return html


def scan_loads(html: str) -> list[tuple[str, str]]:
    first: dict[str, str] = {}
    for occ in scan_html(html):
        if occ.load:
            first.setdefault(occ.url, occ.element)
    return list(first.items())


CASES = {
    "empty": "",
    "blank": " \n ",
    "plain": f'<p>Hi</p><img src="{T}/1" width="1"><a href="{T}/2">x</a>',
    "first element wins": f'<td background="{T}/1"><img src="{T}/1"></td>',
    "srcset and style": f'<img srcset="{T}/a 1x, {T}/b 2x" style="background:url({T}/c)">',
    "base": f'<base href="{T}/dir/"><img src="a.png"><link rel=stylesheet href="/s.css">',
    "relative base is no base": '<base href="dir/"><img src="a.png">',
    "style element": f"<style>@import url({T}/i.css); p {{ background: url({T}/bg) }}</style>",
    "svg camelCase": f'<svg><filter><feImage href="{T}/fe"/></filter><style>a{{}}</style></svg>',
    "conditional comment": (
        f'<!--[if mso]><v:fill src="{T}/v"/><a href="{T}/l">b</a><![endif]--><p>x</p>'
    ),
    "image in a table": f'<table><image src="{T}/dropped"></table>',
    "image in a table, linked": f'<a href="{T}/d"></a><table><image src="{T}/d"></table>',
    "image in a table, base": f'<base href="{T}/"><table><image src="rel"></table>',
    "srcdoc": f'<base href="{T}/"><iframe srcdoc="&lt;img src=in.png&gt;"></iframe>',
    "data: svg": (
        '<object data="data:image/svg+xml,&lt;?xml-stylesheet href=&quot;'
        f'{T}/x.css&quot;?&gt;&lt;svg&gt;&lt;image href=&quot;{T}/i&quot;/&gt;&lt;/svg&gt;">'
    ),
    "data: css": f'<link rel=stylesheet href="data:text/css,b{{background:url({T}/css)}}">',
    "data: svg image": (
        '<img src="data:image/svg+xml,&lt;svg&gt;'
        f'&lt;image href=&quot;{T}/s&quot;/&gt;&lt;/svg&gt;">'
    ),
    "nested too deep": _nested(f'<img src="{T}/deep">', 6),
    "markup scan": "<div>" * 20_000 + f'<img src="{T}/deep-div">',
    "refresh and meta": f'<meta http-equiv=refresh content="0;url={T}/r"><p>x',
}


built = pytest.mark.skipif(
    lexwalk._ready() is None,
    reason="guard/engine/_lexwalk.c is not built here: the Python walk runs",
)
# Styles that only hide, `hidden` elements, links beside loads: what the loads-only C walk passes
# over or hands back finished.
C_CASES = {
    "hiding styles": (
        f'<div style="display:none"><img src="{T}/h" width=1 height=1></div><p hidden>'
        f'<a href="{T}/l">x</a><span style="opacity:0;background:URL({T}/s)">y</span></p>'
    ),
    "links only": f'<a href="{T}/a">a</a><area href="" xlink:href="{T}/b"><a href=" ">c</a>',
    "style escapes": f'<b style="background:u\\72l({T}/e)">x</b><i style="color:red">y</i>',
    "svg animation": f'<svg><image href="#"><set attributeName="href" to="{T}/s"/></image></svg>',
    # The loads-only walk (lexwalk.distinct_loads): plain images hidden or not, each URL once.
    "hidden plain images": (
        f'<p hidden><img src="{T}/1" hidden></p><div style="display:none"><img src="{T}/2">'
        f'</div><img src="{T}/1" srcset="{T}/2 2x, {T}/3 3x">'
    ),
    "repeats, as written and stripped": (
        f'<img src=" {T}/1"><img src="{T}/1 "><img srcset="{T}/1, {T}/1 2x">'
        f'<td background="{T}/1"><img src="{T}/1\u00a0"><img src="\u2003{T}/1">'
    ),
    "base after plain images": (
        f'<img src="a.png" srcset="b.png 2x"><base href="{T}/d/"><img src="/a.png">'
        f'<img src="{T}/d/a.png"><base href="{T}/other/">'
    ),
    "images beside links": (
        f'<a href="{T}/1" style="color:red"><img src="{T}/1"></a><area href="{T}/2" '
        f'background="{T}/2"><a href="{T}/3" style="background:url({T}/3)">x</a>'
    ),
    "inline and non-ASCII": (
        f'<img src="data:image/svg+xml,&lt;svg&gt;&lt;image href=&quot;{T}/s&quot;/&gt;'
        f'&lt;/svg&gt;"><img srcset="{T}/é 1x,\u3000{T}/b 2x"><img src=" cid:x">'
    ),
    "styles long and short": (
        f'<b style="{"color:red;" * 9}">x</b><i style="{"padding:0;" * 5}background:'
        f'URL({T}/u)">y</i><u style="x:\\75rl({T}/e)">z</u><s style="@IMPORT x">s</s>'
        f'<p style="{"width:1px;" * 3}image-set(&quot;{T}/i&quot; 1x)">p</p>'
    ),
    "comments with links and loads": (
        f'<!--[if mso]><a href="{T}/l"><v:image src="{T}/l"/></a><![endif]-->'
        f'<!-- [IF gte mso 9]><img src="{T}/c"><![endif]--><img src="{T}/c">'
    ),
    "a style element and its images": (
        f'<style>td{{background:url({T}/bg)}}</style><img src="{T}/bg" srcset="{T}/x 1x">'
    ),
}


def _both(html: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    fast = document_loads(html)
    try:
        encoded = html.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: cleaning then hands over no bytes
        pass
    else:  # cleaning's check hands the parser the bytes it keeps for the part's new body
        assert document_loads(html, encoded=encoded) == fast
    return fast, document_loads(html, python_walk=True)


@pytest.mark.parametrize("html", CASES.values(), ids=CASES.keys())
def test_hand_made_documents(html: str) -> None:
    fast, slow = _both(html)
    assert fast == slow == scan_loads(html)


@built
@pytest.mark.parametrize("html", C_CASES.values(), ids=C_CASES.keys())
def test_the_c_walk_reads_what_the_python_walk_reads(html: str) -> None:
    fast, slow = _both(html)
    assert fast == slow == scan_loads(html)
    # A document without an `<image` tag is read by the loads-only walk, one with it by the
    # walk that also reads links (what the tree dropped is a load unless linked elsewhere).
    if "<image" in html:
        assert load_walk._c_walk is lexwalk.loads_tree
    else:
        assert load_walk._c_only is lexwalk.distinct_loads


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_documents_through_html5_error_recovery(html: str) -> None:
    fast, slow = _both(html)
    assert fast == slow == scan_loads(html)


@built
def test_samples_eval_and_the_corpus_sample_read_alike() -> None:
    compared, bad = 0, []
    parts = list(mail_html())
    if CORPUS.is_file():
        parts.extend(corpus_html(CORPUS, 4))
    for source, html in parts:
        compared += 1
        if document_loads(html) != document_loads(html, python_walk=True):
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 150
    assert bad == []


def _sample_html() -> list[str]:
    out: list[str] = []
    for path in sorted((ROOT / "samples" / "eml").glob("*.eml")):
        raw = path.read_bytes()
        for data in (raw, clean_message(raw, RULES, Policy(name="strict")).data):
            try:
                out.extend(parse_message(data)[0].html_parts)
            except MessageError:
                continue
    return out


def test_the_samples_and_their_cleaned_copies() -> None:
    htmls = _sample_html()
    assert len(htmls) > 40
    for html in htmls:
        fast, slow = _both(html)
        assert fast == slow == scan_loads(html)


_STYLE_PIECES = st.sampled_from(
    ["url(", "URL(", "uRl", "ur", "l(", "image-set(", "IMAGE-SET(", "@import ", "@IMPORT", "\\",
     "\\75 rl(", "i", "u", "@", "width:1px;", "padding:0;", " ", "é", "x)", f"{T}/s)", ";"]
)  # fmt: skip


@built
@settings(max_examples=200, deadline=None)
@given(st.lists(_STYLE_PIECES, max_size=24), st.sampled_from(["b", "img src=x", "a href=y"]))
def test_styles_read_16_bytes_at_a_time_read_alike(pieces: list[str], element: str) -> None:
    """The loads-only walk looks for a style's load needles 16 bytes at a time: a needle at any
    offset, across any boundary, is seen as the Python walk sees it."""
    style = "".join(pieces).replace('"', "")
    html = f'<{element} style="{style}">t</{element.split()[0]}><p style="x:{style}">u</p>'
    fast, slow = _both(html)
    assert fast == slow == scan_loads(html)
    assert load_walk._c_only is lexwalk.distinct_loads  # not turned off by its probe


@built
def test_the_checks_own_parse_reads_what_a_parser_reads() -> None:
    """Cleaning's check parses its output into the one Lexbor document the extension keeps
    (lexwalk.encoded_loads): document after document, small, large (a document of its own) or
    one Lexbor cannot read twice alike, each reads as a new selectolax parser of its bytes."""
    big = f'<img src="{T}/big">' + "<p>" + "x" * (600 * 1024) + f'<img src="{T}/end">'
    htmls = [html for _, html in mail_html()] + list(C_CASES.values()) + [big, CASES["plain"]]
    compared = 0
    for html in htmls:
        data = html.encode("utf-8", "ignore")
        fast = lexwalk.encoded_loads(data, Nest(None))
        assert fast == lexwalk.distinct_loads(LexborHTMLParser(data), Nest(None))
        compared += 1
    assert compared > 150
    assert lexwalk._encoded is not None  # not turned off by its probe


@built
def test_the_check_reads_its_output_through_its_own_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[object] = []

    def spy(data: bytes, nest: Nest) -> object:
        answers.append(lexwalk.encoded_loads(data, nest))
        return answers[-1]

    monkeypatch.setattr(load_walk, "encoded_loads", spy)
    html = C_CASES["hidden plain images"]
    assert document_loads(html, encoded=html.encode()) == scan_loads(html)
    assert answers == [scan_loads(html)]


_FIRSTS_URLS = st.lists(
    st.sampled_from([f"{T}/1", f"{T}/2", " ", "\u00a0", "\u3000", "\x1c", "\t", "é", "a b", ""]),
    max_size=4,
).map("".join)
_FIRSTS_ELEMENTS = st.sampled_from(
    ["img[src]", "img[srcset]", "td[background]", "base[href]", "iframe[srcdoc] > img[src]",
     "object[data] > image[href]", "<style> url()", "iframe[srcdoc] >img"]
)  # fmt: skip


@built
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_FIRSTS_URLS, _FIRSTS_ELEMENTS), max_size=12), st.booleans())
def test_the_checks_distinct_firsts_read_as_the_python_loop(
    found: list[tuple[str, str]], walks_own: bool
) -> None:
    """_lexwalk.c's `distinct_firsts` keeps what lexwalk.py's `_first_loads` keeps without a
    base: the same keys (stripped, or as written), the first element of each, in order, whether
    the plain images' elements are the walk's own objects (compared by identity) or not."""
    if walks_own:
        own = {lexwalk._IMG_SRC: lexwalk._IMG_SRC, lexwalk._IMG_SRCSET: lexwalk._IMG_SRCSET}
        found = [(url, own.get(element, element)) for url, element in found]
    ext = lexwalk._ext or lexwalk._ready()
    fast = ext.distinct_firsts(found, lexwalk._IMG_SRC, lexwalk._IMG_SRCSET)
    assert fast == lexwalk._first_loads(found, None)
    assert all(type(pair) is tuple for pair in fast)


@built
def test_the_checks_own_parse_on_two_threads_at_once() -> None:
    """The parse releases the interpreter lock: a check made on another thread meanwhile parses
    into a document of its own (the kept one is busy), and each reads its own document."""
    htmls = [html for _, html in mail_html()][:40] + list(C_CASES.values())
    datas = [html.encode("utf-8", "ignore") for html in htmls]
    expected = [lexwalk.distinct_loads(LexborHTMLParser(d), Nest(None)) for d in datas]

    def read(order: list[int]) -> list[tuple[int, object]]:
        return [(i, lexwalk.encoded_loads(datas[i], Nest(None))) for i in order]

    order = list(range(len(datas))) * 3
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(read, [order, order[::-1], order, order[::-1]]))
    for run in runs:
        for i, found in run:
            assert found == expected[i]
