"""What the benchmarks share: guard installs to compare, the mail they run on, and how they time it.

- Installs: the guard of this checkout ("new") and, with `--baseline PATH`, a second install ("old":
  the path of its `guard` executable or of its venv's python). Each runs as `PYTHON -m guard ...`
  from a neutral working directory, with PYTHONPATH pointing at its own tree (or unset), and is
  checked to import the guard it should (`Install.check`).
- Mail: `--source bench` (generated newsletters, bench/corpus.py or a script's own generator) or
  `--source corpus`: the real corpus (shared/corpus/phishing-pot-dev.tar.xz, `--corpus TAR`), read
  in place with tarfile and never copied into the repo, filtered by the decoded size of its HTML
  parts (`--min-html-kb`). Its URLs are live phishing links: nothing here prints a message's
  content, and failure output is printed with its URLs masked (`mask_urls`).
- Timing: `measure` runs one command and returns its wall time, the CPU seconds of its whole process
  tree (user + system of the waited-for descendants), optionally the peak RSS / PSS of the tree
  and the CPU of a server's exited children (Dovecot). `alternate` runs several such steps round
  by round (A B A B ...), so both sides of a comparison see the same machine; `spread` prints a
  median with its range, `paired` the median and range of per-round ratios, `side_by_side` a
  figure of both installs and their ratio.
- Code run inside an install (`python -c`): it starts with `GUARD_API`, which finds guard's
  functions in either layout (the flat modules before issue 15's package move, the packages
  after), so a baseline from either side of the move runs the same probe. `instructions` counts
  what such code executes with callgrind.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import itertools
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "phishing-pot-dev.tar.xz"
NEUTRAL_CWD = Path(tempfile.gettempdir())  # `-m guard` must not pick up ./guard of the caller

# ---- installs -----------------------------------------------------------------------------------


@dataclass
class Install:
    label: str  # "new" / "old"
    python: str
    pythonpath: str | None  # None: unset (an installed guard finds itself)

    def env(self, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.pop("PYTHONPATH", None)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        env.update(extra)
        return env

    def guard(self, *args: str) -> list[str]:
        return [self.python, "-m", "guard", *args]

    def guard_split(self, *args: str) -> list[str]:
        """`guard ARGS` as `guard()` runs it, writing on exit the CPU of guard's own process
        (not its workers') as the last line of stderr: see `parent_cpu`."""
        return [self.python, "-c", _PARENT_CPU, *args]

    def check(self) -> str:
        """Where this install's guard comes from (raises SystemExit when it cannot be imported)."""
        proc = subprocess.run(
            [self.python, "-c", "import guard, os; print(os.path.dirname(guard.__file__))"],
            env=self.env(),
            cwd=NEUTRAL_CWD,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"{self.label}: {self.python} cannot import guard: {proc.stderr[-500:]}"
            )
        return str(Path(proc.stdout.strip()).parent)


_PARENT_CPU = r"""
import resource, runpy, sys
sys.argv = ["guard", *sys.argv[1:]]
try:
    runpy.run_module("guard", run_name="__main__", alter_sys=True)
finally:
    u = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write(f"\nguard-parent-cpu {u.ru_utime + u.ru_stime:.6f}\n")
"""


def parent_cpu(run: Run) -> float:
    """The CPU seconds of guard's own process in a run of `Install.guard_split`; the rest of
    `run.cpu` is its workers'."""
    for line in reversed(run.err.splitlines()):
        if line.startswith("guard-parent-cpu "):
            return float(line.split()[1])
    raise SystemExit("no guard-parent-cpu line: not a run of Install.guard_split")


def this_install() -> Install:
    return Install("new", sys.executable, str(ROOT))


def resolve_install(path: str, label: str = "old") -> Install:
    """`path`: a `guard` executable (its shebang names the python), a python, a venv or a checkout
    with a .venv. The python is not resolved through symlinks (that would leave the venv)."""
    p = Path(path).expanduser().absolute()
    if p.is_dir():
        for cand in (p / "bin" / "python", p / ".venv" / "bin" / "python"):
            if cand.exists():
                return Install(label, str(cand), None)
        raise SystemExit(f"--baseline {path}: no bin/python or .venv/bin/python in it")
    if not p.exists():
        raise SystemExit(f"--baseline {path}: no such file")
    if p.name.startswith("python"):
        return Install(label, str(p), None)
    with p.open("rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    if not first.startswith("#!"):
        raise SystemExit(f"--baseline {path}: neither a python nor a script with a #! line")
    words = first[2:].split()
    if words and Path(words[0]).name == "env" and len(words) > 1:
        found = shutil.which(words[1])
        if not found:
            raise SystemExit(f"--baseline {path}: {words[1]} not found")
        return Install(label, found, None)
    return Install(label, words[0], None)


def _provenance(root: str) -> str:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return root
    dirty = (
        " + uncommitted changes in guard/" if git("status", "--porcelain", "--", "guard") else ""
    )
    return f"{root} at {head}{dirty}"


def installs(ns: argparse.Namespace) -> list[Install]:
    """[new] or [new, old]; prints where each comes from and refuses two of the same tree."""
    out = [this_install()]
    if ns.baseline:
        out.append(resolve_install(ns.baseline))
    roots = []
    for inst in out:
        root = inst.check()
        roots.append(root)
        print(f"{inst.label}: {inst.python} -> guard from {_provenance(root)}")
    if len(roots) == 2 and Path(roots[0]).resolve() == Path(roots[1]).resolve():
        raise SystemExit("--baseline imports the same guard as this checkout: nothing to compare")
    return out


def add_arguments(
    ap: argparse.ArgumentParser, *, min_html_kb: int = 0, tracking: bool = False
) -> None:
    g = ap.add_argument_group("comparison and mail (bench/harness.py)")
    g.add_argument(
        "--baseline",
        metavar="PATH",
        default=None,
        help="a second guard install (its `guard` executable or its venv's python): every guard "
        "measurement runs alternately with both, prints both and the ratio new/old",
    )
    g.add_argument(
        "--source",
        choices=("bench", "corpus"),
        default="bench",
        help="bench: generated newsletters (default); corpus: the real corpus (--corpus)",
    )
    g.add_argument(
        "--corpus",
        metavar="TAR",
        default=str(CORPUS),
        help="the real corpus, read in place (default: ../shared/corpus/phishing-pot-dev.tar.xz)",
    )
    g.add_argument(
        "--min-html-kb",
        type=int,
        default=min_html_kb,
        help=f"--source corpus: only messages with this much HTML, decoded (default {min_html_kb})",
    )
    if tracking:
        g.add_argument(
            "--select-with",
            choices=("new", "old"),
            default="new",
            help="--source corpus: whose `guard scan --format json` decides which messages track "
            "(default: new, this checkout's)",
        )


# ---- code run inside an install -----------------------------------------------------------------

# Prepended to every `python -c` probe that an install runs. The module names are spelled as
# (package, module) pairs, not dotted, so that the layout rewrite of issue 15 (which rewrites
# dotted old names) leaves the old-layout fallbacks in place.
GUARD_API = r"""
import importlib as _importlib
def _guard_module(*places, attr=None):
    errors = []
    for place in places:
        name = "guard." + ".".join(p for p in place if p)
        try:
            mod = _importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if attr is None or hasattr(mod, attr):
            return mod
        errors.append(f"{name} has no {attr}")
    raise ImportError("; ".join(errors))
def _guard_attr(attr, *places):
    return getattr(_guard_module(*places, attr=attr), attr)
scan_raw = _guard_attr("scan_raw", ("mail", "scan"), ("", "scan"))
load_ruleset = _guard_attr(
    "load_ruleset", ("engine", "rules_load"), ("engine", "ruleset"), ("", "ruleset")
)
bundled_rules_dir = _guard_attr(
    "bundled_rules_dir", ("engine", "rules_load"), ("engine", "ruleset"), ("", "ruleset")
)
parse_message = _guard_attr("parse_message", ("engine", "mime"), ("", "mime"))
clean_message = _guard_attr("clean_message", ("clean", "message"), ("", "clean"))
Policy = _guard_attr("Policy", ("clean", "message"), ("", "clean"))
guard_html = _guard_module(("engine", "html"), ("", "html"))
"""


def probe(code: str) -> str:
    """`code` with GUARD_API in front: what an install runs with `python -c`."""
    return GUARD_API + code


def instructions(
    install: Install, code: str, args: Sequence[str], env: dict[str, str] | None = None
) -> int:
    """Instructions (callgrind's Ir) that `install`'s python executes running `probe(code)` with
    `args`, start-up and exit included: subtract a run that does none of the work."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="guard-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", install.python]
        proc = subprocess.run(
            [*cmd, "-c", probe(code), *args],
            env=install.env(env),
            cwd=NEUTRAL_CWD,
            capture_output=True,
            timeout=7200,
        )
        if proc.returncode != 0 or not out.exists():
            tail = mask_urls(proc.stderr.decode("utf-8", "replace")[-1500:])
            raise SystemExit(f"callgrind of {install.label} failed ({proc.returncode}): {tail}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"callgrind of {install.label}: no totals in its output")


# ---- mail ---------------------------------------------------------------------------------------


def html_bytes(raw: bytes) -> int:
    """Decoded bytes of all text/html parts (stdlib email: the same for every guard version)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    total = 0
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                total += len(payload)
    return total


@dataclass
class Mail:
    """Messages to measure on, with how they were chosen (`what`: for the printed header)."""

    names: list[str]
    raws: list[bytes]
    what: str
    distinct: int = 0

    def __len__(self) -> int:
        return len(self.raws)

    @property
    def nbytes(self) -> int:
        return sum(len(r) for r in self.raws)

    def describe(self) -> str:
        html = sorted(html_bytes(r) for r in self.raws[:500])
        return (
            f"{self.what}: {len(self)} messages ({self.distinct} distinct), "
            f"{self.nbytes / 1e6:.1f} MB, HTML median {statistics.median(html) / 1024:.0f} KB "
            f"(min {html[0] / 1024:.0f}, max {html[-1] / 1024:.0f})"
        )


def real_corpus(path: str | Path, min_html_kb: int = 0) -> Mail:
    """The corpus's messages (sorted by name) whose HTML is at least `min_html_kb` KB."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"--source corpus: {path} is absent (see shared/corpus/README.md)")
    names, raws, total = [], [], 0
    with tarfile.open(path) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            stream = archive.extractfile(member)
            if stream is None:
                continue
            raw = stream.read()
            total += 1
            if html_bytes(raw) >= min_html_kb * 1024:
                names.append(Path(member.name).name)
                raws.append(raw)
    what = f"real corpus: {total} messages"
    if min_html_kb:
        what = f"real corpus, HTML >= {min_html_kb} KB: {len(raws)} of {total}"
    return Mail(names, raws, what, len(raws))


def repeated(mail: Mail, count: int | None) -> Mail:
    """`mail` cycled to `count` messages (None: as it is). Copies get distinct names."""
    if count is None or count == len(mail):
        return mail
    if not mail.raws:
        raise SystemExit("no messages to repeat")
    idx = list(itertools.islice(itertools.cycle(range(len(mail))), count))
    names = [f"{i // len(mail)}-{mail.names[j]}" for i, j in enumerate(idx)]
    what = mail.what + (f", repeated to {count}" if count > len(mail) else f", first {count}")
    return Mail(names, [mail.raws[j] for j in idx], what, min(count, mail.distinct))


def generated(raws: Iterable[bytes], what: str) -> Mail:
    raws = list(raws)
    return Mail([f"bench-{n:05d}" for n in range(len(raws))], raws, what, len(raws))


_HEADER_END = re.compile(rb"\r?\n\r?\n")


def with_attachment(raw: bytes, kb: int, rng: random.Random, seq: int = 0) -> bytes:
    """`raw` wrapped in a multipart/mixed with a `kb` KB PDF attachment, byte for byte otherwise:
    the original's Content-* headers and body become the first part."""
    m = _HEADER_END.search(raw)
    head, body = (raw[: m.start()], raw[m.end() :]) if m else (raw, b"")
    lines = re.split(rb"\r?\n(?![ \t])", head)
    keep = [ln for ln in lines if not re.match(rb"(?i)(content-|mime-version)", ln)]
    inner = [ln for ln in lines if re.match(rb"(?i)content-", ln)] or [b"Content-Type: text/plain"]
    boundary = f"=_bench_mix_{seq:08d}".encode()
    blob = base64.encodebytes(rng.randbytes(kb * 1024)).replace(b"\n", b"\r\n")
    return b"\r\n".join(
        [
            *keep,
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"',
            b"",
            b"--" + boundary,
            *inner,
            b"",
            body,
            b"--" + boundary,
            f'Content-Type: application/pdf; name="invoice-{seq}.pdf"'.encode(),
            f'Content-Disposition: attachment; filename="invoice-{seq}.pdf"'.encode(),
            b"Content-Transfer-Encoding: base64",
            b"",
            blob,
            b"--" + boundary + b"--",
            b"",
        ]
    )


def write_maildir(root: Path, raws: Iterable[bytes]) -> int:
    """A Maildir at `root` with one file per message in cur/; returns the bytes written."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    total = 0
    for n, raw in enumerate(raws):
        (root / "cur" / f"17000{n:05d}.M{n}P1.bench:2,S").write_bytes(raw)
        total += len(raw)
    return total


def tracking_indexes(install: Install, maildir: Path) -> set[int]:
    """Positions (write_maildir order) of the messages `install`'s `guard scan --format json`
    says track; reads only each message's `source` and `tracking`."""
    import json

    r = measure(install.guard("scan", "--format", "json", str(maildir)), install.env())
    doc = json.loads(r.out)
    out = set()
    for m in doc["messages"]:
        if m.get("tracking"):
            name = Path(str(m.get("source", ""))).name
            hit = re.match(r"17000(\d{5})\.", name)
            if hit:
                out.add(int(hit.group(1)))
    return out


def tracking_mail(install: Install, mail: Mail, work: Path, who: str) -> Mail:
    """The messages of `mail` that `install`'s `guard scan --format json` says track (`who`:
    whose scan that is, for the description); `work` is a scratch directory, where the
    selection's Maildir stays (the caller removes it when it has timed what it times)."""
    maildir = work / "select"
    write_maildir(maildir, mail.raws)
    hits = sorted(tracking_indexes(install, maildir))
    return Mail(
        [mail.names[i] for i in hits],
        [mail.raws[i] for i in hits],
        f"{mail.what}, tracking per {who} guard scan --format json: {len(hits)}",
        len(hits),
    )


# ---- timing -------------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float  # user + system of the whole process tree
    out: str = ""
    err: str = ""
    code: int = 0
    rss_kb: int = 0  # peak of the tree's summed RSS (memory=True)
    pss_kb: int = 0
    server_cpu: float = 0.0  # CPU of the server's exited children during the run (server_pid)
    extra: dict[str, float] = field(default_factory=dict)


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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def exited_children_cpu(pid: int) -> float:
    """CPU seconds of `pid`'s exited, reaped children (cutime + cstime): a Dovecot master's imap
    and imap-login processes."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+")


def mask_urls(text: str) -> str:
    """The real corpus's links are live phishing: never print one, even in an error."""
    return _URL.sub("<url>", text)


def measure(
    cmd: Sequence[str],
    env: dict[str, str],
    *,
    memory: bool = False,
    server_pid: int | None = None,
    ok: Iterable[int] = (0,),
    timeout: float = 3600,
    stdin: bytes | None = None,
) -> Run:
    """Run `cmd` from a neutral directory, `stdin` on its standard input (one at a time: the CPU
    is read from RUSAGE_CHILDREN)."""
    cpu0 = _children_cpu()
    srv0 = exited_children_cpu(server_pid) if server_pid else 0.0
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=env,
        cwd=NEUTRAL_CWD,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
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
    if memory:
        thread.start()
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        stop.set()
        raise
    wall = time.perf_counter() - t0
    stop.set()
    if memory:
        thread.join()
    cpu = _children_cpu() - cpu0
    if proc.returncode not in set(ok):
        tail = mask_urls(err.decode("utf-8", "replace")[-2000:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {tail}")
    server = 0.0
    if server_pid:
        time.sleep(0.3)  # the master reaps its imap processes shortly after LOGOUT
        server = exited_children_cpu(server_pid) - srv0
    return Run(
        wall,
        cpu,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        proc.returncode,
        peak[0],
        peak[1],
        server,
    )


Step = tuple[str, Callable[[], Run]]


def alternate(
    rounds: int,
    steps: Sequence[Step],
    *,
    show: Callable[[str, Run], str] | None = None,
    warmup: Sequence[str] = (),
) -> dict[str, list[Run]]:
    """Each round runs every step in order (A B A B ...); returns each step's runs. The steps
    named in `warmup` run once first, not counted (page cache, .pyc files, the server's caches)."""
    for name, fn in steps:
        if name in warmup:
            fn()
    runs: dict[str, list[Run]] = {name: [] for name, _ in steps}
    for r in range(rounds):
        for name, fn in steps:
            run = fn()
            runs[name].append(run)
            text = show(name, run) if show else ""
            print(
                f"  round {r + 1} {name:<10} {run.wall:7.2f} s wall {run.cpu:7.2f} s CPU  {text}",
                flush=True,
            )
    return runs


def spread(values: Sequence[float], fmt: str = ".2f", unit: str = "") -> str:
    """'median [min-max]' (just the value for one)."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{fmt}}{unit}"
    return f"{med:{fmt}}{unit} [{min(values):{fmt}}-{max(values):{fmt}}]"


def paired(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-round ratios a/b of runs taken side by side."""
    return [x / y for x, y in zip(a, b, strict=True) if y]


def ratio_text(a: Sequence[float], b: Sequence[float]) -> str:
    """'1.23x [1.10-1.40]': median and range of the per-round ratios a/b."""
    return spread(paired(a, b), ".2f", "x")


def side_by_side(
    what: str, values: Mapping[str, Sequence[float]], fmt: str = ".2f", unit: str = ""
) -> str:
    """'WHAT: new V [range], old V [range], old/new R' for per-install values taken in the same
    rounds (the ratio is per round; just the new value without a baseline)."""
    text = f"{what}: new {spread(values['new'], fmt, unit)}"
    if "old" in values:
        text += f", old {spread(values['old'], fmt, unit)}, old/new "
        text += ratio_text(values["old"], values["new"])
    return text


def summary(name: str, runs: Sequence[Run], count: int | None = None) -> str:
    """One install's or command's line: wall, CPU and messages/s as median [range]."""
    walls = [r.wall for r in runs]
    cpus = [r.cpu for r in runs]
    text = f"{name:<10} wall {spread(walls, unit=' s')}, CPU {spread(cpus, unit=' s')}"
    if count:
        text += f", {spread([count / w for w in walls], '.0f')} msg/s"
    return text


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
