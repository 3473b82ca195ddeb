"""build_native.py: an extension that cannot be built leaves none behind, not even an older one,
so guard runs the pure-Python side instead of code compiled from an older source."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import build_native  # noqa: E402

TINY = """#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_tiny", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__tiny(void) { return PyModule_Create(&def); }
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_tiny.c").write_text(TINY)
    return tmp_path


def test_a_failed_compile_removes_the_older_extension(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tree / "pkg" / "_tiny.so"
    monkeypatch.setattr(
        build_native.sysconfig,
        "get_config_var",
        lambda name: ".so" if name == "EXT_SUFFIX" else None,
    )
    stale.write_bytes(b"built from an older source")
    monkeypatch.setenv("CC", "false")  # a compiler that always fails
    built, why = build_native.compile_extension(tree, "pkg/_tiny.c", "pkg._tiny", tree / "pkg")
    assert built is None and why.startswith("false failed")
    assert sorted(p.name for p in (tree / "pkg").iterdir()) == ["_tiny.c"]


def test_no_compiler_removes_the_older_extension_too(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        build_native.sysconfig,
        "get_config_var",
        lambda name: ".so" if name == "EXT_SUFFIX" else None,
    )
    (tree / "pkg" / "_tiny.so").write_bytes(b"built from an older source")
    monkeypatch.setenv("CC", "no-such-compiler-here")
    built, why = build_native.compile_extension(tree, "pkg/_tiny.c", "pkg._tiny", tree / "pkg")
    assert built is None and why == "no C compiler (no-such-compiler-here)"
    assert not (tree / "pkg" / "_tiny.so").exists()


@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler"
)
def test_a_compile_that_works_replaces_the_extension(tree: Path) -> None:
    built, why = build_native.compile_extension(tree, "pkg/_tiny.c", "pkg._tiny", tree / "pkg")
    assert why == "" and built is not None and built.parent == tree / "pkg"
    assert not [p for p in (tree / "pkg").iterdir() if ".building-" in p.name]
    spec = importlib.util.spec_from_file_location("_tiny", built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__name__ == "_tiny"
