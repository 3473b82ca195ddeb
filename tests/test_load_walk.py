"""`guard.engine.load_walk.document_loads`, the reading cleaning checks its own output with, reads
exactly the loads of `scan_html`: the same distinct URLs, each with the element of its first
occurrence, in that order (so a refused rewrite names the same element either way)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from html5_grammar import documents
from hypothesis import HealthCheck, given, settings

from guard.clean.message import Policy, clean_message
from guard.engine.html import scan_html
from guard.engine.load_walk import document_loads
from guard.engine.mime import MessageError, parse_message
from guard.engine.rules_load import load_ruleset

ROOT = Path(__file__).resolve().parent.parent
RULES = load_ruleset(include_user=False)
T = "http://t.example/p"


def _nested(html: str, levels: int) -> str:
    for _ in range(levels):
        html = f'<iframe src="data:text/html,{quote(html)}"></iframe>'
    return html


def scan_loads(html: str) -> list[tuple[str, str]]:
    first: dict[str, str] = {}
    for occ in scan_html(html):
        if occ.load:
            first.setdefault(occ.url, occ.element)
    return list(first.items())


CASES = {
    "empty": "",
    "blank": " \n ",
    "plain": f'<p>Hi</p><img src="{T}/1" width="1"><a href="{T}/2">x</a>',
    "first element wins": f'<td background="{T}/1"><img src="{T}/1"></td>',
    "srcset and style": f'<img srcset="{T}/a 1x, {T}/b 2x" style="background:url({T}/c)">',
    "base": f'<base href="{T}/dir/"><img src="a.png"><link rel=stylesheet href="/s.css">',
    "relative base is no base": '<base href="dir/"><img src="a.png">',
    "style element": f"<style>@import url({T}/i.css); p {{ background: url({T}/bg) }}</style>",
    "svg camelCase": f'<svg><filter><feImage href="{T}/fe"/></filter><style>a{{}}</style></svg>',
    "conditional comment": (
        f'<!--[if mso]><v:fill src="{T}/v"/><a href="{T}/l">b</a><![endif]--><p>x</p>'
    ),
    "image in a table": f'<table><image src="{T}/dropped"></table>',
    "image in a table, linked": f'<a href="{T}/d"></a><table><image src="{T}/d"></table>',
    "image in a table, base": f'<base href="{T}/"><table><image src="rel"></table>',
    "srcdoc": f'<base href="{T}/"><iframe srcdoc="&lt;img src=in.png&gt;"></iframe>',
    "data: svg": (
        '<object data="data:image/svg+xml,&lt;?xml-stylesheet href=&quot;'
        f'{T}/x.css&quot;?&gt;&lt;svg&gt;&lt;image href=&quot;{T}/i&quot;/&gt;&lt;/svg&gt;">'
    ),
    "data: css": f'<link rel=stylesheet href="data:text/css,b{{background:url({T}/css)}}">',
    "data: svg image": (
        '<img src="data:image/svg+xml,&lt;svg&gt;'
        f'&lt;image href=&quot;{T}/s&quot;/&gt;&lt;/svg&gt;">'
    ),
    "nested too deep": _nested(f'<img src="{T}/deep">', 6),
    "markup scan": "<div>" * 20_000 + f'<img src="{T}/deep-div">',
    "refresh and meta": f'<meta http-equiv=refresh content="0;url={T}/r"><p>x',
}


@pytest.mark.parametrize("html", CASES.values(), ids=CASES.keys())
def test_hand_made_documents(html: str) -> None:
    assert document_loads(html) == scan_loads(html)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_documents_through_html5_error_recovery(html: str) -> None:
    assert document_loads(html) == scan_loads(html)


def _sample_html() -> list[str]:
    out: list[str] = []
    for path in sorted((ROOT / "samples" / "eml").glob("*.eml")):
        raw = path.read_bytes()
        for data in (raw, clean_message(raw, RULES, Policy(name="strict")).data):
            try:
                out.extend(parse_message(data)[0].html_parts)
            except MessageError:
                continue
    return out


def test_the_samples_and_their_cleaned_copies() -> None:
    htmls = _sample_html()
    assert len(htmls) > 40
    for html in htmls:
        assert document_loads(html) == scan_loads(html)
