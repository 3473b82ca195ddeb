"""Raw message bytes -> headers and decoded text parts, on well-formed and hostile input."""

from __future__ import annotations

import base64
import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine.limits import Limits
from guard.engine.mime import (
    MessageError,
    checked_split,
    decode_header_value,
    decode_text,
    decode_transfer,
    parse_message,
    parse_parts,
    parse_split,
    sender_of,
)
from guard.engine.mimetree import _header_end
from guard.engine.model import Headers, Kind, MessageResult, first_header, header_names
from guard.engine.rules_load import load_ruleset
from guard.engine.timelimit import time_limit
from guard.mail.scan import scan_raw

RULES = load_ruleset(include_user=False)

HTML = (
    '<html><body><p>Hello</p><img src="https://t.example.com/o.gif" width="1" height="1">'
    "</body></html>"
)
HTML_B64 = base64.encodebytes(HTML.encode()).decode()

NESTED = f"""\
From: "Shop News" <News@Shop.Example.com>
To: Reader <reader@example.org>
Cc: other@example.org
Subject: =?UTF-8?Q?Caf=C3=A9_ouvert?=
Date: Tue, 04 Jun 2024 10:00:00 +0000
Message-ID: <abc@shop.example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

preamble text is ignored
--mixed
Content-Type: multipart/related; boundary="related"

--related
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 https://example.com/plain?utm_source=x
--alt
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

{HTML_B64}
--alt--
--related
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <logo>

iVBORw0KGgo=
--related--
--mixed
Content-Type: text/html; name="invoice.html"
Content-Disposition: attachment; filename="invoice.html"

<img src="https://attachment.example/should-not-be-scanned.gif">
--mixed
Content-Type: text/plain
Content-Disposition: inline

inline note
--mixed--
epilogue
"""


def parse(text: str | bytes, limits: Limits | None = None):
    raw = text.encode() if isinstance(text, str) else text
    return parse_message(raw, limits) if limits else parse_message(raw)


def single(body: bytes, headers: str = "Content-Type: text/html") -> bytes:
    return b"From: a@example.com\nSubject: s\n" + headers.encode() + b"\n\n" + body


# ---- structure ---------------------------------------------------------------------------------


def test_nested_multipart_text_parts_headers_and_envelope() -> None:
    parsed, env = parse(NESTED)
    assert parsed.html_parts == (HTML,)
    assert parsed.text_parts == ("Café https://example.com/plain?utm_source=x", "inline note")
    assert env.from_addr == "news@shop.example.com"
    assert env.from_name == "Shop News"
    assert env.subject == "Café ouvert"
    assert env.message_id == "<abc@shop.example.com>"
    assert env.date == "Tue, 04 Jun 2024 10:00:00 +0000"
    assert parsed.header("message-id") == "<abc@shop.example.com>"
    assert parsed.header("X-Missing") is None
    assert set(parsed.recipients) == {"reader@example.org", "other@example.org"}


def test_crlf_line_endings() -> None:
    parsed, env = parse(NESTED.replace("\n", "\r\n"))
    assert parsed.html_parts == (HTML,)
    assert [t.strip() for t in parsed.text_parts] == [
        "Café https://example.com/plain?utm_source=x",
        "inline note",
    ]
    assert env.subject == "Café ouvert"


def test_attachment_html_is_not_scanned_but_inline_html_is() -> None:
    raw = (
        "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: text/html\n\n<p>shown</p>\n"
        "--b\nContent-Type: text/html\nContent-Disposition: ATTACHMENT; filename=a.html\n\n"
        "<p>att</p>\n"
        "--b\nContent-Type: text/html\nContent-Disposition: inline; filename=b.html\n\n"
        "<p>inline</p>\n"
        "--b--\n"
    )
    parsed, _ = parse(raw)
    assert [h.strip() for h in parsed.html_parts] == ["<p>shown</p>", "<p>inline</p>"]


def test_non_multipart_message_defaults_to_text_plain() -> None:
    parsed, _ = parse("From: a@example.com\nSubject: hi\n\nJust text https://example.com/\n")
    assert parsed.html_parts == ()
    assert parsed.text_parts == ("Just text https://example.com/\n",)


def test_multipart_without_closing_boundary_runs_to_the_end() -> None:
    raw = (
        "From: a@example.com\nContent-Type: multipart/alternative; boundary=x\n\n"
        "--x\nContent-Type: text/html\n\n<p>cut"
    )
    parsed, _ = parse(raw)
    assert [h.strip() for h in parsed.html_parts] == ["<p>cut"]


# ---- transfer encodings ------------------------------------------------------------------------


def test_quoted_printable_part() -> None:
    body = (
        b'<img src=3D"https://t.example.com/o.gif?id=3D42&amp;u=3Dx">\n'
        b"<p>caf=C3=A9 soft=\nbreak</p>"
    )
    parsed, _ = parse(
        single(
            body,
            "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: Quoted-Printable",
        )
    )
    assert parsed.html_parts == (
        '<img src="https://t.example.com/o.gif?id=42&amp;u=x">\n<p>café softbreak</p>',
    )


