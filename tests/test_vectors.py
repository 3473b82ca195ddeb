"""Every load vector of the public checklists (issue 14 item 3): the Email Privacy Tester's list of
tests and Tutanota's HtmlSanitizerTest, plus nested documents (srcdoc and data: iframes, cid:
stylesheets and SVG), `view-source:`-wrapped URLs and `<image>` in a table.

For each vector: guard reports the load (scan), cleaning removes it (rewrite read back), and
where headless Chromium loads it (tests/renderer.py, network walled off) every URL Chromium asks
for is among guard's loads, and after cleaning Chromium asks for none of the removed ones. Which
vectors Chromium loads is itself a finding, kept in `CHROMIUM_LOADS` (checked both ways).
"""

# ruff: noqa: E501 - the table of vectors keeps one vector on a line

from __future__ import annotations

import base64
import contextlib
import html as html_escape
import re
import textwrap
import time
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import quote, unquote

import pytest
from renderer import Renderer, browser_for_tests
from renderer_proof import url_key

from guard.clean.html import LoadAction, RewriteUnsafe, rewrite_html
from guard.clean.message import Policy, clean_message
from guard.engine.detect import detect
from guard.engine.html import scan_html
from guard.engine.mime import parse_message
from guard.engine.mimetree import split
from guard.engine.model import Kind
from guard.engine.rules_load import load_ruleset
from guard.engine.urls import parse_http

RULES = load_ruleset(include_user=False)
T = "https://t.example/v.gif"
"""The vector's URL (the only one each case loads, unless it says otherwise)."""


class Vector(NamedTuple):
    name: str
    source: str  # EPT: Email Privacy Tester's list; Tutanota: HtmlSanitizerTest; issue 14
    html: str
    element: str  # what the finding's element starts with
    chromium: bool | None  # Chromium loads it (True/False, checked); None: not rendered


def _svg(inner: str) -> str:
    return f"<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink'>{inner}</svg>"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SVG_IMAGE = _svg(f"<image href='{T}' width='9' height='9'/>")
