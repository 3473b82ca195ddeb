"""`guard strip` starts light: the modules it imports, the build-time compiled rules (used only
when they match the rule files and the code), and nothing written at run time.

Timing is bench/bench_strip.py's business; these tests check the mechanisms.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import marshal
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guard.engine import rules_compiled, rules_load
from guard.engine.rules_compiled import load_compiled
from guard.engine.ruleset import RuleSet
from guard.engine.urls import parse_http

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "eml" / "activecampaign-course-reminder.eml"
GUARD = Path(sys.executable).parent / "guard"
NEVER = (
    "textual",
    "imapclient",
    "sqlite3",
    "tldextract",
    "requests",
    "urllib3",
    "filelock",
    "tomllib",  # the rules come compiled; no config or policy file in these runs
    "guard.cli.main",
    "guard.cli.imap",
    "guard.cli.clean",
    "guard.mail.config",
    "guard.tui",
    "argparse",  # the delivery filter's usual command line is read without it
    "json",  # only for a link wrapper that carries JSON
    "guard.cli.args",
    "guard.mail.exitcodes",
    "hashlib",  # cleaning hashes no address (OpenSSL's load: ~11 M instructions)
    "inspect",  # dataclasses' __doc__ texts come from the build's table
    # selectolax's logger and email.utils' helpers import these when used (guard.engine.deferred)
    "logging",
    "random",
    "socket",
    "datetime",
    "calendar",
    "ipaddress",  # urllib.parse's, for bracketed hosts only (guard.cli.launch)
)


def _empty_home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "GUARD_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    return env


def _imported(argv: list[str], env: dict[str, str], data: bytes) -> tuple[set[str], bytes]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        input=data,
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    names = {
        line.split("|")[-1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }
    return names, done.stdout


@pytest.mark.parametrize(
    "options",
    [[], ["--time-limit", "5", "--policy-dir", "/nonexistent", "--recipient", "a@b.example"]],
)
def test_strip_imports_only_what_it_needs(tmp_path: Path, options: list[str]) -> None:
    """The `guard` command itself (its console script), as a mail server runs it (with and
    without the options of the delivery recipe, contrib/dovecot/guard-strip)."""
    assert GUARD.is_file(), "guard is not installed next to this Python"
    argv = [str(GUARD), "strip", *options]
    names, out = _imported(argv, _empty_home(tmp_path), SAMPLE.read_bytes())
    assert b"X-Guard: cleaned" in out  # it did clean
    assert {"guard.cli.strip", "guard.clean.message", "guard.engine.ruleset"} <= names
    loaded = sorted(n for n in names if any(n == x or n.startswith(x + ".") for x in NEVER))
    assert loaded == []


@pytest.mark.parametrize("command", [["clean", "--dry-run"], ["scan"]])
def test_a_small_run_imports_no_worker_machinery(tmp_path: Path, command: list[str]) -> None:
    """`guard clean PATH` and `guard scan PATH` of fewer messages than make workers worth it
    import no multiprocessing (~25 M instructions with what it imports); a clean hashes nothing
    (its rules come compiled, cleaning reads no recipients: no OpenSSL), and neither imports
    inspect (with ast, dis…: dataclasses' __doc__ texts come from the build's table)."""
    maildir = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1:2,S").write_bytes(SAMPLE.read_bytes())
    names, out = _imported([str(GUARD), *command, str(maildir)], _empty_home(tmp_path), b"")
    assert b"1:2,S" in out and "guard.engine.detect" in names
    assert not {"multiprocessing", "guard.mail.supervise", "inspect", "ast", "dis"} & names
    # guard.engine.deferred: selectolax and email.utils without what guard's calls never read
    # (socket: the Maildir writer's host name)
    assert not {"logging", "traceback", "random", "datetime", "calendar", "locale"} & names
    assert "ipaddress" not in names  # urllib.parse's, for bracketed hosts (guard.cli.launch)
    assert "shutil" not in names  # argparse's width is asked when text is laid out: none here
    assert not {"argparse", "guard.cli.main", "guard.cli.args"} & names  # common.quick_args
    if command[0] == "clean":  # nor the pickle module's Python half (the rules load with C's)
        assert not {"hashlib", "_hashlib", "pickle"} & names


def test_strip_writes_nothing(tmp_path: Path) -> None:
    env = _empty_home(tmp_path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # .pyc files are the installer's job, not guard's
    before = {p for p in (tmp_path / "home").rglob("*")}
    subprocess.run(
        [str(GUARD), "strip"], input=SAMPLE.read_bytes(), capture_output=True, env=env, check=True
    )
    assert {p for p in (tmp_path / "home").rglob("*")} == before
    compiled = ROOT / "guard" / "_compiled"
    stamps = {p: p.stat().st_mtime_ns for p in compiled.glob("*")} if compiled.is_dir() else {}
    subprocess.run(
        [str(GUARD), "strip"], input=SAMPLE.read_bytes(), capture_output=True, env=env, check=True
    )
    now = {p: p.stat().st_mtime_ns for p in compiled.glob("*")} if compiled.is_dir() else {}
    assert now == stamps


# -- the compiled rules ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parsed() -> RuleSet:
    return rules_load.parse_directories([rules_load.bundled_rules_dir()])


def _compiled_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the bundled rules and their compiled form."""
    rules = tmp_path / "rules"
    for path in rules_load.rule_files(rules_load.bundled_rules_dir()):
        target = rules / path.relative_to(rules_load.bundled_rules_dir())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    compiled = tmp_path / "rules.pickle"
    compiled.write_bytes(rules_compiled.compile_bundled(rules))
    return rules, compiled


