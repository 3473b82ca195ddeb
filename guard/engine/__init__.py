"""The pure core: raw bytes -> parsed message -> findings -> report, and the rules.

May import: the standard library, selectolax, and (at build time only) tldextract. No I/O but
reading the bundled or the user's rule files; never Textual, imapclient or sqlite3, and nothing from
guard.clean, guard.mail, guard.cli or guard.tui (the import-linter contract in pyproject.toml)."""
