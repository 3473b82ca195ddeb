"""Small, allocation-light URL helpers shared by detection, unwrapping and cleaning."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urljoin, urlsplit


@dataclass(frozen=True, slots=True)
class Url:
    """An absolute http(s) URL split into the parts rules look at."""

    raw: str
    host: str  # lower-case, no port, no trailing dot
    path: str
    query: str

    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


def parse_http(raw: str) -> Url | None:
    """Split `raw` if it is an absolute http(s) URL; None for anything else (cid:, data:, junk)."""
    text = raw.strip()
    # Fast reject before urlsplit: most non-http values are cid:, data:, mailto:, #anchors.
    if len(text) < 8 or text[:4].lower() != "http":
        if text.startswith("//"):
            text = "https:" + text
        else:
            return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return Url(raw=text, host=host.rstrip("."), path=parts.path or "/", query=parts.query)


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