def test_compiled_rules_are_the_parsed_rules(tmp_path: Path, parsed: RuleSet) -> None:
    rules, compiled = _compiled_copy(tmp_path)
    loaded = load_compiled(rules, compiled)
    assert loaded is not None
    assert loaded.version == parsed.version
    assert loaded.services == parsed.services
    assert len(loaded.rules) == len(parsed.rules)
    for mine, theirs in zip(loaded.rules, parsed.rules, strict=True):
        # every field, whatever fields Rule has today (file names rebased to where they are now)
        for f in dataclasses.fields(mine):
            if f.name != "file":
                assert getattr(mine, f.name) == getattr(theirs, f.name), (mine.id, f.name)
        assert mine.file == str(
            rules / Path(theirs.file).relative_to(rules_load.bundled_rules_dir())
        )
    # the look-up indexes came along and answer alike, examples included
    for rule in parsed.rules:
        for example in (*rule.match, *rule.no_match):
            url = parse_http(example.text)
            if url is None:
                continue
            for kinds in (("pixel",), ("link",), ("spacer", "host")):
                a, b = loaded.classify(url, kinds), parsed.classify(url, kinds)
                assert (a and a.id) == (b and b.id), example.text
            assert loaded.unwrap(url)[1] == parsed.unwrap(url)[1]


def test_rules_without_their_examples_are_the_same_rules(tmp_path: Path, parsed: RuleSet) -> None:
    """`guard strip` loads the compiled rules less their examples: every other field, and every
    answer, is the same."""
    rules, compiled = _compiled_copy(tmp_path)
    slim = load_compiled(rules, compiled, examples=False)
    assert slim is not None
    assert all(rule.match == () and rule.no_match == () for rule in slim.rules)
    assert any(rule.match for rule in parsed.rules)
    for mine, theirs in zip(slim.rules, parsed.rules, strict=True):
        for f in dataclasses.fields(mine):
            if f.name not in ("file", "match", "no_match"):
                assert getattr(mine, f.name) == getattr(theirs, f.name), (mine.id, f.name)
    for rule in parsed.rules:
        for example in (*rule.match, *rule.no_match):
            url = parse_http(example.text)
            if url is not None:
                a, b = (
                    slim.classify(url, ("pixel", "link")),
                    parsed.classify(url, ("pixel", "link")),
                )
                assert (a and a.id) == (b and b.id), example.text
                assert slim.unwrap(url)[1] == parsed.unwrap(url)[1]


def test_a_changed_rule_file_is_parsed_again(tmp_path: Path) -> None:
    rules, compiled = _compiled_copy(tmp_path)
    assert load_compiled(rules, compiled) is not None
    victim = rules_load.rule_files(rules)[0]
    victim.write_bytes(victim.read_bytes() + b"\n# edited\n")
    assert load_compiled(rules, compiled) is None
    (rules / "new.toml").write_text("# a new file\n")
    victim.write_bytes(victim.read_bytes()[: -len(b"\n# edited\n")])
    assert load_compiled(rules, compiled) is None


