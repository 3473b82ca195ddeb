"""A rewritten text part's new body: the charset it is read and written in, the transfer
encoding it keeps or gets, and the bytes (guard/clean/message.py `_edit_body` calls it).
`_new_html_body` writes an HTML part from the UTF-8 bytes the rewrite's check parsed;
`_new_body_reference` is the plain path and its reference (tests/test_clean_body.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from guard.clean.headers import eol_of
from guard.engine.mime import charset_codec, decode_transfer
from guard.engine.mimetree import Part
from guard.engine.mimetree import _native as _mimecore

_MAX_LINE = 998  # RFC 5322 line limit for 7bit/8bit bodies


def _codec_of(label: str | None) -> str | None:
    return charset_codec(label)  # the codecs decode_text accepts


def _cp1252_decodes(data: bytes) -> bool:
    """Does `data.decode("cp1252")` succeed? It decodes every byte but these five: five byte
    searches instead of a str of the part (the charmap decoder, ~8 instructions a byte: a
    Latin-1 newsletter's 40 KB)."""
    return not (
        b"\x81" in data or b"\x8d" in data or b"\x8f" in data or b"\x90" in data or b"\x9d" in data
    )


def _reading_codec(data: bytes, label: str | None) -> str:
    """The codec `mime.decode_text` reads these bytes with, so the text re-encodes to them."""
    codec = _codec_of(label)
    if codec in ("ascii", "latin-1", "iso8859-1"):
        codec = "cp1252"  # as decode_text: what browsers read for these labels
    if codec == "utf-8":
        # What the decode below says whatever the bytes (valid or not: decode_text replaces
        # what is not), without a UTF-8 pass over a part that is mostly not ASCII-only.
        return codec
    if codec in (None, "cp1252") and data.isascii():
        # cp1252 reads every ASCII byte, and so does UTF-8 when there is no label: what the
        # decodes below would say, without a str of the whole part (a newsletter's ~35 KB).
        return codec or "utf-8"
    if codec == "cp1252" and _cp1252_decodes(data):
        return codec  # what the decode below would say
    if codec is not None:
        try:
            data.decode(codec)
            return codec
        except UnicodeDecodeError:
            if codec == "utf-8":
                return codec
        except (LookupError, UnicodeError):
            pass
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _writing_codec(data: bytes, label: str | None, reading: str) -> str:
    """Write what was read back with the same codec, except that a part labelled US-ASCII that
    was ASCII stays ASCII (a new character must not smuggle 8-bit bytes under that label)."""
    if _codec_of(label) == "ascii" and data.isascii():
        return "ascii"
    return reading


@dataclass(frozen=True, slots=True)
class _NewBody:
    data: bytes
    charset: str | None = None  # the part's charset label changes to this
    transfer_encoding: str | None = None  # the part's Content-Transfer-Encoding changes to this


def _encode_text(text: str, codec: str, html: bool) -> tuple[bytes, str | None]:
    if html:
        # HTML can say any character in any charset: a numeric reference keeps the label.
        return text.encode(codec, "xmlcharrefreplace"), None
    try:
        return text.encode(codec), None
    except UnicodeEncodeError:
        return text.encode("utf-8"), "utf-8"


def _base64_lines(data: bytes, eol: bytes) -> bytes:
    return base64.encodebytes(data).rstrip(b"\n").replace(b"\n", eol)  # 76-character lines


def _quoted_printable_python(data: bytes, eol: bytes) -> bytes:
    """`data` (CRLF or LF lines) as quoted-printable with `eol` line ends. The reference for
    guard/engine/_mimecore.c's `qp_encode` (tests/test_mimecore.py)."""
    return binascii.b2a_qp(data, istext=True).replace(b"\n", eol)


# In C where it was built: binascii's b2a_qp makes two passes of a dozen tests a byte (~20 ns a
# byte, a twentieth of cleaning a real message whose HTML part is re-encoded).
_qp_encode: Callable[[bytes, bytes], bytes] = (
    _mimecore.qp_encode if _mimecore is not None else _quoted_printable_python
)


def _quoted_printable(data: bytes, eol: bytes) -> bytes:
    return _qp_encode(data.replace(b"\r\n", b"\n"), eol)


def _fits_identity(data: bytes, cte: str) -> bool:
    if cte == "binary":
        return True
    if cte in ("", "7bit") and not data.isascii():
        return False
    return len(data) <= _MAX_LINE or _lines_at_most(data, _MAX_LINE)


def _lines_at_most_python(data: bytes, limit: int) -> bool:
    """Is every line of `data` (split at LF) at most `limit` bytes long? As
    `max(map(len, data.split(b"\n"))) <= limit`, without a bytes object per line (a real HTML
    part has hundreds of short lines): each step jumps to the last LF of the next `limit + 1`
    bytes, so a part of n bytes takes about n / limit steps. The reference for
    guard/engine/_mimecore.c's `lines_at_most` (tests/test_clean_body.py)."""
    pos, n = 0, len(data)
    while n - pos > limit:
        end = data.rfind(b"\n", pos, pos + limit + 1)
        if end == -1:
            return False  # `limit + 1` bytes without a line end
        pos = end + 1
    return True


_lines_at_most: Callable[[bytes, int], bool] = (
    _mimecore.lines_at_most if _mimecore is not None else _lines_at_most_python
)
"""In C where it was built: the same answer without a Python call a step."""


# Codecs whose bytes CR and LF stand for the characters CR and LF alone, and that write nothing
# else as those bytes: line ends can be changed on the encoded bytes as on the text (UTF-16, say,
# cannot: the line end there is two bytes, and a CR LF pair of bytes may be part of a character).
_LINE_SAFE_CODECS = frozenset({"utf-8", "cp1252", "ascii", "latin-1", "iso8859-1"})


def _new_body(
    raw: bytes,
    part: Part,
    text: str,
    html: bool,
    decoded: bytes | None = None,
    utf8: bytes | None = None,
) -> _NewBody:
    """`decoded`: the part's body with its transfer encoding undone, when parse_split kept it.
    `utf8`: `text` encoded as UTF-8 (strictly), when the caller has it (the rewrite's check
    parsed those bytes)."""
    eol = eol_of(raw, part)
    if decoded is None:
        decoded = decode_transfer(raw[part.body_start : part.end], part.transfer_encoding)
    body = _body_end(raw, part)
    reading = _reading_codec(decoded, part.charset)
    codec = _writing_codec(decoded, part.charset, reading)
    if html and codec in _LINE_SAFE_CODECS:
        return _new_html_body(body, eol, text, codec, part.transfer_encoding, utf8)
    return _new_body_reference(body, eol, text, html, codec, part.transfer_encoding)


def _body_end(raw: bytes, part: Part) -> bytes:
    """The end of the part's body, all that the new body is written from (its trailing CR and LF
    bytes): the last 64 bytes, or the whole body where those are all CR and LF; not a copy of a
    body of tens of KB."""
    start = max(part.body_start, part.end - 64)
    end = raw[start : part.end]
    if start > part.body_start and not end.rstrip(b"\r\n"):
        return raw[part.body_start : part.end]
    return end


def _new_html_body(
    body: bytes, eol: str, text: str, codec: str, cte: str, utf8: bytes | None
) -> _NewBody:
    """`_new_body_reference`'s bytes for an HTML part in a line-safe codec, with fewer passes:
    the text is encoded with LF line ends (from the check's UTF-8 bytes when the codec is
    UTF-8) and CR LF is written only where the body keeps it as it is (identity, base64).
    Quoted-printable turns CR LF back to LF before it encodes: `_quoted_printable` of the CR LF
    form is `qp_encode` of the LF form, so that form goes straight to the encoder.
    tests/test_clean_body.py compares the two on corpus parts and hypothesis text."""
    if codec == "utf-8" and utf8 is not None:
        data = utf8.replace(b"\r\n", b"\n") if b"\r" in utf8 else utf8
    else:
        if "\r" in text:  # the parser turned every line end into \n
            text = text.replace("\r\n", "\n")
        data, _ = _encode_text(text, codec, True)
    eol_bytes = eol.encode()
    if cte == "base64":
        full = data.replace(b"\n", eol_bytes) if eol != "\n" else data
        return _NewBody(_base64_lines(full, eol_bytes) + body[len(body.rstrip(b"\r\n")) :])
    if _mimecore is not None and eol == "\r\n":
        # In C (the same bytes: tests/test_clean_body.py): the body is written once, without
        # the stripped copies, the replaced copy, the ASCII and line passes and the concatenation.
        if cte != "quoted-printable":
            written = _mimecore.lf_body(
                data, True, body, cte in ("", "7bit"), -1 if cte == "binary" else _MAX_LINE
            )
            if written is not None:
                return _NewBody(written)
            return _NewBody(_mimecore.qp_body(data, eol_bytes, body), None, "quoted-printable")
        return _NewBody(_mimecore.qp_body(data, eol_bytes, body))
    trailing = body[len(body.rstrip(b"\r\n")) :]
    # The core of the CR LF form is the core of this form with its LFs written as CR LF: both
    # end at the last byte that is neither CR nor LF.
    core = data.rstrip(b"\r\n")
    if cte == "quoted-printable":
        return _NewBody(_qp_lf(core, eol_bytes) + trailing)
    written = _lf_body_python(data, eol == "\r\n", body, cte in ("", "7bit"), cte != "binary")
    if written is not None:
        return _NewBody(written)
    return _NewBody(_qp_lf(core, eol_bytes) + trailing, None, "quoted-printable")


def _lf_body_python(data: bytes, crlf: bool, body: bytes, ascii: bool, lines: bool) -> bytes | None:
    """`data` without its trailing CR and LF bytes, each LF written as CR LF where `crlf`, then
    `body`'s trailing CR and LF bytes; None where the written text (before those) does not fit
    an identity transfer encoding: non-ASCII where `ascii`, a line over _MAX_LINE bytes where
    `lines` (`_fits_identity`). The reference for guard/engine/_mimecore.c's `lf_body` (whose
    `limit` is _MAX_LINE, or -1 for no line test)."""
    core = data.rstrip(b"\r\n")
    written = core.replace(b"\n", b"\r\n") if crlf else core
    if ascii and not written.isascii():
        return None
    if lines and not (len(written) <= _MAX_LINE or _lines_at_most(written, _MAX_LINE)):
        return None
    return written + body[len(body.rstrip(b"\r\n")) :]


def _qp_lf(core: bytes, eol: bytes) -> bytes:
    """`_quoted_printable(core with LF written as eol, eol)`: with CR LF, LF -> CR LF -> LF is
    the identity (every CR LF pair found is one just written), so the LF form is encoded as is."""
    return _qp_encode(core, eol) if eol == b"\r\n" else _quoted_printable(core, eol)


def _new_body_reference(
    body: bytes, eol: str, text: str, html: bool, codec: str, cte: str
) -> _NewBody:
    """A text part's new body: the reference, and the path of text parts and of codecs whose
    line ends cannot be changed on the bytes (`_new_html_body`)."""
    if html:  # the parser turned every line end into \n
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if eol != "\n":
            text = text.replace("\n", eol)
    data, charset = _encode_text(text, codec, html)
    trailing = body[len(body.rstrip(b"\r\n")) :]
    core = data.rstrip(b"\r\n")
    if cte == "base64":
        return _NewBody(_base64_lines(data, eol.encode()) + trailing, charset)
    if cte == "quoted-printable":
        return _NewBody(_quoted_printable(core, eol.encode()) + trailing, charset)
    if _fits_identity(core, cte):
        return _NewBody(core + trailing, charset)
    # 8-bit text under 7bit, or overlong lines: quoted-printable says the same in short ASCII.
    return _NewBody(_quoted_printable(core, eol.encode()) + trailing, charset, "quoted-printable")
