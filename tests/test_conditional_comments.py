"""Outlook's conditional comments (guard/engine/loads.py `conditional_comment_refs`) read with its
shortcuts (a comment without `=` has no attribute value to read; an element `may_reference` refuses
is not asked) give exactly what the plain reading gives: the reference below is the function as it
was before them, compared on hand-made and generated comments and on every conditional comment of
samples/ and eval/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

from html5_reads import mail_html
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine.css import css_urls
from guard.engine.loads import (
    _VML_REF,
    _VML_TAGS,
    STYLE_BLOCK,
    Ref,
    conditional_comment_refs,
    element_refs,
    markup_tags,
    style_blocks,
)

_TAG = re.compile(r"<([A-Za-z][\w:-]*+)([^>]*+)(>|\Z)")
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def reference_tags(html: str) -> Iterator[tuple[str, dict[str, str]]]:
    """markup_tags as it was: a match object per tag and per attribute."""
    for m in _TAG.finditer(html):
        if not m.group(3):
            continue
        attrs: dict[str, str] = {}
        for a in _ATTR.finditer(m.group(2)):
            value = a.group(2) if a.group(2) is not None else a.group(3) or a.group(4) or ""
            attrs.setdefault(a.group(1).lower(), unescape(value))
        yield m.group(1).lower(), attrs


def reference_refs(text: str) -> Iterator[Ref]:
    """conditional_comment_refs without the shortcuts."""
    if not text.lstrip().lower().startswith("[if"):
        return
    for m in _VML_REF.finditer(text):
        tag, attr = m.group(1).lower(), m.group(2).lower()
        url = m.group(3) if m.group(3) is not None else (m.group(4) or "")
        if not url:
            continue
        if attr == "href":
            yield Ref(url, f"<!--[if mso]> {tag}[href]", False)
        else:
            yield Ref(url, f"<!--[if mso]> {tag}[src]", True, True)
    for tag, attrs in reference_tags(text):
        if tag not in _VML_TAGS:
            for ref in element_refs(tag, attrs.get):
                if ref.load:
                    yield ref._replace(element=f"<!--[if mso]> {ref.element}")
    if "<" in text:
        for block in STYLE_BLOCK.finditer(text):
            for url in css_urls(block.group(1)):
                yield Ref(url, "<!--[if mso]> <style> url()", True, True)


_TAGS = st.sampled_from(
    ["table", "td", "img", "v:fill", "v:rect", "a", "link", "meta", "set", "image", "svg", "rect",
     "applet", "param", "style", "iframe", "object", "base", "input", "video", "source", "td"]
)  # fmt: skip
_ATTRS = st.sampled_from(
    ["src", "href", "style", "background", "srcset", "rel", "http-equiv", "content", "to",
     "attributeName", "fill", "code", "codebase", "value", "name", "type", "width", "data", "x",
     "SRC", "Style", "xlink:HREF", "\u0130con", "o:href", "/src", "src/", "Locked", "\u017frc",
     "hReF"]
)  # fmt: skip
_VALUES = st.sampled_from(
    ["", "x.gif", "stylesheet", "refresh", "0;url=r.html", "background:url(b.png)", "href",
     "url(#a)", "url(p.png)", "image", "movie", "a.png 1x, b.png 2x", "&amp;q", "color:red",
     "width:600px", "&#117;rl(e.png)", "\\75 rl(s.png)", "b:URL(u.png)", "@import 'i.css'",
     "image-set('s.png' 1x)", "\u017frc", "a\n"]
)  # fmt: skip


@st.composite
def _comments(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(["[if mso]>", "[if (mso)|(IE)]>", " [IF gte mso 9]>", "x"]))]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            parts.append(draw(st.sampled_from(["</td>", "</table>", "text", "<", ">", "=", " "])))
        elif kind == 1:
            opening = draw(
                st.sampled_from(["<style>", "<STYLE type=x>", "<\u017ftyle>", "<styles>"])
            )
            closing = draw(st.sampled_from(["</style>", "</STYLE \n>", "", "\n", "</\u017ftyle>"]))
            parts.append(opening + draw(_VALUES) + closing)
        else:
            attrs = []
            for _ in range(draw(st.integers(0, 3))):
                name, value = draw(_ATTRS), draw(_VALUES)
                quote = draw(st.sampled_from(['"', "'", ""]))
                bare = draw(st.booleans()) and not value
                attrs.append(name if bare else f"{name}={quote}{value}{quote}")
            parts.append(f"<{draw(_TAGS)} {' '.join(attrs)}>")
    parts.append(draw(st.sampled_from(["<![endif]", "", "<!"])))
    return "".join(parts)


@settings(max_examples=1500, deadline=None)
@given(_comments())
def test_generated_comments_read_as_the_reference(text: str) -> None:
    assert list(conditional_comment_refs(text)) == list(reference_refs(text))
    assert list(markup_tags(text)) == list(reference_tags(text))


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["<style>", "<STYLE a=b>", "<styles>", "</style>", "</STYLE  >", "</style", "\n",
             "\u017f", "<\u017ftyle>", "x", "url(p.png)", "<", ">", " "]
        ),
        max_size=12,
    ).map("".join)
)  # fmt: skip
def test_style_blocks_are_style_block_s(text: str) -> None:
    assert style_blocks(text) == [m.group(1) for m in STYLE_BLOCK.finditer(text)]


def test_markup_tags_reads_as_the_reference_on_samples_and_eval() -> None:
    compared = 0
    for source, html in mail_html():
        compared += 1
        assert list(markup_tags(html)) == list(reference_tags(html)), source
    assert compared > 50


def test_word_tags_without_a_url_attribute_are_passed_over_and_others_read() -> None:
    text = (
        '[if gte mso 9]><xml><w:LatentStyles DefLockedState="false">'
        '<w:LsdException Locked="false" Priority="9" Name="toc 1"/>'
        '<w:LsdException Locked="false" SRC="https://t.example/w.png"/>'
        '<td Style="background:url(https://t.example/b.png)" x=&amp;>'
        "</xml><![endif]"
    )
    refs = list(conditional_comment_refs(text))
    assert refs == list(reference_refs(text))
    assert [r.url for r in refs] == ["https://t.example/b.png"]  # a w:LsdException loads nothing


def test_a_comment_without_a_value_still_reads_its_style_block() -> None:
    text = "[if mso]><style>v\\:* { behavior: url(#default#VML); b: url(s.png) }</style><![endif]"
    assert [r.url for r in conditional_comment_refs(text)] == ["s.png"]
    assert list(conditional_comment_refs(text)) == list(reference_refs(text))


_COMMENT = re.compile(r"<!--(.*?)-->", re.S)


def test_samples_and_eval_comments_read_as_the_reference() -> None:
    compared, bad = 0, []
    for source, html in mail_html():
        for m in _COMMENT.finditer(html):
            text = m.group(1)
            if not text.lstrip().lower().startswith("[if"):
                continue
            compared += 1
            if list(conditional_comment_refs(text)) != list(reference_refs(text)):
                bad.append(source)
    assert compared > 50 and bad == []


def test_a_comment_read_again_comes_from_the_memo_unchanged() -> None:
    from guard.engine import loads

    text = '[if mso]><v:rect><v:fill src="https://t.example/x.png"/></v:rect><![endif]'
    loads._CONDITIONAL_MEMO.clear()
    first = conditional_comment_refs(text)
    assert text in loads._CONDITIONAL_MEMO
    assert conditional_comment_refs(text) is first  # read once
    assert list(first) == list(reference_refs(text))
    assert [r.url for r in first] == ["https://t.example/x.png"]
    # A comment longer than the memo keeps is read each time, the same.
    long = text.replace("<v:rect>", "<v:rect>" + " " * loads._CONDITIONAL_MEMO_LONGEST)
    assert list(conditional_comment_refs(long)) == list(reference_refs(long))
    assert long not in loads._CONDITIONAL_MEMO
