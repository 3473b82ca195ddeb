"""The scan's walk in C (guard/engine/_lexwalk.c through guard/engine/lexwalk.py) against the
Python walk.

The Python walk in guard/engine/html.py (`python_scan_tree`) is the reference: on every HTML part
of samples/ and eval/eml/, on a fixed sample of the real corpus (skipped, with the reason, where
../shared is absent), on the fuzz regressions and the fuzz sweep's inputs, on hypothesis documents
from the HTML5 error-recovery grammar and on hand-made edge cases, the C walk must give exactly
the same Occurrences, in the same order. Also: the probe at import, and the fallback when the
extension cannot be used (not built, another selectolax layout, a foreign object).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest
from fresh_python import python_output
from html5_grammar import documents
from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.engine import html as gh
from guard.engine import lexwalk
from guard.engine.layout import document_sheet
from guard.engine.loads import srcset_urls
from guard.engine.parse_bounds import parse_is_bounded
from guard.engine.timelimit import TimeLimitExceeded

EXT = lexwalk._ready()
built = pytest.mark.skipif(
    EXT is None, reason="guard/engine/_lexwalk.c is not built here: the Python walk runs"
)
CORPUS_EVERY = 4  # 200 of the 800 messages


def _walks(html: str) -> tuple[list[gh.Occurrence] | None, list[gh.Occurrence]]:
    """(the C walk's Occurrences, the Python walk's). Each walk gets a parse of its own: a walk
    may write to the attributes it reads."""
    fast_doc, slow_doc = gh.parse_document(html), gh.parse_document(html)
    if fast_doc is None or slow_doc is None:
        return [], []
    fast = lexwalk.scan_tree(fast_doc, gh.Nest(), document_sheet(fast_doc))
    return fast, gh.python_scan_tree(slow_doc, gh.Nest())


def _differ(parts: Iterator[tuple[str, str]]) -> tuple[int, int, list[str]]:
    """(documents compared, of them with `<style>` rules applied, sources that differ)."""
    compared, sheets, bad = 0, 0, []
    for source, html in parts:
        if not parse_is_bounded(html):
            continue
        doc = gh.parse_document(html)
        sheets += doc is not None and document_sheet(doc) is not None
        fast, slow = _walks(html)
        compared += 1
        if fast != slow:
            bad.append(source)  # names only: the corpus holds live phishing links
    return compared, sheets, bad


@built
def test_the_scan_uses_the_c_walk() -> None:
    doc = gh.parse_document("<img src='http://t.example/o.gif' width=1 height=1>")
    assert doc is not None
    gh._scan_tree(doc)
    assert gh._c_walk is lexwalk.scan_tree
    assert lexwalk.scan_tree(doc) == gh._scan_tree(doc) == gh.python_scan_tree(doc)
    assert [o.shape for o in gh._scan_tree(doc)] == ["tiny"]


@built
def test_samples_and_eval_walk_alike() -> None:
    compared, sheets, bad = _differ(mail_html())
    assert compared > 150, (compared, sheets)
    assert bad == []


@built
def test_corpus_sample_walks_alike() -> None:
    if not CORPUS.is_file():
        reason = f"the real corpus is not at {CORPUS}"
        print(reason)
        pytest.skip(reason)
    compared, sheets, bad = _differ(corpus_html(CORPUS, CORPUS_EVERY))
    assert compared > 150, (compared, sheets)
    assert bad == []


@built
def test_fuzz_inputs_walk_alike() -> None:
    compared, sheets, bad = _differ(fuzz_html())
    assert compared > 50, (compared, sheets)
    assert bad == []


EDGE_CASES = [
    "x",
    "<!-- only a comment -->",
    "<html><body></body></html><img src='a.gif' width='1' height='1'>",
    "<table style='display:none'><img src='f.gif'><tr><td>x</td></tr></table>",
    "<div hidden><div style='opacity:0'><img src='n.gif' width=100 height=100></div></div>",
    "<div style='visibility:hidden'><span><img src='v.gif'></span></div><img src='w.gif'>",
    "<svg><feImage xlink:href='x'/><a xlink:href='y' href=''>z</a><a href='q'/></svg>",
    "<template><img src='t.gif'></template><img src='u.gif' hidden>",
    "<base href='http://b.example/d/'><a href='rel'>x</a><base href='http://c.example/'>",
    "<!--[if mso]><v:rect><v:fill src='http://m.example/bg.png'/></v:rect><![endif]-->",
    "<p style='background:url(&quot;q.png&quot;)' title='\udcff'>é</p>",
    "<img src='a' src='b' SRC='c'><IMG SRC='D' STYLE='DISPLAY:NONE'>",
    "<math><mi><img src='m.gif'></mi><style>@import 'm.css';</style></math>",
    "<noscript><img src='n.gif'></noscript><select><img src='s.gif'></select>",
    "<div style='display:none'>" * 300 + "<img src='deep.gif'>",
    "<div style='visibility:hidden'><p style='visibility:visible'><img src='s.gif'></p>"
    "<img src='h.gif'></div><div style='visibility:hidden;display:none'><i style="
    "'visibility:visible'><img src='d.gif'></i></div>",
    "<div style='mso-hide:all'><img src='m.gif' width=600 height=300></div>"
    "<div style='max-height:0;overflow:hidden'><img src='z.gif' width=1 height=1></div>",
    "<iframe srcdoc=\"<img src='http://n.example/p.gif' width=1 height=1>\"></iframe>"
    "<base href='http://b.example/'><img src='data:image/svg+xml,<svg xmlns=%22http://www.w3.org"
    "/2000/svg%22><image href=%22http://s.example/i.png%22/></svg>'>",
    "<link rel=preload as=image imagesrcset='a.png 1x, b.png 2x'><param name=movie value='m.swf'>",
    # Styles the needles must not miss: escapes, comments, upper case, a link that hides.
    "<div style='dis\\70 lay:none'><img src='e.gif'></div>",
    "<div style='disp/**/lay:none'><img src='c.gif'></div><div style='OPACITY:0'><a href=x>"
    "<img src='o.gif'></a></div>",
    "<a href='l' style='display:none'><img src='a.gif'></a><a href='m' style='u\\72 l(x)'>y</a>",
    "<a href='n' style='background-image:URL(b.png)'>z</a><area href='' xlink:href='k'>"
    "<a href>e</a><a href=' '>s</a><a hidden href='h'><img src='i.gif' width=2 height=2></a>",
    "<div style='\u212aisplay:none'><img src='k.gif'></div><p style='color:red'><img src=p>",
    "<a href=t style='text-decoration:none;display:block'><img src=t></a><b style='display:"
    "block;display: NONE !important;'><img src=b></b><i style='x:1;DISPLAY\t:\tnone'><img src=i>"
    "</i><u style='display'><img src=u></u><s style=';;display:none;'><img src=s></s>",
    # Plain images, finished in C (their shapes asked once per width, height and style), and
    # the near misses that stay records: inline srcs, other loads, `hidden`, hiding ancestors.
    "<img src=a width=1 height=1><img src=b width=1 height=1><img src=c width=600 height=1>"
    "<img src=d width height=0><img src=e style='width:1px;height:1px'><img src=f style="
    "'position:absolute;left:-9999px' width=20><img src='' width=1><img src=g style=''>"
    "<img src=h width=1 height=1 style='width:600px;height:300px'><img src=i alt=x border=0>",
    "<img src=' DATA:image/svg+xml,<svg></svg>'><img src='\u00a0data:x'><img src='cid:a'>"
    "<img src='\u00e9data'><img src=j srcset='k 2x' width=1 height=1><img src=l hidden>"
    "<img src=m lowsrc=n><img src=o background=p><img src=q href=r width=1 height=1>",
    "<img srcset='a 1x, b (2x, c' width=1 height=1><img src='' srcset=' ,, '><img src=d "
    "srcset='e 1x,f,g 2x,' style='display:block;border:0'><img srcset='\u00e9 1x, h 2x'>"
    "<img src=' data:x' srcset='i 1x'><img srcset='j 1x' hidden><img srcset=k lowsrc=l>",
    "<div style='overflow:hidden;max-height:0'><img src=s width=1 height=1><img src=t></div>"
    "<span hidden><img src=u width=9 height=9></span><img src=v style='display:none'>"
    "<p style='opacity:0'><img src=w style='visibility:visible'></p><img src=x width=1 height=1>",
    # `<style>` rules: the cascade, applied in Python to the elements the C walk hands back.
    "<style>.x{display:none}a{visibility:hidden}</style><div class=x><img src='x.gif'></div>"
    "<a href='h'><img src='a.gif' width=3 height=3><i style='visibility:visible'><img src=v>"
    "</i></a><p class=x style='display:block'><img src='p.gif'></p>",
    "<style>.t{width:1px;height:1px;background:url(t.png)}td{background-image:url(c.png)}"
    "</style><div class=t></div><table><td>x</td></table><span class=t hidden></span>",
    "<style>.o{overflow:hidden;max-height:0}img{display:none !important}</style><div class=o>"
    "<img src='o.gif' style='display:block' width=600></div><svg><style>.s{opacity:0}</style>"
    "<g class=s><image href='s.png'/></g></svg>",
    "<style>.p{width:1px}</style><img class=p src=a width=600><img src=b width=1 height=1>",
]


@built
@pytest.mark.parametrize("html", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_walk_alike(html: str) -> None:
    fast, slow = _walks(html)
    assert fast == slow


@built
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_walk_alike(html: str) -> None:
    fast, slow = _walks(html)
    assert fast == slow


# srcset text: what its grammar turns on (whitespace of every ASCII kind, commas, parentheses
# open and closed, descriptors), other ASCII, and a little that is not ASCII (Python splits it).
_SRCSET_CHARS = st.sampled_from(
    [*" \t\n\x0b\x0c\r\x1c\x1f,,,(()))xy1w2x.:/", "\x00", "\x7f", "\xa0", "\u2003", "é"]
)


@built
@settings(max_examples=2000, deadline=None)
@given(st.text(_SRCSET_CHARS, max_size=40) | st.text(max_size=20))
def test_srcset_split_in_c_as_in_python(value: str) -> None:
    fast = EXT.srcset_urls(value)
    if value.isascii():
        assert fast == srcset_urls(value)
    else:
        assert fast is None


@built
@pytest.mark.parametrize(
    "value",
    [
        "a 1x, b 2x",
        "a,b,,c",
        ",,, ,",
        "a (1x, b) 2x, c",
        "a (1x, b",
        "a 1x,b 2x,",
        "data:image/png;base64,AAA= 1x, u 2x",
        "(" * 100_000,
        "a" + " (" * 50_000,
        ", " * 100_000,
        "x," * 100_000,
    ],
)
def test_srcset_split_in_c_as_in_python_hostile(value: str) -> None:
    assert EXT.srcset_urls(value) == srcset_urls(value)


# Every character str.strip takes off at an end, and some it leaves.
_EDGE_CHARS = st.sampled_from(
    [
        *" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u3000",
        "\u200b",
        "a",
        "é",
        "\U0001f600",
    ]
)


@built
@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(_EDGE_CHARS, max_size=4).map("".join) | st.text(max_size=6), max_size=8))
def test_unstripped_in_c_as_in_python(urls: list[str]) -> None:
    out = [gh.Occurrence(url, "a[href]", False, False, None) for url in urls]
    assert EXT.unstripped(out) == gh.unstripped(out)
    assert gh.resolve_all(out, None, EXT.unstripped) == gh.resolve_all(out, None)


@built
def test_unstripped_refuses_what_is_no_list_of_occurrences() -> None:
    for bad in ((" a",), [(" a", 1), 1], [(1,)], [()]):
        with pytest.raises(TypeError):
            EXT.unstripped(bad)


@built
def test_plain_images_come_back_finished() -> None:
    doc = gh.parse_document("<img src=a width=1 height=1><img src=b><img src=a width=1 height=1>")
    assert doc is not None
    memo: dict[tuple[str | None, str | None, str | None], str | None] = {}
    items, positions = EXT.walk(
        doc, lexwalk._URL_NAMES, lexwalk.LOAD_NEEDLES, lexwalk.HIDE_NEEDLES, gh.Occurrence,
        "a[href]", "area[href]", None, "img[src]", "img[srcset]", lexwalk._image_shape, memo,
    )  # fmt: skip
    assert positions == []
    assert items == [
        gh.Occurrence("a", "img[src]", True, True, "tiny"),
        gh.Occurrence("b", "img[src]", True, True, None),
        gh.Occurrence("a", "img[src]", True, True, "tiny"),
    ]
    assert memo == {("1", "1", None): "tiny", (None, None, None): None}


@built
def test_the_shape_memo_keeps_no_long_value() -> None:
    style = "border:0;" + "color:red;" * 300
    doc = gh.parse_document(f"<img src=a width=1 style='{style}'><img src=b style='border:0'>")
    assert doc is not None
    memo: dict[tuple[str | None, str | None, str | None], str | None] = {}
    items, _ = EXT.walk(
        doc, lexwalk._URL_NAMES, lexwalk.LOAD_NEEDLES, lexwalk.HIDE_NEEDLES, gh.Occurrence,
        "a[href]", "area[href]", None, "img[src]", "img[srcset]", lexwalk._image_shape, memo,
    )  # fmt: skip
    assert [o.shape for o in items] == ["tiny", None]
    assert memo == {(None, None, "border:0"): None}


@built
def test_a_foreign_object_is_refused() -> None:
    class NotAParser:
        pass

    args = ((), (), (), gh.Occurrence, "a[href]", "area[href]")
    with pytest.raises(TypeError):
        EXT.walk(NotAParser(), *args)
    fragment = gh.LexborHTMLParser("<img src=x>", is_fragment=True)
    with pytest.raises(ValueError):
        EXT.walk(fragment, *args)
    with pytest.raises(TypeError):  # not a NamedTuple type: the walk could not build one
        EXT.walk(gh.LexborHTMLParser("<a href=x>"), (), (), (), dict, "a[href]", "area[href]")


def test_the_stored_probe_answer_is_the_python_walks() -> None:
    doc = gh.parse_document(lexwalk._PROBE)
    assert doc is not None
    stored = [(lexwalk._PROBE_BASE + url, *rest) for url, *rest in lexwalk._PROBE_ANSWER]
    assert [tuple(o) for o in gh.python_scan_tree(doc, gh.Nest())] == stored
    assert len(stored) >= 24


@built
def test_the_probe_refuses_a_walk_that_answers_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout read wrong, or needles that miss a case, answer the probe otherwise: then the
    Python walk runs."""
    assert lexwalk._probe_agrees()
    monkeypatch.setattr(lexwalk, "HIDE_NEEDLES", (b"opacity",))
    assert not lexwalk._probe_agrees()


