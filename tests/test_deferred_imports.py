"""guard.engine.deferred: selectolax and email.utils imported with stand-ins for the modules they
read only in calls guard never (or rarely) makes. Each answers as the module itself, in a fresh
interpreter (what a start imports shows only there)."""

from __future__ import annotations

import sys

import pytest

from guard.engine import deferred
from tests.fresh_python import python_output

# Every email.utils function and selectolax's logger, read after the stand-ins' imports: the same
# text as from the modules imported plainly.
PROBE = """
import sys, time
{first}
import email.utils, email._parseaddr
import selectolax.lexbor
before = sorted(m for m in ("logging", "random", "socket", "datetime", "calendar", "locale")
                if m in sys.modules)
u = email.utils
print(before if {report_before} else "")
print(u.parseaddr("Ann <ann@example.com>"), u.getaddresses(["a@b.example, C <c@d.example>"]))
print(repr(u.parsedate_to_datetime("Tue, 08 Dec 2026 03:36:26 +0100")))
print(u.formatdate(86400 * 365, localtime=False), u.formatdate(0, usegmt=True))
print(u.format_datetime(u.parsedate_to_datetime("Tue, 08 Dec 2026 03:36:26 -0000")))
print(email._parseaddr.mktime_tz((2026, 12, 8, 3, 36, 26, 0, 1, -1, 3600)))
print(u.make_msgid(domain="x.example").endswith("@x.example>"), len(u.make_msgid()) > 10)
print(u.localtime(u.parsedate_to_datetime("Tue, 08 Dec 2026 03:36:26 +0100")).utcoffset())
logger = selectolax.lexbor.logger
print(logger.name, logger.getEffectiveLevel(), logger is not None)
logger.error("Attempt to unwrap removed node. Does nothing.")  # selectolax's one use
print(selectolax.lexbor.LexborHTMLParser("<p><b>x</b></p>").html)
"""


def _run(first: str, report_before: bool) -> str:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first, report_before=report_before)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "TZ": "Europe/Paris"},
        timeout=60,
    )
    return done.stdout + "\n" + done.stderr


def test_the_stand_ins_answer_as_the_modules() -> None:
    plain = _run("", False)
    deferred_first = _run("import guard.engine.deferred", False)
    assert deferred_first == plain
    assert "Attempt to unwrap removed node" in plain


def test_importing_deferred_imports_none_of_them() -> None:
    out = _run("import guard.engine.deferred", True)
    assert out.splitlines()[0] == "[]"


def test_the_names_are_the_modules_own() -> None:
    import email.utils

    import selectolax.lexbor

    assert deferred.parseaddr is email.utils.parseaddr
    assert deferred.getaddresses is email.utils.getaddresses
    assert deferred.parsedate_to_datetime is email.utils.parsedate_to_datetime
    assert deferred.LexborHTMLParser is selectolax.lexbor.LexborHTMLParser
    assert deferred.LexborNode is selectolax.lexbor.LexborNode


def test_a_stand_in_is_gone_once_its_importer_is_in() -> None:
    code = (
        "import sys, guard.engine.deferred as d;"
        "print([type(sys.modules.get(m)).__name__ for m in ('logging', 'random', 'datetime')])"
    )
    assert python_output(code) == "['NoneType', 'NoneType', 'NoneType']"


@pytest.mark.parametrize("name", ["random", "datetime"])
def test_a_stand_in_read_while_standing_in_imports_the_module(name: str) -> None:
    code = (
        "import sys\n"
        "from guard.engine.standins import WhenUsed, standing_in\n"
        f"with standing_in(WhenUsed({name!r})):\n"
        f"    stand_in = sys.modules[{name!r}]\n"
        "    value = stand_in.__name__, stand_in.__file__.endswith('.py')\n"
        f"print(type(sys.modules[{name!r}]).__name__, value)"
    )
    assert python_output(code) == f"module ('{name}', True)"


def test_forking_imports_multiprocessing_without_tempfile() -> None:
    """guard.mail.forking: multiprocessing and its connections, without tempfile (shutil, bz2,
    lzma, random); a listener's address (what tempfile is there for) still is tempfile's."""
    code = (
        "import sys\n"
        "from guard.mail.forking import multiprocessing\n"
        "import multiprocessing.connection as c\n"
        "names = ('tempfile', 'shutil', 'bz2', 'lzma', 'random')\n"
        "print(sorted(m for m in names if m in sys.modules))\n"
        "a, b = multiprocessing.get_context('fork').Pipe(duplex=True)\n"
        "a.send_bytes(b'x'); print(b.recv_bytes())\n"
        "address = c.arbitrary_address('AF_UNIX')\n"
        "import tempfile\n"
        "print(address.startswith(tempfile.gettempdir()), type(c.tempfile).__name__)"
    )
    assert python_output(code).splitlines() == ["[]", "b'x'", "True WhenUsed"]


URLS = """
import urllib.parse as p
for url in ("http://[::1]:8/x", "http://[v1.x]/", "http://[1.2.3.4]/", "http://[::z]/", "http://a/"):
    try:
        print(p.urlsplit(url).hostname)
    except ValueError as exc:
        print("ValueError", exc)
"""


def test_urllib_parse_without_ipaddress_reads_bracketed_hosts_alike() -> None:
    """guard.cli.launch imports urllib.parse with a stand-in for ipaddress: the hosts it checks
    with ipaddress are read (or refused) as with ipaddress imported plainly."""
    launched = (
        "import sys\n"
        "from guard.engine.standins import WhenUsed, standing_in\n"
        "with standing_in(WhenUsed('ipaddress')):\n"
        "    import urllib.parse\n"
        "print('ipaddress' in sys.modules)\n"
    )
    plain = python_output(URLS)
    assert python_output(launched + URLS) == "False\n" + plain
    assert "::1" in plain and "ValueError" in plain


CALLBACK = """
import sys
{first}
from concurrent.futures import ThreadPoolExecutor
print("logging" in sys.modules, flush=True)
def fails(future):
    raise RuntimeError("callback")
with ThreadPoolExecutor(1) as pool:
    future = pool.submit(int, "7")
    future.result()
    future.add_done_callback(fails)
print(future.result())
"""


def test_the_thread_pool_logs_as_concurrent_futures_does() -> None:
    """guard.mail.threads: concurrent.futures without logging until its logger is used; a raising
    callback is logged (to stderr, by logging's last resort) as with logging imported plainly."""
    import subprocess

    def run(first: str) -> tuple[str, list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", CALLBACK.format(first=first)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        lines = [line for line in done.stderr.splitlines() if " at 0x" not in line]
        return done.stdout, lines

    plain_out, plain_err = run("")
    out, err = run("import guard.mail.threads")
    assert plain_out == "True\n7\n" and out == "False\n7\n"
    assert err == plain_err and "RuntimeError: callback" in err
