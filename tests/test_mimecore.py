"""The header split in C (guard/engine/_mimecore.c) against mimetree.py's Python split.

The Python function (`_parse_headers_python`) is the reference: on every header block of every
MIME part, and on the whole raw bytes, of samples/, eval/eml/, the real corpus (skipped, with the
reason, where ../shared is absent) and the fuzz regressions and sweep's inputs, on hostile blocks
(huge fields, thousands of folded lines, every kind of line break, 8-bit bytes, no blank line) and
on hypothesis blocks built of the pieces the split reads, the C split must give the same pairs.
Cleaning's quoted-printable encoder in C must write what binascii.b2a_qp writes.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

import pytest
from html5_reads import CORPUS, MAIL_DIRS, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.clean import body
from guard.engine import mime, mimetree, model
from guard.mail.files import message_refs

try:
    from guard.engine import _mimecore  # type: ignore[attr-defined]
except ImportError:  # not built: mimetree runs its Python split, nothing to compare
    _mimecore = None

built = pytest.mark.skipif(
    _mimecore is None, reason="guard/engine/_mimecore.c is not built here: the Python split runs"
)


def _blocks(raw: bytes) -> Iterator[bytes]:
    """The raw message itself (its body read as junk header lines), then each MIME part's header
    block as the splitter hands it over, blank line included."""
    yield raw
    try:
        tree = mimetree.split(raw)
    except mimetree.MimeStructureError:
        return
    for part in tree.walk():
        yield raw[part.start : part.body_start]


def _spans(raw: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of the whole message and of each MIME part, as the splitter reads them."""
    yield 0, len(raw)
    try:
        tree = mimetree.split(raw)
    except mimetree.MimeStructureError:
        return
    for part in tree.walk():
        yield part.start, part.end


def _differ(messages: Iterator[tuple[str, bytes]]) -> tuple[int, list[str]]:
    """(blocks compared, sources where the two differ: names only, the corpus holds live
    phishing links). Each block is split by parse_headers, each part's span by header_block, and
    the index of each block's fields made by index_headers, each against its Python reference."""
    assert _mimecore is not None
    compared, bad = 0, []
    for source, raw in messages:
        for block in _blocks(raw):
            compared += 1
            fields = _mimecore.parse_headers(block)
            if fields != mimetree._parse_headers_python(block) or _mimecore.index_headers(
                fields
            ) != model._index_python(fields):
                bad.append(source)
        for start, end in _spans(raw):
            compared += 1
            if _mimecore.header_block(raw, start, end) != mimetree._header_block_python(
                raw, start, end
            ) or _mimecore.header_block(
                raw, start, end, mimetree.SHAPE_FIELDS
            ) != mimetree._shape_block_python(raw, start, end):
                bad.append(source)
        if not _shape_split_alike(raw) or not _delimiters_alike(raw):
            bad.append(source)
    return compared, bad


def _delimiters_alike(raw: bytes) -> bool:
    """Does the C search find each multipart's delimiter lines where bytes.find does, for the
    message's own boundaries and for the body searched from other offsets?"""
    try:
        parts = mimetree.split(raw).walk()
    except mimetree.MimeStructureError:
        return True
    for part in parts:
        boundary = part.params.get_param("boundary") if part.children else None
        if not isinstance(boundary, str) or not boundary or "\n" in boundary:
            continue
        token = boundary.encode("utf-8", "surrogateescape")
        for start, end in ((part.body_start, part.end), (part.start, len(raw)), (0, part.end - 1)):
            got = [tuple(d) for d in mimetree._delimiters(raw, token, start, end)]
            want = [tuple(d) for d in mimetree._delimiters_python(raw, token, start, end)]
            if got != want:
                return False
    return True


def _shape_split_alike(raw: bytes) -> bool:
    """Does the shape split give the full split's tree, offsets and all, with each part's fields
    those the split reads (and the first)?"""
    try:
        full = mimetree.split(raw).walk()
    except mimetree.MimeStructureError as exc:
        with pytest.raises(mimetree.MimeStructureError, match=str(exc)):
            mimetree.split(raw, shape=True)
        return True
    shape = mimetree.split(raw, shape=True).walk()
    if len(full) != len(shape):
        return False
    names = ("content-type", "content-disposition")
    for a, b in zip(full, shape, strict=True):
        fields = tuple(f for n, f in enumerate(a.headers) if n == 0 or f[0].lower() in names)
        if (a.start, a.body_start, a.end, a.content_type, a.charset, fields) != (
            b.start,
            b.body_start,
            b.end,
            b.content_type,
            b.charset,
            b.headers,
        ):
            return False
        if len(a.children) != len(b.children) or a.is_attachment != b.is_attachment:
            return False
    return True


