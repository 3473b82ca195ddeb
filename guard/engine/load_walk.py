"""What an HTML document loads, and nothing else: the reading cleaning checks its output with.

A cleaned HTML part is parsed again (Lexbor, as the scan parses it) and every load is read by the
one definition (guard/engine/loads.py: `element_refs`, `conditional_comment_refs`, `css_urls`, the
nested documents of guard/engine/html.py), to prove that nothing removed still loads. That proof
needs the loads of `scan_html` and none of the rest of the scan: no pixel shapes, no style
cascade, no links (but for the `<image>`s a tree drops, see `dropped_images`). `document_loads`
is that walk; tests/test_load_walk.py checks it against `scan_html`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from guard.engine.css import css_urls
from guard.engine.deferred import LexborHTMLParser
from guard.engine.html import (
    Nest,
    Occurrence,
    document_base,
    dropped_images,
    nested_documents,
    parse_document,
    scan_html,
    scan_nested,
)
from guard.engine.layout import Getter
from guard.engine.lexwalk import encoded_loads, has_start_tag
from guard.engine.loads import conditional_comment_refs, element_refs, may_reference
from guard.engine.nested import CSS_TYPES, NESTING_ATTRS, SVG_TYPES, xml_stylesheet_hrefs
from guard.engine.parse_bounds import parse_is_bounded
from guard.engine.urls import resolve

Load = tuple[str, str]
"""(URL resolved against the document's base, where: `img[src]`, `<style> url()`…)."""


def document_loads(
    html: str, python_walk: bool = False, encoded: bytes | None = None
) -> list[Load]:
    """Each distinct URL `scan_html(html)` reports as a load, with the element of its first
    occurrence, in the order of those first occurrences. Read by the C walk where it is used
    (its loads-only walk, lexwalk.py `distinct_loads`, unless the text holds an `<image` tag,
    whose dropped images need the links too: `loads_tree`), else (or with `python_walk`: the
    reference, for tests) by `_walk`. `encoded`: `html` as
    UTF-8, when the caller has it: the parser reads those bytes (selectolax parses a str by
    encoding it to UTF-8 first; cleaning keeps the bytes for the part's new body), and where the
    loads-only walk would read them, the extension parses and walks them with no selectolax
    parser (lexwalk.py `encoded_loads`: one Lexbor document kept for every check)."""
    if not parse_is_bounded(html):
        # The markup scan (hostile documents only): scan_html reads those without a tree.
        return _distinct((o.url, o.element) for o in scan_html(html) if o.load)
    if encoded is not None and (not html or html.isspace()):
        return []  # parse_document's own test for an empty document, without a stripped copy
    images = has_start_tag(html, "image")
    if encoded is not None and not images and not python_walk:
        # Cleaning's check: parsed and walked in C, with no selectolax parser.
        found = encoded_loads(encoded, Nest(None))
        if found is not None:
            return found
    doc = parse_document(html) if encoded is None else LexborHTMLParser(encoded)
    if doc is None:
        return []
    if not images and not python_walk:
        # No `<image>` the tree may have dropped: the loads alone, read by the loads-only walk.
        found = _c_distinct(doc)
        if found is not None:
            return found
    fast = None if python_walk else _c_loads(doc)
    if fast is not None:
        first: dict[str, str] = {}  # as _distinct, in the one pass over what the walk found
        for o in fast:
            if o.load and o.url not in first:
                first[o.url] = o.element
        out = list(first.items())
        if not images:
            return out
        present = {o.url for o in fast}
    else:
        loads, links, base = _walk(doc, Nest(None))
        out = [(_resolved(base, url, element), element) for url, element in loads]
        present = {url for url, _ in out} | {_resolved(base, u, e) for u, e in links}
    if images:
        # The `<image>`s the tree lost, unless the document loads or links to their URL elsewhere.
        present |= {url.strip() for url in present}
        dropped = dropped_images(html, present)
        if dropped:
            doc_base = document_base(doc)
            out.extend((resolve(doc_base, r.url), r.element) for r in dropped)
    return _distinct(out)


# The C walk (guard/engine/lexwalk.py `loads_tree`), loaded at first use: False until then, None
# where it is not built or not usable (`_walk` below runs, the reference).
_c_walk: Any = False


# The loads-only C walk (lexwalk.py `distinct_loads`), likewise: False until first use, None where
# it is not used (then `_c_walk`, or `_walk`, answers).
_c_only: Any = False


def _c_loads(doc: LexborHTMLParser) -> list[Occurrence] | None:
    global _c_walk
    if _c_walk is False:
        from guard.engine import lexwalk

        _c_walk = lexwalk.loads_tree if lexwalk._ready() is not None else None
    if _c_walk is None:
        return None
    found: list[Occurrence] | None = _c_walk(doc, Nest(None))
    return found


def _c_distinct(doc: LexborHTMLParser) -> list[Load] | None:
    global _c_only
    if _c_only is False:
        from guard.engine import lexwalk

        # The scan has mostly probed its walk already: `_ext` is then set.
        ready = (lexwalk._ext or lexwalk._ready()) is not None and lexwalk._loads_agree()
        _c_only = lexwalk.distinct_loads if ready else None
    if _c_only is None:
        return None
    found: list[Load] | None = _c_only(doc, Nest(None))
    return found


def _distinct(loads: Iterable[Load]) -> list[Load]:
    first: dict[str, str] = {}
    for url, element in loads:
        first.setdefault(url, element)
    return list(first.items())


def _resolved(base: str | None, url: str, element: str) -> str:
    """Resolved as the scan resolves: not the base itself, nor what a `data:` or `cid:`
    document nested in this one references (an `about:srcdoc` document's, though, resolves
    against its parent's base)."""
    if element == "base[href]" or (
        " > " in element and not element.startswith("iframe[srcdoc] > ")
    ):
        return url
    return resolve(base, url)


def _walk(doc: LexborHTMLParser, nest: Nest) -> tuple[list[Load], list[Load], str | None]:
    """(loads as written, in document order; links as written; the first absolute
    `<base href>`), read as `scan_html`'s walk reads them."""
    root = doc.root
    if root is None:
        return [], [], None
    loads: list[Load] = []
    links: list[Load] = []
    base: str | None = None
    for el in (root.parent or root).traverse(include_text=False):
        tag = el.tag or ""
        if tag == "-comment":
            text = el.comment_content
            if text:
                for ref in conditional_comment_refs(text):
                    (loads if ref.load else links).append((ref.url, ref.element))
            continue
        if tag == "style":
            css = el.text(deep=True)
            if css:
                loads.extend((url, "<style> url()") for url in css_urls(css))
        attrs = el.attributes
        if not attrs or not may_reference(attrs):
            continue
        if not tag.islower():
            tag = tag.lower()  # SVG's camelCase names (`feImage`)
        get = attrs.get
        for url, element, load, _image in element_refs(tag, get):
            if not load:
                links.append((url, element))
                continue
            if element == "base[href]" and base is None:
                href = url.strip()
                if href.lower().startswith(("http://", "https://")):
                    base = href
            loads.append((url, element))
        if tag in NESTING_ATTRS and (tag != "img" or _inline_src(get)):
            _nested_refs(tag, get, nest, loads, links)
    return loads, links, base


def _inline_src(get: Getter) -> bool:
    src = get("src")
    return bool(src) and src.lstrip()[:4].lower() in ("data", "cid:")  # type: ignore[union-attr]


def _nested_refs(tag: str, get: Getter, nest: Nest, loads: list[Load], links: list[Load]) -> None:
    """What the documents an element holds (`nested_documents`) load and link to, as the scan
    reads them."""
    for where, _attr, media, text in nested_documents(tag, get, nest.cids):
        if media in CSS_TYPES:
            loads.extend((url, f"{where} > url()") for url in css_urls(text))
            continue
        if media in SVG_TYPES:
            loads.extend(
                (href, f"{where} > <?xml-stylesheet?>") for href in xml_stylesheet_hrefs(text)
            )
        for occ in scan_nested(text, nest):
            (loads if occ.load else links).append((occ.url, f"{where} > {occ.element}"))
