"""The renderer proof's machinery, shared by tests/test_renderer.py and bench/renderer_corpus.py.

A *source* is a list of messages (samples/, eval/eml/, the real corpus read in place from its
archive). `prove()` scans each message, cleans it with each policy, renders the HTML of every
version in headless Chromium (tests/renderer.py) and keeps what the engine asked for. The checks
then compare the engine's requests with guard's findings:

- `detection_gaps`: a request for the original message that guard did not report;
- `tracker_requests`: after cleaning, a request to a URL guard calls tracking (pixel, click
  tracker), in the original message or the cleaned one;
- `strict_requests`: after `--policy strict`, any request at all;
- `leftover_findings`: what a scan of the cleaned copy still finds that its policy removes;
- `Case.idempotent`: cleaning the cleaned copy again with the same policy changes nothing.

The corpus's URLs are live phishing links: `show_url(url, redact=True)` defangs them (scheme and
host only, dots bracketed) wherever they are printed or written.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tarfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from renderer import DOCUMENT_HOST, Render, Renderer, Request

from guard.clean.message import CleanResult, Policy, clean_message, decide_link
from guard.engine.mime import MessageError, parse_message
from guard.engine.model import Finding, Kind, MessageResult
from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import RuleSet
from guard.engine.urls import parse_http
from guard.mail.files import message_refs
from guard.mail.scan import scan_raw

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
EVAL = ROOT / "eval" / "eml"
CORPUS_DIR = ROOT.parent / "shared" / "corpus"
"""Where the real corpus lives beside the repository (never copied into it)."""
CORPUS_ARCHIVE = CORPUS_DIR / "phishing-pot-dev.tar.xz"
CORPUS_INDEX = CORPUS_DIR / "phishing-pot-dev.tsv"

POLICIES = ("default", "strict")
VARIANTS = ("before", *POLICIES)
LOAD_KINDS = frozenset({Kind.PIXEL, Kind.REMOTE})
NAVIGATION_KINDS = frozenset({Kind.PIXEL, Kind.REMOTE, Kind.LINK, Kind.PARAM})


# -- messages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    name: str
    """What reports call it: a path under its source, or the corpus file name."""
    raw: bytes


def directory_messages(root: Path) -> list[Message]:
    """Every message under `root` (.eml files, Maildirs, mbox files), named relative to it."""
    out = []
    for ref in message_refs(str(root)):
        out.append(Message(ref.source.removeprefix(str(root) + "/"), ref.read()))
    return out


def corpus_names() -> list[str]:
    """The corpus's file names, from its index (the archive need not be read for this)."""
    lines = CORPUS_INDEX.read_text(encoding="utf-8").splitlines()
    return sorted(line.split("\t", 1)[0] for line in lines if line.strip())


def corpus_sample(size: int) -> list[str]:
    """A fixed sample of the corpus: the `size` file names with the smallest sha256 of the name.

    Depends on nothing but the names (not on the archive's order, nor on what guard finds today),
    so it is the same on every machine and every run, and spread evenly over the upstream's
    numbering (which follows the date the honeypot received the mail)."""
    return sorted(corpus_names(), key=lambda n: hashlib.sha256(n.encode()).hexdigest())[:size]