VECTORS = [
    Vector("img", "EPT", f'<img src="{T}">', "img[src]", True),
    Vector("img srcset", "EPT", f'<img srcset="{T} 1x">', "img[srcset]", True),
    Vector("picture source", "EPT", f'<picture><source srcset="{T}"><img></picture>', "source[srcset]", True),
    Vector("body background", "EPT", f'<body background="{T}">x', "body[background]", True),
    Vector("table background", "EPT", f'<table background="{T}"><tr><td>x</td></tr></table>', "table[background]", True),
    Vector("td background", "Tutanota", f'<table><tr><td background="{T}">x</td></tr></table>', "td[background]", True),
    Vector("css background-image", "EPT", f'<p style="background-image:url(\'{T}\')">x</p>', "p[style] url()", True),
    Vector("css background", "Tutanota", f'<p style="background: url(&quot;{T}&quot;)">x</p>', "p[style] url()", True),
    Vector("css image-set", "Tutanota", f"<p style=\"background-image:image-set(url('{T}') 1x)\">x</p>", "p[style] url()", True),
    Vector("css -webkit-image-set", "Tutanota", f"<p style=\"background-image:-webkit-image-set(url('{T}') 1x)\">x</p>", "p[style] url()", True),
    Vector("css list-style-image", "Tutanota", f'<ul style="list-style-image:url({T})"><li>x</li></ul>', "ul[style] url()", True),
    Vector("css content", "Tutanota", f'<div style="content:url({T})"></div>', "div[style] url()", True),
    Vector("css cursor", "Tutanota", f'<div style="cursor:url({T}),auto">x</div>', "div[style] url()", None),
    Vector("css filter", "Tutanota", f'<div style="filter:url({T})">x</div>', "div[style] url()", None),
    Vector("css border-image-source", "Tutanota", f'<div style="border:5px solid;border-image-source:url({T});border-image-slice:1">x</div>', "div[style] url()", True),
    Vector("css mask-image", "Tutanota", f'<div style="mask-image:url({T})">x</div>', "div[style] url()", True),
    Vector("css shape-outside", "Tutanota", f'<div style="float:left;width:9px;height:9px;shape-outside:url({T})">x</div>', "div[style] url()", True),
    Vector("css mask-border-source", "Tutanota", f'<div style="mask-border-source:url({T})">x</div>', "div[style] url()", None),
    Vector("style element background", "EPT", f"<style>p{{background:url({T})}}</style><p>x</p>", "<style> url()", True),
    Vector("style @import", "EPT/Tutanota", f'<style>@import url("{T}");</style>', "<style> url()", True),
    Vector("style @font-face", "EPT", f"<style>@font-face{{font-family:f;src:url({T})}}p{{font-family:f}}</style><p>x</p>", "<style> url()", True),
    Vector("link stylesheet", "EPT", f'<link rel="stylesheet" href="{T}">', "link[rel=stylesheet]", True),
    Vector("link prefetch", "EPT", f'<link rel="prefetch" href="{T}">', "link[rel=prefetch]", None),
    Vector("link dns-prefetch", "EPT", f'<link rel="dns-prefetch" href="{T}">', "link[rel=dns-prefetch]", None),
    Vector("link preconnect", "EPT", f'<link rel="preconnect" href="{T}">', "link[rel=preconnect]", None),
    Vector("link icon", "EPT", f'<link rel="icon" href="{T}">', "link[rel=icon]", None),
    Vector("link preload imagesrcset", "issue 14", f'<link rel="preload" as="image" imagesrcset="{T} 1x">', "link[imagesrcset]", True),
    Vector("link alternate feed", "EPT", f'<link rel="alternate" type="application/rss+xml" href="{T}">', "link[rel=alternate]", False),
    Vector("link search", "EPT", f'<link rel="search" type="application/opensearchdescription+xml" href="{T}">', "link[rel=search]", False),
    Vector("link import", "EPT", f'<link rel="import" href="{T}">', "link[rel=import]", False),
    Vector("html manifest", "EPT", f'<html manifest="{T}"><body>x</body></html>', "html[manifest]", False),
    Vector("bgsound", "EPT", f'<bgsound src="{T}">', "bgsound[src]", False),
    Vector("iframe", "EPT", f'<iframe src="{T}"></iframe>', "iframe[src]", True),
    Vector("iframe srcdoc", "EPT", f'<iframe srcdoc="&lt;img src=&quot;{T}&quot;&gt;"></iframe>', "iframe[srcdoc] > img[src]", True),
    Vector("iframe data:", "EPT", f'<iframe src="data:text/html,{quote(f"<img src={T}>")}"></iframe>', "iframe[src] data: > img[src]", True),
    Vector("iframe data: base64", "EPT", f'<iframe src="data:text/html;base64,{_b64(f"<img src={T}>")}"></iframe>', "iframe[src] data: > img[src]", True),
    Vector("srcdoc in srcdoc", "issue 14", "<iframe srcdoc=\"" + html_escape.escape(f"<iframe srcdoc=\"{html_escape.escape(f'<img src={T}>')}\"></iframe>") + "\"></iframe>", "iframe[srcdoc] > iframe[srcdoc] > img[src]", True),
    Vector("object", "EPT", f'<object data="{T}"></object>', "object[data]", True),
    Vector("object data: svg", "issue 14", f'<object type="image/svg+xml" data="data:image/svg+xml;base64,{_b64(SVG_IMAGE)}"></object>', "object[data] data: > image[href]", True),
    Vector("embed", "EPT/Tutanota", f'<embed src="{T}">', "embed[src]", True),
    Vector("link data: css", "issue 14", f'<link rel="stylesheet" href="data:text/css,{quote(f"@import url({T});")}">', "link[href] data: > url()", True),
    Vector("video src", "EPT", f'<video src="{T}"></video>', "video[src]", True),
    Vector("video poster", "EPT/Tutanota", f'<video poster="{T}" width="1" height="1"></video>', "video[poster]", True),
    Vector("video source", "EPT", f'<video><source src="{T}"></video>', "source[src]", True),
    Vector("audio src", "EPT/Tutanota", f'<audio src="{T}" preload="auto"></audio>', "audio[src]", True),
    Vector("audio source", "EPT", f'<audio preload="auto"><source src="{T}"></audio>', "source[src]", True),
    Vector("track", "EPT", f'<video src="data:video/mp4,"><track default src="{T}"></video>', "track[src]", None),
    Vector("input image", "EPT", f'<input type="image" src="{T}">', "input[type=image]", True),
    Vector("meta refresh", "EPT", f'<meta http-equiv="refresh" content="0;url={T}">', "meta[http-equiv=refresh]", None),
    Vector("script", "EPT", f'<script src="{T}"></script>', "script[src]", False),  # scripts off
    Vector("svg image", "EPT", _svg(f"<image href='{T}' width='9' height='9'/>"), "image[href]", True),
    Vector("svg image xlink", "EPT", _svg(f"<image xlink:href='{T}' width='9' height='9'/>"), "image[xlink:href]", True),
    Vector("svg feImage", "EPT", _svg(f"<filter id='f'><feImage href='{T}'/></filter><rect width='9' height='9' filter='url(#f)'/>"), "feimage[href]", True),
    Vector("svg use", "EPT", _svg(f"<use href='{T}#a'/>"), "use[href]", None),
    Vector("image in a table", "issue 14", f'<table><image src="{T}"></table>', "image[src] (in a table)", True),
    Vector("view-source:", "EPT", f'<img src="view-source:{T}">', "img[src]", False),
    Vector("figure src", "Tutanota", f'<figure src="{T}" type="image"></figure>', "figure[src]", False),
    Vector("object codebase", "EPT", f'<object codebase="{T}"></object>', "object[codebase]", None),
    Vector("applet", "EPT", '<applet code="v.gif" codebase="https://t.example/"></applet>', "applet[code]", None),
    Vector("param movie", "EPT", f'<object><param name="movie" value="{T}"></object>', "param[value]", None),
]  # fmt: skip
IDS = [v.name for v in VECTORS]


