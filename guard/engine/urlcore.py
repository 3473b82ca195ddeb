"""Detection's per-reference work in C (guard/engine/_urlcore.c), built from a RuleSet's tables.

For each reference of a message, detect.py's loop splits the URL, finds its host's rules and the
host-less shapes it may match, follows link wrappers, matches tracking parameters and makes the
findings: ~120 distinct URLs a newsletter, a dozen Python functions each. The C core does that
loop for the common outcomes and calls back into Python for the rest (see _urlcore.c); the rules
stay data: its tables are the RuleSet's own dictionaries and regexes, read here once per RuleSet
at first use (not pickled with the compiled rules: a C object cannot be).

The Python path stays the reference and the fallback: without the compiled extension (no C
compiler at build time) or with GUARD_PYTHON_DETECT=1 in the environment, detection runs in
Python; tests/test_urlcore.py compares both on every kind of input.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote as _py_unquote

from guard.engine.model import Confidence, Finding, Kind, Party
from guard.engine.ruleset import (
    _HOST_CACHE_SIZE,
    _UNWRAP_CACHE_LONGEST,
    _UNWRAP_CACHE_SIZE,
    MAX_UNWRAP_DEPTH,
    Rule,
    RuleSet,
)
from guard.engine.unwrap import DecodeError, apply_encodings
from guard.engine.urls import Url, parse_http

_native: Any
try:
    from guard.engine import _urlcore as _native  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # a source checkout without the build, or no C compiler at build time
    _native = None

_SOURCES = {"path": 0, "query": 1, "url": 2}
# The shape index's tests, in the order the C core keeps them.
_SHAPE_TESTS = (
    ("path", "prefix"),
    ("path", "suffix"),
    ("query", "prefix"),
    ("query", "suffix"),
    ("path", "contains"),
    ("query", "contains"),
)
_KINDS = {"link": 1, "param": 2}

AVAILABLE = _native is not None
# Read once: detection of every message in the process takes the same path.
ENABLED = AVAILABLE and os.environ.get("GUARD_PYTHON_DETECT", "") != "1"

# urllib.parse.unquote, in C where the core is (leaks.py decodes a message's URLs joined).
unquote: Callable[[str], str] = _native.unquote if ENABLED else _py_unquote

_cores: dict[int, Any] = {}


def core_for(rules: RuleSet, builtin_remote: str) -> Any | None:
    """The C core of `rules` (built at first use), or None when detection runs in Python.
    `builtin_remote` is the rule id of a load no rule is about (detect.py's)."""
    if not ENABLED:
        return None
    key = id(rules)
    core = _cores.get(key)
    if core is None:
        core = build(rules, builtin_remote)
        _cores[key] = core
        # The core holds the RuleSet's dictionaries, not the RuleSet: it goes with it.
        weakref.finalize(rules, _cores.pop, key, None)
    return core


def _decode(text: str, encodings: tuple[str, ...], json_path: tuple[str, ...]) -> str | None:
    """Decode.target's decoding step: None where the payload is not in the decoders' shape."""
    try:
        return apply_encodings(text, encodings, json_path)
    except DecodeError:
        return None


def _info(rule: Rule) -> tuple[object, ...]:
    decode = rule.decode
    decoding = (
        None
        if decode is None
        else (
            decode.param,
            _SOURCES[decode.source],
            decode.regex,
            tuple(decode.encodings),
            tuple(decode.json_path),
        )
    )
    return (
        rule,
        _KINDS.get(rule.kind, 0),
        bool(rule.hosts),
        # The patterns, not their bound `search`: the compiled rules' patterns compile at first
        # use, and reading `search` here would compile all of them at every start.
        rule.path,
        rule.query,
        rule.tracking_only,
        decoding,
        rule.id,
        rule.tracker,
        rule.category,
        rule.service.id,
    )


def build(rules: RuleSet, builtin_remote: str) -> Any:
    """A C core over `rules`' tables (the RuleSet's own dictionaries: its caches fill as before)."""
    if _native is None:
        raise RuntimeError("guard.engine._urlcore is not built")
    shapes = rules._shapes
    if not set(shapes._each) <= set(_SHAPE_TESTS):
        raise ValueError(f"urlcore: shape tests the core does not know: {sorted(shapes._each)}")
    gates = shapes._any
    prefix_rules = tuple(
        (prefix, rule) for rule in rules._param_rules for prefix in rule.param_prefixes
    )
    return _native.Core(
        url_type=Url,
        finding_type=Finding,
        kind_remote=Kind.REMOTE,
        kind_link=Kind.LINK,
        kind_param=Kind.PARAM,
        conf_known=Confidence.KNOWN,
        party_first=Party.FIRST,
        party_third=Party.THIRD,
        builtin_remote=builtin_remote,
        host_cache=rules._host_cache,
        by_host=rules._by_host,
        by_suffix=rules._by_suffix,
        unwrap_cache=rules._unwrap_cache,
        shape_each=(
            *(shapes._each.get(key, []) for key in _SHAPE_TESTS),
            shapes._always,
        ),
        g_path_prefixes=gates.get(("path", "prefix"), ()),
        g_path_suffixes=gates.get(("path", "suffix"), ()),
        g_path_exact=shapes._exact["path"],
        g_query_exact=shapes._exact["query"],
        g_query_prefixes=gates.get(("query", "prefix"), ()),
        g_query_suffixes=gates.get(("query", "suffix"), ()),
        g_path_contains=gates.get(("path", "contains"), ()),
        g_query_contains=gates.get(("query", "contains"), ()),
        exact_params=rules._exact_params,
        prefix_rules=prefix_rules,
        py_parse=parse_http,
        py_decode=_decode,
        infos=[_info(rule) for rule in rules.rules],
        suffix_labels=rules._suffix_labels,
        host_cache_size=_HOST_CACHE_SIZE,
        unwrap_cache_size=_UNWRAP_CACHE_SIZE,
        unwrap_cache_longest=_UNWRAP_CACHE_LONGEST,
        max_unwrap_depth=MAX_UNWRAP_DEPTH,
        g_always=bool(shapes._always),
    )
