"""IMAP benchmark: guard cold / warm scan against a bare imapclient BODY.PEEK[] fetch.

    .venv/bin/python bench/bench_imap.py                 # 3,000 messages, 3 rounds
    .venv/bin/python bench/bench_imap.py --messages 20000 --rounds 1

Starts the test Dovecot (tests/dovecot.py) in a temp dir, loads N realistic newsletter-style
messages (10 % with a 200 KB attachment) with MULTIAPPEND, then per round, alternately:
  bare  - a separate Python process: IMAPClient login, EXAMINE, UID SEARCH, UID FETCH BODY.PEEK[]
          of every message in batches of 100 (one connection, one core);
  cold  - a separate process running guard's IMAP scan with an empty state;
  warm  - the same again with the state the cold run left (nothing new on the server).
Both run end to end (interpreter start, imports, TLS login) over TLS on 127.0.0.1. Prints the
times, cold/bare and warm/cold ratios and the peak memory of all guard processes together
(RSS summed over the process tree, and PSS, which counts shared pages once).

The machine may be shared: wall times then vary a lot, so each run also reports CPU seconds - of
the client's whole process tree (user + system) and of Dovecot (its exited imap processes, as
counted by the master) - which move much less. Note that the bare client pays for imaplib's
debug trace, which imapclient switches on at level 5 (the repr of every literal, twice); guard
switches it off (guard/imapconn.py), so per byte fetched guard's client side is cheaper.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

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

GUARD = """
import argparse, sys
from guard.cli_imap import add_scan_arguments, run_imap_scan
p = argparse.ArgumentParser()
p.add_argument("paths", nargs="*")
p.add_argument("--format", default="text")
p.add_argument("--summary", action="store_true")
p.add_argument("-v", "--verbose", action="store_true")
add_scan_arguments(p)
sys.exit(run_imap_scan(p.parse_args(sys.argv[1:])))
"""


def _rss_pss(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _cpu_of_waited_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _dovecot_cpu(master: int) -> float:
    """CPU seconds of the master's exited children (imap, imap-login): cutime + cstime."""
    try:
        with open(f"/proc/{master}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


CPU = {"client": 0.0, "dovecot": 0.0}  # of the last run()
MASTER = [0]


def run(cmd: list[str], env: dict[str, str], measure: bool = False) -> tuple[float, int, int, str]:
    """Wall time and peak summed RSS / PSS (KiB) of the process tree; CPU seconds in CPU."""
    cpu0, dove0 = _cpu_of_waited_children(), _dovecot_cpu(MASTER[0])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0, 0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            rss = pss = 0
            for p in _tree(proc.pid):
                r, s = _rss_pss(p)
                rss, pss = rss + r, pss + s
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            stop.wait(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    if measure:
        thread.start()
    out, err = proc.communicate(timeout=3600)
    elapsed = time.perf_counter() - t0
    stop.set()
    if measure:
        thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    CPU["client"] = _cpu_of_waited_children() - cpu0
    time.sleep(0.3)  # the master reaps the imap processes shortly after LOGOUT
    CPU["dovecot"] = _dovecot_cpu(MASTER[0]) - dove0
    return elapsed, peak[0], peak[1], out.decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=None, help="guard --connections")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ns = ap.parse_args()

    server = Dovecot.start()
    assert server.proc is not None
    MASTER[0] = server.proc.pid
    work = Path(tempfile.mkdtemp(prefix="guard-bench-"))
    try:
        rng = random.Random(42)
        t0 = time.perf_counter()
        total_bytes = 0

        def gen():  # type: ignore[no-untyped-def]
            nonlocal total_bytes
            for i in range(ns.messages):
                raw = newsletter(i, rng)
                total_bytes += len(raw)
                yield raw

        server.append(USER, "INBOX", gen(), batch=200)
        print(
            f"loaded {ns.messages} messages, {total_bytes / 1e6:.0f} MB "
            f"(avg {total_bytes / ns.messages / 1024:.0f} KB) in {time.perf_counter() - t0:.1f} s"
        )
        config = work / "config.toml"
        config.write_text(
            "[accounts.bench]\n"
            f'host = "127.0.0.1"\nport = {server.tls_port}\nusername = "{USER}"\n'
            f'ca_file = "{server.cert}"\npassword_env = "BENCH_PW"\ntimeout = 120\n'
        )
        os.chmod(config, 0o600)
        env = dict(os.environ)
        env.update(
            BENCH_PW=server.password,
            GUARD_CONFIG=str(config),
            XDG_CONFIG_HOME=str(work / "cfg"),
            XDG_DATA_HOME=str(work / "data"),
            PYTHONPATH=str(ROOT),
        )
        py = sys.executable
        bare_cmd = [py, "-c", BARE, "127.0.0.1", str(server.tls_port), USER, server.password,
                    str(server.cert)]  # fmt: skip
        guard_cmd = [py, "-c", GUARD, "--account", "bench", "--summary"]
        if ns.connections:
            guard_cmd += ["--connections", str(ns.connections)]
        run(bare_cmd, env)  # warm the server's and the OS's caches once
        bare, cold, warm, rss, pss = [], [], [], [], []
        cpu: dict[str, list[tuple[float, float]]] = {"bare": [], "cold": [], "warm": []}
        for r in range(ns.rounds):
            t_bare, *_ = run(bare_cmd, env)
            cpu["bare"].append((CPU["client"], CPU["dovecot"]))
            shutil.rmtree(work / "data", ignore_errors=True)
            t_cold, rss_c, pss_c, _out = run(guard_cmd, env, measure=True)
            cpu["cold"].append((CPU["client"], CPU["dovecot"]))
            t_warm, rss_w, pss_w, _out = run(guard_cmd, env, measure=True)
            cpu["warm"].append((CPU["client"], CPU["dovecot"]))
            bare.append(t_bare)
            cold.append(t_cold)
            warm.append(t_warm)
            rss.append(max(rss_c, rss_w))
            pss.append(max(pss_c, pss_w))
            print(
                f"round {r + 1}: bare {t_bare:.2f} s  guard cold {t_cold:.2f} s "
                f"({t_cold / t_bare:.2f}x)  warm {t_warm:.2f} s  "
                f"peak RSS {rss[-1] / 1024:.0f} MB (PSS {pss[-1] / 1024:.0f} MB)"
            )
            print(
                "         CPU s (client + dovecot): "
                + "  ".join(f"{k} {v[-1][0]:.2f} + {v[-1][1]:.2f}" for k, v in cpu.items())
            )
        figures = {
            "messages": ns.messages,
            "mbytes": round(total_bytes / 1e6),
            "bare_s": round(statistics.median(bare), 2),
            "cold_s": round(statistics.median(cold), 2),
            "warm_s": round(statistics.median(warm), 2),
            "cold_over_bare": round(
                statistics.median(c / b for c, b in zip(cold, bare, strict=True)), 2
            ),
            "warm_over_cold": round(
                statistics.median(w / c for w, c in zip(warm, cold, strict=True)), 3
            ),
            "peak_rss_mb": round(max(rss) / 1024),
            "peak_pss_mb": round(max(pss) / 1024),
            "bare_msgs_per_s": round(ns.messages / statistics.median(bare)),
            **{
                f"{k}_cpu_{who}_s": round(statistics.median(c[i] for c in v), 2)
                for k, v in cpu.items()
                for i, who in enumerate(("client", "dovecot"))
            },
        }
        print(
            f"median of {ns.rounds}: cold/bare = {figures['cold_over_bare']}x (target <= 1.0), "
            f"warm = {figures['warm_s']} s (target <= 0.5), warm/cold = "
            f"{figures['warm_over_cold']:.1%}, peak memory of all guard processes: "
            f"RSS {figures['peak_rss_mb']} MB, PSS {figures['peak_pss_mb']} MB (target <= 200)"
        )
        floor = (figures["cold_cpu_client_s"] + figures["cold_cpu_dovecot_s"]) / (
            os.cpu_count() or 1
        )
        print(
            f"CPU (median): guard cold {figures['cold_cpu_client_s']} s + dovecot "
            f"{figures['cold_cpu_dovecot_s']} s; bare {figures['bare_cpu_client_s']} s + dovecot "
            f"{figures['bare_cpu_dovecot_s']} s. On {os.cpu_count()} cores a cold scan cannot take "
            f"less than (guard + dovecot CPU) / cores = {floor:.2f} s"
        )
        if ns.json:
            print(json.dumps(figures))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
