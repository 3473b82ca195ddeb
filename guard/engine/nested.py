"""Documents inside documents: what an `<iframe srcdoc>`, a `data:` URL or a `cid:` part holds.

A renderer loads what a nested document references as it loads what the message references: an
`<iframe src="data:text/html,…">` or `srcdoc` is a whole HTML document, an `<object data=
"data:image/svg+xml;base64,…">` an SVG document, a `<link rel=stylesheet href="data:text/css,…">` or
`href=cid:…` a stylesheet. This module only decodes and re-encodes them (no parsing, no I/O);
guard/engine/html.py scans what they hold, guard/clean/html.py and guard/clean/message.py rewrite
it.

Hostile input: decoding is linear, and the scan bounds how deep documents nest and how many
characters of nested documents it parses (`NESTED_DEPTH`, `NESTED_BUDGET`).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple
from urllib.parse import quote, unquote_to_bytes

NESTED_DEPTH = 4
"""Documents nested deeper than this are read by the linear markup scan, without going further
down (Chromium itself stops at 32 nested frames; real mail nests none)."""
NESTED_BUDGET = 4_000_000
"""Characters of nested documents parsed as trees per message part; past it, the markup scan."""

# Media types a renderer reads as a document (HTML, SVG, XML) or as a stylesheet.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
SVG_TYPES = frozenset({"image/svg+xml", "text/xml", "application/xml"})
CSS_TYPES = frozenset({"text/css"})
DOCUMENT_TYPES = HTML_TYPES | SVG_TYPES | CSS_TYPES

# Which attribute of which element a renderer reads as a nested document.
NESTING_ATTRS: dict[str, tuple[str, ...]] = {
    "iframe": ("src",),
    "frame": ("src",),
    "object": ("data",),
    "embed": ("src",),
    "link": ("href",),  # a stylesheet only
    "img": ("src",),  # an SVG: the message's own image part or a data: URL
}


class DataUrl(NamedTuple):
    media_type: str
    """Lower-case `type/subtype` (`text/plain` when the URL gives none)."""
    header: str
    """Everything up to and including the comma: `data:text/html;base64,`."""
    base64: bool
    text: str


_DATA = re.compile(r"\s*data:", re.I)


def _data_header(url: str) -> tuple[int, str, bool] | None:
    """(where the comma is, the media type, base64?) of a `data:` URL; None as for
    `decode_data_url`."""
    m = _DATA.match(url)
    if m is None:
        return None
    comma = url.find(",", m.end())
    if comma == -1:
        return None
    params = url[m.end() : comma]
    fields = [f.strip() for f in params.split(";")]
    media_type = fields[0].lower() if fields and "/" in fields[0] else "text/plain"
    is_base64 = bool(fields) and fields[-1].lower() == "base64"
    return comma, media_type, is_base64


def data_url_media_type(url: str) -> str | None:
    """`decode_data_url(url).media_type` (None where that is None), without decoding the
    content: a caller that wants only some types decodes only those (an inline image is
    kilobytes of base64 that no document scan reads)."""
    header = _data_header(url)
    return header[1] if header is not None else None


def decode_data_url(url: str) -> DataUrl | None:
    """A `data:` URL's content as text (None for anything else, or a comma-less URL)."""
    header = _data_header(url)
    if header is None:
        return None
    comma, media_type, is_base64 = header
    body = url[comma + 1 :]
    data = unquote_to_bytes(body)
    if is_base64:
        data = _forgiving_base64(data)
    return DataUrl(media_type, url[: comma + 1], is_base64, data.decode("utf-8", "replace"))


def _forgiving_base64(data: bytes) -> bytes:
    """Base64 as the URL standard reads it: whitespace ignored, padding optional."""
    data = re.sub(rb"[\t\n\f\r ]", b"", data)
    data = data.rstrip(b"=")
    if len(data) % 4 == 1:
        return b""  # not base64: a browser fails to read it and loads nothing
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


def encode_data_url(old: DataUrl, text: str) -> str:
    """A `data:` URL with `old`'s header and `text` as its content, encoded the same way."""
    data = text.encode("utf-8")
    if old.base64:
        return old.header + base64.b64encode(data).decode("ascii")
    return old.header + quote(data, safe=" !$&'()*+,-./:;=?@_~")


def cid_of(url: str) -> str | None:
    """`cid:part@host` -> `part@host` (the Content-ID without its angle brackets), else None."""
    text = url.strip()
    if text[:4].lower() != "cid:":
        return None
    return _unquote_text(text[4:]).strip().strip("<>") or None


_CID_REF = re.compile(r"""cid:([^\s"'<>)]{1,1000})""", re.I)


def cid_references(text: str) -> set[str]:
    """The Content-IDs an HTML text references (`cid:…`), as `cid_of` reads them."""
    return {cid for m in _CID_REF.finditer(text) if (cid := cid_of(m.group(0)))}


def _unquote_text(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8", "replace") if "%" in text else text


def content_id_key(header: str | None) -> str | None:
    """A part's `Content-ID: <x@y>` -> `x@y`, as `cid_of` gives it."""
    if not header:
        return None
    return header.strip().strip("<>").strip() or None


Cids = dict[str, tuple[str, str]]
"""Content-ID -> (media type, decoded text) of a message's stylesheet and SVG parts."""


_XML_STYLESHEET = re.compile(r"<\?xml-stylesheet\b([^>]*+)>", re.I)
_PSEUDO_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


def xml_stylesheet_hrefs(text: str) -> list[str]:
    """The `<?xml-stylesheet href=…?>` of an SVG/XML document (which a renderer loads)."""
    out = []
    for m in _XML_STYLESHEET.finditer(text):
        href = _PSEUDO_HREF.search(m.group(1))
        if href is not None:
            out.append(href.group(1) if href.group(1) is not None else href.group(2))
    return out
