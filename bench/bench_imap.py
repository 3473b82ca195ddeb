"""IMAP benchmark: guard cold / warm scan against a bare imapclient BODY.PEEK[] fetch.

    .venv/bin/python bench/bench_imap.py                 # 3,000 messages, 3 rounds
    .venv/bin/python bench/bench_imap.py --messages 20000 --rounds 1
    .venv/bin/python bench/bench_imap.py --baseline ../baseline/.venv/bin/guard
    .venv/bin/python bench/bench_imap.py --source corpus --messages 3000 --baseline ...

Starts the test Dovecot (tests/dovecot.py) in a temp dir, loads N messages (10 % with a 200 KB
attachment) with MULTIAPPEND, then per round, alternately:
  bare  - a separate Python process: IMAPClient login, EXAMINE, UID SEARCH, UID FETCH BODY.PEEK[]
          of every message in batches of 100 (one connection, one core);
  cold  - `python -m guard scan --account bench --summary` with an empty state;
  warm  - the same again with the state the cold run left (nothing new on the server).
With --baseline PATH, cold and warm run for both installs in every round (bare, new cold, new
warm, old cold, old warm), each install with its own state. All run end to end (interpreter
start, imports, TLS login) over TLS on 127.0.0.1. Prints the times, cold/bare and warm/cold ratios
(median and range of the per-round ratios), the ratios new/old, and the peak memory of all guard
processes together (RSS summed over the process tree, and PSS, which counts shared pages once),
and how a cold scan's CPU splits into detection (bench_scan.py's in-process probe, scan_raw of
every message on one core) and everything else.

--source bench (default): newsletter-style messages generated here (25-60 table rows, 20-80 KB);
--source corpus: the real corpus's messages with at least --min-html-kb (20) KB of HTML, each
once unless --messages repeats them, loaded the same way (every tenth one, the first included,
wrapped in a multipart/mixed with a 200 KB attachment).

The machine may be shared: wall times then vary a lot, so each run also reports CPU seconds - of
the client's whole process tree (user + system) and of Dovecot (its exited imap processes, as
counted by the master) - which move much less. Note that the bare client pays for imaplib's
debug trace, which imapclient switches on at level 5 (the repr of every literal, twice); guard
switches it off (guard/mail/imap/connection.py), so per byte fetched guard's client side is cheaper.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from bench_scan import PROBE  # noqa: E402
from dovecot import Dovecot  # noqa: E402

USER = "bench"
WORDS = [
    "offer",
    "sale",
    "new",
    "season",
    "style",
    "discover",
    "collection",
    "free",
    "shipping",
    "members",
    "exclusive",
    "update",
    "weekly",
    "news",
    "read",
    "more",
    "story",
    "today",
    "best",
    "price",
    "limited",
    "time",
    "your",
    "account",
    "event",
    "tickets",
    "travel",
]


def newsletter(i: int, rng: random.Random) -> bytes:
    sender_domain = rng.choice(
        ["shop.example.com", "news.brand.example", "mail.store.example.co.uk", "deals.example.net"]
    )
    m = EmailMessage()
    m["From"] = f"Brand {i % 40} <news{i % 40}@{sender_domain}>"
    m["To"] = "me@example.org"
    m["Subject"] = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} #{i}"
    m["Date"] = f"Mon, {1 + i % 28:02d} Jan 2025 10:{i % 60:02d}:00 +0000"
    m["Message-ID"] = f"<bench-{i}@{sender_domain}>"
    m["List-Unsubscribe"] = f"<https://{sender_domain}/unsub/{i}>"
    rows = []
    for r in range(rng.randint(25, 60)):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
        esp = rng.choice(
            [
                f"https://click.{sender_domain}/ls/click?upn=abc{i}x{r}",
                f"https://links.example-esp.com/c/{i}/{r}?u=https%3A%2F%2F{sender_domain}%2Fp%2F{r}",
                f"https://{sender_domain}/product/{r}?utm_source=newsletter&utm_medium=email"
                f"&utm_campaign=c{i}",
                f"https://u{i % 9}.ct.sendgrid.net/ls/click?upn=xyz{i}{r}",
            ]
        )
        rows.append(
            f'<tr><td style="padding:10px;font-family:Arial,sans-serif;font-size:14px">'
            f'<table width="100%" cellpadding="0" cellspacing="0"><tr><td>'
            f'<img src="https://cdn.{sender_domain}/img/{i}/{r}.jpg" width="560" height="200" '
            f'alt="" style="display:block"></td></tr><tr><td><p>{text}</p>'
            f'<a href="{esp}" style="color:#0066cc">Read more</a></td></tr></table></td></tr>'
        )
    pixel = rng.choice(
        [
            f"https://open.sendgrid.net/wf/open?upn=open{i}",
            f"https://{sender_domain}/track/open.gif?id={i}&u=me",
            f"https://t.example-esp.com/o/{i}.gif",
        ]
    )
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0}"
        ".btn{background:#06c}</style></head><body><center>"
        '<table width="600" cellpadding="0" cellspacing="0" border="0">'
        + "".join(rows)
        + f'</table><img src="{pixel}" width="1" height="1" alt="" style="display:none">'
        "</center></body></html>"
    )
    plain = (
        " ".join(rng.choice(WORDS) for _ in range(300)) + f"\nhttps://{sender_domain}/?utm_source=x"
    )
    m.set_content(plain)
    m.add_alternative(html, subtype="html")
    if i % 10 == 0:
        m.add_attachment(
            rng.randbytes(200 * 1024), maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    if i % 50 == 0:
        m["Disposition-Notification-To"] = m["From"]
    return m.as_bytes()


BARE = """
import ssl, sys, time
from imapclient import IMAPClient
host, port, user, pw, ca = sys.argv[1:6]
ctx = ssl.create_default_context(); ctx.load_verify_locations(cafile=ca)
c = IMAPClient(host, port=int(port), ssl=True, ssl_context=ctx, timeout=60)
c.login(user, pw)
c.select_folder("INBOX", readonly=True)
uids = c.search(["ALL"])
n = 0
for i in range(0, len(uids), 100):
    for uid, data in c.fetch(uids[i:i + 100], [b"BODY.PEEK[]"]).items():
        n += len(data[b"BODY[]"])
