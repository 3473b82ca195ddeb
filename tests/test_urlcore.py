"""The C core of detection (guard/engine/_urlcore.c) against the Python reference it replaces.

Both paths must give the same findings, every field and in the same order, on every message of
samples/ and eval/, the fuzz regressions, a fixed sample of the real corpus (skipped with the
reason where ../shared is absent) and hypothesis-generated references built to be hostile (huge
hosts, percent-escapes, IDNA, user info, ports, backslashes, wrappers of wrappers). The URL split
and the unwrapping are compared on their own too, with caches cleared between the two paths.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from fuzz.strategies import SMALL, generate
from html5_reads import corpus_messages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.engine import urlcore
from guard.engine.detect import BUILTIN_REMOTE, Detection, detect_message
from guard.engine.mime import MessageError, parse_message
from guard.engine.model import ParsedMessage
from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import Rule, RuleSet, Service
from guard.engine.urls import Url, parse_http
from guard.mail.files import message_refs

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"
CORPUS = ROOT.parent / "shared" / "corpus" / "phishing-pot-dev.tar.xz"
CORPUS_EVERY = 8  # 100 of the 800 messages

pytestmark = pytest.mark.skipif(
    not urlcore.AVAILABLE, reason="guard/engine/_urlcore.c is not built (no C compiler?)"
)

RULES = load_ruleset(include_user=False)
SENDER = "news@mail.northwind.example"
IDENTITIES = ("me@example.org",)


def _clear(rules: RuleSet) -> None:
    rules._host_cache.clear()
    rules._unwrap_cache.clear()
    rules._prefixed.clear()


def both(
    msg: ParsedMessage, monkeypatch: pytest.MonkeyPatch, sender: str = SENDER
) -> tuple[Detection, Detection]:
    """The message's detection through the C core and through Python, each with cold caches."""
    out = []
    for native in (True, False):
        monkeypatch.setattr(urlcore, "ENABLED", native)
        _clear(RULES)
        out.append(detect_message(msg, RULES, sender, IDENTITIES))
    return out[0], out[1]


def assert_same(msg: ParsedMessage, monkeypatch: pytest.MonkeyPatch, sender: str = SENDER) -> None:
    native, python = both(msg, monkeypatch, sender)
    assert native.findings == python.findings
    # Equal tuples could still differ in an Enum member against its value: compare the types.
    assert [tuple(map(type, f)) for f in native.findings] == [
        tuple(map(type, f)) for f in python.findings
    ]
    assert native.esp == python.esp


def _parsed(raw: bytes) -> ParsedMessage | None:
    try:
        return parse_message(raw)[0]
    except MessageError:
        return None


def _mail(folder: Path) -> list[tuple[str, bytes]]:
    return [(ref.source, ref.read()) for ref in message_refs(str(folder))]


