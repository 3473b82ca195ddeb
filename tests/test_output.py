"""Each message's output made on its own (in a worker) is the output made of all results at once."""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from guard.cli.output import JsonDocument, csv_rows, csv_text, json_message, present, write_json
from guard.engine.model import Confidence, Envelope, Esp, Finding, Kind, MessageResult, Party
from guard.engine.rules_load import load_ruleset
from guard.mail.files import message_refs
from guard.mail.scan import PARALLEL_THRESHOLD, scan_refs, scan_refs_as

ROOT = Path(__file__).resolve().parent.parent

# Characters csv quotes or doubles, next to ordinary ones and non-ASCII text.
text = st.text(alphabet=st.sampled_from('ab ,"\r\n\t;é€'), max_size=6)
maybe = st.none() | text

finding = st.builds(
    Finding,
    kind=st.sampled_from(Kind),
    confidence=st.sampled_from(Confidence),
    rule=text,
    tracker=maybe,
    category=maybe,
    url=maybe,
    destination=maybe,
    header=maybe,
    value=maybe,
    element=maybe,
    params=st.lists(text, max_size=2).map(tuple),
    host=maybe,
    party=st.none() | st.sampled_from(Party),
    leak=maybe,
    via=maybe,
)
result = st.builds(
    MessageResult,
    source=text,
    id=text,
    envelope=st.builds(Envelope, from_addr=text, subject=text, date=text, message_id=text),
    findings=st.lists(finding, max_size=4).map(tuple),
    error=maybe,
    esp=st.none()
    | st.builds(Esp, service=text, name=text, evidence=st.lists(text, max_size=2).map(tuple)),
)


@given(result)
def test_csv_text_is_what_csv_writer_writes(r: MessageResult) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(csv_rows(r))
    assert csv_text(r) == buffer.getvalue()


@given(st.lists(result, max_size=3))
def test_streamed_json_document_is_the_one_shot_dump(results: list[MessageResult]) -> None:
    buffer = io.StringIO()
    write_json(results, buffer)
    out = buffer.getvalue()
    document = json.loads(out)
    assert out == json.dumps(document, ensure_ascii=False) + "\n"
    assert [json.dumps(m, ensure_ascii=False) for m in document["messages"]] == [
        json_message(r) for r in results
    ]


def test_json_document_without_messages() -> None:
    buffer = io.StringIO()
    JsonDocument(buffer).close()
    assert json.loads(buffer.getvalue()) == {
        "messages": [],
        "senders": [],
        "domains": [],
        "trackers": [],
    }


def test_workers_present_what_one_process_presents() -> None:
    rules = load_ruleset(include_user=False)
    refs = list(message_refs(str(ROOT / "samples")))
    assert len(refs) >= PARALLEL_THRESHOLD  # so jobs=2 starts worker processes
    results = list(scan_refs(refs, rules, jobs=1))
    for fmt in ("text", "json", "csv"):
        presenter = functools.partial(present, fmt=fmt, verbose=True, summary=False)
        in_workers = list(scan_refs_as(presenter, refs, rules, jobs=2))
        assert in_workers == [presenter(r) for r in results]
