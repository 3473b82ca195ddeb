"""What guard reads from an HTML document, taken from two independent HTML5 trees (issue 13).

guard parses mail with Lexbor (selectolax), as a browser engine would. To show that Lexbor's
tree is the one a browser builds, the same reading is done on html5lib's tree (a pure-Python
HTML5 parser, written apart from Lexbor) and the two must agree. "What guard reads" is defined
in guard/engine/loads.py, guard/engine/layout.py and guard/engine/css.py; this module only walks
the trees and asks those:

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
import html5lib._utils
import html5lib.constants
from html5lib import treebuilders
from html5lib.treebuilders.base import Marker
from selectolax.lexbor import LexborHTMLParser, LexborNode

from guard.engine.css import css_urls
from guard.engine.layout import style_facts
from guard.engine.loads import conditional_comment_refs, element_refs
from guard.engine.mime import MessageError, parse_message
from guard.mail.files import message_refs

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
# renders each case in headless Chromium and asserts what it loads). Where html5lib alone parts
# from Chromium in a small way it is adjusted below (WHITESPACE_RECONSTRUCTS, NESTED_FOSTERING,
# FOSTERED_NODES, TABLE_REPROCESS, ADOPTION_AGENCY, FOREIGN_END_TAGS, and after `</html>`
# WHITESPACE_AFTER_BODY), so that all else must still agree; for the others, tests attribute a
# difference to a named case only when taking that case's trigger out of the document makes the
# two readings agree.

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

NESTED_FOSTERING = "foster parenting through an implied end tag"
"""html5lib's slip, adjusted. Content misplaced in a table is foster-parented (moved in front
of the table) while the token is processed "in body"; html5lib switches that off as soon as a
nested step ends, such as the `</p>` implied by `<li>`, so `<table><p>x<li>` leaves the `<li>`
inside the table. Chromium and Lexbor foster it."""

FOSTERED_NODES = "foster-parented nodes moved by the adoption agency"
"""html5lib's slip, adjusted. A node foster-parented out of a table (inserted before it) is not
recorded among its new parent's children by html5lib's etree builder, so when the adoption
agency later moves that parent's children into a clone (`<font><center><table><i>` … `</font>`)
the fostered node is lost. Chromium and Lexbor keep it."""

TABLE_REPROCESS = "a token reprocessed while fostering"
"""html5lib's slip, adjusted. When content misplaced in a table is processed "in body" and that
step hands the token back to be processed again (a `<button>` that first closes an open
`<button>`), html5lib drops it: `<table><button><button>` loses the second button. Chromium and
Lexbor keep it."""

ADOPTION_AGENCY = "the adoption agency algorithm"
"""html5lib's slip, adjusted. html5lib runs the adoption agency (the end tag of a mis-nested
formatting element) as a 2013 draft had it: its inner loop stops after three steps (the standard
now goes on, dropping elements from the list of active formatting elements after the third), an
end tag for a formatting element that is open but out of scope is handled as "any other end
tag" (the standard ignores it), and the first step is missing (a current node of that name that
the "Noah's Ark" clause left off the list is just popped). Each makes html5lib move or clone
different elements: `<b style=…><b><b><b><b></b></b></b></b>x` leaves the first `<b>` before
the x in html5lib only. Chromium and Lexbor follow the standard."""

FOREIGN_END_TAGS = "end tags meeting SVG and MathML elements"
"""html5lib's slips, adjusted. An end tag in body closes only an HTML element of its name, and
stops at a special element, which SVG `<desc>` and `<title>` and MathML `<mtext>` (and the
other text integration points) are, though not in html5lib's list: with an HTML element open
inside a MathML `<mtext>`, `</mtext>` is ignored and what follows stays inside; `</option>`
inside `<svg><desc>` does not close an `<option>` outside. And `</p>` or `</br>` in SVG or
MathML first leaves the foreign content, as `<p>` does (a later addition to the standard), so
`<svg></p><style>` opens an HTML `<style>` whose content is text. html5lib matches end tags to
elements of any namespace and keeps `</p>` and `</br>` inside foreign content. Chromium and
Lexbor follow the standard."""

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
    try:
        reference = html5lib_reads(html)
    except AssertionError:
        # html5lib's own consistency checks fail on some of what it cannot parse, such as
        # `<math><select><mtext><table></table>` (its old select rules): no agreement there.
        return False
    return lexbor_reads(html) == reference


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


class _Element(_TREE.elementClass):  # type: ignore[misc,name-defined]
    """html5lib's etree element that records a node inserted before another (FOSTERED_NODES)."""

    def insertBefore(self, node: Any, refNode: Any) -> None:  # html5lib's names
        super().insertBefore(node, refNode)
        self._childNodes.insert(self._childNodes.index(refNode), node)