def test_base64_part() -> None:
    parsed, _ = parse(
        single(HTML_B64.encode(), "Content-Type: text/html\nContent-Transfer-Encoding: BASE64")
    )
    assert parsed.html_parts == (HTML,)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b.rstrip(b"="),  # missing padding
        lambda b: b[:20] + b"!!\x00~~" + b[20:],  # junk characters in the middle
        lambda b: b + b"\n-- \nsignature junk appended by a list server",  # junk after padding
        lambda b: b"\n".join(b[i : i + 7] for i in range(0, len(b), 7)),  # odd line lengths
    ],
)
def test_broken_base64_is_salvaged(mangle) -> None:
    text = b"<p>Hello, tracked world! \xc3\xa9</p>"
    encoded = base64.b64encode(text)
    assert decode_transfer(mangle(encoded), "base64") == text


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_base64_keeps_exactly_the_alphabet(payload: bytes) -> None:
    # decode_transfer drops every byte outside the base64 alphabet with bytes.translate; the
    # regex it replaced is the reference.
    import re

    from guard.engine.mime import _NOT_BASE64

    for data in (payload, bytes(range(256))):  # every byte value at least once
        assert data.translate(None, _NOT_BASE64) == re.sub(rb"[^A-Za-z0-9+/=]", b"", data)


def test_truncated_base64_keeps_what_decodes() -> None:
    text = b"<p>Hello, tracked world!</p>"
    encoded = base64.b64encode(text)
    salvaged = decode_transfer(encoded[:-5], "base64")
    assert salvaged and text.startswith(salvaged)


def test_decode_transfer_other_encodings() -> None:
    assert decode_transfer(b"a=3Db=\nc", "quoted-printable") == b"a=bc"
    assert decode_transfer(b"raw \xff bytes", "8bit") == b"raw \xff bytes"
    assert decode_transfer(b"raw", None) == b"raw"
    assert decode_transfer(b"raw", "x-unknown") == b"raw"
    assert decode_transfer(b"", "base64") == b""
    assert decode_transfer(b"!!!!", "base64") == b""


# ---- charsets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("café ✓".encode(), "utf-8", "café ✓"),
        ("café ✓".encode(), "UTF-8", "café ✓"),
        ("café ✓".encode(), '"utf-8"', "café ✓"),
        (b"caf\xe9", "iso-8859-1", "café"),
        (b"caf\xe9", "latin1", "café"),
        # labels for ASCII/Latin-1 are read as windows-1252, as browsers do
        (b"\x93quoted\x94 \x80", "iso-8859-1", "\u201cquoted\u201d \u20ac"),
        (b"\x93quoted\x94 \x80", "windows-1252", "\u201cquoted\u201d \u20ac"),
        (b"caf\xe9", "us-ascii", "café"),
        ("привет".encode("koi8-r"), "koi8-r", "привет"),
        ("日本語".encode("shift_jis"), "shift_jis", "日本語"),
        # undeclared 8-bit: UTF-8 if it is valid UTF-8, else windows-1252
        ("café".encode(), None, "café"),
        (b"caf\xe9", None, "café"),
        (b"caf\xe9", "", "café"),
        # unknown or unusable labels fall back the same way, never raise
        ("café".encode(), "x-no-such-charset", "café"),
        (b"caf\xe9", "x-no-such-charset", "café"),
        (b"caf\xe9", "undefined", "café"),
        (b"caf\xe9", "base64", "café"),
        (b"caf\xe9", "rot13", "café"),
        (b"abc", "\x00\xff", "abc"),
    ],
)
def test_decode_text(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_text(data, charset) == expected


def test_decode_text_invalid_utf8_declared_utf8_uses_replacement() -> None:
    text = decode_text(b"caf\xe9 ok \xff\xfe", "utf-8")
    assert text.startswith("caf") and "ok" in text and "\ufffd" in text


def test_charset_from_part_header_is_used() -> None:
    parsed, _ = parse(single(b"<p>caf\xe9</p>", "Content-Type: text/html; charset=ISO-8859-1"))
    assert parsed.html_parts == ("<p>café</p>",)
    parsed, _ = parse(single(b"<p>caf\xe9</p>", "Content-Type: text/html; charset=bogus-label"))
    assert parsed.html_parts == ("<p>café</p>",)
    parsed, _ = parse(single("<p>café</p>".encode(), "Content-Type: text/html"))
    assert parsed.html_parts == ("<p>café</p>",)


# ---- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?UTF-8?Q?Caf=C3=A9_ouvert?=", "Café ouvert"),
        ("=?iso-8859-1?B?Q2Fm6Q==?=", "Café"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between encoded words is dropped
        ("Plain =?utf-8?q?caf=C3=A9?= text", "Plain café text"),
        ("  folded\n\t subject  ", "folded subject"),
        ("", ""),
        (None, ""),
    ],
)
def test_decode_header_value(value: str | None, expected: str) -> None:
    assert decode_header_value(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?unterminated",
        "=?no-such-charset?q?abc?=",
        "=?utf-8?b?!!!not base64?=",
        "=?utf-8?x?unknown-encoding?=",
        "=?utf-8?q?=FF=FE invalid utf-8?=",
        "=?=?=?",
        "raw \udce9 surrogate",
        "nul\x00byte",
    ],
)
def test_broken_encoded_words_never_raise(value: str) -> None:
    text = decode_header_value(value)
    assert isinstance(text, str)
    assert "\x00" not in text
    text.encode("utf-8")  # displayable: no lone surrogates


