"""Small, allocation-light URL helpers shared by detection, unwrapping and cleaning."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote_plus, urljoin


class Url(NamedTuple):
    """An absolute http(s) URL split into the parts rules look at.

    A NamedTuple: ~150 are made per newsletter, and a frozen dataclass sets each field through
    object.__setattr__."""

    raw: str
    host: str  # lower-case, no port, no trailing dot
    path: str
    query: str

    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """The first value of parameter `name`, decoded as `params()` decodes it; None when the
        query has no such parameter. Only the matching value is decoded."""
        for pair in self.query.split("&"):
            if not pair:
                continue
            key, _, value = pair.partition("=")
            if "%" in key or "+" in key:
                key = unquote_plus(key)
            if key == name:
                return unquote_plus(value) if "%" in value or "+" in value else value
        return None


_BAD_HOST = re.compile(r"[\s\\<>\"'{}|^`]")
_HTTP = re.compile(r"(?:([A-Za-z][A-Za-z0-9+.-]*):)?//([^/?#]*)([^?#]*)(?:\?([^#]*))?")
# The shape of nearly every URL in mail: http(s), a plain host name, maybe a port; no user info,
# no IPv6 literal. One match gives what the general split below takes a dozen steps for.
_PLAIN = re.compile(
    r"(?:([Hh][Tt][Tt][Pp][Ss]?):)?//([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]*)?"
    r"(/[^?#]*)?(?:\?([^#]*))?"
)


def parse_http(raw: str) -> Url | None:
    """Split `raw` if it is an absolute http(s) URL; None for anything else (cid:, data:, junk).

    Scheme-relative `//host/...` counts as https. Cached: a newsletter repeats the same URLs
    (image + button per product, HTML + text part); only URLs of ordinary length, so hostile
    ones cannot fill the memory of a long-running `guard watch`.
    """
    return _cached_parse(raw) if len(raw) <= _CACHED_LONGEST else parse_http_uncached(raw)


_CACHED_LONGEST = 4096


def parse_http_uncached(raw: str) -> Url | None:
    text = raw.strip()
    m = _PLAIN.match(text)
    if m is not None and (m.end() == len(text) or text[m.end()] == "#"):
        scheme, host, path, query = m.groups()
        return Url(text if scheme else "https:" + text, host.lower(), path or "/", query or "")
    inner = unwrap_scheme(text)
    if inner is not text:
        # `view-source:https://host/p`: the host, path and query are the inner URL's; `raw` stays
        # as written, so cleaning finds the reference it has to neutralise.
        url = parse_http_uncached(inner)
        return url._replace(raw=text) if url is not None else None
    return split_http(text)


# Schemes that wrap another URL and fetch it when the wrapper is loaded or opened: Firefox and old
# Chromium fetched `view-source:` and `feed:` URLs themselves, Firefox `jar:` (`jar:URL!/entry`),
# podcast clients `pcast:`/`itpc:`/`podcast:`. Nested wrappers are peeled a few at a time at most.
_WRAPPING = re.compile(r"(?:view-source|feed|jar|pcast|itpc|podcast)\s*:\s*", re.I)
_WRAPPED_DEPTH = 4


def unwrap_scheme(text: str) -> str:
    """The URL inside `view-source:`, `feed:`, `jar:`… (`text` itself when nothing wraps it)."""
    inner = text
    for _ in range(_WRAPPED_DEPTH):
        m = _WRAPPING.match(inner)
        if m is None:
            break
        inner = inner[m.end() :]
        if inner[:2] == "//" and not inner.startswith("///"):
            inner = "https:" + inner  # `feed://host/p` is `feed:` + an http URL
    if inner is text:
        return text
    # jar:URL!/entry fetches URL
    bang = inner.find("!/")
    return inner[:bang] if bang != -1 else inner


_cached_parse = lru_cache(maxsize=8192)(parse_http_uncached)


def split_http(text: str) -> Url | None:
    """The general split behind `parse_http` (user info, ports, IPv6 literals, odd hosts)."""
    m = _HTTP.match(text)
    if m is None:
        return None
    scheme, netloc, path, query = m.groups()
    if scheme is None:
        text = "https:" + text
    elif scheme.lower() not in ("http", "https"):
        return None
    host = netloc.rpartition("@")[2]
    if host.startswith("["):  # IPv6 literal
        host = host[1 : host.find("]")] if "]" in host else ""
    else:
        host = host.partition(":")[0]
    host = host.lower().rstrip(".")
    if not host or _BAD_HOST.search(host):
        return None
    return Url(text, host, path or "/", query or "")


def query_keys(query: str) -> list[str]:
    """The parameter names of a query string, decoded, without parsing the values."""
    keys = []
    for pair in query.split("&"):
        if not pair:
            continue
        key = pair.split("=", 1)[0]
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        keys.append(key)
    return keys


def resolve(base: str | None, ref: str) -> str:
    """Resolve `ref` against a document's `<base href>`, as a renderer would."""
    ref = ref.strip()
    if not base or not ref:
        return ref
    try:
        return urljoin(base, ref)
    except ValueError:
        return ref


def host_matches(host: str, pattern: str) -> bool:
    """`pattern` is an exact host or `*.domain` (any subdomain, not the apex)."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern
