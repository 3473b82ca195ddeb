"""Accuracy of detection: against hand-labelled corpora (samples/, eval/) and against a browser
oracle on real mail (../shared/corpus/phishing-pot-dev.tar.xz, 800 unlabelled messages).

Hand-labelled figures (always): per finding kind, precision and recall of detection (kind + URL
or header) and of attribution (the tracker named as well), and the false-positive rate on
tracking-free messages. A message guard fails on (parse error, time limit) counts as a miss for
every finding its manifest lists.

Oracle figures (--oracle): every message is rendered in headless Chromium with every request
intercepted (tests/renderer.py: nothing leaves the machine; image requests are answered with a
64x64 transparent placeholder so that images are laid out by their attributes and CSS, and each
`cid:` part is served from the message itself so what a cid: stylesheet or SVG loads counts), and
a DOM snapshot with computed styles gives each image-loading element's size and visibility. It
reports, independently of guard's rules:
  - loads the browser makes that guard does not report (target 0);
  - image-loading elements the browser sizes <= 3 px both ways (or 0 either way) or hides, that
    guard does not call a pixel (target 0; each listed by file name with the cause);
  - pixels guard reports on elements the browser shows larger than 3 px (precision);
  - loads made from cid: parts;
  - messages carrying an ESP fingerprint (bench/esp_fingerprints.toml, from the ESPs' own
    documentation) that guard does not attribute to that ESP (target >= 90 % attributed). An
    ESP's link hosts alone do not count where another ESP's sending evidence (Return-Path, DKIM,
    Message-ID, its own headers) is present: links are copied from other mail, envelopes are not.

    .venv/bin/python bench/accuracy.py [CORPUS ...]                  # samples eval
    nice .venv/bin/python bench/accuracy.py --oracle --jobs 1         # samples eval corpus
    .venv/bin/python bench/accuracy.py --oracle corpus --limit 50 --report /tmp/oracle.json

CORPUS is a directory with a manifest.toml (samples, eval) or `corpus` (the real archive, read
in place; never copied). The corpus's URLs are live phishing links: only file names and defanged
hosts are ever printed or written.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import re
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from manifest import actual_keys, expected_keys, wildcard_remote  # noqa: E402
from renderer import (  # noqa: E402
    DOCUMENT_HOST,
    ImageBox,
    Page,
    Render,
    Renderer,
    RendererError,
    Request,
    find_chromium,
    image_boxes,
)
from renderer_proof import (  # noqa: E402
    CORPUS_ARCHIVE,
    Case,
    Message,
    construct,
    corpus_messages,
    detection_gaps,
    directory_messages,
    show_url,
    url_key,
)

from guard.engine.model import Kind, MessageResult  # noqa: E402
from guard.engine.rules_load import load_ruleset  # noqa: E402
from guard.engine.ruleset import RuleSet  # noqa: E402
from guard.mail.files import message_refs  # noqa: E402
from guard.mail.scan import scan_raw, scan_refs  # noqa: E402

KINDS = ("pixel", "link", "param", "receipt", "remote")
TARGETS = {"pixel": 0.99, "receipt": 0.99, "link": 0.95}
FINGERPRINTS = Path(__file__).resolve().parent / "esp_fingerprints.toml"
MAX_PAGES = 4
"""HTML parts rendered per message (a bound; real mail rarely has more than two)."""
MAX_PART_BYTES = 4 * 1024 * 1024
"""A cid: part larger than this is not served (a bound on what one render holds in memory)."""


# -- hand-labelled figures -------------------------------------------------------------------------


def _detection(key: tuple[Any, ...]) -> tuple[Any, ...]:
    kind, _tracker, url, extra = key
    return (kind, url, extra if kind == "param" else None)


def evaluate(corpus: Path) -> tuple[dict[str, Counter[str]], int, int, list[str], list[str]]:
    """Counts per kind, tracking-free messages and how many guard flags, the misses, and the
    messages guard failed on (counted as misses for every finding they should have had)."""
    manifest = tomllib.loads((corpus / "manifest.toml").read_text(encoding="utf-8"))["message"]
    rules = load_ruleset(include_user=False)
    prefix = str(corpus) + "/"
    results = {
        r.source.removeprefix(prefix): r
        for r in scan_refs(list(message_refs(str(corpus))), rules, jobs=1)
    }
    counts: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    clean_total = clean_flagged = 0
    misses: list[str] = []
    failed: list[str] = []
    for entry in manifest:
        result = results.get(entry["source"])
        error = "not scanned" if result is None else result.error
        if error and entry.get("error"):
            continue  # a message the manifest expects guard to refuse
        if error:
            failed.append(f"{entry['source']}: {error}")
        expected = expected_keys(entry)
        actual = (
            set()
            if error or result is None
            else actual_keys(result.findings, wildcard_remote(entry))
        )
        for level, exp, act in (
            ("attr", expected, actual),
            ("det", {_detection(k) for k in expected}, {_detection(k) for k in actual}),
        ):
            for kind in KINDS:
                e = {k for k in exp if k[0] == kind}
                a = {k for k in act if k[0] == kind}
                counts[kind][f"{level}_tp"] += len(e & a)
                counts[kind][f"{level}_fp"] += len(a - e)
                counts[kind][f"{level}_fn"] += len(e - a)
                if level == "det":
                    misses += [f"{entry['source']}: missed {k}" for k in e - a]
                    misses += [f"{entry['source']}: extra {k}" for k in a - e]
        if not entry.get("tracking"):
            clean_total += 1
            clean_flagged += 1 if result is None or error else result.tracking
    return counts, clean_total, clean_flagged, misses, failed


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f}" if den else "  -  "


def print_labelled(name: str, corpus: Path, verbose: bool) -> None:
    counts, clean_total, clean_flagged, misses, failed = evaluate(corpus)
    print(f"\n{name}: detection (kind + URL) / attribution (+ tracker named)")
    print(f"  {'kind':<8} {'precision':>9} {'recall':>7}   {'precision':>9} {'recall':>7}  target")
    for kind in KINDS:
        c = counts[kind]
        det_p = _ratio(c["det_tp"], c["det_tp"] + c["det_fp"])
        det_r = _ratio(c["det_tp"], c["det_tp"] + c["det_fn"])
        att_p = _ratio(c["attr_tp"], c["attr_tp"] + c["attr_fp"])
        att_r = _ratio(c["attr_tp"], c["attr_tp"] + c["attr_fn"])
        target = f"recall >= {TARGETS[kind]}" if kind in TARGETS else ""
        print(f"  {kind:<8} {det_p:>9} {det_r:>7}   {att_p:>9} {att_r:>7}  {target}")
    rate = clean_flagged / clean_total if clean_total else 0.0
    print(
        f"  false positives on tracking-free mail: {clean_flagged}/{clean_total} messages "
        f"= {rate:.1%} (target <= 0.5%)"
    )
    print(f"  messages guard failed on (counted as misses): {len(failed)}")
    for line in failed:
        print(f"    {line}")
    if verbose:
        print("\n".join(f"    {m}" for m in misses))


# -- ESP fingerprints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    kind: str
    value: str
    quality: str


def load_fingerprints(path: Path = FINGERPRINTS) -> list[dict[str, Any]]:
    esps: list[dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8"))["esp"]
    return esps


_URL_HOST = re.compile(r"""(?i)\b(?:https?:)?//([a-z0-9.-]+\.[a-z]{2,})""")
_DKIM_D = re.compile(r"(?i)(?:^|;)\s*d\s*=\s*([^;\s]+)")
_ADDR_DOMAIN = re.compile(r"@([A-Za-z0-9.-]+)")


