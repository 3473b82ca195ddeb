"""Build step: the bundled rules and the public-suffix table, compiled into package data.

`guard strip` starts once per delivered message; parsing 150 TOML rule files and compiling their
regexes, or building tldextract's tables, on every start would be most of its cost. This hook
(hatchling's custom build hook, run for `pip install .` and `pip install -e .`) writes

- guard/engine/_compiled/rules.pickle: the RuleSet the loader makes from rules/
  (guard.engine.rules_compiled.compile_bundled), headed by the rule files' and the code's digests;
- guard/engine/_compiled/suffixes.marshal: the public-suffix trie from tldextract's bundled snapshot
  (guard.engine.domains.compile_table), headed by the snapshot's digest;
- guard/engine/_compiled/dataclasses.marshal: the code of the methods guard's dataclasses
  generate, keyed by module and source (guard.cli.dataclass_code.record), headed by the building
  Python's bytecode magic, and what re's compiler makes of the regular expressions a start
  compiles (keyed by pattern and flags; used only by the same Python version);
- the optional C extensions listed in build_native.py (`SOURCES`), where a C compiler exists.

At run time each is used only when its digests match what is installed; otherwise guard parses
the files in memory, as it would without them (nothing is ever written at run time). A wheel
carries fresh copies; an editable install gets them next to the source (git-ignored), where an
edited rule file simply makes them unused until the next `pip install -e .`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

OUT = "guard/engine/_compiled"
RECORD = (
    "import sys; sys.path.insert(0, sys.argv[1]);"
    "from guard.cli.dataclass_code import record; sys.stdout.buffer.write(record())"
)


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        if version == "editable":
            out = root / OUT
        else:
            self._tmp = tempfile.mkdtemp(prefix="guard-build-")
            out = Path(self._tmp)
        out.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(root))
        try:
            # The optional C extensions (build_native.py) first: an editable install gets them
            # next to their source, where the imports below load them, and an extension built
            # from an older source would lack what the Python side now calls. Skipped, with a
            # warning, without a C compiler; their pure-Python side then runs.
            import build_native

            for problem in build_native.build(root, version, build_data, out):
                self.app.display_warning(problem)
            # Then the code guard's dataclasses and named tuples compile to, recorded in a fresh
            # interpreter: what this one imported already (the standard library's named tuples,
            # say) would be missing from the record.
            dataclass_code = subprocess.run(
                [sys.executable, "-c", RECORD, str(root)], capture_output=True, check=True
            ).stdout
            from guard.engine import (
                domains,  # the source being built
                rules_compiled,
            )

            files = {
                "rules.pickle": rules_compiled.compile_bundled(root / "rules"),
                "dataclasses.marshal": dataclass_code,
            }
            snapshot = domains.snapshot_path()
            if snapshot is not None:
                files["suffixes.marshal"] = domains.compile_table(snapshot.read_bytes())
            else:
                self.app.display_warning("tldextract not in the build environment: no table")
        finally:
            sys.path.remove(str(root))
        for name, data in files.items():
            (out / name).write_bytes(data)
            if version != "editable":
                build_data["force_include"][str(out / name)] = f"{OUT}/{name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