def test_subject_with_raw_8bit_and_broken_words_in_a_message() -> None:
    raw = b"From: a@example.com\nSubject: caf\xc3\xa9 =?utf-8?q?broken\n\nbody"
    _, env = parse(raw)
    assert env.subject.startswith("caf")
    assert "broken" in env.subject
    env.subject.encode("utf-8")


# ---- errors ------------------------------------------------------------------------------------


def assert_one_line_error(raw: bytes, fragment: str, limits: Limits | None = None) -> None:
    with pytest.raises(MessageError) as info:
        parse(raw, limits)
    message = str(info.value)
    assert message and "\n" not in message
    assert fragment in message, message
    # Cleaning reads its copy back through the checks alone: the same error, word for word.
    with pytest.raises(MessageError) as again:
        checked_split(raw, limits) if limits else checked_split(raw)
    assert str(again.value) == message


def test_parse_split_of_the_checked_tree_is_parse_message() -> None:
    raw = NESTED.encode()
    tree = checked_split(raw)
    parsed, envelope = parse_message(raw)
    assert parse_split(raw, tree) == parsed
    assert parse_split(raw, tree, recipients=False) == dataclasses.replace(parsed, recipients=())
    assert sender_of(tree.headers) == envelope.from_addr == "news@shop.example.com"


@pytest.mark.parametrize(
    "field",
    ['"Dupont, Jean" <J@Example.COM>', "=?utf-8?q?Caf=C3=A9?= <cafe@example.org>", "", "junk <"],
)
def test_sender_of_is_the_envelope_address(field: str) -> None:
    raw = f"From: {field}\nSubject: s\n\nbody".encode()
    assert sender_of(checked_split(raw).headers) == parse_message(raw)[1].from_addr


def test_empty_input() -> None:
    assert_one_line_error(b"", "empty")
    assert_one_line_error(b" \r\n\t\n", "empty")


def test_no_headers() -> None:
    assert_one_line_error(b"just a line of text without any header\n\nbody", "no headers")
    assert_one_line_error(b"\n\nbody only", "no headers")


def test_nul_bytes_only() -> None:
    assert_one_line_error(b"\x00" * 64, "no headers")


def test_nul_bytes_inside_a_body_do_not_break_parsing() -> None:
    parsed, env = parse(single(b"<p>a\x00b</p>"))
    assert env.from_addr == "a@example.com"
    assert len(parsed.html_parts) == 1 and parsed.html_parts[0].startswith("<p>a")


def test_over_limit_message() -> None:
    raw = single(b"x" * 5000)
    assert_one_line_error(raw, "exceeds the limit", Limits(max_message_bytes=4096))


def test_over_limit_text_part() -> None:
    raw = single(b"<p>" + b"x" * 8000 + b"</p>")
    assert_one_line_error(raw, "exceeds the limit", Limits(max_text_part_bytes=2048))
    # The same message within the limit parses.
    parsed, _ = parse(raw, Limits(max_text_part_bytes=64 * 1024))
    assert len(parsed.html_parts[0]) == 8007


def test_large_non_text_part_is_not_subject_to_the_text_part_limit() -> None:
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/html\n\n<p>small</p>\n"
        b"--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
        + b"QUJD" * 4000
        + b"\n--b--\n"
    )
    parsed, _ = parse(raw, Limits(max_text_part_bytes=2048))
    assert [h.strip() for h in parsed.html_parts] == ["<p>small</p>"]


def test_too_many_parts() -> None:
    parts = "".join("--b\nContent-Type: text/plain\n\nx\n" for _ in range(50))
    raw = f"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n"
    assert_one_line_error(raw.encode(), "MIME parts", Limits(max_parts=20))
    parsed, _ = parse(raw)
    assert len(parsed.text_parts) == 50


