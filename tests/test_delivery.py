"""The delivery recipe (contrib/dovecot, docs/delivery.md) on a real Dovecot: LMTP in, IMAP out.

A real Dovecot 2.3 with Pigeonhole runs the recipe's sieve_before script, which pipes every
message through the recipe's `guard-strip` program (vnd.dovecot.filter). Messages from samples/
go in over LMTP (smtplib.LMTP) and are read back over IMAP:

- tracking mail is stored cleaned, as `guard strip` cleans it; a receipt request is removed and
  the message flagged $MDNSent, decided from guard's X-Guard header;
- a message guard cannot parse, a failing filter and a filter that hangs all deliver the message
  unchanged, never refused or lost, the hang within the filter time-out;
- the backup variant keeps the original (fileinto :copy :create) and the inbox copy is cleaned;
- a user's own Sieve script (fileinto) still runs, on the cleaned message;
- per-recipient settings from the administrator's directory: opt-out, strict, allowlist.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import smtplib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery import CONTRIB, FILTER_TIMEOUT, DeliveryServer, _guard_venv, recipe_text

from guard.cli.args import add_strip_arguments
from guard.cli.strip import run_strip
from guard.engine.detect import detect
from guard.engine.mime import parse_message
from guard.engine.model import Kind
from guard.engine.rules_load import load_ruleset

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "eml"
DOCS = ROOT / "docs" / "delivery.md"
RULES = load_ruleset(include_user=False)
TRACKED = [
    "activecampaign-course-reminder.eml",
    "sendgrid-shop-newsletter.eml",
    "substack-essay.eml",
]
RECEIPT = "receipt-dnt-landlord-plain.eml"
CLEAN = "negative-personal-plain-text.eml"
# What Dovecot's LMTP adds on top of every delivered message.
_ADDED = re.compile(rb"\A(?:(?:Return-Path|Delivered-To|Received):.*\n(?:[ \t].*\n)*)*")


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def as_sent(message: bytes) -> bytes:
    """A message without the trace headers on top (Dovecot's LMTP replaces Return-Path and adds
    Delivered-To and Received), with LF line ends and without the line end Dovecot's LMTP adds
    at the very end of every stored message (seen with the filter failing or absent too)."""
    message = _lf(message)
    return message[_ADDED.match(message).end() :].rstrip(b"\n")  # type: ignore[union-attr]


stored_as_sent = as_sent


def local_strip(raw: bytes, *args: str) -> bytes:
    import argparse

    parser = argparse.ArgumentParser()
    add_strip_arguments(parser)
    out, err = io.BytesIO(), io.StringIO()
    assert run_strip(parser.parse_args(list(args)), io.BytesIO(raw), out, err) == 0
    return out.getvalue()


def tracking(raw: bytes) -> list[str]:
    """The tracking pixels in a message (links guard cannot decode offline stay, by design)."""
    parsed, envelope = parse_message(raw)
    found = detect(parsed, RULES, sender=envelope.from_addr)
    return [f.url or "" for f in found if f.kind is Kind.PIXEL]


def _start(sieve: str, venv: Path) -> DeliveryServer:
    try:
        return DeliveryServer.start(sieve, venv=venv)
    except (RuntimeError, OSError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(f"no Dovecot with LMTP + Sieve here: {exc}")


@pytest.fixture(scope="module")
def venv() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="guard-venv-"))
    os.chmod(where, 0o755)
    try:
        _guard_venv(where / "venv")
    except Exception as exc:  # noqa: BLE001 - no system Python of this version: skip
        shutil.rmtree(where, ignore_errors=True)
        pytest.skip(f"cannot make a guard install the mail user can run: {exc}")
    yield where / "venv"
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def server(venv: Path) -> Iterator[DeliveryServer]:
    s = _start("guard.sieve", venv)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def backup_server(venv: Path) -> Iterator[DeliveryServer]:
    s = _start("guard-backup.sieve", venv)
    yield s
    s.stop()


@pytest.fixture
def recipe_filter(server: DeliveryServer) -> Iterator[DeliveryServer]:
    """The server with the recipe's own filter program again after the test."""
    yield server
    server.set_filter(None)


# -- the recipe as the documentation shows it ---------------------------------------------------


@pytest.mark.parametrize(
    "name", ["90-guard.conf", "guard.sieve", "guard-backup.sieve", "guard-strip"]
)
def test_the_documentation_shows_the_tested_files(name: str) -> None:
    """docs/delivery.md carries each recipe file verbatim: what is tested is what is documented."""
    assert (CONTRIB / name).read_text() in DOCS.read_text()


