"""Raw message bytes -> ParsedMessage (headers + decoded text parts) and the display envelope.

Mail is written by adversaries and by broken software: every step here degrades instead of failing
where it can (unknown charset -> a sane fallback, broken base64 -> what decodes), and raises
`MessageError` with a one-line reason where it cannot.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from guard.model import Envelope, ParsedMessage


class MessageError(Exception):
    """The message cannot be scanned; str(exc) is a one-line reason for the report."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that keep a hostile message from eating time and memory (all configurable)."""

    max_message_bytes: int = 64 * 1024 * 1024
    max_text_part_bytes: int = 24 * 1024 * 1024
    max_parts: int = 2000
    max_depth: int = 64


DEFAULT_LIMITS = Limits()
_FALLBACK_CHARSET = "windows-1252"  # superset of latin-1 that browsers use for unlabelled 8-bit text


def decode_transfer(payload: bytes, cte: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding, salvaging what decodes from broken input."""
    encoding = (cte or "").strip().lower()
    if encoding == "base64":
        data = re.sub(rb"[^A-Za-z0-9+/=]", b"", payload)
        data = data.split(b"=", 1)[0]  # padding (or junk after it) ends the data
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        data += b"=" * (-len(data) % 4)
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        return quopri.decodestring(payload)
    return payload


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip('"').lower()
    # Mail software writes these for ASCII/Latin-1, which browsers read as windows-1252.
    if label in ("us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1"):
        return _FALLBACK_CHARSET
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a text part -> str: declared charset, else UTF-8, else windows-1252; never raises."""
    codec = _codec(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            if codec == "utf-8":
                return data.decode("utf-8", errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(_FALLBACK_CHARSET, errors="replace")


def decode_header_value(value: str | None) -> str:
    """RFC 2047 words -> text; junk comes back as it was, never an exception."""
    if not value:
        return ""
    text = str(value)
    try:
        text = str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError, TypeError, AssertionError):
        pass
    # Surrogate escapes (undecodable raw 8-bit header bytes) and controls are not displayable.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(text.replace("\x00", "").split())


def envelope_of(msg: Message) -> Envelope:
    from_value = decode_header_value(msg.get("From"))
    name, addr = parseaddr(from_value)
    return Envelope(
        from_addr=addr.strip().lower(),
        from_name=name,
        subject=decode_header_value(msg.get("Subject")),
        date=decode_header_value(msg.get("Date")),
        message_id=decode_header_value(msg.get("Message-ID")),
    )


def recipients_of(msg: Message) -> tuple[str, ...]:
    values = [decode_header_value(v) for key in ("To", "Cc", "Delivered-To") for v in msg.get_all(key, [])]
    return tuple(sorted({a.lower() for _, a in getaddresses(values) if "@" in a}))


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
    return disposition == "attachment"


def _text_parts(root: Message, limits: Limits) -> tuple[list[str], list[str], list[str]]:
    """Walk the MIME tree (bounded) and decode the text/html and text/plain parts."""
    html: list[str] = []
    plain: list[str] = []
    defects: list[str] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > limits.max_parts:
            raise MessageError(f"more than {limits.max_parts} MIME parts")
        if depth > limits.max_depth:
            raise MessageError(f"MIME nested deeper than {limits.max_depth}")
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((child, depth + 1) for child in reversed(payload))
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/html", "text/plain") or _is_attachment(part):
            continue
        raw = payload if isinstance(payload, str) else ""
        body = raw.encode("ascii", "surrogateescape") if raw else b""
        if len(body) > limits.max_text_part_bytes:
            raise MessageError(
                f"{ctype} part of {len(body) // 1024} KiB exceeds the limit of "
                f"{limits.max_text_part_bytes // 1024} KiB"
            )
        data = decode_transfer(body, part.get("Content-Transfer-Encoding"))
        text = decode_text(data, part.get_param("charset"))  # type: ignore[arg-type]
        (html if ctype == "text/html" else plain).append(text)
    for defect in getattr(root, "defects", []):
        defects.append(type(defect).__name__)
    return html, plain, defects


def parse_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[ParsedMessage, Envelope]:
    """Parse raw RFC 5322 bytes; raises MessageError when nothing sensible can be had."""
    if len(raw) > limits.max_message_bytes:
        raise MessageError(
            f"message of {len(raw) // (1024 * 1024)} MiB exceeds the limit of "
            f"{limits.max_message_bytes // (1024 * 1024)} MiB"
        )
    if not raw.strip():
        raise MessageError("empty message")
    try:
        msg = message_from_bytes(raw, policy=compat32)
        if not msg.keys():
            raise MessageError("no headers: not an e-mail message")
        html, plain, defects = _text_parts(msg, limits)
        headers = tuple((str(k), str(v)) for k, v in msg.items())
        envelope = envelope_of(msg)
    except MessageError:
        raise
    except RecursionError:
        raise MessageError("MIME structure nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - the stdlib parser raises many types on junk
        raise MessageError(f"unparseable MIME ({type(exc).__name__})") from None
    return ParsedMessage(
        headers=headers,
        html_parts=tuple(html),
        text_parts=tuple(plain),
        defects=tuple(defects),
        recipients=recipients_of(msg),
    ), envelope


def parse_parts(
    header_bytes: bytes, parts: list[tuple[str, bytes, str | None, str | None]]
) -> tuple[ParsedMessage, Envelope]:
    """Build a ParsedMessage from a header block and separately fetched text parts.

    Used by sources that fetch only what detection needs (IMAP: headers + BODYSTRUCTURE, then the
    text parts). Each part is (content type, transfer-encoded payload, Content-Transfer-Encoding,
    charset), as BODYSTRUCTURE describes it.
    """
    try:
        msg = message_from_bytes(header_bytes, policy=compat32)
        headers = tuple((str(k), str(v)) for k, v in msg.items())
        envelope = envelope_of(msg)
        recipients = recipients_of(msg)
    except Exception as exc:  # noqa: BLE001 - junk headers raise many types
        raise MessageError(f"unparseable header ({type(exc).__name__})") from None
    html: list[str] = []
    plain: list[str] = []
    for ctype, payload, cte, charset in parts:
        text = decode_text(decode_transfer(payload, cte), charset)
        (html if ctype.lower() == "text/html" else plain).append(text)
    return ParsedMessage(
        headers=headers, html_parts=tuple(html), text_parts=tuple(plain), recipients=recipients
    ), envelope
