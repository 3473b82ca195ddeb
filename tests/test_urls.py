"""URL splitting: the fast path for plain host names agrees with the general split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine.urls import Url, parse_http, parse_http_uncached, split_http

# Pieces that make both well-formed URLs and every near miss: user info, ports, IPv6 literals,
# trailing dots, other schemes, blanks, fragments.
_PIECES = st.sampled_from(
    [
        "http", "https", "HTTP", "hTTps", "ftp", "httpx", "", "//", "://", ":", "/", "?", "#",
        "@", "[", "]", "::1", ".", "..", "a", "B", "0", "-", "_", "%2F", " ", "\t", "x.y", ":80",
        "é", "\\", "user:pw@", "=", "&",
    ]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=12))
def test_fast_split_agrees_with_the_general_one(pieces: list[str]) -> None:
    raw = "".join(pieces)
    assert parse_http_uncached(raw) == split_http(raw.strip())


def test_common_shapes() -> None:
    assert parse_http(" HTTPS://Click.Example.COM:8443/c/1?u=x#top ") == Url(
        "HTTPS://Click.Example.COM:8443/c/1?u=x#top", "click.example.com", "/c/1", "u=x"
    )
    assert parse_http("//cdn.example/i.png") == Url(
        "https://cdn.example/i.png", "cdn.example", "/i.png", ""
    )
    assert parse_http("http://me@host.example./") == Url(
        "http://me@host.example./", "host.example", "/", ""
    )
    assert parse_http("https://[::1]:8080/x") == Url("https://[::1]:8080/x", "::1", "/x", "")
    assert parse_http("cid:part1@example") is None
    assert parse_http("ftp://files.example/") is None


_QUERY_PIECES = st.sampled_from(
    ["u", "url", "=", "&", "%3D", "%26", "+", "%2B", "%", "%zz", "a", " ", "é"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_QUERY_PIECES, max_size=10), st.sampled_from(["u", "url", "u u", "=", ""]))
def test_one_parameter_reads_as_all_parameters_do(pieces: list[str], name: str) -> None:
    url = Url("https://w.example/?" + "".join(pieces), "w.example", "/", "".join(pieces))
    assert url.param(name) == next((v for k, v in url.params() if k == name), None)
