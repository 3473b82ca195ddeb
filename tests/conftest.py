"""Shared fixtures (the IMAP ones live in tests/dovecot.py; this file only imports them), and the
markers and xdist groups of the tests that drive a real server or browser.

Markers (registered in pyproject.toml, strict): `dovecot` for every test that talks to a real
Dovecot (IMAP, or LMTP delivery), `renderer` for every test that renders in Chromium. The fast set
is `pytest -m "not dovecot and not renderer"`.

Groups (`pytest -n WORKERS --dist loadgroup`, as scripts/test runs it): an expensive fixture with
session or module scope starts once per xdist worker that needs it, so the tests that share one
run on one worker: the IMAP tests in two groups, `dovecot-hostile` (test_hostile_imap.py) and
`dovecot` (the rest), each worker starting its session server once; each module's Chromium
tests in `renderer-<module>` (its module-scoped browser; test_renderer's one per message source);
the wheel tests in `wheel`.
A test marked `xdist_group` by its module keeps that group. xdist hands out the groups with the
most tests first (its --loadscope-reorder default): the two IMAP groups start at once, one per
worker, and the many short ungrouped tests fill the gaps at the end.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dovecot import dovecot  # noqa: F401  (the session-scoped real Dovecot fixture)

_DOVECOT_FIXTURES = {"dovecot"}
_RENDERER_FIXTURES = {"browser"}
_GROUP_FIXTURES = {"unpacked_wheel": "wheel"}
# The IMAP tests are half the suite's time, mostly waiting (timeouts, backoff, subprocesses):
# in two groups, two workers each run one half against their own session Dovecot.
_DOVECOT_SPLIT = {"test_hostile_imap": "dovecot-hostile"}
# A renderer module whose module-scoped work is parametrized (test_renderer's `proof`, one per
# message source: samples, eval, the real corpus) gets a group per parameter, so the sources
# render on both workers, each with its own browser, instead of one after another.
_RENDERER_SPLIT_PARAMS = ("proof",)
# module -> (its module-scoped fixtures that start a Dovecot, their group)
_MODULE_SERVERS = {"test_delivery": ({"venv", "server", "backup_server"}, "delivery")}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects and before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        module = item.path.stem
        group = None
        if names & _DOVECOT_FIXTURES or item.get_closest_marker("dovecot"):
            item.add_marker(pytest.mark.dovecot)
            group = _DOVECOT_SPLIT.get(module, "dovecot")
        fixtures, name = _MODULE_SERVERS.get(module, (set(), ""))
        if names & fixtures or (fixtures and item.get_closest_marker("dovecot")):
            item.add_marker(pytest.mark.dovecot)
            group = name
        if names & _RENDERER_FIXTURES or item.get_closest_marker("renderer"):
            item.add_marker(pytest.mark.renderer)
            group = f"renderer-{module}"
            params = getattr(getattr(item, "callspec", None), "params", {})
            for param in _RENDERER_SPLIT_PARAMS:
                if param in params:
                    group = f"{group}-{params[param]}"
        for fixture, name in _GROUP_FIXTURES.items():
            if fixture in names:
                group = name
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Keep the developer's own config, rules and state out of every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("GUARD_CONFIG", str(home / "config" / "guard" / "config.toml"))
    yield


@pytest.fixture(scope="session")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    """guard built as an install builds it (the hatchling hook), once per run: the wheel's file
    names and the directory it is unpacked into."""
    root = Path(__file__).resolve().parent.parent
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(root)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = dist.glob("*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        return archive.namelist(), site
