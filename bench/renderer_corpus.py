"""The renderer proof on all 800 real messages of ../shared/corpus/phishing-pot-dev.tar.xz.

The same checks as tests/test_renderer.py (tests/renderer_proof.py), on every message instead of
the suite's fixed sample of 60: each message is scanned, cleaned with the default and the strict
policy (and cleaned again, for idempotence), and every version's HTML is rendered in one headless
Chromium with the network walled off (tests/renderer.py). Prints:

    messages rendered, requests made, gaps (by reason, with the messages' file names),
    after-strip requests to trackers, after-strict requests, leftover findings in cleaned copies,
    non-idempotent strips, failures (render timeouts, parse errors, skipped cleanings, crashes)

URLs of the corpus are live phishing links: nothing printed or written here shows more of one than
its defanged host. The archive is read in place, never unpacked.

    .venv/bin/python bench/renderer_corpus.py [--report FILE] [--limit N] [--names NAME ...]

To bench other code than the working tree's (e.g. a commit before a change), put an export of that
commit first on the path: `git archive C guard rules | tar -x -C /tmp/c` and run with
PYTHONPATH=/tmp/c (the harness itself comes from this checkout's tests/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from renderer import Renderer, RendererError, find_chromium  # noqa: E402
from renderer_proof import (  # noqa: E402
    CORPUS_ARCHIVE,
    Message,
    Proof,
    corpus_messages,
    default_rules,
    prove,
    report,
    summary,
)

import guard  # noqa: E402


def run(
    messages: list[Message], batch: int, concurrency: int, page_timeout: float
) -> tuple[Proof, list[str]]:
    """Prove every message, `batch` at a time in one Chromium; a batch during which Chromium
    fails is retried once in a fresh one, then its messages are listed as crashed."""
    rules = default_rules()
    total = Proof(cases=[], name="corpus")
    crashed: list[str] = []
    started = time.monotonic()
    executable = find_chromium()
    assert executable is not None

    def start() -> Renderer:
        return Renderer(executable, concurrency=concurrency, page_timeout=page_timeout)

    browser = start()
    try:
        for first in range(0, len(messages), batch):
            chunk = messages[first : first + batch]
            for attempt in (1, 2):
                try:
                    proof = prove(chunk, browser, rules, name="corpus", redact=True)
                    break
                except RendererError as exc:
                    print(f"  renderer failed ({exc}); attempt {attempt}", file=sys.stderr)
                    browser.close()
                    browser = start()
            else:
                crashed += [m.name for m in chunk]
                continue
            for case in proof.cases:
                case.raw = b""  # the bytes are not needed any more; the HTML is (constructs)
            total.cases += proof.cases
            total.renders += proof.renders
            total.stray = list(browser.stray)
            total.version, total.isolation = proof.version, proof.isolation
            done = first + len(chunk)
            print(
                f"  {done}/{len(messages)} messages, {total.renders} renders, "
                f"{time.monotonic() - started:.0f}s",
                file=sys.stderr,
            )
    finally:
        browser.close()
    total.seconds = time.monotonic() - started
    return total, crashed


def print_figures(doc: dict[str, Any], crashed: list[str]) -> None:
    print(f"guard: {Path(guard.__file__).parent}")
    print(f"renderer: {doc['chromium']}, {doc['isolation']}")
    print(
        f"messages rendered: {doc['with_html']} with HTML of {doc['messages']} "
        f"({doc['renders']} distinct documents rendered in {doc['seconds']:.0f}s)"
    )
    print(
        f"requests made before cleaning: {doc['requests_before']} distinct URLs, "
        f"from {doc['messages_loading_something']} messages"
    )
    print(f"gaps (requests guard did not report): {doc['gaps']} in {doc['gap_messages']} messages")
    for reason, item in doc["gaps_by_reason"].items():
        names = item["messages"]
        shown = ", ".join(names[:12]) + (f", … (+{len(names) - 12})" if len(names) > 12 else "")
        print(f"  {item['requests']:>5}  {reason}  [{len(names)} messages: {shown}]")
    print(
        f"after strip (default): {doc['requests_after_default']} requests, "
        f"{doc['tracker_requests_after_default']} to a pixel or tracker"
    )
    print(f"after strip --policy strict: {doc['requests_after_strict']} requests")
    left = doc["leftover_findings"]
    print(f"cleaned copies still finding what their policy removes: {left}")
    again = doc["not_idempotent"]
    print(
        "non-idempotent strips: "
        + ", ".join(f"{p} {len(v)}" + (f" ({', '.join(v)})" if v else "") for p, v in again.items())
    )
    print("failures:")
    print(f"  render timeouts: {doc['render_timeouts']}")
    print(f"  parse (scan) errors: {len(doc['scan_errors'])} {doc['scan_errors']}")
    for policy, names in doc["clean_skipped"].items():
        print(f"  {policy} cleaning skipped: {len(names)} {names}")
    for reason, names in doc["not_rendered"].items():
        print(f"  not rendered ({reason}): {len(names)} {names}")
    print(f"  renderer crashes: {len(crashed)} {crashed}")
    print(f"  requests attributed to no render: {doc['stray']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--report", metavar="FILE", help="write every figure and request as JSON")
    parser.add_argument("--limit", type=int, help="only the first N messages of the archive")
    parser.add_argument("--names", nargs="+", metavar="NAME", help="only these file names")
    parser.add_argument("--batch", type=int, default=40, help="messages per proof (default 40)")
    parser.add_argument("--concurrency", type=int, default=2, help="pages at once (default 2)")
    parser.add_argument("--page-timeout", type=float, default=10.0, help="seconds (default 10)")
    args = parser.parse_args()
    if find_chromium() is None:
        print("no Chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    if not CORPUS_ARCHIVE.is_file():
        print(f"corpus absent: {CORPUS_ARCHIVE}", file=sys.stderr)
        return 2
    messages = list(corpus_messages(args.names))
    if args.limit is not None:
        messages = messages[: args.limit]
    proof, crashed = run(messages, args.batch, args.concurrency, args.page_timeout)
    rules = default_rules()
    print_figures(summary(proof, rules), crashed)
    if args.report:
        doc = report(proof, rules)
        doc["renderer_crashes"] = crashed
        doc["guard"] = str(Path(guard.__file__).parent)
        Path(args.report).write_text(json.dumps(doc, indent=1), encoding="utf-8")
        print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
