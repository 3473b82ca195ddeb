"""Load, validate and compile the rule files (the knowledge lives in rules/, see rules/README.md).

Rules are compiled once into a `RuleSet`: hosts into dictionaries, path shapes into regexes, so that
classifying a URL costs a few dictionary look-ups.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import os
import pickle
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from guard.engine.shapes import ShapeIndex
from guard.engine.unwrap import KNOWN_ENCODINGS, DecodeError, apply_encodings
from guard.engine.urls import Url, parse_http

KINDS = ("pixel", "link", "param", "receipt", "spacer", "host", "sender")
URL_KINDS = ("pixel", "link", "spacer", "host")
CATEGORIES = (
    "esp",
    "marketing-cloud",
    "crm",
    "sales",
    "newsletter",
    "ad-network",
    "social",
    "platform",
    "analytics",
    "security-wrapper",
    "redirector",
    "layout",
    "standard",
)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_LITERAL = re.compile(r"[A-Za-z0-9/_.=-]")
_HOST = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_DECODE_FROM = ("path", "query", "url")
MAX_UNWRAP_DEPTH = 6
_HOST_CACHE_SIZE = 50_000
_UNWRAP_CACHE_SIZE = 4096
_UNWRAP_CACHE_LONGEST = 2048


class RuleError(Exception):
    """A rule file is malformed; the message is one line naming the file and the problem."""


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
        name = self.header or header
        shown = name
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


_CLASS = re.compile(r"\[(?:\\.|[^\]])*\]|\\[A-Za-z]")

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


_COUNTED = re.compile(r"\{\d*,")


def has_nested_quantifier(pattern: str) -> bool:
    """`(a+)*`-style repetition: exponential backtracking on a hostile URL, so rules may not."""
    quantified = [False]  # per open group: does its content repeat?
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            quantified.append(False)
        elif c == ")" and len(quantified) > 1:
            inner = quantified.pop()
            follows = pattern[i + 1 : i + 2]
            if inner and (follows in ("*", "+") or _COUNTED.match(pattern, i + 1)):
                return True
            quantified[-1] = quantified[-1] or inner
        elif c in "*+" or (c == "{" and _COUNTED.match(pattern, i)):
            quantified[-1] = True
        i += 1
    return False


_LONG_RUN = re.compile(r"\{(\d+),")
LONG_TOKEN = 16  # a class repeated at least this often is a token: as telling as 4 literals


def specificity(pattern: str | None) -> int:
    """How recognisable a regex makes a URL: the literal characters it demands (classes and
    `\\w`-style escapes demand none), plus 4 for each long token run (`[0-9a-f]{40,}`)."""
    if not pattern:
        return 0
    runs = sum(4 for n in _LONG_RUN.findall(pattern) if int(n) >= LONG_TOKEN)
    return len(_LITERAL.findall(_CLASS.sub("", _LONG_RUN.sub("{", pattern)))) + runs


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

    def sender_matches(self, headers: Iterable[tuple[str, str]]) -> list[tuple[Rule, str]]:
        """Every `sender` rule the message's headers match, with the fingerprint in words, in
        message order (one entry per rule: its first matching header)."""
        if not self._senders and not self._sender_domains:
            return []
        found: dict[str, tuple[Rule, str]] = {}
        by_domain = self._sender_domains
        for name, value in headers:
            lname = name.lower()
            rules: Iterable[Rule] = self._senders.get(lname, ())
            index = by_domain.get(lname)
            if index is not None:
                # Rules naming the header's domains: looked up, not tried one by one (every
                # ESP has a DKIM rule).
                hits: list[Rule] = []
                for domain in header_domains(name, value):
                    hits.extend(index.get(domain, ()))
                    dot = domain.find(".")
                    while dot != -1:
                        hits.extend(index.get("*" + domain[dot:], ()))
                        dot = domain.find(".", dot + 1)
                rules = [*rules, *hits] if hits else rules
            for rule in rules:
                if rule.id not in found:
                    evidence = rule.sender_evidence(name, value)
                    if evidence is not None:
                        found[rule.id] = (rule, evidence)
        return list(found.values())

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


# -- loading ------------------------------------------------------------------------------------

COMPILED_RULES = Path(__file__).resolve().parent / "_compiled" / "rules.pickle"
"""The bundled rules as loaded, made at build time (hatch_build.py): see `compile_bundled`."""
_COMPILED_FORMAT = 1


def bundled_rules_dir() -> Path:
    """rules/ inside an installed wheel (guard/rules), else the working tree's top-level rules/."""
    package_dir = Path(__file__).resolve().parents[1]  # guard/, above guard/engine/
    for candidate in (package_dir / "rules", package_dir.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise RuleError(f"no rules directory found next to {package_dir}")


def user_rules_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "guard" / "rules"


def rule_files(directory: Path) -> list[Path]:
    found = [
        Path(root, name)
        for root, _dirs, names in os.walk(directory)
        for name in names
        if name.endswith(".toml")
    ]
    return sorted(p for p in found if p.is_file())


def load_ruleset(
    directories: Sequence[Path] | None = None, *, include_user: bool = True
) -> RuleSet:
    """Read every rule file; later directories (the user's) override rules with the same id.

    The bundled rules alone come from their build-time compiled form when it matches the rule
    files (and the code) exactly; anything else is parsed from the files, in memory."""
    dirs = list(directories) if directories is not None else [bundled_rules_dir()]
    if include_user and directories is None:
        user = user_rules_dir()
        if user.is_dir():
            dirs.append(user)
    if directories is None and len(dirs) == 1:
        compiled = load_compiled(dirs[0])
        if compiled is not None:
            return compiled
    return _parse_directories(dirs)


def _parse_directories(dirs: Sequence[Path]) -> RuleSet:
    digest = hashlib.sha256()
    services: dict[str, Service] = {}
    rules: dict[str, Rule] = {}
    for directory in dirs:
        for path in rule_files(directory):
            data = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + data)
            file_services, file_rules = parse_rule_file(path, data)
            for service in file_services:
                services[service.id] = service
            for rule in file_rules:
                if rule.id in rules and directory == dirs[0]:
                    raise RuleError(
                        f"{path}: duplicate rule id {rule.id!r} (also in {rules[rule.id].file})"
                    )
                rules[rule.id] = rule
    return RuleSet(services=services, rules=list(rules.values()), version=digest.hexdigest()[:16])


