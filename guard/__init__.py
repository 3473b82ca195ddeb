"""guard: find and remove e-mail tracking on the recipient's side."""

__version__ = "0.1.0"
