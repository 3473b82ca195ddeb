"""The bundled rules compiled at build time (guard/engine/_compiled/rules.pickle).

hatch_build.py writes them with `compile_bundled`; `load_compiled` reads them back on start-up,
only when their header matches the rule files and guard's code as they are now (see below).
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import re
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from guard.engine.ruleset import RuleSet

# Loading needs only the C pickler (pickle.Pickler and pickle.Unpickler are _pickle's): the
# pickle module's Python half (its pure-Python pickler, ~4 M instructions to import) is for the
# build (compile_bundled).
try:
    import _pickle as pickling
except ImportError:  # pragma: no cover - a Python without the C pickler
    import pickle as pickling  # type: ignore[no-redef]

COMPILED_RULES = Path(__file__).resolve().parent / "_compiled" / "rules.pickle"
"""The bundled rules as loaded, made at build time (hatch_build.py): see `compile_bundled`."""
_COMPILED_FORMAT = 6  # 2: the examples apart, after the rules; 3: CRC-32 digests; 4: regexes
# reduced to _LazyPattern, paths as indexes into the header's list; 6: objects made by the
# loader's `_rebuild` (`_rebuilder`)


# -- the build-time compiled form -----------------------------------------------------------------
#
# What is stored is the RuleSet the loader produced, whole (services, rules and the look-up
# indexes; the rules' examples after it, apart), pickled: a field added to Rule or Service
# tomorrow is carried without a change here. Regexes are stored as (pattern, flags) and compiled
# on first use (_LazyPattern): compiling every rule's regexes is most of what a start would
# otherwise cost, and one message meets a handful of them. The file is trusted like the code next
# to it (same package, same build) and still only used when its header matches: the rule files'
# digest and the source of every guard module whose classes it holds, so an edited rule or
# dataclass (an editable install) falls back to parsing the files. Nothing is written at run
# time. The digests tell an edited file from the one the build read, nothing more (the file is
# trusted like the code): CRC-32 and the length (`file_digest`), which zlib computes ~10x
# cheaper than SHA-256 (~1 MB of rule files and modules). The rule files are read only when
# their sizes and modification times differ from the build's (`_rules_stamps`, as Python's own
# .pyc check does): in an editable install a start reads none of them.


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


class _Pickler(pickling.Pickler):
    """Regexes as (pattern, flags); paths inside the rules directory relative to it (the build's
    source tree is not where the package is installed), as their index in `paths` (the header
    lists them): loading looks each up with a list's __getitem__, no Python call."""

    def __init__(self, file: IO[bytes], directory: Path) -> None:
        import pickle  # here: the build's

        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()
        self._field_names: dict[type, tuple[str, ...]] = {}
        self.prefix = str(directory) + os.sep
        self.paths: dict[str, int] = {}  # relative path -> its index

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, str) and obj.startswith(self.prefix):
            return self.paths.setdefault(obj[len(self.prefix) :], len(self.paths))
        return None

    def reducer_override(self, obj: Any) -> Any:
        if obj is _rebuild or obj is _rebuild_py:
            return _rebuilder, ()  # whichever the loading Python has, asked once (memoized)
        if isinstance(obj, re.Pattern | _LazyPattern):
            # a _LazyPattern straight (a persistent id cost a Python call more for each of ~660
            # patterns at every start), its two fields set as __init__ sets them
            return _rebuild, (_LazyPattern, ("pattern", "flags"), (obj.pattern, obj.flags))
        for module in (getattr(obj, "__module__", None), type(obj).__module__):
            if isinstance(module, str) and module.split(".")[0] == "guard":
                self.modules.add(module)
        cls = type(obj)
        if (
            dataclasses.is_dataclass(cls)
            and hasattr(cls, "__slots__")
            and cls.__new__ is object.__new__  # type: ignore[comparison-overlap]
        ):
            # dataclasses' own __setstate__ for slotted classes calls fields() per object: ~15x
            # slower to load than setting the values straight (thousands of examples and rules);
            # their __init__ (a frame and a call per field) is most of what `_rebuild` saves.
            names = self._field_names.get(cls)
            if names is None:
                names = self._field_names[cls] = tuple(f.name for f in dataclasses.fields(cls))
            return _rebuild, (cls, names, tuple(getattr(obj, n) for n in names))
        return NotImplemented