def deep_mime(depth: int) -> bytes:
    lines = [
        "From: a@example.com",
        "Subject: deep",
        "Content-Type: multipart/mixed; boundary=b0",
        "",
    ]
    for i in range(1, depth):
        lines += [f"--b{i - 1}", f"Content-Type: multipart/mixed; boundary=b{i}", ""]
    lines += [
        f"--b{depth - 1}",
        "Content-Type: text/html",
        "",
        '<img src="https://deep.example/x">',
    ]
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    ("depth", "limits", "error"),
    [
        (500, None, "MIME nested deeper than 64"),
        (70, None, "MIME nested deeper than 64"),
        # The limit lifted: the nesting still ends in a per-message error, not a RecursionError.
        (3000, Limits(max_depth=1_000_000), "MIME structure nested too deeply"),
    ],
)
def test_deep_nesting_is_an_error_never_a_crash(
    depth: int, limits: Limits | None, error: str
) -> None:
    """Deeper than the limit (64 levels by default) is an error naming the nesting: a deep part
    never vanishes silently."""
    with time_limit(60):  # a hang guard, not a performance assertion
        try:
            parsed, _ = parse(deep_mime(depth), limits)
        except MessageError as exc:
            assert "\n" not in str(exc)
            assert str(exc) == error
        else:
            pytest.fail(f"{depth} levels parsed into {len(parsed.html_parts)} HTML parts")


def test_nesting_within_the_limit_is_parsed() -> None:
    parsed, _ = parse(deep_mime(20))
    assert [h.strip() for h in parsed.html_parts] == ['<img src="https://deep.example/x">']


# ---- parse_parts (sources that fetch headers and text parts separately) -----------------------


def test_parse_parts() -> None:
    header = (
        b"From: Shop <shop@example.com>\r\nSubject: =?utf-8?q?H=C3=A9llo?=\r\n"
        b"To: me@example.org\r\n\r\n"
    )
    parsed, env = parse_parts(
        header,
        [
            ("text/html", b"<p>caf=E9</p>", "quoted-printable", "iso-8859-1", None),
            ("TEXT/HTML", base64.b64encode("<b>ü</b>".encode()), "base64", "utf-8", None),
            ("text/plain", b"plain \xe9", None, None, None),
        ],
    )
    assert parsed.html_parts == ("<p>café</p>", "<b>ü</b>")
    assert parsed.text_parts == ("plain é",)
    assert env.from_addr == "shop@example.com" and env.subject == "Héllo"
    assert parsed.recipients == ("me@example.org",)


def test_parse_parts_with_junk_charset_does_not_raise() -> None:
    parsed, _ = parse_parts(
        b"From: a@example.com\n\n", [("text/html", b"<p>x\xe9</p>", "7bit", "undefined", None)]
    )
    assert parsed.html_parts == ("<p>xé</p>",)


# ---- scan_raw never raises ---------------------------------------------------------------------


def random_inputs() -> list[bytes]:
    rng = random.Random(1234)
    return [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))) for _ in range(40)]


HANDMADE_JUNK = [
    b"From: \xff\xfe\n\n\xff",
    b"Content-Type: multipart/mixed\n\n--\n--\n",  # multipart without boundary
    b'Content-Type: multipart/mixed; boundary=""\n\n--\n',
    b'Content-Type: text/html; charset="\n\n<p>',
    b"Content-Transfer-Encoding: base64\nContent-Type: text/html\n\n====",
    b"X: " + b"a" * 200_000 + b"\n\nbody",
    b"From: a@example.com\n" + b"\n" * 10_000,
    b"From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\n\nbody",
    b"\x00From: a@example.com\n\n<img src=x>",
    b"From: a@example.com\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n" * 3,
]
"""Each has a header block and loads nothing remote (`<img src=x>` is relative, with no base):
a message with no findings, never an error."""


def _scan_error_is_clean(result: MessageResult) -> None:
    assert result.error and "\n" not in result.error
    assert not result.error.startswith("internal error"), result.error
    assert not result.error.startswith("took longer"), result.error
    assert result.findings == ()


def test_scan_raw_never_raises_on_random_bytes() -> None:
    """Random bytes may or may not read as a header block: either outcome is right, so what is
    checked is the promise, a one-line per-message error or a result, never a traceback."""
    for n, raw in enumerate(random_inputs()):
        result = scan_raw(raw, f"junk#{n}", str(n), RULES)
        assert result.source == f"junk#{n}" and result.id == str(n)
        if result.error is not None:
            _scan_error_is_clean(result)


def test_scan_raw_on_handmade_junk_and_truncated_mail() -> None:
    empty = scan_raw(b"", "empty", "0", RULES)
    assert empty.error == "empty message" and empty.findings == ()
    for n, raw in enumerate(HANDMADE_JUNK):
        result = scan_raw(raw, f"junk#{n}", str(n), RULES)
        assert (result.error, result.findings) == (None, ()), n
    whole = NESTED.encode()
    pixel, param = "https://t.example.com/o.gif", "https://example.com/plain?utm_source=x"
    for cut in range(97, len(whole), 97):
        result = scan_raw(whole[:cut], f"cut#{cut}", str(cut), RULES)
        # A prefix of a message is still a message: never refused, and it finds no more than
        # the whole message carries.
        assert result.error is None, (cut, result.error)
        assert {(f.kind, f.url) for f in result.findings} <= {
            (Kind.PIXEL, pixel),
            (Kind.PARAM, param),
        }, cut
        if b"utm_source=x\n" in whole[:cut]:
            assert (Kind.PARAM, param) in {(f.kind, f.url) for f in result.findings}, cut


