"""A MIME header block edited as cleaning edits it: fields dropped, a part's charset and
transfer encoding set, fields appended (X-Guard); every other byte of the block as written.
Fields are split as `guard.engine.mimetree.parse_headers` splits them, so the names are the ones
detection saw."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from guard.engine.mimetree import Part


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


_EMPTY_LINES = frozenset({"\n", "\r\n", "\r"})  # what header_fields takes for the terminator


def untouched_fields(block: bytes, edit: HeaderEdit) -> tuple[list[str], str] | None:
    """The block's fields as written (one string) and its terminator, as `edited_block` would
    write them back, when the edit changes none of them: no charset or encoding to set, no
    field to drop (the usual edit of a message's header, which only appends X-Guard). None
    otherwise. The fields of a real message's header (Received, DKIM…: dozens of lines) are
    then not read one by one."""
    if edit.charset or edit.transfer_encoding:
        return None
    lowered = block.lower()
    for name in edit.drop:  # a field of that name: only header_fields tells
        if not name.isascii() or name.encode("ascii") in lowered:
            return None
    lines = block.decode("ascii", "surrogateescape").splitlines(keepends=True)
    cut = len(lines)
    while cut and lines[cut - 1] in _EMPTY_LINES:
        cut -= 1
    if not _EMPTY_LINES.isdisjoint(lines[:cut]):
        return None  # an empty line among the fields: header_fields moves it to the end
    head = "".join(lines[:cut])
    return ([head] if head else []), "".join(lines[cut:])


def edited_block(block: bytes, edit: HeaderEdit, eol: str) -> bytes:
    has_type = has_cte = False
    untouched = untouched_fields(block, edit)
    if untouched is not None:
        out, terminator = untouched
    else:
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
    added: list[tuple[str, str]] = []
    if edit.charset and not has_type:
        added.append(("Content-Type", f"{edit.content_type}; charset={edit.charset}"))
    if edit.transfer_encoding and not has_cte:
        added.append(("Content-Transfer-Encoding", edit.transfer_encoding))
    added.extend(edit.append)
    if added and out and not out[-1].endswith(("\n", "\r")):
        out[-1] += eol
    out.extend(folded(name, value, eol) for name, value in added)
    return ("".join(out) + terminator).encode("ascii", "surrogateescape")


def eol_of(raw: bytes, part: Part) -> str:
    where = raw.find(b"\n", part.start, part.end)
    return "\r\n" if where > part.start and raw[where - 1 : where] == b"\r" else "\n"
