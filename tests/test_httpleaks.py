"""The load vectors of cure53's HTTPLeaks (github.com/cure53/HTTPLeaks, `leak.html`), a public list of
every HTML, CSS, SVG, VML and MathML construct known to make a browser send a request, used as a
checklist (issue 14 item 3). The cases are written here from the facts the list names (element,
attribute, property); its file is not copied.

For each vector a mail client's renderer could load without running script: guard reports it with
the right element label, and cleaning removes it (the rewrite read back reports it no more);
where headless Chromium renders it (tests/renderer.py), what Chromium asks for is among guard's
loads and is not asked for after cleaning, and whether Chromium loads it at all is checked
(`chromium`: True/False; None where it depends on the build, on timing or on user action).
What the checklist holds that no mail renderer can load (script, a click, Internet Explorer's
data islands and filters …) is listed in `SKIPPED`, with why; docs/detects.md's vector table says
the same.
"""

# ruff: noqa: E501 - the table of vectors keeps one vector on a line

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import quote

import pytest
from renderer import Renderer
from renderer_proof import url_key
from test_vectors import Removing, _loads, browser  # noqa: F401 - `browser` is a fixture

from guard.clean.html import rewrite_html
from guard.clean.message import Policy, clean_message
from guard.engine.detect import detect
from guard.engine.html import scan_html
from guard.engine.mime import parse_message
from guard.engine.rules_load import load_ruleset

RULES = load_ruleset(include_user=False)

T = "https://t.example/leak"
"""The vector's URL (the only one each case loads)."""


class Leak(NamedTuple):
    name: str
    html: str
    element: str  # what the finding's element starts with
    chromium: bool | None  # Chromium loads it (True/False, checked); None: not checked


def _svg(inner: str) -> str:
    return f"<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink'>{inner}</svg>"


def _vml(inner: str) -> str:
    return f'<v:rect xmlns:v="urn:schemas-microsoft-com:vml" style="width:9px;height:9px">{inner}</v:rect>'


