"""Getting an account's secret: password_command, password_env, keyring, or an OAuth2 token.

Secrets live in a `Secret` whose repr and str hide the value, so they cannot leak into logs,
errors or tracebacks by accident; only `reveal()` gives the value, at the moment of login.
Error messages name the source (the command's exit status, the variable's name), never the value
or the command's output.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from guard.mail.config import Account

COMMAND_TIMEOUT = 120.0  # a password manager may ask for a passphrase


class SecretError(Exception):
    """The secret could not be had; str(exc) is a one-line message without the secret."""


class Secret:
    """A string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:  # for a worker started by spawn
        return (Secret, (self._value,))


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: Secret
    mechanism: str  # "password" (IMAP LOGIN) or "xoauth2"


def _run(command: str, what: str, account: str) -> str:
    """Run a user's command through the shell; its stdout's first line is the secret."""
    try:
        proc = subprocess.run(
            command,
            shell=True,  # the user's own command line from their own config (pipes are common)
            stdout=subprocess.PIPE,
            stderr=None,  # let a password manager talk to the terminal
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SecretError(
            f"{what} for account {account!r} did not finish within {COMMAND_TIMEOUT:.0f} s"
        ) from None
    except OSError as exc:
        raise SecretError(f"{what} for account {account!r} could not run: {exc.strerror}") from None
    if proc.returncode != 0:
        raise SecretError(f"{what} for account {account!r} failed (exit status {proc.returncode})")
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise SecretError(f"{what} for account {account!r} printed nothing")
    return value


def get_credentials(account: Account) -> Credentials:
    """Resolve the account's secret (runs password_command / oauth2_token_command if set)."""
    name = account.name
    if account.oauth2_token_command:
        token = _run(account.oauth2_token_command, "oauth2_token_command", name)
        return Credentials(account.username, Secret(token), "xoauth2")
    if account.password_command:
        value = _run(account.password_command, "password_command", name)
        return Credentials(account.username, Secret(value), "password")
    if account.password_env:
        env = os.environ.get(account.password_env)
        if not env:
            raise SecretError(
                f"password_env for account {name!r}: ${account.password_env} is not set or empty"
            )
        return Credentials(account.username, Secret(env), "password")
    if account.keyring:
        return Credentials(account.username, Secret(_from_keyring(account)), "password")
    if account.password is not None:
        return Credentials(account.username, Secret(account.password), "password")
    raise SecretError(
        f"account {name!r} has no secret: set password_command, password_env, keyring = true "
        f"or oauth2_token_command"
    )


def _from_keyring(account: Account) -> str:
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise SecretError(
            f"account {account.name!r} uses keyring, but the 'keyring' package is not installed"
        ) from None
    service = f"guard:{account.host}"
    try:
        value = keyring.get_password(service, account.username)
    except Exception as exc:  # noqa: BLE001 - never a traceback
        raise SecretError(
            f"keyring lookup for account {account.name!r} failed ({type(exc).__name__})"
        ) from None
    if not value:
        raise SecretError(
            f"no password in the keyring for service {service!r}, user {account.username!r} "
            f"(store one with: keyring set {service} {account.username})"
        )
    return str(value)
