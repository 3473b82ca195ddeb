"""The one definition of what a mail client would load, and link to, when it displays HTML.

`element_refs()` says, for one element given as a tag name and an attribute getter, which of
its attributes make a renderer load something, which are links, and whether the load is an image.
It works on any tree: the scan walks lxml's tree (fast, C-level parsing), cleaning walks
BeautifulSoup's tree
built on the same lxml parser, so what is found is exactly what gets stripped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any, NamedTuple

from lxml import etree

from guard.css import css_urls, declarations, hides, pixels
from guard.urls import resolve

Getter = Callable[[str], str | None]

# Attributes that load a resource, per element, and whether that resource is an image (a possible
# pixel). Elements from SVG keep their names in lxml's HTML parser (`image`, `use`, `feimage`).
LOAD_ATTRS: dict[str, tuple[tuple[str, bool], ...]] = {
    "img": (("src", True), ("lowsrc", True), ("dynsrc", True)),
    "iframe": (("src", False),),
    "frame": (("src", False),),
    "embed": (("src", False),),
    "object": (("data", False),),
    "audio": (("src", False),),
    "video": (("src", False), ("poster", True)),
    "source": (("src", False),),
    "track": (("src", False),),
    "script": (("src", False),),
    "image": (("href", True), ("xlink:href", True), ("src", True)),
    "feimage": (("href", True), ("xlink:href", True)),
    "use": (("href", False), ("xlink:href", False)),
}
SRCSET_ELEMENTS = frozenset({"img", "source"})
LINK_ELEMENTS = frozenset({"a", "area"})
_OWN_RULES = frozenset({"link", "input", "object", "applet", "meta", "base"})  # see element_refs
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
    }
)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\";]+)", re.I)
_VML_REF = re.compile(
    r"<\s*(v:fill|v:image|v:imagedata|v:roundrect|v:rect|img|a)\b[^>]*?\b(src|href)\s*=\s*"
    r"(?:\"([^\"]*)\"|'([^']*)')",
    re.I,
)


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
        href = get("href")
        if href:
            refs.append(Ref(href, f"{tag}[href]", False))
    elif tag in _OWN_RULES:
        refs.extend(_own_rule_refs(tag, get))
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
        if href and rels & LOADING_RELS:
            refs.append(Ref(href, f"link[rel={' '.join(sorted(rels))}]", True, "icon" in rels))
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
    return refs


class StyleFacts(NamedTuple):
    """What one inline style attribute does, read once per distinct text."""

    hides: str | None
    """How it hides the element itself (`display:none`, `off-screen`, …), or None."""
    hides_subtree: str | None
    """How it hides everything inside the element (display:none, visibility, opacity), or None."""
    urls: tuple[str, ...]
    """What it loads (url(), image-set())."""
    width: float | None
    height: float | None
    """Sizes in CSS pixels, when given in px."""


_ANCESTOR_HIDES = ("display:none", "visibility:hidden", "opacity:0")
# Mail repeats a few inline styles on hundreds of cells and images: each distinct text is read
# once. Bounded in entries and in length, so hostile mail costs the memo little memory.
_STYLE_MEMO: dict[str, StyleFacts] = {}
_STYLE_MEMO_SIZE = 4096
_STYLE_MEMO_LONGEST = 2048
_NO_STYLE = StyleFacts(None, None, (), None, None)


def style_facts(style: str) -> StyleFacts:
    facts = _STYLE_MEMO.get(style)
    if facts is None:
        decl = declarations(style)
        reason = hides(decl)
        facts = StyleFacts(
            reason,
            reason if reason in _ANCESTOR_HIDES else None,
            tuple(css_urls(style)),
            pixels(decl.get("width")),
            pixels(decl.get("height")),
        )
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


# -- pixel shape ---------------------------------------------------------------------------------


_SWAP_HIDING = ("display:none", "max-height:0", "max-width:0", "hidden")


def _real_size(width: float | None, height: float | None) -> bool:
    return width is not None and width > 2 and height is not None and height > 2


def pixel_shape(get: Getter, style: StyleFacts, hidden_by: str | None = None) -> str | None:
    """Why an image looks like a pixel (`tiny`, `display:none`, …) from its attributes and its
    style, or from `hidden_by`: how an enclosing element hides it. None for a content image."""
    # CSS sizes win over the width/height attributes.
    width = style.width if style.width is not None else pixels(get("width"))
    height = style.height if style.height is not None else pixels(get("height"))
    if width is not None and width <= 2 and (height is None or height <= 2):
        return "tiny"
    if height is not None and height <= 2 and width is None:
        return "tiny"
    own = style.hides or ("hidden" if get("hidden") is not None else None)
    reason = own or hidden_by
    if reason is None:
        return None
    if _real_size(width, height) and reason in _SWAP_HIDING:
        # A sized image hidden by display:none or a zero max-height/width (on itself or on a
        # wrapper) is the usual responsive swap that a media query reveals on mobile, not a
        # beacon; visibility:hidden, opacity:0 and off-screen positioning have no such use.
        return None
    return reason if own else f"inside {reason} element"


# -- the lxml walk used by the scan --------------------------------------------------------------


class Occurrence(NamedTuple):
    """A reference resolved against the document's base, with its pixel shape for images."""

    url: str
    element: str
    load: bool
    image: bool
    shape: str | None  # None, "tiny", "display:none", …


_PARSER = etree.HTMLParser(
    recover=True, no_network=True, huge_tree=True, remove_pis=True, encoding="utf-8"
)


