"""guard's dataclasses and named tuples made with the code of their methods compiled at build time.

Making a dataclass compiles the source of every method it writes (__init__, __repr__, __eq__,
__hash__, and __setattr__ / __delattr__ for frozen ones): ~250 compilations for guard's
modules, a tenth of the instructions of a `guard scan` or `guard clean` start and more of a
`guard strip` one. A named tuple compiles its __new__ (collections.namedtuple's eval), and
typing.NamedTuple each field's annotation (a string here: typing.ForwardRef compiles it). The
build (hatch_build.py) records the code objects importing guard's modules compiles for them
(`record`): dataclasses' keyed by module, then by source text, the others by text; a start hands
them the stored code object for the same text instead of compiling the text again
(`installed`). exec / eval of (code compiled from a text) is exec / eval of the text: the same
code object, named and filed ("<string>") alike. A text the table lacks (an edited dataclass in
an editable install) is compiled as ever; a table made by another Python (its bytecode magic
differs) is not used at all. Each part of the table is unmarshalled only when first needed, so
a command pays only for the modules it imports. Nothing is written at run time.

The regular expressions compiled meanwhile (guard's and the standard library's, at import and in
a start's usual calls) are in the table too (`_REGEXES`): what re's compiler hands _sre.compile
for each (pattern, flags), a sixth of a `guard clean` start's instructions. Their part is used only
by the Python that made it (version and _sre's magic), and a pattern it lacks is compiled as ever.

So are the text signatures dataclasses writes into the __doc__ of a class without one
(`_SIGNATURES`, keyed by everything the text is made of: `_init_key`): dataclasses imports
inspect only to make those, and a start now imports dataclasses without it (`_import_dataclasses`).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

DATACLASS_CODE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "engine", "_compiled", "dataclasses.marshal"
)
# Not recorded: the terminal app (Textual is not in the build environment; it has its own start)
# and the entry points, which run a command when imported.
_NOT_RECORDED = ("guard.tui", "guard.__main__", "guard.cli.launch")
# The table's parts that are not a module's dataclasses (no module name starts with "<").
_EVALS = "<collections.namedtuple>"  # the lambda texts namedtuple evals for __new__
_FORWARD_REFS = "<typing.ForwardRef>"  # the annotation texts typing.ForwardRef compiles
_REGEXES = "<re>"  # (its Python, {(pattern, flags): _sre.compile's arguments after the pattern})
_SIGNATURES = "<inspect.signature>"  # {what a class's __init__ takes (_init_key): its text}


def _re_internals() -> tuple[Any, Any]:
    """_sre and re._compiler (private, hence untyped): the pattern maker and re's compiler."""
    import importlib

    return importlib.import_module("_sre"), importlib.import_module("re._compiler")


def _regex_python() -> tuple[Any, ...]:
    """Which Python a part `_REGEXES` is for: re's compiler may change its output in any release."""
    sre, _compiler = _re_internals()
    return (tuple(sys.version_info), sre.MAGIC, sre.CODESIZE)


@contextmanager
def _regex_hooked(hook: Callable[[Any, Any], Any] | None) -> Iterator[None]:
    """Inside, re compiles what its cache lacks with `hook` (re._compiler.compile's place)."""
    if hook is None:
        yield
        return
    _sre, _compiler = _re_internals()
    original = _compiler.compile
    _compiler.compile = hook
    try:
        yield
    finally:
        if _compiler.compile is hook:
            _compiler.compile = original


def _compiled(source: str, mode: str) -> Any:
    """What dataclasses' exec, namedtuple's eval and ForwardRef's compile make of a text: those
    modules have no `from __future__` import, so they inherit no flag (nor may this module's
    `annotations` be inherited here)."""
    return compile(source, "<string>", mode, dont_inherit=True)


class _InspectWhenUsed(types.ModuleType):
    """What dataclasses' `import inspect` finds (`_import_dataclasses`): inspect itself, imported
    when an attribute is first read."""

    def __getattr__(self, name: str) -> Any:
        import importlib

        return getattr(importlib.import_module("inspect"), name)


def _import_dataclasses() -> Any:
    """dataclasses, without importing inspect (and ast, dis, tokenize…: 17 M instructions, 4% of a
    `guard clean` start) until it is used. dataclasses reads inspect only for the __doc__ of a
    class without one (`inspect.signature`), which a start takes from the table (`_Signatures`).
    The stand-in is in sys.modules only while dataclasses is imported: every other importer of
    inspect gets inspect."""
    if "dataclasses" not in sys.modules and "inspect" not in sys.modules:
        sys.modules["inspect"] = _InspectWhenUsed("inspect")
        try:
            import dataclasses
        finally:
            if isinstance(sys.modules.get("inspect"), _InspectWhenUsed):
                del sys.modules["inspect"]
    import dataclasses

    return dataclasses


