"""A rewritten HTML part's new body: `_new_html_body` (fewer passes over the bytes) writes what
`_new_body_reference` writes, for every transfer encoding, line end and line-safe codec, on the
HTML of samples/, eval/ and the real corpus and on hypothesis text built around what the fast path
changes (CR, LF, CR LF, CR CR LF, lines around the 998-byte limit, text no codec holds).
"""

from __future__ import annotations

import itertools

import pytest
from html5_reads import CORPUS, corpus_html, mail_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.clean import body as body_module
from guard.clean.body import (
    _LINE_SAFE_CODECS,
    _MAX_LINE,
    _fits_identity,
    _lines_at_most,
    _new_body_reference,
    _new_html_body,
)
from guard.clean.html import LoadAction, rewrite_html, rewrite_html_encoded
from guard.engine.mimetree import _native as _mimecore

CTES = ("quoted-printable", "base64", "7bit", "8bit", "", "binary", "8bith")
EOLS = ("\n", "\r\n")
# The body being replaced matters only by its trailing line ends.
BODIES = (b"old", b"old\r\n", b"old\n\n")


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def _same(text: str, codecs: tuple[str, ...] = tuple(sorted(_LINE_SAFE_CODECS))) -> None:
    for codec, cte, eol, body in itertools.product(codecs, CTES, EOLS, BODIES):
        want = _new_body_reference(body, eol, text, True, codec, cte)
        assert _new_html_body(body, eol, text, codec, cte, None) == want, (codec, cte, eol)
        utf8 = _utf8(text)
        if codec == "utf-8" and utf8 is not None:
            assert _new_html_body(body, eol, text, codec, cte, utf8) == want, (cte, eol)


def test_hand_made_texts() -> None:
    long_line = "x" * _MAX_LINE
    for text in (
        "",
        "\n",
        "\r\n\r\n",
        "<p>a\r\r\nb</p>\r",
        "a\rb\r\n\nc\n\r",
        "<p>caf\u00e9 \u20ac \u2028 \U0001f600</p>\n",
        long_line + "\n" + long_line,
        long_line + "y\n",
        long_line[:-1] + "\r\n" + long_line,  # fits with LF, not once the CR is written
        "\ud800 a lone surrogate\n",
    ):
        _same(text)