LEAKS = [
    # %Base, %Redirects
    Leak("html manifest", f'<html manifest="{T}"><body>x</body></html>', "html[manifest]", False),
    Leak("base href", f'<base href="{T}/"><p>x</p>', "base[href]", False),
    Leak("meta refresh", f'<meta http-equiv="refresh" content="10; url={T}">', "meta[http-equiv=refresh]", None),
    # %MSIE Imports
    Leak("IE import implementation", f'<import namespace="n" implementation="{T}">', "import[implementation]", False),
    # %Conditional Comments
    Leak("conditional comment", f'<!--[if true]><link href="{T}" rel="stylesheet"><![endif]-->', "<!--[if mso]> link[rel=stylesheet]", False),
    Leak("conditional comment style", f"<!--[if mso]><style>p{{background:url({T})}}</style><![endif]--><p>x</p>", "<!--[if mso]> <style> url()", False),
    Leak("conditional comment iframe", f'<!--[if gte mso 9]><iframe src="{T}"></iframe><![endif]-->', "<!--[if mso]> iframe[src]", False),
    # %Links
    Leak("link stylesheet", f'<link rel="stylesheet" href="{T}">', "link[rel=stylesheet]", True),
    Leak("link alternate stylesheet", f'<link rel="alternate stylesheet" href="{T}">', "link[rel=alternate stylesheet]", True),
    Leak("link icon", f'<link rel="icon" href="{T}">', "link[rel=icon]", None),
    Leak("link shortcut icon", f'<link rel="shortcut icon" href="{T}">', "link[rel=icon shortcut]", None),
    Leak("link apple-touch-icon", f'<link rel="apple-touch-icon" href="{T}">', "link[rel=apple-touch-icon]", False),
    Leak("link apple-touch-icon-precomposed", f'<link rel="apple-touch-icon-precomposed" href="{T}">', "link[rel=apple-touch-icon-precomposed]", False),
    Leak("link apple-touch-startup-image", f'<link rel="apple-touch-startup-image" href="{T}">', "link[rel=apple-touch-startup-image]", False),
    Leak("link mask-icon", f'<link rel="mask-icon" href="{T}" color="red">', "link[rel=mask-icon]", False),
    Leak("link manifest", f'<link rel="manifest" href="{T}">', "link[rel=manifest]", False),
    Leak("link import", f'<link rel="import" href="{T}">', "link[rel=import]", False),
    Leak("link dns-prefetch", f'<link rel="dns-prefetch" href="{T}">', "link[rel=dns-prefetch]", None),
    Leak("link preconnect", f'<link rel="preconnect" href="{T}">', "link[rel=preconnect]", None),
    Leak("link prefetch", f'<link rel="prefetch" href="{T}">', "link[rel=prefetch]", None),
    Leak("link prerender", f'<link rel="prerender" href="{T}">', "link[rel=prerender]", None),
    Leak("link subresource", f'<link rel="subresource" href="{T}">', "link[rel=subresource]", False),
    Leak("link next", f'<link rel="next" href="{T}">', "link[rel=next]", False),
    Leak("link P3Pv1", f'<link rel="P3Pv1" href="{T}">', "link[rel=p3pv1]", False),
    Leak("link preload font", f'<link rel="preload" as="font" href="{T}" crossorigin>', "link[rel=preload]", True),
    Leak("link preload image", f'<link rel="preload" as="image" href="{T}">', "link[rel=preload]", True),
    Leak("link preload style", f'<link rel="preload" as="style" href="{T}">', "link[rel=preload]", True),
    Leak("link preload imagesrcset", f'<link rel="preload" as="image" imagesrcset=",,,,,{T}">', "link[imagesrcset]", True),
    Leak("link search", f'<link rel="search" type="application/opensearchdescription+xml" href="{T}" title="s">', "link[rel=search]", False),
    Leak("link alternate atom", f'<link rel="alternate" type="application/atom+xml" href="{T}">', "link[rel=alternate]", False),
    # %Body Background, %Table Background
    Leak("body background", f'<body background="{T}">x', "body[background]", True),
    Leak("table background", f'<table background="{T}"><tr><td>x</td></tr></table>', "table[background]", True),
    Leak("td background", f'<table><tr><td background="{T}">x</td></tr></table>', "td[background]", True),
    # %Images
    Leak("img src", f'<img src="{T}">', "img[src]", True),
    Leak("img dynsrc", f'<img dynsrc="{T}">', "img[dynsrc]", False),
    Leak("img lowsrc", f'<img lowsrc="{T}">', "img[lowsrc]", False),
    Leak("html image src", f'<image src="{T}">', "img[src]", True),
    Leak("svg image href", _svg(f"<image href='{T}' width='9' height='9'/>"), "image[href]", True),
    Leak("svg image xlink:href", _svg(f"<image xlink:href='{T}' width='9' height='9'/>"), "image[xlink:href]", True),
    Leak("picture source srcset", f'<picture><source srcset="{T}"><img></picture>', "source[srcset]", True),
    Leak("picture img srcset", f'<picture><img srcset="{T}"></picture>', "img[srcset]", True),
    Leak("img srcset leading commas", f'<img srcset=",,,,,{T}">', "img[srcset]", True),
    # %Forms (only the image button loads without a click)
    Leak("input type=image", f'<input type="image" src="{T}">', "input[type=image]", True),
    # %Media
    Leak("bgsound", f'<bgsound src="{T}">', "bgsound[src]", False),
    Leak("video src", f'<video src="{T}"></video>', "video[src]", True),
    Leak("video track", f'<video src="data:video/mp4,"><track default kind="subtitles" src="{T}"></video>', "track[src]", None),
    Leak("video source", f'<video controls><source src="{T}" type="video/mp4"></video>', "source[src]", True),
    Leak("audio src", f'<audio src="{T}" preload="auto"></audio>', "audio[src]", True),
    Leak("audio source", f'<audio controls preload="auto"><source src="{T}"></audio>', "source[src]", True),
    Leak("video poster", f'<video poster="{T}"></video>', "video[poster]", True),
    # %Object & Embed
    Leak("object data", f'<object data="{T}"></object>', "object[data]", True),
    Leak("object movie", f'<object movie="{T}" type="application/x-shockwave-flash"></object>', "object[movie]", False),
    Leak("object codebase", f'<object codebase="{T}"></object>', "object[codebase]", False),
    Leak("embed src", f'<embed src="{T}">', "embed[src]", True),
    Leak("embed code", f'<embed code="{T}">', "embed[code]", False),
    Leak("object param DataURL", f'<object classid="clsid:333C7BC4-460F-11D0-BC04-0080C7055A83"><param name="DataURL" value="{T}"></object>', "param[value]", False),
    Leak("object param URL", f'<object classid="clsid:6BF52A52-394A-11d3-B153-00C04F79FAA6"><param name="URL" value="{T}"></object>', "param[value]", False),
    # %Script (scripts do not run in mail; the references are reported and removed all the same)
    Leak("script src", f'<script src="{T}"></script>', "script[src]", False),
    Leak("svg script href", _svg(f"<script href='{T}'></script>"), "script[href]", False),
    Leak("svg script xlink:href", _svg(f"<script xlink:href='{T}'></script>"), "script[xlink:href]", False),
    # %Frames
    Leak("iframe src", f'<iframe src="{T}"></iframe>', "iframe[src]", True),
    Leak("iframe data: svg", f"<iframe src=\"data:image/svg+xml,{quote(_svg(f'<image xlink:href={chr(39)}{T}{chr(39)}/>'))}\"></iframe>", "iframe[src] data: > image[xlink:href]", True),
    Leak("iframe srcdoc", f'<iframe srcdoc="<img src={T}>"></iframe>', "iframe[srcdoc] > img[src]", True),
    Leak("frame src", f'<frameset><frame src="{T}"></frameset>', "frame[src]", True),
    Leak("iframe view-source:", f'<iframe src="view-source:{T}"></iframe>', "iframe[src]", False),
    # %Menu
    Leak("menuitem icon", f'<menu type="context" id="m"><menuitem label="a" icon="{T}"></menuitem></menu>', "menuitem[icon]", False),
    # %CSS
    Leak("@import string", f"<style>@import '{T}';</style>", "<style> url()", True),
    Leak("@import string, no space", f'<style>@import"{T}";</style>', "<style> url()", True),
    Leak("url() unterminated at the end of a style element", f"<style>p{{background:url({T}</style><p>x</p>", "<style> url()", True),
    Leak("url() unterminated at the end of a style attribute", f'<p style="background:url({T}">x</p>', "p[style] url()", True),
    Leak("@import url", f"<style>@import url({T});</style>", "<style> url()", True),
    Leak("::after content", f"<style>a::after{{content:url({T})}}</style><a href='#'>x</a>", "<style> url()", True),
    Leak(":before content", f"<style>a:before{{content:url({T})}}</style><a href='#'>x</a>", "<style> url()", True),
    Leak("list-style", f"<style>big{{display:list-item;list-style:url({T})}}</style><big>x</big>", "<style> url()", True),
    Leak("border-image", f"<style>big{{border:5px solid;border-image:url({T}) 1}}</style><big>x</big>", "<style> url()", True),
    Leak("-webkit-border-image", f"<style>big{{border:5px solid;-webkit-border-image:url({T}) 1}}</style><big>x</big>", "<style> url()", True),
    Leak("shape-outside", f"<style>big{{float:left;width:9px;height:9px;shape-outside:url({T})}}</style><big>x</big>", "<style> url()", True),
    Leak("cursor", f"<style>big{{cursor:url({T}),auto}}</style><big>x</big>", "<style> url()", True),
    Leak("@font-face src", f"<style>@font-face{{font-family:leak;src:url({T})}}big{{font-family:leak}}</style><big>x</big>", "<style> url()", True),
    Leak("@font-face src list", f"<style>@font-face{{font-family:leak;src:url('{T}') format('woff'),url('{T}.ttf') format('truetype')}}big{{font-family:leak}}</style><big>x</big>", "<style> url()", True),
    Leak("svg style fill", _svg(f"<style>circle{{fill:url({T}#f)}}</style><circle r='40'/>"), "<style> url()", True),
    Leak("svg style mask", _svg(f"<style>circle{{mask:url({T}#f)}}</style><circle r='40'/>"), "<style> url()", True),
    Leak("svg style filter", _svg(f"<style>circle{{filter:url({T}#f)}}</style><circle r='40'/>"), "<style> url()", True),
    Leak("svg style clip-path", _svg(f"<style>circle{{clip-path:url({T}#f)}}</style><circle r='40'/>"), "<style> url()", True),
    Leak("css variable", f"<style>s{{--leak:url({T})}}s{{background:var(--leak)}}</style><s>x</s>", "<style> url()", True),
    Leak("attr() fallback", f"<style>s::before{{content:attr(notpresent, url({T}))}}</style><s>x</s>", "<style> url()", False),
    Leak("escaped url (short)", f"<style>p{{background-image:\\75 \\72 \\6C ({T})}}</style><p>x</p>", "<style> url()", True),
    Leak("escaped url (six digits)", f"<style>p{{background-image:\\000075\\000072\\00006C({T})}}</style><p>x</p>", "<style> url()", True),
    # %Inline CSS (entities in the attribute are decoded by the parser)
    Leak("inline list-style-image &#40;", f'<ul style="list-style-image: url&#40;{T}&#41;"><li>x</li></ul>', "ul[style] url()", True),
    Leak("inline background &#x28;", f'<b style="display:block;background: url&#x28;{T}&#x29;">x</b>', "b[style] url()", True),
    Leak("inline background-image &lpar;", f'<b style="display:block;background-image: url&lpar;{T}&rpar;">x</b>', "b[style] url()", True),
    Leak("inline border-image-source", f'<b style="display:block;border:5px solid;border-image-source:url({T});border-image-slice:1">x</b>', "b[style] url()", True),
    Leak("inline -moz-border-image", f'<b style="display:block;border:5px solid;-moz-border-image:url({T}) 1">x</b>', "b[style] url()", False),
    Leak("inline cursor", f'<b style="cursor:url({T}),auto">x</b>', "b[style] url()", True),
    Leak("svg inline fill", _svg(f"<circle r='40' style='fill:url({T}#f)'/>"), "circle[style] url()", True),
    Leak("svg inline -webkit-mask", _svg(f"<circle r='40' style='-webkit-mask:url({T}#f)'/>"), "circle[style] url()", True),
    # %Exotic Inline CSS
    # Layers without commas between them: the declaration is invalid, Chromium loads nothing.
    Leak("multiple backgrounds, empty url()s", f'<div style="width:9px;height:9px;background: url() url() url() url() url({T});"></div>', "div[style] url()", False),
    Leak("behavior", f"<div style=\"behavior: url('{T}');\"></div>", "div[style] url()", False),
    Leak("-ms-behavior", f"<div style=\"-ms-behavior: url('{T}');\"></div>", "div[style] url()", False),
    # %Applet
    Leak("applet codebase+code", '<applet code="leak" codebase="https://t.example/"></applet>', "applet[code]", False),
    Leak("applet archive", f'<applet code="Test" archive="{T}"></applet>', "applet[archive]", False),
    Leak("applet object", f'<applet code="Test" object="{T}"></applet>', "applet[object]", False),
    # %SVG
    Leak("svg fill attribute", _svg(f"<rect width='9' height='9' fill='url({T})'/>"), "rect[fill]", True),
    Leak("svg mask attribute", _svg(f"<rect width='9' height='9' mask='url({T})'/>"), "rect[mask]", True),
    Leak("svg cursor attribute", _svg(f"<rect width='9' height='9' cursor='url({T}),auto'/>"), "rect[cursor]", True),
    Leak("svg set xlink:href", _svg(f"<image width='9' height='9'><set attributeName='xlink:href' begin='0s' to='{T}'/></image>"), "set[to]", True),
    Leak("svg animate xlink:href", _svg(f"<image width='9' height='9'><animate attributeName='xlink:href' begin='0s' from='#' to='{T}'/></image>"), "animate[to]", None),
    Leak("svg feImage", _svg(f"<filter id='f'><feImage xlink:href='{T}'/></filter><rect width='9' height='9' filter='url(#f)'/>"), "feimage[xlink:href]", True),
    Leak("svg font-face-uri", _svg(f"<font-face-uri xlink:href='{T}'/>"), "font-face-uri[xlink:href]", False),
    # %Data Islands (Internet Explorer)
    Leak("xml src", f'<xml src="{T}" id="x"></xml>', "xml[src]", False),
    # %VML (Outlook's Word renderer draws VML)
    Leak("vml fill src", _vml(f'<v:fill type="frame" src="{T}"/>'), "v:fill[src]", False),
    Leak("vml stroke src", _vml(f'<v:stroke src="{T}"/>'), "v:stroke[src]", False),
    Leak("vml imagedata src", _vml(f'<v:imagedata src="{T}"/>'), "v:imagedata[src]", False),
    Leak("vml imagedata o:href", _vml(f'<v:imagedata o:href="{T}"/>'), "v:imagedata[o:href]", False),
    Leak("vml unprefixed fill src", f'<line xmlns="urn:schemas-microsoft-com:vml"><fill src="{T}"/></line>', "fill[src]", False),
    Leak("vmlframe src", f'<vmlframe xmlns="urn:schemas-microsoft-com:vml" src="{T}#x"></vmlframe>', "vmlframe[src]", False),
    # %Portals
    Leak("portal src", f'<portal src="{T}"></portal>', "portal[src]", False),
]  # fmt: skip
IDS = [v.name for v in LEAKS]

