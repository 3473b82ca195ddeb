"""The cleaning planner (guard.clean.message): every sample and vector, encodings, headers,
idempotence."""

from __future__ import annotations

import codecs
import email
import email.policy
import html
import re
import textwrap
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from manifest import SECURITY_WRAPPERS, removed_by, without_params

from guard.clean.headers import HeaderEdit
from guard.clean.html import LoadAction, RewriteUnsafe
from guard.clean.message import (
    X_GUARD,
    CleanResult,
    Policy,
    clean_message,
    decide_link,
    drop_params,
    rewrite_text,
    x_guard_value,
)
from guard.engine.css import css_urls, strip_css_urls
from guard.engine.detect import TextUrls, detect, text_urls
from guard.engine.html import kept
from guard.engine.limits import Limits
from guard.engine.mime import checked_split, decoded_text, parse_message, text_parts
from guard.engine.mimetree import Part, split
from guard.engine.model import Confidence, Finding, Kind
from guard.engine.rules_load import load_ruleset
from guard.engine.urls import parse_http
from guard.mail.files import MessageRef, message_refs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MANIFEST = tomllib.loads((SAMPLES / "manifest.toml").read_text(encoding="utf-8"))["message"]
RULES = load_ruleset(include_user=False)
SECURITY = "security-wrapper"

OPEN = "https://u1.ct.sendgrid.net/wf/open?upn=abc"
GOOGLE = "https://www.google.com/url?q=https://www.example.com/p%3Futm_source%3Dnl%26id%3D1&sa=D"
GOOGLE_TARGET = "https://www.example.com/p?id=1"
SAFE = (
    "https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.example.com%2Freport"
    "%3Fid%3D7&data=05%7C01%7C&sdata=AbC&reserved=0"
)
UTM = "https://shop.example.com/sale?utm_source=news&utm_medium=email&id=9#top"


def _refs() -> dict[str, MessageRef]:
    prefix = str(SAMPLES) + "/"
    return {ref.source.removeprefix(prefix): ref for ref in message_refs(str(SAMPLES))}


REFS = _refs()
SOURCES = [m["source"] for m in MANIFEST]


def findings_of(raw: bytes) -> tuple[Finding, ...]:
    parsed, envelope = parse_message(raw)
    return detect(parsed, RULES, sender=envelope.from_addr)


def message(headers: str, body: str, *, ctype: str = "text/html; charset=utf-8") -> bytes:
    head = textwrap.dedent(headers).strip("\n")
    return (f"{head}\nMIME-Version: 1.0\nContent-Type: {ctype}\n\n{textwrap.dedent(body)}").encode()


HEAD = """\
    From: Shop <news@shop.example.com>
    To: reader@example.org
    Subject: Sale
    Message-ID: <m1@shop.example.com>
"""


def leaves(raw: bytes) -> list[Part]:
    return [p for p in split(raw).walk() if not p.children]


def x_guard_fields(raw: bytes) -> list[str]:
    return [v for k, v in split(raw).headers if k.lower() == X_GUARD.lower()]


# ---- every sample --------------------------------------------------------------------------------


def _clean_sample(source: str, policy: Policy) -> tuple[bytes, CleanResult]:
    raw = REFS[source].read()
    return raw, clean_message(raw, RULES, policy)


def _known_charset(label: str | None) -> bool:
    try:
        codecs.lookup(label or "ascii")
    except LookupError:
        return False  # a sample's own unknown label; guard leaves labels it did not change
    return True


def _leftover_tracking(findings: tuple[Finding, ...], strict: bool) -> list[Finding]:
    security_targets = {
        f.destination for f in findings if f.kind is Kind.LINK and f.category == SECURITY
    }
    bad = []
    for f in findings:
        if (
            f.kind in (Kind.PIXEL, Kind.RECEIPT)
            or (f.kind is Kind.LINK and f.destination and f.category != SECURITY)
            or (f.kind is Kind.PARAM and f.url not in security_targets)
            or (strict and f.kind is Kind.REMOTE)
        ):
            bad.append(f)
    return bad


def _stdlib_text(raw: bytes, subtype: str | None = None) -> str:
    """Every text part (or those of one subtype) of `raw` as the standard library decodes it (not
    guard's parser), HTML entities resolved: where the manifest's URLs are looked for."""
    out = []
    for part in email.message_from_bytes(raw, policy=email.policy.default).walk():
        if part.get_content_maintype() != "text":
            continue
        if subtype is not None and part.get_content_subtype() != subtype:
            continue
        if _known_charset(part.get_content_charset()):
            text = part.get_content()
        else:
            text = (part.get_payload(decode=True) or b"").decode("latin-1")
        out.append(html.unescape(text) if part.get_content_subtype() == "html" else text)
    return "\n".join(out)


def _occurs(needle: str, text: str) -> bool:
    """`needle` is written in `text` as a whole URL (what follows it ends a URL), not as the
    start of a longer one (a `<base href>` prefixing the links made absolute)."""
    return re.search(re.escape(needle) + r"""(?=["'\s)<>,\\]|$)""", text) is not None


