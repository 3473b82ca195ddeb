"""Registrable domains (example.co.uk from a.b.example.co.uk), offline.

tldextract runs on its bundled public-suffix list only: no network, no cache writes (promise 1).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _extractor() -> Any:
    import tldextract  # imported lazily: building the extractor costs ~0.45 s, do it once

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """`click.news.brand.co.uk` -> `brand.co.uk`; an IP address or bare name comes back as is."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return ""
    parts = _extractor()(host)
    if parts.domain and parts.suffix:
        return f"{parts.domain}.{parts.suffix}"
    return host


def warm_up() -> None:
    """Build the extractor now (before forking workers, so they share it)."""
    registrable_domain("example.com")
