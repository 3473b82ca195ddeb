"""A MIME header block edited as cleaning edits it: fields dropped, a part's charset and
transfer encoding set, fields appended (X-Guard); every other byte of the block as written.
Fields are split as `guard.engine.mimetree.parse_headers` splits them, so the names are the ones
detection saw."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from guard.engine.mimetree import Part

_native: Any
try:
    from guard.engine import _mimecore as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # not built (no C compiler at install): the Python scan runs
    _native = None


@dataclass
class Field:
    name: str | None  # None: a line that is no header field (an mbox `From ` line, junk)
    raw: str  # as written (surrogate-escaped bytes), folded lines and line ends included


def header_fields(block: bytes) -> tuple[list[Field], str]:
    """A header block -> its fields and the empty line that ends it, split as
    `mimetree.parse_headers` splits them so the names are the ones detection saw."""
    fields: list[Field] = []
    terminator = ""
    for line in block.decode("ascii", "surrogateescape").splitlines(keepends=True):
        content = line.rstrip("\r\n")
        if not content and line in ("\n", "\r\n", "\r"):
            terminator += line
            continue
        if line[:1] in (" ", "\t") and fields and fields[-1].name is not None and not terminator:
            fields[-1].raw += line
            continue
        key, sep, _ = content.partition(":")
        named = (
            bool(sep and key) and not key[0].isspace() and key == key.rstrip() and " " not in key
        )
        fields.append(Field(key if named else None, line))
    return fields, terminator


_CHARSET_PARAM = re.compile(r"(;\s*charset\s*=\s*)(\"[^\"]*\"|[^;\s]*)", re.I)


def with_charset(field_raw: str, charset: str) -> str:
    found = _CHARSET_PARAM.search(field_raw)
    if found:
        return field_raw[: found.start(2)] + charset + field_raw[found.end(2) :]
    body = field_raw.rstrip("\r\n")
    return f"{body}; charset={charset}{field_raw[len(body) :]}"


def folded(name: str, value: str, eol: str) -> str:
    """`Name: value` folded at spaces to lines of at most 78 characters where words allow."""
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > 78 and current.strip() != f"{name}:":
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return eol.join(lines) + eol


@dataclass
class HeaderEdit:
    content_type: str
    drop: set[str] = field(default_factory=set)  # lower-case names
    charset: str | None = None
    transfer_encoding: str | None = None
    append: list[tuple[str, str]] = field(default_factory=list)


# Bytes that str.splitlines() breaks a line at, besides \r and \n (bytes.splitlines() does not):
# a block holding one is read field by field (`header_fields` splits the str).
_OTHER_BREAKS = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")

Spans = list[tuple[int, int, int]]


def _block_fields_python(block: bytes, names: tuple[bytes, ...]) -> tuple[int, Spans] | None:
    """For a block `header_fields` reads as its lines say (no line break that only
    str.splitlines knows, no empty line among the fields): (cut, spans), the fields being
    block[:cut] and the rest its terminator (the empty lines `header_fields` takes), and a span
    (k, start, stop) for each field named `names[k]` (lower-case ASCII without `:` or
    whitespace; matched in any case), its folded lines and line end included. None otherwise.
    The reference for guard/engine/_mimecore.c's `block_fields` (tests/test_clean.py)."""
    if any(other in block for other in _OTHER_BREAKS):
        return None
    # The fields run to the end of the last line that is not empty, its line end included;
    # header_fields takes every empty line after them for the terminator.
    last = len(block.rstrip(b"\r\n"))
    if last == 0:
        return 0, []  # nothing but empty lines
    cut = last + (2 if block.startswith(b"\r\n", last) else 1 if last < len(block) else 0)
    head = block[:cut]
    # An empty line among the fields (a line end at the start or right after another, \r\n
    # being one): header_fields moves it to the end.
    if head.startswith((b"\r", b"\n")) or b"\n\n" in head or b"\n\r" in head or b"\r\r" in head:
        return None
    spans: Spans = []
    opened: tuple[int, int] | None = None
    pos = 0
    for line in head.splitlines(keepends=True):  # at \r, \n, \r\n: header_fields' lines here
        if line[:1] not in (b" ", b"\t"):  # not a folded line: a field (or junk) starts
            if opened is not None:
                spans.append((*opened, pos))
                opened = None
            key, sep, _ = line.partition(b":")
            if sep and key.lower() in names:
                opened = (names.index(key.lower()), pos)
        pos += len(line)
    if opened is not None:
        spans.append((*opened, pos))
    return cut, spans


_block_fields: Callable[[bytes, tuple[bytes, ...]], tuple[int, Spans] | None] = (
    _native.block_fields if _native is not None else _block_fields_python
)


# The names an edit drops or sets are a few constants (x-guard, content-type, the receipt
# fields): each is read once (the check below is a generator over its characters, ~3 us a name
# and a message). Bounded in entries and length, as the style memo.
_FIELD_NAMES: dict[str, bytes | None] = {}
_FIELD_NAMES_SIZE = 256
_FIELD_NAMES_LONGEST = 128


