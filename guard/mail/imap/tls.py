"""An IMAP account's TLS context, made ahead in a thread (`TlsContext`).

Loading the system's CA certificates is most of a context (~25 ms of CPU in OpenSSL for ~150
certificates, ~250 M instructions), and OpenSSL does it without the interpreter lock: started
first, it runs on another core while the command imports the IMAP client, reads its state and
loads its rules. Light to import (ssl and threading) so that a command can start it before the
rest; guard.mail.imap.connection turns its failures into TlsError.
"""

from __future__ import annotations

import ssl
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.mail.config import Account


class CaFileError(Exception):
    """The account's ca_file cannot be loaded; `cause` is the OSError or ssl.SSLError."""

    def __init__(self, cause: OSError | ssl.SSLError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def make_context(account: Account) -> ssl.SSLContext:
    """System trust store plus the account's ca_file; hostname checks on; TLS >= 1.2. Raises
    CaFileError when the ca_file cannot be loaded."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if account.ca_file:
        try:
            ctx.load_verify_locations(cafile=account.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise CaFileError(exc) from None
    return ctx


class TlsContext:
    """`make_context(account)` in a thread from now on; `get` waits for it. Not a daemon: a run
    that ends before connecting (a held lock) waits for it at exit rather than let OpenSSL's own
    exit handlers run while it loads."""

    def __init__(self, account: Account) -> None:
        self._context: ssl.SSLContext | None = None
        self._failed: BaseException | None = None

        def make() -> None:
            try:
                self._context = make_context(account)
            except BaseException as exc:  # noqa: BLE001 - raised by get()
                self._failed = exc

        self._thread = threading.Thread(target=make, name="guard-tls")
        self._thread.start()

    def get(self) -> ssl.SSLContext:
        """The context, or make_context's error (CaFileError for a ca_file it cannot load)."""
        self._thread.join()
        if self._failed is not None:
            raise self._failed
        assert self._context is not None
        return self._context
