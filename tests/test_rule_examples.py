"""One generic test runs every rule's own match / no-match examples (rules/README.md)."""

from __future__ import annotations

import pytest

from guard.ruleset import Example, Rule, load_ruleset
from guard.urls import parse_http

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
