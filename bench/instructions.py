"""Instructions per message, counted with callgrind: in-process `scan_raw` or `clean_message` of N
messages minus the same run over none (README, Performance: "instructions per message").

    .venv/bin/python bench/instructions.py [--op scan clean] [--mail heavy typical real]
                                           [--messages 40] [--runs 1] [--baseline PATH]

Each figure is (Ir of a run over the first N messages - Ir of the same run over none) / N, where a
run is `python -c PROBE`: load the bundled rules, handle the first message once (the suffix list
and other first-use caches), then each of the N messages in turn; start-up, imports and rules
therefore cancel out. Counted instructions do not swing with the host's load the way times do;
PYTHONHASHSEED=0 keeps dict and set layouts the same from run to run.

Mail (`--mail`):
  heavy    URL-heavy bench newsletters (bench/corpus.py, bench_scan.py's seed 7)
  typical  text-led bench newsletters (bench_scan.py --density typical)
  bench    bench_clean.py's newsletters (seed 1; its `--source bench`)
  real     the real corpus: scan, parse: messages with >= 20 KB of HTML (bench_scan.py's);
           clean: the messages this checkout's `guard scan` finds tracking in (bench_clean.py's)
`--op parse`: the MIME split and the HTML parse alone, so that a scan's instructions split into
parsing and the rest (detection). Default: scan of heavy and real, clean of bench and real (the
README's rows).

--baseline PATH: the same counts with another install, and the ratio old/new. Under callgrind a
run takes a minute or more: a full default run with a baseline is ~16 runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from corpus import corpus

PROBE = r"""
import sys
from pathlib import Path
op, folder, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
files = sorted(folder.iterdir())
rules = load_ruleset(include_user=False)
if op == "scan":
    def work(raw, n):
        scan_raw(raw, "bench", str(n), rules)
elif op == "parse":  # the MIME split and the HTML parse alone: the rest of a scan is detection
    parse = getattr(guard_html, "parse_document", None) or guard_html.parse_html
    def work(raw, n):
        for html in parse_message(raw)[0].html_parts:
            parse(html)
else:
    policy = Policy.from_config({})
    def work(raw, n):
        clean_message(raw, rules, policy)
work(files[0].read_bytes(), 0)
raws = [f.read_bytes() for f in files[:count]]
for n, raw in enumerate(raws):
    work(raw, n)
"""

DEFAULT = {"scan": ("heavy", "real"), "parse": ("heavy", "real"), "clean": ("bench", "real")}


def mail_for(op: str, which: str, count: int, ns: argparse.Namespace, tmp: Path) -> harness.Mail:
    if which == "heavy":
        return harness.generated(corpus(count, seed=7, dense=True), "URL-heavy newsletters")
    if which == "typical":
        return harness.generated(corpus(count, seed=7, dense=False), "text-led newsletters")
    if which == "bench":
        return harness.generated(corpus(count), "bench_clean.py's newsletters")
    if op != "clean":
        real = harness.real_corpus(ns.corpus, 20)
    else:
        real = harness.tracking_mail(
            harness.this_install(), harness.real_corpus(ns.corpus), tmp, "this checkout's"
        )
    return harness.Mail(real.names[:count], real.raws[:count], real.what, min(count, len(real)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--op", nargs="+", choices=("scan", "parse", "clean"), default=["scan", "clean"]
    )
    ap.add_argument("--mail", nargs="+", choices=("heavy", "typical", "bench", "real"))
    ap.add_argument("--messages", type=int, default=40, help="N (default 40)")
    ap.add_argument("--runs", type=int, default=1, help="counts per figure (median; default 1)")
    ap.add_argument("--baseline", metavar="PATH", help="another install: count it too")
    ap.add_argument("--corpus", metavar="TAR", default=str(harness.CORPUS))
    ns = ap.parse_args()
    who = harness.installs(ns)
    env = {"PYTHONHASHSEED": "0"}
    for op in ns.op:
        for which in ns.mail or DEFAULT[op]:
            with tempfile.TemporaryDirectory(prefix="guard-instructions-") as tmp:
                mail = mail_for(op, which, ns.messages, ns, Path(tmp))
                if len(mail) < ns.messages:
                    print(f"note: only {len(mail)} messages in {which}")
                folder = Path(tmp) / "mail"
                folder.mkdir()
                for n, raw in enumerate(mail.raws):
                    (folder / f"{n:05d}.eml").write_bytes(raw)
                print(f"{op}, {mail.describe()}", flush=True)
                for inst in who:  # once uncounted: .pyc files of lazily imported modules
                    harness.measure(
                        [inst.python, "-c", harness.probe(PROBE), op, str(folder), "1"],
                        inst.env(env),
                    )
                per: dict[str, list[float]] = {i.label: [] for i in who}
                for r in range(ns.runs):
                    for inst in who:  # alternated, as everywhere in bench/ (here for symmetry)
                        counts = [
                            harness.instructions(inst, PROBE, [op, str(folder), str(n)], env)
                            for n in (len(mail), 0)
                        ]
                        value = (counts[0] - counts[1]) / len(mail) / 1e6
                        per[inst.label].append(value)
                        print(
                            f"  run {r + 1} {inst.label}: {counts[0] / 1e6:,.0f} M - "
                            f"{counts[1] / 1e6:,.0f} M over none = {value:.1f} M a message",
                            flush=True,
                        )
                print(
                    "RESULT "
                    + harness.side_by_side(
                        f"instructions per message, {op}, {which} ({len(mail)} messages)",
                        per,
                        ".1f",
                        " M",
                    )
                )
                if len(per["new"]) > 1:
                    print(f"  (runs differ by {max(per['new']) / min(per['new']) - 1:.0%})")


if __name__ == "__main__":
    main()
