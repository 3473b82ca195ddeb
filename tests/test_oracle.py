"""The layout oracle of bench/accuracy.py (tests/renderer.py: DOM snapshot with computed styles,
placeholder images, cid: parts served from the message) on HTML whose answer is known, and on
samples/ messages whose pixels are hand-labelled in samples/manifest.toml.

Real Chromium (skipped locally without it, failing under CI=true, as tests/test_renderer.py);
no timing assertions.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from renderer import (
    CID_PREFIX,
    ImageBox,
    Page,
    Renderer,
    browser_for_tests,
    image_boxes,
)
from renderer_proof import SAMPLES, url_key

from guard.engine.mime import parse_message

KNOWN = """<html><head><style>.gone { display: none } .wrap { max-height: 0; overflow: hidden }
</style></head><body>
<img src="http://t.example/1x1.gif" width="1" height="1">
<img src="http://t.example/1x3.gif" width="1" height="3">
<img src="http://t.example/divider.gif" width="600" height="1">
<img src="http://t.example/banner.gif" width="600" height="200">
<img src="http://t.example/unsized.gif">
<img src="http://t.example/css.gif" style="width:2px;height:2px">
<div class="gone"><img src="http://t.example/none.gif" width="80" height="80"></div>
<div class="wrap"><img src="http://t.example/clip.gif" width="80" height="80"></div>
<div style="opacity:0"><img src="http://t.example/opacity.gif" width="80" height="80"></div>
<img src="http://t.example/hidden-attr.gif" width="80" height="80" hidden>
<span style="visibility:hidden"><img src="http://t.example/vis.gif" width="80" height="80"></span>
<div style="width:1px;height:1px;background-image:url('http://t.example/bg.gif')"></div>
<table><tr><td background="http://t.example/td.gif" width="300" height="40">x</td></tr></table>
<input type="image" src="http://t.example/input.gif" width="1" height="1">
<video poster="http://t.example/poster.gif" width="1" height="1"></video>
<svg width="10" height="10"><image href="http://t.example/svg.gif" width="1" height="1"/></svg>
<iframe srcdoc="<img src='http://t.example/frame.gif' width=50 height=50>" width="0" height="0"
 style="border:0"></iframe>
