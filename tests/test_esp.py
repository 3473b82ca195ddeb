"""The ESP a message was sent through, from its headers' fingerprints (and only without any, from
the ESP's own tracking URLs), with the evidence; carried through JSON, CSV, text and the store."""

from __future__ import annotations

import csv
import io
import json

from guard.cli.output import csv_text, json_message, text_message
from guard.engine.detect import detect_message
from guard.engine.model import Envelope, Esp, MessageResult, ParsedMessage
from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import header_domains
from guard.mail.store import decode_result, decode_summary, encode

RULES = load_ruleset(include_user=False)

SES_DKIM = (
    "DKIM-Signature",
    "v=1; a=rsa-sha256; c=relaxed/simple;\r\n s=224i4yxa; d=amazonses.com; h=From:To",
)
BRAND_DKIM = ("DKIM-Signature", "v=1; a=rsa-sha256; d=brand.example; s=s1; h=From:To")
SG_DKIM = (
    "DKIM-Signature",
    "v=1; a=rsa-sha256; c=relaxed/relaxed; d=sendgrid.net; s=smtpapi; h=from",
)
SG_RETURN = ("Return-Path", "<bounces+12345-ab12-reader=mail.example@sendgrid.net>")
SG_EID = ("X-SG-EID", "=?us-ascii?Q?ani9f=2FEkEkcxY2fVjWmQeI7N6IUiJJhs9O5Y?=")
KMAIL = ("X-Kmail-Account", "Xyz123")
SENDGRID_OPEN = "https://u1234567.ct.sendgrid.net/wf/open?upn=Q3BkY2x5bS1Ec0VlbTJ2T1l0dWpN"


def esp(headers: tuple[tuple[str, str], ...], html: str = "") -> Esp | None:
    parsed = ParsedMessage(
        headers=(("From", "news@brand.example"), *headers), html_parts=(html,) if html else ()
    )
    return detect_message(parsed, RULES, sender="news@brand.example").esp


def test_dkim_signing_domain_names_the_esp_with_its_evidence() -> None:
    assert esp((BRAND_DKIM, SES_DKIM)) == Esp("amazon-ses", "Amazon SES", ("DKIM d=amazonses.com",))


def test_several_fingerprints_of_one_esp_are_all_evidence_and_carry_no_token() -> None:
    found = esp((SG_RETURN, SG_DKIM, SG_EID))
    assert found is not None and found.service == "sendgrid"
    assert found.evidence == ("Return-Path sendgrid.net", "DKIM d=sendgrid.net", "X-SG-EID")
    assert not any("reader" in e or "ani9f" in e for e in found.evidence)


def test_a_platform_beats_the_relay_that_delivered_it_and_the_relay_is_named() -> None:
    # Klaviyo built the mail (and its tracking); SES only delivered it.
    for headers in ((SES_DKIM, KMAIL), (KMAIL, SES_DKIM)):
        found = esp(headers)
        assert found is not None and found.service == "klaviyo"
        assert found.evidence == ("X-Kmail-Account", "relayed by Amazon SES: DKIM d=amazonses.com")


def test_among_relays_more_fingerprints_win_then_the_first() -> None:
    found = esp((("X-Mailgun-Sid", "WyI4"), SG_DKIM, SG_EID))
    assert found is not None and found.service == "sendgrid"
    found = esp((("X-Mailgun-Sid", "WyI4"), SG_EID))
    assert found is not None and found.service == "mailgun"


def test_a_link_to_an_esps_site_is_no_fingerprint() -> None:
    html = '<a href="https://sendgrid.com/pricing">SendGrid</a> <a href="https://mailchimp.com/">MC</a>'
    assert esp((), html) is None
    found = esp((SES_DKIM,), html)
    assert found is not None and found.service == "amazon-ses"


MC_OPEN = "https://brand.us20.list-manage.com/track/open.php?u=c3a417efc79b0d200f2817567&id=24e27"


