"""guard's dataclasses made with the code of their methods compiled at build time.

Making a dataclass compiles the source of every method it writes (__init__, __repr__, __eq__,
__hash__, and __setattr__ / __delattr__ for frozen ones): ~250 compilations for guard's
modules, a tenth of the instructions of a `guard scan` or `guard clean` start and more of a
`guard strip` one. The build (hatch_build.py) records the code objects importing guard's modules
compiles for them (`record`), keyed by module, then by source text; a start hands dataclasses the
stored code object for the same text instead of compiling the text again (`installed`).
exec(code compiled from a text) is exec(the text): the same code object, named and filed
("<string>") alike. A text the table lacks (an edited dataclass in an editable install) is
compiled as ever; a table made by another Python (its bytecode magic differs) is not used at all.
Each module's part of the table is unmarshalled only when that module makes its first
dataclass, so a command pays only for the modules it imports. Nothing is written at run time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

DATACLASS_CODE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "engine", "_compiled", "dataclasses.marshal"
)
# Not recorded: the terminal app (Textual is not in the build environment; it has its own start)
# and the entry points, which run a command when imported.
_NOT_RECORDED = ("guard.tui", "guard.__main__", "guard.cli.launch")


def record() -> bytes:
    """Build time: this Python's bytecode magic, then the marshalled {module: marshalled {source:
    code}} of what importing guard's modules compiles for their dataclasses. Call it before any
    guard module with dataclasses is imported (what is imported already is not recorded). A module
    that cannot be imported here (a dependency missing from the build environment) is recorded up
    to where its import stopped; the rest of it compiles at run time, as without a table."""
    import builtins
    import dataclasses
    import importlib
    import importlib.util
    import marshal
    import pkgutil

    import guard

    tables: dict[str, dict[str, Any]] = {}

    def recording_exec(source: Any, globals: Any = None, locals: Any = None) -> None:
        if isinstance(source, str):
            module = str((globals or {}).get("__name__", ""))
            code = compile(source, "<string>", "exec", dont_inherit=True)
            tables.setdefault(module, {})[source] = code
            source = code
        builtins.exec(source, globals, locals)

    setattr(dataclasses, "exec", recording_exec)  # noqa: B010 - dataclasses' exec, for a while
    try:
        for info in pkgutil.walk_packages(guard.__path__, "guard."):
            if not info.name.startswith(_NOT_RECORDED):
                with suppress(ImportError):
                    importlib.import_module(info.name)
    finally:
        delattr(dataclasses, "exec")
    outer = {module: marshal.dumps(table) for module, table in tables.items() if module}
    return importlib.util.MAGIC_NUMBER + marshal.dumps(outer)


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

        outer = marshal.loads(data[len(magic) :])
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(outer, dict) or not all(isinstance(v, bytes) for v in outer.values()):
        return {}
    return outer


@contextmanager
def installed(path: str | None = None) -> Iterator[None]:
    """While inside, dataclasses made anywhere take their methods' code from the build's table
    where it has the same source text."""
    outer = load(path)
    if not outer:
        yield
        return
    import builtins
    import dataclasses
    import marshal

    parts: dict[str, dict[str, Any]] = {}

    def precompiled_exec(source: Any, globals: Any = None, locals: Any = None) -> None:
        code = None
        if isinstance(source, str) and isinstance(globals, dict):
            module = globals.get("__name__")
            table = parts.get(module) if isinstance(module, str) else None
            if table is None and module in outer:
                try:
                    loaded = marshal.loads(outer[module])
                except (ValueError, EOFError, TypeError):
                    loaded = {}
                table = parts[module] = loaded if isinstance(loaded, dict) else {}
            if table:
                code = table.get(source)
        builtins.exec(source if code is None else code, globals, locals)

    setattr(dataclasses, "exec", precompiled_exec)  # noqa: B010
    try:
        yield
    finally:
        if getattr(dataclasses, "exec", None) is precompiled_exec:
            delattr(dataclasses, "exec")


def imported(*modules: str, path: str | None = None) -> None:
    """Import `modules` with the build's code for their dataclasses. Failing here changes nothing:
    the caller meets the same error when it imports them again, and handles it as ever."""
    if all(name in sys.modules for name in modules):
        return
    with installed(path):
        for name in modules:
            with suppress(Exception):  # see the docstring
                __import__(name)  # as an import statement does (and -X importtime reports)
