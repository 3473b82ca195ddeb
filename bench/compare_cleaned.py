"""Does cleaning give the same bytes in two guard installs? `clean_message` in process, message by
message (issue 13: cleaning's CPU may go down, its output may not change).

    .venv/bin/python bench/compare_cleaned.py --baseline /work/s20/.venv/bin/python

Cleans, with this checkout and with the `--baseline` install (its `guard`, its venv's python or
the venv), under the default and the strict policy, every message of: the real corpus (`--corpus
TAR`, read in place; `--no-corpus` skips it), `samples/eml/` and `samples/maildir/`, `eval/eml/`,
and `--bench N` of bench_clean.py's newsletters (bench/corpus.py, seed 1; also URL-heavy ones,
seed 7). Each install writes, per message and policy, a SHA-256 of the cleaned bytes and of every
other field of the CleanResult; the two lists are compared line by line. It prints a count per
set and, for a difference, the message's name only (the corpus holds live phishing links), and
exits 1 if anything differs.

`bench/compare_outputs.py` compares what the command line prints (`guard strip` of the samples
among it); this compares the planner itself on many more messages, in seconds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from corpus import corpus

PROBE = r"""
import hashlib, sys
from pathlib import Path
rules = load_ruleset(include_user=False)
policies = [Policy.from_config({}), Policy.from_config({"policy": "strict"})]
for path in sorted(Path(sys.argv[1]).iterdir()):
    raw = path.read_bytes()
    for policy in policies:
        r = clean_message(raw, rules, policy)
        rest = repr((r.changed, sorted(r.removed.items()), r.rules, r.opaque_links,
                     r.security_links_kept, r.receipt_requested, r.skipped))
        digest = hashlib.sha256(r.data).hexdigest()
        other = hashlib.sha256(rest.encode()).hexdigest()
        print(path.name, policy.name, digest, other, flush=True)
"""


def message_sets(ns: argparse.Namespace) -> dict[str, list[tuple[str, bytes]]]:
    sets: dict[str, list[tuple[str, bytes]]] = {}
    samples = [
        p
        for folder in ("samples/eml", "samples/maildir", "eval/eml")
        for p in sorted((harness.ROOT / folder).rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    ]
    sets["samples/ and eval/"] = [
        (str(p.relative_to(harness.ROOT)).replace("/", "_"), p.read_bytes()) for p in samples
    ]
    if ns.bench:
        sets["bench newsletters"] = [
            (f"bench-{n:05d}", raw) for n, raw in enumerate(corpus(ns.bench))
        ] + [
            (f"heavy-{n:05d}", raw)
            for n, raw in enumerate(corpus(ns.bench // 2, seed=7, dense=True))
        ]
    if not ns.no_corpus:
        real = harness.real_corpus(ns.corpus)
        sets["real corpus"] = list(zip(real.names, real.raws, strict=True))
    return sets


def run(install: harness.Install, folder: Path) -> list[str]:
    proc = subprocess.run(
        [install.python, "-c", harness.probe(PROBE), str(folder)],
        env=install.env({"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"}),
        cwd=harness.NEUTRAL_CWD,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{install.label}: the probe failed: {proc.stderr[-2000:]}")
    return proc.stdout.splitlines()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--baseline", metavar="PATH", required=True, help="the other install")
    ap.add_argument("--corpus", metavar="TAR", default=str(harness.CORPUS))
    ap.add_argument("--no-corpus", action="store_true", help="samples/, eval/ and bench only")
    ap.add_argument("--bench", type=int, default=200, help="bench newsletters (default 200)")
    ns = ap.parse_args()
    new, old = harness.this_install(), harness.resolve_install(ns.baseline)
    print(f"new: {new.check()}\nold: {old.check()}")
    differs = False
    for what, messages in message_sets(ns).items():
        with tempfile.TemporaryDirectory(prefix="guard-cleaned-") as tmp:
            folder = Path(tmp)
            for n, (name, raw) in enumerate(messages):
                (folder / f"{n:05d}-{Path(name).name}").write_bytes(raw)
            got = {inst.label: run(inst, folder) for inst in (new, old)}
        same = sum(a == b for a, b in zip(got["new"], got["old"], strict=False))
        bad = sorted({a.split()[0] for a, b in zip(got["new"], got["old"], strict=False) if a != b})
        if len(got["new"]) != len(got["old"]) or bad:
            differs = True
            print(f"{what}: DIFFERS: {len(bad)} messages, e.g. {' '.join(bad[:10])}")
        else:
            print(f"{what}: identical: {len(messages)} messages x 2 policies ({same} results)")
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
