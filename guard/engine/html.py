"""The one definition of what a mail client would load, and link to, when it displays HTML.

`element_refs()` says, for one element given as a tag name and an attribute getter, which of
its attributes make a renderer load something, which are links, and whether the load is an image.
The document is read the way a mail client reads it: by the WHATWG HTML5 parsing algorithm that
every browser engine follows (Lexbor, through selectolax). Content after `</html>` lands in the
body, misplaced table content is foster-parented out of the table, exactly as the client renders
it. The scan (here) and cleaning (guard/clean/html.py) walk the same Lexbor tree with the same
`element_refs`, so what is found is exactly what gets stripped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import NamedTuple
from urllib.parse import unquote

from selectolax.lexbor import LexborHTMLParser, LexborNode

from guard.engine.css import (
    StyleRule,
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
from guard.engine.nested import (
    CSS_TYPES,
    HTML_TYPES,
    NESTED_BUDGET,
    NESTED_DEPTH,
    NESTING_ATTRS,
    SVG_TYPES,
    Cids,
    cid_of,
    decode_data_url,
    xml_stylesheet_hrefs,
)
from guard.engine.urls import resolve

Getter = Callable[[str], str | None]

# Attributes that load a resource, per element, and whether that resource is an image (a possible
# pixel). Tag names are lower-case (the walk lower-cases SVG's camelCase `feImage`).
LOAD_ATTRS: dict[str, tuple[tuple[str, bool], ...]] = {
    "img": (("src", True), ("lowsrc", True), ("dynsrc", True)),
    "iframe": (("src", False),),
    "frame": (("src", False),),
    "embed": (("src", False), ("code", False)),
    "object": (("data", False), ("movie", False)),
    "audio": (("src", False),),
    "video": (("src", False), ("poster", True)),
    "source": (("src", False),),
    "track": (("src", False),),
    "script": (("src", False), ("href", False), ("xlink:href", False)),  # SVG's <script href>
    "image": (("href", True), ("xlink:href", True), ("src", True)),
    "feimage": (("href", True), ("xlink:href", True)),
    "use": (("href", False), ("xlink:href", False)),
    # Internet Explorer's background sound; Tutanota's sanitizer test counts `<figure src>`.
    "bgsound": (("src", False),),
    "figure": (("src", True),),
    # The HTML5 appcache manifest (fetched by browsers until its removal: Chromium 95, Firefox 84).
    "html": (("manifest", False),),
    # The rest from cure53's HTTPLeaks list (github.com/cure53/HTTPLeaks, leak.html): SVG fonts,
    # Firefox's context-menu icons, Chromium's portals, Internet Explorer's element behaviours
    # (`<import implementation>`) and XML data islands.
    "font-face-uri": (("href", False), ("xlink:href", False)),
    "menuitem": (("icon", True),),
    "portal": (("src", False),),
    "import": (("implementation", False),),
    "xml": (("src", False),),
    # VML, which Outlook's Word renderer draws (also outside conditional comments), with and
    # without the `v:` prefix (a default namespace leaves it out).
    "v:fill": (("src", True),),
    "v:stroke": (("src", True),),
    "v:image": (("src", True),),
    "v:imagedata": (("src", True), ("o:href", True)),
    "v:vmlframe": (("src", False),),
    "fill": (("src", True),),
    "stroke": (("src", True),),
    "imagedata": (("src", True), ("o:href", True)),
    "vmlframe": (("src", False),),
}
# SVG presentation attributes that take a url() (an external paint server, mask, clip path,
# filter, marker or cursor; Chromium fetches fill, mask and cursor: tests/test_httpleaks.py),
# read only on SVG elements that draw or group; a fragment-only `url(#id)` is a reference inside
# the document and loads nothing.
_PAINT_ATTRS = (
    "fill", "stroke", "mask", "clip-path", "filter", "cursor", "marker-start", "marker-mid",
    "marker-end",
)  # fmt: skip
_SVG_PAINTED = frozenset(
    {
        "svg", "g", "rect", "circle", "ellipse", "line", "polyline", "polygon", "path", "text",
        "tspan", "textpath", "use", "symbol", "switch", "foreignobject", "marker", "pattern",
        "mask", "clippath",
    }
)  # fmt: skip
# SVG animation (SMIL runs without script): `<set attributeName=href to=URL>` on an `<image>`
# makes it load the URL.
_ANIMATIONS = frozenset({"set", "animate"})
SRCSET_ELEMENTS = frozenset({"img", "source"})
LINK_ELEMENTS = frozenset({"a", "area"})
_OWN_RULES = frozenset({"link", "input", "object", "applet", "meta", "base", "param"})
# see element_refs
# <link rel=...> values that make a renderer fetch or connect to the href.
LOADING_RELS = frozenset(
    {
        "stylesheet",
        "icon",
        "shortcut",
        "apple-touch-icon",
        "apple-touch-icon-precomposed",
        "mask-icon",
        "preload",
        "prefetch",
        "dns-prefetch",
        "preconnect",
        "prerender",
        "modulepreload",
        "manifest",
        "import",  # HTML imports (Chromium until 73)
        "subresource",  # Chromium's early prefetch (until 49)
        "apple-touch-startup-image",  # Safari
        "p3pv1",  # Internet Explorer's P3P privacy policy
        # Gecko prefetches `rel=next` as it does `rel=prefetch` (MDN, "Link prefetching FAQ").
        "next",
        # OpenSearch descriptors (and feeds, see _FEED_TYPES): the Email Privacy Tester's list
        # counts clients that fetch them.
        "search",
    }
)
# `<link rel=alternate type=…>` of a feed (autodiscovery); other alternates (hreflang) load nothing.
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
# `<param name=… value=URL>` names that plugins (Flash, media players) fetched.
_PARAM_URL_NAMES = frozenset(
    {"movie", "src", "url", "filename", "data", "code", "base", "dataurl"}  # dataurl: IE's TDC
)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\";]+)", re.I)
_VML_REF = re.compile(
    r"<\s*(v:fill|v:image|v:imagedata|v:roundrect|v:rect|img|a)\b[^>]*?\b(src|href)\s*=\s*"
    r"(?:\"([^\"]*)\"|'([^']*)')",
    re.I,
)


_VML_TAGS = frozenset({"v:fill", "v:image", "v:imagedata", "v:roundrect", "v:rect", "img", "a"})


class Ref(NamedTuple):
    """One reference to a URL in a document."""

    url: str
    """As written (entities decoded), not yet resolved against `<base href>`."""
    element: str
    """Where: `img[src]`, `td[background]`, `div[style] url()`, `<style> url()`, `a[href]`…"""
    load: bool
    """True: a renderer loads it when displaying; False: a link the reader may click."""
    image: bool = False


_SRCSET_URL = re.compile(r"[\s,]*(\S*)")
_SRCSET_DESCRIPTORS = re.compile(r"(?:[^,(]|\([^)]*\)?)*,?")


def srcset_urls(value: str) -> list[str]:
    """The candidate URLs of a srcset, split as the HTML standard does.

    A candidate URL is a run of non-whitespace (commas inside it stay), a trailing comma ends it,
    and descriptors run to the next comma outside parentheses.
    """
    urls: list[str] = []
    pos, n = 0, len(value)
    while pos < n:
        m = _SRCSET_URL.match(value, pos)
        assert m is not None  # the pattern matches the empty string
        url, pos = m.group(1), m.end()
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            d = _SRCSET_DESCRIPTORS.match(value, pos)
            pos = d.end() if d else n
        if url:
            urls.append(url)
        elif m.end() == m.start():
            break
    return urls


def element_refs(tag: str, get: Getter) -> list[Ref]:
    """Every URL reference one element makes, by the single definition used everywhere."""
    refs: list[Ref] = []
    for attr, image in LOAD_ATTRS.get(tag, ()):
        value = get(attr)
        if value:
            refs.append(Ref(value, f"{tag}[{attr}]", True, image))
    if tag in SRCSET_ELEMENTS:
        srcset = get("srcset")
        if srcset:
            element = f"{tag}[srcset]"
            refs.extend(Ref(url, element, True, True) for url in srcset_urls(srcset))
    if tag in LINK_ELEMENTS:
        href = get("href") or get("xlink:href")
        if href:
            refs.append(Ref(href, f"{tag}[href]", False))
    elif tag in _OWN_RULES:
        refs.extend(_own_rule_refs(tag, get))
    elif tag in _SVG_PAINTED:
        for attr in _PAINT_ATTRS:
            value = get(attr)
            if value and "url" in value.lower():
                refs.extend(Ref(url, f"{tag}[{attr}]", True) for url in css_urls(value))
    elif tag in _ANIMATIONS:
        name = get("attributeName") or get("attributename")  # the tree keeps SVG's camelCase
        if (name or "").strip().lower() in ("href", "xlink:href"):
            for attr in ("from", "to", "values"):
                for url in (get(attr) or "").split(";" if attr == "values" else None):
                    if url.strip() and not url.strip().startswith("#"):
                        refs.append(Ref(url.strip(), f"{tag}[{attr}]", True, True))
    background = get("background")
    if background:
        refs.append(Ref(background, f"{tag}[background]", True, True))
    style = get("style")
    if style:
        urls = style_facts(style).urls
        if urls:
            element = f"{tag}[style] url()"
            refs.extend(Ref(url, element, True, True) for url in urls)
    return refs


def _own_rule_refs(tag: str, get: Getter) -> list[Ref]:
    """The references of the elements with rules of their own (`_OWN_RULES`)."""
    refs: list[Ref] = []
    if tag == "link":
        href = get("href")
        rels = set((get("rel") or "").lower().split())
        loading = rels & LOADING_RELS
        feed = (get("type") or "").strip().lower().startswith(_FEED_TYPES)
        if not loading and "alternate" in rels and feed:
            loading = {"alternate"}
        if href and loading:
            refs.append(Ref(href, f"link[rel={' '.join(sorted(rels))}]", True, "icon" in rels))
        if loading and "preload" in rels:
            # `<link rel=preload as=image imagesrcset=…>` preloads a srcset candidate.
            srcset = get("imagesrcset")
            if srcset:
                refs.extend(
                    Ref(url, "link[imagesrcset]", True, True) for url in srcset_urls(srcset)
                )
    elif tag == "input":
        src = get("src")
        if src and (get("type") or "").strip().lower() == "image":
            refs.append(Ref(src, "input[type=image]", True, True))
    elif tag == "object":
        codebase = get("codebase")
        if codebase:
            refs.append(Ref(codebase, "object[codebase]", True))
    elif tag == "applet":
        codebase = get("codebase") or ""
        for attr in ("code", "archive", "object"):
            value = get(attr)
            for item in (value or "").replace(",", " ").split():
                # The codebase itself is only the base for these, never fetched on its own.
                url = resolve(codebase, item) if codebase else item
                refs.append(Ref(url, f"applet[{attr}]", True))
    elif tag == "meta":
        if (get("http-equiv") or "").strip().lower() == "refresh":
            found = _REFRESH_URL.search(get("content") or "")
            if found:
                refs.append(Ref(found.group(1).strip(), "meta[http-equiv=refresh]", True))
    elif tag == "base":
        href = get("href")
        if href:
            refs.append(Ref(href, "base[href]", True))
    elif tag == "param":
        value = get("value")
        if value and (get("name") or "").strip().lower() in _PARAM_URL_NAMES:
            refs.append(Ref(value, "param[value]", True))
    return refs


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
_NO_STYLE = StyleFacts(None, None, (), None, None)


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


def conditional_comment_refs(text: str) -> Iterator[Ref]:
    """Outlook reads `<!--[if mso]>…<![endif]-->`: VML backgrounds and buttons hide there."""
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
    # Whatever else loads in there, by the same definition (a stylesheet, an `<iframe>`, a
    # `<style>` url(): HTTPLeaks' conditional-comment case).
    for tag, attrs in markup_tags(text):
        if tag not in _VML_TAGS:
            for ref in element_refs(tag, attrs.get):
                if ref.load:
                    yield ref._replace(element=f"<!--[if mso]> {ref.element}")
    if "<" in text:
        for block in _STYLE_BLOCK.finditer(text):
            for url in css_urls(block.group(1)):
                yield Ref(url, "<!--[if mso]> <style> url()", True, True)


# -- pixel shape ---------------------------------------------------------------------------------


# How a sized image is hidden in the usual responsive swap: a media query reveals it on mobile
# (or on desktop), and Outlook's mso-hide:all keeps the other variant out of Outlook.
# visibility:hidden, opacity:0 and off-screen positioning have no such use.
_SWAP_HIDING = frozenset(
    {"display:none", "max-height:0", "max-width:0", "zero-size", "hidden", "mso-hide:all"}
)
# Elements that load an image but have no box of their own to size or hide.
_NO_BOX = frozenset({"link", "feimage"})


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
    for rule in style_rules(css) if may_hide(css) else ():
        layout = tuple(
            (prop, value, important)
            for prop, (value, important) in rule.declarations.items()
            if prop in _LAYOUT_PROPS
        )
        if rule.urls and rule.whole_list and id(rule.declarations) not in seen_bodies:
            seen_bodies.add(id(rule.declarations))
            for url in rule.urls:
                plain_urls[url] = plain_urls.get(url, 0) + 1
        if not layout and not rule.urls:
            continue
        decl = {prop: value for prop, value, _important in layout}
        positive = bool(rule.urls) or hides(decl) is not None
        positive = positive or tiny(size(decl.get("width")), size(decl.get("height")))
        prepared.append(_Prepared(rule, layout, positive))
    sheet = _PreparedSheet(tuple(prepared), plain_urls)
    if len(css) <= _SHEET_MEMO_LONGEST:
        if len(_SHEET_MEMO) >= _SHEET_MEMO_SIZE:
            _SHEET_MEMO.clear()
        _SHEET_MEMO[css] = sheet
    return sheet


Cascade = dict[str, tuple[tuple[bool, bool, tuple[int, int, int], int], str]]
"""property -> ((!important, from the style attribute, specificity, order), value)."""


class _Sheet(NamedTuple):
    styles: dict[int, Cascade]
    """Layout declarations of `<style>` rules, by the element (mem_id) they apply to."""
    url_rules: list[tuple[tuple[str, ...], list[int], str]]
    """What each rule that loads something loads, the elements (mem_id) it applies to, and its
    selector."""
    plain_urls: dict[str, int]
    """How often each URL of the stylesheets appears in rules guard applies."""


def _document_sheet(doc: LexborHTMLParser) -> _Sheet | None:
    """The `<style>` rules of a document, applied to its elements; None when no rule can make
    anything a pixel (most documents: the walk then reads inline styles only)."""
    elements = doc.css("style")
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
    return _Sheet(styles, url_rules, plain_urls)


def _cascaded_facts(style: str | None, cascade: Cascade) -> StyleFacts:
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


def _sheet_shapes(
    sheet: _Sheet, shapes: dict[int, str], all_urls: dict[str, int]
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


# -- the walk used by the scan -------------------------------------------------------------------


class Occurrence(NamedTuple):
    """A reference resolved against the document's base, with its pixel shape for images."""

    url: str
    element: str
    load: bool
    image: bool
    shape: str | None  # None, "tiny", "display:none", …


