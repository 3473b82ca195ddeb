"""What a mail client loads, and links to, from one element: the one definition.

`element_refs()` says, for one element given as a tag name and an attribute getter, which of
its attributes make a renderer load something, which are links, and whether the load is an image
(the tables below: `LOAD_ATTRS`, `LOADING_RELS`…, srcset candidates, SVG paint and animation
attributes, inline-style url()s). The same definition reads Outlook's conditional comments
(`conditional_comment_refs`) and markup read without a tree (`markup_tags`, `tag_scan_refs`).
The scan (guard/engine/html.py) and cleaning (guard/clean/html.py) both ask it, so what is found
is exactly what gets stripped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from html import unescape
from typing import NamedTuple

from guard.engine.css import css_urls
from guard.engine.layout import Getter, style_facts
from guard.engine.urls import resolve

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


# LOAD_ATTRS with each attribute's element name (`img[src]`) made once, not for every reference.
_LOAD_ELEMENTS: dict[str, tuple[tuple[str, bool, str], ...]] = {
    tag: tuple((attr, image, f"{tag}[{attr}]") for attr, image in pairs)
    for tag, pairs in LOAD_ATTRS.items()
}
# A Ref made by tuple.__new__ in C: the NamedTuple's own __new__ is a Python function.
_new_ref = tuple.__new__


def element_refs(tag: str, get: Getter) -> list[Ref]:
    """Every URL reference one element makes, by the single definition used everywhere."""
    refs: list[Ref] = []
    for attr, image, element in _LOAD_ELEMENTS.get(tag, ()):
        value = get(attr)
        if value:
            refs.append(_new_ref(Ref, (value, element, True, image)))
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
        refs.append(_new_ref(Ref, (background, f"{tag}[background]", True, True)))
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


# A message repeats its conditional comments (`[if mso]><table><tr><td><![endif]`), and cleaning
# reads each three times (the scan, the rewrite, the check of the rewritten document): each
# distinct text is read once. Refs are tuples: a memo entry is never changed. Bounded in entries
# and length, as the style memo.
_CONDITIONAL_MEMO: dict[str, tuple[Ref, ...]] = {}
_CONDITIONAL_MEMO_SIZE = 1024
_CONDITIONAL_MEMO_LONGEST = 4096


def conditional_comment_refs(text: str) -> tuple[Ref, ...]:
    """Outlook reads `<!--[if mso]>…<![endif]-->`: VML backgrounds and buttons hide there."""
    if not text.lstrip().lower().startswith("[if"):
        return ()
    found = _CONDITIONAL_MEMO.get(text)
    if found is None:
        found = tuple(_conditional_comment_refs(text))
        if len(text) <= _CONDITIONAL_MEMO_LONGEST:
            if len(_CONDITIONAL_MEMO) >= _CONDITIONAL_MEMO_SIZE:
                _CONDITIONAL_MEMO.clear()
            _CONDITIONAL_MEMO[text] = found
    return found


def _conditional_comment_refs(text: str) -> Iterator[Ref]:
    """`conditional_comment_refs` of a conditional comment, read."""
    # Without a `=` no attribute has a value, and only values are read (an empty one is no
    # reference): most of a newsletter's conditional comments open or close table cells.
    if "=" in text:
        yield from _conditional_attribute_refs(text)
    if "<" in text:
        for block in style_blocks(text):
            for url in css_urls(block):
                yield Ref(url, "<!--[if mso]> <style> url()", True, True)


_STYLE_OPEN = re.compile(r"<style\b[^>]*>", re.I)
_STYLE_CLOSE = re.compile(r"</style\s*>", re.I)


def style_blocks(text: str) -> list[str]:
    """The texts of `STYLE_BLOCK.finditer(text)` (group 1), each end found by one search for
    `</style>` instead of STYLE_BLOCK's lazy `.*?`, which tries the end at every character of a
    sheet (~3x the instructions on conditional comments). Without a `</style>` a block runs to
    where `$` first matches: before a final newline, else at the end."""
    found: list[str] = []
    pos = 0
    while (opened := _STYLE_OPEN.search(text, pos)) is not None:
        start = opened.end()
        closed = _STYLE_CLOSE.search(text, start)
        if closed is None:
            found.append(text[start : len(text) - 1 if text.endswith("\n") else len(text)])
            break
        found.append(text[start : closed.start()])
        pos = closed.end()
    return found


def _conditional_attribute_refs(text: str) -> Iterator[Ref]:
    """What the elements of a conditional comment load or link, by their attributes."""
    # Every _VML_REF match holds `src` or `href` (re.I: ASCII case, or `ſ` for `s`, which
    # lower() keeps): the search (its lazy scan of each `<a>` and `<img>`) is left out of the
    # many comments that hold neither, most of them table cells.
    lowered = text.lower()
    if "href" in lowered or "src" in lowered or "\u017f" in text:
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
    # `<style>` url(): HTTPLeaks' conditional-comment case). An element none of whose
    # attributes may reference anything (`may_reference`: a table cell) is not asked.
    # Word's own comments hold hundreds of `<w:LsdException …>` tags with a handful of
    # attributes each, none of which may reference anything: a tag whose attribute names (read
    # from its lower-cased text: lower-casing changes no delimiter, so the names are the ones
    # `markup_tags` lower-cases) hold neither a URL attribute nor `style` is one `may_reference`
    # refuses, and its attributes are not read (~30 us a real newsletter).
    for name, attr_text, end in _TAG.findall(text):
        if not end:
            continue
        tag = name.lower()
        if tag in _VML_TAGS:
            continue
        lowered = attr_text.lower()
        names = _ATTR_NAME.findall(lowered)
        if URL_ATTRS.isdisjoint(names) and ("style" not in names or not _may_load(lowered)):
            continue
        attrs = _tag_attrs(attr_text)
        if may_reference(attrs):
            for ref in element_refs(tag, attrs.get):
                if ref.load:
                    yield ref._replace(element=f"<!--[if mso]> {ref.element}")


def _may_load(lowered: str) -> bool:
    """Can a style attribute in this lower-cased tag text load anything? css_urls finds nothing
    in a text without `url`, `@import`, `image-set` or an escape once lower-cased; the value is
    part of the text as written (lower-casing maps character by character), or holds a `&` when
    entities are decoded into it. A table cell's `style="width:600px"` is then not parsed into
    its style facts (a style in a conditional comment is seldom seen twice: its memo misses)."""
    return (
        "url" in lowered
        or "@import" in lowered
        or "image-set" in lowered
        or "\\" in lowered
        or "&" in lowered
    )


# A tag runs to its `>` or to the end of the text: one that never ends is read once (it makes
# no element), not rescanned from each of its `<` (quadratic on `<a<a<a…` without a `>`).
_TAG = re.compile(r"<([A-Za-z][\w:-]*+)([^>]*+)(>|\Z)")
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


# _ATTR's names alone (its values matched, not captured).
_ATTR_NAME = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""")


