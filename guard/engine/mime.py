"""Raw message bytes -> ParsedMessage (headers + decoded text parts) and the display envelope.

Mail is written by adversaries and by broken software: every step here degrades instead of failing
where it can (unknown charset -> a sane fallback, broken base64 -> what decodes), and raises
`MessageError` with a one-line reason where it cannot.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable
from email.errors import HeaderParseError
from email.header import decode_header
from typing import Any

from guard.engine.deferred import getaddresses, parseaddr
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.engine.mimetree import MimeStructureError, Part, parse_headers, split
from guard.engine.model import (
    UTF8_SOURCES,
    Envelope,
    Headers,
    ParsedMessage,
    first_header,
    header_names,
)
from guard.engine.nested import DOCUMENT_TYPES, content_id_key

_native: Any
try:
    from guard.engine import _mimecore as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # not built (no C compiler at install): binascii decodes
    _native = None


def _qp_decode_python(data: bytes) -> bytes:
    """Quoted-printable -> bytes as quopri.decodestring reads it (binascii's decoder): the
    reference for guard/engine/_mimecore.c's `qp_decode` (tests/test_mimecore.py)."""
    return binascii.a2b_qp(data)


_qp_decode: Callable[[bytes], bytes] = (
    _native.qp_decode if _native is not None else _qp_decode_python
)
"""In C where it was built: the same bytes, its plain runs copied whole (binascii tests each byte
and zero-fills its output first): ~2.5x faster on the corpus's QP parts."""


class MessageError(Exception):
    """The message cannot be scanned; str(exc) is a one-line reason for the report."""


_FALLBACK_CHARSET = (
    "windows-1252"  # superset of latin-1 that browsers use for unlabelled 8-bit text
)


_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# Every other byte: bytes.translate deletes them in one C pass (`re.sub` of the complement class
# built a piece per line break: ~7x slower on the corpus's base64 parts).
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_BASE64)))