def _written_as(url: str, text: str) -> str | None:
    """How the manifest's absolute `url` is written in the message: whole, protocol-relative,
    as a path under a `<base href>`, or as a file name under an applet's `codebase`."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    forms = (url, url.split(":", 1)[1], path, path.rsplit("/", 1)[-1])
    return next((form for form in forms if form and _occurs(form, text)), None)


def _receipt_headers(raw: bytes) -> set[str]:
    names = email.message_from_bytes(raw, policy=email.policy.compat32).keys()
    return {name.lower() for name in names}


def test_the_manifests_security_wrappers_are_the_rules_security_wrappers() -> None:
    """SECURITY_WRAPPERS (what cleaning keeps) names every security wrapper the samples carry."""
    named = {
        f.get("tracker") for m in MANIFEST for f in m.get("finding", []) if f["kind"] == "link"
    }
    security = {s.name for s in RULES.services.values() if s.category == SECURITY}
    assert named & security == SECURITY_WRAPPERS


@pytest.mark.parametrize("policy_name", ["default", "strict"])
@pytest.mark.parametrize("source", SOURCES)
def test_sample_cleans_completely(source: str, policy_name: str) -> None:
    """What must go and what must stay comes from the manifest (written from how each sample was
    built) and the policy's definition, never from guard's own detect(): a load the scan missed
    would otherwise be expected to stay. Each URL is looked for in the text the standard library
    decodes, before and after."""
    entry = next(m for m in MANIFEST if m["source"] == source)
    raw, result = _clean_sample(source, Policy(policy_name))
    assert result.skipped is None, result.skipped
    before, after = _stdlib_text(raw), _stdlib_text(result.data)
    goes = removed_by(entry, policy_name)
    targets = {f["destination"] for f in entry.get("finding", []) if "destination" in f}
    params = {f["url"]: f["params"] for f in entry.get("finding", []) if f["kind"] == "param"}
    problems = []
    for f in entry.get("finding", []):
        if f["kind"] == "receipt":
            assert f["header"].lower() in _receipt_headers(raw), f["header"]
            if f["header"].lower() in _receipt_headers(result.data):
                problems.append(f"receipt header left: {f['header']}")
            continue
        url = f["url"]
        written = _written_as(url, before)
        if written is None:
            # Only a wrapped link's target may be absent as written: the wrapper carries it encoded.
            assert url in targets, f"{f['kind']} {url} is not in the message as the manifest says"
            if f in goes and _occurs(url, after):
                problems.append(f"{f['kind']} left: {url}")
            continue
        if f in goes and _occurs(written, after):
            problems.append(f"{f['kind']} left: {url}")
        elif f not in goes and not _occurs(written, after):
            problems.append(f"{f['kind']} lost (the policy keeps it): {url}")
        if f in goes and f["kind"] == "link":
            target = without_params(f["destination"], params.get(f["destination"], ()))
            if not _occurs(target, after):
                problems.append(f"unwrapped link's target missing: {target}")
        if f in goes and f["kind"] == "param":
            stripped = without_params(url, f["params"])
            if not _occurs(stripped, after):
                problems.append(f"link without its parameters missing: {stripped}")
    assert not problems, f"{source} ({policy_name}):\n  " + "\n  ".join(problems)
    assert result.changed is bool(goes)
    # guard's own scan of the cleaned copy agrees: nothing left that this policy removes.
    assert _leftover_tracking(findings_of(result.data), policy_name == "strict") == []
    if not result.changed:
        assert result.data is raw or result.data == raw
        assert result.removed == {}
        return
    # Still a message, to guard's parser and to the standard library's.
    parse_message(result.data)
    stdlib = email.message_from_bytes(result.data, policy=email.policy.default)
    original = email.message_from_bytes(raw, policy=email.policy.default)
    assert [p.get_content_type() for p in stdlib.walk()] == [
        p.get_content_type() for p in original.walk()
    ]
    for part in stdlib.walk():
        if part.get_content_maintype() == "text" and _known_charset(part.get_content_charset()):
            part.get_content()  # decodes with its (possibly new) charset and encoding
    # X-Guard: exactly one, ours.
    assert len(x_guard_fields(result.data)) == 1
    assert "cleaned;" in x_guard_fields(result.data)[0]


@pytest.mark.parametrize("source", SOURCES)
def test_sample_keeps_opaque_and_security_links(source: str) -> None:
    raw, result = _clean_sample(source, Policy())
    assert result.skipped is None, result.skipped
    before = findings_of(raw)
    after_urls = {f.url for f in findings_of(result.data) if f.kind is Kind.LINK}
    for f in before:
        if f.kind is not Kind.LINK:
            continue
        if f.category == SECURITY:
            assert f.url in after_urls, f"security-wrapped link lost: {f.url}"
            assert f.url in result.security_links_kept
        elif f.destination is None:
            assert f.url in after_urls, f"opaque link lost: {f.url}"
            assert f.url in result.opaque_links


@pytest.mark.parametrize("source", SOURCES)
def test_sample_untouched_parts_are_byte_identical(source: str) -> None:
    raw, result = _clean_sample(source, Policy("strict"))
    if not result.changed:
        return
    old, new = leaves(raw), leaves(result.data)
    assert [p.content_type for p in old] == [p.content_type for p in new]
    text_leaves = {p.start for p in text_parts(split(raw))}
    for before, after in zip(old, new, strict=True):
        old_bytes = raw[before.start : before.end]
        new_bytes = result.data[after.start : after.end]
        if before.start not in text_leaves:
            assert old_bytes == new_bytes, f"{before.content_type} part changed"
        elif decoded_text(raw, before) == decoded_text(result.data, after) and before.start:
            assert old_bytes == new_bytes, "a text part with nothing to clean was re-encoded"
    # Headers: the same fields in the same order and bytes, minus what cleaning removes.
    removed_names = {X_GUARD.lower()} | {
        name.lower() for name, _ in split(raw).headers if RULES.receipt_rule(name)
    }
    kept = [(k, v) for k, v in split(raw).headers if k.lower() not in removed_names]
    cleaned = [(k, v) for k, v in split(result.data).headers if k.lower() != X_GUARD.lower()]
    top_is_text = split(raw).start in text_leaves
    if not top_is_text:
        assert cleaned == kept


@pytest.mark.parametrize("policy_name", ["default", "strict"])
@pytest.mark.parametrize("source", SOURCES)
def test_cleaning_twice_equals_cleaning_once(source: str, policy_name: str) -> None:
    _, once = _clean_sample(source, Policy(policy_name))
    twice = clean_message(once.data, RULES, Policy(policy_name))
    assert twice.changed is False
    assert twice.data == once.data


@pytest.mark.parametrize("source", SOURCES)
def test_plain_and_html_alternatives_agree(source: str) -> None:
    """A link the manifest says cleaning rewrites, written in both the plain-text and the HTML
    part, is rewritten to the same URL in both."""
    entry = next(m for m in MANIFEST if m["source"] == source)
    raw, result = _clean_sample(source, Policy())
    plain, html_ = _stdlib_text(raw, "plain"), _stdlib_text(raw, "html")
    plain_after, html_after = _stdlib_text(result.data, "plain"), _stdlib_text(result.data, "html")
    params = {f["url"]: f["params"] for f in entry.get("finding", []) if f["kind"] == "param"}
    for f in removed_by(entry, "default"):
        if f["kind"] == "link":
            target = without_params(f["destination"], params.get(f["destination"], ()))
        elif f["kind"] == "param":
            target = without_params(f["url"], f["params"])
        else:
            continue
        if _occurs(f["url"], plain) and _occurs(f["url"], html_):
            assert _occurs(target, plain_after), f"plain text lacks {target}"
            assert _occurs(target, html_after), f"HTML lacks {target}"


def test_clean_sample_passes_byte_for_byte() -> None:
    raw = REFS["eml/negative-thunderbird-simple-html.eml"].read()
    result = clean_message(raw, RULES)
    assert result.changed is False and result.data == raw and result.skipped is None


def test_broken_sample_is_salvaged() -> None:
    pixel = "https://track.cheap-deals.example/o.gif"
    raw = REFS["eml/broken-truncated-multipart.eml"].read()
    # Salvaged as a mail client salvages it (samples/manifest.toml): its one 1x1 image, on the
    # sender's tracking host, is the only load and the only finding, under either policy.
    for policy in (Policy(), Policy("strict")):
        result = clean_message(raw, RULES, policy)
        assert result.skipped is None and result.changed
        assert result.removed == {"pixel": 1}
        assert _occurs(pixel, _stdlib_text(raw)) and not _occurs(pixel, _stdlib_text(result.data))


# ---- vectors: every reference to a beacon goes ---------------------------------------------------


def _all_vectors_message() -> bytes:
    rel_base = "https://mail.shop.example.com/c/"
    return message(
        HEAD,
        f"""\
        <html><head><base href="{rel_base}">
        <link rel="preload" href="{OPEN}">
        <style>.a {{ background-image: url('{OPEN}'); }} .b {{ color: red }}</style></head>
        <body style="background: url({OPEN}) no-repeat">
        <img src="{OPEN}" width="1" height="1" alt="">
        <img src="hero.png" srcset="hero.png 1x, {OPEN} 2x, hero3.png 3x" alt="Hero">
        <table background="{OPEN}"><tr><td background="{OPEN}">x</td></tr></table>
        <!--[if mso]><v:fill type="tile" src="{OPEN}" /><![endif]-->
        <img src="o.gif?r=1" width="1" height="1">
        <p>Hello</p>
        </body></html>
        """,
    )


def test_every_reference_to_a_pixel_goes() -> None:
    raw = _all_vectors_message()
    result = clean_message(raw, RULES)
    assert result.changed
    html = parse_message(result.data)[0].html_parts[0]
    assert OPEN not in html
    assert "o.gif" not in html  # the relative 1x1 under <base href>
    assert 'srcset="hero.png 1x, hero3.png 3x"' in html
    assert "<p>Hello</p>" in html and 'alt="Hero"' in html
    assert ".b { color: red }" in html
    assert '<v:fill type="tile" src=""' in html
    assert [f for f in findings_of(result.data) if f.kind is Kind.PIXEL] == []
    assert result.removed["pixel"] == 2


def test_strict_neutralises_every_remote_load_but_keeps_layout() -> None:
    raw = message(
        HEAD,
        """\
        <html><head><base href="https://www.shop.example.com/">
        <meta http-equiv="refresh" content="0;url=https://www.shop.example.com/x">
        <link rel="stylesheet" href="https://cdn.example.net/s.css"></head>
        <body>
        <img src="https://cdn.example.net/hero.jpg" width="600" height="300" alt="Spring sale">
        <img src="cid:logo@x" alt="logo"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
        <iframe src="https://video.example.net/embed/1"></iframe>
        <object data="https://cdn.example.net/a.swf">fallback text</object>
        <video poster="https://cdn.example.net/p.jpg" src="https://cdn.example.net/v.mp4"></video>
        <svg><image href="https://cdn.example.net/i.svg"/></svg>
        <p style="background-image:url(https://cdn.example.net/bg.png);color:red">Hi</p>
        <a href="offers/spring">relative link</a>
        </body></html>
        """,
    )
    result = clean_message(raw, RULES, Policy("strict"))
    assert result.changed
    assert [f for f in findings_of(result.data) if f.kind in (Kind.REMOTE, Kind.PIXEL)] == []
    html = parse_message(result.data)[0].html_parts[0]
    assert 'alt="Spring sale"' in html and 'width="600"' in html and 'height="300"' in html
    assert 'src="cid:logo@x"' in html and "data:image/gif" in html
    assert "fallback text" in html and "color:red" in html
    assert "<base" not in html and "refresh" not in html and "s.css" not in html
    # The base went, so the relative link was made absolute to keep its target.
    assert 'href="https://www.shop.example.com/offers/spring"' in html
    assert result.removed["remote"] >= 8


def test_default_keeps_content_images() -> None:
    raw = message(HEAD, f'<img src="https://cdn.example.net/hero.jpg" alt="x"><img src="{OPEN}">')
    result = clean_message(raw, RULES)
    html = parse_message(result.data)[0].html_parts[0]
    assert "hero.jpg" in html and OPEN not in html


# ---- links ---------------------------------------------------------------------------------------


def test_decodable_links_unwrapped_and_params_dropped_in_html_and_text() -> None:
    raw = (
        textwrap.dedent(HEAD).strip("\n")
        + "\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n"
        + f"--b\nContent-Type: text/plain; charset=us-ascii\n\nGo: {GOOGLE}\nSale: {UTM}.\n"
        + f'--b\nContent-Type: text/html; charset=utf-8\n\n<a href="{GOOGLE}">go</a>'
        + f'<a href="{UTM.replace("&", "&amp;")}">sale</a>\n--b--\n'
    ).encode()
    result = clean_message(raw, RULES)
    parsed, _ = parse_message(result.data)
    assert f"Go: {GOOGLE_TARGET}\n" in parsed.text_parts[0]
    assert "Sale: https://shop.example.com/sale?id=9#top." in parsed.text_parts[0]
    assert f'href="{GOOGLE_TARGET}"' in parsed.html_parts[0]
    assert 'href="https://shop.example.com/sale?id=9#top"' in parsed.html_parts[0]
    assert result.removed == {"link-unwrapped": 1, "param": 2}
    assert set(result.rules) == {"google-redirect.url", "utm.params"}


def test_security_wrapper_kept_unless_policy_opts_in() -> None:
    raw = message(HEAD, f'<a href="{SAFE.replace("&", "&amp;")}">report</a>')
    kept = clean_message(raw, RULES)
    assert kept.changed is False and kept.security_links_kept == (SAFE,)
    unwrapped = clean_message(raw, RULES, Policy(unwrap_security=True))
    html = parse_message(unwrapped.data)[0].html_parts[0]
    assert 'href="https://www.example.com/report?id=7"' in html


def test_tracker_around_a_security_wrapper_goes_the_wrapper_stays() -> None:
    outer = "https://www.google.com/url?q=" + SAFE.replace("%", "%25").replace("&", "%26")
    decision = decide_link(parse_http(outer), RULES, Policy())  # type: ignore[arg-type]
    assert decision.replacement == SAFE and decision.security


def test_drop_params_keeps_everything_else() -> None:
    assert drop_params("https://a.example/p?utm_source=x", ["utm_source"]) == "https://a.example/p"
    assert drop_params("https://a.example/p?a=1&utm_x=2&b=3", ["utm_x"]) == (
        "https://a.example/p?a=1&b=3"
    )
    assert drop_params("https://a.example/p#f", ["a"]) == "https://a.example/p#f"


def test_opaque_links_stay_and_are_reported() -> None:
    opaque = "https://u1.ct.sendgrid.net/ls/click?upn=abcdef123"
    raw = message(HEAD, f'<a href="{opaque}">x</a><img src="{OPEN}">')
    result = clean_message(raw, RULES)
    assert opaque in parse_message(result.data)[0].html_parts[0]
    assert result.opaque_links == (opaque,)


# ---- headers -------------------------------------------------------------------------------------


def test_receipt_headers_go_and_forged_x_guard_is_replaced() -> None:
    raw = (
        b"Return-Path: <a@example.org>\n"
        b"From: a@example.org\nTo: b@example.org\nSubject: minutes\n"
        b"Disposition-Notification-To: a@example.org\n"
        b"X-Guard: cleaned; removed nothing\n"
        b"Return-Receipt-To: a@example.org\nX-PMRQC: 1\n"
        b"X-Confirm-Reading-To:\n a@example.org\n"
        b"Content-Type: text/plain\n\nsee attached\n"
    )
    result = clean_message(raw, RULES)
    assert result.receipt_requested and result.changed
    assert result.removed == {"receipt-header": 4, "forged-x-guard": 1}
    assert [f for f in findings_of(result.data) if f.kind is Kind.RECEIPT] == []
    fields = x_guard_fields(result.data)
    assert len(fields) == 1 and "receipt-header=4" in fields[0]
    assert result.data.startswith(b"Return-Path: <a@example.org>\nFrom: a@example.org\n")
    assert result.data.endswith(b"\n\nsee attached\n")


def test_x_guard_alone_does_not_make_a_message_change() -> None:
    raw = b"From: a@example.org\nX-Guard: cleaned\nSubject: hi\n\nplain text\n"
    assert clean_message(raw, RULES).data == raw


def test_x_guard_value_is_folded_under_78_columns() -> None:
    value = x_guard_value({"pixel": 3, "param": 1}, [f"service{i}.rule-{i}" for i in range(12)])
    assert value.startswith("cleaned; policy=default; removed pixel=3 param=1; rules=")
    raw = message(HEAD, f'<img src="{OPEN}">')
    out = clean_message(raw, RULES).data
    header_block = out.split(b"\n\n", 1)[0].decode()
    assert all(len(line) <= 78 for line in header_block.splitlines())


def test_mbox_from_line_and_crlf_are_kept() -> None:
    raw = message(HEAD, f'<p>Hi</p>\n<img src="{OPEN}">\n').replace(b"\n", b"\r\n")
    raw = b"From news@shop.example.com Mon Jun  3 10:00:00 2024\r\n" + raw
    result = clean_message(raw, RULES)
    assert result.changed
    assert result.data.startswith(b"From news@shop.example.com Mon Jun  3 10:00:00 2024\r\n")
    assert re.search(rb"(?<!\r)\n", result.data) is None, "a bare LF in a CRLF message"


# ---- encodings -----------------------------------------------------------------------------------


def _single(raw: bytes) -> Part:
    return split(raw)


def test_quoted_printable_windows_1252_stays_so() -> None:
    body = f'<p>Caf=E9 =96 Spring</p><img src=3D"{OPEN}" width=3D"1" height=3D"1">\n'
    raw = message(HEAD, body, ctype="text/html; charset=windows-1252").replace(
        b"MIME-Version: 1.0\n", b"MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
    )
    result = clean_message(raw, RULES)
    part = _single(result.data)
    assert part.charset == "windows-1252" and part.transfer_encoding == "quoted-printable"
    assert "Café – Spring" in decoded_text(result.data, part)
    body_bytes = result.data[part.body_start :]
    assert b"=E9" in body_bytes and all(len(line) <= 76 for line in body_bytes.splitlines())


def test_base64_part_reencoded_with_76_character_lines() -> None:
    import base64

    html = ("<p>" + "Grüße aus Köln. " * 40 + f'</p><img src="{OPEN}">').encode()
    encoded = base64.encodebytes(html).decode()
    raw = message(HEAD, encoded, ctype="text/html; charset=utf-8").replace(
        b"MIME-Version: 1.0\n", b"MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n"
    )
    result = clean_message(raw, RULES)
    part = _single(result.data)
    lines = result.data[part.body_start :].splitlines()
    assert all(len(line) == 76 for line in lines[:-1]) and 0 < len(lines[-1]) <= 76
    text = decoded_text(result.data, part)
    assert "Grüße aus Köln." in text and OPEN not in text


def test_plain_text_switches_to_utf8_when_the_target_needs_it() -> None:
    wrapped = "https://www.google.com/url?q=https://www.example.com/caf%C3%A9&sa=D"
    raw = (
        textwrap.dedent(HEAD).strip("\n")
        + "\nContent-Type: text/plain; charset=us-ascii; format=flowed\n"
        + f"Content-Transfer-Encoding: 7bit\n\nMenu: {wrapped}\n"
    ).encode()
    result = clean_message(raw, RULES)
    part = _single(result.data)
    assert part.charset == "utf-8"
    assert "format=flowed" in (part.header("Content-Type") or "")
    assert part.transfer_encoding == "quoted-printable"
    assert "Menu: https://www.example.com/café\n" in decoded_text(result.data, part)
    assert result.data[part.body_start :].isascii()


def test_undeclared_8bit_html_keeps_its_bytes() -> None:
    raw = REFS["eml/encoding-undeclared-charset-8bit.eml"].read()
    result = clean_message(raw, RULES)
    assert result.changed
    before = next(p for p in leaves(raw) if p.content_type == "text/html")
    after = next(p for p in leaves(result.data) if p.content_type == "text/html")
    assert decoded_text(raw, before).count("ü") == decoded_text(result.data, after).count("ü")


# ---- policy --------------------------------------------------------------------------------------


def test_allowlisted_sender_and_domain_are_left_alone() -> None:
    raw = message(HEAD, f'<img src="{OPEN}">')
    by_sender = clean_message(
        raw, RULES, Policy(allow_senders=frozenset({"News@Shop.example.com"}))
    )
    by_domain = clean_message(raw, RULES, Policy(allow_domains=frozenset({"example.com"})))
    for result in (by_sender, by_domain):
        assert result.changed is False and result.data == raw
        assert result.skipped and result.skipped.startswith("allowlisted")
    assert clean_message(raw, RULES, Policy(allow_domains=frozenset({"op.example.com"}))).changed


def test_policy_from_config() -> None:
    policy = Policy.from_config(
        {"policy": "strict", "unwrap_security": True, "allow_domains": ["Bank.example"]}
    )
    assert policy.strict and policy.unwrap_security and policy.allow_domains == {"bank.example"}
    with pytest.raises(ValueError, match="unknown policy"):
        Policy.from_config({"policy": "paranoid"})
    with pytest.raises(ValueError, match="allow_senders"):
        Policy.from_config({"allow_senders": "a@b"})


# ---- hostile input -------------------------------------------------------------------------------

HOSTILE = [
    b"",
    b"\n\n\n",
    b"\x00\xff\xfe garbage \x00",
    b"Subject: x\n",
    b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--a\nContent-Type: multipart/mixed;"
    b" boundary=a\n\n" * 200,
    b"From: a@b\nContent-Type: text/html; charset=\x00bogus\n\n<img src='" + OPEN.encode() + b"'>",
    b"From: a@b\nContent-Type: text/html; charset=utf-16\n\n<img src='" + OPEN.encode() + b"'>",
    b"From: a@b\nContent-Transfer-Encoding: base64\nContent-Type: text/html\n\n!!!notbase64\x00",
    b"From: a@b\nContent-Type: text/html\n\n" + b"<div>" * 20000 + OPEN.encode(),
    b"From: a@b\nContent-Type: text/html\n\n<style>" + b"url(" * 5000 + b"</style>",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_never_raises(raw: bytes) -> None:
    result = clean_message(raw, RULES, Policy("strict"), Limits(max_parts=50, max_depth=20))
    assert isinstance(result, CleanResult)
    if not result.changed:
        assert result.data == raw
    else:
        parse_message(result.data)


def test_oversized_message_is_skipped() -> None:
    raw = message(HEAD, f'<img src="{OPEN}">' + "x" * 5000)
    result = clean_message(raw, RULES, limits=Limits(max_message_bytes=1000))
    assert result.changed is False and result.data == raw and "limit" in (result.skipped or "")


# ---- CSS rewriting -------------------------------------------------------------------------------


def _is_x(url: str) -> bool:
    return "x.example" in url


@pytest.mark.parametrize(
    ("css", "expected"),
    [
        ("a{background:url(http://x.example/a) no-repeat}", "a{background:none no-repeat}"),
        ("a{b:url('http://y.example/')}", "a{b:url('http://y.example/')}"),
        ("@import url(http://x.example/s.css) screen; p{}", " p{}"),
        ('@import "http://x.example/s.css"; p{}', " p{}"),
        ('p{c:image-set("http://x.example/a" 1x, url(http://y/b) 2x)}', "p{c:none}"),
        ("/* url(http://x.example/a) */ p{}", "/* url(http://x.example/a) */ p{}"),
        ("p{background:\\75 rl(http://x.example/a)}", "p{background:none}"),
        ("p{b:url(http\\3a //x.example/a)}", "p{b:none}"),
    ],
)
def test_strip_css_urls(css: str, expected: str) -> None:
    out = strip_css_urls(css, _is_x)
    assert out == expected
    assert not any(_is_x(u) for u in css_urls(out))


def test_strip_css_urls_keeps_untouched_css_identical() -> None:
    css = "p { color: red } /* comment */ a{b:url(http://y.example/)}"
    assert strip_css_urls(css, _is_x) is css


def test_the_planners_split_gives_parse_https_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner splits each URL once through the C core where detection has one: its answers
    are urls.parse_http's, and every sample cleans to the same bytes with parse_http itself."""
    import guard.clean.message as message

    raws = [REFS[source].read() for source in SOURCES]
    both = [Policy(), Policy(name="strict")]
    fast = [clean_message(raw, RULES, policy) for raw in raws for policy in both]
    planner = message._Planner([], RULES, Policy())
    texts = [OPEN, GOOGLE, GOOGLE_TARGET, SAFE, UTM, " //x.example/a ", "cid:x", "http://[::1]/"]
    assert [planner.parse_url(t) for t in texts] == [parse_http(t) for t in texts]
    monkeypatch.setattr(message, "core_for", lambda rules, remote: None)
    assert message._Planner([], RULES, Policy()).split is parse_http
    slow = [clean_message(raw, RULES, policy) for raw in raws for policy in both]
    assert sum(r.changed for r in slow) > 50
    assert fast == slow


