"""guard/_process.c: the small-object arenas of the command line's processes come with their pages
present (`populate_arenas`, called first thing by guard.cli.launch): the page faults it saves are
traps the kernel counts in perf's `page-faults` event, not in getrusage (a populated page counts
as a fault there too), so docs/performance.md gives them from `perf stat`; here, that the
allocator is the one in use where it should be, and that memory taken and given back through it
behaves."""

from __future__ import annotations

import sys

import pytest

from tests.fresh_python import python_output

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MAP_POPULATE")


def _built() -> None:
    try:
        from guard import _process  # type: ignore[attr-defined,unused-ignore]  # noqa: F401
    except ImportError:
        pytest.skip("guard/_process.c was not built here (no C compiler)")


def test_the_command_line_populates_its_arenas_and_a_plain_import_does_not() -> None:
    _built()
    probe = "import {module}\nfrom guard import _process\nprint(_process.arenas_populated())"
    assert python_output(probe.format(module="guard.cli.launch")) == "True"
    assert python_output(probe.format(module="guard.engine.detect")) == "False"


# Arenas filled, emptied (munmap'ed by the allocator, those taken before the call too) and taken
# again, ~200 MB in all, the objects' values checked each round.
CHURN = """
from guard import _process
early = [(i, -i) for i in range(200_000)]  # arenas taken before the call
assert _process.populate_arenas() and _process.arenas_populated()
for round in range(5):
    kept = [(i, str(i)) for i in range(300_000)]
    assert sum(len(s) for _, s in kept) == sum(len(str(i)) for i in range(300_000))
    del kept
del early
again = [(i, -i) for i in range(200_000)]
print(sum(a + b for a, b in again))
"""


def test_memory_through_populated_arenas_is_taken_and_given_back_alike() -> None:
    _built()
    assert python_output(CHURN) == "0"
