"""The accounts config, imap:// URLs and secret sources (no server needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guard.mail.config import (
    ConfigError,
    account_for_url,
    config_path,
    load_config,
    parse_config,
    parse_imap_url,
)
from guard.mail.secrets import Secret, SecretError, get_credentials

EXAMPLE = """
default_account = "work"

[accounts.work]
host = "imap.example.org"
port = 993
username = "me@example.org"
tls = "ssl"
ca_file = "/path/extra-ca.pem"
password_command = "pass show mail/work"
folders = ["INBOX"]
backup_folder = "Guard/Originals"
identities = ["me@example.org", "Me@Alias.example"]

[accounts.home]
host = "mail.home.example"
username = "me"
tls = "starttls"
password_env = "HOME_MAIL_PW"
folders = ["INBOX", "Newsletters"]
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_issue_example_parses(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.toml", EXAMPLE))
    work = cfg.account()
    assert work.name == "work" and work.host == "imap.example.org" and work.port == 993
    assert work.tls == "ssl" and work.ca_file == "/path/extra-ca.pem"
    assert work.password_command == "pass show mail/work"
    assert work.folders == ("INBOX",) and work.backup_folder == "Guard/Originals"
    assert work.identities == ("me@example.org", "me@alias.example")
    home = cfg.account("home")
    assert home.port == 143 and home.tls == "starttls" and home.folders == ("INBOX", "Newsletters")
    assert cfg.warnings == ()


def test_location_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUARD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "guard" / "config.toml"
    monkeypatch.setenv("GUARD_CONFIG", str(tmp_path / "env.toml"))
    assert config_path() == tmp_path / "env.toml"
    assert config_path(tmp_path / "explicit.toml") == tmp_path / "explicit.toml"


def test_missing_config_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_only_account_is_the_default() -> None:
    cfg = parse_config({"accounts": {"a": {"host": "h", "username": "u", "password_env": "X"}}})
    assert cfg.account().name == "a"


def test_several_accounts_without_default_needs_account() -> None:
    cfg = parse_config(
        {"accounts": {"a": {"host": "h", "username": "u"}, "b": {"host": "h2", "username": "u"}}}
    )
    with pytest.raises(ConfigError, match="--account"):
        cfg.account()
    with pytest.raises(ConfigError, match=r"no account 'c'.*a, b"):
        cfg.account("c")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"username": "u"}, "host is required"),
        ({"host": "h"}, "username is required"),
        ({"host": "h", "username": "u", "tls": "maybe"}, "tls must be one of"),
        ({"host": "h", "username": "u", "port": 0}, "port must be"),
        ({"host": "h", "username": "u", "port": "993"}, "port must be"),
        ({"host": "h", "username": "u", "passwd": "x"}, "unknown setting"),
        ({"host": "h", "username": "u", "folders": "INBOX"}, None),
        ({"host": "h", "username": "u", "folders": [1]}, "folders must be"),
        (
            {"host": "h", "username": "u", "password_env": "A", "password_command": "b"},
            "choose one",
        ),
        ({"host": "imap.example.org", "username": "u", "tls": "none"}, "loopback"),
        ({"host": "h", "username": "u", "connections": 0}, "connections"),
        ({"host": "h", "username": "u", "timeout": -1}, "timeout"),
    ],
)
def test_invalid_accounts(table: dict[str, object], message: str | None) -> None:
    if message is None:
        parse_config({"accounts": {"a": table}})
        return
    with pytest.raises(ConfigError, match=message):
        parse_config({"accounts": {"a": table}})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.1.2.3"])
def test_tls_none_allowed_only_on_loopback(host: str) -> None:
    cfg = parse_config({"accounts": {"a": {"host": host, "username": "u", "tls": "none"}}})
    assert cfg.account().port == 143


def test_undefined_default_account() -> None:
    with pytest.raises(ConfigError, match="default_account 'x' is not defined"):
        parse_config({"default_account": "x", "accounts": {}})


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(write(tmp_path / "c.toml", "[accounts.a\nhost=1"))
    assert "\n" not in str(info.value)