def _mail() -> Iterator[tuple[str, bytes]]:
    for folder in MAIL_DIRS:
        for ref in message_refs(str(folder)):
            yield ref.source.removeprefix(str(ROOT) + "/"), ref.read()


def _corpus() -> Iterator[tuple[str, bytes]]:
    with tarfile.open(CORPUS) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            stream = archive.extractfile(member)
            if stream is None:
                continue
            with stream:
                yield member.name.rsplit("/", 1)[-1], stream.read()


def _fuzz(count: int = 160, seed: int = 20240601) -> Iterator[tuple[str, bytes]]:
    from fuzz.strategies import SMALL, generate

    for path in sorted((ROOT / "tests" / "fuzz" / "regressions").iterdir()):
        yield path.name, path.read_bytes()
    for index in range(count):
        inp = generate(index, seed, SMALL)
        yield f"{inp.kind}@{index}", inp.data


@built
def test_the_split_uses_the_c_function() -> None:
    assert mimetree.parse_headers is _mimecore.parse_headers
    assert mimetree.parse_headers(b"Subject: hi\r\n there\r\nX:\r\n") == (
        ("Subject", "hi\n there"),
        ("X", ""),
    )


@built
def test_samples_and_eval_split_alike() -> None:
    compared, bad = _differ(_mail())
    assert compared > 300
    assert bad == []


@built
def test_corpus_splits_alike() -> None:
    if not CORPUS.is_file():
        reason = f"the real corpus is not at {CORPUS}"
        print(reason)
        pytest.skip(reason)
    compared, bad = _differ(_corpus())
    assert compared > 1600
    assert bad == []


@built
def test_fuzz_inputs_split_alike() -> None:
    compared, bad = _differ(_fuzz())
    assert compared > 200
    assert bad == []


HOSTILE = {
    "empty": b"",
    "breaks only": b"\r\n\n\r\r\n\x0b\x0c\x1c\x1d\x1e",
    "no blank line": b"From: a@b.example\r\nSubject: x",
    "a 200 KB field": b"Content-Type: text/html; " + b"a=b; " * 40000 + b"\r\n",
    "thousands of folded lines": b"Subject: x" + b"\r\n y" * 20000 + b"\r\nTo: z\r\n",
    "folding before any field": b" continued\r\n\tmore\r\nSubject: x\r\n",
    "mixed breaks": b"A: 1\rB: 2\nC: 3\r\nD: 4\n\rE: 5\x0bF: 6\x0cG: 7\x1cH: 8\x1dI: 9\x1eJ",
    "continuation after breaks": b"A: 1\r \r\n\t\n x\x0b y\x1c\tz\x1f",
    "8-bit bytes": b"Subject: \xe9t\xe9\r\n\xff\xfe: v\r\nX-\x85: \x85\xa0\r\n \x85\r\n",
    "names with spaces and junk": (
        b"From a@b Mon\r\n :x\r\nA :b\r\nA\t:c\r\n\x1fB:d\r\nC\x1f:e\r\nD-1:f\r\n"
    ),
    "colons": b":\r\n::\r\nA::\r\nB:\x1f\t \x1f\r\n\x1f\r\n",
    "whitespace values": b"A:  \t\r\n \r\n\t\r\nB:\x1c\r\nC: \x0b\x0c v \x1f\r\n",
    "nul bytes": b"A\x00: \x00\r\nB: x\x00y\r\n \x00\r\n",
    "trailing CR": b"A: 1\r",
    "lone CRs": b"A: 1\r\r\r B: 2\r",
    "many fields": b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(20000)),
}


@built
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_blocks_split_alike(name: str) -> None:
    block = HOSTILE[name]
    assert _mimecore.parse_headers(block) == mimetree._parse_headers_python(block)


def test_the_python_split_reads_folding_and_junk() -> None:
    # The reference itself, where C is built or not: what the differential tests rely on.
    # A name with a space, or starting or ending with whitespace (\x1f too), starts no field.
    assert mimetree._parse_headers_python(HOSTILE["names with spaces and junk"]) == (("D-1", "f"),)
    assert mimetree._parse_headers_python(b"A: 1\r\n 2\r\n\r\nB: 3") == (("A", "1\n 2"), ("B", "3"))


