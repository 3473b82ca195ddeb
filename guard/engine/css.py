"""The parts of CSS that make a client load something, and the declarations that hide an element.

Regexes here are linear (no nested quantifiers): they run on hostile input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, Literal, NamedTuple

_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)


def without_comments(css: str) -> str:
    """`_COMMENT.sub("", css)`: in C where lexwalk's extension is built (one pass, ~5 times
    fewer instructions on a mail sheet), else `without_comments_python` (tests/test_css.py
    compares them)."""
    global _native_without_comments
    native = _native_without_comments
    if native is False:
        native = _native_without_comments = _extension_function("without_comments")
    if native is not None:
        found: str = native(css)
        return found
    return without_comments_python(css)


_native_without_comments: Callable[[str], str] | Literal[False] | None = False


def without_comments_python(css: str) -> str:
    """`_COMMENT.sub("", css)`, by str.find: the regex tries its lazy end at every character of a
    comment and takes ~0.2 M instructions a newsletter's stylesheet; it is read up to four
    times. A comment left open runs to the end of the text, but for a newline that ends it
    (`$` matches before one), as the regex reads it (tests/test_css.py compares the two)."""
    start = css.find("/*")
    if start == -1:
        return css
    kept: list[str] = []
    pos = 0
    while start != -1:
        kept.append(css[pos:start])
        end = css.find("*/", start + 2)
        if end == -1:
            if css.endswith("\n") and len(css) - 1 >= start + 2:
                kept.append("\n")
            return "".join(kept)
        pos = end + 2
        start = css.find("/*", pos)
    kept.append(css[pos:])
    return "".join(kept)


# Escapes stay in the token (`\\"` in a string, `\\3a ` unquoted); possessive: linear on junk.
_DQ = r'"((?:[^"\\]++|\\[\s\S])*+)"'
_SQ = r"'((?:[^'\\]++|\\[\s\S])*+)'"
# An unquoted url() cannot hold `(` (CSS Syntax: a bad-url token, nothing loads); leaving it out
# also keeps `url(url(url(…` linear instead of rescanning the rest of the text from every `url(`.
_BARE = r"""((?:[^()"'\s\\]++|\\[0-9a-fA-F]{1,6}+\s?|\\[^0-9a-fA-F])*+)"""
# At the end of the text a url() needs no `)` (CSS Syntax: EOF ends the token and the function,
# and the URL loads); an @import needs no space before its string (`@import"…"`).
_URL = re.compile(rf"url\(\s*(?:{_DQ}|{_SQ}|{_BARE})\s*(?:\)|\Z)", re.I)
_IMPORT = re.compile(rf"@import\s*(?:{_DQ}|{_SQ})", re.I)
# The arguments may hold one level of parentheses (`type("image/png")`); a `(` otherwise ends the
# try, so `image-set(image-set(…` without a `)` is linear (`[^)]*` rescanned the rest of the text
# from every `image-set(`: 227 KB of them took 10 s).
_IMAGE_SET = re.compile(r"image-set\(((?:[^()]|\([^()]*\))*+)\)", re.I)
_STRING = re.compile(r""""([^"]*)"|'([^']*)'""")
_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6}\s?|.)", re.S)


def _unescape(text: str) -> str:
    """CSS escapes (`\\2f`, `\\:`) -> characters, as a renderer reads them."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if body[0] in "0123456789abcdefABCDEF" and (len(body) > 1 or body.isalnum()):
            try:
                return chr(int(body.strip(), 16))
            except (ValueError, OverflowError):
                return "\ufffd"
        return body

    return _ESCAPE.sub(one, text)


_IDENT_CHAR = re.compile(r"[A-Za-z0-9@-]")


def _unescape_idents(css: str) -> str:
    """Decode escapes that stand for letters, digits, `-` and `@` (`\\75 rl(`, `@\\69mport`), as a
    renderer does in identifiers; other escapes stay for `_unescape` on the extracted URL."""

    def one(m: re.Match[str]) -> str:
        char = _unescape(m.group(0))
        return char if _IDENT_CHAR.fullmatch(char) else m.group(0)

    return _ESCAPE.sub(one, css)


def css_urls(css: str) -> list[str]:
    """Every URL a stylesheet or style attribute would load: url(), @import "…", image-set("…")."""
    if "\\" in css:
        css = _unescape_idents(css)
    lowered = css.lower()
    if "url" not in lowered and "@import" not in lowered and "image-set" not in lowered:
        return []
    read = without_comments(css)
    # Each pattern runs only where its keyword is (the comments out: taking one out may join
    # a keyword). Exact on ASCII text; elsewhere IGNORECASE also matches `ı`, `İ` and `ſ` for
    # `i` and `s`, which lower() keeps apart, so every pattern runs.
    wants_url = wants_import = wants_set = True
    if read.isascii():
        if read is not css:  # comments taken out (else the text lowered above is this one)
            lowered = read.lower()
        wants_url, wants_import = "url" in lowered, "@import" in lowered
        wants_set = "image-set" in lowered
    found: list[str] = []
    css = read
    if not wants_url:
        pass
    elif css.isascii():  # each url() read by str.find where it can be (see _url_at)
        at = lowered.find("url(")
        while at != -1:
            got = _url_at(css, at)
            if got is None:
                at = lowered.find("url(", at + 1)
            else:
                found.append(_unescape(got[0]))
                at = lowered.find("url(", got[1])
    else:
        for m in _URL.finditer(css):
            found.append(_unescape(m.group(1) or m.group(2) or m.group(3) or ""))
    for m in _found(_IMPORT, css, lowered, "@import") if wants_import else ():
        found.append(_unescape(m.group(1) or m.group(2) or ""))
    for m in _found(_IMAGE_SET, css, lowered, "image-set(") if wants_set else ():
        for s in _STRING.finditer(m.group(1)):
            found.append(_unescape(s.group(1) or s.group(2) or ""))
    # A fragment-only url(#id) names something in the same document: nothing is fetched.
    return [u.strip() for u in found if u.strip() and not u.strip().startswith("#")]


def _found(
    pattern: re.Pattern[str], css: str, lowered: str, literal: str
) -> Iterator[re.Match[str]]:
    """`pattern.finditer(css)`, for a case-insensitive pattern each of whose matches starts with
    `literal` (lower-case ASCII): on ASCII text (`lowered` its lower case, character for
    character) it is tried only where `lowered` holds the literal, in order, on from the end of
    each match, which is where finditer finds them; IGNORECASE reads Unicode case at each
    character it tries (~20 instructions a character of a newsletter's stylesheet). Elsewhere
    the pattern's own search."""
    if not css.isascii():
        yield from pattern.finditer(css)
        return
    at = lowered.find(literal)
    while at != -1:
        m = pattern.match(css, at)
        if m is None:
            at = lowered.find(literal, at + 1)
        else:
            yield m
            at = lowered.find(literal, m.end())


# What `\s` matches in ASCII text (str.isspace), and what ends an unquoted url() there.
_ASCII_SPACE = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_BARE_ENDS = ("(", '"', "'", "\\")


def _url_at(css: str, at: int) -> tuple[str, int] | None:
    """`_URL.match(css, at)` of ASCII text with `url(` (either case) at `at`, as (its URL as
    written: the group that matched, "" for none; where the match ends), or None. sre reads the
    URL's characters at ~40-65 instructions each (a font's data: URL in a stylesheet runs to
    100 KB and more); the usual url() - quoted without a backslash, or bare without a backslash,
    quote, bracket or inner white space - is read here by str.find and friends, which give what
    the pattern's possessive runs give. Anything else goes to the pattern itself
    (tests/test_css.py compares the two)."""
    j, n = at + 4, len(css)
    while j < n and css[j] in _ASCII_SPACE:
        j += 1
    quote = css[j] if j < n else ""
    if quote in ('"', "'"):
        close = css.find(quote, j + 1)
        if close != -1 and css.find("\\", j + 1, close) == -1:
            end = close + 1
            while end < n and css[end] in _ASCII_SPACE:
                end += 1
            if end == n:
                return css[j + 1 : close], n
            if css[end] == ")":
                return css[j + 1 : close], end + 1
    elif quote:
        close = css.find(")", j)
        body = (css[j:close] if close != -1 else css[j:]).rstrip(_ASCII_SPACE)
        if (
            body
            and len(body.split(None, 1)) == 1  # no white space inside (str.split's is \s's)
            and not any(end in body for end in _BARE_ENDS)
        ):
            return body, (close + 1 if close != -1 else n)
    m = _URL.match(css, at)
    return (m.group(1) or m.group(2) or m.group(3) or "", m.end()) if m is not None else None


# A `<style>` element's text is read for its URLs four times when a message is cleaned: by the
# scan's walk, by the rewrite (what the original loads, then what `strip_css_urls` removes), and by
# the check's walk of the output, where it is mostly unchanged. The answers by text, for the last
# few texts (bounded as the other memos: entries, and the length of a text kept).
_SHEET_URLS: dict[str, tuple[str, ...]] = {}
_SHEET_URLS_SIZE = 32
_SHEET_URLS_LONGEST = 200_000


def sheet_urls(css: str) -> list[str]:
    """`css_urls(css)` of a `<style>` element's text, remembered for the next reading of it."""
    known = _SHEET_URLS.get(css)
    if known is None:
        known = tuple(css_urls(css))
        if len(css) <= _SHEET_URLS_LONGEST:
            if len(_SHEET_URLS) >= _SHEET_URLS_SIZE:
                _SHEET_URLS.clear()
            _SHEET_URLS[css] = known
    return list(known)


_IMPORTANT = re.compile(r"!\s*important\s*$")
Weighted = dict[str, tuple[str, bool]]
"""Declarations by property name: (lower-cased value, !important)."""


def weighted_declarations(style: str) -> Weighted:
    """`a: b; c: d !important` -> {"a": ("b", False), "c": ("d", True)}, as a renderer reads a
    declaration block: comments dropped, escapes decoded (`d\\isplay`), a later declaration wins
    unless an earlier one of the same property is `!important` and it is not.

    In C where lexwalk's extension is built and the block is ASCII without a backslash or a
    comment (nearly every block of a sheet's rules: ~4 times fewer instructions), else
    `weighted_declarations_python` (tests/test_css.py compares them)."""
    global _native_weighted
    native = _native_weighted
    if native is False:
        native = _native_weighted = _extension_function("weighted_declarations")
    if native is not None:
        found: Weighted | None = native(style)
        if found is not None:
            return found
    return weighted_declarations_python(style)


_native_weighted: Callable[[str], Weighted | None] | Literal[False] | None = False


def weighted_declarations_python(style: str) -> Weighted:
    """`weighted_declarations` in Python: the reference for the C, and its reading of the
    blocks the C leaves (escapes, comments, text not ASCII)."""
    if "/*" in style:
        style = without_comments(style)
    escaped = "\\" in style
    result: Weighted = {}
    for chunk in style.split(";"):
        name, sep, value = chunk.partition(":")
        if not sep:
            continue
        if escaped:
            name, value = _unescape(name), _unescape(value)
        name = name.strip().lower()
        value = value.strip().lower()
        important = "!" in value and _IMPORTANT.search(value) is not None
        if important:
            value = _IMPORTANT.sub("", value).rstrip()
        earlier = result.get(name)
        if earlier is None or important or not earlier[1]:
            result[name] = (value, important)
    return result


def declarations(style: str) -> dict[str, str]:
    """`a: b; c: d` -> {"a": "b", "c": "d"}: `weighted_declarations` without the weights."""
    if "!" in style or "\\" in style or "/*" in style:
        return {name: value for name, (value, _important) in weighted_declarations(style).items()}
    result: dict[str, str] = {}  # the usual inline style: the later declaration wins
    for chunk in style.split(";"):
        name, sep, value = chunk.partition(":")
        if sep:
            result[name.strip().lower()] = value.strip().lower()
    return result


_PX = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(px)?\s*$")


def pixels(value: str | None) -> float | None:
    """`1`, `1px`, ` 0 ` -> the number of CSS pixels; None for %, em, auto or junk."""
    if value is None:
        return None
    # A few sizes (`600`, `100%`, `1`) make up nearly every width and height in mail; only
    # short texts are cached, so hostile values cannot fill memory.
    return _short_pixels(value) if len(value) <= 32 else _pixels(value)


def _pixels(value: str) -> float | None:
    m = _PX.match(value)
    return float(m.group(1)) if m else None


_short_pixels = lru_cache(maxsize=1024)(_pixels)

_LENGTH = re.compile(r"^\s*(\d+\.?\d*|\.\d+)\s*([a-z%]*)\s*$")
# Absolute units in CSS pixels; a relative unit (%, em, vw…) gives a size, never a tiny one.
_ABSOLUTE = {
    "": 1.0,
    "px": 1.0,
    "pt": 4 / 3,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 9.6 / 2.54,
}
_RELATIVE = frozenset({"%", "em", "rem", "ex", "ch", "vw", "vh", "vmin", "vmax", "lh"})


def size(value: str | None) -> float | None:
    """A width or height as an attribute or CSS gives it, in CSS pixels: `1`, `1px`, `0.75pt`.
    In a relative unit (`100%`, `2em`) it is a size but not a small one (inf), unless 0.
    None where nothing is given: absent, `auto`, negative or junk."""
    if value is None:
        return None
    return _short_size(value) if len(value) <= 32 else _size(value)


def _size(value: str) -> float | None:
    m = _LENGTH.match(value.lower())
    if m is None:
        return None
    number, unit = float(m.group(1)), m.group(2)
    scale = _ABSOLUTE.get(unit)
    if scale is not None:
        return number * scale
    if unit in _RELATIVE:
        return 0.0 if number == 0 else float("inf")
    return None


_short_size = lru_cache(maxsize=1024)(_size)


def tiny(width: float | None, height: float | None) -> bool:
    """A given size of at most 3 px both ways (a 1×3 image), or 0 either way. One given side of
    at most 3 px counts too (an image keeps its aspect ratio, and a beacon is 1×1); a 600×1 rule
    does not, and nothing given is not tiny."""
    if width == 0 or height == 0:
        return True
    if width is not None:
        return width <= 3 and (height is None or height <= 3)
    return height is not None and height <= 3


_OPACITY = re.compile(r"^\s*(\d*\.?\d+)\s*(%)?\s*$")


def hides(decl: dict[str, str]) -> str | None:
    """Why these declarations make an element invisible, or None."""
    if decl.get("display") == "none":
        return "display:none"
    if decl.get("visibility") in ("hidden", "collapse"):
        return "visibility:hidden"
    opacity = _OPACITY.match(decl.get("opacity", ""))
    if opacity and float(opacity.group(1)) == 0:
        return "opacity:0"
    if decl.get("mso-hide") == "all":
        return "mso-hide:all"  # Outlook's own: it shows nothing of the element
    for prop in ("max-height", "max-width"):
        if pixels(decl.get(prop)) == 0:
            return f"{prop}:0"
    if decl.get("position") in ("absolute", "fixed"):
        for prop in ("left", "top", "right"):
            offset = pixels(decl.get(prop))
            if offset is not None and offset <= -100:
                return "off-screen"
    return None


_INHERITED_HIDES = frozenset({"display:none", "visibility:hidden", "opacity:0", "mso-hide:all"})
_CLIPS = ("hidden", "clip")


def hides_subtree(decl: dict[str, str], own: str | None) -> str | None:
    """Why these declarations hide everything inside the element (`own`: `hides(decl)`), or
    None. A zero max-height/max-width, or a zero or tiny size, hides the content only when the
    overflow is clipped; otherwise it spills out, visible."""
    if own in _INHERITED_HIDES:
        return own
    if "overflow" not in decl and "overflow-y" not in decl and "overflow-x" not in decl:
        return None
    if not any(decl.get(p) in _CLIPS for p in ("overflow", "overflow-y", "overflow-x")):
        return None
    if own is not None and own.startswith("max-"):
        return own
    if tiny(size(decl.get("width")), size(decl.get("height"))):
        return "zero-size"
    return None


# -- <style> rules -------------------------------------------------------------------------------

# One top-level item of a stylesheet: an at-rule with its block (up to three levels of braces:
# `@supports{@media{.a{}}}`) or its `;`, a qualified rule `prelude{declarations}`, or one stray
# character. Possessive throughout: linear on junk.
_AT_RULE = r"@[^{};]*+(?:;|\{(?:[^{}]++|\{(?:[^{}]++|\{[^{}]*+\})*+\})*+(?:\}|$)|$)"
_AT_RULES = re.compile(_AT_RULE)
_TOP_ITEM = re.compile(r"\s*+(?:" + _AT_RULE + r"|([^{};@][^{};]*+)\{([^{}]*+)\}|[^{}@]++|[\s\S])")
_IDENT_ESCAPE = r"\\[0-9a-fA-F]{1,6}+\s?|\\[^0-9a-fA-F\n]"
# Non-ASCII as the complement of ASCII: a class spanning U+0080-U+FFFF costs Python's regex
# compiler a 64 K-entry map, ~0.25 G instructions at every start.
_IDENT = rf"(?:[A-Za-z_-]|[^\x00-\x7f]|{_IDENT_ESCAPE})(?:[\w-]|[^\x00-\x7f]|{_IDENT_ESCAPE})*+"
_COMPOUND = rf"(?:(?:{_IDENT}|\*)(?:[.#]{_IDENT})*+|(?:[.#]{_IDENT})++)"
_PLAIN_SELECTOR = rf"{_COMPOUND}(?:\s*+>\s*+{_COMPOUND}|\s++{_COMPOUND})*+"


@lru_cache(maxsize=1)
def _plain_selector() -> re.Pattern[str]:
    """Compiled on first use (~1 ms): a process that meets no stylesheet never pays it."""
    return re.compile(_PLAIN_SELECTOR)


_ESCAPES = re.compile(r"\\(?:[0-9a-fA-F]{1,6}\s?|.)")
_TYPES = re.compile(r"(?:^|[\s>])[A-Za-z]")


# What a top-level rule needs to make an element a pixel (or load something): a superset, read in
# C over the stylesheet without its at-rules, so that most sheets are never parsed in Python.
_SMALL = r"\s*:\s*(?:[0-3](?:\.\d*)?|\.\d+|0+[a-z%]*)\s*(?:px|pt)?\s*(?:[!;}]|$)"
# The branches of what may hide, each behind the literal it starts with: the lower-cased sheet is
# searched (str.find, C) for each literal and a branch's pattern runs only where its literal is.
# One regex of all the branches tried them at every `d`, `i`, `h`, `p`, `o`, `u`, `w`…: about a
# million instructions a real newsletter, most sheets holding none of them. `None`: the literal
# alone decides. tests/test_css.py compares with the single regex (`_may_hide_one_regex`).
_MAY_HIDE_BRANCHES: tuple[tuple[str, re.Pattern[str] | None], ...] = (
    ("\\", None),
    ("mso-hide", None),
    ("image-set", None),
    ("display", re.compile(r"display\s*:\s*none")),
    ("visibility", re.compile(r"visibility\s*:\s*(?:hidden|collapse)")),
    ("opacity", re.compile(r"opacity\s*:\s*[0.]")),
    ("max-height", re.compile(r"max-height\s*:\s*[0.]")),
    ("max-width", re.compile(r"max-width\s*:\s*[0.]")),
    ("position", re.compile(r"position\s*:\s*(?:absolute|fixed)")),
    ("url(", re.compile(r"url\(\s*+['\"]?+\s*+(?!data:)")),
)
# `width` and `height` count only as a property's name: not after a name character
# (`line-height:1.1`, `border-width:0`). A match they make after one is skipped; what it spans
# (its `:`, then digits, letters, `%`, spaces, up to `!`, `;` or `}`) holds no other branch's
# start and no other `width`/`height` match (each needs a `:` after its name), so reading the
# occurrences of each apart, behind its literal, is the same as the one regex's finditer.
_SIZES = (("width", re.compile("width" + _SMALL)), ("height", re.compile("height" + _SMALL)))
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_\\")


def may_hide(css: str) -> bool:
    """Can a rule of this stylesheet outside its at-rules hide or shrink an element, or load
    something? False means `style_rules` would find nothing of the kind (True: it may).

    In C where lexwalk's extension is built (`may_hide`: one pass, ~0.35 M instructions fewer a
    real newsletter's sheets), else `may_hide_branches`: the same answer
    (tests/test_css.py compares them)."""
    if "/*" in css:
        css = without_comments(css)
    global _native_may_hide
    if _native_may_hide is False:
        _native_may_hide = _extension_may_hide()
    if _native_may_hide is not None:
        found: bool = _native_may_hide(css)
        return found
    return may_hide_branches(css)


def _extension_may_hide() -> Callable[[str], bool] | None:
    found: Callable[[str], bool] | None = _extension_function("may_hide")
    return found


def _extension_function(name: str) -> Any:
    """lexwalk's extension's function `name`, or None (not built, or GUARD_PYTHON_WALK set)."""
    if os.environ.get("GUARD_PYTHON_WALK"):  # the reference, as for the walks (lexwalk.py)
        return None
    try:
        from guard.engine import _lexwalk  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(_lexwalk, name, None)


_native_may_hide: Callable[[str], bool] | Literal[False] | None = False


def may_hide_branches(css: str) -> bool:
    """`may_hide` of a stylesheet without comments, in Python: the reference for the C."""
    if "@" in css:
        css = _AT_RULES.sub("", css)
    css = css.lower()
    for literal, pattern in _MAY_HIDE_BRANCHES:
        if literal in css and (pattern is None or pattern.search(css) is not None):
            return True
    return any(
        css[m.start() - 1 : m.start()] not in _NAME_CHARS
        for literal, pattern in _SIZES
        if literal in css
        for m in pattern.finditer(css)
    )


_LOADS = re.compile(r"url|image-set|\\", re.I)


def _may_load(body: str) -> bool:
    """`_LOADS.search(body)`: by str.find on an ASCII block (the case-insensitive regex reads
    Unicode case at each character: ~6 us a Mailchimp rule). On ASCII text IGNORECASE matches
    the ASCII letters' two cases alone, which the lower-cased text finds; elsewhere it also
    matches `ı`, `İ` and `ſ` for `i` and `s`, so the regex reads it."""
    if not body.isascii():
        return _LOADS.search(body) is not None
    lowered = body.lower()
    return "url" in lowered or "image-set" in lowered or "\\" in body


class StyleRule(NamedTuple):
    """One rule of a `<style>` element that guard applies to the document's elements."""

    selector: str
    specificity: tuple[int, int, int]
    declarations: Weighted
    urls: tuple[str, ...]
    whole_list: bool
    """Every selector of its selector list is plain (so its loads are all accounted for)."""


def specificity(selector: str) -> tuple[int, int, int]:
    """(ids, classes, types) of a plain selector (see `style_rules`)."""
    plain = _ESCAPES.sub("x", selector) if "\\" in selector else selector
    return plain.count("#"), plain.count("."), len(_TYPES.findall(plain))


def top_rules_python(css: str) -> list[tuple[str, str]]:
    """The qualified rules at the top of a stylesheet without comments, (prelude, declarations)
    as _TOP_ITEM reads them: the reference for lexwalk's extension's `top_rules`."""
    return [(m.group(1), m.group(2)) for m in _TOP_ITEM.finditer(css) if m.group(1) is not None]


_native_top_rules: Callable[[str], list[tuple[str, str]]] | Literal[False] | None = False


def style_rules(css: str, wanted: Callable[[str], bool] | None = None) -> list[StyleRule]:
    """The rules of a stylesheet that hold for every reader, in order: those outside `@media` (and
    every other at-rule) whose selector is plain — type, `.class`, `#id`, compounds of them and
    descendant or child combinators, CSS escapes allowed. Pseudo-classes (`:hover`), attribute
    selectors and sibling combinators are left out: guard applies no rule it cannot match
    exactly. A selector list is split into one rule per selector. `wanted`: a test of a rule's
    declaration block (comments already out); the rules of a block it refuses are left out
    unread."""
    if "/*" in css:
        css = without_comments(css)
    global _native_top_rules, _native_selectors
    if _native_top_rules is False:
        _native_top_rules = _extension_function("top_rules")
    native_selectors = _native_selectors
    if native_selectors is False:
        native_selectors = _native_selectors = _extension_function("plain_selectors")
    rules: list[StyleRule] = []
    for prelude, body in (_native_top_rules or top_rules_python)(css):
        if ":" not in body:
            continue
        if wanted is not None and not wanted(body):
            continue
        decl = weighted_declarations(body)
        urls = tuple(css_urls(body)) if _may_load(body) else ()
        read = native_selectors(prelude) if native_selectors is not None else None
        plain, whole = read if read is not None else plain_selectors_python(prelude)
        for selector, weight in plain:
            rules.append(StyleRule(selector, weight, decl, urls, whole))
    return rules


# lexwalk's `plain_selectors`: `plain_selectors_python` in C for an ASCII selector list without a
# backslash (None for another); tests/test_css.py compares them.
_native_selectors: (
    Callable[[str], tuple[list[tuple[str, tuple[int, int, int]]], bool] | None]
    | Literal[False]
    | None
) = False


def plain_selectors_python(prelude: str) -> tuple[list[tuple[str, tuple[int, int, int]]], bool]:
    """The plain selectors of a selector list with their specificity, in order, and whether every
    selector of the list is plain (see `style_rules`)."""
    selectors = [selector.strip() for selector in prelude.split(",")]
    is_plain = _plain_selector().fullmatch
    plain = [(selector, specificity(selector)) for selector in selectors if is_plain(selector)]
    return plain, len(plain) == len(selectors)


# -- rewriting (cleaning) ------------------------------------------------------------------------

# Whatever can load, as whole tokens, plus comments so that a url() inside a comment is passed over
# as css_urls passes over it. `@import` is taken with the rest of its rule: a rule without its URL
# is junk, so it goes entirely. image-set() allows one level of nested parentheses (`url()`).
_IMPORT_RULE = rf"@import\s*(?:{_DQ}|{_SQ}|{_URL.pattern})[^;{{}}]*+;?"
_IMAGE_SET_TOKEN = r"image-set\((?:[^()]|\([^()]*+\))*+\)"
_TOKENS = re.compile(
    rf"(?P<comment>/\*.*?(?:\*/|$))|(?P<import>{_IMPORT_RULE})|(?P<set>{_IMAGE_SET_TOKEN})"
    rf"|(?P<url>{_URL.pattern})",
    re.I | re.S,
)
NEUTRAL_VALUE = "none"
"""What a removed url()/image-set() becomes: a valid value wherever an image is expected."""

UrlTest = Callable[[str], bool]


def _token_urls(token: str) -> list[str]:
    urls = css_urls(token)
    if token[:1] in "iI":  # image-set(): its quoted candidates, whatever css_urls made of them
        urls.extend(_unescape(s.group(1) or s.group(2) or "") for s in _STRING.finditer(token))
    return urls


def _neutralise_tokens(css: str, remove: UrlTest, everything: bool = False) -> str:
    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if m.group("comment") is not None:
            return token
        urls = _token_urls(token)
        if not urls or not (everything or any(remove(u.strip()) for u in urls)):
            return token
        return "" if m.group("import") is not None else NEUTRAL_VALUE

    return _TOKENS.sub(one, css)


def _still_loads(css: str, remove: UrlTest, read: Callable[[str], list[str]] = css_urls) -> bool:
    return any(remove(u) for u in read(css))


def strip_css_urls(css: str, remove: UrlTest) -> str:
    """`css` with every load of a URL that `remove` accepts neutralised.

    `url(…)` and `image-set(…)` become `none`, an `@import` rule goes; everything else stays as
    written. `remove` receives URLs exactly as `css_urls` reports them. The result is checked with
    `css_urls` itself, so what detection finds is what goes: when escapes or comments make the
    written text differ from what a renderer reads, the text as read is rewritten instead, and as
    a last resort every load in the CSS goes (or the CSS itself).
    """
    if not _still_loads(css, remove, sheet_urls):  # the text as read before: remembered
        return css
    out = _neutralise_tokens(css, remove)
    if not _still_loads(out, remove):
        return out
    as_read = _COMMENT.sub("", _unescape_idents(css) if "\\" in css else css)
    for everything in (False, True):
        out = _neutralise_tokens(as_read, remove, everything)
        if not _still_loads(out, remove):
            return out
    return ""
