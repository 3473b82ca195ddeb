"""`guard strip`: one message on stdin, cleaned (or unchanged) on stdout — an MDA / Sieve filter.

A delivery filter starts once per message, so what it imports is what it costs: this module and
`guard.cli.launch` (the `guard` command's entry point, which sends `guard strip` here before
anything else is imported) load only argparse, the cleaning code and the rules. The rules come
compiled at build time (guard.engine.rules_compiled.load_compiled), the public-suffix table likewise
(guard.engine.domains); the accounts config and the allowlist file are read only when they exist.
tests/test_startup.py checks the modules a `guard strip` run imports.

Never loses mail: on anything it cannot handle it writes its input unchanged and exits 0 with a
one-line warning on stderr; non-zero only when the output could not be written (the MDA then
keeps its own copy).

Per-recipient policy (`--policy-dir DIR --recipient ADDR`, for a server filtering every mailbox,
see docs/delivery.md): `DIR/<recipient>.toml`, data only, may say

    enabled = false                    # this user opted out: mail passes unchanged
    policy = "strict"                  # or "default"
    allow_senders = ["boss@example.org"]
    allow_domains = ["bank.example"]

A missing file means the administrator's defaults; a broken one is warned about and ignored.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import argparse

    from guard.clean.message import Policy
    from guard.engine.ruleset import RuleSet

    Options = argparse.Namespace | SimpleNamespace

USER_POLICY_KEYS = ("enabled", "policy", "allow_senders", "allow_domains")
MAX_POLICY_FILE = 64 * 1024
EXIT_OK = 0  # guard.mail.exitcodes.ExitCode.OK, without importing the enum on every start


def load_ruleset() -> RuleSet:
    """The rules, less their examples, which cleaning never reads (tests/fuzz/harness.py replaces
    this name to reuse the rules it loaded)."""
    from guard.engine.rules_load import load_ruleset as load

    return load(examples=False)


class PolicyError(Exception):
    """A per-recipient policy file is unusable; str(exc) is one line."""


def _warn(stream: IO[str], text: str) -> None:
    try:
        stream.write(f"guard strip: warning: {' '.join(text.split())}\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # nowhere left to say it; the message itself is what matters


def settings_files(ns: Options) -> tuple[str, str]:
    """Where guard.mail.config.config_path and guard.mail.allowlist.allowlist_path look, worked out
    without importing them (they import the TOML parser): a mail server's filter user has neither
    file, and then reads no config at all. tests/test_startup.py checks both answers agree."""
    explicit = getattr(ns, "config", None) or os.environ.get("GUARD_CONFIG")
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    config = (
        os.path.expanduser(explicit) if explicit else os.path.join(base, "guard", "config.toml")
    )
    return config, os.path.join(base, "guard", "allowlist.toml")


def _config_exists(ns: Options) -> bool:
    """Is there an accounts config or an allowlist file to read?"""
    return any(os.path.isfile(path) for path in settings_files(ns))


def _base_policy(ns: Options, err: IO[str]) -> Policy:
    """The accounts config's [clean] settings and the allowlist when they exist, then the command
    line; the command line alone when they do not (or are broken: a filter still filters)."""
    from guard.clean.message import Policy

    command_line = Policy(
        name=getattr(ns, "policy", None) or "default",
        unwrap_security=bool(getattr(ns, "unwrap_security", False)),
    )
    try:
        if not _config_exists(ns):
            return command_line
        from guard.cli.clean import policy_for
        from guard.mail.config import ConfigError
    except OSError:
        return command_line
    try:
        return policy_for(cast("argparse.Namespace", ns))  # it reads the options with getattr
    except ConfigError as exc:
        _warn(err, f"{exc}; cleaning with the default policy")
        return command_line


def recipient_policy_path(directory: str, recipient: str) -> str | None:
    """`DIR/<recipient>.toml` for a plausible address; None for anything that could name
    another file (a path separator, a leading dot, control characters, no `@`)."""
    address = recipient.strip().strip("<>").lower()
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or len(address) > 320:
        return None
    if address.startswith(".") or any(c in address for c in "/\\\0") or not address.isprintable():
        return None
    return os.path.join(directory, address + ".toml")


def read_recipient_policy(directory: str, recipient: str) -> dict[str, Any] | None:
    """The recipient's settings (validated keys and types), or None when there is no file.
    Raises PolicyError for a file that cannot be used."""
    path = recipient_policy_path(directory, recipient)
    if path is None:
        raise PolicyError(f"recipient {recipient!r} is not an address guard looks up")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_POLICY_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_POLICY_FILE:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_FILE} bytes")
    import tomllib  # only when a policy file exists

    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(table) - set(USER_POLICY_KEYS)
    if unknown:
        raise PolicyError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    if not isinstance(table.get("enabled", True), bool):
        raise PolicyError(f"{path}: enabled must be true or false")
    return table


def _apply_recipient(base: Policy, table: Mapping[str, Any]) -> Policy:
    """The recipient's choices over the administrator's: their policy name replaces it, their
    allowlists add to it. Raises ValueError (Policy's one-line message) on a bad value."""
    from guard.clean.message import Policy

    merged = Policy.from_config(
        {
            "policy": table.get("policy", base.name),
            "unwrap_security": base.unwrap_security,
            "allow_senders": [*base.allow_senders, *table.get("allow_senders", [])],
            "allow_domains": [*base.allow_domains, *table.get("allow_domains", [])],
        }
    )
    return merged


def _stripped(raw: bytes, ns: Options, err: IO[str]) -> bytes:
    """The cleaned message, or `raw` itself (with a warning) whenever anything goes wrong."""
    policy = _base_policy(ns, err)
    policy_dir = getattr(ns, "policy_dir", None)
    if policy_dir:
        recipient = getattr(ns, "recipient", None) or ""
        try:
            table = read_recipient_policy(policy_dir, recipient)
            if table is not None and table.get("enabled", True) is False:
                return raw  # the recipient opted out
            if table is not None:
                policy = _apply_recipient(policy, table)
        except (PolicyError, ValueError) as exc:
            _warn(err, f"{exc}; cleaning with the administrator's policy")
    from guard.engine.rules_load import RuleError

    try:
        from dataclasses import replace

        from guard.clean.message import ALLOWLISTED, clean_message
        from guard.engine.limits import DEFAULT_LIMITS

        limits = DEFAULT_LIMITS
        seconds = getattr(ns, "time_limit", None)
        if seconds is not None and seconds > 0:
            limits = replace(DEFAULT_LIMITS, max_seconds=seconds)
        rules = load_ruleset()
        _start_done()
        result = clean_message(raw, rules, policy, limits)
    except RuleError as exc:
        _warn(err, f"rules: {exc}; message passed through unchanged")
        return raw
    except Exception as exc:  # noqa: BLE001 - a filter must pass mail through whatever happens
        _warn(err, f"internal error ({type(exc).__name__}); message passed through unchanged")
        return raw
    if result.skipped and not result.skipped.startswith(ALLOWLISTED):
        _warn(err, f"{result.skipped}; message passed through unchanged")
    return result.data


def _start_done() -> None:
    """guard.cli.common.start_done (without importing guard.cli.common): the imports and rules
    are in, the cyclic GC back on for the message (when guard.cli.launch turned it off)."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run_strip(
    ns: Options,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Read a message on stdin, write it cleaned (or unchanged) on stdout. Exit 0 unless the
    output could not be written: then non-zero, so the MDA keeps its own copy."""
    source = stdin or sys.stdin.buffer
    sink = stdout or sys.stdout.buffer
    err = stderr or sys.stderr
    try:
        raw = source.read()
    except (OSError, MemoryError) as exc:
        _warn(err, f"cannot read the message: {exc}")
        return _internal()
    try:
        out = _stripped(raw, ns, err)
    except MemoryError:
        _warn(err, "out of memory; message passed through unchanged")
        out = raw
    try:
        sink.write(out)
        sink.flush()
    except OSError as exc:
        _warn(err, f"cannot write the message: {exc.strerror or exc}")
        return _internal()
    return EXIT_OK


def _internal() -> int:
    from guard.mail.exitcodes import ExitCode

    return ExitCode.INTERNAL


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from guard.cli.args import add_strip_arguments

    parser = argparse.ArgumentParser(
        prog="guard strip", description="clean one message, stdin to stdout (an MDA filter)"
    )
    add_strip_arguments(parser)
    return parser


# The options of `guard strip` (guard.cli.args.add_strip_arguments) as a delivery filter passes
# them, read without argparse: importing argparse and building the parser (it looks up message
# catalogs and the terminal's width) is ~5 % of a start. Anything else, from --help and
# abbreviations to a value argparse would refuse, goes to argparse as before.
# tests/test_startup.py checks the two agree.
_POLICIES = ("default", "strict")  # guard.cli.args.POLICIES
_VALUED = {"--policy": "policy", "--policy-dir": "policy_dir", "--recipient": "recipient"}
_VALUED_FLOAT = {"--time-limit": "time_limit"}
_FLAGS = {"--unwrap-security": "unwrap_security"}
_DEFAULTS: dict[str, Any] = {
    "policy": None,
    "unwrap_security": False,
    "policy_dir": None,
    "recipient": None,
    "time_limit": None,
}


def quick_args(argv: Sequence[str]) -> Options | None:
    """The options as argparse would read them, for command lines made only of the exact long
    options with plain values (`--recipient ADDR`, `--time-limit=5`); None for anything else."""
    values = dict(_DEFAULTS)
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in _FLAGS:
            values[_FLAGS[arg]] = True
            continue
        option, equals, value = arg.partition("=")
        if option not in _VALUED and option not in _VALUED_FLOAT:
            return None
        if not equals:
            if i == len(args):
                return None
            value = args[i]
            i += 1
        if value.startswith("-"):
            return None  # argparse's rules for dashes: leave them to it
        if option in _VALUED_FLOAT:
            try:
                values[_VALUED_FLOAT[option]] = float(value)
            except ValueError:
                return None
        elif option == "--policy" and value not in _POLICIES:
            return None
        else:
            values[_VALUED[option]] = value
    return SimpleNamespace(**values)


# -- the cleaning code's dataclasses, their methods compiled at build time ------------------------
#
# guard.cli.dataclass_code: the build records the code of the methods guard's dataclasses
# generate; `guard strip` imports the cleaning code with it (for the cleaning code, ~100
# compilations, 11 % of the instructions of a `guard strip` start), and leaves dataclasses as it
# found them.

DATACLASS_CODE: str | None = None  # the build's table (a test may point it elsewhere)


def import_cleaning() -> None:
    """Import the cleaning code, its dataclasses made with the build-time code when it is there
    and made by this Python. Failing here changes nothing: run_strip imports it again."""
    from guard.cli.dataclass_code import imported
    from guard.engine.standins import WhenUsed, standing_in

    # urllib.parse without ipaddress, as guard.cli.launch.import_urllib_parse imports it
    with standing_in(WhenUsed("ipaddress")):
        imported("urllib.parse", "guard.clean.message", path=DATACLASS_CODE)


def main(argv: Sequence[str] | None = None) -> int:
    """`guard strip ARGS` (argv without the `strip`)."""
    args = sys.argv[1:] if argv is None else list(argv)  # as argparse reads argv=None
    ns: Options | None = quick_args(args)
    if ns is None:
        ns = build_parser().parse_args(args)
    try:
        import_cleaning()
        return run_strip(ns)
    except KeyboardInterrupt:
        return 130