def test_rule_files_as_the_build_saw_them_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their sizes and modification times are the build's (an editable install): no file is read
    to tell whether the compiled form is theirs."""
    rules, compiled = _compiled_copy(tmp_path)
    monkeypatch.setattr(rules_compiled, "_rules_digest", lambda d: pytest.fail("rules read"))
    assert load_compiled(rules, compiled) is not None


def test_a_same_size_edit_is_told_by_the_bytes(tmp_path: Path) -> None:
    """A rule file whose time differs from the build's (a wheel's copy, an edit) is read: an edit
    of the same size is told by its bytes, an unchanged copy still matches."""
    rules, compiled = _compiled_copy(tmp_path)
    victim = rules_load.rule_files(rules)[0]
    data = victim.read_bytes()
    later = victim.stat().st_mtime_ns + 10**9
    os.utime(victim, ns=(later, later))
    assert load_compiled(rules, compiled) is not None  # the same bytes
    victim.write_bytes(data[:-1] + (b"#" if data[-1:] != b"#" else b" "))
    os.utime(victim, ns=(later + 10**9, later + 10**9))
    assert load_compiled(rules, compiled) is None


@pytest.mark.parametrize(
    "module",
    [
        "guard.engine.ruleset",  # Rule, Service, RuleSet…: the classes it holds
        "guard.engine.shapes",  # ShapeIndex
        "guard.engine.rules_load",  # the parser that made them
        "guard.engine.rules_compiled",  # the format that reads them back
    ],
)
def test_changed_code_is_parsed_again(tmp_path: Path, module: str) -> None:
    """A header naming a module whose source differs (an edited dataclass in an editable
    install) makes the compiled form unused."""
    rules, compiled = _compiled_copy(tmp_path)
    assert load_compiled(rules, compiled) is not None
    data = compiled.read_bytes()
    header_end = len(pickle.dumps(pickle.loads(data), protocol=pickle.HIGHEST_PROTOCOL))
    header = pickle.loads(data)
    assert module in header["modules"]
    header["modules"][module] = "0" * 64
    compiled.write_bytes(pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL) + data[header_end:])
    assert load_compiled(rules, compiled) is None
    compiled.write_bytes(b"garbage")
    assert load_compiled(rules, compiled) is None


def test_user_rules_are_parsed_with_the_bundled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules_load, "load_compiled", lambda *a, **k: pytest.fail("compiled used"))
    (tmp_path / "guard" / "rules").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert rules_load.load_ruleset().rules


@dataclasses.dataclass(frozen=True, slots=True)
class _Tomorrow:
    """A rule-like class with fields the loader does not know of today."""

    id: str
    sender_header: str
    sender_value: re.Pattern[str] | None
    tracking_only: bool = False
    extra: tuple[str, ...] = ()


def test_any_new_field_is_carried() -> None:
    """The compiled form keeps what the loader made, whatever its fields: nothing lists them."""
    import io

    made = [_Tomorrow("a", "X-Mailer", re.compile(r"^Acme (?P<v>\d+)"), True, ("x",))]
    buffer = io.BytesIO()
    pickler = rules_compiled._Pickler(buffer, ROOT / "rules")
    pickler.dump(made)
    paths = list(pickler.paths)
    (back,) = rules_compiled._unpickler(io.BytesIO(buffer.getvalue()), ROOT / "rules", paths).load()
    assert back == made[0]
    assert back.tracking_only is True and back.extra == ("x",)
    assert back.sender_value is not None and back.sender_value.search("Acme 7").group("v") == "7"


def test_lazy_pattern_acts_as_a_pattern() -> None:
    lazy = rules_compiled._LazyPattern(r"^/o/(?P<target>[a-z]+)$", re.UNICODE)
    real = re.compile(r"^/o/(?P<target>[a-z]+)$")
    assert "search" not in lazy.__dict__  # nothing compiled until used
    assert lazy == real and hash(lazy) == hash(
        rules_compiled._LazyPattern(real.pattern, real.flags)
    )
    found = lazy.search("/o/abc")
    assert found is not None and found.group("target") == "abc"
    assert lazy.groupindex == real.groupindex and lazy.pattern == real.pattern
    assert lazy.match("/x") is None and lazy.sub("", "/o/abc") == ""
    assert pickle.loads(pickle.dumps(lazy)) == lazy


def _rebuilders() -> list[Any]:
    """The C `rebuild` (guard/engine/_rulesload.c) where built, and its Python reference."""
    try:
        from guard.engine import _rulesload  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return [rules_compiled._rebuild_py]
    return [_rulesload.rebuild, rules_compiled._rebuild_py]


def test_the_compiled_rules_name_no_rebuilder(
    tmp_path: Path, parsed: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file names `_rebuilder`, not a rebuilder: a Python without the extension (a wheel's
    build process builds it outside the tree) loads it with the reference."""
    data = rules_compiled.COMPILED_RULES.read_bytes()
    assert b"_rulesload" not in data and b"_rebuild_py" not in data and b"_rebuilder" in data
    rules, compiled = _compiled_copy(tmp_path)
    monkeypatch.setattr(rules_compiled, "_rebuild", rules_compiled._rebuild_py)
    loaded = load_compiled(rules, compiled)
    assert loaded is not None and loaded.services == parsed.services
    assert [r.id for r in loaded.rules] == [r.id for r in parsed.rules]
    pairs = zip(loaded.rules, parsed.rules, strict=True)
    assert all(a.path == b.path and a.hosts == b.hosts for a, b in pairs)


def test_loading_rebuilds_in_c_where_built() -> None:
    rebuilders = _rebuilders()
    assert rules_compiled._rebuild is rebuilders[0]


