"""Size and time limits for scanning one message, apart from the parser (guard/engine/mime.py) so
the command line can show their defaults without importing it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that keep a hostile message from eating time and memory (all configurable)."""

    max_message_bytes: int = 64 * 1024 * 1024
    max_text_part_bytes: int = 24 * 1024 * 1024
    max_parts: int = 2000
    max_depth: int = 64
    max_seconds: float = 20.0
    """Wall-clock budget for scanning one message (enforced where a timer can interrupt: the
    main thread of the scanning process, which is where the CLI and its workers scan)."""


DEFAULT_LIMITS = Limits()
