"""How an element is laid out, as far as pixels go: its style facts, the document's `<style>`
cascade, and the pixel shape that follows.

`style_facts` reads an inline style once per distinct text (what it hides, its size, what it
loads); `document_sheet` applies a document's `<style>` rules to its elements (Lexbor matches the
selectors) where a rule can hide or shrink one or loads something; `pixel_shape` says why an
element that loads an image looks like a pixel (`tiny`, `display:none`, inside a hidden element).
The walk in guard/engine/html.py asks these for each element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from guard.engine.css import (
    StyleRule,
    _extension_function,
    css_urls,
    declarations,
    hides,
    hides_subtree,
    may_hide,
    size,
    style_rules,
    tiny,
    weighted_declarations,
)
from guard.engine.deferred import LexborHTMLParser

Getter = Callable[[str], str | None]
"""An element's attribute getter: name -> value (None when absent, or for no value in Lexbor)."""


class StyleFacts(NamedTuple):
    """What one element's style does: its inline style attribute (read once per distinct text),
    and the document's `<style>` rules where they match it."""

    hides: str | None
    """How it hides the element itself (`display:none`, `off-screen`, …), or None."""
    hides_subtree: str | None
    """How it hides everything inside the element (display:none, visibility, opacity,
    mso-hide:all; a zero max-height/max-width or a zero or tiny size with the overflow
    clipped), or None."""
    urls: tuple[str, ...]
    """What its style attribute loads (url(), image-set())."""
    width: float | None
    height: float | None
    """Sizes in CSS pixels where CSS gives them (see `guard.engine.css.size`)."""
    visible: bool = False
    """`visibility: visible`: shown (with what it contains) inside a visibility:hidden one."""


# Mail repeats a few inline styles on hundreds of cells and images: each distinct text is read
# once. Bounded in entries and in length, so hostile mail costs the memo little memory.
_STYLE_MEMO: dict[str, StyleFacts] = {}
_STYLE_MEMO_SIZE = 4096
_STYLE_MEMO_LONGEST = 2048
NO_STYLE = StyleFacts(None, None, (), None, None)


def _facts(decl: dict[str, str], urls: tuple[str, ...]) -> StyleFacts:
    reason = hides(decl)
    return StyleFacts(
        reason,
        hides_subtree(decl, reason),
        urls,
        size(decl.get("width")),
        size(decl.get("height")),
        decl.get("visibility") == "visible",
    )


def style_facts(style: str) -> StyleFacts:
    facts = _STYLE_MEMO.get(style)
    if facts is None:
        facts = _facts(declarations(style), tuple(css_urls(style)))
        if len(style) <= _STYLE_MEMO_LONGEST:
            if len(_STYLE_MEMO) >= _STYLE_MEMO_SIZE:
                _STYLE_MEMO.clear()
            _STYLE_MEMO[style] = facts
    return facts


# -- pixel shape ---------------------------------------------------------------------------------


# How a sized image is hidden in the usual responsive swap: a media query reveals it on mobile
# (or on desktop), and Outlook's mso-hide:all keeps the other variant out of Outlook.
# visibility:hidden, opacity:0 and off-screen positioning have no such use.
_SWAP_HIDING = frozenset(
    {"display:none", "max-height:0", "max-width:0", "zero-size", "hidden", "mso-hide:all"}
)


def pixel_shape(get: Getter, style: StyleFacts, hidden_by: str | None = None) -> str | None:
    """Why an element that loads an image looks like a pixel (`tiny`, `display:none`, …) from
    its attributes and its style, or from `hidden_by`: how an enclosing element hides it. None
    for a content image (or background)."""
    # CSS sizes win over the width/height attributes; `auto` in CSS leaves them standing.
    width = style.width if style.width is not None else size(get("width"))
    height = style.height if style.height is not None else size(get("height"))
    if tiny(width, height):
        return "tiny"
    own = style.hides or ("hidden" if get("hidden") is not None else None)
    reason = own or hidden_by
    if reason is None:
        return None
    if (width is not None or height is not None) and reason in _SWAP_HIDING:
        # A sized image (any given size not tiny) hidden by display:none, a zero max-height or
        # max-width, a clipped zero-size wrapper or mso-hide:all is a mobile/desktop variant,
        # not a beacon.
        return None
    return reason if own else f"inside {reason} element"


# -- <style> rules ---------------------------------------------------------------------------------
# Applied only where a document has a `<style>` with a rule that can hide or shrink an element or
# loads something (`_Prepared.positive`); the other rules that set the same properties are then
# matched too, but kept only for the elements the first ones matched (the cascade: specificity,
# order, !important, the style attribute). Lexbor matches the selectors, in C.