SKIPPED = {
    "<!DOCTYPE html SYSTEM url>, DOCTYPE in <xml>/<script>": "no HTML parser fetches a DTD",
    "meta copyright/displaydate/og:site_name (Reading View)": "a browser's reader mode, not a renderer",
    "meta al:web:url, msapplication-*": "read by apps and by pinning a site (user action)",
    "link canonical, amphtml, author, next-like navigation rels …": "metadata: nothing is fetched",
    "a[ping], area[ping]": "sent only on a click",
    "img longdesc, form action, button/isindex formaction, svg a, MathML xlink:href": "a click or a context menu",
    "isindex src type=image": "Internet Explorer before HTML5 parsing; now an unknown element",
    "javascript: iframes, sourceMappingURL, chrome-webstore-item": "need script or developer tools",
    "<?xml-stylesheet?> in HTML": "a comment to the HTML parser (in a nested SVG it is read: guard/engine/nested.py)",
    "meta http-equiv=Content-Security-Policy(-Report-Only) report-uri": "CSP ignores report-uri delivered in a <meta>",
    "attr(foo url)": "CSS forbids attr() producing a URL (attr-tainting); the url() fallback is reported",
    "image('…'), filter:progid:…AlphaImageLoader/ICMFilter": "Internet Explorer 5.5–9 filters and an image() no engine implements",
    "xml data island datasrc": "Internet Explorer only; the island's <xml src> is reported",
}


