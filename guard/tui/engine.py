"""The work the app's workers do, as plain generators and functions over the core (no Textual).

Workers run these in threads and post what they yield to the screens; nothing here detects,
parses IMAP or decides anything itself: it only calls guard's own functions and shapes the
results into `Row`s.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from guard.engine.model import Kind, MessageResult
from guard.tui.data import ImapFolder, LocalSource, Row, row_key

# What the first screen does not need is imported where it is used: `guard ui` shows its first
# rows before detection, MIME parsing or the rules are loaded (bench/bench_ui.py, launch).
if TYPE_CHECKING:
    from guard.engine.ruleset import RuleSet
    from guard.mail.config import Account
    from guard.mail.files import MessageRef
    from guard.mail.store import Store

# Readers take in the first screenful; more text would only slow the detail panel down.
PREVIEW_LIMIT = 20_000


# -- local mail ------------------------------------------------------------------------------------


def local_refs(source: LocalSource) -> list[MessageRef]:
    """Every message under the path; raises SourceError with a one-line reason."""
    from guard.mail.files import message_refs

    return list(message_refs(source.path))


def scan_local(refs: list[MessageRef], rules: RuleSet, jobs: int | None = None) -> Iterator[Row]:
    """Rows as the scan produces them, in order (guard.mail.scan does the work, in processes when
    the input is large enough to be worth it)."""
    from guard.mail.scan import scan_refs

    for ref, result in zip(refs, scan_refs(refs, rules, jobs=jobs), strict=False):
        yield Row(row_key(result), result, ref=ref)


# -- IMAP ------------------------------------------------------------------------------------------


def _imap_row(source: ImapFolder, result: MessageResult, cleaned: set[int]) -> Row:
    uid = int(result.id) if result.id.isdigit() else None
    # keyed by the app's own name of the folder (not result.source, the scan's imap:// URL), so
    # stored rows are keyed without importing the IMAP scanner, and a rescan's rows match them
    key = f"{source.label}\x00{uid}" if uid is not None else row_key(result)
    return Row(key, result, uid=uid, cleaned=uid is not None and uid in cleaned)


def cleaned_uids(
    account: str, folder: str, uidvalidity: int | None = None, store: Store | None = None
) -> set[int]:
    """UIDs of guard's cleaned copies in the folder, from the cleaning journal (never from the
    X-Guard header, which any sender can write). Empty when cleaning never ran. `store`: an
    open state database to read (else the default one is opened for this)."""
    from guard.mail.store import Store, default_path

    if store is None:
        path = default_path()
        if not path.exists():
            return set()
        with Store(path) as opened:
            return cleaned_uids(account, folder, uidvalidity, opened)
    try:
        from guard.mail.imap.journal import Journal
    except ImportError:  # cleaning not installed in this build
        return set()
    journal = Journal(store)
    if uidvalidity is not None:
        return journal.copy_uids(account, folder, uidvalidity)
    return {e.new_uid for e in journal.entries(account, folder, ("done",)) if e.new_uid is not None}


def warm_rows(
    source: ImapFolder, first: int = 100, size: int = 1000, busy_timeout: float = 10
) -> Generator[list[Row], None, None]:
    """What the state database already knows about the folder, in batches (a small first one,
    so rows are on screen at once), before any server contact. Slim results (counts per kind
    and tracker, their `source` the folder's label); the evidence is read on demand
    (`full_result`). Imports nothing of IMAP: the first rows must not wait for imapclient.
    `busy_timeout`: how long to wait for another guard process's write to the database."""
    from guard.mail.store import Store, default_path

    path = default_path()
    if not path.exists():
        return
    batch: list[Row] = []
    limit = first
    # one connection for both reads: opening one costs ~10 ms
    with Store(path, busy_timeout=busy_timeout) as store:
        cleaned = cleaned_uids(source.account.name, source.folder, store=store)
        for _uid, result in store.results(
            source.account.name, source.folder, slim=True, source=source.label
        ):
            batch.append(_imap_row(source, result, cleaned))
            if len(batch) >= limit:
                yield batch
                batch, limit = [], size
    if batch:
        yield batch


FIRST_ROWS_BUSY_TIMEOUT = 0.5


class FirstRows:
    """The first screenful of a folder from the state database, read before Textual is imported
    so that the app's first frame shows it (~20 ms). Read in the calling thread: a thread would
    compete with the imports for the interpreter, and sqlite3 gives the interpreter up around
    every row, each time waiting up to 5 ms to get it back from the busy importer (measured:
    0.45 s for 100 rows). The scan worker reads the folder again: this is only a head start."""

    def __init__(self, source: ImapFolder) -> None:
        self.source = source
        self.rows: list[Row] = []
        try:
            # a write of another guard process (a scan's batch) is short; a long one must not
            # hold the launch up: then the worker reads, and waits, in the background
            batches = warm_rows(source, busy_timeout=FIRST_ROWS_BUSY_TIMEOUT)
            self.rows = next(batches, [])
            batches.close()  # closes the database
        except Exception:  # noqa: BLE001 - the scan worker meets the same error and reports it
            self.rows = []


def scan_imap(
    source: ImapFolder, on_total: Callable[[int], None], use_cache: bool = True
) -> Iterator[Row]:
    """Scan the folder on the server (read-only; new messages only unless `use_cache` is off),
    storing results in the state database as `guard scan --account` does."""
    from guard.mail.imap.scan import FolderStats, scan_account
    from guard.mail.store import Store

    stats: list[FolderStats] = []
    with Store() as store:
        results = scan_account(
            source.account,
            [source.folder],
            store=store,
            use_cache=use_cache,
            stats=stats,
            on_total=on_total,
            slim=True,
        )
        cleaned: set[int] | None = None
        for result in results:
            if cleaned is None:
                validity = stats[-1].uidvalidity if stats else None
                cleaned = cleaned_uids(source.account.name, source.folder, validity)
            yield _imap_row(source, result, cleaned)


def full_result(source: ImapFolder, uid: int) -> MessageResult | None:
    """The stored full result (every URL, rule, destination) of one message."""
    from guard.mail.store import Store, default_path

    path = default_path()
    if not path.exists():
        return None
    with Store(path) as store:
        for _uid, result in store.results(source.account.name, source.folder, uids={uid}):
            return result
    return None


def fetch_imap_raw(account: Account, folder: str, uid: int) -> bytes:
    """One message's bytes, read-only (EXAMINE + BODY.PEEK[])."""
    from guard.mail.imap.connection import close, connect
    from guard.mail.imap.fetch import fetch_message
    from guard.mail.secrets import get_credentials

    client = connect(account, get_credentials(account))
    try:
        return fetch_message(client, account, folder, uid)
    finally:
        close(client)


# -- one message -----------------------------------------------------------------------------------


def raw_of(source: LocalSource | ImapFolder, row: Row) -> bytes:
    """The message's bytes: read from the file, or fetched read-only from the server."""
    if row.ref is not None:
        return row.ref.read()
    if isinstance(source, ImapFolder) and row.uid is not None:
        return fetch_imap_raw(source.account, source.folder, row.uid)
    raise LookupError("this message has no place to be read from")


def html_to_text(html: str) -> str:
    """Visible text of an HTML part, read by the HTML5 parser detection uses."""
    from guard.engine.html import visible_text

    return visible_text(html)


def preview_text(raw: bytes) -> str:
    """A safe text preview: the text/plain part, else the HTML's text. Never loads anything."""
    from guard.engine.mime import MessageError, parse_message

    try:
        parsed, _envelope = parse_message(raw)
    except MessageError as exc:
        return f"(no preview: {exc})"
    plain = "\n\n".join(p.strip() for p in parsed.text_parts if p.strip())
    text = plain or "\n\n".join(html_to_text(h) for h in parsed.html_parts)
    text = text.strip() or "(no text in this message)"
    if len(text) > PREVIEW_LIMIT:
        text = text[:PREVIEW_LIMIT] + "\n… (cut here)"
    return text


_ORDER = {Kind.RECEIPT: 0, Kind.PIXEL: 1, Kind.LINK: 2, Kind.PARAM: 3, Kind.REMOTE: 4}


def finding_blocks(result: MessageResult, rules: RuleSet | None) -> list[list[str]]:
    """Every finding explained (kind, tracker, rule, exact URL or header, decoded destination),
    most telling first; guard.engine.explain writes the words."""
    from guard.engine.explain import explain_finding

    findings = sorted(result.findings, key=lambda f: _ORDER[f.kind])
    if rules is None:
        return [[f"  {f.kind.value:<8} {f.tracker or 'unknown tracker'}"] for f in findings]
    return [[_short_paths(line) for line in explain_finding(f, rules)] for f in findings]


def _short_paths(line: str) -> str:
    # `rules/esp/x.toml`, not the install path: shorter, and the same on every machine
    from guard.engine.rules_load import bundled_rules_dir

    bundled = str(bundled_rules_dir())
    return line.replace(bundled + "/", "rules/") if bundled in line else line


def load_rules() -> RuleSet:
    from guard.engine.domains import warm_up
    from guard.engine.rules_load import load_ruleset

    rules = load_ruleset()
    warm_up()
    return rules


def default_local_path() -> str | None:
    """samples/ next to the checkout or the current directory, for the first-run screen."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "samples"
        if candidate.is_dir():
            try:
                return str(candidate.relative_to(Path.cwd()))
            except ValueError:
                return str(candidate)
    return None