def _init_key(cls: type) -> str | None:
    """Everything `str(inspect.signature(cls))` is made of, for a dataclass whose signature is its
    own __init__'s (plain class, no __new__, no __signature__): the parameters' names and kinds,
    their defaults' and annotations' reprs; None for any other class."""
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if (
        type(cls) is not type
        or code is None
        or cls.__new__ is not object.__new__  # type: ignore[comparison-overlap]
        or getattr(cls, "__signature__", None) is not None
    ):
        return None
    count = code.co_argcount + code.co_kwonlyargcount
    return repr(
        (
            code.co_varnames[:count],
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_flags & 0x0C,  # CO_VARARGS | CO_VARKEYWORDS
            init.__defaults__,  # type: ignore[union-attr]
            init.__kwdefaults__,  # type: ignore[union-attr]
            init.__annotations__,  # type: ignore[union-attr]
        )
    )


class _Signatures:
    """dataclasses' `inspect` while hooked: `signature` is the hook, the rest is inspect's."""

    def __init__(self, signature: Callable[[type], Any]) -> None:
        self.signature = signature

    def __getattr__(self, name: str) -> Any:
        import importlib

        return getattr(importlib.import_module("inspect"), name)


@contextmanager
def _hooked(
    exec_hook: Any, eval_hook: Any, compile_hook: Any, signature_hook: Callable[[type], Any]
) -> Iterator[None]:
    """Inside, dataclasses' exec, collections' eval and typing's compile are the hooks: set as each
    module's own global, which its code finds before the builtin of that name; and dataclasses'
    inspect.signature is `signature_hook` (its `inspect` global, put back after)."""
    import collections
    import typing

    dataclasses = _import_dataclasses()
    hooks = {dataclasses: ("exec", exec_hook), collections: ("eval", eval_hook)}
    hooks[typing] = ("compile", compile_hook)
    for module, (name, hook) in hooks.items():
        setattr(module, name, hook)
    inspect, signatures = dataclasses.inspect, _Signatures(signature_hook)
    dataclasses.inspect = signatures
    try:
        yield
    finally:
        for module, (name, hook) in hooks.items():
            if getattr(module, name, None) is hook:
                delattr(module, name)
        if dataclasses.inspect is signatures:
            dataclasses.inspect = inspect


def record() -> bytes:
    """Build time: this Python's bytecode magic, then the marshalled {module: marshalled {source:
    code}} of what importing guard's modules compiles for their dataclasses. Call it before any
    guard module with dataclasses is imported (what is imported already is not recorded). A module
    that cannot be imported here (a dependency missing from the build environment) is recorded up
    to where its import stopped; the rest of it compiles at run time, as without a table."""
    import builtins
    import importlib
    import importlib.util
    import marshal
    import pkgutil

    import guard

    tables: dict[str, dict[str, Any]] = {}

    def recording_exec(source: Any, globals: Any = None, locals: Any = None) -> None:
        if isinstance(source, str):
            module = str((globals or {}).get("__name__", ""))
            code = tables.setdefault(module, {})[source] = _compiled(source, "exec")
            source = code
        builtins.exec(source, globals, locals)

    def recording_eval(source: Any, globals: Any = None, locals: Any = None) -> Any:
        if isinstance(source, str):
            code = tables.setdefault(_EVALS, {})[source] = _compiled(source, "eval")
            source = code
        return builtins.eval(source, globals, locals)

    def recording_compile(
        source: Any, filename: Any, mode: Any, flags: int = 0, _inherit: Any = 0, opt: int = -1
    ) -> Any:
        if isinstance(source, str) and (filename, mode, flags, opt) == ("<string>", "eval", 0, -1):
            code = tables.setdefault(_FORWARD_REFS, {})[source] = _compiled(source, "eval")
            return code
        return builtins.compile(source, filename, mode, flags, True, opt)  # as in _compiled

    def recording_signature(cls: type) -> Any:
        import inspect

        signature = inspect.signature(cls)
        key = _init_key(cls)
        if key is not None:
            tables.setdefault(_SIGNATURES, {})[key] = str(signature)
        return signature

    regexes: dict[tuple[Any, int], tuple[Any, ...]] = {}
    with (  # re's hook first: _hooked imports dataclasses, whose imports compile patterns
        _regex_hooked(_regex_recorder(regexes)),
        _hooked(recording_exec, recording_eval, recording_compile, recording_signature),
    ):
        for info in pkgutil.walk_packages(guard.__path__, "guard."):
            if not info.name.startswith(_NOT_RECORDED):
                with suppress(ImportError):
                    importlib.import_module(info.name)
        with suppress(Exception):  # what a start compiles besides its imports: the options,
            from guard.cli.main import build_parser

            build_parser().format_help()
            build_parser(only="scan").parse_args(["scan", "--format", "json", "a.eml"])
            build_parser(only="clean").parse_args(["clean", "--dry-run", "-q", "Maildir"])
            build_parser(only="clean").parse_args(["clean", "--account", "a", "--folder", "A"])
        with suppress(Exception):  # a config file's parser, a host name's codec, a lock's name,
            # the Maildir writer's thread pool (its named tuple was the one text a `clean PATH`
            # compiled, and the first compile() of a process sets up the AST types: ~9 M)
            import concurrent.futures  # noqa: F401
            import encodings.idna  # noqa: F401
            import tomllib  # noqa: F401

            from guard.mail.lock import _file_name

            _file_name("a")
        with suppress(Exception):  # the first message's (the rules' patterns compile when used)
            from guard.clean.message import Policy, clean_message
            from guard.engine.rules_load import load_ruleset
            from guard.mail.imap.pool import WARM_MESSAGE

            clean_message(WARM_MESSAGE, load_ruleset(examples=False), Policy())
            from guard.mail.imap.common import message_id, subject_of  # what IMAP reads of it

            message_id(WARM_MESSAGE)
            subject_of(WARM_MESSAGE)
        with suppress(Exception):  # every bundled rule's pattern, whichever messages use it
            _compile_rule_patterns()
    outer = {module: marshal.dumps(table) for module, table in tables.items() if module}
    # Each pattern's arguments marshalled apart: a start unmarshals the few hundred it compiles,
    # not all ~1,400 (their opcode lists were most of the table's unmarshalling, ~2.5 ms).
    each = {key: marshal.dumps(args) for key, args in regexes.items()}
    outer[_REGEXES] = marshal.dumps((_regex_python(), each))
    return importlib.util.MAGIC_NUMBER + marshal.dumps(outer)