@built
def test_the_loads_probe_refuses_a_walk_that_answers_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loads-only walk (`distinct_loads`) answers the probe's loads, each URL once, with the
    element of its first occurrence; a needle missing (the style loads it no longer sees), and
    the check reads its output with the walk that makes Occurrences."""
    assert lexwalk._loads_agree()
    found = lexwalk.distinct_loads(gh.parse_document(lexwalk._PROBE), gh.Nest(None))
    assert found is not None and len(found) == len({url for url, _ in found}) >= 18
    monkeypatch.setattr(lexwalk, "LOAD_NEEDLES", (b"image-set", b"@import", b"\\"))
    assert not lexwalk._loads_agree()


def test_the_loads_only_walk_refuses_a_foreign_object() -> None:
    if EXT is None:
        pytest.skip("guard/engine/_lexwalk.c is not built here")

    class NotAParser:
        pass

    with pytest.raises(TypeError):
        EXT.loads(NotAParser(), (), (), "img[src]", "img[srcset]")
    fragment = gh.LexborHTMLParser("<img src=x>", is_fragment=True)
    with pytest.raises(ValueError):
        EXT.loads(fragment, (), (), "img[src]", "img[srcset]")


WHICH = (
    "from guard.engine import html\n"
    "doc = html.parse_document('<a href=x>y</a>')\n"
    "print(html._scan_tree(doc)[0].url, html._c_walk is not None)\n"
)


def test_guard_python_walk_forces_the_python_walk() -> None:
    assert python_output(WHICH, GUARD_PYTHON_WALK="1") == "x False"
    if EXT is not None:
        assert python_output(WHICH) == "x True"


def test_another_selectolax_layout_falls_back() -> None:
    """selectolax of another major version: its object layout is not read; the Python walk runs
    and finds the same."""
    code = "import selectolax\nselectolax.__version__ = '2.0.0'\n" + WHICH
    assert python_output(code) == "x False"


# -- hostile input ---------------------------------------------------------------------------------


def _peak_bytes(html: str) -> tuple[list[gh.Occurrence] | None, int]:
    doc = gh.parse_document(html)
    assert doc is not None
    tracemalloc.start()
    try:
        fast = lexwalk.scan_tree(doc, gh.Nest(), document_sheet(doc))
        return fast, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@built
def test_deep_nesting_costs_memory_in_proportion_to_its_depth() -> None:
    """20,000 hiding elements one inside the other: the chain of hidden elements is linked, not
    copied at each level (copies would take ~1.6 GB)."""
    depth = 20_000
    html = "<div style='display:none'>" * depth + "<img src='deep.gif'>"
    fast, peak = _peak_bytes(html)
    assert fast is not None and [o.shape for o in fast] == ["inside display:none element"]
    assert peak < 40 * 1024 * 1024, peak


@built
def test_an_attribute_bomb_is_read_once() -> None:
    """3,000 attributes on two elements (as many as the parse bound lets through: Lexbor's own
    duplicate check is quadratic), and 2,000 elements of 50: the walk's answer is the Python
    walk's, and the records it keeps are only those that can load, link or hide."""
    bomb = " ".join(f"a{i}=x" for i in range(3_000))
    many = "".join(f"<p {' '.join(f'b{j}=y' for j in range(50))}>t</p>" for _ in range(2_000))
    html = f"<img {bomb} src='b.gif' width=1 height=1><a {bomb} href='l'>x</a>{many}"
    assert parse_is_bounded(html)
    fast, slow = _walks(html)
    assert fast == slow and [o.element for o in slow] == ["img[src]", "a[href]"]


