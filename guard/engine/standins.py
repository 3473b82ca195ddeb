"""Stand-ins for modules another module imports but reads only in calls guard never (or rarely)
makes: `WhenUsed`, in sys.modules only while that one module is imported (`standing_in`).

Plain standard library, nothing heavy: guard.cli.launch uses it before any command's imports
(urllib.parse without ipaddress), guard.engine.deferred for selectolax and email.utils,
guard.mail.forking for multiprocessing, guard.mail.threads for concurrent.futures.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class WhenUsed(types.ModuleType):
    """A stand-in for the module of its name: that module, imported when an attribute is read."""

    def __getattr__(self, name: str) -> Any:
        import importlib

        if sys.modules.get(self.__name__) is self:  # read while still standing in: go, then import
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


class _LoggerWhenUsed:
    """`logging.getLogger(name)`, made when one of its attributes is first read."""

    __slots__ = ("_name",)

    def __init__(self, name: str | None) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        import logging

        return getattr(logging.getLogger(self._name), attribute)


class LoggingWhenUsed(WhenUsed):
    """`logging` for a module that only asks it for a logger at import (selectolax's node.pxi,
    concurrent.futures)."""

    def getLogger(self, name: str | None = None) -> Any:
        return _LoggerWhenUsed(name)


@contextmanager
def standing_in(*stand_ins: types.ModuleType) -> Iterator[None]:
    """Inside, each stand-in is what `import` finds for its name (unless that module is imported
    already); after, the names are as before."""
    placed = [m for m in stand_ins if m.__name__ not in sys.modules]
    for module in placed:
        sys.modules[module.__name__] = module
    try:
        yield
    finally:
        for module in placed:
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]
