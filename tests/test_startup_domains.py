"""guard.engine.domains answers exactly as tldextract (bundled snapshot, offline) does, without it.

guard.engine.domains walks a suffix table derived from tldextract's own snapshot instead of
importing tldextract (too slow to start for a delivery filter). Compared here host by host with
tldextract itself: every suffix of the list under one and two labels (wildcards, exceptions, IDN and
punycode forms), IP addresses and odd hosts, and every host named in the real corpus.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
from pathlib import Path

import pytest
import tldextract

from guard.engine import domains

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "phishing-pot-dev.tar.xz"
EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
_HOST = re.compile(rb"https?://([A-Za-z0-9._\-\[\]:@%]+)")


def reference(host: str) -> str:
    """guard's registrable_domain, computed with tldextract itself (what guard.engine.domains
    was)."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return ""
    parts = EXTRACT(host)
    return f"{parts.domain}.{parts.suffix}" if parts.domain and parts.suffix else host


def check(hosts: set[str]) -> None:
    domains.registrable_domain.cache_clear()
    wrong = {h: (domains.registrable_domain(h), reference(h)) for h in hosts}
    wrong = {h: pair for h, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, sorted(wrong.items())[:20]


def test_every_suffix_of_the_list() -> None:
    path = domains.snapshot_path()
    assert path is not None
    suffixes = domains.public_suffixes(path.read_text("utf-8"))
    assert len(suffixes) > 5000
    hosts: set[str] = set()
    for suffix in suffixes:
        bare = suffix.lstrip("!").replace("*", "wild")
        hosts |= {bare, f"brand.{bare}", f"a.b.brand.{bare}", f"www.{bare}"}
        with contextlib.suppress(UnicodeError):  # an IDN suffix's punycode finds it too
            hosts.add("x.brand." + bare.encode("idna").decode("ascii"))
    check(hosts)


@pytest.mark.parametrize(
    "host",
    [
        "click.news.brand.co.uk",
        "example.com",
        "localhost",
        "192.168.0.1",
        "999.1.1.1",
        "[::1]",
        "[2001:db8::1]",
        "user@mail.example.org:8080",
        "a.b.c.kawasaki.jp",
        "city.kawasaki.jp",
        "www.ck",
        "foo.www.ck",
        "xn--80ak6aa92e.com",
        "bücher.de",
        "shop.example。co。uk",
        "..",
        "a..b.com",
        "com",
        "no-suffix-here",
        "sub.example.notatld",
        "x.blogspot.com",
    ],
)
def test_odd_hosts(host: str) -> None:
    check({host})


def test_every_host_of_the_corpus() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the real corpus is not at {CORPUS}")
    hosts: set[str] = set()
    with tarfile.open(CORPUS) as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                for found in _HOST.findall(handle.read()):
                    hosts.add(found.decode("ascii", "replace"))
    assert len(hosts) > 1000
    check(hosts)


def test_no_table_means_the_snapshot_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source checkout without the build-time table derives the same trie in memory."""
    monkeypatch.setattr(domains, "COMPILED", Path("/nonexistent/suffixes.marshal"))
    domains._trie.cache_clear()
    try:
        check({"click.news.brand.co.uk", "a.b.c.kawasaki.jp", "city.kawasaki.jp"})
    finally:
        domains._trie.cache_clear()
