"""Presentation of scan results: text (people), JSON (one document), CSV (one row per finding).

Each message's part of the output can be made apart from the rest (`present`), where it was
scanned: a worker process then sends the parent text and a small tally instead of findings.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, NamedTuple

from guard.engine.model import Esp, Finding, Kind, MessageResult
from guard.engine.report import (
    MessageStats,
    MessageTally,
    SenderRow,
    badges,
    sender_tables,
    tally,
    tracker_table,
)

FORMATS = ("text", "json", "csv")

# ---- text ---------------------------------------------------------------------------------------


def _finding_line(f: Finding) -> str:
    who = f.tracker or "-"
    if f.kind is Kind.RECEIPT:
        what = f"{f.header}: {f.value or ''}"
    elif f.kind is Kind.PARAM:
        what = f"{', '.join(f.params)} on {f.url}"
    elif f.kind is Kind.LINK:
        what = f"{f.url}\n{'':14}-> {f.destination or '(opaque: target not in the URL)'}"
    else:
        what = f"{f.url}  ({f.element})"
    return f"    {f.kind.value:<8} {who:<24} {what}  [{f.rule}, {f.confidence.value}]"


def text_message(
    result: MessageResult, verbose: bool = False, stats: MessageStats | None = None
) -> str:
    stats = stats or MessageStats.of(result)
    lines = [f"{badges(result, stats):<34} {result.source}"]
    env = result.envelope
    if result.error:
        lines.append(f"    error: {result.error}")
        return "\n".join(lines)
    sender = env.from_addr or "(no sender)"
    lines.append(f"    from {sender}: {env.subject[:70]!s}")
    if result.esp is not None:
        lines.append(f"    sent through: {esp_line(result.esp)}")
    if stats.trackers:
        lines.append(f"    trackers: {', '.join(sorted(stats.trackers))}")
    if stats.leaks:
        lines.append(f"    gives your address to: {', '.join(sorted(stats.leaks))}")
    if verbose:
        lines.extend(_finding_line(f) for f in result.findings)
    return "\n".join(lines)


def _table(rows: Sequence[SenderRow], title: str, key: str, limit: int | None) -> list[str]:
    shown = [r for r in rows if r.tracking_messages]
    if not shown:
        return [f"{title}: nobody"]
    out = [title, f"  {key:<36} {'tracked':>9} {'pixels':>6} {'links':>6} {'rcpt':>5}  trackers"]
    for row in shown[:limit]:
        name = row.sender if key == "sender" else row.domain
        out.append(
            f"  {name[:36]:<36} {row.tracking_messages:>4}/{row.messages:<4} {row.pixels:>6} "
            f"{row.links:>6} {row.receipts:>5}  {', '.join(sorted(row.trackers))}"
        )
    if limit is not None and len(shown) > limit:
        out.append(f"  … and {len(shown) - limit} more")
    leaking = [r for r in shown if r.leaks_to]
    if leaking:
        out.append(f"  {key}s that give your address away:")
        out.extend(
            f"    {r.sender if key == 'sender' else r.domain} gives it to "
            f"{', '.join(sorted(r.leaks_to))}"
            for r in leaking[:limit]
        )
    return out


def text_summary(results: Sequence[MessageResult], limit: int | None = 50) -> str:
    return tally_summary([tally(r) for r in results], limit)


def tally_summary(tallies: Sequence[MessageTally], limit: int | None = 50) -> str:
    """`text_summary` from the messages' tallies."""
    by_sender, by_domain = sender_tables(tallies)
    totals = (
        len(tallies),
        sum(1 for t in tallies if t.tracking),
        sum(1 for t in tallies if t.failed),
    )
    return text_tables(by_sender, by_domain, totals, limit)


