"""Sphinx configuration of guard's documentation site (docs/).

Build: `sphinx-build -W --keep-going -n -b html docs OUTDIR` (scripts/test does; the `docs` extra
installs the tools). The build fetches nothing: no intersphinx, no remote images or fonts.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the command reference imports guard's argument parsers

project = "guard"
author = "guard's authors"
copyright = "guard's authors"

extensions = ["myst_parser", "sphinxarg.ext"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4

html_theme = "furo"
html_title = "guard"
smartquotes = False  # option names such as --account stay as typed
