"""Rewrite one HTML document: neutralise chosen loads, replace chosen links.

The document is parsed as a mail client's browser engine parses it (HTML5, by Lexbor, the parser
the scan uses), so a tracker is stripped where the client renders it: after `</html>`, or moved
out of a table by foster parenting. What an element loads or links to comes from
`guard.engine.loads.element_refs` (and `conditional_comment_refs`, `css_urls`), the scan's own
definition. This module decides nothing about tracking: a `Rewriter` says, per resolved URL,
whether a load goes and what a link becomes.

A tree does not always read back the same once written out: a `<style>` foster-parented into
`<math>` becomes MathML and its text markup, a `<p>` or `<a>` the parser had to nest oddly comes
back elsewhere. Every rewrite is therefore parsed again and its loads read by the same definition
(`guard.engine.load_walk.document_loads`: the scan's loads) before it is returned; one that would
still load something the rewriter removed, or load anything the original did not, raises
`RewriteUnsafe` and is not written.
"""

from __future__ import annotations

import html as html_escape
import re
from collections.abc import Callable
from enum import Enum
from operator import itemgetter
from typing import Protocol

from guard.clean.nodes import (
    RAW_TEXT,
    PlainImage,
    Record,
    holds_base,
    record_node,
    walked_records,
)
from guard.clean.rewritecore import plain_records, serialized
from guard.engine.css import sheet_urls, strip_css_urls
from guard.engine.deferred import LexborHTMLParser, LexborNode
from guard.engine.html import (
    Nest,
    document_base,
    dropped_images,
    nested_documents,
    parse_document,
    scan_nested,
)
from guard.engine.lexwalk import has_start_tag
from guard.engine.load_walk import document_loads
from guard.engine.loads import (
    Ref,
    conditional_comment_refs,
    element_refs,
    may_reference,
    srcset_urls,
)
from guard.engine.nested import (
    CSS_TYPES,
    NESTED_DEPTH,
    NESTING_ATTRS,
    SVG_TYPES,
    decode_data_url,
    encode_data_url,
    xml_stylesheet_hrefs,
)
from guard.engine.parse_bounds import parse_is_bounded
from guard.engine.urls import Url, parse_http, resolve


class LoadAction(Enum):
    KEEP = "keep"
    REMOVE = "remove"  # neutralise the reference, keep the element (alt text, layout)
    REMOVE_PIXEL = "remove-pixel"  # a beacon: an <img> carrying it goes entirely


class Rewriter(Protocol):
    def load_action(self, url: str) -> LoadAction:
        """What to do with a load of `url` (resolved against the document's base)."""
        ...

    def link_target(self, url: str) -> str | None:
        """What a link to `url` (resolved) becomes; None: it stays."""
        ...


UrlParser = Callable[[str], Url | None]


def _parser_of(rewriter: Rewriter) -> UrlParser:
    """How the rewrite splits URLs: urls.parse_http, or a rewriter's `parse_url` that gives the
    same answers (the cleaning planner's, which splits each URL of a message once)."""
    parse: UrlParser = getattr(rewriter, "parse_url", parse_http)
    return parse


class RewriteUnsafe(ValueError):
    """The document is left as it was: read back, the rewrite would still load something the
    rewriter removed or load something the original does not, or it is too costly to parse."""


# `img[src]`, `td[background]`, `applet[code]`: the attribute between the brackets.
_ATTR_OF = re.compile(r"^[^\[\s]+\[([^\]=]+)\]$")
# Elements that are nothing but their load: the element goes with it.
_WHOLE_ELEMENT = ("link[", "meta[", "base[", "script[")
# What follows a <plaintext>'s text when Lexbor writes it out: closing tags a browser would show as
# text, since nothing ends <plaintext>.
_PLAINTEXT_END = re.compile(r"</plaintext>(?:</[A-Za-z][^<>]*>)*\Z")


def _text_nodes(node: LexborNode) -> list[LexborNode]:
    return [n for n in node.traverse(include_text=True) if n.tag == "-text"]