# Properties that decide whether an element, or what it contains, is shown, and its size.
_LAYOUT_PROPS = frozenset(
    {
        "display", "visibility", "opacity", "mso-hide", "max-height", "max-width", "position",
        "left", "top", "right", "overflow", "overflow-x", "overflow-y", "width", "height",
    }
)  # fmt: skip
_MOST_SELECTIONS = 500
"""Selectors matched per document at most (each walks the tree in C): bounds hostile sheets."""


# A rule counts for the sheet only when it sets one of _LAYOUT_PROPS or loads something
# (`_prepared_sheet` passes over the others). Without a CSS escape in its block, a declaration's
# name is its text as written, lower-cased, so a rule setting one of them holds that name in its
# lower-cased block; and what loads is found by css_urls only past its gate (`url`, `@import` or
# `image-set` in the lower-cased text). A block without a backslash that holds none of these
# texts (most: fonts, colours, padding) thus makes no rule that counts, and is not parsed.
# (str.lower maps characters one by one, Greek capital sigma aside: none of these holds one.)
_COUNTS_IN_BLOCK = (
    "display", "visibility", "opacity", "mso-hide", "position", "left", "top", "right",
    "overflow", "width", "height", "url", "@import", "image-set",
)  # fmt: skip


def _block_may_count_python(body: str) -> bool:
    """Can a rule with this declaration block count for the sheet (see above)? The reference
    for lexwalk's extension's `block_may_count` (one pass in C, where it is built)."""
    if "\\" in body:
        return True
    lowered = body.lower()
    # A loop, not any() of a generator: ~30% fewer instructions (a block a rule, ~8 a message).
    for text in _COUNTS_IN_BLOCK:  # noqa: SIM110
        if text in lowered:
            return True
    return False


def _block_test() -> Callable[[str], bool]:
    """The block test: lexwalk's extension's where it is built (looked up at the first sheet,
    not at import), else the Python."""
    global _block_may_count
    if _block_may_count is None:
        found: Callable[[str], bool] | None = _extension_function("block_may_count")
        _block_may_count = found or _block_may_count_python
    return _block_may_count


_block_may_count: Callable[[str], bool] | None = None


class _Prepared(NamedTuple):
    rule: StyleRule
    layout: tuple[tuple[str, str, bool], ...]  # (property, value, !important) of _LAYOUT_PROPS
    positive: bool  # it may hide or shrink what it matches, or it loads something


class _PreparedSheet(NamedTuple):
    rules: tuple[_Prepared, ...]
    plain_urls: dict[str, int]  # url -> loads of it in rules whose selectors are all plain


_SHEET_MEMO: dict[str, _PreparedSheet] = {}
_SHEET_MEMO_SIZE = 64
_SHEET_MEMO_LONGEST = 200_000


def _prepared_sheet(css: str) -> _PreparedSheet:
    sheet = _SHEET_MEMO.get(css)
    if sheet is not None:
        return sheet
    prepared: list[_Prepared] = []
    plain_urls: dict[str, int] = {}
    seen_bodies: set[int] = set()
    # The rules of one selector list share their declarations (one dict): what they set is read
    # once for all of them.
    read: dict[int, tuple[tuple[tuple[str, str, bool], ...], bool]] = {}
    for rule in style_rules(css, _block_may_count or _block_test()) if may_hide(css) else ():
        body = id(rule.declarations)
        if rule.urls and rule.whole_list and body not in seen_bodies:
            seen_bodies.add(body)
            for url in rule.urls:
                plain_urls[url] = plain_urls.get(url, 0) + 1
        known = read.get(body)
        if known is None:
            layout = tuple(
                (prop, value, important)
                for prop, (value, important) in rule.declarations.items()
                if prop in _LAYOUT_PROPS
            )
            positive = False
            if layout or rule.urls:
                decl = {prop: value for prop, value, _important in layout}
                positive = bool(rule.urls) or hides(decl) is not None
                positive = positive or tiny(size(decl.get("width")), size(decl.get("height")))
            known = read[body] = (layout, positive)
        layout, positive = known
        if not layout and not rule.urls:
            continue
        prepared.append(_Prepared(rule, layout, positive))
    sheet = _PreparedSheet(tuple(prepared), plain_urls)
    if len(css) <= _SHEET_MEMO_LONGEST:
        if len(_SHEET_MEMO) >= _SHEET_MEMO_SIZE:
            _SHEET_MEMO.clear()
        _SHEET_MEMO[css] = sheet
    return sheet


