"""Proof in a real renderer (issue 6, item 5): what a browser engine loads is what guard reports.

Every HTML part of every sample message is rendered in headless Chromium with the network walled
off (tests/renderer.py: every request intercepted, recorded and refused; Chromium's DNS disabled; a
dead proxy; a new network namespace where the kernel allows one). Then:

- before cleaning, every http(s) URL the engine asked for must be among guard's findings for that
  message (`pixel`/`remote` for subresources and frames; for a top-level navigation such as a meta
  refresh, a `link`/`param` finding counts too). Anything else is a DETECTION GAP, listed with the
  sample, the URL, its resource type and what made the engine load it. (The engine picks one
  srcset candidate where guard reports all: the check is renderer ⊆ guard.)
- after `guard strip` with the default policy, no request may go to a URL guard called a pixel or
  attributed to a known tracker (in the original message or in the cleaned one);
- after `strict`, no request at all.

Chromium missing: the tests skip locally and fail under CI=true (scripts/test installs Debian's
`chromium` there). The cleaning checks skip only while guard/clean.py does not exist.

`GUARD_RENDERER_REPORT=FILE` writes every figure and request as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from renderer import Render, Renderer, RendererError, Request, chromium, find_chromium

from guard.mime import MessageError, parse_message
from guard.model import Confidence, Finding, Kind, MessageResult
from guard.ruleset import load_ruleset
from guard.scan import scan_raw
from guard.sources.files import message_refs

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
RULES = load_ruleset(include_user=False)
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = find_chromium()
PAGE_TIMEOUT = 10.0  # seconds per render; a render that needs it is reported as a failure
TOTAL_BUDGET = 150.0  # seconds for every render of the corpus together (typically 45–65 s)

# The cleaning checks run as soon as the planner exists; an import error in it is a failure.
HAVE_CLEAN = importlib.util.find_spec("guard.clean") is not None
CLEAN_MISSING = "guard/clean.py (the cleaning planner) does not exist yet"
POLICIES = ("default", "strict") if HAVE_CLEAN else ()

LOAD_KINDS = frozenset({Kind.PIXEL, Kind.REMOTE})
NAVIGATION_KINDS = frozenset({Kind.PIXEL, Kind.REMOTE, Kind.LINK, Kind.PARAM})


# -- URL comparison --------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_key(url: str) -> str:
    """A comparison key on which Chromium's canonical form of a URL and guard's resolved form
    agree: tab/newline removed (as the URL parser does), scheme and host lower-case, IDNA host,
    default port and userinfo and fragment dropped, dot segments resolved, percent-escapes
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
    host = host.lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host += f":{port}"
    path = _without_dot_segments(unquote(parts.path.replace("\\", "/"))) or "/"
    query = unquote(parts.query)
    if scheme in ("http", "https"):
        scheme = "http"
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


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


# -- the corpus, rendered once per module ----------------------------------------------------------


def _render_hint(req: Request) -> str:
    where = req.initiator or "?"
    flag = "" if req.intercepted else ", announced but cancelled before interception"
    return f"{req.resource_type or '?'} via {where}{flag}"


