"""No undocumented switch: every environment variable guard's code reads is named in the
documentation (README.md, docs/) or in the docstring of the module that reads it.

The variables are found in the code itself (`os.environ.get(...)`, `os.environ[...]`,
`os.getenv(...)`, `... in os.environ`, with a string literal or a module-level string constant),
so a new switch cannot be added without this test seeing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARD = ROOT / "guard"


def _is_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _name_read(node: ast.AST) -> ast.expr | None:
    """The expression naming the variable when `node` reads the environment."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value):
            return node.args[0]
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "getenv"
            and isinstance(func.value, ast.Name)
            and func.value.id == "os"
        ):
            return node.args[0]
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        return node.slice
    if isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
        return node.left
    return None


def env_reads(tree: ast.Module) -> tuple[set[str], int]:
    """The variable names a module reads, and how many reads name one computed at run time
    (an account's `password_env`, from the user's own configuration)."""
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    names, dynamic = set(), 0
    for node in ast.walk(tree):
        expr = _name_read(node)
        if expr is None:
            continue
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            names.add(expr.value)
        elif isinstance(expr, ast.Name) and expr.id in constants:
            names.add(constants[expr.id])
        else:
            dynamic += 1
    return names, dynamic


def _docs_text() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages if p.is_file())


def test_every_environment_variable_guard_reads_is_documented() -> None:
    docs = _docs_text()
    seen: dict[str, list[str]] = {}
    undocumented = []
    dynamic = 0
    for path in sorted(GUARD.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names, computed = env_reads(tree)
        dynamic += computed
        docstring = ast.get_docstring(tree) or ""
        module = str(path.relative_to(ROOT))
        for name in sorted(names):
            seen.setdefault(name, []).append(module)
            if name not in docs and name not in docstring:
                undocumented.append(f"{name} (read in {module})")
    assert not undocumented, "environment variables nobody documents:\n" + "\n".join(undocumented)
    # The finder finds what is there: the switches known today, and the one computed name.
    assert {"GUARD_CONFIG", "GUARD_DEBUG", "GUARD_NO_FORK", "XDG_CONFIG_HOME"} <= set(seen)
    assert {"GUARD_TEST_CRASH_AT", "GUARD_TEST_SIGINT_AT", "GUARD_TEST_CRASH_MARKER"} <= set(seen)
    assert dynamic == 1  # guard/mail/secrets.py: the account's own password_env


def test_the_finder_reads_every_form() -> None:
    tree = ast.parse(
        'import os\nX = "B"\n'
        'os.environ.get("A")\nos.environ.get(X, "d")\nos.getenv("C")\nos.environ["D"]\n'
        '"E" in os.environ\nos.environ.get(name)\n'
    )
    assert env_reads(tree) == ({"A", "B", "C", "D", "E"}, 1)