_TAG_TEXT = st.text(
    # U+013C, U+3C3C, U+1003C hold the byte of `<` (and U+013A, U+1003A of `:`): the C search
    # finds a needle's anchor by its byte and must pass over the characters that only hold it.
    alphabet=st.sampled_from(
        "<:iImMaAgGeEbBsScCdD x\u0130\u0131\u017f\u0100\U00010000"
        "\u013c\u3c3c\U0001003c\u013a\U0001003a"
    )
)


@settings(max_examples=500, deadline=None)
@given(_TAG_TEXT, st.sampled_from(["<image", "<base", "<i", "cid:", ":", "d:"]))
def test_holds_ascii_is_the_regexs(text: str, needle: str) -> None:
    """The C search answers as the reference regex, in strings of every width."""
    expected = lexwalk.ascii_pattern(needle).search(text) is not None
    assert lexwalk.holds_ascii(text, needle) is expected
    assert lexwalk.holds_ascii("\u0100" + text, needle) is expected
    assert lexwalk.holds_ascii("\U00010000" + text, needle) is expected
    assert lexwalk.holds_ascii(text + "\U00010000", needle) is expected


@pytest.mark.parametrize("wide", ["", "\u0100", "\U00010000"])
def test_holds_finds_a_needle_at_every_offset(wide: str) -> None:
    """The C search reads a one- or two-byte text in blocks (the anchor paired with the needle's
    character furthest from it), a four-byte one by memchr: a needle at any offset, up to the
    text's end, is found, and what only starts it (`<i` again and again, the needle cut short) is
    not."""
    for needle, written in (("<image", "<ImAgE"), ("cid:", "CiD:"), ("<base", "<bAsE")):
        for at in range(40):
            for tail in (0, 1, 2, 15, 16, 17):
                pad, end = "<i:d" * (at // 4) + "x" * (at % 4), "y" * tail
                assert lexwalk.holds_ascii(f"{wide}{pad}{written}{end}", needle)
                assert not lexwalk.holds_ascii(f"{wide}{pad}{written[:-1]}{end}", needle)
                assert not lexwalk.holds_ascii(f"{wide}{pad}{written[1:]}{end}", needle)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "padding:0 10px;color:#333333;font-size:14px",
                "padding:0 10px;color:#333333;display:none",
                "padding:0 10px;color:#333333;display:nonE",
                "padding:0 10px;color:#333333;display:nonx",
                "padding:0 10px;background:url(b.png);x:1",
                "padding:0 10px;background:uri(b.png);x:1",
                "visibility:hidden;padding:0 10px;margin:0",
                "visibility:visible;padding:0 10px;margin:0",
                "width:1px;height:1px;overflow:hidden;a:b",
                "display:none",
            ]
        ),
        min_size=1,
        max_size=12,
    )
)
def test_repeated_styles_read_once_answer_as_python(styles: list[str]) -> None:
    """The C walk remembers what each style text holds within a walk (read_style's memo): long
    styles that repeat, or differ by one character, are read as the Python walk reads them."""
    html = "".join(
        f"<div style='{style}'><img src='i{at}.gif' width=1 height=1 style='{style}'></div>"
        for at, style in enumerate(styles)
    )
    fast, slow = _walks(html)
    assert fast == slow


