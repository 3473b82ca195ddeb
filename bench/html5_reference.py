"""Lexbor against html5lib on every HTML part of the real corpus (issue 13; see
tests/test_html5_reference.py, which runs a fixed eighth of it).

    .venv/bin/python bench/html5_reference.py                 # shared/corpus/phishing-pot-dev
    .venv/bin/python bench/html5_reference.py --mail          # samples/ and eval/eml/ too
    .venv/bin/python bench/html5_reference.py --corpus FILE.tar.xz

Prints how many documents the two parsers read alike (with html5lib as released, and with its
whitespace handling adjusted to Chromium's), how many differ only by a named difference, and
the names of the messages that differ otherwise. No URL is printed: the corpus holds live
phishing links.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from html5_reads import (  # noqa: E402
    CORPUS,
    WHITESPACE_AFTER_BODY,
    corpus_html,
    explain,
    html5lib_reads,
    lexbor_reads,
    mail_html,
    without_after_body_space,
)


def run(name: str, parts: Iterator[tuple[str, str]]) -> bool:
    """Print the figures of one set of documents; True when nothing differs unexplained."""
    started = time.monotonic()
    figures: Counter[str] = Counter()
    unexplained: list[str] = []
    for source, html in parts:
        figures["documents"] += 1
        lexbor = lexbor_reads(html)
        figures["entries read"] += len(lexbor)
        if lexbor == html5lib_reads(html, corrected=False):
            figures["agree with html5lib as released"] += 1
        named = explain(html, {WHITESPACE_AFTER_BODY: without_after_body_space})
        if named is None:
            unexplained.append(source)
        elif not named:
            figures["agree with html5lib adjusted"] += 1
        else:
            figures["differ by: " + " + ".join(named)] += 1
    figures["differ otherwise"] = len(unexplained)
    print(f"{name} ({time.monotonic() - started:.1f} s)")
    for key, value in figures.items():
        print(f"  {value:6}  {key}")
    for source in unexplained:
        print(f"  differs: {source}")
    return not unexplained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a .tar.xz of messages")
    parser.add_argument("--mail", action="store_true", help="also samples/ and eval/eml/")
    args = parser.parse_args()
    ok = True
    if args.mail:
        ok = run("samples/ and eval/eml/", mail_html()) and ok
    if args.corpus.is_file():
        ok = run(f"corpus {args.corpus.name}", corpus_html(args.corpus)) and ok
    else:
        print(f"no corpus at {args.corpus}: skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
