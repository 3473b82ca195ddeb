"""The allowlist guard maintains: senders and domains whose mail is never cleaned.

The user's config holds their own `allow_senders` / `allow_domains` ([clean] tables), which guard
never rewrites. Additions made from the terminal app go to this separate file instead,
`$XDG_CONFIG_HOME/guard/allowlist.toml`, which guard writes whole each time (two lists of strings
need no TOML library to write).
"""

from __future__ import annotations

import os
from pathlib import Path

from guard.mail.config import ConfigError

HEADER = '# Maintained by guard (the terminal app\'s "allowlist" action); edit freely.\n'


def allowlist_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "guard" / "allowlist.toml"


def load_allowlist(path: Path | None = None) -> tuple[list[str], list[str]]:
    """(senders, domains) from the file; empty when it does not exist."""
    path = path or allowlist_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the allowlist: {exc}") from None
    import tomllib  # here: a start without an allowlist file parses no TOML

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot read the allowlist: {exc}") from None
    lists: list[list[str]] = []
    for key in ("allow_senders", "allow_domains"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: {key} must be a list of strings")
        lists.append([v.strip().lower() for v in value if v.strip()])
    return lists[0], lists[1]


def add_to_allowlist(
    sender: str | None = None, domain: str | None = None, path: Path | None = None
) -> Path:
    """Add a sender address and/or a domain; the file is replaced atomically."""
    import json  # here: a start reads the allowlist, only the app's action writes it
    import tempfile

    path = path or allowlist_path()
    senders, domains = load_allowlist(path)
    if sender and sender.strip().lower() not in senders:
        senders.append(sender.strip().lower())
    if domain and domain.strip().lower() not in domains:
        domains.append(domain.strip().lower())
    # JSON strings are valid TOML basic strings for everything an address or domain holds.
    text = (
        HEADER
        + f"allow_senders = [{', '.join(json.dumps(s) for s in sorted(senders))}]\n"
        + f"allow_domains = [{', '.join(json.dumps(d) for d in sorted(domains))}]\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".allowlist-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