@built
@pytest.mark.parametrize(
    "needle",
    ["url(x.gif)", "URL(x.gif)", "image-set('x.gif')", "@import", "\\75rl(x)", "display:none",
     "DISPLAY: NONE", "visibility:hidden", "opacity:0", "mso-hide:all", "overflow:hidden", "/**/"],
)  # fmt: skip
def test_a_style_needle_is_found_at_every_offset(needle: str) -> None:
    # read_style_text reads a long style sixteen places at a time (a needle's first two
    # characters at each): the needle on either side of every block boundary, and at the end.
    html = "".join(
        f"<div style='{filler * pad}{needle}{tail}'><img src='i{pad}.gif' width=1 height=1></div>"
        for pad in range(36)
        for filler in ("a", "é", " ", "U")
        for tail in ("", ";color:red")
    )
    fast, slow = _walks(html)
    assert fast == slow


# One-byte text (Latin-1) long enough for the C search's sixteen-place blocks and their tail.
_ONE_BYTE_TEXT = st.text(
    alphabet=st.sampled_from("<:iImMaAgGeEbBsScCdD x\xe9\xff\xbc\x3c"), max_size=80
)


@settings(max_examples=500, deadline=None)
@given(
    _ONE_BYTE_TEXT,
    st.sampled_from(["<image", "<base", "<i", "cid:", ":", "d:"]),
    st.integers(0, 40),
)
def test_holds_ascii_is_the_regexs_in_one_byte_text(text: str, needle: str, pad: int) -> None:
    """The C search answers as the reference regex where the needle stands anywhere in a
    one-byte text (at the start, across a block's end, in the tail)."""
    for candidate in (text, "x" * pad + text, text + "y" * pad, "\xe9" * pad + text + needle):
        expected = lexwalk.ascii_pattern(needle).search(candidate) is not None
        assert lexwalk.holds_ascii(candidate, needle) is expected


