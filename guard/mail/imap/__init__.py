"""guard on an IMAP server: the connection, scanning an account, fetching parts, cleaning
(cleaner, by step: recovery, append and verify, move, receipts; common and steps are what they
share), restore, their journal, and watch (IDLE)."""
