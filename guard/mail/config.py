"""The accounts config: a TOML file read into frozen dataclasses (no network, no secrets resolved).

Where it is read from, first match wins: `--config FILE`, `$GUARD_CONFIG`,
`$XDG_CONFIG_HOME/guard/config.toml` (default `~/.config/guard/config.toml`).

```toml
default_account = "work"          # optional when there is only one account

[accounts.work]
host = "imap.example.org"
port = 993                        # default: 993 for tls = "ssl", 143 otherwise
username = "me@example.org"
tls = "ssl"                       # "ssl" (default) | "starttls" | "none" (loopback hosts only)
ca_file = "/path/extra-ca.pem"    # optional extra trust anchor (system CAs stay trusted)
password_command = "pass show mail/work"   # or password_env = "VAR", or keyring = true
# oauth2_token_command = "oauth2-helper --account work"   # XOAUTH2 (Gmail, Outlook)
folders = ["INBOX"]
backup_folder = "Guard/Originals"
identities = ["me@example.org"]
timeout = 30                      # seconds, every network operation
connections = 2                   # parallel IMAP connections for a cold scan
```

Secrets are never resolved here (see guard.mail.secrets); the only secret a config can hold itself
is a literal `password = "..."`, which is discouraged and draws a warning when others can read the
file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

TLS_MODES = ("ssl", "starttls", "none")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECTIONS = 2
MAX_CONNECTIONS = 16


class ConfigError(Exception):
    """The config is missing, unreadable or invalid; str(exc) is a one-line message."""


@dataclass(frozen=True)
class Account:
    """One IMAP account. `password` is only set when the config holds a literal password."""

    name: str
    host: str
    username: str
    port: int = 993
    tls: str = "ssl"
    ca_file: str | None = None
    password_command: str | None = None
    password_env: str | None = None
    keyring: bool = False
    oauth2_token_command: str | None = None
    password: str | None = field(default=None, repr=False)
    folders: tuple[str, ...] = ("INBOX",)
    backup_folder: str = "Guard/Originals"
    identities: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    connections: int = DEFAULT_CONNECTIONS
    clean: Mapping[str, Any] = field(default_factory=dict)
    """This account's [accounts.NAME.clean] settings (override the top-level [clean])."""

    @property
    def has_secret_source(self) -> bool:
        return bool(
            self.password_command
            or self.password_env
            or self.keyring
            or self.oauth2_token_command
            or self.password is not None
        )

    def __repr__(self) -> str:  # never show a literal password, even in a debugger
        return (
            f"Account(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"username={self.username!r}, tls={self.tls!r})"
        )


@dataclass(frozen=True)
class Config:
    path: Path | None
    accounts: dict[str, Account] = field(default_factory=dict)
    default_account: str | None = None
    warnings: tuple[str, ...] = ()
    clean: Mapping[str, Any] = field(default_factory=dict)
    """The top-level [clean] table: policy, unwrap_security, allow_senders, allow_domains."""

    def account(self, name: str | None = None) -> Account:
        """The named account, else the default one, else the only one."""
        if name is None:
            name = self.default_account
            if name is None:
                if len(self.accounts) == 1:
                    return next(iter(self.accounts.values()))
                if not self.accounts:
                    raise ConfigError(f"no [accounts.NAME] in {self._where()}")
                raise ConfigError(
                    f"several accounts and no default_account in {self._where()}: "
                    f"use --account ({', '.join(sorted(self.accounts))})"
                )
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise ConfigError(
                f"no account {name!r} in {self._where()} (accounts: {known})"
            ) from None

    def find(self, host: str, username: str | None) -> Account | None:
        """The account for `host` (and `username` when given), for imap:// URLs."""
        host_l = host.lower()
        for acc in self.accounts.values():
            if acc.host.lower() == host_l and (username is None or acc.username == username):
                return acc
        return None

    def _where(self) -> str:
        return str(self.path) if self.path else "the config"


@dataclass(frozen=True)
class ImapUrl:
    """`imap://user@host[:port]/FOLDER` (or `imaps://`); the secret comes from the config."""

    host: str
    username: str | None
    port: int | None
    folder: str | None
    tls: str | None  # "ssl" for imaps://, None for imap:// (the account's setting, else ssl)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("GUARD_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "guard" / "config.toml"