# -- the build-time compiled form -----------------------------------------------------------------
#
# What is stored is the RuleSet the loader produced, whole (services, rules, examples and the
# look-up indexes), pickled: a field added to Rule or Service tomorrow is carried without a
# change here. Regexes are stored as (pattern, flags) and compiled on first use (_LazyPattern):
# compiling every rule's regexes is most of what a start would otherwise cost, and one message
# meets a handful of them. The file is trusted like the code next to it (same package, same
# build) and still only used when its header matches: the rule files' digest and the source of
# every guard module whose classes it holds, so an edited rule or dataclass (an editable
# install) falls back to parsing the files. Nothing is written at run time.


class _LazyPattern:
    """A compiled regex that compiles itself on first use; otherwise behaves as re.Pattern."""

    __slots__ = ("__dict__", "flags", "pattern")

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:
        if name in ("pattern", "flags") or name.startswith("__"):
            raise AttributeError(name)  # not set up (yet): never compile for these
        compiled = re.compile(self.pattern, self.flags)
        for method in ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn"):
            self.__dict__[method] = getattr(compiled, method)  # later calls go straight to C
        self.__dict__["groupindex"] = compiled.groupindex
        self.__dict__["groups"] = compiled.groups
        self.__dict__["split"] = compiled.split
        return getattr(compiled, name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LazyPattern | re.Pattern):
            return (self.pattern, self.flags) == (other.pattern, other.flags)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_LazyPattern, (self.pattern, self.flags))

    def __repr__(self) -> str:
        return f"re.compile({self.pattern!r})"


