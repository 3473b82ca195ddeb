"""The command line: output formats, exit codes and error messages."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guard.cli.main import main

OPEN = "https://u1.ct.sendgrid.net/wf/open?upn=abc"
GOOGLE = "https://www.google.com/url?q=https://www.example.com/p%3Futm_source%3Dnl%26id%3D1&sa=D"

TRACKED = textwrap.dedent(
    f"""\
    From: Shop News <news@shop.example.com>
    To: reader@example.org
    Subject: =?utf-8?q?Soldes_d=27=C3=A9t=C3=A9?=
    Date: Tue, 04 Jun 2024 10:00:00 +0000
    Message-ID: <m1@shop.example.com>
    Disposition-Notification-To: news@shop.example.com
    Content-Type: text/html; charset=utf-8

    <p>Hi</p><img src="{OPEN}" width="1" height="1">
    <a href="{GOOGLE}">sale</a>
    """
).encode()

CLEAN = b"From: friend@example.net\nSubject: lunch?\nContent-Type: text/plain\n\nSee you at noon.\n"


@pytest.fixture
def mail(tmp_path: Path) -> Path:
    root = tmp_path / "mail"
    root.mkdir()
    (root / "1-tracked.eml").write_bytes(TRACKED)
    (root / "2-clean.eml").write_bytes(CLEAN)
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- text --------------------------------------------------------------------------------------


def test_text_output_badges_and_senders_table(
    mail: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "scan", str(mail))
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    tracked_line = next(line for line in lines if line.endswith("1-tracked.eml"))
    for badge in ("[pixel 1]", "[link 1]", "[param 1]", "[receipt]"):
        assert badge in tracked_line
    clean_line = next(line for line in lines if line.endswith("2-clean.eml"))
    assert "[clean]" in clean_line
    assert "from news@shop.example.com: Soldes d'été" in out
    assert "2 messages scanned: 1 track you, 0 could not be read." in out
    table = lines[lines.index("Who tracks you (by sender)") :]
    row = next(line for line in table if "news@shop.example.com" in line)
    assert "1/1" in row and "SendGrid" in row and "Google redirect" in row
    assert "friend@example.net" not in "\n".join(table)  # untracked senders are not listed


def test_text_verbose_lists_findings_and_summary_hides_messages(
    mail: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, verbose, _ = run(capsys, "scan", "-v", str(mail / "1-tracked.eml"))
    assert OPEN in verbose
    assert "-> https://www.example.com/p?utm_source=nl&id=1" in verbose
    _, summary, _ = run(capsys, "scan", "--summary", str(mail))
    assert "[pixel 1]" not in summary
    assert "Who tracks you (by sender)" in summary


# ---- JSON --------------------------------------------------------------------------------------

MESSAGE_FIELDS = {
    "source", "id", "message_id", "from", "subject", "date", "error", "esp", "findings",
}  # fmt: skip
FINDING_FIELDS = {
    "kind",
    "tracker",
    "rule",
    "confidence",
    "url",
    "destination",
    "header",
    "element",
}
SENDER_FIELDS = {
    "sender",
    "domain",
    "messages",
    "tracking_messages",
    "trackers",
    "pixels",
    "links",
    "receipts",
}


def test_json_document(mail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (mail / "3-broken.eml").write_bytes(b"")
    code, out, err = run(capsys, "scan", "--format", "json", str(mail))
    assert code == 0 and err == ""
    doc = json.loads(out)  # the whole of stdout is one JSON document
    assert {"messages", "senders"} <= set(doc)
    messages = {Path(m["source"]).name: m for m in doc["messages"]}
    assert set(messages) == {"1-tracked.eml", "2-clean.eml", "3-broken.eml"}
    for m in doc["messages"]:
        assert set(m) >= MESSAGE_FIELDS
        for f in m["findings"]:
            assert set(f) >= FINDING_FIELDS

    tracked = messages["1-tracked.eml"]
    assert tracked["id"] == "1-tracked.eml"
    assert tracked["message_id"] == "<m1@shop.example.com>"
    assert tracked["from"] == "news@shop.example.com"
    assert tracked["subject"] == "Soldes d'été"
    assert tracked["date"] == "Tue, 04 Jun 2024 10:00:00 +0000"
    assert tracked["error"] is None
    by_kind = {f["kind"]: f for f in tracked["findings"]}
    assert set(by_kind) == {"pixel", "link", "param", "receipt"}
    assert by_kind["pixel"]["url"] == OPEN
    assert by_kind["pixel"]["tracker"] == "SendGrid"
    assert by_kind["pixel"]["confidence"] == "known"
    assert by_kind["pixel"]["element"] == "img[src]"
    assert by_kind["link"]["destination"] == "https://www.example.com/p?utm_source=nl&id=1"
    assert by_kind["param"]["url"] == "https://www.example.com/p?utm_source=nl&id=1"
    assert by_kind["receipt"]["header"] == "Disposition-Notification-To"
    assert by_kind["receipt"]["url"] is None

    assert messages["2-clean.eml"]["findings"] == []
    assert messages["2-clean.eml"]["error"] is None
    broken = messages["3-broken.eml"]
    assert broken["error"] and "\n" not in broken["error"]
    assert broken["findings"] == []

    senders = {s["sender"]: s for s in doc["senders"]}
    for s in doc["senders"]:
        assert set(s) >= SENDER_FIELDS
    news = senders["news@shop.example.com"]
    assert news["domain"] == "example.com"
    assert (news["messages"], news["tracking_messages"]) == (1, 1)
    assert (news["pixels"], news["links"], news["receipts"]) == (1, 1, 1)
    assert {"SendGrid", "Google redirect", "Read receipt request"} <= set(news["trackers"])
    friend = senders["friend@example.net"]
    assert (friend["messages"], friend["tracking_messages"], friend["trackers"]) == (1, 0, [])


def test_json_with_no_messages_is_still_a_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = run(capsys, "scan", "--format", "json", str(empty))
    assert code == 0
    doc = json.loads(out)
    assert doc["messages"] == [] and doc["senders"] == []


# ---- CSV ---------------------------------------------------------------------------------------


def test_csv_one_row_per_finding(mail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "--format", "csv", str(mail))
    assert code == 0 and err == ""
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames is not None
    assert {
        "source",
        "id",
        "from",
        "subject",
        "error",
        "kind",
        "tracker",
        "url",
        "destination",
    } <= set(reader.fieldnames)
    rows = list(reader)
    tracked = [r for r in rows if r["id"] == "1-tracked.eml"]
    assert sorted(r["kind"] for r in tracked) == ["link", "param", "pixel", "receipt"]
    assert all(r["from"] == "news@shop.example.com" for r in tracked)
    pixel = next(r for r in tracked if r["kind"] == "pixel")
    assert (pixel["url"], pixel["tracker"]) == (OPEN, "SendGrid")
    param = next(r for r in tracked if r["kind"] == "param")
    assert param["params"] == "utm_source"
    # a message without findings still gets one row, with empty finding columns
    [clean] = [r for r in rows if r["id"] == "2-clean.eml"]
    assert clean["kind"] == "" and clean["url"] == ""
    assert len(rows) == 5


# ---- exit codes and errors ---------------------------------------------------------------------


def test_missing_path_exit_3_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, out, err = run(capsys, "scan", str(missing))
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("guard: ")
    assert str(missing) in err
    assert "Traceback" not in err


def test_missing_path_among_good_ones_still_fails(
    mail: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "scan", str(mail), str(mail / "missing.eml"))
    assert code == 3
    assert "missing.eml" in err


def test_scan_without_paths_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan")
    assert code == 2
    assert err.startswith("guard: ") and err.count("\n") == 1


def test_no_command_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 2
    assert "scan" in out  # the help is shown


def test_bad_option_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["scan", "--format", "xml", "x.eml"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_broken_message_is_an_error_entry_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.eml"
    path.write_bytes(b"not a mail message at all\n")
    code, out, err = run(capsys, "scan", str(path))
    assert code == 0 and err == ""
    assert "[error]" in out
    assert "error: no headers" in out
    assert "1 messages scanned: 0 track you, 1 could not be read." in out


def test_over_size_message_is_an_error_entry(
    mail: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = mail / "big.eml"
    big.write_bytes(CLEAN + b"x" * 300_000)
    code, out, _ = run(capsys, "scan", "--format", "json", "--max-message-size", "0.1", str(big))
    assert code == 0
    [message] = json.loads(out)["messages"]
    assert "exceeds the limit" in message["error"]


def test_malformed_user_rules_exit_4(
    mail: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "cfg" / "guard" / "rules"
    rules.mkdir(parents=True)
    (rules / "bad.toml").write_text("[[service]]\nid = 'x'\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    code, out, err = run(capsys, "scan", str(mail))
    assert code == 4
    assert out == ""
    assert err.count("\n") == 1 and "bad.toml" in err


# ---- rules -------------------------------------------------------------------------------------


def test_rules_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "list", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) > 20
    for row in rows:
        assert {"id", "tracker", "kind", "category"} <= set(row)
        assert row["kind"] in {"pixel", "link", "param", "receipt", "spacer", "host", "sender"}
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    assert any(row["tracker"] == "SendGrid" and row["kind"] == "pixel" for row in rows)


def test_rules_list_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "list")
    assert code == 0
    assert "rules," in out.splitlines()[-1] and "services" in out.splitlines()[-1]


def test_rules_test_passes_on_bundled_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "test")
    assert code == 0
    assert "FAIL" not in out
    assert out.rstrip().endswith(" 0 failed")


def test_rules_test_reports_a_failing_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "cfg" / "guard" / "rules"
    rules.mkdir(parents=True)
    (rules / "mine.toml").write_text(
        textwrap.dedent(
            """\
            [[service]]
            id = "mine"
            name = "Mine"
            category = "esp"
            source = "observed: test"

            [[service.rule]]
            id = "open"
            kind = "pixel"
            hosts = ["t.mine.com"]
            path = '^/open$'
            match = ["https://t.mine.com/open", "https://t.mine.com/wrong"]
            no_match = ["https://t.mine.com/other"]
            """
        )
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    code, out, _ = run(capsys, "rules", "test")
    assert code == 4
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert fails == [
        f"FAIL mine.open ({rules / 'mine.toml'}): does not match https://t.mine.com/wrong"
    ]
    assert out.rstrip().endswith(" 1 failed")


# ---- the installed entry point -----------------------------------------------------------------


def test_console_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "t.eml"
    path.write_bytes(TRACKED)
    guard = Path(sys.executable).parent / "guard"
    # The test command installs the package: the console script is there, or that is the bug.
    assert guard.exists(), f"{guard}: the console script is not installed"
    proc = subprocess.run(
        [str(guard), "scan", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr == ""
    assert "[pixel 1]" in proc.stdout and str(path) in proc.stdout
