"""guard's FETCH response parser (guard/mail/imap/fetchparse.py) against imapclient's: where it
gives a result, it is imapclient's result; where it does not (None), imapclient's parser takes
over. Checked on hypothesis-generated responses in imaplib's record form (the items guard asks
for, odd atoms and dates, and random damage to reach the cases it leaves to imapclient), and on
the real Dovecot's answers to the FETCHes the cleaner sends, through ImapActions.fetch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from dovecot import Dovecot
from hypothesis import event, given, settings
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response
from test_clean_imap import seed, user_name

from guard.mail.imap.fetchparse import parse_fetch


def _canon(value: Any) -> Any:
    """Comparable form: a datetime with its zone's offset and name (FixedOffset has no __eq__)."""
    if isinstance(value, datetime):
        zone = value.tzinfo
        return (
            "dt",
            value.replace(tzinfo=None),
            zone and zone.utcoffset(None),
            zone and zone.tzname(None),
        )
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_canon(v) for v in value)
    return (type(value).__name__, value)


def check(data: list[Any], normalise: bool = False, uid_is_key: bool = True) -> bool:
    """Assert parse_fetch agrees with imapclient on `data`; True when it parsed it itself."""
    mine = parse_fetch(data, normalise, uid_is_key)
    if mine is None:
        return False
    ref = parse_fetch_response(data, normalise, uid_is_key)  # must not raise where mine parsed
    assert _canon(mine) == _canon(dict(ref)), data
    return True


# -- generated responses ---------------------------------------------------------------------------

ATOMS = st.sampled_from(
    [b"\\Seen", b"\\Recent", b"\\Flagged", b"$Label1", b"Work", b"$MDNSent", b"123", b"0123", b"0",
     b"NIL", b"nil", b"\\*", b"a]b", b"x{3}", b"{3}", b"caf\xc3\xa9", b"~!#&'*+-./:;<=>?@^_`|"]
)  # fmt: skip
DATES = st.one_of(
    st.builds(
        lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes))).strftime(
            "%d-%b-%Y %H:%M:%S %z"
        ).encode(),
        st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
        st.integers(-23 * 60 - 59, 23 * 60 + 59),
    ),
    st.sampled_from(
        [b"07-Dec-2026 10:00:00 -0000", b"07-Dec-2026 10:00:00 +0000",
         b" 7-Dec-2026 10:00:00 +0100", b"31-Feb-2026 10:00:00 +0000",
         b"07-Dec-0099 10:00:00 +0000", b"07-Dec-2026 24:00:00 +0000",
         b"07-Dec-2026 10:00:00 +2400", b"07-dec-2026 10:00:00 +0000",
         b"07-Dec-2026 10.00.00 +0000", b"07-Dec-2026", b"garbage", b""]
    ),
)  # fmt: skip
LITERALS = st.binary(max_size=60) | st.sampled_from([b"From: a@b\r\n\r\nbody\r\n", b")", b"{3}"])


@st.composite
def item(draw: st.DrawFn) -> tuple[bytes, Any]:
    """(text before the value, value): bytes text, or ("literal", bytes)."""
    kind = draw(st.sampled_from(["UID", "FLAGS", "INTERNALDATE", "SIZE", "BODY", "HEADER", "MOD"]))
    if kind == "UID":
        return b"UID", str(draw(st.integers(0, 2**32))).encode()
    if kind == "FLAGS":
        return b"FLAGS", b"(" + b" ".join(draw(st.lists(ATOMS, max_size=5))) + b")"
    if kind == "INTERNALDATE":
        return b"INTERNALDATE", draw(st.sampled_from([b'"%s"', b"%s", b"NIL"])).replace(
            b"%s", draw(DATES)
        )
    if kind == "SIZE":
        return b"RFC822.SIZE", str(draw(st.integers(0, 10**9))).encode()
    name = b"BODY[]" if kind == "BODY" else b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
    if kind == "MOD":
        return b"MODSEQ", b"(" + str(draw(st.integers(0, 10**12))).encode() + b")"
    choice = draw(st.sampled_from(["literal", "literal", "nil", "quoted"]))
    if choice == "literal":
        return name, ("literal", draw(LITERALS))
    if choice == "nil":
        return name, b"NIL"
    return name, b'"' + draw(st.sampled_from([b"", b"abc", b'a\\"b', b"a b"])) + b'"'


