"""Detection on small hand-built messages with the real bundled rules."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.clean.message import clean_message
from guard.engine.detect import (
    _TEXT_URL,
    BUILTIN_REMOTE,
    HEURISTIC_PIXEL,
    _text_url_matches,
    detect,
    text_urls,
)
from guard.engine.mime import parse_message
from guard.engine.model import Confidence, Envelope, Finding, Kind, ParsedMessage, Party
from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import RuleSet
from guard.mail.scan import result_for

RULES = load_ruleset(include_user=False)

SENDGRID_OPEN = "https://u1234567.ct.sendgrid.net/wf/open?upn=Q3BkY2x5bS1Ec0VlbTJ2T1l0dWpN"
SENDGRID_CLICK = "https://u1234567.ct.sendgrid.net/ls/click?upn=TpNVgfWNpAHoEcylFkjYi5tCZ2j7xCLw8j9"
GOOGLE = "https://www.google.com/url?q=https://www.example.com/article%3Fid%3D5&source=gmail&ust=1589164930980000&usg=AFQjCNF37p"
SAFE = "https://nam12.safelinks.protection.outlook.com/?url={}&data=05%7C01%7Cx&sdata=AbC%3D&reserved=0"


def msg(html: str = "", text: str = "", headers: tuple[tuple[str, str], ...] = ()) -> ParsedMessage:
    return ParsedMessage(
        headers=(("From", "news@shop.example.com"), *headers),
        html_parts=(html,) if html else (),
        text_parts=(text,) if text else (),
    )


def findings(
    html: str = "", text: str = "", headers: tuple[tuple[str, str], ...] = ()
) -> list[Finding]:
    return list(detect(msg(html, text, headers), RULES))


def of_kind(found: list[Finding], kind: Kind) -> list[Finding]:
    return [f for f in found if f.kind is kind]


def tracking(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.kind is not Kind.REMOTE]


# ---- pixels ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "element"),
    [
        (f'<img src="{SENDGRID_OPEN}" width="1" height="1" alt="">', "img[src]"),
        (
            f'<img src="{SENDGRID_OPEN}" width="600" height="300">',
            "img[src]",
        ),  # shape is irrelevant
        (f"<div style=\"background-image:url('{SENDGRID_OPEN}')\">x</div>", "div[style] url()"),
        (
            f"<html><head><style>.x{{background:url({SENDGRID_OPEN})}}</style></head><body>x</body></html>",
            "<style> url()",
        ),
        (f'<table><tr><td background="{SENDGRID_OPEN}">x</td></tr></table>', "td[background]"),
    ],
)
def test_known_pixel_wherever_it_is_loaded(html: str, element: str) -> None:
    found = findings(html)
    assert len(found) == 1, found
    [f] = found
    assert f.kind is Kind.PIXEL
    assert f.confidence is Confidence.KNOWN
    assert f.tracker == "SendGrid"
    assert f.category == "esp"
    assert f.rule.startswith("sendgrid.")
    assert f.url == SENDGRID_OPEN
    assert f.host == "u1234567.ct.sendgrid.net"
    assert f.element == element
    assert f.destination is None and f.params == ()


def test_heuristic_pixel_on_unknown_host() -> None:
    [f] = findings(
        '<img src="https://t.unknown-mailer.example/o.gif?r=8f3a2b" width="1" height="1">'
    )
    assert f.kind is Kind.PIXEL
    assert f.confidence is Confidence.HEURISTIC
    assert f.rule == HEURISTIC_PIXEL
    assert f.tracker is None and f.category is None
    assert f.host == "t.unknown-mailer.example"
    assert f.element is not None and f.element.startswith("img[src]") and "tiny" in f.element


def test_heuristic_pixel_hidden_by_css() -> None:
    [f] = findings('<img src="https://t.unknown-mailer.example/b?x=1" style="display:none">')
    assert (f.kind, f.confidence) == (Kind.PIXEL, Confidence.HEURISTIC)
    assert f.element is not None and "display:none" in f.element


def test_heuristic_pixel_on_a_known_service_host_is_attributed() -> None:
    [f] = findings(
        '<img src="https://u1234567.ct.sendgrid.net/mpss/o/abc.gif" width="1" height="1">'
    )
    assert (f.kind, f.confidence, f.tracker) == (Kind.PIXEL, Confidence.HEURISTIC, "SendGrid")


def test_ordinary_remote_image_is_a_remote_load_not_tracking() -> None:
    [f] = findings('<img src="https://cdn.unknown-shop.example/hero.jpg" width="600" height="300">')
    assert f.kind is Kind.REMOTE
    assert f.rule == BUILTIN_REMOTE
    assert f.tracker is None
    assert f.element == "img[src]"


def test_spacer_without_query_is_not_a_pixel() -> None:
    found = findings(
        '<img src="https://www.shop.example.com/images/spacer.gif" width="1" height="1">'
    )
    assert of_kind(found, Kind.PIXEL) == []
    assert tracking(found) == []
    [f] = found
    assert f.kind is Kind.REMOTE and f.tracker == "Layout spacer"


def test_spacer_with_a_token_query_is_a_pixel() -> None:
    [f] = findings(
        '<img src="https://www.shop.example.com/images/spacer.gif?u=8823&m=ab12cd" '
        'width="1" height="1">'
    )
    assert f.kind is Kind.PIXEL
    assert f.confidence is Confidence.HEURISTIC


@pytest.mark.parametrize(
    "html",
    [
        '<img src="cid:logo@shop.example.com" width="1" height="1">',
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="1" height="1">',
        '<a href="mailto:help@shop.example.com">mail</a><a href="tel:+123">call</a>'
        '<a href="#top">top</a>',
        '<img src="images/relative.gif" width="1" height="1">',
        "<p>no references at all</p>",
    ],
)
def test_non_http_references_yield_nothing(html: str) -> None:
    assert findings(html) == []


def test_same_url_twice_is_one_finding() -> None:
    html = (
        f'<img src="{SENDGRID_OPEN}" width="1" height="1"><img src="{SENDGRID_OPEN}">'
        f'<div style="background:url({SENDGRID_OPEN})"></div>'
        f'<a href="{GOOGLE}">a</a><a href="{GOOGLE}">b</a>'
    )
    found = findings(html, text=f"again {GOOGLE}")
    assert [(f.kind, f.url) for f in found] == [(Kind.PIXEL, SENDGRID_OPEN), (Kind.LINK, GOOGLE)]
    assert found[0].element == "img[src]"  # the first evidence is kept


def test_same_url_in_two_html_parts_is_one_finding() -> None:
    parsed = ParsedMessage(
        headers=(),
        html_parts=(f'<img src="{SENDGRID_OPEN}">', f'<img src="{SENDGRID_OPEN}">'),
    )
    assert len(detect(parsed, RULES)) == 1


# ---- links -------------------------------------------------------------------------------------


def test_google_redirect_is_decoded() -> None:
    [f] = findings(f'<a href="{GOOGLE}">article</a>')
    assert f.kind is Kind.LINK
    assert f.confidence is Confidence.KNOWN
    assert f.tracker == "Google redirect"
    assert f.destination == "https://www.example.com/article?id=5"
    assert f.element == "a[href]"
    assert f.host == "www.google.com"


def test_safe_links_is_decoded() -> None:
    wrapped = SAFE.format(quote("https://www.example.com/report?id=7", safe=""))
    [f] = findings(f'<a href="{wrapped}">report</a>')
    assert f.kind is Kind.LINK
    assert f.tracker == "Microsoft Safe Links"
    assert f.destination == "https://www.example.com/report?id=7"


def test_nested_safe_links_around_google_gives_the_innermost_destination() -> None:
    wrapped = SAFE.format(quote(GOOGLE, safe=""))
    [f] = findings(f'<a href="{wrapped}">x</a>')
    assert f.kind is Kind.LINK
    assert f.tracker == "Microsoft Safe Links"  # named after the outermost wrapper
    assert f.destination == "https://www.example.com/article?id=5"


def test_opaque_wrapper_has_no_destination() -> None:
    [f] = findings(f'<a href="{SENDGRID_CLICK}">x</a>')
    assert f.kind is Kind.LINK
    assert f.tracker == "SendGrid"
    assert f.destination is None


def test_undecodable_wrapper_target_is_opaque() -> None:
    [f] = findings('<a href="https://www.google.com/url?q=not-a-url&sa=D">x</a>')
    assert f.kind is Kind.LINK and f.tracker == "Google redirect"
    assert f.destination is None


def test_plain_link_is_not_a_finding() -> None:
    assert findings('<a href="https://www.example.com/about?id=3">about</a>') == []


def test_wrapper_urls_in_area_and_vml_buttons() -> None:
    html = (
        f'<map><area href="{GOOGLE}"></map>'
        f'<!--[if mso]><v:roundrect href="{SENDGRID_CLICK}"></v:roundrect><![endif]-->'
    )
    found = findings(html)
    assert sorted((f.element, f.tracker) for f in found if f.kind is Kind.LINK) == [
        ("<!--[if mso]> v:roundrect[href]", "SendGrid"),
        ("area[href]", "Google redirect"),
    ]


# ---- tracking parameters -----------------------------------------------------------------------


def test_tracking_params_on_a_plain_link() -> None:
    url = "https://shop.example.com/p?utm_source=nl&id=3&utm_medium=email&mc_eid=abc&utm_campaign=x"
    found = findings(f'<a href="{url}">p</a>')
    assert of_kind(found, Kind.LINK) == []
    params = {f.tracker: f for f in of_kind(found, Kind.PARAM)}
    assert set(params) == {"UTM campaign parameters", "Mailchimp"}
    utm = params["UTM campaign parameters"]
    assert utm.params == ("utm_campaign", "utm_medium", "utm_source")  # sorted, `id` not listed
    assert utm.url == url
    assert utm.confidence is Confidence.KNOWN
    assert utm.element == "a[href]"
    assert params["Mailchimp"].params == ("mc_eid",)


def test_tracking_params_on_a_decoded_destination() -> None:
    target = "https://www.example.com/sale?utm_source=newsletter&ref=7&utm_medium=email"
    wrapped = "https://www.google.com/url?q=" + quote(target, safe="") + "&source=gmail&usg=AFQ"
    found = findings(f'<a href="{wrapped}">sale</a>')
    [link] = of_kind(found, Kind.LINK)
    assert link.destination == target
    [param] = of_kind(found, Kind.PARAM)
    assert param.url == target
    assert param.host == "www.example.com"
    assert param.params == ("utm_medium", "utm_source")


def test_params_on_the_wrapper_itself_are_not_reported() -> None:
    # `source`/`usg` belong to the wrapper; the destination has none.
    found = findings(
        '<a href="https://www.google.com/url?q=https://example.com/x&utm_source=g">x</a>'
    )
    assert of_kind(found, Kind.PARAM) == []


def test_no_params_no_param_finding() -> None:
    assert findings('<a href="https://shop.example.com/p?utmost=1&source=x">p</a>') == []


# ---- plain text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("See https://example.com/a.", ["https://example.com/a"]),
        ("See https://example.com/a, then", ["https://example.com/a"]),
        ("(see https://example.com/a)", ["https://example.com/a"]),
        ("(see https://example.com/a).", ["https://example.com/a"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar)!", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("<https://example.com/x?y=1>", ["https://example.com/x?y=1"]),
        ('"https://example.com/q"', ["https://example.com/q"]),
        (
            "HTTP://EXAMPLE.COM/up and http://b.example/",
            ["HTTP://EXAMPLE.COM/up", "http://b.example/"],
        ),
        ("no url here, just http: and https:// alone", []),
    ],
)
def test_text_urls(text: str, urls: list[str]) -> None:
    assert list(text_urls(text)) == urls


def _text_urls_by_definition(text: str) -> list[str]:
    """text_urls as first written: strip trailing punctuation one character at a time, keeping a
    `)` while the URL has as many `(` (quadratic on a long run of brackets)."""
    out = []
    for m in re.finditer(r"https?://[^\s<>\"'\x00-\x1f\x7f]+", text, re.I):
        url = m.group(0)
        while url and url[-1] in ".,;:!?)]}'\"":
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        out.append(url)
    return out


_TEXT_PIECES = ["http://", "https://", "a", "/", "(", ")", ".", ",", "!", "?", "]", "}", "'", '"',
                " ", "((", "))", ")."]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_TEXT_PIECES), max_size=16))
def test_text_urls_trailing_brackets(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert list(text_urls(text)) == _text_urls_by_definition(text)


def test_text_urls_a_long_run_of_brackets() -> None:
    # Linear: the definition above takes minutes on this.
    assert list(text_urls("http://a" + ")" * 200_000 + " http://b(" + ")" * 50_000)) == [
        "http://a",
        "http://b()",
    ]


def test_links_and_params_in_text_plain() -> None:
    text = (
        f"Read it: {GOOGLE}.\n"
        "Shop (https://shop.example.com/?utm_source=mail&x=1) now!\n"
        "Pixel-like https://u1.ct.sendgrid.net/wf/open?upn=abc is a link here, not a load.\n"
    )
    found = findings(text=text)
    [link] = [f for f in of_kind(found, Kind.LINK) if f.tracker == "Google redirect"]
    assert link.url == GOOGLE
    assert link.destination == "https://www.example.com/article?id=5"
    assert link.element == "text/plain"
    [param] = of_kind(found, Kind.PARAM)
    assert param.url == "https://shop.example.com/?utm_source=mail&x=1"
    assert param.params == ("utm_source",)
    assert of_kind(found, Kind.PIXEL) == []
    assert of_kind(found, Kind.REMOTE) == []


# ---- receipts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Disposition-Notification-To", "disposition-notification-to", "DISPOSITION-NOTIFICATION-TO"],
)
def test_receipt_header_any_case(name: str) -> None:
    [f] = findings(headers=((name, "Alice\n <alice@example.org>"),))
    assert f.kind is Kind.RECEIPT
    assert f.confidence is Confidence.KNOWN
    assert f.tracker == "Read receipt request"
    assert f.header == "Disposition-Notification-To"
    assert f.value == "Alice <alice@example.org>"
    assert f.url is None and f.host is None


def test_several_receipt_headers() -> None:
    found = findings(
        headers=(("Return-Receipt-To", "a@example.org"), ("X-Confirm-Reading-To", "b@example.org"))
    )
    assert sorted((f.header, f.value) for f in found) == [
        ("Return-Receipt-To", "a@example.org"),
        ("X-Confirm-Reading-To", "b@example.org"),
    ]


def test_headers_that_only_look_like_receipts() -> None:
    found = findings(
        headers=(
            (
                "Disposition-Notification-Options",
                "signed-receipt-protocol=optional,pkcs7-signature",
            ),
            ("Return-Path", "<bounce@example.org>"),
            ("Subject", "Disposition-Notification-To: me"),
        )
    )
    assert found == []


# ---- attribution and determinism ---------------------------------------------------------------


def test_party_attribution_by_registrable_domain() -> None:
    html = (
        '<img src="https://links.brand.com/wf/open?upn=u001.abc" width="1" height="1">'
        f'<img src="{SENDGRID_OPEN}" width="1" height="1">'
        '<img src="https://img.cdn.brand.com/hero.jpg" width="600" height="300">'
        '<img src="https://brand.com.evil.net/x.jpg" width="600" height="300">'
    )
    parsed = ParsedMessage(
        headers=(("From", "News <news@mail.brand.com>"), ("Return-Receipt-To", "news@brand.com")),
        html_parts=(html,),
    )
    result = result_for(parsed, Envelope(from_addr="news@mail.brand.com"), "m.eml", "m.eml", RULES)
    by_url = {f.url: f for f in result.findings if f.url}
    branded = by_url["https://links.brand.com/wf/open?upn=u001.abc"]
    assert branded.kind is Kind.PIXEL and branded.tracker == "SendGrid"
    assert branded.party is Party.FIRST
    assert by_url[SENDGRID_OPEN].party is Party.THIRD
    assert by_url["https://img.cdn.brand.com/hero.jpg"].party is Party.FIRST
    assert by_url["https://brand.com.evil.net/x.jpg"].party is Party.THIRD
    [receipt] = [f for f in result.findings if f.kind is Kind.RECEIPT]
    assert receipt.party is None
    assert result.tracking
    assert (result.count(Kind.PIXEL), result.count(Kind.RECEIPT)) == (2, 1)


def test_party_with_multi_label_public_suffix_and_no_sender() -> None:
    parsed = msg('<img src="https://t.shop.co.uk/o.gif?x=1" width="1" height="1">')
    same = result_for(parsed, Envelope(from_addr="a@news.shop.co.uk"), "s", "1", RULES)
    assert same.findings[0].party is Party.FIRST
    other = result_for(parsed, Envelope(from_addr="a@other.co.uk"), "s", "1", RULES)
    assert other.findings[0].party is Party.THIRD
    nobody = result_for(parsed, Envelope(), "s", "1", RULES)
    assert nobody.findings[0].party is Party.THIRD


def test_remote_loads_alone_are_not_tracking() -> None:
    parsed = msg(
        '<img src="https://cdn.unknown-shop.example/hero.jpg"><link rel="stylesheet" href="https://cdn.unknown-shop.example/s.css">'
    )
    result = result_for(parsed, Envelope(from_addr="a@unknown-shop.example"), "s", "1", RULES)
    assert [f.kind for f in result.findings] == [Kind.REMOTE, Kind.REMOTE]
    assert not result.tracking


def test_detect_is_deterministic() -> None:
    html = (
        f'<img src="{SENDGRID_OPEN}"><a href="{GOOGLE}">x</a>'
        '<a href="https://shop.example.com/?utm_source=a&mc_cid=1">y</a>'
        '<img src="https://t.unknown-mailer.example/o.gif" width="1" height="1">'
    )
    parsed = msg(html, headers=(("Disposition-Notification-To", "a@example.org"),))
    first = detect(parsed, RULES)
    assert first == detect(parsed, RULES)
    assert {f.kind for f in first} == {Kind.PIXEL, Kind.LINK, Kind.PARAM, Kind.RECEIPT}


# -- the ESP behind a branded tracking domain, named from the headers ------------------------------

SG_EID = ("X-SG-EID", "=?us-ascii?Q?ani9f=2FEkEkcxY2fVjWmQeI7N6IUiJJhs9O5Y?=")
BRANDED_BEACON = '<img src="https://click.brand.example/o/Zk9xQ2VrT1pM" width="1" height="1">'


def beacons(headers: tuple[tuple[str, str], ...], html: str = BRANDED_BEACON) -> list[Finding]:
    found = detect(msg(html, headers=headers), RULES, sender="news@brand.example")
    return of_kind(list(found), Kind.PIXEL)


def test_beacon_on_the_senders_domain_is_named_after_the_esp_in_the_headers() -> None:
    (pixel,) = beacons((SG_EID,))
    assert (pixel.tracker, pixel.category, pixel.via) == ("SendGrid", "esp", "sendgrid.sent-via")
    assert pixel.rule == HEURISTIC_PIXEL and pixel.confidence is Confidence.HEURISTIC
    assert pixel.party is Party.FIRST


def test_without_the_header_the_branded_beacon_stays_unnamed() -> None:
    (pixel,) = beacons(())
    assert pixel.tracker is None and pixel.via is None


def test_a_third_partys_beacon_is_not_put_on_the_esp() -> None:
    html = '<img src="https://px.unknown-adnet.example/b.gif?u=93jd8" width="1" height="1">'
    (pixel,) = beacons((SG_EID,), html)
    assert pixel.tracker is None and pixel.via is None


def test_a_beacon_a_rule_names_keeps_its_own_service() -> None:
    (pixel,) = beacons(
        (SG_EID,),
        f'<img src="{SENDGRID_OPEN.replace("u1234567.ct.sendgrid.net", "click.brand.example")}">',
    )
    assert pixel.tracker == "SendGrid" and pixel.via is None  # named by the path shape


def test_the_platform_that_built_the_mail_wins_over_its_relay() -> None:
    # Klaviyo hands its mail to SendGrid, which stamps X-SG-EID too: the beacon is Klaviyo's.
    kmail = ("X-Kmail-Account", "Xyz123")
    for headers in ((SG_EID, kmail), (kmail, SG_EID)):
        (pixel,) = beacons(headers)
        assert (pixel.tracker, pixel.via) == ("Klaviyo", "klaviyo.sent-via")
    (pixel,) = beacons((("X-Mailgun-Sid", "WyI4"), SG_EID))  # two relays: the first one
    assert pixel.via == "mailgun.sent-via"


# ---- tracking-only hosts and precedence (rules/README.md, "Precedence") -------------------------

# Without the tracking-only flags: the rule set as it was before hosts could be marked.
PATH_RULES_ONLY = RuleSet(
    services=RULES.services,
    rules=[dataclasses.replace(r, tracking_only=False) for r in RULES.rules],
    version="path-rules-only",
)
# Yesware's open beacon with a token its path rule (hex tokens) did not foresee, named like the
# generic layout spacer: the first example.
YESWARE_SPACER = "https://t.yesware.com/t/9753ac6e-46810c88-c008a539/c01311ad-c69f53dd/spacer.gif"
# Mixmax's tracking host with a path shape its open rule (/api/track/) does not know.
MIXMAX_NEW_SHAPE = "https://track.mixmax.com/v2/o/5f1e2d3c4b5a.png?rid=77"


def _only(found: list[Finding], url: str) -> Finding:
    hits = [f for f in found if f.url == url]
    assert len(hits) == 1, hits
    return hits[0]


def test_layout_spacer_rule_no_longer_exempts_a_pixel_on_a_tracking_only_host() -> None:
    html = f'<img src="{YESWARE_SPACER}" width="1" height="1" alt="">'
    before = _only(list(detect(msg(html), PATH_RULES_ONLY)), YESWARE_SPACER)
    # 1x1, yet no pixel: the layout rule exempted it from the shape heuristic.
    assert before.kind is Kind.REMOTE and before.rule != HEURISTIC_PIXEL
    after = _only(findings(html), YESWARE_SPACER)
    assert (after.kind, after.confidence) == (Kind.PIXEL, Confidence.KNOWN)
    assert after.rule == "yesware.tracking-hosts" and after.tracker == "Yesware"


def test_named_trackers_pixel_with_an_unforeseen_path_is_a_pixel_whatever_its_size() -> None:
    html = f'<img src="{MIXMAX_NEW_SHAPE}" width="600" height="200">'
    before = _only(list(detect(msg(html), PATH_RULES_ONLY)), MIXMAX_NEW_SHAPE)
    # The tracker is named, yet the beacon was counted as a plain remote load.
    assert before.kind is Kind.REMOTE and before.tracker == "Mixmax"
    after = _only(findings(html), MIXMAX_NEW_SHAPE)
    assert (after.kind, after.confidence, after.tracker) == (Kind.PIXEL, Confidence.KNOWN, "Mixmax")
    # Also where the load is CSS, not an <img>.
    css = f"<div style=\"background:url('{MIXMAX_NEW_SHAPE}')\">x</div>"
    assert _only(findings(css), MIXMAX_NEW_SHAPE).kind is Kind.PIXEL


def test_host_rule_first_then_tracking_only_then_the_hosts_own_path_rule_keeps_its_id() -> None:
    known = "https://t.yesware.com/t/9753ac6e46810c884c8c008a53991032923afab3/c01311adc69f53dd4f8cbe6cf718b64b/spacer.gif"
    found = _only(findings(f'<img src="{known}" width="0" height="0">'), known)
    assert found.rule == "yesware.open"


def test_spacer_on_a_host_that_also_serves_content_stays_exempt() -> None:
    # Campaign Monitor's image CDN (createsend1.com) serves the newsletter's own images: it has
    # a host rule for attribution, not a tracking-only one, so the layout rule still applies.
    cdn = "https://na.createsend1.com/ei/r/2E/ABC/spacer.gif"
    found = _only(findings(f'<img src="{cdn}" width="1" height="1">'), cdn)
    assert found.kind is Kind.REMOTE and found.tracker == "Campaign Monitor"
    # A tiny image there without a spacer name is still a heuristic pixel.
    tiny = "https://na.createsend1.com/ei/r/2E/ABC/dot.png"
    found = _only(findings(f'<img src="{tiny}" width="1" height="1">'), tiny)
    assert (found.kind, found.rule) == (Kind.PIXEL, HEURISTIC_PIXEL)


def test_links_through_tracking_only_hosts_unwrap_where_decodable_else_opaque() -> None:
    new_shape = "https://t.yesware.com/tz/abc123/def456?r=1"
    before = [f for f in detect(msg(f'<a href="{new_shape}">x</a>'), PATH_RULES_ONLY)]
    assert not of_kind(before, Kind.LINK)
    link = _only(findings(f'<a href="{new_shape}">x</a>'), new_shape)
    assert (link.kind, link.rule, link.destination) == (Kind.LINK, "yesware.tracking-hosts", None)
    # A shape a decode rule knows on the same host still unwraps.
    target = "https://www.example.com/pricing?id=4"
    decodable = f"https://t.yesware.com/tl/aa11/bb22/cc33?ytl={quote(target, safe='')}"
    link = _only(findings(f'<a href="{decodable}">x</a>'), decodable)
    assert (link.kind, link.rule, link.destination) == (Kind.LINK, "yesware.click", target)
    # In plain text too.
    found = findings(text=f"See {new_shape} now")
    assert _only(found, new_shape).kind is Kind.LINK


def test_pixels_and_links_on_tracking_only_hosts_are_cleaned_like_any_trackers() -> None:
    new_shape = "https://t.yesware.com/tz/abc123/def456?r=1"
    raw = (
        textwrap.dedent(
            """\
            From: Sales <rep@shop.example.com>
            To: reader@example.org
            Subject: Hi
            Message-ID: <m1@shop.example.com>
            MIME-Version: 1.0
            Content-Type: text/html; charset=utf-8

            """
        )
        + f'<p>Hi <a href="{new_shape}">our offer</a></p>'
        + f'<img src="{YESWARE_SPACER}" width="1" height="1">'
        + f'<img src="{MIXMAX_NEW_SHAPE}" width="600" height="200">'
    ).encode()
    result = clean_message(raw, RULES)
    html = parse_message(result.data)[0].html_parts[0]
    assert YESWARE_SPACER not in html and MIXMAX_NEW_SHAPE not in html
    assert result.removed.get("pixel") == 2
    assert {"yesware.tracking-hosts", "mixmax.tracking-hosts"} <= set(result.rules)
    # The opaque wrapped link stays clickable (its target is unknown) and is reported.
    assert new_shape in html and result.opaque_links == (new_shape,)
    # Before the flags, both beacons stayed in the cleaned message.
    kept = parse_message(clean_message(raw, PATH_RULES_ONLY).data)[0].html_parts[0]
    assert YESWARE_SPACER in kept and MIXMAX_NEW_SHAPE in kept


def test_explain_says_the_host_serves_only_tracking() -> None:
    from guard.engine.explain import explain_finding

    found = _only(findings(f'<img src="{MIXMAX_NEW_SHAPE}">'), MIXMAX_NEW_SHAPE)
    text = "\n".join(explain_finding(found, RULES))
    assert "mixmax.tracking-hosts" in text and "serves only tracking" in text


@pytest.mark.parametrize(
    ("src", "exempt"),
    [
        ("https://cdn.example.com/newsletters/2024-spring-collection/spacer.gif", True),
        ("https://www.shop.example.com/img/blank.gif", True),
        # A token that could identify the reader: the shape heuristic wins over the layout rule.
        ("https://t.example.net/o/eyJ1IjoiMTIzNDUiLCJtIjo5OX0/spacer.gif", False),
        ("https://t.example.net/p/0b7e2c1a-4d3f-4e5a-9b8c-7d6e5f4a3b2c/blank.gif", False),
        ("https://t.example.net/p/9753ac6e46810c884c8c008a5399/spacer.gif", False),
        ("https://cdn.example.com/img/spacer.gif?r=1234", False),
    ],
)
def test_generic_layout_rule_exempts_a_tiny_image_only_when_nothing_identifies_the_reader(
    src: str, exempt: bool
) -> None:
    found = _only(findings(f'<img src="{src}" width="1" height="1">'), src)
    assert found.kind is (Kind.REMOTE if exempt else Kind.PIXEL)
    if not exempt:
        assert found.rule == HEURISTIC_PIXEL


def test_rules_list_json_shows_which_hosts_are_tracking_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from guard.cli.main import main

    assert main(["rules", "list", "--format", "json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["yesware.tracking-hosts"]["tracking_only"] is True
    assert rows["sendgrid.hosts"]["tracking_only"] is False


# Pieces that make and break the pattern: both cases, `ſ` (IGNORECASE reads it as `s`), `://`
# close together and inside URLs, what ends a URL.
_URL_PIECES = st.sampled_from(
    ["http", "https", "HTTPS", "hTtP", "httpſ", "://", ":", "/", "s", " ", "\n", "a", "é", "€",
     "<", ".", ")", "x://", "htt", "\x00", "\u3000", "ps://"]
)  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(st.lists(_URL_PIECES | st.text(max_size=3), max_size=14).map("".join))
def test_text_urls_are_found_where_finditer_finds_them(text: str) -> None:
    assert [m.span() for m in _text_url_matches(text)] == [
        m.span() for m in _TEXT_URL.finditer(text)
    ]
