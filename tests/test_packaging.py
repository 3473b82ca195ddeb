"""The rule files are found from a built wheel and from the working tree (editable install)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from guard.engine.rules_load import bundled_rules_dir, load_ruleset

ROOT = Path(__file__).resolve().parent.parent


def test_working_tree_uses_top_level_rules() -> None:
    assert bundled_rules_dir() == ROOT / "rules"
    assert len(load_ruleset(include_user=False).services) >= 150


def test_wheel_carries_the_rules_and_finds_them(
    unpacked_wheel: tuple[list[str], Path], tmp_path: Path
) -> None:
    names, site = unpacked_wheel
    bundled = [n for n in names if n.startswith("guard/rules/") and n.endswith(".toml")]
    assert len(bundled) == len(list((ROOT / "rules").rglob("*.toml")))
    assert "guard/cli/main.py" in names and not any(n.startswith("rules/") for n in names)
    # -S: no site-packages, so the editable install of the working tree cannot answer instead.
    probe = (
        "import guard.engine.rules_load as r; d = r.bundled_rules_dir(); "
        "print(d); print(len(r.load_ruleset(include_user=False).services))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert Path(out[0]) == site / "guard" / "rules"
    assert int(out[1]) == len(load_ruleset(include_user=False).services)
