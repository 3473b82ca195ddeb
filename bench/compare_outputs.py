"""Are two guard installs' outputs byte-identical? (issue 15, "Done when")

    .venv/bin/python bench/compare_outputs.py --baseline ../before15/.venv/bin/python

Runs this checkout's guard and the `--baseline` install (its `guard`, its venv's python or the
venv) as `PYTHON -m guard`, one after the other, on the very same input paths, each with an empty
HOME and XDG directories of its own, and compares what each prints, byte for byte:

- on `samples/` and on the real corpus (`--corpus TAR`, unpacked to a temp dir and removed
  afterwards; `--no-corpus` skips it): `guard scan` (text, text `-v`, `--format json`,
  `--format csv`) and `guard explain` of every message;
- `guard rules list`;
- `guard strip` (default and `--policy strict`) of every sample message: each file of
  `samples/eml/` and `samples/maildir/` on stdin (`samples/mbox` holds several messages, and
  strip cleans one; its messages are covered by the scans and explain above).

Each output is stdout, then a line with the exit status and stderr; the strip outputs are
compared file by file and reported as one line per policy. It prints per output `identical` or
`DIFFERS` with the first differing lines (URLs masked in the corpus's: they are live phishing
links), and exits 1 if anything differs.

Normalised, and nothing else: the path of each install's bundled rules directory, which
`guard explain` prints after each rule name and which is where that install lives, not what it
does, is replaced by `<bundled rules>` in every output. Input paths are not normalised: both
installs read the same files by the same absolute paths. Nothing guard prints here holds a
timing.
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

SAMPLES = harness.ROOT / "samples"
RULES_PLACEHOLDER = b"<bundled rules>"


class Runner:
    """One install with an empty HOME of its own; `run` returns its normalised output."""

    def __init__(self, install: harness.Install, home: Path) -> None:
        self.install = install
        home.mkdir(parents=True, exist_ok=True)
        self.env = install.env(
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_STATE_HOME=str(home / "state"),
            XDG_CACHE_HOME=str(home / "cache"),
            TZ="UTC",
        )
        proc = subprocess.run(
            [install.python, "-c", harness.probe("print(bundled_rules_dir())")],
            env=self.env,
            cwd=harness.NEUTRAL_CWD,
            capture_output=True,
            check=True,
        )
        self.rules_dir = proc.stdout.strip()
        if not self.rules_dir:
            raise SystemExit(f"{install.label}: cannot find its bundled rules directory")

    def run(self, *args: str, stdin: bytes = b"") -> bytes:
        proc = subprocess.run(
            self.install.guard(*args),
            env=self.env,
            cwd=harness.NEUTRAL_CWD,
            input=stdin,
            capture_output=True,
            timeout=1800,
        )
        out = proc.stdout + b"\n--- exit %d, stderr:\n" % proc.returncode + proc.stderr
        return out.replace(self.rules_dir, RULES_PLACEHOLDER)


def first_difference(old: bytes, new: bytes, mask: bool, lines: int = 12) -> str:
    a = old.decode("utf-8", "replace").splitlines()
    b = new.decode("utf-8", "replace").splitlines()
    diff = list(difflib.unified_diff(a, b, "baseline", "this checkout", n=1, lineterm=""))
    shown = diff[:lines]
    if len(diff) > lines:
        shown.append(f"... ({len(diff) - lines} more diff lines)")
    text = "\n".join(f"      {line[:300]}" for line in shown)
    if not diff:  # same lines, different bytes (line ends, a trailing newline)
        text = f"      same lines, different bytes ({len(old)} vs {len(new)} bytes)"
    return harness.mask_urls(text) if mask else text


def compare(
    name: str, old: bytes, new: bytes, *, mask: bool, keep: Path | None, failed: list[str]
) -> None:
    if keep:
        for label, data in (("baseline", old), ("new", new)):
            (keep / label).mkdir(parents=True, exist_ok=True)
            (keep / label / name.replace("/", "_").replace(" ", "_")).write_bytes(data)
    if old == new:
        print(f"  identical  {name} ({len(new):,} bytes)", flush=True)
        return
    failed.append(name)
    print(f"  DIFFERS    {name}\n{first_difference(old, new, mask)}", flush=True)


def outputs_on(
    label: str, path: Path, old: Runner, new: Runner, mask: bool, keep: Path | None
) -> list[str]:
    failed: list[str] = []
    print(f"{label}: {path}", flush=True)
    for args in (["scan"], ["scan", "-v"], ["scan", "--format", "json"],
                 ["scan", "--format", "csv"], ["explain"]):  # fmt: skip
        name = f"{label}: guard {' '.join(args)}"
        compare(name, old.run(*args, str(path)), new.run(*args, str(path)),
                mask=mask, keep=keep, failed=failed)  # fmt: skip
    return failed


def sample_messages() -> list[Path]:
    files = sorted((SAMPLES / "eml").glob("*.eml"))
    files += sorted(p for sub in ("cur", "new") for p in (SAMPLES / "maildir" / sub).iterdir())
    return files


def strip_outputs(old: Runner, new: Runner, keep: Path | None, jobs: int) -> list[str]:
    failed: list[str] = []
    messages = sample_messages()
    print(f"guard strip of {len(messages)} sample messages", flush=True)
    for policy in ("default", "strict"):
        pairs: list[tuple[Path, bytes, bytes]] = []

        def one(msg: Path, policy: str = policy) -> tuple[Path, bytes, bytes]:
            raw = msg.read_bytes()
            args = ["strip", "--policy", policy]
            return msg, old.run(*args, stdin=raw), new.run(*args, stdin=raw)

        with ThreadPoolExecutor(jobs) as pool:
            pairs = list(pool.map(one, messages))
        differ = [(m, a, b) for m, a, b in pairs if a != b]
        if keep:
            for m, a, b in pairs:
                for side, data in (("baseline", a), ("new", b)):
                    d = keep / side / f"strip-{policy}"
                    d.mkdir(parents=True, exist_ok=True)
                    (d / m.name).write_bytes(data)
        total = sum(len(b) for _, _, b in pairs)
        name = f"guard strip --policy {policy}"
        if not differ:
            print(f"  identical  {name}: all {len(pairs)} messages ({total:,} bytes)", flush=True)
            continue
        failed.append(name)
        print(f"  DIFFERS    {name}: {len(differ)} of {len(pairs)} messages", flush=True)
        for m, a, b in differ[:3]:
            print(f"    {m.relative_to(SAMPLES)}\n{first_difference(a, b, mask=False)}")
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--baseline",
        metavar="PATH",
        required=True,
        help="the other install: its `guard` executable, its venv's python, or the venv",
    )
    ap.add_argument("--corpus", metavar="TAR", default=str(harness.CORPUS))
    ap.add_argument("--no-corpus", action="store_true", help="samples/ only")
    ap.add_argument("--keep", metavar="DIR", help="also write every output to DIR/{baseline,new}/")
    ap.add_argument("--jobs", type=int, default=2, help="strip processes at a time (default 2)")
    ns = ap.parse_args(argv)
    installs = harness.installs(ns)
    keep = Path(ns.keep) if ns.keep else None
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="guard-compare-") as tmp:
        # a HOME each, empty: nothing one install writes there can reach the other
        new, old = (Runner(inst, Path(tmp) / f"home-{inst.label}") for inst in installs)
        print(
            f"normalised: {old.rules_dir.decode()} (baseline) and {new.rules_dir.decode()} "
            f"(this checkout) -> {RULES_PLACEHOLDER.decode()}",
            flush=True,
        )
        failed += outputs_on("samples", SAMPLES, old, new, mask=False, keep=keep)
        compare("guard rules list", old.run("rules", "list"), new.run("rules", "list"),
                mask=False, keep=keep, failed=failed)  # fmt: skip
        failed += strip_outputs(old, new, keep, ns.jobs)
        if not ns.no_corpus:
            corpus = Path(ns.corpus)
            if not corpus.exists():
                raise SystemExit(f"{corpus} is absent (see shared/corpus/README.md; --no-corpus)")
            unpacked = Path(tmp) / "corpus"
            with tarfile.open(corpus) as tar:
                tar.extractall(unpacked, filter="data")
            count = sum(1 for p in unpacked.rglob("*") if p.is_file())
            failed += outputs_on(f"corpus ({count} messages)", unpacked, old, new, True, keep)
    if failed:
        print(f"{len(failed)} output(s) differ: {'; '.join(failed)}")
        return 1
    print("every output is byte-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