def _target(leak: Leak) -> str:
    """The URL the leak loads, as its HTML writes it (a trailing slash or a #fragment kept)."""
    if "view-source" in leak.name:
        return f"view-source:{T}"
    written = re.search(re.escape(T) + r"(?:/|#\w+)?", leak.html)
    return written.group(0) if written else T


@pytest.mark.parametrize("leak", LEAKS, ids=IDS)
def test_each_leak_is_reported(leak: Leak) -> None:
    loads = _loads(leak.html)
    assert _target(leak) in loads, loads
    assert loads[_target(leak)].startswith(leak.element), loads


@pytest.mark.parametrize("leak", LEAKS, ids=IDS)
def test_each_leak_is_cleaned(leak: Leak) -> None:
    urls = [u for u in _loads(leak.html) if u.startswith((T, "view-source:"))]
    out = rewrite_html(leak.html, Removing(*urls))
    assert out is not None
    assert not [u for u in _loads(out) if T in u], out


def test_a_fragment_reference_in_svg_loads_nothing_and_stays() -> None:
    """`url(#id)` names a gradient, mask or filter of the same document, also under a `<base>`."""
    html = '<base href="https://base.example/">' + _svg(
        "<rect width='9' height='9' fill='url(#g)' style='mask:url(#m)'/>"
        "<animate attributeName='href' to='#other'/>"
    )
    assert [o.element for o in scan_html(html) if o.load] == ["base[href]"]