def data_dir() -> Path:
    """Where guard keeps its state ($XDG_DATA_HOME/guard, default ~/.local/share/guard)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "guard"


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    import ipaddress  # here: only an IMAP account's host needs it, not a start without one

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_config(
    explicit: str | os.PathLike[str] | None = None, *, missing_ok: bool = False
) -> Config:
    """Read and validate the config. A missing file is an error unless `missing_ok`."""
    path = config_path(explicit)
    try:
        data = path.read_bytes()
        st = path.stat()
    except FileNotFoundError:
        if missing_ok and not explicit:
            return Config(path=path)
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    import tomllib  # here: a start without a config file parses no TOML

    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(raw, path=path, mode=st.st_mode)


_ACCOUNT_KEYS = {
    "clean",
    "host",
    "port",
    "username",
    "tls",
    "ca_file",
    "password_command",
    "password_env",
    "keyring",
    "oauth2_token_command",
    "password",
    "folders",
    "backup_folder",
    "identities",
    "timeout",
    "connections",
}


def parse_config(
    raw: dict[str, Any], *, path: Path | None = None, mode: int | None = None
) -> Config:
    where = str(path) if path else "config"
    unknown_top = set(raw) - {"default_account", "accounts", "clean"}
    if unknown_top:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown_top))}")
    accounts_raw = raw.get("accounts", {})
    if not isinstance(accounts_raw, dict):
        raise ConfigError(f"{where}: 'accounts' must be a table of [accounts.NAME]")
    accounts: dict[str, Account] = {}
    for name, table in accounts_raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [accounts.{name}] must be a table")
        accounts[name] = _parse_account(where, name, table)
    default = raw.get("default_account")
    if default is not None:
        if not isinstance(default, str):
            raise ConfigError(f"{where}: default_account must be a string")
        if default not in accounts:
            known = ", ".join(sorted(accounts)) or "none"
            raise ConfigError(f"{where}: default_account {default!r} is not defined ({known})")
    warnings: list[str] = []
    if mode is not None and mode & (stat.S_IRGRP | stat.S_IROTH):
        literal = [a.name for a in accounts.values() if a.password is not None]
        if literal:
            warnings.append(
                f"warning: {where} holds a password (account {', '.join(literal)}) and is "
                f"readable by other users: chmod 600 it, or use password_command"
            )
    return Config(
        path=path,
        accounts=accounts,
        default_account=default,
        warnings=tuple(warnings),
        clean=parse_clean_table(f"{where}: [clean]", raw.get("clean", {})),
    )


CLEAN_POLICIES = ("default", "strict")


def parse_clean_table(ctx: str, table: Any) -> dict[str, Any]:
    """Check a [clean] table's keys and types (guard.clean.message.Policy reads it)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{ctx} must be a table")
    unknown = set(table) - {"policy", "unwrap_security", "allow_senders", "allow_domains"}
    if unknown:
        raise ConfigError(f"{ctx}: unknown setting(s) {', '.join(sorted(unknown))}")
    if "policy" in table and table["policy"] not in CLEAN_POLICIES:
        raise ConfigError(f"{ctx}: policy must be one of {', '.join(CLEAN_POLICIES)}")
    if not isinstance(table.get("unwrap_security", False), bool):
        raise ConfigError(f"{ctx}: unwrap_security must be true or false")
    for key in ("allow_senders", "allow_domains"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{ctx}: {key} must be a list of strings")
    return dict(table)


def cleaning_settings(config: Config | None, account: Account | None = None) -> dict[str, Any]:
    """The [clean] settings that apply: top level, then the account's, plus the allowlist file
    guard maintains (`guard.mail.allowlist`); allowlists are joined, other keys overridden."""
    from guard.mail.allowlist import load_allowlist

    merged: dict[str, Any] = {}
    for table in (config.clean if config else {}, account.clean if account else {}):
        for key, value in table.items():
            if key in ("allow_senders", "allow_domains"):
                merged[key] = [*merged.get(key, []), *value]
            else:
                merged[key] = value
    senders, domains = load_allowlist()
    merged["allow_senders"] = [*merged.get("allow_senders", []), *senders]
    merged["allow_domains"] = [*merged.get("allow_domains", []), *domains]
    return merged


def _parse_account(where: str, name: str, t: dict[str, Any]) -> Account:
    ctx = f"{where}: [accounts.{name}]"
    unknown = set(t) - _ACCOUNT_KEYS
    if unknown:
        raise ConfigError(f"{ctx}: unknown setting(s) {', '.join(sorted(unknown))}")

    def opt_str(key: str) -> str | None:
        value = t.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{ctx}: {key} must be a non-empty string")
        return value

    def str_list(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = t.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{ctx}: {key} must be a list of strings")
        return tuple(value)

    host = opt_str("host")
    username = opt_str("username")
    if host is None:
        raise ConfigError(f"{ctx}: host is required")
    if username is None:
        raise ConfigError(f"{ctx}: username is required")
    tls = t.get("tls", "ssl")
    if tls not in TLS_MODES:
        raise ConfigError(f"{ctx}: tls must be one of {', '.join(TLS_MODES)} (got {tls!r})")
    if tls == "none" and not is_loopback(host):
        raise ConfigError(f'{ctx}: tls = "none" is only allowed for a loopback host, not {host!r}')
    port = t.get("port", DEFAULT_PORTS[tls])
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"{ctx}: port must be an integer 1-65535")
    ca_file = opt_str("ca_file")
    if ca_file is not None:
        ca_file = str(Path(ca_file).expanduser())
    keyring = t.get("keyring", False)
    if not isinstance(keyring, bool):
        raise ConfigError(f"{ctx}: keyring must be true or false")
    password = t.get("password")
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{ctx}: password must be a string")
    timeout = t.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"{ctx}: timeout must be a positive number of seconds")
    connections = t.get("connections", DEFAULT_CONNECTIONS)
    if (
        not isinstance(connections, int)
        or isinstance(connections, bool)
        or not 1 <= connections <= MAX_CONNECTIONS
    ):
        raise ConfigError(f"{ctx}: connections must be an integer 1-{MAX_CONNECTIONS}")
    acc = Account(
        name=name,
        host=host,
        username=username,
        port=port,
        tls=tls,
        ca_file=ca_file,
        password_command=opt_str("password_command"),
        password_env=opt_str("password_env"),
        keyring=keyring,
        oauth2_token_command=opt_str("oauth2_token_command"),
        password=password,
        folders=str_list("folders", ("INBOX",)),
        backup_folder=opt_str("backup_folder") or "Guard/Originals",
        identities=tuple(i.lower() for i in str_list("identities", ())),
        timeout=float(timeout),
        connections=connections,
        clean=parse_clean_table(f"{ctx}.clean", t.get("clean", {})),
    )
    sources = [
        k
        for k in ("password_command", "password_env", "oauth2_token_command", "password")
        if t.get(k) is not None
    ] + (["keyring"] if keyring else [])
    if len(sources) > 1:
        raise ConfigError(f"{ctx}: choose one of {', '.join(sources)}")
    return acc


