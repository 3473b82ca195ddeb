"""The pure cleaner: a message, its findings and a policy -> cleaned bytes (plan and rewrite).

May import: guard.engine and the standard library. No I/O; never Textual, imapclient or sqlite3,
and nothing from guard.mail, guard.cli or guard.tui."""