_BREAKS = [b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e"]
_TEXT = [b" ", b"\t", b":", b"\x1f", b"\x85", b"\xff", b"\x00", b"A", b"z-", b"From ", b"Subject"]
# Runs of printable bytes long enough for the C line scan's eight-bytes-at-a-time steps, so that
# breaks land at every offset of a step.
_TEXT += [b"x" * 7, b"Received-SPF", b"DKIM-Signature: v=1; a=rsa-sha256"]
_PIECES = st.sampled_from([*_BREAKS, *_TEXT, b": v", b"\r\n "])


@built
@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=60).map(b"".join))
def test_generated_blocks_split_alike(block: bytes) -> None:
    assert _mimecore.parse_headers(block) == mimetree._parse_headers_python(block)


@built
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_split_alike(block: bytes) -> None:
    assert _mimecore.parse_headers(block) == mimetree._parse_headers_python(block)


@built
def test_a_non_bytes_argument_is_refused() -> None:
    with pytest.raises(TypeError):
        _mimecore.parse_headers("Subject: x")


# -- header_block (the part's header end and fields in one call) against _header_block_python --

# What the header end search reads: \n\n and \n\r\n (and what only looks like them: \r\n\r,
# \n\r, \r\r), header text and body text.
_BLOCK_PIECES = st.sampled_from(
    [*_BREAKS, b"\n\n", b"\n\r\n", b"\r\n\r", b"\n\r", b"\r\r", b": v", b"\r\n ", *_TEXT]
)


@built
@settings(max_examples=500, deadline=None)
@given(
    st.lists(_BLOCK_PIECES, max_size=60).map(b"".join),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=400),
)
def test_generated_parts_split_alike(raw: bytes, start: int, end: int) -> None:
    # Offsets anywhere: inside the bytes, past them, start after end.
    got = _mimecore.header_block(raw, start, end)
    assert got == mimetree._header_block_python(raw, start, end)


@built
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.data())
def test_arbitrary_parts_split_alike(raw: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(raw)))
    end = data.draw(st.integers(min_value=start, max_value=len(raw)))
    got = _mimecore.header_block(raw, start, end)
    assert got == mimetree._header_block_python(raw, start, end)


# The fields a shape split keeps, in any case, and names that only start like them.
_SHAPE_PIECES = st.sampled_from(
    [
        *(b"\r\n", b"\n", b"\n\n", b"\r\n\r\n", b"\r\n ", b"\x0c", b": v", b"\xe9", b"X: y"),
        *(b"Content-Type: text/html", b"content-TYPE:multipart/mixed; boundary=b", b"--b"),
        *(b"Content-Disposition: attachment", b"CONTENT-DISPOSITION: inline", b"--b--"),
        *(b"Content-Typ: a", b"Content-Types: b", b"Content-Type : c", b" Content-Type: d"),
    ]
)


@built
@settings(max_examples=500, deadline=None)
@given(st.lists(_SHAPE_PIECES, max_size=40).map(b"".join), st.data())
def test_generated_shape_splits_alike(raw: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(raw)))
    end = data.draw(st.integers(min_value=start, max_value=len(raw) + 2))
    got = _mimecore.header_block(raw, start, end, mimetree.SHAPE_FIELDS)
    assert got == mimetree._shape_block_python(raw, start, end)
    assert _shape_split_alike(raw)


# What the delimiter search reads: the token at line starts and elsewhere, closing dashes,
# junk or blanks after it, CR LF and LF, a longer token that only starts like it.
_DELIMITER_PIECES = st.sampled_from(
    [b"\n", b"\r\n", b"\r", b"--b", b"--bb", b"--", b"-", b"b", b" ", b"\t", b"x", b"=", b"--b--"]
)


@built
@settings(max_examples=600, deadline=None)
@given(
    st.lists(_DELIMITER_PIECES, max_size=30).map(b"".join),
    st.sampled_from([b"b", b"bb", b"b-", b"-b", b"=b="]),
    st.data(),
)
def test_generated_delimiters_alike(raw: bytes, boundary: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(raw) + 2))
    end = data.draw(st.integers(min_value=0, max_value=len(raw) + 2))
    got = [tuple(d) for d in _mimecore.delimiters(raw, b"--" + boundary, start, end)]
    want = [tuple(d) for d in mimetree._delimiters_python(raw, boundary, start, end)]
    assert got == want