# Texts the split reads in every way it has: plain, scheme-relative, wrapped schemes, user info,
# ports, IPv6, spaces (ASCII and not) around, non-ASCII hosts, junk.
SPLIT_TEXTS = [
    OPEN, GOOGLE, SAFE, UTM, " //x.example/a ", "\t//X.Example:8080/a?b=c#d\n", "cid:x",
    "http://[::1]/", "https://user:pw@x.example/", "view-source:https://x.example/p",
    "feed://x.example/rss", "jar:https://x.example/a.jar!/b", " VIEW-SOURCE: //x.example/p",
    "\u00a0https://x.example/\u2003", "https://bücher.example/p", "//bücher.example/p",
    "http:/x.example", "https:x.example/p", "data:image/gif;base64,R0l", "", " ", "//", "x",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*SPLIT_TEXTS, "h", "t", "p", "s", ":", "/", "?", "#", " "])))
def test_a_split_urls_raw_is_its_text_stripped_maybe_with_https(pieces: list[str]) -> None:
    """The planner answers a load or link no finding names without splitting it (`_may_name`):
    that rests on urls.parse_http's raw being the text stripped, or `https:` and it when it is
    scheme-relative; the C core's split gives the same answers."""
    from guard.clean.message import _may_name
    from guard.engine.detect import BUILTIN_REMOTE
    from guard.engine.urlcore import core_for

    core = core_for(RULES, BUILTIN_REMOTE)
    text = "".join(pieces)
    for one in [text, *SPLIT_TEXTS]:
        stripped = one.strip()
        for url in (parse_http(one), core.parse(one) if core is not None else None):
            if url is not None:
                assert url.raw == stripped or (
                    stripped.startswith("//") and url.raw == "https:" + stripped
                )
                assert _may_name(one, {url.raw}) and _may_name(one, {"x": url.raw}.values())
        assert not _may_name(one, set()) and not _may_name(one, {"https://elsewhere.example/"})


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([*SPLIT_TEXTS, "h", "t", "p", "s", ":", "/", "?", "#", " "])),
    st.lists(st.sampled_from(SPLIT_TEXTS), max_size=4),
)
def test_the_planners_load_names_are_may_name(pieces: list[str], named: list[str]) -> None:
    """The planner's `load_names` holds a text, stripped, exactly when `_may_name` says it may
    name one of the loads the findings remove (their raws)."""
    from guard.clean.message import _may_name, _Planner

    raws = [url.raw for url in map(parse_http, named) if url is not None]
    findings = [Finding(Kind.PIXEL, Confidence.KNOWN, "r", url=raw) for raw in raws]
    planner = _Planner(findings, RULES, Policy())
    assert planner.loads.keys() == set(raws)
    for one in ["".join(pieces), *SPLIT_TEXTS, *named, *(" " + n[5:] for n in named)]:
        assert (one.strip() in planner.load_names) == _may_name(one, planner.loads)


