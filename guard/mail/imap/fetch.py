"""Read-only IMAP fetching of exactly what detection needs.

For a batch of UIDs: one `UID FETCH (BODY.PEEK[HEADER] BODYSTRUCTURE RFC822.SIZE)`, then, from each
BODYSTRUCTURE, the section numbers of the text/html and text/plain parts that are not attachments
(the same parts guard.engine.mime.parse_message scans), fetched with `BODY.PEEK[n]` — grouped by
identical section lists and split so one response stays a few MB. Attachments are never downloaded,
and nothing here can set \\Seen (PEEK only, folder opened with EXAMINE by the caller).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient

from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.engine.mime import FetchedPart, MessageError, parse_parts
from guard.engine.model import Envelope, MessageResult, ParsedMessage
from guard.engine.nested import DOCUMENT_TYPES, content_id_key
from guard.mail.config import Account
from guard.mail.exitcodes import ExitCode
from guard.mail.imap.connection import ImapError, call, examine

HEADER_BATCH = 250  # messages per header/BODYSTRUCTURE fetch
TEXT_BATCH_BYTES = 4 * 1024 * 1024  # text-part bytes per section fetch

_FETCH_HEADER = b"BODY.PEEK[HEADER]"
_HEADER_ITEMS = [_FETCH_HEADER, b"BODYSTRUCTURE", b"RFC822.SIZE"]
# The server answers a BODY.PEEK[...] request under the same name without ".PEEK" (RFC 3501).
_HEADER_KEY = _FETCH_HEADER.replace(b".PEEK", b"")
TEXT_TYPES = ("text/html", "text/plain")


class NoSuchMessage(ImapError):
    exit_code = ExitCode.NO_INPUT


@dataclass(frozen=True, slots=True)
class TextPart:
    section: str
    ctype: str  # "text/html", "text/plain", or a document type a `cid:` reference may load
    cte: str | None
    charset: str | None
    size: int
    cid: str | None = None  # the Content-ID a `cid:` stylesheet, SVG or HTML part is loaded by


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def _params(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, list | tuple):
        items = list(value)
        for i in range(0, len(items) - 1, 2):
            out[_s(items[i]).lower()] = _s(items[i + 1])
    return out


def _is_multipart(body: Any) -> bool:
    return isinstance(body, list | tuple) and len(body) > 0 and isinstance(body[0], list)


def text_parts(bodystructure: Any, limit_parts: int = DEFAULT_LIMITS.max_parts) -> list[TextPart]:
    """The non-attachment text/html and text/plain parts, in document order, with sections."""
    found: list[TextPart] = []
    budget = [limit_parts]

    def walk(body: Any, prefix: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise MessageError(f"more than {limit_parts} MIME parts")
        if depth > DEFAULT_LIMITS.max_depth:
            raise MessageError(f"MIME nested deeper than {DEFAULT_LIMITS.max_depth}")
        if _is_multipart(body):
            for i, child in enumerate(body[0], 1):
                walk(child, f"{prefix}.{i}" if prefix else str(i), depth + 1)
            return
        if not isinstance(body, list | tuple) or len(body) < 7:
            return
        section = prefix or "1"
        mtype, subtype = _s(body[0]).lower(), _s(body[1]).lower()
        if mtype == "message" and subtype == "rfc822" and len(body) > 8:
            # an attached (forwarded) message is not displayed, as in guard.engine.mimetree
            disposition = body[11] if len(body) > 11 else None
            if (
                isinstance(disposition, list | tuple)
                and disposition
                and _s(disposition[0]).strip().lower().startswith("attachment")
            ):
                return
            nested = body[8]
            if _is_multipart(nested):
                walk(nested, section, depth + 1)
            elif isinstance(nested, list | tuple):
                walk(nested, f"{section}.1", depth + 1)
            return
        cid = content_id_key(_s(body[3])) if body[3] else None
        ctype = f"{mtype}/{subtype}"
        text = mtype == "text" and subtype in ("html", "plain")
        # Besides the text, a stylesheet or SVG an HTML part loads as `cid:` (guard.engine.nested),
        # whatever its disposition, as the local parser reads it (guard.engine.mime.related_parts).
        if not text and (cid is None or ctype not in DOCUMENT_TYPES):
            return
        disposition = body[9] if len(body) > 9 else None
        if (
            text
            and isinstance(disposition, list | tuple)
            and disposition
            and _s(disposition[0]).strip().lower() == "attachment"
        ):
            return
        charset = _params(body[2]).get("charset") or None
        if charset and charset.strip().strip('"').lower() in ("us-ascii", "ascii"):
            # Dovecot reports us-ascii for parts that declare no charset; the local parser then
            # tries UTF-8 first, and so do we (identical for real ASCII).
            charset = None
        try:
            size = int(body[6] or 0)
        except (TypeError, ValueError):
            size = 0
        found.append(
            TextPart(
                section=section,
                ctype=ctype,
                cte=_s(body[5]) or None,
                charset=charset,
                size=size,
                cid=cid,
            )
        )

    walk(bodystructure, "", 0)
    return found


@dataclass(slots=True)
class Pending:
    """One message between the two fetches."""

    uid: int
    header: bytes
    parts: list[TextPart]
    error: str | None = None


def _check_limits(size: int, parts: Sequence[TextPart], limits: Limits) -> str | None:
    if size > limits.max_message_bytes:
        return (
            f"message of {size // (1024 * 1024)} MiB exceeds the limit of "
            f"{limits.max_message_bytes // (1024 * 1024)} MiB"
        )
    for part in parts:
        if part.size > limits.max_text_part_bytes and part.ctype in TEXT_TYPES:
            return (
                f"{part.ctype} part of {part.size // 1024} KiB exceeds the limit of "
                f"{limits.max_text_part_bytes // 1024} KiB"
            )
    return None


def fetch_structure(
    client: IMAPClient, uids: Sequence[int], limits: Limits = DEFAULT_LIMITS
) -> list[Pending]:
    """Headers + BODYSTRUCTURE for `uids` (messages expunged meanwhile are simply absent)."""
    response = client.fetch(list(uids), _HEADER_ITEMS)
    out: list[Pending] = []
    for uid in uids:
        data = response.get(uid)
        if data is None:
            continue
        header = data.get(_HEADER_KEY) or b""
        try:
            parts = text_parts(data.get(b"BODYSTRUCTURE"), limits.max_parts)
            error = _check_limits(int(data.get(b"RFC822.SIZE") or 0), parts, limits)
        except MessageError as exc:
            parts, error = [], str(exc)
        except (TypeError, ValueError, IndexError):
            parts, error = [], "unreadable BODYSTRUCTURE"
        if not header.strip() and error is None:
            error = "no headers: not an e-mail message"
        if error is None:
            # An oversized `cid:` document is not read, as the local parser skips it.
            parts = [
                p for p in parts if p.ctype in TEXT_TYPES or p.size <= limits.max_text_part_bytes
            ]
        out.append(Pending(uid, header, [] if error else parts, error))
    return out


def fetch_texts(client: IMAPClient, pending: Sequence[Pending]) -> dict[int, list[FetchedPart]]:
    """Fetch the text sections of `pending` messages, grouped by identical section lists."""
    groups: dict[tuple[str, ...], list[Pending]] = {}
    for p in pending:
        if p.error is None and p.parts:
            groups.setdefault(tuple(t.section for t in p.parts), []).append(p)
    texts: dict[int, list[FetchedPart]] = {p.uid: [] for p in pending}
    for sections, members in groups.items():
        items = [f"BODY.PEEK[{s}]".encode() for s in sections]
        keys = [item.replace(b".PEEK", b"") for item in items]
        batches: list[list[Pending]] = [[]]
        size = 0
        for member in members:
            if size >= TEXT_BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(member)
            size += sum(t.size for t in member.parts)
        for batch in batches:
            response = client.fetch([b.uid for b in batch], items)
            for b in batch:
                data = response.get(b.uid)
                if data is None:
                    b.error = "message vanished during the scan"
                    continue
                texts[b.uid] = [
                    (t.ctype, data.get(k) or b"", t.cte, t.charset, t.cid)
                    for t, k in zip(b.parts, keys, strict=True)
                ]
    return texts


def analyse(
    pending: Sequence[Pending],
    texts: dict[int, list[FetchedPart]],
    source: str,
    rules: Any,
    identities: Sequence[str] = (),
    max_seconds: float = DEFAULT_LIMITS.max_seconds,
) -> Iterator[tuple[int, MessageResult]]:
    """Parse + detect each message (never raises for one bad message)."""
    from guard.engine.timelimit import TimeLimitExceeded, time_limit
    from guard.mail.scan import result_for
    from guard.mail.supervise import crash_probe

    for p in pending:
        if p.error is not None:
            yield p.uid, MessageResult(source=source, id=str(p.uid), error=p.error)
            continue
        if crash_probe is not None:  # a test's crash marker, armed in worker processes only
            crash_probe(p.header + b"".join(text for _t, text, *_ in texts.get(p.uid, [])))
        try:
            with time_limit(max_seconds):
                parsed, envelope = parse_parts(p.header, texts.get(p.uid, []))
                result = result_for(parsed, envelope, source, str(p.uid), rules, identities)
            yield p.uid, result
        except TimeLimitExceeded:
            error = f"took longer than {max_seconds:g} s: skipped"
            yield p.uid, MessageResult(source=source, id=str(p.uid), error=error)
        except MessageError as exc:
            yield p.uid, MessageResult(source=source, id=str(p.uid), error=str(exc))
        except RecursionError:
            yield (
                p.uid,
                MessageResult(source=source, id=str(p.uid), error="structure nested too deeply"),
            )
        except Exception as exc:  # noqa: BLE001 - never a traceback
            yield (
                p.uid,
                MessageResult(
                    source=source, id=str(p.uid), error=f"internal error ({type(exc).__name__})"
                ),
            )


def scan_chunk(
    client: IMAPClient,
    uids: Sequence[int],
    source: str,
    rules: Any,
    limits: Limits = DEFAULT_LIMITS,
    identities: Sequence[str] = (),
) -> list[tuple[int, MessageResult]]:
    """Fetch and scan one chunk of UIDs on an EXAMINEd connection."""
    out: list[tuple[int, MessageResult]] = []
    for start in range(0, len(uids), HEADER_BATCH):
        pending = fetch_structure(client, uids[start : start + HEADER_BATCH], limits)
        texts = fetch_texts(client, pending)
        out.extend(analyse(pending, texts, source, rules, identities, limits.max_seconds))
    return out


__all__ = [
    "Envelope",
    "ParsedMessage",
    "Pending",
    "TextPart",
    "analyse",
    "fetch_structure",
    "fetch_texts",
    "scan_chunk",
    "text_parts",
]


def fetch_message(client: IMAPClient, account: Account, folder: str, uid: int) -> bytes:
    """One message's bytes, read-only (EXAMINE + BODY.PEEK[]), for `guard explain --uid` and the
    app's preview. Raises ImapError (NoSuchMessage when the UID is not in the folder)."""
    examine(client, account, folder)
    data = call(account, f"fetching UID {uid}", client.fetch, [uid], [b"BODY.PEEK[]"])
    body = data.get(uid, {}).get(b"BODY[]")  # the response key of a BODY.PEEK[] fetch
    if not isinstance(body, bytes):
        raise NoSuchMessage(f"no message with UID {uid} in {folder!r}")
    return body