def test_rebuild_in_c_makes_what_the_reference_makes(parsed: RuleSet) -> None:
    """Every rule, service, decode and lazy pattern of the bundled rules, made from its fields by
    each rebuilder: equal objects holding the very same values, still frozen where frozen."""
    rebuilders = _rebuilders()
    objects: list[Any] = []
    for rule in parsed.rules:
        objects += [rule, rule.service] + ([rule.decode] if rule.decode else [])
    lazy = [
        rules_compiled._LazyPattern(r.path.pattern, r.path.flags) for r in parsed.rules if r.path
    ]
    assert objects and lazy
    for obj in objects:
        names = tuple(f.name for f in dataclasses.fields(obj))
        values = tuple(getattr(obj, n) for n in names)
        made = [rebuild(type(obj), names, values) for rebuild in rebuilders]
        for one in made:
            assert type(one) is type(obj) and one == obj
            assert all(getattr(one, n) is v for n, v in zip(names, values, strict=True))
            if type(obj).__dataclass_params__.frozen:  # type: ignore[attr-defined]
                with pytest.raises(dataclasses.FrozenInstanceError):
                    setattr(one, names[0], values[0])
    for pattern in lazy:
        for rebuild in rebuilders:
            one = rebuild(
                rules_compiled._LazyPattern, ("pattern", "flags"), (pattern.pattern, pattern.flags)
            )
            assert one == pattern and "search" not in one.__dict__
            assert one.search is not None and one.pattern == pattern.pattern


class _OwnNew:
    def __new__(cls) -> _OwnNew:
        return super().__new__(cls)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((_Tomorrow, ("id",), ()), ValueError),  # fewer values than names
        ((_Tomorrow, ("id",), ("a", "b")), ValueError),
        ((_Tomorrow, (1,), ("a",)), TypeError),  # a name that is no string
        ((_Tomorrow, ("nope",), ("a",)), AttributeError),  # no such slot
        ((tuple, (), ()), TypeError),  # object.__new__ is not safe for it
        ((_OwnNew, (), ()), None),  # its own __new__: the C one refuses it, the reference not
    ],
)
def test_rebuild_in_c_refuses_what_the_reference_refuses(args: Any, error: Any) -> None:
    for rebuild in _rebuilders():
        if error is None:
            if rebuild is not rules_compiled._rebuild_py:
                with pytest.raises(TypeError):
                    rebuild(*args)
            continue
        with pytest.raises(error):
            rebuild(*args)


def test_wheel_carries_the_compiled_data_and_uses_it(
    unpacked_wheel: tuple[list[str], Path], tmp_path: Path
) -> None:
    """Built like an install (the hatchling build hook); from the unpacked wheel alone (-S), the
    compiled rules and suffix table are the ones used, and a run writes nothing."""
    names, site = unpacked_wheel
    assert "guard/engine/_compiled/rules.pickle" in names
    assert "guard/engine/_compiled/suffixes.marshal" in names
    assert "guard/engine/_compiled/dataclasses.marshal" in names
    probe = (
        "import sys; sys.path.append(sys.argv[1]);"  # tldextract's snapshot file, not imported
        "import guard.engine.rules_load as r, guard.engine.rules_compiled as rc;"
        "import guard.engine.domains as d;"
        "c = rc.load_compiled(r.bundled_rules_dir());"
        "print(c is not None and c.version == r.load_ruleset(include_user=False).version);"
        "import marshal; fmt, digest, _ = marshal.loads(d.COMPILED.read_bytes());"
        "print(digest == d.snapshot_digest(d.snapshot_path().read_bytes()));"
        "print(d.registrable_domain('a.b.brand.co.uk'));"
        "print(any(m.startswith('tldextract') for m in sys.modules))"
    )
    purelib = next(p for p in sys.path if p.endswith("site-packages"))
    before = sorted(p for p in site.rglob("*"))
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe, purelib],
        env={"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == ["True", "True", "brand.co.uk", "False"]
    assert sorted(p for p in site.rglob("*")) == before


@pytest.mark.parametrize(
    ("env", "explicit"),
    [({}, None), ({"XDG_CONFIG_HOME": "/x/conf"}, None), ({"GUARD_CONFIG": "~/g.toml"}, None),
     ({"GUARD_CONFIG": "/etc/g.toml"}, "~/c.toml")],
)  # fmt: skip
def test_strip_looks_for_the_settings_where_the_config_does(
    env: dict[str, str], explicit: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from guard.cli.strip import settings_files
    from guard.mail.allowlist import allowlist_path
    from guard.mail.config import config_path

    for key in ("XDG_CONFIG_HOME", "GUARD_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ns = argparse.Namespace(config=explicit)
    assert settings_files(ns) == (str(config_path(explicit)), str(allowlist_path()))


# -- the command line without argparse ------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--time-limit", "5", "--policy-dir", "/etc/guard/users", "--recipient", "a@b.example"],
        ["--recipient=a@b.example", "--time-limit=0.5", "--policy=strict", "--unwrap-security"],
        ["--recipient", "", "--policy", "default", "--policy", "strict"],  # the last one counts
        ["--recipient=", "--time-limit", " 7 ", "--policy-dir", "dir with spaces"],
        ["--time-limit", "inf", "--unwrap-security", "--unwrap-security"],
        ["--recipient", "a=b@c.example"],
    ],
)
def test_quick_args_read_what_argparse_reads(argv: list[str]) -> None:
    from guard.cli.strip import build_parser, quick_args

    quick = quick_args(argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["-h"],
        ["--help"],
        ["--rec", "a@b.example"],  # an abbreviation argparse accepts
        ["--recipient", "-a@b.example"],  # dashes: argparse's rules
        ["--recipient=-x"],
        ["--time-limit", "-1"],
        ["--time-limit", "soon"],
        ["--time-limit="],
        ["--policy", "lenient"],
        ["--unwrap-security=yes"],
        ["--recipient"],
        ["extra"],
        ["--", "--recipient", "a@b.example"],
        ["--verbose"],
    ],
)
def test_anything_else_goes_to_argparse(argv: list[str]) -> None:
    from guard.cli.strip import quick_args

    assert quick_args(argv) is None