def _loads(html: str) -> dict[str, str]:
    """URL (as parse_http gives it) -> element, for the loads guard reports."""
    out: dict[str, str] = {}
    for o in scan_html(html):
        parsed = parse_http(o.url)
        if o.load and parsed is not None:
            out.setdefault(parsed.raw, o.element)
    return out


def _target(vector: Vector) -> str:
    if vector.name == "view-source:":
        return f"view-source:{T}"
    return f"{T}#a" if vector.name == "svg use" else T


class Removing:
    def __init__(self, *urls: str) -> None:
        self.urls = set(urls)

    def load_action(self, url: str) -> LoadAction:
        parsed = parse_http(url)
        removed = parsed is not None and parsed.raw in self.urls
        return LoadAction.REMOVE_PIXEL if removed else LoadAction.KEEP

    def link_target(self, url: str) -> str | None:
        return None


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_each_vector_is_reported(vector: Vector) -> None:
    loads = _loads(vector.html)
    assert _target(vector) in loads, loads
    assert loads[_target(vector)].startswith(vector.element)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_each_vector_is_cleaned(vector: Vector) -> None:
    out = rewrite_html(vector.html, Removing(_target(vector)))
    assert out is not None
    assert _target(vector) not in _loads(out)
    assert T not in [url_key(u) for u in _loads(out)]


def test_a_link_is_not_a_load_and_a_wrapped_link_is_unwrapped_to_its_host() -> None:
    found = scan_html(f'<a href="view-source:{T}">x</a>')
    assert [(o.load, o.element) for o in found] == [(False, "a[href]")]
    parsed = parse_http(found[0].url)
    assert parsed is not None and parsed.host == "t.example"


@pytest.mark.parametrize(
    "rel",
    ['rel="alternate" hreflang="de"', 'rel="alternate"', 'rel="canonical"'],
)
def test_alternates_that_are_not_feeds_load_nothing(rel: str) -> None:
    assert _loads(f'<link {rel} href="{T}">') == {}


# ---- nested documents -------------------------------------------------------------------------


def test_srcdoc_resolves_against_the_parent_base_a_data_document_against_nothing() -> None:
    html = (
        '<base href="https://base.example/">'
        '<iframe srcdoc="<img src=a.gif>"></iframe>'
        '<iframe src="data:text/html,<img src=b.gif>"></iframe>'
    )
    loads = _loads(html)
    assert loads.get("https://base.example/a.gif") == "iframe[srcdoc] > img[src]"
    assert not any(u.endswith("b.gif") for u in loads)


def test_a_nested_pixel_keeps_its_shape() -> None:
    found = scan_html(f'<iframe srcdoc="<img src={T} width=1 height=1>"></iframe>')
    assert [(o.element, o.shape) for o in found] == [("iframe[srcdoc] > img[src]", "tiny")]


def _chain(depth: int, inner: str, how: str) -> str:
    for _ in range(depth):
        if how == "srcdoc":
            inner = f'<iframe srcdoc="{html_escape.escape(inner)}"></iframe>'
        elif how == "base64":
            inner = f'<iframe src="data:text/html;base64,{_b64(inner)}"></iframe>'
        else:
            inner = f'<iframe src="data:text/html,{quote(inner)}"></iframe>'
    return inner


