"""The nodes cleaning's rewrite visits: every node, or only the candidates found in C.

`_Document.rewrite` (guard/clean/html.py) edits an element only when it is one of the raw-text
elements, or `may_reference` accepts its attributes, and a comment only when it is conditional.
`walked_nodes` hands it, in document order, either every node (`traverse`, the reference) or,
when the optional extension guard/engine/_lexwalk.c is built (guard/engine/lexwalk.py's
`bound_extension` decides) and its `candidates` answer the probe as the reference does, only a
superset of those (the extension's header says which), so that no Python object is made for the
thousands of other nodes of a newsletter. The rewrite tests each node it is handed as before, so
both give the same edits; tests/test_rewrite_nodes.py checks the two lists agree on samples/,
eval/, the fuzz regressions and the real corpus.
"""

from __future__ import annotations

from typing import Any

from guard.clean.rewritecore import holds_tag
from guard.engine.deferred import LexborHTMLParser, LexborNode
from guard.engine.lexwalk import LOAD_NEEDLES, bound_extension
from guard.engine.loads import URL_ATTRS, Ref, element_refs, may_reference

# Elements whose text Lexbor writes raw, by name, also in SVG and MathML, where the parser reads
# it back as markup (mutation XSS): an SVG <style> holding `&lt;img …&gt;` would come back as an
# <img>. (<noscript> text is escaped: Lexbor parses with scripting off.)
RAW_TEXT = frozenset({"style", "script", "xmp", "iframe", "noembed", "noframes", "plaintext"})
_RAW_NAMES = tuple(sorted(name.encode() for name in RAW_TEXT))
_URL_NAMES = tuple(sorted(name.encode() for name in URL_ATTRS))

_PROBE = (
    "<!--[if mso]><v:rect><v:fill src='x'/></v:rect><![endif]--><html manifest='m'><head>"
    "<style>a{background:url(s.png)}</style><base href='http://b.example/'></head><body>"
    "<p style='color:red'>t</p><p style='BACKGROUND:URL(q.png)'>u</p><p style='\\75rl(e)'>v</p>"
    "<img src='p.gif'><a href='l'>x</a><svg><style>q</style><image xlink:href='i.png'/>"
    "<feImage href='f'/><a xlink:href='s'>w</a><script>z</script></svg><div o:href='o'></div>"
    "<math><style>m</style></math><xmp>&lt;</xmp>"
    "<table><tr><td background='bg.png'>y</td></tr></table>"
    "<!-- plain --><div data-x='1'>k</div></body></html><img srcset='a 1x'><!--[IF gte mso 9]-->"
)


_ext: Any = bound_extension()


def every_node(document: LexborNode) -> list[LexborNode]:
    """The reference: from the document node, so that comments before <html> and after </html>
    (its children) are visited too."""
    return list(document.traverse(include_text=False))


def edited(nodes: list[LexborNode]) -> list[LexborNode]:
    """The nodes of `nodes` the rewrite may edit, by its own tests (for the differential test)."""
    kept = []
    for node in nodes:
        tag = node.tag
        if tag == "-comment":
            if (node.comment_content or "").lstrip().lower().startswith("[if"):
                kept.append(node)
        elif tag is not None and not tag.startswith("-"):
            attrs = node.attributes
            if tag.lower() in RAW_TEXT or (attrs and may_reference(attrs)):
                kept.append(node)
    return kept


PlainLink = tuple[LexborNode, str]
"""A plain link's node and its href as written (see `walked_records`)."""
PlainImage = tuple[LexborNode, str | None, list[str]]
"""A plain image's node, its src as written (None: none), its srcset's candidate URLs."""
Record = LexborNode | PlainLink | PlainImage


def candidate_nodes(document: LexborNode) -> list[LexborNode] | None:
    """The extension's candidates, in document order; None without the extension."""
    found: list[LexborNode] | None = _candidates(document, False)
    return found


