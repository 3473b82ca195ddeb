"""What a change of guard does to its findings: `guard scan --format json` of the same mail by two
installs, compared message by message.

    .venv/bin/python bench/compare_scans.py --baseline ../baseline/.venv/bin/guard [PATH]
    .venv/bin/python bench/compare_scans.py --baseline ... --perf-set

PATH defaults to the real corpus (../shared/corpus/phishing-pot-dev.tar.xz, unpacked to a temp
dir and removed afterwards). `--perf-set` scans instead the 484 messages every performance change
was checked on (README, Performance: "byte-identical findings on 484 messages"): the 78 sample
message files (samples/eml/ and samples/maildir/), the fuzz regressions (tests/fuzz/regressions/)
and 200 + 200 newsletters of both benchmark corpora (bench_scan.py's URL-heavy and text-led
generators, seed 7), copied to a temp dir.

Prints how many messages' findings are byte-identical (the JSON of each message's findings, ESP
and error), how many differ by (kind, URL), findings added and removed by kind, messages whose
tracking verdict flips, and the file names of the messages involved (never a URL: the corpus's
are live phishing links).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from corpus import corpus

Key = tuple[str, str]
PERF_BENCH = 200  # newsletters of each benchmark corpus in --perf-set


def scan(install: harness.Install, path: Path) -> dict[str, dict[str, object]]:
    run = harness.measure(install.guard("scan", "--format", "json", str(path)), install.env())
    return {str(m["source"]): m for m in json.loads(run.out)["messages"]}


def keys(message: dict[str, object]) -> set[Key]:
    findings = message["findings"]
    assert isinstance(findings, list)
    return {(f["kind"], f["url"] or f["header"] or "") for f in findings}


def verdict(message: dict[str, object]) -> str:
    """What must not change: findings, ESP, error, tracking (not the message's own headers)."""
    fields = ("findings", "esp", "error", "tracking")
    return json.dumps({k: message.get(k) for k in fields}, sort_keys=True)


def compare(old: dict[str, dict[str, object]], new: dict[str, dict[str, object]]) -> int:
    differ: list[str] = []
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    now_tracking: list[str] = []
    no_longer: list[str] = []
    errors: list[str] = []
    identical = 0
    for source in sorted(old.keys() | new.keys()):
        name = Path(source).name
        a, b = old.get(source), new.get(source)
        if a is None or b is None or a["error"] != b["error"]:
            errors.append(name)
            continue
        identical += verdict(a) == verdict(b)
        before, after = keys(a), keys(b)
        if before != after:
            differ.append(name)
        added.update(kind for kind, _ in after - before)
        removed.update(kind for kind, _ in before - after)
        if b["tracking"] and not a["tracking"]:
            now_tracking.append(name)
        elif a["tracking"] and not b["tracking"]:
            no_longer.append(name)
    print(f"RESULT messages: {len(new)}; findings byte-identical in {identical}")
    print(f"findings differ by (kind, URL) in {len(differ)}")
    print(f"findings added by kind: {dict(added.most_common())}")
    print(f"findings removed by kind: {dict(removed.most_common())}")
    print(f"tracking before, not after: {len(no_longer)} {' '.join(no_longer)}")
    print(f"clean before, tracking after: {len(now_tracking)}")
    print(f"an error (or the message) in one run only: {len(errors)} {' '.join(errors)}")
    print(f"messages whose findings differ: {' '.join(differ)}")
    return len(new) - identical


def perf_set(dest: Path) -> str:
    """Write the 484 messages of --perf-set to `dest`; returns what they are."""
    dest.mkdir()
    samples = harness.ROOT / "samples"
    files = sorted((samples / "eml").glob("*.eml"))
    files += sorted(p for sub in ("cur", "new") for p in (samples / "maildir" / sub).iterdir())
    regressions = sorted((harness.ROOT / "tests" / "fuzz" / "regressions").iterdir())
    for prefix, group in (("sample", files), ("fuzz", regressions)):
        for p in group:  # a directory scan reads *.eml: Maildir file names get the suffix
            name = p.name if p.suffix == ".eml" else p.name + ".eml"
            shutil.copyfile(p, dest / f"{prefix}-{name}")
    for density, dense in (("heavy", True), ("typical", False)):
        for n, raw in enumerate(corpus(PERF_BENCH, seed=7, dense=dense)):
            (dest / f"bench-{density}-{n:03d}.eml").write_bytes(raw)
    return (
        f"{len(files)} sample message files, {len(regressions)} fuzz regressions, "
        f"{PERF_BENCH} URL-heavy and {PERF_BENCH} text-led bench newsletters"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", nargs="?", help="mail to scan (default: the real corpus)")
    ap.add_argument(
        "--baseline",
        metavar="PATH",
        required=True,
        help="the other install: its guard executable, its venv's python or the venv",
    )
    ap.add_argument("--perf-set", action="store_true", help="the 484 messages (see above)")
    ap.add_argument("--corpus", metavar="TAR", default=str(harness.CORPUS))
    ns = ap.parse_args()
    new, old = harness.installs(ns)
    with tempfile.TemporaryDirectory() as tmp:
        if ns.perf_set:
            path = Path(tmp) / "perf-set"
            print(perf_set(path))
        elif ns.path:
            path = Path(ns.path).absolute()
        elif Path(ns.corpus).exists():
            with tarfile.open(ns.corpus) as tar:
                tar.extractall(tmp, filter="data")
            path = Path(tmp)
        else:
            sys.exit(f"no PATH given and {ns.corpus} is absent")
        differ = compare(scan(old, path), scan(new, path))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
