"""The pieces of bench/ that decide a figure: the probe prelude that finds guard's functions in
either package layout, and the output comparison of bench/compare_outputs.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import compare_outputs  # noqa: E402
import harness  # noqa: E402


def test_probe_finds_guards_functions_in_this_layout() -> None:
    code = harness.probe(
        "print(scan_raw.__module__, clean_message.__module__, load_ruleset.__module__, "
        "Policy.__name__, parse_message.__module__, guard_html.__name__, "
        "bundled_rules_dir().name)"
    )
    inst = harness.this_install()
    proc = subprocess.run(
        [inst.python, "-c", code],
        env=inst.env(),
        cwd=harness.NEUTRAL_CWD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    scan, clean, ruleset, policy, mime, html, rules = proc.stdout.split()
    assert (scan, clean, ruleset, policy) == (
        "guard.mail.scan",
        "guard.clean.message",
        "guard.engine.rules_load",
        "Policy",
    )
    assert (mime, html, rules) == ("guard.engine.mime", "guard.engine.html", "rules")


def test_probe_prelude_survives_the_layout_rewrite() -> None:
    """The old-layout fallbacks are not spelled as dotted module names, which the one-off layout
    rewrite (old name -> new name) would have turned into new names."""
    for old in ("guard.scan", "guard.ruleset", 'guard.clean"', "guard.mime", "guard.html"):
        assert old not in harness.GUARD_API
    assert '("", "scan")' in harness.GUARD_API and '("mail", "scan")' in harness.GUARD_API


def test_a_difference_shows_its_lines_urls_masked(capsys: pytest.CaptureFixture[str]) -> None:
    failed: list[str] = []
    old = b"a\nhttps://tracker.example/o.gif?id=1\nc\n"
    new = b"a\nhttps://tracker.example/o.gif?id=2\nc\n"
    compare_outputs.compare("corpus: guard scan", old, new, mask=True, keep=None, failed=failed)
    out = capsys.readouterr().out
    assert failed == ["corpus: guard scan"]
    assert "DIFFERS" in out and "-<url>" in out and "+<url>" in out
    assert "tracker.example" not in out


def test_identical_outputs_pass(capsys: pytest.CaptureFixture[str]) -> None:
    failed: list[str] = []
    compare_outputs.compare("x", b"same\n", b"same\n", mask=False, keep=None, failed=failed)
    assert failed == [] and "identical  x" in capsys.readouterr().out


def test_same_lines_different_bytes_is_a_difference() -> None:
    text = compare_outputs.first_difference(b"a\nb\n", b"a\r\nb\r\n", mask=False)
    assert "same lines, different bytes" in text
