"""Which documents Lexbor parses in bounded time and memory (`parse_is_bounded`).

Lexbor's C code cannot be interrupted, and three shapes of markup make its work grow with the
square of the input; each is estimated from the markup in linear time. A document past these
bounds is read by the linear markup scan instead (guard/engine/html.py).

The same checks run in C (guard/engine/_bounds.c, one pass over the text instead of splits,
regex scans and a loop per tag) where it was built; the Python functions below stay the
reference (tests/test_parse_bounds.py compares the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_native: Any
try:
    from guard.engine import _bounds as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # not built (no C compiler at install): the Python checks run
    _native = None
_compiled: Callable[[str], bool] | None = _native.is_bounded if _native is not None else None

# -- what bounds the parser's work -----------------------------------------------------------------
# Lexbor's C code cannot be interrupted by the per-message timer, and three shapes of markup make
# its work grow with the square of the input (measured with selectolax 1.0.2, one core):
# - one tag with many *distinct* attributes (each checked against the earlier ones): 67,000 took
#   7.9 s (duplicates are cheap: 200,000 took 0.02 s);
# - deep nesting under block elements (each `<div>` looks down the stack of open elements for a
#   `<p>` to close): 20,000 nested took 0.8 s, 40,000 took 2.9 s, 100,000 took 17 s;
# - formatting elements left open (`<b id=1>`, `<b id=2>` … never closed) are re-opened, all of
#   them, in every later paragraph, as HTML5 requires: 2,000 `<p><b id=N>x` built 2 million
#   elements in 0.7 s and 733 MB.
# Documents past these bounds are read by the linear markup scan instead; real mail is far below
# them (the real corpus's newsletters leave at most 5 formatting elements open at once).

_ATTRIBUTE_WORK = 50_000_000
"""Sum over tags of (attribute-like tokens)², about 0.1 s of Lexbor's duplicate check."""
_LONG_TAG_CHARS = 256
_NESTING_LIMIT = 4096
"""Open elements at once (estimated from the markup): ~0.03 s of Lexbor's scope checks."""
_REOPENED_ELEMENTS = 500_000
"""Elements HTML5 may re-create for formatting elements left open (~190 MB, ~0.2 s at most)."""
_TAG_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
# Formatting element names start with one of these letters; the rest of the name is read in Python.
_MAYBE_FORMATTING_TOKEN = re.compile(r"<(/?[abcefinstuABCEFINSTU][A-Za-z]*)")
_FORMATTING = frozenset(
    {
        "a",
        "b",
        "big",
        "code",
        "em",
        "font",
        "i",
        "nobr",
        "s",
        "small",
        "strike",
        "strong",
        "tt",
        "u",
    }
)
# Start tags that open no element that stays open: void elements, and those an HTML5 parser
# closes by itself when the next one starts (an unclosed `<p>`, `<li>`, `<td>`… is the norm).
_NOT_NESTING = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param", "keygen", "basefont", "bgsound", "frame", "image", "p", "li",
        "dd", "dt", "option", "optgroup", "tr", "td", "th", "rb", "rp", "rt", "rtc", "tbody",
        "thead", "tfoot", "colgroup", "caption",
    }
)  # fmt: skip


def runs_at_most(text: str, limit: int) -> bool:
    """Is every run of characters between two `>` (or an end) at most `limit` long?"""
    n = len(text)
    if n <= limit:
        return True
    # A run of 2s - 1 characters or more contains a whole block [ks, ks + s): when every block
    # holds a `>`, no run is longer than 2s - 2. A few dozen finds instead of splitting the text.
    s = (limit + 2) // 2
    if s >= 64:
        find = text.find
        if all(find(">", start, start + s) != -1 for start in range(0, n - s + 1, s)):
            return True
    return max(map(len, text.split(">"))) <= limit


def _attribute_bomb(html: str) -> bool:
    # A tag of L characters holds at most L/2 + 1 tokens, and all tags together at most
    # len(html)/2 + 1, so the sum of squares is at most (longest/2 + 1) * (len/2 + 1). A tag
    # cannot contain `>`, so the longest run between two `>` bounds the longest tag: when that
    # bound is under budget (always, for real mail) nothing needs counting.
    half_longest = _ATTRIBUTE_WORK // (len(html) // 2 + 1) - 1
    if half_longest >= 0 and runs_at_most(html, 2 * half_longest + 1):
        return False
    # Long runs come from text and stylesheets as often as from tags: only a run's part after
    # its last `<` can be a tag, and only a long one is counted.
    work = 0
    for run in html.split(">"):
        if len(run) > _LONG_TAG_CHARS:
            start = run.rfind("<")
            if start != -1 and len(run) - start > _LONG_TAG_CHARS:
                work += len(run[start:].split()) ** 2
                if work > _ATTRIBUTE_WORK:
                    return True
    return False


def _too_deep(html: str) -> bool:
    depth = 0
    for end, name in _TAG_TOKEN.findall(html):
        if end:
            depth = depth - 1 if depth else 0
        elif name.lower() not in _NOT_NESTING:
            depth += 1
            if depth > _NESTING_LIMIT:
                return True
    return False


def _most_open_formatting(html: str) -> int:
    # Over-estimates: any formatting end tag closes one, whatever its name.
    most = open_now = 0
    formatting = _FORMATTING
    for name in _MAYBE_FORMATTING_TOKEN.findall(html):
        if name[0] == "/":
            if open_now and name[1:].lower() in formatting:
                open_now -= 1
        elif name.lower() in formatting:
            open_now += 1
            most = max(most, open_now)
    return most


def parse_is_bounded(html: str) -> bool:
    """Can Lexbor parse `html` in bounded time and memory (see the figures above)?"""
    if _compiled is not None:
        return _compiled(html)
    return python_parse_is_bounded(html)


def python_parse_is_bounded(html: str) -> bool:
    """`parse_is_bounded` in Python: the reference for guard/engine/_bounds.c."""
    if _attribute_bomb(html):
        return False
    # A document of n tags nests at most n deep. With F formatting elements open, each of the at
    # most n/2 later paragraphs re-creates at most F of them, and F <= n/2: at most n²/8 in all,
    # so below that nothing needs counting (most mail).
    tags = html.count("<")
    if tags > _NESTING_LIMIT and _too_deep(html):
        return False
    if tags * tags // 8 <= _REOPENED_ELEMENTS:
        return True
    return _most_open_formatting(html) * (tags // 2) <= _REOPENED_ELEMENTS
