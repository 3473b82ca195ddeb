"""The scan's walk over a Lexbor document in C (guard/engine/_lexwalk.c), when that is built.

guard/engine/html.py's `_scan_tree` walks every node in Python: selectolax makes a Python object
per node and a dict per element's attributes. The C walk visits the same nodes in the same order
and hands back only the comments, the `<style>` elements, the elements carrying an attribute that
can load or link (the names are guard/engine/loads.py's `URL_ATTRS`), a `hidden` attribute or a
style that can load or hide what is inside (`LOAD_NEEDLES`, `HIDE_NEEDLES`), each with the record
of its nearest such hiding ancestor; a plain link (`<a href>` with nothing else that loads or
hides) comes back as its finished Occurrence, and so does a plain image (`<img src srcset>` with
nothing else that loads, hides or is hidden around it: its srcset split in C as
loads.srcset_urls splits it, its pixel shape `_image_shape`'s, asked once per distinct width,
height and style). What the rest loads and how an image is hidden is
decided here with the same functions the Python walk calls (`element_refs`, `style_facts`,
`pixel_shape`), so the result is the same list of Occurrences; tests/test_lexwalk.py checks that
on samples/, eval/, the real corpus, the fuzz regressions and generated HTML5 documents.
Cleaning's check of its output reads loads only: `distinct_loads` walks for those alone (no
link, no Occurrence; tests/test_load_walk.py checks it against the Python walk).

The extension is optional. Without it, when selectolax is not the version whose object layout
it reads (1.x), or when its answer on a probe document differs from the Python walk's, `scan_tree`
returns None and the Python walk runs: that walk stays the reference. `GUARD_PYTHON_WALK=1` in
the environment makes the Python walk run anyway (benchmarks, doubt).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from guard.engine.css import sheet_urls
from guard.engine.layout import (
    NO_STYLE,
    Sheet,
    cascaded_facts,
    document_sheet,
    pixel_shape,
    style_facts,
)
from guard.engine.loads import (
    URL_ATTRS,
    conditional_comment_refs,
    element_refs,
    may_reference,
)
from guard.engine.nested import NESTING_ATTRS
from guard.engine.timelimit import TimeLimitExceeded
from guard.engine.urls import resolve

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

    from guard.engine.html import Nest, Occurrence

# A style can load only through what guard.engine.css.css_urls looks for once escapes are undone
# (`url`, `image-set`, `@import`). It can hide what is inside, or show it again, only through
# what guard.engine.css.hides_subtree and `visibility: visible` read once comments and escapes are
# undone: `display` set to `none` (`name:value`: one declaration, split as css.declarations
# splits, whose name holds `display` and value `none`), `visibility`, `opacity`, `mso-hide`, or a
# clipping `overflow` (a zero max-height, max-width or size hides nothing without it). Matched
# ASCII case-insensitively: no other character lower-cases into these letters (Python's
# str.lower() makes ASCII only of U+212A KELVIN SIGN, `k`).
LOAD_NEEDLES = (b"url", b"image-set", b"@import", b"\\")
HIDE_NEEDLES = (
    b"display:none", b"visibility", b"opacity", b"mso-hide", b"overflow", b"\\", b"/*",
)  # fmt: skip

_ext: Any = None
_URL_NAMES = tuple(sorted(name.encode() for name in URL_ATTRS))

# Every kind of record the C walk makes, and the cases its needles decide: the walk is used only
# when it answers this exactly as the Python walk does.
_PROBE = (
    "<!--[if mso]><v:rect><v:fill src='x'/></v:rect><![endif]--><html><head>"
    "<style>@import 's.css';.h{display:none}.b{background:url(r.png)}</style>"
    "<base href='http://b.example/'></head><body><div style='display:none'><p hidden>"
    "<img src='p.gif' width=1 height=1 data-x></p></div><a href='l' title='é\u00a0'>x</a>"
    "<a href='' xlink:href='x'>y</a><area href='m' style='color:red'><a>z</a>"
    "<a href='h' style='VISIBILITY:hidden'><img src='v.gif'></a><a href='b' background='c'>"
    "<div style='max-height:0;overflow:hidden'><img src='z.gif' width=1 height=1></div>"
    "<svg><style>@import url(t.png);</style><image xlink:href='i.png'/><feImage href='f'/>"
    "<a xlink:href='s'>w</a></svg>"
    "<table style='opacity:0'><img src='o.gif'><tr><td background='bg.png'>y</td></tr></table>"
    "<img src='pl.gif' width=1 height=1 style='border:0'>"
    "<p style='background:URL(q.png)'><i style='visibility:visible'>k</i></p><div class=h>"
    "<img src='ch.gif' width=9><span class=b hidden>u</span></div><b class=b>v</b>"
    "</body></html><img srcset='a 1x, b 2x'><!-- tail -->"
)


# Plain images' pixel shapes by (width, height, style), filled and bounded by the C walk.
_SHAPE_MEMO: dict[tuple[str | None, str | None, str | None], str | None] = {}


def _image_shape(width: str | None, height: str | None, style: str | None) -> str | None:
    """The pixel shape of a plain image (see _lexwalk.c): one inside no hiding element, without a
    `hidden` attribute, whose attributes that matter to `pixel_shape` are these three."""
    facts = style_facts(style) if style else NO_STYLE
    return pixel_shape({"width": width, "height": height}.get, facts, None) or None


def bound_extension() -> Any:
    """guard/engine/_lexwalk.c bound to selectolax's Lexbor, or None: not built, another
    selectolax than the 1.x whose layout it reads, or `GUARD_PYTHON_WALK` set. The one place that
    decides for both of its users (this module's walk, guard/clean/nodes.py's candidates); each
    then checks its own function on its own probe."""
    if os.environ.get("GUARD_PYTHON_WALK"):  # the reference walks, for benchmarks and doubt
        return None
    try:
        import selectolax
        import selectolax.lexbor as lexbor

        from guard.engine import _lexwalk  # type: ignore[attr-defined]

        if not selectolax.__version__.startswith("1."):
            return None
        _lexwalk.bind(lexbor.__file__)
    except Exception:  # noqa: BLE001 - any doubt about the extension: the Python walk runs
        return None
    return _lexwalk


# The Python walk's answer on the probe (URLs after _PROBE_BASE), stored so that a process does
# not run that walk at first use (~0.9 ms: `guard strip` handles one message a process);
# tests/test_lexwalk.py checks it is still the Python walk's answer.
_PROBE_BASE = "http://b.example/"
_PROBE_ANSWER: tuple[tuple[str, str, bool, bool, str | None], ...] = (
    ("x", "<!--[if mso]> v:fill[src]", True, True, None),
    ("r.png", "<style> url()", True, True, None),
    ("s.css", "<style> url()", True, True, None),
    ("", "base[href]", True, False, None),
    ("p.gif", "img[src]", True, True, "tiny"),
    ("l", "a[href]", False, False, None),
    ("x", "a[href]", False, False, None),
    ("m", "area[href]", False, False, None),
    ("h", "a[href]", False, False, None),
    ("v.gif", "img[src]", True, True, "inside visibility:hidden element"),
    ("b", "a[href]", False, False, None),
    ("c", "a[background]", True, True, None),
    ("z.gif", "img[src]", True, True, "tiny"),
    ("t.png", "<style> url()", True, True, None),
    ("i.png", "image[xlink:href]", True, True, None),
    ("f", "feimage[href]", True, True, None),
    ("s", "a[href]", False, False, None),
    ("o.gif", "img[src]", True, True, None),
    ("bg.png", "td[background]", True, True, "inside opacity:0 element"),
    ("pl.gif", "img[src]", True, True, "tiny"),
    ("q.png", "p[style] url()", True, True, None),
    ("ch.gif", "img[src]", True, True, None),
    ("a", "img[srcset]", True, True, None),
    ("b", "img[srcset]", True, True, None),
)


def _probe_agrees() -> bool:
    """Does the C walk answer the probe document exactly as the Python walk does
    (`_PROBE_ANSWER`)?"""
    from guard.engine import html

    doc = html.parse_document(_PROBE)
    if doc is None:
        return False
    try:
        fast = scan_tree(doc, html.Nest(), document_sheet(doc))
    except TimeLimitExceeded:
        raise  # the message being read ran out of time: no answer about the walk (`_ready`)
    except Exception:  # noqa: BLE001 - a walk that fails on the probe is not used
        return False
    expected = [(_PROBE_BASE + url, *rest) for url, *rest in _PROBE_ANSWER]
    return fast is not None and [tuple(o) for o in fast] == expected


Chain = tuple["Chain", str] | None
"""The hidden elements around one, innermost first: (those around it, how it hides), or None."""


def _outermost_first(chain: Chain) -> list[tuple[int, str]]:
    """A chain as the Python walk keeps its hidden elements, outermost first ((0, how): read by
    html._hidden_by)."""
    found: list[tuple[int, str]] = []
    while chain is not None:
        chain, how = chain
        found.append((0, how))
    found.reverse()
    return found


# Newsletters repeat the same conditional comments (`[if mso]><table><tr><td><![endif]`) many
# times: each distinct text is read once. Bounded in entries and length, as the style memo.
_COMMENT_MEMO: dict[str, tuple[Occurrence, ...]] = {}
_COMMENT_MEMO_SIZE = 1024
_COMMENT_MEMO_LONGEST = 4096


def _comment_occurrences(text: str) -> tuple[Occurrence, ...]:
    found = _COMMENT_MEMO.get(text)
    if found is None:
        from guard.engine.html import Occurrence

        found = tuple(
            Occurrence(ref.url, ref.element, ref.load, ref.image, None)
            for ref in conditional_comment_refs(text)
        )
        if len(text) <= _COMMENT_MEMO_LONGEST:
            if len(_COMMENT_MEMO) >= _COMMENT_MEMO_SIZE:
                _COMMENT_MEMO.clear()
            _COMMENT_MEMO[text] = found
    return found


def _element_records(
    items: list[Any], positions: list[int], out: list[Occurrence]
) -> Iterator[tuple[int, Any]]:
    """The walk's element records with their index (what a record's `hider` refers to), in
    document order. What stands between them (the Occurrences the C walk finished, and those of
    the comments it handed back) goes into `out` by slices as they are passed, so `out` is in
    document order whenever a record is yielded."""
    done = 0
    for at in positions:
        if at > done:
            out.extend(items[done:at])
        done = at + 1
        record = items[at]
        items[at] = None  # its dict of attributes goes as soon as it is read: memory
        if len(record) == 2:
            out.extend(_comment_occurrences(record[1].strip()))
            continue
        yield at, record
    if done < len(items):
        out.extend(items[done:])


def scan_tree(
    doc: LexborHTMLParser, nest: Nest | None = None, sheet: Sheet | None = None
) -> list[Occurrence] | None:
    """guard/engine/html.py's Python walk through the C walk, or None where it is not used.
    `sheet`: the document's `<style>` rules applied to its elements (`document_sheet`), which the
    caller reads first: the elements they style come back as records, and their cascade is
    applied here as the Python walk applies it."""
    if _ext is None:
        return None
    from guard.engine import html

    occurrence = html.Occurrence
    styles = sheet.styles if sheet is not None else None
    sheet_loaders: set[int] = set()  # elements a `<style>` rule gives a url() (mem_id)
    sheet_shapes: dict[int, str] = {}  # … and their pixel shapes ("" for none)
    style_loads: list[int] = []  # indexes in `out` of the `<style> url()` loads
    marked: set[int] | None = None
    if sheet is not None:
        for _urls, ids, _selector in sheet.url_rules:
            sheet_loaders.update(ids)
        marked = sheet_loaders.union(sheet.styles)
    try:
        items, positions = _ext.walk(
            doc,
            _URL_NAMES,
            LOAD_NEEDLES,
            HIDE_NEEDLES,
            occurrence,
            "a[href]",
            "area[href]",
            marked,
            "img[src]",
            "img[srcset]",
            _image_shape,
            _SHAPE_MEMO,
        )
    except (TypeError, ValueError):
        return None
    hidden_by_of, no_box = html._hidden_by, html._NO_BOX
    inline_src, nested_occurrences = html._inline_src, html._nested_occurrences
    base: str | None = None
    # The hidden elements in force for what a record holds, by the index of the record that may
    # hide: the innermost one's way of hiding and the chain of those around it (a linked list, so
    # that deep nesting costs memory in proportion to its depth, not to its square). The C walk
    # links each record to its nearest such ancestor.
    chains: dict[int, Chain] = {}
    out: list[Occurrence] = []
    for at, (tag, attrs, hider, css, mem_id) in _element_records(items, positions, out):
        if css:
            for url in sheet_urls(css):
                style_loads.append(len(out))
                out.append(occurrence(url, "<style> url()", True, True, None))
        cascade = styles.get(mem_id) if mem_id and styles else None
        if not attrs and cascade is None:
            continue
        above = chains[hider] if hider >= 0 else None
        style = attrs.get("style")
        if cascade is not None:
            facts = cascaded_facts(style, cascade)
        else:
            facts = style_facts(style) if style else NO_STYLE
        hiding = "hidden" if "hidden" in attrs else facts.hides_subtree
        if hiding:
            chains[at] = (above, hiding)
        elif above is not None and facts.visible:
            chains[at] = (above, "visible")
        else:
            chains[at] = above
        if mem_id and mem_id in sheet_loaders:
            if attrs.get("hidden", "") is None:
                attrs["hidden"] = ""
            hidden_by = hidden_by_of(_outermost_first(above), facts.visible) if above else None
            sheet_shapes[mem_id] = pixel_shape(attrs.get, facts, hidden_by) or ""
        if not facts.urls and URL_ATTRS.isdisjoint(attrs):
            continue
        if not tag.islower():
            tag = tag.lower()  # SVG's camelCase names (`feImage`)
        get = attrs.get
        shape: str | None = None
        for ref in element_refs(tag, get):
            url, element, load, image = ref
            if image and shape is None and tag not in no_box:
                if attrs.get("hidden", "") is None:
                    attrs["hidden"] = ""  # Lexbor gives an attribute without a value as None
                hidden_by = hidden_by_of(_outermost_first(above), facts.visible) if above else None
                shape = pixel_shape(get, facts, hidden_by) or ""
            if element == "base[href]" and base is None:
                href = url.strip()
                if href.lower().startswith(("http://", "https://")):
                    base = href
            out.append(occurrence(url, element, load, image, (shape or None) if image else None))
        if nest is not None and tag in NESTING_ATTRS and (tag != "img" or inline_src(get)):
            out.extend(nested_occurrences(tag, get, nest))
    if sheet_shapes and sheet is not None:
        html.shape_style_loads(out, sheet, sheet_shapes, style_loads)
    return html.resolve_all(out, base, _ext.unstripped)


def loads_tree(doc: LexborHTMLParser, nest: Nest) -> list[Occurrence] | None:
    """What guard/engine/load_walk.py's Python walk reads, through the C walk: every load and
    link of the tree (with those of the documents nested in it), resolved as `scan_tree` resolves
    them, without pixel shapes (None) or a `<style>` cascade, which change no URL. None where the
    C walk is not used (`_ready`).

    Only a style that can load matters here: the walk is handed no hide needles, so the styled
    elements that can only hide make no record (an element with a `hidden` attribute still does,
    and is passed over below)."""
    if _ext is None:
        return None
    from guard.engine import html

    occurrence = html.Occurrence
    try:
        items, positions = _ext.walk(
            doc, _URL_NAMES, LOAD_NEEDLES, (), occurrence, "a[href]", "area[href]", None,
            "img[src]", "img[srcset]", None, {},
        )  # fmt: skip
    except (TypeError, ValueError):
        return None
    inline_src, nested_occurrences = html._inline_src, html._nested_occurrences
    base: str | None = None
    out: list[Occurrence] = []
    for _at, (tag, attrs, _hider, css, _mem_id) in _element_records(items, positions, out):
        if css:
            out.extend(
                occurrence(url, "<style> url()", True, True, None) for url in sheet_urls(css)
            )
        if not attrs or not may_reference(attrs):
            continue
        if not tag.islower():
            tag = tag.lower()  # SVG's camelCase names (`feImage`)
        get = attrs.get
        for url, element, load, image in element_refs(tag, get):
            if element == "base[href]" and base is None:
                href = url.strip()
                if href.lower().startswith(("http://", "https://")):
                    base = href
            out.append(occurrence(url, element, load, image, None))
        if tag in NESTING_ATTRS and (tag != "img" or inline_src(get)):
            out.extend(nested_occurrences(tag, get, nest))
    return html.resolve_all(out, base, _ext.unstripped)


Load = tuple[str, str]


def distinct_loads(doc: LexborHTMLParser, nest: Nest) -> list[Load] | None:
    """guard/engine/load_walk.py's answer for a document without an `<image` tag (whose dropped
    images need its links as well), through the C loads-only walk (`_ext.loads`): each distinct
    load URL, resolved as `scan_tree` resolves it, with the element of its first occurrence, in
    the order of those first occurrences. Neither links nor Occurrences are made: the check
    asks about loads only. None where the C walk is not used (`_ready`, `_loads_agree`)."""
    if _ext is None:
        return None
    try:
        items, positions = _ext.loads(doc, _URL_NAMES, LOAD_NEEDLES, "img[src]", "img[srcset]")
    except (TypeError, ValueError):
        return None
    return _distinct_of(items, positions, nest)


def _loads_agree() -> bool:
    """Does the loads-only C walk answer the probe document as the Python walk does (its loads
    in `_PROBE_ANSWER`, distinct)?"""
    from guard.engine import html

    doc = html.parse_document(_PROBE)
    if doc is None:
        return False
    try:
        fast = distinct_loads(doc, html.Nest(None))
    except TimeLimitExceeded:
        raise
    except Exception:  # noqa: BLE001 - a walk that fails on the probe is not used
        return False
    expected: dict[str, str] = {}
    for url, element, load, _image, _shape in _PROBE_ANSWER:
        if load:
            expected.setdefault(_PROBE_BASE + url, element)
    return fast == list(expected.items())


# What `holds_ascii` looks for, by regex: the reference (character classes, not re.I, which
# would also take `ı` for `i`); one pattern per needle asked for.
_ASCII_PATTERNS: dict[str, re.Pattern[str]] = {}
_holds: Any = False  # the extension's `holds`, looked up at first use; None: the regex


def holds_ascii(text: str, needle: str) -> bool:
    """Does `text` hold `needle` (lower-case ASCII, at least one character of it not a letter),
    ASCII case-insensitively? A document-wide test made before reading a document for what it
    rarely holds (`<base`, `<image`, `cid:`); in C (memchr) where the extension is built.

    The last answer for each needle is kept with its text: the scan and then the cleaning of
    the same part ask the same question of the same str (`<image`), which is not searched
    again (the same object, compared by `is`: a str does not change)."""
    last = _LAST_ANSWER.get(needle)
    if last is not None and last[0] is text:
        return last[1]
    global _holds
    if _holds is False:
        _holds = getattr(bound_extension(), "holds", None)
    if _holds is not None:
        found: bool = _holds(text, needle.encode("ascii"))
    else:
        found = ascii_pattern(needle).search(text) is not None
    _LAST_ANSWER[needle] = (text, found)
    return found


_LAST_ANSWER: dict[str, tuple[str, bool]] = {}


def has_start_tag(text: str, name: str) -> bool:
    """Does `text` hold a `<name` start tag (`name`: lower-case ASCII letters)?"""
    return holds_ascii(text, "<" + name)


def ascii_pattern(needle: str) -> re.Pattern[str]:
    pattern = _ASCII_PATTERNS.get(needle)
    if pattern is None:
        pattern = _ASCII_PATTERNS[needle] = re.compile(
            "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in needle)
        )
    return pattern


def _ready() -> Any:
    """The C walk's module, once the probe agrees with it; None where it is not used. The probe
    runs within the first message's time limit: a limit reached meanwhile leaves the question
    open (TimeLimitExceeded goes to that message, and the next caller probes again) instead of
    turning the walk off for the whole process."""
    global _ext
    _ext = bound_extension()
    try:
        if _ext is not None and not _probe_agrees():
            _ext = None
    except TimeLimitExceeded:
        _ext = None
        raise
    return _ext


# Cleaning's check, parsed and walked in C (`_ext.loads_encoded`): False until first use, None
# where it is not used (then `distinct_loads` reads a selectolax parser of the bytes).
_encoded: Any = False
# The elements of plain images' loads, one object each: `distinct_firsts` knows them by identity.
_IMG_SRC, _IMG_SRCSET = "img[src]", "img[srcset]"


def encoded_loads(encoded: bytes, nest: Nest) -> list[Load] | None:
    """`distinct_loads(LexborHTMLParser(encoded), nest)` for cleaning's check, without the
    parser: the extension parses the bytes into the one Lexbor document it keeps for the check
    (see `loads_encoded` in _lexwalk.c) and walks it as `distinct_loads` does. `encoded`: a
    document `parse_is_bounded`, not empty, without an `<image` tag (as for `distinct_loads`).
    None where the C parse is not used (no extension, or its probe disagrees)."""
    global _encoded
    if _encoded is False:
        _encoded = _bind_encoded()
    if _encoded is None:
        return None
    try:
        items, positions = _encoded(encoded, _URL_NAMES, LOAD_NEEDLES, _IMG_SRC, _IMG_SRCSET)
    except (TypeError, ValueError):
        return None
    return _distinct_of(items, positions, nest)


def _bind_encoded() -> Any:
    """`_ext.loads_encoded`, bound to Lexbor's parse, when it answers the probe as the Python
    walk does (`_PROBE_ANSWER`'s loads, distinct, as `_loads_agree` reads them), the second
    time into the document it keeps as well; else None."""
    from guard.engine import html

    ext = _ext or _ready()
    if ext is None:
        return None
    expected: dict[str, str] = {}
    for url, element, load, _image, _shape in _PROBE_ANSWER:
        if load:
            expected.setdefault(_PROBE_BASE + url, element)
    try:
        data = _PROBE.encode()
        for _ in range(2):
            items, positions = ext.loads_encoded(
                data, _URL_NAMES, LOAD_NEEDLES, _IMG_SRC, _IMG_SRCSET
            )
            if _distinct_of(items, positions, html.Nest(None)) != list(expected.items()):
                return None
    except TimeLimitExceeded:
        raise
    except Exception:  # noqa: BLE001 - a parse that fails on the probe is not used
        return None
    return ext.loads_encoded


def _distinct_of(items: list[Any], positions: list[int], nest: Nest) -> list[Load]:
    """`distinct_loads`' answer from what the loads-only walk found (`_ext.loads`, or
    `loads_encoded`): its records read in Python, then each URL resolved and kept once."""
    base: str | None = None
    if positions:
        from guard.engine.html import _inline_src, _nested_occurrences

        found: list[Load] = []
        done = 0
        for at in positions:
            if at > done:
                found.extend(items[done:at])
            done = at + 1
            record = items[at]
            if len(record) == 2:  # a comment that may be conditional
                for o in _comment_occurrences(record[1].strip()):
                    if o.load:
                        found.append((o.url, o.element))
                continue
            tag, attrs, css = record
            if css:
                found.extend((url, "<style> url()") for url in sheet_urls(css))
            if not attrs or not may_reference(attrs):
                continue
            if not tag.islower():
                tag = tag.lower()  # SVG's camelCase names (`feImage`)
            get = attrs.get
            for url, element, load, _image in element_refs(tag, get):
                if not load:
                    continue
                if element == "base[href]" and base is None:
                    href = url.strip()
                    if href.lower().startswith(("http://", "https://")):
                        base = href
                found.append((url, element))
            if tag in NESTING_ATTRS and (tag != "img" or _inline_src(get)):
                found.extend(
                    (o.url, o.element) for o in _nested_occurrences(tag, get, nest) if o.load
                )
        if done < len(items):
            found.extend(items[done:])
    else:
        found = items
    if base is None and _ext is not None:
        # The loop below in C, without a base (`distinct_firsts`).
        firsts: list[Load] = _ext.distinct_firsts(found, _IMG_SRC, _IMG_SRCSET)
        return firsts
    return _first_loads(found, base)


def _first_loads(found: list[Load], base: str | None) -> list[Load]:
    """html.resolve_all's resolution, then the first occurrence of each URL: the reference of
    `distinct_firsts` in _lexwalk.c (without a base)."""
    first: dict[str, str] = {}
    for url, element in found:
        if element == "base[href]" or (
            " > " in element and not element.startswith("iframe[srcdoc] > ")
        ):
            key = url  # the base itself, and what a nested `data:`/`cid:` document references
        elif base is None:
            key = url.strip()
        else:
            key = resolve(base, url)
        if key not in first:
            first[key] = element
    return list(first.items())