def test_multipart_whose_boundary_never_occurs() -> None:
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=zz\n\n"
        b"preamble only, cut here"
    )
    parsed, env = parse_message(raw)
    assert env.from_addr == "a@example.com"
    assert parsed.html_parts == ()
    result = scan_raw(raw, "cut.eml", "cut.eml", RULES)
    assert result.error is None and result.findings == ()


def test_scan_raw_error_and_success() -> None:
    bad = scan_raw(b"", "empty.eml", "empty.eml", RULES)
    assert bad.error == "empty message" and bad.findings == ()
    good = scan_raw(NESTED.encode(), "n.eml", "n.eml", RULES)
    assert good.error is None
    assert good.envelope.subject == "Café ouvert"
    assert any(f.url == "https://t.example.com/o.gif" for f in good.findings)
    assert not any("attachment.example" in (f.url or "") for f in good.findings)


ADDRESS_VALUES = [
    "me@example.org",
    "Brand 3 <news3@shop.example.com>",
    "x_y-z <a.b+tag@mail.store.example.co.uk>",
    "- <a@b>",
    # near misses the shortcut must leave to the stdlib (and still agree with it)
    "J. Doe <j@example.org>",
    '"Doe, J" <j@example.org>',
    "me@example.org (comment)",
    "<me@example.org>",
    "Name<me@example.org>",
    "a..b@example.org",
    ".a@example.org",
    "me@.example.org",
    "me@example.org.",
    "a@b, c@d",
    "Brand <a@b> junk",
    "Ünïcode <u@example.org>",
    # the names the shortcut reads as the parser's phrase: encoded words, punctuation, quotes
    "=?utf-8?B?w6k=?= <a@b.example>",
    "=?utf-8?Q?=F0=9F=94=94?= News <a@b.example>",
    "Brand\U0001f514\u2728 <news-x@mail.example.com>",
    "a'b c!! & d? <x@y.example>",
    ". <a@b>",
    "a . b <a@b>",
    '"Doe, J." <j@example.org>',
    '"" <j@example.org>',
    '"a (b) <c>" <j@example.org>',
    # and what it leaves to the stdlib
    '"a\\"b" <j@example.org>',
    '"a" b <j@example.org>',
    "a\\b <j@example.org>",
    "a [b] <j@example.org>",
    "a@b <c@d>",
    "a, b <c@d>",
    "a ,_<c@d>",
    # the shapes read without the tokenizer since: no space before `<`, one before `>`, and a
    # phrase ending the value or at a comma (the first of a list: its first word or quote)
    "Brand<news@brand.example>",
    '"Brand "<news@brand.example>',
    "Brand <news@brand.example >",
    "Brand, <news@brand.example>",
    "Brand Team ,_<news@brand.example>",
    '"Brand", <news@brand.example>',
    '"Brand""Team", <news@brand.example>',
    'Brand"Team" x, <news@brand.example>',
    "Brand.com, Brand <news@brand.example.>, <news@brand.example>",
    '"Welcome"',
    "Brand",
    "a, (b) <x@y.example>",
    "a (b), <x@y.example>",
    "a, b (c (d)) <x@y.example>",
    "a <b@c.d>, e",
]


@pytest.mark.parametrize("value", ADDRESS_VALUES)
def test_address_shortcut_reads_like_the_stdlib(value: str) -> None:
    from email.utils import getaddresses, parseaddr

    from guard.engine.mime import _getaddresses, _parseaddr

    assert _parseaddr(value) == parseaddr(value)
    assert _getaddresses([value, "me@example.org"]) == getaddresses([value, "me@example.org"])


ADDRESS_PIECES = st.sampled_from(
    [
        "a", "Brand", "J.", ".", " ", "  ", '"', "\\", "(", ")", "<", ">", "@", ",", ":", ";",
        "[", "]", "=?utf-8?b?", "?=", "'", "!", "é", "\U0001f514", "\t", "x@y.example",
        "<x@y.example>", "a.b", "-", "_", "+", "x@y.example >", '""',
    ]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(ADDRESS_PIECES, max_size=14).map("".join))
def test_generated_addresses_read_like_the_stdlib(value: str) -> None:
    from email.utils import getaddresses, parseaddr

    from guard.engine.mime import _getaddresses, _parseaddr

    value = " ".join(value.split())  # as _from_field and recipients_of hand them over
    assert _parseaddr(value) == parseaddr(value)
    assert _getaddresses([value, "me@example.org"]) == getaddresses([value, "me@example.org"])


