"""An index of host-less rules by the literal text their regexes demand.

Host-less rules (a sender's branded tracking domain recognised by its URL shape) are tried on
every URL. Nearly all of their patterns demand literal text at the start or end of the path or
query (`^/wf/open$`, `…\\.gif$`, `^entryPoint=campaignUrl&`), read here from the standard
library's own parse of the pattern. A handful of `startswith`/`endswith`/`in` tests over all
rules at once, in C, then reject the common URL before any regex runs; only rules whose literal
test passes are tried.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

# typeshed has no stub for re._parser; the pattern's structure is read from it, not guessed.
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

MAX_ALTERNATIVES = 16
EXACT_BONUS = 8  # equality is more selective than a prefix of the same length
FIELDS = ("path", "query")

T = TypeVar("T")


class Gate(NamedTuple):
    """A literal test every string the pattern finds passes: `field`'s value equals / starts with /
    ends with / contains one of `texts`. `kind` "always" when the pattern demands no usable text."""

    field: str
    kind: str
    texts: tuple[str, ...] = ()

    @property
    def score(self) -> int:
        if self.kind == "always":
            return -1
        shortest = min(map(len, self.texts))
        return shortest + EXACT_BONUS if self.kind == "exact" else shortest


ALWAYS = Gate("path", "always")


def _edge(items: Sequence[Any], from_end: bool) -> list[str]:
    """The literal alternatives at one end of `items`: `^/p/(cp/…|rp/…)` starts with /p/cp/ or
    /p/rp/. Groups and alternations are entered; the first other item ends the walk."""
    return _walk(items, from_end)[0] or [""]


def _walk(items: Sequence[Any], from_end: bool) -> tuple[list[str], bool]:
    """(alternatives, whether all of `items` was literal) reading from one end."""
    results = [""]
    for op, av in reversed(items) if from_end else items:
        if op == _c.LITERAL:
            options, complete = [chr(av)], True
        elif op == _c.SUBPATTERN:
            options, complete = _walk(av[3], from_end)
        elif op == _c.BRANCH:
            options, complete = [], True
            for branch in av[1]:
                found, whole = _walk(branch, from_end)
                options.extend(found)
                complete = complete and whole
        else:
            return results, False
        if from_end:
            results = [b + a for a, b in itertools.product(results, options)]
        else:
            results = [a + b for a, b in itertools.product(results, options)]
        if len(results) > MAX_ALTERNATIVES:
            return [""], False
        if not complete:
            return results, False
    return results, True


def _inner(items: Sequence[Any]) -> list[str]:
    """The most selective literal alternatives demanded somewhere inside `items`: every item at
    the top level is required, so the literal run read from any of them is (`(mailster|mymail)/`
    demands mailster/ or mymail/)."""
    best: list[str] = [""]
    for start in range(len(items)):
        found = _walk(items[start:], from_end=False)[0]
        if found and min(map(len, found)) > min(map(len, best)):
            best = found
    return best


def gate(pattern: re.Pattern[str], field: str) -> Gate:
    """The most selective literal test for strings that `pattern.search` finds."""
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 - an unreadable pattern is simply never gated
        return ALWAYS
    if parsed.state.flags & re.IGNORECASE:
        return ALWAYS
    items = list(parsed)
    begin = bool(items) and items[0] == (_c.AT, _c.AT_BEGINNING)
    end = bool(items) and items[-1] == (_c.AT, _c.AT_END)
    body = items[int(begin) : len(items) - int(end)]
    options: list[Gate] = []
    whole, complete = _walk(body, from_end=False)
    if begin and end and complete and all(whole):  # `^$` (an empty value) is no usable gate
        options.append(Gate(field, "exact", tuple(whole)))
    if begin:
        options.append(Gate(field, "prefix", tuple(_edge(body, from_end=False))))
    if end:
        options.append(Gate(field, "suffix", tuple(_edge(body, from_end=True))))
    options.append(Gate(field, "contains", tuple(_inner(body))))
    best = max(options, key=lambda g: g.score)  # ties: the earlier, stricter test
    return best if best.score >= 2 else ALWAYS


def best_gate(path: re.Pattern[str] | None, query: re.Pattern[str] | None) -> Gate:
    gates = [gate(p, f) for p, f in ((path, "path"), (query, "query")) if p is not None]
    return max(gates, key=lambda g: g.score, default=ALWAYS)


class ShapeIndex(Generic[T]):
    """Items (rules) each with a path and/or query regex, found by literal tests on a URL."""

    def __init__(self, entries: Iterable[tuple[T, re.Pattern[str] | None, re.Pattern[str] | None]]):
        self._order: dict[int, int] = {}
        self._always: list[tuple[int, T]] = []
        self._exact: dict[str, dict[str, list[tuple[int, T]]]] = {f: {} for f in FIELDS}
        # (field, kind) -> every text of that kind (one C call rejects them all), and per item.
        self._any: dict[tuple[str, str], tuple[str, ...]] = {}
        self._each: dict[tuple[str, str], list[tuple[tuple[str, ...], int, T]]] = {}
        for position, (item, path, query) in enumerate(entries):
            g = best_gate(path, query)
            if g.kind == "always":
                self._always.append((position, item))
            elif g.kind == "exact":
                for text in g.texts:
                    self._exact[g.field].setdefault(text, []).append((position, item))
            else:
                key = (g.field, g.kind)
                self._any[key] = self._any.get(key, ()) + g.texts
                self._each.setdefault(key, []).append((g.texts, position, item))
        self._tests = [
            (field == "path", _TESTS[kind], texts, self._each[(field, kind)])
            for (field, kind), texts in self._any.items()
        ]
        # The one test of every URL, flattened: one C call per field and kind.
        self._path_prefixes = self._any.get(("path", "prefix"), ())
        self._path_suffixes = self._any.get(("path", "suffix"), ())
        self._query_prefixes = self._any.get(("query", "prefix"), ())
        self._query_suffixes = self._any.get(("query", "suffix"), ())
        self._path_contains = _any_of(self._any.get(("path", "contains"), ()))
        self._query_contains = _any_of(self._any.get(("query", "contains"), ()))

    def __len__(self) -> int:
        exact = sum(len(v) for d in self._exact.values() for v in d.values())
        return len(self._always) + sum(len(e) for e in self._each.values()) + exact

    def find(self, path: str, query: str) -> list[T]:
        """The items whose literal test `path`/`query` pass, in the order they were given."""
        if not (
            self._always
            or path.startswith(self._path_prefixes)
            or path.endswith(self._path_suffixes)
            or path in self._exact["path"]
            or (query and query in self._exact["query"])
            or (query and query.startswith(self._query_prefixes))
            or (query and query.endswith(self._query_suffixes))
            or (self._path_contains and self._path_contains.search(path))
            or (query and self._query_contains and self._query_contains.search(query))
        ):
            return []
        hits = list(self._always)
        hits.extend(self._exact["path"].get(path, ()))
        hits.extend(self._exact["query"].get(query, ()))
        for on_path, test, texts, each in self._tests:
            value = path if on_path else query
            if test(value, texts):
                hits.extend((pos, item) for alts, pos, item in each if test(value, alts))
        if len(hits) > 1:
            hits.sort(key=lambda hit: hit[0])
        return [item for _, item in hits]


def _any_of(texts: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(re.escape, texts))) if texts else None


def _contains(value: str, texts: tuple[str, ...]) -> bool:
    return any(text in value for text in texts)


_TESTS: dict[str, Callable[[str, tuple[str, ...]], bool]] = {
    "prefix": str.startswith,
    "suffix": str.endswith,
    "contains": _contains,
}
