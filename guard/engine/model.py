"""The nouns guard talks about: parsed messages, findings, per-message results.

Everything here is a frozen dataclass so results can cross process boundaries and be cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

_native: Any
try:
    from guard.engine import _mimecore as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # not built (no C compiler at install): the index is made in Python
    _native = None

Headers = tuple[tuple[str, str], ...]


class HeaderIndex(NamedTuple):
    """A header tuple's names lower-cased, and the first value of each lower-cased name."""

    headers: Headers
    """The tuple indexed, kept with its index: while kept, its id cannot name another tuple."""
    names: tuple[str, ...]
    first: dict[str, str]


# A message's ~60 header fields are looked up a dozen times in a scan (the MIME split, the
# envelope, the recipients, receipt and sender rules), each look-up lower-casing every name:
# the last long tuple's index is kept instead. Short tuples (a part's few fields) are read
# directly, so the split's parts do not push the message's own index out.
_INDEX_FROM = 8
_last_index: HeaderIndex | None = None


def header_index(headers: Headers) -> HeaderIndex:
    """`headers`' HeaderIndex, made once for the last tuple of headers asked about."""
    global _last_index
    index = _last_index
    if index is not None and index.headers is headers:
        return index
    try:
        # In C (a real message's ~60 fields: a tenth of the Python's instructions); the same
        # names and dict as _index_python, whatever the names hold (tests/test_mimecore.py).
        # It takes a tuple of (str, value) tuples alone: anything else is read by the Python.
        names, first = _native.index_headers(headers)
    except (AttributeError, TypeError):  # not built, or not such a tuple
        names, first = _index_python(headers)
    index = HeaderIndex(headers, names, first)
    if type(headers) is tuple:  # immutable: the same object has the same fields
        _last_index = index
    return index


def _index_python(headers: Headers) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the names lower-cased, each lower-cased name's first value): `header_index`'s reference."""
    names = tuple([key.lower() for key, _value in headers])
    first: dict[str, str] = {}
    for name, (_key, value) in zip(names, headers, strict=True):
        if name not in first:
            first[name] = value
    return names, first


def header_names(headers: Iterable[tuple[str, str]]) -> tuple[Headers, tuple[str, ...]]:
    """(the headers as a tuple, their names lower-cased), from the kept index when it is theirs."""
    fields = headers if type(headers) is tuple else tuple(headers)
    if len(fields) < _INDEX_FROM:
        return fields, tuple([key.lower() for key, _value in fields])
    return fields, header_index(fields).names


def first_header(headers: Headers, name: str) -> str | None:
    """The first value of header `name` (case-insensitive), or None."""
    lname = name.lower()
    if len(headers) < _INDEX_FROM or type(headers) is not tuple:
        for key, value in headers:
            if key.lower() == lname:
                return value
        return None
    return header_index(headers).first.get(lname)


class Kind(StrEnum):
    """What a finding is about."""

    PIXEL = "pixel"  # a remote image whose purpose is to signal the opening
    REMOTE = "remote"  # any other resource a client would load when displaying the message
    LINK = "link"  # a click-tracking / redirect-wrapped link
    PARAM = "param"  # tracking parameters on a link destination
    RECEIPT = "receipt"  # a read-receipt request header


class Confidence(StrEnum):
    KNOWN = "known"  # a rule names it, or it is a plain fact (a remote load is a remote load)
    HEURISTIC = "heuristic"  # it looks like tracking, but no rule names it


class Party(StrEnum):
    FIRST = "first"  # the host belongs to the sender's own registrable domain (often an ESP alias)
    THIRD = "third"  # someone else's host


class Finding(NamedTuple):
    """One thing found in a message.

    A NamedTuple, not a dataclass: a newsletter yields a hundred of these and they cross process
    boundaries; tuples are built and pickled several times faster.
    """

    kind: Kind
    confidence: Confidence
    rule: str
    """Rule id (`service.rule`) or a built-in id such as `heuristic.tiny-image`."""
    tracker: str | None = None
    """Display name of the service behind it; None when nothing names it."""
    category: str | None = None
    url: str | None = None
    destination: str | None = None
    """For `link`: the decoded target when the wrapper carries it offline; None when opaque."""
    header: str | None = None
    value: str | None = None
    """For `receipt`: the header's value (the address a receipt would go to)."""
    element: str | None = None
    """Where it was found, e.g. `img[src]`, `td[background]`, `style url()`, `text/plain`."""
    params: tuple[str, ...] = ()
    host: str | None = None
    party: Party | None = None
    leak: str | None = None
    """How the URL carries the recipient's address (`plain`, `base64`, `md5`, `sha1`, `sha256`)."""
    via: str | None = None
    """When `tracker` was named from the message's headers (the ESP it was sent through) rather
    than from the URL: the `sender` rule that named it."""


class Esp(NamedTuple):
    """The e-mail service provider a message was sent through, and why guard says so."""

    service: str
    """The rule service id (`sendgrid`)."""
    name: str
    """Its display name (`SendGrid`)."""
    evidence: tuple[str, ...] = ()
    """Human-readable fingerprints, most telling first: `DKIM d=sendgrid.net`, `X-SG-EID`,
    `Return-Path bounces.mcsv.net`, `open pixel on u1.ct.sendgrid.net`; a relay that delivered
    the platform's mail is named last (`relayed by Amazon SES: X-SES-Outgoing`)."""


UTF8_SOURCES: dict[int, tuple[str, bytes]] = {}
"""HTML text of the last message parsed (guard/engine/mime.py `parse_split`) -> the bytes it was
read from as UTF-8 without an error: the bytes its UTF-8 encoding makes, which the HTML parser
reads (guard/engine/html.py `parse_document`), so they are handed over instead of made again
(~0.1 M instructions a real newsletter). By the text's id, the text kept alongside (`is`)."""


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What detection needs from a message: headers and decoded text parts."""

    headers: Headers
    html_parts: tuple[str, ...] = ()
    text_parts: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    """Lower-case addresses from To, Cc and Delivered-To (for address-leak detection)."""
    related: tuple[tuple[str, str, str], ...] = ()
    """(Content-ID, media type, decoded text) of the parts an HTML part may load as a document
    or stylesheet through `cid:` (stylesheets, SVG, HTML; see guard/engine/nested.py)."""

    def header(self, name: str) -> str | None:
        return first_header(self.headers, name)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The few header fields reports show, decoded for display."""

    from_addr: str = ""
    from_name: str = ""
    subject: str = ""
    date: str = ""
    message_id: str = ""
    domain: str = ""
    """The sender's registrable domain (news@mail.brand.co.uk: `brand.co.uk`), set by the scan."""


@dataclass(frozen=True, slots=True)
class MessageResult:
    """The outcome of scanning one message: findings, or an error saying why there are none."""

    source: str
    """Where the message came from: a file path, `mbox#n`, or an IMAP locator."""
    id: str
    """Stable id within the source (file name, mbox index, UID)."""
    envelope: Envelope = field(default_factory=Envelope)
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    esp: Esp | None = None
    """The ESP the message was sent through, from its headers' fingerprints (or, without any,
    from the ESP's own tracking URLs in it); None when nothing shows one."""

    @property
    def tracking(self) -> bool:
        """True when something in the message tracks the reader (remote loads alone do not)."""
        return any(f.kind is not Kind.REMOTE for f in self.findings)

    def count(self, kind: Kind) -> int:
        return sum(1 for f in self.findings if f.kind is kind)
