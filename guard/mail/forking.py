"""multiprocessing, as guard's workers use it (a fork context, a duplex pipe), imported without
tempfile: multiprocessing.connection imports it (with shutil, bz2, lzma, random, _compression)
for the addresses of Unix-socket listeners, which guard never makes. Its `tempfile` is a
stand-in that imports tempfile when first read (guard.engine.standins); every other importer of
tempfile gets the module itself. ~8 M instructions of the start of a `guard clean PATH` or
`guard scan PATH` that forks workers (callgrind)."""

from __future__ import annotations

from guard.engine.standins import WhenUsed, standing_in

with standing_in(WhenUsed("tempfile"), WhenUsed("bz2"), WhenUsed("lzma")):
    import multiprocessing as multiprocessing
    import multiprocessing.connection  # noqa: F401 - imported here, with the stand-ins