class _Document:
    """One parsed HTML document being rewritten."""

    def __init__(
        self, tree: LexborHTMLParser, source: str, rewriter: Rewriter, depth: int = 0
    ) -> None:
        self.tree = tree
        self.rewriter = rewriter
        self.depth = depth  # how deep this document is nested in the message's HTML part
        self.written: set[str] = set()  # every load reference as written (see `dropped_images`)
        document = tree.root.parent if tree.root is not None else None
        self.nodes: list[Record] = walked_records(document) if document is not None else []
        # Without a `<base>` among the records, no selector query.
        self.base = document_base(tree) if holds_base(self.nodes) else None
        self.changed = False
        self.base_removed = False
        self.removed_any = False  # once an element went, its descendants are skipped
        self.plaintext = False
        self.raw_text: list[LexborNode] = []  # elements of RAW_TEXT whose text needs a look
        # Every load of the original, resolved and as written, stripped (see `verify`): kept as
        # text, split only if the check meets a URL that is not one of them.
        self.loads: set[str] = set()
        self.seen: dict[str, str] = {}  # each load as written -> resolved (recorded in `loads`)

    # -- helpers ---------------------------------------------------------------------------------

    def resolved(self, ref: Ref) -> str:
        return ref.url if ref.element == "base[href]" else resolve(self.base, ref.url)

    def removes(self, url: str) -> bool:
        """For CSS and srcset candidates, whose URLs come as written."""
        return self.rewriter.load_action(resolve(self.base, url)) is not LoadAction.KEEP

    def saw_load(self, url: str) -> None:
        # Both readings: the output has no base when the rewrite removed it. Without a base
        # they are one string (resolve strips).
        written = url.strip()
        self.loads.add(written)
        if self.base:
            self.loads.add(resolve(self.base, url).strip())

    def remove(self, node: LexborNode) -> None:
        node.decompose()  # detaches the subtree; Lexbor frees nothing until the document goes
        self.removed_any = True
        self.changed = True

    # -- the walk --------------------------------------------------------------------------------

    def rewrite(self) -> None:
        # A newsletter's hundred plain links are read here, not through a method each: a link
        # asks the rewriter once per href as written (the base does not change during the walk).
        link_target, base = self.rewriter.link_target, self.base
        targets: dict[str, str | None] = {}
        records = self.nodes
        # Without a base, the plain links and images between the records Python reads are read
        # in C where the rewriter is the planner (guard/clean/rewritecore.py `plain_records`).
        fast = plain_records(self.rewriter) if base is None else None
        i, n = 0, len(records)
        while i < n:
            if fast is not None:
                i, edits = fast(
                    records, i, self.removed_any, targets, self.seen, self.loads, self.written
                )
                for edited, new in edits:
                    edited.attrs["href"] = new
                    self.changed = True
                if i == n:
                    break
            record = records[i]
            i += 1
            if not isinstance(record, tuple):
                self.rewrite_node(record)
            elif len(record) == 2:
                # A link whose one reference is its href (`walked_records`): as
                # `rewrite_element` reads it.
                node, href = record
                if self.removed_any and node.parent is None:
                    continue  # inside an element that went
                if href in targets:
                    target = targets[href]
                else:
                    # (resolve without a base: the text stripped)
                    url = href.strip() if base is None else resolve(base, href)
                    target = targets[href] = link_target(url)
                if target is not None and target != href:
                    node.attrs["href"] = target
                    self.changed = True
            else:
                self.rewrite_plain_image(record)
        if self.base_removed:
            self.absolutise_links()

    def rewrite_node(self, node: LexborNode) -> None:
        tag = node.tag
        if tag is None or tag.startswith("-"):  # the document, its doctype, comments
            if tag == "-comment":
                self.rewrite_comment(node)
            return
        if self.removed_any and node.parent is None:
            return  # inside an element that went
        tag = tag.lower()  # SVG keeps camelCase (feImage); the definitions are lower-case
        if tag in RAW_TEXT:
            text = None
            if tag == "style":
                text = self.rewrite_style_element(node)
            elif tag == "plaintext":
                self.plaintext = True
            if text is None:
                text = node.text(deep=False)
            if "<" in text or "&" in text:
                self.raw_text.append(node)
        attrs = node.attributes
        if attrs and may_reference(attrs):
            self.rewrite_element(node, tag, attrs)

    def seen_load(self, ref: Ref) -> str:
        """The load resolved, recorded once per URL as written (`saw_load`, `written`)."""
        url = self.seen.get(ref.url)
        if url is None:
            url = self.first_seen(ref.url)
        return ref.url if ref.element == "base[href]" else url

    def first_seen(self, url: str) -> str:
        if self.base:
            self.saw_load(url)
            self.written.add(url.strip())
            resolved = self.seen[url] = resolve(self.base, url)
            return resolved
        # `saw_load` and `resolve` without a base: the URL stripped, for all three.
        written = self.seen[url] = url.strip()
        self.loads.add(written)
        self.written.add(written)
        return written

    def rewrite_plain_image(self, record: PlainImage) -> None:
        """An image whose references are its src and srcset (`walked_records`): as
        `rewrite_element`, which reads them in this order (and finds no nested document)."""
        node, src, srcset = record
        if self.removed_any and node.parent is None:
            return
        # Each load is seen (`first_seen`), even once the image went; read in one loop, not a
        # method call each (a newsletter's images: a src and a srcset of two or three).
        seen, load_action, keep = self.seen, self.rewriter.load_action, LoadAction.KEEP
        gone = False
        element = "img[src]" if src is not None else "img[srcset]"
        for url in (src, *srcset) if src is not None else srcset:
            resolved = seen.get(url)
            if resolved is None:
                resolved = self.first_seen(url)
            if not gone:
                action = load_action(resolved)
                if action is not keep:
                    self.neutralise(node, "img", Ref(url, element, True, True), action)
                    gone = node.parent is None
            element = "img[srcset]"

    def rewrite_element(self, node: LexborNode, tag: str, attrs: dict[str, str | None]) -> None:
        # The walk passes only elements still in the tree; this one leaves it only by neutralise.
        gone = False
        for ref in element_refs(tag, attrs.get):
            if ref.load:
                url = self.seen_load(ref)
                if gone:
                    continue  # the element went with an earlier reference
                action = self.rewriter.load_action(url)
                if action is not LoadAction.KEEP:
                    self.neutralise(node, tag, ref, action)
                    gone = node.parent is None
            elif not gone:
                target = self.rewriter.link_target(resolve(self.base, ref.url))
                if target is not None and target != node.attrs.get("href"):
                    node.attrs["href"] = target
                    self.changed = True
        if tag in NESTING_ATTRS and not gone:
            self.rewrite_nested(node, tag)

    def rewrite_nested(self, node: LexborNode, tag: str) -> None:
        """The documents the element holds (`srcdoc`, `data:` URLs), cleaned the same way and put
        back encoded as they were; one that cannot be cleaned safely goes with its attribute."""
        live = node.attrs
        for doc in nested_documents(tag, live.get):
            for occurrence in scan_nested(doc.text, Nest(depth=self.depth)):
                if occurrence.load:
                    self.saw_load(occurrence.url)
            try:
                new = rewrite_nested_text(doc.media_type, doc.text, self.rewriter, self.depth + 1)
            except RewriteUnsafe:
                del live[doc.attr]
                self.changed = True
                continue
            if new is None:
                continue
            if doc.attr == "srcdoc":
                live["srcdoc"] = new
            else:
                data = decode_data_url(live.get(doc.attr) or "")
                if data is None:  # pragma: no cover - nested_documents decoded it just now
                    del live[doc.attr]
                else:
                    live[doc.attr] = encode_data_url(data, new)
            self.changed = True

    def drop_dropped_images(self, html: str) -> None:
        """`<image>`s the tree lost (see `dropped_images`) are not written out: a rewrite that
        removes one must be written even when nothing else changed."""
        if not has_start_tag(html, "image"):  # (dropped_images's own first test, in C)
            return
        for ref in dropped_images(html, self.written):
            self.saw_load(ref.url)
            if self.rewriter.load_action(self.resolved(ref)) is not LoadAction.KEEP:
                self.changed = True

    def neutralise(self, node: LexborNode, tag: str, ref: Ref, action: LoadAction) -> None:
        element = ref.element
        self.changed = True
        live = node.attrs
        if element.endswith(" url()"):
            live["style"] = strip_css_urls(live.get("style") or "", self.removes)
        elif element.endswith("[srcset]"):
            kept = _srcset_without(live.get("srcset") or "", self.removes)
            if kept.strip():
                live["srcset"] = kept
            elif "srcset" in live:
                del live["srcset"]
        elif element.startswith(_WHOLE_ELEMENT):
            if element == "base[href]":
                self.base_removed = True
            self.remove(node)
        elif tag == "img" and action is LoadAction.REMOVE_PIXEL:
            self.remove(node)
        elif element == "input[type=image]":
            del live["src"]
        else:
            attr = _ATTR_OF.match(element)
            # The element stays without it: an image keeps its alt text and size (layout), an
            # <object> shows its fallback content.
            if attr is not None and attr.group(1) in live:
                del live[attr.group(1)]

    def rewrite_style_element(self, node: LexborNode) -> str | None:
        """The CSS is the text below the `<style>`, read as the scan reads it (an SVG `<style>`
        may hold elements too); each text node loses the url()s that go. Returns the element's
        own text (`node.text(deep=False)`, which `rewrite_node` reads next) where it is the CSS
        read here and left as it was (no text below, or one text node unchanged), else None."""
        css = node.text(deep=True)
        if not css:
            return css  # no text below it: none of its own either
        urls = sheet_urls(css)
        for url in urls:
            self.saw_load(url)
        child = node.child
        if (
            child is not None
            and child.next is None
            and child.tag == "-text"
            and not any(map(self.removes, urls))
        ):
            # strip_css_urls changes a text only where one of its URLs goes (its first test,
            # these questions in this order), and a single text node is `css` itself: neither
            # its copy nor the test again. (Several text nodes may read otherwise together than
            # each alone: a comment opened in one, closed in the next.)
            return css
        for text in _text_nodes(node):
            old = text.text_content or ""
            new = strip_css_urls(old, self.removes)
            if new != old:
                text.replace_with(new)  # a str becomes a text node; <style> writes it out raw
                self.changed = True
        return None

    def rewrite_comment(self, node: LexborNode) -> None:
        text = node.comment_content or ""
        new = text
        for ref in conditional_comment_refs(text):  # remembered by its text (loads.py)
            url = resolve(self.base, ref.url)
            if ref.load:
                self.saw_load(ref.url)
                if self.rewriter.load_action(url) is not LoadAction.KEEP:
                    replaced = _replace_in_comment(new, "src", ref.url, "")
                    if replaced == new:  # another attribute, or CSS: the URL itself goes
                        for written in {ref.url, html_escape.escape(ref.url)}:
                            replaced = _whole_url(written).sub("", replaced)
                    new = replaced
            else:
                target = self.rewriter.link_target(url)
                if target is not None:
                    new = _replace_in_comment(new, "href", ref.url, html_escape.escape(target))
        if new != text:
            node.replace_with(_comment(new))
            self.changed = True

    def absolutise_links(self) -> None:
        """The `<base>` went (it was itself a remote load): relative links keep their target."""
        for record in self.nodes:
            node = record_node(record)
            if node.tag not in ("a", "area") or node.parent is None or not self.base:
                continue
            href = node.attrs.get("href")
            if href and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^#", href.strip()):
                node.attrs["href"] = resolve(self.base, href)

    # -- writing out -----------------------------------------------------------------------------

    def output(self, source: str) -> tuple[str, bytes | None]:
        """The tree as HTML (`source`: the document as parsed, for its doctype) and its UTF-8
        bytes (None where it has none). With the C serialiser (guard/clean/rewritecore.py) the
        bytes Lexbor wrote, taken as they are where they are UTF-8, and the text decoded from
        them: `text`'s pieces each start and end with ASCII markup, so a strict decode of the
        whole is the replacing decode of each."""
        self.escape_foreign_raw_text()
        data = None if self.plaintext else self.utf8(source)
        if data is not None:
            try:
                return data.decode("utf-8"), data
            except UnicodeDecodeError:
                pass
        text = self.text(source)
        try:
            return text, text.encode("utf-8")
        except UnicodeEncodeError:
            return text, None

    def utf8(self, source: str) -> bytes | None:
        """`text`'s pieces as bytes from the C serialiser; None where it is not used."""
        document = self.tree.root.parent if self.tree.root is not None else None
        parts: list[bytes] = []
        node = document.child if document is not None else None
        while node is not None:
            if node.tag == "-doctype":
                try:
                    parts.append(_doctype(node, source).encode("utf-8"))
                except UnicodeEncodeError:
                    return None
            else:
                data = serialized(node)
                if data is None:
                    return None
                parts.append(data)
            node = node.next
        return b"".join(parts)

    def text(self, source: str) -> str:
        """The tree as HTML, its foreign raw text escaped already (`output`)."""
        document = self.tree.root.parent if self.tree.root is not None else None
        parts: list[str] = []
        node = document.child if document is not None else None
        while node is not None:
            parts.append(_doctype(node, source) if node.tag == "-doctype" else node.html or "")
            node = node.next
        text = "".join(parts)
        if self.plaintext:
            end = _PLAINTEXT_END.search(text)
            if end is not None:
                text = text[: end.start()]
        return text

    def escape_foreign_raw_text(self) -> None:
        """Give the text of an SVG or MathML element of RAW_TEXT its references, since Lexbor
        writes it raw: read back, the markup is the text again."""
        for node in self.raw_text:
            if node.parent is None:
                continue
            opening = node.html_pretty(tag_with_ns=True) or ""
            if not opening.startswith(("<svg:", "<math:")):
                continue  # an HTML element: its raw text reads back as it is
            child = node.child
            while child is not None:
                following = child.next
                if child.tag == "-text":
                    child.replace_with(html_escape.escape(child.text_content or "", quote=False))
                child = following


