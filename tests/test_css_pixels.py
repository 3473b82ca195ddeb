"""Pixels found by layout (size and hiding from the message's own HTML and CSS) are cleaned: every
vector detection calls a pixel is removed by `guard strip`'s cleaning, content stays, and the
cleaned copy passes the read-back check and scans without a pixel."""

from __future__ import annotations

import textwrap

import pytest

from guard.clean.message import clean_message
from guard.engine.detect import detect
from guard.engine.mime import parse_message
from guard.engine.model import Kind
from guard.engine.rules_load import load_ruleset

RULES = load_ruleset(include_user=False)
BEACON = "https://beacon.unknown-host.example/o/aZ3k9.gif"  # no rule knows the host
CONTENT = "https://cdn.unknown-host.example/img/hero.jpg"


def message(html: str) -> bytes:
    head = textwrap.dedent(
        """\
        From: Shop <news@shop.example.com>
        To: reader@example.org
        Subject: News
        MIME-Version: 1.0
        Content-Type: text/html; charset=utf-8

        """
    )
    return (head + html + "\n").encode()


def findings(raw: bytes) -> dict[str, Kind]:
    parsed, envelope = parse_message(raw)
    return {f.url or "": f.kind for f in detect(parsed, RULES, sender=envelope.from_addr)}


CONTENT_IMG = f'<img src="{CONTENT}" width="600" height="300" alt="hero">'
CASES = {
    "img 1x3": f'<img src="{BEACON}" width="1" height="3">',
    "input type=image 0x0": f'<input type="image" src="{BEACON}" width="0" height="0">',
    "video poster, hidden": f'<video poster="{BEACON}" style="display:none"></video>',
    "svg image 1x1": f'<svg><image href="{BEACON}" width="1" height="1"/></svg>',
    "td background in a zero-size wrapper": (
        '<div style="height:0;overflow:hidden"><table><tr>'
        f'<td background="{BEACON}">x</td></tr></table></div>'
    ),
    "div background-image 1x1": (
        f'<div style="width:1px;height:1px;background-image:url({BEACON})"></div>'
    ),
    "div background shorthand, mso-hide:all": (
        f"<div style=\"mso-hide:all;background:#fff url('{BEACON}')\">x</div>"
    ),
    "<style> class rule background on a 1x1 div": (
        f"<style>.px{{background:url({BEACON}) no-repeat;width:1px;height:1px}}</style>"
        '<div class="px"></div>'
    ),
    "<style> rule hides the wrapper of an img": (
        "<style>#f .w{visibility:hidden}</style>"
        f'<div id="f"><p class="w"><img src="{BEACON}"></p></div>'
    ),
}


@pytest.mark.parametrize("vector", list(CASES), ids=list(CASES))
def test_layout_pixel_is_detected_and_cleaned(vector: str) -> None:
    raw = message(f"<html><body><p>Hello</p>{CONTENT_IMG}{CASES[vector]}</body></html>")
    found = findings(raw)
    assert found[BEACON] is Kind.PIXEL
    assert found[CONTENT] is Kind.REMOTE

    result = clean_message(raw, RULES)
    assert result.changed and result.removed.get("pixel") == 1, result
    cleaned = result.data.decode()
    assert BEACON not in cleaned
    assert CONTENT in cleaned and "Hello" in cleaned  # the content stays
    after = findings(result.data)
    assert BEACON not in after and after[CONTENT] is Kind.REMOTE


@pytest.mark.parametrize(
    "html",
    [
        # the responsive swap: a sized variant hidden until a media query shows it
        f'<div style="display:none;max-height:0;overflow:hidden">'
        f'<img src="{BEACON}" width="600" height="300"></div>',
        "<style>.m{display:none} @media (max-width:600px){.m{display:block!important}}</style>"
        f'<div class="m"><img src="{BEACON}" width="300"></div>',
        # a divider and an unsized image
        f'<img src="{BEACON}" width="600" height="1">',
        f'<img src="{BEACON}">',
    ],
)
def test_layout_exemptions_are_kept(html: str) -> None:
    raw = message(f"<html><body>{html}</body></html>")
    assert findings(raw)[BEACON] is Kind.REMOTE
    result = clean_message(raw, RULES)
    assert BEACON in result.data.decode()


@pytest.mark.parametrize(
    "src", ["cid:px@shop.example", "data:image/gif;base64,R0lGODlhAQABAAAAACw="]
)
def test_cid_and_data_images_are_never_pixels(src: str) -> None:
    html = (
        f'<img src="{src}" width="1" height="1"><div style="display:none"><img src="{src}"></div>'
        f'<div style="width:1px;height:1px;background:url({src})"></div>'
    )
    raw = message(f"<html><body>{CONTENT_IMG}{html}</body></html>")
    assert findings(raw) == {CONTENT: Kind.REMOTE}
