"""Hypothesis strategies for HTML documents that take HTML5's error-recovery paths (issue 13).

Not tag soup: a small grammar of the constructs where parsers have differed, each built so that
the tree builder has to repair it: content misplaced in tables (foster parenting), content after
`</body>` and `</html>`, elements inside `<select>`, `<template>`, SVG and MathML with their
integration points and breakout tags, `<noscript>`, `<frameset>`, `<plaintext>`, raw text
(`<textarea>`, `<title>`, `<xmp>`, `<iframe>`, `<style>`) holding markup, mis-nested formatting
elements (the adoption agency), unclosed `<p>`/`<li>`/`<option>`, deep nesting (at most
`MAX_DEPTH`), duplicate attributes, entities in attributes, and comments including Outlook's
conditional ones. Almost every element carries something guard reads (a URL, a hiding style),
so that a difference in the tree shows up as a difference in what is read.

`constructs(html)` names the constructs a document contains, for `hypothesis.event`.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

MAX_DEPTH = 200
_URLS = st.sampled_from([f"http://u{i}.example/p{i}" for i in range(1, 7)])

# -- attributes ----------------------------------------------------------------------------------


@st.composite
def _url_value(draw: st.DrawFn) -> str:
    url = draw(_URLS)
    # Entities in attribute values: named with and without `;`, numeric, and the legacy rule
    # (`&copy=` is kept as written in an attribute because `=` follows).
    suffix = draw(
        st.sampled_from(
            ["", "?a=1&amp;b=2", "?a=1&b=2", "?x&copy=3", "?n&#x3D;1", "?&lt", "&notin"]
        )
    )
    return url + suffix


@st.composite
def _attr(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    name = draw(st.sampled_from(names))
    value = draw(_url_value())
    if name == "style":
        value = draw(
            st.sampled_from(
                [
                    f"background-image:url({value})",
                    "display:none",
                    "visibility:hidden",
                    "opacity:0",
                    f"display:none;background:url('{value}')",
                ]
            )
        )
    elif name == "hidden":
        return draw(st.sampled_from(["hidden", "HIDDEN", 'hidden=""']))
    elif name == "rel":
        value = draw(st.sampled_from(["stylesheet", "icon", "preload", "nofollow"]))
    elif name == "type":
        value = draw(st.sampled_from(["image", "text", "IMAGE"]))
    if draw(st.booleans()):
        name = name.upper()
    quote = draw(st.sampled_from(['"', "'", ""]))
    if not quote and any(c in value for c in " '\"=<>`"):
        quote = '"'
    return f"{name}={quote}{value}{quote}"


def _attrs(names: tuple[str, ...], most: int = 3) -> st.SearchStrategy[str]:
    # Duplicates are likely with so few names: the first one must win.
    return st.lists(_attr(names), max_size=most).map(lambda a: "".join(" " + x for x in a))


_ANY = ("style", "background", "hidden")
_IMG = ("src", "srcset", "lowsrc", "style", "hidden", "width")
_LINKING = ("href", "style", "background", "hidden")
_SVG_REF = ("href", "xlink:href", "src", "style")

# -- leaves --------------------------------------------------------------------------------------


@st.composite
def _void(draw: st.DrawFn) -> str:
    tag = draw(
        st.sampled_from(
            ["img", "image", "input", "embed", "source", "track", "link", "meta", "base", "area"]
        )
    )
    names = {
        "img": _IMG,
        "image": _IMG,
        "input": ("src", "type", "style"),
        "link": ("href", "rel"),
        "meta": ("content", "http-equiv"),
        "area": ("href",),
    }.get(tag, ("src", "style"))
    attrs = draw(_attrs(names))
    if tag == "meta" and draw(st.booleans()):
        attrs = f' http-equiv=refresh content="0;url={draw(_URLS)}"'
    html = f"<{tag}{attrs}{draw(st.sampled_from(['>', '/>', ' />']))}"
    return marked("image", html) if tag == "image" else html


_TEXT = st.sampled_from(["t", " ", "\n", "a&amp;b", "x&copy y", "&lt;img src=q&gt;", "\x00", ""])

_COMMENT = st.sampled_from(
    [
        "<!--c-->",
        '<!--[if mso]><v:fill type="tile" src="http://u7.example/vml" /><![endif]-->',
        '<!--[if gte mso 9]><v:rect><v:fill src="http://u8.example/v"/></v:rect><![endif]-->',
        '<!--[if !mso]><!--><img src="http://u9.example/nm"><!--<![endif]-->',
        "<!--[if mso]><a href='http://u7.example/btn'>b</a><![endif]-->",
        "<!-- a -- b -->",
        "<!--->",
        "<!x>",
        "<?php echo 1 ?>",
        "</ 1>",
    ]
)
# A comment left open eats the rest of the document; only at the end of one (`documents`), so
# that it cannot swallow the comments that mark constructs.
_UNTERMINATED_COMMENT = st.sampled_from(
    ["", "<!--", "<!--[if mso]><v:image src=http://u8.example/open />", "<!--[if mso]><!--"]
)

_STRAY_END = st.sampled_from(
    [
        *("</p>", "</br>", "</a>", "</b>", "</table>", "</td>", "</tr>", "</select>", "</option>"),
        *("</svg>", "</math>", "</li>", "</div>", "</form>", "</body>", "</html>"),
    ]
)


@st.composite
def _raw_text(draw: st.DrawFn) -> str:
    """An element whose content is text: markup inside it is not markup. Left open, it holds
    the rest of the document."""
    tag = draw(
        st.sampled_from(["textarea", "title", "xmp", "iframe", "noembed", "style", "script"])
    )
    attrs = draw(_attrs(("src", "style"))) if tag in ("iframe", "script") else ""
    url = draw(_URLS)
    inner = draw(
        st.sampled_from(
            [
                f'<img src="{url}">',
                f"a{{background:url({url})}}",
                f"</{tag}x><img src={url}>",
                f"<!--</{tag}>--><img src={url}>",
                "",
            ]
        )
    )
    end = draw(st.sampled_from([f"</{tag}>", f"</{tag.upper()} >", ""]))
    return f"<{tag}{attrs}>{inner}{end}"


_LEAF = st.one_of(
    _void(),
    _TEXT,
    _COMMENT,
    _STRAY_END,
    _raw_text(),
    st.just("</template>"),
)


# -- containers ----------------------------------------------------------------------------------

_Children = st.SearchStrategy[list[str]]


def _wrap(tag: str, attrs: str, body: str, end: bool) -> str:
    return f"<{tag}{attrs}>{body}" + (f"</{tag}>" if end else "")


@st.composite
def _element(draw: st.DrawFn, children: _Children) -> str:
    """An ordinary container, formatting element or implied-end-tag element, maybe unclosed."""
    tag = draw(
        st.sampled_from(
            [
                *("div", "p", "li", "dd", "span", "center", "pre", "h1", "button", "form", "ul"),
                *("a", "a", "b", "i", "font", "nobr", "u", "em", "option", "object", "noscript"),
            ]
        )
    )
    names = _LINKING if tag == "a" else ("data", "style") if tag == "object" else _ANY
    body = "".join(draw(children))
    return _wrap(tag, draw(_attrs(names)), body, draw(st.booleans()))


@st.composite
def _misnested(draw: st.DrawFn, children: _Children) -> str:
    """Formatting elements closed in the wrong order: the adoption agency runs."""
    outer, inner = draw(st.sampled_from([("a", "b"), ("b", "a"), ("a", "a"), ("font", "i")]))
    block = draw(st.sampled_from(["div", "p", "table", "li", ""]))
    kids = draw(children)
    mid = "".join(kids[: len(kids) // 2])
    rest = "".join(kids[len(kids) // 2 :])
    o = f"<{outer}{draw(_attrs(_LINKING))}>"
    i = f"<{inner}{draw(_attrs(_LINKING))}>"
    b = f"<{block}>" if block else ""
    return f"{o}{mid}{b}{i}{rest}</{outer}>{draw(_TEXT)}</{inner}>"


@st.composite
def _table(draw: st.DrawFn, children: _Children) -> str:
    """A table with misplaced content (foster parenting) and omitted end tags."""
    parts: list[str] = [f"<table{draw(_attrs(_ANY))}>"]
    for kid in draw(children):
        where = draw(
            st.sampled_from(["table", "caption", "colgroup", "tbody", "tr", "td", "th", "td-open"])
        )
        attrs = draw(_attrs(_ANY, 1))
        if where == "table":
            parts.append(kid)  # directly in <table>: foster-parented unless it is table content
        elif where == "caption":
            parts.append(f"<caption>{kid}</caption>")
        elif where == "colgroup":
            parts.append(f"<colgroup><col{attrs}>{kid}")
        elif where == "tbody":
            parts.append(f"<tbody{attrs}>{kid}")
        elif where == "tr":
            parts.append(f"<tr{attrs}>{kid}")
        else:
            end = "" if where == "td-open" else f"</{where[:2]}>"
            parts.append(f"<{where[:2]}{attrs}>{kid}{end}")
    if draw(st.booleans()):
        parts.append("</table>")
    return "".join(parts)


@st.composite
def _select(draw: st.DrawFn, children: _Children) -> str:
    """A `<select>` holding what it may (options) and what the 2025 parser change allows."""
    parts = [f"<select{draw(_attrs(_ANY, 1))}>"]
    for kid in draw(children):
        wrapper = draw(st.sampled_from(["", "option", "option-open", "optgroup", "div", "button"]))
        if wrapper == "":
            parts.append(kid)
        elif wrapper == "option-open":
            parts.append(f"<option{draw(_attrs(_ANY, 1))}>{kid}")
        else:
            parts.append(_wrap(wrapper, draw(_attrs(_ANY, 1)), kid, True))
    extra = draw(st.sampled_from(["", "<hr>", "<input>", "<keygen>", "<select>", "<textarea>"]))
    end = draw(st.sampled_from(["</select>", ""]))
    return marked("select", "".join(parts) + extra + end)


# The `<select>`s, `<template>`s and `<image>`s of a generated document are marked by comments
# around them (which change no parsing state), so that a test can take them out again. (An SVG
# `<image>` is an HTML one when an earlier breakout tag has left the SVG.)
MARKED = ("select", "template", "image")


def marked(kind: str, html: str) -> str:
    return f"<!--{{{kind}-->{html}<!--{kind}}}-->"


def without(html: str, kinds: tuple[str, ...]) -> str:
    """`html` less every generated construct of these kinds (with all that it holds)."""
    for kind in kinds:
        opening, closing = f"<!--{{{kind}-->", f"<!--{kind}}}-->"
        out: list[str] = []
        depth = pos = 0
        for m in re.finditer(re.escape(opening) + "|" + re.escape(closing), html):
            if m.group() == opening:
                if depth == 0:
                    out.append(html[pos : m.start()])
                depth += 1
            elif depth:
                depth -= 1
                if depth == 0:
                    pos = m.end()
        if depth == 0:
            out.append(html[pos:])
        html = "".join(out)
    return html


@st.composite
def _template(draw: st.DrawFn, children: _Children) -> str:
    body = "".join(draw(children))
    return marked("template", _wrap("template", "", body, draw(st.booleans())))


@st.composite
def _svg(draw: st.DrawFn, children: _Children) -> str:
    """SVG with loading elements, `<style>`, an HTML integration point and breakout tags."""
    parts = [f"<svg{draw(st.sampled_from(['', ' xmlns:xlink=x', ' viewBox=0']))}>"]
    for kid in draw(children):
        how = draw(
            st.sampled_from(
                ["image", "feImage", "use", "style", "foreignObject", "desc", "a", "g", "raw"]
            )
        )
        attrs = draw(_attrs(_SVG_REF))
        if how == "image":
            parts.append(marked("image", f"<image{attrs}/>") + kid)
        elif how == "feImage":
            parts.append(f"<filter><feimage{attrs}></feimage></filter>{kid}")
        elif how == "use":
            parts.append(f"<use{attrs}>{kid}</use>")
        elif how == "style":
            parts.append(f"<style>a{{background:url({draw(_URLS)})}}{kid}</style>")
        elif how in ("foreignObject", "desc"):
            parts.append(f"<{how}>{kid}</{how}>")  # HTML integration points
        elif how in ("a", "g"):
            parts.append(f"<{how}{attrs}>{kid}</{how}>")
        else:
            parts.append(kid)  # an HTML tag here breaks out of SVG (b, img, p, font color…)
    if draw(st.booleans()):
        parts.append("</svg>")
    return "".join(parts)


@st.composite
def _math(draw: st.DrawFn, children: _Children) -> str:
    """MathML: text integration points (mtext…), mglyph, annotation-xml, SVG inside."""
    parts = ["<math>"]
    for kid in draw(children):
        how = draw(
            st.sampled_from(["mtext", "mi", "mglyph", "annotation-xml", "svg", "style", "raw"])
        )
        if how in ("mtext", "mi"):
            glyph = draw(st.sampled_from(["", f"<mglyph{draw(_attrs(_SVG_REF))}>"]))
            parts.append(f"<{how}>{glyph}{kid}</{how}>")
        elif how == "mglyph":
            parts.append(f"<mglyph{draw(_attrs(_SVG_REF))}>{kid}</mglyph>")
        elif how == "annotation-xml":
            enc = draw(st.sampled_from(["", ' encoding="text/html"', " encoding=SVG"]))
            parts.append(f"<semantics><annotation-xml{enc}>{kid}</annotation-xml></semantics>")
        elif how == "svg":
            image = marked("image", f"<image{draw(_attrs(_SVG_REF))}/>")
            parts.append(f"<svg>{image}{kid}</svg>")
        elif how == "style":
            parts.append(f"<style>a{{background:url({draw(_URLS)})}}</style>{kid}")
        else:
            parts.append(kid)
    if draw(st.booleans()):
        parts.append("</math>")
    return "".join(parts)


@st.composite
def _deep(draw: st.DrawFn, children: _Children) -> str:
    """Deep nesting, closed or not, with something to read at the bottom."""
    depth = draw(st.sampled_from([2, 3, 8, 40, MAX_DEPTH]))
    tag = draw(st.sampled_from(["div", "font", "span", "table", "b", "a", "blockquote"]))
    attrs = draw(_attrs(_ANY, 1))
    body = "".join(draw(children))
    end = f"</{tag}>" * depth if draw(st.booleans()) else ""
    return f"<{tag}{attrs}>" * depth + body + end


def _containers(children: _Children) -> st.SearchStrategy[str]:
    # Ordinary elements and tables are drawn more often than the rest.
    return st.one_of(
        _element(children),
        _element(children),
        _misnested(children),
        _table(children),
        _table(children),
        _select(children),
        _template(children),
        _svg(children),
        _math(children),
        _deep(children),
    )


FRAGMENT: st.SearchStrategy[str] = st.recursive(
    _LEAF,
    lambda inner: _containers(st.lists(inner, min_size=1, max_size=3)),
    max_leaves=16,
)
_FRAGMENTS = st.lists(FRAGMENT, max_size=3).map("".join)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A whole document: head, body, and what comes after `</body>` and `</html>`."""
    doctype = draw(st.sampled_from(["", "<!DOCTYPE html>", "<!doctype html public 'x'>"]))
    before = draw(st.sampled_from(["", "<!--[if mso]><img src=http://u9.example/pre><![endif]-->"]))
    head = draw(
        st.sampled_from(
            [
                "",
                "<head>",
                "<html><head><title>t</title>",
                f"<html{draw(_attrs(_ANY, 1))}><head><noscript><img src=http://u1.example/ns>"
                "</noscript><style>a{background:url(http://u2.example/h)}</style></head>",
                "<head><link rel=stylesheet href=http://u3.example/c.css></head>",
            ]
        )
    )
    body = draw(st.sampled_from(["", "<body>", f"<body{draw(_attrs(_ANY, 2))}>"]))
    ending = draw(
        st.sampled_from(
            [
                "",
                "</body>",
                "</body></html>",
                "</html>",
                "<frameset><frame src=http://u4.example/f></frameset>",
                "</body><frameset><frame src=http://u4.example/f>",
                "<plaintext><img src=http://u5.example/pt>",
            ]
        )
    )
    return (
        doctype
        + before
        + head
        + body
        + draw(_FRAGMENTS)
        + ending
        + draw(_FRAGMENTS)  # after </body> or </html>: the parser moves it back into <body>
        + draw(_UNTERMINATED_COMMENT)
    )


