"""What guard reads from an HTML document, taken from two independent HTML5 trees (issue 13).

guard parses mail with Lexbor (selectolax), as a browser engine would. To show that Lexbor's
tree is the one a browser builds, the same reading is done on html5lib's tree (a pure-Python
HTML5 parser, written apart from Lexbor) and the two must agree. "What guard reads" is defined
in guard/html.py and guard/css.py; this module only walks the trees and asks those:

- every element whose `element_refs(tag, get)` is not empty: `("element", tag, refs, hiding)`,
  where `hiding` is the chain (outermost first) of how its ancestors hide their subtree: the
  `hidden` attribute, or an inline style whose `style_facts(style).hides_subtree` is set;
- every `<style>` (HTML or SVG) with `css_urls` of all the text inside it, as guard reads it
  (a browser applies only the style's own text children; they differ only for an SVG `<style>`
  holding elements): `("style", urls)`;
- every comment whose `conditional_comment_refs` is not empty: `("comment", refs)`.

All in document order, comments outside `<html>` included. Neither walk enters the content of
an HTML `<template>`: browsers keep it inert (Lexbor does not put it in the tree at all, html5lib
hangs it under the element). Both parsers run with the scripting flag off, as a mail client
that runs no script would (so `<noscript>` content is markup; tests/test_html5_reference.py
shows that Chromium with scripts off loads it).

Walks use an explicit stack: a hostile document nests as deep as it likes.
"""

from __future__ import annotations

import itertools
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import html5lib
from html5lib import treebuilders
from selectolax.lexbor import LexborHTMLParser, LexborNode

from guard.css import css_urls
from guard.html import conditional_comment_refs, element_refs, style_facts
from guard.mime import MessageError, parse_message
from guard.sources.files import message_refs

# One entry of the canonical reading; a tuple so that two readings compare with ==.
Read = tuple[Any, ...]
Chain = tuple[str, ...]
Getter = Callable[[str], str | None]

_XLINK = "{http://www.w3.org/1999/xlink}"
_XML = "{http://www.w3.org/XML/1998/namespace}"
_XMLNS = "{http://www.w3.org/2000/xmlns/}"
# html5lib names adjusted foreign attributes by namespace; Lexbor (and the DOM's qualified name,
# which is what a getAttribute() sees) by prefix.
_ATTR_PREFIX = {_XLINK: "xlink:", _XML: "xml:", _XMLNS: "xmlns:"}


def _hiding(attrs: dict[str, str]) -> str | None:
    """How an element hides everything inside it, as the scan sees it, or None."""
    if "hidden" in attrs:
        return "hidden"
    style = attrs.get("style")
    return style_facts(style).hides_subtree if style else None


def _element(tag: str, attrs: dict[str, str], chain: Chain) -> Iterator[Read]:
    refs = element_refs(tag, attrs.get)
    if refs:
        yield ("element", tag, tuple(tuple(r) for r in refs), chain)


def _style(text: str) -> Read:
    return ("style", tuple(css_urls(text)))


def _comment(text: str) -> Iterator[Read]:
    refs = tuple(tuple(r) for r in conditional_comment_refs(text))
    if refs:
        yield ("comment", refs)


# -- Lexbor ----------------------------------------------------------------------------------------


def _lexbor_attrs(node: LexborNode) -> dict[str, str]:
    # A valueless attribute (`<img hidden>`) is None in selectolax, "" in the DOM.
    return {k: v or "" for k, v in node.attributes.items()}


def lexbor_reads(html: str) -> list[Read]:
    """The reading of Lexbor's tree (selectolax, scripting off, the whole document)."""
    root = LexborHTMLParser(html).root
    if root is None:
        return []
    document = root.parent or root
    out: list[Read] = []
    # (node, hiding chain of its ancestors); siblings are pushed in reverse for document order.
    stack: list[tuple[LexborNode, Chain]] = [(document, ())]
    while stack:
        node, chain = stack.pop()
        tag = node.tag or ""
        inner = chain
        if node.is_comment_node:
            out.extend(_comment(node.comment_content or ""))
        elif node.is_element_node:
            attrs = _lexbor_attrs(node)
            tag = tag.lower()  # SVG keeps camelCase (`feImage`)
            out.extend(_element(tag, attrs, chain))
            if tag == "style":
                out.append(_style(node.text(deep=True)))
            reason = _hiding(attrs)
            if reason:
                inner = (*chain, reason)
        children: list[tuple[LexborNode, Chain]] = []
        child = node.first_child
        while child is not None:
            if child.is_element_node or child.is_comment_node:
                children.append((child, inner))
            child = child.next
        stack.extend(reversed(children))
    return out


# -- html5lib --------------------------------------------------------------------------------------

_TREE = treebuilders.getTreeBuilder("etree", fullTree=True)

