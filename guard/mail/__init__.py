"""Where mail lives and how guard touches it: local files, scanning them on every core, the
IMAP connection and everything done over it (guard.mail.imap), the state store, locks, config
and secrets.

May import: guard.engine, guard.clean, imapclient, sqlite3. Never guard.cli or guard.tui.
"""
