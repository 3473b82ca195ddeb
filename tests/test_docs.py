"""The documentation site (docs/) and README say what the code does.

- every docs page that guard names — in any command's `--help`, an error message or any other
  text in guard/ — exists;
- every page of docs/ is in a toctree (sphinx-build -W in scripts/test fails on it too; this
  catches it without Sphinx installed);
- README stays short and its links lead to files that exist;
- the rule counts docs/rules.md states that tests/test_docs_counts.py does not check;
- `guard strip`'s own parser (it skips the other commands' imports) offers the options the command
  reference documents for `strip` in the main parser.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from guard.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_MENTION = re.compile(r"\bdocs/[\w./-]*[\w-]\.md\b")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_paths() -> list[list[str]]:
    """Every command and sub-command as argv prefixes: [], ["scan"], ["rules", "list"]…"""
    paths: list[list[str]] = [[]]
    stack: list[tuple[list[str], argparse.ArgumentParser]] = [([], build_parser())]
    while stack:
        prefix, parser = stack.pop()
        for name, sub in _subcommands(parser).items():
            paths.append([*prefix, name])
            stack.append(([*prefix, name], sub))
    return paths


def _help(argv: list[str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "guard.cli.launch", *argv, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_command_is_asked_for_help() -> None:
    paths = _command_paths()
    for command in ("scan", "clean", "strip", "watch", "restore", "explain", "ui", "report"):
        assert [command] in paths
    assert ["rules", "suggest"] in paths


@pytest.mark.parametrize("argv", _command_paths(), ids=lambda argv: " ".join(argv) or "guard")
def test_docs_pages_named_by_help_exist(argv: list[str]) -> None:
    text = _help(argv)
    assert text.startswith("usage: guard"), text[:200]
    for page in DOC_MENTION.findall(text):
        assert (ROOT / page).is_file(), f"`guard {' '.join(argv)} --help` names {page}"


def test_docs_pages_named_in_guard_exist() -> None:
    """Error messages, help texts, comments: any `docs/….md` guard's code names is a page."""
    named: dict[str, list[str]] = {}
    for source in sorted((ROOT / "guard").rglob("*.py")):
        for page in DOC_MENTION.findall(source.read_text(encoding="utf-8")):
            named.setdefault(page, []).append(str(source.relative_to(ROOT)))
    assert named, "guard names no docs page at all: the pattern is broken"
    missing = {page: where for page, where in named.items() if not (ROOT / page).is_file()}
    assert not missing, f"pages named in guard/ that do not exist: {missing}"


def _toctree_entries() -> set[str]:
    entries: set[str] = set()
    for page in DOCS.glob("*.md"):
        for block in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.strip()
                if line and not line.startswith(":"):
                    entries.add(line)
    return entries


def test_every_page_is_in_a_toctree() -> None:
    pages = {page.stem for page in DOCS.glob("*.md")} - {"index"}
    entries = _toctree_entries()
    assert pages - entries == set(), "pages no toctree lists (add them, or exclude them in conf.py)"
    assert entries - pages == set(), "toctree entries without a page"


def test_readme_is_short_and_its_links_exist() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local, "README links to no page"
    for link in local:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_rule_counts_in_the_docs_are_the_bundled_rules() -> None:
    """The ESP-naming and tracking-only counts (tests/test_docs_counts.py checks the others)."""
    from guard.engine.rules_load import load_ruleset

    rules = load_ruleset(include_user=False)
    text = re.sub(r"\s+", " ", (DOCS / "rules.md").read_text())
    found = re.search(
        r"(\d+), for (\d+) services, name the ESP from the headers it stamps on its mail; "
        r"(\d+) name hosts that exist only to track",
        text,
    )
    assert found, "docs/rules.md no longer states the counts this test checks"
    senders = [rule for rule in rules.rules if rule.kind == "sender"]
    assert [int(n) for n in found.groups()] == [
        len(senders),
        len({rule.service.id for rule in senders}),
        sum(rule.tracking_only for rule in rules.rules),
    ]


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple[object, ...]]:
    return {
        option: (action.dest, action.default, action.choices, action.nargs, action.metavar)
        for action in parser._actions
        for option in action.option_strings
    }


def test_strip_parser_offers_what_the_reference_documents() -> None:
    from guard.cli.strip import build_parser as strip_parser

    assert _options(strip_parser()) == _options(_subcommands(build_parser())["strip"])


def test_readme_config_example_is_a_valid_config(tmp_path: Path) -> None:
    """README shows every account setting (the app's first-run screen says so): it must load."""
    from guard.mail.config import parse_config

    (example,) = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    config = parse_config(tomllib.loads(example), path=tmp_path / "config.toml", mode=0o600)
    assert list(config.accounts) == ["work"]


def test_scripts_and_tests_the_docs_name_exist() -> None:
    """A figure names the script that prints it; a claim, the test that checks it."""
    texts = [page.read_text() for page in DOCS.glob("*.md")] + [(ROOT / "README.md").read_text()]
    named = {
        path
        for text in texts
        for path in re.findall(r"\b(?:bench|tests|scripts)/[\w/]+(?:\.py|\.toml)?\b", text)
    }
    assert any(path.startswith("bench/") for path in named)
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"the documentation names files that do not exist: {missing}"


def test_python_names_the_docs_give_exist() -> None:
    """`guard.mail.scan.scan_raw` and the like: a module (and attribute) that moves breaks this."""
    texts = [page.read_text() for page in DOCS.glob("*.md")] + [(ROOT / "README.md").read_text()]
    names = {
        name
        for text in texts
        for name in re.findall(r"`(guard\.(?:engine|clean|mail|cli|tui)(?:\.\w+)+)(?:\(\))?`", text)
    }
    assert names
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[cut:]:
                assert hasattr(target, attribute), f"the docs name {name}, which does not exist"
                target = getattr(target, attribute)
            break
        else:
            pytest.fail(f"the docs name {name}, which does not exist")
