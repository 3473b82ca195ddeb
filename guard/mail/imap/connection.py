"""Connecting and logging in to an IMAP server, with every failure turned into a one-line error.

- TLS: "ssl" (implicit TLS, default), "starttls" (refused if the server does not offer it: never a
  silent downgrade), "none" (only for loopback hosts; the config refuses it elsewhere).
- Certificates and host names are always verified, against the system's CAs plus `ca_file`.
- Every socket operation has a timeout (connect and read).
- Errors are `ImapError` subclasses carrying an exit code; their messages never include a secret
  (the server's own text is included for NO/BAD answers, which never echo a password).
"""

from __future__ import annotations

import base64
import errno
import imaplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient import exceptions as imap_exc
from imapclient.imapclient import SocketTimeout

from guard.mail.config import Account, is_loopback
from guard.mail.exitcodes import ExitCode
from guard.mail.imap.tls import CaFileError, TlsContext, make_context
from guard.mail.secrets import Credentials

T = TypeVar("T")

# The largest literal (a message, a header block, a text part) guard accepts from a server. Every
# fetch is bounded by guard's own size limits before it is sent (64 MiB messages by default), so a
# bigger announcement is a broken or hostile server: refused before any memory is reserved for it
# (imaplib would otherwise allocate the announced size at once: MemoryError, or gigabytes held).
MAX_LITERAL_BYTES = 1 << 30


class ImapError(Exception):
    """A failure talking to the server; str(exc) is one line, `exit_code` is documented."""

    exit_code: ExitCode = ExitCode.SERVER


class AuthError(ImapError):
    exit_code = ExitCode.AUTH


class ConnectError(ImapError):
    exit_code = ExitCode.CONNECT


class TlsError(ImapError):
    exit_code = ExitCode.TLS


class FolderError(ImapError):
    exit_code = ExitCode.FOLDER


class ImapTimeout(ImapError):
    exit_code = ExitCode.TIMEOUT


class ServerError(ImapError):
    exit_code = ExitCode.SERVER