# Two-byte text long enough for the C search's 64-character blocks, packed to bytes there (each
# character above U+007F saturated to 0x7F or 0x80): characters whose bytes hold an anchor's or a
# needle letter's (U+013C, U+3C3C, U+7F3C, U+0169, U+8069), and those saturated either way.
_TWO_BYTE_TEXT = st.text(
    alphabet=st.sampled_from(
        "<:iImMaAgGeEbBsScCdD x\u0100\u013c\u3c3c\u7f3c\u3a3a\u0169\u8069\uffff\u0130\u017f\x7f"
    ),
    max_size=200,
)


@settings(max_examples=500, deadline=None)
@given(
    _TWO_BYTE_TEXT,
    st.sampled_from(["<image", "<base", "<i", "cid:", ":", "d:"]),
    st.integers(0, 70),
)
def test_holds_ascii_is_the_regexs_in_two_byte_text(text: str, needle: str, pad: int) -> None:
    """The C search answers as the reference regex where the needle stands anywhere in a
    two-byte text (at the start, across a block's end, in the tail)."""
    for candidate in (
        "\u0100" + text,
        "\u0100" + "x" * pad + text,
        "\u0100" + text + "y" * pad,
        "\u3c3c" * pad + text + needle,
        "\u8069" * pad + needle.upper() + text,
    ):
        expected = lexwalk.ascii_pattern(needle).search(candidate) is not None
        assert lexwalk.holds_ascii(candidate, needle) is expected


