"""A fast MIME splitter that keeps byte offsets.

The standard library's feed parser walks a message line by line in Python (≈2.4 ms for a 60 KB
newsletter); detection needs only the tree and the text parts, and cleaning needs to replace a part
while keeping every other byte as it was. This splitter finds boundaries with C-level searches and
records where each part's headers and body start and end in the original bytes.

Behaviour on broken input follows what mail clients do: a missing closing boundary runs the last
part to the end of the message, a multipart without a boundary is read as a single part, text
before the
first boundary (preamble) and after the last (epilogue) is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from guard.engine.model import Headers, first_header

if TYPE_CHECKING:
    from email.message import Message

_native: Any
try:
    from guard.engine import _mimecore as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # not built (no C compiler at install): the Python split runs
    _native = None


class MimeStructureError(ValueError):
    pass


class Part(NamedTuple):
    """One node of the MIME tree, with offsets into the raw message bytes. Immutable: a
    NamedTuple rather than a frozen dataclass, whose __init__ sets each of its eight fields
    through object.__setattr__ (three times the time, for each part of both of cleaning's
    splits)."""

    start: int  # first byte of this part's header block
    body_start: int  # first byte of the body
    end: int  # one past the last byte of the body
    headers: Headers
    content_type: str  # lower-case `type/subtype`
    params: ContentTypeField
    """The Content-Type value, read robustly by the stdlib on demand (shared by the parts with
    the same Content-Type value: read it, never write to it)."""
    children: tuple[Part, ...] = ()
    charset: str | None = None
    """The charset parameter of a text/* part, read once: the standard library re-parses the whole
    parameter list on every get_param (seconds for a 200 KB Content-Type field)."""

    def header(self, name: str) -> str | None:
        return first_header(self.headers, name)

    @property
    def transfer_encoding(self) -> str:
        return (self.header("Content-Transfer-Encoding") or "").strip().lower()

    @property
    def is_attachment(self) -> bool:
        disposition = self.header("Content-Disposition") or ""
        return disposition.split(";", 1)[0].strip().lower() == "attachment"

    def walk(self) -> list[Part]:
        """Every node, depth first, in document order."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.children))
        return out


def _header_end(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body): the first empty line, LF or CRLF."""
    # Each search stops where the other form was found: the one that is not the message's own
    # (most mail is CRLF) would otherwise run to the end of the part, attachments included.
    first = raw.find(b"\n", start, end)
    if first > start and raw[first - 1] == 13:  # the first line ends in CRLF
        crlf = raw.find(b"\n\r\n", start, end)
        lf = raw.find(b"\n\n", start, end if crlf == -1 else crlf + 1)
    else:
        lf = raw.find(b"\n\n", start, end)
        crlf = raw.find(b"\n\r\n", start, end if lf == -1 else lf + 2)
    if lf == -1 and crlf == -1:
        return end, end
    if crlf == -1 or (lf != -1 and lf < crlf):
        return lf + 1, lf + 2
    return crlf + 1, crlf + 3


def _parse_headers_python(block: bytes) -> Headers:
    """A header block -> (name, value) pairs, unfolded; raw 8-bit bytes kept as surrogates.

    The reference for guard/engine/_mimecore.c's `parse_headers` (tests/test_mimecore.py)."""
    fields: list[tuple[str, str]] = []
    text = block.decode("ascii", "surrogateescape")
    name: str | None = None
    value: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            value.append(line)
            continue
        if name is not None:
            fields.append((name, "\n".join(value).strip()))
            name = None
        key, sep, rest = line.partition(":")
        if sep and key and not key[0].isspace() and key == key.rstrip() and " " not in key:
            name, value = key, [rest]
        # Anything else (an mbox `From ` line, junk) is not a header field: skip it.
    if name is not None:
        fields.append((name, "\n".join(value).strip()))
    return tuple(fields)


parse_headers: Callable[[bytes], Headers] = (
    _native.parse_headers if _native is not None else _parse_headers_python
)
"""A header block -> (name, value) pairs: in C where it was built (the same pairs, without a
Python loop per line: about a tenth of a real newsletter's scan), else in Python."""


def _header_block_python(raw: bytes, start: int, end: int) -> tuple[Headers, int, int]:
    """(fields, header end, body start) of the part at raw[start:end]: the reference for
    _mimecore.c's `header_block` (tests/test_mimecore.py)."""
    header_end, body_start = _header_end(raw, start, end)
    return _parse_headers_python(raw[start:header_end]), header_end, body_start


_header_block: Callable[[bytes, int, int], tuple[Headers, int, int]] = (
    _native.header_block if _native is not None else _header_block_python
)
"""`_header_block_python` in C where it was built: a real message's header block is ~13 KB (DKIM,
ARC, Received), and the two bytes.find passes, the slice and a byte-at-a-time line split over it
were most of a split's time."""

HeaderReader = Callable[[bytes, int, int], tuple[Headers, int, int]]

# The fields a split reads of a part (`_split`, and `Part.is_attachment` for checked_split's
# text parts): a shape split makes no other.
SHAPE_FIELDS = (b"content-type", b"content-disposition")


def _shape_block_python(raw: bytes, start: int, end: int) -> tuple[Headers, int, int]:
    """`_header_block` with only the block's first field (there are fields or none) and the
    SHAPE_FIELDS: the reference for `header_block(raw, start, end, SHAPE_FIELDS)` in C."""
    fields, header_end, body_start = _header_block(raw, start, end)
    names = tuple(name.decode("ascii") for name in SHAPE_FIELDS)
    kept = tuple(f for n, f in enumerate(fields) if n == 0 or f[0].lower() in names)
    return kept, header_end, body_start


def _shape_block_native(raw: bytes, start: int, end: int) -> tuple[Headers, int, int]:
    return _native.header_block(raw, start, end, SHAPE_FIELDS)  # type: ignore[no-any-return]


_shape_block: HeaderReader = _shape_block_native if _native is not None else _shape_block_python
"""A part's header block as a shape split reads it: the field strings it never reads are not
made (a real message's ~60 fields, most of a split of the cleaned copy)."""


class ContentTypeField:
    """A Content-Type value and the header-only Message that reads it as the stdlib does, made
    on first use: the ASCII values mail repeats are read without it (`_media_type`, `_param`),
    and the email package (email.message and the modules it imports: socket, random, datetime,
    calendar, urllib) was a tenth of the start of `guard clean` only for this."""

    __slots__ = ("_message", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self._message: Message | None = None

    @property
    def message(self) -> Message:
        if self._message is None:
            from email.message import Message

            message = Message()
            message["Content-Type"] = self.value
            self._message = message
        return self._message

    def get_param(self, name: str) -> object:
        return self.message.get_param(name)

    def get_content_type(self) -> str:
        return self.message.get_content_type()

    def get_params(self) -> list[tuple[str, str]] | None:
        return self.message.get_params()

    def __getattr__(self, name: str) -> Any:
        # Any other reading of the Message's (it is read, never written to).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.message, name)


def _unquote(text: str) -> str:
    """email.utils.unquote (that module is imported only where an address needs its parser)."""
    if len(text) > 1:
        if text.startswith('"') and text.endswith('"'):
            return text[1:-1].replace("\\\\", "\\").replace('\\"', '"')
        if text.startswith("<") and text.endswith(">"):
            return text[1:-1]
    return text


class _ContentType(NamedTuple):
    ctype: str  # lower-case type/subtype
    params: ContentTypeField  # the field, read by a Message where it must be
    charset: str | None  # of a text/* type
    boundary: object  # of a multipart type: Message.get_param("boundary") (a str when usable)


# Leaf parts repeat a few Content-Type values (`text/html; charset="utf-8"`) from message to
# message, and the stdlib reads each through a Message of its own, parsing its parameters again
# at every get_param: a value is read once. The parts with the same value then share its Message,
# which nothing writes to. Bounded in entries and length, as the style memo. A multipart value is
# unique by its boundary, so it is kept apart, in a memo of the last few: what it serves is
# cleaning's structure check, which splits the cleaned copy of the message split just before
# (the same multipart fields; their reading, the boundary's included, was a third of that split).
_CTYPE_MEMO: dict[str, _ContentType] = {}
_CTYPE_MEMO_SIZE = 256
_CTYPE_MEMO_LONGEST = 256
_MULTIPART_MEMO: dict[str, _ContentType] = {}
_MULTIPART_MEMO_SIZE = 16


def _content_type(headers: Headers, default: str) -> _ContentType:
    ctype = first_header(headers, "Content-Type")
    if ctype is None:
        return _read_content_type(default)
    known = _CTYPE_MEMO.get(ctype) or _MULTIPART_MEMO.get(ctype)
    if known is not None:
        return known
    known = _read_content_type(ctype)
    if len(ctype) <= _CTYPE_MEMO_LONGEST:
        memo, size = (
            (_MULTIPART_MEMO, _MULTIPART_MEMO_SIZE)
            if known.ctype.startswith("multipart/")
            else (_CTYPE_MEMO, _CTYPE_MEMO_SIZE)
        )
        if len(memo) >= size:
            memo.clear()
        memo[ctype] = known
    return known


def _read_content_type(value: str) -> _ContentType:
    params = ContentTypeField(value)
    ctype = _media_type(params, value)
    charset = _param(params, value, "charset") if ctype.startswith("text/") else None
    boundary = _param(params, value, "boundary") if ctype.startswith("multipart/") else None
    return _ContentType(ctype, params, charset if isinstance(charset, str) else None, boundary)


def _media_type(params: ContentTypeField | Message, value: str) -> str:
    """`params.get_content_type()` of the Message holding the Content-Type `value` (which falls
    back to text/plain on junk, as RFC 2045 says), read directly for an ASCII value: there the
    stdlib's policy hands the value back as it is (a Header only for 8-bit bytes), and it takes
    the text before the first `;`, stripped and lower-cased, when that has exactly one `/`.
    tests/test_mime.py compares the two as it compares `_param`'s."""
    if value.isascii():
        ctype = value.partition(";")[0].strip().lower()
        return ctype if ctype.count("/") == 1 else "text/plain"
    return params.get_content_type()


def _param(params: ContentTypeField | Message, value: str, name: str) -> object:
    """`params.get_param(name)` (`name` in lower case) of the Message holding the Content-Type
    `value`, read directly for the values where that is what the stdlib reads: ASCII (no 8-bit
    bytes, which make the stdlib read a Header), no backslash (quoted pairs), no `*` (RFC 2231
    names), an even number of `"` between two `;` (no quoted `;`). There the stdlib splits at
    every `;`, takes each piece's name before its first `=`, stripped and lower-cased, and returns
    the first match's value stripped and unquoted once (its decode_params' quoting and unquoting
    cancel out without backslashes): ~4x fewer instructions than get_param, which a multipart's
    unique boundary makes the stdlib run once per message. Anything else goes to get_param;
    tests/test_mime.py compares the two on hypothesis values and on every value of the mail."""
    if value.isascii() and "\\" not in value and "*" not in value:
        pieces = value.split(";")
        for piece in pieces:  # (a loop, not all() of a generator: this runs once a message)
            if piece.count('"') % 2:
                return params.get_param(name)  # a quoted `;`
        for piece in pieces:
            key, _, found = piece.partition("=")
            if key.strip().lower() == name:
                return _unquote(found.strip())
        return None
    return params.get_param(name)


class _Delimiter(NamedTuple):
    start: int  # the newline before `--boundary` (or the body start)
    end: int  # after the delimiter line's newline
    closing: bool


def _delimiters(raw: bytes, boundary: bytes, body_start: int, end: int) -> list[_Delimiter]:
    """Delimiter lines `--boundary` / `--boundary--` at line starts: `_delimiters_python`'s, in C
    where it was built and the boundary holds no \n (tests/test_mimecore.py)."""
    if _native is None or b"\n" in boundary:
        return _delimiters_python(raw, boundary, body_start, end)
    return [
        _Delimiter(*found) for found in _native.delimiters(raw, b"--" + boundary, body_start, end)
    ]


def _delimiters_python(raw: bytes, boundary: bytes, body_start: int, end: int) -> list[_Delimiter]:
    """Delimiter lines `--boundary` / `--boundary--` at line starts, found with bytes.find."""
    token = b"--" + boundary
    found: list[_Delimiter] = []
    pos = body_start
    while True:
        hit = raw.find(token, pos, end)
        if hit == -1:
            return found
        pos = hit + len(token)
        if hit != body_start and raw[hit - 1 : hit] != b"\n":
            continue
        closing = raw.startswith(b"--", pos)
        line_end = raw.find(b"\n", pos, end)
        tail = raw[pos + (2 if closing else 0) : end if line_end == -1 else line_end]
        if tail.strip(b" \t\r"):
            continue  # `--boundaryX`: a longer token that only starts like ours
        newline = hit - 1 if hit != body_start else hit
        if newline > body_start and raw[newline - 1 : newline] == b"\r":
            newline -= 1
        found.append(_Delimiter(newline, end if line_end == -1 else line_end + 1, closing))
        if closing:
            return found


def split(
    raw: bytes,
    *,
    max_depth: int = 64,
    max_parts: int = 2000,
    shape: bool = False,
) -> Part:
    """Split a whole message into its MIME tree. `shape`: the same tree, every offset and
    content type as the full split gives it, but each part's `headers` holds only its first
    field and its SHAPE_FIELDS (Content-Type, Content-Disposition): the fields the split reads,
    enough to check the tree (cleaning's check of its copy), not to read the message."""
    counter = [0]
    read = _shape_block if shape else _header_block
    return _split(raw, 0, len(raw), "text/plain", 0, max_depth, max_parts, counter, read)


def _split(
    raw: bytes,
    start: int,
    end: int,
    default_type: str,
    depth: int,
    max_depth: int,
    max_parts: int,
    counter: list[int],
    read: HeaderReader = _header_block,
) -> Part:
    counter[0] += 1
    if counter[0] > max_parts:
        raise MimeStructureError(f"more than {max_parts} MIME parts")
    if depth > max_depth:
        raise MimeStructureError(f"MIME nested deeper than {max_depth}")
    if raw.startswith(b"\n", start) or raw.startswith(b"\r\n", start):
        headers: Headers = ()  # no header block: parse_headers(b"")
        body_start = start + (1 if raw[start : start + 1] == b"\n" else 2)
    else:
        headers, _, body_start = read(raw, start, end)
    ctype, params, charset, boundary = _content_type(headers, default_type)
    children: list[Part] = []
    if ctype.startswith("multipart/"):
        if isinstance(boundary, str) and boundary:
            child_default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
            try:  # raw 8-bit bytes come back as surrogates; other non-ASCII as it was decoded
                token = boundary.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a lone surrogate from an RFC 2231 value
                token = boundary.encode("utf-8", "replace")
            delimiters = _delimiters(raw, token, body_start, end)
            if not delimiters and body_start < end:
                # The boundary never occurs (truncated or mislabelled): read the body as one
                # text part, so whatever URLs it holds are still seen.
                delimiters = [_Delimiter(body_start, body_start, False)]
            # An empty body (a part cut right after its headers) has no delimiter at all.
            followers: list[_Delimiter | None] = [*delimiters[1:], None] if delimiters else []
            for current, following in zip(delimiters, followers, strict=True):
                if current.closing:  # the rest is epilogue
                    break
                part_start = current.end
                part_end = following.start if following is not None else end
                children.append(
                    _split(
                        raw,
                        part_start,
                        max(part_start, part_end),
                        child_default,
                        depth + 1,
                        max_depth,
                        max_parts,
                        counter,
                        read,
                    )
                )
    elif ctype == "message/rfc822":
        disposition = first_header(headers, "Content-Disposition") or ""
        if not disposition.lower().startswith("attachment") and body_start < end:
            children.append(
                _split(
                    raw,
                    body_start,
                    end,
                    "text/plain",
                    depth + 1,
                    max_depth,
                    max_parts,
                    counter,
                    read,
                )
            )
    # tuple.__new__ as namedtuple's own _make: the generated __new__ is a Python call of 8 args.
    return _new_tuple(
        Part, (start, body_start, end, headers, ctype, params, tuple(children), charset)
    )


_new_tuple = tuple.__new__