_first = itemgetter(0)


class _Check:
    """What the output of a rewrite is checked against: the original's loads."""

    def __init__(self, rewriter: Rewriter, loads: set[str]) -> None:
        self.rewriter = rewriter
        self.loads = loads  # as `_Document.loads`: texts, stripped
        self.raws: set[str] | None = None  # their http(s) URLs split, once one is needed
        self.parse = _parser_of(rewriter)

    def verify(self, output: str, encoded: bytes | None = None) -> None:
        """Read the output back as a mail client would: nothing removed still loads, and nothing
        loads that the original did not. Each distinct URL is asked once (at its first load in
        document order, which names the element of a failure). `encoded`: `output` as UTF-8,
        the bytes the parser reads (see `document_loads`)."""
        action, loads = self.rewriter.load_action, self.loads
        found = document_loads(output, encoded=encoded)
        kept = getattr(self.rewriter, "kept_loads", None)
        if (
            kept is not None
            and kept.issuperset(map(_first, found))
            and loads.issuperset(map(_first, found))
        ):
            # Each URL was answered KEEP during the rewrite and is one of the original's loads
            # as written: what the loop below finds, with no question asked (a set's own loop).
            return
        for url, element in found:
            if action(url) is not LoadAction.KEEP:
                raise RewriteUnsafe(
                    f"the cleaned HTML, read back, still loads what was removed ({element})"
                )
            if url in loads:
                continue  # one of the original's loads as it wrote it: the same URL split
            parsed = self.parse(url)
            if parsed is not None and parsed.raw not in self.original_raws():
                raise RewriteUnsafe(
                    f"the cleaned HTML, read back, loads what the original does not ({element})"
                )

    def original_raws(self) -> set[str]:
        """The original's loads as http(s) URLs (`Url.raw`): what a URL read back that is not
        one of `loads` as text must be, split."""
        if self.raws is None:
            parse = self.parse
            self.raws = {p.raw for p in map(parse, self.loads) if p is not None}
        return self.raws


