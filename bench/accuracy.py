"""Accuracy of detection against hand-labelled corpora: samples/ and eval/ (when present).

Per finding kind, precision and recall of detection (kind + URL or header) and of attribution
(the tracker named as well), and the false-positive rate on tracking-free messages (messages
labelled tracking = false on which guard reports any pixel, link, parameter or receipt).

    .venv/bin/python bench/accuracy.py [CORPUS_DIR ...]      # default: samples eval
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from manifest import actual_keys, expected_keys, wildcard_remote  # noqa: E402

from guard.ruleset import load_ruleset  # noqa: E402
from guard.scan import scan_refs  # noqa: E402
from guard.sources.files import message_refs  # noqa: E402

KINDS = ("pixel", "link", "param", "receipt", "remote")
TARGETS = {"pixel": 0.99, "receipt": 0.99, "link": 0.95}


def _detection(key: tuple[Any, ...]) -> tuple[Any, ...]:
    kind, _tracker, url, extra = key
    return (kind, url, extra if kind == "param" else None)


def evaluate(corpus: Path) -> tuple[dict[str, Counter[str]], int, int, list[str]]:
    manifest = tomllib.loads((corpus / "manifest.toml").read_text(encoding="utf-8"))["message"]
    rules = load_ruleset(include_user=False)
    prefix = str(corpus) + "/"
    results = {
        r.source.removeprefix(prefix): r
        for r in scan_refs(list(message_refs(str(corpus))), rules, jobs=1)
    }
    counts: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    clean_total = clean_flagged = 0
    misses: list[str] = []
    for entry in manifest:
        result = results.get(entry["source"])
        if result is None or entry.get("error") or result.error:
            continue
        expected = expected_keys(entry)
        actual = actual_keys(result.findings, wildcard_remote(entry))
        for level, exp, act in (
            ("attr", expected, actual),
            ("det", {_detection(k) for k in expected}, {_detection(k) for k in actual}),
        ):
            for kind in KINDS:
                e = {k for k in exp if k[0] == kind}
                a = {k for k in act if k[0] == kind}
                counts[kind][f"{level}_tp"] += len(e & a)
                counts[kind][f"{level}_fp"] += len(a - e)
                counts[kind][f"{level}_fn"] += len(e - a)
                if level == "det":
                    misses += [f"{entry['source']}: missed {k}" for k in e - a]
                    misses += [f"{entry['source']}: extra {k}" for k in a - e]
        if not entry.get("tracking"):
            clean_total += 1
            clean_flagged += result.tracking
    return counts, clean_total, clean_flagged, misses


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f}" if den else "  -  "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("corpora", nargs="*", default=["samples", "eval"])
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    ns = ap.parse_args()
    for name in ns.corpora:
        corpus = ROOT / name if not Path(name).is_absolute() else Path(name)
        if not (corpus / "manifest.toml").is_file():
            print(f"{name}: no manifest.toml, skipped")
            continue
        counts, clean_total, clean_flagged, misses = evaluate(corpus)
        print(f"\n{name}: detection (kind + URL) / attribution (+ tracker named)")
        print(
            f"  {'kind':<8} {'precision':>9} {'recall':>7}   {'precision':>9} {'recall':>7}  target"
        )
        for kind in KINDS:
            c = counts[kind]
            det_p = _ratio(c["det_tp"], c["det_tp"] + c["det_fp"])
            det_r = _ratio(c["det_tp"], c["det_tp"] + c["det_fn"])
            att_p = _ratio(c["attr_tp"], c["attr_tp"] + c["attr_fp"])
            att_r = _ratio(c["attr_tp"], c["attr_tp"] + c["attr_fn"])
            target = f"recall >= {TARGETS[kind]}" if kind in TARGETS else ""
            print(f"  {kind:<8} {det_p:>9} {det_r:>7}   {att_p:>9} {att_r:>7}  {target}")
        rate = clean_flagged / clean_total if clean_total else 0.0
        print(
            f"  false positives on tracking-free mail: {clean_flagged}/{clean_total} messages "
            f"= {rate:.1%} (target <= 0.5%)"
        )
        if ns.verbose:
            print("\n".join(f"    {m}" for m in misses))


if __name__ == "__main__":
    main()
