"""`guard strip` (MDA filter) and `guard clean PATH` (Maildir / mbox in place)."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guard.clean.message import X_GUARD
from guard.cli.args import MAILDIR_BACKUP, add_clean_path_arguments, add_strip_arguments
from guard.cli.clean import main, run_strip
from guard.engine.detect import detect
from guard.engine.mime import parse_message
from guard.engine.model import Kind
from guard.engine.rules_load import load_ruleset
from guard.mail.files import mbox_refs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
VENV_BIN = Path(sys.executable).parent
RULES = load_ruleset(include_user=False)
OPEN = "https://u1.ct.sendgrid.net/wf/open?upn=abc"
TRACKED = textwrap.dedent(
    f"""\
    From: Shop <news@shop.example.com>
    To: reader@example.org
    Subject: Sale
    Disposition-Notification-To: news@shop.example.com
    X-Guard: cleaned; policy=default; removed nothing
    Content-Type: text/html; charset=utf-8

    <p>Hi</p><img src="{OPEN}" width="1" height="1">
    """
).encode()
CLEAN = b"From: friend@example.net\nSubject: lunch?\nContent-Type: text/plain\n\nSee you at noon.\n"


def strip_ns(policy: str = "default") -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_strip_arguments(parser)
    return parser.parse_args(["--policy", policy])


def strip(raw: bytes, policy: str = "default") -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = run_strip(strip_ns(policy), io.BytesIO(raw), out, err)
    return code, out.getvalue(), err.getvalue()


def pixels(raw: bytes) -> list[str]:
    parsed, envelope = parse_message(raw)
    findings = detect(parsed, RULES, sender=envelope.from_addr)
    return [f.url or "" for f in findings if f.kind is Kind.PIXEL]


# ---- guard strip, in process --------------------------------------------------------------------


def test_strip_cleans_a_tracked_message() -> None:
    code, out, err = strip(TRACKED)
    assert code == 0 and err == ""
    assert pixels(out) == [] and OPEN.encode() not in out
    assert b"Disposition-Notification-To" not in out
    assert out.count(b"X-Guard:") == 1 and b"forged-x-guard=1" in out


def test_strip_passes_a_clean_message_byte_for_byte() -> None:
    assert strip(CLEAN) == (0, CLEAN, "")


def test_strip_strict_policy() -> None:
    raw = CLEAN.replace(b"text/plain", b"text/html").replace(
        b"See you at noon.", b'<img src="https://cdn.example.net/a.png" alt="A">'
    )
    code, out, _ = strip(raw, "strict")
    assert code == 0 and b"cdn.example.net" not in out and b'alt="A"' in out


HOSTILE = [
    b"",
    b"\x00\x01\x02\xff" * 100,
    b"no headers at all, just text",
    b"Content-Type: multipart/mixed; boundary=x\n\n"
    + b"--x\nContent-Type: message/rfc822\n\n" * 300,
    b"From: a@b\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n\x00\x00===",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_strip_passes_what_it_cannot_handle_unchanged(raw: bytes) -> None:
    code, out, err = strip(raw)
    assert code == 0
    assert out == raw
    if err:
        assert err.count("\n") == 1 and err.startswith("guard strip: warning: ")
        assert "unchanged" in err


def test_strip_with_broken_user_rules_passes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_dir = tmp_path / "config" / "guard" / "rules"
    rules_dir.mkdir(parents=True)
    (rules_dir / "bad.toml").write_text("this is [not toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    code, out, err = strip(TRACKED)
    assert (code, out) == (0, TRACKED)
    assert err.startswith("guard strip: warning: rules:") and err.count("\n") == 1


def test_strip_reports_a_failed_write_with_nonzero_exit() -> None:
    class Broken(io.BytesIO):
        def write(self, data: object) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    code = run_strip(strip_ns(), io.BytesIO(TRACKED), Broken(), err)
    assert code != 0 and "cannot write" in err.getvalue()


# ---- guard strip, as a process ------------------------------------------------------------------


def _run(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SAMPLES.parent)}
    return subprocess.run(args, input=data, capture_output=True, timeout=60, env=env, check=False)


@pytest.mark.parametrize("raw", [TRACKED, CLEAN, *HOSTILE], ids=range(2 + len(HOSTILE)))
def test_strip_subprocess(raw: bytes) -> None:
    done = _run([sys.executable, "-m", "guard.cli.clean", "strip"], raw)
    assert done.returncode == 0
    assert b"Traceback" not in done.stderr
    if raw == TRACKED:
        assert pixels(done.stdout) == [] and done.stderr == b""
    else:
        assert done.stdout == raw


@pytest.mark.parametrize("raw", [TRACKED, CLEAN, HOSTILE[1]], ids=["tracked", "clean", "junk"])
def test_strip_console_script(raw: bytes) -> None:
    """The installed `guard` script (pyproject's console script) runs `strip`: the test command
    installs the package, so a missing script is a failure, not a skip."""
    script = VENV_BIN / "guard"
    assert script.exists(), f"{script}: the console script is not installed"
    done = _run([str(script), "strip"], raw)
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    if raw == TRACKED:
        assert pixels(done.stdout) == []
    else:
        assert done.stdout == raw


# ---- guard clean PATH ---------------------------------------------------------------------------


def tree_digest(root: Path) -> dict[str, str]:
    """Every file (and directory) under root with its content hash."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        found[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return found


def clean_path(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    parser = argparse.ArgumentParser()
    add_clean_path_arguments(parser)
    from guard.cli.clean_path import run_clean_path

    code = run_clean_path(parser.parse_args(list(args)), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    shutil.copytree(SAMPLES / "maildir", root)
    (root / "tmp").mkdir(exist_ok=True)
    return root


@pytest.fixture
def mbox(tmp_path: Path) -> Path:
    path = tmp_path / "archive.mbox"
    shutil.copyfile(SAMPLES / "mbox" / "archive.mbox", path)
    return path


def test_clean_maildir_dry_run_changes_nothing(maildir: Path) -> None:
    before = tree_digest(maildir.parent)
    code, out, _ = clean_path(str(maildir), "--dry-run")
    assert code == 0
    assert tree_digest(maildir.parent) == before
    assert "[pixel 1]" in out and "[receipt-header 1]" in out and "[clean]" in out
    assert "3 messages: 2 to clean, 1 clean, 0 skipped (dry run: nothing changed)" in out


def test_clean_maildir_rewrites_and_keeps_originals(maildir: Path) -> None:
    originals = {p.name: p.read_bytes() for p in maildir.glob("[cn]*/*") if p.is_file()}
    untouched = maildir / "new" / "1710928800.M903P2231.mailhost"
    code, out, err = clean_path(str(maildir))
    assert code == 0, err
    assert "2 cleaned, 1 clean" in out
    assert untouched.read_bytes() == originals[untouched.name]
    backup = maildir / MAILDIR_BACKUP
    kept = {p.name: p.read_bytes() for p in backup.glob("*/*") if p.is_file()}
    assert kept == {name: data for name, data in originals.items() if name != untouched.name}
    assert (backup / "tmp").is_dir() and (backup / "maildirfolder").exists()
    cur = sorted(p for p in (maildir / "cur").iterdir())
    assert len(cur) == 2 and not any(p.name in originals for p in cur)
    flags = sorted(p.name.rpartition(":")[2] for p in cur)
    assert flags == ["2,RS", "2,S"]  # the cleaned copies keep their flags
    for path in cur:
        data = path.read_bytes()
        assert pixels(data) == [] and data.count(f"{X_GUARD}:".encode()) == 1
        assert f",S={len(data)}:" in path.name
    assert [p.name for p in (maildir / "tmp").iterdir()] == [".keep"]  # nothing staged left
    # A second run finds nothing to do.
    after = tree_digest(maildir)
    code, out, _ = clean_path(str(maildir))
    assert code == 0 and "0 cleaned" in out and tree_digest(maildir) == after


def test_clean_mbox_dry_run_changes_nothing(mbox: Path) -> None:
    before = tree_digest(mbox.parent)
    code, out, _ = clean_path(str(mbox), "--dry-run")
    assert code == 0 and tree_digest(mbox.parent) == before
    assert "2 to clean, 1 clean" in out


def test_clean_mbox_rewrites_and_keeps_orig(mbox: Path) -> None:
    original = mbox.read_bytes()
    code, out, err = clean_path(str(mbox))
    assert code == 0, err
    assert Path(f"{mbox}.orig").read_bytes() == original
    new = mbox.read_bytes()
    refs = list(mbox_refs(mbox, "m"))
    old_refs = list(mbox_refs(Path(f"{mbox}.orig"), "o"))
    assert len(refs) == 3
    first, second, _third = (ref.read() for ref in refs)
    assert b"Disposition-Notification-To" not in first
    assert b"\nFrom now on" in first and b"\n>From the gate" in first  # read: unquoted once
    assert b"\n>From now on" in new and b"\n>>From the gate" in new  # written: quoted again
    assert pixels(second) == []
    t = old_refs[2]
    assert new[refs[2].offset :] == original[t.offset :]  # the untouched message, byte for byte
    assert new.startswith(b"From MAILER-DAEMON Mon Mar 18 10:00:00 2024\n")
    assert not Path(f"{mbox}.lock").exists()
    # Again: nothing to do, no second backup.
    code, out, _ = clean_path(str(mbox))
    assert code == 0 and "0 cleaned" in out and mbox.read_bytes() == new
    assert not Path(f"{mbox}.orig.1").exists()


def test_clean_mbox_refuses_a_locked_mbox(mbox: Path) -> None:
    Path(f"{mbox}.lock").write_text("")
    before = mbox.read_bytes()
    code, _, err = clean_path(str(mbox))
    assert code != 0 and "locked" in err and mbox.read_bytes() == before
    assert not Path(f"{mbox}.orig").exists()


def test_clean_path_errors(tmp_path: Path) -> None:
    assert clean_path()[0] == 2
    code, _, err = clean_path(str(tmp_path / "missing"))
    assert code == 3 and "no such file" in err
    (tmp_path / "plain").mkdir()
    code, _, err = clean_path(str(tmp_path / "plain"))
    assert code == 3 and "not a Maildir" in err


def test_module_entry_point_clean_dry_run(
    maildir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_digest(maildir)
    assert main(["clean", "--dry-run", "--policy", "strict", str(maildir)]) == 0
    assert tree_digest(maildir) == before
    assert "dry run" in capsys.readouterr().out