@built
def test_a_boundary_with_a_line_break_is_searched_by_the_python() -> None:
    raw = b"--a\nb\r\nx\n--a\nb--\n"
    assert mimetree._delimiters(raw, b"a\nb", 0, len(raw)) == mimetree._delimiters_python(
        raw, b"a\nb", 0, len(raw)
    )
    with pytest.raises(ValueError):
        _mimecore.delimiters(raw, b"--a\nb", 0, len(raw))


@built
def test_header_block_examples() -> None:
    raw = b"A: 1\r\n 2\r\nB: 3\r\n\r\nbody\n\nmore"
    assert _mimecore.header_block(raw, 0, len(raw)) == ((("A", "1\n 2"), ("B", "3")), 16, 18)
    # Bounded by `end`: an empty line cut by it is no empty line; none gives (end, end).
    assert _mimecore.header_block(raw, 0, 17) == ((("A", "1\n 2"), ("B", "3")), 17, 17)
    assert _mimecore.header_block(b"X: y\n\nz", 0, 99) == ((("X", "y"),), 5, 6)
    with pytest.raises(ValueError):
        _mimecore.header_block(raw, -1, 5)
    with pytest.raises(TypeError):
        _mimecore.header_block(bytearray(raw), 0, 5)


@built
def test_the_split_reads_headers_as_the_python_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole tree, split with header_block and with its Python reference.
    def shape(raw: bytes) -> list[tuple[object, ...]]:
        return [
            (p.start, p.body_start, p.end, p.headers, p.content_type, p.charset)
            for p in mimetree.split(raw).walk()
        ]

    messages = [raw for _, raw in _mail()][:200]
    native = [shape(raw) for raw in messages]
    monkeypatch.setattr(mimetree, "_header_block", mimetree._header_block_python)
    assert [shape(raw) for raw in messages] == native


# -- index_headers (model.header_index's names and first values) against _index_python --

# Names whose lower() is not ASCII lower-casing: 8-bit bytes read as surrogates, Latin and Greek
# capitals, `İ` (two characters lower-cased), the Kelvin sign (lower-cases to ASCII `k`).
_NAMES = st.sampled_from(
    [
        *("Subject", "SUBJECT", "subject", "X-Mailer", "x-mailer", "From", "", "\udcff-X"),
        *("\udce9T", "Ünïcode", "ΣΑΣ", "İd", "\u212a", "to", "TO", "A" * 40),
    ]
)
_VALUES = st.sampled_from(["", "v", "V", "x y", "\udc85"])


@built
@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES | st.text(max_size=8), _VALUES), max_size=30).map(tuple))
def test_generated_headers_index_alike(headers: tuple[tuple[str, str], ...]) -> None:
    names, first = _mimecore.index_headers(headers)
    ref_names, ref_first = model._index_python(headers)
    assert names == ref_names
    assert first == ref_first
    assert list(first) == list(ref_first)  # the same order too


@built
def test_index_headers_refuses_what_is_not_a_tuple_of_pairs() -> None:
    for bad in ([("A", "b")], (("A", "b", "c"),), ((1, "b"),), (["A", "b"],), ("Ab",)):
        with pytest.raises(TypeError):
            _mimecore.index_headers(bad)


def test_header_index_reads_what_the_c_function_refuses() -> None:
    # A tuple of list pairs goes to the Python index (the C one takes tuple pairs alone).
    headers = (["Subject", "a"], ["SUBJECT", "b"], *([f"X-{i}", "v"] for i in range(8)))
    index = model.header_index(headers)  # type: ignore[arg-type]
    assert index.first["subject"] == "a"
    assert index.names[:2] == ("subject", "subject")


# -- cleaning's quoted-printable (qp_encode) against binascii.b2a_qp (_quoted_printable_python) --