def parse_document(html: str) -> LexborHTMLParser | None:
    """HTML text -> Lexbor's HTML5 document (None for an empty one). Never an exception; NULs
    are handled as the HTML5 tokenizer handles them (U+FFFD in attribute values)."""
    if not html.strip():
        return None
    return LexborHTMLParser(html)


# A tag runs to its `>` or to the end of the text: one that never ends is read once (it makes
# no element), not rescanned from each of its `<` (quadratic on `<a<a<a…` without a `>`).
_TAG = re.compile(r"<([A-Za-z][\w:-]*+)([^>]*+)(>|\Z)")
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def markup_tags(html: str, pattern: re.Pattern[str] = _TAG) -> Iterator[tuple[str, dict[str, str]]]:
    """Each start tag's name and attributes (entities decoded) read by regex, without a tree."""
    for m in pattern.finditer(html):
        if not m.group(3):
            continue  # end of text inside the tag: no element
        attrs: dict[str, str] = {}
        for a in _ATTR.finditer(m.group(2)):
            value = a.group(2) if a.group(2) is not None else a.group(3) or a.group(4) or ""
            attrs.setdefault(a.group(1).lower(), unescape(value))
        yield m.group(1).lower(), attrs


def tag_scan_refs(html: str) -> Iterator[tuple[str, dict[str, str], Ref]]:
    """Every element's references read straight from the markup, without a tree (the reading
    of a document whose HTML5 parse would cost too much, see `parse_is_bounded`): the same
    element_refs, attributes parsed by regex."""
    for tag, attrs in markup_tags(html):
        for ref in element_refs(tag, attrs.get):
            yield tag, attrs, ref