def _mail_raws() -> list[bytes]:
    """Every message of samples/ and eval/, and of the real corpus where ../shared holds it."""
    import tarfile

    from html5_reads import CORPUS, MAIL_DIRS

    from guard.mail.files import message_refs

    raws = [ref.read() for folder in MAIL_DIRS for ref in message_refs(str(folder))]
    if CORPUS.is_file():
        with tarfile.open(CORPUS) as archive:
            for member in archive.getmembers():
                stream = archive.extractfile(member) if member.isfile() else None
                if stream is not None:
                    with stream:
                        raws.append(stream.read())
    return raws


def test_corpus_addresses_read_like_the_stdlib() -> None:
    from email.utils import getaddresses, parseaddr

    from guard.engine.mime import _getaddresses, _parseaddr
    from guard.engine.mimetree import split

    compared, bad = 0, []
    for n, raw in enumerate(_mail_raws()):
        for name, value in split(raw).headers:
            if name.lower() in ("from", "to", "cc", "delivered-to", "reply-to", "sender"):
                value = " ".join(value.split())
                compared += 1
                if _parseaddr(value) != parseaddr(value) or _getaddresses([value]) != getaddresses(
                    [value]
                ):
                    bad.append(n)  # indexes only: the corpus holds live phishing links
    assert compared > 300
    assert bad == []


def _header_end_by_both_searches(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """The definition: the first empty line in either form, each searched to the end."""
    lf = raw.find(b"\n\n", start, end)
    crlf = raw.find(b"\n\r\n", start, end)
    if lf == -1 and crlf == -1:
        return end, end
    if crlf == -1 or (lf != -1 and lf < crlf):
        return lf + 1, lf + 2
    return crlf + 1, crlf + 3


@given(st.binary(max_size=40).map(lambda b: bytes(b"\r\na:"[x % 4] for x in b)), st.data())
@settings(max_examples=3000, deadline=None)
def test_header_end_is_the_first_empty_line(raw: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(raw)))
    end = data.draw(st.integers(start, len(raw)))
    assert _header_end(raw, start, end) == _header_end_by_both_searches(raw, start, end)


# -- header look-ups through the kept index ----------------------------------------------------

NAMES = st.sampled_from(["From", "FROM", "from", "To", "cc", "Received", "X-A", "\udce9x", "İ"])
FIELDS = st.lists(st.tuples(NAMES, st.text(max_size=5)), max_size=20)


def _linear_first(headers: Headers, name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


@settings(max_examples=500, deadline=None)
@given(FIELDS, FIELDS, NAMES)
def test_first_header_through_the_index_is_the_linear_look_up(
    fields: list[tuple[str, str]], other: list[tuple[str, str]], name: str
) -> None:
    # Alternating between two tuples (each indexed in turn when long enough), and a list.
    one, two = tuple(fields), tuple(other)
    for headers in (one, two, one, one, two):
        assert first_header(headers, name) == _linear_first(headers, name)
        fields_, names = header_names(headers)
        assert fields_ == headers and names == tuple(k.lower() for k, _ in headers)
    as_list = list(fields)
    assert first_header(as_list, name) == _linear_first(one, name)  # type: ignore[arg-type]
    as_list.reverse()  # a list may change: never answered from an index
    assert first_header(as_list, name) == _linear_first(tuple(as_list), name)  # type: ignore[arg-type]


HEADER_PIECES = st.sampled_from([*"ab =?Q\x00\t\n\r\x0b\x1f\x7f\xe9", "=?utf-8?q?x?="])


@settings(max_examples=1000, deadline=None)
@given(st.lists(HEADER_PIECES, min_size=1, max_size=30))
def test_a_header_without_encoded_words_reads_as_through_the_stdlib(pieces: list[str]) -> None:
    from guard.engine.mime import _decoded_words

    text = "".join(pieces)
    assert decode_header_value(text) == _decoded_words(text)


def _part_types(raw: bytes) -> list[tuple[str, str | None, object]]:
    from guard.engine.mimetree import split

    return [(p.content_type, p.charset, p.params.get_params()) for p in split(raw).walk()]


def test_content_types_read_through_the_memo_are_read_afresh() -> None:
    # A Content-Type value is read once (mimetree._CTYPE_MEMO, _MULTIPART_MEMO): the same type,
    # charset and parameters (a multipart's boundary) as reading it afresh, for every part of
    # samples/ and eval/.
    from html5_reads import MAIL_DIRS

    from guard.engine import mimetree

    compared = 0
    for folder in MAIL_DIRS:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            raw = path.read_bytes()
            mimetree._CTYPE_MEMO.clear()
            mimetree._MULTIPART_MEMO.clear()
            fresh = _part_types(raw)
            remembered = _part_types(raw)  # every value now from the memos
            assert remembered == fresh, path.name
            compared += len(fresh)
    assert compared > 200
    for value in ('text/html; charset="utf-8"', "TEXT/Plain;charset=latin1", "junk", "text/"):
        raw = f"Content-Type: {value}\n\nx".encode()
        mimetree._CTYPE_MEMO.clear()
        assert _part_types(raw) == _part_types(raw)
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/html\n\nx\n--b--\n'
    )
    mimetree._MULTIPART_MEMO.clear()
    assert _part_types(raw) == _part_types(raw)
    assert len(mimetree.split(raw).children) == 1
    assert list(mimetree._MULTIPART_MEMO) == ['multipart/mixed; boundary="b"']


