"""The worst legitimate HTML part, measured one by one in fresh processes: scan and clean of a
message with a 20 MB HTML part of each shape the fuzzer's `huge-html` generator builds (see
tests/fuzz/strategies.py), plus the quadratic-parse shapes `parse_is_bounded` must catch.

    .venv/bin/python bench/huge_html.py [--mb 20] [--python OTHER_VENV/bin/python]

Prints, per shape and per operation, the wall time, the peak RSS of the process (ru_maxrss, so
it includes the interpreter and the rules, ~60 MB) and what guard made of the message.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PIXEL = b'<img src="https://pixel.example.com/o.gif" width="1" height="1">'
SHAPES: dict[str, bytes] = {
    "paragraphs": b"<p>hello world</p>\n",
    "nested-divs": b"<div>",
    "nested-tables": b"<table><tr><td>",
    "images": b'<img src="https://x.example/a.png?utm_source=z">\n',
    "links": b'<a href="https://example.com/?utm_source=a">x</a>\n',
    "one-line": b"x" * 1000,
    "open-comment": b"<!--",
    "open-formatting": b"<p><font id=N>x",  # N: a different number each time
    "distinct-attributes": b" aN=1",  # inside one tag
}

CHILD = r"""
import json, resource, sys, time
from guard.clean.message import clean_message
from guard.engine.ruleset import load_ruleset
from guard.mail.scan import scan_raw
raw = sys.stdin.buffer.read()
rules = load_ruleset(include_user=False)
op = sys.argv[1]
start = time.perf_counter()
if op == "scan":
    result = scan_raw(raw, "bench", "huge", rules)
    what = result.error or f"{len(result.findings)} findings"
else:
    result = clean_message(raw, rules)
    what = result.skipped or ("cleaned" if result.changed else "unchanged")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "what": what}))
"""


def body(shape: str, size: int) -> bytes:
    chunk = SHAPES[shape]
    if b"N" not in chunk:
        data = chunk * (size // len(chunk) + 1)
    else:
        pieces, total, n = [], 0, 0
        while total < size:
            piece = chunk.replace(b"N", str(n).encode())
            pieces.append(piece)
            total += len(piece)
            n += 1
        data = b"".join(pieces)
    data = data[:size]
    if shape == "distinct-attributes":
        data = b"<p" + data + b">"
    return PIXEL + data


def message(html: bytes) -> bytes:
    head = (
        b"From: a@b.example\nTo: c@d.example\nSubject: huge\n"
        b"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
    )
    return head + b"<html><body>" + html + b"</body></html>\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=20.0, help="HTML size per message (default 20)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter of the guard to run")
    ap.add_argument("--timeout", type=float, default=300.0)
    ns = ap.parse_args()
    size = int(ns.mb * 1_000_000)
    print(f"{ns.mb:g} MB HTML parts, one fresh process each ({ns.python})")
    print(f"{'shape':22} {'op':5} {'seconds':>8} {'peak RSS':>9}  outcome")
    for shape in SHAPES:
        raw = message(body(shape, size))
        for op in ("scan", "clean"):
            try:
                out = subprocess.run(
                    [ns.python, "-c", CHILD, op],
                    input=raw,
                    capture_output=True,
                    timeout=ns.timeout,
                    check=True,
                    cwd=ROOT,
                )
                fig = json.loads(out.stdout)
                line = f"{fig['seconds']:8.2f} {fig['rss_mb']:7.0f}MB  {fig['what']}"
            except subprocess.TimeoutExpired:
                line = f"{'>' + str(ns.timeout):>8} {'':>9}  killed after the timeout"
            except subprocess.CalledProcessError as exc:
                line = f"{'':8} {'':9}  died: exit {exc.returncode}"
            print(f"{shape:22} {op:5} {line}", flush=True)


if __name__ == "__main__":
    main()