def _candidates(document: LexborNode, plain: bool) -> list[Any] | None:
    if _ext is None or document.parser is None:
        return None
    try:
        found: list[Any] = _ext.candidates(
            document.parser, document, document.mem_id, _RAW_NAMES, _URL_NAMES, LOAD_NEEDLES, plain
        )
    except (TypeError, ValueError):
        return None
    return found


def walked_nodes(document: LexborNode) -> list[LexborNode]:
    """What the rewrite visits, in document order (see the module docstring)."""
    if _ext is not None:
        found = candidate_nodes(document)
        if found is not None:
            return found
    return every_node(document)


def walked_records(document: LexborNode) -> list[Record]:
    """`walked_nodes`, but with the extension a plain link or image comes as its references,
    read in C exactly as `element_refs` reads the element (`record_refs`): an `<a>`/`<area>`
    whose only reference is its href, an `<img>` whose only references are its src (not a
    `data:`/`cid:` one, which may nest a document) and srcset (see _lexwalk.c's plain_record).
    The rewrite then reads no attribute of the thousands of links and images of a newsletter
    through selectolax, and only edits those whose reference goes or changes."""
    if _ext is not None:
        found = _candidates(document, True)
        if found is not None:
            return found
    return list(every_node(document))


def holds_base(records: list[Record]) -> bool:
    """May the document hold a `<base href>` (what guard.engine.html.document_base reads)? Every
    such element is one of `walked_records` (its href may be edited), handed as its node: the
    records answer it without searching the document's text for a `<base` tag."""
    base = _BASE_TAG_ID
    # In C where it was built (guard/clean/rewritecore.py): a newsletter's hundred records.
    found = holds_tag(records, base)
    if found is not None:
        return found
    # (By Lexbor's tag id, the same for `<base>` in any case and namespace: no name is made.)
    return any(not isinstance(r, tuple) and r.tag_id == base for r in records)


def _tag_id(name: str) -> int:
    found = LexborHTMLParser(f"<{name}>").css_first(name)
    assert found is not None
    tag_id: int = found.tag_id
    return tag_id


_BASE_TAG_ID = _tag_id("base")


def record_node(record: Record) -> LexborNode:
    return record[0] if isinstance(record, tuple) else record


def record_refs(record: PlainLink | PlainImage) -> list[Ref]:
    """A plain record's references as `element_refs` gives them (for the probe and the tests)."""
    tag = (record[0].tag or "").lower()
    if len(record) == 2:
        return [Ref(record[1], f"{tag}[href]", False)]
    src, srcset = record[1], record[2]
    refs = [Ref(src, "img[src]", True, True)] if src is not None else []
    return refs + [Ref(url, "img[srcset]", True, True) for url in srcset]


def _probe_agrees() -> bool:
    """Do the candidates hold, on the probe, every node the rewrite edits, in the same order?"""
    from guard.engine.html import parse_document

    tree = parse_document(_PROBE)
    document = tree.root.parent if tree is not None and tree.root is not None else None
    if document is None:
        return False
    try:
        found = candidate_nodes(document)
    except Exception:  # noqa: BLE001 - an extension that fails on the probe is not used
        return False
    if found is None:
        return False
    ids = [n.mem_id for n in edited(every_node(document))]
    if not (len(ids) >= 19 and [n.mem_id for n in edited(found)] == ids):
        return False
    return _plain_agrees(document)


def _plain_agrees(document: LexborNode) -> bool:
    """Are the plain records the candidates, and their references `element_refs`'s?"""
    records = _candidates(document, True)
    if records is None or [record_node(r).mem_id for r in records] != [
        n.mem_id for n in (candidate_nodes(document) or [])
    ]:
        return False
    plain = [r for r in records if type(r) is tuple]
    return len(plain) >= 3 and all(
        record_refs(r) == element_refs((r[0].tag or "").lower(), r[0].attributes.get) for r in plain
    )


if _ext is not None and not _probe_agrees():
    _ext = None