class _Pickler(pickle.Pickler):
    """Regexes as (pattern, flags); paths inside the rules directory relative to it (the build's
    source tree is not where the package is installed)."""

    def __init__(self, file: IO[bytes], directory: Path) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()
        self._field_names: dict[type, tuple[str, ...]] = {}
        self.prefix = str(directory) + os.sep

    @staticmethod
    def _plain_init(cls: type) -> bool:
        """Does cls(*values) only set the fields (dataclass __init__, all fields in it, nothing
        after)? Then it rebuilds the object as well as setting each field does, faster."""
        init = cls.__dict__.get("__init__")
        return (
            init is not None
            and getattr(init, "__code__", None) is not None
            and init.__code__.co_filename == "<string>"  # made by @dataclass
            and not hasattr(cls, "__post_init__")
            and all(f.init for f in dataclasses.fields(cls))
        )

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, re.Pattern | _LazyPattern):
            return ("re", obj.pattern, obj.flags)
        if isinstance(obj, str) and obj.startswith(self.prefix):
            return ("path", obj[len(self.prefix) :], 0)
        return None

    def reducer_override(self, obj: Any) -> Any:
        for module in (getattr(obj, "__module__", None), type(obj).__module__):
            if isinstance(module, str) and module.split(".")[0] == "guard":
                self.modules.add(module)
        cls = type(obj)
        if dataclasses.is_dataclass(cls) and hasattr(cls, "__slots__"):
            # dataclasses' own __setstate__ for slotted classes calls fields() per object: ~15x
            # slower to load than setting the values straight (thousands of examples and rules).
            names = self._field_names.get(cls)
            if names is None:
                names = self._field_names[cls] = tuple(f.name for f in dataclasses.fields(cls))
            values = tuple(getattr(obj, n) for n in names)
            if self._plain_init(cls):
                return cls, values  # the generated __init__ is the quickest way to set them
            return _rebuild, (cls, names, values)
        return NotImplemented


def _rebuild(cls: type, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    obj: Any = object.__new__(cls)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], directory: Path) -> None:
        super().__init__(file)
        self.prefix = str(directory) + os.sep
        self.paths: dict[str, str] = {}

    def persistent_load(self, pid: Any) -> Any:
        kind, text, flags = pid
        if kind == "re":
            return _LazyPattern(text, flags)
        if kind == "path":  # the same file's name recurs: one string each
            return self.paths.setdefault(text, self.prefix + text)
        raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")