# -- nested documents ------------------------------------------------------------------------------


class Nest:
    """Where a scan stands among nested documents: how deep, how many characters of nested
    documents may still be parsed (shared by the whole message part), the message's cid parts."""

    __slots__ = ("budget", "cids", "depth")

    def __init__(self, cids: Cids | None = None, depth: int = 0, budget: list[int] | None = None):
        self.cids = cids
        self.depth = depth
        self.budget = budget if budget is not None else [NESTED_BUDGET]

    def deeper(self) -> Nest:
        return Nest(self.cids, self.depth + 1, self.budget)


class NestedDocument(NamedTuple):
    where: str
    """`iframe[srcdoc]`, `iframe[src] data:`, `link[href] cid:`…"""
    attr: str
    media_type: str
    text: str


def nested_documents(tag: str, get: Getter, cids: Cids | None = None) -> list[NestedDocument]:
    """The documents an element holds: an iframe's `srcdoc`, a `data:` URL or a `cid:` part that
    a renderer reads as HTML or SVG (frames, objects, embeds; SVG for images) or as a stylesheet
    (`<link rel=stylesheet>`)."""
    found: list[NestedDocument] = []
    if tag == "iframe":
        srcdoc = get("srcdoc")
        if srcdoc and srcdoc.strip():
            found.append(NestedDocument("iframe[srcdoc]", "srcdoc", "text/html", srcdoc))
    for attr in NESTING_ATTRS.get(tag, ()):
        value = get(attr)
        if not value:
            continue
        head = value.lstrip()[:5].lower()
        if head == "data:":
            data = decode_data_url(value)
            if data is None:
                continue
            media, text, where = data.media_type, data.text, f"{tag}[{attr}] data:"
        elif head[:4] == "cid:" and cids:
            cid = cid_of(value)
            part = cids.get(cid) if cid else None
            if part is None:
                continue
            (media, text), where = part, f"{tag}[{attr}] cid:"
        else:
            continue
        if tag == "link":
            rels = (get("rel") or "").lower().split()
            wanted: frozenset[str] = CSS_TYPES if "stylesheet" in rels else frozenset()
        elif tag == "img":
            wanted = SVG_TYPES
        else:
            wanted = HTML_TYPES | SVG_TYPES
        if media in wanted:
            found.append(NestedDocument(where, attr, media, text))
    return found