def _doctype(node: LexborNode, source: str) -> str:
    """The doctype as written. Lexbor writes `<!DOCTYPE html>` for any doctype, its full form
    drops what does not parse (and with it the force-quirks flag): the public and system ids
    and the errors decide the rendering mode (quirks, almost standards, standards)."""
    full = (node.html_pretty(full_doctype=True) or "").rstrip("\n")
    written = _leading_doctype(source)
    if written is not None and _full_doctype(written) == full:
        return written
    return full


# The full form of a doctype as written, by the doctype: a sender writes the same one in every
# message (a parse each). Bounded as the other memos: entries, and the length of a doctype kept.
_FULL_DOCTYPES: dict[str, str | None] = {}
_FULL_DOCTYPES_SIZE = 256
_FULL_DOCTYPE_LONGEST = 1024


def _full_doctype(written: str) -> str | None:
    """The full form of the doctype `written` parses to alone; None when it makes none."""
    if written in _FULL_DOCTYPES:
        return _FULL_DOCTYPES[written]
    again = LexborHTMLParser(written).root
    doctype = again.prev if again is not None else None
    full = None if doctype is None else (doctype.html_pretty(full_doctype=True) or "").rstrip("\n")
    if len(written) <= _FULL_DOCTYPE_LONGEST:
        if len(_FULL_DOCTYPES) >= _FULL_DOCTYPES_SIZE:
            _FULL_DOCTYPES.clear()
        _FULL_DOCTYPES[written] = full
    return full


