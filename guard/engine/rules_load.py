"""Rule files -> `RuleSet`: finding, reading and validating the rule files (the knowledge lives
in rules/, see rules/README.md).

`load_ruleset` reads the bundled rules and the user's; the bundled rules alone come from their
build-time compiled form when it matches the files and the code (guard/engine/rules_compiled.py).
A malformed file raises `RuleError`, one line naming the file and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guard.engine.rules_compiled import load_compiled
from guard.engine.ruleset import Decode, Example, Rule, RuleSet, Service
from guard.engine.unwrap import KNOWN_ENCODINGS

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


class RuleError(Exception):
    """A rule file is malformed; the message is one line naming the file and the problem."""


_CLASS = re.compile(r"\[(?:\\.|[^\]])*\]|\\[A-Za-z]")


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


# -- loading ------------------------------------------------------------------------------------


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
    directories: Sequence[Path] | None = None,
    *,
    include_user: bool = True,
    examples: bool = True,
) -> RuleSet:
    """Read every rule file; later directories (the user's) override rules with the same id.

    The bundled rules alone come from their build-time compiled form when it matches the rule
    files (and the code) exactly; anything else is parsed from the files, in memory.
    `examples=False`: the caller never reads the rules' examples (match / no_match), so the
    compiled form may leave them out (a third of what it holds; `guard strip` skips them)."""
    dirs = list(directories) if directories is not None else [bundled_rules_dir()]
    if include_user and directories is None:
        user = user_rules_dir()
        if user.is_dir():
            dirs.append(user)
    if directories is None and len(dirs) == 1:
        compiled = load_compiled(dirs[0], examples=examples)
        if compiled is not None:
            return compiled
    return parse_directories(dirs)


def parse_directories(dirs: Sequence[Path]) -> RuleSet:
    import hashlib  # here: loading the compiled rules hashes nothing (OpenSSL: ~11 M instructions)

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
