"""FETCH responses parsed in C-speed regex passes, for the item lists guard asks for.

imapclient's parser (`imapclient.response_parser.parse_fetch_response`) reads the non-literal
text of a response one character at a time through Python generators: ~0.12 ms a message in the
process that talks to the server, on the path between a round's FETCH and its APPEND. The
responses guard asks for are small and regular (`UID n FLAGS (...) INTERNALDATE "..."
RFC822.SIZE n`, `UID n BODY[] {literal}`, `UID n BODY[HEADER.FIELDS (MESSAGE-ID)] {literal}`),
so `parse_fetch` tokenises each record's text with one regex and builds the same result.

It covers a subset of the grammar on purpose: whatever it does not recognise exactly (escapes in
a quoted string, a token imapclient would reject or read differently, ENVELOPE and BODYSTRUCTURE,
a literal whose length does not match, unbalanced parentheses...) makes it return None, and the
caller then uses imapclient's own parser on the same data, errors included. Where it returns a
result, it is the one imapclient returns (tests/test_imap_fetchparse.py: hypothesis-generated
responses and the real Dovecot's).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from imapclient.datetime_util import parse_to_datetime
from imapclient.fixed_offset import FixedOffset

_WS = rb"[ \t\r\n]*"
# One token as imapclient's lexer splits it: "(", ")", a quoted string without escapes, or an
# atom (its word characters: anything but controls, space and ( ) % " [, with [...] sections
# taken whole) followed by what ends an atom for imapclient without a special case.
_ATOM = rb"(?:[!#$&'*-Z\\\]-\xff]|\[[^\]]*\])"
_END = rb"(?=[ \t\r\n()]|\Z)"
_TOKENS = re.compile(_WS + rb'(?:(\()|(\))|"([^"\\]*)"|(' + _ATOM + rb"+)" + _END + rb")")
# The same without groups, possessive (3.11's re mishandles groups inside possessive loops): a
# whole record's text checked in one pass, no backtracking on a long malformed line.
_ALL = re.compile(rb"(?:" + _WS + rb'(?:[()]|"[^"\\]*+"|' + _ATOM + rb"++" + _END + rb"))*+" + _WS)
_LITERAL = re.compile(rb"\{(\d+)\}\Z")
_REJECT = {b"ENVELOPE", b"BODY", b"BODYSTRUCTURE"}  # imapclient builds objects of its own


def _atom(token: bytes) -> Any:
    """An atom's value as imapclient's `atom` gives it."""
    if token == b"NIL":
        return None
    if token.isdigit() and (token[:1] != b"0" or len(token) == 1):
        return int(token)
    return token


def _values(data: list[Any]) -> list[Any] | None:
    """The top-level values of the records (nested tuples, literals in place), or None."""
    top: list[Any] = []
    stack = [top]
    for record in data:
        literal: bytes | None = None
        if isinstance(record, tuple) and len(record) == 2:
            text, literal = record
            if not isinstance(text, bytes) or not isinstance(literal, bytes):
                return None
            end = _LITERAL.search(text)
            if end is None or int(end[1]) != len(literal):
                return None
            text = text[: end.start()]
            if text[-1:] not in (b" ", b"(", b""):  # "{n}" glued to a word: imapclient's case
                return None
        elif isinstance(record, bytes):
            text = record
        else:
            return None
        if _ALL.fullmatch(text) is None:
            return None
        # findall, not finditer: tuples of strings, no match object per token
        for opening, closing, quoted, atom in _TOKENS.findall(text):
            if atom:
                if atom[:1] == b"{":  # a literal marker elsewhere than at the end
                    return None
                stack[-1].append(_atom(atom))
            elif opening:
                stack.append([])
            elif closing:
                if len(stack) == 1:
                    return None
                done = tuple(stack.pop())
                stack[-1].append(done)
            else:  # a quoted string (maybe empty: the only match with every group empty)
                stack[-1].append(quoted)
        if literal is not None:
            stack[-1].append(literal)
    return top if len(stack) == 1 else None


_MONTHS = {
    m.encode(): n
    for n, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_DATE = re.compile(
    rb"(\d\d)-("
    + b"|".join(_MONTHS)
    + rb")-([1-9]\d\d\d) (\d\d):(\d\d):(\d\d) ([+-])([01]\d|2[0-3])([0-5]\d)"
)


def _internaldate(value: bytes, normalise: bool) -> datetime | None:
    """INTERNALDATE as imapclient's `_convert_INTERNALDATE` gives it; the usual form
    (`07-Dec-2026 10:00:00 +0100`) without going through email.utils.parsedate_tz."""
    m = _DATE.fullmatch(value)
    if normalise or m is None or (m[7] == b"-" and m[8] == m[9] == b"00"):  # -0000: no zone
        try:
            parsed: datetime = parse_to_datetime(value, normalise=normalise)
        except ValueError:
            return None
        return parsed
    seconds = int(m[8]) * 3600 + int(m[9]) * 60
    try:  # as parse_to_datetime builds it: FixedOffset of float minutes
        return datetime(
            int(m[3]), _MONTHS[m[2]], int(m[1]), int(m[4]), int(m[5]), int(m[6]),
            tzinfo=FixedOffset((-seconds if m[7] == b"-" else seconds) / 60),
        )  # fmt: skip
    except ValueError:  # 31-Feb, hour 24...: imapclient's None
        return None


def parse_fetch(
    data: list[Any], normalise_times: bool, uid_is_key: bool
) -> dict[int, dict[bytes, Any]] | None:
    """imaplib's FETCH data (`_untagged_response(..., "FETCH")`) as
    `parse_fetch_response(data, normalise_times, uid_is_key)` parses it, or None where this
    parser does not handle it (see the module docstring)."""
    values = _values(data)
    if values is None or len(values) % 2:
        return None
    out: dict[int, dict[bytes, Any]] = {}
    for i in range(0, len(values), 2):
        seq, items = values[i], values[i + 1]
        if type(seq) is not int or not isinstance(items, tuple) or len(items) % 2:
            return None
        key = seq
        msg: dict[bytes, Any] = {b"SEQ": seq}
        for j in range(0, len(items), 2):
            name, value = items[j], items[j + 1]
            if not isinstance(name, bytes):
                return None
            word = name.upper()
            if word == b"UID":
                if type(value) is not int:
                    return None
                if uid_is_key:
                    key = value
                else:
                    msg[word] = value
            elif word == b"INTERNALDATE":
                if value is None:
                    msg[word] = None
                elif not isinstance(value, bytes):
                    return None
                else:
                    msg[word] = _internaldate(value, normalise_times)
            elif word in _REJECT:
                return None
            else:
                msg[word] = value
        out.setdefault(key, {}).update(msg)
    return out
