"""The rules in memory and how they match: the rule model (`Service`, `Rule` with its `Decode`
and `Example`s) and the `RuleSet` that indexes them.

Rules are compiled once into a `RuleSet`: hosts into dictionaries, path shapes into regexes, so that
classifying a URL costs a few dictionary look-ups. They come from the rule files (the knowledge
lives in rules/, see rules/README.md) through guard/engine/rules_load.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress

from guard.engine.model import header_names
from guard.engine.shapes import ShapeIndex
from guard.engine.unwrap import DecodeError, apply_encodings
from guard.engine.urls import Url, parse_http

MAX_UNWRAP_DEPTH = 6
_HOST_CACHE_SIZE = 50_000
_UNWRAP_CACHE_SIZE = 4096
_UNWRAP_CACHE_LONGEST = 2048


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    category: str
    source: str


@dataclass(frozen=True, slots=True)
class Decode:
    param: str | None
    source: str  # "path" | "query" | "url" when regex is used
    regex: re.Pattern[str] | None
    encodings: tuple[str, ...]
    json_path: tuple[str, ...]

    def target(self, url: Url) -> str | None:
        """The wrapped destination, decoded offline, or None when this URL does not carry one."""
        if self.param is not None:
            text = url.param(self.param)
        else:
            assert self.regex is not None
            subject = {"path": url.path, "query": url.query, "url": url.raw}[self.source]
            found = self.regex.search(subject)
            text = found.group("target") if found else None
        if not text:
            return None
        try:
            decoded = apply_encodings(text, self.encodings, self.json_path)
        except DecodeError:
            return None
        decoded = decoded.strip()
        return decoded if parse_http(decoded) is not None else None


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    service: Service
    kind: str
    hosts: tuple[str, ...] = ()
    path: re.Pattern[str] | None = None
    query: re.Pattern[str] | None = None
    decode: Decode | None = None
    params: frozenset[str] = frozenset()
    param_prefixes: tuple[str, ...] = ()
    header: str | None = None
    value: re.Pattern[str] | None = None  # `sender`: searched in the header's value
    relay: bool = False  # `sender`: the service also relays mail other platforms build
    tracking_only: bool = False  # `host`: the hosts serve nothing but tracking (rules/README.md)
    source: str = ""
    file: str = ""
    match: tuple[Example, ...] = ()
    no_match: tuple[Example, ...] = ()

    @property
    def tracker(self) -> str:
        return self.service.name

    @property
    def category(self) -> str:
        return self.service.category

    def matches_shape(self, url: Url) -> bool:
        """Path and query shape (hosts are checked by the index that found this rule)."""
        if self.path is not None and not self.path.search(url.path):
            return False
        return self.query is None or self.query.search(url.query) is not None

    def matches_url(self, url: Url) -> bool:
        if self.hosts and not any(_host_matches(url.host, h) for h in self.hosts):
            return False
        return self.matches_shape(url)

    def names_sender(self, header: str, value: str) -> bool:
        """`sender`: does this header line show the message was sent through the service?"""
        return self.sender_evidence(header, value) is not None

    def sender_evidence(self, header: str, value: str) -> str | None:
        """`sender`: the fingerprint this header line shows, in words (`DKIM d=sendgrid.net`,
        `Feedback-ID :AmazonSES`, `X-SG-EID`), or None when it shows none. Never the whole
        value: header values carry per-recipient tokens."""
        if header.lower() != (self.header or "").lower():
            return None
        domain = None
        if self.hosts:
            domain = next(
                (
                    d
                    for d in header_domains(header, value)
                    if any(_host_matches(d, h) for h in self.hosts)
                ),
                None,
            )
            if domain is None:
                return None
        return self.evidence_at(header, value, domain)

    def evidence_at(self, header: str, value: str, domain: str | None) -> str | None:
        """`sender_evidence` of a header line this rule reads (its name is the rule's), where
        `domain` is the first of the line's domains (`header_domains`) that one of the rule's
        hosts names (None for a rule without hosts): the RuleSet's domain index finds it."""
        name = self.header or header
        shown = name
        if domain is not None:
            shown = f"DKIM d={domain}" if name.lower() == "dkim-signature" else f"{name} {domain}"
        if self.value is not None:
            found = self.value.search(value)
            if found is None:
                return None
            if not self.hosts:
                text = " ".join(found.group(0).split())
                shown = f"{name} {text[:60]}" if text else name
        return shown

    def tracking_params(self, names: Iterable[str]) -> list[str]:
        prefixes = self.param_prefixes
        return sorted(
            {n for n in names if n in self.params or (prefixes and n.startswith(prefixes))}
        )

    def check_example(self, example: Example) -> tuple[bool, str | None]:
        """Does this rule match the example on its own? Returns (matched, decoded destination)."""
        if self.kind == "receipt":
            name = example.text.split(":", 1)[0].strip().lower()
            return name == (self.header or "").lower(), None
        if self.kind == "sender":
            name, _, value = example.text.partition(":")
            return self.names_sender(name.strip(), value.strip()), None
        url = parse_http(example.text)
        if url is None:
            return False, None
        if self.kind == "param":
            return bool(self.tracking_params(k for k, _ in url.params())), None
        if not self.matches_url(url):
            return False, None
        return True, self.decode.target(url) if self.decode else None


_MAX_HOST = 253
_MAX_HEADER_DOMAINS = 16
_DKIM_D = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)")
_AT_DOMAIN = re.compile(r"@\[?([A-Za-z0-9_.-]+)")
_URL_HOST = re.compile(r"https?://(?:[^@/?#\s>]*@)?([A-Za-z0-9_.-]+)", re.I)