def test_warning_for_readable_config_with_password(tmp_path: Path) -> None:
    text = '[accounts.a]\nhost = "h"\nusername = "u"\npassword = "hunter2-secret"\n'
    cfg = load_config(write(tmp_path / "c.toml", text, 0o644))
    assert len(cfg.warnings) == 1 and "readable by other users" in cfg.warnings[0]
    assert "hunter2-secret" not in cfg.warnings[0]
    assert "hunter2-secret" not in repr(cfg.account()) and "hunter2-secret" not in repr(cfg)
    assert load_config(write(tmp_path / "d.toml", text, 0o600)).warnings == ()
    # a password_command is not itself a secret: no warning
    other = '[accounts.a]\nhost = "h"\nusername = "u"\npassword_command = "pass x"\n'
    assert load_config(write(tmp_path / "e.toml", other, 0o644)).warnings == ()


def test_imap_url_parsing() -> None:
    url = parse_imap_url("imap://me%40example.org@IMAP.example.org:1993/Lists/News")
    assert (url.username, url.host, url.port, url.folder) == (
        "me@example.org",
        "imap.example.org",
        1993,
        "Lists/News",
    )
    raw_at = parse_imap_url("imap://me@example.org@imap.example.org/INBOX")
    assert raw_at.username == "me@example.org" and raw_at.host == "imap.example.org"
    bare = parse_imap_url("imaps://imap.example.org")
    assert bare.username is None and bare.folder is None and bare.tls == "ssl"
    assert parse_imap_url("imap://u@[::1]:143/INBOX").host == "::1"
    with pytest.raises(ConfigError, match="password"):
        parse_imap_url("imap://u:secret@h/INBOX")
    with pytest.raises(ConfigError, match="bad port"):
        parse_imap_url("imap://u@h:99999/INBOX")


def test_url_takes_the_secret_from_the_matching_account(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.toml", EXAMPLE))
    acc = account_for_url(cfg, parse_imap_url("imap://me%40example.org@imap.example.org/Archive"))
    assert acc.name == "work" and acc.folders == ("Archive",) and acc.password_command
    with pytest.raises(ConfigError, match=r"no account for someone@imap\.example\.org"):
        account_for_url(cfg, parse_imap_url("imap://someone@imap.example.org/INBOX"))


# -- secrets -----------------------------------------------------------------------------------


def _account(**kw: object) -> object:
    table = {"host": "h", "username": "u", **kw}
    return parse_config({"accounts": {"a": table}}).account()


def test_password_command() -> None:
    creds = get_credentials(_account(password_command="printf 's3cret\\nignored'"))  # type: ignore[arg-type]
    assert creds.secret.reveal() == "s3cret" and creds.mechanism == "password"
    assert "s3cret" not in repr(creds) and "s3cret" not in str(creds.secret)


def test_failing_password_command_hides_output(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SecretError) as info:
        get_credentials(_account(password_command="echo leaked-secret; exit 3"))  # type: ignore[arg-type]
    assert "exit status 3" in str(info.value) and "leaked-secret" not in str(info.value)


def test_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TEST_PW", "envpw")
    assert get_credentials(_account(password_env="GUARD_TEST_PW")).secret.reveal() == "envpw"  # type: ignore[arg-type]
    monkeypatch.delenv("GUARD_TEST_PW")
    with pytest.raises(SecretError, match=r"\$GUARD_TEST_PW is not set"):
        get_credentials(_account(password_env="GUARD_TEST_PW"))  # type: ignore[arg-type]


def test_oauth2_token_command_means_xoauth2() -> None:
    creds = get_credentials(_account(oauth2_token_command="echo ya29.token"))  # type: ignore[arg-type]
    assert creds.mechanism == "xoauth2" and creds.secret.reveal() == "ya29.token"


def test_no_secret_source() -> None:
    with pytest.raises(SecretError, match="has no secret"):
        get_credentials(_account())  # type: ignore[arg-type]


def test_secret_repr() -> None:
    s = Secret("topsecret")
    assert "topsecret" not in repr(s) and "topsecret" not in f"{s}" and s.reveal() == "topsecret"