Cascade = dict[str, tuple[tuple[bool, bool, tuple[int, int, int], int], str]]
"""property -> ((!important, from the style attribute, specificity, order), value)."""


class Sheet(NamedTuple):
    styles: dict[int, Cascade]
    """Layout declarations of `<style>` rules, by the element (mem_id) they apply to."""
    url_rules: list[tuple[tuple[str, ...], list[int], str]]
    """What each rule that loads something loads, the elements (mem_id) it applies to, and its
    selector."""
    plain_urls: dict[str, int]
    """How often each URL of the stylesheets appears in rules guard applies."""


def document_sheet(doc: LexborHTMLParser) -> Sheet | None:
    """The `<style>` rules of a document, applied to its elements; None when no rule can make
    anything a pixel (most documents: the walk then reads inline styles only)."""
    # Lexbor's getElementsByTagName: the same elements as the selector `style` (in SVG too,
    # tests/test_css.py), without the selector engine.
    elements = doc.tags("style")
    if not elements:
        return None
    rules: list[_Prepared] = []
    plain_urls: dict[str, int] = {}
    for element in elements:
        css = element.text(deep=True)
        if not css:
            continue
        sheet = _prepared_sheet(css)
        rules.extend(sheet.rules)
        for url, n in sheet.plain_urls.items():
            plain_urls[url] = plain_urls.get(url, 0) + n
    if not any(p.positive for p in rules):
        return None
    styles: dict[int, Cascade] = {}
    url_rules: list[tuple[tuple[str, ...], list[int], str]] = []
    budget = _MOST_SELECTIONS

    def apply(order: int, prepared: _Prepared, only: dict[int, Cascade] | None) -> list[int]:
        rule = prepared.rule
        try:
            nodes = doc.css(rule.selector)
        except Exception:  # noqa: BLE001 - a selector Lexbor refuses matches nothing
            return []
        ids: list[int] = []
        for node in nodes:
            mem_id = node.mem_id
            if only is not None and mem_id not in only:
                continue
            ids.append(mem_id)
            cascade = styles.setdefault(mem_id, {})
            for prop, value, important in prepared.layout:
                key = (important, False, rule.specificity, order)
                earlier = cascade.get(prop)
                if earlier is None or earlier[0] < key:
                    cascade[prop] = (key, value)
        return ids

    for order, prepared in enumerate(rules):
        if prepared.positive:
            if budget <= 0:
                for url in prepared.rule.urls:
                    plain_urls[url] = -1  # not applied: never a pixel by the sheet
                continue
            budget -= 1
            ids = apply(order, prepared, None)
            if prepared.rule.urls:
                url_rules.append((prepared.rule.urls, ids, prepared.rule.selector))
    if styles:
        matched = dict(styles)
        for order, prepared in enumerate(rules):
            if not prepared.positive and budget > 0:
                budget -= 1
                apply(order, prepared, matched)
    return Sheet(styles, url_rules, plain_urls)


def cascaded_facts(style: str | None, cascade: Cascade) -> StyleFacts:
    """An element's facts from the `<style>` rules that match it and its style attribute."""
    merged = dict(cascade)
    urls: tuple[str, ...] = ()
    if style:
        for prop, (value, important) in weighted_declarations(style).items():
            key = (important, True, (0, 0, 0), 0)
            earlier = merged.get(prop)
            if earlier is None or earlier[0] < key:
                merged[prop] = (key, value)
        urls = style_facts(style).urls
    return _facts({prop: value for prop, (_key, value) in merged.items()}, urls)


def sheet_url_shapes(
    sheet: Sheet, shapes: dict[int, str], all_urls: dict[str, int]
) -> dict[str, str]:
    """url -> pixel shape, for the URLs of `<style>` rules that only pixel-shaped elements load:
    every rule holding the URL is applied, matches something, and matches pixels only (and the
    URL appears nowhere else in the stylesheets: `all_urls` counts every appearance)."""
    found: dict[str, str] = {}
    refused: set[str] = set()
    for urls, ids, _selector in sheet.url_rules:
        first = None
        for mem_id in ids:
            shape = shapes.get(mem_id)
            if not shape:
                first = None
                break
            first = first or shape
        for url in urls:
            if first is None:
                if ids:
                    refused.add(url)
            else:
                found.setdefault(url, first)
    return {
        url: shape
        for url, shape in found.items()
        if url not in refused and sheet.plain_urls.get(url) == all_urls.get(url)
    }