def corpus_messages(names: Collection[str] | None = None) -> Iterator[Message]:
    """Messages of the corpus archive (all, or those named), read in place in archive order.

    A message whose bytes do not match the index's sha256 raises ValueError: the sample and the
    figures are only comparable on the same bytes."""
    digests = dict(
        line.split("\t")[:2]
        for line in CORPUS_INDEX.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    wanted = set(names) if names is not None else None
    with tarfile.open(CORPUS_ARCHIVE, "r:xz") as archive:
        for member in archive:
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or (wanted is not None and name not in wanted):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            raw = handle.read()
            if hashlib.sha256(raw).hexdigest() != digests.get(name):
                raise ValueError(f"{name}: bytes differ from {CORPUS_INDEX.name}")
            yield Message(name, raw)


# -- URL comparison --------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_key(url: str) -> str:
    """A comparison key on which Chromium's canonical form of a URL and guard's resolved form
    agree: tab/newline removed (as the URL parser does), scheme and host lower-case, IDNA host,
    an IPv4 host written as numbers in dotted-quad form, default port and userinfo and fragment
    dropped, dot segments resolved, percent-escapes
    decoded. http and https share a key (a protocol-relative URL takes the page's scheme)."""
    url = "".join(ch for ch in url.strip(" \x00\x0c") if ch not in "\t\n\r")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    host = _ipv4(host) or host.lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host += f":{port}"
    path = _without_dot_segments(unquote(parts.path.replace("\\", "/"))) or "/"
    query = unquote(parts.query)
    if scheme in ("http", "https"):
        scheme = "http"
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


def _ipv4(host: str) -> str | None:
    """The dotted-quad form the URL Standard's IPv4 parser gives a host written as numbers
    (`1370164356`, octal `012345267142`, hex `0x51ab0c84`, `81.11177092`), as Chromium requests
    it; None when the host is not an IPv4 address in any of these forms."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        base, digits = 10, part
        if part[:2].lower() == "0x":
            base, digits = 16, part[2:] or "0"
        elif len(part) > 1 and part.startswith("0"):
            base, digits = 8, part[1:]
        try:
            numbers.append(int(digits, base) if digits.isalnum() and digits.isascii() else -1)
        except ValueError:
            return None
        if numbers[-1] < 0:
            return None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(numbers[:-1]))
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


def _without_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as browsers apply it to every http(s) path."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out)


def show_url(url: str, redact: bool) -> str:
    """`url` as printed: whole, or (redact) defanged to scheme and host, so that no live link
    of the real corpus ends up in a log, a report or a commit."""
    if not redact:
        return url
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    scheme = scheme.lower().replace("http", "hxxp")
    return f"{scheme}://{host.replace('.', '[.]')}/…"


def _kinds_by_url(findings: tuple[Finding, ...]) -> dict[str, set[Kind]]:
    out: dict[str, set[Kind]] = {}
    for f in findings:
        if f.url:
            out.setdefault(url_key(f.url), set()).add(f.kind)
    return out


def _tracker_keys(findings: tuple[Finding, ...]) -> dict[str, Finding]:
    """URLs guard calls tracking: pixels (known or heuristic) and click-tracking links.

    Not `remote` loads, even when a rule names the service that hosts them (an ESP's image CDN,
    live content, a layout spacer): the default policy keeps content images on purpose and
    `MessageResult.tracking` does not count them; `strict` removes them."""
    return {url_key(f.url): f for f in findings if f.url and f.kind in (Kind.PIXEL, Kind.LINK)}


# -- one message, every version of it ------------------------------------------------------------


@dataclass
class Case:
    source: str
    raw: bytes
    scan: MessageResult
    redact: bool = False
    """Its URLs are printed defanged (the real corpus)."""
    html: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Variant -> its decoded text/html parts."""
    requests: dict[str, list[Request]] = field(default_factory=dict)
    """Network requests (http(s), not the message's own origin; one per URL) per variant:
    `before`, `default`, `strict`."""
    own_origin: dict[str, int] = field(default_factory=dict)
    cleaned: dict[str, CleanResult] = field(default_factory=dict)
    cleaned_scan: dict[str, MessageResult] = field(default_factory=dict)
    idempotent: dict[str, bool] = field(default_factory=dict)
    """Policy -> cleaning the cleaned copy again with it changed nothing."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Variant -> why it was not rendered (unparseable, no HTML part)."""
    timed_out: dict[str, int] = field(default_factory=dict)
    """Variant -> renders that needed the whole page timeout."""

    def label(self, req: Request) -> str:
        where = req.initiator or "?"
        flag = "" if req.intercepted else ", announced but cancelled before interception"
        return f"{req.resource_type or '?'} via {where}{flag}"


def _html_parts(raw: bytes) -> tuple[str, ...] | str:
    try:
        parsed, _ = parse_message(raw)
    except MessageError as exc:
        return f"unparseable: {exc}"
    return parsed.html_parts or "no text/html part"


@dataclass
class Proof:
    cases: list[Case]
    name: str = ""
    renders: int = 0
    seconds: float = 0.0
    isolation: str = ""
    version: str = ""
    stray: list[str] = field(default_factory=list)


class BudgetExceeded(Exception):
    """Rendering a source took longer than its budget (a bound, so that a run always ends)."""


def prove(
    messages: Sequence[Message],
    browser: Renderer,
    rules: RuleSet,
    *,
    name: str = "",
    redact: bool = False,
    budget: float | None = None,
    chunk: int = 24,
) -> Proof:
    """Scan, clean (each policy, then again for idempotence) and render every message.

    Identical HTML renders identically: each distinct document is rendered once. Renders go in
    chunks of `chunk`; past `budget` seconds (checked between chunks) BudgetExceeded is raised."""
    started = time.monotonic()
    cases: list[Case] = []
    documents: dict[str, str] = {}  # sha256 -> HTML, each distinct document once
    for message in messages:
        case = Case(message.name, message.raw, scan_raw(message.raw, message.name, "0", rules))
        case.redact = redact
        cases.append(case)
        for variant in VARIANTS:
            data = message.raw
            if variant != "before":
                policy = Policy(name=variant)
                result = clean_message(message.raw, rules, policy)
                case.cleaned[variant] = result
                data = result.data
                case.cleaned_scan[variant] = scan_raw(data, message.name, "0", rules)
                case.idempotent[variant] = clean_message(data, rules, policy).data == data
            parts = _html_parts(data)
            if isinstance(parts, str):
                case.skipped[variant] = parts
                continue
            case.html[variant] = parts
            for html in parts:
                documents.setdefault(_digest(html), html)
    rendered: dict[str, Render] = {}
    pending = list(documents.items())
    for start in range(0, len(pending), chunk):
        if budget is not None and time.monotonic() - started > budget:
            raise BudgetExceeded(
                f"over {budget:.0f}s after {len(rendered)} of {len(pending)} renders"
            )
        batch = pending[start : start + chunk]
        for (digest, _), render in zip(
            batch, browser.render_many(h for _, h in batch), strict=True
        ):
            rendered[digest] = render
    for case in cases:
        for variant, parts in case.html.items():
            requests: list[Request] = []
            own = timed_out = 0
            for html in parts:
                render = rendered[_digest(html)]
                requests += render.network_requests()
                own += len(render.own_origin_requests())
                timed_out += render.timed_out
            # Chromium sometimes asks twice for an image it was refused: count distinct URLs.
            distinct: dict[str, Request] = {}
            for req in requests:
                distinct.setdefault(req.url, req)
            case.requests[variant] = list(distinct.values())
            case.own_origin[variant] = own
            if timed_out:
                case.timed_out[variant] = timed_out
    return Proof(
        cases,
        name=name,
        renders=len(rendered),
        seconds=time.monotonic() - started,
        isolation=browser.isolation,
        version=browser.version,
        stray=list(browser.stray),
    )


def _digest(html: str) -> str:
    return hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest()


# -- the checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A request the engine made for the original message that guard did not report."""

    source: str
    request: Request
    found: frozenset[Kind]
    """What guard reported for that URL (empty: nothing), when not an accepted kind."""
    construct: str
    """The HTML construct that loads it, e.g. `<img src>`, `<style> url()` (see `construct`)."""
    redact: bool = False

    @property
    def reason(self) -> str:
        """The class of gap: what loaded it, through which construct, and what guard said."""
        said = "reported only as " + "/".join(sorted(self.found)) if self.found else "not reported"
        return f"{self.request.resource_type or '?'} {self.construct}: {said}"

    def __str__(self) -> str:
        url = show_url(self.request.url, self.redact)
        via = self.request.initiator or "?"
        flag = "" if self.request.intercepted else ", cancelled before interception"
        return f"{self.source}: {url}\n    {self.reason} (via {via}{flag})"


def detection_gaps(case: Case) -> list[Gap]:
    """The renderer's requests for the original message that guard did not report (as a load,
    or for a top-level navigation, as anything with that URL)."""
    gaps: list[Gap] = []
    kinds = _kinds_by_url(case.scan.findings)
    for req in case.requests.get("before", []):
        found = kinds.get(url_key(req.url), set())
        accepted = NAVIGATION_KINDS if req.is_navigation else LOAD_KINDS
        if found & accepted:
            continue
        what = construct(case.html.get("before", ()), req)
        gaps.append(Gap(case.source, req, frozenset(found), what, case.redact))
    return gaps


def tracker_requests(case: Case, variant: str) -> list[str]:
    """The renderer's requests for a cleaned message that go to a URL guard calls tracking, in
    the original message or in the cleaned one."""
    bad = _tracker_keys(case.scan.findings)
    if variant in case.cleaned_scan:
        bad.update(_tracker_keys(case.cleaned_scan[variant].findings))
    left = []
    for req in case.requests.get(variant, []):
        finding = bad.get(url_key(req.url))
        if finding is not None:
            what = f"{finding.kind} {finding.tracker or finding.rule} ({finding.element})"
            url = show_url(req.url, case.redact)
            left.append(f"{case.source}: {url}\n    {case.label(req)}; guard: {what}")
    return left


def strict_requests(case: Case) -> list[str]:
    """Every request the renderer makes for the strict copy (there should be none)."""
    return [
        f"{case.source}: {show_url(req.url, case.redact)}\n    {case.label(req)}"
        for req in case.requests.get("strict", [])
    ]


def leftover_findings(case: Case, variant: str, rules: RuleSet) -> list[str]:
    """What a scan of the copy cleaned with `variant` still finds that this policy removes:
    pixels, read receipts, remote loads under strict, and links or parameters it would rewrite
    (wrapped links guard cannot decode offline, and security wrappers with what they wrap, stay
    on purpose)."""
    scan = case.cleaned_scan.get(variant)
    if scan is None:
        return []
    policy = Policy(name=variant)
    # A parameter reported on the decoded target of a wrapper that stays (a security wrapper,
    # kept by default) is not in the message as a link of its own: nothing to rewrite.
    targets = {f.destination for f in scan.findings if f.kind is Kind.LINK and f.destination}
    out = []
    for f in scan.findings:
        if f.kind in (Kind.PIXEL, Kind.RECEIPT) or (policy.strict and f.kind is Kind.REMOTE):
            left = True
        elif f.kind in (Kind.LINK, Kind.PARAM) and f.url and f.url not in targets:
            parsed = parse_http(f.url)
            left = parsed is not None and decide_link(parsed, rules, policy).replacement is not None
        else:
            left = False
        if left:
            url = show_url(f.url, case.redact) if f.url else f.header or ""
            out.append(f"{case.source} ({variant}): {f.kind} {f.tracker or f.rule} {url}")
    return out


def failures(case: Case) -> list[str]:
    """What kept part of this message out of the proof: a scan or clean error, a render that
    needed the whole page timeout."""
    out = []
    if case.scan.error:
        out.append(f"scan error: {case.scan.error}")
    for variant, result in case.cleaned.items():
        if result.skipped:
            out.append(f"{variant} clean skipped: {result.skipped}")
    for variant, n in case.timed_out.items():
        out.append(f"{variant}: {n} render(s) timed out")
    return out


# -- which HTML construct made a load --------------------------------------------------------------

_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9:-]*)")
_ATTR = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*["']?[^"'<>]*$""")
_REL = re.compile(r"""\brel\s*=\s*["']?([^"'>]+)""", re.I)


def construct(parts: Sequence[str], req: Request) -> str:
    """The HTML construct behind a request, e.g. `<img src>`, `<td background>`, `<style>
    url()`, `<link rel=icon href>`, `<meta refresh>`, `@import in a stylesheet`: found from the
    URL's host in the HTML (the line the initiator names first), without printing the URL."""
    via = req.initiator
    if via.startswith("parser ") and not via.startswith("parser message"):
        return "in a stylesheet (@import / url())"
    if req.main_frame:
        return "<meta refresh> (top-level navigation)"
    host = urlsplit(req.url).hostname or ""
    if not host or host == DOCUMENT_HOST:
        return "?"
    line = None
    if via.startswith("parser message:"):
        with contextlib.suppress(ValueError):
            line = int(via.rsplit(":", 1)[1])
    for html in parts:
        lines = html.splitlines()
        texts = [lines[line - 1]] if line is not None and 0 < line <= len(lines) else []
        texts.append(html)
        for text in texts:
            found = _construct_at(text, host)
            if found:
                return found
    return "?"


def _construct_at(text: str, host: str) -> str | None:
    """The construct around the first occurrence of `host` in `text` that loads (an attribute
    such as src/background/srcset/poster/data, or a CSS url()); else around the first one (a
    host also linked to with <a href> before it loads an image, for instance)."""
    lowered, needle = text.lower(), host.lower()
    first: str | None = None
    at = lowered.find(needle)
    for _ in range(200):  # bounded: a host repeated in every link of a long message
        if at < 0:
            break
        found = _construct_before(text[max(0, at - 2000) : at])
        if found is not None:
            if not found.endswith((" href>", " ?>")) or found.startswith("<link"):
                return found
            first = first or found
        at = lowered.find(needle, at + len(needle))
    return first


def _construct_before(before: str) -> str | None:
    tag_at = before.rfind("<")
    tag = _TAG.match(before, tag_at) if tag_at >= 0 else None
    if tag is None:
        return None
    name = tag.group(1).lower()
    inside = before[tag_at:]
    if name == "style" or "url(" in inside[-200:].lower():
        where = "<style>" if name == "style" else f"<{name} style>"
        return f"{where} url()"
    attr = _ATTR.search(inside)
    rel = _REL.search(inside) if name == "link" else None
    rel_text = f" rel={rel.group(1).strip().lower()}" if rel else ""
    return f"<{name}{rel_text} {attr.group(1).lower() if attr else '?'}>"


def by_reason(gaps: Sequence[Gap]) -> dict[str, list[Gap]]:
    out: dict[str, list[Gap]] = {}
    for gap in gaps:
        out.setdefault(gap.reason, []).append(gap)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))


