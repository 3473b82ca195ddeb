"""One generic test runs every rule's own match / no-match examples (rules/README.md)."""

from __future__ import annotations

import pytest

from guard.engine.rules_load import load_ruleset
from guard.engine.ruleset import Example, Rule
from guard.engine.urls import parse_http

RULESET = load_ruleset(include_user=False)


def _cases() -> list[tuple[Rule, Example, bool]]:
    cases: list[tuple[Rule, Example, bool]] = []
    for rule in RULESET.rules:
        cases += [(rule, ex, True) for ex in rule.match]
        cases += [(rule, ex, False) for ex in rule.no_match]
    return cases


@pytest.mark.parametrize(
    ("rule", "example", "expected"),
    _cases(),
    ids=lambda v: (
        v.id if isinstance(v, Rule) else (v.text[:60] if isinstance(v, Example) else None)
    ),
)
def test_rule_example(rule: Rule, example: Example, expected: bool) -> None:
    matched, destination = rule.check_example(example)
    assert matched is expected, (
        f"{rule.file}: {rule.id} {'should' if expected else 'should not'} match {example.text}"
    )
    if expected and example.destination is not None:
        assert destination == example.destination, f"{rule.id} decoded {example.text}"
    if expected and rule.kind in ("pixel", "link"):
        # Within the whole rule set the example must still land on this service: another rule
        # (e.g. a broad path shape) must not shadow it.
        url = parse_http(example.text)
        assert url is not None
        winner = RULESET.classify(url, (rule.kind,))
        assert winner is not None and winner.service.id == rule.service.id, (
            f"{example.text} is classified as {winner.id if winner else None}, not {rule.id}"
        )


def test_rules_have_decoders_only_where_examples_prove_them() -> None:
    for rule in RULESET.rules:
        if rule.decode is not None:
            assert any(ex.destination for ex in rule.match), f"{rule.id}: show a decoded example"


TRACKING_ONLY = [r for r in RULESET.rules if r.tracking_only]


@pytest.mark.parametrize("rule", TRACKING_ONLY, ids=lambda r: r.id)
def test_tracking_only_host_examples_are_beacons_and_wrappers_of_the_service(rule: Rule) -> None:
    """On a tracking-only host every load is the service's pixel and every link its wrapper
    (rules/README.md, "Precedence"), whatever path the example shows."""
    assert rule.kind == "host" and rule.path is None and rule.query is None
    assert rule.source != rule.service.source or rule.source.startswith("http"), rule.id
    for example in rule.match:
        url = parse_http(example.text)
        assert url is not None
        for kind in ("pixel", "link"):
            winner = RULESET.classify(url, (kind,))
            assert winner is not None and winner.service.id == rule.service.id, (
                f"{example.text} as a {kind}: {winner.id if winner else None}, not {rule.id}"
            )


def test_tracking_only_hosts_are_claimed_by_one_service_only() -> None:
    """A host that exists only to track one service's mail is not also listed by another
    service (which would mean it serves someone else's content too)."""
    owners: dict[str, set[str]] = {}
    for rule in RULESET.rules:
        for host in rule.hosts:
            owners.setdefault(host, set()).add(rule.service.id)
    for rule in TRACKING_ONLY:
        for host in rule.hosts:
            assert owners[host] == {rule.service.id}, (rule.id, host, owners[host])