def _compile_rule_patterns() -> None:
    """Compile every pattern of the bundled rules now. They compile when a message first uses
    them (rules_compiled._LazyPattern), in each worker: recorded here, the table answers them
    there too, and what it holds does not depend on which rules the recording's messages met or
    on whether the build found a compiled rule file already (the lazy patterns) or parsed the
    rule files."""
    import gc

    from guard.engine.rules_compiled import _LazyPattern
    from guard.engine.rules_load import load_ruleset

    rules = load_ruleset(examples=False)
    for obj in gc.get_objects():
        if isinstance(obj, _LazyPattern):
            obj.search  # noqa: B018 - the attribute compiles it
    del rules


def _regex_recorder(
    regexes: dict[tuple[Any, int], tuple[Any, ...]],
) -> Callable[[Any, Any], Any]:
    """re._compiler.compile, recording into `regexes` what it hands _sre.compile for a str or
    bytes pattern (marshallable: its opcodes are int subclasses), when the pattern _sre.compile
    makes of that is equal to (the same code, flags and text as) the one re's compiler made."""
    _sre, _compiler = _re_internals()
    compile_pattern = _compiler.compile
    handed: list[tuple[Any, ...]] = []

    class _Sre:  # _sre as re's compiler sees it while recording
        def __getattr__(self, name: str) -> Any:
            return getattr(_sre, name)

        def compile(self, *args: Any) -> Any:
            handed.append(args)
            return _sre.compile(*args)

    def recording(pattern: Any, flags: Any = 0) -> Any:
        handed.clear()
        _compiler._sre = _Sre()
        try:
            made = compile_pattern(pattern, flags)
        finally:
            _compiler._sre = _sre
        # Flags by value: re.RegexFlag (the rule loader's) and int (a compiled rule file's
        # lazy patterns) are the same key.
        if type(pattern) in (str, bytes) and isinstance(flags, int) and len(handed) == 1:
            _text, final, code, groups, groupindex, indexgroup = handed[0]
            args = (int(final), [int(op) for op in code], int(groups), dict(groupindex),
                    tuple(indexgroup))  # fmt: skip
            if _sre.compile(pattern, *args) == made and not flags & _compiler.SRE_FLAG_DEBUG:
                regexes[(pattern, int(flags))] = args
                # Also under the pattern's own flags (re.UNICODE added to a str's): a compiled
                # rule file keeps those, and its lazy patterns compile with them.
                regexes.setdefault((pattern, int(final)), args)
        return made

    return recording