def test_quick_args_know_every_strip_option() -> None:
    """An option added to `guard strip` (guard.cli.args) must be known here too, or the quick
    reading would leave it out of the options."""
    from guard.cli import strip
    from guard.cli.args import POLICIES

    parser = strip.build_parser()
    options = {
        flag: action
        for action in parser._actions
        if action.dest != "help"
        for flag in action.option_strings
    }
    assert set(options) == {*strip._VALUED, *strip._VALUED_FLOAT, *strip._FLAGS}
    assert {a.dest: a.default for a in options.values()} == strip._DEFAULTS
    assert strip._POLICIES == POLICIES
    from guard.mail.exitcodes import ExitCode

    assert strip.EXIT_OK == ExitCode.OK


# -- the dataclasses' code, compiled at build time -----------------------------------------------

# What is compiled from source text at run time, collected in `texts`: the start of each spy.
_SPY_HOOKS = """
import builtins, sys
real, real_compile, texts = builtins.exec, builtins.compile, []
def spy(source, *rest):
    if isinstance(source, str):
        texts.append(source)
    return real(source, *rest)
def spy_compile(source, filename, *rest, **kwargs):
    if isinstance(source, str) and filename == "<string>":
        texts.append(source)
    return real_compile(source, filename, *rest, **kwargs)
builtins.exec, builtins.compile = spy, spy_compile
"""

_SPY = (
    _SPY_HOOKS
    + """
from guard.cli import strip
strip.DATACLASS_CODE = sys.argv[1] or strip.DATACLASS_CODE
strip.import_cleaning()
import guard.clean.message, dataclasses, collections, typing
hooked = "exec" in vars(dataclasses) or "eval" in vars(collections) or "compile" in vars(typing)
print(len(texts), hooked)
"""
)


def _start(table: str = "") -> tuple[int, bool]:
    """How many method sources (and named tuples' texts) a start's import of the cleaning code
    compiled, and whether it left a hook in dataclasses, collections or typing."""
    out = subprocess.run(
        [sys.executable, "-c", _SPY, table], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    return int(out[0]), out[1] == "True"


def _stored_table() -> dict[str, dict[str, object]]:
    from guard.cli.dataclass_code import DATACLASS_CODE

    data = Path(DATACLASS_CODE).read_bytes()
    outer = marshal.loads(data[len(importlib.util.MAGIC_NUMBER) :])
    texts = ("<re>", "<inspect.signature>")  # not code: patterns' arguments, signatures' texts
    return {module: marshal.loads(part) for module, part in outer.items() if module not in texts}


def test_the_stored_code_is_what_compiling_its_source_gives() -> None:
    tables = _stored_table()
    # every module with dataclasses that a local or IMAP command imports has its part
    assert {"guard.clean.message", "guard.engine.report", "guard.cli.clean_path"} <= set(tables)
    assert {"guard.mail.config", "guard.mail.imap.common", "guard.mail.store"} <= set(tables)
    assert sum(len(table) for table in tables.values()) > 200
    # and the texts of named tuples: their __new__, their fields' annotations
    assert {"<collections.namedtuple>", "<typing.ForwardRef>"} <= set(tables)
    for key, table in tables.items():
        mode = "eval" if key.startswith("<") else "exec"
        for source, code in table.items():
            fresh = compile(source, "<string>", mode, dont_inherit=True)
            assert marshal.dumps(fresh) == marshal.dumps(code)


def test_a_start_compiles_no_dataclass_code() -> None:
    assert _start() == (0, False)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        b"\0\0\r\n" + marshal.dumps({"a": 1}),  # another Python's
        importlib.util.MAGIC_NUMBER + marshal.dumps({"def f(): pass": 1}),  # not by module
    ],
)
def test_a_missing_or_foreign_table_means_compiling_as_ever(tmp_path: Path, content: bytes) -> None:
    table = tmp_path / "dataclasses.marshal"
    table.write_bytes(content)
    compiled, hooked = _start(str(table))
    assert compiled > 50 and not hooked
    compiled, hooked = _start(str(tmp_path / "absent"))
    assert compiled > 50 and not hooked


