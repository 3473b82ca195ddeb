"""Benchmark: `guard clean --account` on the local Dovecot and `guard clean PATH` on a Maildir.

    .venv/bin/python bench/bench_clean.py                  # 1,000 messages, 3 rounds
    .venv/bin/python bench/bench_clean.py --messages 3000
    .venv/bin/python bench/bench_clean.py --baseline ../baseline/.venv/bin/guard
    .venv/bin/python bench/bench_clean.py --source corpus --baseline ../baseline/.venv/bin/guard

Mail: --source bench (default): N generated newsletters (bench/corpus.py: pixels, wrapped links,
UTM parameters; 30-80 KB of HTML each; some tracking-free). --source corpus: the real corpus's
messages that track according to `guard scan --format json` of this checkout (--select-with old:
of the --baseline install), each once unless --messages repeats them.

IMAP (--what imap or both): starts the test Dovecot (tests/dovecot.py) and loads the messages
once into a folder Pristine with MULTIAPPEND. Before every measured run the server copies them
(UID COPY, in order) into a fresh folder, so each run starts from the same mail. Per round,
alternately:
  bare  - a separate process: IMAPClient (imaplib's debug trace off, as guard has it), login,
          SELECT, UID SEARCH, then per batch (guard's batching: guard/mail/imap/common.py, BATCH
          messages or BATCH_BYTES of originals, restarting every META_BATCH) the MULTIAPPEND of
          that batch's cleaned copies (flags $GuardCleaned, an INTERNALDATE) and the UID MOVE of
          their originals to the backup folder; one connection. The cleaned copies are this
          checkout's clean_message of each message, computed before the rounds;
  cold  - `python -m guard clean --account b --folder FOLDER` with an empty state: interpreter
          start, imports, TLS login, fetch, clean, MULTIAPPEND, MOVE, journal;
  warm  - the same again on the same folder and state (nothing new: what a cron run costs).
With --baseline PATH, cold and warm run for both installs in every round. Prints messages/s, the
ratio guard/bare (target <= 2) and new/old, wall and CPU seconds (client tree + Dovecot).

Planner (--what planner): only the planner of `guard clean --account`, clean_message of every
message under the default policy in-process on one core, timed per message with each install.

Local (--what local or both): `python -m guard clean MAILDIR` (default --jobs) on a fresh copy
of a Maildir of the same messages per run, alternately with the baseline; messages/s new vs old
(target >= 8x).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from corpus import corpus  # noqa: E402
from dovecot import PASSWORD, Dovecot  # noqa: E402

USER = "bench-clean"

BARE = """
import pickle, ssl, sys
from datetime import datetime, timezone
from imapclient import IMAPClient
host, port, user, pw, ca, folder, backup, plan = sys.argv[1:9]
with open(plan, "rb") as f:
    batches = pickle.load(f)
ctx = ssl.create_default_context(); ctx.load_verify_locations(cafile=ca)
c = IMAPClient(host, port=int(port), ssl=True, ssl_context=ctx, timeout=60)
c._imap.debug = 0  # as guard/mail/imap/connection.py does: no repr of every literal for the logger
c.login(user, pw)
if not c.folder_exists(backup):
    c.create_folder(backup)
c.select_folder(folder)
uids = sorted(c.search(["ALL"]))
date = datetime(2026, 1, 1, tzinfo=timezone.utc)
moved = 0
for batch in batches:
    if len(batch) == 1:
        c.append(folder, batch[0][1], (b"$GuardCleaned",), date)
    else:
        c.multiappend(folder, [{"msg": m, "flags": (b"$GuardCleaned",), "date": date}
                               for _, m in batch])
    c.move([uids[i] for i, _ in batch], backup)
    moved += len(batch)