def header_domains(name: str, value: str) -> list[str]:
    """The domains a header line names, lower-case, for `sender` rules with `hosts`: the
    signing domain (`d=`) of a DKIM-Signature; otherwise every address's domain (Return-Path,
    Sender, Message-ID, List-Unsubscribe's mailto) and every http(s) URL's host in the value."""
    if name.lower() == "dkim-signature":
        found = _DKIM_D.search(value)
        names = [found.group(1)] if found else []
    else:
        names = _AT_DOMAIN.findall(value)
        if "://" in value:
            names.extend(_URL_HOST.findall(value))
    # A host name is at most 253 characters; a longer one (hostile mail) would cost a look-up per
    # label. A real header names a few domains: the first ones are enough.
    out = [d.lower().rstrip(".") for d in names[:_MAX_HEADER_DOMAINS] if len(d) <= _MAX_HOST]
    return out


def _host_matches(host: str, pattern: str) -> bool:
    return host.endswith(pattern[1:]) if pattern.startswith("*.") else host == pattern


@dataclass
class RuleSet:
    """All rules, compiled for fast look-up."""

    services: dict[str, Service]
    rules: list[Rule]
    version: str
    _by_host: dict[str, list[Rule]] = field(default_factory=dict, repr=False)
    _by_suffix: dict[str, list[Rule]] = field(default_factory=dict, repr=False)
    _shape_only: list[Rule] = field(default_factory=list, repr=False)
    _receipts: dict[str, Rule] = field(default_factory=dict, repr=False)
    _senders: dict[str, list[Rule]] = field(default_factory=dict, repr=False)
    # `sender` rules with hosts: header name -> host pattern (`x.org`, `*.x.org`) -> rules
    _sender_domains: dict[str, dict[str, list[Rule]]] = field(default_factory=dict, repr=False)
    _relays: set[str] = field(default_factory=set, repr=False)  # services with relay = true
    # The header names some `sender` rule reads (both kinds): a message's other headers are
    # passed over without a look-up in either table.
    _sender_headers: frozenset[str] = field(default=frozenset(), repr=False)
    _param_rules: list[Rule] = field(default_factory=list, repr=False)
    _exact_params: dict[str, Rule] = field(default_factory=dict, repr=False)
    _prefixes: tuple[str, ...] = field(default=(), repr=False)  # every rule's param_prefixes
    _prefixed: dict[str, Rule] = field(default_factory=dict, repr=False)  # name -> its rule
    _shapes: ShapeIndex[Rule] = field(default_factory=lambda: ShapeIndex(()), repr=False)
    _suffix_labels: int = field(default=0, repr=False)  # most labels of a wildcard's suffix
    _host_cache: dict[str, tuple[Rule, ...]] = field(default_factory=dict, repr=False)
    # Cleaning asks again what detection asked of each link; bounded like the host cache, and
    # only for URLs of ordinary length, so hostile mail cannot fill it.
    _unwrap_cache: dict[str, tuple[tuple[Rule, ...], str | None]] = field(
        default_factory=dict, repr=False
    )
    # (header name, domain) -> the `sender` rules with hosts that the domain names and what each
    # shows there (None: a value it does not match, for a rule with a value pattern): return
    # paths and signing domains repeat from message to message. Bounded as the host cache.
    _domain_cache: dict[tuple[str, str], tuple[tuple[Rule, str | None], ...]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        for rule in self.rules:
            if rule.kind == "receipt" and rule.header:
                self._receipts[rule.header.lower()] = rule
            elif rule.kind == "sender" and rule.header and rule.hosts:
                index = self._sender_domains.setdefault(rule.header.lower(), {})
                for host in rule.hosts:
                    index.setdefault(host, []).append(rule)
                if rule.relay:
                    self._relays.add(rule.service.id)
            elif rule.kind == "sender" and rule.header:
                self._senders.setdefault(rule.header.lower(), []).append(rule)
                if rule.relay:
                    self._relays.add(rule.service.id)
            elif rule.kind == "param":
                self._param_rules.append(rule)
                self._prefixes += rule.param_prefixes
                for name in rule.params:
                    self._exact_params.setdefault(name, rule)
            elif not rule.hosts:
                self._shape_only.append(rule)
            else:
                for host in rule.hosts:
                    if host.startswith("*."):
                        self._by_suffix.setdefault(host[2:], []).append(rule)
                    else:
                        self._by_host.setdefault(host, []).append(rule)
        self._sender_headers = frozenset(self._senders) | frozenset(self._sender_domains)
        self._shapes = ShapeIndex((r, r.path, r.query) for r in self._shape_only)
        self._suffix_labels = max((s.count(".") + 1 for s in self._by_suffix), default=0)
        # Most specific first: a rule with a path shape beats a bare host rule.
        for bucket in (*self._by_host.values(), *self._by_suffix.values()):
            bucket.sort(key=lambda r: r.path is None and r.query is None)

    # -- look-ups -------------------------------------------------------------------------------

    def host_rules(self, host: str) -> tuple[Rule, ...]:
        """Rules whose host list names `host` (exact host first, then wildcards, nearest first)."""
        cached = self._host_cache.get(host)
        if cached is None:
            found = list(self._by_host.get(host, ()))
            # Only suffixes as long as some wildcard's can match: slicing at every dot of a
            # hostile host of 50,000 labels is quadratic (seconds per URL).
            starts: list[int] = []
            cut = len(host)
            while len(starts) < self._suffix_labels:
                dot = host.rfind(".", 0, cut)
                if dot == -1:
                    break
                starts.append(dot + 1)
                cut = dot
            for start in reversed(starts):  # nearest (longest) suffix first
                found.extend(self._by_suffix.get(host[start:], ()))
            cached = tuple(found)
            if len(self._host_cache) >= _HOST_CACHE_SIZE:
                self._host_cache.clear()
            self._host_cache[host] = cached
        return cached

    def candidates(self, url: Url) -> tuple[Rule, ...]:
        """Rules that may match `url`: its host's rules, then host-less shapes whose literal text
        the URL has (most specific first). Empty for the common URL that no rule is about."""
        by_host = self.host_rules(url.host)
        shaped = self._shapes.find(url.path, url.query)
        return by_host + tuple(shaped) if shaped else by_host

    @staticmethod
    def first(candidates: Sequence[Rule], url: Url, kinds: Sequence[str]) -> Rule | None:
        """The rule of one of `kinds` that decides `url` among `candidates` (`candidates()`).

        Precedence (rules/README.md): a rule bound to the URL's host (a path rule before a bare
        host rule); then, when a pixel or link is asked for, a `tracking_only` host rule — every
        load from such a host is a beacon and every link through it a wrapper, whatever the path
        — except that a link rule elsewhere that decodes the target still unwraps it; then the
        host-less path shapes."""
        claimed: Rule | None = None
        for rule in candidates:
            if rule.kind in kinds and rule.matches_shape(url):
                if rule.hosts or claimed is None:
                    return rule
                if rule.decode is not None and rule.kind == "link":
                    return rule  # a host-less wrapper shape that unwraps the target
            elif claimed is None and rule.tracking_only and ("pixel" in kinds or "link" in kinds):
                claimed = rule
        return claimed

    def classify(self, url: Url, kinds: Sequence[str]) -> Rule | None:
        """The most specific rule of one of `kinds` that matches `url`, host rules first."""
        return self.first(self.candidates(url), url, kinds)

    def service_for_host(self, host: str) -> Service | None:
        """The service that owns `host` according to any rule's host list."""
        rules = self.host_rules(host)
        return rules[0].service if rules else None

    def receipt_rule(self, header_name: str) -> Rule | None:
        return self._receipts.get(header_name.lower())

    def receipt_matches(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str, Rule]]:
        """(name, value, rule) of every header a `receipt` rule names, in message order: one
        call for a message's ~60 headers instead of one per header."""
        receipts = self._receipts
        if not receipts:
            return []
        fields, names = header_names(headers)
        if receipts.keys().isdisjoint(names):
            return []  # most mail: no field looked up one by one in Python (twice in cleaning)
        return [
            (name, value, rule)
            for (name, value), lname in zip(fields, names, strict=True)
            if (rule := receipts.get(lname)) is not None
        ]

    def sender_matches(self, headers: Iterable[tuple[str, str]]) -> list[tuple[Rule, str]]:
        """Every `sender` rule the message's headers match, with the fingerprint in words, in
        message order (one entry per rule: its first matching header)."""
        by_domain = self._sender_domains
        by_value = self._senders
        if not by_value and not by_domain:
            return []
        fields, names = header_names(headers)
        read = self._sender_headers
        if read.isdisjoint(names):
            return []
        found: dict[str, tuple[Rule, str]] = {}
        # The lines of the names some rule reads, in message order, picked in C: a message has
        # ~60 lines, of which these rules read a handful (a count and an index per name, then a
        # sort, compared each name a few times over: ~15 k instructions a real message).
        for at in compress(range(len(names)), map(read.__contains__, names)):
            name, value = fields[at]
            lname = names[at]
            # The rules are those of this header's name (the tables are keyed by it), each
            # asked once per line, in the order `sender_evidence` would be asked of them.
            for rule in by_value.get(lname, ()):
                if rule.id not in found:
                    # What evidence_at answers where its value pattern finds nothing (most
                    # rules at most lines: ~7 a message), without the call.
                    pattern = rule.value
                    if pattern is not None and pattern.search(value) is None:
                        continue
                    evidence = rule.evidence_at(name, value, None)
                    if evidence is not None:
                        found[rule.id] = (rule, evidence)
            index = by_domain.get(lname)
            if index is None:
                continue
            # Rules naming the header's domains: looked up, not tried one by one (every ESP
            # has a DKIM rule). A rule met first at a domain is met at the first domain its
            # hosts name, the one `sender_evidence` shows; a rule already asked is not asked
            # again (its answer at this line would be the same).
            asked: set[str] = set()
            for domain in header_domains(name, value):
                for rule, evidence in self._domain_hits(index, lname, domain):
                    if rule.id not in found and rule.id not in asked:
                        asked.add(rule.id)
                        if rule.value is not None:  # the value decides (not kept)
                            evidence = rule.evidence_at(name, value, domain)
                        if evidence is not None:
                            found[rule.id] = (rule, evidence)
        return list(found.values())

    def _domain_hits(
        self, index: dict[str, list[Rule]], lname: str, domain: str
    ) -> tuple[tuple[Rule, str | None], ...]:
        """The rules of `index` (the header `lname`'s) whose hosts name `domain`, exact host
        first, then wildcards from the nearest, each with its `evidence_at` the domain where
        that depends on nothing else (a rule without a value pattern: the header name it shows
        is its own)."""
        key = (lname, domain)
        hits = self._domain_cache.get(key)
        if hits is None:
            rules: list[Rule] = list(index.get(domain, ()))
            dot = domain.find(".")
            while dot != -1:
                rules.extend(index.get("*" + domain[dot:], ()))
                dot = domain.find(".", dot + 1)
            hits = tuple(
                (rule, None if rule.value is not None else rule.evidence_at(lname, "", domain))
                for rule in rules
            )
            if len(domain) <= _MAX_HOST:
                if len(self._domain_cache) >= _HOST_CACHE_SIZE:
                    self._domain_cache.clear()
                self._domain_cache[key] = hits
        return hits

    def is_relay(self, service: Service) -> bool:
        """Does `service` also deliver mail another platform builds (any of its `sender` rules
        says `relay = true`)?"""
        return service.id in self._relays

    def sender_rule(self, headers: Iterable[tuple[str, str]]) -> Rule | None:
        """The `sender` rule naming the service a message was sent through, from its headers.

        A platform that builds the mail (and its tracking) often hands it to a relay that stamps
        its own header too (Kit through SendGrid): a service that is not a relay wins; otherwise
        the first header, in message order, that a rule names."""
        matches = self.sender_matches(headers)
        platform = next((r for r, _ in matches if not self.is_relay(r.service)), None)
        return platform or (matches[0][0] if matches else None)

    def param_matches(self, names: Sequence[str]) -> list[tuple[Rule, list[str]]]:
        """Group the tracking parameters among `names` by the rule (service) that defines them."""
        found: dict[str, tuple[Rule, list[str]]] = {}
        for name in names:
            rule = self._exact_params.get(name)
            if rule is None and self._prefixes and name.startswith(self._prefixes):
                rule = self._prefixed.get(name)
                if rule is None:  # names repeat (utm_source…): look each up once
                    rule = next(r for r in self._param_rules if name.startswith(r.param_prefixes))
                    if len(self._prefixed) < _HOST_CACHE_SIZE:
                        self._prefixed[name] = rule
            if rule is not None:
                entry = found.setdefault(rule.id, (rule, []))
                if name not in entry[1]:
                    entry[1].append(name)
        return [(rule, sorted(names_)) for rule, names_ in found.values()]

    def unwrap(self, url: Url) -> tuple[list[Rule], str | None]:
        """Follow link wrappers offline: the wrapper rules met and the innermost decoded target.

        Returns ([], None) for a URL that no link rule matches; ([rules...], None) when the
        outermost wrapper is opaque.
        """
        cached = self._unwrap_cache.get(url.raw)
        if cached is not None:
            return list(cached[0]), cached[1]
        chain: list[Rule] = []
        current = url
        destination: str | None = None
        for _ in range(MAX_UNWRAP_DEPTH):
            rule = self.classify(current, ("link",))
            if rule is None:
                break
            chain.append(rule)
            if rule.decode is None:
                break
            target = rule.decode.target(current)
            if target is None:
                break
            destination = target
            nxt = parse_http(target)
            if nxt is None:
                break
            current = nxt
        if len(url.raw) <= _UNWRAP_CACHE_LONGEST:
            if len(self._unwrap_cache) >= _UNWRAP_CACHE_SIZE:
                self._unwrap_cache.clear()
            self._unwrap_cache[url.raw] = (tuple(chain), destination)
        return chain, destination
