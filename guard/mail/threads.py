"""concurrent.futures' thread pool (the Maildir writer's), imported without logging: its
module imports logging (with traceback, linecache, tokenize, textwrap...) for a logger it uses
only when a future's callback raises or a future is in a state it never reaches, and guard adds
no callbacks. Its `logging` is a stand-in whose logger answers as logging's own, importing
logging when first read (guard.engine.standins); every other importer gets logging itself.
~10 M instructions of a writing `guard clean PATH`'s main process (callgrind)."""

from __future__ import annotations

from guard.engine.standins import LoggingWhenUsed, standing_in

with standing_in(LoggingWhenUsed("logging")):
    from concurrent.futures import ThreadPoolExecutor as ThreadPoolExecutor