@pytest.mark.parametrize("how", ["srcdoc", "base64", "percent"])
@pytest.mark.parametrize("depth", [1, 4, 5, 12])
def test_nesting_past_the_depth_bound_still_reports_and_cleans(how: str, depth: int) -> None:
    """Past NESTED_DEPTH the document is read by the markup scan, and every absolute URL through
    the further levels of escaping counts: nothing hides behind the bound."""
    html = _chain(depth, f'<img src="{T}" width="1" height="1">', how) + "<p>kept</p>"
    assert T in _loads(html)
    out = rewrite_html(html, Removing(T))
    assert out is not None and T not in _loads(out) and "<p>kept</p>" in out


def test_what_a_nested_document_keeps_reads_back_unchanged() -> None:
    keep = "https://cdn.example/hero.png"
    html = f'<iframe src="data:text/html;base64,{_b64(f"<img src={keep}><img src={T}>")}"></iframe>'
    out = rewrite_html(html, Removing(T))
    assert out is not None
    assert set(_loads(out)) == {keep}
    assert "data:text/html;base64," in out  # encoded as it was


def test_a_nested_svg_stays_xml() -> None:
    svg = _svg(f"<image href='{T}'/><rect width='9' height='9'/>")
    html = f'<object data="data:image/svg+xml,{quote(svg)}"></object>'
    out = rewrite_html(html, Removing(T))
    assert out is not None
    data = re.search(r'data="data:image/svg\+xml,([^"]*)"', out)
    assert data is not None
    text = html_escape.unescape(unquote(data.group(1)))
    assert text.startswith("<svg ") and "<rect width='9' height='9'/>" in text
    assert "href=''" in text and "<html" not in text


@pytest.mark.parametrize(
    "html",
    [
        # deep srcdoc nesting: each level doubles the escaping
        _chain(60, f"<img src={T}>", "srcdoc")[:400_000],
        # a huge data: document: 20,000 pixels
        '<iframe src="data:text/html,' + quote(f"<img src={T}>") * 20_000 + '"></iframe>',
        # many iframes: the budget of nested characters runs out
        f"<iframe srcdoc='<img src={T}>'></iframe>" * 20_000,
        # unterminated
        '<iframe srcdoc="' + "&lt;iframe srcdoc=&quot;" * 20_000 + f'<img src="{T}">',
        "data:data:" * 50_000 + "<iframe src='data:text/html;base64," + "=%" * 50_000,
    ],
    ids=["deep-srcdoc", "huge-data", "many-iframes", "unterminated", "junk-data"],
)
def test_hostile_nesting_is_bounded(html: str) -> None:
    """No hang, no blow-up (a bound, not a measurement: seconds per document at most)."""
    start = time.monotonic()
    scan_html(html)
    rewrite_html_or_refused(html)
    assert time.monotonic() - start < 30


def rewrite_html_or_refused(html: str) -> None:
    with contextlib.suppress(RewriteUnsafe):
        rewrite_html(html, Removing(T))


# ---- cid: parts --------------------------------------------------------------------------------

CSS_PART = (
    f"@import url({T});\np {{ color: red }}\n.h {{ background: url(https://cdn.example/ok.png) }}\n"
)
OPEN = "https://u1.ct.sendgrid.net/wf/open?upn=abc"  # a rule's open pixel
SVG_PART = _svg(f"<image href='{OPEN}' width='1' height='1'/><rect width='9' height='9'/>")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()


def _related_message() -> bytes:
    return textwrap.dedent(
        f"""\
        From: Shop <news@shop.example.com>
        To: reader@example.org
        Subject: cid vectors
        MIME-Version: 1.0
        Content-Type: multipart/related; boundary="rel"

        --rel
        Content-Type: text/html; charset=utf-8

        <html><head><link rel="stylesheet" href="cid:style@shop"></head>
        <body><p>Hello</p><object data="cid:pic@shop" type="image/svg+xml"></object>
        <img src="cid:logo@shop" alt="logo"></body></html>
        --rel
        Content-Type: text/css; charset=utf-8
        Content-ID: <style@shop>

        {textwrap.indent(CSS_PART, "        ").strip()}
        --rel
        Content-Type: image/svg+xml
        Content-ID: <pic@shop>
        Content-Transfer-Encoding: base64

        {_b64(SVG_PART)}
        --rel
        Content-Type: image/png
        Content-ID: <logo@shop>
        Content-Transfer-Encoding: base64

        {PNG}
        --rel--
        """
    ).encode()


def test_cid_stylesheet_and_svg_are_reported() -> None:
    parsed, envelope = parse_message(_related_message())
    assert {cid for cid, _m, _t in parsed.related} == {"style@shop", "pic@shop"}
    findings = detect(parsed, RULES, sender=envelope.from_addr)
    by_url = {f.url: f for f in findings}
    assert by_url[T].element == "link[href] cid: > url()"
    assert by_url[OPEN].element == "object[data] cid: > image[href]"
    assert by_url[OPEN].kind is Kind.PIXEL