# -- mimetree._param: a Content-Type parameter read without the stdlib where that reads the same --

# What the stdlib's parameter reader reads: `;` (a piece's end, unless quoted), `=` (the first of a
# piece ends its name), `"` (quoting, odd counts), `\` (quoted pairs), `*` (RFC 2231 names and
# continuations), `<>` (which unquote strips), `'` and `%` (RFC 2231 values), whitespace of
# every kind str.strip() strips (folded values keep their \n), 8-bit bytes (surrogates).
_CT_PIECES = st.sampled_from(
    [
        *(";", "=", '"', "\\", "*", "<", ">", "'", "%", " ", "\t", "\n ", "\x1f", "\udce9"),
        *("charset", "CharSet", "boundary", "BOUNDARY", "x-", "utf-8", "----=_Part_1"),
        *("text/html", "multipart/alternative", "TEXT/Plain", "/", "*0", "*1*", "us-ascii''a%20b"),
        *(' charset="utf-8"', " boundary=b", '"a;b"', "(comment)", "=?utf-8?q?x?="),
    ]
)


def _stdlib_param(value: str, name: str) -> object:
    from email.message import Message

    message = Message()
    message["Content-Type"] = value
    return message.get_param(name)


def _fast_param(value: str, name: str) -> object:
    from email.message import Message

    from guard.engine.mimetree import _param

    message = Message()
    message["Content-Type"] = value
    return _param(message, value, name)


def _media_types_alike(value: str) -> bool:
    """mimetree._media_type against Message.get_content_type()."""
    from email.message import Message

    from guard.engine.mimetree import _media_type

    message = Message()
    message["Content-Type"] = value
    return _media_type(message, value) == message.get_content_type()


@settings(max_examples=800, deadline=None)
@given(st.lists(_CT_PIECES, max_size=14).map("".join))
def test_generated_content_type_parameters_read_as_the_stdlib_reads_them(value: str) -> None:
    for name in ("charset", "boundary"):
        assert _fast_param(value, name) == _stdlib_param(value, name)
    assert _media_types_alike(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60))
def test_arbitrary_ascii_content_type_parameters_read_as_the_stdlib_reads_them(value: str) -> None:
    for name in ("charset", "boundary"):
        assert _fast_param(value, name) == _stdlib_param(value, name)
    assert _media_types_alike(value)


@pytest.mark.parametrize(
    "value",
    ["", " ", ";", "text/html", " TEXT/HTML ; charset=x", "text", "a/b/c", "/", "x/", "/y",
     "multipart/mixed;boundary=b", "text/html\n ; a=b", "\x1ftext/plain\x1f", "t\u00e9xt/html"],
)  # fmt: skip
def test_media_types_read_as_the_stdlib_reads_them(value: str) -> None:
    assert _media_types_alike(value)


def test_mail_content_type_parameters_read_as_the_stdlib_reads_them() -> None:
    # Every Content-Type field of every part of samples/, eval/ and the real corpus (where
    # ../shared holds it), read both ways; most are read without the stdlib.
    from html5_reads import CORPUS

    from guard.engine.mimetree import split

    values: set[str] = set()
    for raw in _mail_raws():
        try:
            parts = split(raw).walk()
        except ValueError:
            continue
        for part in parts:
            values.update(v for k, v in part.headers if k.lower() == "content-type")
    direct = 0
    for value in sorted(values):
        for name in ("charset", "boundary"):
            assert _fast_param(value, name) == _stdlib_param(value, name)
        assert _media_types_alike(value)
        direct += value.isascii() and "\\" not in value and "*" not in value
    assert len(values) > (500 if CORPUS.is_file() else 20)
    assert direct > 0.9 * len(values)


@pytest.mark.parametrize(
    ("value", "charset", "boundary"),
    [
        ('text/html; charset="UTF-8"', "UTF-8", None),
        ("text/plain;charset=us-ascii;format=flowed", "us-ascii", None),
        ('multipart/alternative;\n boundary="----=_Part_1_2.3"', None, "----=_Part_1_2.3"),
        ("multipart/mixed; boundary=<b>; charset=", "", "b"),  # unquote strips <> too
        ('text/html; charset="a;b"', "a;b", None),  # a quoted `;`: the stdlib reads it
        ("text/html; charset*=utf-8''x", "x", None),  # RFC 2231: the stdlib reads it
        ("text/html; CHARSET; charset=x", "", None),  # a bare name is a match with no value
    ],
)
def test_content_type_parameter_examples(
    value: str, charset: str | None, boundary: str | None
) -> None:
    from email.utils import collapse_rfc2231_value

    for name, want in (("charset", charset), ("boundary", boundary)):
        got = _fast_param(value, name)
        assert got == _stdlib_param(value, name)
        assert (collapse_rfc2231_value(got) if isinstance(got, tuple) else got) == want  # type: ignore[arg-type]


