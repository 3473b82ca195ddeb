"""guard/engine/css.py's reading of declarations, sizes, hiding and `<style>` rules."""

from __future__ import annotations

import pytest

from guard.engine.css import (
    hides,
    hides_subtree,
    size,
    specificity,
    style_rules,
    tiny,
    weighted_declarations,
)
from guard.engine.timelimit import time_limit


def test_weighted_declarations_follow_the_cascade_within_a_block() -> None:
    assert weighted_declarations("display:none !important; display:block") == {
        "display": ("none", True)
    }
    assert weighted_declarations("display:none ! important;display:block!IMPORTANT") == {
        "display": ("block", True)
    }
    assert weighted_declarations("display:block; DISPLAY : NONE") == {"display": ("none", False)}
    # escapes and comments, as a renderer reads them
    assert weighted_declarations(r"d\isplay: n\6f ne") == {"display": ("none", False)}
    assert weighted_declarations("display:/* x */none") == {"display": ("none", False)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0), ("1px", 1.0), (" 3PX ", 3.0), ("0.75pt", 1.0), ("0", 0.0), ("0%", 0.0),
        ("100%", float("inf")), ("2em", float("inf")), ("auto", None), ("-1px", None),
        ("", None), ("junk", None), (None, None),
    ],
)  # fmt: skip
def test_size(value: str | None, expected: float | None) -> None:
    assert size(value) == expected


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1, 1, True), (1, 3, True), (3, 3, True), (0, None, True), (None, 0, True),
        (600, 0, True), (1, None, True), (None, 2, True),
        (600, 1, False), (1, 600, False), (4, 4, False), (None, None, False),
        (float("inf"), 1, False),
    ],
)  # fmt: skip
def test_tiny(width: float | None, height: float | None, expected: bool) -> None:
    assert tiny(width, height) is expected


@pytest.mark.parametrize(
    ("decl", "own", "subtree"),
    [
        ({"display": "none"}, "display:none", "display:none"),
        ({"visibility": "collapse"}, "visibility:hidden", "visibility:hidden"),
        ({"opacity": "0%"}, "opacity:0", "opacity:0"),
        ({"mso-hide": "all"}, "mso-hide:all", "mso-hide:all"),
        ({"max-height": "0"}, "max-height:0", None),  # the content spills out, visible
        ({"max-height": "0", "overflow": "hidden"}, "max-height:0", "max-height:0"),
        ({"max-width": "0px", "overflow-x": "clip"}, "max-width:0", "max-width:0"),
        ({"height": "0", "overflow": "hidden"}, None, "zero-size"),
        ({"width": "1px", "height": "1px", "overflow": "hidden"}, None, "zero-size"),
        ({"height": "0"}, None, None),
        ({"width": "600px", "height": "1px", "overflow": "hidden"}, None, None),
        ({"position": "absolute", "left": "-9999px"}, "off-screen", None),
    ],
)
def test_hides_and_hides_subtree(
    decl: dict[str, str], own: str | None, subtree: str | None
) -> None:
    assert hides(decl) == own
    assert hides_subtree(decl, own) == subtree


def test_style_rules_outside_at_rules_with_plain_selectors() -> None:
    css = (
        '@charset "utf-8"; @import url(x.css); body{margin:0}'
        " .a, td.b > img , a:hover{display:none !important;background:url(https://t.example/x.gif)}"
        " @media (max-width:600px){.m{display:block!important}} @font-face{src:url(f.woff)}"
        r" .\31 0px img{width:1px} #x\:y{opacity:0} [data-x] img{display:none} *{color:red}"
        " /* .c{display:none} */"
    )
    rules = style_rules(css)
    assert [(r.selector, r.specificity, r.whole_list) for r in rules] == [
        ("body", (0, 0, 1), True),
        (".a", (0, 1, 0), False),
        ("td.b > img", (0, 1, 2), False),
        (r".\31 0px img", (0, 1, 1), True),
        (r"#x\:y", (1, 0, 0), True),
        ("*", (0, 0, 0), True),
    ]
    assert rules[1].declarations == {
        "display": ("none", True),
        "background": ("url(https://t.example/x.gif)", False),
    }
    assert rules[1].urls == ("https://t.example/x.gif",)


def test_specificity() -> None:
    assert specificity("#a .b c") == (1, 1, 1)
    assert specificity("div.a.b > p") == (0, 2, 2)
    assert specificity(r".\2e x") == (0, 1, 0)  # an escaped dot is part of the name


@pytest.mark.parametrize(
    "junk",
    [
        "{" * 200_000,
        "}" * 200_000,
        "@media{" * 100_000,
        "a{" * 100_000,
        ".a " * 100_000 + "{display:none}",
        "\\" * 200_000,
        ".a" + "\\31 " * 100_000 + "{display:none}",
    ],
    ids=["open", "close", "at-rules", "rules", "descendants", "backslashes", "escapes"],
)
def test_style_rules_on_hostile_input_are_linear(junk: str) -> None:
    # A hang guard, not a performance assertion: a backtracking reading would take minutes.
    with time_limit(60):
        style_rules(junk)
