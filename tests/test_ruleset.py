"""Rule loading, validation, host/shape matching, unwrapping and the offline decoders."""

from __future__ import annotations

import base64
import json
import textwrap
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest

from guard.engine.rules_load import RuleError, load_ruleset
from guard.engine.ruleset import MAX_UNWRAP_DEPTH, Rule, RuleSet
from guard.engine.unwrap import DECODERS, DecodeError, apply_encodings, follow_json_path
from guard.engine.urls import host_matches, parse_http

SERVICE = """\
[[service]]
id = "acme"
name = "Acme Mail"
category = "esp"
source = "observed: test fixture"
"""

GOOD_RULE = """\
[[service.rule]]
id = "open"
kind = "pixel"
hosts = ["t.acme.com"]
path = '^/open$'
match = ["https://t.acme.com/open?id=1"]
no_match = ["https://t.acme.com/other"]
"""


def write_rules(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str, name: str = "acme.toml") -> RuleSet:
    rules_dir = tmp_path / "rules"
    write_rules(rules_dir, name, text)
    return load_ruleset([rules_dir])


def url(raw: str):
    parsed = parse_http(raw)
    assert parsed is not None, raw
    return parsed


# ---- malformed rule files ----------------------------------------------------------------------

MALFORMED = {
    "bad-toml": (
        SERVICE + "[[service.rule]]\nid = 'open'\nkind = \n",
        "not valid TOML",
    ),
    "unknown-kind": (
        SERVICE + GOOD_RULE.replace('kind = "pixel"', 'kind = "beacon"'),
        "'kind' must be one of",
    ),
    "nested-quantifier": (
        SERVICE + GOOD_RULE.replace("path = '^/open$'", "path = '^(/[^/]+)*/open$'"),
        "repeats a repeated group",
    ),
    "unknown-category": (
        SERVICE.replace('category = "esp"', 'category = "spam"') + GOOD_RULE,
        "unknown category 'spam'",
    ),
    "missing-source": (
        SERVICE.replace('source = "observed: test fixture"\n', "") + GOOD_RULE,
        "'source' must be a non-empty string",
    ),
    "missing-match": (
        SERVICE + GOOD_RULE.replace('match = ["https://t.acme.com/open?id=1"]\n', ""),
        "'match' needs at least one example",
    ),
    "missing-no-match": (
        SERVICE + GOOD_RULE.replace('no_match = ["https://t.acme.com/other"]\n', ""),
        "'no_match' needs at least one example",
    ),
    "bad-regex": (
        SERVICE + GOOD_RULE.replace("path = '^/open$'", "path = '^/open(['"),
        "'path' is not a valid regex",
    ),
    "bad-query-regex": (
        SERVICE + GOOD_RULE.replace("path = '^/open$'", "path = '^/open$'\nquery = 'id=(?P<'"),
        "'query' is not a valid regex",
    ),
    "bad-host-url": (
        SERVICE + GOOD_RULE.replace('"t.acme.com"]', '"https://t.acme.com/"]'),
        "bad host 'https://t.acme.com/'",
    ),
    "bad-host-inner-wildcard": (
        SERVICE + GOOD_RULE.replace('"t.acme.com"]', '"t.*.acme.com"]'),
        "bad host 't.*.acme.com'",
    ),
    "decode-without-target-group": (
        SERVICE
        + GOOD_RULE.replace('kind = "pixel"', 'kind = "link"').replace(
            "path = '^/open$'", "path = '^/open$'\ndecode = { from = \"path\", regex = '^/r/(.+)' }"
        ),
        "(?P<target>...)",
    ),
    "decode-unknown-encoding": (
        SERVICE
        + GOOD_RULE.replace('kind = "pixel"', 'kind = "link"').replace(
            "path = '^/open$'", "path = '^/open$'\ndecode = { param = 'u', encoding = ['rot13'] }"
        ),
        "unknown decode encoding(s) ['rot13']",
    ),
    "decode-json-without-path": (
        SERVICE
        + GOOD_RULE.replace('kind = "pixel"', 'kind = "link"').replace(
            "path = '^/open$'", "path = '^/open$'\ndecode = { param = 'p', encoding = ['json'] }"
        ),
        "needs 'json_path'",
    ),
    "decode-on-pixel": (
        SERVICE
        + GOOD_RULE.replace("path = '^/open$'", "path = '^/open$'\ndecode = { param = 'u' }"),
        "only link rules take 'decode'",
    ),
    "duplicate-id-in-file": (SERVICE + GOOD_RULE + GOOD_RULE, "duplicate rule id 'acme.open'"),
    "sender-without-header": (
        SERVICE + GOOD_RULE.replace('kind = "pixel"', 'kind = "sender"'),
        "a sender rule needs 'header'",
    ),
    "value-on-pixel": (
        SERVICE + GOOD_RULE.replace("path = '^/open$'", "path = '^/open$'\nvalue = 'x'"),
        "only sender rules take 'value'",
    ),
    "relay-on-pixel": (
        SERVICE + GOOD_RULE.replace("path = '^/open$'", "path = '^/open$'\nrelay = true"),
        "on sender rules only",
    ),
    "hostless-generic-path": (
        SERVICE + GOOD_RULE.replace('hosts = ["t.acme.com"]\n', "").replace("'^/open$'", "'^/o'"),
        "needs a specific 'path'",
    ),
    "hostless-no-path": (
        SERVICE
        + GOOD_RULE.replace('hosts = ["t.acme.com"]\n', "").replace("path = '^/open$'\n", ""),
        "needs 'hosts' or 'path'",
    ),
    "unknown-rule-key": (
        SERVICE + GOOD_RULE.replace("path =", "paths = '^/x'\npath ="),
        "unknown key(s) ['paths']",
    ),
    "unknown-top-level": ("[[services]]\nid = 'x'\n", "unknown top-level key(s)"),
    "no-rules": (SERVICE, "no [[service.rule]]"),
    "bad-service-id": (
        SERVICE.replace('id = "acme"', 'id = "Acme Mail"') + GOOD_RULE,
        "'id' must match",
    ),
    "param-without-params": (
        SERVICE + '[[service.rule]]\nid = "p"\nkind = "param"\nmatch = ["x"]\nno_match = ["y"]\n',
        "needs 'params' or 'param_prefixes'",
    ),
    "receipt-without-header": (
        SERVICE
        + '[[service.rule]]\nid = "r"\nkind = "receipt"\nmatch = ["X: y"]\nno_match = ["Y: z"]\n',
        "needs 'header'",
    ),
    "not-utf8": (None, "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_rule_file_raises_one_line_error_naming_file_and_problem(
    tmp_path: Path, case: str
) -> None:
    text, problem = MALFORMED[case]
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    path = rules_dir / f"{case}.toml"
    if text is None:
        path.write_bytes(SERVICE.encode() + b"\n# caf\xe9 latin-1 comment\n" + GOOD_RULE.encode())
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_ruleset([rules_dir])
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    assert problem in message, message


def test_duplicate_rule_id_across_files_names_both_files(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    first = write_rules(rules_dir, "a.toml", SERVICE + GOOD_RULE)
    second = write_rules(rules_dir / "sub", "b.toml", SERVICE + GOOD_RULE)
    with pytest.raises(RuleError) as info:
        load_ruleset([rules_dir])
    message = str(info.value)
    assert "\n" not in message
    assert "duplicate rule id 'acme.open'" in message
    assert str(first) in message and str(second) in message


def test_valid_file_loads_with_service_and_examples(tmp_path: Path) -> None:
    rules = load_one(tmp_path, SERVICE + GOOD_RULE)
    [rule] = rules.rules
    assert rule.id == "acme.open"
    assert rule.tracker == "Acme Mail"
    assert rule.category == "esp"
    assert rule.source == "observed: test fixture"
    assert [e.text for e in rule.match] == ["https://t.acme.com/open?id=1"]
    assert set(rules.services) == {"acme"}


def test_rule_files_are_found_recursively_and_only_toml(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    write_rules(rules_dir / "deep" / "er", "acme.toml", SERVICE + GOOD_RULE)
    write_rules(rules_dir, "README.md", "not = a rule [")
    rules = load_ruleset([rules_dir])
    assert [r.id for r in rules.rules] == ["acme.open"]


# ---- host and shape matching -------------------------------------------------------------------

WILDCARD = (
    SERVICE
    + """\
[[service.rule]]
id = "open"
kind = "pixel"
hosts = ["*.X.com"]
match = ["https://a.x.com/p"]
no_match = ["https://x.com/p"]
"""
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a.x.com", True),
        ("deep.a.x.com", True),
        ("A.X.COM", True),
        ("x.com", False),
        ("evilx.com", False),
        ("a.x.com.evil.net", False),
        ("x.com.", False),
    ],
)
def test_wildcard_host_matches_subdomains_only(tmp_path: Path, host: str, expected: bool) -> None:
    rules = load_one(tmp_path, WILDCARD)
    found = rules.classify(url(f"https://{host}/p.gif"), ("pixel",))
    assert (found is not None and found.id == "acme.open") is expected
    assert host_matches(host.lower().rstrip("."), "*.x.com") is expected


def test_exact_host_does_not_match_subdomain_or_lookalike() -> None:
    assert host_matches("t.acme.com", "t.acme.com")
    assert not host_matches("a.t.acme.com", "t.acme.com")
    assert not host_matches("t.acme.com.evil.net", "t.acme.com")


def test_path_and_query_shape(tmp_path: Path) -> None:
    text = SERVICE + GOOD_RULE.replace("path = '^/open$'", "path = '^/open$'\nquery = '(^|&)id='")
    rules = load_one(tmp_path, text)
    assert rules.classify(url("https://t.acme.com/open?id=7"), ("pixel",)) is not None
    assert rules.classify(url("https://t.acme.com/open?x=1&id=7"), ("pixel",)) is not None
    assert rules.classify(url("https://t.acme.com/open?pid=7"), ("pixel",)) is None
    assert rules.classify(url("https://t.acme.com/open/more?id=7"), ("pixel",)) is None
    # Only the kinds asked for.
    assert rules.classify(url("https://t.acme.com/open?id=7"), ("link",)) is None


def test_only_http_urls_are_ever_matched() -> None:
    assert parse_http("cid:part1@acme") is None
    assert parse_http("data:image/gif;base64,R0lGOD") is None
    assert parse_http("mailto:a@t.acme.com") is None
    assert parse_http("javascript:alert(1)") is None
    assert parse_http("ftp://t.acme.com/open") is None
    assert parse_http("images/a.png") is None
    assert parse_http("http://[::1") is None
    parsed = parse_http("  //T.Acme.COM./open?id=1 ")
    assert parsed is not None
    assert (parsed.host, parsed.path, parsed.query) == ("t.acme.com", "/open", "id=1")


SPECIFICITY = """\
[[service]]
id = "hostco"
name = "HostCo"
category = "redirector"
source = "observed: test"

[[service.rule]]
id = "any"
kind = "link"
hosts = ["r.shared.com", "*.wild.com"]
match = ["https://r.shared.com/x"]
no_match = ["https://shared.com/x"]

[[service]]
id = "pathco"
name = "PathCo"
category = "esp"
source = "observed: test"

[[service.rule]]
id = "click"
kind = "link"
hosts = ["r.shared.com", "*.wild.com"]
path = '^/click$'
decode = { param = "u" }
match = ["https://r.shared.com/click?u=https://example.com/"]
no_match = ["https://r.shared.com/other"]
"""


@pytest.mark.parametrize("host", ["r.shared.com", "a.wild.com"])
def test_host_and_path_rule_wins_over_bare_host_rule(tmp_path: Path, host: str) -> None:
    rules = load_one(tmp_path, SPECIFICITY)
    specific = rules.classify(url(f"https://{host}/click?u=https://example.com/"), ("link",))
    assert specific is not None and specific.id == "pathco.click"
    other = rules.classify(url(f"https://{host}/elsewhere"), ("link",))
    assert other is not None and other.id == "hostco.any"
    chain, destination = rules.unwrap(url(f"https://{host}/click?u=https%3A%2F%2Fexample.com%2Fa"))
    assert [r.id for r in chain] == ["pathco.click"]
    assert destination == "https://example.com/a"


def test_host_rule_beats_hostless_shape_rule(tmp_path: Path) -> None:
    text = SPECIFICITY + textwrap.dedent(
        """\
        [[service]]
        id = "shapeco"
        name = "ShapeCo"
        category = "esp"
        source = "observed: test"

        [[service.rule]]
        id = "click"
        kind = "link"
        path = '^/click$'
        query = '(^|&)u='
        match = ["https://brand.example.com/click?u=1"]
        no_match = ["https://brand.example.com/clicks?u=1"]
        """
    )
    rules = load_one(tmp_path, text)
    on_host = rules.classify(url("https://r.shared.com/click?u=1"), ("link",))
    assert on_host is not None and on_host.id == "pathco.click"
    branded = rules.classify(url("https://links.brand.org/click?u=1"), ("link",))
    assert branded is not None and branded.id == "shapeco.click"


# ---- user rules --------------------------------------------------------------------------------


def test_user_rule_overrides_bundled_rule_with_same_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = load_ruleset(include_user=False)
    target = next(r for r in bundled.rules if r.kind == "pixel" and r.hosts)
    service_id, rule_id = target.id.split(".", 1)
    user_dir = tmp_path / "config" / "guard" / "rules"
    user_file = write_rules(
        user_dir,
        "mine.toml",
        f"""\
        [[service]]
        id = "{service_id}"
        name = "My Override"
        category = "{target.category}"
        source = "observed: my own test"

        [[service.rule]]
        id = "{rule_id}"
        kind = "pixel"
        hosts = ["pixel.override-test.org"]
        path = '^/o$'
        match = ["https://pixel.override-test.org/o"]
        no_match = ["https://pixel.override-test.org/x"]
        """,
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    merged = load_ruleset()
    same_id = [r for r in merged.rules if r.id == target.id]
    assert len(same_id) == 1
    assert same_id[0].file == str(user_file)
    assert same_id[0].hosts == ("pixel.override-test.org",)
    found = merged.classify(url("https://pixel.override-test.org/o"), ("pixel",))
    assert found is not None and found.id == target.id and found.tracker == "My Override"
    assert len(merged.rules) == len(bundled.rules)
    assert merged.version != bundled.version
    # include_user=False ignores the user's directory.
    again = load_ruleset(include_user=False)
    assert again.classify(url("https://pixel.override-test.org/o"), ("pixel",)) is None


def test_user_rule_with_new_id_is_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_rules(tmp_path / "guard" / "rules", "acme.toml", SERVICE + GOOD_RULE)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    merged = load_ruleset()
    bundled = load_ruleset(include_user=False)
    assert len(merged.rules) == len(bundled.rules) + 1
    found = merged.classify(url("https://t.acme.com/open"), ("pixel",))
    assert found is not None and found.id == "acme.open"


def test_malformed_user_rule_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = write_rules(tmp_path / "guard" / "rules", "bad.toml", "[[service]\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(RuleError, match="not valid TOML") as info:
        load_ruleset()
    assert str(bad) in str(info.value)


# ---- decoders ----------------------------------------------------------------------------------


def test_percent_decoder() -> None:
    assert DECODERS["percent"]("https%3A%2F%2Fexample.com%2Fa%3Fb%3D1%26c%3D%C3%A9") == (
        "https://example.com/a?b=1&c=é"
    )


def test_base64_and_base64url_decoders_tolerate_missing_padding() -> None:
    target = "https://example.com/path?q=~~~>>>???&x=1"
    std = base64.b64encode(target.encode()).decode()
    url_safe = base64.urlsafe_b64encode(target.encode()).decode()
    assert "+" in std or "/" in std  # the test URL exercises the two alphabets
    assert std != url_safe
    assert DECODERS["base64"](std) == target
    assert DECODERS["base64"](std.rstrip("=")) == target
    assert DECODERS["base64url"](url_safe.rstrip("=")) == target
    with pytest.raises(DecodeError):
        DECODERS["base64"](url_safe)  # `-`/`_` are not in the standard alphabet
    with pytest.raises(DecodeError):
        DECODERS["base64"]("this is not base64!")
    with pytest.raises(DecodeError):
        DECODERS["base64"](base64.b64encode(b"\xff\xfe\x00binary").decode())


def test_base64url_zlib_decoder_and_form_field() -> None:
    query = (
        "i=20190321.1%40mg.example.com&l=https%3A%2F%2Fshop.example%2Fa%3Fb%3D1&r=me%40x.example"
    )
    token = base64.urlsafe_b64encode(zlib.compress(query.encode())).decode().rstrip("=")
    assert token.startswith("eJ")
    assert DECODERS["base64url-zlib"](token) == query
    assert apply_encodings(token, ["base64url-zlib", "form"], ["l"]) == "https://shop.example/a?b=1"
    with pytest.raises(DecodeError):
        apply_encodings(token, ["base64url-zlib", "form"], ["url"])  # no such field
    with pytest.raises(DecodeError):
        DECODERS["base64url-zlib"](token[:40])  # cut short: not a whole zlib stream's start
    bomb = base64.urlsafe_b64encode(zlib.compress(b"a" * 10_000_000)).decode()
    with pytest.raises(DecodeError, match="larger"):
        DECODERS["base64url-zlib"](bomb)  # inflates past a link's size: refused, not expanded


def test_json_path_through_nested_json_string_mandrill_like() -> None:
    inner = json.dumps({"u": 30506543, "v": 1, "url": "https://www.example.com/offers?ref=mail"})
    payload = base64.b64encode(json.dumps({"p": inner}).encode()).decode()
    assert apply_encodings(payload, ["base64", "json"], ["p", "url"]) == (
        "https://www.example.com/offers?ref=mail"
    )


def test_json_path_errors_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="no key 'url'"):
        follow_json_path({"p": {"u": 1}}, ["p", "url"])
    with pytest.raises(DecodeError, match="non-JSON string"):
        follow_json_path({"p": "plain text"}, ["p", "url"])
    with pytest.raises(DecodeError):
        apply_encodings("{not json", ["json"], ["p"])
    with pytest.raises(DecodeError, match="not text"):
        apply_encodings('{"p": {"url": 5}}', ["json"], ["p", "url"])


def test_proofpoint_v2_decoder() -> None:
    assert DECODERS["proofpoint-v2"]("https-3A__example.com_path-3Fa-3D1") == (
        "https://example.com/path?a=1"
    )
    assert DECODERS["proofpoint-v2"]("http-3A__example.org_a-2Db-5Fc") == "http://example.org/a-b_c"


_PP_RUNS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def proofpoint_v3_encode(original: str, removed: set[str], signature: str = "AbC123!xyz") -> str:
    """Encode as URL Defense v3 does: removed characters become `*` / `**<run>` markers and travel
    base64url-encoded (without padding) after `__;`."""
    out: list[str] = []
    taken: list[str] = []
    i = 0
    while i < len(original):
        if original[i] in removed:
            j = i
            while j < len(original) and original[j] in removed and j - i < len(_PP_RUNS) + 1:
                j += 1
            run = original[i:j]
            taken.append(run)
            out.append("*" if len(run) == 1 else "**" + _PP_RUNS[len(run) - 2])
            i = j
        else:
            out.append(original[i])
            i += 1
    encoded = base64.urlsafe_b64encode("".join(taken).encode()).decode().rstrip("=")
    return f"https://urldefense.com/v3/__{''.join(out)}__;{encoded}!!{signature}$"


def test_proofpoint_v3_decoder_single_markers() -> None:
    text = "https://urldefense.com/v3/__https://example.com/a*b__;Kg!!sig$"
    assert DECODERS["proofpoint-v3"](text.split("/v3/__", 1)[1]) == "https://example.com/a*b"


@pytest.mark.parametrize(
    "original",
    [
        "https://example.com/search?q=a+b&lang=en",
        "https://example.com/a++b",  # a run of two: `**A`
        "https://example.com/p?x=%20%20%20&y=1",  # runs of `%` mixed with kept characters
        "https://example.com/caf\u00e9/\u00fc?q=\u00e9\u00e9\u00e9",  # non-ASCII characters
    ],
)
def test_proofpoint_v3_round_trip(original: str) -> None:
    removed = {"+", "%", "\u00e9", "\u00fc"}
    wrapped = proofpoint_v3_encode(original, removed)
    assert "__;" in wrapped and original not in wrapped
    assert DECODERS["proofpoint-v3"](wrapped.split("/v3/__", 1)[1]) == original


def test_proofpoint_v3_fewer_replacements_than_markers_is_an_error() -> None:
    with pytest.raises(DecodeError):
        DECODERS["proofpoint-v3"]("https://example.com/a*b*c__;Kg!!sig$")


DECODE_RULES = """\
[[service]]
id = "wrap"
name = "Wrap"
category = "redirector"
source = "observed: test"

[[service.rule]]
id = "b64"
kind = "link"
hosts = ["w.wrap.com"]
path = '^/b$'
decode = { param = "t", encoding = ["base64url"] }
match = ["https://w.wrap.com/b?t=aHR0cHM6Ly9leGFtcGxlLmNvbS8"]
no_match = ["https://w.wrap.com/c"]

[[service.rule]]
id = "path"
kind = "link"
hosts = ["w.wrap.com"]
path = '^/L0/'
decode = { from = "path", regex = '^/L0/(?P<target>[^/]+)', encoding = ["percent"] }
match = ["https://w.wrap.com/L0/https:%2F%2Fexample.com%2F/1/x"]
no_match = ["https://w.wrap.com/L1/x"]

[[service.rule]]
id = "opaque"
kind = "link"
hosts = ["o.wrap.com"]
match = ["https://o.wrap.com/abc"]
no_match = ["https://wrap.com/abc"]

[[service.rule]]
id = "loop"
kind = "link"
hosts = ["r.loop.com"]
path = '^/r$'
decode = { param = "u" }
match = ["https://r.loop.com/r?u=https://example.com/"]
no_match = ["https://r.loop.com/s"]
"""


@pytest.mark.parametrize(
    ("raw", "destination"),
    [
        ("https://w.wrap.com/b?t=aHR0cHM6Ly9leGFtcGxlLmNvbS8", "https://example.com/"),
        (
            "https://w.wrap.com/L0/https:%2F%2Fexample.com%2Fa%3Fb%3D1/1/x",
            "https://example.com/a?b=1",
        ),
        # junk: not base64, base64 of a non-URL, a non-http target, no target at all
        ("https://w.wrap.com/b?t=%%%not-base64%%%", None),
        ("https://w.wrap.com/b?t=aGVsbG8gd29ybGQ", None),  # "hello world"
        ("https://w.wrap.com/b?t=amF2YXNjcmlwdDphbGVydCgxKQ", None),  # "javascript:alert(1)"
        ("https://w.wrap.com/b", None),
        ("https://w.wrap.com/b?t=", None),
        ("https://r.loop.com/r?u=not%20a%20url", None),
    ],
)
def test_decode_target_or_none(tmp_path: Path, raw: str, destination: str | None) -> None:
    rules = load_one(tmp_path, DECODE_RULES)
    rule = rules.classify(url(raw), ("link",))
    assert rule is not None and rule.decode is not None
    assert rule.decode.target(url(raw)) == destination
    chain, found = rules.unwrap(url(raw))
    assert chain == [rule]
    assert found == destination


def test_unwrap_of_unknown_and_opaque_links(tmp_path: Path) -> None:
    rules = load_one(tmp_path, DECODE_RULES)
    assert rules.unwrap(url("https://example.com/page?u=https://w.wrap.com/b")) == ([], None)
    chain, destination = rules.unwrap(url("https://o.wrap.com/abc?u=https%3A%2F%2Fexample.com"))
    assert [r.id for r in chain] == ["wrap.opaque"]
    assert destination is None


def test_unwrap_follows_nested_wrappers(tmp_path: Path) -> None:
    rules = load_one(tmp_path, DECODE_RULES)
    inner = "https://w.wrap.com/b?t=" + base64.urlsafe_b64encode(
        b"https://example.com/final?x=1"
    ).decode().rstrip("=")
    outer = "https://r.loop.com/r?u=" + quote(inner, safe="")
    chain, destination = rules.unwrap(url(outer))
    assert [r.id for r in chain] == ["wrap.loop", "wrap.b64"]
    assert destination == "https://example.com/final?x=1"


def test_unwrap_into_opaque_wrapper_keeps_last_decoded_target(tmp_path: Path) -> None:
    rules = load_one(tmp_path, DECODE_RULES)
    outer = "https://r.loop.com/r?u=" + quote("https://o.wrap.com/abc", safe="")
    chain, destination = rules.unwrap(url(outer))
    assert [r.id for r in chain] == ["wrap.loop", "wrap.opaque"]
    assert destination == "https://o.wrap.com/abc"


def test_unwrap_depth_is_bounded(tmp_path: Path) -> None:
    rules = load_one(tmp_path, DECODE_RULES)
    levels = 3 * MAX_UNWRAP_DEPTH
    current = "https://example.com/final"
    wrapped = [current]
    for _ in range(levels):
        current = "https://r.loop.com/r?u=" + quote(current, safe="")
        wrapped.append(current)
    chain, destination = rules.unwrap(url(current))
    assert len(chain) == MAX_UNWRAP_DEPTH
    assert all(r.id == "wrap.loop" for r in chain)
    # After MAX_UNWRAP_DEPTH decodings we hold the wrapper that many levels down, not the end.
    assert destination == wrapped[levels - MAX_UNWRAP_DEPTH]
    assert destination != "https://example.com/final"


def test_bundled_rules_load() -> None:
    rules = load_ruleset(include_user=False)
    assert len(rules.rules) > 20
    assert {r.kind for r in rules.rules} >= {"pixel", "link", "param", "receipt", "spacer"}
    assert all(r.service.id in rules.services for r in rules.rules)


@pytest.mark.parametrize("path", [r"^/\w+/\d+$", "^/[a-z]+/[0-9]+$"])
def test_hostless_rule_with_class_only_path_is_too_generic(tmp_path: Path, path: str) -> None:
    text = SERVICE + GOOD_RULE.replace('hosts = ["t.acme.com"]\n', "").replace(
        "path = '^/open$'", f"path = '{path}'"
    )
    with pytest.raises(RuleError, match="specific 'path'"):
        load_one(tmp_path, text)


# ---- tracking-only hosts (rules/README.md, "Tracking-only hosts" and "Precedence") -------------

TRACKER = """\
[[service]]
id = "trk"
name = "Trk Sales"
category = "sales"
source = "observed: test fixture"

[[service.rule]]
id = "tracking-hosts"
kind = "host"
tracking_only = true
hosts = ["t.trk.example", "*.clicks.trk.example"]
source = "observed: test fixture, hosts that serve only beacons and redirects"
match = ["https://t.trk.example/anything.png"]
no_match = ["https://www.trk.example/"]

[[service.rule]]
id = "open"
kind = "pixel"
hosts = ["t.trk.example"]
path = '^/t/[0-9a-f]{16,}/'
match = ["https://t.trk.example/t/0123456789abcdef0123/x.gif"]
no_match = ["https://t.trk.example/other"]

[[service.rule]]
id = "click"
kind = "link"
hosts = ["*.clicks.trk.example"]
path = '^/r$'
decode = { param = "u" }
match = ["https://a.clicks.trk.example/r?u=https%3A%2F%2Fs.example%2F"]
no_match = ["https://a.clicks.trk.example/other"]

[[service]]
id = "generic"
name = "Generic wrapper"
category = "redirector"
source = "observed: test fixture"

[[service.rule]]
id = "decoding-shape"
kind = "link"
path = '^/redirect/go$'
decode = { param = "to" }
match = ["https://a.example/redirect/go?to=https%3A%2F%2Fb.example%2F"]
no_match = ["https://any.example/redirect/stay"]

[[service.rule]]
id = "opaque-shape"
kind = "link"
path = '^/opaque/hop/'
match = ["https://any.example/opaque/hop/123"]
no_match = ["https://any.example/opaque/stay"]

[[service.rule]]
id = "pixel-shape"
kind = "pixel"
path = '^/beacon/open\\.gif$'
match = ["https://any.example/beacon/open.gif"]
no_match = ["https://any.example/beacon/close.gif"]
"""


def test_tracking_only_host_claims_every_load_and_link_whatever_the_path(tmp_path: Path) -> None:
    rules = load_one(tmp_path, TRACKER)
    only = rules.classify(url("https://t.trk.example/t/0123456789abcdef0123/x.gif"), ("pixel",))
    assert only is not None and only.id == "trk.open"  # the host's own path rule first
    # A path no rule foresaw: still the tracker's pixel (before: no pixel rule matched at all).
    for raw in ("https://t.trk.example/t/not-hex-token/spacer.gif", "https://t.trk.example/o"):
        found = rules.classify(url(raw), ("pixel",))
        assert found is not None and found.id == "trk.tracking-hosts" and found.tracking_only
        link = rules.classify(url(raw), ("link",))
        assert link is not None and link.id == "trk.tracking-hosts"
    # Only the kinds that mean tracking: a spacer question is not answered by it.
    assert rules.classify(url("https://t.trk.example/spacer.gif"), ("spacer",)) is None
    # Look-alikes and the bare domain are not claimed.
    for raw in ("https://trk.example/x.gif", "https://t.trk.example.evil.net/x.gif"):
        assert rules.classify(url(raw), ("pixel", "link")) is None


def test_tracking_only_host_beats_hostless_pixel_shape(tmp_path: Path) -> None:
    rules = load_one(tmp_path, TRACKER)
    on_host = rules.classify(url("https://t.trk.example/beacon/open.gif"), ("pixel",))
    assert on_host is not None and on_host.id == "trk.tracking-hosts"
    elsewhere = rules.classify(url("https://other.example/beacon/open.gif"), ("pixel",))
    assert elsewhere is not None and elsewhere.id == "generic.pixel-shape"


def test_tracking_only_links_unwrap_where_a_decode_rule_exists_else_opaque(tmp_path: Path) -> None:
    rules = load_one(tmp_path, TRACKER)
    # The host's own decoding rule.
    chain, dest = rules.unwrap(
        url("https://a.clicks.trk.example/r?u=https%3A%2F%2Fshop.example%2F")
    )
    assert [r.id for r in chain] == ["trk.click"] and dest == "https://shop.example/"
    # A host-less shape that decodes wins over the opaque claim…
    raw = "https://b.clicks.trk.example/redirect/go?to=https%3A%2F%2Fa.example%2F"
    chain, dest = rules.unwrap(url(raw))
    assert [r.id for r in chain] == ["generic.decoding-shape"] and dest == "https://a.example/"
    # …one that does not decode does not: the tracker's host names the wrapper, opaque.
    chain, dest = rules.unwrap(url("https://b.clicks.trk.example/opaque/hop/1"))
    assert [r.id for r in chain] == ["trk.tracking-hosts"] and dest is None
    chain, dest = rules.unwrap(url("https://b.clicks.trk.example/new/shape?x=1"))
    assert [r.id for r in chain] == ["trk.tracking-hosts"] and dest is None


def test_tracking_only_after_a_decoded_layer_ends_the_chain_opaque(tmp_path: Path) -> None:
    rules = load_one(tmp_path, TRACKER)
    inner = "https://t.trk.example/whatever/123"
    chain, dest = rules.unwrap(url("https://any.example/redirect/go?to=" + quote(inner, safe="")))
    assert [r.id for r in chain] == ["generic.decoding-shape", "trk.tracking-hosts"]
    assert dest == inner


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (  # only on host rules
            'id = "x"\nkind = "pixel"\ntracking_only = true\nhosts = ["t.acme.com"]\n'
            'source = "s"\nmatch = ["https://t.acme.com/a"]\nno_match = ["https://acme.com/"]',
            "on host rules only",
        ),
        (  # whole hosts only
            'id = "x"\nkind = "host"\ntracking_only = true\nhosts = ["t.acme.com"]\npath = "^/o"\n'
            'source = "s"\nmatch = ["https://t.acme.com/o"]\nno_match = ["https://acme.com/"]',
            "whole hosts",
        ),
        (  # its own evidence
            'id = "x"\nkind = "host"\ntracking_only = true\nhosts = ["t.acme.com"]\n'
            'match = ["https://t.acme.com/o"]\nno_match = ["https://acme.com/"]',
            "own 'source'",
        ),
        (
            'id = "x"\nkind = "host"\ntracking_only = "yes"\nhosts = ["t.acme.com"]\n'
            'source = "s"\nmatch = ["https://t.acme.com/o"]\nno_match = ["https://acme.com/"]',
            "true or false",
        ),
    ],
)
def test_tracking_only_is_validated(tmp_path: Path, rule: str, problem: str) -> None:
    with pytest.raises(RuleError, match=problem):
        load_one(tmp_path, SERVICE + "[[service.rule]]\n" + rule + "\n")


def test_host_rules_reads_only_the_suffixes_a_wildcard_can_have() -> None:
    # A hostile host of 50,000 labels under a wildcard's domain still gets that domain's rules,
    # nearest suffix first, and a host under no wildcard gets none.
    rules = load_ruleset(include_user=False)
    deep = "a." * 50_000 + "u1.ct.sendgrid.net"
    found = rules.host_rules(deep)
    assert found and {r.service.id for r in found} == {"sendgrid"}
    assert rules.host_rules("a." * 50_000 + "example.invalid") == ()


def test_sender_matches_reads_every_header_a_sender_rule_names() -> None:
    # sender_matches passes over the headers no `sender` rule reads (_sender_headers): that set
    # must hold every name of both tables, in the compiled rules as in rules loaded afresh.
    from guard.engine.rules_load import bundled_rules_dir

    # The compiled rules (bundled alone), and the same files read as another directory.
    for rules in (load_ruleset(include_user=False), load_ruleset([bundled_rules_dir()])):
        assert rules._sender_headers == set(rules._senders) | set(rules._sender_domains)
        assert "dkim-signature" in rules._sender_headers


def _sender_matches_reference(
    rules: RuleSet, headers: tuple[tuple[str, str], ...]
) -> list[tuple[Rule, str]]:
    # Every header line in message order, every `sender` rule asked of it by `sender_evidence`,
    # the first evidence of each rule kept: what the indexed look-up must answer.
    found: dict[str, tuple[Rule, str]] = {}
    senders = [r for r in rules.rules if r.kind == "sender" and r.header]
    for name, value in headers:
        for rule in senders:
            if rule.id not in found:
                evidence = rule.sender_evidence(name, value)
                if evidence is not None:
                    found[rule.id] = (rule, evidence)
    return list(found.values())


def test_sender_matches_is_every_rule_asked_of_every_line() -> None:
    # The tables (by header name, by domain) and the lines found by name must give the same
    # rules, evidence and order as asking each rule of each line, on lines made from every
    # `sender` rule's examples: shuffled, repeated, in other cases, several domains to a line.
    import random

    rules = load_ruleset(include_user=False)
    lines: list[tuple[str, str]] = []
    for rule in rules.rules:
        if rule.kind == "sender":
            for example in (*rule.match, *rule.no_match):
                name, _, value = example.text.partition(":")
                lines.append((name.strip(), value.strip()))
    assert len(lines) > 50
    domains = [v for n, v in lines if n.lower() == "return-path"]
    lines.append(("Return-Path", " ".join(domains[:3])))  # several domains, several rules
    lines.append(("List-Unsubscribe", "<https://x.example/u>"))  # read by no rule
    generator = random.Random(7)
    for round_ in range(40):
        chosen = generator.sample(lines, generator.randint(1, 12))
        if round_ % 3 == 0:
            chosen = [(n.upper() if generator.random() < 0.5 else n, v) for n, v in chosen]
        chosen += generator.sample(chosen, min(2, len(chosen)))  # repeated lines
        headers = (("From", "a@b.example"), *chosen, *(("X-Filler", str(i)) for i in range(8)))
        assert rules.sender_matches(headers) == _sender_matches_reference(rules, headers)