def test_a_trees_text_parts_are_read_once_and_handed_out_afresh() -> None:
    from guard.engine import mime
    from guard.engine.mimetree import split

    raw = (
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>x\n"
        b"--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\ny\n--b--\n"
    )
    tree = split(raw)
    first = mime.text_parts(tree)
    assert [p.content_type for p in first] == ["text/html"]
    first.clear()  # a caller's list is its own
    again = mime.text_parts(tree)
    assert [p.content_type for p in again] == ["text/html"]
    other = split(raw.replace(b"attachment", b"inline"))
    assert [p.content_type for p in mime.text_parts(other)] == ["text/html", "text/plain"]
    assert mime.text_parts(tree)[0] is again[0]


def test_a_trees_related_parts_are_read_once_and_handed_out_afresh() -> None:
    from guard.engine import mime
    from guard.engine.mimetree import split

    raw = (
        b"Content-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>x\n"
        b"--b\nContent-Type: text/css\nContent-ID: <s@x>\n\np{}\n--b--\n"
    )
    tree = split(raw)
    first = mime.related_parts(tree)
    assert [(cid, p.content_type) for cid, p in first] == [("s@x", "text/css")]
    first.clear()  # a caller's list is its own
    assert [cid for cid, _ in mime.related_parts(tree)] == ["s@x"]
    other = split(raw.replace(b"<s@x>", b"<t@x>"))
    assert [cid for cid, _ in mime.related_parts(other)] == ["t@x"]
    assert [cid for cid, _ in mime.related_parts(tree)] == ["s@x"]


@pytest.mark.parametrize(
    "label",
    ["utf-8", "UTF-8", ' "utf-8" ', "latin1", "punycode", "x-nonsense", "a\x00b", "l1", "x" * 80],
)
def test_a_kept_charset_answer_is_the_lookup(label: str) -> None:
    import codecs

    from guard.engine import mime

    try:
        name: str | None = codecs.lookup(label.strip().strip('"')).name
    except (LookupError, ValueError):
        name = None
    want = None if name in mime.NOT_CHARSETS else name
    assert mime.charset_codec(label) == want
    assert mime.charset_codec(label) == want  # from the memo, where it is kept
    assert (label in mime._CODEC_MEMO) == (len(label) <= mime._CODEC_MEMO_LONGEST)


def _utf8_part_message(charset: str, body: bytes, cte: str = "8bit") -> bytes:
    return (
        b"From: a@example.com\nMIME-Version: 1.0\n"
        + f"Content-Type: text/html; charset={charset}\n".encode()
        + f"Content-Transfer-Encoding: {cte}\n\n".encode()
        + body
    )


@pytest.mark.parametrize(
    ("charset", "body", "handed"),
    [
        ("utf-8", "<p>caf\u00e9 \u2014 \U0001f600</p>".encode(), True),
        ("UTF8", b"<p>plain</p>", True),
        ('"unknown-x"', "<p>\u00e9</p>".encode(), True),  # unknown label: read as UTF-8
        ("utf-8", b"<p>\xe9 broken</p>", False),  # replaced: not these bytes
        ("windows-1252", b"<p>\x93q\x94</p>", False),
        ("utf-8-sig", b"\xef\xbb\xbf<p>x</p>", False),  # the BOM is not in the text
    ],
)
def test_html_read_as_utf8_hands_its_bytes_to_the_parser(
    charset: str, body: bytes, handed: bool
) -> None:
    from guard.engine.html import parse_document
    from guard.engine.model import UTF8_SOURCES

    parsed, _ = parse_message(_utf8_part_message(charset, body))
    (html,) = parsed.html_parts
    entry = UTF8_SOURCES.get(id(html))
    assert (entry is not None and entry[0] is html) == handed
    if entry is not None:
        assert entry[1] == html.encode("utf-8")
    from selectolax.lexbor import LexborHTMLParser

    doc = parse_document(html)
    assert doc is not None and doc.html == LexborHTMLParser(html.encode("utf-8", "ignore")).html


def test_every_utf8_source_is_its_texts_encoding_on_samples_and_the_corpus() -> None:
    from guard.engine.model import UTF8_SOURCES

    handed = 0
    for raw in _mail_raws():
        try:
            parsed, _ = parse_message(raw)
        except MessageError:
            continue
        for html in parsed.html_parts:
            entry = UTF8_SOURCES.get(id(html))
            if entry is not None and entry[0] is html:
                handed += 1
                assert entry[1] == html.encode("utf-8", "ignore")
    assert handed > 20