@pytest.mark.parametrize("wide", ["\u013c", "\u3c3c", "\U0001003c", "\U0001013c"])
def test_holds_passes_over_characters_holding_the_anchors_byte(wide: str) -> None:
    """A character whose low or high byte is the anchor's (`<`) is not the anchor."""
    assert not lexwalk.holds_ascii(f"{wide}image {wide}IMAGE", "<image")
    assert lexwalk.holds_ascii(f"{wide}image {wide}<IMAGE", "<image")
    long = f"{wide}image " * 40  # past the blocks the search reads at once
    assert not lexwalk.holds_ascii(long, "<image")
    assert lexwalk.holds_ascii(f"{long}<IMAGE{long}", "<image")


def test_holds_ascii_remembers_only_the_same_text() -> None:
    """The last answer per needle is kept with its str: asked again of that object it is the
    same, asked of another text (or another needle) it is that text's own."""
    with_tag, without = "<p>a<IMAGE src=x></p>" * 3, "<p>a<img src=x></p>" * 3
    for _ in range(2):
        assert lexwalk.holds_ascii(with_tag, "<image")
        assert lexwalk.holds_ascii(with_tag, "<image")
        assert not lexwalk.holds_ascii(with_tag, "<base")
        assert not lexwalk.holds_ascii(without, "<image")
        assert lexwalk.holds_ascii(with_tag, "<image")
        equal = "".join(["<p>a<img src=x></p>"] * 3)  # equal to `without`, another object
        assert equal == without and equal is not without
        assert not lexwalk.holds_ascii(equal, "<image")