@pytest.mark.parametrize("policy", [Policy(), Policy(name="strict")])
def test_the_cores_plan_reads_findings_as_the_planner(policy: Policy) -> None:
    """The C core's `plan` gives `read_findings`'s answers (the same dict order, the same
    finding kept for a URL) on the findings of every sample, and on findings without a URL."""
    from guard.clean.message import _LINKS, _REMOVED, _REMOVED_STRICT, read_findings
    from guard.engine.detect import BUILTIN_REMOTE
    from guard.engine.urlcore import core_for

    core = core_for(RULES, BUILTIN_REMOTE)
    if core is None:
        pytest.skip("guard/engine/_urlcore.c is not built")
    removed = _REMOVED_STRICT if policy.strict else _REMOVED
    odd = [Finding(Kind.PIXEL, Confidence.KNOWN, "r"), Finding(Kind.LINK, Confidence.KNOWN, "r")]
    compared = 0
    for source in SOURCES:
        findings = [*detect(parse_message(REFS[source].read())[0], RULES), *odd]
        loads, links = core.plan(findings, removed, _LINKS)
        expected = read_findings(findings, removed, _LINKS)
        assert (loads, links) == expected and list(loads) == list(expected[0])
        assert all(loads[url] is expected[0][url] for url in loads)
        compared += len(loads) + len(links)
    assert compared > 100