def _rebuild_py(cls: type, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    """`cls` with each field set as its generated __init__ sets it (frozen or not), no __init__
    run: the reference of _rulesload.c's `rebuild`."""
    obj: Any = object.__new__(cls)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


# What the compiled rules call for each of ~1,850 objects (the C one where built: without a Python
# frame or call per field, ~20 M instructions less a start). The file names neither, but
# `_rebuilder`, which answers with the loader's own: a wheel's build process, whose extensions
# are built outside the tree, has the Python one, and the installed wheel loads with C.
_rebuild: Callable[[type, tuple[str, ...], tuple[Any, ...]], Any]
try:
    from guard.engine import _rulesload  # type: ignore[attr-defined,unused-ignore]

    _rebuild = _rulesload.rebuild
except ImportError:  # not built (no C compiler): the same objects, more slowly
    _rebuild = _rebuild_py


def _rebuilder() -> Callable[[type, tuple[str, ...], tuple[Any, ...]], Any]:
    """This Python's `_rebuild`: what the compiled rules name (see `_Pickler.reducer_override`)."""
    return _rebuild


def _unpickler(file: IO[bytes], directory: Path, paths: list[str]) -> pickling.Unpickler:
    """An unpickler of `_Pickler`'s output: a path's index is its place in `paths` (the header's),
    under `directory` now (one string for each file: its rules share it)."""
    prefix = str(directory) + os.sep
    unpickler = pickling.Unpickler(file)
    unpickler.persistent_load = [prefix + path for path in paths].__getitem__  # type: ignore[method-assign]
    return unpickler


def file_digest(data: bytes, crc: int = 0) -> str:
    """What tells an edited file from the one the build read: its length and CRC-32."""
    return f"{len(data)}:{zlib.crc32(data, crc):08x}"


def _rule_entries(directory: Path) -> list[os.DirEntry[str]]:
    """Every rule file (`*.toml`) under `directory`, in no order. Plain strings and os.scandir:
    this runs on every start."""
    found: list[os.DirEntry[str]] = []
    pending = [str(directory)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.name.endswith(".toml") and entry.is_file():
                    found.append(entry)
    return found


def _rules_digest(directory: Path) -> str:
    """The digest of every rule file's path (relative to `directory`) and bytes, in path order."""
    crc = length = 0
    start = len(str(directory)) + 1
    for name in sorted(entry.path for entry in _rule_entries(directory)):
        with open(name, "rb") as handle:
            data = name[start:].encode() + b"\0" + handle.read() + b"\0"
        crc = zlib.crc32(data, crc)
        length += len(data)
    return f"{length}:{crc:08x}"


def _rules_stamps(directory: Path) -> list[tuple[str, int, int]]:
    """Every rule file's path (relative to `directory`), size and modification time (ns), in
    path order: what a start compares first, reading no file (see `load_compiled`)."""
    start = len(str(directory)) + 1
    stamps: list[tuple[str, int, int]] = []
    for entry in _rule_entries(directory):
        stat = entry.stat()
        stamps.append((entry.path[start:], stat.st_size, stat.st_mtime_ns))
    stamps.sort()
    return stamps


def _module_digest(name: str) -> str | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    try:
        return file_digest(Path(file).read_bytes())
    except OSError:
        return None


def compile_bundled(directory: Path | None = None) -> bytes:
    """The compiled form of the rules in `directory` (default: the bundled rules): a header
    (format, rule files' digest, guard modules' source digests), then the RuleSet. Raises
    RuleError for a broken rule file, as loading would."""
    # Imported here: guard.engine.rules_load imports this module (load_ruleset, load_compiled).
    from guard.engine.rules_load import bundled_rules_dir, parse_directories

    directory = directory or bundled_rules_dir()
    ruleset = parse_directories([directory])
    # The rules without their examples, then the examples (rule by rule): a filter loads the first
    # part only. The same RuleSet, built from the same rules less their examples.
    bare = [dataclasses.replace(rule, match=(), no_match=()) for rule in ruleset.rules]
    examples = [(rule.match, rule.no_match) for rule in ruleset.rules]
    body = io.BytesIO()
    pickler = _Pickler(body, directory)
    pickler.dump(RuleSet(services=ruleset.services, rules=bare, version=ruleset.version))
    pickler.dump(examples)
    # Besides the modules of the classes it holds, the code that made them (the rule files'
    # parser) and reads them back (this module): an edit to either makes the form unused too.
    pickler.modules.update((parse_directories.__module__, __name__))
    modules = {name: _module_digest(name) for name in sorted(pickler.modules)}
    header = {
        "format": _COMPILED_FORMAT,
        "rules": _rules_digest(directory),
        "stamps": _rules_stamps(directory),
        "modules": modules,
        "paths": list(pickler.paths),  # in index order (a dict keeps its insertion order)
    }
    import pickle  # here: the build's

    return pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL) + body.getvalue()


def load_compiled(
    directory: Path, path: Path | None = None, *, examples: bool = True
) -> RuleSet | None:
    """The build-time RuleSet when its header matches `directory`'s rule files and guard's code
    as they are now; None (parse the files instead) otherwise. `examples=False` leaves the rules'
    examples empty (see rules_load.load_ruleset)."""
    try:
        data = (path or COMPILED_RULES).read_bytes()
    except OSError:
        return None
    stream = io.BytesIO(data)
    try:
        header = pickling.load(stream)
        if not isinstance(header, dict) or header.get("format") != _COMPILED_FORMAT:
            return None
        # The rule files the build read, as it saw them (an editable install's): no need to read
        # them (~8 M instructions, a start's 2%). Anything else (a wheel's copies, an edit) is
        # told by their bytes.
        stamps = header.get("stamps")
        if stamps != _rules_stamps(directory) and header.get("rules") != _rules_digest(directory):
            return None
        for name, digest in header.get("modules", {}).items():
            importlib.import_module(name)
            if digest is None or _module_digest(name) != digest:
                return None
        unpickler = _unpickler(stream, directory, header["paths"])
        ruleset = unpickler.load()
        if not isinstance(ruleset, RuleSet):
            return None
        if examples:
            for rule, (match, no_match) in zip(ruleset.rules, unpickler.load(), strict=True):
                object.__setattr__(rule, "match", match)  # frozen: set as __init__ does
                object.__setattr__(rule, "no_match", no_match)
    except Exception:  # noqa: BLE001 - a stale or foreign file: parse the rule files instead
        return None
    return ruleset