def text_tables(
    by_sender: Sequence[SenderRow],
    by_domain: Sequence[SenderRow],
    totals: tuple[int, int, int],
    limit: int | None = 50,
) -> str:
    """The "who tracks you" tables; `totals` is (messages, tracking, unreadable)."""
    scanned, tracked, errors = totals
    lines = [
        "",
        f"{scanned} messages scanned: {tracked} track you, {errors} could not be read.",
        "",
    ]
    lines += _table(by_sender, "Who tracks you (by sender)", "sender", limit)
    lines.append("")
    lines += _table(by_domain, "Who tracks you (by sender domain)", "domain", limit)
    return "\n".join(lines)


# ---- JSON ---------------------------------------------------------------------------------------


def finding_dict(f: Finding) -> dict[str, Any]:
    # StrEnum members are their values (json writes them so): `.value` is a slow Python property
    return {
        "kind": f.kind,
        "tracker": f.tracker,
        "category": f.category,
        "rule": f.rule,
        "confidence": f.confidence,
        "url": f.url,
        "destination": f.destination,
        "header": f.header,
        "value": f.value,
        "element": f.element,
        "params": list(f.params),
        "host": f.host,
        "party": f.party,
        "leak": f.leak,
        "via": f.via,
    }


def message_dict(r: MessageResult) -> dict[str, Any]:
    env = r.envelope
    return {
        "source": r.source,
        "id": r.id,
        "message_id": env.message_id,
        "from": env.from_addr,
        "from_name": env.from_name,
        "subject": env.subject,
        "date": env.date,
        "error": r.error,
        "tracking": r.tracking,
        "esp": esp_dict(r.esp),
        "findings": [finding_dict(f) for f in r.findings],
    }


def esp_dict(esp: Esp | None) -> dict[str, Any] | None:
    if esp is None:
        return None
    return {"service": esp.service, "name": esp.name, "evidence": list(esp.evidence)}


def esp_line(esp: Esp) -> str:
    """`SendGrid (DKIM d=sendgrid.net; X-SG-EID)`."""
    return f"{esp.name} ({'; '.join(esp.evidence)})" if esp.evidence else esp.name


def json_message(r: MessageResult) -> str:
    """One message's object in the document's `messages`."""
    return json.dumps(message_dict(r), ensure_ascii=False)


class JsonDocument:
    """The JSON document, written as messages come; the tables follow them. Byte for byte what
    json.dumps(ensure_ascii=False) makes of the whole document at once (the C encoder: indent or
    json.dump fall back to pure Python, several times slower). Pipe through `jq` to read it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tallies: list[MessageTally] = []
        stream.write('{"messages": [')

    def add(self, message_json: str, message: MessageTally) -> None:
        if self.tallies:
            self.stream.write(", ")
        self.stream.write(message_json)
        self.tallies.append(message)

    def close(self) -> None:
        by_sender, by_domain = sender_tables(self.tallies)
        services = tracker_table((t.from_addr, t.services) for t in self.tallies)
        tables: dict[str, Any] = {
            "senders": [row.as_dict("sender") for row in by_sender],
            "domains": [row.as_dict("domain") for row in by_domain],
            "trackers": [
                {
                    "tracker": t.tracker,
                    "category": t.category,
                    "messages": t.messages,
                    "senders": len(t.senders),
                }
                for t in services
            ],
        }
        self.stream.write("]")
        for key, value in tables.items():
            self.stream.write(f', "{key}": {json.dumps(value, ensure_ascii=False)}')
        self.stream.write("}\n")


def write_json(results: Iterable[MessageResult], stream: IO[str]) -> None:
    write_presented((present(r, "json") for r in results), "json", stream)


# ---- CSV ----------------------------------------------------------------------------------------

MESSAGE_COLUMNS = ("source", "id", "message_id", "from", "subject", "date", "error", "esp")
FINDING_COLUMNS = (
    "kind",
    "tracker",
    "category",
    "rule",
    "confidence",
    "url",
    "destination",
    "header",
    "value",
    "element",
    "params",
    "host",
    "party",
    "leak",
    "via",
)
CSV_COLUMNS = MESSAGE_COLUMNS + FINDING_COLUMNS


def csv_rows(r: MessageResult) -> list[list[str]]:
    """One row per finding; a message without findings (or with an error) gets one row. What
    `csv_text` writes, as csv.writer would."""
    head = _csv_head(r)
    if not r.findings:
        return [head + [""] * len(FINDING_COLUMNS)]
    return [head + _csv_finding(f) for f in r.findings]


def csv_text(r: MessageResult) -> str:
    """One message's rows, byte for byte as csv.writer writes csv_rows(r)."""
    head = _csv_head(r)
    if not r.findings:
        return _csv_line(head + [""] * len(FINDING_COLUMNS))
    # csv quotes each field on its own, so a row is its head and finding parts joined by a comma
    # (no row is a lone empty field, csv's one exception): the head is encoded once.
    prefix = _csv_line(head)[:-1] + ","
    return "".join([prefix + _csv_line(_csv_finding(f)) for f in r.findings])