def test_holds_refuses_other_needles() -> None:
    ext = lexwalk.bound_extension()
    if ext is None:
        pytest.skip("guard/engine/_lexwalk.c is not used here")
    for needle in (b"", b"image", b"<Image", b"<im\xe9"):
        with pytest.raises(ValueError):
            ext.holds("<image", needle)


# -- the UTF-8 bytes handed to Lexbor (html.parse_document) --------------------------------------

_utf8 = getattr(lexwalk.bound_extension(), "utf8", None)
encodes = pytest.mark.skipif(_utf8 is None, reason="guard/engine/_lexwalk.c is not built here")
# Every kind of character the encoder treats apart: ASCII (the word-at-a-time runs), two-, three-
# and four-byte UTF-8, lone surrogates (which selectolax's "ignore" drops), in runs of every
# length around the 8- and 16-character blocks.
_CHARS = st.characters(blacklist_categories=())
_MIXED = st.lists(
    st.one_of(st.text(alphabet="ab<> \t", min_size=0, max_size=40), st.text(_CHARS, max_size=4)),
    max_size=12,
).map("".join)


@encodes
@settings(max_examples=1000, deadline=None)
@given(st.one_of(_MIXED, st.text(_CHARS)))
def test_utf8_is_selectolaxs_encoding(text: str) -> None:
    """`utf8` gives the bytes selectolax makes of a str (`encode("utf-8", "ignore")`), whatever
    the width the text is stored with."""
    assert _utf8 is not None
    for variant in (text, text + "\u0100", text + "\U00010000", "\xe9" + text):
        assert _utf8(variant) == variant.encode("utf-8", "ignore")