@dataclass
class Case:
    source: str
    raw: bytes
    scan: MessageResult
    requests: dict[str, list[Request]] = field(default_factory=dict)
    """Network requests (http(s), not the message's own origin; one per URL) per variant:
    `before`, and the policy names when guard/clean.py exists."""
    own_origin: dict[str, int] = field(default_factory=dict)
    html_parts: dict[str, int] = field(default_factory=dict)
    cleaned_scan: dict[str, MessageResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Variant -> why it was not rendered (unparseable, no HTML part)."""


@dataclass
class Corpus:
    cases: list[Case]
    renders: list[Render]
    seconds: float
    isolation: str
    version: str
    stray: list[str]


def _html_parts(raw: bytes) -> tuple[str, ...] | str:
    try:
        parsed, _ = parse_message(raw)
    except MessageError as exc:
        return f"unparseable: {exc}"
    return parsed.html_parts or "no text/html part"


@pytest.fixture(scope="module")
def browser() -> Iterator[Renderer]:
    if CHROMIUM is None:
        reason = (
            "Chromium is not installed (Debian: apt-get install chromium; or set GUARD_CHROMIUM)"
        )
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        with chromium(CHROMIUM, page_timeout=PAGE_TIMEOUT) as renderer:
            yield renderer
    except RendererError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"Chromium ({CHROMIUM}) could not be driven: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def corpus(browser: Renderer) -> Corpus:
    clean: Callable[[bytes, str], bytes] | None = None
    if HAVE_CLEAN:
        from guard.clean import Policy, clean_message

        def clean(raw: bytes, policy: str) -> bytes:
            return clean_message(raw, RULES, Policy(name=policy)).data

    cache: dict[str, Render] = {}
    renders: list[Render] = []
    cases: list[Case] = []
    started = time.monotonic()
    for ref in message_refs(str(SAMPLES)):
        raw = ref.read()
        source = ref.source.removeprefix(str(SAMPLES) + "/")
        case = Case(source, raw, scan_raw(raw, source, ref.id, RULES))
        cases.append(case)
        for variant in ("before", *POLICIES):
            data = raw
            if variant != "before":
                assert clean is not None
                data = clean(raw, variant)
                case.cleaned_scan[variant] = scan_raw(data, source, ref.id, RULES)
            parts = _html_parts(data)
            if isinstance(parts, str):
                case.skipped[variant] = parts
                case.requests[variant] = []
                continue
            requests: list[Request] = []
            own = 0
            for html in parts:
                digest = hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest()
                if digest not in cache:  # identical HTML renders identically: render it once
                    if time.monotonic() - started > TOTAL_BUDGET:
                        pytest.fail(
                            f"rendering the corpus took over {TOTAL_BUDGET:.0f}s "
                            f"({len(renders)} renders so far)",
                            pytrace=False,
                        )
                    cache[digest] = browser.render(html)
                    renders.append(cache[digest])
                requests += cache[digest].network_requests()
                own += len(cache[digest].own_origin_requests())
            # Chromium sometimes asks twice for an image it was refused: count distinct URLs.
            distinct: dict[str, Request] = {}
            for req in requests:
                distinct.setdefault(req.url, req)
            case.requests[variant] = list(distinct.values())
            case.own_origin[variant] = own
            case.html_parts[variant] = len(parts)
    corpus = Corpus(
        cases,
        renders,
        time.monotonic() - started,
        browser.isolation,
        browser.version,
        list(browser.stray),
    )
    _write_report(corpus)
    return corpus


def _write_report(corpus: Corpus) -> None:
    target = os.environ.get("GUARD_RENDERER_REPORT")
    if not target:
        return
    doc: dict[str, Any] = {
        "chromium": corpus.version,
        "isolation": corpus.isolation,
        "renders": len(corpus.renders),
        "seconds": round(corpus.seconds, 1),
        "messages": [
            {
                "source": c.source,
                "error": c.scan.error,
                "skipped": c.skipped,
                "own_origin_requests": c.own_origin,
                "requests": {
                    variant: [
                        {"url": r.url, "type": r.resource_type, "initiator": r.initiator}
                        for r in reqs
                    ]
                    for variant, reqs in c.requests.items()
                },
            }
            for c in corpus.cases
        ],
    }
    Path(target).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def _figures(corpus: Corpus) -> str:
    lines = [
        f"renderer: {corpus.version}, {corpus.isolation}; {len(corpus.renders)} renders "
        f"in {corpus.seconds:.1f}s",
        f"{'sample':<58} {'before':>6} " + " ".join(f"{p:>7}" for p in POLICIES),
    ]
    for c in corpus.cases:
        counts = [len(c.requests.get(v, [])) for v in ("before", *POLICIES)]
        lines.append(f"{c.source:<58} " + " ".join(f"{n:>6}" for n in counts))
    totals = [sum(len(c.requests.get(v, [])) for c in corpus.cases) for v in ("before", *POLICIES)]
    lines.append(f"{'total':<58} " + " ".join(f"{n:>6}" for n in totals))
    return "\n".join(lines)


# -- the machinery itself --------------------------------------------------------------------------


class _Listener:
    """A TCP listener on 127.0.0.1 that counts connections: a request that escaped would land."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_renderer_records_and_refuses_every_vector(browser: Renderer) -> None:
    """The harness is only proof if it sees loads: every vector below must be recorded, and a
    real listener on 127.0.0.1 must receive nothing (no request is ever sent)."""
    listener = _Listener()
    local = f"http://127.0.0.1:{listener.port}"
    html = f"""<!doctype html><html><head>
<base href="https://base.vector.example/dir/">
<link rel="stylesheet" href="https://css.vector.example/a.css">
<link rel="preload" as="image" href="https://preload.vector.example/p.png">
<link rel="prefetch" href="https://prefetch.vector.example/n.jpg">
<link rel="dns-prefetch" href="https://dns.vector.example/">
<link rel="preconnect" href="https://preconnect.vector.example/">
<style>
@import url("https://import.vector.example/i.css");
@font-face {{ font-family: V; src: url(https://font.vector.example/v.woff2) format("woff2"); }}
p {{ font-family: V; background-image: url(https://cssbg.vector.example/b.png); }}
</style>
<meta http-equiv="refresh" content="0;url=https://refresh.vector.example/go">
</head><body>
<p>text</p>
<img src="relative/o.gif" width="1" height="1">
<img src="//protocol-relative.vector.example/x.png">
<img srcset="https://srcset.vector.example/1x.png 1x, https://srcset.vector.example/2x.png 2x">
<img src="https://lazy.vector.example/far.png" loading="lazy" style="margin-top:20000px">
<table background="https://background.vector.example/t.png"><tr><td>x</td></tr></table>
<iframe src="https://iframe.vector.example/f.html"></iframe>
<img src="{local}/escape.png">
<script src="https://script.vector.example/s.js"></script>
</body></html>"""
    try:
        render = browser.render(html)
    finally:
        time.sleep(0.3)  # give an escaped connection time to arrive
        listener.close()
    seen = {url_key(r.url) for r in render.network_requests()}
    expected = {
        "https://base.vector.example/dir/relative/o.gif",
        "https://css.vector.example/a.css",
        "https://preload.vector.example/p.png",
        "https://prefetch.vector.example/n.jpg",
        "https://import.vector.example/i.css",
        "https://font.vector.example/v.woff2",
        "https://cssbg.vector.example/b.png",
        "https://refresh.vector.example/go",
        "https://protocol-relative.vector.example/x.png",
        "https://srcset.vector.example/1x.png",
        "https://lazy.vector.example/far.png",
        "https://background.vector.example/t.png",
        "https://iframe.vector.example/f.html",
        f"{local}/escape.png",
    }
    missing = {url_key(u) for u in expected} - seen
    assert not missing, f"the renderer did not record: {sorted(missing)}"
    # Scripts are off, as in a mail client; dns-prefetch/preconnect make no request at all (and
    # Chromium's resolver and the dead proxy stop what they would do).
    assert url_key("https://script.vector.example/s.js") not in seen
    assert listener.connections == 0, "a request reached 127.0.0.1: interception leaked"
    assert not render.timed_out


# -- the proofs ------------------------------------------------------------------------------------


def test_corpus_renders_completely_and_in_bounds(corpus: Corpus) -> None:
    print("\n" + _figures(corpus))
    timed_out = len([r for r in corpus.renders if r.timed_out])
    assert corpus.renders, "nothing was rendered"
    assert timed_out == 0, f"{timed_out} renders hit the {PAGE_TIMEOUT:.0f}s page timeout"
    assert not corpus.stray, f"requests outside any render: {corpus.stray}"
    assert corpus.seconds < TOTAL_BUDGET
    with_html = [c for c in corpus.cases if "before" not in c.skipped]
    assert len(with_html) >= 60, "the corpus should have dozens of HTML messages"
    assert sum(len(c.requests["before"]) for c in with_html) > 100


def detection_gaps(case: Case) -> list[str]:
    """The renderer's requests for the original message that guard did not report (as a load,
    or for a top-level navigation, as anything with that URL)."""
    gaps: list[str] = []
    kinds = _kinds_by_url(case.scan.findings)
    for req in case.requests["before"]:
        found = kinds.get(url_key(req.url), set())
        accepted = NAVIGATION_KINDS if req.is_navigation else LOAD_KINDS
        if found & accepted:
            continue
        why = (
            f"reported only as {'/'.join(sorted(found))}, loaded as a resource"
            if found
            else "not reported"
        )
        gaps.append(f"{case.source}: {req.url}\n    {_render_hint(req)}; {why}")
    return gaps


def tracker_requests(case: Case, variant: str) -> list[str]:
    """The renderer's requests for a cleaned message that go to a URL guard calls tracking, in
    the original message or in the cleaned one."""
    bad = _tracker_keys(case.scan.findings)
    bad.update(_tracker_keys(case.cleaned_scan[variant].findings))
    left = []
    for req in case.requests[variant]:
        finding = bad.get(url_key(req.url))
        if finding is not None:
            what = f"{finding.kind} {finding.tracker or finding.rule} ({finding.element})"
            left.append(f"{case.source}: {req.url}\n    {_render_hint(req)}; guard: {what}")
    return left


def test_the_checks_catch_what_they_are_meant_to() -> None:
    """The comparisons themselves, on made-up data: a load guard missed is a gap; a load guard
    reported only as a link is a gap; a navigation to a reported link is not; a request to a
    pixel after cleaning is caught."""
    pixel = "https://t.example/open?u=1"
    content = "https://cdn.example/a b.png"
    findings = (
        Finding(Kind.PIXEL, Confidence.KNOWN, "x.open", tracker="X", url=pixel),
        Finding(Kind.LINK, Confidence.KNOWN, "x.click", tracker="X", url="https://t.example/c"),
        Finding(Kind.REMOTE, Confidence.KNOWN, "builtin.remote-load", url=content),
    )
    scan = MessageResult(source="m", id="m", findings=findings)
    case = Case("m", b"", scan)
    case.requests["before"] = [
        Request("HTTPS://T.example:443/open?u=1#x", "Image"),
        Request("https://cdn.example/a%20b.png", "Image"),
        Request("https://t.example/c", "Document", main_frame=True),
        Request("https://t.example/c", "Image"),
        Request("https://missed.example/p.gif", "Image", initiator="parser message:3"),
    ]
    gaps = detection_gaps(case)
    assert len(gaps) == 2
    assert "https://t.example/c" in gaps[0] and "only as link" in gaps[0]
    assert "missed.example" in gaps[1] and "Image via parser message:3" in gaps[1]
    case.cleaned_scan["default"] = MessageResult(source="m", id="m")
    case.requests["default"] = [Request(pixel, "Image"), Request(content, "Image")]
    assert len(tracker_requests(case, "default")) == 1


def test_every_renderer_load_is_among_guards_findings(corpus: Corpus) -> None:
    gaps = [gap for case in corpus.cases for gap in detection_gaps(case)]
    assert not gaps, f"DETECTION GAPS ({len(gaps)}): the renderer loads what guard did not " + (
        "report:\n" + "\n".join(gaps)
    )


@pytest.mark.skipif(not HAVE_CLEAN, reason=CLEAN_MISSING)
def test_default_strip_leaves_no_request_to_a_pixel_or_tracker(corpus: Corpus) -> None:
    left = [hit for case in corpus.cases for hit in tracker_requests(case, "default")]
    assert not left, (
        f"after `guard strip` (default) the renderer still requests {len(left)} "
        "pixel/tracker URLs:\n" + "\n".join(left)
    )


@pytest.mark.skipif(not HAVE_CLEAN, reason=CLEAN_MISSING)
def test_strict_strip_leaves_no_request_at_all(corpus: Corpus) -> None:
    left = [
        f"{case.source}: {req.url}\n    {_render_hint(req)}"
        for case in corpus.cases
        for req in case.requests["strict"]
    ]
    assert not left, (
        f"after `guard strip --policy strict` the renderer still makes {len(left)} requests:\n"
        + "\n".join(left)
    )