def test_cid_parts_are_cleaned_and_every_other_part_stays_byte_identical() -> None:
    raw = _related_message()
    result = clean_message(raw, RULES, Policy("strict"))
    assert result.changed, result.skipped if hasattr(result, "skipped") else result
    before = {p.content_type: raw[p.body_start : p.end] for p in split(raw).walk()}
    after = {p.content_type: result.data[p.body_start : p.end] for p in split(result.data).walk()}
    assert after["image/png"] == before["image/png"]
    parsed, envelope = parse_message(result.data)
    related = {cid: text for cid, _m, text in parsed.related}
    assert T not in related["style@shop"] and "p { color: red }" in related["style@shop"]
    assert OPEN not in related["pic@shop"] and "<rect width='9' height='9'/>" in related["pic@shop"]
    left = [f for f in detect(parsed, RULES, sender=envelope.from_addr) if f.url in (T, OPEN)]
    assert left == []


def test_default_policy_cleans_a_cid_svg_pixel_and_keeps_the_stylesheets_content_image() -> None:
    raw = _related_message()
    result = clean_message(raw, RULES)
    parsed, _ = parse_message(result.data)
    related = {cid: text for cid, _m, text in parsed.related}
    assert OPEN not in related["pic@shop"]  # a known open pixel in the SVG document
    assert "https://cdn.example/ok.png" in related["style@shop"] and T in related["style@shop"]


# ---- in a real renderer ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Renderer]:
    yield from browser_for_tests(page_timeout=10.0, concurrency=2)


RENDERED = VECTORS


def test_what_chromium_loads_guard_reports_and_cleaning_stops(browser: Renderer) -> None:
    """One batch of renders (as received, then cleaned) of every vector; whether Chromium loads
    it is checked where the table gives a verdict (None: timing- or build-dependent)."""
    documents = [v.html for v in RENDERED]
    cleaned = [rewrite_html(v.html, Removing(_target(v))) or v.html for v in RENDERED]
    renders = browser.render_many(documents + cleaned)
    problems = []
    for index, vector in enumerate(RENDERED):
        asked = {url_key(r.url) for r in renders[index].network_requests()}
        reported = {url_key(u) for u in _loads(vector.html)}
        if asked - reported:
            problems.append(f"{vector.name}: Chromium loads {sorted(asked - reported)} unreported")
        if vector.chromium is not None and (url_key(T) in asked) != vector.chromium:
            problems.append(f"{vector.name}: Chromium loads it: {url_key(T) in asked}")
        after = {url_key(r.url) for r in renders[len(RENDERED) + index].network_requests()}
        if url_key(T) in after:
            problems.append(f"{vector.name}: still loaded after cleaning")
    assert problems == []


def test_cid_parts_served_from_the_message_load_in_chromium_and_not_after_cleaning(
    browser: Renderer,
) -> None:
    """Chromium knows no cid: scheme; a mail client serves the part. Here each cid: URL becomes
    a data: URL of the part's own content, as the client would serve it."""

    def served(raw: bytes) -> str:
        parsed, _ = parse_message(raw)
        html = parsed.html_parts[0]
        for cid, media, text in parsed.related:
            html = html.replace(f"cid:{cid}", f"data:{media};base64,{_b64(text)}")
        return html

    raw = _related_message()
    cleaned = clean_message(raw, RULES, Policy("strict")).data
    before, after = browser.render_many([served(raw), served(cleaned)])
    asked = {url_key(r.url) for r in before.network_requests()}
    assert {url_key(T), url_key(OPEN)} <= asked  # the stylesheet's import, the SVG's image
    after_asked = {url_key(r.url) for r in after.network_requests()}
    assert not {url_key(T), url_key(OPEN)} & after_asked


def test_a_stylesheet_part_no_html_references_stays_byte_identical() -> None:
    raw = _related_message().replace(b'href="cid:style@shop"', b'href="cid:other@shop"')
    result = clean_message(raw, RULES, Policy("strict"))
    before = {p.content_type: raw[p.body_start : p.end] for p in split(raw).walk()}
    after = {p.content_type: result.data[p.body_start : p.end] for p in split(result.data).walk()}
    assert after["text/css"] == before["text/css"]
    assert after["image/svg+xml"] != before["image/svg+xml"]  # referenced: cleaned
