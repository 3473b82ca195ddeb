"""`guard rules list | test | suggest`: the bundled (and the user's) tracker rules, their
examples checked, and hosts that behave like trackers in your mail but no rule names."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from guard.cli.common import CliError, load_rules, scan_paths
from guard.mail.exitcodes import ExitCode

if TYPE_CHECKING:
    from guard.engine.model import MessageResult
    from guard.engine.ruleset import RuleSet


def run_suggest(ns: argparse.Namespace, rules: RuleSet) -> int:
    from guard.engine.suggest import suggest

    results = list(scan_paths(ns.paths, rules) if ns.paths else stored_results(ns.account))
    found = suggest(results, ns.limit)
    if not found:
        sys.stdout.write(f"no unnamed tracker hosts in {len(results)} messages\n")
        return ExitCode.OK
    for s in found:
        notes = [f"{s.messages} message(s)", f"{len(s.senders)} sender(s)"]
        if s.with_token:
            notes.append(f"{s.with_token} URL(s) with per-recipient tokens")
        notes.append(f"{s.content_images} ordinary image(s) from it")
        if s.first_party_only:
            notes.append("only on the senders' own domain: a branded alias, look for the ESP")
        sys.stdout.write(f"# {s.domain}: {'; '.join(notes)}\n{s.rule_snippet()}\n")
    return ExitCode.OK


def run_rules(ns: argparse.Namespace) -> int:
    rules = load_rules(examples=True)
    if ns.rules_command == "suggest":
        return run_suggest(ns, rules)
    if ns.rules_command == "list":
        rows = [
            {
                "id": r.id,
                "tracker": r.tracker,
                "service": r.service.id,
                "kind": r.kind,
                "category": r.category,
                "hosts": list(r.hosts),
                "path": r.path.pattern if r.path else None,
                "decodes": r.decode is not None,
                "tracking_only": r.tracking_only,
                "source": r.source,
                "file": r.file,
            }
            for r in sorted(rules.rules, key=lambda r: r.id)
        ]
        if ns.format == "json":
            json.dump(rows, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            for row in rows:
                sys.stdout.write(
                    f"{row['id']:<44} {row['kind']:<8} {row['category']:<17} {row['tracker']}\n"
                )
            sys.stdout.write(
                f"{len(rows)} rules, {len(rules.services)} services "
                f"(rules version {rules.version})\n"
            )
        return ExitCode.OK
    failures = 0
    total = 0
    for rule in rules.rules:
        for expected, examples in ((True, rule.match), (False, rule.no_match)):
            for example in examples:
                total += 1
                matched, destination = rule.check_example(example)
                ok = matched is expected and (
                    not expected
                    or example.destination is None
                    or destination == example.destination
                )
                if not ok:
                    failures += 1
                    what = "does not match" if expected else "matches"
                    sys.stdout.write(f"FAIL {rule.id} ({rule.file}): {what} {example.text}\n")
    sys.stdout.write(f"{total - failures} passed, {failures} failed\n")
    return ExitCode.OK if failures == 0 else ExitCode.RULES


def stored_results(account: str | None) -> Iterable[MessageResult]:
    """Every stored scan result (of one account), for commands that work from history."""
    from guard.mail.store import Store, StoreError, default_path

    path = default_path()
    if not path.exists():
        raise CliError(
            f"no scan history yet ({path}): run `guard scan --account NAME` first",
            ExitCode.NO_INPUT,
        )
    try:
        with Store(path) as store:
            yield from (r for _uid, r in store.results(account))
    except StoreError as exc:
        raise CliError(str(exc), ExitCode.STATE) from None