def default_rules() -> RuleSet:
    return load_ruleset(include_user=False)


# -- figures ---------------------------------------------------------------------------------------


def summary(proof: Proof, rules: RuleSet) -> dict[str, Any]:
    """Every figure of a proof, as printed by the bench and written in its JSON report."""
    cases = proof.cases
    gaps = [gap for case in cases for gap in detection_gaps(case)]
    reasons = by_reason(gaps)
    return {
        "chromium": proof.version,
        "isolation": proof.isolation,
        "messages": len(cases),
        "with_html": sum(1 for c in cases if "before" in c.html),
        "renders": proof.renders,
        "seconds": round(proof.seconds, 1),
        "requests_before": sum(len(c.requests.get("before", [])) for c in cases),
        "messages_loading_something": sum(1 for c in cases if c.requests.get("before")),
        "gaps": len(gaps),
        "gap_messages": len({g.source for g in gaps}),
        "gaps_by_reason": {
            reason: {"requests": len(items), "messages": sorted({g.source for g in items})}
            for reason, items in reasons.items()
        },
        "requests_after_default": sum(len(c.requests.get("default", [])) for c in cases),
        "tracker_requests_after_default": sum(len(tracker_requests(c, "default")) for c in cases),
        "requests_after_strict": sum(len(strict_requests(c)) for c in cases),
        "leftover_findings": {
            p: sum(len(leftover_findings(c, p, rules)) for c in cases) for p in POLICIES
        },
        "not_idempotent": {
            p: sorted(c.source for c in cases if not c.idempotent.get(p, True)) for p in POLICIES
        },
        "render_timeouts": sum(sum(c.timed_out.values()) for c in cases),
        "scan_errors": sorted(c.source for c in cases if c.scan.error),
        "clean_skipped": {
            p: sorted(c.source for c in cases if p in c.cleaned and c.cleaned[p].skipped)
            for p in POLICIES
        },
        "not_rendered": {
            reason: sorted(c.source for c in cases if c.skipped.get("before") == reason)
            for reason in sorted({c.skipped["before"] for c in cases if "before" in c.skipped})
        },
        "stray": len(proof.stray),
    }