_PIECES = st.sampled_from(["a", "<b>", "\u00e9", "\u20ac", "\U0001f600", "=", " ", "\t", "."])
_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\r\r\n", "\n\r", ""])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """Lines whose lengths sit around the limit, or short ones, with every kind of line end."""
    lines = draw(
        st.lists(
            st.tuples(
                st.one_of(st.integers(0, 5), st.integers(_MAX_LINE - 3, _MAX_LINE + 2)),
                _PIECES,
                _ENDS,
            ),
            max_size=6,
        )
    )
    return "".join(piece * (n // len(piece.encode()) or n) + end for n, piece, end in lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts())
def test_hypothesis_texts(text: str) -> None:
    _same(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from([b"\n", b"\r\n", b"\r", b""]))),
    st.integers(1, 12),
)
def test_lines_at_most_is_the_split(lines: list[tuple[int, bytes]], limit: int) -> None:
    data = b"".join(b"x" * n + end for n, end in lines)
    want = max(map(len, data.split(b"\n"))) <= limit
    assert _lines_at_most(data, limit) == want
    assert body_module._lines_at_most_python(data, limit) == want
    if _mimecore is not None:  # the C one, with the Python as its reference
        assert _mimecore.lines_at_most(data, limit) == want
        assert _mimecore.lines_at_most(memoryview(data), limit) == want


def test_lines_at_most_at_the_rfc_limit() -> None:
    for body in (b"", b"x" * 998, b"x" * 999, (b"y" * 998 + b"\n") * 3, b"a\n" + b"z" * 999):
        want = max(map(len, body.split(b"\n"))) <= 998
        assert _lines_at_most(body, 998) == body_module._lines_at_most_python(body, 998) == want


def test_fits_identity_at_the_limit() -> None:
    line = b"x" * _MAX_LINE
    assert _fits_identity(line + b"\n" + line, "8bit")
    assert not _fits_identity(line + b"x\n" + line, "8bit")
    assert not _fits_identity(line + b"\n" + line + b"x", "8bit")
    assert _fits_identity((line[:-1] + b"\r\n") * 3, "8bit")
    assert not _fits_identity(line + b"\r\n", "8bit")


def test_real_html() -> None:
    parts = [html for _, html in mail_html()]
    if CORPUS.is_file():
        parts.extend(html for _, html in corpus_html(CORPUS, 8))
    assert len(parts) > 150
    for html in parts:
        _same(html, ("utf-8", "cp1252"))


class _RemoveAll:
    def load_action(self, url: str) -> LoadAction:
        return LoadAction.REMOVE

    def link_target(self, url: str) -> str | None:
        return None


def test_the_rewrite_hands_over_the_bytes_its_check_parsed() -> None:
    html = '<p>caf\u00e9</p><img src="http://t.example/o.gif"><img src="http://t.example/p.gif">'
    rewritten = rewrite_html_encoded(html, _RemoveAll())
    assert rewritten is not None
    output, encoded = rewritten
    assert encoded == output.encode("utf-8")
    assert "o.gif" not in output and "caf\u00e9" in output
    assert rewrite_html(html, _RemoveAll()) == output
    # A lone surrogate (text decoded with surrogate escapes) does not reach the output: the
    # parser's input is encoded with errors="ignore", and its output is decoded from UTF-8.
    rewritten = rewrite_html_encoded(html + "\udcff", _RemoveAll())
    assert rewritten is not None
    assert rewritten[1] == rewritten[0].encode("utf-8")


@pytest.mark.parametrize(
    "label", [None, "utf-8", "UTF8", "us-ascii", "iso-8859-1", "cp1252", "koi8-r"]
)
@pytest.mark.parametrize("data", [b"", b"plain <p>ascii</p>\r\n", b"\x00\x7f"])
def test_ascii_bytes_read_with_the_codec_their_decoding_gives(
    label: str | None, data: bytes
) -> None:
    """The reading codec of ASCII bytes, said without decoding them, is the one decoding says."""
    from guard.clean import body

    codec = body._codec_of(label)
    codec = "cp1252" if codec in ("ascii", "latin-1", "iso8859-1") else codec
    decoded = codec if codec is not None else "utf-8"
    data.decode(decoded)  # every one of them reads ASCII
    assert body._reading_codec(data, label) == decoded


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_cp1252_decodes_as_the_codec_does(data: bytes) -> None:
    try:
        data.decode("cp1252")
        decodes = True
    except UnicodeDecodeError:
        decodes = False
    assert body_module._cp1252_decodes(data) is decodes


def test_cp1252_undefined_bytes_are_the_codecs() -> None:
    for byte in range(256):
        try:
            bytes([byte]).decode("cp1252")
            decodes = True
        except UnicodeDecodeError:
            decodes = False
        assert body_module._cp1252_decodes(bytes([byte])) is decodes, byte


# -- the C body writers (_mimecore.lf_body, qp_body) against their Python references ------------

_BODY_BYTES = st.lists(
    st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\xc3\xa9", b"=", b" ", b"\t", b".", b"x" * 300])
).map(b"".join)


def _c_bodies_agree(data: bytes, body: bytes) -> None:
    if _mimecore is None:
        pytest.skip("_mimecore not built")
    for ascii, limit in itertools.product((False, True), (-1, 0, 1, 5, 300, _MAX_LINE)):
        lines = limit >= 0
        saved = body_module._MAX_LINE
        body_module._MAX_LINE = limit if lines else saved
        try:
            want = body_module._lf_body_python(data, True, body, ascii, lines)
        finally:
            body_module._MAX_LINE = saved
        assert _mimecore.lf_body(data, True, body, ascii, limit) == want, (ascii, limit)
        want_lf = body_module._lf_body_python(data, False, body, ascii, False)
        assert _mimecore.lf_body(data, False, body, ascii, -1) == want_lf
    trailing = body[len(body.rstrip(b"\r\n")) :]
    for eol in (b"\r\n", b"\n"):
        want = _mimecore.qp_encode(data.rstrip(b"\r\n"), eol) + trailing
        assert _mimecore.qp_body(data, eol, body) == want
        assert want == body_module._quoted_printable_python(data.rstrip(b"\r\n"), eol) + trailing


@settings(max_examples=400, deadline=None)
@given(_BODY_BYTES, st.sampled_from((*BODIES, b"", b"\r\n\r\n", b"\n\r", b"x\r\r\n")))
def test_c_body_writers_are_the_python(data: bytes, body: bytes) -> None:
    _c_bodies_agree(data, body)


def test_c_body_writers_on_edges_and_real_html() -> None:
    line = b"x" * _MAX_LINE
    for data in (b"", b"\r\n", b"\n\n\r", line, line + b"x", line[:-1] + b"\n" + line, b"\x80"):
        for body in (b"", b"old\r\n", b"\r\n"):
            _c_bodies_agree(data, body)
    for _, html in itertools.islice(mail_html(), 60):
        _c_bodies_agree(html.encode("utf-8", "surrogatepass"), b"old\r\n")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=100),
    st.lists(st.sampled_from([b"x", b"\r", b"\n", b"\r\n"]), max_size=90).map(b"".join),
    st.binary(max_size=10),
)
def test_body_end_holds_the_bodys_trailing_line_ends(head: bytes, body: bytes, tail: bytes) -> None:
    """`_body_end` (the last bytes of a part's body) ends in the same CR and LF bytes as the body:
    all that _new_html_body and _new_body_reference read of it."""
    from guard.engine.mimetree import Part

    raw = head + body + tail
    part = Part(0, len(head), len(head) + len(body), (), "text/html", None)  # type: ignore[arg-type]
    end = body_module._body_end(raw, part)
    assert body.endswith(end)
    assert end[len(end.rstrip(b"\r\n")) :] == body[len(body.rstrip(b"\r\n")) :]
