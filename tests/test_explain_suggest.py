"""`guard explain` and `guard rules suggest`."""

from __future__ import annotations

from pathlib import Path

import pytest
from dovecot import PASSWORD, Dovecot, write_config

from guard.cli.main import main
from guard.engine.rules_load import load_ruleset
from guard.engine.suggest import carries_token, suggest
from guard.mail.scan import scan_raw

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "eml"
RULES = load_ruleset(include_user=False)


def test_explain_shows_rule_source_and_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SAMPLES / "amazon-ses-order-shipped.eml"
    assert main(["explain", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "amazon-ses." in out  # the rule id
    assert "source:" in out and "why:" in out
    assert "destination: https://" in out  # the offline-decoded target of the SES wrapper
    assert "rules/esp/amazon-ses.toml" in out
    # the ESP the message was sent through, with the headers that say so
    assert "  sent through Amazon SES: X-SES-Outgoing; Feedback-ID :AmazonSES\n" in out


def test_explain_names_no_esp_for_personal_mail(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(SAMPLES / "negative-personal-plain-text.eml")]) == 0
    assert "sent through" not in capsys.readouterr().out


def test_explain_says_why_a_heuristic_pixel_is_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(SAMPLES / "heuristic-pixels-hidden-styles.eml")]) == 0
    out = capsys.readouterr().out
    assert "heuristic.pixel-shape" in out and "shaped like a beacon" in out
    assert "visibility:hidden" in out


def test_explain_needs_something_to_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == 2
    assert "give a PATH" in capsys.readouterr().err


def _newsletter(n: int, sender: str, beacon: str, content: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: alex@example.net\r\nSubject: n{n}\r\nMessage-ID: <{n}@x>\r\n"
        "Content-Type: text/html\r\n\r\n"
        f'<p>Hi</p><img src="{beacon}" width="1" height="1">{content}\r\n'
    ).encode()


def test_suggest_ranks_unnamed_beacon_hosts_and_writes_loadable_rules(tmp_path: Path) -> None:
    results = [
        scan_raw(
            _newsletter(i, f"news@brand{i}.example", f"https://px.newtrack.io/o/{t}.gif"),
            "m",
            str(i),
            RULES,
        )
        for i, t in enumerate(("a1b2c3d4e5f6a7b8c9", "f9e8d7c6b5a4f3e2d1", "0a1b2c3d4e5f6a7b8c"))
    ]
    # A CDN that serves ordinary images too, with one tiny image: a weak candidate.
    hero = '<img src="https://cdn.imagehost.example/hero.jpg" width="600" height="300">'
    cdn = _newsletter(9, "shop@store.example", "https://cdn.imagehost.example/dot.png", hero)
    results.append(scan_raw(cdn, "m", "9", RULES))
    found = suggest(results)
    assert [s.domain for s in found] == ["newtrack.io", "cdn.imagehost.example"]
    top = found[0]
    assert len(top.senders) == 3 and top.messages == 3 and top.with_token == 3
    assert top.common_path() == "/o/"
    assert found[1].content_images == 1
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "suggested.toml").write_text(top.rule_snippet())
    ruleset = load_ruleset([rules_dir])
    (rule,) = ruleset.rules
    for example in rule.match:
        assert rule.check_example(example)[0]
    for example in rule.no_match:
        assert not rule.check_example(example)[0]


def test_token_shapes() -> None:
    assert carries_token("https://t.example/o?u=a1b2c3d4e5f6a7b8c9d0")
    assert not carries_token("https://t.example/images/newsletter-header-summer.gif")


def test_rules_suggest_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, sender in enumerate(("a@one.example", "b@two.example")):
        (tmp_path / f"{i}.eml").write_bytes(
            _newsletter(i, sender, f"https://open.unlisted-pixels.net/t/{i}f3a9c2b7d6e1f0a4b")
        )
    assert main(["rules", "suggest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "# unlisted-pixels.net: 2 message(s); 2 sender(s)" in out
    assert 'hosts = ["unlisted-pixels.net", "*.unlisted-pixels.net"]' in out


def test_rules_suggest_without_history_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "suggest"]) == 3
    assert "no scan history" in capsys.readouterr().err


def test_explain_a_message_on_the_server_by_uid(
    dovecot: Dovecot, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = "explain-uid"
    (uid,) = dovecot.append(
        user, "INBOX", [(SAMPLES / "amazon-ses-order-shipped.eml").read_bytes()]
    )
    write_config(dovecot, user, timeout=10)
    monkeypatch.setenv("GUARD_TEST_PASSWORD", PASSWORD)
    c = dovecot.client(user)
    c.select_folder("INBOX", readonly=True)  # type: ignore[attr-defined]
    before = c.get_flags([uid])  # type: ignore[attr-defined]
    assert main(["explain", "--account", "t", "--uid", str(uid)]) == 0
    assert "amazon-ses." in capsys.readouterr().out
    assert c.get_flags([uid]) == before  # type: ignore[attr-defined]  # BODY.PEEK: still unseen
    c.logout()  # type: ignore[attr-defined]
    assert main(["explain", "--account", "t", "--uid", "999"]) == 3
    assert "no message with UID 999" in capsys.readouterr().err