def _csv_head(r: MessageResult) -> list[str]:
    env = r.envelope
    esp = r.esp.name if r.esp else ""
    fields = (r.source, r.id, env.message_id, env.from_addr, env.subject, env.date, r.error, esp)
    return [str(v or "") for v in fields]  # the order of MESSAGE_COLUMNS


def _csv_finding(f: Finding) -> list[str]:
    # Straight from the tuple, in the order of FINDING_COLUMNS: ~130 rows per newsletter, and
    # going through finding_dict cost more than scanning the message.
    return [
        f.kind,  # StrEnum members are their values: `.value` is a slow Python property
        f.tracker or "",
        f.category or "",
        f.rule,
        f.confidence,
        f.url or "",
        f.destination or "",
        f.header or "",
        f.value or "",
        f.element or "",
        " ".join(f.params),
        f.host or "",
        f.party or "",
        f.leak or "",
        f.via or "",
    ]


# What makes csv.writer quote a field (besides the comma), or refuse it (NUL).
_QUOTED_CHARS = re.compile('["\r\n\0]')


def _csv_line(fields: list[str]) -> str:
    """`fields` as csv.writer writes them. Most rows need no quoting: then csv.writer writes the
    fields joined by commas, which Python joins and checks several times faster than csv's
    per-character loop goes over long URLs (~8 µs a row on Python 3.11)."""
    line = ",".join(fields)
    if line.count(",") == len(fields) - 1 and not _QUOTED_CHARS.search(line):
        return line + "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


# ---- one message, where it was scanned ----------------------------------------------------------


class Presented(NamedTuple):
    """One message's part of the output: its text (lines, CSV rows or JSON object; "" when the
    format shows none) and its tally for the tables at the end (None for CSV, which has none)."""

    text: str
    tally: MessageTally | None


def present(
    result: MessageResult, fmt: str, verbose: bool = False, summary: bool = False
) -> Presented:
    if fmt == "csv":
        return Presented(csv_text(result), None)
    if fmt == "json":
        return Presented(json_message(result), tally(result))
    stats = MessageStats.of(result)  # counted once for the lines and the tally
    text = "" if summary else text_message(result, verbose, stats) + "\n"
    return Presented(text, tally(result, stats))


def write_presented(
    messages: Iterable[Presented],
    fmt: str,
    out: IO[str],
    before_text: Callable[[], None] = lambda: None,
) -> None:
    """Write the messages' parts in `fmt`, with what frames them: CSV's header row, the JSON
    document, the text summary. `before_text` runs before each text write (to clear a progress
    bar)."""
    if fmt == "csv":
        out.write(_csv_line(list(CSV_COLUMNS)))
        for message in messages:
            out.write(message.text)
        return
    tallies: list[MessageTally] = []
    document = JsonDocument(out) if fmt == "json" else None
    for message in messages:
        assert message.tally is not None  # only CSV has none
        if document is not None:
            document.add(message.text, message.tally)
            continue
        tallies.append(message.tally)
        if message.text:
            before_text()
            out.write(message.text)
    if document is not None:
        document.close()
        return
    before_text()
    out.write(tally_summary(tallies) + "\n")
