"""Address leaks: URLs that carry the recipient's e-mail address, plainly or encoded.

Senders put the address in tracking URLs so the tracker can tie an open or a click to a person:
as is, percent-encoded, base64, or hashed (MD5 / SHA-1 / SHA-256 of the lower-cased address, the
form ad networks match audiences on). Pure: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from guard.engine.urlcore import unquote

MIN_BASE64_CORE = 8  # shorter runs would match by chance


@dataclass(frozen=True, slots=True)
class AddressTokens:
    """What each address looks like in each encoding, ready for substring tests."""

    folded: tuple[tuple[str, str], ...]  # (token, encoding) compared with the lower-cased URL
    exact: tuple[tuple[str, str], ...]  # (token, encoding) compared case-sensitively (base64)

    def __bool__(self) -> bool:
        return bool(self.folded)

    def find(self, url: str) -> str | None:
        """The encoding in which `url` carries an address (`plain`, `md5`, …), or None."""
        lowered = url.lower()
        decoded = unquote(lowered) if "%" in lowered else lowered
        for token, encoding in self.folded:
            if token in decoded:
                return encoding
        for token, encoding in self.exact:
            if token in url:
                return encoding
        return None


def _base64_cores(data: bytes) -> list[str]:
    """Base64 of `data` at each of the three byte alignments it can have inside a longer
    payload, trimmed to the characters that do not depend on the neighbouring bytes."""
    cores: list[str] = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        head = (offset * 4 + 2) // 3  # characters touched by the padding bytes in front
        tail = len(encoded) - ((len(data) + offset) % 3 and 4)  # last group may mix in neighbours
        core = encoded[head:tail].rstrip("=")
        if len(core) >= MIN_BASE64_CORE:
            cores.append(core)
            url_safe = core.replace("+", "-").replace("/", "_")
            if url_safe != core:
                cores.append(url_safe)
    return cores


def address_tokens(addresses: Iterable[str]) -> AddressTokens:
    normal = tuple(sorted({a.strip().lower() for a in addresses if "@" in a}))
    # A mailbox's messages go to the same few addresses: their hashes (three OpenSSL digests and
    # the base64 forms each, ~10-60 us a message) are made once. Bounded: 256 sets of at most
    # 16 addresses, whatever a scan of hostile mail brings.
    return _cached_tokens(normal) if len(normal) <= 16 else _tokens(normal)


def _tokens(addresses: tuple[str, ...]) -> AddressTokens:
    folded: list[tuple[str, str]] = []
    exact: list[tuple[str, str]] = []
    for address in addresses:
        # here: cleaning reads no recipients (parse_split(recipients=False)): `guard clean` and
        # `guard strip` hash no address, and importing hashlib loads OpenSSL (~11 M instructions)
        import hashlib

        raw = address.encode("utf-8")
        folded.append((address, "plain"))
        # Weak hashes on purpose: they are what trackers use to match people, not security.
        folded.append((hashlib.md5(raw, usedforsecurity=False).hexdigest(), "md5"))
        folded.append((hashlib.sha1(raw, usedforsecurity=False).hexdigest(), "sha1"))
        folded.append((hashlib.sha256(raw).hexdigest(), "sha256"))
        exact.extend((core, "base64") for core in _base64_cores(raw))
    return AddressTokens(tuple(folded), tuple(exact))


_cached_tokens = lru_cache(maxsize=256)(_tokens)