def _field_name(name: str) -> bytes | None:
    """`name` as `_block_fields` matches it: a name header_fields can give (lower-cased), else
    None."""
    try:
        return _FIELD_NAMES[name]
    except KeyError:
        pass
    found = _read_field_name(name)
    if len(name) <= _FIELD_NAMES_LONGEST:
        if len(_FIELD_NAMES) >= _FIELD_NAMES_SIZE:
            _FIELD_NAMES.clear()
        _FIELD_NAMES[name] = found
    return found


def _read_field_name(name: str) -> bytes | None:
    if not name or not name.isascii() or name != name.lower() or ":" in name:
        return None
    if any(char.isspace() for char in name):
        return None
    return name.encode("ascii")


def plain_edit(block: bytes, edit: HeaderEdit, eol: str) -> bytes | None:
    """`edited_block`'s bytes, made on the block as bytes: the fields the edit changes (dropped,
    a charset or an encoding set) found by `_block_fields`, every other byte copied. None when
    the block is one to read field by field. A real message's header (Received, DKIM…: dozens of
    lines, often 10 KB, raw 8-bit bytes in some) is neither split into lines nor decoded with
    surrogate escapes: ~0.2 ms a block for the corpus's, a tenth of cleaning a message.
    tests/test_clean.py compares the two ways on the samples' blocks, odd ones and hypothesis
    blocks."""
    wanted = set(edit.drop)
    if edit.charset:
        wanted.add("content-type")
    if edit.transfer_encoding:
        wanted.add("content-transfer-encoding")
    names = tuple([_field_name(name) for name in sorted(wanted)])
    if None in names:
        return None
    scanned = _block_fields(block, names)  # type: ignore[arg-type]
    if scanned is None:
        return None
    cut, spans = scanned
    # The block's kept stretches are views, joined once with the new pieces: a real message's
    # ~10 KB header is copied once, not sliced, spliced and concatenated twice.
    view = memoryview(block)
    pieces: list[bytes | memoryview] = []
    has_type = has_cte = False
    pos = 0
    last = -1  # the last byte of the head written so far (-1: none)
    for k, start, stop in spans:
        name = names[k].decode("ascii")  # type: ignore[union-attr]
        if name in edit.drop:
            new = b""
        elif name == "content-type" and edit.charset and not has_type:
            field_raw = block[start:stop].decode("ascii", "surrogateescape")
            new = with_charset(field_raw, edit.charset).encode("ascii", "surrogateescape")
            has_type = True
        elif name == "content-transfer-encoding" and edit.transfer_encoding and not has_cte:
            written = block[start : start + len(name)].decode("ascii")
            new = f"{written}: {edit.transfer_encoding}{eol}".encode("ascii", "surrogateescape")
            has_cte = True
        else:
            continue
        if start > pos:
            pieces.append(view[pos:start])
            last = block[start - 1]
        if new:
            pieces.append(new)
            last = new[-1]
        pos = stop
    if cut > pos:
        pieces.append(view[pos:cut])
        last = block[cut - 1]
    added = _added(edit, has_type, has_cte)
    if added and last != -1 and last not in (10, 13):
        pieces.append(eol.encode("ascii"))
    if added:
        pieces.append(
            "".join(folded(name, value, eol) for name, value in added).encode(
                "ascii", "surrogateescape"
            )
        )
    pieces.append(view[cut:])
    return b"".join(pieces)


def edited_block(block: bytes, edit: HeaderEdit, eol: str) -> bytes:
    plain = plain_edit(block, edit, eol)
    return plain if plain is not None else edited_fields(block, edit, eol)


def edited_fields(block: bytes, edit: HeaderEdit, eol: str) -> bytes:
    """The edit made field by field (`header_fields`): the reference, and the way for a block
    `plain_edit` leaves."""
    has_type = has_cte = False
    fields, terminator = header_fields(block)
    out = []
    for f in fields:
        name = (f.name or "").lower()
        if f.name is not None and name in edit.drop:
            continue
        if name == "content-type" and edit.charset and not has_type:
            f.raw, has_type = with_charset(f.raw, edit.charset), True
        elif name == "content-transfer-encoding" and edit.transfer_encoding and not has_cte:
            f.raw, has_cte = f"{f.name}: {edit.transfer_encoding}{eol}", True
        out.append(f.raw)
    added = _added(edit, has_type, has_cte)
    if added and out and not out[-1].endswith(("\n", "\r")):
        out[-1] += eol
    out.extend(folded(name, value, eol) for name, value in added)
    return ("".join(out) + terminator).encode("ascii", "surrogateescape")


def _added(edit: HeaderEdit, has_type: bool, has_cte: bool) -> list[tuple[str, str]]:
    """The fields the edit appends: a charset or encoding the block had no field for, then
    `edit.append`."""
    added: list[tuple[str, str]] = []
    if edit.charset and not has_type:
        added.append(("Content-Type", f"{edit.content_type}; charset={edit.charset}"))
    if edit.transfer_encoding and not has_cte:
        added.append(("Content-Transfer-Encoding", edit.transfer_encoding))
    added.extend(edit.append)
    return added


def eol_of(raw: bytes, part: Part) -> str:
    where = raw.find(b"\n", part.start, part.end)
    return "\r\n" if where > part.start and raw[where - 1 : where] == b"\r" else "\n"