@pytest.mark.parametrize("folder", ["samples", "eval/eml", "tests/fuzz/regressions"])
def test_same_findings_on_the_bundled_mail(folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = _mail(ROOT / folder)
    assert mail
    compared = 0
    for source, raw in mail:
        msg = _parsed(raw)
        if msg is None:
            continue
        for sender in (SENDER, ""):
            native, python = both(msg, monkeypatch, sender)
            assert native == python, source
        compared += 1
    assert compared >= len(mail) // 2


@pytest.mark.parametrize("chunk", range(2))
def test_same_findings_on_the_fuzz_sweep(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # test_fuzz.py's fixed-seed sweep of malformed mail (every generator: huge headers, attribute
    # bombs, deep nesting, bad encodings), each message through both paths.
    compared = 0
    for index in range(chunk, 160, 2):
        inp = generate(index, 20240601, SMALL)
        if inp.mbox:
            continue
        msg = _parsed(inp.data)
        if msg is not None:
            native, python = both(msg, monkeypatch)
            assert native == python, inp.describe()
            compared += 1
    assert compared > 20


def test_same_findings_on_the_real_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the real corpus is not here ({CORPUS}): nothing to compare on")
    compared = 0
    for name, raw in corpus_messages(CORPUS, CORPUS_EVERY):
        msg = _parsed(raw)
        if msg is not None:
            native, python = both(msg, monkeypatch)
            assert native == python, name
            compared += 1
    assert compared >= 90


# -- generated references ------------------------------------------------------------------------

_LABEL = st.text(alphabet="abcxyz019-", min_size=1, max_size=8)
_REAL_HOSTS = sorted(
    {h.removeprefix("*.") for r in RULES.rules for h in r.hosts if "*" not in h.removeprefix("*.")}
)
_HOST = st.one_of(
    st.sampled_from(_REAL_HOSTS),
    st.builds(lambda sub, host: f"{sub}.{host}", _LABEL, st.sampled_from(_REAL_HOSTS)),
    st.lists(_LABEL, min_size=1, max_size=5).map(".".join),
    st.sampled_from(["EXAMPLE.com", "xn--bcher-kva.example", "bücher.example", "[::1]", "127.0.0.1",
                     "a..b", "host.", ".host", "-x-.example", "x_y.example", "",
                     "h\\ost.example", "a" * 300]),
)  # fmt: skip
_PIECE = st.sampled_from(
    ["/", "/wf/open", "/o.gif", "/ls/click", "/c/", "?", "&", "=", "#", "%", "%2", "%41", "%e2%82",
     "%2Fx", "+", "\\", "@", ":", ":8080", "utm_source=x", "utm_medium", "mc_eid=1", "u=", "q=",
     "url=https%3A%2F%2Fshop.example%2Fp%3Futm_source%3Dn", "é", "€", "\t", " ", "\n", "//",
     "https://", "http://t.example/a?utm_campaign=1", "L0", "https:%2F%2Fx.example"]
)  # fmt: skip
_TAIL = st.lists(st.one_of(_PIECE, st.text(max_size=6)), max_size=10).map("".join)
_SCHEME = st.sampled_from(
    ["https://", "http://", "HTTPS://", "Http://", "//", "https:", "ftp://", "view-source:https://",
     "feed://", "jar:https://", " https://", "\thttp://", "https:///", "mailto:", "cid:",
     "data:", "DATA:", " Data://", "\u3000data:image/png;base64,"]
)  # fmt: skip
_USERINFO = st.sampled_from(["", "", "", "user@", "u:p@", "a@b@"])
_PORT = st.sampled_from(["", "", "", ":443", ":", ":x", ":99999"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    url = draw(_SCHEME) + draw(_USERINFO) + draw(_HOST) + draw(_PORT) + draw(_TAIL)
    return url + draw(st.sampled_from(["", "", " ", "\n", "#frag"]))


@st.composite
def wrapped(draw: st.DrawFn) -> str:
    """A rule's own match example (a real wrapper) with generated text spliced in or around."""
    examples = [e.text for r in RULES.rules if r.kind in ("link", "pixel") for e in r.match]
    base = draw(st.sampled_from(examples))
    at = draw(st.integers(0, len(base)))
    return base[:at] + draw(_TAIL) + base[at:] if draw(st.booleans()) else base + draw(_TAIL)


REFS = st.one_of(urls(), wrapped())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REFS)
def test_the_split_is_parse_https(text: str) -> None:
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    assert core.parse(text) == parse_http(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REFS)
def test_unwrapping_is_the_rulesets(text: str) -> None:
    url = parse_http(text)
    if url is None:
        return
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    _clear(RULES)
    native = core.unwrap(url)
    _clear(RULES)
    assert native == RULES.unwrap(url)


def _message(loads: list[str], links: list[str], text_links: list[str]) -> ParsedMessage:
    def attr(value: str) -> str:
        return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")

    body = "".join(f'<img src="{attr(u)}" width="1" height="1">' for u in loads[:2])
    body += "".join(f'<img src="{attr(u)}" alt="x">' for u in loads[2:])
    body += "".join(f'<a href="{attr(u)}">link</a>' for u in links)
    body += "".join(f'<td background="{attr(u)}"></td>' for u in loads[:1])
    html = f"<html><body>{body}</body></html>"
    text = "\n".join(text_links)
    return ParsedMessage(
        headers=(("From", SENDER),), html_parts=(html,), text_parts=(text,),
        recipients=("me@example.org",),
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(REFS, max_size=6), st.lists(REFS, max_size=8), st.lists(REFS, max_size=4))
def test_same_findings_on_generated_references(
    loads: list[str], links: list[str], text_links: list[str]
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_same(_message(loads, links, text_links), monkeypatch)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["", " ", "\t\n", "\x1c", "\xa0", "\u3000"]),
    st.sampled_from(["data", "DATA", "dAtA"]),
    _TAIL,
)
def test_no_data_url_is_http(space: str, scheme: str, tail: str) -> None:
    # Core.html passes over a data: URL before it is hashed or split (_urlcore.c's is_data_url):
    # parse_http answers None for every one, whatever follows.
    for rest in (tail, "//" + tail, "//t.example/o.gif", "https://t.example/o.gif"):
        assert parse_http(f"{space}{scheme}:{rest}") is None


def test_a_host_of_50000_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suffixes looked up stop at the longest wildcard's depth: linear, not quadratic.
    host = ".".join(["a"] * 50_000) + ".sendgrid.net"
    refs = [f"https://{host}/wf/open?u=1", f"https://{host}/ls/click?upn=x&utm_source=n"]
    assert_same(_message(refs[:1], refs[1:], refs), monkeypatch)
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    assert core.parse(refs[0]) == parse_http(refs[0])


def test_percent_escapes_decode_as_urllib_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # unquote's corners: a lone or short `%`, bad hex, bytes that are not UTF-8, `+` in a value.
    targets = ["%", "%4", "%zz", "%41%42", "%e2%82%ac", "%ff%fe", "a+b", "%2B", "%C3%A9+x"]
    links = [f"https://www.google.com/url?q=https%3A%2F%2Fshop.example%2F{t}%3Futm_source%3D{t}"
             for t in targets]  # fmt: skip
    links += [f"https://shop.example/p?utm_{t}=1&{t}=2" for t in targets]
    assert_same(_message([], links, links), monkeypatch)


def test_the_switch_forces_python() -> None:
    code = "from guard.engine import urlcore; print(urlcore.ENABLED)"
    env = {**os.environ, "GUARD_PYTHON_DETECT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
    env.pop("GUARD_PYTHON_DETECT")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True"


def test_a_core_goes_with_its_ruleset() -> None:
    rules = load_ruleset(include_user=False)
    assert urlcore.core_for(rules, BUILTIN_REMOTE) is urlcore.core_for(rules, BUILTIN_REMOTE)
    key = id(rules)
    assert key in urlcore._cores
    del rules
    assert key not in urlcore._cores


def test_a_url_object_comes_back_for_the_loads_python_decides() -> None:
    # A load some rule may be about goes back to Python with a real Url.
    seen: list[object] = []
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    occ = ("https://u1.ct.sendgrid.net/wf/open?upn=x", "img[src]", True, True, "tiny")
    found: dict[tuple[str, str], object] = {}
    core.html([occ], set(), set(), found, "", lambda o, u: seen.append((o, u)))
    assert seen == [(occ, parse_http(occ[0]))]
    assert isinstance(seen[0][1], Url)  # type: ignore[index]
    assert found == {}


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="%%%4142e2820aAfFgG+ /\x00\x7féa€\U0001f600", max_size=24))
def test_unquote_is_urllibs(text: str) -> None:
    assert urlcore._native.unquote(text) == unquote(text)


def _python_gate(path: str, query: str) -> bool:
    """shapes.ShapeIndex.find's first test, as written there."""
    s = RULES._shapes
    return bool(
        s._always
        or path.startswith(s._path_prefixes)
        or path.endswith(s._path_suffixes)
        or path in s._exact["path"]
        or (query and query in s._exact["query"])
        or (query and query.startswith(s._query_prefixes))
        or (query and query.endswith(s._query_suffixes))
        or (s._path_contains and s._path_contains.search(path))
        or (query and s._query_contains and s._query_contains.search(query))
    )


_GATE_TEXTS = sorted({t for texts in RULES._shapes._any.values() for t in texts})
_GATE_PIECE = st.one_of(
    st.sampled_from(_GATE_TEXTS), st.sampled_from(list(RULES._shapes._exact["path"])), _PIECE
)
_GATED = st.lists(_GATE_PIECE, max_size=4).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_GATED, _GATED)
def test_the_shape_gate_is_the_indexs(path: str, query: str) -> None:
    core = urlcore.build(RULES, BUILTIN_REMOTE)
    assert core.gate(path, query) == _python_gate(path, query)
    assert core.gate("/" + path, query) == _python_gate("/" + path, query)
    for p, q in ((path, query), ("/" + path, query), (query, path)):
        assert core.shapes(p, q) == RULES._shapes.find(p, q)