def parse_html(html: str) -> Any:
    """HTML text -> lxml root (None for an empty document). libxml2's repair, never an exception."""
    data = html.replace("\x00", "\ufffd").encode("utf-8", "replace")
    if not data.strip():
        return None
    try:
        return etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None


def tree_is_truncated() -> bool:
    """Did the last parse stop early? libxml2 drops everything after 2048 nested elements,
    where a browser goes on rendering: a sender can hide a beacon behind such nesting."""
    return any(e.type_name == "ERR_RESOURCE_LIMIT" for e in _PARSER.error_log)


_TAG = re.compile(r"<([A-Za-z][\w:-]*)([^>]*)>")
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def tag_scan_refs(html: str) -> Iterator[tuple[str, dict[str, str], Ref]]:
    """Every element's references read straight from the markup, without a tree (the fallback
    for a document libxml2 could not finish): same element_refs, attributes parsed by regex."""
    for m in _TAG.finditer(html):
        attrs: dict[str, str] = {}
        for a in _ATTR.finditer(m.group(2)):
            value = a.group(2) if a.group(2) is not None else a.group(3) or a.group(4) or ""
            attrs.setdefault(a.group(1).lower(), unescape(value))
        tag = m.group(1).lower()
        for ref in element_refs(tag, attrs.get):
            yield tag, attrs, ref


# Attributes that can reference a URL somewhere (see element_refs); `style` is checked by content.
_URL_ATTRS = frozenset(
    {
        "src", "srcset", "href", "background", "data", "poster", "lowsrc", "dynsrc", "code",
        "archive", "codebase", "object", "http-equiv", "xlink:href",
    }
)  # fmt: skip
# libxml2 checks each attribute of an element against all the earlier ones: quadratic, in C where
# no timer can interrupt it (67,000 attributes on one tag took 19 s). When the tags' attribute-like
# tokens, squared and summed, pass this budget (≈0.2 s of that work), the document is read by the
# markup scan instead (linear; the first of duplicate attributes wins, as in browsers). `[^<>]` runs
# cannot overlap, so finding the long tags is linear too.
_ATTRIBUTE_WORK = 50_000_000
_LONG_TAG = re.compile(r"<[A-Za-z][^<>]{256,}")


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
    work = 0
    for m in _LONG_TAG.finditer(html):
        work += len(m.group().split()) ** 2
        if work > _ATTRIBUTE_WORK:
            return True
    return False


def scan_html(html: str) -> list[Occurrence]:
    """Every load and link of an HTML document, in document order, resolved against its base."""
    if _attribute_bomb(html):
        return _scan_markup(html)
    root = parse_html(html)
    if root is None:
        return []
    if tree_is_truncated():
        return _scan_tree(root) + _scan_markup(html)
    return _scan_tree(root)


_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)(?:</style\s*>|$)", re.I | re.S)


def _scan_markup(html: str) -> list[Occurrence]:
    refs = list(tag_scan_refs(html))
    base = next((r.url for _t, _a, r in refs if r.element == "base[href]"), None)
    base = base if base and base.lower().startswith(("http://", "https://")) else None
    out: list[Occurrence] = []
    for tag, attrs, ref in refs:
        shape = None
        if tag == "img" and ref.image:
            shape = pixel_shape(attrs.get, style_facts(attrs.get("style") or ""))
        url = ref.url if ref.element == "base[href]" else resolve(base, ref.url)
        out.append(Occurrence(url, ref.element, ref.load, ref.image, shape))
    for block in _STYLE_BLOCK.finditer(html):
        for url in css_urls(block.group(1)):
            out.append(Occurrence(resolve(base, url), "<style> url()", True, True, None))
    return out


def _scan_tree(root: Any) -> list[Occurrence]:
    base: str | None = None
    for el in root.iter("base"):
        href = el.get("href")
        if href and href.strip().lower().startswith(("http://", "https://")):
            base = href.strip()
            break
    hidden_images: dict[Any, str] = {}  # <img> inside a hidden element -> how it is hidden
    out: list[Occurrence] = []
    # The hot loop of the scan (~500 elements per newsletter): an element without attributes
    # costs one call; a style is read once per distinct text (style_facts).
    for el in root.iter():
        tag = el.tag
        if tag.__class__ is not str:
            if tag is etree.Comment and el.text:
                for ref in conditional_comment_refs(el.text):
                    url = resolve(base, ref.url)
                    out.append(Occurrence(url, ref.element, ref.load, ref.image, None))
            continue
        if tag == "style" and el.text:
            for url in css_urls(el.text):
                out.append(Occurrence(resolve(base, url), "<style> url()", True, True, None))
        keys = el.keys()
        if not keys:
            continue
        facts = style_facts(el.get("style") or "") if "style" in keys else _NO_STYLE
        hiding = "hidden" if "hidden" in keys else facts.hides_subtree
        if hiding:
            # Document order: the images inside come later in this walk.
            for img in el.iter("img"):
                if img is not el:
                    hidden_images.setdefault(img, hiding)
        if not facts.urls and _URL_ATTRS.isdisjoint(keys):
            continue
        get = el.get
        shape: str | None = None
        for url, element, load, image in element_refs(tag, get):
            if image and shape is None and tag == "img":
                shape = pixel_shape(get, facts, hidden_images.get(el)) or ""
            if element != "base[href]":
                url = resolve(base, url) if base else url.strip()
            out.append(Occurrence(url, element, load, image, shape or None))
    return out