# -- the named differences -------------------------------------------------------------------------
#
# Where Lexbor's and html5lib's trees differ, Chromium decides (tests/test_html5_reference.py
# renders each case in headless Chromium and asserts what it loads). Two are html5lib's and are
# adjusted in it below, so that everything else must still agree; the others are named here and
# tests attribute a difference to them only when taking their trigger out of the document makes
# the two readings agree.

WHITESPACE_RECONSTRUCTS = "whitespace in table cells reconstructs formatting elements"
"""html5lib's slip, adjusted. Whitespace-only text in a caption or cell, or in a table whose
current node is not a table, tbody, tfoot, thead or tr element (content fostered out of it), is
processed "using the rules for the in body insertion mode", which first reconstructs the active
formatting elements: an `<a href>` or `<font style>` cut off by a block or a table is cloned
around the whitespace. html5lib inserts the whitespace without reconstructing. Chromium and
Lexbor clone. Real mail reaches this with layout tables left open (9 of 800 corpus messages)."""

WHITESPACE_AFTER_BODY = "whitespace after </body> or </html> reconstructs formatting elements"
"""Lexbor against Chromium: Lexbor follows the standard (whitespace after `</body>` or
`</html>` is processed as in body, reconstructing the formatting elements, so an `<a href>` left
open is cloned after the last block), Chromium inserts the whitespace as it is and clones
nothing. html5lib agrees with Chromium after `</body>` and is adjusted to after `</html>`.
Lexbor then reads an extra copy of a link or style that it also reads in its place; real mail
reaches it (`<center><a href=…></center></html>` + newline: 3 of 800 corpus messages)."""

SELECT = "content inside <select>"
"""html5lib against the current standard: since the 2025 "customizable <select>" change
(whatwg/html#10557, Chromium 134+) the parser keeps elements inside `<select>` (`<img>`,
`<div>`, `<style>`, `<button>`…) and parses them as in body; html5lib follows the earlier
standard and drops every start tag there but option, optgroup, hr, script (and reprocesses
input, keygen, textarea after closing the select). Chromium and Lexbor keep them. Not adjusted:
the change replaces two insertion modes."""

TEMPLATE = "<template>"
"""html5lib against the standard: html5lib 1.1 has no template parsing: `<template>` is an
unknown element to it, so an end tag meant for an element outside closes it, content after an
unclosed template is live, and its content is fostered out of tables. Chromium and Lexbor parse
template content into an inert fragment, from which nothing loads; both also let a formatting
element left open inside a template behind a `<caption>` or cell leak out as a clone (the list
of active formatting elements is cleared only to the last marker), which Lexbor reads."""

TABLE_IMAGE = "<image> directly in a table"
"""Lexbor against Chromium, a Lexbor bug: `<image>` (which the standard renames `<img>`)
directly in a table, tbody or tr is foster-parented by Chromium and html5lib, dropped by Lexbor
(selectolax 1.0.2). Chromium loads it: a sender can hide a pixel from guard this way."""

_AFTER_BODY_SPACE = re.compile(
    r"(</(?:body|html)\b[^>]*>)((?:[\t\n\f\r ]|<!--.*?-->|</(?:body|html)\b[^>]*>)*)", re.I | re.S
)
_SPACE = re.compile(r"[\t\n\f\r ]+")


def without_after_body_space(html: str) -> str:
    """The trigger of WHITESPACE_AFTER_BODY taken out: whitespace right after `</body>` and
    `</html>` (and the comments and end tags that follow them)."""
    return _AFTER_BODY_SPACE.sub(lambda m: m.group(1) + _SPACE.sub("", m.group(2)), html)


def agree(html: str) -> bool:
    return lexbor_reads(html) == html5lib_reads(html)


def explain(html: str, cases: dict[str, Callable[[str], str]]) -> tuple[str, ...] | None:
    """() when both readings agree; else the fewest named cases whose triggers, taken out of the
    document, make them agree; None when no combination does (an unexplained difference)."""
    if agree(html):
        return ()
    names = list(cases)
    for size in range(1, len(names) + 1):
        for chosen in itertools.combinations(names, size):
            changed = html
            for name in chosen:
                changed = cases[name](changed)
            if changed != html and agree(changed):
                return chosen
    return None


_TABLE_CURRENT = ("table", "tbody", "tfoot", "thead", "tr")


def _space_in_body(phase: Any, token: Any) -> Any:
    return phase.parser.phases["inBody"].processSpaceCharacters(token)


