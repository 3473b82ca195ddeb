"""The worst legitimate HTML part, measured one by one in fresh processes: scan and clean of a
message with a 20 MB HTML part of each shape the fuzzer's `huge-html` generator builds (see
tests/fuzz/strategies.py), plus the quadratic-parse shapes `parse_is_bounded` must catch.

    .venv/bin/python bench/huge_html.py [--mb 20] [--baseline OTHER_VENV/bin/python]
    .venv/bin/python bench/huge_html.py --parse-shapes [--baseline ...]

Prints, per shape and per operation, the wall time, the peak RSS of the process (ru_maxrss, so
it includes the interpreter and the rules, ~60 MB) and what guard made of the message; then per
operation the range of times and the largest peak RSS over all shapes (README, Reliability:
"20 MB HTML parts, measured one by one in fresh processes"). With --baseline, each shape runs
with both installs in turn and the summary shows both.

--parse-shapes: Lexbor's own parse of the three shapes that make an HTML5 parse quadratic, at the
sizes README quotes ("67,000 distinct attributes take 7.9 s", ...), and parse_is_bounded's verdict.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

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

CHILD = harness.probe(r"""
import json, resource, sys, time
raw = sys.stdin.buffer.read()
rules = load_ruleset(include_user=False)
op = sys.argv[1]
start, cpu = time.perf_counter(), time.process_time()
if op == "scan":
    result = scan_raw(raw, "bench", "huge", rules)
    what = result.error or f"{len(result.findings)} findings"
else:
    result = clean_message(raw, rules)
    what = result.skipped or ("cleaned" if result.changed else "unchanged")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": rss, "what": what}))
""")


# The three shapes that make an HTML5 parse quadratic (README, "How guard reads HTML"), at the
# sizes quoted there, parsed by Lexbor alone (guard never does: parse_is_bounded catches them).
PARSE_SHAPES: dict[str, int] = {
    "distinct attributes on one tag": 67_000,
    "nested <div>s": 40_000,
    "open formatting elements (<p><b id=N>x)": 2_000,
}


def parse_shape(shape: str, count: int) -> str:
    if shape.startswith("distinct"):
        return "<p" + "".join(f" a{n}=1" for n in range(count)) + ">x</p>"
    if shape.startswith("nested"):
        return "<div>" * count + "x"
    return "".join(f"<p><b id={n}>x" for n in range(count))


PARSE_CHILD = harness.probe(r"""
import json, resource, sys, time
html = sys.stdin.buffer.read().decode()
start, cpu = time.perf_counter(), time.process_time()
tree = guard_html.parse_document(html)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
bounded = guard_html.parse_is_bounded(html)
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": rss, "bounded": bounded}))
""")


def parse_shapes(who: list[harness.Install], timeout: float) -> None:
    print("quadratic shapes, Lexbor's parse alone, one fresh process each:")
    for shape, count in PARSE_SHAPES.items():
        html = parse_shape(shape, count).encode()
        for inst in who:
            run = harness.measure(
                [inst.python, "-c", PARSE_CHILD], inst.env(), stdin=html, timeout=timeout
            )
            fig = json.loads(run.out)
            print(
                f"RESULT {inst.label}: {count:,} {shape}: {fig['seconds']:.1f} s "
                f"({fig['cpu']:.1f} s CPU), peak RSS "
                f"{fig['rss_mb']:.0f} MB (parse_is_bounded: {fig['bounded']})",
                flush=True,
            )


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
    ap.add_argument("--baseline", metavar="PATH", help="another install: every step with both")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument(
        "--parse-shapes",
        action="store_true",
        help="instead: Lexbor's parse time of the three quadratic shapes README quotes",
    )
    ns = ap.parse_args()
    who = harness.installs(ns)
    if ns.parse_shapes:
        parse_shapes(who, ns.timeout)
        return
    size = int(ns.mb * 1_000_000)
    print(f"{ns.mb:g} MB HTML parts, one fresh process each")
    columns = f"{'shape':22} {'op':5} {'install':7} {'seconds':>8} {'CPU s':>8} {'peak RSS':>9}"
    print(columns + "  outcome")
    done: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for shape in SHAPES:
        raw = message(body(shape, size))
        for op in ("scan", "clean"):
            for inst in who:
                cmd = [inst.python, "-c", CHILD, op]
                try:
                    run = harness.measure(
                        cmd, inst.env(), stdin=raw, ok=range(-64, 256), timeout=ns.timeout
                    )
                    if run.code != 0:
                        line = f"{'':8} {'':8} {'':9}  died: exit {run.code}"
                    else:
                        fig = json.loads(run.out)
                        done.setdefault((op, inst.label), []).append(
                            (fig["seconds"], fig["cpu"], fig["rss_mb"])
                        )
                        line = (
                            f"{fig['seconds']:8.2f} {fig['cpu']:8.2f} {fig['rss_mb']:7.0f}MB  "
                            f"{fig['what']}"
                        )
                except subprocess.TimeoutExpired:
                    line = f"{'>' + str(ns.timeout):>8} {'':8} {'':>9}  killed after the timeout"
                print(f"{shape:22} {op:5} {inst.label:7} {line}", flush=True)
    for op in ("scan", "clean"):
        for inst in who:
            figs = done.get((op, inst.label), [])
            if not figs:
                continue
            secs = [s for s, _, _ in figs]
            cpus = [c for _, c, _ in figs]
            print(
                f"RESULT {op:5} {inst.label}: {min(secs):.1f}-{max(secs):.1f} s "
                f"({min(cpus):.1f}-{max(cpus):.1f} s CPU) and at most "
                f"{max(r for _, _, r in figs):.0f} MB peak RSS ({len(figs)} of {len(SHAPES)} "
                f"shapes finished)"
            )


if __name__ == "__main__":
    main()