<iframe srcdoc="<img src='http://t.example/framed.gif' width=50 height=50>" style="display:none">
</iframe>
<link rel="stylesheet" href="cid:style@known">
<p class="from-cid">text</p>
</body></html>"""
KNOWN_PARTS = {
    "style@known": ("text/css", b".from-cid { background: url(http://t.example/cid-css.gif) }")
}

# url -> (pixel_like, why it is hidden or "")
EXPECTED = {
    "1x1.gif": (True, ""),
    "1x3.gif": (True, ""),
    "divider.gif": (False, ""),  # 600x1: not <= 3 px both ways, and not 0 either way
    "banner.gif": (False, ""),
    "unsized.gif": (False, ""),  # the placeholder's 64x64: size from attributes/CSS only
    "css.gif": (True, ""),
    "none.gif": (True, "display:none"),
    "clip.gif": (True, "clipped by an ancestor's overflow"),
    "opacity.gif": (True, "opacity:0"),
    "hidden-attr.gif": (True, "display:none"),
    "vis.gif": (True, "visibility:hidden"),
    "bg.gif": (True, ""),
    "td.gif": (False, ""),
    "input.gif": (True, ""),
    "poster.gif": (True, ""),
    "svg.gif": (True, ""),
    "frame.gif": (True, "clipped by the frame it is in"),  # a 0x0 iframe
    "framed.gif": (True, "in a hidden frame"),  # the frame is display:none; its document loads
    "cid-css.gif": (False, ""),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Renderer]:
    yield from browser_for_tests(
        page_timeout=15, snapshot=True, placeholder_images=True, serve_cid=True
    )


def _by_name(boxes: list[ImageBox]) -> dict[str, ImageBox]:
    return {b.url.rsplit("/", 1)[-1]: b for b in boxes if b.url.startswith("http://t.example/")}


def test_known_layout(browser: Renderer) -> None:
    render = browser.render_many([Page(KNOWN, KNOWN_PARTS)])[0]
    assert not render.snapshot_error and render.snapshot is not None
    boxes = _by_name(image_boxes(render.snapshot))
    got = {name: (box.pixel_like, box.hidden) for name, box in boxes.items()}
    assert got == EXPECTED
    assert boxes["1x3.gif"].width == 1 and boxes["1x3.gif"].height == 3
    assert boxes["unsized.gif"].width == 64 and boxes["unsized.gif"].height == 64
    assert boxes["none.gif"].width is None  # no box at all
    # the cid: stylesheet was served from the message and what it loads was requested
    assert render.served == ["style@known"]
    from_cid = [r for r in render.requests if r.url == "http://t.example/cid-css.gif"]
    assert [r.initiator.split(":", 1)[0] for r in from_cid] == ["parser cid"]
    assert any(r.url.startswith(CID_PREFIX) for r in render.own_origin_requests())


def test_zero_height_divider_is_a_pixel_by_size(browser: Renderer) -> None:
    html = '<img src="http://t.example/zero.gif" width="600" height="0">'
    boxes = _by_name(image_boxes(browser.render_many([Page(html)])[0].snapshot))
    assert boxes["zero.gif"].small and not boxes["zero.gif"].hidden


SAMPLE_MESSAGES = (
    "eml/heuristic-pixels-size-attributes.eml",
    "eml/heuristic-pixels-hidden-styles.eml",
    "eml/mailchimp-bakery-newsletter.eml",
)


@pytest.mark.parametrize("name", SAMPLE_MESSAGES)
def test_hand_labelled_pixels_are_pixels_by_layout(browser: Renderer, name: str) -> None:
    """Every pixel samples/manifest.toml lists for these messages (pixels by size or by hiding,
    and a 1x1 open pixel) is laid out by Chromium at most 3 px both ways (or 0 either way), or
    hidden. (Not every labelled pixel is: a named tracker's open pixel can be any size, e.g. the
    600x1 table-cell background of eml/vectors-background-attributes.eml.)"""
    manifest = tomllib.loads((SAMPLES / "manifest.toml").read_text(encoding="utf-8"))
    entry = next(e for e in manifest["message"] if e["source"] == name)
    pixels = {url_key(f["url"]) for f in entry["finding"] if f["kind"] == "pixel"}
    assert pixels
    parsed, _ = parse_message(Path(SAMPLES, name).read_bytes())
    renders = browser.render_many([Page(html) for html in parsed.html_parts])
    boxes = [b for r in renders for b in image_boxes(r.snapshot)]
    by_key: dict[str, list[ImageBox]] = {}
    for box in boxes:
        by_key.setdefault(url_key(box.url), []).append(box)
    for key in pixels:
        assert key in by_key, f"{name}: a labelled pixel is loaded by no element"
        assert any(b.pixel_like for b in by_key[key]), (name, key, by_key[key])


def _accuracy_module():  # bench/ is not a package: load bench/accuracy.py by path
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "bench" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_accuracy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_esp_fingerprints_are_sourced_and_map_to_guards_services() -> None:
    from guard.engine.rules_load import load_ruleset

    accuracy = _accuracy_module()
    services = set(load_ruleset(include_user=False).services)
    esps = accuracy.load_fingerprints()
    assert esps
    for esp in esps:
        assert esp["service"] in services, esp["id"]
        assert esp["evidence"], esp["id"]
        for ev in esp["evidence"]:
            assert ev["source"].startswith("https://"), esp["id"]
            assert ev["quality"] in ("esp-doc", "esp-example", "third-party"), esp["id"]


def test_esp_fingerprints_read_headers_and_tracking_hosts() -> None:
    accuracy = _accuracy_module()
    raw = (
        b"Return-Path: <0100018e-abc@eu-west-1.amazonses.com>\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=sendgrid.info; s=smtpapi; bh=x; b=y\r\n"
        b"X-Mailgun-Variables: {}\r\n"
        b"Message-ID: <1@mta.example>\r\n"
        b"From: a@shop.example\r\n\r\nbody\r\n"
    )
    html = ['<a href="https://u123.ct.sendgrid.net/ls/click?x">x</a>']
    found = accuracy.message_fingerprints(raw, html, accuracy.load_fingerprints())
    kinds = {esp: sorted(e.kind for e in ev) for esp, ev in found.items()}
    assert kinds == {
        "amazon-ses": ["return_path"],
        "sendgrid": ["dkim", "link_host"],
        "mailgun": ["header"],
    }
    # a link to an ESP's own site is not evidence
    none = accuracy.message_fingerprints(
        b"From: a@b.example\r\n\r\n",
        ['<a href="https://www.sendgrid.com/">'],
        accuracy.load_fingerprints(),
    )
    assert none == {}
