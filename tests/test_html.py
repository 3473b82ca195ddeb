"""What a mail client loads or links to when it displays HTML; which images look like pixels."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine.css import css_urls, declarations, hides, pixels
from guard.engine.html import Occurrence, Parsed, kept, scan_html
from guard.engine.loads import element_refs, srcset_urls
from guard.engine.parse_bounds import parse_is_bounded, runs_at_most
from guard.engine.timelimit import time_limit


def loads(html: str) -> list[tuple[str, str]]:
    return [(o.url, o.element) for o in scan_html(html) if o.load]


def urls(html: str) -> list[str]:
    return [o.url for o in scan_html(html)]


def only(html: str) -> Occurrence:
    found = scan_html(html)
    assert len(found) == 1, found
    return found[0]


# ---- images ------------------------------------------------------------------------------------


def test_img_src_lowsrc_and_srcset() -> None:
    html = (
        '<img src="https://a.example/a.jpg" lowsrc="https://a.example/low.jpg" '
        'srcset="https://a.example/s.jpg 480w, https://a.example/m.jpg 800w">'
    )
    found = scan_html(html)
    assert [(o.url, o.element) for o in found] == [
        ("https://a.example/a.jpg", "img[src]"),
        ("https://a.example/low.jpg", "img[lowsrc]"),
        ("https://a.example/s.jpg", "img[srcset]"),
        ("https://a.example/m.jpg", "img[srcset]"),
    ]
    assert all(o.load and o.image for o in found)


def test_picture_source_srcset_keeps_commas_inside_urls() -> None:
    html = (
        '<picture><source srcset="https://img.example/c_fill,w_600/a.jpg 1x, '
        'https://img.example/c_fill,w_1200/a.jpg 2x"><img src="https://img.example/a.jpg"></picture>'
    )
    assert loads(html) == [
        ("https://img.example/c_fill,w_600/a.jpg", "source[srcset]"),
        ("https://img.example/c_fill,w_1200/a.jpg", "source[srcset]"),
        ("https://img.example/a.jpg", "img[src]"),
    ]


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.jpg", ["a.jpg"]),
        ("a.jpg 1x,b.jpg 2x", ["a.jpg", "b.jpg"]),
        ("a.jpg,b.jpg", ["a.jpg,b.jpg"]),  # no whitespace: one URL with a comma in it
        ("a.jpg, b.jpg", ["a.jpg", "b.jpg"]),  # a trailing comma ends a URL
        ("  a.jpg  100w ,  b.jpg  200w  ", ["a.jpg", "b.jpg"]),
        ("a.jpg (x, y) 1x, b.jpg", ["a.jpg", "b.jpg"]),  # commas inside parentheses
        ("", []),
        (" , , ", []),
    ],
)
def test_srcset_splitting(srcset: str, expected: list[str]) -> None:
    assert srcset_urls(srcset) == expected


def test_background_attribute_and_style_url() -> None:
    html = (
        '<body background="https://bg.example/body.png"><table><tr>'
        '<td background="https://bg.example/td.png" '
        "style=\"background-image:url('https://bg.example/style.png')\">x</td></tr></table></body>"
    )
    found = scan_html(html)
    assert [(o.url, o.element, o.image) for o in found] == [
        ("https://bg.example/body.png", "body[background]", True),
        ("https://bg.example/td.png", "td[background]", True),
        ("https://bg.example/style.png", "td[style] url()", True),
    ]


# ---- CSS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("css", "expected"),
    [
        ('@import "https://c.example/a.css";', ["https://c.example/a.css"]),
        ("@import 'https://c.example/b.css' screen;", ["https://c.example/b.css"]),
        ("@import url(https://c.example/c.css);", ["https://c.example/c.css"]),
        ('@import url( "https://c.example/d.css" );', ["https://c.example/d.css"]),
        (
            "@font-face{font-family:x;src:url('https://c.example/f.woff2') format('woff2')}",
            ["https://c.example/f.woff2"],
        ),
        (
            '.a{background-image:image-set("https://c.example/1.png" 1x, '
            '"https://c.example/2.png" 2x)}',
            ["https://c.example/1.png", "https://c.example/2.png"],
        ),
        (
            ".a{background-image:-webkit-image-set(url(https://c.example/w.png) 1x)}",
            ["https://c.example/w.png"],
        ),
        (
            ".a{border-image:url(https://c.example/border.png) 30 round}",
            ["https://c.example/border.png"],
        ),
        ('.a{list-style-image:url("https://c.example/li.png")}', ["https://c.example/li.png"]),
        (".a{cursor:url(https://c.example/c.cur), auto}", ["https://c.example/c.cur"]),
        (".a{-webkit-mask-image:url(https://c.example/m.svg)}", ["https://c.example/m.svg"]),
        (".a{mask:URL(https://c.example/upper.svg)}", ["https://c.example/upper.svg"]),
        # comments are ignored, even when they hold url()
        ("/* .a{background:url(https://c.example/no.png)} */ .b{color:red}", []),
        (
            ".a{/* url(https://c.example/no.png) */background:url(https://c.example/yes.png)}",
            ["https://c.example/yes.png"],
        ),
        # escapes inside URLs, in quoted strings and unquoted
        (
            r".a{background:url('https\3a \2f \2f esc.example/a.png')}",
            ["https://esc.example/a.png"],
        ),
        (r".a{background:url(https\3a //esc.example/e\2f x.png)}", ["https://esc.example/e/x.png"]),
        (r".a{background:url(https\:\/\/esc.example\/b.png)}", ["https://esc.example/b.png"]),
        (
            r""".a{background:url("https://esc.example/q\"uote.png")}""",
            ['https://esc.example/q"uote.png'],
        ),
        # escapes in the function name and the at-keyword: a renderer reads them as url( / @import
        (r".a{background:\75 rl(https://esc.example/fn.png)}", ["https://esc.example/fn.png"]),
        (r".a{background:\55RL(https://esc.example/fn2.png)}", ["https://esc.example/fn2.png"]),
        (r"@\69mport 'https://esc.example/imp.css';", ["https://esc.example/imp.css"]),
        # an escaped backslash is not an escape of what follows
        (r".a{content:'\\75rl(x)'}", []),
        ("", []),
        (".a{color:red}", []),
        (".a{background:url()}", []),
    ],
)
def test_css_urls(css: str, expected: list[str]) -> None:
    assert sorted(css_urls(css)) == sorted(expected)


def test_style_element_vectors_are_found_in_a_document() -> None:
    html = (
        "<html><head><style>"
        '@import "https://s.example/imp1.css"; @import url(https://s.example/imp2.css);'
        "@font-face{src:url(https://s.example/font.woff)}"
        "/* url(https://s.example/commented.png) */"
        ".x{border-image:url(https://s.example/border.png) 10}"
        "</style></head><body><p>x</p></body></html>"
    )
    found = loads(html)
    assert sorted(u for u, _ in found) == [
        "https://s.example/border.png",
        "https://s.example/font.woff",
        "https://s.example/imp1.css",
        "https://s.example/imp2.css",
    ]
    assert {e for _, e in found} == {"<style> url()"}


def test_css_on_hostile_input_is_linear() -> None:
    junk = ["url(" + "\\a" * 100_000, "url('" + "\\'" * 100_000, "\\75" * 100_000, "/*" * 100_000]
    # A hang guard, not a performance assertion: quadratic scanning of these takes minutes.
    with time_limit(60):
        for text in junk:
            css_urls(text)


def test_declarations_and_pixels() -> None:
    assert declarations("Width: 1PX; height:2px !important;;junk;display : none") == {
        "width": "1px",
        "height": "2px",
        "display": "none",
    }
    assert declarations("display:block;display:none")["display"] == "none"
    assert (
        pixels("1") == 1
        and pixels(" 0 ") == 0
        and pixels("1px") == 1
        and pixels("-9999px") == -9999
    )
    assert pixels("50%") is None and pixels("auto") is None and pixels("1em") is None
    assert pixels(None) is None
    assert hides({"display": "block"}) is None
    assert hides({"opacity": "0.5"}) is None
    assert hides({"opacity": "0.0"}) == "opacity:0"
    assert hides({"position": "absolute", "left": "-10px"}) is None
    assert hides({"position": "static", "left": "-9999px"}) is None


# ---- links and other loads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    ["stylesheet", "icon", "shortcut icon", "preload", "prefetch", "dns-prefetch", "preconnect"],
)
def test_link_rels_that_load(rel: str) -> None:
    occ = only(f'<link rel="{rel}" href="https://l.example/x">')
    assert occ.load
    assert occ.url == "https://l.example/x"
    assert occ.element == f"link[rel={' '.join(sorted(rel.split()))}]"


@pytest.mark.parametrize("rel", ["alternate", "canonical", "author", ""])  # alternate: no feed type
def test_link_rels_that_do_not_load(rel: str) -> None:
    assert scan_html(f'<p>x</p><link rel="{rel}" href="https://l.example/x">') == []


@pytest.mark.parametrize(
    ("html", "url", "element", "image"),
    [
        (
            '<iframe src="https://f.example/i"></iframe>',
            "https://f.example/i",
            "iframe[src]",
            False,
        ),
        (
            '<frameset><frame src="https://f.example/f"></frameset>',
            "https://f.example/f",
            "frame[src]",
            False,
        ),
        (
            '<object data="https://o.example/o.swf"></object>',
            "https://o.example/o.swf",
            "object[data]",
            False,
        ),
        ('<embed src="https://e.example/e.swf">', "https://e.example/e.swf", "embed[src]", False),
        (
            '<audio src="https://m.example/a.mp3"></audio>',
            "https://m.example/a.mp3",
            "audio[src]",
            False,
        ),
        (
            '<video><track src="https://m.example/t.vtt"></video>',
            "https://m.example/t.vtt",
            "track[src]",
            False,
        ),
        (
            '<svg><image href="https://svg.example/a.png"/></svg>',
            "https://svg.example/a.png",
            "image[href]",
            True,
        ),
        (
            '<svg xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="https://svg.example/b.png"/></svg>',
            "https://svg.example/b.png",
            "image[xlink:href]",
            True,
        ),
        (
            '<svg><use href="https://svg.example/s.svg#i"/></svg>',
            "https://svg.example/s.svg#i",
            "use[href]",
            False,
        ),
        (
            '<svg><use xlink:href="https://svg.example/t.svg#i"/></svg>',
            "https://svg.example/t.svg#i",
            "use[xlink:href]",
            False,
        ),
        (
            '<meta http-equiv="Refresh" content="0; URL=\'https://r.example/go\'">',
            "https://r.example/go",
            "meta[http-equiv=refresh]",
            False,
        ),
        (
            '<input type="image" src="https://i.example/btn.png">',
            "https://i.example/btn.png",
            "input[type=image]",
            True,
        ),
    ],
)
def test_single_load_vectors(html: str, url: str, element: str, image: bool) -> None:
    found = [o for o in scan_html(html) if o.url == url]
    assert len(found) == 1, scan_html(html)
    assert found[0].element == element
    assert found[0].load is True
    assert found[0].image is image


def test_video_src_and_poster() -> None:
    found = scan_html(
        '<video src="https://m.example/v.mp4" poster="https://m.example/p.jpg"></video>'
    )
    assert [(o.url, o.element, o.image) for o in found] == [
        ("https://m.example/v.mp4", "video[src]", False),
        ("https://m.example/p.jpg", "video[poster]", True),
    ]


def test_applet_code_and_archive_resolve_against_codebase() -> None:
    html = (
        '<applet code="A.class" archive="a.jar, b.jar" codebase="https://j.example/cls/"></applet>'
    )
    found = loads(html)
    assert found[:3] == [
        ("https://j.example/cls/A.class", "applet[code]"),
        ("https://j.example/cls/a.jar", "applet[archive]"),
        ("https://j.example/cls/b.jar", "applet[archive]"),
    ]
    # the codebase itself may or may not be reported; nothing unresolved is
    assert all(u.startswith("https://j.example/cls/") for u, _ in found)


def test_input_other_types_do_not_load() -> None:
    assert scan_html('<input type="text" src="https://i.example/t.png">') == []
    assert scan_html('<input src="https://i.example/t.png">') == []


def test_meta_other_than_refresh_does_not_load() -> None:
    assert scan_html('<meta name="x" content="0; url=https://r.example/">') == []


def test_anchor_and_area_are_links_not_loads() -> None:
    found = scan_html(
        '<a href="https://a.example/1">x</a><map><area href="https://a.example/2"></map>'
    )
    assert [(o.url, o.element, o.load) for o in found] == [
        ("https://a.example/1", "a[href]", False),
        ("https://a.example/2", "area[href]", False),
    ]


def test_base_href_resolves_relative_urls() -> None:
    html = (
        '<html><head><base href="https://base.example/dir/"></head><body>'
        '<img src="img/a.png"><a href="/top?x=1">t</a><img src="https://abs.example/b.png">'
        '<img src="cid:part1"></body></html>'
    )
    found = {o.element + " " + o.url for o in scan_html(html)}
    assert "img[src] https://base.example/dir/img/a.png" in found
    assert "a[href] https://base.example/top?x=1" in found
    assert "img[src] https://abs.example/b.png" in found
    assert "img[src] cid:part1" in found


def test_relative_url_without_base_stays_relative() -> None:
    occ = only('<img src="images/a.png">')
    assert occ.url == "images/a.png"
    assert not occ.url.startswith("http")


def test_non_http_base_is_ignored() -> None:
    occ = [
        o
        for o in scan_html('<base href="javascript:x"><img src="images/a.png">')
        if o.element == "img[src]"
    ]
    assert [o.url for o in occ] == ["images/a.png"]


def test_outlook_conditional_comments() -> None:
    html = (
        "<body><!--[if gte mso 9]>"
        '<v:rect xmlns:v="urn:schemas-microsoft-com:vml" fill="true" style="width:600px;">'
        '<v:fill type="tile" src="https://vml.example/bg.png" color="#fff"/>'
        '</v:rect><v:roundrect href="https://vml.example/go" arcsize="10%">'
        "<center>Go</center></v:roundrect><![endif]-->"
        '<!-- an ordinary comment <img src="https://no.example/x.png"> -->'
        "</body>"
    )
    found = scan_html(html)
    assert [(o.url, o.element, o.load) for o in found] == [
        ("https://vml.example/bg.png", "<!--[if mso]> v:fill[src]", True),
        ("https://vml.example/go", "<!--[if mso]> v:roundrect[href]", False),
    ]


def test_element_refs_works_on_any_getter() -> None:
    attrs = {"src": "https://x.example/a.png", "style": "background:url(https://x.example/b.png)"}
    refs = list(element_refs("img", attrs.get))
    assert [(r.url, r.element, r.load, r.image) for r in refs] == [
        ("https://x.example/a.png", "img[src]", True, True),
        ("https://x.example/b.png", "img[style] url()", True, True),
    ]
    assert list(element_refs("div", {}.get)) == []
    assert [r.element for r in element_refs("a", {"href": "https://x.example/"}.get)] == ["a[href]"]


def test_junk_documents() -> None:
    assert scan_html("") == []
    assert scan_html("   \n ") == []
    assert scan_html("\x00\x00<img src='https://x.example/\x00a.png'>")[0].url.startswith(
        "https://x.example/"
    )
    # End of file inside a tag: the HTML5 tokenizer drops the unfinished tag (eof-in-tag), so a
    # browser loads nothing.
    assert urls("<img src='https://x.example/a.png'") == []
    assert urls("<img src='https://x.example/a.png'>") == ["https://x.example/a.png"]
    deep = "<div>" * 1500 + '<img src="https://x.example/deep.png">' + "</div>" * 1500
    assert "https://x.example/deep.png" in urls(deep)


def test_very_deep_nesting_does_not_hide_what_follows() -> None:
    deep = "<div>" * 2100 + '<img src="https://x.example/deep.png">' + "</div>" * 2100
    found = urls(
        '<img src="https://x.example/before.png">'
        + deep
        + '<img src="https://x.example/after.png">'
    )
    assert "https://x.example/before.png" in found
    assert "https://x.example/deep.png" in found
    assert "https://x.example/after.png" in found


# ---- pixel shapes ------------------------------------------------------------------------------

IMG = 'src="https://p.example/o.gif"'


@pytest.mark.parametrize(
    ("html", "shape"),
    [
        (f'<img {IMG} width="1" height="1">', "tiny"),
        (f'<img {IMG} width="0" height="0">', "tiny"),
        (f'<img {IMG} width="1px" height="1px">', "tiny"),
        (f'<img {IMG} height="1">', "tiny"),
        (f'<img {IMG} style="width:1px;height:1px">', "tiny"),
        (f'<img {IMG} style="width:1px !important;height:1px">', "tiny"),
        (f'<img {IMG} width="600" height="300" style="width:1px;height:1px">', "tiny"),
        (f'<img {IMG} style="display:none">', "display:none"),
        (f'<img {IMG} style="DISPLAY: NONE !important">', "display:none"),
        (f'<img {IMG} style="visibility:hidden">', "visibility:hidden"),
        (f'<img {IMG} style="opacity:0">', "opacity:0"),
        (f'<img {IMG} style="max-height:0">', "max-height:0"),
        (f'<img {IMG} style="max-height:0px;overflow:hidden">', "max-height:0"),
        (f'<img {IMG} style="position:absolute;left:-9999px">', "off-screen"),
        (f'<img {IMG} style="position:fixed;top:-500px">', "off-screen"),
        (f"<img {IMG} hidden>", "hidden"),
    ],
)
def test_pixel_shapes(html: str, shape: str) -> None:
    occ = only(html)
    assert occ.url == "https://p.example/o.gif"
    assert occ.shape == shape


@pytest.mark.parametrize(
    "html",
    [
        f'<div style="display:none"><span><img {IMG}></span></div>',
        f"<div hidden><p><img {IMG}></p></div>",
        f'<table style="opacity:0"><tr><td><img {IMG}></td></tr></table>',
        f'<div style="visibility:hidden"><img {IMG}></div>',
        # visibility and opacity have no responsive use: sized or not, hidden means pixel
        f'<div style="visibility:hidden"><img {IMG} width="600" height="300"></div>',
    ],
)
def test_image_inside_a_hidden_ancestor_is_pixel_shaped(html: str) -> None:
    occ = only(html)
    assert occ.shape is not None and occ.shape.startswith("inside")


def test_hidden_ancestor_is_scoped_to_its_subtree() -> None:
    html = f'<div style="display:none"><p>x</p></div><div><img {IMG}></div>'
    assert only(html).shape is None


@pytest.mark.parametrize(
    "html",
    [
        f'<img {IMG} width="600" height="1">',  # a horizontal rule image
        f'<img {IMG} width="1" height="600">',  # a vertical rule image
        f'<img {IMG} width="600" height="300">',
        f"<img {IMG}>",
        f'<img {IMG} style="width:100%;height:auto">',
        # a hidden image with real dimensions: the responsive swap (shown by a media query)
        f'<img {IMG} width="600" height="300" style="display:none">',
        f'<img {IMG} width="600" height="300" style="max-height:0;overflow:hidden">',
        f'<img {IMG} style="position:absolute;left:-10px">',
        f'<div style="position:absolute;left:-9999px"><img {IMG}></div>',  # only strong hides count
        # the same swap one level up: a mobile-only block around a sized content image
        f'<div style="display:none;max-height:0;overflow:hidden">'
        f'<img {IMG} width="600" height="300"></div>',
    ],
)
def test_not_pixels(html: str) -> None:
    assert only(html).shape is None


# ---- every element that loads an image is a pixel candidate -------------------------------------

T = "https://t.example/o.gif"
HIDDEN = [
    ('style="display:none"', "display:none"),
    ('style="visibility:hidden"', "visibility:hidden"),
    ('style="opacity:0"', "opacity:0"),
    ("hidden", "hidden"),
    ('style="mso-hide:all"', "mso-hide:all"),
    ('style="max-height:0;overflow:hidden"', "max-height:0"),
    ('style="max-width:0px;overflow:hidden"', "max-width:0"),
    ('style="width:0;height:0;overflow:hidden"', "zero-size"),
    ('style="height:0;overflow:hidden"', "zero-size"),
    ('style="width:1px;height:1px;overflow:hidden"', "zero-size"),
]
# Each vector with a given size: (markup with {size} and {hide}, the element it reports).
VECTORS = [
    ('<img src="{T}" {size} {hide}>', "img[src]"),
    ('<input type="image" src="{T}" {size} {hide}>', "input[type=image]"),
    ('<video poster="{T}" {size} {hide}></video>', "video[poster]"),
    ('<svg><image href="{T}" {size} {hide}/></svg>', "image[href]"),
    ('<table><tr><td background="{T}" {size} {hide}>x</td></tr></table>', "td[background]"),
    ('<table background="{T}" {size} {hide}><tr><td>x</td></tr></table>', "table[background]"),
    ('<div style="background-image:url({T})" {size} {hide}>x</div>', "div[style] url()"),
    ('<div style="background:#fff url({T}) no-repeat" {size} {hide}>x</div>', "div[style] url()"),
]


def _vector(markup: str, size: str = "", hide: str = "") -> str:
    # Style attributes of the size and of the hiding mechanism join the element's own.
    html = markup.format(T=T, size=size, hide=hide)
    styles = re.findall(r' style="([^"]*)"', html)
    if len(styles) > 1:
        html = re.sub(r' style="[^"]*"', "", html)
        html = html.replace(" ", f' style="{";".join(styles)}" ', 1)
    return html


def _shapes(html: str) -> list[tuple[str, str, str | None]]:
    return [(o.url, o.element, o.shape) for o in scan_html(html) if o.url == T]


@pytest.mark.parametrize(("markup", "element"), VECTORS)
@pytest.mark.parametrize(
    "size",
    [
        'width="1" height="1"',
        'width="0" height="0"',
        'width="1" height="3"',  # a 1×3 counts
        'width="3" height="3"',
        'width="600" height="0"',  # 0 either way
        'style="width:1px;height:1px"',
        'style="width:2px !important;height:0.75pt"',
    ],
)
def test_every_image_vector_of_pixel_size_is_a_pixel(markup: str, element: str, size: str) -> None:
    assert _shapes(_vector(markup, size)) == [(T, element, "tiny")]


@pytest.mark.parametrize(("markup", "element"), VECTORS)
@pytest.mark.parametrize(
    "size",
    [
        "",  # unsized: not a pixel by size
        'width="600" height="1"',  # a divider
        'width="1" height="600"',
        'width="4" height="4"',
        'width="100%" height="1"',  # a full-width rule
        'style="width:100%;height:2px"',
        'style="width:auto;height:auto"',
    ],
)
def test_image_vectors_of_real_or_no_size_are_not_pixels(
    markup: str, element: str, size: str
) -> None:
    assert _shapes(_vector(markup, size)) == [(T, element, None)]


@pytest.mark.parametrize(("markup", "element"), VECTORS)
@pytest.mark.parametrize(("hide", "reason"), HIDDEN)
def test_every_unsized_image_vector_hidden_by_itself_is_a_pixel(
    markup: str, element: str, hide: str, reason: str
) -> None:
    if reason == "zero-size":
        reason = "tiny"  # its own zero size makes it tiny before anything else
    assert _shapes(_vector(markup, "", hide)) == [(T, element, reason)]


@pytest.mark.parametrize(("markup", "element"), VECTORS)
@pytest.mark.parametrize(("hide", "reason"), HIDDEN)
def test_every_image_vector_inside_a_hidden_ancestor_is_a_pixel(
    markup: str, element: str, hide: str, reason: str
) -> None:
    html = f"<div {hide}><p>{_vector(markup)}</p></div>"
    assert _shapes(html) == [(T, element, f"inside {reason} element")]


@pytest.mark.parametrize(("markup", "element"), VECTORS)
@pytest.mark.parametrize(
    "hide",
    [h for h, reason in HIDDEN if reason not in ("visibility:hidden", "opacity:0", "zero-size")],
)
def test_a_sized_hidden_variant_is_the_responsive_swap(
    markup: str, element: str, hide: str
) -> None:
    # Sized (any given size but a tiny one) and hidden in a way a media query (or Outlook's
    # conditional) undoes: the other layout's copy, not a beacon, and it stays.
    assert _shapes(_vector(markup, 'width="600" height="300"', hide)) == [(T, element, None)]
    inner = _vector(markup, 'width="120"')
    assert _shapes(f"<div {hide}>{inner}</div>") == [(T, element, None)]


def test_visibility_and_opacity_hide_even_a_sized_image() -> None:
    for hide in ('style="visibility:hidden"', 'style="opacity:0"'):
        html = f'<div {hide}><img src="{T}" width="600" height="300"></div>'
        assert _shapes(html)[0][2] is not None


def test_a_zero_max_height_or_size_without_clipping_hides_nothing_inside() -> None:
    for style in ("max-height:0", "height:0", "width:0;height:0", "max-width:0"):
        html = f'<div style="{style}"><img src="{T}"></div>'
        assert _shapes(html) == [(T, "img[src]", None)]


def test_shape_applies_to_every_image_ref_of_the_img() -> None:
    found = scan_html(f'<img {IMG} srcset="https://p.example/o2.gif 2x" width="1" height="1">')
    assert [(o.url, o.shape) for o in found] == [
        ("https://p.example/o.gif", "tiny"),
        ("https://p.example/o2.gif", "tiny"),
    ]


def test_beacon_behind_deep_nesting_keeps_its_pixel_shape_and_base() -> None:
    deep = "<div>" * 2100 + "</div>" * 2100
    html = (
        '<base href="https://cdn.example/">' + deep + '<img src="o.gif" width="1" height="1">'
        "<style>.x{background:url(https://t.example/bg.gif)}</style>"
    )
    occs = {o.url: o for o in scan_html(html)}
    assert occs["https://cdn.example/o.gif"].shape == "tiny"
    assert "https://t.example/bg.gif" in occs


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(st.sampled_from([">", "a", "<td x=1", " " * 50, "y" * 300]), max_size=60),
    st.integers(min_value=0, max_value=3000),
)
def test_the_longest_run_check_agrees_with_splitting(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    assert runs_at_most(text, limit) == (max(map(len, text.split(">"))) <= limit)


# -- the document as a mail client builds it (HTML5), not as libxml2 did ---------------------------


def test_content_after_the_end_of_the_document_is_read() -> None:
    # Sending software appends pixels after the template's `</html>`; a browser moves them into
    # the body and loads them. libxml2 (guard's parser before Lexbor) dropped them: no finding.
    html = (
        '<html><body><p>hi</p></body></html><img src="http://t.example/o.gif" width="1" height="1">'
    )
    assert [(o.url, o.shape) for o in scan_html(html)] == [("http://t.example/o.gif", "tiny")]


def test_misplaced_table_content_is_foster_parented_out_of_a_hidden_table() -> None:
    # An <img> directly inside <table> is moved before the table by an HTML5 parser: it is not
    # inside the hidden table, so it is shown (libxml2 kept it inside: "inside display:none").
    html = (
        '<table style="display:none"><img src="https://i.example/photo.jpg">'
        "<tr><td>x</td></tr></table>"
    )
    assert [(o.url, o.shape) for o in scan_html(html)] == [("https://i.example/photo.jpg", None)]


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param("<div>" * 5000, id="nesting"),
        pytest.param("".join(f"<p><b id={i}>x" for i in range(3000)), id="open-formatting"),
        pytest.param("<p " + " ".join(f"a{i}=1" for i in range(20000)) + ">", id="attributes"),
    ],
)
def test_markup_that_would_make_the_parse_quadratic_is_read_without_a_tree(bomb: str) -> None:
    html = bomb + '<img src="https://t.example/o.gif" width="1" height="1">'
    assert not parse_is_bounded(html)
    assert [(o.url, o.shape) for o in scan_html(html)] == [("https://t.example/o.gif", "tiny")]


def test_real_newsletter_markup_is_parsed_as_a_tree() -> None:
    rows = "".join(
        f'<tr><td><font face="Arial"><b>Item {i}</b></font><p>text<br></td></tr>'
        for i in range(800)
    )
    html = "<table>" + "<div>" * 40 + rows + "</div>" * 40 + "</table>"
    assert parse_is_bounded(html)


def test_conditional_comments_outside_the_html_element_are_read() -> None:
    html = (
        '<!--[if mso]><v:fill src="https://a.example/before.png"/><![endif]-->'
        "<html><body><p>x</p></body></html>"
        '<!--[if mso]><v:fill src="https://a.example/after.png"/><![endif]-->'
    )
    assert [o.url for o in scan_html(html)] == [
        "https://a.example/before.png",
        "https://a.example/after.png",
    ]


# ---- <style> rules -------------------------------------------------------------------------------


I = f'<img src="{T}">'  # noqa: E741
HI = f'<div class="h">{I}</div>'


def _styled(css: str, body: str) -> list[tuple[str, str, str | None]]:
    return _shapes(f"<html><head><style>{css}</style></head><body>{body}</body></html>")


@pytest.mark.parametrize(
    ("css", "body", "shape"),
    [
        # each hiding mechanism, by class, id, type, compound and descendant selectors
        (".h{display:none}", HI, "inside display:none element"),
        ("#h{visibility:hidden}", f'<p id="h">{I}</p>', "inside visibility:hidden element"),
        ("div.a.b{opacity:0}", f'<div class="b a">{I}</div>', "inside opacity:0 element"),
        ("table td.x{mso-hide:all}", f'<table><tr><td class="x">{I}</td></tr></table>',
         "inside mso-hide:all element"),
        ("div > .w{max-height:0;overflow:hidden}", f'<div><div class="w">{I}</div></div>',
         "inside max-height:0 element"),
        (".z{width:0;height:0;overflow:hidden}", f'<div class="z">{I}</div>',
         "inside zero-size element"),
        (".p{display:none}", f'<img class="p" src="{T}">', "display:none"),
        ("img.p{width:1px;height:1px}", f"<img class=p src={T} width=60 height=30>", "tiny"),
        (".p{height:3px}", f'<img class="p" src="{T}" width="1">', "tiny"),
        (".p{width:0}", f'<div class="p" style="background:url({T})">x</div>', "tiny"),
        # CSS escapes in selectors and properties, !important and `! important`
        (r".\31 x{display:none}", f'<div class="1x">{I}</div>', "inside display:none element"),
        (r"#a\:b{d\isplay:none}", f'<div id="a:b">{I}</div>', "inside display:none element"),
        (".h{display:none ! important}", f'<div class="h" style="display:block">{I}</div>',
         "inside display:none element"),
        # selector lists, later rules, higher specificity
        ("p, .h{display:none}", HI, "inside display:none element"),
        (".h{display:block} .h{display:none}", HI,
         "inside display:none element"),
        ("div.h{display:none} .h{display:block}", HI,
         "inside display:none element"),
    ],
)  # fmt: skip
def test_style_rules_hide_and_size(css: str, body: str, shape: str) -> None:
    assert [s for _u, _e, s in _styled(css, body)] == [shape]


@pytest.mark.parametrize(
    ("css", "body"),
    [
        # inside @media (and any other at-rule): not for every reader
        ("@media (max-width:600px){.h{display:none}}", HI),
        ("@supports (display:grid){@media screen{.h{display:none}}}", HI),
        # selectors guard does not match: pseudo-classes, attributes, siblings
        (".h:hover{display:none}", HI),
        ("[class=h]{display:none}", HI),
        ("p + .h{display:none}", f'<p></p><div class="h">{I}</div>'),
        # the cascade un-hides: a later rule, a more specific one, the style attribute, !important
        (".h{display:none} .h{display:block}", HI),
        (".h{display:none} div.h{display:block}", HI),
        (".h{display:none}", f'<div class="h" style="display:block">{I}</div>'),
        (".h{display:none}", f'<div class="h" style="display:block !important">{I}</div>'),
        (".h{display:none !important} #i{display:block !important}",
         f'<div class="h" id="i">{I}</div>'),
        # no match; a comment is not a rule
        (".h{display:none}", f'<div class="x">{I}</div>'),
        ("/* .h{display:none} */", HI),
        # the responsive swap, by a stylesheet
        (".mobile{display:none;max-height:0;overflow:hidden}",
         f'<div class="mobile"><img src="{T}" width="600" height="300"></div>'),
        ("img{width:100%;height:auto}", f'<img src="{T}" width="600">'),
    ],
)  # fmt: skip
def test_style_rules_that_do_not_make_a_pixel(css: str, body: str) -> None:
    assert [s for _u, _e, s in _styled(css, body)] == [None]


def test_a_style_rule_background_is_a_pixel_only_where_every_element_it_loads_for_is_one() -> None:
    bg = f".b{{background-image:url({T})}}"
    hidden = '<div class="b" style="width:1px;height:1px"></div>'
    shown = '<div class="b" style="width:600px;height:300px">x</div>'
    assert _styled(bg, hidden) == [(T, "<style> url()", "tiny")]
    assert _styled(bg, '<div style="display:none"><div class="b">x</div></div>') == [
        (T, "<style> url()", "inside display:none element")
    ]
    assert _styled(f".b{{background:url({T});width:1px;height:1px}}", '<p class="b">x</p>') == [
        (T, "<style> url()", "tiny")
    ]
    assert _styled(bg, hidden + shown) == [(T, "<style> url()", None)]
    assert _styled(bg, shown) == [(T, "<style> url()", None)]
    assert _styled(bg, "<p>nothing matches</p>") == [(T, "<style> url()", None)]
    # the same URL in a rule guard does not apply (@media, :hover) may load it anywhere
    for other in (f"@media screen{{p{{background:url({T})}}}}", f"p:hover{{background:url({T})}}"):
        assert [s for _u, _e, s in _styled(bg + other, hidden)] == [None, None]


def test_style_rules_are_read_only_when_they_can_hide(monkeypatch: pytest.MonkeyPatch) -> None:
    import guard.engine.html as gh

    selected: list[str] = []
    real = gh.document_sheet

    def spy(doc):  # type: ignore[no-untyped-def]
        sheet = real(doc)
        selected.append("sheet" if sheet is not None else "none")
        return sheet

    monkeypatch.setattr(gh, "document_sheet", spy)
    _styled("body{margin:0} td{font-family:Arial} @media (max-width:600px){.m{display:none}}",
            f'{I}')  # fmt: skip
    _styled(".h{display:none}", f"{I}")
    assert selected == ["none", "sheet"]


def test_a_stylesheet_of_thousands_of_rules_is_bounded() -> None:
    # Each rule is a selection over the whole tree: past _MOST_SELECTIONS rules the rest are
    # not applied (never a pixel by them), so the work stays bounded. A hang guard.
    n = 3000
    css = "".join(f".c{i} img{{display:none}}" for i in range(n))
    body = "".join(
        f'<div class="c{i}"><img src="https://t.example/{i}.gif"></div>' for i in range(n)
    )
    with time_limit(60):
        found = scan_html(f"<style>{css}</style>{body}")
    assert len(found) == n
    assert found[0].shape == "display:none"
    assert found[-1].shape is None


@pytest.mark.parametrize(
    ("html", "shape"),
    [
        # visibility:visible shows again what a visibility:hidden ancestor hid…
        (f'<div style="visibility:hidden"><img style="visibility:visible" src="{T}"></div>', None),
        (f'<div style="visibility:hidden"><p style="visibility:visible"><img src="{T}"></p></div>',
         None),
        (f'<div style="visibility:hidden"><p style="visibility:visible"></p><img src="{T}"></div>',
         "inside visibility:hidden element"),
        (f'<div style="visibility:hidden"><p style="visibility:visible">'
         f'<span style="visibility:hidden"><img src="{T}"></span></p></div>',
         "inside visibility:hidden element"),
        # …and nothing else
        (f'<div style="display:none"><img style="visibility:visible" src="{T}"></div>',
         "inside display:none element"),
        (f'<div style="opacity:0"><p style="visibility:visible"><img src="{T}"></p></div>',
         "inside opacity:0 element"),
        (f'<div style="visibility:hidden"><div style="display:none">'
         f'<img style="visibility:visible" src="{T}" width="600" height="300"></div></div>',
         None),  # display:none of a sized image: the responsive swap
    ],
)  # fmt: skip
def test_visibility_visible_undoes_only_visibility_hidden(html: str, shape: str | None) -> None:
    assert [s for _u, _e, s in _shapes(html)] == [shape]


def test_kept_hands_the_scans_parse_to_the_same_text_only() -> None:
    """scan_html leaves its parse by the text's identity: the very text gets it back (once); an
    equal text decoded apart, or a text never scanned, gets None and is parsed anew."""
    html = "<p><img src='http://t.example/p.gif' width=1 height=1></p>"
    twin = "".join(["<p><img src='http://t.example/p.gif' ", "width=1 height=1></p>"])
    assert twin == html and twin is not html
    keep: Parsed = {}
    scan_html(html, keep)
    assert kept(keep, twin) is None
    doc = kept(keep, html)
    assert doc is not None and doc.css_first("img") is not None
    assert kept(keep, html) is None and not keep