def test_a_changed_dataclass_is_compiled_from_its_source(tmp_path: Path) -> None:
    """A table that lacks a text (an edited dataclass) leaves that one to be compiled."""
    tables = _stored_table()
    table = tables["guard.clean.message"]
    table.pop(next(iter(table)))
    outer = {module: marshal.dumps(part) for module, part in tables.items()}
    magic = importlib.util.MAGIC_NUMBER
    (tmp_path / "t.marshal").write_bytes(magic + marshal.dumps(outer))
    assert _start(str(tmp_path / "t.marshal")) == (1, False)


# Every guard dataclass's __doc__ (dataclasses writes `Name(signature)` into a class without one),
# its module imported with the build's table (argv[1] "table") or without.
_DOCS = """
import importlib, pkgutil, sys, dataclasses, guard
from contextlib import nullcontext
from guard.cli.dataclass_code import installed
docs = {}
with installed() if sys.argv[1] == "table" else nullcontext():
    for info in pkgutil.walk_packages(guard.__path__, "guard."):
        if info.name.startswith(("guard.tui", "guard.__main__")):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        for name, obj in sorted(vars(module).items()):
            if dataclasses.is_dataclass(obj) and obj.__module__ == info.name:
                docs[info.name + "." + name] = obj.__doc__
print(repr(sorted(docs.items())))
"""


def test_docs_from_the_stored_signatures_are_inspects() -> None:
    """The __doc__ dataclasses writes from the table's signature texts (a start imports no
    inspect) is the one it writes from inspect.signature, for every guard dataclass."""
    outs = [
        subprocess.run(
            [sys.executable, "-c", _DOCS, how],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        for how in ("table", "plain")
    ]
    assert outs[0] == outs[1] and outs[0].count("(") > 50
    from guard.cli.dataclass_code import DATACLASS_CODE

    outer = marshal.loads(Path(DATACLASS_CODE).read_bytes()[len(importlib.util.MAGIC_NUMBER) :])
    assert len(marshal.loads(outer["<inspect.signature>"])) > 20


def _stored_regexes() -> tuple[Any, dict[tuple[str | bytes, int], Any]]:
    from guard.cli.dataclass_code import DATACLASS_CODE

    data = Path(DATACLASS_CODE).read_bytes()
    outer = marshal.loads(data[len(importlib.util.MAGIC_NUMBER) :])
    python, table = marshal.loads(outer["<re>"])
    return python, {key: marshal.loads(args) for key, args in table.items()}


def test_the_stored_patterns_are_what_re_compiles() -> None:
    """Each recorded pattern, made from the table, is the pattern re's compiler makes: the same
    code, flags, text (Pattern.__eq__ compares them), groups and names."""
    import _sre  # type: ignore[import-not-found]
    from re import _compiler  # type: ignore[attr-defined]

    python, table = _stored_regexes()
    assert python == (tuple(sys.version_info), _sre.MAGIC, _sre.CODESIZE)
    assert len(table) > 100
    texts = {pattern for pattern, _flags in table}
    assert any(isinstance(p, bytes) for p in texts) and any(isinstance(p, str) for p in texts)
    for (pattern, flags), args in table.items():
        final, code, groups, groupindex, indexgroup = args
        made = _sre.compile(pattern, final, code, groups, dict(groupindex), indexgroup)
        fresh = _compiler.compile(pattern, flags)
        assert made == fresh
        assert (made.flags, made.groups, made.groupindex) == (
            fresh.flags,
            fresh.groups,
            fresh.groupindex,
        )


# re's compiler as a start finds it: what reaches it (patterns the table lacks) is counted.
_SPY_RE = """
import sys
from re import _compiler
real, missed = _compiler.compile, []
def spy(pattern, flags=0):
    missed.append(pattern)
    return real(pattern, flags)
_compiler.compile = spy
from guard.cli import dataclass_code
dataclass_code.DATACLASS_CODE = sys.argv.pop(1) or dataclass_code.DATACLASS_CODE
from guard.cli.launch import main
code = main(sys.argv[1:])
print(len(missed), _compiler.compile is spy, code)
"""


def _regex_start(tmp_path: Path, table: str = "") -> tuple[list[str], str]:
    tmp_path = tmp_path / ("foreign" if table else "stored")
    maildir = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "cur" / "1:2,S").write_bytes(SAMPLE.read_bytes())
    done = subprocess.run(
        [sys.executable, "-c", _SPY_RE, table, "clean", "--dry-run", str(maildir)],
        capture_output=True,
        text=True,
        env=_empty_home(tmp_path),
        timeout=60,
        check=True,
    )
    lines = done.stdout.replace(str(tmp_path), "TMP").splitlines()
    return lines[-1].split(), "\n".join(lines[:-1])


