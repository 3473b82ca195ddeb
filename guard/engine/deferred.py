"""selectolax's parser and email.utils, imported without what they read only in calls guard never
makes (or makes rarely): every command's start imports both.

- selectolax.lexbor imports `logging` (with traceback, linecache, tokenize, textwrap…) for one
  `logger.error` (unwrapping a removed node, which guard never does): its logger here answers
  every attribute with `logging.getLogger("selectolax")`'s, importing logging when first read.
- email.utils imports `random` and `socket` (for make_msgid), `datetime` (formatdate, localtime,
  parsedate_to_datetime), and email._parseaddr `calendar` (with locale; for mktime_tz). guard's
  addresses (parseaddr, getaddresses) need none of them: the module each of those names finds
  imports the real module when one of its attributes is first read (`WhenUsed`).

A stand-in is in sys.modules only while that one module is imported: every other importer of
logging, random, socket, datetime or calendar gets the module itself. Where one of them is in
sys.modules already, the importer gets it as ever. Nothing behaves differently: each stand-in
answers every attribute with the real module's (tests/test_startup.py checks that a start
imports none of them; tests/test_deferred_imports.py that the functions answer as the stdlib's).
"""

from __future__ import annotations

from guard.engine.standins import LoggingWhenUsed, WhenUsed, standing_in

with standing_in(LoggingWhenUsed("logging")):
    from selectolax.lexbor import LexborHTMLParser as LexborHTMLParser
    from selectolax.lexbor import LexborNode as LexborNode

with standing_in(*(WhenUsed(name) for name in ("random", "socket", "datetime", "calendar"))):
    from email.utils import getaddresses as getaddresses
    from email.utils import parseaddr as parseaddr
    from email.utils import parsedate_to_datetime as parsedate_to_datetime