def _nested_occurrences(tag: str, get: Getter, nest: Nest) -> list[Occurrence]:
    out: list[Occurrence] = []
    for where, _attr, media, text in nested_documents(tag, get, nest.cids):
        if media in CSS_TYPES:
            out.extend(
                Occurrence(url, f"{where} > url()", True, True, None) for url in css_urls(text)
            )
            continue
        if media in SVG_TYPES:
            out.extend(
                Occurrence(href, f"{where} > <?xml-stylesheet?>", True, False, None)
                for href in xml_stylesheet_hrefs(text)
            )
        inner = scan_nested(text, nest)
        out.extend(occ._replace(element=f"{where} > {occ.element}") for occ in inner)
    return out


def scan_nested(text: str, nest: Nest) -> list[Occurrence]:
    """A nested document's loads and links: parsed while depth and budget allow, else read by
    the markup scan (linear, and nothing nested further is opened)."""
    if nest.depth >= NESTED_DEPTH or nest.budget[0] < len(text):
        out = _scan_markup(text)
        if _may_nest(text):
            # What is nested deeper still loads in a browser: every absolute URL left in it,
            # through further levels of escaping, counts as a load (hostile mail only).
            seen = {o.url for o in out}
            out.extend(
                Occurrence(url, "nested too deep", True, True, None)
                for url in deep_urls(text)
                if url not in seen
            )
        return out
    nest.budget[0] -= len(text)
    return scan_html(text, nest=nest.deeper())


