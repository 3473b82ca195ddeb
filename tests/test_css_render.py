"""Layout pixels against headless Chromium (tests/renderer.py): each element guard calls a pixel
by its size or hiding is a load the browser really makes, and guard's reading of the hiding
agrees with what the browser loads.

One known difference, pinned here: Chromium fetches no CSS background of an element that is
display:none or inside one (it lays nothing out there). guard still reports such a background as a
pixel: other engines may fetch it, and removing it takes nothing visible away.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from renderer import Renderer, browser_for_tests

from guard.engine.html import scan_html


def url(n: int) -> str:
    return f"http://layout.example/{n}.gif"


# (document, what guard says of url(n): its pixel shape, whether Chromium requests it)
CASES: dict[str, tuple[str, str | None, bool]] = {
    "img inside display:none": (
        f'<div style="display:none"><img src="{url(1)}"></div>',
        "inside display:none element",
        True,
    ),
    "background on a visibility:hidden element": (
        f'<div style="visibility:hidden;background:url({url(2)})">x</div>',
        "visibility:hidden",
        True,
    ),
    "background on a 1x1 div": (
        f'<div style="width:1px;height:1px;background:url({url(3)})"></div>',
        "tiny",
        True,
    ),
    "<style> rule background on a 1x1 div": (
        f'<style>.p{{background:url({url(4)});width:1px;height:1px}}</style><div class="p"></div>',
        "tiny",
        True,
    ),
    "video poster, display:none": (
        f'<video poster="{url(5)}" style="display:none"></video>',
        "display:none",
        True,
    ),
    "input type=image 0x0": (
        f'<input type="image" src="{url(6)}" width="0" height="0">',
        "tiny",
        True,
    ),
    "svg image 1x1": (f'<svg><image href="{url(7)}" width="1" height="1"/></svg>', "tiny", True),
    "td background in a clipped zero-height wrapper": (
        f'<div style="height:0;overflow:hidden"><table><tr><td background="{url(8)}">x</td>'
        "</tr></table></div>",
        "inside zero-size element",
        True,
    ),
    "img inside mso-hide:all (Outlook hides it; a browser loads it)": (
        f'<div style="mso-hide:all"><img src="{url(9)}"></div>',
        "inside mso-hide:all element",
        True,
    ),
    "<style> rule hides the wrapper": (
        "<style>#w .h{opacity:0}</style>"
        f'<div id="w"><p class="h"><img src="{url(10)}"></p></div>',
        "inside opacity:0 element",
        True,
    ),
    "a <style> rule that matches nothing loads nothing": (
        f'<style>.q{{background:url({url(11)})}}</style><div class="p">x</div>',
        None,
        False,
    ),
    "background on a display:none element (Chromium: not fetched)": (
        f'<div style="display:none;background:url({url(12)})">x</div>',
        "display:none",
        False,
    ),
    "background inside display:none (Chromium: not fetched)": (
        f'<div style="display:none"><div style="background:url({url(13)})">x</div></div>',
        "inside display:none element",
        False,
    ),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Renderer]:
    yield from browser_for_tests(page_timeout=10.0, concurrency=2)


def test_layout_pixels_are_loads_chromium_makes(browser: Renderer) -> None:
    names = list(CASES)
    renders = browser.render_many([CASES[name][0] for name in names])
    for n, (name, render) in enumerate(zip(names, renders, strict=True), start=1):
        html, shape, requested = CASES[name]
        assert not render.timed_out, name
        shapes = {o.url: o.shape for o in scan_html(html)}
        assert shapes == {url(n): shape}, name
        assert [r.url for r in render.network_requests()] == ([url(n)] if requested else []), name
