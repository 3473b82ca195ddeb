"""The cleaning planner: raw message bytes + rules + policy -> cleaned bytes. Pure, never raises.

Every entry point (`guard strip`, `guard clean PATH`, the IMAP cleaner) calls `clean_message`. What
to remove is decided from `guard.engine.detect.detect()` findings on the same parsed message; the
HTML is rewritten through `guard.clean.html` (the scan's own definition of what loads), the plain
text by splicing URLs. Only the text parts that change are re-encoded; every other byte of the
message is copied from the input through the MIME splitter's offsets. An HTML rewrite that does not
read back clean (`RewriteUnsafe`) leaves the whole message as it was, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import quote, unquote_plus

from guard.clean.body import _new_body
from guard.clean.headers import HeaderEdit, edited_block, eol_of
from guard.clean.html import LoadAction, RewriteUnsafe, rewrite_html_encoded, rewrite_nested_text
from guard.clean.rewritecore import text_links
from guard.engine.detect import BUILTIN_REMOTE, TextUrls, detect, text_urls
from guard.engine.html import Parsed, kept
from guard.engine.lexwalk import holds_ascii
from guard.engine.limits import DEFAULT_LIMITS, Limits
from guard.engine.mime import (
    MessageError,
    checked_split,
    decoded_text,
    parse_split,
    related_parts,
    sender_of,
    text_parts,
)
from guard.engine.mimetree import Part
from guard.engine.model import Finding, Kind, ParsedMessage, header_names
from guard.engine.nested import cid_references
from guard.engine.ruleset import Rule, RuleSet
from guard.engine.timelimit import TimeLimitExceeded, time_limit
from guard.engine.urlcore import core_for
from guard.engine.urls import Url, parse_http, query_keys

X_GUARD = "X-Guard"
POLICIES = ("default", "strict")
SECURITY_CATEGORY = "security-wrapper"
REMOVED_KINDS = ("pixel", "remote", "link-unwrapped", "param", "receipt-header", "forged-x-guard")
ALLOWLISTED = "allowlisted"
"""`CleanResult.skipped` starts with this for mail the policy leaves alone on purpose."""

UrlParser = Callable[[str], Url | None]
Unwrapper = Callable[[Url], tuple[Sequence[Rule], str | None]]
"""RuleSet.unwrap, or what gives its answers (the C core's `unwrap`)."""
Stripped = tuple[tuple[str, ...], tuple[str, ...], str]
"""(tracking parameter names, their rules' ids, the URL without them): see `tracking_params`."""
Stripper = Callable[[Url, str], Stripped | None]
"""`tracking_params` for one RuleSet, or what gives its answers (the C core's `strip_params`)."""

_MAX_LINK_LAYERS = 4  # rounds of unwrapping when a decoded target is itself wrapped


# -- policy and result ----------------------------------------------------------------------------


def _lower_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().lower().removeprefix("@").removeprefix("*.") for v in values if v)


@dataclass(frozen=True)
class Policy:
    """How much cleaning does. Addresses and domains are compared case-insensitively."""

    name: str = "default"
    """`default`: trackers only; `strict`: also every other remote load."""
    unwrap_security: bool = False
    """Unwrap security link wrappers (Safe Links, Proofpoint, …) too: bypasses their protection."""
    allow_senders: frozenset[str] = frozenset()
    """From addresses whose mail is left untouched."""
    allow_domains: frozenset[str] = frozenset()
    """Sender domains (and their subdomains) whose mail is left untouched."""

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown policy {self.name!r} (one of {', '.join(POLICIES)})")
        object.__setattr__(self, "allow_senders", _lower_set(self.allow_senders))
        object.__setattr__(self, "allow_domains", _lower_set(self.allow_domains))

    @property
    def strict(self) -> bool:
        return self.name == "strict"

    @classmethod
    def from_config(cls, table: Mapping[str, object]) -> Policy:
        """From a config table: `policy`, `unwrap_security`, `allow_senders`, `allow_domains`.

        Raises ValueError with a one-line message on a wrong type or an unknown policy.
        """
        unknown = set(table) - {"policy", "unwrap_security", "allow_senders", "allow_domains"}
        if unknown:
            raise ValueError(f"unknown cleaning setting(s): {', '.join(sorted(unknown))}")
        name = table.get("policy", "default")
        unwrap = table.get("unwrap_security", False)
        if not isinstance(name, str):
            raise ValueError("policy must be a string")
        if not isinstance(unwrap, bool):
            raise ValueError("unwrap_security must be true or false")
        return cls(
            name=name,
            unwrap_security=unwrap,
            allow_senders=frozenset(_str_list(table, "allow_senders")),
            allow_domains=frozenset(_str_list(table, "allow_domains")),
        )

    def allowlisted(self, sender: str) -> str | None:
        """Why mail from `sender` is left alone, or None."""
        address = sender.strip().lower()
        if address and address in self.allow_senders:
            return f"{ALLOWLISTED} sender {address}"
        domain = address.rpartition("@")[2]
        for allowed in self.allow_domains:
            if domain == allowed or domain.endswith("." + allowed):
                return f"{ALLOWLISTED} domain {allowed}"
        return None


