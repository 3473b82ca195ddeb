"""Hostile mail: generators, a mutation engine over the sample corpora, hypothesis strategies.

Every generator is a pure function of a `random.Random` and a `Size`, so an input is fully
described by (kind, seed, size): bench/fuzz.py regenerates input n from its seed in a worker
process instead of shipping megabytes through a pipe, and a failure can be replayed exactly.
Large inputs (20 MB HTML parts, thousands of MIME parts) are built by repeating byte strings,
which costs milliseconds.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIRS = (ROOT / "samples", ROOT / "eval")


@dataclass(frozen=True, slots=True)
class Size:
    """How big the big inputs get. FULL is the issue's figures; SMALL keeps CI fast."""

    html_bytes: int  # the "20 MB HTML part"
    header_bytes: int  # the "200 KB header line"
    max_parts: int  # boundary bombs
    max_depth: int  # MIME nesting
    html_depth: int  # HTML element nesting
    repeat: int  # repetitions in CSS, srcset, attribute lists, base64 lines


FULL = Size(
    html_bytes=20_000_000,
    header_bytes=200_000,
    max_parts=5000,
    max_depth=500,
    html_depth=100_000,
    repeat=300_000,
)
SMALL = Size(
    html_bytes=200_000,
    header_bytes=50_000,
    max_parts=3000,
    max_depth=300,
    html_depth=20_000,
    repeat=10_000,
)


@dataclass(frozen=True, slots=True)
class FuzzInput:
    kind: str
    data: bytes
    mbox: bool = False  # True: an mbox file (split by guard.mail.files), not one message

    def describe(self) -> str:
        return f"{self.kind} ({len(self.data)} bytes{', mbox' if self.mbox else ''})"


# -- building blocks ------------------------------------------------------------------------------

PIXEL = b'<img src="https://pixel.example.com/open?u=1" width="1" height="1" alt="">'
TRACKED_LINK = b'<a href="https://example.com/?utm_source=news&utm_medium=email">shop</a>'
SENDERS = (b"news@shop.example.com", b"a@b.example", b"", b"<>", b"@", b"x@\xff\xfe.example")

CHARSET_LABELS = (
    "utf-8", "UTF-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "utf-16le", "utf-32",
    "utf-7", "utf-8-sig", "iso-2022-jp", "shift_jis", "gb18030", "big5", "koi8-r", "hz",
    "x-unknown", "unknown-8bit", "", '"', '""', "utf8\x00", "base64", "rot13", "zlib", "hex",
    "uu", "quopri", "undefined", "punycode", "idna", "unicode-escape", "raw-unicode-escape",
    "mbcs", "cp65001", "x" * 300, "utf-8; charset=latin1", "=?utf-8?q?x?=", "\xff\xfe",
    "latin1\r\n", "charmap", "utf_16_be", "cp037", "tis-620",
)  # fmt: skip
TRANSFER_ENCODINGS = (
    "", "7bit", "8bit", "binary", "base64", "BASE64", "quoted-printable", "x-uuencode",
    "base64; junk", " base64 ", "quoted-printable\x00", "gzip", "b", "q",
)  # fmt: skip
CONTENT_TYPES = (
    "text/html", "text/plain", "multipart/mixed", "multipart/alternative", "multipart/related",
    "multipart/digest", "message/rfc822", "application/octet-stream", "text/html; charset=",
    "text/", "/html", "", "multipart/", "text/html; boundary=", 'multipart/mixed; boundary=""',
    "TEXT/HTML", "text/html;;;;charset=utf-8", "text/html; charset*=utf-8''x",
    "text/html; charset*0=ut; charset*1=f-8", "message/partial", "message/external-body",
)  # fmt: skip
NASTY_TOKENS = (
    b"\x00", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\xff", b"\xc3", b"\xed\xa0\x80", b"=",
    b"=\r\n", b"=XY", b"--", b"--b\n", b"From ", b"\nFrom x\n", b"=?utf-8?B?", b"?=",
    b"=?x-unknown?Q?a=FF?=", b"<", b">", b"<!--", b"-->", b"<![endif]-->", b"<!--[if mso]>",
    b"url(", b")", b"\\", b'"', b"'", b"&#", b"&#x10FFFF;", b"&amp", b"<style>", b"</style>",
    b"<base href=http://e.example/>", b"srcset=", b"Content-Type: multipart/mixed; boundary=b\n",
    b"Content-Transfer-Encoding: base64\n", b"\t", b" ", b"\x1b$B", b"\xef\xbb\xbf",
)  # fmt: skip


