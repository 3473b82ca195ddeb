"""The parts of CSS that make a client load something, and the declarations that hide an element.

Regexes here are linear (no nested quantifiers): they run on hostile input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)
# Escapes stay in the token (`\\"` in a string, `\\3a ` unquoted); possessive: linear on junk.
_DQ = r'"((?:[^"\\]|\\[\s\S])*+)"'
_SQ = r"'((?:[^'\\]|\\[\s\S])*+)'"
# An unquoted url() cannot hold `(` (CSS Syntax: a bad-url token, nothing loads); leaving it out
# also keeps `url(url(url(…` linear instead of rescanning the rest of the text from every `url(`.
_BARE = r"""((?:[^()"'\s\\]|\\[0-9a-fA-F]{1,6}+\s?|\\[^0-9a-fA-F])*+)"""
_URL = re.compile(rf"url\(\s*(?:{_DQ}|{_SQ}|{_BARE})\s*\)", re.I)
_IMPORT = re.compile(rf"@import\s+(?:{_DQ}|{_SQ})", re.I)
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
    css = _COMMENT.sub("", css)
    found: list[str] = []
    for m in _URL.finditer(css):
        found.append(_unescape(m.group(1) or m.group(2) or m.group(3) or ""))
    for m in _IMPORT.finditer(css):
        found.append(_unescape(m.group(1) or m.group(2) or ""))
    for m in _IMAGE_SET.finditer(css):
        for s in _STRING.finditer(m.group(1)):
            found.append(_unescape(s.group(1) or s.group(2) or ""))
    return [u.strip() for u in found if u.strip()]


def declarations(style: str) -> dict[str, str]:
    """`a: b; c: d` -> {"a": "b", "c": "d"}; later declarations win, `!important` dropped."""
    result: dict[str, str] = {}
    for chunk in style.split(";"):
        name, sep, value = chunk.partition(":")
        if sep:
            value = value.strip().lower().replace("!important", "").strip()
            result[name.strip().lower()] = value
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
    for prop in ("max-height", "max-width"):
        if pixels(decl.get(prop)) == 0:
            return f"{prop}:0"
    if decl.get("position") in ("absolute", "fixed"):
        for prop in ("left", "top", "right"):
            offset = pixels(decl.get(prop))
            if offset is not None and offset <= -100:
                return "off-screen"
    return None


# -- rewriting (cleaning) ------------------------------------------------------------------------

# Whatever can load, as whole tokens, plus comments so that a url() inside a comment is passed over
# as css_urls passes over it. `@import` is taken with the rest of its rule: a rule without its URL
# is junk, so it goes entirely. image-set() allows one level of nested parentheses (`url()`).
_IMPORT_RULE = rf"@import\s+(?:{_DQ}|{_SQ}|{_URL.pattern})[^;{{}}]*+;?"
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


def _still_loads(css: str, remove: UrlTest) -> bool:
    return any(remove(u) for u in css_urls(css))


def strip_css_urls(css: str, remove: UrlTest) -> str:
    """`css` with every load of a URL that `remove` accepts neutralised.

    `url(…)` and `image-set(…)` become `none`, an `@import` rule goes; everything else stays as
    written. `remove` receives URLs exactly as `css_urls` reports them. The result is checked with
    `css_urls` itself, so what detection finds is what goes: when escapes or comments make the
    written text differ from what a renderer reads, the text as read is rewritten instead, and as
    a last resort every load in the CSS goes (or the CSS itself).
    """
    if not _still_loads(css, remove):
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