def test_the_check_holds_loads_as_text_and_splits_them_for_a_stranger() -> None:
    """`_Check` is handed the original's loads as text: a load read back as one of them passes
    unsplit; one written otherwise (scheme-relative in the original) passes by its split; one the
    original never loaded, or one removed, is refused."""
    from guard.clean.html import _Check

    class Keep:
        def load_action(self, url: str) -> LoadAction:
            return LoadAction.REMOVE_PIXEL if "pixel" in url else LoadAction.KEEP

        def link_target(self, url: str) -> str | None:
            return None

    def check(loads: set[str], output: str) -> str | None:
        try:
            _Check(Keep(), loads).verify(output)
        except RewriteUnsafe as exc:
            return str(exc)
        return None

    img = '<img src="{}">'.format
    assert check({"https://a.example/i.png"}, img("https://a.example/i.png")) is None
    assert check({"//a.example/i.png"}, img("https://a.example/i.png")) is None
    assert check({"https://a.example/i.png"}, img("//a.example/i.png")) is None
    assert "does not" in (check({"https://a.example/i.png"}, img("https://b.example/")) or "")
    assert "was removed" in (
        check({"https://a.example/pixel"}, img("https://a.example/pixel")) or ""
    )
    assert check(set(), "<p>no loads</p>") is None


