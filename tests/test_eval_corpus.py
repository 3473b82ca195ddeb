"""eval/build_corpus.py rebuilds the committed evaluation corpus: manifest.toml byte for byte, and
every eml/ file except the two things the email package makes up on each run (the Message-ID and
the MIME boundaries)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EVAL = Path(__file__).resolve().parent.parent / "eval"

_MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[ \t]*(?:\r?\n[ \t]+)?<[^\r\n]*")
_BOUNDARY = re.compile(rb'boundary="([^"]+)"')


def without_volatile(raw: bytes) -> bytes:
    """`raw` with its Message-ID and each MIME boundary replaced by a placeholder (numbered in
    order of appearance, so the structure must still match)."""
    out, n = _MESSAGE_ID.subn(b"Message-ID: <volatile>", raw)
    assert n == 1, "every built message has one Message-ID"
    for i, boundary in enumerate(dict.fromkeys(_BOUNDARY.findall(out))):
        out = out.replace(boundary, b"BOUNDARY-%d" % i)
    return out


def test_normalisation_keeps_what_matters() -> None:
    head = b'Content-Type: multipart/mixed; boundary="==%d=="\n\n--==%d==\nbody\n'
    a = b"Message-ID: <1.2.3@x>\n" + head % (1, 1)
    b = b"Message-ID:\n <4.5.6@x>\n" + head % (2, 2)
    assert without_volatile(a) == without_volatile(b)
    assert without_volatile(a) != without_volatile(a.replace(b"body", b"bodY"))


def test_rebuild_matches_the_committed_corpus(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EVAL / "build_corpus.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "114 messages; 73 tracking"
    assert (tmp_path / "manifest.toml").read_bytes() == (EVAL / "manifest.toml").read_bytes()
    built = sorted(p.name for p in (tmp_path / "eml").iterdir())
    assert built == sorted(p.name for p in (EVAL / "eml").iterdir())
    differ = [
        name
        for name in built
        if without_volatile((tmp_path / "eml" / name).read_bytes())
        != without_volatile((EVAL / "eml" / name).read_bytes())
    ]
    assert differ == []