def _tag_attrs(text: str) -> dict[str, str]:
    """A start tag's attributes (the text after its name), entities decoded; the first of a name
    wins. By findall (tuples made in C, no match objects): a group that took no part is "" as an
    empty quoted value is, and either way the value is ""."""
    attrs: dict[str, str] = {}
    for name, quoted, single, bare in _ATTR.findall(text):
        value = quoted or single or bare
        attrs.setdefault(name.lower(), unescape(value) if "&" in value else value)
    return attrs


def markup_tags(html: str, pattern: re.Pattern[str] = _TAG) -> Iterator[tuple[str, dict[str, str]]]:
    """Each start tag's name and attributes (entities decoded) read by regex, without a tree.
    `pattern`: three groups, the name, the attributes' text, and `>` (empty at the end of the
    text: no element)."""
    for m in pattern.finditer(html):
        name, attr_text, end = m.groups()
        if not end:
            continue  # end of text inside the tag: no element
        yield name.lower(), _tag_attrs(attr_text)


def tag_scan_refs(html: str) -> Iterator[tuple[str, dict[str, str], Ref]]:
    """Every element's references read straight from the markup, without a tree (the reading
    of a document whose HTML5 parse would cost too much, see `parse_is_bounded`): the same
    element_refs, attributes parsed by regex."""
    for tag, attrs in markup_tags(html):
        for ref in element_refs(tag, attrs.get):
            yield tag, attrs, ref


# Attributes that can reference a URL somewhere (see element_refs); `style` is checked by content.
URL_ATTRS = frozenset(
    {
        "src", "srcset", "href", "background", "data", "poster", "lowsrc", "dynsrc", "code",
        "archive", "codebase", "object", "http-equiv", "xlink:href", "manifest", "imagesrcset",
        "value", "srcdoc", "movie", "icon", "implementation", "o:href", "to", "from", "values",
        "fill", "stroke", "mask", "clip-path", "filter", "cursor", "marker-start", "marker-mid",
        "marker-end",
    }
)  # fmt: skip


def may_reference(attrs: Mapping[str, str | None]) -> bool:
    """Can an element with these attributes reference a URL at all (see `element_refs`)?"""
    if not URL_ATTRS.isdisjoint(attrs):
        return True
    style = attrs.get("style")
    return bool(style and style_facts(style).urls)


STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)(?:</style\s*>|$)", re.I | re.S)
