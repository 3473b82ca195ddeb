"""What the app opens on, decided before Textual starts (so bad arguments exit with a one-line
error and a documented code, like every other command)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from guard.mail.config import Config, ConfigError, load_config
from guard.mail.exitcodes import ExitCode
from guard.tui.data import ImapFolder, LocalSource, Source


class LaunchError(Exception):
    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Launch:
    sources: list[Source] = field(default_factory=list)
    """Everything the sidebar lists: the path given, then every configured account's folders."""
    initial: Source | None = None
    first_run: bool = False
    """No config and no path: explain how to add an account."""
    config_path: str = ""
    warnings: list[str] = field(default_factory=list)


def _folders(config: Config, explicit: str | None) -> list[Source]:
    out: list[Source] = []
    for name in sorted(config.accounts):
        account = config.accounts[name]
        out += [ImapFolder(account, f, explicit) for f in account.folders]
    return out


def resolve(ns: argparse.Namespace) -> Launch:
    """`guard ui [PATH | --account NAME] [--folder F] [--config FILE]`, or bare `guard`."""
    path: str | None = getattr(ns, "path", None)
    account_name: str | None = getattr(ns, "account", None)
    explicit: str | None = getattr(ns, "config", None)
    folder_opt = getattr(ns, "folder", None)
    folder: str | None = folder_opt[0] if isinstance(folder_opt, list) else folder_opt
    if path and account_name:
        raise LaunchError("ui: give a PATH or --account NAME, not both", ExitCode.USAGE)
    try:
        config = load_config(explicit, missing_ok=not account_name)
    except ConfigError as exc:
        if path:  # a broken config must not keep anyone from looking at local files
            return Launch([LocalSource(path)], LocalSource(path), warnings=[str(exc)])
        raise LaunchError(str(exc), ExitCode.CONFIG) from None
    launch = Launch(
        sources=_folders(config, explicit),
        config_path=str(config.path or ""),
        warnings=list(config.warnings),
    )
    if path:
        if not Path(path).exists():
            raise LaunchError(f"{path}: no such file or directory", ExitCode.NO_INPUT)
        local = LocalSource(path)
        launch.sources.insert(0, local)
        launch.initial = local
        return launch
    if not config.accounts:
        launch.first_run = True
        return launch
    try:
        account = config.account(account_name)
    except ConfigError as exc:
        if account_name:
            raise LaunchError(str(exc), ExitCode.CONFIG) from None
        # several accounts and no default: open the first, say why
        account = config.accounts[sorted(config.accounts)[0]]
        launch.warnings.append(f"{exc}; showing {account.name}")
    wanted = folder or account.folders[0]
    launch.initial = ImapFolder(account, wanted, explicit)
    if launch.initial not in launch.sources:
        launch.sources.append(launch.initial)
    return launch