def _one_line(text: object, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def ssl_context(account: Account, ahead: TlsContext | None = None) -> ssl.SSLContext:
    """System trust store plus the account's ca_file; hostname checks on; TLS ≥ 1.2 (made here,
    or `ahead`: guard.mail.imap.tls.TlsContext)."""
    try:
        return ahead.get() if ahead is not None else make_context(account)
    except CaFileError as exc:
        cause = exc.cause
        raise TlsError(
            f"cannot load ca_file {account.ca_file}: "
            f"{_one_line(getattr(cause, 'strerror', None) or cause)}"
        ) from None


def _quiet(client: IMAPClient) -> None:
    """Switch off imaplib's debug trace, which imapclient turns on (level 5) to feed its logger.

    At that level imaplib formats, for every response, the repr of all its data (each fetched
    literal, then the whole list again when the command ends) only for the logger to drop it at
    any level above DEBUG: that was most of the client-side CPU of a large fetch. guard never
    wants those lines anyway (they would quote the mail it reads)."""
    imap: Any = client._imap
    imap.debug = 0


def _bound_literals(client: IMAPClient) -> None:
    """Refuse literals above MAX_LITERAL_BYTES (the connection is dropped: its stream is lost)."""
    imap: Any = client._imap
    read: Callable[[int], bytes] = imap.read

    def bounded(size: int) -> bytes:
        if size > MAX_LITERAL_BYTES:
            with suppress(OSError):
                imap.sock.shutdown(socket.SHUT_RDWR)
            raise imaplib.IMAP4.abort(
                f"the server announced a literal of {size} bytes "
                f"(more than {MAX_LITERAL_BYTES} bytes): refused"
            )
        return read(size)

    imap.read = bounded


def describe(account: Account) -> str:
    return f"{account.host}:{account.port}"


def translate(exc: BaseException, account: Account, doing: str = "") -> ImapError:
    """Map any exception raised while talking to the server to an ImapError."""
    where = describe(account)
    ctx = f" while {doing}" if doing else ""
    if isinstance(exc, ImapError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsError(
            f"TLS certificate of {where} not trusted: {_one_line(exc.verify_message or exc.reason)}"
            " (set ca_file for a private CA)"
        )
    if isinstance(exc, ssl.SSLError):
        return TlsError(f"TLS failure with {where}{ctx}: {_one_line(exc.reason or exc)}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ImapTimeout(f"{where} did not answer within the timeout{ctx}")
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"cannot resolve {account.host}: {_one_line(exc.strerror)}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"cannot connect to {where}: connection refused")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return ServerError(f"{where} closed the connection{ctx}")
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED):
            return ConnectError(f"cannot connect to {where}: {_one_line(exc.strerror)}")
        return ServerError(f"connection to {where} failed{ctx}: {_one_line(exc.strerror or exc)}")
    if isinstance(exc, imap_exc.LoginError):
        return AuthError(f"login to {where} refused: {_one_line(_server_text(exc))}")
    if isinstance(exc, imaplib.IMAP4.abort):
        text = _one_line(exc)
        if "socket error: EOF" in text or "EOF" in text:
            return ServerError(f"{where} closed the connection{ctx}")
        if "timed out" in text:
            return ImapTimeout(f"{where} did not answer within the timeout{ctx}")
        return ServerError(f"{where} broke the connection{ctx}: {text}")
    if isinstance(exc, imaplib.IMAP4.error):
        return ServerError(f"{where} refused{ctx}: {_one_line(_server_text(exc))}")
    return ServerError(f"unexpected {type(exc).__name__} talking to {where}{ctx}")


def _server_text(exc: BaseException) -> str:
    text = str(exc)
    # imapclient's LoginError is "b'[AUTHENTICATIONFAILED] Authentication failed.'"
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return text


@contextmanager
def errors(account: Account, doing: str = "") -> Iterator[None]:
    """Turn whatever happens inside into an ImapError (exceptions chained to None: no secrets)."""
    try:
        yield
    except ImapError:
        raise
    except (OSError, EOFError, imaplib.IMAP4.error, ssl.SSLError, ValueError) as exc:
        raise translate(exc, account, doing) from None


def call(account: Account, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with errors(account, doing):
        return fn(*args, **kwargs)


def connect(
    account: Account, credentials: Credentials, tls: TlsContext | None = None
) -> IMAPClient:
    """Open, secure and authenticate a connection; raises ImapError subclasses. `tls`: the
    account's context, made ahead (TlsContext); else it is made here."""
    timeout = SocketTimeout(connect=min(account.timeout, 30.0), read=account.timeout)
    if account.tls == "none" and not is_loopback(account.host):
        raise TlsError(f"refusing an unencrypted connection to non-loopback host {account.host}")
    ctx = ssl_context(account, tls) if account.tls != "none" else None
    client: IMAPClient | None = None
    try:
        with errors(account, "connecting"):
            client = IMAPClient(
                account.host,
                port=account.port,
                ssl=account.tls == "ssl",
                ssl_context=ctx,
                timeout=timeout,
            )
            _quiet(client)
            _bound_literals(client)
        if account.tls == "starttls":
            with errors(account, "starting TLS"):
                caps = client.capabilities()
                if b"STARTTLS" not in caps:
                    raise TlsError(
                        f'{describe(account)} does not offer STARTTLS (tls = "starttls"): '
                        "refusing to continue unencrypted"
                    )
                try:
                    client.starttls(ctx)
                except imaplib.IMAP4.abort:
                    raise
                except imaplib.IMAP4.error as exc:  # offered, then refused: still a downgrade
                    raise TlsError(
                        f"{describe(account)} refused STARTTLS ({_one_line(_server_text(exc))}): "
                        "refusing to continue unencrypted"
                    ) from None
        with errors(account, "logging in"):
            if credentials.mechanism == "xoauth2":
                try:
                    client.oauth2_login(credentials.username, credentials.secret.reveal())
                except imaplib.IMAP4.error as exc:
                    raise AuthError(
                        f"XOAUTH2 login to {describe(account)} refused: "
                        f"{_one_line(_server_text(exc))}"
                    ) from None
            else:
                client.login(credentials.username, credentials.secret.reveal())
        return client
    except ImapError as exc:
        if client is not None:
            close(client)
        raise _scrubbed(exc, credentials) from None
    except BaseException:
        if client is not None:
            close(client)
        raise


def _secret_forms(credentials: Credentials) -> list[str]:
    """How a secret can come back in a server's answer: as is, base64, or (XOAUTH2) inside the
    base64 of the SASL string imapclient sends."""
    secret = credentials.secret.reveal()
    if not secret:
        return []
    sasl = f"user={credentials.username}\1auth=Bearer {secret}\1\1"
    return [
        secret,
        base64.b64encode(secret.encode()).decode("ascii"),
        base64.b64encode(sasl.encode()).decode("ascii"),
    ]


def _scrubbed(exc: ImapError, credentials: Credentials) -> ImapError:
    """`exc` without the secret: a hostile or careless server may echo the login back in its NO
    text, which the message quotes (also a secret cut short by the one-line limit)."""
    text = original = str(exc)
    for form in _secret_forms(credentials):
        text = text.replace(form, "***")
        if text.endswith("…"):
            body = text[:-1]
            for n in range(min(len(form), len(body)), 2, -1):
                if body.endswith(form[:n]):
                    text = body[:-n] + "***…"
                    break
    if text == original:
        return exc
    return type(exc)(text)


def close(client: IMAPClient) -> None:
    """Log out politely if possible; never raises."""
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - never a traceback
        with suppress(Exception):
            client.shutdown()


def list_folders(client: IMAPClient) -> list[str]:
    names: list[str] = []
    for flags, _delim, name in client.list_folders():
        if b"\\Noselect" in flags or b"\\NonExistent" in flags:
            continue
        names.append(name if isinstance(name, str) else name.decode("utf-8", "replace"))
    return sorted(names, key=lambda n: (n.upper() != "INBOX", n.lower()))


def examine(client: IMAPClient, account: Account, folder: str) -> dict[bytes, Any]:
    """Open `folder` read-only (EXAMINE); an unknown folder lists the existing ones."""
    with errors(account, f"opening {folder!r}"):
        try:
            return dict(client.select_folder(folder, readonly=True))
        except imap_exc.IMAPClientAbortError:
            raise
        except imaplib.IMAP4.error as exc:
            text = _one_line(_server_text(exc))
            if "NONEXISTENT" in text.upper() or "exist" in text.lower():
                existing = list_folders(client)
                shown = ", ".join(existing[:30]) + (" …" if len(existing) > 30 else "")
                raise FolderError(
                    f"no folder {folder!r} on {describe(account)}; existing: {shown or 'none'}"
                ) from None
            raise