def test_a_platforms_own_pixel_beats_the_relay_in_the_headers() -> None:
    # Mailchimp (a platform) built this mail and its pixel; SendGrid (a relay) delivered it.
    found = esp((SG_EID,), f'<img src="{MC_OPEN}" width="1" height="1">')
    assert found == Esp(
        "mailchimp",
        "Mailchimp",
        ("open pixel on brand.us20.list-manage.com", "relayed by SendGrid: X-SG-EID"),
    )
    # A platform's header beats another platform's pixel (a copied newsletter's).
    found = esp((KMAIL,), f'<img src="{MC_OPEN}" width="1" height="1">')
    assert found is not None and found.service == "klaviyo"


def test_the_esps_own_tracking_urls_count_only_without_header_fingerprints() -> None:
    pixel = f'<img src="{SENDGRID_OPEN}" width="1" height="1">'
    assert esp((), pixel) == Esp(
        "sendgrid", "SendGrid", ("open pixel on u1234567.ct.sendgrid.net",)
    )
    found = esp((SES_DKIM,), pixel)
    assert found is not None and found.service == "amazon-ses"


def test_lookalike_domains_name_nobody() -> None:
    headers = (
        ("DKIM-Signature", "v=1; d=amazonses.com.evil.example; s=x"),
        ("Return-Path", "<a@notsendgrid.net>"),
        ("Message-ID", "<abc@xt.local.evil.example>"),
    )
    assert esp(headers) is None


def test_header_domains() -> None:
    assert header_domains("DKIM-Signature", "v=1; a=rsa; d=Mail.Example.; s=k") == ["mail.example"]
    assert header_domains("DKIM-Signature", "v=1; a=rsa; s=k") == []
    assert header_domains("Return-Path", "<b+x=y@bounces.example>") == ["bounces.example"]
    assert header_domains(
        "List-Unsubscribe", "<mailto:u@unsub.example>, <https://list.example/u?x=1>"
    ) == ["unsub.example", "list.example"]


SENT = MessageResult(
    source="inbox/1.eml",
    id="1.eml",
    envelope=Envelope(from_addr="news@brand.example", subject="Hi"),
    esp=Esp("sendgrid", "SendGrid", ("DKIM d=sendgrid.net", "X-SG-EID")),
)


def test_json_csv_and_text_carry_the_esp() -> None:
    doc = json.loads(json_message(SENT))
    assert doc["esp"] == {
        "service": "sendgrid",
        "name": "SendGrid",
        "evidence": ["DKIM d=sendgrid.net", "X-SG-EID"],
    }
    assert json.loads(json_message(MessageResult(source="s", id="i")))["esp"] is None
    (row,) = csv.DictReader(
        io.StringIO("source,id,message_id,from,subject,date,error,esp\n" + csv_text(SENT))
    )
    assert row["esp"] == "SendGrid"
    assert "sent through: SendGrid (DKIM d=sendgrid.net; X-SG-EID)" in text_message(SENT)


def test_the_store_keeps_the_esp_in_the_result_and_the_summary() -> None:
    blob, summary = encode(SENT)
    assert decode_result(blob).esp == SENT.esp
    assert decode_summary(summary, SENT.source, SENT.id).esp == SENT.esp
    blob, summary = encode(MessageResult(source="s", id="i"))
    assert decode_result(blob).esp is None and decode_summary(summary, "s", "i").esp is None


def test_hostile_header_domains_are_bounded() -> None:
    # Longer than a host name can be: no look-up per label (quadratic on a 400,000-label name).
    assert header_domains("DKIM-Signature", "d=" + "a." * 200 + "amazonses.com") == []
    assert len(header_domains("Return-Path", "a@b.example " * 1000)) == 16
    assert esp((("DKIM-Signature", "v=1; d=" + "a." * 400_000 + "amazonses.com; s=x"),)) is None