# The header is bounded: `data:data:data:…` without a comma costs each start 200 characters at most.
_BASE64_DATA = re.compile(r"data:([^,\s\"'<>]{0,200}+),[A-Za-z0-9+/=\s]*+", re.I)


def _decoded_data(m: re.Match[str]) -> str:
    if not m.group(1).lower().endswith("base64"):
        return m.group(0)
    data = decode_data_url(m.group(0))
    return data.text if data is not None else ""


_DEEP_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+[^\s\"'<>&%]*", re.I)
_DEEP_PASSES = 16


def deep_urls(text: str) -> list[str]:
    """Absolute URLs in `text` and in what it escapes (entities, percent-encoding), a bounded
    number of levels deep: linear in `text` for each level, each level no longer than the last."""
    found: dict[str, None] = {}
    for _ in range(_DEEP_PASSES):
        for m in _DEEP_URL.finditer(text):
            found.setdefault(m.group(0).rstrip(".,;)"), None)
        unescaped = unescape(text)
        if "%" in unescaped:
            unescaped = unquote(unescaped)
        if "base64" in unescaped:
            # Each base64 data: URL in place of its content: never longer than the URL was.
            unescaped = _BASE64_DATA.sub(_decoded_data, unescaped)
        if unescaped == text:
            break
        text = unescaped
    return list(found)