c.logout()
print(moved)
"""


def write_config(home: Path, server: Dovecot, backup: str = "Guard/Originals") -> dict[str, str]:
    """An account "b" on `server` (config in `home`) and the environment to run guard with it
    (bench/bench_watch.py uses it too)."""
    config = home / "config.toml"
    config.write_text(
        "[accounts.b]\n"
        f'host = "127.0.0.1"\nport = {server.tls_port}\nusername = "{USER}"\n'
        f'ca_file = "{server.cert}"\npassword_env = "GUARD_BENCH_PASSWORD"\n'
        f'backup_folder = "{backup}"\ntimeout = 60\n'
    )
    os.chmod(config, 0o600)
    env = dict(os.environ)
    env.update(
        GUARD_CONFIG=str(config),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "cfg"),
        GUARD_BENCH_PASSWORD=PASSWORD,
        PYTHONPATH=str(ROOT),
    )
    return env


def crlf_size(raw: bytes) -> int:
    """RFC822.SIZE as the server counts it (CRLF line ends)."""
    return len(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def bare_plan(raws: list[bytes]) -> tuple[list[list[tuple[int, bytes]]], int]:
    """What guard would append and move, batch by batch: [[(position, cleaned copy), ...], ...]
    (empty batches dropped), and how many messages that is. Uses this checkout's planner and
    batch sizes, with guard's rule for a rewrite (changed, not skipped, not receipt-only)."""
    from guard.clean.message import Policy, clean_message
    from guard.engine.rules_load import load_ruleset
    from guard.mail.imap import common, receipts

    rules = load_ruleset(include_user=False)
    policy = Policy.from_config({})
    batches: list[list[tuple[int, bytes]]] = []

    def flush(batch: list[int]) -> None:
        out = []
        for i in batch:
            result = clean_message(raws[i], rules, policy)
            if result.skipped or receipts.receipt_only(result) or not result.changed:
                continue
            out.append((i, result.data))
        if out:
            batches.append(out)

    for start in range(0, len(raws), common.META_BATCH):
        batch: list[int] = []
        size = 0
        for i in range(start, min(start + common.META_BATCH, len(raws))):
            batch.append(i)
            size += crlf_size(raws[i])
            if len(batch) >= common.BATCH or size >= common.BATCH_BYTES:
                flush(batch)
                batch, size = [], 0
        if batch:
            flush(batch)
    return batches, sum(len(b) for b in batches)


def load_mail(ns: argparse.Namespace, who: list[harness.Install], work: Path) -> harness.Mail:
    if ns.source == "bench":
        count = ns.messages or 1000
        return harness.generated(corpus(count), "bench newsletters")
    real = harness.real_corpus(ns.corpus, ns.min_html_kb)
    by = {i.label: i for i in who}
    if ns.select_with not in by:
        raise SystemExit("--select-with old needs --baseline")
    mail = harness.tracking_mail(by[ns.select_with], real, work, f"{ns.select_with}'s")
    return harness.repeated(mail, ns.messages)


