"""Exit codes of every guard command (documented in docs/exit-codes.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the command ran (a scan that found trackers is still a success)
    INTERNAL = 1  # a bug in guard: please report it
    USAGE = 2  # bad command line
    NO_INPUT = 3  # a path to scan does not exist or cannot be read
    RULES = 4  # a rule file is malformed
    CONFIG = 5  # the config file is missing, unreadable or invalid
    # IMAP (guard scan --account / imap://, guard report); documented in docs/imap.md
    AUTH = 20  # the server refused the login (wrong password/token), or the secret could not be had
    CONNECT = 21  # the server cannot be reached (refused, no route, DNS failure)
    TLS = 22  # TLS failed: untrusted/invalid certificate, handshake error, STARTTLS not offered
    FOLDER = 23  # a folder to scan does not exist (the message lists the existing ones)
    TIMEOUT = 24  # the server stopped answering within the timeout
    SERVER = 25  # the server disconnected mid-scan or broke the protocol
    STATE = 26  # the local state database cannot be opened or written
    # Cleaning on IMAP (guard clean --account, guard watch, guard restore); see docs/clean-imap.md
    LOCKED = 27  # another guard process (clean/restore/watch) holds the account's lock
    PARTIAL = 28  # some messages could not be cleaned/restored (each reported); the rest were