def test_an_svg_attribute_without_url_is_not_read_as_one() -> None:
    assert (
        _loads(_svg("<rect width='9' height='9' fill='red' stroke='#000' cursor='pointer'/>")) == {}
    )


def test_chromium_loads_and_cleaning_stops(browser: Renderer) -> None:  # noqa: F811
    """One batch of renders (as received, then cleaned): every request Chromium makes is among
    guard's loads, none of the vector's is made after cleaning, and where the table gives a
    verdict, whether Chromium loads the vector at all is checked."""
    documents = [leak.html for leak in LEAKS]
    cleaned = []
    for leak in LEAKS:
        urls = [u for u in _loads(leak.html) if T in u]
        cleaned.append(rewrite_html(leak.html, Removing(*urls)) or leak.html)
    renders = browser.render_many(documents + cleaned)
    problems = []
    for index, leak in enumerate(LEAKS):
        asked = {url_key(r.url) for r in renders[index].network_requests()}
        reported = {url_key(u) for u in _loads(leak.html)}
        if asked - reported:
            problems.append(f"{leak.name}: Chromium loads {sorted(asked - reported)} unreported")
        loaded = any(u.startswith(url_key(T)) for u in asked)
        if leak.chromium is not None and loaded != leak.chromium:
            problems.append(f"{leak.name}: Chromium loads it: {loaded}")
        after = {url_key(r.url) for r in renders[len(LEAKS) + index].network_requests()}
        if any(u.startswith(url_key(T)) for u in after):
            problems.append(f"{leak.name}: still loaded after cleaning")
    assert problems == []


