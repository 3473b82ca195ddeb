"""Build step: guard's optional C extensions (`SOURCES`), compiled where a C compiler exists.

Called by hatch_build.py, hatchling's build hook (`pip install .`, `pip install -e .`). Each C file
is compiled with the C compiler Python was built with (sysconfig's CC, or $CC) against Python's
headers alone: guard/engine/_lexwalk.c needs no Lexbor header (it looks Lexbor's functions up in
selectolax's own extension at import). Where there is no compiler, or a compile fails, the build
goes on without that extension and guard runs its pure-Python code instead (each extension's
Python side says which runs). An editable install gets the extensions next to their source
(git-ignored); a wheel carries them and is tagged for the platform.

Plain stdlib: nothing here imports guard.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

# (C file, extension module): one entry per extension.
SOURCES: tuple[tuple[str, str], ...] = (
    ("guard/engine/_lexwalk.c", "guard.engine._lexwalk"),
    ("guard/engine/_urlcore.c", "guard.engine._urlcore"),
    ("guard/engine/_bounds.c", "guard.engine._bounds"),
    ("guard/engine/_mimecore.c", "guard.engine._mimecore"),
    ("guard/clean/_rewritecore.c", "guard.clean._rewritecore"),
    ("guard/engine/_rulesload.c", "guard.engine._rulesload"),
    ("guard/_process.c", "guard._process"),
)


def compile_extension(
    root: Path, source: str, module: str, out_dir: Path
) -> tuple[Path | None, str]:
    """Compile one C file into out_dir; (the extension's path, "") or (None, why not)."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = out_dir / f"{module.rpartition('.')[2]}{suffix}"
    if not cc or shutil.which(cc[0]) is None:
        target.unlink(missing_ok=True)
        return None, f"no C compiler ({cc[0] if cc else 'CC unset'})"
    include = sysconfig.get_paths()["include"]
    # Built under another name and renamed: a compile that fails must not leave an extension
    # built from an older source in place (an editable install would load it), so the old one
    # goes too and the pure-Python side runs.
    building = target.with_name(f"{target.name}.building-{os.getpid()}")
    cmd = [*cc, "-O2", "-shared", "-fPIC", f"-I{include}", str(root / source), "-o", str(building)]
    cmd.append("-ldl")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        why = "" if done.returncode == 0 else f"{cc[0]} failed: {done.stderr.strip()[-500:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = f"{cc[0]}: {exc}"
    if why:
        building.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        return None, why
    os.replace(building, target)
    return target, ""


def build(root: Path, version: str, build_data: dict[str, Any], tmp: Path) -> list[str]:
    """From hatch_build.py's hook: build every extension into the source tree (editable) or into
    `tmp` and the wheel (which then is platform-tagged). One line per extension not built."""
    problems: list[str] = []
    for source, module in SOURCES:
        package = module.rpartition(".")[0].replace(".", "/")
        out = root / package if version == "editable" else tmp
        built, why = compile_extension(root, source, module, out)
        if built is None:
            problems.append(f"{source} not built ({why}): its pure-Python side runs")
            continue
        if version != "editable":
            build_data["force_include"][str(built)] = f"{package}/{built.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
    return problems
