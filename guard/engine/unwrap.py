"""Offline decoders for wrapped links.

Rules refer to these by name (`encoding = [...]` in a rule's `decode` table); a wrapper that
carries its target is decoded here and never followed. Each decoder takes text and returns text,
or raises
`DecodeError` when the input is not in its shape.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

JSON_ENCODING = "json"
FORM_ENCODING = "form"  # a query string (`a=1&l=https%3A…`); json_path picks the key
MAX_INFLATED = 64 * 1024  # a wrapped link's payload is small: refuse a decompression bomb


class DecodeError(ValueError):
    pass


def _percent(text: str) -> str:
    return unquote(text)


def _b64(text: str, altchars: bytes | None) -> str:
    data = text.strip().replace("\n", "")
    data += "=" * (-len(data) % 4)
    try:
        raw = base64.b64decode(data, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"not base64: {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("base64 payload is not UTF-8") from None


def _base64(text: str) -> str:
    return _b64(text, None)


def _base64url_zlib(text: str) -> str:
    # Mailgun's /c/eJ… click tokens: base64url of zlib-compressed text ("eJ" is the zlib header).
    data = text.strip()
    data += "=" * (-len(data) % 4)
    try:
        packed = base64.b64decode(data, altchars=b"-_", validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_INFLATED)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise DecodeError(f"not base64url zlib: {exc}") from None
    if inflater.unconsumed_tail:
        raise DecodeError("zlib payload larger than a link's")
    if not inflater.eof:
        raise DecodeError("zlib payload cut short")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("zlib payload is not UTF-8") from None


def _base64url(text: str) -> str:
    return _b64(text, b"-_")


_PP_V2_HEX = re.compile(r"-([0-9A-Fa-f]{2})")


def _proofpoint_v2(text: str) -> str:
    # v2 escapes: `-XX` is the byte 0xXX, `_` stands for `/`.
    return _PP_V2_HEX.sub(lambda m: chr(int(m.group(1), 16)), text.replace("_", "/"))


_PP_V3 = re.compile(r"^(?P<url>.*?)__;(?P<repl>[^!]*)(?:!|$)", re.S)
_PP_V3_TOKEN = re.compile(r"\*(\*.)?")
_PP_V3_RUN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _proofpoint_v3(text: str) -> str:
    # v3: `<url>__;<base64url of the removed characters>!!<signature>`. Each `*` in the URL
    # takes the next removed character; `**X` takes a run of them whose length X encodes
    # (A = 2, B = 3, ...).
    match = _PP_V3.match(text)
    if not match:
        return text.removesuffix("__")
    url, repl_b64 = match.group("url"), match.group("repl")
    replacement = _b64(repl_b64, b"-_") if repl_b64 else ""
    position = 0

    def take(token: re.Match[str]) -> str:
        nonlocal position
        run = token.group(1)
        length = _PP_V3_RUN.index(run[1]) + 2 if run and run[1] in _PP_V3_RUN else 1
        chunk = replacement[position : position + length]
        if len(chunk) != length:
            raise DecodeError("proofpoint v3: fewer replacement characters than markers")
        position += length
        return chunk

    return _PP_V3_TOKEN.sub(take, url)


DECODERS: dict[str, Callable[[str], str]] = {
    "percent": _percent,
    "base64": _base64,
    "base64url": _base64url,
    "base64url-zlib": _base64url_zlib,
    "proofpoint-v2": _proofpoint_v2,
    "proofpoint-v3": _proofpoint_v3,
}
KNOWN_ENCODINGS = frozenset(DECODERS) | {JSON_ENCODING, FORM_ENCODING}


def follow_json_path(value: Any, path: Sequence[str]) -> Any:
    """Walk `path` through decoded JSON; a string met on the way is parsed as JSON again."""
    for key in path:
        if isinstance(value, str):
            import json  # here: only wrappers that carry JSON need it, not every start

            try:
                value = json.loads(value)
            except ValueError:
                raise DecodeError("json path crosses a non-JSON string") from None
        if not isinstance(value, dict) or key not in value:
            raise DecodeError(f"json path: no key {key!r}")
        value = value[key]
    return value


def apply_encodings(text: str, encodings: Sequence[str], json_path: Sequence[str]) -> str:
    """Run `text` through the named decoders in order."""
    value: Any = text
    for name in encodings:
        if not isinstance(value, str):
            raise DecodeError(f"{name}: input is not text")
        if name == JSON_ENCODING:
            import json

            try:
                value = follow_json_path(json.loads(value), json_path)
            except ValueError as exc:
                raise DecodeError(f"not JSON: {exc}") from None
        elif name == FORM_ENCODING:
            value = follow_json_path(dict(parse_qsl(value, keep_blank_values=True)), json_path)
        else:
            value = DECODERS[name](value)
    if not isinstance(value, str):
        raise DecodeError("decoded value is not text")
    return value