def _under(host: str, domain: str) -> bool:
    host, domain = host.lower().rstrip("."), domain.lower()
    return host == domain or host.endswith("." + domain)


def message_fingerprints(
    raw: bytes, html: Sequence[str], esps: list[dict[str, Any]]
) -> dict[str, list[Evidence]]:
    """ESP id -> the evidence of it the message carries (headers read with Python's email
    package, URLs with a regex: nothing of guard's is used to judge guard)."""
    try:
        msg = email.message_from_bytes(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
        headers = [(str(k).lower(), str(v)) for k, v in msg.items()]
    except Exception:  # noqa: BLE001 - a message whose headers Python cannot read: no evidence
        headers = []
    names = {k for k, _ in headers}
    dkim = [m.group(1) for k, v in headers if k == "dkim-signature" for m in _DKIM_D.finditer(v)]
    return_path = [
        m.group(1) for k, v in headers if k == "return-path" for m in _ADDR_DOMAIN.finditer(v)
    ]
    message_id = [
        m.group(1) for k, v in headers if k == "message-id" for m in _ADDR_DOMAIN.finditer(v)
    ]
    hosts = {m.group(1).lower() for part in html for m in _URL_HOST.finditer(part)}
    out: dict[str, list[Evidence]] = {}
    for esp in esps:
        found: list[Evidence] = []
        for ev in esp.get("evidence", []):
            quality = ev.get("quality", "third-party")
            for name in ev.get("headers", []):
                if name.lower() in names:
                    found.append(Evidence("header", name, quality))
            for prefix in ev.get("header_prefixes", []):
                if any(n.startswith(prefix.lower()) for n in names):
                    found.append(Evidence("header", prefix + "*", quality))
            for kind, values in (
                ("dkim", dkim),
                ("return_path", return_path),
                ("message_id", message_id),
            ):
                for domain in ev.get(kind, []):
                    if any(_under(v, domain) for v in values):
                        found.append(Evidence(kind, domain, quality))
            for domain in ev.get("link_hosts", []):
                if any(_under(h, domain) for h in hosts):
                    found.append(Evidence("link_host", domain, quality))
        if found:
            out[esp["id"]] = found
    return out


def guard_esp(result: MessageResult) -> str | None:
    """The service id of the ESP guard attributes the message to (None until guard names one:
    `MessageResult.esp` is being added in parallel; read defensively)."""
    esp = getattr(result, "esp", None)
    service = getattr(esp, "service", None) if esp is not None else None
    return str(service) if service else None


# -- the oracle ------------------------------------------------------------------------------------


@dataclass
class Judged:
    """One message as the oracle sees it."""

    name: str
    result: MessageResult
    redact: bool
    html: tuple[str, ...] = ()
    skipped: str = ""
    renders: list[Render] = field(default_factory=list)
    boxes: list[ImageBox] = field(default_factory=list)
    esp: dict[str, list[Evidence]] = field(default_factory=dict)
    esp_service: dict[str, str] = field(default_factory=dict)
    """Fingerprinted ESP id -> guard's service id for it."""
    parts_served: int = 0

    @property
    def requests(self) -> list[Request]:
        distinct: dict[str, Request] = {}
        for render in self.renders:
            for req in render.network_requests():
                distinct.setdefault(req.url, req)
        return list(distinct.values())


def cid_parts(raw: bytes) -> dict[str, tuple[str, bytes]]:
    """Content-ID (without <>) -> (content type, decoded bytes), read with Python's email
    package; the lower-cased ID too, as mail clients match it loosely."""
    out: dict[str, tuple[str, bytes]] = {}
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in msg.walk():
            cid = part.get("Content-ID")
            if not cid or part.is_multipart():
                continue
            body = part.get_payload(decode=True)
            if not isinstance(body, bytes) or len(body) > MAX_PART_BYTES:
                continue
            key = str(cid).strip().strip("<>").strip()
            value = (part.get_content_type(), body)
            out.setdefault(key, value)
            out.setdefault(key.lower(), value)
    except Exception:  # noqa: BLE001 - unreadable MIME: nothing to serve
        return out
    return out


def _html_parts(raw: bytes) -> tuple[str, ...] | str:
    from guard.engine.mime import MessageError, parse_message

    try:
        parsed, _ = parse_message(raw)
    except MessageError as exc:
        return f"unparseable: {exc}"
    return parsed.html_parts or "no text/html part"


def judge(
    messages: Sequence[Message],
    rules: RuleSet,
    esps: list[dict[str, Any]],
    *,
    redact: bool,
    jobs: int,
    page_timeout: float,
    batch: int,
    budget: float | None,
) -> tuple[list[Judged], list[str], str]:
    """Scan every message with guard, render its HTML parts in Chromium, keep the requests and
    the laid-out image elements. Returns (messages, names not rendered because Chromium kept
    failing or the budget ran out, the browser's description)."""
    service_of = {e["id"]: e["service"] for e in esps}
    judged: list[Judged] = []
    for message in messages:
        result = scan_raw(message.raw, message.name, "0", rules)
        item = Judged(message.name, result, redact)
        parts = _html_parts(message.raw)
        if isinstance(parts, str):
            item.skipped = parts
        else:
            item.html = parts[:MAX_PAGES]
        item.esp = message_fingerprints(message.raw, item.html, esps)
        item.esp_service = {k: service_of[k] for k in item.esp}
        judged.append(item)
    executable = find_chromium()
    assert executable is not None
    raw_by_name = {m.name: m.raw for m in messages}

    def start() -> Renderer:
        return Renderer(
            executable,
            page_timeout=page_timeout,
            concurrency=jobs,
            snapshot=True,
            placeholder_images=True,
            serve_cid=True,
        )

    not_rendered: list[str] = []
    started = time.monotonic()
    browser = start()
    about = f"{browser.version}, {browser.isolation}"
    todo = [j for j in judged if j.html]
    try:
        for first in range(0, len(todo), batch):
            chunk = todo[first : first + batch]
            if budget is not None and time.monotonic() - started > budget:
                not_rendered += [j.name for j in chunk]
                continue
            pages: list[Page] = []
            owners: list[Judged] = []
            for item in chunk:
                parts = cid_parts(raw_by_name[item.name])
                for html in item.html:
                    pages.append(Page(html, parts))
                    owners.append(item)
            for attempt in (1, 2):
                try:
                    renders = browser.render_many(pages)
                    break
                except RendererError as exc:
                    print(f"  renderer failed ({exc}); attempt {attempt}", file=sys.stderr)
                    browser.close()
                    browser = start()
            else:
                not_rendered += [j.name for j in chunk]
                continue
            for owner, render in zip(owners, renders, strict=True):
                owner.boxes += image_boxes(render.snapshot)
                owner.parts_served += len(render.served)
                render.snapshot = None  # the boxes are what is kept
                owner.renders.append(render)
            done = min(first + batch, len(todo))
            print(
                f"  {done}/{len(todo)} messages rendered, {time.monotonic() - started:.0f}s",
                file=sys.stderr,
            )
    finally:
        browser.close()
    return judged, not_rendered, about


def _remote(url: str) -> bool:
    return url.lower().startswith(("http://", "https://")) and not url.startswith(
        f"http://{DOCUMENT_HOST}/"
    )


def _from_cid(req: Request) -> bool:
    """Loaded by a cid: part (a stylesheet, an SVG, a document) the harness served."""
    return req.initiator.split(" ", 1)[-1].startswith("cid:")


def _said(result: MessageResult, key: str) -> str:
    """What guard reported for a URL, e.g. `remote (layout-spacer)`, or `nothing`."""
    said = sorted(
        {
            f"{f.kind} ({f.tracker or f.rule})"
            for f in result.findings
            if f.url and url_key(f.url) == key
        }
    )
    return ", ".join(said) if said else "nothing"


def _size(box: ImageBox) -> str:
    if box.width is None or box.height is None:
        return "no box" + (f", declared {box.declared}" if box.declared else ", no size declared")
    if box.unsized:
        return "unsized (laid out at the placeholder's 64x64)"
    return f"{box.width:g}x{box.height:g} px"


@dataclass
class Figures:
    messages: int = 0
    rendered: int = 0
    loads: int = 0
    gaps: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> messages (one entry per unreported load)."""
    cid_loads: int = 0
    cid_gaps: int = 0
    parts_served: int = 0
    pixel_like: int = 0
    pixel_like_caught: int = 0
    pixel_misses: dict[str, list[str]] = field(default_factory=dict)
    guard_pixels: int = 0
    pixel_tp: int = 0
    pixel_fp: dict[str, list[str]] = field(default_factory=dict)
    pixel_tp_heuristic: int = 0
    pixel_fp_heuristic: int = 0
    """The same, for pixels guard calls by a layout/shape heuristic (no tracker named): a named
    tracker's open pixel is one whatever its size."""
    pixel_unplaced: dict[str, list[str]] = field(default_factory=dict)
    esp_total: int = 0
    esp_attributed: int = 0
    esp_doc_total: int = 0
    esp_doc_attributed: int = 0
    esp_misses: dict[str, list[str]] = field(default_factory=dict)
    esp_copied: dict[str, list[str]] = field(default_factory=dict)
    """(message, ESP) pairs left out: that ESP's link hosts only, another ESP's sending evidence."""
    scan_errors: list[str] = field(default_factory=list)
    not_rendered: dict[str, list[str]] = field(default_factory=dict)
    timeouts: list[str] = field(default_factory=list)
    snapshot_errors: list[str] = field(default_factory=list)


def _add(table: dict[str, list[str]], key: str, name: str) -> None:
    table.setdefault(key, []).append(name)


def figures(judged: Sequence[Judged], not_rendered: Sequence[str]) -> Figures:
    fig = Figures(messages=len(judged))
    for name in not_rendered:
        _add(fig.not_rendered, "renderer failed or budget ran out", name)
    for item in judged:
        result = item.result
        if result.error:
            fig.scan_errors.append(f"{item.name}: {result.error}")
        if item.skipped:
            _add(fig.not_rendered, item.skipped.split(":", 1)[0], item.name)
        if item.renders:
            fig.rendered += 1
        if any(r.timed_out for r in item.renders):
            fig.timeouts.append(item.name)
        if any(r.snapshot_error for r in item.renders):
            fig.snapshot_errors.append(item.name)
        fig.parts_served += item.parts_served
        # 1. loads guard does not report (a failed scan reports nothing: all are gaps)
        requests = item.requests
        fig.loads += len(requests)
        case = Case(item.name, b"", result, redact=item.redact)
        case.html["before"] = item.html
        case.requests["before"] = requests
        for gap in detection_gaps(case):
            from_cid = _from_cid(gap.request)
            reason = gap.reason + (" [loaded by a cid: part]" if from_cid else "")
            _add(fig.gaps, reason, item.name)
            fig.cid_gaps += from_cid
        fig.cid_loads += sum(1 for r in requests if _from_cid(r))
        # 2. image-loading elements that are pixels by layout, and what guard says of them
        pixel_keys = {url_key(f.url) for f in result.findings if f.kind is Kind.PIXEL and f.url}
        remote = [b for b in item.boxes if _remote(b.url)]
        shown_big = {url_key(b.url) for b in remote if not b.pixel_like}
        seen: set[tuple[str, str, str]] = set()
        for box in remote:
            if not box.pixel_like:
                continue
            key = url_key(box.url)
            ident = (key, box.element, box.hidden)
            if ident in seen:
                continue
            seen.add(ident)
            fig.pixel_like += 1
            if key in pixel_keys:
                fig.pixel_like_caught += 1
                continue
            if box.small:
                why = f"<= 3 px ({box.element}{', ' + box.hidden if box.hidden else ''})"
            else:
                why = f"hidden ({box.hidden}), {_size(box)} ({box.element})"
                if key in shown_big:
                    why += ", the same image also shown > 3 px (a responsive variant)"
            said = _said(result, key) if not result.error else "scan failed"
            _add(fig.pixel_misses, f"{why}; guard: {said}", item.name)
        # 3. guard's pixels against the layout (precision)
        by_key: dict[str, list[ImageBox]] = {}
        for box in remote:
            by_key.setdefault(url_key(box.url), []).append(box)
        for f in result.findings:
            if f.kind is not Kind.PIXEL or not f.url:
                continue
            fig.guard_pixels += 1
            boxes = by_key.get(url_key(f.url), [])
            if not boxes:
                where = "no image element loads it in the browser"
                if f.element:
                    where += f" (guard: {f.element})"
                _add(fig.pixel_unplaced, where, item.name)
            elif any(b.pixel_like for b in boxes):
                fig.pixel_tp += 1
                fig.pixel_tp_heuristic += not f.tracker
            else:
                b = boxes[0]
                by = f"a named tracker's rule ({f.tracker})" if f.tracker else f"heuristic {f.rule}"
                fig.pixel_fp_heuristic += not f.tracker
                _add(fig.pixel_fp, f"shown {_size(b)} ({b.element}); guard: {by}", item.name)
        # 4. ESP attribution
        named = guard_esp(result)
        # Envelope, signature and ESP headers are written by the system that sent the message; a
        # tracking link can be copied from other mail (phishing reuses whole templates). Where
        # one ESP's sending evidence is present, another's link hosts alone name no sender.
        sending = {k for k, ev in item.esp.items() if any(e.kind != "link_host" for e in ev)}
        for esp_id, evidence in item.esp.items():
            if sending and esp_id not in sending:
                _add(fig.esp_copied, f"{esp_id} link hosts; sent through {named}", item.name)
                continue
            fig.esp_total += 1
            hit = named == item.esp_service[esp_id]
            fig.esp_attributed += hit
            documented = any(e.quality != "third-party" for e in evidence)
            fig.esp_doc_total += documented
            fig.esp_doc_attributed += hit and documented
            if not hit:
                shown = ", ".join(sorted({f"{e.kind}={e.value}" for e in evidence}))
                _add(fig.esp_misses, f"{esp_id} ({shown}); guard: {named or 'none'}", item.name)
    return fig


def _names(names: list[str], limit: int = 12) -> str:
    distinct = sorted(set(names))
    shown = ", ".join(distinct[:limit])
    return shown + (f", … (+{len(distinct) - limit})" if len(distinct) > limit else "")


def _table(title: str, table: dict[str, list[str]]) -> None:
    total = sum(len(v) for v in table.values())
    print(f"  {title}: {total}")
    for key, names in sorted(table.items(), key=lambda kv: -len(kv[1])):
        print(f"    {len(names):>4}  {key}  [{len(set(names))} messages: {_names(names)}]")


def print_oracle(name: str, fig: Figures, about: str, seconds: float) -> None:
    print(f"\n{name}: browser oracle ({about}; {seconds:.0f}s)")
    print(f"  messages: {fig.messages}, rendered: {fig.rendered}, loads made: {fig.loads}")
    _table("loads the browser makes that guard does not report (target 0)", fig.gaps)
    print(
        f"  cid: parts served: {fig.parts_served}; loads made by them: {fig.cid_loads}, "
        f"of which unreported: {fig.cid_gaps}"
    )
    missed = fig.pixel_like - fig.pixel_like_caught
    print(
        f"  image-loading elements <= 3 px or hidden: {fig.pixel_like}; guard calls a pixel: "
        f"{fig.pixel_like_caught}; does not: {missed} (target 0)"
    )
    _table("  by cause", fig.pixel_misses)
    placed = fig.pixel_tp + sum(len(v) for v in fig.pixel_fp.values())
    print(
        f"  guard's pixels: {fig.guard_pixels}; on an element <= 3 px or hidden: {fig.pixel_tp}"
        f" of {placed} laid out = precision {_ratio(fig.pixel_tp, placed)}"
    )
    heur = fig.pixel_tp_heuristic + fig.pixel_fp_heuristic
    print(
        f"    of which called by a heuristic (no tracker named): {fig.pixel_tp_heuristic} of "
        f"{heur} = precision {_ratio(fig.pixel_tp_heuristic, heur)}"
    )
    _table("  on an element shown > 3 px", fig.pixel_fp)
    _table("  not matched to a laid-out element (left out of precision)", fig.pixel_unplaced)
    print(
        f"  ESP fingerprints: {fig.esp_total} (message, ESP) pairs; attributed to that ESP by "
        f"guard: {fig.esp_attributed} = {_ratio(fig.esp_attributed, fig.esp_total)} "
        f"(target >= 0.90); on documented evidence only: {fig.esp_doc_attributed}/"
        f"{fig.esp_doc_total}"
    )
    _table("  not attributed", fig.esp_misses)
    _table("  left out: link hosts only, another ESP's sending evidence", fig.esp_copied)
    print(f"  scan errors (their loads count as gaps above): {len(fig.scan_errors)}")
    for line in fig.scan_errors:
        print(f"    {line}")
    for reason, names in fig.not_rendered.items():
        print(f"  not rendered ({reason}): {len(names)} [{_names(names)}]")
    print(f"  render timeouts: {len(fig.timeouts)} [{_names(fig.timeouts)}]")
    print(f"  DOM snapshot failures: {len(fig.snapshot_errors)} [{_names(fig.snapshot_errors)}]")


def report(judged: Sequence[Judged], fig: Figures) -> dict[str, Any]:
    """The JSON report: every figure, and per message its loads and laid-out image elements
    (URLs of the real corpus defanged to scheme and host)."""
    doc: dict[str, Any] = {k: v for k, v in fig.__dict__.items()}
    doc["per_message"] = [
        {
            "source": j.name,
            "scan_error": j.result.error,
            "skipped": j.skipped,
            "requests": [
                {
                    "url": show_url(r.url, j.redact),
                    "type": r.resource_type,
                    "initiator": r.initiator,
                    "construct": construct(j.html, r),
                }
                for r in j.requests
            ],
            "image_elements": [
                {
                    "url": show_url(b.url, j.redact),
                    "element": b.element,
                    "size": _size(b),
                    "hidden": b.hidden,
                    "pixel_like": b.pixel_like,
                }
                for b in j.boxes
                if _remote(b.url)
            ],
            "esp_fingerprints": {k: [e.__dict__ for e in v] for k, v in j.esp.items()},
            "guard_esp": guard_esp(j.result),
        }
        for j in judged
    ]
    return doc


# -- command line ----------------------------------------------------------------------------------


def _messages(name: str, limit: int | None) -> tuple[list[Message], bool] | None:
    if name == "corpus":
        if not CORPUS_ARCHIVE.is_file():
            print(f"corpus: {CORPUS_ARCHIVE} absent, skipped")
            return None
        out: list[Message] = []
        for m in corpus_messages():
            if limit is not None and len(out) >= limit:
                break
            out.append(m)
        return out, True
    corpus = ROOT / name if not Path(name).is_absolute() else Path(name)
    if not corpus.is_dir():
        print(f"{name}: no such directory, skipped")
        return None
    found = directory_messages(corpus)
    return (found[:limit] if limit is not None else found), False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "corpora",
        nargs="*",
        help="samples, eval, corpus (default: samples eval [corpus with --oracle])",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="list every hand-labelled miss")
    ap.add_argument("--oracle", action="store_true", help="also measure against the browser")
    ap.add_argument("--limit", type=int, help="oracle: only the first N messages of each corpus")
    ap.add_argument("--jobs", type=int, default=1, help="oracle: pages rendered at once (1)")
    ap.add_argument("--page-timeout", type=float, default=8.0, help="oracle: seconds a page (8)")
    ap.add_argument("--batch", type=int, default=20, help="oracle: messages per browser batch")
    ap.add_argument("--budget", type=float, help="oracle: seconds per corpus, then stop rendering")
    ap.add_argument("--report", metavar="FILE", help="oracle: write every figure as JSON")
    ns = ap.parse_args()
    corpora = ns.corpora or (["samples", "eval", "corpus"] if ns.oracle else ["samples", "eval"])
    if ns.oracle and find_chromium() is None:
        print("no Chromium for --oracle (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    rules = load_ruleset(include_user=False)
    esps = load_fingerprints()
    reports: dict[str, Any] = {}
    for name in corpora:
        corpus = ROOT / name if not Path(name).is_absolute() else Path(name)
        if name != "corpus":
            if (corpus / "manifest.toml").is_file():
                print_labelled(name, corpus, ns.verbose)
            else:
                print(f"{name}: no manifest.toml, hand-labelled figures skipped")
        if not ns.oracle:
            continue
        loaded = _messages(name, ns.limit)
        if loaded is None:
            continue
        messages, redact = loaded
        started = time.monotonic()
        judged, not_rendered, about = judge(
            messages,
            rules,
            esps,
            redact=redact,
            jobs=ns.jobs,
            page_timeout=ns.page_timeout,
            batch=ns.batch,
            budget=ns.budget,
        )
        fig = figures(judged, not_rendered)
        print_oracle(name, fig, about, time.monotonic() - started)
        reports[name] = report(judged, fig)
    if ns.report:
        Path(ns.report).write_text(json.dumps(reports, indent=1), encoding="utf-8")
        print(f"\nreport: {ns.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