class _TreeBuilder(_TREE):  # type: ignore[misc,valid-type]
    """html5lib's etree builder with `_Element`, and whose foster-parenting switch nests
    (NESTED_FOSTERING): html5lib turns it on and off around each token it processes "in body"
    from a table, and an inner step's "off" must not end an outer step's "on"."""

    elementClass = _Element

    _fostering = 0

    def _setInsertFromTable(self, value: bool) -> None:
        self._fostering = self._fostering + 1 if value else max(self._fostering - 1, 0)
        super()._setInsertFromTable(self._fostering > 0)

    insertFromTable = property(
        lambda self: self._getInsertFromTable(), lambda self, v: self._setInsertFromTable(v)
    )


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


_HTML_NAMESPACES = (None, "http://www.w3.org/1999/xhtml")
_SVG, _MATHML = html5lib.constants.namespaces["svg"], html5lib.constants.namespaces["mathml"]
# The standard's special elements: html5lib's list lacks these foreign ones (FOREIGN_END_TAGS).
_SPECIAL = html5lib.constants.specialElements | {
    (_SVG, "desc"),
    (_SVG, "title"),
    *((_MATHML, name) for name in ("mi", "mo", "mn", "ms", "mtext", "annotation-xml")),
}


def _end_tag_other(phase: Any, token: Any) -> None:
    """html5lib's "any other end tag" in body, matching HTML elements only (FOREIGN_END_TAGS)."""
    tree, name = phase.tree, token["name"]
    for node in tree.openElements[::-1]:
        if node.name == name and node.namespace in _HTML_NAMESPACES:
            tree.generateImpliedEndTags(exclude=name)
            while tree.openElements.pop() is not node:
                pass
            return
        if node.nameTuple in _SPECIAL:
            return  # a parse error: ignored