def _leading_doctype(source: str) -> str | None:
    """The `<!doctype …>` token at the start of `source`, after what may precede a doctype:
    whitespace, comments and `<?…>` (a bogus comment). A loop, not a regex: a pattern of repeated
    comments backtracks without end on a document of many comments that holds no doctype."""
    pos, n = 0, len(source)
    while pos < n:
        if source[pos] in "\t\n\f\r ":
            pos += 1
        elif source.startswith("<!--", pos):
            end = source.find("-->", pos + 2)  # `<!-->` and `<!--->` are whole comments
            if end == -1:
                return None
            pos = end + 3
        elif source.startswith("<?", pos):
            end = source.find(">", pos)
            if end == -1:
                return None
            pos = end + 1
        elif source[pos : pos + 9].lower() == "<!doctype":
            end = source.find(">", pos)
            return source[pos : end + 1] if end != -1 else None
        else:
            return None
    return None


def _comment(text: str) -> LexborNode:
    """A comment node holding `text` (Lexbor copies a node from another tree on insertion)."""
    node = LexborHTMLParser(f"<!--{text}-->").root
    comment = node.prev if node is not None else None
    if comment is None or comment.comment_content != text:
        raise RewriteUnsafe("a rewritten conditional comment does not read back as written")
    return comment


