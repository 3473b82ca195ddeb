"""What a change of guard does to its findings: `guard scan --format json` of the same mail by two
installs, compared message by message.

    .venv/bin/python bench/compare_scans.py --baseline ../baseline/.venv/bin/guard [PATH]

PATH defaults to the real corpus (../shared/corpus/phishing-pot-dev.tar.xz, unpacked to a temp
dir and removed afterwards). Prints how many messages' findings differ, findings added and
removed by kind, messages whose tracking verdict flips, and the file names of the messages
involved (never a URL: the corpus's are live phishing links).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "phishing-pot-dev.tar.xz"

Key = tuple[str, str]


def scan(guard: str, path: Path) -> dict[str, dict[str, object]]:
    out = subprocess.run(
        [guard, "scan", "--format", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    return {m["id"]: m for m in json.loads(out.stdout)["messages"]}


def keys(message: dict[str, object]) -> set[Key]:
    findings = message["findings"]
    assert isinstance(findings, list)
    return {(f["kind"], f["url"] or f["header"] or "") for f in findings}


def compare(old: dict[str, dict[str, object]], new: dict[str, dict[str, object]]) -> None:
    differ: list[str] = []
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    now_tracking: list[str] = []
    no_longer: list[str] = []
    errors: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None or a["error"] != b["error"]:
            errors.append(name)
            continue
        before, after = keys(a), keys(b)
        if before != after:
            differ.append(name)
        added.update(kind for kind, _ in after - before)
        removed.update(kind for kind, _ in before - after)
        if b["tracking"] and not a["tracking"]:
            now_tracking.append(name)
        elif a["tracking"] and not b["tracking"]:
            no_longer.append(name)
    print(f"messages: {len(new)}; findings differ in {len(differ)}")
    print(f"findings added by kind: {dict(added.most_common())}")
    print(f"findings removed by kind: {dict(removed.most_common())}")
    print(f"tracking before, not after: {len(no_longer)} {' '.join(no_longer)}")
    print(f"clean before, tracking after: {len(now_tracking)}")
    print(f"an error (or the message) in one run only: {len(errors)} {' '.join(errors)}")
    print(f"messages whose findings differ: {' '.join(differ)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", help="mail to scan (default: the real corpus)")
    ap.add_argument("--baseline", required=True, help="the other install's guard executable")
    ap.add_argument("--guard", default=str(Path(sys.executable).parent / "guard"))
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if ns.path:
            path = Path(ns.path)
        elif CORPUS.exists():
            with tarfile.open(CORPUS) as tar:
                tar.extractall(tmp, filter="data")
            path = Path(tmp)
        else:
            sys.exit(f"no PATH given and {CORPUS} is absent")
        compare(scan(ns.baseline, path), scan(ns.guard, path))


if __name__ == "__main__":
    main()