def _rules_digest(directory: Path) -> str:
    """sha256 over every rule file's path (relative to `directory`) and bytes, in path order.
    Plain strings and os.scandir: this runs on every start of `guard strip`."""
    names: list[str] = []
    pending = [str(directory)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.name.endswith(".toml") and entry.is_file():
                    names.append(entry.path)
    digest = hashlib.sha256()
    start = len(str(directory)) + 1
    for name in sorted(names):
        with open(name, "rb") as handle:
            digest.update(name[start:].encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def _module_digest(name: str) -> str | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except OSError:
        return None


def compile_bundled(directory: Path | None = None) -> bytes:
    """The compiled form of the rules in `directory` (default: the bundled rules): a header
    (format, rule files' digest, guard modules' source digests), then the RuleSet. Raises
    RuleError for a broken rule file, as loading would."""
    directory = directory or bundled_rules_dir()
    ruleset = _parse_directories([directory])
    body = io.BytesIO()
    pickler = _Pickler(body, directory)
    pickler.dump(ruleset)
    modules = {name: _module_digest(name) for name in sorted(pickler.modules)}
    header = {"format": _COMPILED_FORMAT, "rules": _rules_digest(directory), "modules": modules}
    return pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL) + body.getvalue()


def load_compiled(directory: Path, path: Path | None = None) -> RuleSet | None:
    """The build-time RuleSet when its header matches `directory`'s rule files and guard's code
    as they are now; None (parse the files instead) otherwise."""
    try:
        data = (path or COMPILED_RULES).read_bytes()
    except OSError:
        return None
    stream = io.BytesIO(data)
    try:
        header = pickle.load(stream)
        if not isinstance(header, dict) or header.get("format") != _COMPILED_FORMAT:
            return None
        if header.get("rules") != _rules_digest(directory):
            return None
        for name, digest in header.get("modules", {}).items():
            importlib.import_module(name)
            if digest is None or _module_digest(name) != digest:
                return None
        ruleset = _Unpickler(stream, directory).load()
    except Exception:  # noqa: BLE001 - a stale or foreign file: parse the rule files instead
        return None
    return ruleset if isinstance(ruleset, RuleSet) else None


def parse_rule_file(path: Path, data: bytes) -> tuple[list[Service], list[Rule]]:
    import tomllib  # here: loading the compiled rules parses no TOML

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from None
    where = str(path)
    unknown = set(doc) - {"service"}
    if unknown:
        raise RuleError(
            f"{where}: unknown top-level key(s) {sorted(unknown)}; expected [[service]]"
        )
    entries = doc.get("service")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{where}: no [[service]] table")
    services: list[Service] = []
    rules: list[Rule] = []
    for entry in entries:
        service, raw_rules = _parse_service(where, entry)
        services.append(service)
        seen: set[str] = set()
        for raw in raw_rules:
            rule = _parse_rule(where, service, raw)
            if rule.id in seen:
                raise RuleError(f"{where}: duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            rules.append(rule)
    return services, rules


_SERVICE_KEYS = {"id", "name", "category", "source", "rule", "notes"}
_RULE_KEYS = {
    "id",
    "kind",
    "hosts",
    "path",
    "query",
    "decode",
    "params",
    "param_prefixes",
    "header",
    "value",
    "relay",
    "tracking_only",
    "source",
    "match",
    "no_match",
    "notes",
}


def _require_str(where: str, table: dict[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RuleError(f"{where}: {key!r} must be a non-empty string")
    return value


def _str_list(where: str, table: dict[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(value)


def _regex(where: str, table: dict[str, Any], key: str) -> re.Pattern[str] | None:
    if key not in table:
        return None
    text = _require_str(where, table, key)
    if has_nested_quantifier(text):
        raise RuleError(f"{where}: {key!r} repeats a repeated group (slow on hostile URLs)")
    try:
        return re.compile(text)
    except re.error as exc:
        raise RuleError(f"{where}: {key!r} is not a valid regex: {exc}") from None


def _parse_service(where: str, entry: Any) -> tuple[Service, list[Any]]:
    if not isinstance(entry, dict):
        raise RuleError(f"{where}: [[service]] must be a table")
    sid = entry.get("id")
    here = f"{where}: service {sid!r}"
    unknown = set(entry) - _SERVICE_KEYS
    if unknown:
        raise RuleError(f"{here}: unknown key(s) {sorted(unknown)}")
    if not isinstance(sid, str) or not _ID.match(sid):
        raise RuleError(f"{here}: 'id' must match [a-z0-9-]+")
    category = _require_str(here, entry, "category")
    if category not in CATEGORIES:
        raise RuleError(f"{here}: unknown category {category!r} (one of {', '.join(CATEGORIES)})")
    service = Service(
        id=sid,
        name=_require_str(here, entry, "name"),
        category=category,
        source=_require_str(here, entry, "source"),
    )
    raw_rules = entry.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleError(f"{here}: no [[service.rule]]")
    return service, raw_rules


def _parse_examples(where: str, raw: dict[str, Any], key: str) -> tuple[Example, ...]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise RuleError(f"{where}: {key!r} needs at least one example")
    examples: list[Example] = []
    for item in value:
        if isinstance(item, str) and item:
            examples.append(Example(item))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            dest = item.get("destination")
            if dest is not None and not isinstance(dest, str):
                raise RuleError(f"{where}: {key!r} example destination must be a string")
            examples.append(Example(item["url"], dest))
        else:
            raise RuleError(f"{where}: {key!r} entries are strings or {{url, destination}} tables")
    return tuple(examples)


def _parse_decode(where: str, raw: Any) -> Decode:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: 'decode' must be a table")
    unknown = set(raw) - {"param", "from", "regex", "encoding", "json_path"}
    if unknown:
        raise RuleError(f"{where}: decode has unknown key(s) {sorted(unknown)}")
    encodings = _str_list(where + " decode", raw, "encoding")
    bad = [e for e in encodings if e not in KNOWN_ENCODINGS]
    if bad:
        raise RuleError(
            f"{where}: unknown decode encoding(s) {bad}; known: {sorted(KNOWN_ENCODINGS)}"
        )
    json_path = _str_list(where + " decode", raw, "json_path")
    for keyed in ("json", "form"):
        if keyed in encodings and not json_path:
            raise RuleError(f"{where}: decode with {keyed!r} encoding needs 'json_path'")
    if "param" in raw:
        if "regex" in raw or "from" in raw:
            raise RuleError(f"{where}: decode takes either 'param' or 'from' + 'regex'")
        return Decode(
            param=_require_str(where, raw, "param"),
            source="query",
            regex=None,
            encodings=encodings,
            json_path=json_path,
        )
    source = raw.get("from", "path")
    if source not in _DECODE_FROM:
        raise RuleError(f"{where}: decode 'from' must be one of {_DECODE_FROM}")
    regex = _regex(where + " decode", raw, "regex")
    if regex is None or "target" not in regex.groupindex:
        raise RuleError(f"{where}: decode needs 'param', or a 'regex' with a (?P<target>...) group")
    return Decode(param=None, source=source, regex=regex, encodings=encodings, json_path=json_path)


def _parse_rule(where: str, service: Service, raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: service {service.id!r}: [[service.rule]] must be a table")
    rid = raw.get("id")
    here = f"{where}: rule {service.id}.{rid}"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{here}: unknown key(s) {sorted(unknown)}")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RuleError(f"{here}: 'id' must match [a-z0-9-]+")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RuleError(f"{here}: 'kind' must be one of {', '.join(KINDS)}")
    hosts = tuple(h.lower() for h in _str_list(here, raw, "hosts"))
    for host in hosts:
        if not _HOST.match(host):
            raise RuleError(f"{here}: bad host {host!r} (exact host or *.domain)")
    path = _regex(here, raw, "path")
    query = _regex(here, raw, "query")
    decode = _parse_decode(here, raw["decode"]) if "decode" in raw else None
    params = frozenset(_str_list(here, raw, "params"))
    prefixes = _str_list(here, raw, "param_prefixes")
    header = raw.get("header")
    if kind in URL_KINDS:
        if not hosts and path is None:
            raise RuleError(f"{here}: a {kind} rule needs 'hosts' or 'path'")
        if kind == "host" and not hosts:
            raise RuleError(f"{here}: a host rule needs 'hosts'")
        if (
            not hosts
            and path is not None
            and not (
                specificity(path.pattern) >= 4
                or specificity(path.pattern) + specificity(query.pattern if query else None) >= 6
            )
        ):
            raise RuleError(
                f"{here}: a rule without hosts needs a specific 'path' shape "
                "(or a short path and a specific 'query')"
            )
    if decode is not None and kind != "link":
        raise RuleError(f"{here}: only link rules take 'decode'")
    if kind == "param" and not params and not prefixes:
        raise RuleError(f"{here}: a param rule needs 'params' or 'param_prefixes'")
    if kind in ("receipt", "sender") and (not isinstance(header, str) or not header):
        raise RuleError(f"{here}: a {kind} rule needs 'header'")
    value = _regex(here, raw, "value")
    if value is not None and kind != "sender":
        raise RuleError(f"{here}: only sender rules take 'value'")
    relay = raw.get("relay", False)
    if not isinstance(relay, bool) or (relay and kind != "sender"):
        raise RuleError(f"{here}: 'relay' is true or false, on sender rules only")
    source = raw.get("source", service.source)
    if not isinstance(source, str) or not source:
        raise RuleError(f"{here}: 'source' must be a non-empty string")
    tracking_only = raw.get("tracking_only", False)
    if not isinstance(tracking_only, bool) or (tracking_only and kind != "host"):
        raise RuleError(f"{here}: 'tracking_only' is true or false, on host rules only")
    if tracking_only and (path is not None or query is not None or "source" not in raw):
        raise RuleError(
            f"{here}: a tracking_only host rule names whole hosts (no 'path' or 'query') "
            "and carries its own 'source': the evidence that the hosts serve only tracking"
        )
    return Rule(
        id=f"{service.id}.{rid}",
        service=service,
        kind=kind,
        hosts=hosts,
        path=path,
        query=query,
        decode=decode,
        params=params,
        param_prefixes=prefixes,
        header=header if isinstance(header, str) else None,
        value=value,
        relay=relay,
        tracking_only=tracking_only,
        source=source,
        file=where,
        match=_parse_examples(here, raw, "match"),
        no_match=_parse_examples(here, raw, "no_match"),
    )
