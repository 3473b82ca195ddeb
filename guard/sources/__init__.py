"""Where raw messages come from: local files (files.py) and IMAP (imap.py)."""