def report(proof: Proof, rules: RuleSet) -> dict[str, Any]:
    """The JSON report: the summary, and per message every request and problem (URLs of a
    redacted source defanged)."""
    doc = summary(proof, rules)
    doc["per_message"] = [
        {
            "source": c.source,
            "scan_error": c.scan.error,
            "skipped": c.skipped,
            "failures": failures(c),
            "own_origin_requests": c.own_origin,
            "requests": {
                variant: [
                    {
                        "url": show_url(r.url, c.redact),
                        "type": r.resource_type,
                        "initiator": r.initiator,
                        "intercepted": r.intercepted,
                    }
                    for r in reqs
                ]
                for variant, reqs in c.requests.items()
            },
            "gaps": [
                {"url": show_url(g.request.url, c.redact), "reason": g.reason}
                for g in detection_gaps(c)
            ],
            "tracker_requests_after_default": tracker_requests(c, "default"),
            "leftover_findings": [x for p in POLICIES for x in leftover_findings(c, p, rules)],
            "idempotent": c.idempotent,
        }
        for c in proof.cases
    ]
    return doc


def table(proof: Proof) -> str:
    """Per message: distinct URLs requested before cleaning and after each policy."""
    lines = [
        f"renderer: {proof.version}, {proof.isolation}; {proof.renders} renders "
        f"in {proof.seconds:.1f}s",
        f"{'message':<58} {'before':>6} " + " ".join(f"{p:>7}" for p in POLICIES),
    ]
    for c in proof.cases:
        counts = [len(c.requests.get(v, [])) for v in VARIANTS]
        lines.append(f"{c.source:<58} " + " ".join(f"{n:>6}" for n in counts))
    totals = [sum(len(c.requests.get(v, [])) for c in proof.cases) for v in VARIANTS]
    lines.append(f"{'total':<58} " + " ".join(f"{n:>6}" for n in totals))
    return "\n".join(lines)