def _foreign_end_tag(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def process(phase: Any, token: Any) -> Any:
        if token["name"] not in ("br", "p"):
            return original(phase, token)
        # Leave the foreign content, as a breakout start tag does (FOREIGN_END_TAGS), and process
        # the token by the insertion mode's rules (not the dispatcher: at an integration point it
        # would hand the end tag back here).
        tree, parser = phase.tree, phase.parser
        while not (
            tree.openElements[-1].namespace in _HTML_NAMESPACES
            or parser.isHTMLIntegrationPoint(tree.openElements[-1])
            or parser.isMathMLTextIntegrationPoint(tree.openElements[-1])
        ):
            tree.openElements.pop()
        return parser.phase.processEndTag(token)

    return process


def _table_magic(inner: str) -> Callable[[Any, Any], Any]:
    """html5lib's "anything else" in table (in body, fostering), handing back a token to be
    processed again (TABLE_REPROCESS)."""

    def process(phase: Any, token: Any) -> Any:
        phase.tree.insertFromTable = True
        try:
            return getattr(phase.parser.phases["inBody"], inner)(token)
        finally:
            phase.tree.insertFromTable = False

    return process


def _adoption_agency(phase: Any, token: Any) -> None:
    """The adoption agency algorithm, step by step as the HTML standard words it today
    (ADOPTION_AGENCY), on html5lib's tree builder."""
    tree, subject = phase.tree, token["name"]
    stack, active = tree.openElements, tree.activeFormattingElements
    current = stack[-1]
    if current.name == subject and current.namespace in _HTML_NAMESPACES and current not in active:
        stack.pop()
        return
    for _outer in range(8):
        formatting = None
        for entry in reversed(active):
            if entry is Marker:
                break
            if entry.name == subject:
                formatting = entry
                break
        if formatting is None:
            _end_tag_other(phase, token)
            return
        if formatting not in stack:
            active.remove(formatting)
            return
        if not tree.elementInScope(formatting.name):
            return
        position = stack.index(formatting)
        furthest = next(
            (e for e in stack[position + 1 :] if e.nameTuple in _SPECIAL),
            None,
        )
        if furthest is None:
            while stack.pop() is not formatting:
                pass
            active.remove(formatting)
            return
        common = stack[position - 1]
        bookmark = active.index(formatting)
        node = last = furthest
        index = stack.index(furthest)
        inner = 0
        while True:  # bounded: each turn moves `index` one element up the stack
            inner += 1
            index -= 1
            node = stack[index]
            if node is formatting:
                break
            if inner > 3 and node in active:
                active.remove(node)
            if node not in active:
                del stack[index]
                continue
            clone = node.cloneNode()
            active[active.index(node)] = clone
            stack[index] = clone
            node = clone
            if last is furthest:
                bookmark = active.index(node) + 1
            if last.parent:
                last.parent.removeChild(last)
            node.appendChild(last)
            last = node
        if last.parent:
            last.parent.removeChild(last)
        if common.name in _TABLE_CURRENT:  # as html5lib (and Chromium) foster here
            parent, before = tree.getTableMisnestedNodePosition()
            parent.insertBefore(last, before)
        else:
            common.appendChild(last)
        clone = formatting.cloneNode()
        furthest.reparentChildren(clone)
        furthest.appendChild(clone)
        if active.index(formatting) < bookmark:
            bookmark -= 1
        active.remove(formatting)
        active.insert(bookmark, clone)
        stack.remove(formatting)
        stack.insert(stack.index(furthest) + 1, clone)


def _dispatcher(cls: type, attr: str, replace: dict[Any, Callable[[Any, Any], Any]]) -> Any:
    """A copy of a phase's tag dispatcher (a class attribute) with some handlers replaced
    (`replace` maps html5lib's function, or None for the default, to ours)."""
    original = next(k.__dict__[attr] for k in cls.__mro__ if attr in k.__dict__)
    handler = html5lib._utils.MethodDispatcher(
        (name, replace.get(fn, fn)) for name, fn in dict.items(original)
    )
    handler.default = replace.get(None, original.default)
    return handler


def _subclass(parser: Any, name: str, attrs: dict[str, Any]) -> None:
    """Replace one of `parser`'s phases by a subclass with `attrs`."""
    cls = type(parser.phases[name])
    fixed = type(f"Corrected{cls.__name__}", (cls,), {"__slots__": (), **attrs})
    parser.phases[name] = fixed(parser, parser.tree)


def _corrected_phases(parser: Any) -> None:
    """Make html5lib follow Chromium (WHITESPACE_RECONSTRUCTS; WHITESPACE_AFTER_BODY after
    `</html>`; TABLE_REPROCESS, ADOPTION_AGENCY, FOREIGN_END_TAGS) on this parser only:
    subclasses of its phases with the methods overridden, html5lib's own classes untouched."""
    fixes = {
        "inCaption": _space_in_body,
        "inCell": _space_in_body,
        "inTable": _table_space(type(parser.phases["inTable"]).processSpaceCharacters),
        "afterAfterBody": _insert_space,
    }
    for name, method in fixes.items():
        _subclass(parser, name, {"processSpaceCharacters": method})
    in_body = type(parser.phases["inBody"])
    formatting = in_body.__dict__["endTagFormatting"]
    end_tags = _dispatcher(
        in_body, "endTagHandler", {None: _end_tag_other, formatting: _adoption_agency}
    )
    # Also as methods: html5lib's other handlers call them by name (`<a>` runs the agency).
    attrs = {
        "endTagHandler": end_tags,
        "endTagFormatting": _adoption_agency,
        "endTagOther": _end_tag_other,
    }
    _subclass(parser, "inBody", attrs)
    in_table = type(parser.phases["inTable"])
    table_start = _dispatcher(in_table, "startTagHandler", {None: _table_magic("processStartTag")})
    table_end = _dispatcher(in_table, "endTagHandler", {None: _table_magic("processEndTag")})
    _subclass(parser, "inTable", {"startTagHandler": table_start, "endTagHandler": table_end})
    foreign = type(parser.phases["inForeignContent"])
    _subclass(
        parser, "inForeignContent", {"processEndTag": _foreign_end_tag(foreign.processEndTag)}
    )


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
    parser = html5lib.HTMLParser(
        tree=_TreeBuilder if corrected else _TREE, namespaceHTMLElements=False
    )
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


def corpus_messages(path: Path = CORPUS, every: int = 1) -> Iterator[tuple[str, bytes]]:
    """(member name, raw message) for every `every`-th message of the corpus, in name order."""
    with tarfile.open(path) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members[::every]:
            stream = archive.extractfile(member)
            if stream is None:
                continue
            with stream:
                yield member.name.rsplit("/", 1)[-1], stream.read()


def corpus_html(path: Path = CORPUS, every: int = 1) -> Iterator[tuple[str, str]]:
    """(member#part, html) for every `every`-th message of the corpus, in name order."""
    for name, raw in corpus_messages(path, every):
        for i, html in enumerate(html_parts(raw)):
            yield f"{name}#{i}", html


def fuzz_html(count: int = 160, seed: int = 20240601) -> Iterator[tuple[str, str]]:
    """(name#part, html) for every HTML part of the fuzz regressions, then of `count` generated
    inputs (mbox inputs left out: they hold many messages)."""
    from fuzz.strategies import SMALL, generate

    for path in sorted((ROOT / "tests" / "fuzz" / "regressions").iterdir()):
        for i, html in enumerate(html_parts(path.read_bytes())):
            yield f"{path.name}#{i}", html
    for index in range(count):
        inp = generate(index, seed, SMALL)
        if not inp.mbox:
            for i, html in enumerate(html_parts(inp.data)):
                yield f"{inp.kind}@{index}#{i}", html
