"""ParsedMessage + RuleSet -> findings. Pure: no I/O, no network, same input -> same output."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from guard.engine.domains import registrable_domain
from guard.engine.html import Occurrence, Parsed, scan_html
from guard.engine.leaks import AddressTokens, address_tokens
from guard.engine.model import Confidence, Esp, Finding, Headers, Kind, ParsedMessage, Party
from guard.engine.ruleset import Rule, RuleSet, Service
from guard.engine.urlcore import core_for
from guard.engine.urls import Url, parse_http, query_keys

# A URL in plain text ends at whitespace or a character that cannot be part of it unescaped;
# trailing sentence punctuation is not part of it.
_TEXT_URL = re.compile(r"https?://[^\s<>\"'\x00-\x1f\x7f]+", re.I)
_TRAILING = ".,;:!?)]}'\""

BUILTIN_REMOTE = "builtin.remote-load"
HEURISTIC_PIXEL = "heuristic.pixel-shape"


TextUrls = dict[int, tuple[str, list[str]]]
"""A plain-text part -> the URLs `text_urls` found in it, handed from detection to the rewrite of
the same text (as `html.Parsed` hands the HTML's parse): by the text's id, the text kept alongside
(`html.kept` takes them out)."""


def _text_url_matches(text: str) -> Iterator[re.Match[str]]:
    """`_TEXT_URL.finditer(text)`, tried only where a match can start: 4 or 5 characters before
    a `://` (a match holds one right after `http` or `https`; `:` and `/` have no other case).
    The case-insensitive search tries the pattern at every character, reading each one's case
    (~25 instructions a character of a text part); str.find looks for `://` in C. Each try is
    the pattern's own match, in the order finditer tries them (two `://` are 3 or more apart),
    from the end of the last match on (tests/test_detect.py compares the two)."""
    pos = 0
    at = text.find("://")
    while at != -1:
        for start in (at - 5, at - 4):
            if start >= pos:
                m = _TEXT_URL.match(text, start)
                if m is not None:
                    yield m
                    pos = m.end()
                    break
        at = text.find("://", max(at + 1, pos))


def text_urls(text: str) -> Iterable[str]:
    for m in _text_url_matches(text):
        url = m.group(0)
        # The brackets are counted once and the end moved: recounting and slicing at each
        # trailing character is quadratic (`http://a` and 40,000 `)` took 2 s).
        opening = closing = -1
        end = len(url)
        while end and url[end - 1] in _TRAILING:
            if url[end - 1] == ")":
                if closing == -1:
                    opening, closing = url.count("("), url.count(")", 0, end)
                # Keep a closing bracket that belongs to the URL: `…/wiki/Foo_(bar)`.
                if opening >= closing:
                    break
                closing -= 1
            end -= 1
        yield url[:end]


class _Collector:
    """Findings keyed by (kind, url/header): one finding per distinct thing, first evidence kept."""

    def __init__(self, rules: RuleSet, sender_domain: str) -> None:
        self.rules = rules
        self.sender_domain = sender_domain
        self.found: dict[tuple[str, str], Finding] = {}

    def add(self, kind: str, key: str, finding: Finding) -> None:
        # `kind` is the finding's kind as a plain string: an Enum member hashes and reads its
        # value in Python code, ~130 times per newsletter.
        self.found.setdefault((kind, key), finding)

    def party(self, host: str) -> Party:
        # The sender's domain is registrable, so "same registrable domain" is a suffix test:
        # no public-suffix look-up per host.
        domain = self.sender_domain
        same = bool(domain) and (host == domain or host.endswith("." + domain))
        return Party.FIRST if same else Party.THIRD

    def load(self, occ: Occurrence, url: Url) -> None:
        rules = self.rules
        candidates = rules.candidates(url)
        heuristic = bool(occ.image and occ.shape)
        if not candidates and not heuristic:
            # Most loads: a content image no rule is about (positional: this runs ~100 times
            # per newsletter).
            self.add(
                "remote",
                url.raw,
                Finding(
                    Kind.REMOTE, Confidence.KNOWN, BUILTIN_REMOTE, None, None, url.raw,
                    None, None, None, occ.element, (), url.host, self.party(url.host),
                ),
            )  # fmt: skip
            return
        owner_rule = spacer = None
        owner = None
        if candidates:
            pixel = rules.first(candidates, url, ("pixel",))
            if pixel is not None:
                finding = _rule_finding(pixel, url, occ.element, self.party(url.host))
                self.add("pixel", url.raw, finding)
                return
            spacer = rules.first(candidates, url, ("spacer",))
            owner_rule = rules.first(candidates, url, ("host", "link", "spacer"))
            owner = owner_rule.service if owner_rule else rules.service_for_host(url.host)
        heuristic = heuristic and spacer is None
        self.add(
            "pixel" if heuristic else "remote",
            url.raw,
            Finding(
                kind=Kind.PIXEL if heuristic else Kind.REMOTE,
                confidence=Confidence.HEURISTIC if heuristic else Confidence.KNOWN,
                rule=HEURISTIC_PIXEL
                if heuristic
                else owner_rule.id
                if owner_rule
                else BUILTIN_REMOTE,
                tracker=owner.name if owner else None,
                category=owner.category if owner else None,
                url=url.raw,
                element=f"{occ.element} ({occ.shape})" if heuristic else occ.element,
                host=url.host,
                party=self.party(url.host),
            ),
        )

    def link(self, url: Url, element: str) -> None:
        chain, destination = self.rules.unwrap(url)
        if chain:
            outer = chain[0]
            self.add(
                "link",
                url.raw,
                Finding(
                    kind=Kind.LINK,
                    confidence=Confidence.KNOWN,
                    rule=outer.id,
                    tracker=outer.tracker,
                    category=outer.category,
                    url=url.raw,
                    destination=destination,
                    element=element,
                    host=url.host,
                    party=self.party(url.host),
                ),
            )
        target = destination if chain else url.raw
        if target is None:
            return
        target_url = parse_http(target) if target != url.raw else url
        if target_url is None or not target_url.query:
            return
        names = query_keys(target_url.query)
        for rule, params in self.rules.param_matches(names):
            self.add(
                "param",
                f"{target_url.raw}\0{rule.service.id}",
                Finding(
                    kind=Kind.PARAM,
                    confidence=Confidence.KNOWN,
                    rule=rule.id,
                    tracker=rule.tracker,
                    category=rule.category,
                    url=target_url.raw,
                    params=tuple(params),
                    element=element,
                    host=target_url.host,
                    party=self.party(target_url.host),
                ),
            )


def _rule_finding(rule: Rule, url: Url, element: str, party: Party) -> Finding:
    return Finding(
        kind=Kind.PIXEL,
        confidence=Confidence.KNOWN,
        rule=rule.id,
        tracker=rule.tracker,
        category=rule.category,
        url=url.raw,
        element=element,
        host=url.host,
        party=party,
    )


def sender_domain(address: str) -> str:
    return registrable_domain(address.rpartition("@")[2]) if "@" in address else ""


class Detection(NamedTuple):
    findings: tuple[Finding, ...]
    esp: Esp | None


def detect(
    msg: ParsedMessage,
    rules: RuleSet,
    sender: str = "",
    identities: Sequence[str] = (),
    keep: Parsed | None = None,
    keep_urls: TextUrls | None = None,
) -> tuple[Finding, ...]:
    """Every tracking finding and remote load in a message (see `detect_message`)."""
    return detect_message(msg, rules, sender, identities, keep, keep_urls).findings


def detect_message(
    msg: ParsedMessage,
    rules: RuleSet,
    sender: str = "",
    identities: Sequence[str] = (),
    keep: Parsed | None = None,
    keep_urls: TextUrls | None = None,
) -> Detection:
    """Every tracking finding and remote load in a message, and the ESP it was sent through.

    `sender` (the From address) decides which hosts are the sender's own (first party);
    `identities` (the account's own addresses) join the message's recipients for leak detection;
    `keep` receives the HTML parts' parsed documents (see `scan_html`), `keep_urls` the plain
    text parts' URLs (see `TextUrls`).
    """
    out = _Collector(rules, sender_domain(sender))
    for name, value, rule in rules.receipt_matches(msg.headers):
        out.add(
            "receipt",
            rule.header or name,
            Finding(
                kind=Kind.RECEIPT,
                confidence=Confidence.KNOWN,
                rule=rule.id,
                tracker=rule.tracker,
                category=rule.category,
                header=rule.header,
                value=" ".join(value.split()),
                element="header",
            ),
        )
    # Each distinct URL is classified once per role (load or link), from its first occurrence.
    loads: set[str] = set()
    links: set[str] = set()
    cids = {cid: (media, text) for cid, media, text in msg.related} if msg.related else None
    core = core_for(rules, BUILTIN_REMOTE)
    for html in msg.html_parts:
        if core is not None:
            # The same loop in C (guard/engine/_urlcore.c); loads a rule may be about come back.
            core.html(
                scan_html(html, keep, cids), loads, links, out.found, out.sender_domain, out.load
            )
        else:
            _html_refs(out, scan_html(html, keep, cids), loads, links)
    for text in msg.text_parts:
        urls: Iterable[str] = text_urls(text)
        if keep_urls is not None:
            urls = list(urls)
            keep_urls[id(text)] = (text, urls)
        if core is not None:
            core.text(urls, links, out.found, out.sender_domain)
        else:
            _text_links(out, urls, links)
    findings = tuple(out.found.values())
    esp, via = esp_of(msg.headers, findings, rules)
    if via is not None:
        findings = tuple(_attribute_to_sender(findings, via))
    tokens = address_tokens((*msg.recipients, *identities))
    if tokens:
        findings = tuple(_mark_leaks(findings, tokens))
    return Detection(findings, esp)


def _html_refs(
    out: _Collector, occurrences: Iterable[Occurrence], loads: set[str], links: set[str]
) -> None:
    """One HTML part's references, each distinct URL once per role (the reference for the C
    core's `html`)."""
    for occ in occurrences:
        seen = loads if occ.load else links
        if occ.url in seen:
            continue
        seen.add(occ.url)
        url = parse_http(occ.url)
        if url is None:
            continue
        if occ.load:
            out.load(occ, url)
        else:
            out.link(url, occ.element)


def _text_links(out: _Collector, urls: Iterable[str], links: set[str]) -> None:
    """A text part's links (the reference for the C core's `text`)."""
    for raw in urls:
        if raw in links:
            continue
        links.add(raw)
        url = parse_http(raw)
        if url is not None:
            out.link(url, "text/plain")


# Services whose own tracking URLs in a message show it was sent through them: the platforms
# that send mail. A security wrapper, a redirector or an ad network's URL says nothing of that.
SENDING_CATEGORIES = frozenset({"esp", "marketing-cloud", "newsletter", "crm"})
MAX_EVIDENCE = 6
# The Enum members tested on every finding, read once: on Python 3.11 each `Kind.PIXEL` in a
# loop is a class attribute look-up through the Enum machinery (~0.25 us; 130 findings a
# newsletter, a few tests each).
_PIXEL = Kind.PIXEL
_FINGERPRINT_KINDS = (Kind.PIXEL, Kind.LINK)
_KNOWN = Confidence.KNOWN
_FIRST = Party.FIRST


def esp_of(
    headers: Headers, findings: Sequence[Finding], rules: RuleSet
) -> tuple[Esp | None, Rule | None]:
    """The ESP a message was sent through, with its evidence, and the `sender` rule that named
    the service from the headers (None when the headers name none).

    Attribution follows the fingerprints: the `sender` rules the headers match (DKIM `d=`,
    Return-Path, Message-ID, the ESP's own headers), then the ESP's own open pixels and wrapped
    links (a plain link to an ESP's site is no fingerprint). A platform beats a relay
    (`relay = true`: it also delivers mail others build, and the platform built this one), so
    the URLs count when the headers name no service or only relays: Kit's pixel in a message
    SendGrid delivered names Kit. Otherwise the headers win (a copied newsletter's pixel does
    not outweigh the signature of the ESP that sent the copy). Among the candidates, the one
    with more fingerprints, then the first in the message. The relays behind the chosen platform
    are named in its evidence."""
    from_headers: dict[str, list[str]] = {}
    services: dict[str, Service] = {}
    header_rule: dict[str, Rule] = {}
    for rule, shown in rules.sender_matches(headers):
        sid = rule.service.id
        services[sid] = rule.service
        header_rule.setdefault(sid, rule)
        from_headers.setdefault(sid, []).append(shown)
    by_service = from_headers
    if all(rules.is_relay(services[sid]) for sid in from_headers):
        from_urls = _url_fingerprints(findings, rules, services)
        platforms = {s: e for s, e in from_urls.items() if not rules.is_relay(services[s])}
        if platforms:
            by_service = platforms
        elif not from_headers:
            by_service = from_urls
    if not by_service:
        return None, None
    chosen = _best(by_service, services, rules)
    service = services[chosen]
    evidence = by_service[chosen][:MAX_EVIDENCE]
    if not rules.is_relay(service):
        evidence.extend(
            f"relayed by {services[sid].name}: {shown[0]}"
            for sid, shown in from_headers.items()
            if sid != chosen and rules.is_relay(services[sid])
        )
    via = header_rule.get(_best(from_headers, services, rules)) if from_headers else None
    return Esp(service.id, service.name, tuple(evidence)), via


def _best(by_service: dict[str, list[str]], services: dict[str, Service], rules: RuleSet) -> str:
    """A platform before a relay, then more fingerprints, then the first in the message."""
    if len(by_service) == 1:  # most mail: one service, nothing to weigh
        return next(iter(by_service))
    order = list(by_service)
    return min(
        order,
        key=lambda sid: (rules.is_relay(services[sid]), -len(by_service[sid]), order.index(sid)),
    )


def _url_fingerprints(
    findings: Sequence[Finding], rules: RuleSet, services: dict[str, Service]
) -> dict[str, list[str]]:
    """The sending services whose own open pixels and wrapped links a rule names in the message
    (not those named from the headers through `via`), with the hosts, in message order."""
    found: dict[str, list[str]] = {}
    known = rules.services
    # A newsletter has ~120 findings, most of them loads no rule names (category None): the
    # comprehension passes over those in C. A (rule, kind, host) met again adds nothing.
    done: set[tuple[str, bool, str | None]] = set()
    for f in [f for f in findings if f.category in SENDING_CATEGORIES]:
        if f.kind not in _FINGERPRINT_KINDS or f.confidence is not _KNOWN or f.via is not None:
            continue
        pixel = f.kind is _PIXEL
        key = (f.rule, pixel, f.host)
        if key in done:
            continue
        done.add(key)
        service = known.get(f.rule.partition(".")[0])
        if service is None:
            continue
        services[service.id] = service
        line = f"{'open pixel on' if pixel else 'wrapped link on'} {f.host}"
        seen = found.setdefault(service.id, [])
        if line not in seen:
            seen.append(line)
    return found


def _attribute_to_sender(findings: Iterable[Finding], via: Rule) -> Iterable[Finding]:
    """A beacon no rule names, on the sender's own domain (`click.brand.example`), belongs to
    the service the headers say the message went through. A third party's stays unnamed:
    the ESP does not run other companies' trackers."""
    service = via.service
    for f in findings:
        if f.tracker is None and f.kind is _PIXEL and f.party is _FIRST:
            yield f._replace(tracker=service.name, category=service.category, via=via.id)
        else:
            yield f


def _mark_leaks(findings: Sequence[Finding], tokens: AddressTokens) -> Iterable[Finding]:
    # One test over all the URLs first: most messages carry no address at all. A token found in
    # one URL is found in the joined text too (no token holds the separator).
    joined = "\n".join(u for f in findings for u in (f.url, f.destination) if u)
    if tokens.find(joined) is None:
        yield from findings
        return
    for finding in findings:
        leak = tokens.find(finding.url) if finding.url else None
        if leak is None and finding.destination:
            leak = tokens.find(finding.destination)
        yield finding._replace(leak=leak) if leak else finding