def test_a_clean_start_compiles_few_patterns(tmp_path: Path) -> None:
    """`guard clean` takes the patterns of its imports, options and first message from the table
    (a rule's pattern the warm-up message did not use is compiled as ever), and puts re's compiler
    back when it is done; with a foreign table (another Python's part) it compiles them all, and
    prints the same."""
    (missed, hooked, code), plan = _regex_start(tmp_path)
    assert int(missed) <= 5 and hooked == "True" and code == "0"
    _python, table = _stored_regexes()
    foreign = tmp_path / "foreign.marshal"
    from guard.cli.dataclass_code import DATACLASS_CODE

    magic = importlib.util.MAGIC_NUMBER
    outer = marshal.loads(Path(DATACLASS_CODE).read_bytes()[len(magic) :])
    outer["<re>"] = marshal.dumps(((2, 7), {key: marshal.dumps(a) for key, a in table.items()}))
    foreign.write_bytes(magic + marshal.dumps(outer))
    (missed, hooked, code), foreign_plan = _regex_start(tmp_path, str(foreign))
    assert (
        int(missed) > 50 and hooked == "True" and code == "0"
    )  # ~95 (logging's, socket's... deferred)
    assert foreign_plan == plan and "1 to clean" in plan


_SPY_COMMAND = (
    _SPY_HOOKS
    + """
from guard.cli.launch import main
code = main(sys.argv[1:])
inspected = "inspect" in sys.modules
import dataclasses, collections, typing
hooked = "exec" in vars(dataclasses) or "eval" in vars(collections) or "compile" in vars(typing)
hooked = hooked or type(dataclasses.inspect).__name__ == "_Signatures"
print(len(texts), inspected, hooked, code)
"""
)


@pytest.mark.parametrize("command", [["scan"], ["clean", "--dry-run"], ["clean"]])
def test_a_command_start_compiles_no_dataclass_code(tmp_path: Path, command: list[str]) -> None:
    """`guard scan` / `guard clean` (the console script's path) make every dataclass they import
    with the build's code, and leave dataclasses as they found it. A clean that writes makes the
    Maildir writer's thread pool: concurrent.futures' named tuple comes from the table too (the
    first compile() of a process also sets up the AST types, ~9 M instructions)."""
    maildir = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1:2,S").write_bytes(SAMPLE.read_bytes())
    out = subprocess.run(
        [sys.executable, "-c", _SPY_COMMAND, *command, str(maildir)],
        capture_output=True,
        text=True,
        env=_empty_home(tmp_path),
        timeout=60,
        check=True,
    ).stdout.split()
    # nor imports inspect (dataclasses reads it only for a __doc__: the table has those)
    assert out[-4:] == ["0", "False", "False", "0"]


def test_a_clean_that_writes_imports_no_socket_and_names_files_after_the_host(
    tmp_path: Path,
) -> None:
    """A Maildir's new names end in the host's name: os.uname's node name, which is what
    gethostname(2) answers, without importing socket (~14 M instructions of a run that forks no
    worker)."""
    import socket

    maildir = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1:2,S").write_bytes(SAMPLE.read_bytes())
    code = "import sys\nfrom guard.cli.launch import main\n"
    code += f"code = main(['clean', '-q', {str(maildir)!r}])\nprint(code, 'socket' in sys.modules)"
    env = _empty_home(tmp_path)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, check=True)  # fmt: skip
    out = run.stdout.split()
    assert out == ["0", "False"]
    (name,) = os.listdir(maildir / "cur")
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    assert name.split(",S=")[0].endswith(f".{host}")


# -- `guard scan` / `guard clean`: what their start does not do ----------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "a.eml", "--format", "json", "-v"],
        ["clean", "--dry-run", "--policy", "strict", "Maildir"],
        ["clean", "--account", "work", "--folder", "INBOX"],
        ["rules", "list", "--format", "json"],
        ["explain", "a.eml"],
        ["strip", "--recipient", "a@b.example"],
        ["report"],
        ["ui"],
    ],
)
def test_one_commands_parser_reads_as_the_whole(argv: list[str]) -> None:
    """guard.cli.main makes only the options of the command that runs: the same namespace, and
    the same help, as the whole command line gives."""
    import contextlib
    import io

    from guard.cli.main import build_parser

    only = build_parser(only=argv[0])
    assert vars(only.parse_args(argv)) == vars(build_parser().parse_args(argv))
    helps = []
    for parser in (only, build_parser()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            parser.parse_args([argv[0], "--help"])
        helps.append(out.getvalue())
    assert helps[0] == helps[1]
    errors = []  # and the same errors: an unknown option, a bad value
    for parser in (only, build_parser()):
        for wrong in ([*argv, "--no-such-option"], [argv[0], "--format", "nonesuch"]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit:
                parser.parse_args(wrong)
            errors.append((err.getvalue(), exit.value.code))
    assert errors[:2] == errors[2:] and errors[0][1] == 2


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["Maildir"],
        ["--dry-run", "-q", "Maildir"],
        ["a", "b c", "-v"],
        ["--quiet", "--verbose", "a"],
        ["-q", "-q", "a", "b", "--dry-run"],
        ["--dry-run"],
        ["scan"],  # a PATH named like a command
    ],
)
def test_quick_clean_args_read_what_argparse_reads(argv: list[str]) -> None:
    from guard.cli.clean import quick_args
    from guard.cli.main import build_parser

    quick = quick_args(argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser(only="clean").parse_args(["clean", *argv]))