def _replace_in_comment(text: str, attr: str, old: str, new: str) -> str:
    pattern = re.compile(rf"(\b{attr}\s*=\s*)([\"']){re.escape(old)}\2", re.I)
    return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{new}{m.group(2)}", text)


def _whole_url(url: str) -> re.Pattern[str]:
    """The URL as a whole value in markup or CSS (not the start of a longer URL)."""
    return re.compile(rf"(?<=[\"'(\s=]){re.escape(url)}(?=[\"')\s>;,]|\Z)")


def _srcset_without(value: str, remove: Callable[[str], bool]) -> str:
    """`value` without the candidates (URL + descriptors) whose URL `remove` accepts.

    Candidates are located with `srcset_urls`, the splitter detection uses (commas inside URLs
    stay): each candidate runs from its URL to the next candidate's URL.
    """
    spans: list[tuple[int, str]] = []
    pos = 0
    for url in srcset_urls(value):
        start = value.find(url, pos)
        if start == -1:
            continue
        spans.append((start, url))
        pos = start + len(url)
    pieces: list[str] = []
    for index, (start, url) in enumerate(spans):
        end = spans[index + 1][0] if index + 1 < len(spans) else len(value)
        if not remove(url):
            pieces.append(value[start:end])
    if not pieces:
        return ""
    head = value[: spans[0][0]] if spans else ""
    return (head + "".join(pieces)).rstrip().rstrip(",").rstrip()


def rewrite_nested_text(media_type: str, text: str, rewriter: Rewriter, depth: int) -> str | None:
    """A nested document or stylesheet with loads neutralised (None: nothing changed). HTML is
    rewritten on its tree, SVG/XML and CSS as text; past `NESTED_DEPTH` (or when the rewrite
    cannot be verified) RewriteUnsafe, and the caller drops the whole nested document."""
    if media_type in CSS_TYPES:
        new = strip_css_urls(text, lambda url: _removes(rewriter, url))
        return None if new == text else new
    if media_type in SVG_TYPES:
        return rewrite_svg_text(text, rewriter)
    if depth > NESTED_DEPTH:
        # Read by the markup scan (`scan_nested`): a document that removes anything goes whole.
        if any(o.load and _removes(rewriter, o.url) for o in scan_nested(text, Nest(depth=depth))):
            raise RewriteUnsafe("a nested document is nested too deeply to be cleaned")
        return None
    return rewrite_html(text, rewriter, depth=depth)