def header(name: str | bytes, value: str | bytes, eol: bytes = b"\n") -> bytes:
    n = name.encode("latin-1", "replace") if isinstance(name, str) else name
    v = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return n + b": " + v + eol


def message(
    body: bytes,
    content_type: str | bytes = "text/html; charset=utf-8",
    *,
    extra: bytes = b"",
    sender: bytes = b"news@shop.example.com",
    eol: bytes = b"\n",
) -> bytes:
    return (
        header("From", sender, eol)
        + header("To", "me@example.org", eol)
        + header("Subject", "fuzz", eol)
        + extra
        + header("Content-Type", content_type, eol)
        + eol
        + body
    )


def html_doc(inner: bytes) -> bytes:
    return b"<html><head><title>t</title></head><body>" + inner + PIXEL + TRACKED_LINK + b"</body>"


def _ascii(rng: random.Random, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _junk(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _repeat_to(chunk: bytes, size: int) -> bytes:
    return chunk * max(1, size // max(1, len(chunk)))


# -- generators: one hostile family each ---------------------------------------------------------

Generator = Callable[[random.Random, Size], FuzzInput]


def gen_truncated(rng: random.Random, size: Size) -> FuzzInput:
    """A well-formed multipart message cut anywhere: inside a header, a boundary, an entity."""
    raw = _multipart(rng, rng.randrange(1, 6), rng.choice(("b", "=_b", "a" * 70)))
    return FuzzInput("truncated", raw[: rng.randrange(0, len(raw) + 1)])


def _multipart(rng: random.Random, parts: int, boundary: str) -> bytes:
    body = b"preamble\n"
    for _ in range(parts):
        body += f"--{boundary}\n".encode()
        body += header("Content-Type", rng.choice(("text/html", "text/plain")) + "; charset=utf-8")
        cte = rng.choice(("7bit", "base64", "quoted-printable"))
        body += header("Content-Transfer-Encoding", cte) + b"\n"
        content = html_doc(b"<p>h\xc3\xa9llo</p>")
        if cte == "base64":
            content = base64.encodebytes(content)
        elif cte == "quoted-printable":
            import quopri

            content = quopri.encodestring(content)
        body += content + b"\n"
    body += f"--{boundary}--\nepilogue\n".encode()
    return message(body, f'multipart/alternative; boundary="{boundary}"')


def gen_charset(rng: random.Random, size: Size) -> FuzzInput:
    """Wrong and unknown charset labels, Python-only codecs, bytes that are invalid for them."""
    label = rng.choice(CHARSET_LABELS)
    body = rng.choice(
        (
            html_doc("<p>ünïcødé €</p>".encode(rng.choice(("utf-8", "cp1252", "utf-16")))),
            html_doc(_junk(rng, rng.randrange(1, 3000))),
            html_doc(b"+ADw-img src=+ACI-https://pixel.example.com/o+ACI-+AD4-"),  # UTF-7
            html_doc(b"\\u0068ttps://x.example/ \\N{bad} \\x"),
            html_doc(_repeat_to(b"a", rng.randrange(1, 200_000)) + b"-b"),  # punycode-shaped
        )
    )
    ctype = f"text/html; charset={label}" if rng.random() < 0.8 else f'text/html; charset="{label}"'
    subject = f"=?{label}?{rng.choice('BQbqX')}?{_ascii(rng, 20, 'AZaz09+/=_?')}?="
    return FuzzInput("charset", message(body, ctype, extra=header("Subject", subject)))


def gen_transfer(rng: random.Random, size: Size) -> FuzzInput:
    """Broken base64 and quoted-printable, and transfer encodings nobody defined."""
    cte = rng.choice(TRANSFER_ENCODINGS)
    payload = base64.b64encode(html_doc(b"<p>x</p>"))
    variants = (
        payload[: rng.randrange(len(payload))],  # truncated, wrong padding
        payload.replace(b"A", b"=", rng.randrange(1, 5)),  # padding in the middle
        b"".join(bytes([c]) + rng.choice((b"", b"\x00", b"\n", b"!", b"\xff")) for c in payload),
        _repeat_to(b"====", rng.randrange(1, size.repeat)),
        _repeat_to(payload, rng.randrange(1000, size.repeat * 5)),  # one enormous line
        b"=3Cimg src=3D=22https://pixel.example.com/o=22=3E=\n=ZZ=\r=",
        _repeat_to(b"=\n", rng.randrange(1, size.repeat)),  # soft breaks only
        _repeat_to(b"=F", rng.randrange(1, size.repeat)),
        html_doc(b"=\r\n" * 50 + b"=3D=3d=3"),
        _junk(rng, rng.randrange(0, 5000)),
    )
    extra = header("Content-Transfer-Encoding", cte)
    return FuzzInput("transfer", message(rng.choice(variants), extra=extra))


def gen_header_bytes(rng: random.Random, size: Size) -> FuzzInput:
    """Invalid UTF-8, raw 8-bit and NUL bytes, broken encoded words, in names and values."""
    fields = []
    for _ in range(rng.randrange(1, 20)):
        name = rng.choice(
            (b"From", b"To", b"Cc", b"Subject", b"Content-Type", b"Disposition-Notification-To",
             b"Return-Receipt-To", b"X-Guard", b"Message-ID", b"Date", b"Fr\x00om", b"\xffX",
             b" From", b"From ", b"", b"Content-Transfer-Encoding")
        )  # fmt: skip
        value = b"".join(rng.choice(NASTY_TOKENS) for _ in range(rng.randrange(0, 30)))
        value += rng.choice(SENDERS)
        fields.append(name + rng.choice((b": ", b":", b" : ", b"")) + value + b"\n")
    if rng.random() < 0.5:
        fields.append(b"=?utf-8?B?" + _junk(rng, 40) + b"?= =?utf-8?Q?=FF=C3?=\n")
    raw = b"".join(fields) + b"\n" + html_doc(b"\x00<p>\x00</p>")
    return FuzzInput("header-bytes", raw)


def gen_nul(rng: random.Random, size: Size) -> FuzzInput:
    """NUL bytes everywhere: headers, boundaries, tags, URLs."""
    raw = _multipart(rng, 3, "b\x00x" if rng.random() < 0.5 else "b")
    for _ in range(rng.randrange(1, 50)):
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + b"\x00" * rng.randrange(1, 4) + raw[at:]
    return FuzzInput("nul", raw)


def gen_deep_mime(rng: random.Random, size: Size) -> FuzzInput:
    """Multiparts (or message/rfc822) nested hundreds deep, closed or not."""
    depth = rng.randrange(50, size.max_depth + 1)
    rfc822 = rng.random() < 0.3
    same_boundary = rng.random() < 0.3
    head: list[bytes] = []
    tail: list[bytes] = []
    for level in range(depth):
        if rfc822:
            head.append(b"Content-Type: message/rfc822\n\nFrom: x@y.example\n")
            continue
        b = b"b" if same_boundary else f"b{level}".encode()
        head.append(b'Content-Type: multipart/mixed; boundary="' + b + b'"\n\n--' + b + b"\n")
        if rng.random() < 0.7:
            tail.append(b"\n--" + b + b"--\n")
    leaf = b"Content-Type: text/html\n\n" + html_doc(b"deep")
    raw = header("From", "a@b.example") + b"".join(head) + leaf + b"".join(reversed(tail))
    return FuzzInput("deep-mime", raw)


def gen_boundary_bomb(rng: random.Random, size: Size) -> FuzzInput:
    """Thousands of parts, boundaries that prefix each other, delimiter lines without parts."""
    mode = rng.randrange(5)
    if mode == 0:  # thousands of parts
        n = rng.randrange(1000, size.max_parts + 1)
        part = b"--b\nContent-Type: text/html\n\n" + PIXEL + b"\n"
        body = part * n + b"--b--\n"
        return FuzzInput("boundary-bomb", message(body, 'multipart/mixed; boundary="b"'))
    if mode == 1:  # nested boundaries "a", "aa", "aaa"…: each a prefix of the next
        depth = rng.randrange(10, 60)
        raw = b""
        for level in range(1, depth + 1):
            b = b"a" * level
            raw += b'Content-Type: multipart/mixed; boundary="' + b + b'"\n\n--' + b + b"\n"
        raw += b"Content-Type: text/html\n\n" + html_doc(b"") + b"\n"
        raw += b"".join(b"--" + b"a" * level + b"--\n" for level in range(depth, 0, -1))
        return FuzzInput("boundary-bomb", header("From", "a@b.example") + raw)
    if mode == 2:  # delimiter-looking lines that are not delimiters
        body = _repeat_to(b"--bX\n--b \t x\n-- b\n--b--x\n", rng.randrange(10_000, size.repeat * 7))
        return FuzzInput("boundary-bomb", message(body, 'multipart/mixed; boundary="b"'))
    if mode == 3:  # only delimiters: thousands of empty parts
        body = _repeat_to(b"--b\n", rng.randrange(1000, size.repeat))
        return FuzzInput("boundary-bomb", message(body, "multipart/mixed; boundary=b"))
    # a boundary that is a single character / spaces / the whole line
    odd = rng.choice(("-", " ", "--", "b" * 2000, "\t", "=?utf-8?q?b?=", "b\r"))
    body = f"--{odd}\n\n".encode() + html_doc(b"") + f"\n--{odd}--\n".encode()
    return FuzzInput("boundary-bomb", message(body, f'multipart/mixed; boundary="{odd}"'))


def gen_long_header(rng: random.Random, size: Size) -> FuzzInput:
    """200 KB header lines, 100,000 folded lines, many fields, huge parameter lists."""
    n = size.header_bytes
    mode = rng.randrange(7)
    if mode == 0:
        extra = header("Subject", "x" * n)
    elif mode == 1:
        extra = header("Subject", "x") + _repeat_to(b" y\n", n)
    elif mode == 2:
        extra = _repeat_to(b"X-A: y\n", n)
    elif mode == 3:
        extra = header("To", _repeat_to(b"x@y.example, ", n))
    elif mode == 4:
        extra = header("To", rng.choice((b"(", b'"', b"<", b"\\", b"=?", b"@", b",")) * (n // 2))
    elif mode == 5:
        extra = _repeat_to(b"Disposition-Notification-To: a@b.example\n", n)
    else:
        params = _repeat_to(rng.choice((b"a=1; ", b'a="1;"; ', b"a*0=x; ", b";")), n)
        return FuzzInput("long-header", message(html_doc(b""), b"text/html; " + params))
    sender = rng.choice((b"a@b.example", b"(" * (n // 4) + b"a@b.example", b"x" * n))
    return FuzzInput("long-header", message(html_doc(b""), extra=extra, sender=sender))


def gen_huge_html(rng: random.Random, size: Size) -> FuzzInput:
    """An HTML part of `size.html_bytes`, built by repetition (cheap to make)."""
    n = size.html_bytes
    chunk = rng.choice(
        (
            b"<p>hello world</p>\n",
            b"<div>",
            b"<table><tr><td>",
            b'<img src="https://x.example/a.png?utm_source=z">\n',
            b'<a href="https://example.com/?utm_source=a">x</a>\n',
            b"x" * 1000,  # one enormous line
            b"<!--",
        )
    )
    cte = rng.choice(("8bit", "base64", "quoted-printable"))
    if cte == "base64":
        n = n * 3 // 4  # 20 MB once encoded: under the default 24 MiB part limit
    body = PIXEL + _repeat_to(chunk, n)
    if cte == "base64":
        body = base64.encodebytes(body)
    elif cte == "quoted-printable":
        body = body.replace(b"=", b"=3D")  # valid QP, long lines and all
    extra = header("Content-Transfer-Encoding", cte)
    return FuzzInput("huge-html", message(body, extra=extra))


def gen_mbox(rng: random.Random, size: Size) -> FuzzInput:
    """Broken mbox files: `From ` lines missing, quoted, mid-line, CRLF, no blank line before."""
    msgs = []
    for _ in range(rng.randrange(1, 8)):
        sep = rng.choice(
            (b"From a@b Sat Jan  1 00:00:00 2000\n", b"From \n", b"From ", b">From x\n",
             b"From x\r\n", b"", b"From" + b" " * 1000 + b"\n", b"From \xff\x00\n")
        )  # fmt: skip
        body = message(html_doc(rng.choice((b"From here\n", b">From there\n", b"\nFrom x\n"))))
        if rng.random() < 0.3:
            body = body[: rng.randrange(len(body) + 1)]
        msgs.append(sep + body + rng.choice((b"\n", b"", b"\n\n", b"\r\n\r\n")))
    data = b"".join(msgs)
    if not data.startswith(b"From ") and rng.random() < 0.8:
        data = b"From x\n" + data
    return FuzzInput("mbox", data, mbox=True)


def gen_html_structure(rng: random.Random, size: Size) -> FuzzInput:
    """Deeply nested and unclosed HTML: elements, comments, conditional comments, styles."""
    d = rng.randrange(1000, size.html_depth + 1)
    inner = rng.choice(
        (
            b"<div>" * d + PIXEL,
            b"<table><tr><td>" * (d // 3) + PIXEL,
            b"<a href='https://example.com/?utm_source=x'>" * d,
            b"<b><i><u>" * (d // 3) + PIXEL + b"</b>" * d,
            b"<!--[if mso]>" + b'<v:fill src="https://pixel.example.com/v"' + b"<div>" * d,
            b"<style>" + b"@media{" * d + b"body{background:url(https://x.example/b)}",
            b"<img src='https://pixel.example.com/o' width=1" + b" x" * d,  # unclosed tag
            b'<img src="' + b"a" * d,  # unclosed attribute
            b"<svg><image href='https://pixel.example.com/s'/>" + b"<g>" * d,
            b"<base href='https://e.example/'>" * (d // 10) + b"<img src=o.gif width=1>",
            b"<noscript><iframe src='https://x.example/'>" * (d // 10),
            b"<![CDATA[" + b"<img src=https://pixel.example.com/o width=1>" * 100,
            b"<math><mi><mglyph><style><img src=x>" * (d // 10),
            # Formatting elements left open, each different: HTML5 re-opens all of them in every
            # later paragraph (quadratic elements in Lexbor, as in browsers).
            b"".join(b"<p><font id=%d>x" % i for i in range(d // 10)) + PIXEL,
        )
    )
    return FuzzInput("html-structure", message(html_doc(inner)))


def gen_css(rng: random.Random, size: Size) -> FuzzInput:
    """Pathological CSS: url()/@import/image-set floods, escapes, unclosed strings and comments."""
    n = rng.randrange(1000, size.repeat)
    css = rng.choice(
        (
            _repeat_to(b"url(", n),
            _repeat_to(b"url(url(", n) + b"https://x.example/a)",
            _repeat_to(b"@import ", n) + b'"https://x.example/s.css"',
            _repeat_to(b"\\", n),
            _repeat_to(b"\\75 rl(", n),
            _repeat_to(b"\\000075", n),
            _repeat_to(b"/*", n),
            b'url("' + _repeat_to(b'\\"', n),
            b"url('" + _repeat_to(b"\\\n", n),
            _repeat_to(b"image-set(", n),
            _repeat_to(b'image-set("https://x.example/a" 1x,', n),
            _repeat_to(b"background:url(https://x.example/i.png);", n),
            b"@\\69mport 'https://x.example/s.css';" + _repeat_to(b"\\69", n),
            _repeat_to(b"\\10FFFF\\110000\\FFFFFFF", n),
            _repeat_to(b"x:expression(", n),
        )
    )
    where = rng.randrange(3)
    if where == 0:
        inner = b"<style>" + css + b"</style>"
    elif where == 1:
        inner = b"<div style='" + css.replace(b"'", b"&#39;") + b"'>x</div>"
    else:
        inner = b'<img width=1 height=1 style="' + css.replace(b'"', b"&quot;") + b'">'
    return FuzzInput("css", message(html_doc(inner)))


def gen_srcset(rng: random.Random, size: Size) -> FuzzInput:
    """srcset monsters: 100,000 candidates, commas inside URLs, unbalanced parentheses."""
    n = rng.randrange(1000, size.repeat)
    value = rng.choice(
        (
            _repeat_to(b"https://pixel.example.com/o 1x, ", n),
            _repeat_to(b",", n),
            _repeat_to(b"(", n),
            b"https://x.example/a " + _repeat_to(b"(", n) + b", https://pixel.example.com/o 2x",
            _repeat_to(b"a,b,c ", n),
            _repeat_to(b" ", n) + b"https://pixel.example.com/o",
            _repeat_to(b"https://x.example/a,", n),
            _repeat_to(b"u 1x (,) ", n),
        )
    )
    inner = b'<img width="1" height="1" srcset="' + value + b'">'
    if rng.random() < 0.5:
        inner = b"<picture><source srcset='" + value + b"'>" + inner + b"</picture>"
    return FuzzInput("srcset", message(html_doc(inner)))


def gen_attributes(rng: random.Random, size: Size) -> FuzzInput:
    """Huge attribute counts, duplicates, enormous values."""
    n = rng.randrange(1000, size.repeat // 3)
    attrs = rng.choice(
        (
            b"".join(b" a%d=1" % i for i in range(n)),
            _repeat_to(b' src="https://pixel.example.com/o"', n * 30),
            _repeat_to(b" style='background:url(https://x.example/b)'", n * 40),
            b" title='" + b"x" * (n * 10) + b"'",
            _repeat_to(b" x", n) + b" src=https://pixel.example.com/o",
        )
    )
    tag = rng.choice((b"img", b"td", b"a", b"link rel=stylesheet", b"div"))
    inner = b"<" + tag + b" width=1 height=1" + attrs + b">"
    return FuzzInput("attributes", message(html_doc(inner)))


def _srcdoc_chain(depth: int, inner: bytes) -> bytes:
    """`inner` in `depth` iframes, each holding the next as its srcdoc (escaped once per level,
    so the text grows with each level: `&` becomes `&amp;`)."""
    for _ in range(depth):
        escaped = inner.replace(b"&", b"&amp;").replace(b'"', b"&quot;").replace(b"<", b"&lt;")
        inner = b'<iframe srcdoc="' + escaped + b'"></iframe>'
    return inner


def _data_chain(depth: int, inner: bytes, encoded: bool) -> bytes:
    for _ in range(depth):
        if encoded:
            body = b"data:text/html;base64," + base64.b64encode(inner)
        else:
            body = b"data:text/html," + inner.replace(b"%", b"%25").replace(b'"', b"%22")
        inner = b'<iframe src="' + body + b'"></iframe>'
    return inner


def gen_nested(rng: random.Random, size: Size) -> FuzzInput:
    """Documents in documents: deep srcdoc and data: iframe chains, huge data: URLs, cid:
    stylesheets that import thousands of URLs, unterminated and undecodable nested documents."""
    n = rng.randrange(1000, size.repeat)
    depth = rng.randrange(2, 40)
    choice = rng.randrange(8)
    related = b""
    if choice == 0:
        inner = _srcdoc_chain(min(depth, 14), PIXEL)
    elif choice == 1:
        inner = _data_chain(min(depth, 12), PIXEL, encoded=True)  # base64 grows 4/3 a level
    elif choice == 2:
        inner = _data_chain(depth, PIXEL, encoded=False)
    elif choice == 3:  # one huge data: document of many pixels
        inner = b'<iframe src="data:text/html,' + _repeat_to(PIXEL.replace(b'"', b"%22"), n * 20)
        inner += b'"></iframe>'
    elif choice == 4:  # a huge base64 SVG document, and broken base64
        svg = b"<svg xmlns='http://www.w3.org/2000/svg'>" + _repeat_to(
            b"<image href='https://pixel.example.com/s'/>", n * 10
        )
        inner = b'<object data="data:image/svg+xml;base64,' + base64.b64encode(svg) + b'">'
        inner += b'<iframe src="data:text/html;base64,' + _repeat_to(b"=%", n) + b'"></iframe>'
    elif choice == 5:  # many iframes each holding a document: the budget runs out
        inner = _repeat_to(b"<iframe srcdoc='" + PIXEL.replace(b"'", b"&#39;") + b"'></iframe>", n)
    elif choice == 6:  # unterminated srcdoc and data: URL
        inner = b'<iframe srcdoc="' + _repeat_to(b"&lt;iframe srcdoc=&quot;", n)
    else:  # a cid: stylesheet of many imports, and an SVG part
        inner = b'<link rel=stylesheet href="cid:s@x"><img src="cid:v@x">' + PIXEL
        related = (
            b"Content-Type: text/css\nContent-ID: <s@x>\n\n"
            + _repeat_to(b"@import url(https://pixel.example.com/i.css);", n * 40)
            + b"\n--rel\nContent-Type: image/svg+xml\nContent-ID: <v@x>\n\n"
            + b"<svg xmlns='http://www.w3.org/2000/svg'>"
            + _repeat_to(b"<image href='https://pixel.example.com/v'/>", n)
            + b"</svg>\n"
        )
    if not related:
        return FuzzInput("nested", message(html_doc(inner)))
    body = (
        b"--rel\nContent-Type: text/html; charset=utf-8\n\n"
        + html_doc(inner)
        + b"\n--rel\n"
        + related
        + b"--rel--\n"
    )
    return FuzzInput("nested", message(body, "multipart/related; boundary=rel"))


def gen_structured(rng: random.Random, size: Size) -> FuzzInput:
    """A random MIME tree from the tables above: types, charsets, encodings, bodies."""
    return FuzzInput("structured", _random_entity(rng, 0, top=True))


def _random_entity(rng: random.Random, depth: int, top: bool = False) -> bytes:
    ctype = rng.choice(CONTENT_TYPES)
    eol = rng.choice((b"\n", b"\r\n", b"\r"))
    fields = b""
    if top:
        fields += header("From", rng.choice(SENDERS), eol)
    if ctype.startswith("multipart/") and depth < 6:
        b = rng.choice(("b", "b=", "x" * 100, "", "b b"))
        fields += header("Content-Type", f'{ctype}; boundary="{b}"', eol)
        body = b""
        for _ in range(rng.randrange(0, 5)):
            body += b"--" + b.encode() + eol + _random_entity(rng, depth + 1) + eol
        if rng.random() < 0.7:
            body += b"--" + b.encode() + b"--" + eol
        return fields + eol + body
    if ctype == "message/rfc822" and depth < 6:
        fields += header("Content-Type", ctype, eol)
        return fields + eol + _random_entity(rng, depth + 1, top=True)
    charset = rng.choice(CHARSET_LABELS)
    fields += header("Content-Type", f"{ctype}; charset={charset}", eol)
    cte = rng.choice(TRANSFER_ENCODINGS)
    fields += header("Content-Transfer-Encoding", cte, eol)
    if rng.random() < 0.2:
        fields += header("Content-Disposition", rng.choice(("attachment", "inline", "")), eol)
    body = html_doc(b"".join(rng.choice(NASTY_TOKENS) for _ in range(rng.randrange(0, 40))))
    if "base64" in cte.lower() and rng.random() < 0.7:
        body = base64.encodebytes(body)
    return fields + eol + body


# -- the mutation engine --------------------------------------------------------------------------


@cache
def corpus() -> tuple[tuple[str, bytes], ...]:
    """Every message file under samples/ and eval/, and every message of their mbox files."""
    files: list[tuple[str, bytes]] = []
    for directory in CORPUS_DIRS:
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.suffix in (".md", ".toml", ".py") or path.name[0] == ".":
                continue
            data = path.read_bytes()
            name = str(path.relative_to(ROOT))
            if data.startswith(b"From "):
                files.append((name, data))
                for n, chunk in enumerate(data.split(b"\n\nFrom ")):
                    files.append((f"{name}#{n + 1}", chunk.split(b"\n", 1)[-1]))
            else:
                files.append((name, data))
    return tuple(files)


def mutate(data: bytes, rng: random.Random, other: bytes = b"") -> bytes:
    """1-8 random edits: byte flips, splices with `other`, truncations, duplications, deletions,
    insertions of hostile tokens, line-end changes."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 9)):
        n = len(out)
        op = rng.randrange(8)
        a = rng.randrange(n + 1)
        b = rng.randrange(a, min(n, a + rng.choice((1, 16, 256, 4096, n or 1))) + 1)
        if op == 0 and n:  # byte flips
            for _ in range(rng.randrange(1, 16)):
                i = rng.randrange(n)
                out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and other:  # splice: our head, another message's tail
            out = out[:a] + other[rng.randrange(len(other) + 1) :]
        elif op == 2:  # truncation
            out = out[:a]
        elif op == 3:  # duplication of a range, up to a few times
            out = out[:b] + bytes(out[a:b]) * rng.randrange(1, 5) + out[b:]
        elif op == 4:  # deletion
            del out[a:b]
        elif op == 5:  # insertion of a hostile token
            out[a:a] = rng.choice(NASTY_TOKENS)
        elif op == 6:  # random bytes over a range
            out[a:b] = rng.randbytes(b - a)
        else:  # line ends: LF -> CRLF or CR, or the reverse
            old, new = rng.choice(((b"\n", b"\r\n"), (b"\r\n", b"\n"), (b"\n", b"\r")))
            out = bytearray(bytes(out).replace(old, new))
    return bytes(out)


def gen_mutation(rng: random.Random, size: Size) -> FuzzInput:
    files = corpus()
    name, data = rng.choice(files)
    _, other = rng.choice(files)
    return FuzzInput(f"mutation:{name}", mutate(data, rng, other))


# -- the registry ---------------------------------------------------------------------------------

GENERATORS: dict[str, Generator] = {
    "truncated": gen_truncated,
    "charset": gen_charset,
    "transfer": gen_transfer,
    "header-bytes": gen_header_bytes,
    "nul": gen_nul,
    "deep-mime": gen_deep_mime,
    "boundary-bomb": gen_boundary_bomb,
    "long-header": gen_long_header,
    "huge-html": gen_huge_html,
    "mbox": gen_mbox,
    "html-structure": gen_html_structure,
    "css": gen_css,
    "srcset": gen_srcset,
    "attributes": gen_attributes,
    "nested": gen_nested,
    "structured": gen_structured,
    "mutation": gen_mutation,
}
# Relative frequency in a run: mutations of real mail dominate; each 20 MB part costs seconds.
WEIGHTS: dict[str, float] = {
    "mutation": 40,
    "structured": 10,
    "truncated": 5,
    "charset": 5,
    "transfer": 5,
    "header-bytes": 5,
    "nul": 3,
    "deep-mime": 3,
    "boundary-bomb": 3,
    "long-header": 3,
    "mbox": 4,
    "html-structure": 3,
    "css": 3,
    "srcset": 3,
    "attributes": 3,
    "nested": 3,
    "huge-html": 0.05,
}


def kind_for(index: int, seed: int) -> str:
    """The generator for input `index` of a run: weighted, but every kind in the first round."""
    kinds = list(GENERATORS)
    if index < len(kinds):
        return kinds[index]
    rng = random.Random(f"{seed}:kind:{index}")
    return rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]


def generate(index: int, seed: int, size: Size = FULL) -> FuzzInput:
    """Input `index` of the run with `seed`: the same bytes every time, in every process."""
    kind = kind_for(index, seed)
    return GENERATORS[kind](random.Random(f"{seed}:{index}"), size)


# -- hypothesis strategies ------------------------------------------------------------------------


def hostile_inputs(
    size: Size = SMALL, kinds: tuple[str, ...] = tuple(GENERATORS)
) -> st.SearchStrategy[FuzzInput]:
    """Any generator, driven by hypothesis's (shrinkable, derandomizable) random source."""
    return st.builds(
        lambda kind, rng: GENERATORS[kind](rng, size),
        st.sampled_from(kinds),
        st.randoms(use_true_random=False),
    )


@st.composite
def mime_messages(draw: st.DrawFn) -> FuzzInput:
    """A hypothesis-native message: each field and body byte string is drawn (and shrinks)."""
    eol = draw(st.sampled_from((b"\n", b"\r\n")))
    fields = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("From", "To", "Subject", "Content-Type", "X-Guard",
                                 "Content-Transfer-Encoding", "Disposition-Notification-To")),
                st.one_of(st.binary(max_size=80), st.sampled_from(CONTENT_TYPES).map(str.encode)),
            ),
            max_size=8,
        )
    )  # fmt: skip
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSET_LABELS))
    cte = draw(st.sampled_from(TRANSFER_ENCODINGS))
    body = draw(
        st.lists(
            st.one_of(st.sampled_from(NASTY_TOKENS), st.binary(max_size=40),
                      st.just(PIXEL), st.just(TRACKED_LINK)),
            max_size=30,
        )
    )  # fmt: skip
    raw = b"".join(header(name, value, eol) for name, value in fields)
    raw += header("Content-Type", f"{ctype}; charset={charset}", eol)
    raw += header("Content-Transfer-Encoding", cte, eol) + eol + b"".join(body)
    return FuzzInput("hypothesis-mime", raw)


@st.composite
def mutated_samples(draw: st.DrawFn) -> FuzzInput:
    """A sample or eval message with mutations chosen by hypothesis."""
    files = corpus()
    name, data = draw(st.sampled_from(files))
    _, other = draw(st.sampled_from(files))
    rng = draw(st.randoms(use_true_random=False))
    return FuzzInput(f"mutation:{name}", mutate(data, rng, other))