def test_decide_link_with_the_cores_unwrap_is_the_rulesets() -> None:
    """The planner hands decide_link the C core's unwrap (and with it the classification of a
    decoded target): the same decisions as RuleSet.unwrap and RuleSet.classify give, on the
    links of every sample."""
    from guard.engine.detect import BUILTIN_REMOTE
    from guard.engine.urlcore import core_for

    core = core_for(RULES, BUILTIN_REMOTE)
    if core is None:
        pytest.skip("the C core is not built")
    links = {GOOGLE, SAFE, UTM, OPEN, "https://www.google.com/url?q=" + GOOGLE}
    for source in SOURCES:
        msg = parse_message(REFS[source].read())[0]
        found = detect(msg, RULES)
        links |= {f.url for f in found if f.kind in (Kind.LINK, Kind.PARAM) and f.url}
    urls = [u for u in map(parse_http, sorted(links)) if u is not None]
    assert len(urls) > 100
    for policy in (Policy(), Policy(unwrap_security=True)):
        for url in urls:
            assert decide_link(url, RULES, policy, unwrap=core.unwrap) == decide_link(
                url, RULES, policy
            )


HEADER_BLOCKS = [
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\n",
    b"From: a@example.com\nReceived: from x\n\tby y\n  (z)\nSubject: x\n\n",
    b"From a@b Mon Jan 1\nFrom: a\n: no name\nbad line\n x\n\n\n",
    b"Subject: a\n\nTo: b\n\n",  # an empty line among the fields
    b"Subject: a\x0cTo: b\x0b\n\r\r\n",
    b"Subject: no end",
    b"",
    b"\n",
    b"X-Guard: forged\nDisposition-Notification-To: a@b\nSubject: \xe9t\xe9\n\n",
    b"Subject: mentions x-guard: in its value\r\n\r\n",
]