def _message(html: str) -> bytes:
    return (
        "From: Shop <news@shop.example.com>\r\nTo: reader@example.org\r\nSubject: leak\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html + "\r\n"
    ).encode()


@pytest.mark.parametrize("leak", LEAKS, ids=IDS)
def test_strict_cleaning_of_a_message_removes_each_leak(leak: Leak) -> None:
    """A finding in the whole message, and `guard strip --policy strict`'s cleaning: the message
    guard reads back reports no load of the vector's URL."""
    raw = _message(leak.html)
    parsed, envelope = parse_message(raw)
    assert [f for f in detect(parsed, RULES, sender=envelope.from_addr) if T in f.url]
    result = clean_message(raw, RULES, Policy("strict"))
    assert result.changed
    parsed, envelope = parse_message(result.data)
    left = [f.url for f in detect(parsed, RULES, sender=envelope.from_addr) if T in f.url]
    assert left == []


OPEN = "https://u1.ct.sendgrid.net/wf/open?upn=abc"  # a rule's open pixel


WITH_T = [leak for leak in LEAKS if T in leak.html]


@pytest.mark.parametrize("leak", WITH_T, ids=[leak.name for leak in WITH_T])
def test_default_cleaning_removes_each_leak_of_a_known_open_pixel(leak: Leak) -> None:
    """The default policy removes what a rule names as tracking, through every vector."""
    raw = _message(leak.html.replace(T, OPEN))
    parsed, envelope = parse_message(raw)
    assert [f for f in detect(parsed, RULES, sender=envelope.from_addr) if "sendgrid" in f.url]
    result = clean_message(raw, RULES)
    parsed, envelope = parse_message(result.data)
    left = [f.url for f in detect(parsed, RULES, sender=envelope.from_addr) if "sendgrid" in f.url]
    assert left == []


def test_a_nested_svg_loses_its_animated_and_painted_loads_and_keeps_the_rest() -> None:
    svg = _svg(
        f"<image width='9' height='9'><set attributeName='href' to='{T}'/></image>"
        f"<rect fill='url({T})' width='9' height='9'/>"
        f"<animate attributeName='href' values='#a;{T}'/><rect fill='url(#g)' width='9' height='9'/>"
    )
    html = f'<object data="data:image/svg+xml,{quote(svg)}"></object>'
    assert [e for u, e in _loads(html).items() if u == T] == ["object[data] data: > set[to]"]
    out = rewrite_html(html, Removing(T))
    assert out is not None and "data:image/svg+xml," in out  # the document stays
    assert not [u for u in _loads(out) if T in u]
    assert "url(%23g)" in out  # the local reference stays, written as the data: URL writes it
