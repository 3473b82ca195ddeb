"""The header look-ups of `guard clean --account` (guard/mail/imap/common.py): the header block, and
a field's first value, found with `bytes.find` rather than a regex that steps through every byte.
The regexes they replace are the reference."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.mail.imap.common import header_block, header_value, message_id, subject_of

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def reference_block(raw: bytes) -> bytes:
    m = _HEADER_END.search(raw, 0, 256 * 1024)
    return raw[: m.start()] if m else raw[: 256 * 1024]


def reference_value(raw: bytes, name: str) -> str:
    pattern = re.compile(
        rb"^" + re.escape(name.encode()) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M
    )
    m = pattern.search(reference_block(raw))
    return " ".join(m.group(1).decode("utf-8", "replace").split()) if m else ""


CASES = [
    b"",
    b"Subject: hi\r\n\r\nbody\r\n\r\nmore",
    b"Subject: hi\n\nbody",
    b"Subject: hi\n\r\nbody",
    b"Subject: hi\r\n\nbody",
    b"\n\nSubject: not a header",
    b"\r\n\r\n",
    b"X-Subject: no\r\nSUBJECT \t: folded\r\n\tover\r\n  lines\r\nSubject: second\r\n\r\n",
    b"Subjects: no\nsubject:yes\n\n",
    b"Message-ID: <a@b>\r\nmessage-id: <c@d>\r\n\r\n",
    b"Subject: caf\xc3\xa9 \xff\r\n\r\n",
    b"Subject: " + b"x" * 300_000,  # no end within the 256 KB bound
    b"A: b\r\n" * 50_000 + b"Subject: past the bound\r\n\r\n",
    b"Subject: a\r\r\n\r\nSubject: b\r\n\r\n",
]


@pytest.mark.parametrize("raw", CASES)
def test_known_shapes_read_as_the_regexes_read_them(raw: bytes) -> None:
    assert header_block(raw) == reference_block(raw)
    for name in ("Subject", "Message-ID"):
        assert header_value(raw, name) == reference_value(raw, name)


PIECES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b"x", b"S", b"subject", b"Subject", b"SUBJECT :",
     b"Message-ID:", b"message-id", b"<a@b>", b"\xc3\xa9", b"\xff"]
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(st.lists(PIECES, max_size=40))
def test_generated_headers_read_as_the_regexes_read_them(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert header_block(raw) == reference_block(raw)
    for name in ("Subject", "Message-ID"):
        assert header_value(raw, name) == reference_value(raw, name)


def test_message_id_and_subject_come_from_the_header_only() -> None:
    raw = b"Subject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <x@y>\r\n\r\nMessage-ID: <body@z>\r\n"
    assert message_id(raw) == "<x@y>"
    assert subject_of(raw) == "café"


def _subject_through_email_header(raw: bytes) -> str:
    """subject_of without its shortcut for a value with no encoded word: the reference."""
    import contextlib
    from email.header import decode_header, make_header

    from guard.mail.imap.connection import _one_line

    value = header_value(raw, "Subject")
    with contextlib.suppress(Exception):
        value = str(make_header(decode_header(value)))
    return _one_line(value, 70)


@settings(max_examples=800, deadline=None)
@given(st.text(max_size=90) | st.sampled_from(["=?utf-8?q?caf=C3=A9?=", " a  =?x?= b ", "=?"]))
def test_subjects_read_as_email_header_reads_them(text: str) -> None:
    raw = b"From: a@b.example\r\nSubject: " + text.encode("utf-8", "surrogatepass") + b"\r\n\r\nx"
    assert subject_of(raw) == _subject_through_email_header(raw)