_EDITS = [
    HeaderEdit("text/html", {"x-guard"}, append=[(X_GUARD, "cleaned; x")]),
    HeaderEdit("text/html", {"x-guard", "disposition-notification-to"}),
    HeaderEdit("text/html", set(), append=[(X_GUARD, "cleaned")]),
    HeaderEdit("text/html", {"x-guard"}, charset="utf-8"),
    HeaderEdit("text/html", set(), charset="utf-8", transfer_encoding="quoted-printable"),
    HeaderEdit("text/plain", {"content-type"}, charset="utf-8", append=[(X_GUARD, "c")]),
    HeaderEdit("text/plain", {"x-guard"}, transfer_encoding="base64", append=[(X_GUARD, "c")]),
    HeaderEdit("text/plain", {"Not A Name", "x-guard"}),  # no field has it: read field by field
]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_header_block_edited_as_bytes_is_written_as_field_by_field(eol: str) -> None:
    """edited_block's edit of the block as bytes writes what the field-by-field reading writes,
    on the samples' header blocks (the message's and each part's) and on odd ones."""
    from guard.clean import headers

    blocks = list(HEADER_BLOCKS)
    for source in SOURCES:
        raw = REFS[source].read()
        tree = checked_split(raw)
        blocks.extend(raw[p.start : p.body_start] for p in tree.walk())
    plain = 0
    for block in blocks:
        for edit in _EDITS:
            fast = headers.plain_edit(block, edit, eol)
            slow = headers.edited_fields(block, edit, eol)
            assert headers.edited_block(block, edit, eol) == slow
            if fast is not None:
                plain += 1
                assert fast == slow, (block, edit)
    assert plain > len(blocks) * 4


