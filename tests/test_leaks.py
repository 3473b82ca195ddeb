"""Address leaks: the recipient's address carried in a URL, plainly, encoded or hashed."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from guard.cli.main import main
from guard.engine.detect import detect
from guard.engine.leaks import address_tokens
from guard.engine.model import Kind, ParsedMessage
from guard.engine.report import senders
from guard.engine.rules_load import load_ruleset
from guard.mail.scan import scan_raw

ADDRESS = "Alex.Doe@Example.net"
LOWER = ADDRESS.lower()
RULES = load_ruleset(include_user=False)


def _b64_inside_json(urlsafe: bool) -> str:
    payload = json.dumps({"campaign": 17, "email": LOWER, "v": 2}).encode()
    encoder = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encoder(payload).decode().rstrip("=")


@pytest.mark.parametrize(
    ("fragment", "encoding"),
    [
        (LOWER, "plain"),
        (ADDRESS, "plain"),  # case does not hide it
        (quote(LOWER, safe=""), "plain"),  # percent-encoded
        (hashlib.md5(LOWER.encode()).hexdigest(), "md5"),
        (hashlib.sha1(LOWER.encode()).hexdigest().upper(), "sha1"),
        (hashlib.sha256(LOWER.encode()).hexdigest(), "sha256"),
        (base64.b64encode(LOWER.encode()).decode(), "base64"),
        (base64.urlsafe_b64encode(LOWER.encode()).decode().rstrip("="), "base64"),
        (_b64_inside_json(urlsafe=False), "base64"),  # at another alignment inside JSON
        (_b64_inside_json(urlsafe=True), "base64"),
    ],
)
def test_address_found_in_every_encoding(fragment: str, encoding: str) -> None:
    tokens = address_tokens([ADDRESS])
    assert tokens.find(f"https://t.tracker.example/o.gif?x={fragment}&y=1") == encoding


@pytest.mark.parametrize(
    "url",
    [
        "https://t.tracker.example/o.gif?id=8c4b2f",
        "https://shop.example/p/alex-doe",  # the name alone is not the address
        "https://t.tracker.example/o?h=" + hashlib.md5(b"someone@else.example").hexdigest(),
        "https://t.tracker.example/o?e=alex.doe%40example.org",  # another domain
    ],
)
def test_other_urls_carry_no_address(url: str) -> None:
    assert address_tokens([ADDRESS]).find(url) is None


def test_no_addresses_no_tokens() -> None:
    assert not address_tokens([])
    assert not address_tokens(["not-an-address"])


def _message(html: str, to: str = ADDRESS) -> bytes:
    return (
        f"From: News <news@brand.example>\r\nTo: {to}\r\nSubject: s\r\n"
        "Message-ID: <1@brand.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body>{html}</body></html>\r\n"
    ).encode()


def test_detect_marks_the_leaking_findings_from_recipient_headers() -> None:
    md5 = hashlib.md5(LOWER.encode()).hexdigest()
    html = (
        f'<img src="https://pixel.adnet.example/i.gif?m={md5}" width="1" height="1">'
        '<img src="https://cdn.brand.example/hero.jpg" width="600" height="300">'
        f'<a href="https://brand.example/account?email={quote(LOWER)}">account</a>'
        '<a href="https://brand.example/account?utm_source=x">x</a>'
    )
    result = scan_raw(_message(html), "m", "1", RULES)
    leaks = {f.url: f.leak for f in result.findings if f.leak}
    assert leaks == {f"https://pixel.adnet.example/i.gif?m={md5}": "md5"}
    hero = next(f for f in result.findings if f.url.endswith("hero.jpg"))  # type: ignore[union-attr]
    assert hero.kind is Kind.REMOTE and hero.leak is None


def test_identities_are_looked_for_too() -> None:
    msg = ParsedMessage(
        headers=(("From", "a@brand.example"),),
        html_parts=(
            '<img src="https://t.x.example/o.gif?e=me%40work.example" width="1" height="1">',
        ),
    )
    assert detect(msg, RULES, "a@brand.example")[0].leak is None
    assert detect(msg, RULES, "a@brand.example", identities=["ME@work.example"])[0].leak == "plain"


def test_senders_report_says_who_gets_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = hashlib.sha256(LOWER.encode()).hexdigest()
    raw = _message(f'<img src="https://pixel.adnet.example/i.gif?s={sha}" width="1" height="1">')
    rows, _domains = senders([scan_raw(raw, "m", "1", RULES)])
    assert rows[0].leaks_to == {"pixel.adnet.example (sha256)"}
    (tmp_path / "m.eml").write_bytes(raw)
    assert main(["scan", str(tmp_path / "m.eml")]) == 0
    out = capsys.readouterr().out
    assert "gives your address to: pixel.adnet.example (sha256)" in out
    assert "news@brand.example gives it to pixel.adnet.example (sha256)" in out
    assert main(["scan", "--format", "json", str(tmp_path / "m.eml")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["senders"][0]["leaks_to"] == ["pixel.adnet.example (sha256)"]
    assert doc["messages"][0]["findings"][0]["leak"] == "sha256"