def _removes(rewriter: Rewriter, url: str) -> bool:
    return rewriter.load_action(url.strip()) is not LoadAction.KEEP


# (to/from/values: an animation of `href`, see guard.engine.loads's _ANIMATIONS)
_SVG_URL_ATTR = re.compile(
    r"""(\b(?:xlink:href|href|src|to|from|values)\s*=\s*)(?:"([^"]*+)"|'([^']*+)')""", re.I
)


def rewrite_svg_text(text: str, rewriter: Rewriter) -> str | None:
    """An SVG/XML document (a `cid:` part, a `data:image/svg+xml` URL) with loads neutralised as
    text, so it stays the XML it was: a removed URL's attribute value becomes empty, its url()
    `none`, its `<?xml-stylesheet?>` goes. Verified by scanning the result (RewriteUnsafe)."""
    removed = {url for url, _ in document_loads(text) if _removes(rewriter, url)} | {
        href for href in xml_stylesheet_hrefs(text) if _removes(rewriter, href)
    }
    if not removed:
        return None

    def attr(m: re.Match[str]) -> str:
        value = m.group(2) if m.group(2) is not None else m.group(3)
        items = [html_escape.unescape(value)]
        if m.group(1).lower().startswith("values"):  # a list
            items = items[0].split(";")
        if any(i.strip() in removed or _removes(rewriter, i) for i in items if i.strip()):
            quote = '"' if m.group(2) is not None else "'"
            return f"{m.group(1)}{quote}{quote}"
        return m.group(0)

    def stylesheet(m: re.Match[str]) -> str:
        hrefs = xml_stylesheet_hrefs(m.group(0))
        return "" if any(_removes(rewriter, h) for h in hrefs) else m.group(0)

    new = _SVG_URL_ATTR.sub(attr, text)
    new = strip_css_urls(new, lambda url: _removes(rewriter, url))
    new = _XML_STYLESHEET_PI.sub(stylesheet, new)
    left = [url for url, _ in document_loads(new) if _removes(rewriter, url)]
    if left or any(_removes(rewriter, h) for h in xml_stylesheet_hrefs(new)):
        raise RewriteUnsafe("an SVG document, rewritten, still loads what was removed")
    return new


_XML_STYLESHEET_PI = re.compile(r"<\?xml-stylesheet\b[^>]*+>", re.I)


def rewrite_html(
    html: str, rewriter: Rewriter, parsed: LexborHTMLParser | None = None, depth: int = 0
) -> str | None:
    """The document with loads neutralised and links replaced; None when nothing changed.

    `parsed`: `html` as the scan parsed it (`scan_html`'s `keep`), edited in place. Raises
    RewriteUnsafe when the rewrite cannot be written safely (see the module docstring). `depth`:
    how deeply `html` is nested in another document (`srcdoc`, `data:`).
    """
    rewritten = rewrite_html_encoded(html, rewriter, parsed, depth)
    return None if rewritten is None else rewritten[0]


def rewrite_html_encoded(
    html: str, rewriter: Rewriter, parsed: LexborHTMLParser | None = None, depth: int = 0
) -> tuple[str, bytes | None] | None:
    """`rewrite_html`, with the output's UTF-8 bytes the check parsed (None where the output
    holds a lone surrogate and so has none): the part's new body is written from them instead
    of encoding the output a second time (guard/clean/body.py `_new_html_body`)."""
    if parsed is None:
        if not parse_is_bounded(html):
            # Lexbor's C code cannot be interrupted; the scan reads such a document by markup.
            raise RewriteUnsafe("the HTML nests or repeats too much to be parsed in bounded time")
        parsed = parse_document(html)
    if parsed is None:
        return None
    doc = _Document(parsed, html, rewriter, depth)
    del parsed  # the document's one reference is the _Document's (see below)
    doc.rewrite()
    doc.drop_dropped_images(html)
    if not doc.changed:
        return None
    # Encoded once, strictly: the bytes selectolax would make of the text (it encodes a str with
    # errors="ignore", the same bytes when there is nothing to ignore).
    output, encoded = doc.output(html)
    check = _Check(rewriter, doc.loads)
    # The original's tree is freed before the output is parsed: the check's parse and walk
    # then run in the memory (and the caches) it held, not beside it.
    del doc
    check.verify(output, encoded)
    return output, encoded
