"""Rewrite one HTML document: neutralise chosen loads, replace chosen links.

What an element loads or links to comes from `guard.html.element_refs` (and
`conditional_comment_refs`, `css_urls`), the same definition the scan uses; the tree is
BeautifulSoup's on lxml, the parser the scan uses, so what is found is what gets stripped. This
module decides nothing about tracking: a `Rewriter` says, per resolved URL, whether a load goes
and what a link becomes.
"""

from __future__ import annotations

import html as html_escape
import re
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from bs4 import BeautifulSoup, Comment, Tag
from bs4.dammit import EntitySubstitution
from bs4.formatter import HTMLFormatter

from guard.css import strip_css_urls
from guard.html import Ref, conditional_comment_refs, element_refs, srcset_urls
from guard.urls import resolve


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


class _AsWritten(HTMLFormatter):
    """Minimal escaping (`&`, `<`, `>`) and attributes in document order: the serialisation that
    changes the least (the stock formatters sort attributes alphabetically)."""

    def __init__(self) -> None:
        super().__init__(
            entity_substitution=EntitySubstitution.substitute_xml, void_element_close_prefix=""
        )

    def attributes(self, tag: Any) -> list[tuple[str, Any]]:
        return list(tag.attrs.items()) if tag.attrs else []


_FORMATTER = _AsWritten()
# `img[src]`, `td[background]`, `applet[code]`: the attribute between the brackets.
_ATTR_OF = re.compile(r"^[^\[\s]+\[([^\]=]+)\]$")
# Elements that are nothing but their load: the element goes with it.
_WHOLE_ELEMENT = ("link[", "meta[", "base[", "script[")


def _gone(tag: Tag) -> bool:
    """Decomposed already (directly or with an ancestor)? Read from the instance: bs4's own
    `decomposed` property falls back to a subtree search (`tag.find`) on live tags."""
    return bool(vars(tag).get("_decomposed", False))


def _getter(tag: Tag) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        value = tag.attrs.get(name)
        if isinstance(value, list):  # only when a multi-valued attribute slipped through
            return " ".join(value)
        return value if isinstance(value, str) else None

    return get


def _document_base(soup: BeautifulSoup) -> str | None:
    """The first absolute http(s) `<base href>`, chosen as the scan chooses it."""
    for tag in soup.find_all("base"):
        href = _getter(tag)("href")
        if href and href.strip().lower().startswith(("http://", "https://")):
            return href.strip()
    return None


class _Document:
    """One parsed HTML document being rewritten."""

    def __init__(self, html: str, rewriter: Rewriter) -> None:
        self.soup = BeautifulSoup(html, "lxml", multi_valued_attributes=None)
        self.rewriter = rewriter
        self.base = _document_base(self.soup)
        self.changed = False
        self.base_removed = False

    # -- helpers ---------------------------------------------------------------------------------

    def resolved(self, ref: Ref) -> str:
        return ref.url if ref.element == "base[href]" else resolve(self.base, ref.url)

    def action(self, url: str, *, as_written: bool = False) -> LoadAction:
        """`as_written`: `url` is not yet resolved against the base (CSS, srcset candidates)."""
        return self.rewriter.load_action(url if not as_written else resolve(self.base, url))

    def removes(self, url: str) -> bool:
        return self.action(url, as_written=True) is not LoadAction.KEEP

    # -- the walk --------------------------------------------------------------------------------

    def rewrite(self) -> None:
        for comment in list(self.soup.find_all(string=lambda s: isinstance(s, Comment))):
            self.rewrite_comment(comment)
        for tag in list(self.soup.find_all(True)):
            if _gone(tag):
                continue
            if tag.name == "style":
                self.rewrite_style_element(tag)
            self.rewrite_element(tag)
        if self.base_removed:
            self.absolutise_links()

    def rewrite_element(self, tag: Tag) -> None:
        for ref in list(element_refs(tag.name, _getter(tag))):
            if _gone(tag):
                return
            url = self.resolved(ref)
            if ref.load:
                action = self.rewriter.load_action(url)
                if action is not LoadAction.KEEP:
                    self.neutralise(tag, ref, action)
            else:
                target = self.rewriter.link_target(url)
                if target is not None and target != _getter(tag)("href"):
                    tag["href"] = target
                    self.changed = True

    def neutralise(self, tag: Tag, ref: Ref, action: LoadAction) -> None:
        element = ref.element
        self.changed = True
        if element.endswith(" url()"):
            tag["style"] = strip_css_urls(_getter(tag)("style") or "", self.removes)
        elif element.endswith("[srcset]"):
            self.strip_srcset(tag)
        elif element.startswith(_WHOLE_ELEMENT):
            if element == "base[href]":
                self.base_removed = True
            tag.decompose()
        elif tag.name == "img" and action is LoadAction.REMOVE_PIXEL:
            tag.decompose()
        elif element == "input[type=image]":
            del tag["src"]
        else:
            attr = _ATTR_OF.match(element)
            # The element stays without it: an image keeps its alt text and size (layout), an
            # <object> shows its fallback content.
            if attr is not None and attr.group(1) in tag.attrs:
                del tag[attr.group(1)]

    def strip_srcset(self, tag: Tag) -> None:
        value = _getter(tag)("srcset") or ""
        kept = _srcset_without(value, self.removes)
        if kept.strip():
            tag["srcset"] = kept
        elif "srcset" in tag.attrs:
            del tag["srcset"]

    def rewrite_style_element(self, tag: Tag) -> None:
        css = tag.string
        if css is None:
            return
        new = strip_css_urls(str(css), self.removes)
        if new != css:
            tag.string = new
            self.changed = True

    def rewrite_comment(self, comment: Comment) -> None:
        text = str(comment)
        new = text
        for ref in conditional_comment_refs(text):
            url = resolve(self.base, ref.url)
            if ref.load:
                if self.rewriter.load_action(url) is not LoadAction.KEEP:
                    new = _replace_in_comment(new, "src", ref.url, "")
            else:
                target = self.rewriter.link_target(url)
                if target is not None:
                    new = _replace_in_comment(new, "href", ref.url, html_escape.escape(target))
        if new != text:
            comment.replace_with(Comment(new))
            self.changed = True

    def absolutise_links(self) -> None:
        """The `<base>` went (it was itself a remote load): relative links keep their target."""
        for tag in self.soup.find_all(["a", "area"]):
            href = _getter(tag)("href")
            if href and self.base and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^#", href.strip()):
                tag["href"] = resolve(self.base, href)


def _replace_in_comment(text: str, attr: str, old: str, new: str) -> str:
    pattern = re.compile(rf"(\b{attr}\s*=\s*)([\"']){re.escape(old)}\2", re.I)
    return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{new}{m.group(2)}", text)


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


def rewrite_html(html: str, rewriter: Rewriter) -> str | None:
    """The document with loads neutralised and links replaced; None when nothing changed."""
    doc = _Document(html, rewriter)
    doc.rewrite()
    if not doc.changed:
        return None
    # No eventual encoding: a <meta charset> stays as written (the part keeps its charset).
    text: str = doc.soup.decode(formatter=_FORMATTER, eventual_encoding=None)  # type: ignore[arg-type]
    return text