def _inline_src(get: Getter) -> bool:
    """Can an `<img>` hold a document (a `data:` or `cid:` SVG)? Most load over http."""
    src = get("src")
    return bool(src) and src.lstrip()[:4].lower() in ("data", "cid:")  # type: ignore[union-attr]


def _is_nested(element: str) -> bool:
    """A nested occurrence that keeps its own resolution: an `about:srcdoc` document resolves
    against the parent's base, a `data:` or `cid:` document has none."""
    return " > " in element and not element.startswith("iframe[srcdoc] > ")


# `<image>` start tags: HTML5 reads one as `<img>`; Lexbor drops one met directly in a table, where
# Chromium foster-parents the image out of the table and loads it.
_IMAGE_TAG = re.compile(r"<(image)\b([^>]*+)(>|\Z)", re.I)
# Character classes, not re.I: the regex engine then searches for the literal `<` (~30% faster).
_IMAGE_START = re.compile(r"<[iI][mM][aA][gG][eE]")
DROPPED_IMAGE = "image[src] (in a table)"


def dropped_images(html: str, present: set[str]) -> list[Ref]:
    """`<image src>` references the tree does not hold (`present`: the URLs it loads, as
    written), which a browser loads."""
    if _IMAGE_START.search(html) is None:
        return []
    out = []
    for _tag, attrs in markup_tags(html, _IMAGE_TAG):
        src = (attrs.get("src") or "").strip()
        if src and src not in present:
            out.append(Ref(src, DROPPED_IMAGE, True, True))
    return out


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


def document_base(doc: LexborHTMLParser) -> str | None:
    """The first absolute http(s) `<base href>`: relative URLs resolve against it."""
    for el in doc.css("base[href]"):
        href = el.attributes.get("href")
        if href and href.strip().lower().startswith(("http://", "https://")):
            return href.strip()
    return None


Parsed = dict[str, LexborHTMLParser]
"""HTML text -> its parsed document, handed from the scan to a rewrite of the same text."""


def scan_html(
    html: str, keep: Parsed | None = None, cids: Cids | None = None, nest: Nest | None = None
) -> list[Occurrence]:
    """Every load and link of an HTML document, in document order, resolved against its base,
    with those of the documents nested in it (see `nested_documents`).

    `keep`: where to leave the parsed document (not for one read from the markup), so that
    cleaning rewrites the tree detection read instead of parsing the text again. `cids`: the
    message's stylesheet and SVG parts by Content-ID."""
    if nest is None:
        nest = Nest(cids)
    if not parse_is_bounded(html):
        return _scan_markup(html, nest)
    doc = parse_document(html)
    if doc is None:
        return []
    if keep is not None:
        keep[html] = doc
    out = _scan_tree(doc, nest)
    if _IMAGE_START.search(html) is None:
        return out
    dropped = dropped_images(html, {o.url for o in out} | {o.url.strip() for o in out})
    if dropped:
        base = document_base(doc)
        out.extend(Occurrence(resolve(base, r.url), r.element, True, True, None) for r in dropped)
    return out


def may_reference(attrs: dict[str, str | None]) -> bool:
    """Can an element with these attributes reference a URL at all (see `element_refs`)?"""
    if not _URL_ATTRS.isdisjoint(attrs):
        return True
    style = attrs.get("style")
    return bool(style and style_facts(style).urls)


_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)(?:</style\s*>|$)", re.I | re.S)


