"""Registrable domains (example.co.uk from a.b.example.co.uk), offline.

The answers are tldextract's (`TLDExtract(suffix_list_urls=(), cache_dir=None)`: its bundled
public-suffix snapshot, ICANN section), computed here without importing tldextract, which pulls
in requests, urllib3 and filelock and builds its tables on every start (~0.1 s, too much for a
delivery filter that starts once per message). The suffix table is a trie of the snapshot's
suffixes, derived at build time (hatch_build.py) into `guard/engine/_compiled/suffixes.marshal` and
checked against the snapshot's length and CRC-32 when loaded (`snapshot_digest`); without it (a
source checkout) or when the snapshot changed, it is derived in memory from the snapshot file
itself. Nothing is fetched and nothing is written at run time (promise 1).
tests/test_domains_table.py checks the answers against tldextract's on every suffix of the list
and on the hosts of the corpus.
"""

from __future__ import annotations

import importlib.util
import marshal
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

COMPILED = Path(__file__).resolve().parent / "_compiled" / "suffixes.marshal"
TABLE_FORMAT = 2  # 2: the snapshot's length and CRC-32, not its SHA-256
_END = "\0"  # trie key marking "a suffix ends here" (never a label)
# tldextract.suffix_list: a suffix is the start of each rule line.
_SUFFIX_LINE = re.compile(r"^(?P<suffix>[.*!]*\w[\S]*)", re.UNICODE | re.MULTILINE)
_PRIVATE_SEPARATOR = "// ===BEGIN PRIVATE DOMAINS==="
_IPV4 = re.compile(
    r"^(?:(?:[0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.)"
    r"{3}(?:[0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])$",
    re.ASCII,
)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")

Trie = dict[str, Any]


def snapshot_path() -> Path | None:
    """tldextract's bundled public-suffix snapshot, found without importing tldextract."""
    spec = importlib.util.find_spec("tldextract")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / ".tld_set_snapshot"
        if candidate.is_file():
            return candidate
    return None


def public_suffixes(text: str) -> list[str]:
    """The ICANN suffixes of a public-suffix list, as tldextract reads them."""
    public = text.partition(_PRIVATE_SEPARATOR)[0]
    return [m.group("suffix") for m in _SUFFIX_LINE.finditer(public)]


def build_trie(suffixes: list[str]) -> Trie:
    """Labels in reverse order (`co.uk` -> {"uk": {"co": {END: 1}, END: 1}}); `*` and `!x`
    entries are labels like any other, read by `_suffix_index`."""
    root: Trie = {}
    for suffix in suffixes:
        node = root
        for label in reversed(suffix.split(".")):
            node = node.setdefault(label, {})
        node[_END] = 1
    return root


def snapshot_digest(snapshot: bytes) -> str:
    """What tells another snapshot from the one the build read (tldextract's file is trusted like
    the code; CRC-32 is ~10x cheaper than SHA-256 on its 300 KB, read on every start)."""
    return f"{len(snapshot)}:{zlib.crc32(snapshot):08x}"


def compile_table(snapshot: bytes) -> bytes:
    """The build-time table: (format, snapshot digest, trie), marshalled."""
    trie = build_trie(public_suffixes(snapshot.decode("utf-8")))
    return marshal.dumps((TABLE_FORMAT, snapshot_digest(snapshot), trie))


@lru_cache(maxsize=1)
def _trie() -> Trie:
    path = snapshot_path()
    if path is None:
        raise RuntimeError("tldextract's public-suffix snapshot is not installed")
    snapshot = path.read_bytes()
    try:
        fmt, digest, trie = marshal.loads(COMPILED.read_bytes())
        if fmt == TABLE_FORMAT and digest == snapshot_digest(snapshot):
            return dict(trie)
    except (OSError, ValueError, EOFError, TypeError):
        pass  # no build-time table (source checkout) or another Python's marshal format
    return build_trie(public_suffixes(snapshot.decode("utf-8")))


def _decode_punycode(label: str) -> str:
    lowered = label.lower()
    if lowered.startswith("xn--"):
        try:
            import idna  # tldextract's own dependency; only for xn-- labels

            return str(idna.decode(lowered))
        except (ImportError, UnicodeError, IndexError):
            pass
    return lowered


def _suffix_index(labels: list[str]) -> int | None:
    """Index of the first label of the public suffix (tldextract's walk), None without one."""
    node = _trie()
    suffix_idx = label_idx = len(labels)
    for label in reversed(labels):
        decoded = _decode_punycode(label)
        if decoded in node:
            label_idx -= 1
            node = node[decoded]
            if _END in node:
                suffix_idx = label_idx
            continue
        if "*" in node:
            return label_idx if "!" + decoded in node else label_idx - 1
        break
    return None if suffix_idx == len(labels) else suffix_idx


def _netloc(text: str) -> str:
    """tldextract's lenient host of a URL-like string."""
    slashes = text.find("//")
    if slashes == 0:
        text = text[2:]
    elif slashes >= 2 and text[slashes - 1] == ":" and set(text[: slashes - 1]) <= _SCHEME_CHARS:
        text = text[slashes + 2 :]
    authority = text.partition("/")[0].partition("?")[0].partition("#")[0]
    after_userinfo = authority.rpartition("@")[-1]
    if after_userinfo and after_userinfo[0] == "[":
        maybe_ipv6 = after_userinfo.partition("]")
        if maybe_ipv6[1] == "]":
            return f"{maybe_ipv6[0]}]"
    return after_userinfo.partition(":")[0].strip().rstrip(".\u3002\uff0e\uff61")


def _looks_like_ipv6(text: str) -> bool:
    from ipaddress import AddressValueError, IPv6Address

    try:
        IPv6Address(text)
    except AddressValueError:
        return False
    return True


def split_host(host: str) -> tuple[str, str]:
    """(domain label, public suffix) as tldextract's `domain` and `suffix` would be."""
    netloc = _netloc(host).replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".")
    bracketed = len(netloc) >= 4 and netloc[0] == "[" and netloc[-1] == "]"
    if bracketed and _looks_like_ipv6(netloc[1:-1]):
        return netloc, ""
    labels = netloc.split(".")
    index = _suffix_index(labels)
    if index is None:
        if len(labels) == 4 and netloc[:1].isdecimal() and _IPV4.fullmatch(netloc):
            return netloc, ""
        return labels[-1], ""
    domain = labels[index - 1] if index > 0 else ""
    return domain, ".".join(labels[index:])


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """`click.news.brand.co.uk` -> `brand.co.uk`; an IP address or bare name comes back as is."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return ""
    domain, suffix = split_host(host)
    if domain and suffix:
        return f"{domain}.{suffix}"
    return host


def warm_up() -> None:
    """Load the suffix table now (before forking workers, so they share it)."""
    registrable_domain("example.com")