def _str_list(table: Mapping[str, object], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return list(value)


@dataclass(frozen=True)
class CleanResult:
    data: bytes
    """The cleaned message; the input itself when nothing changed."""
    changed: bool
    removed: dict[str, int] = field(default_factory=dict)
    """Counts by kind (distinct URLs / header fields): pixel, remote, link-unwrapped, param,
    receipt-header, forged-x-guard. Only kinds with a count are present."""
    rules: tuple[str, ...] = ()
    """Ids of the rules behind what was removed, sorted."""
    opaque_links: tuple[str, ...] = ()
    """Wrapped links left clickable: guard cannot decode them offline and never follows them."""
    security_links_kept: tuple[str, ...] = ()
    """Security-wrapped links left as they were (policy.unwrap_security is off)."""
    receipt_requested: bool = False
    """A read-receipt header was present (and removed). False when skipped."""
    skipped: str | None = None
    """Why the message was left untouched (allowlisted sender, unparseable, …); None otherwise."""


def _untouched(raw: bytes, reason: str) -> CleanResult:
    return CleanResult(data=raw, changed=False, skipped=reason)


def x_guard_value(removed: Mapping[str, int], rules: Iterable[str], policy: str = "default") -> str:
    """The X-Guard header value (unfolded): policy, counts by kind, rule ids.

    >>> x_guard_value({"pixel": 1, "param": 2}, ["a.open", "b.utm"])
    'cleaned; policy=default; removed pixel=1 param=2; rules=a.open b.utm'
    """
    counts = " ".join(f"{kind}={removed[kind]}" for kind in REMOVED_KINDS if removed.get(kind))
    value = f"cleaned; policy={policy}; removed {counts or 'nothing'}"
    ids = " ".join(sorted(set(rules)))
    return f"{value}; rules={ids}" if ids else value


# -- links ----------------------------------------------------------------------------------------


class _LinkDecision(NamedTuple):
    """(A NamedTuple: one is made per distinct link of a message, and a frozen dataclass sets
    each field through object.__setattr__.)"""

    replacement: str | None  # what the link becomes; None: it stays as it is
    unwrapped: bool = False
    params: tuple[str, ...] = ()  # tracking parameters dropped from the target
    rules: tuple[str, ...] = ()
    opaque: bool = False  # an opaque wrapper stays (the link itself, or what is left of it)
    security: bool = False  # a security wrapper stays


_Fields = tuple[str | None, bool, tuple[str, ...], tuple[str, ...], bool, bool]
"""A _LinkDecision's fields (the C core's `decide`)."""

_KEPT = _LinkDecision(None)  # a link that stays as it is (immutable: one for all)

_BatchDecider = Callable[
    [Collection[str], str | None, type[_LinkDecision]],
    tuple[dict[str, _LinkDecision], list[str]],
]
"""The C core's `decide_links`: (decisions by raw, the raws it leaves to decide_link)."""

_UNSAFE_IN_URL = re.compile(r"[\s\"'<>\x00-\x1f\x7f]")


def _safe_url(url: str) -> str:
    """Percent-encode what would end the URL early in text or break an attribute."""
    if _UNSAFE_IN_URL.search(url) is None:
        return url  # nearly every target: no substitution to set up
    return _UNSAFE_IN_URL.sub(lambda m: quote(m.group(0), safe=""), url)


def drop_params(url: str, names: Iterable[str]) -> str:
    """`url` without the query parameters `names`; every other character as written.

    >>> drop_params("https://a.example/p?utm_source=x&id=3#top", ["utm_source"])
    'https://a.example/p?id=3#top'
    """
    drop = set(names)
    head, hash_, fragment = url.partition("#")
    path, question, query = head.partition("?")
    if not question:
        return url
    kept = [p for p in query.split("&") if _param_name(p) not in drop]
    rebuilt = path + ("?" + "&".join(kept) if any(kept) else "")
    return rebuilt + hash_ + fragment


def _param_name(pair: str) -> str:
    """A query pair's name, decoded (unquote_plus leaves a name without `%` or `+` as it is)."""
    name = pair.partition("=")[0]
    return unquote_plus(name) if "%" in name or "+" in name else name


def tracking_params(url: Url, text: str, rules: RuleSet) -> Stripped | None:
    """The tracking parameters of `url`'s query, as detection matches them (by rule, names
    decoded): None when there are none; else their names sorted, the matching rules' ids in
    first-seen order, and `text` (the URL as written) without them (`drop_params`). The
    reference of the C core's `strip_params` (tests/test_urlcore.py compares them)."""
    matches = rules.param_matches(query_keys(url.query))
    if not matches:
        return None
    params = tuple(sorted({name for _, names in matches for name in names}))
    return params, tuple([rule.id for rule, _ in matches]), drop_params(text, params)


def _stripper(rules: RuleSet) -> Stripper:
    return lambda url, text: tracking_params(url, text, rules)


def _decode_through(rules_: Sequence[Rule], url: Url, parse: UrlParser = parse_http) -> str | None:
    """The target after unwrapping exactly these wrapper layers."""
    current: Url | None = url
    target: str | None = None
    for rule in rules_:
        if current is None or rule.decode is None:
            return None
        target = rule.decode.target(current)
        if target is None:
            return None
        current = parse(target)
    return target


def _first_security(chain: Sequence[Rule]) -> int | None:
    """The index of the first security wrapper in `chain`, if any."""
    for i, rule in enumerate(chain):
        if rule.service.category == SECURITY_CATEGORY:  # (Rule.category, without the property)
            return i
    return None


def _wrapped(url: Url, rules: RuleSet, unwrap: Unwrapper | None) -> bool:
    """Does a link rule match `url`? RuleSet.unwrap's first step is that classification, so
    the C core's unwrap (in C, and remembered for `decide_link` of the same URL and for
    `kept_links`) answers it where the planner has one."""
    if unwrap is None:
        return rules.classify(url, ("link",)) is not None
    return bool(unwrap(url)[0])


def decide_link(
    url: Url,
    rules: RuleSet,
    policy: Policy,
    depth: int = 0,
    parse: UrlParser = parse_http,
    unwrap: Unwrapper | None = None,
    strip: Stripper | None = None,
) -> _LinkDecision:
    """What a link becomes: its decoded target (security wrappers excepted unless the policy
    says so) without tracking parameters; opaque wrappers stay. `parse`: urls.parse_http, or
    what gives the same answers (the planner's `parse_url`); `unwrap`: RuleSet.unwrap, or what
    gives its answers (the C core's, which the planner passes); `strip`: `tracking_params`, or
    what gives its answers (the C core's `strip_params`)."""
    chain, destination = rules.unwrap(url) if unwrap is None else unwrap(url)
    if not chain:
        # Most links: a tracking parameter on the destination itself (what follows, without a
        # wrapper: the URL without its tracking parameters, if it has any).
        target_url = parse(url.raw)
        if target_url is None or not target_url.query:
            return _KEPT
        found = (strip or _stripper(rules))(target_url, url.raw)
        if found is None:
            return _KEPT
        replacement = _safe_url(found[2])
        return _LinkDecision(
            replacement if replacement != url.raw else None, False, found[0], found[1]
        )
    security_kept = False
    if chain:
        cut = None if policy.unwrap_security else _first_security(chain)
        if cut == 0:
            return _LinkDecision(None, security=True)
        if cut is not None:
            # Unwrap the trackers around the security wrapper, keep the wrapper itself.
            chain, destination, security_kept = (
                chain[:cut],
                _decode_through(chain[:cut], url, parse),
                True,
            )
        if destination is None:
            return _LinkDecision(None, opaque=True)
    target = destination if chain else url.raw
    assert target is not None
    target_url = parse(target)
    if target_url is None:
        return _LinkDecision(None)
    ids = tuple([rule.id for rule in chain]) if chain else ()
    if chain and not security_kept and _wrapped(target_url, rules, unwrap):
        # The decoded target is wrapped again (deeper than RuleSet.unwrap goes).
        inner = (
            decide_link(target_url, rules, policy, depth + 1, parse, unwrap, strip)
            if depth < _MAX_LINK_LAYERS
            else _LinkDecision(None, opaque=True)
        )
        return _LinkDecision(
            _safe_url(inner.replacement or target),
            unwrapped=True,
            params=inner.params,
            rules=ids + inner.rules,
            opaque=inner.opaque or (inner.replacement is None and not inner.security),
            security=inner.security,
        )
    if security_kept:
        return _LinkDecision(_safe_url(target), unwrapped=True, rules=ids, security=True)
    if not target_url.query:
        if not chain:
            return _LinkDecision(None)  # no parameter to drop
        found = None
    else:
        # The names as Url.params() decodes them, without decoding the values.
        found = (strip or _stripper(rules))(target_url, target)
    if found is None:
        if not chain:
            return _LinkDecision(None)
        found = ((), (), target)  # the decoded target as it is
    params, param_rules, stripped = found
    replacement = _safe_url(stripped)
    return _LinkDecision(
        replacement if replacement != url.raw else None,
        unwrapped=bool(chain),
        params=params,
        rules=ids + param_rules,
    )


# -- the plan: what goes, decided from the findings -----------------------------------------------


def _may_name(text: str, raws: Collection[str]) -> bool:
    """Could `parse_http(text).raw` be one of `raws`? False only when it cannot: that raw is
    always `text` stripped, or `https:` and it for a scheme-relative `//host…` (urls.parse_http,
    and the C core's split that gives its answers; tests/test_clean.py checks this), so a URL no
    finding names is answered without splitting it (nor a copy made of a long URL to look up)."""
    if not raws:
        return False
    stripped = text.strip()
    return stripped in raws or (stripped[:2] == "//" and "https:" + stripped in raws)


_KEEP_LOAD = LoadAction.KEEP
FindingsReader = Callable[
    [Iterable[Finding], tuple[Kind, ...], tuple[Kind, ...]], tuple[dict[str, Finding], set[str]]
]
_REMOVED = (Kind.PIXEL,)  # the kinds of finding whose load goes (`default` policy)
_REMOVED_STRICT = (Kind.PIXEL, Kind.REMOTE)
_LINKS = (Kind.LINK, Kind.PARAM)  # the kinds of finding whose link is decided


def read_findings(
    findings: Iterable[Finding], removed: tuple[Kind, ...], links: tuple[Kind, ...]
) -> tuple[dict[str, Finding], set[str]]:
    """(The first finding of each URL whose kind is one of `removed`, by URL; the URLs of the
    findings whose kind is one of `links`): the planner's reading of a message's findings. The
    reference of the C core's `plan` (tests/test_clean.py compares them)."""
    loads: dict[str, Finding] = {}
    link_urls: set[str] = set()
    for f in findings:
        url, kind = f.url, f.kind
        if not url:
            continue
        if kind in removed:
            if url not in loads:
                loads[url] = f
        elif kind in links:
            link_urls.add(url)
    return loads, link_urls


_UNSPLIT = Url("", "", "", "")  # `_Planner.urls`'s default: a text not split yet


class _Planner:
    """Answers the HTML and text rewriters (`guard.clean.html.Rewriter`) and keeps score."""

    def __init__(self, findings: Iterable[Finding], rules: RuleSet, policy: Policy) -> None:
        self.rules, self.policy = rules, policy
        core = core_for(rules, BUILTIN_REMOTE)
        removed = _REMOVED_STRICT if policy.strict else _REMOVED
        # A newsletter's ~120 findings read in C where detection has its core (`plan`).
        read: FindingsReader = read_findings if core is None else core.plan
        self.loads, self.link_urls = read(findings, removed, _LINKS)
        loads = self.loads
        # Each link's decision by its raw, all made at the first question (`decided`).
        self.decisions: dict[str, _LinkDecision] | None = None
        # What a load's text, stripped, is when `_may_name(text, self.loads)`: a raw, or one
        # without the `https:` of a scheme-relative `//host…` (one set look-up, no call).
        self.load_names = set(loads)
        self.load_names.update([raw[6:] for raw in loads if raw[:8] == "https://"])
        self.removed_loads: dict[str, Finding] = {}
        self.rewritten_links: dict[str, _LinkDecision] = {}
        # Answers by the URL as asked: a newsletter asks about the same URLs again and again
        # (the rewrite per element, its verification, the text part). An answer's record in
        # removed_loads / rewritten_links is made the first time and would be made the same again.
        self.actions: dict[str, LoadAction] = {}
        # The URLs answered KEEP: the check of a rewrite's output (guard/clean/html.py
        # `_Check.verify`) asks about its loads at once, as a subset of these.
        self.kept_loads: set[str] = set()
        # Each URL of the message split once, by the C core's split where detection has one
        # (guard/engine/_urlcore.c: urls.parse_http's answers, tests/test_urlcore.py), not by
        # parse_http's Python split and cache: detection split them in C, so ~120 URLs a
        # newsletter would be split in Python for the first time here.
        self.split: UrlParser = core.parse if core is not None else parse_http
        # RuleSet.unwrap's answers in C: the decoded targets of wrapped links, which detection
        # did not unwrap, are classified there, not by RuleSet.classify in Python.
        self.unwrap: Unwrapper = core.unwrap if core is not None else rules.unwrap
        # decide_link's last step (the tracking parameters and the URL without them) in C; and
        # its whole answer for the common links (`core.decide`: None where Python decides).
        self.strip: Stripper | None = core.strip_params if core is not None else None
        self.decide: Callable[[Url, str | None], _Fields | None] | None = (
            core.decide if core is not None else None
        )
        # All of a message's link decisions in one call (the same answers as `decide`, made
        # `_LinkDecision`s in C; the raws it leaves are decided by decide_link).
        self.decide_links: _BatchDecider | None = core.decide_links if core is not None else None
        self.security = None if policy.unwrap_security else SECURITY_CATEGORY
        self.urls: dict[str, Url | None] = {}

    def parse_url(self, text: str) -> Url | None:
        """urls.parse_http(text), once per distinct text of the message."""
        # A get, not try/except KeyError: ~120 texts a newsletter are split for the first time,
        # and a raised KeyError costs more than the C split itself.
        url = self.urls.get(text, _UNSPLIT)
        if url is _UNSPLIT:
            url = self.urls[text] = self.split(text)
        return url

    def load_action(self, url: str) -> LoadAction:
        if url.strip() not in self.load_names:
            # Most loads (a content image no finding removes): KEEP, with no split, no memo.
            self.kept_loads.add(url)
            return _KEEP_LOAD
        action = self.actions.get(url)
        if action is None:
            action = self.actions[url] = self.decide_load(url)
            if action is LoadAction.KEEP:
                self.kept_loads.add(url)
        return action

    def decide_load(self, url: str) -> LoadAction:
        if not _may_name(url, self.loads):
            return LoadAction.KEEP  # most loads (a content image no finding removes): no split
        parsed = self.parse_url(url)
        finding = self.loads.get(parsed.raw) if parsed is not None else None
        if finding is None or parsed is None:
            return LoadAction.KEEP
        self.removed_loads[parsed.raw] = finding
        return LoadAction.REMOVE_PIXEL if finding.kind is Kind.PIXEL else LoadAction.REMOVE

    def decided(self) -> dict[str, _LinkDecision]:
        """Every link's decision by its raw (a link that does not split has none): a
        newsletter's ~50 links decided in one call to the C core, not split and decided one
        question at a time (the rewrite asks about nearly all of them; `has_work` and
        `kept_links` about all of them)."""
        if self.decisions is not None:
            return self.decisions
        decisions: dict[str, _LinkDecision] = {}
        left: Collection[str] = self.link_urls
        if self.decide_links is not None:
            decisions, left = self.decide_links(self.link_urls, self.security, _LinkDecision)
        for raw in left:
            url = self.parse_url(raw)
            if url is not None:
                decisions[raw] = decide_link(
                    url, self.rules, self.policy, 0, self.parse_url, self.unwrap, self.strip
                )
        self.decisions = decisions
        return decisions

    def decision(self, url: Url) -> _LinkDecision:
        """`url`'s decision: a link's from `decided`, any other URL's made now."""
        found = self.decided().get(url.raw)
        if found is None:
            fields = self.decide(url, self.security) if self.decide is not None else None
            found = (
                decide_link(
                    url, self.rules, self.policy, 0, self.parse_url, self.unwrap, self.strip
                )
                if fields is None
                else _LinkDecision._make(fields)
            )
        return found

    def link_target(self, url: str) -> str | None:
        # A link's raw is `url` stripped, or `https:` and it for a scheme-relative `//host…`
        # (see `_may_name`): looked up as such, without splitting `url`.
        decisions = self.decisions if self.decisions is not None else self.decided()
        raw = url.strip()
        decision = decisions.get(raw)
        if decision is None:
            if raw[:2] != "//":
                return None
            raw = "https:" + raw
            decision = decisions.get(raw)
            if decision is None:
                return None
        replacement = decision.replacement
        if replacement is not None:
            self.rewritten_links[raw] = decision
        return replacement

    def plain_tables(
        self,
    ) -> tuple[set[str], set[str], dict[str, _LinkDecision], dict[str, _LinkDecision]]:
        """What `load_action`'s KEEP answer and `link_target` read, for the rewrite's loop in C
        over plain links and images (guard/clean/rewritecore.py `plain_records`), which answers
        and records as those two do."""
        return self.load_names, self.kept_loads, self.decided(), self.rewritten_links

    def has_work(self) -> bool:
        """Anything to remove or rewrite at all? (Parsing HTML for nothing costs the most.)"""
        return bool(self.loads) or any(
            decision.replacement is not None for decision in self.decided().values()
        )

    def kept_links(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(opaque wrapped links, security-wrapped links) that stay clickable."""
        opaque: set[str] = set()
        security: set[str] = set()
        for raw, decision in self.decided().items():
            # (A link no wrapper rule matches is neither opaque nor security-wrapped.)
            if decision.security:
                security.add(decision.replacement or raw)
            elif decision.opaque:
                opaque.add(decision.replacement or raw)
        return tuple(sorted(opaque)), tuple(sorted(security))

    def tally(self) -> tuple[dict[str, int], set[str]]:
        removed: dict[str, int] = {}
        rule_ids: set[str] = set()
        for finding in self.removed_loads.values():
            kind = "pixel" if finding.kind is Kind.PIXEL else "remote"
            removed[kind] = removed.get(kind, 0) + 1
            rule_ids.add(finding.rule)
        for decision in self.rewritten_links.values():
            if decision.unwrapped:
                removed["link-unwrapped"] = removed.get("link-unwrapped", 0) + 1
            if decision.params:
                removed["param"] = removed.get("param", 0) + 1
            rule_ids.update(decision.rules)
        return removed, rule_ids


def rewrite_text(
    text: str, link_target: Callable[[str], str | None], urls: Iterable[str] | None = None
) -> str:
    """Plain text with each URL that `link_target` replaces swapped; every other character kept.

    URLs are found by `guard.engine.detect.text_urls`, as detection finds them; `urls`: what it
    found in this text, where detection handed it over (`html.kept`).
    """
    out: list[str] = []
    copied = searched = 0
    for url in text_urls(text) if urls is None else urls:
        start = text.find(url, searched)
        if start == -1:
            continue
        searched = start + len(url)
        new = link_target(url)
        if new is not None and new != url:
            out.append(text[copied:start])
            out.append(new)
            copied = searched
    if not out:
        return text
    out.append(text[copied:])
    return "".join(out)


# -- the message ----------------------------------------------------------------------------------


@dataclass
class _Edits:
    bodies: dict[int, tuple[Part, bytes]] = field(default_factory=dict)  # by part.start
    headers: dict[int, tuple[Part, HeaderEdit]] = field(default_factory=dict)
    # Each text part's body as parse_split read it (transfer encoding undone), by part.start:
    # a rewritten part is re-encoded without undoing its quoted-printable or base64 again.
    decoded: dict[int, bytes] = field(default_factory=dict)

    def header(self, part: Part) -> HeaderEdit:
        if part.start not in self.headers:
            self.headers[part.start] = (part, HeaderEdit(part.content_type))
        return self.headers[part.start][1]

    def apply(self, raw: bytes) -> bytes:
        spans: list[tuple[int, int, bytes]] = []
        for part, edit in self.headers.values():
            block = raw[part.start : part.body_start]
            edited = edited_block(block, edit, eol_of(raw, part))
            spans.append((part.start, part.body_start, edited))
        for part, data in self.bodies.values():
            spans.append((part.body_start, part.end, data))
        out: list[bytes] = []
        pos = 0
        for start, end, data in sorted(spans):
            out.append(raw[pos:start])
            out.append(data)
            pos = end
        out.append(raw[pos:])
        return b"".join(out)


def _rewrite_parts(
    raw: bytes,
    tree: Part,
    parsed: ParsedMessage,
    planner: _Planner,
    edits: _Edits,
    parsed_html: Parsed,
    limits: Limits = DEFAULT_LIMITS,
    found_urls: TextUrls | None = None,
) -> None:
    if not planner.has_work():
        return
    parts = text_parts(tree)
    done = {part.start for part in parts}
    # The stylesheets and SVG documents the HTML may load through `cid:` (rewritten below):
    # without one (most mail), the HTML parts are not searched for `cid:` references.
    related = [(cid, part) for cid, part in related_parts(tree) if part.start not in done]
    referenced: set[str] = set()  # the Content-IDs the HTML parts load from
    # The parts as parse_split decoded them, in text_parts order: each kind keeps its order.
    decoded = {"text/html": iter(parsed.html_parts), "text/plain": iter(parsed.text_parts)}
    for part in parts:
        html = part.content_type == "text/html"
        text = next(decoded[part.content_type])
        if html:
            # cid_references finds only an ASCII `cid:`, in any case: a search in C, not
            # an upper-cased copy of the part.
            if related and holds_ascii(text, "cid:"):
                referenced |= cid_references(text)
            rewritten = rewrite_html_encoded(text, planner, kept(parsed_html, text))
            new, utf8 = rewritten if rewritten is not None else (None, None)
        else:
            urls = kept(found_urls, text) if found_urls is not None else None
            # In C where it was built (guard/clean/rewritecore.py `text_links`).
            fast = text_links(planner)
            if fast is None:
                new = rewrite_text(text, planner.link_target, urls)
            else:
                new = fast(text, text_urls(text) if urls is None else urls)
            utf8 = None
        if new is None or new == text:
            continue
        _edit_body(raw, part, new, html, edits, utf8)
    # Stylesheets and SVG documents the HTML loads through `cid:`: only what loads a removed
    # URL changes; every other part, attachments and unreferenced parts included, stays byte
    # for byte.
    for cid, part in related:
        if cid not in referenced:
            continue
        if part.end - part.body_start > limits.max_text_part_bytes:
            continue
        text = decoded_text(raw, part)
        new = rewrite_nested_text(part.content_type, text, planner, 1)
        if new is not None and new != text:
            _edit_body(raw, part, new, part.content_type == "text/html", edits)


def _edit_body(
    raw: bytes, part: Part, new: str, html: bool, edits: _Edits, utf8: bytes | None = None
) -> None:
    body = _new_body(raw, part, new, html, edits.decoded.get(part.start), utf8)
    edits.bodies[part.start] = (part, body.data)
    if body.charset or body.transfer_encoding:
        edit = edits.header(part)
        edit.charset = body.charset
        edit.transfer_encoding = body.transfer_encoding


def _receipt_fields(tree: Part, rules: RuleSet) -> tuple[set[str], set[str], int]:
    """(lower-case names to drop, their rule ids, how many fields) for receipt requests."""
    found = rules.receipt_matches(tree.headers)  # one pass over a message's ~60-120 fields
    return {name.lower() for name, _, _ in found}, {rule.id for _, _, rule in found}, len(found)


def _forged_x_guard(tree: Part) -> int:
    """How many X-Guard fields the message's header has: from the names header_index lower-cased
    (kept from detection's look-ups), not from a lower-cased copy of the ~10 KB block."""
    return header_names(tree.headers)[1].count(X_GUARD.lower())


def _structure_holds(cleaned: bytes, original: Part, limits: Limits) -> bool:
    """The cleaned copy parses, with the same MIME tree shape as the original. (Split for its
    shape: the part's fields the split does not read are not made.)"""
    try:
        tree = checked_split(cleaned, limits, shape=True)
    except (MessageError, RecursionError):
        return False
    shape = [p.content_type for p in tree.walk()]
    return shape == [p.content_type for p in original.walk()]


def _clean(raw: bytes, rules: RuleSet, policy: Policy, limits: Limits) -> CleanResult:
    tree = checked_split(raw, limits)
    edits = _Edits()
    parsed = parse_split(raw, tree, limits, recipients=False, keep=edits.decoded)
    sender = sender_of(tree.headers)
    reason = policy.allowlisted(sender)
    if reason is not None:
        return _untouched(raw, reason)
    parsed_html: Parsed = {}  # detection's parse of each HTML part, rewritten in place
    found_urls: TextUrls = {}  # the URLs detection found in each plain text part
    findings = detect(parsed, rules, sender=sender, keep=parsed_html, keep_urls=found_urls)
    planner = _Planner(findings, rules, policy)
    _rewrite_parts(raw, tree, parsed, planner, edits, parsed_html, limits, found_urls)
    opaque, security = planner.kept_links()
    receipt_names, receipt_rules, receipts = _receipt_fields(tree, rules)
    if not edits.bodies and not receipts:
        # Nothing tracks: the input passes byte for byte, a sender's X-Guard included (it makes
        # guard skip nothing, and leaving it keeps a second cleaning a no-op).
        return CleanResult(raw, False, opaque_links=opaque, security_links_kept=security)
    removed, rule_ids = planner.tally()
    rule_ids |= receipt_rules
    if receipts:
        removed["receipt-header"] = receipts
    forged = _forged_x_guard(tree)
    if forged:
        removed["forged-x-guard"] = forged
    top = edits.header(tree)
    top.drop |= receipt_names | {X_GUARD.lower()}
    top.append.append((X_GUARD, x_guard_value(removed, rule_ids, policy.name)))
    cleaned = edits.apply(raw)
    if not _structure_holds(cleaned, tree, limits):
        return _untouched(raw, "the cleaned copy failed its structure check; left as it was")
    return CleanResult(
        data=cleaned,
        changed=True,
        removed=removed,
        rules=tuple(sorted(rule_ids)),
        opaque_links=opaque,
        security_links_kept=security,
        receipt_requested=bool(receipts),
    )


def clean_message(
    raw: bytes, rules: RuleSet, policy: Policy = Policy(), limits: Limits = DEFAULT_LIMITS
) -> CleanResult:
    """Clean one message. Never raises: what cannot be cleaned comes back untouched, with
    `skipped` saying why. `limits.max_seconds` bounds the work (in the main thread, as for the
    scan): a message that takes longer is left as it was."""
    try:
        with time_limit(limits.max_seconds):
            return _clean(raw, rules, policy, limits)
    except TimeLimitExceeded:
        return _untouched(raw, f"took longer than {limits.max_seconds:g} s to clean")
    except MessageError as exc:
        return _untouched(raw, f"cannot parse: {exc}")
    except RewriteUnsafe as exc:
        return _untouched(raw, f"not cleaned: {exc}")
    except RecursionError:
        return _untouched(raw, "structure nested too deeply")
    except Exception as exc:  # noqa: BLE001 - a filter must never lose a message over a bug
        return _untouched(raw, f"internal error ({type(exc).__name__}: {exc})"[:200])