@encodes
def test_utf8_refuses_what_is_no_str() -> None:
    assert _utf8 is not None
    with pytest.raises(TypeError):
        _utf8(b"<p>")


def _same_parse(parts: Iterator[tuple[str, str]]) -> tuple[int, list[str]]:
    """(documents compared, sources whose bytes or tree differ) between Lexbor given the text
    (selectolax encodes it) and given parse_document's bytes."""
    from selectolax.lexbor import LexborHTMLParser

    compared, bad = 0, []
    for source, html in parts:
        if not html.strip():
            continue
        compared += 1
        assert _utf8 is not None
        data = _utf8(html)
        doc = gh.parse_document(html)
        assert doc is not None
        if data != html.encode("utf-8", "ignore") or doc.html != LexborHTMLParser(html).html:
            bad.append(source)  # names only: the corpus holds live phishing links
    return compared, bad


@encodes
def test_samples_and_eval_parse_the_same_from_the_bytes() -> None:
    compared, bad = _same_parse(mail_html())
    assert compared > 100 and bad == []


@encodes
def test_corpus_sample_parses_the_same_from_the_bytes() -> None:
    if not CORPUS.exists():
        reason = f"the real corpus is not at {CORPUS}"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    compared, bad = _same_parse(corpus_html(CORPUS, CORPUS_EVERY))
    assert compared > 100 and bad == []


@built
def test_a_time_limit_reached_during_the_probe_leaves_the_walk_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe runs inside the first message's time limit. Reaching it there is that message's
    error, not a wrong answer of the C walk: the next message probes again and gets the walk
    (before, the walk was off for the rest of the process)."""
    monkeypatch.setattr(gh, "_c_walk", False)
    monkeypatch.setattr(lexwalk, "_ext", None)
    walk = lexwalk.scan_tree

    def out_of_time(*_args: object) -> None:
        raise TimeLimitExceeded

    monkeypatch.setattr(lexwalk, "scan_tree", out_of_time)
    doc = gh.parse_document('<p><img src="https://t.example/o.gif" width="1" height="1">')
    assert doc is not None
    with pytest.raises(TimeLimitExceeded):
        gh._scan_tree(doc, gh.Nest())
    assert gh._c_walk is False and lexwalk._ext is None  # undecided, not refused
    monkeypatch.setattr(lexwalk, "scan_tree", walk)
    found = gh._scan_tree(doc, gh.Nest())
    assert gh._c_walk is walk and lexwalk._ext is EXT
    assert [o.url for o in found] == ["https://t.example/o.gif"]