def test_a_wildcard_deeper_than_the_cores_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    # A (user) rule may name a wildcard of many labels: the suffixes looked up go as deep.
    service = Service("deep", "Deep", "esp", "test")
    suffix = ".".join(f"l{i}" for i in range(20)) + ".example"
    rules = RuleSet(
        services={"deep": service},
        rules=[
            Rule("deep.click", service, "link", hosts=(f"*.{suffix}",), path=re.compile("^/c/")),
            Rule("deep.open", service, "pixel", hosts=(f"*.{suffix}",)),
        ],
        version="test",
    )
    assert rules._suffix_labels == 21
    refs = [
        f"https://x.{suffix}/c/1?utm_source=a",
        f"https://x.y.{suffix}/o.gif",
        f"https://{suffix}/c/",
    ]
    msg = _message(refs[1:], refs, [])
    out = []
    for native in (True, False):
        monkeypatch.setattr(urlcore, "ENABLED", native)
        out.append(detect_message(msg, rules, SENDER))
    assert out[0] == out[1]
    assert {f.rule for f in out[0].findings} >= {"deep.click", "deep.open"}


def test_building_the_core_compiles_no_regex() -> None:
    # The compiled rules' regexes compile at first use (a start of `guard strip` meets a
    # handful): the core keeps the patterns, it does not compile all ~700.
    from guard.engine.rules_compiled import _LazyPattern

    rules = load_ruleset(include_user=False)
    lazy = [p for r in rules.rules for p in (r.path, r.query) if isinstance(p, _LazyPattern)]
    if not lazy:
        pytest.skip("the rules were parsed from the files, not loaded compiled: nothing is lazy")
    urlcore.build(rules, BUILTIN_REMOTE)
    assert not any("search" in vars(p) for p in lazy)
