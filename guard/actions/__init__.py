"""What guard does to mail on a server: cleaning (append/verify/move), restoring, the journal."""