def _regex_player(part: bytes | None) -> Callable[[Any, Any], Any] | None:
    """re._compiler.compile answering from the table's part `_REGEXES` (unmarshalled when first
    needed), or None without one for this Python."""
    if part is None:
        return None
    import marshal

    _sre, _compiler = _re_internals()
    compile_pattern = _compiler.compile
    regexes: dict[tuple[Any, int], bytes] | None = None

    def precompiled(pattern: Any, flags: Any = 0) -> Any:
        nonlocal regexes
        found = regexes
        if found is None:  # one assignment: a thread compiling meanwhile sees None or the table
            found = {}
            with suppress(ValueError, EOFError, TypeError):
                python, table = marshal.loads(part)
                if python == _regex_python() and isinstance(table, dict):
                    found = table
            regexes = found
        if type(pattern) in (str, bytes):
            stored = found.get((pattern, flags))
            if isinstance(stored, bytes):
                with suppress(ValueError, EOFError, TypeError):
                    final, code, groups, groupindex, indexgroup = marshal.loads(stored)
                    return _sre.compile(pattern, final, code, groups, dict(groupindex), indexgroup)
        return compile_pattern(pattern, flags)

    return precompiled


def load(path: str | None = None) -> dict[str, bytes]:
    """{module: its marshalled part} from the build's table, or {} when it is missing, broken or
    made by another Python."""
    import importlib.util

    try:
        with open(path or DATACLASS_CODE, "rb") as handle:
            data = handle.read()
        magic = importlib.util.MAGIC_NUMBER
        if data[: len(magic)] != magic:
            return {}
        import marshal

        outer = marshal.loads(memoryview(data)[len(magic) :])  # no copy of the ~0.7 MB read
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(outer, dict) or not all(isinstance(v, bytes) for v in outer.values()):
        return {}
    return outer


@contextmanager
def installed(path: str | None = None) -> Iterator[None]:
    """While inside, dataclasses and named tuples made anywhere take their code from the build's
    table where it has the same source text."""
    outer = load(path)
    if not outer:
        yield
        return
    import builtins
    import marshal

    parts: dict[str, dict[str, Any]] = {}

    def table(key: object) -> dict[str, Any]:
        """The table's part `key` (a module's name, _EVALS, _FORWARD_REFS or _SIGNATURES); {}
        without one."""
        if not isinstance(key, str):
            return {}
        found = parts.get(key)
        if found is None:
            found = {}
            if key in outer:
                with suppress(ValueError, EOFError, TypeError):
                    loaded = marshal.loads(outer[key])
                    found = loaded if isinstance(loaded, dict) else {}
            parts[key] = found
        return found

    def precompiled_exec(source: Any, globals: Any = None, locals: Any = None) -> None:
        if isinstance(source, str):
            module = globals.get("__name__") if isinstance(globals, dict) else None
            source = table(module).get(source) or _compiled(source, "exec")
        builtins.exec(source, globals, locals)

    def precompiled_eval(source: Any, globals: Any = None, locals: Any = None) -> Any:
        if isinstance(source, str):
            source = table(_EVALS).get(source) or _compiled(source, "eval")
        return builtins.eval(source, globals, locals)

    def precompiled_compile(
        source: Any, filename: Any, mode: Any, flags: int = 0, _inherit: Any = 0, opt: int = -1
    ) -> Any:
        if isinstance(source, str) and (filename, mode, flags, opt) == ("<string>", "eval", 0, -1):
            code = table(_FORWARD_REFS).get(source)
            if code is not None:
                return code
        return builtins.compile(source, filename, mode, flags, True, opt)  # as in _compiled

    def stored_signature(cls: type) -> Any:
        # dataclasses makes the text of what this returns (str()): the stored text is that text.
        with suppress(Exception):  # a class _init_key cannot read: inspect's to answer
            text = table(_SIGNATURES).get(_init_key(cls))  # type: ignore[arg-type]
            if isinstance(text, str):
                return text
        import inspect

        return inspect.signature(cls)

    with (  # re's hook first: _hooked imports dataclasses, whose imports compile patterns
        _regex_hooked(_regex_player(outer.get(_REGEXES))),
        _hooked(precompiled_exec, precompiled_eval, precompiled_compile, stored_signature),
    ):
        yield


def imported(*modules: str, path: str | None = None) -> None:
    """Import `modules` with the build's code for their dataclasses. Failing here changes nothing:
    the caller meets the same error when it imports them again, and handles it as ever."""
    if all(name in sys.modules for name in modules):
        return
    with installed(path):
        for name in modules:
            with suppress(Exception):  # see the docstring
                __import__(name)  # as an import statement does (and -X importtime reports)