# What the encoder reads: the bytes it escapes or copies, line ends, a `.` that may start a line,
# whitespace before a line end or at the end, runs long enough to reach column 76 (a soft
# break before an escape, a copy, or a byte followed by \n), and `.` inside a run (copied there).
_QP_PIECES = st.sampled_from(
    [b"a", b"=", b".", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x7f", b"\xc3\xa9", b"~"]
    + [b"..", b"a.b", b"x." * 40]
    + [b"x" * n for n in (20, 72, 73, 74, 75, 76)]
)


@built
@settings(max_examples=600, deadline=None)
@given(st.lists(_QP_PIECES, max_size=40).map(b"".join), st.sampled_from([b"\n", b"\r\n"]))
def test_generated_text_encodes_as_binascii_does(data: bytes, eol: bytes) -> None:
    assert _mimecore.qp_encode(data, eol) == body._quoted_printable_python(data, eol)


@built
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"\n", b"\r\n"]))
def test_arbitrary_bytes_encode_as_binascii_does(data: bytes, eol: bytes) -> None:
    assert _mimecore.qp_encode(data, eol) == body._quoted_printable_python(data, eol)


@built
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b".",
        b" ",
        b"a \r\nb\t\n",
        b"\r\r\n" + b"y" * 200,  # the first \n follows a \r: every line end is \r + eol
        b"=" * 300,
        b"\xff" * 100_000,  # the buffer grows past its first size
        b"x" * 75 + b"\n" + b"x" * 76 + b"=" + b"x" * 74 + b" ",
    ],
)
def test_edge_texts_encode_as_binascii_does(data: bytes) -> None:
    for eol in (b"\n", b"\r\n", b"\r"):  # (any other line end: the encoder's general copy)
        assert _mimecore.qp_encode(data, eol) == body._quoted_printable_python(data, eol)


# -- quoted-printable decoding (qp_decode) against binascii.a2b_qp (_qp_decode_python) --

# What the decoder reads: `=` before a line end (\n, \r\n, a \r with junk before its \n), before
# another `=`, before hex digits of either case and before what is none, at the very end; runs of
# plain bytes long enough to be copied whole; `_` (the header form's space, not read here).
_QP_DECODE_PIECES = st.sampled_from(
    [
        *(b"=", b"\r", b"\n", b"\r\n", b"==", b"=3D", b"=3d", b"=e9", b"=G1", b"=0", b"=\r\n"),
        *(b"=\rx\n", b"0", b"A", b"f", b"g", b"_", b" ", b"\t", b"\x00", b"\xff", b"x" * 9),
        b"<p>plain text</p>",
    ]
)


@built
def test_messages_decode_quoted_printable_with_the_c_function() -> None:
    assert mime._qp_decode is _mimecore.qp_decode
    assert mime.decode_transfer(b"a=3Db=\r\nc=", "Quoted-Printable ") == b"a=bc"


@built
@settings(max_examples=600, deadline=None)
@given(st.lists(_QP_DECODE_PIECES, max_size=50).map(b"".join))
def test_generated_text_decodes_as_binascii_does(data: bytes) -> None:
    assert _mimecore.qp_decode(data) == mime._qp_decode_python(data)


@built
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_decode_as_binascii_does(data: bytes) -> None:
    assert _mimecore.qp_decode(data) == mime._qp_decode_python(data)


@built
@pytest.mark.parametrize(
    "data",
    [b"", b"=", b"==", b"=\r", b"=\n", b"=A", b"=\rjunk", b"a" * 100_000 + b"=41", b"=3D" * 5000],
)
def test_edge_texts_decode_as_binascii_does(data: bytes) -> None:
    assert _mimecore.qp_decode(data) == mime._qp_decode_python(data)
    assert _mimecore.qp_decode(bytearray(data)) == mime._qp_decode_python(data)


@built
def test_the_corpus_quoted_printable_decodes_as_binascii_does() -> None:
    compared, bad = 0, []
    for source, raw in [*_mail(), *(_corpus() if CORPUS.is_file() else [])]:
        try:
            parts = mimetree.split(raw).walk()
        except mimetree.MimeStructureError:
            continue
        for part in parts:
            if part.transfer_encoding == "quoted-printable":
                body = raw[part.body_start : part.end]
                compared += 1
                if _mimecore.qp_decode(body) != mime._qp_decode_python(body):
                    bad.append(source)
    assert compared > 50
    assert bad == []


# -- the line-ending fold of guard.mail.imap.common.digest (crlf_to_lf) against bytes.replace --

_CRLF_PIECES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\r\r\n", b"\n\r", b"x", b"ab" * 20, b"\xff"]
)


