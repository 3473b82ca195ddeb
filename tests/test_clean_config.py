"""Cleaning settings from the config ([clean], [accounts.NAME.clean]) and the allowlist file."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import pytest

from guard.cli.clean import policy_for, run_strip
from guard.mail.allowlist import add_to_allowlist, allowlist_path, load_allowlist
from guard.mail.config import ConfigError, cleaning_settings, parse_config

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "eml" / "sendgrid-shop-newsletter.eml"

CONFIG = """
[clean]
policy = "strict"
allow_senders = ["boss@example.org"]

[accounts.work]
host = "imap.example.org"
username = "me@example.org"
password_env = "X"

[accounts.work.clean]
policy = "default"
unwrap_security = true
allow_domains = ["mybank.example"]
"""


def _write_config(text: str) -> Path:
    path = Path(os.environ["GUARD_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ns(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"config": None, "policy": None, "unwrap_security": False, **kw})


def test_account_settings_override_and_allowlists_join() -> None:
    _write_config(CONFIG)
    add_to_allowlist(sender="News@Shop.example")
    import tomllib

    config = parse_config(tomllib.loads(CONFIG))
    top = cleaning_settings(config)
    assert top["policy"] == "strict"
    assert top["allow_senders"] == ["boss@example.org", "news@shop.example"]
    work = cleaning_settings(config, config.account("work"))
    assert work["policy"] == "default" and work["unwrap_security"] is True
    assert work["allow_domains"] == ["mybank.example"]
    policy = policy_for(_ns(), config.account("work"))
    assert policy.name == "default" and policy.unwrap_security
    assert policy.allowlisted("boss@example.org") and policy.allowlisted("a@x.mybank.example")
    assert policy_for(_ns(policy="strict"), config.account("work")).name == "strict"  # CLI wins


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[clean]\npolicy = "paranoid"\n', "policy must be one of"),
        ("[clean]\nallow_senders = 'a@b'\n", "allow_senders must be a list"),
        ("[clean]\nshred = true\n", r"unknown setting\(s\) shred"),
    ],
)
def test_bad_clean_settings_are_one_line_errors(text: str, problem: str) -> None:
    import tomllib

    with pytest.raises(ConfigError, match=problem):
        parse_config(tomllib.loads(text))


def test_allowlist_file_round_trip() -> None:
    assert load_allowlist() == ([], [])
    add_to_allowlist(sender="A@B.example")
    add_to_allowlist(sender="a@b.example", domain="News.Example")
    assert load_allowlist() == (["a@b.example"], ["news.example"])
    assert allowlist_path().read_text().startswith("# Maintained by guard")


def test_strip_honours_the_allowlist_and_survives_a_broken_config() -> None:
    raw = SAMPLE.read_bytes()
    out, err = io.BytesIO(), io.StringIO()
    assert run_strip(_ns(), io.BytesIO(raw), out, err) == 0
    assert out.getvalue() != raw  # cleaned
    _write_config('[clean]\nallow_domains = ["shop.example"]\n')
    out = io.BytesIO()
    assert run_strip(_ns(), io.BytesIO(raw), out, io.StringIO()) == 0
    assert out.getvalue() == raw  # allowlisted: untouched
    _write_config("[clean]\npolicy = 42\n")
    out, err = io.BytesIO(), io.StringIO()
    assert run_strip(_ns(), io.BytesIO(raw), out, err) == 0
    assert out.getvalue() != raw and "default policy" in err.getvalue()
