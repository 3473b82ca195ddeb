"""Promise 1 and the one-way architecture, checked for real in fresh interpreters.

- A scan of every sample opens no socket and resolves no name (an audit hook on socket.* events,
  inherited by the forked worker processes, aborts the run if anything tries).
- The core never imports Textual, imapclient or sqlite3; `guard scan` on files loads none of them
  (the static half, imports inside functions too, is import-linter's: tests/test_layers.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The pure layers, and what `guard scan` of files uses besides them.
PURE = [
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for layer in ("engine", "clean")
    for path in sorted((ROOT / "guard" / layer).glob("[!_]*.py"))
]
CORE = (*PURE, "guard.mail.scan", "guard.mail.supervise", "guard.mail.files", "guard.cli.output")

# Contacting anything: connecting, sending, or resolving a name. (Creating a socket alone is not:
# urllib3, imported by tldextract, probes IPv6 support by binding a socket to ::1 at import.)
AUDIT = r"""
import os, sys
CONTACT = ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
           "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo")
def hook(event, args):
    if event in CONTACT:
        # Report from whichever process it happens in (workers are forked), then refuse.
        os.write(2, f"NETWORK: {event} {args!r}\n".encode())
        raise RuntimeError("network access during scan")
sys.addaudithook(hook)
from guard.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_scanning_all_samples_opens_no_socket(tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                AUDIT,
                "scan",
                "--format",
                "json",
                "--jobs",
                jobs,
                str(ROOT / "samples"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert "NETWORK" not in proc.stderr, proc.stderr
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert len(doc["messages"]) >= 60


def test_scan_with_many_messages_uses_workers_and_stays_offline(tmp_path: Path) -> None:
    # Enough messages to take the parallel path (forked workers inherit the audit hook).
    sample = (ROOT / "samples" / "eml").glob("*.eml")
    first = next(iter(sorted(sample)))
    for n in range(80):
        (tmp_path / f"m{n}.eml").write_bytes(first.read_bytes())
    proc = subprocess.run(
        [sys.executable, "-c", AUDIT, "scan", "--format", "csv", "--jobs", "2", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "NETWORK" not in proc.stderr, proc.stderr


def test_core_imports_no_ui_no_imap_no_sqlite() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
        "from guard.cli.main import main\n"
        f"main(['scan', '--format', 'json', {str(ROOT / 'samples' / 'eml')!r}])\n"
        "banned = ('textual', 'imapclient', 'sqlite3', '_sqlite3')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
        "sys.stderr.write('LOADED:' + ','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith("LOADED:"), proc.stderr[-500:]


def test_scan_writes_nothing_outside_its_output(tmp_path: Path) -> None:
    # tldextract must run on its bundled list: no cache under $HOME or $XDG_CACHE_HOME.
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "guard", "scan", "--format", "csv", str(ROOT / "samples")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(home.rglob("*")) == []