def _scan_markup(html: str, nest: Nest | None = None) -> list[Occurrence]:
    refs = list(tag_scan_refs(html))
    base = next((r.url for _t, _a, r in refs if r.element == "base[href]"), None)
    base = base if base and base.lower().startswith(("http://", "https://")) else None
    out: list[Occurrence] = []
    for tag, attrs, ref in refs:
        shape = None
        if ref.image and tag not in _NO_BOX:
            shape = pixel_shape(attrs.get, style_facts(attrs.get("style") or ""))
        url = ref.url if ref.element == "base[href]" else resolve(base, ref.url)
        out.append(Occurrence(url, ref.element, ref.load, ref.image, shape))
    if nest is not None and nest.depth < NESTED_DEPTH and _may_nest(html):
        for tag, attrs in markup_tags(html):
            if tag in NESTING_ATTRS:
                for occ in _nested_occurrences(tag, attrs.get, nest):
                    url = occ.url if _is_nested(occ.element) else resolve(base, occ.url)
                    out.append(occ._replace(url=url))
    for block in _STYLE_BLOCK.finditer(html):
        for url in css_urls(block.group(1)):
            out.append(Occurrence(resolve(base, url), "<style> url()", True, True, None))
    return out


def _may_nest(html: str) -> bool:
    lowered = html.lower()
    return "srcdoc" in lowered or "data:" in lowered or "cid:" in lowered


def _hidden_by(hidden: list[tuple[int, str]], visible: bool) -> str | None:
    """How the hidden elements around one (outermost first) hide it: the outermost reason
    still in force. `visibility:visible` (on an element between, or on the element itself,
    `visible`) shows again what a visibility:hidden ancestor hid; nothing undoes the others."""
    by_visibility = by_other = -1
    for at, (_after, how) in enumerate(hidden):
        if how == "visible":
            by_visibility = -1
        elif how == "visibility:hidden":
            if by_visibility < 0:
                by_visibility = at
        elif by_other < 0:
            by_other = at
    if visible:
        by_visibility = -1
    found = [at for at in (by_visibility, by_other) if at >= 0]
    return hidden[min(found)][1] if found else None


def _after_subtree(el: LexborNode) -> int:
    """The id (mem_id) of the first element or comment after `el`'s subtree in document order,
    as the walk meets it; 0 when the subtree runs to the end of the document."""
    node: LexborNode | None = el
    while node is not None:
        following = node.next
        while following is not None and not (
            following.is_element_node or following.is_comment_node
        ):
            following = following.next
        if following is not None:
            return following.mem_id
        node = node.parent
    return 0