def test_the_block_scan_in_c_is_the_python_reference() -> None:
    from guard.clean import headers
    from guard.engine import mimetree

    if mimetree._native is None:
        pytest.skip("_mimecore not built")
    names = (b"content-transfer-encoding", b"content-type", b"x-guard")
    blocks = list(HEADER_BLOCKS)
    for source in SOURCES:
        raw = REFS[source].read()
        tree = checked_split(raw)
        blocks.extend(raw[p.start : p.body_start] for p in tree.walk())
    for block in blocks:
        for cut in (None, -1, 7):
            piece = block[:cut]
            assert mimetree._native.block_fields(piece, names) == headers._block_fields_python(
                piece, names
            )


# What the bytes edit reads as bytes and header_fields as str lines: every line end (the ones
# only str.splitlines breaks at too), empty lines anywhere, folding, raw 8-bit bytes, the fields
# an edit drops or changes, in any case, and names that only start like them.
_BLOCK_PIECES = st.sampled_from(
    [
        *(b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c", b"\x1c", b"\x1f", b"\x85", b"\xe9", b" f"),
        *(b"\tg", b"A: b", b"X-Guard: x", b"Subject: s", b"Disposition-Notification-To: a"),
        *(b"Content-Type: text/plain", b'content-TYPE:text/html; charset="x"', b"; charset=a"),
        *(b"Content-Transfer-Encoding: 7bit", b"Content-Typ: x", b"Content-Types: y", b":"),
        *(b"x-guard :", b" charset = b;", b"\tcharset=\x1fc"),
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_BLOCK_PIECES, max_size=14).map(b"".join), st.sampled_from(["\n", "\r\n"]))
def test_generated_header_blocks_are_written_as_field_by_field(block: bytes, eol: str) -> None:
    from guard.clean import headers
    from guard.engine import mimetree

    names = (b"content-transfer-encoding", b"content-type", b"x-guard")
    scanned = headers._block_fields_python(block, names)
    if mimetree._native is not None:
        assert mimetree._native.block_fields(block, names) == scanned
    for edit in _EDITS:
        fast = headers.plain_edit(block, edit, eol)
        if fast is not None:
            assert fast == headers.edited_fields(block, edit, eol)


_ALTERNATIVE = (
    b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=BB\r\n\r\n"
    b"--BB\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
    b"--BB\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--BB--\r\n"
)


def test_the_structure_check_reads_the_copy_itself() -> None:
    """The check splits the cleaned copy for its shape alone (only the fields the split reads
    are made), and still sees every way a copy can go wrong."""
    from guard.clean.message import _structure_holds

    tree = checked_split(_ALTERNATIVE)
    limits = Limits()
    assert _structure_holds(_ALTERNATIVE, tree, limits)
    added = _ALTERNATIVE.replace(b"\r\n\r\n", b"\r\nX-Guard: cleaned\r\n\r\n", 1)
    assert _structure_holds(added, tree, limits)
    # A rewritten body that holds a delimiter line splits into another tree.
    smuggled = _ALTERNATIVE.replace(b"<p>html</p>", b"<p>\r\n--BB\r\n</p>")
    assert not _structure_holds(smuggled, tree, limits)
    # The message's Content-Type lost, or its header block cut: another shape, or no headers.
    assert not _structure_holds(
        _ALTERNATIVE.replace(b"Content-Type: multipart", b"X: m"), tree, limits
    )
    assert not _structure_holds(b"\r\n" + _ALTERNATIVE, tree, limits)
    # A part that becomes an attachment is no text part any more: the shape holds, the limit on
    # text parts applies to those that are.
    attached = _ALTERNATIVE.replace(
        b"Content-Type: text/html\r\n",
        b"Content-Type: text/html\r\nContent-Disposition: attachment\r\n",
    )
    assert _structure_holds(attached, tree, Limits(max_text_part_bytes=8))
    assert not _structure_holds(_ALTERNATIVE, tree, Limits(max_text_part_bytes=8))
    assert not _structure_holds(_ALTERNATIVE, tree, Limits(max_message_bytes=10))


@pytest.mark.parametrize(
    "name", ["x-guard", "content-type", "X-Guard", "a b", "a:b", "", "\xe9", "x\ttab", "x" * 200]
)
def test_field_names_read_again_from_the_memo_read_the_same(name: str) -> None:
    from guard.clean import headers

    first = headers._field_name(name)
    assert first == headers._read_field_name(name) == headers._field_name(name)
    assert (name in headers._FIELD_NAMES) is (len(name) <= headers._FIELD_NAMES_LONGEST)


def test_detection_hands_a_text_parts_urls_to_its_rewrite() -> None:
    """detect leaves each plain text part's URLs by the text's identity (`keep_urls`): the very
    text gets them back (once), as text_urls reads them; the rewrite given them is the rewrite
    that reads them itself."""
    body = "Read https://news.example/a?utm_source=x&id=1. Or (https://b.example/p?mc_eid=2)\n"
    msg = parse_message(f"From: a@b.example\nSubject: s\n\n{body}".encode())[0]
    text = msg.text_parts[0]
    twin = "".join([text[:5], text[5:]])
    assert twin == text and twin is not text
    keep: TextUrls = {}
    detect(msg, RULES, keep_urls=keep)
    assert kept(keep, twin) is None
    urls = kept(keep, text)
    assert urls == list(text_urls(text)) and len(urls) == 2
    assert kept(keep, text) is None and not keep

    def target(url: str) -> str | None:
        return url.partition("?")[0]

    assert rewrite_text(text, target, urls) == rewrite_text(text, target) != text
