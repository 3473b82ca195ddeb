"""guard/engine/css.py's reading of declarations, sizes, hiding and `<style>` rules."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine.css import (
    hides,
    hides_subtree,
    size,
    specificity,
    style_rules,
    tiny,
    weighted_declarations,
)
from guard.engine.timelimit import time_limit


def test_weighted_declarations_follow_the_cascade_within_a_block() -> None:
    assert weighted_declarations("display:none !important; display:block") == {
        "display": ("none", True)
    }
    assert weighted_declarations("display:none ! important;display:block!IMPORTANT") == {
        "display": ("block", True)
    }
    assert weighted_declarations("display:block; DISPLAY : NONE") == {"display": ("none", False)}
    # escapes and comments, as a renderer reads them
    assert weighted_declarations(r"d\isplay: n\6f ne") == {"display": ("none", False)}
    assert weighted_declarations("display:/* x */none") == {"display": ("none", False)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0), ("1px", 1.0), (" 3PX ", 3.0), ("0.75pt", 1.0), ("0", 0.0), ("0%", 0.0),
        ("100%", float("inf")), ("2em", float("inf")), ("auto", None), ("-1px", None),
        ("", None), ("junk", None), (None, None),
    ],
)  # fmt: skip
def test_size(value: str | None, expected: float | None) -> None:
    assert size(value) == expected


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1, 1, True), (1, 3, True), (3, 3, True), (0, None, True), (None, 0, True),
        (600, 0, True), (1, None, True), (None, 2, True),
        (600, 1, False), (1, 600, False), (4, 4, False), (None, None, False),
        (float("inf"), 1, False),
    ],
)  # fmt: skip
def test_tiny(width: float | None, height: float | None, expected: bool) -> None:
    assert tiny(width, height) is expected


@pytest.mark.parametrize(
    ("decl", "own", "subtree"),
    [
        ({"display": "none"}, "display:none", "display:none"),
        ({"visibility": "collapse"}, "visibility:hidden", "visibility:hidden"),
        ({"opacity": "0%"}, "opacity:0", "opacity:0"),
        ({"mso-hide": "all"}, "mso-hide:all", "mso-hide:all"),
        ({"max-height": "0"}, "max-height:0", None),  # the content spills out, visible
        ({"max-height": "0", "overflow": "hidden"}, "max-height:0", "max-height:0"),
        ({"max-width": "0px", "overflow-x": "clip"}, "max-width:0", "max-width:0"),
        ({"height": "0", "overflow": "hidden"}, None, "zero-size"),
        ({"width": "1px", "height": "1px", "overflow": "hidden"}, None, "zero-size"),
        ({"height": "0"}, None, None),
        ({"width": "600px", "height": "1px", "overflow": "hidden"}, None, None),
        ({"position": "absolute", "left": "-9999px"}, "off-screen", None),
    ],
)
def test_hides_and_hides_subtree(
    decl: dict[str, str], own: str | None, subtree: str | None
) -> None:
    assert hides(decl) == own
    assert hides_subtree(decl, own) == subtree


def test_style_rules_outside_at_rules_with_plain_selectors() -> None:
    css = (
        '@charset "utf-8"; @import url(x.css); body{margin:0}'
        " .a, td.b > img , a:hover{display:none !important;background:url(https://t.example/x.gif)}"
        " @media (max-width:600px){.m{display:block!important}} @font-face{src:url(f.woff)}"
        r" .\31 0px img{width:1px} #x\:y{opacity:0} [data-x] img{display:none} *{color:red}"
        " /* .c{display:none} */"
    )
    rules = style_rules(css)
    assert [(r.selector, r.specificity, r.whole_list) for r in rules] == [
        ("body", (0, 0, 1), True),
        (".a", (0, 1, 0), False),
        ("td.b > img", (0, 1, 2), False),
        (r".\31 0px img", (0, 1, 1), True),
        (r"#x\:y", (1, 0, 0), True),
        ("*", (0, 0, 0), True),
    ]
    assert rules[1].declarations == {
        "display": ("none", True),
        "background": ("url(https://t.example/x.gif)", False),
    }
    assert rules[1].urls == ("https://t.example/x.gif",)


def test_specificity() -> None:
    assert specificity("#a .b c") == (1, 1, 1)
    assert specificity("div.a.b > p") == (0, 2, 2)
    assert specificity(r".\2e x") == (0, 1, 0)  # an escaped dot is part of the name


@pytest.mark.parametrize(
    "junk",
    [
        "{" * 200_000,
        "}" * 200_000,
        "@media{" * 100_000,
        "a{" * 100_000,
        ".a " * 100_000 + "{display:none}",
        "\\" * 200_000,
        ".a" + "\\31 " * 100_000 + "{display:none}",
    ],
    ids=["open", "close", "at-rules", "rules", "descendants", "backslashes", "escapes"],
)
def test_style_rules_on_hostile_input_are_linear(junk: str) -> None:
    # A hang guard, not a performance assertion: a backtracking reading would take minutes.
    with time_limit(60):
        style_rules(junk)


# -- the blocks _prepared_sheet leaves unparsed ---------------------------------------------------


def _prepared_both(css: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """(the sheet as prepared, the sheet prepared with every rule parsed): the memo is cleared so
    each is computed afresh."""
    from guard.engine import css as gcss
    from guard.engine import layout

    layout._SHEET_MEMO.clear()
    fast = layout._prepared_sheet(css)
    with monkeypatch.context() as patch:
        patch.setattr(layout, "style_rules", lambda text, wanted=None: gcss.style_rules(text))
        layout._SHEET_MEMO.clear()
        slow = layout._prepared_sheet(css)
    layout._SHEET_MEMO.clear()
    return fast, slow


def test_every_layout_property_holds_a_text_the_block_test_looks_for() -> None:
    from guard.engine import layout

    for prop in layout._LAYOUT_PROPS:
        assert any(text in prop for text in layout._COUNTS_IN_BLOCK), prop


def _sheets(parts: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    from guard.engine.html import parse_document
    from guard.engine.parse_bounds import parse_is_bounded

    for source, html in parts:
        doc = parse_document(html) if parse_is_bounded(html) else None
        for i, element in enumerate(doc.css("style") if doc is not None else ()):
            yield f"{source}@{i}", element.text(deep=True)


def test_mail_sheets_prepare_alike_with_blocks_left_unparsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from html5_reads import CORPUS, corpus_html, mail_html

    parts = itertools.chain(mail_html(), corpus_html(CORPUS, 4) if CORPUS.is_file() else ())
    compared, bad = 0, []
    for source, css in _sheets(parts):
        fast, slow = _prepared_both(css, monkeypatch)
        compared += 1
        if fast != slow:
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 100
    assert bad == []


CSS_PIECES = st.sampled_from(
    [
        ".a", "#b", "td", " ", ",", "{", "}", ";", ":", "!important", "/*", "*/", "@media x",
        "display", "DISPLAY", "d\\isplay", "d\\69splay", "none", "WIDTH", "height", "1px", "0",
        "max-height", "top", "left", "mso-hide", "all", "color", "red", "font", "padding",
        "url(", "URL(", ")", "'http://t.example/p.gif'", "image-set(", "ımage-set(", "image-ſet(",
        "@import", "\"http://t.example/s.css\"", "\\", "\u0130", "\u212a", "Σ", "opacity",
        "overflow", "hidden", "position", "absolute", "visibility",
    ]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(CSS_PIECES, max_size=50))
def test_generated_sheets_prepare_alike_with_blocks_left_unparsed(pieces: list[str]) -> None:
    css = "".join(pieces)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = _prepared_both(css, monkeypatch)
    assert fast == slow


STYLE_EDGES = [
    "<style>a{}</style><p>x",
    "<STYLE>a{}</STYLE><svg><style>b{}</style><foreignObject><style>c{}</style></svg>",
    "<template><style>d{}</style></template><noscript><style>e{}</style></noscript>",
    "<math><style>f{}</style></math><table><style>g{}</style><tr><td>x</table>",
    "<svg:style>h{}</svg:style><x-style>i{}</x-style><styles>j</styles>",
    "<iframe srcdoc='<style>k{}</style>'></iframe><p><style>l{}",
]


def test_the_style_elements_found_by_name_are_those_the_selector_finds() -> None:
    # document_sheet reads the `<style>` elements with doc.tags("style") (no selector engine).
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    from guard.engine.html import parse_document
    from guard.engine.parse_bounds import parse_is_bounded

    parts = itertools.chain(
        (("edge", html) for html in STYLE_EDGES),
        mail_html(),
        fuzz_html(),
        corpus_html(CORPUS, 4) if CORPUS.is_file() else (),
    )
    compared, bad = 0, []
    for source, html in parts:
        doc = parse_document(html) if parse_is_bounded(html) else None
        if doc is None:
            continue
        compared += 1
        if [e.mem_id for e in doc.tags("style")] != [e.mem_id for e in doc.css("style")]:
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 300
    assert bad == []


def _css_urls_every_pattern(css: str) -> list[str]:
    """css_urls as it was before each pattern ran only where its keyword is: the reference."""
    from guard.engine import css as gcss

    if "\\" in css:
        css = gcss._unescape_idents(css)
    lowered = css.lower()
    if "url" not in lowered and "@import" not in lowered and "image-set" not in lowered:
        return []
    css = gcss._COMMENT.sub("", css)
    found: list[str] = []
    for m in gcss._URL.finditer(css):
        found.append(gcss._unescape(m.group(1) or m.group(2) or m.group(3) or ""))
    for m in gcss._IMPORT.finditer(css):
        found.append(gcss._unescape(m.group(1) or m.group(2) or ""))
    for m in gcss._IMAGE_SET.finditer(css):
        for s in gcss._STRING.finditer(m.group(1)):
            found.append(gcss._unescape(s.group(1) or s.group(2) or ""))
    return [u.strip() for u in found if u.strip() and not u.strip().startswith("#")]


URL_PIECES = st.sampled_from(
    [
        "url(", "URL(", "u/**/rl(", "@import", "@IMPORT", "@ımport", "@İmport", "image-set(",
        "ımage-set(", "image-ſet(", "IMAGE-SET(", "/*", "*/", ")", "'a.gif'", '"b.png"', "c.jpg",
        " ", ";", "\\75 rl(", "\\", "{", "}", "x", "#frag", "é", "\t", "\x1c", "(", "'", '"',
        "data:a;base64,QQ==",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(URL_PIECES, max_size=25))
def test_css_urls_runs_a_pattern_only_where_it_can_match(pieces: list[str]) -> None:
    from guard.engine.css import css_urls

    css = "".join(pieces)
    assert css_urls(css) == _css_urls_every_pattern(css)


# What makes and breaks a url(): quotes, brackets, escapes, ASCII white space of every kind.
_URL_AT_PIECES = st.sampled_from(
    ["url(", "URL(", " ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", '"', "'", "(", ")",
     "\\", "\\41 ", "\\)", "a", "b.gif", "data:x;base64,AA==", "/", ";", "}", "url"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_URL_AT_PIECES, min_size=1, max_size=12).map("".join))
def test_a_url_is_read_as_the_pattern_reads_it(css: str) -> None:
    from guard.engine import css as gcss

    lowered = css.lower()
    at = lowered.find("url(")
    while at != -1:
        m = gcss._URL.match(css, at)
        want = (m.group(1) or m.group(2) or m.group(3) or "", m.end()) if m else None
        assert gcss._url_at(css, at) == want
        at = lowered.find("url(", at + 1)


def test_css_urls_of_mail_sheets_are_those_of_every_pattern() -> None:
    from html5_reads import CORPUS, corpus_html, mail_html

    from guard.engine.css import css_urls

    parts = itertools.chain(mail_html(), corpus_html(CORPUS, 4) if CORPUS.is_file() else ())
    compared, bad = 0, []
    for source, css in _sheets(parts):
        compared += 1
        if css_urls(css) != _css_urls_every_pattern(css):
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 100
    assert bad == []


_MAY_HIDE_ONE_REGEX = (
    r"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|opacity\s*:\s*[0.]|mso-hide"
    r"|max-height\s*:\s*[0.]|max-width\s*:\s*[0.]|position\s*:\s*(?:absolute|fixed)"
    r"|url\(\s*+['\"]?+\s*+(?!data:)|image-set|\\|width{small}|height{small}"
)


def _may_hide_one_regex(css: str) -> bool:
    """may_hide as it was before each branch ran only where its literal is: the reference (all
    the branches in one regex, its matches read in order, `width`/`height` after a name
    character skipped)."""
    import re

    from guard.engine import css as gcss

    pattern = re.compile(_MAY_HIDE_ONE_REGEX.format(small=gcss._SMALL))
    if "/*" in css:
        css = gcss._COMMENT.sub("", css)
    if "@" in css:
        css = gcss._AT_RULES.sub("", css)
    css = css.lower()
    for m in pattern.finditer(css):
        if m.group(0)[0] not in "wh" or css[m.start() - 1 : m.start()] not in gcss._NAME_CHARS:
            return True
    return False


MAY_HIDE_PIECES = st.sampled_from(
    [
        "width", "WIDTH", "height", ":", " ", "\n", "0", "00", "1", "3.", "4", ".5", "0url", "0pxx",
        "%", "px", "pt", ";", "}", "{", "!", "line-", "border-", "max-", "-", "_", "\\", "9", "a",
        "display", "none", "visibility", "hidden", "collapse", "opacity", "mso-hide", "position",
        "fixed", "absolute", "url(", "'", '"', "data:", "image-set", "/*", "*/", "@media x{",
        "İ", "K", "td", ".c", "m", "ms", "ma", "\\é", "é", "\u0130", "@x;", "@x{a{}}",
    ]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(MAY_HIDE_PIECES, max_size=40))
def test_may_hide_by_branch_is_the_one_regex(pieces: list[str]) -> None:
    from guard.engine.css import may_hide

    css = "".join(pieces)
    assert may_hide(css) == _may_hide_one_regex(css)


@pytest.mark.parametrize(
    ("css", "expected"),
    [
        ("td{line-height:1.1;border-width:0}", False),
        ("td{width:1px}", True),
        ("td{border-width:0width:1px}", False),  # the second `width` follows a name character
        ("td{border-width:0;width:1px}", True),
        ("td{max-width:0}", True),
        ("td{x-height:0%width:1px}", True),
        ("td{x-height:0%width;}", False),
        ("td{x-width:0display:none}", True),
        ("td{color:red}", False),
        ("td{background:url(data:x)}", False),
        ("td{background:url( 'http://t.example/p.gif')}", True),
        ("td{co\\6c or:red}", True),
        ("@media x{td{display:none}}", False),
        ("td{/* display:none */}", False),
    ],
)
def test_may_hide_examples(css: str, expected: bool) -> None:
    from guard.engine.css import may_hide

    assert may_hide(css) is expected
    assert _may_hide_one_regex(css) is expected


@pytest.mark.parametrize(
    "hiding", ["display:none", "DISPLAY:NONE", "width:1px", "\\", "url(x)", "mso-hide", "m"]
)
def test_may_hide_finds_a_branch_at_every_offset(hiding: str) -> None:
    # The C reads a one-byte sheet sixteen places at a time, a pair of characters at each:
    # a branch on either side of every block boundary, and at the very end.
    from guard.engine.css import may_hide

    for pad in range(40):
        for filler in ("a", "é", " "):
            css = f"td{{{filler * pad}{hiding}"
            assert may_hide(css) == _may_hide_one_regex(css), (pad, filler)
            assert may_hide(css + "}") == _may_hide_one_regex(css + "}"), (pad, filler)


# What a stylesheet's top level is made of: at-rules (closed, left open, nested three and four
# deep), rules, stray braces and semicolons, white space of every width.
_TOP_PIECES = st.sampled_from(
    ["@media x{", "@import 'a';", "@x;", "@", "{", "}", "{{", "}}", ";", "a", "td", ".c", ":",
     "display:none", " ", "\n", "\x1c", "\u3000", "é", "\u0130", "@x{a{b{c}}}", "@x{a{b{c{d}}}}",
     "@font-face{src:url(x)}"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_TOP_PIECES, max_size=16).map("".join))
def test_top_rules_in_c_are_the_patterns(css: str) -> None:
    from guard.engine import _lexwalk  # type: ignore[attr-defined]
    from guard.engine.css import top_rules_python

    assert _lexwalk.top_rules(css) == top_rules_python(css)


def test_top_rules_of_mail_sheets_in_c_are_the_patterns() -> None:
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    from guard.engine import _lexwalk  # type: ignore[attr-defined]
    from guard.engine.css import top_rules_python, without_comments

    parts = itertools.chain(
        mail_html(), fuzz_html(), corpus_html(CORPUS) if CORPUS.is_file() else ()
    )
    compared, bad = 0, []
    for source, css in _sheets(parts):
        compared += 1
        text = without_comments(css)
        if _lexwalk.top_rules(text) != top_rules_python(text):
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 200
    assert bad == []


def test_may_hide_of_mail_sheets_is_the_one_regex() -> None:
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    from guard.engine.css import may_hide

    parts = itertools.chain(
        mail_html(), fuzz_html(), corpus_html(CORPUS) if CORPUS.is_file() else ()
    )
    compared, hiding, bad = 0, 0, []
    for source, css in _sheets(parts):
        compared += 1
        hiding += may_hide(css)
        if may_hide(css) != _may_hide_one_regex(css):
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 200
    assert 0 < hiding < compared  # both answers were compared
    assert bad == []


def test_sheet_urls_answers_as_css_urls_and_stays_bounded() -> None:
    # The memo of `<style>` texts (the scan, the rewrite and the check each read a sheet): the
    # same URLs as css_urls, a list of its own each time, and no more texts kept than its size.
    from guard.engine import css

    sheet = "a{background:url(https://t.example/p.gif)} @import 'https://t.example/s.css';"
    first = css.sheet_urls(sheet)
    assert first == css.css_urls(sheet) == ["https://t.example/p.gif", "https://t.example/s.css"]
    first.append("changed")
    assert css.sheet_urls(sheet) == css.css_urls(sheet)
    for n in range(css._SHEET_URLS_SIZE * 2):
        text = f"b{{background:url(https://t.example/{n}.gif)}}"
        assert css.sheet_urls(text) == [f"https://t.example/{n}.gif"]
        assert len(css._SHEET_URLS) <= css._SHEET_URLS_SIZE
    long = "c{color:red}" * (css._SHEET_URLS_LONGEST // 12 + 1)
    assert css.sheet_urls(long) == []
    assert long not in css._SHEET_URLS


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="url(@import image-set'\"\\)/* :;{}ab", max_size=80))
def test_sheet_urls_of_generated_css_are_css_urls(text: str) -> None:
    from guard.engine import css

    assert css.sheet_urls(text) == css.css_urls(text)
    assert css.sheet_urls(text) == css.css_urls(text)  # the second time from the memo


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["/", "*", "a", "\n", "/*", "*/", " ", "\\", "é", "\u0394", "\U0001f600", "{"]
        )
    ).map("".join)
)
def test_without_comments_is_the_comment_regexs(css: str) -> None:
    """`without_comments` (str.find) removes what `_COMMENT.sub` removes, open comments and a
    trailing newline included."""
    from guard.engine.css import _COMMENT, without_comments, without_comments_python

    for text in (css, css + "\n"):
        assert without_comments(text) == _COMMENT.sub("", text)
        assert without_comments_python(text) == _COMMENT.sub("", text)


MAY_HIDE_C_PIECES = st.sampled_from(
    [
        "@", "@x", "@media x", "{", "}", "{{", "}}", ";", "width:0", "height :1px", "max-width:.5",
        "display:none", "visibility: collapse", "opacity:0", "position:fixed", "url(", "'",
        "data:", "a", " ", "\n", "\xa0", "\u2003", "0", "0k", "0\u212a", "\u0130", "\u212a",
        "\u0661", ".", "5", "px", "pt", "%", "!", "\\", "-", "WIDTH", "Display", "\U0001f600",
    ]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(MAY_HIDE_C_PIECES, max_size=40))
def test_may_hide_in_c_is_the_branches_in_python(pieces: list[str]) -> None:
    # The extension's one pass (at-rules out, lower-cased as str.lower, each branch at its
    # literal) against the Python it replaces, on at-rules nested and left open, and on the
    # characters whose lower case holds ASCII (U+0130, U+212A) or that \s and \d read.
    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import may_hide_branches

    css = "".join(pieces)
    assert _lexwalk.may_hide(css) is may_hide_branches(css)


def test_may_hide_in_c_on_mail_sheets() -> None:
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import may_hide_branches, without_comments

    parts = itertools.chain(
        mail_html(), fuzz_html(), corpus_html(CORPUS) if CORPUS.is_file() else ()
    )
    compared, hiding, bad = 0, 0, []
    for source, css in _sheets(parts):
        css = without_comments(css)
        compared += 1
        hiding += may_hide_branches(css)
        if _lexwalk.may_hide(css) is not may_hide_branches(css):
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 200
    assert 0 < hiding < compared
    assert bad == []


_LOAD_PIECES = st.sampled_from(
    ["url", "URL", "uRl", "image-set", "IMAGE-SET", "\\", "color:red;", " ", "u", "rl", "image",
     "-set", "\u0131mage-set", "\u0130MAGE-SET", "image-\u017fet", "\u212a", "\u00e9", "ur\nl"]
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(st.lists(_LOAD_PIECES, max_size=12).map("".join))
def test_may_load_answers_as_the_regex(body: str) -> None:
    from guard.engine.css import _LOADS, _may_load

    assert _may_load(body) == (_LOADS.search(body) is not None)


def test_specificity_without_an_escape_reads_the_selector_as_it_is() -> None:
    from guard.engine.css import _ESCAPES, _TYPES, specificity

    for selector in ("#a .b td", "div > p.x", "a\\:b .c", "#x\\31 23 span", "table td.x#y"):
        plain = _ESCAPES.sub("x", selector)
        assert specificity(selector) == (
            plain.count("#"),
            plain.count("."),
            len(_TYPES.findall(plain)),
        )


# -- a declaration block's reading and the block test in C ----------------------------------------

# Declarations with and without `!important` (spaced, upper case, doubled, cut short), every
# character str.strip and \s take in ASCII (\x1c-\x1f too), comments and escapes (the C leaves
# those to the Python), and text that is not ASCII (likewise).
_BLOCK_PIECES = st.sampled_from(
    ["display", "DISPLAY", "Width", ":", ";", " ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c",
     "\x1f", "\x1b", "!", "important", "IMPORTANT", "! important", "!important", "impor", "none",
     "0", "1px", "url(x)", "a", "/*", "*/", "/", "*", "\\", "\\69", "é", "\u0130", "\u212a",
     "\xa0", "\u3000"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_BLOCK_PIECES, max_size=30).map("".join))
def test_weighted_declarations_in_c_are_the_python(block: str) -> None:
    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import weighted_declarations_python

    native = _lexwalk.weighted_declarations(block)
    if native is None:  # left to the Python: only where the C does not read the block
        assert not block.isascii() or "\\" in block or "/*" in block
    else:
        assert native == weighted_declarations_python(block)
        assert list(native) == list(weighted_declarations_python(block))  # the same order
    assert weighted_declarations(block) == weighted_declarations_python(block)


@settings(max_examples=3000, deadline=None)
@given(st.lists(CSS_PIECES | _BLOCK_PIECES, max_size=30).map("".join))
def test_block_may_count_in_c_is_the_python(block: str) -> None:
    # U+0130 lower-cases to `i` and U+0307, U+212A to `k`: what the C's ASCII reading misses.
    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.layout import _block_may_count_python

    assert _lexwalk.block_may_count(block) is _block_may_count_python(block)


def test_mail_blocks_read_alike_in_c() -> None:
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import top_rules_python, weighted_declarations_python, without_comments
    from guard.engine.layout import _block_may_count_python

    parts = itertools.chain(
        mail_html(), fuzz_html(), corpus_html(CORPUS) if CORPUS.is_file() else ()
    )
    compared, read, bad = 0, 0, []
    for source, css in _sheets(parts):
        for _prelude, body in top_rules_python(without_comments(css)):
            compared += 1
            native = _lexwalk.weighted_declarations(body)
            read += native is not None
            if native is not None and native != weighted_declarations_python(body):
                bad.append(source)  # names only: the corpus holds live phishing links
            if _lexwalk.block_may_count(body) is not _block_may_count_python(body):
                bad.append(source)
    assert compared > 1000
    assert read > compared // 2
    assert bad == []


# Selector lists: compounds, combinators with and without spaces, what is not plain (`:hover`,
# `[x]`, `+`, a leading digit, `**`), empty selectors, white space of every ASCII kind, and
# escapes and text beyond ASCII (left to the Python).
_SELECTOR_PIECES = st.sampled_from(
    ["a", "TD", "_x", "-", "--", "1", "x1", ".", "#", "*", ">", " ", "\t", "\x1c", "\x0b", ",",
     ":hover", "[x]", "+", "~", ".c", "#i", "div.c#i", "\\", "\\31 ", "é", "\u0130", "\xa0",
     "\u3000", "*.c", "a>b", "a > b"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_SELECTOR_PIECES, max_size=16).map("".join))
def test_plain_selectors_in_c_are_the_python(prelude: str) -> None:
    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import plain_selectors_python

    native = _lexwalk.plain_selectors(prelude)
    if native is None:
        assert not prelude.isascii() or "\\" in prelude
    else:
        assert native == plain_selectors_python(prelude)


def test_mail_selectors_read_alike_in_c() -> None:
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import plain_selectors_python, top_rules_python, without_comments

    parts = itertools.chain(
        mail_html(), fuzz_html(), corpus_html(CORPUS) if CORPUS.is_file() else ()
    )
    compared, plain, bad = 0, 0, []
    for source, css in _sheets(parts):
        for prelude, _body in top_rules_python(without_comments(css)):
            compared += 1
            native = _lexwalk.plain_selectors(prelude)
            if native is not None:
                plain += bool(native[0])
                if native != plain_selectors_python(prelude):
                    bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 1000
    assert plain > compared // 2
    assert bad == []


def test_without_comments_of_mail_sheets_in_c_is_the_python() -> None:
    # Many comments (past the C's first room for 64 kept pieces), and what a comment held that
    # the text kept does not: the copy's kind is the narrowest, as str.join makes it.
    from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html

    _lexwalk = pytest.importorskip("guard.engine._lexwalk")
    from guard.engine.css import without_comments_python

    many = "".join(f"a{i}/*{i}\u0394*/" for i in range(300)) + "b/*\U0001f600"
    for text in (many, many + "\n", "\u0394/*x*/é", "é/*\u0394*/", "x/**/"):
        native = _lexwalk.without_comments(text)
        assert native == without_comments_python(text)
        assert native.isascii() == without_comments_python(text).isascii()
        assert max(map(ord, native), default=0) == max(
            map(ord, without_comments_python(text)), default=0
        )
    parts = itertools.chain(
        mail_html(), fuzz_html(), corpus_html(CORPUS) if CORPUS.is_file() else ()
    )
    compared, bad = 0, []
    for source, css in _sheets(parts):
        compared += "/*" in css
        if _lexwalk.without_comments(css) != without_comments_python(css):
            bad.append(source)  # names only: the corpus holds live phishing links
    assert compared > 50
    assert bad == []
