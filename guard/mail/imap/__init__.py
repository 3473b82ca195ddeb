"""guard on an IMAP server: the connection, scanning an account, fetching parts, cleaning
actions (append and verify, move, receipts, restore) and their journal, and watch (IDLE)."""