def _scan_tree(doc: LexborHTMLParser, nest: Nest | None = None) -> list[Occurrence]:
    root = doc.root
    if root is None:
        return []
    # From the document node: comments may stand before `<html>` and after `</html>`.
    document = root.parent or root
    base: str | None = None
    # The hidden elements the walk is inside, outermost first: (the node that follows the
    # element's subtree in document order, how it hides). Only while it is inside one does the
    # walk ask each node's id, to see whether it has left.
    hidden: list[tuple[int, str]] = []
    out: list[Occurrence] = []
    sheet = _document_sheet(doc)
    styles = sheet.styles if sheet is not None else None
    sheet_loaders: set[int] = set()  # elements a `<style>` rule gives a url() (mem_id)
    sheet_shapes: dict[int, str] = {}  # … and their pixel shapes ("" for none)
    style_loads: list[int] = []  # indexes in `out` of the `<style> url()` loads
    if sheet is not None:
        for _urls, ids, _selector in sheet.url_rules:
            sheet_loaders.update(ids)
    # The hot loop of the scan (~500 elements per newsletter): an element without attributes
    # costs one call; a style is read once per distinct text (style_facts). URLs are resolved
    # after the walk, against the first absolute `<base href>` wherever it stands. `<style>`
    # rules add one look-up per element, only in documents that have rules that can hide.
    for el in document.traverse(include_text=False):
        if hidden:
            node_id = el.mem_id
            while hidden and hidden[-1][0] == node_id:
                hidden.pop()
        tag = el.tag or ""
        if tag == "-comment":
            text = el.comment_content
            if text:
                for ref in conditional_comment_refs(text):
                    out.append(Occurrence(ref.url, ref.element, ref.load, ref.image, None))
            continue
        if tag == "style":
            css = el.text(deep=True)
            if css:
                for url in css_urls(css):
                    style_loads.append(len(out))
                    out.append(Occurrence(url, "<style> url()", True, True, None))
        attrs = el.attributes
        cascade = styles.get(el.mem_id) if styles else None
        if not attrs and cascade is None:
            continue
        style = attrs.get("style")
        if cascade is not None:
            facts = _cascaded_facts(style, cascade)
        else:
            facts = style_facts(style) if style else _NO_STYLE
        # How the hidden elements around this one hide it matters only to an element that
        # loads an image (pixel_shape): read before this element's own hiding is pushed.
        around = len(hidden)
        hiding = "hidden" if "hidden" in attrs else facts.hides_subtree
        if hiding:
            hidden.append((_after_subtree(el), hiding))
        elif hidden and facts.visible:
            hidden.append((_after_subtree(el), "visible"))
        if sheet_loaders and el.mem_id in sheet_loaders:
            if attrs.get("hidden", "") is None:
                attrs["hidden"] = ""
            hidden_by = _hidden_by(hidden[:around], facts.visible) if around else None
            sheet_shapes[el.mem_id] = pixel_shape(attrs.get, facts, hidden_by) or ""
        if not facts.urls and _URL_ATTRS.isdisjoint(attrs):
            continue
        if not tag.islower():
            tag = tag.lower()  # SVG's camelCase names (`feImage`)
        get = attrs.get
        shape: str | None = None
        for ref in element_refs(tag, get):
            url, element, load, image = ref
            if image and shape is None and tag not in _NO_BOX:
                if attrs.get("hidden", "") is None:
                    attrs["hidden"] = ""  # Lexbor gives an attribute without a value as None
                hidden_by = _hidden_by(hidden[:around], facts.visible) if around else None
                shape = pixel_shape(get, facts, hidden_by) or ""
            if element == "base[href]" and base is None:
                href = url.strip()
                if href.lower().startswith(("http://", "https://")):
                    base = href
            out.append(Occurrence(url, element, load, image, (shape or None) if image else None))
        if nest is not None and tag in NESTING_ATTRS and (tag != "img" or _inline_src(get)):
            out.extend(_nested_occurrences(tag, get, nest))
    if sheet_shapes and sheet is not None:
        all_urls: dict[str, int] = {}
        for index in style_loads:
            url = out[index].url
            all_urls[url] = all_urls.get(url, 0) + 1
        by_url = _sheet_shapes(sheet, sheet_shapes, all_urls)
        if by_url:
            for index in style_loads:
                occ = out[index]
                shape = by_url.get(occ.url)
                if shape:
                    out[index] = occ._replace(shape=shape)
    resolved = []
    for occ in out:
        element = occ.element
        url = occ.url if element == "base[href]" or _is_nested(element) else resolve(base, occ.url)
        resolved.append(occ if url is occ.url else occ._replace(url=url))
    return resolved


# Attributes that can reference a URL somewhere (see element_refs); `style` is checked by content.
_URL_ATTRS = frozenset(
    {
        "src", "srcset", "href", "background", "data", "poster", "lowsrc", "dynsrc", "code",
        "archive", "codebase", "object", "http-equiv", "xlink:href", "manifest", "imagesrcset",
        "value", "srcdoc", "movie", "icon", "implementation", "o:href", "to", "from", "values",
        "fill", "stroke", "mask", "clip-path", "filter", "cursor", "marker-start", "marker-mid",
        "marker-end",
    }
)  # fmt: skip


_BLANKS = re.compile(r"\n\s*\n+")
_MARKUP = re.compile(r"<[^>]*>")


def visible_text(html: str) -> str:
    """The text a reader sees in an HTML part (for a preview). Parsing loads nothing and runs
    nothing; a document too costly to parse is shown with its tags cut out instead."""
    doc = parse_document(html) if parse_is_bounded(html) else None
    if doc is None or doc.root is None:
        text = unescape(_MARKUP.sub(" ", html)) if html.strip() else ""
    else:
        for hidden in doc.css("head, title, script, style, template"):
            hidden.decompose()
        for block in doc.css("br, p, div, tr, li, h1, h2, h3, h4, h5, h6, table"):
            block.insert_after("\n")
        text = doc.root.text(deep=True)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