# -- delivering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRACKED)
def test_tracking_mail_is_stored_cleaned(server: DeliveryServer, name: str) -> None:
    raw = _sample(name)
    assert tracking(raw), "the sample tracks"
    user = f"clean-{name.split('.')[0]}@example.org"
    server.deliver(user, raw)
    ((flags, stored),) = server.messages(user)
    kept = stored_as_sent(stored)
    assert b"\nX-Guard: cleaned; policy=default" in b"\n" + kept
    assert tracking(kept) == []
    # exactly what guard strip makes of the message here
    assert kept == as_sent(local_strip(raw))
    assert b"$MDNSent" not in flags


def test_receipt_request_is_declined_by_flag(server: DeliveryServer) -> None:
    raw = _sample(RECEIPT)
    assert re.search(rb"(?im)^Disposition-Notification-To:", raw)
    server.deliver("receipts@example.org", raw)
    ((flags, stored),) = server.messages("receipts@example.org")
    assert b"$MDNSent" in flags
    assert not re.search(rb"(?im)^Disposition-Notification-To:", stored)
    assert re.search(rb"(?m)^X-Guard: .*receipt-header=1", _lf(stored))


def test_mail_without_tracking_is_stored_as_it_came(server: DeliveryServer) -> None:
    raw = _sample(CLEAN)
    server.deliver("plain@example.org", raw)
    ((flags, stored),) = server.messages("plain@example.org")
    assert stored_as_sent(stored) == as_sent(raw)
    assert b"$MDNSent" not in flags


def test_a_forged_x_guard_sets_no_flag_on_tracking_mail(server: DeliveryServer) -> None:
    """A sender's own X-Guard claiming a removed receipt is dropped when guard cleans."""
    raw = b"X-Guard: cleaned; removed receipt-header=1\n" + _sample(TRACKED[0])
    server.deliver("forged@example.org", raw)
    ((flags, stored),) = server.messages("forged@example.org")
    assert b"$MDNSent" not in flags
    assert b"forged-x-guard=1" in _lf(stored)


def _deep_message(depth: int = 80) -> bytes:
    """Tracking mail nested deeper than guard parses (its limit is 64 levels)."""
    pixel = b'<img src="https://u1.ct.sendgrid.net/wf/open?upn=a" width="1">'
    body = b"Content-Type: text/html\n\n" + pixel + b"\n"
    for i in range(depth, 0, -1):
        body = b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n%s--b%d--\n" % (
            i,
            i,
            body,
            i,
        )
    return b"From: News <news@shop.example.com>\nTo: deep@example.org\nSubject: deep\n" + body


def test_mail_guard_cannot_parse_is_delivered_unchanged(server: DeliveryServer) -> None:
    raw = _deep_message()
    assert local_strip(raw) == raw
    server.deliver("deep@example.org", raw)
    ((_flags, stored),) = server.messages("deep@example.org")
    assert stored_as_sent(stored) == as_sent(raw)


@pytest.mark.parametrize(
    "program",
    [
        "#!/bin/sh\ncat >/dev/null\necho 'half a message'\nexit 70\n",  # guard fails
        "#!/bin/sh\nexec /nonexistent/guard strip\n",  # guard not installed any more
        "#!/bin/sh\nkill -9 $$\n",  # guard killed (out of memory, an administrator)
    ],
    ids=["fails", "missing", "killed"],
)
def test_a_failing_filter_delivers_the_message_unchanged(
    recipe_filter: DeliveryServer, program: str
) -> None:
    server = recipe_filter
    server.set_filter(program)
    raw = _sample(TRACKED[0])
    user = f"failing-{abs(hash(program)) % 10**6}@example.org"
    server.deliver(user, raw)
    ((_flags, stored),) = server.messages(user)
    assert stored_as_sent(stored) == as_sent(raw)


def test_guard_out_of_time_delivers_the_message_unchanged(recipe_filter: DeliveryServer) -> None:
    """guard's own limit (--time-limit in the recipe, below Sieve's time-out) expiring."""
    server = recipe_filter
    program = recipe_text("guard-strip", server.root)
    assert "--time-limit 5 " in program
    server.set_filter(program.replace("--time-limit 5 ", "--time-limit 0.001 "))
    raw = _sample(TRACKED[1])
    server.deliver("late@example.org", raw)
    ((_flags, stored),) = server.messages("late@example.org")
    assert stored_as_sent(stored) == as_sent(raw)


def test_a_filter_past_the_sieve_timeout_is_never_acknowledged_and_lost(
    recipe_filter: DeliveryServer,
) -> None:
    """A filter still running at sieve_filter_exec_timeout is killed. Dovecot 2.3.19's LMTP then
    aborts the whole delivery (a panic in its program client, see docs/delivery.md): the message
    is not stored and LMTP never says it was, so the sending MTA keeps it and retries. What must
    never happen is an acknowledged delivery with nothing stored."""
    server = recipe_filter
    server.set_filter("#!/bin/sh\nexec /bin/sleep 600\n")
    raw = _sample(TRACKED[0])
    start = time.monotonic()
    try:
        server.deliver("slow@example.org", raw)
        acknowledged = True
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException):
        acknowledged = False
    waited = time.monotonic() - start
    stored = server.messages("slow@example.org")
    if acknowledged:
        ((_flags, message),) = stored
        assert stored_as_sent(message) == as_sent(raw)
    else:
        assert stored == []
    # it ends at the filter time-out (plus Dovecot's grace to kill it), not when the hang would
    assert waited < FILTER_TIMEOUT + 30, waited