_MARKERS = {
    "table": "<table",
    "select": "<select",
    "template": "<template",
    "svg": "<svg",
    "math": "<math",
    "foreignObject": "<foreignObject",
    "mglyph": "<mglyph",
    "noscript": "<noscript",
    "frameset": "<frameset",
    "plaintext": "<plaintext",
    "conditional comment": "<!--[if",
    "after </html>": "</html>",
}


def constructs(html: str) -> list[str]:
    """The named constructs present in a generated document (for `hypothesis.event`)."""
    found = [name for name, marker in _MARKERS.items() if marker in html]
    if _FOSTERED.search(html):
        found.append("foster parenting")
    if _RAW_TEXT.search(html):
        found.append("raw text holding markup")
    if _DEEP.search(html):
        found.append("nesting over 50")
    if _MISNESTED.search(html):
        found.append("mis-nested formatting")
    return found


_FOSTERED = re.compile(r"<t(?:able|body|r)\b[^>]*>(?:<(?:img|div|a|p|b|font|select|svg)\b|[^<])")
_RAW_TEXT = re.compile(r"<(textarea|title|xmp|iframe|noembed|style)\b[^>]*>[^<]*<[a-z!/]")
_DEEP = re.compile(r"(<[a-z]+\b[^>]*>)\1{49}")
_MISNESTED = re.compile(
    r"<(a|b|font)\b[^>]*>(?:(?!</\1>).)*<(?!\1\b)(a|b|i)\b[^>]*>(?:(?!</\2>).)*</\1>", re.S
)