@st.composite
def responses(draw: st.DrawFn) -> list[Any]:
    """Untagged FETCH data as imaplib hands it over: per response `SEQ (ITEMS)`, cut into a
    (text ending in {n}, literal) record at each literal, and a plain bytes record after."""
    records: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        text = str(draw(st.integers(0, 10**6))).encode() + b" ("
        items = draw(st.lists(item(), min_size=1, max_size=5))
        for i, (name, value) in enumerate(items):
            text += (b" " if i else b"") + name + b" "
            if isinstance(value, tuple):
                records.append((text + b"{%d}" % len(value[1]), value[1]))
                text = b""
            else:
                text += value
        records.append(text + b")")
    damage = draw(st.sampled_from([None, None, "insert", "delete"]))
    if damage:
        texts = [i for i, r in enumerate(records) if isinstance(r, bytes) and r]
        if texts:
            i = draw(st.sampled_from(texts))
            r = records[i]
            at = draw(st.integers(0, len(r) - 1))
            if damage == "insert":
                ch = draw(st.sampled_from([b"(", b")", b'"', b"\\", b"%", b"{", b"}", b"[", b"]",
                                           b" ", b"\x01", b"\t", b"7", b"x"]))  # fmt: skip
                records[i] = r[:at] + ch + r[at:]
            else:
                records[i] = r[:at] + r[at + 1 :]
    return records


@settings(max_examples=1500, deadline=None)
@given(responses(), st.booleans(), st.booleans())
def test_generated_responses_parse_as_imapclient_parses_them(
    data: list[Any], normalise: bool, uid_is_key: bool
) -> None:
    event("parsed here" if check(data, normalise, uid_is_key) else "left to imapclient")


@pytest.mark.parametrize(
    "data",
    [
        [b'1 (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE "07-Dec-2026 10:00:00 +0530" '
         b"RFC822.SIZE 51)"],
        [(b"1 (UID 7 BODY[] {4}", b"a\r\nb"), b")", (b"2 (UID 8 BODY[] {0}", b""), b")"],
        [(b"3 (UID 9 BODY[HEADER.FIELDS (MESSAGE-ID)] {7}", b"M: x\r\n\r"), b" FLAGS ())"],
        [(b"1 (UID 7 BODY[] {2}", b"ab"), (b" BODY[HEADER.FIELDS (X)] {1}", b"c"), b")"],
        [b"4 (FLAGS (\\Seen))", b"4 (UID 10)"],  # two responses for one message: merged
        [b'1 (UID 7 INTERNALDATE "07-Dec-2026 10:00:00 -0000")'],  # no zone: imapclient's way
    ],
)  # fmt: skip
def test_the_shapes_guard_meets_take_the_fast_path(data: list[Any]) -> None:
    assert check(data)
    assert check(data, uid_is_key=False)


@pytest.mark.parametrize(
    "data",
    [
        [b'1 (UID 7 X "a\\"b")'],  # an escape in a quoted string
        [(b"1 (UID 7 BODY[] {5}", b"abc"), b")"],  # a literal of the wrong length
        [(b"1 (UID 7 BODY[]{3}", b"abc"), b")"],  # a marker glued to a word
        [b"1 (UID 7 ENVELOPE NIL)"],  # imapclient builds an Envelope
        [b"1 (UID 7 FLAGS (\\Seen)"],  # unbalanced
        [b"1 (UID 7 X %)"],  # a character imapclient's lexer makes a token of its own
        [b"1 (UID abc)"],  # imapclient raises
        [None],  # imaplib's "nothing"
    ],
)
def test_what_it_leaves_to_imapclient(data: list[Any]) -> None:
    assert parse_fetch(data, False, True) is None


# -- the real Dovecot ----------------------------------------------------------------------------


@pytest.mark.dovecot
def test_dovecots_answers_to_the_cleaners_fetches(
    dovecot: Dovecot, request: pytest.FixtureRequest
) -> None:
    """The three item lists the cleaner fetches, on messages with varied flags, keywords and
    zones: the fast path parses every answer, as imapclient does, and ImapActions.fetch returns
    what IMAPClient.fetch returns."""
    from guard.mail.imap.common import FETCH_BODY, FETCH_MESSAGE_ID
    from guard.mail.imap.steps import ImapActions

    user = user_name(request)
    seed(dovecot, user, [(i, kind) for i, kind in enumerate(["track", "plain", "receipt"] * 3)])
    c: Any = dovecot.client(user, tls=False)
    try:
        c.normalise_times = False
        c.select_folder("INBOX")
        uids = sorted(c.search(["ALL"]))
        actions: Any = ImapActions.__new__(ImapActions)  # fetch needs only its client
        actions.client = c
        actions.account = type("A", (), {"name": "t", "host": "127.0.0.1"})()
        for items in (
            [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"],
            [FETCH_BODY],
            [FETCH_MESSAGE_ID],
        ):
            imap = c._imap
            names = " ".join(i.decode() for i in items)
            tag = imap._command("UID", "FETCH", ",".join(map(str, uids)), f"({names})")
            typ, data = imap._command_complete("FETCH", tag)
            typ, data = imap._untagged_response(typ, data, "FETCH")
            assert check(data), items
            assert _canon(actions.fetch("INBOX", uids[1:], items)) == _canon(
                c.fetch(uids[1:], items)
            )
    finally:
        c.logout()