@pytest.mark.parametrize(
    "argv",
    [
        ["a", "-q", "b"],  # PATHs on both sides: argparse refuses the second run
        ["--help"],
        ["-h"],
        ["--dry"],  # an abbreviation
        ["-qv", "a"],
        ["--jobs", "2", "a"],
        ["--policy", "strict", "a"],
        ["--account", "work"],
        ["-", "a"],
        ["--", "a"],
        ["--dry-run=1", "a"],
        ["", "a"],
        ["-x"],
    ],
)
def test_anything_else_in_clean_goes_to_argparse(argv: list[str]) -> None:
    from guard.cli.clean import quick_args

    assert quick_args(argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["a.eml"],
        ["-v", "Maildir", "b.mbox"],
        ["imap://me@host/INBOX"],
        ["a", "--summary", "--verbose"],
        ["--summary", "--summary", "a"],
    ],
)
def test_quick_scan_args_read_what_argparse_reads(argv: list[str]) -> None:
    from guard.cli.main import build_parser
    from guard.cli.scan import quick_scan_args

    quick = quick_scan_args(argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser(only="scan").parse_args(["scan", *argv]))


@pytest.mark.parametrize(
    "argv",
    [
        ["a", "-v", "b"],
        ["--format", "json", "a"],
        ["--format=csv", "a"],
        ["-h"],
        ["--sum", "a"],
        ["-vv", "a"],
        ["--jobs", "1", "a"],
        ["--account", "work"],
        ["-", "a"],
        ["", "a"],
    ],
)
def test_anything_else_in_scan_goes_to_argparse(argv: list[str]) -> None:
    from guard.cli.scan import quick_scan_args

    assert quick_scan_args(argv) is None


def test_quick_scan_args_know_every_default() -> None:
    """Every option of `guard scan` (PATH and IMAP) with argparse's default."""
    from guard.cli import scan
    from guard.cli.main import build_parser

    assert vars(build_parser(only="scan").parse_args(["scan"])) == scan._QUICK_DEFAULTS
    parser = build_parser(only="scan")
    (sub,) = (a for a in parser._actions if a.dest == "command")
    for flag, dest in scan._QUICK_FLAGS.items():
        action = sub.choices["scan"]._option_string_actions[flag]  # type: ignore[attr-defined]
        assert action.dest == dest and action.const is True and action.nargs == 0


def test_quick_clean_args_know_every_default() -> None:
    """Every option of `guard clean` (PATH and IMAP) with argparse's default."""
    from guard.cli import clean
    from guard.cli.main import build_parser

    assert vars(build_parser(only="clean").parse_args(["clean"])) == clean._QUICK_DEFAULTS
    parser = build_parser(only="clean")
    (sub,) = (a for a in parser._actions if a.dest == "command")
    for flag, dest in clean._QUICK_FLAGS.items():
        action = sub.choices["clean"]._option_string_actions[flag]  # type: ignore[attr-defined]
        assert action.dest == dest and action.const is True and action.nargs == 0


@pytest.mark.parametrize("columns", ["30", "80", "200"])
def test_the_formatter_lays_out_as_argparses(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    """guard.cli.args.Formatter asks the width later, not differently: every command's help and
    usage read as with argparse's HelpFormatter, whatever the terminal's width."""
    import argparse

    from guard.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", columns)
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for each in (parser, *sub.choices.values()):
        ours = (each.format_help(), each.format_usage())
        each.formatter_class = argparse.HelpFormatter
        assert (each.format_help(), each.format_usage()) == ours


def test_clean_without_config_files_parses_no_toml(tmp_path: Path) -> None:
    """No accounts config, no allowlist: `guard clean PATH` imports no TOML parser (the config and
    the allowlist import it when their file exists)."""
    maildir = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1:2,S").write_bytes(SAMPLE.read_bytes())
    argv = [str(GUARD), "clean", "--dry-run", str(maildir)]
    names, out = _imported(argv, _empty_home(tmp_path), b"")
    assert b"1 messages: 1 to clean" in out
    assert "guard.mail.config" in names and "tomllib" not in names