def parse_imap_url(url: str) -> ImapUrl:
    """Split `imap://user@host[:port]/FOLDER`. The user may carry '@' (me@example.org@host)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise ConfigError(f"not an imap:// URL: {url!r}")
    netloc = parts.netloc
    if ":" in netloc.rpartition("@")[0] and "@" in netloc:
        raise ConfigError("imap:// URLs must not carry a password: put the secret in the config")
    user: str | None = None
    hostport = netloc
    if "@" in netloc:
        user_raw, _, hostport = netloc.rpartition("@")
        user = unquote(user_raw) or None
    host, port_s = hostport, ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, port_s = hostport[1:end], hostport[end + 2 :]
    elif ":" in hostport:
        host, _, port_s = hostport.rpartition(":")
    if not host:
        raise ConfigError(f"no host in {url!r}")
    port: int | None = None
    if port_s:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ConfigError(f"bad port in imap:// URL: {port_s!r}")
        port = int(port_s)
    folder = unquote(parts.path.lstrip("/")) or None
    if folder and ";" in folder:  # RFC 5092 ;UIDVALIDITY=… parameters are not supported
        folder = folder.split(";", 1)[0] or None
    return ImapUrl(
        host=host.lower(),
        username=user,
        port=port,
        folder=folder,
        tls="ssl" if scheme == "imaps" else None,
    )


def account_for_url(config: Config, url: ImapUrl) -> Account:
    """The config account matching the URL's host and user, with the URL's port/folder applied."""
    acc = config.find(url.host, url.username)
    if acc is None:
        who = f"{url.username}@{url.host}" if url.username else url.host
        raise ConfigError(
            f"no account for {who} in {config._where()}: add one "
            f"(the secret for an imap:// URL comes from the config)"
        )
    changes: dict[str, Any] = {}
    if url.port is not None:
        changes["port"] = url.port
    if url.tls is not None and acc.tls != "ssl":
        changes["tls"] = url.tls
        if url.port is None:
            changes["port"] = DEFAULT_PORTS["ssl"]
    if url.folder:
        changes["folders"] = (url.folder,)
    if not changes:
        return acc
    return replace(acc, **changes)
