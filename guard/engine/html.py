"""The HTML5 parse of a mail part, and the walk that finds everything it loads and links to.

The document is read the way a mail client reads it: by the WHATWG HTML5 parsing algorithm that
every browser engine follows (Lexbor, through selectolax). Content after `</html>` lands in the
body, misplaced table content is foster-parented out of the table, exactly as the client renders
it. The scan (`scan_html`) walks the tree and asks, for each element, the one definition of what
loads (guard/engine/loads.py: `element_refs`) and how it is laid out (guard/engine/layout.py: style
facts, the `<style>` cascade, pixel shape); the documents nested in it (srcdoc, data: and cid:
documents) are scanned in turn. Cleaning (guard/clean/html.py) walks the same Lexbor tree with the
same `element_refs`, so what is found is exactly what gets stripped. A document too costly to parse
(guard/engine/parse_bounds.py) is read by the markup scan, without a tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote

from guard.engine.css import css_urls
from guard.engine.deferred import LexborHTMLParser, LexborNode
from guard.engine.layout import (
    NO_STYLE,
    Getter,
    Sheet,
    cascaded_facts,
    document_sheet,
    pixel_shape,
    sheet_url_shapes,
    style_facts,
)
from guard.engine.loads import (
    STYLE_BLOCK,
    URL_ATTRS,
    Ref,
    conditional_comment_refs,
    element_refs,
    markup_tags,
    tag_scan_refs,
)
from guard.engine.model import UTF8_SOURCES
from guard.engine.nested import (
    CSS_TYPES,
    HTML_TYPES,
    NESTED_BUDGET,
    NESTED_DEPTH,
    NESTING_ATTRS,
    SVG_TYPES,
    Cids,
    cid_of,
    data_url_media_type,
    decode_data_url,
    xml_stylesheet_hrefs,
)
from guard.engine.parse_bounds import parse_is_bounded
from guard.engine.urls import resolve

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
    if not html or html.isspace():  # not html.strip(), which copies a whole part
        return None
    source = UTF8_SOURCES.get(id(html))
    if source is not None and source[0] is html:
        return LexborHTMLParser(source[1])  # the bytes `_encode` would make (model.UTF8_SOURCES)
    global _encode
    if _encode is None:
        _encode = _utf8_encoder()
    return LexborHTMLParser(_encode(html))


def _utf8_encoder() -> Callable[[str], str | bytes]:
    """What Lexbor is handed: the UTF-8 bytes selectolax would make of the text
    (`html.encode("utf-8", "ignore")`), made by lexwalk's extension where it is built (`utf8`: a
    run of ASCII a word at a time, ~4x fewer instructions than CPython's encoder on the two-byte
    text most newsletters are stored as; the same bytes, so the same tree: tests/test_lexwalk.py),
    else the text itself, which selectolax encodes."""
    try:
        from guard.engine import _lexwalk  # type: ignore[attr-defined]
    except ImportError:
        return str
    encoder: Callable[[str], bytes] | None = getattr(_lexwalk, "utf8", None)
    return encoder if encoder is not None else str


_encode: Callable[[str], str | bytes] | None = None


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
        head = _head(value, 5).lower()
        if head == "data:":
            # The type first: a data: image that is no SVG (most) is not decoded for nothing.
            if data_url_media_type(value) not in _wanted_types(tag, get):
                continue
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
        if media in _wanted_types(tag, get):
            found.append(NestedDocument(where, attr, media, text))
    return found


def _wanted_types(tag: str, get: Getter) -> frozenset[str]:
    """The media types an element reads as a document (see `nested_documents`)."""
    if tag == "link":
        rels = (get("rel") or "").lower().split()
        return CSS_TYPES if "stylesheet" in rels else frozenset()
    if tag == "img":
        return SVG_TYPES
    return HTML_TYPES | SVG_TYPES


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


def _head(value: str, n: int) -> str:
    """`value.lstrip()[:n]` without copying the whole of a long value (an inline image's `data:`
    URL runs to hundreds of KB, and lstrip copies it): the same unless more than 64 - n white
    space characters lead, where the whole value is stripped after all."""
    head = value[:64].lstrip()
    if len(head) < n and len(value) > 64:
        head = value.lstrip()
    return head[:n]


def _inline_src(get: Getter) -> bool:
    """Can an `<img>` hold a document (a `data:` or `cid:` SVG)? Most load over http."""
    src = get("src")
    return bool(src) and _head(src, 4).lower() in ("data", "cid:")  # type: ignore[arg-type]


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


def _holds_image_tag(html: str) -> bool:
    """Does the document hold an `<image` start tag? In C where lexwalk's extension is built
    (memchr for `<`: the regex took ~0.3 M instructions a 55 KB newsletter), else `_IMAGE_START`.
    """
    from guard.engine.lexwalk import has_start_tag  # lexwalk imports this module

    return has_start_tag(html, "image")


def document_base(doc: LexborHTMLParser) -> str | None:
    """The first absolute http(s) `<base href>`: relative URLs resolve against it."""
    for el in doc.css("base[href]"):
        href = el.attributes.get("href")
        if href and href.strip().lower().startswith(("http://", "https://")):
            return href.strip()
    return None


Parsed = dict[int, tuple[str, LexborHTMLParser]]
"""HTML text -> its parsed document, handed from the scan to a rewrite of the same text: by the
text's id, the text kept alongside (an id is the text's own only while the text lives; `kept`
checks it). Keyed by the text itself, the dict hashed a whole HTML part (~0.14 M instructions a
55 KB newsletter) to hand it over once."""


_Kept = TypeVar("_Kept")


def kept(keep: dict[int, tuple[str, _Kept]], text: str) -> _Kept | None:
    """What detection left in `keep` for this very text (taken out), or None: the parsed
    document `scan_html` keeps in a `Parsed`, the URLs of a plain-text part in a
    `detect.TextUrls`."""
    entry = keep.pop(id(text), None)
    return entry[1] if entry is not None and entry[0] is text else None


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
        keep[id(html)] = (html, doc)
    out = _scan_tree(doc, nest)
    if not _holds_image_tag(html):
        return out
    dropped = dropped_images(html, {o.url for o in out} | {o.url.strip() for o in out})
    if dropped:
        base = document_base(doc)
        out.extend(Occurrence(resolve(base, r.url), r.element, True, True, None) for r in dropped)
    return out


# Elements that load an image but have no box of their own to size or hide.
_NO_BOX = frozenset({"link", "feimage"})


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
    for block in STYLE_BLOCK.finditer(html):
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


# The walk in C (guard/engine/lexwalk.py), loaded at the first scan: False until then, None where
# it is not built or not usable (the Python walk below runs).
_c_walk: Any = False


def _scan_tree(doc: LexborHTMLParser, nest: Nest | None = None) -> list[Occurrence]:
    global _c_walk
    sheet = document_sheet(doc)
    if _c_walk is False:
        from guard.engine import lexwalk

        _c_walk = lexwalk.scan_tree if lexwalk._ready() is not None else None
    if _c_walk is not None:  # the same walk in C, where it is built
        fast: list[Occurrence] | None = _c_walk(doc, nest, sheet)
        if fast is not None:
            return fast
    return _python_walk(doc, nest, sheet)


def python_scan_tree(doc: LexborHTMLParser, nest: Nest | None = None) -> list[Occurrence]:
    """The walk in Python: the reference the C walk is checked against (`GUARD_PYTHON_WALK=1`
    makes every scan use it)."""
    return _python_walk(doc, nest, document_sheet(doc))


def _python_walk(doc: LexborHTMLParser, nest: Nest | None, sheet: Sheet | None) -> list[Occurrence]:
    """The one walk that applies a `<style>` cascade (`sheet`: the document's)."""
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
            facts = cascaded_facts(style, cascade)
        else:
            facts = style_facts(style) if style else NO_STYLE
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
        if not facts.urls and URL_ATTRS.isdisjoint(attrs):
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
        shape_style_loads(out, sheet, sheet_shapes, style_loads)
    return resolve_all(out, base)


def shape_style_loads(
    out: list[Occurrence], sheet: Sheet, sheet_shapes: dict[int, str], style_loads: list[int]
) -> None:
    """Give the `<style> url()` loads in `out` (at `style_loads`) the pixel shape of the elements
    their rules apply to, where only pixel-shaped elements load them (`sheet_url_shapes`)."""
    all_urls: dict[str, int] = {}
    for index in style_loads:
        url = out[index].url
        all_urls[url] = all_urls.get(url, 0) + 1
    by_url = sheet_url_shapes(sheet, sheet_shapes, all_urls)
    if by_url:
        for index in style_loads:
            occ = out[index]
            shape = by_url.get(occ.url)
            if shape:
                out[index] = occ._replace(shape=shape)


def unstripped(out: list[Occurrence]) -> list[int]:
    """The indexes of the occurrences whose URL has white space at an end (what str.strip takes
    off): the reference for guard/engine/_lexwalk.c's `unstripped`."""
    return [i for i, occ in enumerate(out) if occ.url.strip() != occ.url]


def resolve_all(
    out: list[Occurrence],
    base: str | None,
    unstripped_of: Callable[[list[Occurrence]], list[int]] = unstripped,
) -> list[Occurrence]:
    """Each occurrence's URL resolved against the document's base, but a `<base href>` itself and
    what keeps its own resolution (`_is_nested`). `unstripped_of`: `unstripped`, or the C walk's
    (the same answer)."""
    if base is None:
        # resolve(None, url) is url.strip(): most URLs are kept as they are, and only those with
        # white space at an end are looked at (a newsletter has ~270 occurrences, a loop over
        # them in Python ~0.1 M instructions).
        resolved = list(out)
        for i in unstripped_of(out):
            occ = out[i]
            if occ.element != "base[href]" and not _is_nested(occ.element):
                resolved[i] = occ._replace(url=occ.url.strip())
        return resolved
    resolved = []
    for occ in out:
        element = occ.element
        url = occ.url if element == "base[href]" or _is_nested(element) else resolve(base, occ.url)
        resolved.append(occ if url is occ.url else occ._replace(url=url))
    return resolved


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
