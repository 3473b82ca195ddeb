"""The bound checks in C (guard/engine/_bounds.c) against parse_bounds.py's Python checks.

The Python functions are the reference: on every HTML part of samples/ and eval/eml/, on a fixed
sample of the real corpus (skipped, with the reason, where ../shared is absent), on the fuzz
regressions and the fuzz sweep's inputs, on the hostile shapes the bounds exist for (right at
their limits too) and on hypothesis documents of tag soup, each C check must give exactly the
Python answer: `attribute_bomb`, `too_deep`, `most_open_formatting` and `is_bounded`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from html5_reads import CORPUS, corpus_html, fuzz_html, mail_html
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine import parse_bounds as pb

try:
    from guard.engine import _bounds  # type: ignore[attr-defined]
except ImportError:  # not built: parse_bounds runs its Python checks, nothing to compare
    _bounds = None

built = pytest.mark.skipif(
    _bounds is None, reason="guard/engine/_bounds.c is not built here: the Python checks run"
)


def _python(html: str) -> tuple[bool, bool, int, bool]:
    return (
        pb._attribute_bomb(html),
        pb._too_deep(html),
        pb._most_open_formatting(html),
        pb.python_parse_is_bounded(html),
    )


def _c(html: str) -> tuple[bool, bool, int, bool]:
    assert _bounds is not None
    return (
        _bounds.attribute_bomb(html),
        _bounds.too_deep(html),
        _bounds.most_open_formatting(html),
        _bounds.is_bounded(html),
    )


def _differ(parts: Iterator[tuple[str, str]]) -> tuple[int, list[str]]:
    """(documents compared, sources where the two differ: names only, the corpus holds live
    phishing links)."""
    compared, bad = 0, []
    for source, html in parts:
        compared += 1
        if _c(html) != _python(html):
            bad.append(source)
    return compared, bad


@built
def test_the_scan_uses_the_c_checks() -> None:
    assert pb._compiled is _bounds.is_bounded
    assert pb.parse_is_bounded("<p>hi") is True


@built
def test_the_constants_are_the_python_ones() -> None:
    assert _bounds.constants() == (
        pb._ATTRIBUTE_WORK,
        pb._LONG_TAG_CHARS,
        pb._NESTING_LIMIT,
        pb._REOPENED_ELEMENTS,
    )


@built
def test_samples_and_eval_check_alike() -> None:
    compared, bad = _differ(mail_html())
    assert compared > 150
    assert bad == []


@built
def test_corpus_checks_alike() -> None:
    if not CORPUS.is_file():
        reason = f"the real corpus is not at {CORPUS}"
        print(reason)
        pytest.skip(reason)
    compared, bad = _differ(corpus_html(CORPUS, 2))
    assert compared > 300
    assert bad == []


@built
def test_fuzz_inputs_check_alike() -> None:
    compared, bad = _differ(fuzz_html())
    assert compared > 50
    assert bad == []


def _attributes(count: int, value: str = "1") -> str:
    return "<p " + " ".join(f"a{i}={value}" for i in range(count)) + ">"


HOSTILE = {
    "nesting": "<div>" * 5000,
    "nesting at the limit": "<div>" * 4096 + "<br>" * 10,
    "nesting past the limit": "<div>" * 4097,
    "nesting closed again": "<div></div>" * 5000,
    "nesting under void elements": "<br><img><td><tr>" * 3000 + "<span>" * 4000,
    "end tags below zero": "</div>" * 5000 + "<div>" * 4097,
    "upper case": "<DIV>" * 4097 + "<B>" * 300 + "<P>x" * 2000,
    "open formatting": "".join(f"<p><b id={i}>x" for i in range(3000)),
    "formatting closed by other names": "<b><i><u>" * 1000 + "</strong></em>" * 500 + "<p>x" * 1000,
    "formatting names with digits": "<b2><i3><s9>" * 1000 + "<p>" * 2000,
    "formatting prefixes": "<bigger><codes><fonts><strikes><tta>" * 600,
    "attributes": _attributes(20000),
    "attributes at the budget": _attributes(7070),
    "attributes past the budget": _attributes(7072),
    "attributes split by unicode space": "<p " + "\u2003".join(f"a{i}" for i in range(9000)) + ">",
    "attributes in long text": "x" * 300 + "<" + "a " * 8000 + ">" + "y" * 300,
    "long runs without tags": ("z" * 5000 + ">") * 30,
    "long tag tails": ("<td " + "k " * 200 + ">") * 400,
    "a lone <": "<" * 20000,
    "a lone </": "</" * 20000,
    "brackets only": "<>" * 20000 + "><" * 20000,
    "wide characters": "\U0001f600<div>" * 4097 + "<b>\u2019" * 2000 + "<p>" * 2000,
    "two-byte characters": "\u2019<div>" * 4097 + "<i>" * 3000,
}


@built
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_markup_checks_alike(name: str) -> None:
    html = HOSTILE[name]
    assert _c(html) == _python(html)


# The C pass reads UCS1 and UCS2 text a word (8 or 4 characters) at a time looking for `<` and
# `>`, or a 16-byte block (16, 8 or 4 characters) where SSE2 is: brackets at every offset within a
# block and at the text's end, and look-alikes that differ
# from `<` or `>` in a bit above the low byte (U+013C, U+013E, U+3C3E, U+BC3C) or are other
# Latin-1 characters (¼, ¾, U+00BC, U+00BE), in each kind of text.
_LOOK_ALIKES = {
    "latin-1": "\u00bc\u00be",
    "two-byte": "\u013c\u013e\u3c3e\ubc3c",
    "four-byte": "\U0001003c\U0003003e",
}


@built
@pytest.mark.parametrize("kind", list(_LOOK_ALIKES))
@pytest.mark.parametrize("offset", range(17))
def test_brackets_at_every_offset_of_a_word_check_alike(kind: str, offset: int) -> None:
    filler = _LOOK_ALIKES[kind] + "x" * offset
    for html in (
        (filler + "<b>") * 600,
        (filler + "<div " + "a " * 200 + filler + ">") * 40,
        filler + "<" * (offset + 1),
        filler + "</b" + filler,
        (filler + "<p><b id=1>" + filler) * 2100,
        # long tags (counted in tokens): printable runs broken by every kind of whitespace
        (filler + "<img src=" + ("x" * (offset + 7) + " \t\x1c\x85\xa0y" + filler) * 60 + ">") * 3,
        "<a " + ("b" * offset + " ") * 30000 + ">",
    ):
        assert _c(html) == _python(html)


def test_the_bounds_still_refuse_the_hostile_shapes() -> None:
    # A check may get cheaper, never weaker: these stay unparsed (with the C checks where built).
    for name in ("nesting", "nesting past the limit", "open formatting", "attributes"):
        assert not pb.parse_is_bounded(HOSTILE[name]), name
        assert not pb.python_parse_is_bounded(HOSTILE[name]), name
    for name in ("nesting at the limit", "nesting closed again"):
        assert pb.parse_is_bounded(HOSTILE[name]), name


@built
def test_not_a_str_is_refused() -> None:
    with pytest.raises(TypeError):
        _bounds.is_bounded(b"<p>")


SOUP = st.sampled_from(
    [
        "<", ">", "/", "</", "<b", "</b", "<B", "<i>", "</I>", "<a href=x>", "</a>", "<font>",
        "<strong>", "</strong>", "<s>", "<b1>", "<div>", "</div>", "<DIV", "<p>", "<td>", "<br>",
        "<rtc>", "<colgroup>", "<optgroup>", "<basefont>", "<x9>", "<9", "< b>", " ", "\t", "\n",
        "\u2003", "\x1f", "\u2019", "\U0001f600", "x", "y" * 40, "k=v ", " " * 30, "z" * 300,
    ]
)  # fmt: skip


@built
@settings(max_examples=600, deadline=None)
@given(st.lists(SOUP, max_size=120), st.integers(min_value=1, max_value=40))
def test_generated_soup_checks_alike(pieces: list[str], repeat: int) -> None:
    html = "".join(pieces) * repeat
    assert _c(html) == _python(html)


@built
@pytest.mark.parametrize("tags", [1999, 2000, 2001, 2002])
@pytest.mark.parametrize("wide", ["é", "\u20ac", "\U0001f514"])  # each str kind
def test_the_quick_pass_edges_check_alike(tags: int, wide: str) -> None:
    # is_bounded answers most mail from a quicker pass (<= 2000 `<`, no tag longer than 256
    # characters) and leaves the rest to the full measure: the documents on either side.
    open_formatting = wide + "<p><b>x" * (tags // 2) + "<i>" * (tags % 2)
    long_tag = "<p " + "a " * 200 + wide + ">" + "<br>" * (tags - 1)
    long_text = "<p>" + "word " * 100 + wide + "<br>" * (tags - 1)
    long_after_lt = "<p>x" + "<" + "y" * 300 + ">" + wide + "<br>" * (tags - 2)
    for html in (open_formatting, long_tag, long_text, long_after_lt):
        assert _c(html) == _python(html)
    assert _bounds.is_bounded(open_formatting) is (tags <= 2000)


@built
@pytest.mark.parametrize("count", [1, 150, 300])
@pytest.mark.parametrize("length", [250, 600, 1200, 20000])
def test_long_tags_check_alike(count: int, length: int) -> None:
    # The quick pass counts the long tags' tokens as the measure does: tags of one long token
    # (tracking links), and spread ones up to and past the budget.
    one_token = ('<a href="' + "u" * length + '">x</a>') * count
    spread = ("<p " + "a " * (length // 2) + ">") * count
    for html in (one_token, spread):
        assert _c(html) == _python(html)


@built
@pytest.mark.parametrize("tags", [10, 2100])  # the quick pass, and the full measure
@pytest.mark.parametrize("count", [10, 60, 400])
def test_what_long_tags_can_hold_at_most_is_told_as_counting_tells(tags: int, count: int) -> None:
    # Both passes first add up what each long tag's tokens can be at most (length / 2 + 1,
    # squared: ~2.6 M for these tags of one token, ~0.64 M for those full of them) and count
    # them, from the start, only once that is over the budget (50 M): 10 tags stay under it
    # uncounted; 60 and 400 go over it part of the way in, and counted the tags of one token
    # are far under it, those full of tokens under it (60 x 801²) or over it (400 x).
    one_token = ('<a href="' + "u" * 3200 + '">x</a>') * count + "<br>" * tags
    spread = ("<p " + "a " * 800 + ">") * count + "<br>" * tags
    for html in (one_token, spread):
        assert _c(html) == _python(html)
    assert _bounds.is_bounded(one_token) is True
    assert _bounds.is_bounded(spread) is (count * 801**2 <= 50_000_000)


@built
@pytest.mark.parametrize("tags", [10, 2100])  # the quick pass, and the full measure
@pytest.mark.parametrize("wide", ["", "\u00e9", "\u20ac", "\U0001f514"])  # each str kind
def test_the_longest_tags_are_counted_among_guessed_ones(tags: int, wide: str) -> None:
    # A tag over 14,142 characters could hold more tokens than the budget allows by itself: its
    # tokens are counted (16 bytes at a time where they are printable ASCII), the shorter tags'
    # are bounded. Inline images (one long token) stay under the budget with thousands of
    # spread attributes beside them; a long tag full of tokens goes over it alone.
    data = f'<img src="data:image/png;base64,{"QUJD" * 6000}{wide}QUJD">'
    spread = "<p " + "a " * 200 + ">"
    full = "<p " + "a " * 8000 + wide + ">"
    pieces = [
        data * 3 + spread * 50,
        (data + spread) * 20,
        spread * 60 + full,
        data + full + data,
        data.replace("QUJD", "QU D", 3000) + spread,
    ]
    for body in pieces:
        html = body + "<br>" * tags
        assert _c(html) == _python(html)
    assert _bounds.is_bounded(data * 3 + spread * 50 + "<br>" * tags) is True
    assert _bounds.is_bounded(spread * 60 + full + "<br>" * tags) is False
