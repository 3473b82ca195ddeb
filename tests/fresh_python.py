"""Running code in a fresh interpreter: what guard does at import (an environment switch, which
extension it loads) shows only in a process that imports it anew."""

from __future__ import annotations

import subprocess
import sys


def python_output(code: str, **env: str) -> str:
    """`code`'s standard output, run by this Python with only PATH and `env` in its environment."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )
    return done.stdout.strip()
