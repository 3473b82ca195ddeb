"""`guard strip --policy-dir DIR --recipient ADDR`: per-recipient settings, data only.

(The same on a real Dovecot: tests/test_delivery.py.)
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from guard.cli.args import add_strip_arguments
from guard.cli.strip import (
    MAX_POLICY_FILE,
    PolicyError,
    read_recipient_policy,
    recipient_policy_path,
    run_strip,
)

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "eml" / "substack-essay.eml"


def strip(raw: bytes, *args: str) -> tuple[bytes, str]:
    parser = argparse.ArgumentParser()
    add_strip_arguments(parser)
    out, err = io.BytesIO(), io.StringIO()
    assert run_strip(parser.parse_args(list(args)), io.BytesIO(raw), out, err) == 0
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "recipient",
    ["../etc/passwd@x", "a/b@example.org", ".hidden@example.org", "no-at-sign", "a@", "@b",
     "nul\0@example.org", "tab\t@example.org", "x" * 330 + "@example.org"],
)  # fmt: skip
def test_names_that_could_reach_another_file_are_never_looked_up(
    tmp_path: Path, recipient: str
) -> None:
    assert recipient_policy_path(str(tmp_path), recipient) is None
    with pytest.raises(PolicyError):
        read_recipient_policy(str(tmp_path), recipient)


def test_the_address_is_the_key(tmp_path: Path) -> None:
    assert recipient_policy_path(str(tmp_path), " <Alice@Example.ORG> ") == str(
        tmp_path / "alice@example.org.toml"
    )
    assert read_recipient_policy(str(tmp_path), "alice@example.org") is None  # no file


@pytest.mark.parametrize(
    ("text", "problem"),
    [("run = 'rm -rf /'\n", "unknown setting"), ("enabled = 'no'\n", "true or false"),
     ("policy = [\n", "not valid TOML"), ("x" * (MAX_POLICY_FILE + 1), "larger than")],
)  # fmt: skip
def test_unusable_files_say_why(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "bob@example.org.toml").write_text(text)
    with pytest.raises(PolicyError, match=problem):
        read_recipient_policy(str(tmp_path), "bob@example.org")


def test_settings_apply_and_broken_ones_fall_back(tmp_path: Path) -> None:
    raw = SAMPLE.read_bytes()
    args = ("--policy-dir", str(tmp_path), "--recipient")
    cleaned, _ = strip(raw)
    assert cleaned != raw and b"X-Guard: cleaned; policy=default" in cleaned
    (tmp_path / "out@example.org.toml").write_text("enabled = false\n")
    assert strip(raw, *args, "out@example.org") == (raw, "")
    (tmp_path / "strict@example.org.toml").write_text('policy = "strict"\n')
    assert b"X-Guard: cleaned; policy=strict" in strip(raw, *args, "strict@example.org")[0]
    (tmp_path / "bad@example.org.toml").write_text('policy = "paranoid"\n')
    out, err = strip(raw, *args, "bad@example.org")
    assert out == cleaned and "paranoid" in err and "administrator's policy" in err
    out, err = strip(raw, *args, "../x@y")
    assert out == cleaned and "not an address" in err


def test_time_limit_passes_the_message_through(tmp_path: Path) -> None:
    raw = SAMPLE.read_bytes()
    out, err = strip(raw, "--time-limit", "0.000001")
    assert out == raw and "took longer than" in err