def decode_transfer(payload: bytes, cte: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding, salvaging what decodes from broken input."""
    encoding = (cte or "").strip().lower()
    if encoding == "base64":
        data = payload.translate(None, _NOT_BASE64)  # line breaks and junk out, as a reader does
        data = data.split(b"=", 1)[0]  # padding (or junk after it) ends the data
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        data += b"=" * (-len(data) % 4)
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        return _qp_decode(payload)
    return payload


# Python codecs that are no charset a mail client knows; punycode also decodes in quadratic time
# (a 1 MB part labelled with it took 20 s), so a label naming one is treated as unknown.
NOT_CHARSETS = frozenset({"punycode", "idna", "unicode_escape", "raw_unicode_escape"})


# A message's few labels are read again and again (decoding each text part, and cleaning's
# reading and writing codecs of each part it rewrites): each label's answer is kept, as the
# style memo, bounded in entries and length.
_CODEC_MEMO: dict[str, str | None] = {}
_CODEC_MEMO_SIZE = 256
_CODEC_MEMO_LONGEST = 64


def charset_codec(label: str | None) -> str | None:
    """The Python codec for a charset label (None: unknown, or no charset a client reads)."""
    if not label:
        return None
    try:
        return _CODEC_MEMO[label]
    except KeyError:
        pass
    try:
        name: str | None = codecs.lookup(label.strip().strip('"')).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        name = None
    if name in NOT_CHARSETS:
        name = None
    if len(label) <= _CODEC_MEMO_LONGEST:
        if len(_CODEC_MEMO) >= _CODEC_MEMO_SIZE:
            _CODEC_MEMO.clear()
        _CODEC_MEMO[label] = name
    return name


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip('"').lower()
    # Mail software writes these for ASCII/Latin-1, which browsers read as windows-1252.
    if label in ("us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1"):
        return _FALLBACK_CHARSET
    return charset_codec(label)


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a text part -> str: declared charset, else UTF-8, else windows-1252."""
    return _decoded(data, charset)[0]


def _decoded(data: bytes, charset: str | None) -> tuple[str, bool]:
    """`decode_text`, and whether the text is `data` read as UTF-8 without an error (so `data`
    are the bytes encoding the text in UTF-8 would make)."""
    codec = _codec(charset)
    if codec is not None:
        if codec in _CP1252 and _cp1252 is not None:
            text = _cp1252(data)
            if text is not None:
                return text, False
        try:
            return data.decode(codec), codec == "utf-8"
        except UnicodeDecodeError:
            if codec == "utf-8":
                return data.decode("utf-8", errors="replace"), False
        except (LookupError, UnicodeError):
            # Non-text codecs (`base64`, `rot13`) and `undefined` raise these: use the fallback.
            pass
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        text = _cp1252(data) if _cp1252 is not None else None
        if text is not None:
            return text, False
        return data.decode(_FALLBACK_CHARSET, errors="replace"), False


# windows-1252 (what mail labels ISO-8859-1 and US-ASCII are read as) in C where it is built:
# `_mimecore.cp1252_decode` gives bytes.decode("cp1252"), or None for a byte it leaves undefined
# (then the codec decides, raising or replacing as before).
_CP1252 = frozenset({"cp1252", "windows-1252"})
_cp1252: Callable[[bytes], str | None] | None = getattr(_native, "cp1252_decode", None)


def decode_header_value(value: str | None) -> str:
    """RFC 2047 words -> text, word by word (a bogus charset spoils only its own word); junk comes
    back as it was, never an exception."""
    if not value:
        return ""
    text = str(value)
    if "=?" not in text and text.isascii():
        # No encoded word (decode_header gives the text back as one chunk) and nothing to
        # replace: most headers. What follows would give the same.
        return " ".join(text.replace("\x00", "").split())
    return _decoded_words(text)


def _decoded_words(text: str) -> str:
    """`decode_header_value` of a non-empty text, through the stdlib's RFC 2047 reader."""
    try:
        chunks = decode_header(text)
    except (ValueError, LookupError, UnicodeError, TypeError, AssertionError, HeaderParseError):
        chunks = [(text, None)]
    words = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            raw = chunk.decode("ascii", "surrogateescape") if charset is None else None
            words.append(raw if raw is not None else decode_text(chunk, charset))
        else:
            words.append(chunk)
    text = "".join(words)
    # Surrogate escapes (undecodable raw 8-bit header bytes) and controls are not displayable.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(text.replace("\x00", "").split())


def _without_comments(value: str) -> str:
    """`value` without its (nested) parenthesised comments, in one linear pass."""
    out: list[str] = []
    depth = 0
    for char in value:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


# The common shapes, `local@domain` and `Name <local@domain>`, read without the stdlib's tokenizer,
# which costs a few hundred microseconds a message; everything else goes through it. The address:
# letters, digits, `_+-` and dots between them, nothing the RFC 5322 parser treats specially. The
# name: words of anything but whitespace and the characters that end a phrase's atom for the
# parser (`()<>@,:;"[]`, and `\` to be safe), which it joins with one space as they are
# (`=?utf-8?b?…?=`, `J.`, emoji); or one quoted string without `"`, `\` or CR, which it unquotes.
# The parser also reads `Name<addr>` and `<addr >` so (a space before `<` or `>` changes nothing).
_ADDR = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_WORD = r'[^\s()<>@,:;"\[\]\\]+'
_SIMPLE_ADDRESS = re.compile(rf'(?:({_WORD}(?: {_WORD})*)|"([^"\\\r]*)") ?<({_ADDR}) ?>|({_ADDR})')
# A phrase that ends the value or a `,` (`Brand, <news@brand.example>`, `"Brand",`): parseaddr
# gives ('', the phrase's first word or quoted string) whatever follows the comma, for it reads
# the first of a list of addresses. Its items: words (possessive: a word never splits in two)
# and quoted strings, a space or nothing between; no `(` anywhere (a comment changes the name,
# and nested ones are what makes the parser recurse).
_QUOTED = r'"[^"\\\r]*+"'
_FIRST_OF_PHRASE = re.compile(
    rf'(?:({_WORD}+)|"([^"\\\r]*+)")(?: ?+(?:{_WORD}+|{_QUOTED}))*+ ?+(?:,[^(]*+)?+'
)


def _simple(value: str) -> tuple[str, str] | None:
    """(name, address) as parseaddr gives it, for a whitespace-normalised simple value."""
    m = _SIMPLE_ADDRESS.fullmatch(value)
    if m is None:
        return None
    if m[3]:
        return (m[1] if m[1] is not None else m[2]), m[3]
    return "", m[4]


def _parseaddr(value: str) -> tuple[str, str]:
    simple = _simple(value)
    if simple is not None:
        return simple
    m = _FIRST_OF_PHRASE.fullmatch(value)
    if m is not None:
        return "", m[1] if m[1] is not None else m[2]
    # The stdlib reads nested comments recursively: `From: ((((…` would raise RecursionError and
    # make the whole message unscannable (a way to hide tracking). Comments hold no address.
    try:
        return parseaddr(value)
    except RecursionError:
        return parseaddr(_without_comments(value))


def _getaddresses(values: list[str]) -> list[tuple[str, str]]:
    simple = [_simple(v) for v in values]
    if all(s is not None for s in simple):
        return [s for s in simple if s is not None]
    try:
        return getaddresses(values)
    except RecursionError:
        return getaddresses([_without_comments(v) for v in values])


def _from_field(headers: Headers) -> tuple[str, str]:
    # Split the address before decoding: a decoded display name may hold commas or quotes.
    return _parseaddr(" ".join((first_header(headers, "From") or "").split()))


def _address(addr: str) -> str:
    return decode_header_value(addr).strip().lower()


def sender_of(headers: Headers) -> str:
    """`envelope_of(headers).from_addr` alone (what cleaning reads of the envelope)."""
    return _address(_from_field(headers)[1])


def envelope_of(headers: Headers) -> Envelope:
    name, addr = _from_field(headers)
    return Envelope(
        from_addr=_address(addr),
        from_name=decode_header_value(name),
        subject=decode_header_value(first_header(headers, "Subject")),
        date=decode_header_value(first_header(headers, "Date")),
        message_id=decode_header_value(first_header(headers, "Message-ID")),
    )


def recipients_of(headers: Headers) -> tuple[str, ...]:
    wanted = ("to", "cc", "delivered-to")
    fields, names = header_names(headers)
    values = [" ".join(v.split()) for (_, v), n in zip(fields, names, strict=True) if n in wanted]
    addresses = (decode_header_value(a).lower() for _, a in _getaddresses(values))
    return tuple(sorted({a for a in addresses if "@" in a}))


# The last tree's text parts: cleaning asks for the same tree's four times (the split's size
# check, parse_split, the rewrite, the parts it leaves). A tree is immutable (frozen parts, tuples
# of children and fields) and kept here with its answer, so its id names no other tree.
_last_text_parts: tuple[Part, tuple[Part, ...]] | None = None


def text_parts(tree: Part) -> list[Part]:
    """The leaves a client displays as text: text/html and text/plain, not attachments."""
    global _last_text_parts
    last = _last_text_parts
    if last is not None and last[0] is tree:
        return list(last[1])
    found = [
        part
        for part in tree.walk()
        if not part.children
        and part.content_type in ("text/html", "text/plain")
        and not part.is_attachment
    ]
    _last_text_parts = (tree, tuple(found))
    return found


# The last tree's related parts, kept as its text parts are (above): cleaning asks for the same
# tree's twice (parse_split, then the rewrite).
_last_related: tuple[Part, tuple[tuple[str, Part], ...]] | None = None


def related_parts(tree: Part) -> list[tuple[str, Part]]:
    """(Content-ID, part) of each leaf an HTML part may load through `cid:` as a document or a
    stylesheet (see guard/engine/nested.py): CSS, SVG, XML or HTML with a Content-ID."""
    global _last_related
    last = _last_related
    if last is not None and last[0] is tree:
        return list(last[1])
    out = []
    for part in tree.walk():
        if part.children or part.content_type not in DOCUMENT_TYPES:
            continue
        cid = content_id_key(part.header("Content-ID"))
        if cid is not None:
            out.append((cid, part))
    _last_related = (tree, tuple(out))
    return out


def decoded_text(raw: bytes, part: Part) -> str:
    body = raw[part.body_start : part.end]
    return decode_text(decode_transfer(body, part.transfer_encoding), part.charset)


def parse_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[ParsedMessage, Envelope]:
    """Parse raw RFC 5322 bytes; raises MessageError when nothing sensible can be had."""
    tree = checked_split(raw, limits)
    return parse_split(raw, tree, limits), envelope_of(tree.headers)


def checked_split(raw: bytes, limits: Limits = DEFAULT_LIMITS, *, shape: bool = False) -> Part:
    """The message's MIME tree, after every check `parse_message` makes (sizes, structure,
    headers); raises MessageError. Cleaning reads its copy back through this alone, with
    `shape` (`mimetree.split`'s: the same checks and tree, only the fields they read)."""
    if len(raw) > limits.max_message_bytes:
        raise MessageError(
            f"message of {len(raw) // (1024 * 1024)} MiB exceeds the limit of "
            f"{limits.max_message_bytes // (1024 * 1024)} MiB"
        )
    if not raw or raw.isspace():  # nothing but whitespace (raw.strip() copied the message)
        raise MessageError("empty message")
    try:
        tree = split(raw, max_depth=limits.max_depth, max_parts=limits.max_parts, shape=shape)
    except MimeStructureError as exc:
        raise MessageError(str(exc)) from None
    except RecursionError:
        raise MessageError("MIME structure nested too deeply") from None
    if not tree.headers:
        raise MessageError("no headers: not an e-mail message")
    for part in text_parts(tree):
        if part.end - part.body_start > limits.max_text_part_bytes:
            raise MessageError(
                f"{part.content_type} part of {(part.end - part.body_start) // 1024} KiB exceeds "
                f"the limit of {limits.max_text_part_bytes // 1024} KiB"
            )
    return tree


def parse_split(
    raw: bytes,
    tree: Part,
    limits: Limits = DEFAULT_LIMITS,
    recipients: bool = True,
    keep: dict[int, bytes] | None = None,
) -> ParsedMessage:
    """`parse_message`'s message from the `checked_split` tree of `raw`. `recipients=False`
    leaves the recipients out (only address-leak detection reads them; cleaning removes no
    leak). `keep`: filled with each text part's body with its transfer encoding undone, by the
    part's start (cleaning re-encodes a part it rewrites from these bytes)."""
    html: list[str] = []
    plain: list[str] = []
    UTF8_SOURCES.clear()  # the last message's only
    for part in text_parts(tree):
        data = decode_transfer(raw[part.body_start : part.end], part.transfer_encoding)
        if keep is not None:
            keep[part.start] = data
        text, utf8 = _decoded(data, part.charset)  # decoded_text(raw, part)
        if part.content_type == "text/html":
            html.append(text)
            if utf8:
                UTF8_SOURCES[id(text)] = (text, data)
        else:
            plain.append(text)
    related = []
    for cid, part in related_parts(tree):
        if part.end - part.body_start <= limits.max_text_part_bytes:
            related.append((cid, part.content_type, decoded_text(raw, part)))
    return ParsedMessage(
        headers=tree.headers,
        html_parts=tuple(html),
        text_parts=tuple(plain),
        recipients=recipients_of(tree.headers) if recipients else (),
        related=tuple(related),
    )


FetchedPart = tuple[str, bytes, str | None, str | None, str | None]
"""A part fetched on its own: (content type, transfer-encoded payload, Content-Transfer-Encoding,
charset, Content-ID), as BODYSTRUCTURE describes it."""


def parse_parts(header_bytes: bytes, parts: list[FetchedPart]) -> tuple[ParsedMessage, Envelope]:
    """Build a ParsedMessage from a header block and separately fetched parts.

    Used by sources that fetch only what detection needs (IMAP: headers + BODYSTRUCTURE, then the
    text parts and the documents they may load by `cid:`), read as `parse_message` reads them.
    """
    headers = parse_headers(header_bytes)
    html: list[str] = []
    plain: list[str] = []
    related: list[tuple[str, str, str]] = []
    for ctype, payload, cte, charset, cid in parts:
        ctype = ctype.lower()
        text = decode_text(decode_transfer(payload, cte), charset)
        if ctype == "text/html":
            html.append(text)
        elif ctype == "text/plain":
            plain.append(text)
        if cid is not None and ctype in DOCUMENT_TYPES:
            related.append((cid, ctype, text))
    return ParsedMessage(
        headers=headers,
        html_parts=tuple(html),
        text_parts=tuple(plain),
        recipients=recipients_of(headers),
        related=tuple(related),
    ), envelope_of(headers)