@built
def test_the_digest_folds_line_ends_with_the_c_function() -> None:
    from guard.mail.imap import common

    assert common._crlf_to_lf is _mimecore.crlf_to_lf
    assert common.digest(b"a\r\nb\n") == common.digest(b"a\nb\r\n")
    assert common.digest(b"a\rb") != common.digest(b"a\nb")


@built
@settings(max_examples=500, deadline=None)
@given(st.lists(_CRLF_PIECES, max_size=60).map(b"".join))
def test_generated_line_ends_fold_as_replace_does(data: bytes) -> None:
    assert _mimecore.crlf_to_lf(data) == data.replace(b"\r\n", b"\n")


@built
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_fold_as_replace_does(data: bytes) -> None:
    assert _mimecore.crlf_to_lf(data) == data.replace(b"\r\n", b"\n")
    assert _mimecore.crlf_to_lf(bytearray(data)) == data.replace(b"\r\n", b"\n")


@built
def test_the_mail_folds_as_replace_does() -> None:
    compared, bad = 0, []
    for source, raw in [*_mail(), *(_corpus() if CORPUS.is_file() else [])]:
        compared += 1
        for data in (raw, raw.replace(b"\n", b"\r\n")):
            if _mimecore.crlf_to_lf(data) != data.replace(b"\r\n", b"\n"):
                bad.append(source)
    assert compared > 50
    assert bad == []


@built
def test_kept_field_names_read_as_the_python_reads_them() -> None:
    # parse_headers keeps the last name of each slot of a small table, and index_headers its
    # lower-cased form: names read again, names that push others out (more names than slots),
    # names in other cases, long and 8-bit names (never kept) all read as the Python reads them.
    names = [f"X-Name-{n}" for n in range(1500)] + ["Received", "RECEIVED", "received"]
    names += [
        "X-" + "Long" * 20,
        "X-\xe9t\xe9".encode("latin-1").decode("ascii", "surrogateescape"),
    ]
    block = "".join(f"{name}: value {n}\r\n" for n, name in enumerate(names))
    raw = block.encode("ascii", "surrogateescape")
    for _ in range(3):  # the second and third reads find the kept names
        fields = _mimecore.parse_headers(raw)
        assert fields == mimetree._parse_headers_python(raw)
        got_names, got_first = _mimecore.index_headers(fields)
        want_names, want_first = model._index_python(fields)
        assert got_names == want_names and got_first == want_first
        assert list(got_first) == list(want_first)  # the same order of first appearance


# -- windows-1252 decoding (cp1252_decode) against Python's codec --------------------------------


def _cp1252_reference(data: bytes) -> str | None:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return None  # a byte the codec leaves undefined: the C function says so with None


@built
def test_every_byte_decodes_as_the_codec_does() -> None:
    for b in range(256):
        for data in (bytes([b]), b"plain text " + bytes([b]) + b" more", bytes([b]) * 17):
            assert _mimecore.cp1252_decode(data) == _cp1252_reference(data), b
    assert _mimecore.cp1252_decode(b"") == ""
    assert _mimecore.cp1252_decode(bytearray(b"caf\xe9")) == "caf\u00e9"


_CP1252_PIECES = st.sampled_from(
    [b"a", b"plain ascii run ", b"\xe9", b"\x80", b"\x93q\x94", b"\x81", b"\x9d", b"\xff", b"\x00"]
)


@built
@settings(max_examples=600, deadline=None)
@given(st.one_of(st.lists(_CP1252_PIECES, max_size=40).map(b"".join), st.binary(max_size=300)))
def test_generated_bytes_decode_as_the_codec_does(data: bytes) -> None:
    text = _mimecore.cp1252_decode(data)
    assert text == _cp1252_reference(data)
    if text is not None:  # the same str: same characters, same width
        assert text.isascii() == data.decode("cp1252").isascii()


@built
def test_windows_1252_parts_decode_with_the_c_function() -> None:
    assert mime._cp1252 is _mimecore.cp1252_decode
    assert mime.decode_text(b"\x93caf\xe9\x94", "ISO-8859-1") == "\u201ccaf\u00e9\u201d"
    # An undefined byte: the codec raises, UTF-8 fails, windows-1252 replaces it (as before).
    assert mime.decode_text(b"a\x81b", "windows-1252") == "a\ufffdb"
    assert mime.decode_text(b"a\x81b\xe9", None) == "a\ufffdb\u00e9"