def imap_bench(ns: argparse.Namespace, who: list[harness.Install], mail: harness.Mail) -> None:
    n = len(mail)
    t0 = time.perf_counter()
    batches, expected = bare_plan(mail.raws)
    print(
        f"planned: {expected} of {n} messages to rewrite in {len(batches)} batches "
        f"({time.perf_counter() - t0:.1f} s, this checkout's clean_message)"
    )
    server = Dovecot.start()
    assert server.proc is not None
    master = server.proc.pid
    home = Path(tempfile.mkdtemp(prefix="guard-bench-clean-"))
    try:
        t0 = time.perf_counter()
        server.append(USER, "Pristine", iter(mail.raws))
        print(f"loaded {n} messages into Pristine in {time.perf_counter() - t0:.1f} s")
        plan = home / "plan.pickle"
        plan.write_bytes(pickle.dumps(batches))
        serial = [0]

        def fresh_folder() -> tuple[str, str]:
            """A new folder holding a copy of Pristine, and a new backup folder name."""
            serial[0] += 1
            folder, backup = f"Run{serial[0]}", f"Guard/Originals{serial[0]}"
            c = server.client(USER, tls=False)
            c.create_folder(folder)  # type: ignore[attr-defined]
            c.select_folder("Pristine", readonly=True)  # type: ignore[attr-defined]
            c.copy(c.search(["ALL"]), folder)  # type: ignore[attr-defined]
            c.logout()  # type: ignore[attr-defined]
            time.sleep(0.3)  # reaped before the measured run starts: not counted in its CPU
            return folder, backup

        def status(folder: str) -> int:
            c = server.client(USER, tls=False)
            try:
                return int(c.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])  # type: ignore[attr-defined]
            finally:
                c.logout()  # type: ignore[attr-defined]

        def bare() -> harness.Run:
            folder, backup = fresh_folder()
            cmd = [sys.executable, "-c", BARE, "127.0.0.1", str(server.tls_port), USER, PASSWORD,
                   str(server.cert), folder, backup, str(plan)]  # fmt: skip
            r = harness.measure(cmd, dict(os.environ), server_pid=master)
            r.extra["moved"] = int(r.out.split()[-1])
            return r

        last: dict[str, tuple[Path, dict[str, str], str]] = {}

        def cold(inst: harness.Install) -> harness.Run:
            folder, backup = fresh_folder()
            run_home = home / f"run{serial[0]}"
            run_home.mkdir()
            env = inst.env(write_config(run_home, server, backup))  # its own PYTHONPATH
            last[inst.label] = (run_home, env, folder)
            r = harness.measure(
                inst.guard("clean", "--account", "b", "--folder", folder), env, server_pid=master
            )
            r.extra["moved"] = status(backup)
            r.extra["in_folder"] = status(folder)
            return r

        def warm(inst: harness.Install) -> harness.Run:
            _home, env, folder = last[inst.label]
            return harness.measure(
                inst.guard("clean", "--account", "b", "--folder", folder), env, server_pid=master
            )

        steps: list[harness.Step] = [("bare", bare)]
        for inst in who:
            steps.append((f"cold-{inst.label}", lambda inst=inst: cold(inst)))
            steps.append((f"warm-{inst.label}", lambda inst=inst: warm(inst)))

        def show(name: str, r: harness.Run) -> str:
            text = f"+ dovecot {r.server_cpu:.2f} s CPU"
            if "moved" in r.extra:
                text += f"  {n / r.wall:5.0f} msg/s, moved {r.extra['moved']:.0f}"
                if r.extra["moved"] != expected:
                    text += f" (planned {expected}: not the same work)"
            return text

        print("IMAP, alternated per round: " + ", ".join(name for name, _ in steps))
        runs = harness.alternate(ns.rounds, steps, show=show)
        new = runs["cold-new"]
        print(f"messages          {n}")
        print(
            f"cleaned           {statistics.median(r.extra['moved'] for r in new):.0f} "
            f"(originals in backup), {statistics.median(r.extra['in_folder'] for r in new):.0f} "
            f"in the folder"
        )
        med = statistics.median(r.wall for r in new)
        print(f"guard clean       {med:.2f} s end to end = {n / med:.0f} msg/s (median)")
        print(
            f"rerun (warm)      {statistics.median(r.wall for r in runs['warm-new']):.2f} s "
            f"(nothing new)"
        )
        print(harness.summary("bare", runs["bare"]) + f", {expected} appended + moved")
        bare_walls = [r.wall for r in runs["bare"]]
        for inst in who:
            cold_runs = runs[f"cold-{inst.label}"]
            print(harness.summary(f"cold-{inst.label}", cold_runs, n))
            print(harness.summary(f"warm-{inst.label}", runs[f"warm-{inst.label}"]))
            dove = [r.server_cpu for r in cold_runs]
            print(
                f"{inst.label}: guard/bare = "
                f"{harness.ratio_text([r.wall for r in cold_runs], bare_walls)} wall, "
                f"{harness.ratio_text([r.cpu for r in cold_runs], [r.cpu for r in runs['bare']])}"
                f" client CPU; dovecot CPU {harness.spread(dove, unit=' s')} vs bare "
                f"{harness.spread([r.server_cpu for r in runs['bare']], unit=' s')}"
            )
        text = (
            f"RESULT guard clean --account ({ns.source}, {n} messages): new/bare = "
            f"{harness.ratio_text([r.wall for r in new], bare_walls)} (target <= 2)"
        )
        if len(who) == 2:
            old = runs["cold-old"]
            speedup = harness.ratio_text([r.wall for r in old], [r.wall for r in new])
            text += (
                f", old/bare = {harness.ratio_text([r.wall for r in old], bare_walls)}; "
                f"messages/s new/old = {speedup}"
            )
        print(text)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


_SUMMARY = re.compile(r"(\d+) messages: (\d+) cleaned")


