"""guard/clean/_rewritecore.c bound to selectolax's Lexbor, where it was built: the rewrite's
loops over the tree in C. Each function here says what the Python it stands for is, and answers
None where the C is not used (not built, another selectolax than the 1.x whose layout it reads,
`GUARD_PYTHON_WALK` set, or a probe that does not read back as the reference): the caller then
runs that Python. tests/test_rewrite_core.py compares both on real mail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from guard.engine.deferred import LexborHTMLParser, LexborNode

_UNBOUND: Any = object()
_core: Any = _UNBOUND

# What the serialiser must write as selectolax's `.html` does: escapes in text and attributes,
# raw text, void elements, foreign elements, a template's content, a comment, non-ASCII text.
_PROBE = (
    "<!doctype html><!--a--><html><head><style>p>a{x:'&'}</style></head><body a=\"&quot;'&amp;\">"
    "t&lt;&amp;\u00e9\u2603<br><img src='x?a=1&b=2' alt=\"\u00a0\"><svg><path d='m'/><style>"
    "&lt;</style></svg><template><p>in</template><math><mi>x</mi></math><pre>\n\nq</pre>"
    "<textarea>\n&lt;</textarea><xmp><b></xmp><noscript><b>n</b></noscript></body></html><!--z-->"
)


def bound() -> Any:
    """The extension, bound and probed once per process; None where the Python runs."""
    global _core
    if _core is _UNBOUND:
        _core = _bind()
    return _core


def _bind() -> Any:
    if os.environ.get("GUARD_PYTHON_WALK"):  # the reference, for benchmarks and doubt
        return None
    try:
        import selectolax
        import selectolax.lexbor as lexbor

        from guard.clean import _rewritecore  # type: ignore[attr-defined]

        if not selectolax.__version__.startswith("1."):
            return None
        _rewritecore.bind(lexbor.__file__)
        if not _probe_agrees(_rewritecore):
            return None
    except Exception:  # noqa: BLE001 - any doubt about the extension: the Python runs
        return None
    return _rewritecore


def _probe_agrees(core: Any) -> bool:
    tree = LexborHTMLParser(_PROBE)
    root = tree.root
    node = root.parent.child if root is not None and root.parent is not None else None
    pieces = 0
    while node is not None:
        if node.tag != "-doctype":
            if core.serialize(node) != (node.html or "").encode("utf-8"):
                return False
            pieces += 1
        node = node.next
    return pieces == 3


def serialized(node: LexborNode) -> bytes | None:
    """`node.html` as the UTF-8 bytes Lexbor wrote (which `.html` decodes, a byte that is not
    UTF-8 replaced); None where the C is not used or cannot write the node."""
    core = bound()
    if core is None:
        return None
    try:
        data: bytes = core.serialize(node)
    except (TypeError, ValueError):
        return None
    return data


PlainReader = Callable[
    [list[Any], int, bool, dict[str, str | None], dict[str, str], set[str], set[str]],
    tuple[int, list[tuple[LexborNode, str]]],
]
"""(records, start, removed_any, targets, seen, loads, written) -> (the index of the first record
left to Python, the links to edit as (node, target)): see `plain_records`."""


def plain_records(rewriter: object) -> PlainReader | None:
    """The rewrite's loop over plain links and images (guard/clean/html.py `_Document.rewrite`,
    `rewrite_plain_image`, for a document without a base) in C, for the planner: its
    `link_target` and the KEEP answers of its `load_action`, read from its `plain_tables`
    (load_names, kept_loads, the decisions by raw, rewritten_links). None where the Python runs
    (no extension, or another rewriter)."""
    core = bound()
    tables = getattr(rewriter, "plain_tables", None)
    if core is None or tables is None:
        return None
    load_names, kept_loads, decisions, rewritten = tables()
    plain = core.plain

    def read(
        records: list[Any],
        start: int,
        removed_any: bool,
        targets: dict[str, str | None],
        seen: dict[str, str],
        loads: set[str],
        written: set[str],
    ) -> tuple[int, list[tuple[LexborNode, str]]]:
        edits: list[tuple[LexborNode, str]] = []
        found: int = plain(
            records, start, removed_any, targets, seen, loads, written, load_names,
            kept_loads, decisions, rewritten, edits,
        )  # fmt: skip
        return found, edits

    return read


def text_links(rewriter: object) -> Callable[[str, Iterable[str]], str] | None:
    """guard/clean/message.py's `rewrite_text(text, rewriter.link_target, urls)` in C, for the
    planner (its `plain_tables`); None where the Python runs."""
    core = bound()
    tables = getattr(rewriter, "plain_tables", None)
    if core is None or tables is None:
        return None
    _, _, decisions, rewritten = tables()
    text: Callable[[str, Iterable[str], object, object], str] = core.text
    return lambda part, urls: text(part, urls, decisions, rewritten)


def holds_tag(records: list[Any], tag_id: int) -> bool | None:
    """guard/clean/nodes.py `holds_base`'s loop in C: is one of the records that are nodes an
    element of Lexbor's `tag_id`? None where the C is not used (the loop runs in Python)."""
    core = bound()
    if core is None:
        return None
    try:
        found: bool = core.holds_tag(records, tag_id)
    except (TypeError, ValueError):
        return None
    return found