# -- the original kept, users' own scripts ---------------------------------------------------------


def test_backup_variant_keeps_the_original(backup_server: DeliveryServer) -> None:
    raw = _sample(TRACKED[1])
    backup_server.deliver("keeper@example.org", raw)
    ((_f, inbox),) = backup_server.messages("keeper@example.org")
    ((_g, original),) = backup_server.messages("keeper@example.org", "Guard Originals")
    assert stored_as_sent(original) == as_sent(raw)
    assert tracking(stored_as_sent(inbox)) == [] and b"X-Guard: cleaned" in inbox


def test_without_backup_there_is_no_backup_folder(server: DeliveryServer) -> None:
    server.deliver("nobackup@example.org", _sample(TRACKED[1]))
    assert server.folders("nobackup@example.org") == ["INBOX"]


_OWN_SCRIPT = """require ["fileinto", "mailbox"];
if header :contains "From" "CourseHub" {
  fileinto :create "Courses";
} elsif exists "X-Guard" {
  fileinto :create "Cleaned";
}
"""


@pytest.mark.dovecot  # its server comes from getfixturevalue: the conftest cannot see it
@pytest.mark.parametrize("variant", ["server", "backup_server"])
def test_a_users_own_sieve_script_still_works(variant: str, request: pytest.FixtureRequest) -> None:
    server: DeliveryServer = request.getfixturevalue(variant)
    user = f"own-script-{variant}@example.org"
    server.set_user_sieve(user, _OWN_SCRIPT)
    raw = _sample(TRACKED[0])  # From: "CourseHub" …
    assert re.search(rb"(?im)^From:.*CourseHub", raw)
    server.deliver(user, raw)
    server.deliver(user, _sample(CLEAN))
    server.deliver(user, _sample(RECEIPT))
    ((_f, filed),) = server.messages(user, "Courses")
    assert tracking(stored_as_sent(filed)) == [] and b"X-Guard: cleaned" in filed
    ((_g, inbox),) = server.messages(user)
    assert stored_as_sent(inbox) == as_sent(_sample(CLEAN))
    # the user's script sees the cleaned message (guard's header), and the flag guard's script
    # set travels with the message into the user's folder
    ((flags, declined),) = server.messages(user, "Cleaned")
    assert b"receipt-header=1" in declined and b"$MDNSent" in flags
    if variant == "backup_server":
        originals = [stored_as_sent(m) for _, m in server.messages(user, "Guard Originals")]
        assert originals == [as_sent(m) for m in (raw, _sample(CLEAN), _sample(RECEIPT))]


# -- per-recipient settings ------------------------------------------------------------------------


def test_a_user_who_opted_out_gets_mail_unchanged(server: DeliveryServer) -> None:
    server.set_user_policy("optout@example.org", "enabled = false\n")
    raw = _sample(TRACKED[0])
    server.deliver("optout@example.org", raw)
    ((_f, stored),) = server.messages("optout@example.org")
    assert stored_as_sent(stored) == as_sent(raw)


def test_a_users_strict_policy_and_allowlist_apply(server: DeliveryServer) -> None:
    server.set_user_policy("strict@example.org", 'policy = "strict"\n')
    server.deliver("strict@example.org", _sample(TRACKED[0]))
    ((_f, stored),) = server.messages("strict@example.org")
    assert b"X-Guard: cleaned; policy=strict" in stored

    raw = _sample(TRACKED[2])
    sender = parse_message(raw)[1].from_addr
    assert sender
    server.set_user_policy(
        "allows@example.org", f"allow_senders = [{sender!r}]\n".replace("'", '"')
    )
    server.deliver("allows@example.org", raw)
    server.deliver("allows@example.org", _sample(TRACKED[0]))
    (_, allowed), (_, other) = server.messages("allows@example.org")
    assert stored_as_sent(allowed) == as_sent(raw)
    assert b"X-Guard: cleaned; policy=default" in other


def test_a_broken_policy_file_means_the_administrators_policy(server: DeliveryServer) -> None:
    server.set_user_policy("broken@example.org", "policy = [not toml\n")
    server.deliver("broken@example.org", _sample(TRACKED[0]))
    ((_f, stored),) = server.messages("broken@example.org")
    assert b"X-Guard: cleaned; policy=default" in stored