def _table_space(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def process(phase: Any, token: Any) -> Any:
        if phase.tree.openElements[-1].name in _TABLE_CURRENT:
            return original(phase, token)  # to "in table text", as the standard says
        # "Anything else": in body, with foster parenting enabled.
        phase.tree.insertFromTable = True
        try:
            return _space_in_body(phase, token)
        finally:
            phase.tree.insertFromTable = False

    return process


def _insert_space(phase: Any, token: Any) -> Any:
    phase.tree.insertText(token["data"])


def _corrected_phases(parser: Any) -> None:
    """Make whitespace handling follow Chromium (WHITESPACE_RECONSTRUCTS; WHITESPACE_AFTER_BODY
    after `</html>`) on this parser only: subclasses with the one method overridden, html5lib's
    own classes left as they are."""
    fixes = {
        "inCaption": _space_in_body,
        "inCell": _space_in_body,
        "inTable": _table_space(type(parser.phases["inTable"]).processSpaceCharacters),
        "afterAfterBody": _insert_space,
    }
    for name, method in fixes.items():
        cls = type(parser.phases[name])
        fixed = type(
            f"Corrected{cls.__name__}", (cls,), {"__slots__": (), "processSpaceCharacters": method}
        )
        parser.phases[name] = fixed(parser, parser.tree)


def _local(name: str) -> tuple[str, str]:
    """`{namespace}local` -> (namespace in braces, local); ("", name) without a namespace."""
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return "{" + ns + "}", local
    return "", name


def _html5lib_attrs(element: ET.Element) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, value in element.attrib.items():
        ns, local = _local(name)
        if ns == _XMLNS and local == "xmlns":
            attrs["xmlns"] = value
        else:
            attrs[_ATTR_PREFIX.get(ns, "") + local] = value
    return attrs


def _etree_text(element: ET.Element) -> str:
    """All text inside `element`, without comments' (ElementTree's C `itertext` yields those)."""
    parts: list[str] = []
    stack: list[ET.Element | str] = [*reversed(element), element.text or ""]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        stack.append(item.tail or "")  # after everything inside it
        if isinstance(item.tag, str):
            stack.extend(reversed(item))
            stack.append(item.text or "")
    return "".join(parts)


def html5lib_parse(html: str, *, corrected: bool = True) -> ET.Element:
    """html5lib's tree of the whole document (doctype and comments outside `<html>` kept), its
    whitespace handling adjusted to Chromium's unless `corrected` is False."""
    parser = html5lib.HTMLParser(tree=_TREE, namespaceHTMLElements=False)
    if corrected:
        _corrected_phases(parser)
    document: ET.Element = parser.parse(html, scripting=False)
    return document


def html5lib_reads(html: str, *, corrected: bool = True) -> list[Read]:
    """The reading of html5lib's tree (the independent reference)."""
    out: list[Read] = []
    stack: list[tuple[ET.Element, Chain]] = [(html5lib_parse(html, corrected=corrected), ())]
    while stack:
        element, chain = stack.pop()
        tag = element.tag
        if tag is ET.Comment:
            out.extend(_comment(element.text or ""))
            continue
        if not isinstance(tag, str) or tag in ("<!DOCTYPE>", "DOCUMENT_ROOT"):
            inner = chain
        else:
            ns, local = _local(tag)
            if not ns and local == "template":
                continue  # inert: see the module docstring
            local = local.lower()
            attrs = _html5lib_attrs(element)
            out.extend(_element(local, attrs, chain))
            if local == "style":
                out.append(_style(_etree_text(element)))
            reason = _hiding(attrs)
            inner = (*chain, reason) if reason else chain
        stack.extend((child, inner) for child in reversed(element))
    return out


# -- inputs ----------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
MAIL_DIRS = (ROOT / "samples", ROOT / "eval" / "eml")
# Read in place, never copied into the repository (see shared/corpus/README.md): live phishing.
CORPUS = ROOT.parent / "shared" / "corpus" / "phishing-pot-dev.tar.xz"


def html_parts(raw: bytes) -> tuple[str, ...]:
    """The decoded text/html parts of one message, as the scan gets them (none if unparseable)."""
    try:
        parsed, _ = parse_message(raw)
    except MessageError:
        return ()
    return parsed.html_parts


def mail_html() -> Iterator[tuple[str, str]]:
    """(source, html) for every HTML part of every message under samples/ and eval/eml/."""
    for folder in MAIL_DIRS:
        for ref in message_refs(str(folder)):
            source = ref.source.removeprefix(str(ROOT) + "/")
            for i, html in enumerate(html_parts(ref.read())):
                yield f"{source}#{i}", html


def corpus_html(path: Path = CORPUS, every: int = 1) -> Iterator[tuple[str, str]]:
    """(member#part, html) for every `every`-th message of the corpus, in name order."""
    with tarfile.open(path) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members[::every]:
            stream = archive.extractfile(member)
            if stream is None:
                continue
            with stream:
                raw = stream.read()
            name = member.name.rsplit("/", 1)[-1]
            for i, html in enumerate(html_parts(raw)):
                yield f"{name}#{i}", html