def local_bench(ns: argparse.Namespace, who: list[harness.Install], mail: harness.Mail) -> None:
    n = len(mail)
    work = Path(tempfile.mkdtemp(prefix="guard-bench-clean-local-"))
    try:
        pristine = work / "pristine"
        harness.write_maildir(pristine, mail.raws)
        # Every run's copy is made before the first is timed, and none is deleted until the
        # end: on ext4 without a journal (this project's test machines) the inode allocator
        # skips inodes deleted in the last minute or five, and after removing the run before's
        # copy (~800 files with its backup) it spent ~0.3 s of CPU finding free inodes for
        # the staged copies of the run being timed.
        copies: dict[str, list[Path]] = {}
        for inst in who:
            copies[inst.label] = []
            for k in range(ns.rounds + 1):  # and the warm-up run
                target = work / f"Maildir-{inst.label}-{k}"
                shutil.copytree(pristine, target)
                copies[inst.label].append(target)

        def local(inst: harness.Install) -> harness.Run:
            target = copies[inst.label].pop()
            env = inst.env(
                XDG_DATA_HOME=str(work / f"data-{inst.label}"),
                XDG_CONFIG_HOME=str(work / "cfg"),  # no config: the default policy
            )
            env.pop("GUARD_CONFIG", None)
            r = harness.measure(inst.guard("clean", str(target)), env)
            hit = _SUMMARY.search(r.out)
            if hit:
                r.extra["messages"], r.extra["cleaned"] = int(hit.group(1)), int(hit.group(2))
            return r

        steps: list[tuple[str, Callable[[], harness.Run]]] = [
            (i.label, lambda i=i: local(i)) for i in who
        ]

        def show(_name: str, r: harness.Run) -> str:
            return f"{n / r.wall:6.0f} msg/s, cleaned {r.extra.get('cleaned', -1):.0f}"

        print(f"guard clean MAILDIR ({n} messages, default --jobs, a fresh copy each run):")
        runs = harness.alternate(ns.rounds, steps, show=show, warmup=[i.label for i in who])
        for inst in who:
            print(harness.summary(inst.label, runs[inst.label], n))
        cleaned = {i.label: {r.extra.get("cleaned") for r in runs[i.label]} for i in who}
        if len({c for s in cleaned.values() for c in s}) > 1:
            print(f"note: the installs clean different numbers of messages: {cleaned}")
        text = (
            f"RESULT guard clean PATH ({ns.source}, {n} messages): new "
            f"{harness.spread([n / r.wall for r in runs['new']], '.0f')} msg/s"
        )
        if len(who) == 2:
            new, old = runs["new"], runs["old"]
            text += (
                f", old {harness.spread([n / r.wall for r in old], '.0f')} msg/s; new/old = "
                f"{harness.ratio_text([r.wall for r in old], [r.wall for r in new])} "
                f"(per round, side by side; target >= 8x); CPU old/new "
                f"{harness.ratio_text([r.cpu for r in old], [r.cpu for r in new])}"
            )
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# The planner of `guard clean --account`: what it computes per message before any IMAP write
# (clean_message under the default policy). Run inside each install, on one core.
PLANNER = harness.probe(r"""
import json, sys, time
from pathlib import Path
files = sorted(Path(sys.argv[1]).iterdir())
rules = load_ruleset(include_user=False)
policy = Policy.from_config({})
clean_message(files[0].read_bytes(), rules, policy)  # first-use caches outside the timing
wall, cpu, changed = 0.0, 0.0, 0
for f in files:
    raw = f.read_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    result = clean_message(raw, rules, policy)
    wall += time.perf_counter() - t0
    cpu += time.process_time() - c0
    changed += bool(result.changed)
print(json.dumps({"wall": wall, "cpu": cpu, "n": len(files), "changed": changed}))
""")


def planner_bench(ns: argparse.Namespace, who: list[harness.Install], mail: harness.Mail) -> None:
    """The planner's time per message (README: "the planner: ~38 ms a message"), per install."""
    with tempfile.TemporaryDirectory(prefix="guard-bench-plan-") as tmp:
        for n, raw in enumerate(mail.raws):
            (Path(tmp) / f"{n:05d}.eml").write_bytes(raw)
        steps: list[harness.Step] = [
            (i.label, lambda i=i: harness.measure([i.python, "-c", PLANNER, tmp], i.env()))
            for i in who
        ]
        print(f"the planner (clean_message, default policy, one core) of {len(mail)} messages:")
        runs = harness.alternate(ns.rounds, steps)
        per_wall, per_cpu = {}, {}
        for i in who:
            docs = [json.loads(r.out) for r in runs[i.label]]
            per_wall[i.label] = [d["wall"] * 1e3 / d["n"] for d in docs]
            per_cpu[i.label] = [d["cpu"] * 1e3 / d["n"] for d in docs]
            print(f"{i.label}: {docs[0]['changed']} of {docs[0]['n']} messages changed")
        print("RESULT " + harness.side_by_side("the planner, per message", per_wall, ".1f", " ms"))
        print("RESULT " + harness.side_by_side("its CPU, per message", per_cpu, ".1f", " ms"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--messages", type=int, default=None, help="default: 1000 (bench), all (corpus)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--what",
        choices=("imap", "local", "both", "planner"),
        default="both",
        help="imap, local or both; planner: only the planner's time per message (no server)",
    )
    harness.add_arguments(ap, min_html_kb=0, tracking=True)
    ns = ap.parse_args()
    who = harness.installs(ns)
    # The selection's scratch Maildir is removed at the end, not before the timed runs (see
    # local_bench: deleted files slow down creating new ones for a few minutes).
    work = Path(tempfile.mkdtemp(prefix="guard-bench-clean-mail-"))
    try:
        mail = load_mail(ns, who, work)
        if not mail.raws:
            raise SystemExit("no messages")
        print(mail.describe())
        if ns.what == "planner":
            planner_bench(ns, who, mail)
        if ns.what in ("imap", "both"):
            imap_bench(ns, who, mail)
        if ns.what in ("local", "both"):
            local_bench(ns, who, mail)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