c.logout()
print(len(uids), n)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--messages", type=int, default=None, help="default: 3000 (bench), all (corpus)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=None, help="guard --connections")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    harness.add_arguments(ap, min_html_kb=20)
    ns = ap.parse_args()
    who = harness.installs(ns)

    rng = random.Random(42)
    if ns.source == "corpus":
        mail = harness.repeated(harness.real_corpus(ns.corpus, ns.min_html_kb), ns.messages)
        count = len(mail)

        def messages() -> Iterator[bytes]:
            for i, raw in enumerate(mail.raws):
                yield harness.with_attachment(raw, 200, rng, i) if i % 10 == 0 else raw

        what = mail.what + ", every tenth with a 200 KB attachment"
    else:
        count = ns.messages or 3000

        def messages() -> Iterator[bytes]:
            for i in range(count):
                yield newsletter(i, rng)

        what = "bench newsletters, every tenth with a 200 KB attachment"
    if not count:
        raise SystemExit("no messages")

    server = Dovecot.start()
    assert server.proc is not None
    master = server.proc.pid
    work = Path(tempfile.mkdtemp(prefix="guard-bench-"))
    try:
        t0 = time.perf_counter()
        total_bytes = 0

        kept = work / "mail"  # the same messages as files, for the detection probe
        kept.mkdir()

        def counted() -> Iterator[bytes]:
            nonlocal total_bytes
            for n, raw in enumerate(messages()):
                total_bytes += len(raw)
                (kept / f"{n:06d}.eml").write_bytes(raw)
                yield raw

        server.append(USER, "INBOX", counted(), batch=200)
        print(
            f"loaded {count} messages ({what}), {total_bytes / 1e6:.0f} MB "
            f"(avg {total_bytes / count / 1024:.0f} KB) in {time.perf_counter() - t0:.1f} s"
        )
        config = work / "config.toml"
        config.write_text(
            "[accounts.bench]\n"
            f'host = "127.0.0.1"\nport = {server.tls_port}\nusername = "{USER}"\n'
            f'ca_file = "{server.cert}"\npassword_env = "BENCH_PW"\ntimeout = 120\n'
        )
        os.chmod(config, 0o600)
        base = dict(os.environ)
        base.update(
            BENCH_PW=server.password,
            GUARD_CONFIG=str(config),
            XDG_CONFIG_HOME=str(work / "cfg"),
        )
        bare_cmd = [sys.executable, "-c", BARE, "127.0.0.1", str(server.tls_port), USER,
                    server.password, str(server.cert)]  # fmt: skip
        guard_args = ["scan", "--account", "bench", "--summary"]
        if ns.connections:
            guard_args += ["--connections", str(ns.connections)]

        def bare() -> harness.Run:
            return harness.measure(bare_cmd, base, server_pid=master)

        def scan(inst: harness.Install, cold: bool) -> harness.Run:
            data = work / f"data-{inst.label}"
            if cold:
                shutil.rmtree(data, ignore_errors=True)
            env = inst.env(base, XDG_DATA_HOME=str(data))
            return harness.measure(inst.guard(*guard_args), env, memory=True, server_pid=master)

        steps: list[harness.Step] = [("bare", bare)]
        for inst in who:
            steps.append((f"cold-{inst.label}", lambda inst=inst: scan(inst, True)))
            steps.append((f"warm-{inst.label}", lambda inst=inst: scan(inst, False)))

        def show(name: str, r: harness.Run) -> str:
            mem = f"  peak RSS {r.rss_kb / 1024:.0f} MB (PSS {r.pss_kb / 1024:.0f} MB)"
            return f"+ dovecot {r.server_cpu:.2f} s CPU" + (mem if name != "bare" else "")

        print(
            "alternated per round: " + ", ".join(name for name, _ in steps)
            + " (bare runs once first, not counted, to warm the caches)"
        )  # fmt: skip
        runs = harness.alternate(ns.rounds, steps, show=show, warmup=["bare"])

        bare_walls = [r.wall for r in runs["bare"]]
        figures: dict[str, object] = {
            "messages": count,
            "mbytes": round(total_bytes / 1e6),
            "bare_s": round(statistics.median(bare_walls), 2),
            "bare_msgs_per_s": round(count / statistics.median(bare_walls)),
            "bare_cpu_client_s": round(statistics.median(r.cpu for r in runs["bare"]), 2),
            "bare_cpu_dovecot_s": round(statistics.median(r.server_cpu for r in runs["bare"]), 2),
        }
        print(harness.summary("bare", runs["bare"], count))
        for inst in who:
            cold, warm = runs[f"cold-{inst.label}"], runs[f"warm-{inst.label}"]
            cw, ww = [r.wall for r in cold], [r.wall for r in warm]
            prefix = "" if inst.label == "new" else "old_"
            figures.update(
                {
                    f"{prefix}cold_s": round(statistics.median(cw), 2),
                    f"{prefix}warm_s": round(statistics.median(ww), 2),
                    f"{prefix}cold_over_bare": round(
                        statistics.median(harness.paired(cw, bare_walls)), 2
                    ),
                    f"{prefix}warm_over_cold": round(statistics.median(harness.paired(ww, cw)), 3),
                    f"{prefix}peak_rss_mb": round(max(r.rss_kb for r in cold + warm) / 1024),
                    f"{prefix}peak_pss_mb": round(max(r.pss_kb for r in cold + warm) / 1024),
                    f"{prefix}cold_cpu_client_s": round(statistics.median(r.cpu for r in cold), 2),
                    f"{prefix}cold_cpu_dovecot_s": round(
                        statistics.median(r.server_cpu for r in cold), 2
                    ),
                    f"{prefix}warm_cpu_client_s": round(statistics.median(r.cpu for r in warm), 2),
                    f"{prefix}warm_cpu_dovecot_s": round(
                        statistics.median(r.server_cpu for r in warm), 2
                    ),
                }
            )
            print(harness.summary(f"cold-{inst.label}", cold, count))
            print(harness.summary(f"warm-{inst.label}", warm))
            print(
                f"{inst.label}: cold/bare = {harness.ratio_text(cw, bare_walls)} (target <= 1.3), "
                f"warm = {harness.spread(ww, unit=' s')} (target <= 0.5), warm/cold = "
                f"{figures[prefix + 'warm_over_cold']:.1%}, peak memory of all guard processes: "
                f"RSS {figures[prefix + 'peak_rss_mb']} MB, PSS {figures[prefix + 'peak_pss_mb']} "
                f"MB (target <= 200)"
            )
            floor = (
                float(figures[f"{prefix}cold_cpu_client_s"])  # type: ignore[arg-type]
                + float(figures[f"{prefix}cold_cpu_dovecot_s"])  # type: ignore[arg-type]
            ) / harness.cpu_count()
            print(
                f"{inst.label}: CPU (median): guard cold {figures[prefix + 'cold_cpu_client_s']} s"
                f" + dovecot {figures[prefix + 'cold_cpu_dovecot_s']} s; bare "
                f"{figures['bare_cpu_client_s']} s + dovecot {figures['bare_cpu_dovecot_s']} s. On "
                f"{harness.cpu_count()} cores a cold scan cannot take less than (guard + dovecot "
                f"CPU) / cores = {floor:.2f} s"
            )
        # Where a cold scan's client CPU goes: detection (scan_raw of every message in-process
        # on one core, bench_scan.py's probe) and everything else (IMAP, TLS, parsing the
        # responses, the state store, processes).
        for inst in who:
            probe = harness.measure([inst.python, "-c", PROBE, str(kept), str(count)], inst.env())
            detection = sum(json.loads(probe.out)["cpu"])
            cold_runs = runs[f"cold-{inst.label}"]
            guard_cpu = statistics.median(r.cpu for r in cold_runs)
            dovecot = statistics.median(r.server_cpu for r in cold_runs)
            print(
                f"RESULT {inst.label}: CPU split of the cold scan: guard {guard_cpu:.1f} s = "
                f"detection {detection:.1f} s + everything else {guard_cpu - detection:.1f} s "
                f"(dovecot {dovecot:.1f} s besides)"
            )
        if len(who) == 2:
            for kind in ("cold", "warm"):
                new, old = runs[f"{kind}-new"], runs[f"{kind}-old"]
                ratio = harness.ratio_text([r.wall for r in new], [r.wall for r in old])
                figures[f"{kind}_new_over_old"] = round(
                    statistics.median(harness.paired([r.wall for r in new], [r.wall for r in old])),
                    2,
                )
                cpu = harness.ratio_text([r.cpu for r in new], [r.cpu for r in old])
                print(f"{kind} scan time new/old = {ratio} (per round, side by side); CPU {cpu}")
        print(
            f"RESULT IMAP cold scan ({ns.source}), median of {ns.rounds}: new cold/bare = "
            f"{figures['cold_over_bare']}x (target <= 1.3)"
            + (f", old cold/bare = {figures['old_cold_over_bare']}x" if len(who) == 2 else "")
        )
        if ns.json:
            print(json.dumps(figures))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
