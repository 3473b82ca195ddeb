"""Benchmark: `guard scan` of a local Maildir of newsletter-sized mail (target ≥ 1,000 msg/s).

Prints guard's end-to-end messages per second (the real command, `guard scan --format csv
MAILDIR`, default --jobs: all cores), its CPU split between guard's own process and its workers
and the cores it keeps busy, the per-message detection time on one core (parse + detect, median
and p95) and what the MIME split + HTML parse alone cost. A benchmark, not a test.

    .venv/bin/python bench/bench_scan.py [--messages 3000] [--runs 3] [--density typical]
    .venv/bin/python bench/bench_scan.py --baseline ../baseline/.venv/bin/guard
    .venv/bin/python bench/bench_scan.py --source corpus --baseline ../baseline/.venv/bin/guard

--density heavy (default): product-grid newsletters, ~3.3 references per KB of HTML;
--density typical: text-led newsletters at ~1.4 per KB, the density of the ones in samples/.
--source corpus: the real corpus's messages with at least --min-html-kb (20) KB of HTML, each
once (--messages N repeats them to N).
--baseline PATH: every measurement also runs with that guard install, alternately (A B A B) in
the same run, and the ratio new/old is printed (median and range of the per-round ratios).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from corpus import corpus

# Run in each install's own interpreter: per-message scan_raw on one core, then the MIME split +
# HTML parse alone (lxml's parse_html before issue 13, Lexbor's parse_document after it).
PROBE = harness.probe(r"""
import json, sys, time
from pathlib import Path
parse = getattr(guard_html, "parse_document", None)
parser = "Lexbor" if parse else "lxml"
parse = parse or guard_html.parse_html
sample = [f.read_bytes() for f in sorted(Path(sys.argv[1]).iterdir())[: int(sys.argv[2])]]
rules = load_ruleset(include_user=False)
scan_raw(sample[0], "warm", "0", rules)  # build the suffix list outside the timing
detect, cpu = [], []
for n, raw in enumerate(sample):
    t0, c0 = time.perf_counter(), time.process_time()
    scan_raw(raw, "bench", str(n), rules)
    detect.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
floor = []
for raw in sample:
    t0 = time.perf_counter()
    for html in parse_message(raw)[0].html_parts:
        parse(html)
    floor.append(time.perf_counter() - t0)
print(json.dumps({"parser": parser, "detect": detect, "cpu": cpu, "parse": floor}))
""")


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[int(len(values) * 0.95)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--messages", type=int, default=None, help="default: 3000 (bench), all (corpus)"
    )
    ap.add_argument("--runs", type=int, default=3, help="rounds of the alternated runs")
    ap.add_argument("--density", choices=("heavy", "typical"), default="heavy")
    ap.add_argument("--sample", type=int, default=500, help="messages in the one-core probe")
    harness.add_arguments(ap, min_html_kb=20)
    ns = ap.parse_args()
    from guard.engine.mime import parse_message

    try:
        from guard.engine.html import scan_html
    except ImportError:  # pragma: no cover - a checkout without it: refs are only described
        scan_html = None

    who = harness.installs(ns)
    if ns.source == "corpus":
        mail = harness.repeated(harness.real_corpus(ns.corpus, ns.min_html_kb), ns.messages)
    else:
        count = ns.messages or 3000
        mail = harness.generated(
            corpus(count, seed=7, dense=ns.density == "heavy"), f"bench corpus ({ns.density})"
        )
    if not mail.raws:
        raise SystemExit("no messages")
    with tempfile.TemporaryDirectory() as tmp:
        maildir = Path(tmp) / "Maildir"
        harness.write_maildir(maildir, mail.raws)
        refs_text = ""
        if scan_html is not None:
            htmls, refs = [], []
            for raw in mail.raws[:300]:
                parsed, _ = parse_message(raw)
                htmls.append(sum(len(h) for h in parsed.html_parts))
                refs.append(sum(len(scan_html(h)) for h in parsed.html_parts))
            refs_text = (
                f", {statistics.median(refs):.0f} URL references per message "
                f"({sum(refs) / max(1, sum(htmls) / 1024):.1f} per KB)"
            )
        print(mail.describe() + refs_text)

        # -- one core, in-process: per-message parse + detect, and the parse alone ---------------
        sample = str(min(ns.sample, len(mail)))
        probes = [
            (
                f"probe-{i.label}",
                lambda i=i: harness.measure(
                    [i.python, "-c", PROBE, str(maildir / "cur"), sample], i.env()
                ),
            )
            for i in who
        ]
        print(f"one-core probe ({sample} messages in-process), alternated:")
        got = harness.alternate(ns.runs, probes)
        parser = {}
        cores = harness.cpu_count()
        detect_med: dict[str, list[float]] = {}
        parse_med: dict[str, list[float]] = {}
        for i in who:
            docs = [json.loads(r.out) for r in got[f"probe-{i.label}"]]
            parser[i.label] = docs[0]["parser"]
            detect_med[i.label] = [statistics.median(d["detect"]) * 1e3 for d in docs]
            parse_med[i.label] = [statistics.median(d["parse"]) * 1e3 for d in docs]
            p95s = [p95(d["detect"]) * 1e3 for d in docs]
            cpus = [statistics.median(d["cpu"]) * 1e3 for d in docs]
            med = statistics.median(detect_med[i.label])
            print(
                f"{i.label}: per-message parse+detect, one core: median "
                f"{harness.spread(detect_med[i.label], unit=' ms')}, "
                f"p95 {harness.spread(p95s, unit=' ms')} (= {1e3 / med:.0f} msg/s per core); "
                f"CPU median {harness.spread(cpus, unit=' ms')}"
            )
            # What the parser alone costs: MIME splitting and the HTML tree, no detection. Its
            # rate on all cores (perfect scaling) bounds any scan built on it.
            pmed = statistics.median(parse_med[i.label])
            print(
                f"{i.label}: MIME + {parser[i.label]} parse alone, one core: median "
                f"{harness.spread(parse_med[i.label], unit=' ms')} (ceiling with zero detection "
                f"cost: {cores * 1e3 / pmed:.0f} msg/s on {cores} cores)"
            )
        if len(who) == 2:
            print(
                "one core, old/new time per message (speed-up): parse+detect "
                f"{harness.ratio_text(detect_med['old'], detect_med['new'])}, "
                f"parse alone {harness.ratio_text(parse_med['old'], parse_med['new'])}"
            )

        # -- the real command, end to end --------------------------------------------------------
        n = len(mail)
        steps = [
            (
                i.label,
                lambda i=i: harness.measure(
                    i.guard_split("scan", "--format", "csv", str(maildir)), i.env()
                ),
            )
            for i in who
        ]
        print(f"guard scan --format csv MAILDIR ({n} messages, default --jobs), alternated:")
        runs = harness.alternate(
            ns.runs,
            steps,
            show=lambda _name, r: f"{n / r.wall:6.0f} msg/s",
            warmup=[i.label for i in who],
        )
        for i in who:
            print(harness.summary(i.label, runs[i.label], n))
        # where the CPU goes: guard's own process (reading, ordering and writing the results)
        # and its scan workers; CPU / wall is how many cores the scan keeps busy
        split = {i.label: runs[i.label] for i in who}
        for what, get, unit in (
            ("CPU of guard's own process", harness.parent_cpu, " s"),
            ("CPU of its workers", lambda r: r.cpu - harness.parent_cpu(r), " s"),
            ("cores kept busy (CPU / wall)", lambda r: r.cpu / r.wall, ""),
        ):
            values = {label: [get(r) for r in rs] for label, rs in split.items()}
            print("RESULT " + harness.side_by_side(f"{what}, {n} messages", values, unit=unit))
        where = f"{ns.source}" + (f", {ns.density}" if ns.source == "bench" else "")
        new = runs["new"]
        print(
            f"RESULT guard scan of a local Maildir ({where}): median "
            f"{statistics.median(n / r.wall for r in new):.0f} msg/s over {ns.runs} runs on "
            f"{harness.cpu_count()} cores (target ≥ 1000)"
        )
        if len(who) == 2:
            old = runs["old"]
            print(
                f"RESULT new/old messages/s ({where}): "
                f"{harness.ratio_text([r.wall for r in old], [r.wall for r in new])} "
                f"(per-round, side by side; target ≥ 2x); CPU old/new "
                f"{harness.ratio_text([r.cpu for r in old], [r.cpu for r in new])}"
            )


if __name__ == "__main__":
    main()
